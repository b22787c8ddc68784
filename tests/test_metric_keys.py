"""Names that travel honestly (issue 38, item 6): a metric's key says which features it uses and where its
settings differ from its paper's, because the key is all that reaches a spreadsheet, an MLflow chart or a paper;
runs, cards and callbacks written with the old keys keep working."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from types import SimpleNamespace

import pytest
from conftest import tiny_config, tiny_data, train

from ganvae.errors import ConfigError
from ganvae.metrics import registry
from ganvae.metrics.registry import LEGACY_KEYS, current_key, get_metric, register_metric, upgrade_keys
from ganvae.training.callbacks import BestCheckpoint, Callback, EarlyStopping

# names that promise Inception-v3 features (pytorch-fid, torch-fidelity, the papers) or the papers' k = 3
PAPER_NAMES = {"fid", "kid", "inception_score", "is", "intra_fid", "precision", "recall"}


def test_no_key_claims_inception_features_or_the_papers_k():
    keys = {m.key for m in registry.all_metrics()}
    assert not keys & PAPER_NAMES
    # every number computed on the feature classifier says so in its key
    on_features = {m.key for m in registry.all_metrics()
                   if m.computed_by.endswith((":frechet_distance", ":kernel_inception_distance", ":inception_score",
                                              ":intra_class_fid"))}
    assert on_features == {"classifier_fd", "classifier_kd", "classifier_score", "classifier_intra_fd",
                           "rotation_fd", "rotation_kd", "fid_inception", "kid_inception"}
    # and only the keys on Inception-v3 name it (the papers' numbers, with pytorch-fid's weights)
    assert {k for k in on_features if "inception" in k} == {"fid_inception", "kid_inception"}
    assert all("Inception-v3, pytorch-fid weights" in get_metric(k).label for k in ("fid_inception", "kid_inception"))
    # precision and recall differ from Kynkaanniemi et al.'s k = 3; density and coverage use Naeem et al.'s k = 5
    assert {registry.PRECISION.key, registry.RECALL.key} == {"precision_k5", "recall_k5"}
    assert (registry.DENSITY.key, registry.COVERAGE.key) == ("density", "coverage")


def test_legacy_keys_are_read_as_their_new_names():
    assert [current_key(k) for k in ("fid", "fid_std", "kid", "intra_fid_per_class", "recall_std", "density")] == \
        ["classifier_fd", "classifier_fd_std", "classifier_kd", "classifier_intra_fd_per_class", "recall_k5_std",
         "density"]
    old = {"fid": 12.0, "fid_std": 0.5, "precision": 0.9, "coverage": 0.8, "dropped_classes": []}
    assert upgrade_keys(old) == {"classifier_fd": 12.0, "classifier_fd_std": 0.5, "precision_k5": 0.9,
                                 "coverage": 0.8, "dropped_classes": []}
    assert upgrade_keys({"fid": 1.0, "classifier_fd": 2.0}) == {"classifier_fd": 2.0}  # the new name wins
    with pytest.raises(ConfigError, match="'fid' is now called 'classifier_fd'"):
        get_metric("fid")
    with pytest.raises(ConfigError, match="old name of 'classifier_kd'"):
        register_metric(key="kid", label="mine", direction="lower", group="samples", computed_by="m:f")
    assert set(LEGACY_KEYS.values()) <= {m.key for m in registry.all_metrics()}


def test_the_report_reads_an_older_runs_metrics_json(tmp_path):
    from ganvae.inference.report import _load_or_evaluate

    prior = "N(0, I)"
    (tmp_path / "metrics.json").write_text(json.dumps({
        "protocol": {"n_samples": 10, "sample_seed": 0, "prior": prior},
        "metrics": {"fid": 30.0, "fid_std": 1.0, "kid": 4.0, "precision": 0.9, "recall": 0.6, "class_entropy": 0.99}}))
    loaded = SimpleNamespace(model=SimpleNamespace(latent_prior=SimpleNamespace(describe=lambda: prior)))
    result = _load_or_evaluate(tmp_path, loaded, 10, 0, None)  # the cached result: nothing is evaluated
    assert result["metrics"] == {"classifier_fd": 30.0, "classifier_fd_std": 1.0, "classifier_kd": 4.0,
                                 "precision_k5": 0.9, "recall_k5": 0.6, "class_entropy": 0.99}


def test_a_card_written_with_the_old_keys_loads_with_the_new(tmp_path):
    from ganvae.storage import zoo
    from ganvae.storage.pretrained_folder import read_config

    folder = tmp_path / "old-vae"
    shutil.copytree(zoo.zoo_dir() / "mnist-vae", folder)
    meta = json.loads((folder / "config.json").read_text())
    new = meta["metrics"]
    meta["metrics"] = {next((old for old, now in LEGACY_KEYS.items() if now == k), k): v for k, v in new.items()}
    assert "fid" in meta["metrics"]  # written as an older ganvae wrote it
    (folder / "config.json").write_text(json.dumps(meta))
    assert read_config(folder)["metrics"] == upgrade_keys(meta["metrics"])
    assert read_config(folder)["metrics"]["classifier_fd"] == new["classifier_fd"]


class StopAtEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch):
        if epoch >= self.epoch:
            trainer.request_stop("interrupted for the test")


def test_a_run_of_an_older_version_resumes_under_the_new_names(tmp_path):
    """A run whose ``metrics_during_training.csv`` says ``fid``, resumed with ``BestCheckpoint(monitor="fid")``:
    the monitor watches ``classifier_fd`` (with a FutureWarning), the CSV's header takes the new names and the
    resumed rows sit under it."""
    cfg = ("vae", "data.image_size=28", "train.epochs=3", "train.eval_every=1", "train.eval_samples=50")
    run = tmp_path / "run"
    train(tiny_config(*cfg), run, data=tiny_data(size=28), callbacks=[StopAtEpoch(2)])
    path = run / "metrics_during_training.csv"
    header, *rows = list(csv.reader(path.open(newline="")))
    path.write_text(",".join("fid" if h == "classifier_fd" else h for h in header) + "\n"
                    + "".join(",".join(r) + "\n" for r in rows))
    with pytest.warns(FutureWarning, match="now called 'classifier_fd'"):
        best = BestCheckpoint(monitor="fid")
    assert best.monitor == "classifier_fd"
    train(tiny_config(*cfg), run, data=tiny_data(size=28), resume=True, callbacks=[best])
    columns = list(csv.DictReader(path.open(newline="")))
    assert "fid" not in columns[0] and len(columns) == 3
    assert all(float(r["classifier_fd"]) > 0 for r in columns)
    # it watched the new column: its only point (the first run had no BestCheckpoint) is the resumed epoch's
    assert best.best == pytest.approx(float(columns[-1]["classifier_fd"]), abs=1e-3)
    # a checkpoint that saved the monitor's state under the old name continues it
    es = EarlyStopping(patience=2)
    es.load_state_dict({"monitor": "fid", "mode": "min", "best": 5.0, "best_step": 12, "waited": 1})
    assert (es.best, es.waited) == (5.0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EarlyStopping(monitor="classifier_fd")  # the current name: no warning
