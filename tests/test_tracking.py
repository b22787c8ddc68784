"""Experiment tracking: a real local MLflow store (SQLite + artifacts on disk), read back with MLflow's own client."""

import csv
import json
import sys

import pytest
from conftest import tiny_config, tiny_data, tiny_flags, train

from ganvae.config import RunConfig
from ganvae.errors import ConfigError
from ganvae.training.tracking import TRACKERS, MLflowLogger, tracker_callbacks

mlflow = pytest.importorskip("mlflow", reason="pip install -e '.[test]' installs MLflow for this test")
from mlflow.tracking import MlflowClient  # noqa: E402


def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def only_run(client, experiment="ganvae"):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def test_log_to_names_exactly_the_trackers(tmp_path, monkeypatch):
    import typing

    monkeypatch.chdir(tmp_path)  # the logger opens its store when made (MLflow's default: ./mlflow.db), not here

    from ganvae.config import RunConfig as RC

    one, several, _null = typing.get_args(typing.get_type_hints(RC)["log_to"])
    assert set(typing.get_args(one)) == {"none", *TRACKERS}
    assert tracker_callbacks(RunConfig()) == []
    assert isinstance(tracker_callbacks(RunConfig(log_to="mlflow"))[0], MLflowLogger)


def test_a_run_logged_to_mlflow_reads_back_with_its_client(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the artifacts' default root (./mlruns) stays in the test's folder
    cfg = tiny_config("vae", "data.image_size=28", "train.log_every=4", "train.eval_every=1", "train.eval_samples=50",
                      "run.log_to=mlflow", f"run.mlflow_uri={store(tmp_path)}", "run.mlflow_experiment=tests")
    result = train(cfg, tmp_path / "run", data=tiny_data(size=28))
    client = MlflowClient(store(tmp_path))
    run = only_run(client, "tests")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert json.loads((tmp_path / "run/mlflow_run.json").read_text())["run_id"] == run.info.run_id
    # params: the whole config, flattened
    assert run.data.params["model_name"] == "vae" and run.data.params["train.log_every"] == "4"
    assert run.data.params["data.image_size"] == "28" and "model.latent_dim" in run.data.params
    # per-step losses, at the training steps the loss log has
    with open(tmp_path / "run/losses.csv", newline="") as fh:
        logged = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(fh)}
    history = client.get_metric_history(run.info.run_id, "loss/loss")
    assert [m.step for m in history] == [3, 5, 9, 11]  # every 4 steps and at each epoch's end (0-based)
    assert all(m.value == pytest.approx(logged[m.step], rel=1e-5) for m in history)
    # the quality points, as metrics_during_training.csv has them
    with open(tmp_path / "run/metrics_during_training.csv", newline="") as fh:
        points = [(int(r["step"]), float(r["classifier_fd"])) for r in csv.DictReader(fh)]
    fid = client.get_metric_history(run.info.run_id, "quality/classifier_fd")
    assert [(m.step, round(m.value, 3)) for m in fid] == [(s, round(v, 3)) for s, v in points] and len(points) == 2
    # artifacts: every grid, the final checkpoint and the run's files
    grids = sorted(f.path for f in client.list_artifacts(run.info.run_id, "samples"))
    assert grids == ["samples/epoch_0001.png", "samples/epoch_0002.png"]
    ckpts = [f for f in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert [f.path for f in ckpts] == [f"checkpoints/{result.checkpoint.name}"]
    assert ckpts[0].file_size == result.checkpoint.stat().st_size
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json", "losses.png", "progress.gif"} <= top


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = ("run.log_to=mlflow", f"run.mlflow_uri={store(tmp_path)}")
    train(tiny_config("gan", *sets), tmp_path / "run", data=tiny_data())
    train(tiny_config("gan", "train.epochs=3", *sets), tmp_path / "run", data=tiny_data(), resume=True)
    client = MlflowClient(store(tmp_path))
    run = only_run(client)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss/d_loss")]
    assert steps == list(range(18)) and run.info.status == "FINISHED"  # tiny configs log every step
    assert run.data.tags["ganvae.resumed_at_step"] == "12"


def test_the_command_line_turns_it_on(tmp_path, idx_dir, monkeypatch):
    from ganvae.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["-q", "train", "gan", "--dataset", "mnist", "--data-dir", str(idx_dir), "--out", str(tmp_path / "run"),
                 "--epochs", "1", *tiny_flags("gan"), "--set", "run.log_to=mlflow",
                 "--set", f"run.mlflow_uri={store(tmp_path)}"]) == 0
    run = only_run(MlflowClient(store(tmp_path)))
    assert run.data.params["model_name"] == "gan" and run.data.tags["ganvae.model"] == "gan"
    assert (tmp_path / "mlruns").is_dir()  # the artifacts went to the local default root, beside the store


def test_an_unknown_tracker_is_a_config_error():
    with pytest.raises(ConfigError, match="log_to"):
        tiny_config("gan", "run.log_to=neptune")


def test_without_mlflow_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'ganvae\[mlflow\]'"):
        train(tiny_config("gan", "run.log_to=mlflow"), tmp_path / "run", data=tiny_data())
    assert not (tmp_path / "run").exists()  # refused before anything was written
