"""``ganvae demo``: the README's main job.

On the offline ``mnist-25k`` data (20,000 real MNIST digits inside the package) it trains a GAN, a DCGAN and a VAE
for a fixed number of optimisation steps each (``train.max_steps``), evaluates them with the same protocol, writes
the comparison report and prints its verdict. Budgets in steps, not minutes, make the demo's result the same on any
machine and under any load: a busy machine takes longer and says so (progress lines with the time left), it does not
train less. One line per stage, then progress lines at each tenth of a model's steps.
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
# optimisation steps per model: about a minute each for the default recipes on an idle 2-core CPU, so that the whole
# demo with its evaluation takes about 4 minutes there (benchmarks/RESULTS.md, "The demo by steps"); a family
# without an entry trains DEFAULT_STEPS
DEMO_STEPS = {"gan": 3000, "dcgan": 2000, "vae": 2000}
DEFAULT_STEPS = 2000
DEMO_SAMPLES = 3000  # samples per model for the final metrics (their +- says the noise this leaves)
# seconds per step of each default recipe in the demo on an idle 2-core CPU (quality points included), the first
# estimate of the time left; the speed measured as the demo runs replaces it (same section of RESULTS.md)
SECONDS_PER_STEP = {"gan": 0.036, "dcgan": 0.038, "vae": 0.0085}
# seconds of evaluation and pictures per model, and the report, counted in the time left the demo announces
EVAL_SECONDS = 13.0
QUALITY_POINTS = 4  # in-training quality points per model (at epoch ends), for the report's curves


def demo_steps(model: str, steps: int | None = None) -> int:
    """The step budget of ``model`` in the demo: ``steps`` if given, else its entry in :data:`DEMO_STEPS`."""
    return steps if steps is not None else DEMO_STEPS.get(model, DEFAULT_STEPS)


def demo(out: str | Path | None = None, models: tuple[str, ...] = DEMO_MODELS, dataset: str = "mnist-25k",
         data_dir: str | None = None, n_samples: int = DEMO_SAMPLES, seed: int = 0, steps: int | None = None,
         overrides: list[str] | None = None, say=print) -> Path:
    """Train ``models`` for their step budgets (:data:`DEMO_STEPS`; ``steps``: the same for each) on ``dataset``,
    then compare them. ``overrides`` are ``--set`` settings (``section.key=value``) for every model, as
    ``ganvae train`` takes them. Returns the report path.

    ``say`` prints the stage and progress lines (the CLI's ``print``; ``-q`` passes a no-op)."""
    # torch-heavy: imported when the demo runs, so `ganvae --help` reads DEMO_MODELS without torch
    from ganvae.data.dataset import load_dataset
    from ganvae.inference.report import compare
    from ganvae.metrics.classifier import load_feature_network
    from ganvae.training.trainer import Trainer

    unknown = [m for m in models if m not in model_names()]
    if unknown:
        raise FieldConfigError("models", list(models), f"{{given}}: unknown model(s) {', '.join(unknown)}; choose "
                               f"from {', '.join(model_names())}.", reason="registered models")
    if not models:
        raise FieldConfigError("models", [], "{field}: give at least one model, e.g. {given:models#example}.",
                               values={"models#example": ["gan", "vae"]}, reason="at least one model")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise FieldConfigError("steps", steps, "{given}: give a whole number of optimisation steps per model, at "
                               "least 1, e.g. {given:steps#example}.", values={"steps#example": 500},
                               reason="a whole number >= 1")
    out = Path(out) if out is not None else Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and any(out.iterdir()):
        raise FieldConfigError("out", str(out),
                               f"{out} is not empty; give the demo a new folder with {{given:out#dir}}.",
                               values={"out#dir": Placeholder("DIR")}, reason="an empty or new folder")
    # every config first: a bad --set is refused before any training; the data loaded once for all
    cfgs = [_demo_config(name, dataset, data_dir, seed, demo_steps(name, steps), overrides) for name in models]
    data = load_dataset(cfgs[0].data)
    load_feature_network(cfgs[0].data.dataset, image_shape=data.image_shape)  # the report needs it: before training
    for cfg in cfgs:
        _quality_cadence(cfg, len(data.train_images), overrides)
    clock = _DemoClock([_reference_seconds(cfg) for cfg in cfgs], len(models) * EVAL_SECONDS)
    stages = len(models) + 1
    runs = []
    for i, cfg in enumerate(cfgs):
        say(f"[{i + 1}/{stages}] training {cfg.model_name} for {cfg.train.max_steps} steps on {dataset} "
            f"({clock.left(i)})")
        progress = _Progress(say, clock, i)
        trainer = Trainer(cfg, out / cfg.model_name, data=data, argv=["ganvae", "demo"], callbacks=[progress])
        runs.append(trainer.fit().run_dir)
        clock.done(i, progress.seconds)
    say(f"[{stages}/{stages}] evaluating {len(models)} models ({n_samples} samples each) and writing the report "
        f"({clock.left(len(models))})")
    report = compare(runs, out / "report", n_samples=n_samples, seed=seed, data_dir=data_dir)
    summary = json.loads((report.parent / "report.json").read_text())
    say(f"done in {clock.elapsed() / 60:.1f} min. Report: {report}")
    say(textwrap.fill("Verdict: " + summary["verdict"], width=100))
    return report


def _set(overrides: list[str] | None, *keys: str) -> bool:
    """Whether the user's ``--set`` settings give any of ``keys``."""
    return any(o.split("=", 1)[0].strip() in keys for o in overrides or [])


def _demo_config(name: str, dataset: str, data_dir: str | None, seed: int, steps: int, overrides: list[str] | None):
    """The demo's settings for ``name``, the user's ``--set`` on top (a ``train.max_steps`` there wins)."""
    cfg = build_config(name, overrides=[f"data.dataset={dataset}", *([f"data.data_dir={data_dir}"] if data_dir else []),
                                        f"train.seed={seed}", "train.epochs=100000", "train.checkpoint_every=1000",
                                        "train.eval_samples=1000", *(overrides or [])])
    if not _set(overrides, "train.max_steps"):
        cfg.train.max_steps = steps
    return cfg


def _quality_cadence(cfg, n_images: int, overrides: list[str] | None) -> None:
    """In-training quality points at epoch ends, about :data:`QUALITY_POINTS` over the budget: a cadence in epochs,
    so the points fall at the same steps on any machine (unless the user's ``--set`` chose one)."""
    if not _set(overrides, "train.eval_every", "train.eval_interval_minutes"):
        epochs = cfg.train.max_steps * cfg.train.batch_size / max(n_images, 1)
        cfg.train.eval_every = max(1, round(epochs / QUALITY_POINTS))


def _reference_seconds(cfg) -> float:
    """Seconds the budget takes on an idle 2-core CPU (:data:`SECONDS_PER_STEP`; another family: the speed check's
    reference images/s), for the first estimate of the time left; measured speeds replace it as the demo runs."""
    from ganvae.training.speed_check import REFERENCE_IMAGES_PER_SECOND

    if cfg.model_name in SECONDS_PER_STEP:
        return cfg.train.max_steps * SECONDS_PER_STEP[cfg.model_name]
    speed = REFERENCE_IMAGES_PER_SECOND.get(cfg.model_name, 1000.0)
    return cfg.train.max_steps * cfg.train.batch_size / speed


class _DemoClock:
    """The time left in the demo: each model's steps at the speed measured so far (the reference speeds scaled by
    how much slower this machine turned out to be), plus the evaluation."""

    def __init__(self, reference_s: list[float], eval_s: float):
        self.reference_s, self.eval_s = reference_s, eval_s
        self.start = time.monotonic()
        self.slowdown = 1.0  # measured seconds / reference seconds, of the models trained so far
        self._measured, self._reference = 0.0, 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def done(self, i: int, seconds: float) -> None:
        self._measured += seconds
        self._reference += self.reference_s[i]
        self.slowdown = self._measured / max(self._reference, 1e-9)

    def left(self, i: int, current_s: float | None = None, current_total_s: float | None = None) -> str:
        """``about N min left`` at model ``i`` (``i`` = the number of models: the evaluation), with
        ``current_s`` of the ``current_total_s`` seconds of model ``i``'s training still to go when measured (else
        estimated)."""
        slowdown = self.slowdown
        if current_total_s is not None and not self._reference:  # the first model: its own speed is the measure
            slowdown = max(current_total_s / max(self.reference_s[i], 1e-9), 1e-3)
        if current_s is None:
            current_s = self.reference_s[i] * slowdown if i < len(self.reference_s) else 0.0
        rest = sum(self.reference_s[i + 1 :]) * slowdown + self.eval_s * max(slowdown, 1.0)
        return f"about {(current_s + rest) / 60:.1f} min left"


class _Progress:
    """Prints a line at each tenth of a model's steps: steps done, speed, and the demo's time left (a callback)."""

    def __init__(self, say, clock: _DemoClock, index: int):
        self.say, self.clock, self.index = say, clock, index
        self.next_tenth = 1
        self.start = time.monotonic()
        self.seconds = 0.0

    # the callback contract (ganvae.training.callbacks.Callback), without importing torch at module import
    def on_train_start(self, trainer) -> None:
        self.start = time.monotonic()

    def on_log(self, trainer, losses, images_per_second) -> None:
        total = trainer.cfg.train.max_steps
        step = trainer.state.step
        if step * 10 < self.next_tenth * total or step >= total:
            return
        self.next_tenth = step * 10 // total + 1
        spent = time.monotonic() - self.start
        whole = spent / step * total
        self.say(f"      {trainer.cfg.model_name}: {step}/{total} steps ({100 * step // total}%), "
                 f"{step / max(spent, 1e-9):.0f} steps/s, {self.clock.left(self.index, whole - spent, whole)}")

    def on_train_end(self, trainer, result) -> None:
        self.seconds = time.monotonic() - self.start
