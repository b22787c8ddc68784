"""The trainer: outputs, exact resume, NaN stop, interrupt, refusal of mismatched checkpoints."""

import csv
import json
import signal

import pytest
import torch
from conftest import tiny_config, tiny_data, train

from ganvae.errors import CheckpointError, GanvaeError, Interrupted, TrainingDiverged
from ganvae.models.gan import GAN
from ganvae.storage.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from ganvae.training.trainer import Trainer


def read_losses(run_dir):
    with open(run_dir / "losses.csv", newline="") as fh:
        return list(csv.reader(fh))


def test_run_folder_outputs(tmp_path):
    cfg = tiny_config("dcgan", "run.tensorboard=true")
    result = train(cfg, tmp_path / "run", data=tiny_data(), argv=["ganvae", "train", "dcgan"])
    run = result.run_dir
    for name in ("config.yaml", "command.txt", "run.json", "train.log", "losses.csv", "losses.png", "progress.gif",
                 "summary.json", "samples/epoch_0001.png", "samples/epoch_0002.png", "checkpoints/last.safetensors"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir())
    meta = json.loads((run / "run.json").read_text())
    assert meta["seed"] == 0 and meta["torch"] == torch.__version__
    assert (run / "command.txt").read_text().startswith("ganvae train dcgan")
    rows = read_losses(run)
    assert rows[0] == ["step", "epoch", "d_loss", "g_loss"] and len(rows) == 1 + 2 * 6  # 48 images / batch 8
    header = load_checkpoint(run / "checkpoints/last.safetensors").header
    assert header["model_name"] == "dcgan" and header["epoch"] == 2 and header["step"] == 12
    assert header["data_fingerprint"] == tiny_data().fingerprint()
    assert header["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("name", ["gan", "vae-gan"])
def test_resume_at_epoch_boundary_is_exact(tmp_path, name):
    full = train(tiny_config(name, "train.epochs=3"), tmp_path / "full", data=tiny_data())
    train(tiny_config(name, "train.epochs=1"), tmp_path / "part", data=tiny_data())
    train(tiny_config(name, "train.epochs=3"), tmp_path / "part", data=tiny_data(), resume=True)
    assert read_losses(tmp_path / "part") == read_losses(full.run_dir)  # bit for bit: CSV holds 6 significant digits
    a = load_checkpoint(tmp_path / "full/checkpoints/last.safetensors")
    b = load_checkpoint(tmp_path / "part/checkpoints/last.safetensors")
    for k in a.group("model"):
        assert torch.equal(a.group("model")[k], b.group("model")[k]), k


def test_interrupt_mid_epoch_then_resume_is_exact(tmp_path, monkeypatch):
    full = train(tiny_config("gan"), tmp_path / "full", data=tiny_data())
    original = GAN.after_step
    calls = {"n": 0}

    def interrupt_at_step_4(self, step):
        original(self, step)
        calls["n"] += 1
        if calls["n"] == 4:
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C would

    monkeypatch.setattr(GAN, "after_step", interrupt_at_step_4)
    with pytest.raises(Interrupted, match="interrupted at step 4; checkpoint written"):
        train(tiny_config("gan"), tmp_path / "part", data=tiny_data())
    monkeypatch.setattr(GAN, "after_step", original)
    header = load_checkpoint(tmp_path / "part/checkpoints/last.safetensors").header
    assert (header["epoch"], header["step_in_epoch"], header["step"]) == (0, 4, 4)
    train(tiny_config("gan"), tmp_path / "part", data=tiny_data(), resume=True)
    assert read_losses(tmp_path / "part") == read_losses(full.run_dir)


def test_resume_after_a_kill_logs_each_step_once(tmp_path):
    """A killed run (SIGKILL: no final checkpoint) has logged steps past its last checkpoint; resuming redoes them,
    so their rows must be dropped first, in losses.csv and in the in-training metrics."""
    import shutil

    extra = ("train.eval_every=1", "train.eval_samples=50", "data.image_size=28")
    full = train(tiny_config("vae", "train.epochs=3", *extra), tmp_path / "full", data=tiny_data(size=28))
    run = tmp_path / "part"
    train(tiny_config("vae", "train.epochs=1", *extra), run, data=tiny_data(size=28))
    shutil.copy(run / "checkpoints/last.safetensors", tmp_path / "epoch1.safetensors")
    train(tiny_config("vae", "train.epochs=2", *extra), run, data=tiny_data(size=28), resume=True)
    # the kill: rows of epoch 2 are on disk, the checkpoint is still epoch 1's
    shutil.copy(tmp_path / "epoch1.safetensors", run / "checkpoints/last.safetensors")
    train(tiny_config("vae", "train.epochs=3", *extra), run, data=tiny_data(size=28), resume=True)
    assert read_losses(run) == read_losses(full.run_dir)
    steps = [r["step"] for r in csv.DictReader(open(run / "metrics_during_training.csv"))]
    assert steps == [r["step"] for r in csv.DictReader(open(full.run_dir / "metrics_during_training.csv"))]
    assert len(steps) == len(set(steps)) == 3


def test_checkpoint_by_wall_clock_mid_epoch(tmp_path, monkeypatch):
    from ganvae.storage import checkpoint as ckpt_io

    saved = []
    real = ckpt_io.save_checkpoint
    monkeypatch.setattr(ckpt_io, "save_checkpoint", lambda *a, **k: saved.append(dict(k["counters"])) or real(*a, **k))
    cfg = tiny_config("vae", "train.epochs=2", "train.checkpoint_every=5", "train.checkpoint_minutes=1e-6")
    train(cfg, tmp_path / "often", data=tiny_data())
    assert [c for c in saved if c["step_in_epoch"] > 0], "no checkpoint inside an epoch"
    saved.clear()
    train(tiny_config("vae", "train.epochs=2", "train.checkpoint_every=5", "train.checkpoint_minutes=0"),
          tmp_path / "epochs-only", data=tiny_data())
    # only the final one, written again with the fitted prior (same position)
    assert [(c["epoch"], c["step_in_epoch"]) for c in saved] == [(2, 0), (2, 0)]


def test_nan_stops_with_step_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = GAN.training_step

    def nan_at_step_8(self, x, optimizers, ctx):
        losses = original(self, x, optimizers, ctx)
        if ctx.step == 8:
            losses["g_loss"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(GAN, "training_step", nan_at_step_8)
    with pytest.raises(TrainingDiverged, match=r"g_loss became nan at step 8 \(epoch 2\).*last good checkpoint "
                                               r".*last\.safetensors \(kept\)"):
        train(tiny_config("gan", "train.epochs=3"), tmp_path / "run", data=tiny_data())
    header = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors").header
    assert header["epoch"] == 1 and header["step"] == 6  # the epoch-1 checkpoint, before the NaN


def test_refuses_checkpoint_of_another_model(tmp_path):
    train(tiny_config("gan", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    with pytest.raises(CheckpointError, match="checkpoint of model 'gan', not 'vae'"):
        train(tiny_config("vae"), tmp_path / "run", data=tiny_data(), resume=True)


def test_refuses_other_format_version(tmp_path):
    cfg = tiny_config("vae")
    model = __import__("ganvae.registry", fromlist=["build_model"]).build_model(cfg, (1, 16, 16))
    path = save_checkpoint(tmp_path / "c.safetensors", model, "vae", cfg.to_dict(), extra_header={"format_version": 99})
    with pytest.raises(CheckpointError, match="checkpoint format version 99"):
        load_checkpoint(path)


def test_refuses_pickle_and_garbage(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="damaged or not a safetensors file"):
        load_checkpoint(tmp_path / "pickled.pt")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a ganvae checkpoint"):
        load_checkpoint(tmp_path / "plain.safetensors")


def test_refuses_resume_on_other_data(tmp_path):
    train(tiny_config("vae", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    with pytest.raises(CheckpointError, match="trained on other data"):
        train(tiny_config("vae", "train.epochs=2"), tmp_path / "run", data=tiny_data(seed=5), resume=True)


def test_refuses_to_overwrite_a_run(tmp_path):
    train(tiny_config("vae", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    with pytest.raises(GanvaeError, match="already holds a trained run; add --resume"):
        Trainer(tiny_config("vae"), tmp_path / "run", data=tiny_data())


def test_time_budget_stops_early(tmp_path):
    result = train(tiny_config("vae", "train.epochs=1000", "train.max_minutes=0.002"), tmp_path / "run",
                   data=tiny_data())
    assert result.stopped_by == "time" and result.epoch < 1000
    assert (tmp_path / "run/checkpoints/last.safetensors").is_file()


def test_a_step_budget_stops_at_that_step_and_resumes_to_a_larger_one_exactly(tmp_path):
    """train.max_steps counts every session's steps (Lightning's max_steps): the same run on any machine."""
    full = train(tiny_config("gan", "train.epochs=3"), tmp_path / "full", data=tiny_data())  # 6 steps an epoch
    part = train(tiny_config("gan", "train.epochs=3", "train.max_steps=8"), tmp_path / "part", data=tiny_data())
    assert (part.step, part.stopped_by) == (8, "steps")
    assert json.loads((tmp_path / "part/summary.json").read_text())["stopped_by"] == "steps"
    assert (tmp_path / "part/samples/epoch_0002.png").is_file()  # the partial epoch's grid
    again = train(tiny_config("gan", "train.epochs=3", "train.max_steps=8"), tmp_path / "part", data=tiny_data(),
                  resume=True)
    assert (again.step, again.stopped_by) == (8, "steps")  # nothing left of this budget
    done = train(tiny_config("gan", "train.epochs=3", "train.max_steps=100"), tmp_path / "part", data=tiny_data(),
                 resume=True)
    assert (done.step, done.stopped_by) == (18, "epochs")
    assert read_losses(tmp_path / "part") == read_losses(full.run_dir)


def test_checkpoint_write_is_atomic_on_failure(tmp_path, monkeypatch):
    """A failing write (e.g. a full disk) leaves the previous checkpoint intact and no temp file."""
    import errno

    from ganvae.storage import checkpoint as ck

    result = train(tiny_config("vae", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    before = result.checkpoint.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    model = __import__("ganvae.registry", fromlist=["build_model"]).build_model(tiny_config("vae"), (1, 16, 16))
    with pytest.raises(GanvaeError, match="is full, so the file could not be written; the previous version .* is kept"):
        ck.save_checkpoint(result.checkpoint, model, "vae", tiny_config("vae").to_dict())
    assert result.checkpoint.read_bytes() == before
    assert [p.name for p in result.checkpoint.parent.iterdir()] == ["last.safetensors"]


def test_in_training_metrics_do_not_change_the_run(tmp_path):
    """Evaluating every epoch (FID, coverage, NLL bound) leaves the losses of the run as they were."""
    plain = train(tiny_config("vae", "data.image_size=28"), tmp_path / "plain", data=tiny_data(size=28))
    evaluated = train(tiny_config("vae", "data.image_size=28", "train.eval_every=1", "train.eval_samples=50"),
                      tmp_path / "eval", data=tiny_data(size=28))
    assert read_losses(plain.run_dir) == read_losses(evaluated.run_dir)
    rows = (tmp_path / "eval" / "metrics_during_training.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[-2:] == ["test_nll_iwae10", "dropped_classes"] and len(rows) == 3
    assert float(rows[-1].split(",")[header.index("test_nll_iwae10")]) > 0


def test_bf16_autocast_option(tmp_path):
    from ganvae.training.trainer import bf16_autocast

    try:
        bf16_autocast(torch.device("cpu"))
    except GanvaeError as err:
        assert "no native bf16" in str(err)
        pytest.skip("this CPU has no native bf16")
    result = train(tiny_config("dcgan", "train.precision=bf16", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    assert all(map(lambda v: v == v, result.last_losses.values()))  # finite, not NaN


def test_eval_interval_by_time(tmp_path):
    """A time-based cadence, checked at every logging interval (so also inside epochs): with a 0-minute
    interval every check qualifies; with a huge one, none."""
    import csv

    every = train(tiny_config("vae", "data.image_size=28", "train.epochs=3", "train.eval_interval_minutes=1e-9",
                              "train.eval_samples=20", "train.log_every=3"), tmp_path / "a", data=tiny_data(size=28))
    never = train(tiny_config("vae", "data.image_size=28", "train.epochs=3", "train.eval_interval_minutes=1000"),
                  tmp_path / "b", data=tiny_data(size=28))
    with open(every.run_dir / "metrics_during_training.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # 6 steps per epoch, a check every 3: half-way through each epoch, and at its end
    assert [float(r["epoch"]) for r in rows] == [0.5, 1, 1.5, 2, 2.5, 3]
    assert [int(r["step"]) for r in rows] == [3, 6, 9, 12, 15, 18]
    assert not (never.run_dir / "metrics_during_training.csv").exists()


def test_sample_every_and_invalid_cadence(tmp_path):
    result = train(tiny_config("vae", "train.epochs=5", "train.sample_every=2"), tmp_path / "run", data=tiny_data())
    assert sorted(p.name for p in (result.run_dir / "samples").iterdir()) == [
        "epoch_0002.png", "epoch_0004.png", "epoch_0005.png", "learned_prior.png"]  # every 2nd epoch, and the last
    cfg = tiny_config("vae")
    cfg.train.checkpoint_every = 0  # set in Python: the trainer validates too, before creating anything
    with pytest.raises(GanvaeError, match="train.checkpoint_every is 0; it must be at least 1"):
        train(cfg, tmp_path / "bad", data=tiny_data())
    assert not (tmp_path / "bad").exists()


def test_training_state_is_saved_and_restored_whole(tmp_path):
    from ganvae.training.state import TrainingState

    train(tiny_config("gan", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    ck = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors")
    state = TrainingState.from_checkpoint(ck)
    assert state.counters() == {k: ck.header[k] for k in state.counters()}
    assert (state.step, state.epoch, state.step_in_epoch, state.images_seen) == (6, 1, 0, 48)
    assert torch.equal(state.fixed_noise, ck.tensors["fixed_noise"]) and state.fixed_noise.shape[0] == 16
    torch.manual_seed(123)  # another stream: restoring must bring back the saved one
    state.restore_rng()
    after_restore = torch.rand(5)
    torch.set_rng_state(ck.tensors["rng.torch"])
    assert torch.equal(after_restore, torch.rand(5))
    moved = state.at(3, 2, 9.5)
    assert moved.counters() == {**state.counters(), "epoch": 3, "step_in_epoch": 2, "elapsed_seconds": 9.5}
    assert state.epoch == 1  # `at` is a copy


def test_a_checkpoint_without_training_state_is_refused_by_name(tmp_path):
    from ganvae.training.state import TrainingState

    train(tiny_config("gan", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    ck = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors")
    del ck.tensors["fixed_noise"]
    with pytest.raises(CheckpointError, match=r"last\.safetensors: not a training checkpoint \(no fixed_noise"):
        TrainingState.from_checkpoint(ck)
