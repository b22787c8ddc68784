"""One place per metric (after StyleGAN2-ADA's ``metrics/metric_main.py:register_metric``).

A :class:`Metric` holds everything that is said about one metric: its key (the name in ``metrics.json``,
``summary.json``, ``metrics_during_training.csv``, MLflow's ``quality/KEY`` and TensorBoard's ``metrics/KEY``), the
label of its row in the report and in ``ganvae evaluate``'s table, which way is better, and which computation
produces it. Evaluation (:mod:`ganvae.metrics.evaluate`), the report (:mod:`ganvae.inference.report`), the in-training
metrics (:mod:`ganvae.metrics.during_training`) and through them the trackers read a metric from here, by its
entry (``FID.key``) or by its key (:func:`get_metric`); renaming a metric is a change to its entry's ``key``.

The numbers are computed elsewhere: several metrics come from one computation (precision, recall, density and
coverage share their nearest-neighbour balls), so an entry names the function that computes it
(``computed_by``) and the step of evaluation that calls that function (``group``), which also says which models
have the metric. The table is built on first use, in the order of the report's rows; importing this module
imports no torch and registers nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from ganvae.errors import ConfigError, suggest

Direction = Literal["lower", "higher", "closer to 1"]
# "closer to 1": a ratio to real data, where below 1 means copying or blur and above it off the data or speckle
DIRECTIONS: tuple[str, ...] = ("lower", "higher", "closer to 1")

# the steps that compute the metrics, and so which models have them
GROUPS: dict[str, str] = {
    "samples": "ganvae.metrics.evaluate:sample_metrics",  # every model, and a folder of another program's images
    "conditional": "ganvae.metrics.evaluate:conditional_metrics",  # conditional models (asked for a class)
    "likelihood": "ganvae.metrics.evaluate:likelihood_metrics",  # models with an encoder
    # data without classes (a folder without class sub-folders): the sample metrics on a rotation predictor's features
    "unlabelled": "ganvae.metrics.evaluate:sample_metrics",
    # evaluations given the user's Inception-v3 weights file (pytorch-fid's): the papers' FID and KID
    "inception": "ganvae.metrics.inception:inception_metrics",
    "training": "ganvae.metrics.during_training:TrainingMetrics",  # measured while training only, not by evaluate
}

KEY_RULE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # a key is a JSON field, a CSV column and a tracker's metric name


@dataclass(frozen=True)
class Metric:
    key: str  # its name in metrics.json, summary.json, the in-training CSV, MLflow (quality/KEY), TensorBoard
    label: str  # its row in the report (HTML and Markdown) and in `ganvae evaluate`'s table
    direction: Direction  # which way is better: "lower", "higher" or "closer to 1"
    group: str  # the step that computes it (a key of GROUPS), and so which models have it
    computed_by: str  # "module:function" that computes the number (several metrics may share one)

    def companion(self, what: str) -> str:
        """The key of a figure that goes with it: ``companion("per_class")`` -> ``classifier_intra_fd_per_class``."""
        return f"{self.key}_{what}"

    @property
    def std_key(self) -> str:
        """The key of its noise estimate (``classifier_fd_std``), where one is measured."""
        return self.companion("std")

    @property
    def evaluated(self) -> bool:
        """Whether ``ganvae evaluate`` measures it (and so the report's table may show it)."""
        return self.group != "training"

    def badness(self, value: float) -> float:
        """``value`` on a scale where lower is better, whatever its direction."""
        if self.direction == "closer to 1":
            return abs(value - 1.0)
        return -value if self.direction == "higher" else value


def _sample(key: str, label: str, direction: Direction, computed_by: str) -> Metric:
    return Metric(key, label, direction, "samples", f"ganvae.metrics.core:{computed_by}")


# the built-in metrics, in the order of the report's rows. A key says what a spreadsheet or a paper needs to know:
# the distances and the score are computed on ganvae's classifier of the dataset (classifier_*), on a rotation
# predictor for data without classes (rotation_*), or on Inception-v3 only where the key says so (*_inception); no
# bare "fid", "kid" or "inception_score", names that promise Inception features; precision and recall use k = 5
# nearest neighbours where Kynkaanniemi et al. (2019) use 3 (density and coverage use Naeem et al.'s 5).
FID = _sample("classifier_fd", "Frechet distance (classifier features)", "lower", "frechet_distance")
KID = _sample("classifier_kd", "kernel distance (classifier features at RMS 1, KID's kernel, x1000)", "lower",
              "kernel_inception_distance")
PRECISION = _sample("precision_k5", "precision (k=5)", "higher", "precision_recall_density_coverage")
RECALL = _sample("recall_k5", "recall (k=5)", "higher", "precision_recall_density_coverage")
DENSITY = _sample("density", "density (k=5)", "higher", "precision_recall_density_coverage")
COVERAGE = _sample("coverage", "coverage (k=5)", "higher", "precision_recall_density_coverage")
INCEPTION_SCORE = _sample("classifier_score", "classifier score (Inception Score's formula)", "higher",
                          "inception_score")
CLASS_ENTROPY = _sample("class_entropy", "class balance (normalised entropy)", "higher", "class_coverage")
CONFIDENT_SHARE = _sample("confident_share", "confident predictions", "higher", "class_coverage")
SHARPNESS = _sample("sharpness", "edge sharpness (samples / real)", "closer to 1", "sharpness_ratio")
MEMORISATION_RATIO = _sample("memorisation_ratio", "sample/test distance to train (median ratio)", "closer to 1",
                             "memorisation")
TEST_ELBO = Metric("test_elbo", "test ELBO (nats)", "higher", "likelihood",
                   "ganvae.metrics.evaluate:likelihood_metrics")
TEST_NLL_IWAE = Metric("test_nll_iwae", "test NLL, IWAE bound (nats)", "lower", "likelihood",
                       "ganvae.metrics.evaluate:likelihood_metrics")
RECONSTRUCTION_ERROR = Metric("reconstruction_error", "reconstruction error (nats or MSE)", "lower", "likelihood",
                              "ganvae.metrics.evaluate:likelihood_metrics")
CONDITIONAL_ACCURACY = Metric("conditional_accuracy", "conditional accuracy (asked class drawn)", "higher",
                              "conditional", "ganvae.metrics.core:conditional_accuracy")
INTRA_FID = Metric("classifier_intra_fd", "intra-class Frechet distance (classifier features)", "lower",
                   "conditional", "ganvae.metrics.core:intra_class_fid")
# the distances on the features of a rotation predictor trained on the data's own images, for data without classes
# (ganvae.metrics.objectives): not a classifier's, so not classifier_*
ROTATION_FD = Metric("rotation_fd", "Frechet distance (rotation-prediction features, self-supervised on the data)",
                     "lower", "unlabelled", "ganvae.metrics.core:frechet_distance")
ROTATION_KD = Metric("rotation_kd", "kernel distance (rotation-prediction features at RMS 1, KID's kernel, x1000)",
                     "lower", "unlabelled", "ganvae.metrics.core:kernel_inception_distance")
# the papers' numbers: pytorch-fid's Inception-v3 (its FID weights, which the user supplies), 299x299 bilinear
# resize, grey repeated in 3 channels (ganvae.metrics.inception); KID as Binkowski et al. compute it (raw features)
FID_INCEPTION = Metric("fid_inception", "FID (Inception-v3, pytorch-fid weights)", "lower", "inception",
                       "ganvae.metrics.core:frechet_distance")
KID_INCEPTION = Metric("kid_inception", "KID (Inception-v3, pytorch-fid weights, x1000)", "lower", "inception",
                       "ganvae.metrics.core:kernel_inception_distance")
# measured while training only (metrics_during_training.csv, MLflow, TensorBoard)
TEST_NLL_IWAE10 = Metric("test_nll_iwae10", "test NLL, IWAE bound with k = 10 on part of the test split (nats)",
                         "lower", "training", "ganvae.metrics.evaluate:likelihood_metrics")
NOISE_SPREAD_MIN = Metric("noise_spread_min", "noise use: pixel spread of the least varied class", "higher",
                          "training", "ganvae.metrics.noise_use:noise_spreads")

BUILTIN: tuple[Metric, ...] = (FID, KID, PRECISION, RECALL, DENSITY, COVERAGE, INCEPTION_SCORE, CLASS_ENTROPY,
                               CONFIDENT_SHARE, SHARPNESS, MEMORISATION_RATIO, TEST_ELBO, TEST_NLL_IWAE,
                               RECONSTRUCTION_ERROR, CONDITIONAL_ACCURACY, INTRA_FID, ROTATION_FD, ROTATION_KD,
                               FID_INCEPTION, KID_INCEPTION, TEST_NLL_IWAE10, NOISE_SPREAD_MIN)


# the keys of ganvae 0.x before they said their features and k (metrics.json, summary.json, the in-training CSV and
# the zoo's cards written then): read as their new names, so older runs still load, compare and resume
LEGACY_KEYS: dict[str, str] = {"fid": FID.key, "kid": KID.key, "inception_score": INCEPTION_SCORE.key,
                               "intra_fid": INTRA_FID.key, "precision": PRECISION.key, "recall": RECALL.key}
_COMPANIONS = ("_std", "_per_class", "_min_images")


def current_key(key: str) -> str:
    """The key a metric has now: a legacy key (``fid``, ``fid_std``, ``intra_fid_per_class``) gives its new
    name (``classifier_fd``, ...); any other key is returned as it is."""
    if key in LEGACY_KEYS:
        return LEGACY_KEYS[key]
    for tail in _COMPANIONS:
        if key.endswith(tail) and key[: -len(tail)] in LEGACY_KEYS:
            return LEGACY_KEYS[key[: -len(tail)]] + tail
    return key


def upgrade_keys(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a ``metrics`` dict, a CSV's columns) with legacy keys renamed (:func:`current_key`), in order.
    A key present under both names keeps the new name's value."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        new = current_key(key)
        if new == key or new not in values:
            out[new] = value
    return out


def _check(metric: Metric, table: dict[str, Metric]) -> None:
    if not isinstance(metric, Metric):
        raise ConfigError(f"register_metric: expected a ganvae.metrics.registry.Metric, got {type(metric).__name__}.")
    if not isinstance(metric.key, str) or not KEY_RULE.fullmatch(metric.key):
        raise ConfigError(f"register_metric: key {metric.key!r} must be lower-case letters, digits and underscores, "
                          f"starting with a letter (at most 64), e.g. 'fd_my_features'.")
    if metric.key in LEGACY_KEYS:
        raise ConfigError(f"register_metric: {metric.key!r} is the old name of {LEGACY_KEYS[metric.key]!r} (older "
                          f"runs' files are read with it renamed); choose another key, e.g. {metric.key + '_mine'!r}.")
    if metric.key in table:
        raise ConfigError(f"register_metric: {metric.key!r} is already registered ({table[metric.key].label}); "
                          f"choose another key.")
    if not isinstance(metric.label, str) or not metric.label.strip():
        raise ConfigError(f"register_metric: {metric.key!r} needs a label, the report's name for its row.")
    if metric.direction not in DIRECTIONS:
        raise ConfigError(f"register_metric: direction={metric.direction!r} for {metric.key!r}; give one of "
                          f"{', '.join(repr(d) for d in DIRECTIONS)}.")
    if metric.group not in GROUPS:
        raise ConfigError(f"register_metric: group={metric.group!r} for {metric.key!r}."
                          f"{suggest(metric.group, list(GROUPS))}")
    if not isinstance(metric.computed_by, str) or not re.fullmatch(r"[\w.]+:[\w.]+", metric.computed_by):
        raise ConfigError(f"register_metric: computed_by={metric.computed_by!r} for {metric.key!r}; give "
                          f"'package.module:function'.")


@functools.cache
def _registry() -> dict[str, Metric]:
    table: dict[str, Metric] = {}
    for metric in BUILTIN:
        _check(metric, table)
        table[metric.key] = metric
    return table


def register_metric(metric: Metric | None = None, /, **fields: Any) -> Metric:
    """Add a metric for this process: give a :class:`Metric` or its fields::

        register_metric(key="fd_dino", label="Frechet distance (DINOv2 features)", direction="lower",
                        group="samples", computed_by="my_package.metrics:fd_dino")

    The report then labels and ranks the metric wherever a run's ``metrics.json`` holds its key. A key that is
    already registered is refused (:class:`~ganvae.errors.ConfigError`), as are a missing label, an unknown
    direction or group."""
    if metric is None:
        try:
            metric = Metric(**fields)
        except TypeError as err:
            raise ConfigError(f"register_metric: {err}; give key, label, direction, group and computed_by.") from None
    elif fields:
        raise ConfigError("register_metric: give a Metric or its fields, not both.")
    table = _registry()
    _check(metric, table)
    table[metric.key] = metric
    return metric


def unregister_metric(key: str) -> None:
    """Remove a metric added by :func:`register_metric` (the built-in ones stay)."""
    if key in {m.key for m in BUILTIN}:
        raise ConfigError(f"unregister_metric: {key!r} is a built-in metric.")
    _registry().pop(key, None)


def get_metric(key: str) -> Metric:
    """The entry of metric ``key``; :class:`~ganvae.errors.ConfigError` naming the nearest key when there is none,
    or the new name of a legacy key (``fid`` is ``classifier_fd``)."""
    table = _registry()
    if key not in table and current_key(key) != key:
        raise ConfigError(f"metric {key!r} is now called {current_key(key)!r}: ganvae's keys name the features and "
                          f"the k they use (ganvae.metrics.registry.LEGACY_KEYS). Give {current_key(key)!r}.")
    if key not in table:
        raise ConfigError(f"unknown metric {key!r}.{suggest(key, list(table))}")
    return table[key]


def all_metrics(group: str | None = None) -> list[Metric]:
    """Every registered metric (of ``group``, if given), in the order of the report's rows."""
    return [m for m in _registry().values() if group is None or m.group == group]


def evaluated_metrics() -> list[Metric]:
    """The metrics ``ganvae evaluate`` measures, in the order of the report's rows."""
    return [m for m in _registry().values() if m.evaluated]


def badness(key: str, value: float) -> float:
    """``value`` of metric ``key`` on a scale where lower is better, for every metric (its direction)."""
    return get_metric(key).badness(value)
