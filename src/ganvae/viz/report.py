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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganvae.metrics.evaluate import HIGHER_IS_BETTER, LABELS, evaluate, machine_description
from ganvae.utils import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

SECTIONS = ["Setting", "Metrics", "Observations", "Samples", "Reconstructions", "Interpolations",
            "Training progress", "Losses", "Quality during training", "Class coverage"]


@dataclass
class RunEntry:
    label: str
    path: Path
    result: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # section -> file name in the report folder


def _label_runs(paths: list[Path], names: list[str]) -> list[str]:
    labels = []
    for path, name in zip(paths, names):
        label = name if names.count(name) == 1 else f"{name} ({path.name})"
        labels.append(label)
    return labels


def _load_or_evaluate(run: Path, loaded, n_samples: int, seed: int, data_dir: str | None) -> dict[str, Any]:
    """The run's ``metrics.json`` when it used this protocol, else a fresh evaluation of the loaded run."""
    cached = run / "metrics.json" if run.is_dir() else None
    if cached is not None and cached.is_file():
        result = json.loads(cached.read_text())
        if result.get("protocol", {}).get("n_samples") == n_samples and result["protocol"].get("sample_seed") == seed:
            return result
    return evaluate(loaded, n_samples=n_samples, seed=seed, data_dir=data_dir)


def _during_training(run: Path) -> dict[str, list[float]] | None:
    from ganvae.viz.plots import read_csv_columns

    path = run / "metrics_during_training.csv"
    return (read_csv_columns(path) or None) if path.is_file() else None


def _quality_plot(entries: list[RunEntry], out: Path) -> bool:
    from ganvae.viz.plots import _pyplot, figure_bytes

    curves = {e.label: _during_training(e.path) for e in entries}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for label, c in curves.items():
        axes[0].plot(c["epoch"], c["fid"], marker="o", ms=3, label=label)
        axes[1].plot([s / 60 for s in c["train_seconds"]], c["fid"], marker="o", ms=3, label=label)
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


def _direction(key: str) -> str:
    """Which way a metric is better, as the tables print it."""
    if key == "memorisation_ratio":  # neither copying (below 1) nor off the data (above 1)
        return "closer to 1"
    return "higher" if HIGHER_IS_BETTER[key] else "lower"


def best_per_row(entries: list[RunEntry]) -> dict[str, set[str]]:
    best: dict[str, set[str]] = {}
    for key, higher in HIGHER_IS_BETTER.items():
        values = {e.label: e.result["metrics"][key] for e in entries if key in e.result["metrics"]}
        if len(values) < 2:
            continue
        if key == "memorisation_ratio":  # closer to 1 is better (neither copying nor off-manifold)
            target = min(values.values(), key=lambda v: abs(v - 1))
        else:
            target = max(values.values()) if higher else min(values.values())
        best[key] = {label for label, v in values.items() if v == target}
    return best


def observations(entries: list[RunEntry]) -> list[str]:
    """Plain sentences read off the numbers."""
    out: list[str] = []
    m = {e.label: e.result["metrics"] for e in entries}
    by = lambda key, hi: sorted(m, key=lambda k: m[k][key], reverse=hi)  # noqa: E731
    if len(m) > 1:
        order = by("fid", False)
        top = by("precision", True)[0]
        n_classes = len(m[top]["class_histogram"])
        collapsed = len(m[top].get("dropped_classes", [])) >= n_classes / 2
        caveat = (f", but {top} has collapsed onto few classes, and precision rewards a collapsed model that "
                  f"draws the same realistic images: read it with recall and coverage") if collapsed else ""
        out.append(
            f"Fidelity: {order[0]} has the lowest Frechet distance ({m[order[0]]['fid']:.2f}, against "
            + ", ".join(f"{k} {m[k]['fid']:.2f}" for k in order[1:]) + f"); precision is highest for {top} "
            f"({m[top]['precision']:.3f}){caveat}."
        )
        rec, cov = by("recall", True), by("coverage", True)
        out.append(
            f"Coverage: {rec[0]} has the highest recall ({m[rec[0]]['recall']:.3f}) and {cov[0]} the highest coverage "
            f"({m[cov[0]]['coverage']:.3f}); the most balanced class histogram is {by('class_entropy', True)[0]}'s "
            f"(normalised entropy {m[by('class_entropy', True)[0]]['class_entropy']:.3f})."
        )
    likelihood = {k: v for k, v in m.items() if "test_nll_iwae" in v}
    if likelihood:
        order = sorted(likelihood, key=lambda k: likelihood[k]["test_nll_iwae"])
        k_iwae = likelihood[order[0]]["likelihood_protocol"]["iwae_k"]
        out.append(
            "Likelihood: " + ", ".join(f"{k} {likelihood[k]['test_nll_iwae']:.1f} nats" for k in order)
            + f" (IWAE bound, k = {k_iwae}); GANs have no encoder, so no likelihood bound for them."
        )
    else:
        out.append("Likelihood: no model here has an encoder, so there is no likelihood bound to compare.")
    for label, v in m.items():
        if v.get("dropped_classes"):
            out.append(f"Mode collapse: {label}'s samples give classes {v['dropped_classes']} under a third of their "
                       f"expected share (normalised class entropy {v['class_entropy']:.3f}).")
    if not any(v.get("dropped_classes") for v in m.values()):
        out.append("No model dropped a class: every class gets at least a third of its expected share of samples.")
    for label, v in m.items():
        if v.get("memorisation_ratio", 1) < 0.6:
            out.append(f"Memorisation: {label}'s samples lie much closer to training images than test images do "
                       f"(median ratio {v['memorisation_ratio']:.2f}); check for copies.")
    budgets = {e.label: e.result.get("training") or {} for e in entries}
    secs = {k: b.get("train_seconds") for k, b in budgets.items() if b.get("train_seconds") is not None}
    if secs:
        out.append("Budgets: " + ", ".join(f"{k} trained {s / 60:.1f} min ({budgets[k].get('epochs_completed', '?')} epochs, "
                                           f"{budgets[k].get('images_per_second', 0):.0f} images/s)" for k, s in secs.items()) + ".")
    return out


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:.1f}"
    return html.escape(str(v))


def compare(runs: list[str | Path], out: str | Path, n_samples: int = 10000, seed: int = 0, data_dir: str | None = None,
            interpolation_steps: int = 12) -> Path:
    """Evaluate (or reuse ``metrics.json``) and write ``report.html`` and ``report.md`` into ``out``."""
    from ganvae import api
    from ganvae.viz.images import save_grid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(r) for r in runs]
    loaded_runs = [api.load_run(p) for p in paths]  # each checkpoint read once, for the metrics and the pictures
    results = [_load_or_evaluate(p, loaded, n_samples, seed, data_dir) for p, loaded in zip(paths, loaded_runs)]
    labels = _label_runs(paths, [r["model"] for r in results])
    entries = [RunEntry(lbl, p, r) for lbl, p, r in zip(labels, paths, results)]
    classes: list[str] = []
    for e, loaded in zip(entries, loaded_runs):
        slug = "".join(ch if ch.isalnum() else "-" for ch in e.label)
        save_grid(api.sample_images(loaded, 64, seed), out / f"{slug}_samples.png", nrow=8, scale=2)
        e.files["Samples"] = f"{slug}_samples.png"
        if loaded.model.has_encoder:
            api.reconstruct(loaded, n=16, seed=seed, out=out / f"{slug}_reconstructions.png", data_dir=data_dir)
            e.files["Reconstructions"] = f"{slug}_reconstructions.png"
        api.interpolate(loaded, points=3, steps=interpolation_steps, seed=seed, out=out / f"{slug}_walk.gif", walks=16)
        e.files["Interpolations"] = f"{slug}_walk.gif"
        run_dir = loaded.run_dir
        for section, name in (("Training progress", "progress.gif"), ("Losses", "losses.png")):
            if run_dir is not None and (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, out / f"{slug}_{name}")
                e.files[section] = f"{slug}_{name}"
        if not classes:
            from ganvae.data.sources import SOURCES

            source = SOURCES.get(loaded.config.data.dataset)
            classes = list(source.classes) if source else [str(i) for i in range(len(e.result["metrics"]["class_histogram"]))]
    shared: dict[str, str] = {}
    if _quality_plot(entries, out / "quality.png"):
        shared["Quality during training"] = "quality.png"
    _class_plot(entries, classes, out / "classes.png")
    shared["Class coverage"] = "classes.png"
    notes = observations(entries)
    best = best_per_row(entries)
    write_html(entries, shared, notes, best, out)
    write_markdown(entries, shared, notes, best, out)
    log.info("report written: %s", out / "report.html")
    return out / "report.html"


def _setting_rows(entries: list[RunEntry]) -> list[tuple[str, str]]:
    first = entries[0].result
    p = first["protocol"]
    fnet = p["feature_network"]
    rows = [
        ("written", time.strftime("%Y-%m-%d %H:%M")),
        ("machine", machine_description()),
        ("dataset", first["dataset"]),
        ("samples per model", f"{p['n_samples']} (seed {p['sample_seed']})"),
        ("reference", p["reference"]),
        ("feature network", f"{fnet['name']} (test accuracy {fnet['test_accuracy']}, sha256 {fnet['sha256'][:12]}...)"),
        ("nearest-neighbour metrics", f"k = {p['nearest_neighbour_k']}; KID: {p['kid']}"),
        ("memorisation", p["memorisation"]),
    ]
    for e in entries:
        t = e.result.get("training") or {}
        lp = e.result["metrics"].get("likelihood_protocol")
        budget = (f"{t.get('train_seconds', 0) / 60:.1f} min, {t.get('epochs_completed', '?')} epochs, "
                  f"{t.get('steps', '?')} steps, {t.get('images_per_second', 0):.0f} images/s on {t.get('device', '?')}") if t else "?"
        rows.append((f"budget: {e.label}", budget))
        if lp:
            rows.append((f"likelihood: {e.label}", f"IWAE k = {lp['iwae_k']} on {lp['test_images']} test images; {lp['binarisation']}"))
    return rows


def write_html(entries, shared, notes, best, out: Path) -> Path:
    h = ['<!DOCTYPE html><html><head><meta charset="utf-8"><title>ganvae comparison</title><style>',
         "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}",
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}",
         ".best{background:#d8f5d0;font-weight:bold}.row{display:flex;flex-wrap:wrap;gap:16px}",
         ".cell{text-align:center}img{image-rendering:pixelated;max-width:100%}</style></head><body>",
         "<h1>ganvae: model comparison</h1>"]
    h.append('<section id="setting"><h2>Setting</h2><table>')
    h += [f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in _setting_rows(entries)]
    h.append("</table></section>")
    h.append('<section id="metrics"><h2>Metrics</h2><p>Best value per row in green.</p><table><tr><th>metric</th>')
    h += [f"<th>{html.escape(e.label)}</th>" for e in entries] + ["<th>better</th></tr>"]
    for key, label in LABELS.items():
        if not any(key in e.result["metrics"] for e in entries):
            continue
        h.append(f"<tr><td>{html.escape(label)}</td>")
        for e in entries:
            v = e.result["metrics"].get(key)
            cls = ' class="best"' if e.label in best.get(key, set()) else ""
            h.append(f"<td{cls}>{_fmt(v) if v is not None else '-'}</td>")
        h.append(f"<td>{_direction(key)}</td></tr>")
    h.append("</table></section>")
    h.append('<section id="observations"><h2>Observations</h2>' + "".join(f"<p>{html.escape(n)}</p>" for n in notes) + "</section>")
    for section in SECTIONS[3:8]:
        present = [e for e in entries if section in e.files]
        if not present:
            continue
        h.append(f'<section id="{section.lower().replace(" ", "-")}"><h2>{section}</h2><div class="row">')
        for e in present:
            h.append(f'<div class="cell"><img src="{_data_uri(out / e.files[section])}" alt="{html.escape(e.label)}"><br>'
                     f"{html.escape(e.label)}</div>")
        h.append("</div></section>")
    for section, name in shared.items():
        h.append(f'<section id="{section.lower().replace(" ", "-")}"><h2>{section}</h2>'
                 f'<img src="{_data_uri(out / name)}" alt="{section}"></section>')
    h.append("</body></html>")
    path = out / "report.html"
    atomic_write_text(path, "\n".join(h))
    return path


def write_markdown(entries, shared, notes, best, out: Path) -> Path:
    md = ["# ganvae: model comparison", "", "## Setting", "", "| | |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in _setting_rows(entries)]
    md += ["", "## Metrics", "", "Best value per row in **bold**.", "",
           "| metric | " + " | ".join(e.label for e in entries) + " | better |",
           "| --- |" + " ---: |" * len(entries) + " --- |"]
    for key, label in LABELS.items():
        if not any(key in e.result["metrics"] for e in entries):
            continue
        cells = []
        for e in entries:
            v = e.result["metrics"].get(key)
            text = _fmt(v) if v is not None else "-"
            cells.append(f"**{text}**" if e.label in best.get(key, set()) else text)
        md.append(f"| {label} | " + " | ".join(cells) + f" | {_direction(key)} |")
    md += ["", "## Observations", ""] + [f"- {n}" for n in notes]
    for section in SECTIONS[3:8]:
        present = [e for e in entries if section in e.files]
        if present:
            md += ["", f"## {section}", "", "| " + " | ".join(e.label for e in present) + " |",
                   "|" + " :---: |" * len(present), "| " + " | ".join(f"![{e.label}]({e.files[section]})" for e in present) + " |"]
    for section, name in shared.items():
        md += ["", f"## {section}", "", f"![{section}]({name})"]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(md) + "\n")
    return path
