"""Hostile trackers (issue 39, round three, items 10-12): a store MLflow cannot open is refused before the run folder
is made; a tracking server that is down, or lost mid-run, costs seconds and never the training (tracking is switched
off, and summary.json says so); a deleted MLflow run or experiment starts a new one. Real local MLflow stores (one
SQLite store for the module: making one costs MLflow's migrations, about 10 s here) and a real closed port on
127.0.0.1; each test runs under a deadline, so a tracker that would wait for minutes fails it in seconds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, offline_wandb_env, tiny_config, tiny_data, tiny_flags, train

from ganvae.errors import FieldConfigError
from ganvae.training.tracking import HTTP_LIMITS, MLflowLogger

mlflow = pytest.importorskip("mlflow", reason="pip install -e '.[test]' installs MLflow for this test")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


class Overtime(BaseException):
    """The deadline passed (a BaseException, so that no `except Exception` on the way swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail the block if it runs longer than ``seconds`` (SIGALRM; the main thread)."""
    def ring(signum, frame):
        raise Overtime(f"still running after {seconds} s")

    before = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


@pytest.fixture(autouse=True)
def mlflow_defaults(monkeypatch):
    """MLflow's own HTTP settings (none set here), and no store from the environment."""
    for name in (*HTTP_LIMITS, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module, made once (its artifacts under the same folder: MLflow keeps the store, and
    the artifact root it resolved, per URI); each test logs to an experiment of its own."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def hook_seconds(monkeypatch):
    """The seconds spent in the MLflow tracker's hooks (what tracking costs the training), summed."""
    spent = [0.0]
    for hook in ("on_train_start", "on_log", "on_metrics", "on_epoch_end", "on_train_end"):
        original = getattr(MLflowLogger, hook)

        def timed(self, *args, _original=original):
            start = time.monotonic()
            try:
                return _original(self, *args)
            finally:
                spent[0] += time.monotonic() - start

        monkeypatch.setattr(MLflowLogger, hook, timed)
    return spent


def warnings_of(run_dir: Path) -> list[str]:
    return json.loads((run_dir / "summary.json").read_text()).get("warnings", [])


# ----------------------------------------------------------------------------- item 10: a store MLflow cannot open


def wrong_stores(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder")
    return {"sqlite": f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'mlflow.db'}",  # its folder cannot be made
            "scheme": "bogus://x/y", "folder": "file:./mlruns"}  # the last: MLflow 3 refuses a folder store


@pytest.mark.parametrize("kind", ["sqlite", "scheme", "folder"])
def test_a_store_mlflow_cannot_open_is_refused_before_the_run_folder(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    uri = wrong_stores(tmp_path)[kind]
    with deadline(150), pytest.raises(FieldConfigError) as caught:
        train(tiny_config("gan", "run.log_to=mlflow", f"run.mlflow_uri={uri}"), tmp_path / "run", data=tiny_data())
    err = caught.value
    assert err.field == "run.mlflow_uri" and err.value == uri
    text = str(err)  # Python's words: the keyword to change, and a store that opens
    assert "\n" not in text and text.startswith(f"run__mlflow_uri={uri!r}: MLflow cannot open this store (")
    assert "run__mlflow_uri='sqlite:///mlflow.db'" in text
    if kind == "folder":
        assert "MLFLOW_ALLOW_FILE_STORE=true" in text
    if kind == "scheme":
        assert "no store for the scheme bogus://" in text
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert not (tmp_path / "mlruns").exists()


def test_the_command_line_says_it_in_one_line_with_the_flag(tmp_path, idx_dir, monkeypatch, capsys):
    from ganvae.cli import main

    monkeypatch.chdir(tmp_path)
    uri = wrong_stores(tmp_path)["sqlite"]
    argv = ["-q", "train", "gan", "--dataset", "mnist", "--data-dir", str(idx_dir), "--out", str(tmp_path / "run"),
            "--epochs", "1", *tiny_flags("gan"), "--set", "run.log_to=mlflow"]
    with deadline(150):
        assert main([*argv, "--set", f"run.mlflow_uri={uri}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()  # no traceback
    assert line.startswith(f"error: --set run.mlflow_uri={uri}: MLflow cannot open this store ([Errno 20] Not a "
                           f"directory") and "--set run.mlflow_uri=sqlite:///mlflow.db" in line
    # the store named by the environment: the message names the variable
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://x/y")
    with deadline(150):
        assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: MLFLOW_TRACKING_URI=bogus://x/y: MLflow cannot open this store")
    assert "Change or unset MLFLOW_TRACKING_URI" in line
    assert not (tmp_path / "run").exists()


def test_a_logger_made_in_python_names_its_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FieldConfigError, match=r"^tracking_uri='bogus://x/y': MLflow cannot open") as caught:
        MLflowLogger(tracking_uri="bogus://x/y")
    assert caught.value.field == "tracking_uri"
    assert "file:" not in MLflowLogger.__doc__.split("tracking_uri:")[1].split("None:")[0]  # it suggests none


# ----------------------------------------------------------------------------- item 11: a server down or lost


def test_a_server_that_is_down_costs_seconds_and_the_run_trains(tmp_path, idx_dir, monkeypatch, hook_seconds):
    from ganvae.cli import main

    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with deadline(150):  # MLflow's own retries: 4 min 16 s before the first step
        assert main(["-q", "train", "gan", "--dataset", "mnist", "--data-dir", str(idx_dir), "--out",
                     str(tmp_path / "run"), "--epochs", "1", *tiny_flags("gan"), "--set", "run.log_to=mlflow"]) == 0
    assert hook_seconds[0] < 20, hook_seconds  # about 3 s: two retries, then off
    (warned,) = [w for w in warnings_of(tmp_path / "run") if w.startswith("MLflow tracking is off")]
    assert "starting the MLflow run failed at step 0 (ConnectionRefusedError" in warned
    assert f"The store is {uri}; no MLflow run was made" in warned and "MLFLOW_TRACKING_URI" in warned
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["stopped_by"] == "epochs" and summary["epochs_completed"] == 1  # the whole epoch trained
    assert (tmp_path / "run/checkpoints/last.safetensors").is_file()
    assert not (tmp_path / "run/mlflow_run.json").exists()
    assert not any(name in os.environ for name in HTTP_LIMITS)  # MLflow's settings are ours only for our calls


def test_a_server_lost_mid_run_costs_seconds_and_training_finishes(tmp_path, monkeypatch, store, hook_seconds):
    """The store answers the first four batches (the params, then three steps' losses); then it is gone: every later
    batch goes to a closed port, through MLflow's real HTTP client and its retries."""
    monkeypatch.chdir(tmp_path)
    lost = MlflowClient(f"http://127.0.0.1:{free_port()}")
    real = MlflowClient.log_batch
    calls = []

    def log_batch(self, *args, **kwargs):
        calls.append(args)
        return real(self if len(calls) <= 4 else lost, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    cfg = tiny_config("gan", "run.log_to=mlflow", f"run.mlflow_uri={store}", "run.mlflow_experiment=lost")
    with deadline(150):  # MLflow's own retries: 4 minutes past the budget, then a traceback
        result = train(cfg, tmp_path / "run", data=tiny_data())
    assert result.step == 12 and result.stopped_by == "epochs" and result.checkpoint.is_file()
    assert hook_seconds[0] < 20, hook_seconds
    assert len(calls) == 5  # one failed batch, then nothing more was sent
    (warned,) = [w for w in warnings_of(tmp_path / "run") if w.startswith("MLflow tracking is off")]
    run_id = json.loads((tmp_path / "run/mlflow_run.json").read_text())["run_id"]
    assert "logging the losses failed at step 4 (ConnectionRefusedError" in warned
    assert f"its MLflow run {run_id} stops here" in warned
    client = MlflowClient(store)
    assert [m.step for m in client.get_metric_history(run_id, "loss/d_loss")] == [0, 1, 2]
    assert client.get_run(run_id).info.status == "RUNNING"  # what MLflow knows: the run never said it ended


def test_a_store_that_fails_at_the_end_is_said_in_summary_json(tmp_path, monkeypatch, store):
    """summary.json is written before the trackers' last hook: a failure there is added to it."""
    monkeypatch.chdir(tmp_path)
    real = MlflowClient.log_artifact

    def log_artifact(self, run_id, local_path, *args, **kwargs):
        if Path(local_path).parent.name != "samples":  # the grids go up; the run's files at the end do not
            raise MlflowException("the artifact store is full")
        return real(self, run_id, local_path, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_artifact", log_artifact)
    cfg = tiny_config("gan", "run.log_to=mlflow", f"run.mlflow_uri={store}", "run.mlflow_experiment=full")
    with deadline(150):
        result = train(cfg, tmp_path / "run", data=tiny_data())
    assert result.checkpoint.is_file()
    (warned,) = [w for w in warnings_of(tmp_path / "run") if w.startswith("MLflow tracking is off")]
    assert "sending the run's files failed at step 12 (MlflowException: the artifact store is full)" in warned


def test_evaluate_against_a_server_that_is_down_costs_seconds(tmp_path, caplog):
    from ganvae.inference.tasks import _log_final_metrics

    (tmp_path / "mlflow_run.json").write_text(json.dumps({"run_id": "0" * 32,
                                                          "tracking_uri": f"http://127.0.0.1:{free_port()}"}))
    start = time.monotonic()
    with deadline(150), caplog.at_level(logging.WARNING, logger="ganvae.inference.tasks"):
        _log_final_metrics(tmp_path, {"metrics": {"classifier_fd": 1.0}, "training": {"steps": 3}})
    assert time.monotonic() - start < 20  # MLflow's own retries: over 4 minutes
    assert "final metrics were not logged to the run's MLflow run" in caplog.text
    assert not any(name in os.environ for name in HTTP_LIMITS)


# ----------------------------------------------------------------------------- item 12: deleted runs, experiments


def test_a_resumed_run_whose_mlflow_run_was_deleted_starts_a_new_one(tmp_path, monkeypatch, store, caplog):
    monkeypatch.chdir(tmp_path)
    sets = ("run.log_to=mlflow", f"run.mlflow_uri={store}", "run.mlflow_experiment=deleted-run")
    train(tiny_config("gan", "train.epochs=1", *sets), tmp_path / "run", data=tiny_data())
    client = MlflowClient(store)
    old = json.loads((tmp_path / "run/mlflow_run.json").read_text())["run_id"]
    client.delete_run(old)  # the UI's Delete
    with deadline(150), caplog.at_level(logging.WARNING, logger="ganvae.training.tracking"):
        result = train(tiny_config("gan", "train.epochs=2", *sets), tmp_path / "run", data=tiny_data(), resume=True)
    assert result.step == 12
    new = json.loads((tmp_path / "run/mlflow_run.json").read_text())["run_id"]
    assert new != old and f"the MLflow run {old} of {tmp_path / 'run'} was deleted" in caplog.text
    run = client.get_run(new)
    assert run.info.status == "FINISHED" and run.data.tags["ganvae.resumed_at_step"] == "6"
    assert [m.step for m in client.get_metric_history(new, "loss/d_loss")] == list(range(6, 12))
    assert client.get_run(old).info.lifecycle_stage == "deleted"  # the user's Delete stands
    assert not [w for w in warnings_of(tmp_path / "run") if "MLflow" in w]  # nothing was lost


def test_a_deleted_experiment_sends_new_runs_to_a_fresh_one(tmp_path, monkeypatch, store, caplog):
    monkeypatch.chdir(tmp_path)
    sets = ("train.epochs=1", "run.log_to=mlflow", f"run.mlflow_uri={store}", "run.mlflow_experiment=gone")
    train(tiny_config("gan", *sets), tmp_path / "first", data=tiny_data())
    client = MlflowClient(store)
    gone = client.get_experiment_by_name("gone")
    client.delete_experiment(gone.experiment_id)
    with deadline(150), caplog.at_level(logging.WARNING, logger="ganvae.training.tracking"):
        train(tiny_config("gan", *sets), tmp_path / "second", data=tiny_data())
        train(tiny_config("gan", *sets), tmp_path / "third", data=tiny_data())
        # the first run, resumed: its MLflow run went with the experiment, so it gets a new one there too
        train(tiny_config("gan", *sets[1:], "train.epochs=2"), tmp_path / "first", data=tiny_data(), resume=True)
    fresh = client.get_experiment_by_name("gone-2")
    for name in ("second", "third", "first"):
        record = json.loads((tmp_path / name / "mlflow_run.json").read_text())
        assert record["experiment_id"] == fresh.experiment_id, name
        assert client.get_run(record["run_id"]).info.status == "FINISHED"
    assert client.get_experiment(gone.experiment_id).lifecycle_stage == "deleted"  # not restored behind the user
    said = [r.getMessage() for r in caplog.records if "is deleted; this run goes into 'gone-2'" in r.getMessage()]
    assert len(said) == 3 and f"restore_experiment({gone.experiment_id!r})" in said[0]


# ----------------------------------------------------------------------------- the same for W&B


@pytest.fixture
def quiet_wandb(tmp_path, monkeypatch):
    """W&B quiet, its settings, cache and staging in the test's folder (as tests/test_tracking_wandb.py)."""
    wandb = pytest.importorskip("wandb", reason="pip install -e '.[test]' installs W&B for this test")
    offline_wandb_env(tmp_path, monkeypatch)
    return wandb


def test_wandb_failing_mid_run_is_switched_off_and_training_finishes(tmp_path, monkeypatch, quiet_wandb):
    from wandb.sdk.wandb_run import Run

    real, runs = Run.log, []

    def log(self, *args, **kwargs):
        runs.append(self)
        if len(runs) > 3:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Run, "log", log)
    with deadline(150):
        result = train(tiny_config("gan", "run.log_to=wandb"), tmp_path / "run", data=tiny_data())
    assert result.step == 12 and result.checkpoint.is_file() and len(runs) == 4
    (warned,) = [w for w in warnings_of(tmp_path / "run") if w.startswith("W&B tracking is off")]
    assert "logging the losses failed at step 4 (OSError: [Errno 28] No space left on device)" in warned
    assert f"Its W&B run {runs[0].id} stops here" in warned
    runs[0].finish()


def test_wandb_that_cannot_reach_its_server_costs_seconds_and_the_run_trains(tmp_path, monkeypatch, quiet_wandb):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "2")  # the user's own bound (ganvae's: 20 s; W&B's: over 2 minutes)
    start = time.monotonic()
    with deadline(150):
        result = train(tiny_config("gan", "run.log_to=wandb", "run.wandb_mode=online"), tmp_path / "run",
                       data=tiny_data())
    assert time.monotonic() - start < 60  # W&B's own wait: 134 s measured
    assert result.step == 12 and result.checkpoint.is_file()
    (warned,) = [w for w in warnings_of(tmp_path / "run") if w.startswith("W&B tracking is off")]
    assert "starting the W&B run failed at step 0" in warned and "No W&B run was made" in warned
    assert not (tmp_path / "run/wandb_run.json").exists()


if sys.platform == "win32":  # SIGALRM
    pytestmark = pytest.mark.skip(reason="the deadlines use SIGALRM")
