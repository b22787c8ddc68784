"""`ganvae evaluate RUN` adds its final metrics to the MLflow run the training logged to (a real local store, read
back with MLflow's client), and a tracker it cannot reach is a warning, never a failed evaluation."""

import json
import logging
import sys

import pytest
from conftest import free_port, tiny_config, tiny_data, train

from ganvae.inference.tasks import _log_final_metrics, evaluate

mlflow = pytest.importorskip("mlflow", reason="pip install -e '.[test]' installs MLflow for this test")
from mlflow.tracking import MlflowClient  # noqa: E402


def test_evaluate_logs_the_final_metrics_to_the_runs_mlflow_run(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # the artifacts' default root (./mlruns) stays in the test's folder
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny_config("vae", "data.image_size=28", "train.epochs=1", "run.log_to=mlflow", f"run.mlflow_uri={store}")
    train(cfg, tmp_path / "run", data=tiny_data(size=28))
    monkeypatch.chdir(tmp_path / "run")  # evaluated from elsewhere: the run folder says where its MLflow run is
    result = evaluate(tmp_path / "run", n_samples=50, iwae_k=1, dataset="mnist-5k")
    client = MlflowClient(store)
    run_id = json.loads((tmp_path / "run/mlflow_run.json").read_text())["run_id"]
    for key in ("classifier_fd", "precision_k5", "test_elbo"):
        (point,) = client.get_metric_history(run_id, f"final/{key}")
        assert point.value == pytest.approx(result["metrics"][key]) and point.step == 6  # the training's last step
    assert "final/timings" not in client.get_run(run_id).data.metrics  # numbers only

    # a store that cannot be reached, a tracker that is not installed: warnings, and the evaluation stands
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    kept = json.loads((tmp_path / "run/mlflow_run.json").read_text())
    (tmp_path / "run/mlflow_run.json").write_text(json.dumps({**kept, "tracking_uri": f"http://127.0.0.1:{free_port()}"}))
    (tmp_path / "run/wandb_run.json").write_text(json.dumps({"id": "abc123", "project": "ganvae", "mode": "offline"}))
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if W&B were not installed
    with caplog.at_level(logging.WARNING, logger="ganvae.inference.tasks"):
        _log_final_metrics(tmp_path / "run", result, tmp_path / "run/metrics.json")  # evaluate's last step
    warned = [r.getMessage() for r in caplog.records if "final metrics were not logged" in r.getMessage()]
    assert len(warned) == 2 and "MLflow run" in warned[0] and "W&B run" in warned[1]
    assert "pip install 'ganvae[wandb]'" in warned[1] and str(tmp_path / "run/metrics.json") in warned[1]
    assert len(client.get_metric_history(run_id, "final/classifier_fd")) == 1  # nothing more reached the store


def test_a_missing_store_is_not_made_anew(tmp_path, caplog):
    (tmp_path / "mlflow_run.json").write_text(json.dumps({"run_id": "0" * 32, "tracking_uri":
                                                          f"sqlite:///{tmp_path / 'gone.db'}"}))
    with caplog.at_level(logging.WARNING, logger="ganvae.inference.tasks"):
        _log_final_metrics(tmp_path, {"metrics": {"classifier_fd": 1.0}, "training": {"steps": 3}})
    assert "is not there" in caplog.text and not (tmp_path / "gone.db").exists()
