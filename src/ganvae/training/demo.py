"""``ganvae demo``: the README's main job.

On the offline ``mnist-25k`` data (20,000 real MNIST digits inside the package) it trains a GAN, a DCGAN and a VAE
for the same wall-clock budget each (in-training metrics excluded from the budget), evaluates them with the same
protocol, writes the comparison report and prints its verdict. One line per stage, with the time left.
"""

from __future__ import annotations

import json
import logging
import textwrap
import time
from pathlib import Path

from ganvae.config import build_config
from ganvae.errors import FieldConfigError, Placeholder
from ganvae.registry import model_names

log = logging.getLogger(__name__)

DEMO_MODELS = ("gan", "dcgan", "vae")
# training per model, so that the whole demo takes a few minutes (benchmarks/RESULTS.md, "The demo's data")
DEMO_MINUTES = 1.5
# evaluation + pictures per model, counted in the time left that the demo announces (benchmarks/RESULTS.md, "The
# demo's data")
EVAL_MINUTES = 0.25


def demo(out: str | Path | None = None, minutes: float = DEMO_MINUTES, models: tuple[str, ...] = DEMO_MODELS,
         dataset: str = "mnist-25k", data_dir: str | None = None, n_samples: int = 5000, seed: int = 0,
         extra_overrides: list[str] | None = None, say=print) -> Path:
    """Train ``models`` for ``minutes`` each on ``dataset``, then compare them. Returns the report path.

    ``say`` prints the stage lines (the CLI's ``print``; ``-q`` passes a no-op)."""
    # torch-heavy: imported when the demo runs, so `ganvae --help` reads DEMO_MODELS and DEMO_MINUTES without torch
    from ganvae.inference.report import compare
    from ganvae.training.trainer import Trainer

    unknown = [m for m in models if m not in model_names()]
    if unknown:
        raise FieldConfigError("models", list(models), f"{{given}}: unknown model(s) {', '.join(unknown)}; choose "
                               f"from {', '.join(model_names())}.", reason="registered models")
    if not models:
        raise FieldConfigError("models", [], "{field}: give at least one model, e.g. {given:models#example}.",
                               values={"models#example": ["gan", "vae"]}, reason="at least one model")
    if not minutes > 0:
        raise FieldConfigError("minutes", minutes, "{given}: give a positive training budget per model, e.g. "
                               "{given:minutes#example}.", values={"minutes#example": 1.5}, reason="positive")
    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise FieldConfigError("out", str(out),
                               f"{out} is not empty; give the demo a new folder with {{given:out#dir}}.",
                               values={"out#dir": Placeholder("DIR")}, reason="an empty or new folder")
    start = time.monotonic()
    stages = len(models) + 1

    def left(stage_minutes_left: float) -> str:
        return f"about {stage_minutes_left:.1f} min left"

    runs = []
    for i, name in enumerate(models):
        cfg = build_config(name, overrides=[
            f"data.dataset={dataset}", "train.epochs=100000", f"train.max_minutes={minutes}", f"train.seed={seed}",
            # about 8 quality points per model, whatever its epoch length
            f"train.eval_interval_minutes={minutes / 8}", "train.eval_samples=1000", "train.checkpoint_every=1000",
            *(extra_overrides or []),
        ])
        if data_dir is not None:
            cfg.data.data_dir = data_dir
        remaining = (len(models) - i) * minutes + len(models) * EVAL_MINUTES
        say(f"[{i + 1}/{stages}] training {name} for {minutes:g} min on {dataset} ({left(remaining)})")
        runs.append(Trainer(cfg, out / name, argv=["ganvae", "demo"]).fit().run_dir)
    say(f"[{stages}/{stages}] evaluating {len(models)} models ({n_samples} samples each) and writing the report "
        f"({left(len(models) * EVAL_MINUTES)})")
    report = compare(runs, out / "report", n_samples=n_samples, seed=seed, data_dir=data_dir)
    total = (time.monotonic() - start) / 60
    summary = json.loads((report.parent / "report.json").read_text())
    say(f"done in {total:.1f} min. Report: {report}")
    say(textwrap.fill("Verdict: " + summary["verdict"], width=100))
    return report
