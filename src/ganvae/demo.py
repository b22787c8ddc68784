"""``ganvae demo``: the README's main job.

On the offline ``mnist-5k`` data it trains a GAN, a DCGAN and a VAE for the same wall-clock
budget each (in-training metrics every epoch, excluded from the budget), evaluates them with
the same protocol and writes the comparison report.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ganvae.config import build_config
from ganvae.errors import GanvaeError
from ganvae.training.trainer import Trainer
from ganvae.viz.report import compare

log = logging.getLogger(__name__)

DEMO_MODELS = ("gan", "dcgan", "vae")


def demo(out: str | Path | None = None, minutes: float = 3.0, models: tuple[str, ...] = DEMO_MODELS,
         dataset: str = "mnist-5k", data_dir: str | None = None, n_samples: int = 5000, seed: int = 0,
         extra_overrides: list[str] | None = None) -> Path:
    """Train ``models`` for ``minutes`` each on ``dataset``, then compare them. Returns the report path."""
    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise GanvaeError(f"{out} is not empty; give the demo a new folder with --out DIR.")
    start = time.monotonic()
    runs = []
    for name in models:
        cfg = build_config(name, overrides=[
            f"data.dataset={dataset}", "train.epochs=100000", f"train.max_minutes={minutes}", f"train.seed={seed}",
            # about 12 quality points per model, whatever its epoch length
            f"train.eval_interval_minutes={minutes / 12}", "train.eval_samples=1000", "train.checkpoint_every=1000",
            *(extra_overrides or []),
        ])
        if data_dir is not None:
            cfg.data.data_dir = data_dir
        log.info("demo: training %s for %.1f minutes", name, minutes)
        runs.append(Trainer(cfg, out / name, argv=["ganvae", "demo"]).fit().run_dir)
    log.info("demo: evaluating and writing the report")
    report = compare(runs, out / "report", n_samples=n_samples, seed=seed, data_dir=data_dir)
    log.info("demo finished in %.1f minutes: open %s", (time.monotonic() - start) / 60, report)
    return report
