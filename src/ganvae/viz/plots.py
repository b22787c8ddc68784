"""Matplotlib plots (the Agg backend is chosen inside the functions, never at import)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ganvae.common.files import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_csv_columns(path: str | Path) -> dict[str, list[float]]:
    """Columns of a numeric CSV (``losses.csv``, ``metrics_during_training.csv``) as lists; blank cells are NaN."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    return {k: [float(r[k]) if r[k] else float("nan") for r in rows] for k in rows[0]}


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, so noisy per-step GAN losses show their trend."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def plot_losses(csv_path: str | Path, out: str | Path, title: str = "losses") -> Path:
    """Per-step losses (light) with their moving average (dark), one panel per loss."""
    plt = _pyplot()
    cols = read_csv_columns(csv_path)
    names = [k for k in cols if k not in ("step", "epoch")]
    fig, axes = plt.subplots(len(names) or 1, 1, figsize=(7, 2.2 * max(1, len(names))), sharex=True, squeeze=False)
    window = max(1, len(cols.get("step", [])) // 50)
    for ax, name in zip(axes[:, 0], names):
        ax.plot(cols["step"], cols[name], alpha=0.3, lw=0.8)
        ax.plot(cols["step"], smooth(cols[name], window), lw=1.5)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(title)
    atomic_write_bytes(out, figure_bytes(fig))
    return Path(out)
