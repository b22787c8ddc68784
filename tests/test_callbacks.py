"""Training callbacks (ganvae.Callback): which hooks run when, that they leave the run unchanged, and that a stop
they request ends at an exact, resumable position."""

import csv
import json

import pytest
from conftest import tiny_config, tiny_data

import ganvae
from ganvae.training.callbacks import Callback, CallbackList, EarlyStopping
from conftest import train
from ganvae.training.trainer import Trainer


def read_losses(run_dir):
    with open(run_dir / "losses.csv", newline="") as fh:
        return list(csv.reader(fh))


class Recorder(Callback):
    """Writes down every hook call: (hook, what the trainer said at that moment)."""

    def __init__(self):
        self.calls = []

    def on_train_start(self, trainer):
        self.calls.append(("start", trainer.state.step))

    def on_step_end(self, trainer, losses):
        self.calls.append(("step", trainer.state.step, sorted(losses)))

    def on_log(self, trainer, losses, images_per_second):
        assert all(isinstance(v, float) for v in losses.values()) and images_per_second > 0
        self.calls.append(("log", trainer.state.step))

    def on_metrics(self, trainer, metrics):
        self.calls.append(("metrics", int(metrics["step"]), metrics["fid"]))

    def on_epoch_end(self, trainer, epoch):
        self.calls.append(("epoch", epoch, trainer.state.step))

    def on_checkpoint(self, trainer, path):
        assert path.is_file()
        self.calls.append(("checkpoint", trainer.state.step))

    def on_train_end(self, trainer, result):
        self.calls.append(("end", result.step, result.stopped_by))

    def of(self, hook):
        return [c[1:] for c in self.calls if c[0] == hook]


def test_hooks_run_when_documented_and_leave_the_run_unchanged(tmp_path):
    plain = train(tiny_config("gan"), tmp_path / "plain", data=tiny_data())
    rec = Recorder()
    train(tiny_config("gan", "train.log_every=4"), tmp_path / "hooked", data=tiny_data(), callbacks=[rec])
    assert read_losses(tmp_path / "hooked") == read_losses(plain.run_dir)  # hooks do not touch the run's randomness
    assert rec.calls[0] == ("start", 0) and rec.calls[-1] == ("end", 12, "epochs")
    assert rec.of("step") == [(s, ["d_loss", "g_loss"]) for s in range(1, 13)]  # 2 epochs of 6 steps
    assert rec.of("epoch") == [(1, 6), (2, 12)]
    assert rec.of("log") == [(4,), (6,), (10,), (12,)]  # every 4 steps and at each epoch's end
    assert rec.of("checkpoint") == [(6,), (12,)]  # train.checkpoint_every=1 in the tiny config


def test_on_metrics_receives_each_quality_point(tmp_path):
    rec = Recorder()
    train(tiny_config("vae", "data.image_size=28", "train.eval_every=1", "train.eval_samples=50"), tmp_path / "run",
          data=tiny_data(size=28), callbacks=[rec])
    with open(tmp_path / "run/metrics_during_training.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rec.of("metrics") == [(int(r["step"]), float(r["fid"])) for r in rows] and len(rows) == 2


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, losses):
        if trainer.state.step == self.step:
            trainer.request_stop(f"asked at step {self.step}")


def test_a_requested_stop_checkpoints_the_exact_position_and_resumes_bit_for_bit(tmp_path):
    full = train(tiny_config("gan", "train.epochs=3"), tmp_path / "full", data=tiny_data())
    part = train(tiny_config("gan", "train.epochs=3"), tmp_path / "part", data=tiny_data(), callbacks=[StopAt(8)])
    assert (part.stopped_by, part.step, part.stop_reason) == ("callback", 8, "asked at step 8")
    summary = json.loads((tmp_path / "part/summary.json").read_text())
    assert summary["stopped_by"] == "callback" and summary["stop_reason"] == "asked at step 8"
    Trainer(tiny_config("gan", "train.epochs=3"), tmp_path / "part", data=tiny_data(), resume=True).fit()
    assert read_losses(tmp_path / "part") == read_losses(full.run_dir)


def test_a_stop_asked_at_an_epoch_end_stops_there(tmp_path):
    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, epoch):
            trainer.request_stop("one epoch is enough")

    result = train(tiny_config("gan", "train.epochs=3"), tmp_path / "run", data=tiny_data(),
                   callbacks=[StopAfterFirstEpoch()])
    assert (result.stopped_by, result.step, result.epoch) == ("callback", 6, 1)


def test_early_stopping_waits_patience_points_without_improvement():
    class FakeTrainer:
        reason = None

        def request_stop(self, reason):
            self.reason = reason

    t, es = FakeTrainer(), EarlyStopping(patience=2, min_delta=1.0)
    for fid in (50.0, 40.0, 39.5, 45.0):  # 39.5 improves by less than min_delta: the first point without
        assert t.reason is None
        es.on_metrics(t, {"fid": fid})
    assert es.best == 40.0 and "fid has not improved on 40 for 2 quality points" in t.reason
    with pytest.raises(ValueError, match="patience=0"):
        EarlyStopping(patience=0)


def test_early_stopping_ends_a_real_run_and_says_why(tmp_path):
    es = EarlyStopping(patience=1, min_delta=1e9)  # no point can improve by 1e9: stop after the second
    result = train(tiny_config("vae", "data.image_size=28", "train.epochs=5", "train.eval_every=1",
                               "train.eval_samples=50"), tmp_path / "run", data=tiny_data(size=28), callbacks=[es])
    assert result.stopped_by == "callback" and result.epoch == 2 and "fid has not improved" in result.stop_reason


def test_an_object_with_no_hook_is_refused():
    with pytest.raises(TypeError, match="has none of the hooks"):
        CallbackList([object()])


def test_ganvae_train_takes_callbacks(tmp_path):
    rec = Recorder()
    data = tiny_data()
    ganvae.train("gan", out=tmp_path / "run", data=data, callbacks=[rec], epochs=1, batch_size=8, progress=False,
                 data__image_size=16, model__latent_dim=8, model__generator_hidden=[32],
                 model__discriminator_hidden=[32], run__tensorboard=False)
    assert rec.of("epoch") == [(1, 6)] and ganvae.Callback is Callback
