"""An error that ends training (issue 39, item 5): a callback's hook that raises, or a tracker that fails, leaves a
checkpoint of the exact position and the losses up to it, so the same run resumes bit for bit; an error inside a
training step leaves the last exact checkpoint alone."""

from __future__ import annotations

import csv
import logging

import pytest
from conftest import tiny_config, tiny_data, train

from ganvae.training.callbacks import Callback


def read_losses(run_dir):
    with open(run_dir / "losses.csv", newline="") as fh:
        return list(csv.reader(fh))


class Boom(Callback):
    """Raises in ``hook`` once the run reaches ``step``."""

    def __init__(self, hook, step):
        self.step = step
        setattr(self, hook, self._maybe)

    def _maybe(self, trainer, *args):
        if trainer.state.step >= self.step:
            raise RuntimeError(f"a callback failed at step {trainer.state.step}")


@pytest.mark.parametrize("hook, step", [("on_step_end", 8), ("on_log", 10), ("on_epoch_end", 6)])
def test_a_failing_hook_leaves_an_exact_checkpoint_and_the_run_resumes_bit_for_bit(tmp_path, caplog, hook, step):
    cfg = ("gan", "train.epochs=3", "train.log_every=4")  # losses pending between logs: flushed before the save
    full = train(tiny_config(*cfg), tmp_path / "full", data=tiny_data())
    with caplog.at_level(logging.ERROR, "ganvae"), pytest.raises(RuntimeError, match="a callback failed"):
        train(tiny_config(*cfg), tmp_path / "part", data=tiny_data(), callbacks=[Boom(hook, step)])
    from ganvae.storage.checkpoint import load_checkpoint

    header = load_checkpoint(tmp_path / "part/checkpoints/last.safetensors").header
    assert header["step"] == step
    assert f"training stopped by RuntimeError at step {step}" in caplog.text and "--resume" in caplog.text
    assert len(read_losses(tmp_path / "part")) == 1 + step  # the header, then one row per step trained
    train(tiny_config(*cfg), tmp_path / "part", data=tiny_data(), resume=True)
    assert read_losses(tmp_path / "part") == read_losses(full.run_dir)


def test_an_error_inside_a_training_step_keeps_the_last_exact_checkpoint(tmp_path, caplog, monkeypatch):
    cfg = ("gan", "train.epochs=3", "train.checkpoint_every=1")
    run = tmp_path / "run"
    from ganvae.models.gan import GAN

    real_step = GAN.training_step

    def failing_step(self, x, optimizers, ctx):
        if ctx.step == 9:
            raise RuntimeError("the step failed half-way")
        return real_step(self, x, optimizers, ctx)

    monkeypatch.setattr(GAN, "training_step", failing_step)
    with caplog.at_level(logging.ERROR, "ganvae"), pytest.raises(RuntimeError, match="half-way"):
        train(tiny_config(*cfg), run, data=tiny_data())
    from ganvae.storage.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoints/last.safetensors").header["step"] == 6  # the epoch's, not step 9's
    assert "its last checkpoint is at step 6" in caplog.text


def test_a_prior_that_could_not_be_fitted_is_a_warning_of_the_run(tmp_path, monkeypatch):
    import json

    import ganvae.models.base as base

    def too_few(*args, **kwargs):
        raise ValueError("2 images are too few for the mixture")

    monkeypatch.setattr(base, "fit_latent_prior", too_few)
    train(tiny_config("vae", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    warnings = json.loads((tmp_path / "run/summary.json").read_text()).get("warnings", [])
    assert any("learned prior not fitted (2 images are too few" in w for w in warnings), warnings


def test_a_monitor_without_quality_points_says_so_in_the_runs_warnings(tmp_path):
    import json

    from ganvae.training.callbacks import EarlyStopping

    result = train(tiny_config("vae", "train.epochs=2"), tmp_path / "run", data=tiny_data(),
                   callbacks=[EarlyStopping(metric="nonexistent")])
    assert result.stopped_by == "epochs"  # it stops nothing
    warnings = json.loads((tmp_path / "run/summary.json").read_text()).get("warnings", [])
    assert any("EarlyStopping(monitor='nonexistent') watches the in-training quality points, which are off" in w
               for w in warnings), warnings
