"""One place per metric (issue 37, item 5): every number ``ganvae evaluate`` writes is a registered metric (or one of
a registered metric's companions, such as its ``_std``), every entry says how to show and rank it, and a key is
registered once."""

from __future__ import annotations

import importlib
import numbers

import pytest

from ganvae.errors import ConfigError
from ganvae.metrics import registry
from ganvae.metrics.registry import DIRECTIONS, GROUPS, Metric, get_metric, register_metric, unregister_metric

# figures that go with a metric under its key plus a suffix: noise estimates and the intra-FID's class size
COMPANIONS = ("std", "min_images")


def _numbers(metrics: dict) -> set[str]:
    """The keys of the plain numbers in an evaluation's ``metrics`` (not the dicts, lists and protocols)."""
    return {k for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


@pytest.fixture(scope="module")
def evaluation():
    """``evaluate`` of a tiny conditional VAE: the sample, conditional and likelihood groups all run."""
    import torch
    from conftest import tiny_config

    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.metrics.classifier import load_classifier
    from ganvae.metrics.evaluate import evaluate
    from ganvae.registry import build_model

    torch.manual_seed(0)
    cfg = tiny_config("vae", "data.image_size=28", "model.conditional=true")
    model = build_model(cfg, (1, 28, 28))
    data = load_dataset(DataConfig(dataset="mnist-5k"))
    return evaluate(model, data, load_classifier("mnist-5k"), n_samples=200, iwae_k=2)["metrics"]


def test_every_number_evaluate_writes_is_a_registered_metric(evaluation):
    keys = {m.key for m in registry.all_metrics()}
    companions = {m.companion(c) for m in registry.all_metrics() for c in COMPANIONS}
    unregistered = _numbers(evaluation) - keys - companions
    assert not unregistered, f"metrics without a registry entry (add them to ganvae.metrics.registry): {unregistered}"
    # and the other way: each metric evaluate is said to measure is there (no stale entry). The groups of other
    # features (a rotation predictor for data without classes; Inception-v3 given its weights) need other inputs:
    # tests/test_feature_networks.py and tests/test_inception_path.py check theirs
    ran = ("samples", "conditional", "likelihood")
    assert {m.key for m in registry.evaluated_metrics() if m.group in ran} <= set(evaluation)
    assert {m.key for m in registry.all_metrics("training")}.isdisjoint(evaluation)


def test_every_entry_has_a_label_a_direction_and_a_computation():
    entries = registry.all_metrics()
    assert entries and len({m.key for m in entries}) == len(entries)
    for m in entries:
        assert isinstance(m, Metric) and registry.KEY_RULE.fullmatch(m.key), m
        assert isinstance(m.label, str) and m.label.strip(), f"{m.key}: no label"
        assert m.direction in DIRECTIONS, f"{m.key}: direction {m.direction!r}"
        assert m.group in GROUPS, f"{m.key}: group {m.group!r}"
        module, _, name = m.computed_by.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), f"{m.key}: {m.computed_by} is not there"
    for step in GROUPS.values():  # each group's step exists too
        module, _, name = step.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), step


def test_the_report_rows_keep_their_order_and_labels():
    """The report's rows, in order (a change here is a change users see)."""
    rows = [(m.key, m.label, m.direction) for m in registry.evaluated_metrics()]
    assert rows[:3] == [("classifier_fd", "Frechet distance (classifier features)", "lower"),
                        ("classifier_kd", "kernel distance (classifier features at RMS 1, KID's kernel, x1000)",
                         "lower"),
                        ("precision_k5", "precision (k=5)", "higher")]
    assert [k for k, _, _ in rows] == ["classifier_fd", "classifier_kd", "precision_k5", "recall_k5", "density",
                                       "coverage", "classifier_score", "class_entropy", "confident_share",
                                       "sharpness", "memorisation_ratio", "test_elbo", "test_nll_iwae",
                                       "reconstruction_error", "conditional_accuracy", "classifier_intra_fd",
                                       "rotation_fd", "rotation_kd", "fid_inception", "kid_inception"]


def test_badness_reads_the_direction():
    assert registry.badness("classifier_fd", 3.0) == 3.0  # lower is better
    assert registry.badness("recall_k5", 0.7) == -0.7  # higher is better
    assert registry.badness("sharpness", 0.8) == pytest.approx(0.2) == registry.badness("sharpness", 1.2)


def test_a_duplicate_key_is_refused():
    with pytest.raises(ConfigError, match="'classifier_fd' is already registered"):
        register_metric(key="classifier_fd", label="another FID", direction="lower", group="samples",
                        computed_by="ganvae.metrics.core:frechet_distance")
    extra = Metric("fid_test_only", "a test metric", "higher", "samples", "ganvae.metrics.core:frechet_distance")
    try:
        assert register_metric(extra) is extra and get_metric("fid_test_only") is extra
        assert registry.evaluated_metrics()[-1] is extra  # a new row at the end of the report
        with pytest.raises(ConfigError, match="already registered"):
            register_metric(Metric("fid_test_only", "the same key", "lower", "samples", "m:f"))
    finally:
        unregister_metric("fid_test_only")
    with pytest.raises(ConfigError, match="unknown metric 'fid_test_only'"):
        get_metric("fid_test_only")
    with pytest.raises(ConfigError, match="built-in"):
        unregister_metric("classifier_fd")


@pytest.mark.parametrize("fields, message", [
    ({"label": " "}, "needs a label"),
    ({"direction": "up"}, "direction='up'"),
    ({"group": "sample"}, "Did you mean 'samples'"),
    ({"key": "Bad Key"}, "lower-case"),
    ({"computed_by": "frechet_distance"}, "module:function"),
])
def test_an_entry_without_a_label_or_direction_is_refused(fields, message):
    entry = {"key": "new_metric", "label": "new", "direction": "lower", "group": "samples",
             "computed_by": "ganvae.metrics.core:frechet_distance", **fields}
    with pytest.raises(ConfigError, match=message):
        register_metric(**entry)
    assert "new_metric" not in {m.key for m in registry.all_metrics()}
    with pytest.raises(ConfigError, match="give key, label"):
        register_metric(key="new_metric", label="new")  # direction, group and computed_by missing
