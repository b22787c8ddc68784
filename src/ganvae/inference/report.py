"""``ganvae compare``: a self-contained HTML report (images embedded, no network) and a Markdown twin.

Sections: setting (machine, budgets, protocols), metric table with the best value per row
marked, observations generated from the numbers, samples from the same seeds, reconstructions,
interpolations, training-progress GIFs, loss curves, quality against epochs and wall-clock
time, class histograms.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganvae import inference, storage
from ganvae.common.device import machine_description
from ganvae.common.files import atomic_write_bytes, atomic_write_text, check_output
from ganvae.errors import ConfigError, GanvaeError
from ganvae.inference import tasks as operations
from ganvae.inference import writers
from ganvae.metrics.classifier import load_classifier
from ganvae.metrics.registry import (
    CLASS_ENTROPY,
    CONDITIONAL_ACCURACY,
    COVERAGE,
    FID,
    INTRA_FID,
    MEMORISATION_RATIO,
    RECALL,
    SHARPNESS,
    TEST_NLL_IWAE,
    Metric,
    evaluated_metrics,
    upgrade_keys,
)
from ganvae.registry import get_entry

log = logging.getLogger(__name__)

SECTIONS = ["Setting", "Metrics", "Observations", "Samples", "Samples by class", "Reconstructions", "Interpolations",
            "Training progress", "Losses", "Quality during training", "Class coverage"]
PICTURE_SECTIONS = SECTIONS[3:9]  # one picture per model, side by side


@dataclass
class RunEntry:
    label: str
    path: Path
    result: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # section -> file name in the report folder


def _label_runs(paths: list[Path], loaded_runs: list[storage.LoadedRun]) -> list[str]:
    """A column name per model: a pretrained model's own name (``mnist-cgan``); a run's family (``dcgan``), with
    its folder's name when two runs share the family."""
    names = [p.name if loaded.checkpoint is None else loaded.name for p, loaded in zip(paths, loaded_runs)]
    return [name if names.count(name) == 1 else f"{name} ({path.name})" for path, name in zip(paths, names)]


def _load_or_evaluate(run: Path, loaded, n_samples: int, seed: int, data_dir: str | None,
                      dataset: str | None = None) -> dict[str, Any]:
    """The run's ``metrics.json`` when it used this protocol, else a fresh evaluation of the loaded run."""
    cached = run / "metrics.json" if run.is_dir() else None
    if cached is not None and cached.is_file():
        result = json.loads(cached.read_text())
        result["metrics"] = upgrade_keys(result.get("metrics", {}))  # an older ganvae's keys (fid, ...) renamed
        protocol = result.get("protocol", {})
        if protocol.get("n_samples") == n_samples and protocol.get("sample_seed") == seed \
                and protocol.get("prior") == loaded.model.latent_prior.describe() \
                and (dataset is None or result.get("dataset") == dataset):  # a refitted prior: measured again
            return result
    return operations.evaluate(loaded, n_samples=n_samples, seed=seed, data_dir=data_dir, dataset=dataset)


def _during_training(run: Path) -> dict[str, list[float]] | None:
    from ganvae.viz.plots import read_csv_columns

    path = run / "metrics_during_training.csv"
    return (upgrade_keys(read_csv_columns(path)) or None) if path.is_file() else None


def _quality_plot(entries: list[RunEntry], out: Path) -> bool:
    from ganvae.viz.plots import _pyplot, figure_bytes

    curves = {e.label: _during_training(e.path) for e in entries}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for label, c in curves.items():
        axes[0].plot(c["epoch"], c[FID.key], marker="o", ms=3, label=label)
        axes[1].plot([s / 60 for s in c["train_seconds"]], c[FID.key], marker="o", ms=3, label=label)
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel("training time (minutes)")
    for ax in axes:
        ax.set_ylabel("Frechet distance (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    atomic_write_bytes(out, figure_bytes(fig))
    return True


def _class_plot(entries: list[RunEntry], classes: list[str], out: Path) -> None:
    import numpy as np

    from ganvae.viz.plots import _pyplot, figure_bytes

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(classes) * max(1, len(entries)) / 2), 3.4))
    width = 0.8 / len(entries)
    x = np.arange(len(classes))
    for i, e in enumerate(entries):
        ax.bar(x + i * width - 0.4 + width / 2, e.result["metrics"]["class_histogram"], width, label=e.label)
    ax.axhline(1 / len(classes), color="k", ls="--", lw=0.8, label="uniform")
    ax.set_xticks(x, classes)
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=8)
    atomic_write_bytes(out, figure_bytes(fig))


def class_grid(images: torch.Tensor, probs: torch.Tensor, classes: list[int], per_row: int = 12) -> torch.Tensor:
    """Samples sorted by the classifier's predicted class: one row per class, its first ``per_row`` samples in
    draw order, empty (mid-grey) cells where the model drew fewer, so a dropped class shows as a grey row.

    Returns ``(len(classes) * per_row, C, H, W)`` in [0, 1], for ``make_grid(nrow=per_row)``."""
    pred = probs.argmax(1)
    cells = []
    for c in classes:
        mine = images[pred == c][:per_row]
        blank = torch.full((per_row - len(mine), *images.shape[1:]), 0.35)
        cells += [mine, blank]
    return torch.cat(cells)


# a model failing one of these checks has samples that fidelity metrics cannot judge: precision, density and
# confident predictions reward a model that draws a few realistic images over and over
MIN_RECALL = 0.1  # share of real digits inside the samples' manifold
MIN_CLASS_ENTROPY = 0.8  # normalised entropy of the predicted-class histogram (1 = balanced)


def collapse_problems(metrics: dict[str, Any]) -> list[str]:
    """How this model's samples collapsed (empty when they did not): classes dropped, or a class histogram far from
    balanced. Only these are called collapse."""
    problems = []
    if metrics.get("dropped_classes"):
        problems.append(f"classes {metrics['dropped_classes']} get under a third of their share of samples")
    if metrics.get(CLASS_ENTROPY.key, 1.0) < MIN_CLASS_ENTROPY:
        problems.append(f"its class histogram is unbalanced (normalised entropy {metrics[CLASS_ENTROPY.key]:.2f} "
                        f"< {MIN_CLASS_ENTROPY})")
    return problems


def far_problems(metrics: dict[str, Any]) -> list[str]:
    """Samples far from the data though no class is dropped (empty otherwise): recall under :data:`MIN_RECALL`
    with a balanced class histogram. Not collapse: the samples are unlike real digits (blurred, rough), or repeat a
    few images per class; either way precision, density and confident predictions cannot judge them."""
    if collapse_problems(metrics) or metrics.get(RECALL.key, 1.0) >= MIN_RECALL:
        return []
    return [f"recall {metrics[RECALL.key]:.3f} < {MIN_RECALL}: its samples lie far from almost all real digits, "
            f"though it draws every class (normalised class entropy {metrics.get(CLASS_ENTROPY.key, 1.0):.2f})"]


def trust_problems(metrics: dict[str, Any]) -> list[str]:
    """Why this model's sample metrics cannot be trusted (empty when they can): collapse
    (:func:`collapse_problems`) or samples far from the data (:func:`far_problems`)."""
    return collapse_problems(metrics) + far_problems(metrics)


def trouble(metrics: dict[str, Any]) -> str:
    """The words for an untrusted model: ``collapsed`` or ``far from the data``."""
    return "collapsed" if collapse_problems(metrics) else "far from the data"


def training_warnings(entry: RunEntry) -> list[str]:
    """The warnings the model's training gave (``summary.json``: speed, budget, collapse, prior fit)."""
    return list((entry.result.get("training") or {}).get("warnings") or [])


def judged_on_samples(metric: Metric) -> bool:
    """Whether ``metric`` judges the samples alone (the registry's groups "samples", "unlabelled" and "inception":
    the same samples on other features): then a model whose samples collapsed (:func:`trust_problems`) gets no trust
    for it."""
    return metric.group in ("samples", "unlabelled", "inception")


def tied(key: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two models' values of ``key`` differ by less than twice the noise of their difference."""
    sa, sb = a.get(f"{key}_std"), b.get(f"{key}_std")
    if sa is None or sb is None:
        return a[key] == b[key]
    return abs(a[key] - b[key]) <= 2 * math.hypot(sa, sb)


def best_per_row(entries: list[RunEntry]) -> dict[str, set[str]]:
    """Per metric, the models marked best: the best value among the models whose sample metrics can be trusted,
    and every trusted model tied with it (difference within twice its noise). A collapsed model is never best."""
    best: dict[str, set[str]] = {}
    for metric in evaluated_metrics():
        key = metric.key
        present = [e for e in entries if e.result["metrics"].get(key) is not None]
        candidates = {e.label: e.result["metrics"] for e in present
                      if not (judged_on_samples(metric) and trust_problems(e.result["metrics"]))}
        if len(present) < 2 or not candidates:
            continue
        top = min(candidates, key=lambda k: metric.badness(candidates[k][key]))
        best[key] = {k for k, m in candidates.items() if k == top or tied(key, candidates[top], m)}
    return best


def _pm(m: dict[str, Any], key: str, digits: int = 1) -> str:
    std = m.get(f"{key}_std")
    return f"{m[key]:.{digits}f}" + (f" +- {std:.{digits}f}" if std is not None else "")


def _family(model_name: str) -> str:
    """The kind of model the registry files ``model_name`` under ("GAN", "VAE", ...); the name itself for a family
    no longer registered."""
    try:
        return get_entry(model_name).family
    except ConfigError:
        return model_name


def verdict(entries: list[RunEntry]) -> str:
    """One paragraph answering the classic GAN-against-VAE question from the numbers: which model draws digits
    closest to real ones (and how sharp), which covers the classes, at what compute; differences within the
    noise are called ties, and models whose metrics cannot be trusted are named as such."""
    m = {e.label: e.result["metrics"] for e in entries}
    families = {e.label: _family(e.result["model"]) for e in entries}
    trusted = [k for k in m if not trust_problems(m[k])]
    parts = []
    budgets = {e.label: (e.result.get("training") or {}).get("train_seconds") for e in entries}
    steps = {e.label: (e.result.get("training") or {}).get("steps") for e in entries}
    if all((e.result.get("training") or {}).get("stopped_by") == "steps" for e in entries):
        # budgets of steps (ganvae demo): the same words on any machine, however long the steps took
        counts = sorted({v for v in steps.values()})
        parts.append(f"With {counts[0]:,} steps of training each" if len(counts) == 1
                     else f"With {', '.join(f'{k} {v:,}' for k, v in steps.items())} steps of training")
    elif all(v is not None for v in budgets.values()):
        mins = sorted({round(v / 60, 1) for v in budgets.values()})
        parts.append(f"With {mins[0]} minutes of training each" if len(mins) == 1
                     else f"With {', '.join(f'{k} {v / 60:.1f}' for k, v in budgets.items())} minutes of training")
    else:
        parts.append("With the budgets above")
    if not trusted:
        warned = [e.label for e in entries if training_warnings(e)]
        states = "; ".join(f"{k} {trouble(m[k])}" for k in m)
        cause = (f"the training of {', '.join(warned)} warned (see the observations): fix what it names and train "
                 f"again" if warned else "train longer (more steps)")
        done = (" after " + ", ".join(f"{k} {v} steps" for k, v in steps.items() if v is not None)
                if any(v is not None for v in steps.values()) else "")
        return (f"{parts[0]}, the training was too short to judge these models{done}: no model's samples can be "
                f"trusted to the metrics ({states}). To compare them, {cause}.")
    order = sorted(trusted, key=lambda k: m[k][FID.key])
    top = order[0]
    ties = [k for k in order[1:] if tied(FID.key, m[top], m[k])]
    lead = f"{top} ({families[top]})" + (f", tied within the noise with {', '.join(ties)}" if ties else "")
    rest = ", ".join(f"{k} {_pm(m[k], FID.key)}" for k in order[1:])
    text = (f"{parts[0]}, the samples closest to real digits come from {lead}: Frechet distance {_pm(m[top], FID.key)}"
            + (f" against {rest}" if rest else "") + ".")
    if all(SHARPNESS.key in m[k] for k in trusted):
        blurred = [k for k in trusted if m[k][SHARPNESS.key] < 0.8]
        crisp = [k for k in trusted if m[k][SHARPNESS.key] >= 0.8]
        if blurred and crisp:
            text += (f" By the pixels alone, {', '.join(crisp)} draw{'s' if len(crisp) == 1 else ''} edges as sharp as "
                     "real digits' or sharper (edge sharpness "
                     f"{', '.join(format(m[k][SHARPNESS.key], '.2f') for k in crisp)}), "
                     f"{', '.join(blurred)} blurred ones "
                     f"({', '.join(format(m[k][SHARPNESS.key], '.2f') for k in blurred)}; real = 1)"
                     + (": the classic difference between a GAN's samples and a VAE's mean images."
                        if {families[k] for k in blurred} == {"VAE"}
                           and {families[k] for k in crisp} <= {"GAN", "VAE-GAN", "CPPN GAN+VAE"}
                        else "."))
    if len(trusted) > 1:
        rec = sorted(trusted, key=lambda k: -m[k][RECALL.key])
        rec_ties = [k for k in rec[1:] if tied(RECALL.key, m[rec[0]], m[k])]
        cov = sorted(trusted, key=lambda k: -m[k][COVERAGE.key])
        text += (f" The widest variety of real digits is reached by {rec[0]} (recall {_pm(m[rec[0]], RECALL.key, 3)}"
                 + (f", tied with {', '.join(rec_ties)}" if rec_ties else "")
                 + f"; then {', '.join(k + ' ' + _pm(m[k], RECALL.key, 3) for k in rec[1:])}); most real digits with a "
                 f"sample close by (coverage): {', '.join(k + ' ' + _pm(m[k], COVERAGE.key, 3) for k in cov)}.")
    untrusted = [k for k in m if k not in trusted]
    if not untrusted:
        text += " Every model draws all its classes."
    for k in untrusted:  # trusted models never drop a class: dropping one is a trust problem
        why = (f"collapsed ({'; '.join(collapse_problems(m[k]))})" if collapse_problems(m[k])
               else f"are far from the data ({far_problems(m[k])[0]})")
        text += f" Left out of this comparison: {k}, whose samples {why}."
    return text


def comparability_warnings(paths: list[Path], loaded_runs: list) -> list[str]:
    """What makes a side-by-side comparison of these runs misleading: the same checkpoint twice, or runs trained
    on different data (datasets, class subsets, image sizes), whose metrics are measured against different test
    sets."""
    out = []
    checkpoints = [Path(lr.source).resolve() for lr in loaded_runs]
    for i, a in enumerate(checkpoints):
        for j in range(i):
            if checkpoints[j] == a:
                out.append(f"{paths[i]} and {paths[j]} are the same run ({a}); the comparison shows it against itself.")
    for what, value in (("datasets", lambda lr: lr.config.data.dataset),
                        ("class subsets",
                         lambda lr: sorted(lr.config.data.classes) if lr.config.data.classes else "all"),
                        ("image sizes", lambda lr: lr.config.data.image_size)):
        values = [value(lr) for lr in loaded_runs]
        if len({str(v) for v in values}) > 1:
            listed = ", ".join(f"{p} {v}" for p, v in zip(paths, values))
            out.append(f"the runs were trained on different {what} ({listed}); each is scored against its own test "
                       f"data, so their metrics are not comparable.")
    return out


def observations(entries: list[RunEntry]) -> list[str]:
    """Plain sentences read off the numbers."""
    out: list[str] = []
    m = {e.label: e.result["metrics"] for e in entries}
    by = lambda key, hi: sorted(m, key=lambda k: m[k][key], reverse=hi)  # noqa: E731
    if len(m) > 1:
        order = by(FID.key, False)
        out.append(
            f"Fidelity: {order[0]} has the lowest Frechet distance ({_pm(m[order[0]], FID.key, 2)}, against "
            + ", ".join(f"{k} {_pm(m[k], FID.key, 2)}" for k in order[1:]) + ")."
        )
        for label in m:
            if collapse_problems(m[label]):
                out.append(f"Cannot be trusted: {label}'s precision, density, confident predictions and the other "
                           f"sample metrics, because it collapsed: {'; and '.join(collapse_problems(m[label]))}. A "
                           "model that draws a few realistic images over and over scores well on fidelity metrics; "
                           "it is never marked best.")
            elif far_problems(m[label]):
                out.append(f"Far from the data: {label}, {far_problems(m[label])[0]}. This is not collapse; its "
                           "sample metrics are not compared and it is never marked best. Look at its samples: blurred "
                           "or rough digits need more training (or a learned prior, for a VAE).")
        rec, cov, balanced = by(RECALL.key, True), by(COVERAGE.key, True), by(CLASS_ENTROPY.key, True)
        out.append(
            f"Coverage: {rec[0]} has the highest recall ({m[rec[0]][RECALL.key]:.3f}) and {cov[0]} "
            f"the highest coverage ({m[cov[0]][COVERAGE.key]:.3f}); the most balanced class histogram is "
            f"{balanced[0]}'s "
            f"(normalised entropy {m[balanced[0]][CLASS_ENTROPY.key]:.3f})."
        )
    likelihood = {k: v for k, v in m.items() if TEST_NLL_IWAE.key in v}
    if likelihood:
        order = sorted(likelihood, key=lambda k: likelihood[k][TEST_NLL_IWAE.key])
        k_iwae = likelihood[order[0]]["likelihood_protocol"]["iwae_k"]
        out.append(
            "Likelihood: " + ", ".join(f"{k} {likelihood[k][TEST_NLL_IWAE.key]:.1f} nats" for k in order)
            + f" (IWAE bound, k = {k_iwae}); GANs have no encoder, so no likelihood bound for them."
        )
    else:
        out.append("Likelihood: no model here has an encoder, so there is no likelihood bound to compare.")
    for label, v in m.items():
        if v.get("dropped_classes"):
            out.append(f"Mode collapse: {label}'s samples give classes {v['dropped_classes']} under a third of their "
                       f"expected share (normalised class entropy {v[CLASS_ENTROPY.key]:.3f}).")
    if not any(v.get("dropped_classes") for v in m.values()):
        out.append("No model dropped a class: every class gets at least a third of its expected share of samples.")
    for label, v in m.items():
        if v.get(MEMORISATION_RATIO.key, 1) < 0.6:
            out.append(f"Memorisation: {label}'s samples lie much closer to training images than test images do "
                       f"(median ratio {v[MEMORISATION_RATIO.key]:.2f}); check for copies.")
    for e in entries:
        for w in training_warnings(e):
            out.append(f"Warning from {e.label}'s training: {w}")
    budgets = {e.label: e.result.get("training") or {} for e in entries}
    secs = {k: b.get("train_seconds") for k, b in budgets.items() if b.get("train_seconds") is not None}
    if secs:
        out.append("Budgets: " + ", ".join(f"{k} trained {s / 60:.1f} min "
                                           f"({budgets[k].get('epochs_completed', '?')} epochs, "
                                           f"{budgets[k].get('images_per_second', 0):.0f} images/s)"
                                           for k, s in secs.items()) + ".")
    return out


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _cell(e: RunEntry, metric: Metric) -> str:
    """A table cell's text: the value, +- its noise where measured, a dagger where it cannot be trusted."""
    m = e.result["metrics"]
    v = m.get(metric.key)
    if v is None:
        return "-"
    std = m.get(metric.std_key)
    if std is not None and std > 0:
        # the noise sets the digits shown: two significant digits of it, the value to the same place
        places = max(0, 1 - math.floor(math.log10(std)))
        text = f"{v:.{places}f} +- {std:.{places}f}"
    else:
        text = _fmt(v)
    if judged_on_samples(metric) and trust_problems(m):
        text += " \u2020"
    return text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.1f}"
    return html.escape(str(v))


def compare(runs: list[str | Path], out: str | Path, n_samples: int = 10000, seed: int = 0, data_dir: str | None = None,
            interpolation_steps: int = 12, dataset: str | None = None) -> Path:
    """Evaluate (or reuse ``metrics.json``) and write ``report.html`` and ``report.md`` into ``out``. ``dataset``
    scores every run against that dataset's test split (default: each run's own; a pretrained model offline:
    its packaged stand-in), ``data_dir`` says where its files are."""
    from ganvae.viz.images import save_grid

    out = check_output(out, kind="folder")
    paths = [Path(r) for r in runs]
    loaded_runs = [storage.load(p) for p in paths]  # each checkpoint read once, for the metrics and the pictures
    warnings = comparability_warnings(paths, loaded_runs)
    for w in warnings:
        log.warning("warning: %s", w)
    out.mkdir(parents=True, exist_ok=True)
    results = [_load_or_evaluate(p, loaded, n_samples, seed, data_dir, dataset)
               for p, loaded in zip(paths, loaded_runs)]
    labels = _label_runs(paths, loaded_runs)
    entries = [RunEntry(lbl, p, r) for lbl, p, r in zip(labels, paths, results)]
    classes: list[str] = []
    classifiers = {}  # dataset -> feature network, loaded (and checksummed) once for all the runs on it
    for e, loaded in zip(entries, loaded_runs):
        slug = "".join(ch if ch.isalnum() else "-" for ch in e.label)
        images, nrow = inference.overview(loaded, 8, seed)  # a conditional model: its class grid
        save_grid(images, out / f"{slug}_samples.png", nrow=nrow, scale=2)
        e.files["Samples"] = f"{slug}_samples.png"
        # its feature network names the classes it drew (the network evaluate used, of the run's data and shape);
        # data without classes (a rotation predictor's features) has no samples by class
        fnet_info = e.result["protocol"]["feature_network"]
        key = (fnet_info.get("trained_on", loaded.config.data.dataset), tuple(loaded.model.image_shape))
        if fnet_info.get("objective", "classes") == "classes" and key not in classifiers:
            try:  # the default places (a network given to evaluate as --classifier FILE elsewhere is not found)
                classifiers[key] = load_classifier(key[0], image_shape=key[1])
            except GanvaeError as err:
                log.warning("%s: no samples by class in the report: %s", e.label, err)
                classifiers[key] = None
        if classifiers.get(key) is not None:
            fnet = classifiers[key]
            many = inference.sample_images(loaded, 600, seed + 1)
            trained = (sorted(loaded.config.data.classes) if loaded.config.data.classes
                       else list(range(fnet.model.head.out_features)))
            save_grid(class_grid(many, fnet.extract(many)[1], trained), out / f"{slug}_by_class.png", nrow=12,
                      scale=2)
            e.files["Samples by class"] = f"{slug}_by_class.png"
        if loaded.model.has_encoder:
            writers.reconstruct(loaded, n=16, seed=seed, out=out / f"{slug}_reconstructions.png", dataset=dataset,
                                data_dir=data_dir)
            e.files["Reconstructions"] = f"{slug}_reconstructions.png"
        writers.interpolate(loaded, points=3, steps=interpolation_steps, seed=seed, out=out / f"{slug}_walk.gif",
                            walks=16)
        e.files["Interpolations"] = f"{slug}_walk.gif"
        run_dir = loaded.run_dir
        for section, name in (("Training progress", "progress.gif"), ("Losses", "losses.png")):
            if run_dir is not None and (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, out / f"{slug}_{name}")
                e.files[section] = f"{slug}_{name}"
        if not classes and "class_histogram" in e.result["metrics"]:
            from ganvae.data.sources import SOURCES

            source = SOURCES.get(loaded.config.data.dataset)
            classes = (list(source.classes) if source
                       else [str(i) for i in range(len(e.result["metrics"]["class_histogram"]))])
    shared: dict[str, str] = {}
    if _quality_plot(entries, out / "quality.png"):
        shared["Quality during training"] = "quality.png"
    if classes and all("class_histogram" in e.result["metrics"] for e in entries):
        _class_plot(entries, classes, out / "classes.png")
        shared["Class coverage"] = "classes.png"
    notes = [f"Warning: {w}" for w in warnings] + observations(entries)
    best = best_per_row(entries)
    text = verdict(entries)
    write_html(entries, shared, notes, best, out, text)
    write_markdown(entries, shared, notes, best, out, text)
    summary = {"verdict": text, "observations": notes, "best": {k: sorted(v) for k, v in best.items()},
               "untrusted": {e.label: trust_problems(e.result["metrics"])
                             for e in entries if trust_problems(e.result["metrics"])},
               "models": {e.label: {"run": str(e.path), "model": e.result["model"],
                                    "metrics": {k: v for k, v in e.result["metrics"].items()
                                                if isinstance(v, (int, float))}}
                          for e in entries}}
    atomic_write_text(out / "report.json", json.dumps(summary, indent=2) + "\n")
    log.info("report written: %s", out / "report.html")
    return out / "report.html"


def _feature_network_text(fnet: dict[str, Any]) -> str:
    """The protocol's feature network in words: its name, what it learned on which data and shape, its accuracy."""
    what = "rotation predictor (self-supervised)" if fnet.get("objective") == "rotation" else "classifier"
    shape = "x".join(str(v) for v in fnet.get("image_shape", (1, 28, 28)))
    return (f"{fnet['name']}: {what} trained on {fnet.get('trained_on', 'mnist')} ({shape}), held-out accuracy "
            f"{fnet['test_accuracy']}, sha256 {fnet['sha256'][:12]}...")


def _setting_rows(entries: list[RunEntry]) -> list[tuple[str, str]]:
    first = entries[0].result
    p = first["protocol"]
    fnet = p["feature_network"]
    rows = [
        ("written", time.strftime("%Y-%m-%d %H:%M")),
        ("machine", machine_description()),
        ("dataset", first["dataset"] + (f" ({p['stand_in']})" if p.get("stand_in") else "")),
        ("samples per model", f"{p['n_samples']} (seed {p['sample_seed']})"),
        ("reference", p["reference"]),
        ("feature network", _feature_network_text(fnet)),
        ("nearest-neighbour metrics", f"k = {p['nearest_neighbour_k']}; kernel distance: "
                                      f"{p.get('kernel_distance', p.get('kid'))}"),
        ("metric names", p.get("keys", "classifier_* are on the feature network above, not Inception-v3")),
        ("noise (+-)", p.get("noise", "not measured (metrics from an older ganvae)")),
        ("memorisation", p["memorisation"]),
    ]
    if p.get("inception"):  # the papers' FID and KID were computed too (the user's Inception-v3 weights)
        inc = p["inception"]
        rows.append(("Inception-v3 (fid_inception, kid_inception)",
                     f"{inc.get('name', 'Inception-v3')} (sha256 {str(inc.get('sha256', '?'))[:12]}...): "
                     f"{inc.get('preprocessing', 'pytorch-fid preprocessing')}; comparable with papers' FID"))
    for e in entries:
        t = e.result.get("training") or {}
        lp = e.result["metrics"].get("likelihood_protocol")
        budget = (f"{t.get('train_seconds', 0) / 60:.1f} min, {t.get('epochs_completed', '?')} epochs, "
                  f"{t.get('steps', '?')} steps, {t.get('images_per_second', 0):.0f} images/s "
                  f"on {t.get('device', '?')}") if t else "?"
        rows.append((f"budget: {e.label}", budget))
        if e.result["protocol"].get("prior"):
            rows.append((f"prior: {e.label}", e.result["protocol"]["prior"]))
        if lp:
            rows.append((f"likelihood: {e.label}",
                         f"IWAE k = {lp['iwae_k']} on {lp['test_images']} test images; {lp['binarisation']}"))
    return rows


SECTION_NOTES = {
    "Samples by class": "600 samples per model sorted by the feature classifier's prediction: one row per class "
                        "(0 at the top), grey cells where the model drew fewer than 12 of that class. A grey row "
                        "is a dropped class.",
}


def per_class_table(entries: list[RunEntry]) -> tuple[list[str], list[list[str]]]:
    """The conditional models' per-class figures: a header (class, then one column per conditional model) and a row
    per class, each cell ``accuracy / intra-FID`` (empty when no model is conditional)."""
    accuracy_key, intra_key = CONDITIONAL_ACCURACY.companion("per_class"), INTRA_FID.companion("per_class")
    cond = [e for e in entries if e.result["metrics"].get(accuracy_key)]
    if not cond:
        return [], []

    def per_class(e: RunEntry, key: str) -> dict[int, float]:  # JSON turns the class keys into strings
        return {int(c): v for c, v in (e.result["metrics"].get(key) or {}).items()}

    accuracy = {e.label: per_class(e, accuracy_key) for e in cond}
    intra = {e.label: per_class(e, intra_key) for e in cond}
    classes = sorted({c for a in accuracy.values() for c in a})
    rows = [[str(c)] + [(f"{accuracy[e.label][c]:.1%}" if c in accuracy[e.label] else "-") + " / "
                        + (f"{intra[e.label][c]:.1f}" if c in intra[e.label] else "-") for e in cond] for c in classes]
    return ["class"] + [e.label for e in cond], rows


PER_CLASS_NOTE = ("Per class: the share of the samples asked for that class that the feature classifier names as it "
                  "(conditional accuracy, higher is better) / the intra-class Frechet distance against that class's "
                  "test images (lower is better).")


def write_html(entries, shared, notes, best, out: Path, verdict_text: str = "") -> Path:
    h = ['<!DOCTYPE html><html><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width, initial-scale=1"><title>ganvae comparison</title><style>',
         "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;line-height:1.45}",
         "table{border-collapse:collapse}.scroll{overflow-x:auto}.untrusted{color:#888;font-style:italic}",
         "#verdict p{background:#f3f6fb;border-left:4px solid #4a7bd0;padding:.6em 1em;max-width:70em}",
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}",
         ".best{background:#d8f5d0;font-weight:bold}.row{display:flex;flex-wrap:wrap;gap:16px}",
         ".cell{text-align:center}img{image-rendering:pixelated;max-width:100%}</style></head><body>",
         "<h1>ganvae: model comparison</h1>"]
    h.append('<section id="setting"><h2>Setting</h2><table>')
    h += [f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
          for k, v in _setting_rows(entries)]
    h.append("</table></section>")
    h.append('<section id="metrics"><h2>Metrics</h2><p>Best value per row in green, with every model tied with it '
             '(a difference under twice the noise of the difference; +- is the sampling noise, see the setting). '
             '&dagger;: cannot be trusted: the model collapsed, or its samples are far from the data (see the '
             'observations); never marked best.</p>'
             '<div class="scroll"><table><tr><th>metric</th>')
    h += [f"<th>{html.escape(e.label)}</th>" for e in entries] + ["<th>better</th></tr>"]
    for metric in evaluated_metrics():
        if not any(metric.key in e.result["metrics"] for e in entries):
            continue
        h.append(f"<tr><td>{html.escape(metric.label)}</td>")
        for e in entries:
            cls = ' class="best"' if e.label in best.get(metric.key, set()) else (
                ' class="untrusted"' if judged_on_samples(metric) and trust_problems(e.result["metrics"]) else "")
            h.append(f"<td{cls}>{html.escape(_cell(e, metric))}</td>")
        h.append(f"<td>{metric.direction}</td></tr>")
    h.append("</table></div></section>")
    header, rows = per_class_table(entries)
    if rows:
        h.append(f'<section id="per-class"><h2>Conditional models, per class</h2><p>{html.escape(PER_CLASS_NOTE)}</p>'
                 '<div class="scroll"><table><tr>' + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>")
        h += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        h.append("</table></div></section>")
    h.append(f'<section id="verdict"><h2>Verdict</h2><p>{html.escape(verdict_text)}</p></section>')
    h.append('<section id="observations"><h2>Observations</h2>' + "".join(f"<p>{html.escape(n)}</p>" for n in notes)
             + "</section>")
    for section in PICTURE_SECTIONS:
        present = [e for e in entries if section in e.files]
        if not present:
            continue
        h.append(f'<section id="{section.lower().replace(" ", "-")}"><h2>{section}</h2>'
                 + (f"<p>{html.escape(SECTION_NOTES[section])}</p>" if section in SECTION_NOTES else "")
                 + '<div class="row">')
        for e in present:
            h.append(f'<div class="cell"><img src="{_data_uri(out / e.files[section])}" '
                     f'alt="{html.escape(e.label)}"><br>'
                     f"{html.escape(e.label)}</div>")
        h.append("</div></section>")
    for section, name in shared.items():
        h.append(f'<section id="{section.lower().replace(" ", "-")}"><h2>{section}</h2>'
                 f'<img src="{_data_uri(out / name)}" alt="{section}"></section>')
    h.append("</body></html>")
    path = out / "report.html"
    atomic_write_text(path, "\n".join(h))
    return path


def write_markdown(entries, shared, notes, best, out: Path, verdict_text: str = "") -> Path:
    md = ["# ganvae: model comparison", "", "## Setting", "", "| | |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in _setting_rows(entries)]
    md += ["", "## Metrics", "", "Best value per row in **bold**.", "",
           "Ties within the noise are bold too; +- is the sampling noise; \u2020 = cannot be trusted (collapsed, or "
           "far from the data: see the observations).", "",
           "| metric | " + " | ".join(e.label for e in entries) + " | better |",
           "| --- |" + " ---: |" * len(entries) + " --- |"]
    for metric in evaluated_metrics():
        if not any(metric.key in e.result["metrics"] for e in entries):
            continue
        cells = []
        for e in entries:
            text = _cell(e, metric)
            cells.append(f"**{text}**" if e.label in best.get(metric.key, set()) else text)
        md.append(f"| {metric.label} | " + " | ".join(cells) + f" | {metric.direction} |")
    header, rows = per_class_table(entries)
    if rows:
        md += ["", "## Conditional models, per class", "", PER_CLASS_NOTE, "", "| " + " | ".join(header) + " |",
               "| --- |" + " ---: |" * (len(header) - 1)] + ["| " + " | ".join(row) + " |" for row in rows]
    md += ["", "## Verdict", "", verdict_text, "", "## Observations", ""] + [f"- {n}" for n in notes]
    for section in PICTURE_SECTIONS:
        present = [e for e in entries if section in e.files]
        if present:
            md += ["", f"## {section}", "", "| " + " | ".join(e.label for e in present) + " |",
                   "|" + " :---: |" * len(present),
                   "| " + " | ".join(f"![{e.label}]({e.files[section]})" for e in present) + " |"]
    for section, name in shared.items():
        md += ["", f"## {section}", "", f"![{section}]({name})"]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path
