"""Experiment tracking with Weights & Biases, in W&B's offline mode (nothing goes over the network): what a run
logged is read back from the offline run's own record, the ``run-ID.wandb`` file W&B later uploads with
``wandb sync``."""

import csv
import hashlib
import json
import struct
import sys
import time
import typing
import zlib
from pathlib import Path

import pytest
from conftest import offline_wandb_env, tiny_config, tiny_data, train

from ganvae.config import RunConfig
from ganvae.errors import ConfigError
from ganvae.training.tracking import TRACKERS, WandbLogger, tracker_callbacks

wandb = pytest.importorskip("wandb", reason="pip install -e '.[test]' installs W&B for this test")
from wandb.proto import wandb_internal_pb2  # noqa: E402


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    """W&B offline and quiet, its settings, cache and artifact staging in the test's folder."""
    offline_wandb_env(tmp_path, monkeypatch)


# ----------------------------------------------------------------------------- reading an offline run

BLOCK = 32768  # the .wandb file is a LevelDB log: 32 KiB blocks of records, each with a 7-byte header


def records(path: Path):
    """The protocol buffers (``wandb_internal_pb2.Record``) of a ``.wandb`` file, in order. The format is LevelDB's
    log (a 7-byte file header ``:W&B``, magic 0xBEE1, version 0; then records of crc32 (of type + data), length,
    type FULL/FIRST/MIDDLE/LAST and data, never crossing a 32 KiB block), as W&B's former Python reader
    (``wandb.sdk.internal.datastore``) read it."""
    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7]) == (b":W&B", 0xBEE1, 0), path
    pos, pieces = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zeros: the end of what was written
            break
        chunk = data[pos + 7:pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"{path}: damaged record at {pos}"
        pos += 7 + length
        pieces += chunk
        if kind in (1, 4):  # FULL, or the LAST piece of a long record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def finished_records(path: Path, wait_s: float = 30.0) -> list:
    """The records of a finished session's file: W&B's service may still be flushing it for a moment after
    ``run.finish()`` returns (the file can hold only its header then), so read until the exit record is there."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = list(records(path))
            if found and found[-1].WhichOneof("record_type") == "exit":
                return found
        except AssertionError:  # a record half written
            pass
        assert time.monotonic() < deadline, f"{path}: no exit record after {wait_s} s"
        time.sleep(0.05)


def _put(tree: dict, item) -> None:
    """One history/summary/config item into a nested dict: ``nested_key`` is a path (``samples`` > ``path``)."""
    keys = [item.key] if item.key else list(item.nested_key)
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = json.loads(item.value_json)


def offline_run(folder: Path) -> dict:
    """What one offline W&B session logged: its run record, config, history rows, summary, files, artifacts and
    exit code, from ``folder/run-ID.wandb``."""
    (path,) = folder.glob("run-*.wandb")
    out: dict = {"config": {}, "history": [], "summary": {}, "files": [], "artifacts": [], "exit_code": None}
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            for item in record.run.config.update:
                _put(out["config"], item)
        elif kind == "history":
            row: dict = {}
            for item in record.history.item:
                _put(row, item)
            out["history"].append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(out["summary"], item)
        elif kind == "files":
            out["files"] += [f.path for f in record.files.files]
        elif kind == "artifact":
            out["artifacts"].append(record.artifact)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def sessions(run_dir: Path) -> list[dict]:
    """Every offline W&B session of a ganvae run (one per training session), oldest first."""
    return [offline_run(f) for f in sorted((run_dir / "wandb").glob("offline-run-*"))]


def series(session: dict, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a logged metric, in the order logged."""
    return [(row["step"], row[key]) for row in session["history"] if key in row]


# ----------------------------------------------------------------------------- tests


def test_log_to_names_the_trackers_one_or_several():
    one, several, _null = typing.get_args(typing.get_type_hints(RunConfig)["log_to"])
    assert set(typing.get_args(one)) == {"none", *TRACKERS} and set(typing.get_args(several)) == {
        typing.Literal[tuple(TRACKERS)]}
    assert tiny_config("gan", "run.log_to=mlflow,wandb").run.log_to == ["mlflow", "wandb"]
    assert [type(t) for t in tracker_callbacks(RunConfig(log_to="wandb"))] == [WandbLogger]
    assert [type(t) for t in tracker_callbacks(RunConfig(log_to=["wandb", "wandb"]))] == [WandbLogger]
    assert tracker_callbacks(RunConfig(log_to=None)) == tracker_callbacks(RunConfig(log_to=[])) == []
    with pytest.raises(ConfigError, match="log_to"):
        tiny_config("gan", "run.log_to=neptune")
    with pytest.raises(ConfigError, match="wandb_mode"):
        tiny_config("gan", "run.wandb_mode=shared")


def test_both_trackers_at_once():
    pytest.importorskip("mlflow")
    from ganvae.training.tracking import MLflowLogger

    cfg = tiny_config("gan", "run.log_to=wandb,mlflow")
    assert [type(t) for t in tracker_callbacks(cfg.run)] == [WandbLogger, MLflowLogger]  # in the order named


def test_a_run_logged_to_wandb_reads_back_from_its_offline_files(tmp_path):
    cfg = tiny_config("vae", "data.image_size=28", "train.log_every=4", "train.eval_every=1", "train.eval_samples=50",
                      "run.log_to=wandb", "run.wandb_project=tests", "run.wandb_mode=offline")
    result = train(cfg, tmp_path / "run", data=tiny_data(size=28))
    (session,) = sessions(tmp_path / "run")  # W&B's local files went to the run folder
    kept = json.loads((tmp_path / "run/wandb_run.json").read_text())
    assert kept["id"] == session["run"].run_id and kept["mode"] == "offline" and kept["project"] == "tests"
    assert session["run"].display_name == "run" and session["run"].project == "tests"
    assert list(session["run"].tags) == ["vae"] and session["exit_code"] == 0
    # config: the whole config, by section
    assert session["config"]["model_name"] == "vae" and session["config"]["train"]["log_every"] == 4
    assert session["config"]["data"]["image_size"] == 28 and "latent_dim" in session["config"]["model"]
    # losses at the training steps the loss log has (every 4 steps and at each epoch's end, 0-based)
    with open(tmp_path / "run/losses.csv", newline="") as fh:
        logged = {int(r["step"]): float(r["loss"]) for r in csv.DictReader(fh)}
    losses = series(session, "loss/loss")
    assert [s for s, _ in losses] == [3, 5, 9, 11]
    assert all(v == pytest.approx(logged[s], rel=1e-5) for s, v in losses)
    assert [s for s, _ in series(session, "images_per_second")] == [3, 5, 9, 11]
    # the quality points, as metrics_during_training.csv has them
    with open(tmp_path / "run/metrics_during_training.csv", newline="") as fh:
        points = [(int(r["step"]), float(r["classifier_fd"])) for r in csv.DictReader(fh)]
    fid = series(session, "quality/classifier_fd")
    assert [(s, round(v, 3)) for s, v in fid] == [(s, round(v, 3)) for s, v in points] and len(points) == 2
    # each grid as an image, the very file the run folder has
    grids = [(row["step"], row["samples"]) for row in session["history"] if "samples" in row]
    assert [(s, g["caption"], g["_type"]) for s, g in grids] == [(6, "epoch 1", "image-file"),
                                                                  (12, "epoch 2", "image-file")]
    for (_, grid), name in zip(grids, ["epoch_0001.png", "epoch_0002.png"]):
        assert grid["sha256"] == hashlib.sha256((tmp_path / "run/samples" / name).read_bytes()).hexdigest()
        assert grid["path"] in session["files"]
    # at the end: the run's files, the checkpoint as a model artifact, the summary
    assert {"config.yaml", "summary.json", "losses.png", "progress.gif"} <= set(session["files"])
    (artifact,) = session["artifacts"]
    assert (artifact.name, artifact.type) == (f"model-{kept['id']}", "model")
    assert [(c.path, c.size) for c in artifact.manifest.contents] == [(result.checkpoint.name,
                                                                      result.checkpoint.stat().st_size)]
    assert session["summary"]["ganvae/stopped_by"] == "epochs" and session["summary"]["ganvae/steps"] == 12

    # `ganvae evaluate RUN` adds its final metrics to the same W&B run
    from ganvae.inference.tasks import evaluate

    metrics = evaluate(tmp_path / "run", n_samples=50, iwae_k=1, dataset="mnist-5k")["metrics"]
    first, again = sessions(tmp_path / "run")
    assert again["run"].run_id == first["run"].run_id and again["exit_code"] == 0
    assert again["summary"]["final/classifier_fd"] == pytest.approx(metrics["classifier_fd"])
    assert again["summary"]["final/test_elbo"] == pytest.approx(metrics["test_elbo"])


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path):
    sets = ("run.log_to=wandb",)
    train(tiny_config("gan", *sets), tmp_path / "run", data=tiny_data())
    train(tiny_config("gan", "train.epochs=3", *sets), tmp_path / "run", data=tiny_data(), resume=True)
    first, resumed = sessions(tmp_path / "run")
    assert first["run"].run_id == resumed["run"].run_id == json.loads((tmp_path / "run/wandb_run.json")
                                                                       .read_text())["id"]
    assert [s for s, _ in series(first, "loss/d_loss")] == list(range(12))  # tiny configs log every step
    assert [s for s, _ in series(resumed, "loss/d_loss")] == list(range(12, 18))
    assert resumed["summary"]["ganvae/resumed_at_step"] == 12 and resumed["summary"]["ganvae/epochs"] == 3
    assert resumed["config"] == {} or resumed["config"].keys() == {"_wandb"}  # the config went with the first


def test_without_wandb_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'ganvae\[wandb\]'"):
        train(tiny_config("gan", "run.log_to=wandb"), tmp_path / "run", data=tiny_data())
    assert not (tmp_path / "run").exists()  # refused before anything was written
