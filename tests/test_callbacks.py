"""Training callbacks (ganvae.Callback): which hooks run when, that they leave the run unchanged, and that a stop
they request ends at an exact, resumable position."""

import csv
import json

import pytest
from conftest import tiny_config, tiny_data, train

import ganvae
from ganvae.training.callbacks import BestCheckpoint, Callback, CallbackList, EarlyStopping
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

    def on_mid_epoch(self, trainer, epoch):
        self.calls.append(("mid", trainer.state.step, epoch))

    def on_metrics(self, trainer, metrics):
        self.calls.append(("metrics", int(metrics["step"]), metrics["classifier_fd"]))

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
    assert rec.of("mid") == [(4, 4 / 6), (10, 1 + 4 / 6)]  # the logs inside an epoch
    assert rec.of("checkpoint") == [(6,), (12,)]  # train.checkpoint_every=1 in the tiny config


def test_the_trainers_own_outputs_are_callbacks_before_the_users(tmp_path):
    """Grid, then quality point, then checkpoint at an epoch's end; summary.json before the trackers and yours."""
    from ganvae.training.callbacks.builtin import CollapseCheck, LatentPriorFit, RunSummary, SpeedCheck
    from ganvae.training.callbacks.outputs import LossLog, PeriodicCheckpoint, QualityPoints, SampleGrids

    mine = Callback()
    trainer = Trainer(tiny_config("gan"), tmp_path / "run", data=tiny_data(), callbacks=[mine])
    assert [type(cb) for cb in trainer.callbacks.callbacks] == [
        LossLog, SampleGrids, QualityPoints, PeriodicCheckpoint, RunSummary, LatentPriorFit, SpeedCheck, CollapseCheck,
        Callback]


def test_a_fresh_run_in_a_folder_a_killed_run_left_starts_a_fresh_record(tmp_path):
    """A run killed before its first checkpoint leaves losses.csv and quality points; the same command again (no
    checkpoint, so not a resume) must not append to them."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "losses.csv").write_text("step,epoch,d_loss,g_loss\n0,1,9,9\n1,1,9,9\n")
    (run / "metrics_during_training.csv").write_text("epoch,step,train_seconds,fid\n0.5,3,1.0,99\n")
    train(tiny_config("gan"), run, data=tiny_data())
    rows = read_losses(run)
    assert [int(r[0]) for r in rows[1:]] == list(range(12)) and "9" not in [r[2] for r in rows[1:]]
    assert not (run / "metrics_during_training.csv").exists()  # this run measured no quality point


def test_on_metrics_receives_each_quality_point(tmp_path):
    rec = Recorder()
    train(tiny_config("vae", "data.image_size=28", "train.eval_every=1", "train.eval_samples=50"), tmp_path / "run",
          data=tiny_data(size=28), callbacks=[rec])
    with open(tmp_path / "run/metrics_during_training.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rec.of("metrics") == [(int(r["step"]), float(r["classifier_fd"])) for r in rows] and len(rows) == 2


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
    train(tiny_config("gan", "train.epochs=3"), tmp_path / "part", data=tiny_data(), resume=True)
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
        es.on_metrics(t, {"classifier_fd": fid})
    assert es.best == 40.0 and "classifier_fd has not improved on 40 for 2 quality points" in t.reason
    with pytest.raises(ValueError, match="patience=0"):
        EarlyStopping(patience=0)


def test_early_stopping_ends_a_real_run_and_says_why(tmp_path):
    es = EarlyStopping(patience=1, min_delta=1e9)  # no point can improve by 1e9: stop after the second
    result = train(tiny_config("vae", "data.image_size=28", "train.epochs=5", "train.eval_every=1",
                               "train.eval_samples=50"), tmp_path / "run", data=tiny_data(size=28), callbacks=[es])
    assert result.stopped_by == "callback" and result.epoch == 2
    assert "classifier_fd has not improved" in result.stop_reason


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


# ----------------------------------------------------------------------------- state across a restart, best checkpoint

QUALITY = ("vae", "data.image_size=28", "train.epochs=6", "train.eval_every=1", "train.eval_samples=50")


class StopAtEpoch(Callback):
    """Interrupts a run (as a kill would, but at a known position) after ``epoch`` epochs."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch):
        if epoch == self.epoch:
            trainer.request_stop("interrupted for the test")


def fids(run_dir):
    with open(run_dir / "metrics_during_training.csv", newline="") as fh:
        return [float(r["classifier_fd"]) for r in csv.DictReader(fh)]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_resumes_exactly_as_the_uninterrupted_run(tmp_path, mode):
    """EarlyStopping's best score and patience count are saved in each checkpoint: a run interrupted after two
    quality points and resumed with a fresh EarlyStopping stops at the same step, for the same reason, as the
    uninterrupted run (a fresh one that forgot them would wait ``patience`` points more)."""
    watch = {"monitor": "classifier_fd", "mode": mode, "patience": 2,
             "min_delta": 1e9}  # no point improves on the first
    full = train(tiny_config(*QUALITY), tmp_path / "full", data=tiny_data(size=28), callbacks=[EarlyStopping(**watch)])
    assert full.stopped_by == "callback" and full.step == 3 * 6  # the first point, then two without improvement
    part = train(tiny_config(*QUALITY), tmp_path / "part", data=tiny_data(size=28),
                 callbacks=[EarlyStopping(**watch), StopAtEpoch(2)])
    assert part.epoch == 2 and part.stop_reason == "interrupted for the test"
    header = ganvae.storage.checkpoint.load_checkpoint(tmp_path / "part/checkpoints/last.safetensors").header
    saved = header["callbacks"]["EarlyStopping"]
    assert saved["monitor"] == "classifier_fd" and saved["mode"] == mode and saved["best"] is not None
    resumed = train(tiny_config(*QUALITY), tmp_path / "part", data=tiny_data(size=28), resume=True,
                    callbacks=[EarlyStopping(**watch)])
    assert (resumed.step, resumed.stop_reason) == (full.step, full.stop_reason)
    assert fids(tmp_path / "part") == fids(full.run_dir)


def test_early_stopping_in_max_mode_waits_for_higher_values():
    class FakeTrainer:
        reason = None

        def request_stop(self, reason):
            self.reason = reason

    t, es = FakeTrainer(), EarlyStopping(patience=1, monitor="class_entropy", mode="max")
    for value in (0.5, 0.7):  # rising: an improvement each time
        es.on_metrics(t, {"class_entropy": value})
    assert t.reason is None and es.best == 0.7
    es.on_metrics(t, {"class_entropy": 0.6})
    assert "class_entropy has not improved on 0.7" in t.reason
    with pytest.raises(ValueError, match="mode='up'"):
        EarlyStopping(mode="up")


def test_a_monitor_of_a_metric_the_points_lack_warns_and_does_not_stop(caplog):
    class FakeTrainer:
        reason = None

        def request_stop(self, reason):
            self.reason = reason

    t, es = FakeTrainer(), EarlyStopping(patience=1, monitor="nonexistent")
    for _ in range(3):
        es.on_metrics(t, {"classifier_fd": 10.0})
    assert t.reason is None and "no finite 'nonexistent'" in caplog.text


def test_best_checkpoint_keeps_the_best_position_and_resumes_it(tmp_path):
    """BestCheckpoint writes RUN/checkpoints/best.safetensors at each new best (a resumable checkpoint of that step),
    keeps its best score across a restart, and a resumed run only replaces it with a better one."""
    from ganvae.storage.checkpoint import load_checkpoint

    cfg = ("vae", "data.image_size=28", "train.epochs=4", "train.eval_every=1", "train.eval_samples=50")
    train(tiny_config(*cfg), tmp_path / "run", data=tiny_data(size=28), callbacks=[BestCheckpoint(), StopAtEpoch(2)])
    best = load_checkpoint(tmp_path / "run/checkpoints/best.safetensors").header
    scores = fids(tmp_path / "run")
    assert best["step"] == 6 * (1 + scores.index(min(scores)))  # 6 steps an epoch; a point at each epoch's end
    train(tiny_config(*cfg), tmp_path / "run", data=tiny_data(size=28), resume=True, callbacks=[BestCheckpoint()])
    scores = fids(tmp_path / "run")
    best = load_checkpoint(tmp_path / "run/checkpoints/best.safetensors").header
    assert len(scores) == 4 and best["step"] == 6 * (1 + scores.index(min(scores)))
    assert best["callbacks"]["BestCheckpoint"]["best"] == pytest.approx(min(scores), abs=1e-3)
    assert ganvae.load(tmp_path / "run/checkpoints/best.safetensors").sample(2, seed=0).tensor.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="last.safetensors"):
        BestCheckpoint(filename="last.safetensors")


def test_the_quality_points_clock_is_saved_and_restored(tmp_path):
    from ganvae.storage.checkpoint import load_checkpoint

    train(tiny_config("vae", "data.image_size=28", "train.epochs=2", "train.eval_every=1", "train.eval_samples=50"),
          tmp_path / "run", data=tiny_data(size=28))
    header = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors").header
    clock = header["callbacks"]["quality_points"]["last_elapsed"]
    assert clock > 0 and clock == pytest.approx(
        float(list(csv.DictReader(open(tmp_path / "run/metrics_during_training.csv")))[-1]["train_seconds"]), abs=0.01)


def test_a_stop_asked_before_the_first_step_trains_none(tmp_path):
    class StopAtOnce(Callback):
        def on_train_start(self, trainer):
            trainer.request_stop("not today")

    result = train(tiny_config("gan"), tmp_path / "run", data=tiny_data(), callbacks=[StopAtOnce()])
    assert (result.stopped_by, result.step, result.stop_reason) == ("callback", 0, "not today")


def test_resume_has_one_way_in(tmp_path):
    with pytest.raises(TypeError, match="resume_checkpoint"):
        Trainer(tiny_config("gan"), tmp_path / "run", data=tiny_data(), resume=True)
