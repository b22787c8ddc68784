"""Callbacks that watch one in-training metric: :class:`EarlyStopping` (stop when it stops improving) and
:class:`BestCheckpoint` (keep the checkpoint of its best value), as Lightning's ``EarlyStopping`` and
``ModelCheckpoint(monitor=..., mode=...)``, Pythae's and StudioGAN's best-model saving do.

Both read the quality points of ``metrics_during_training.csv`` (``train.eval_every`` or
``train.eval_interval_minutes`` must be set, or there is nothing to watch) and keep their progress in the run's
checkpoints, so a resumed run continues their patience and their best score exactly.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ganvae.metrics.registry import FID, current_key
from ganvae.training.callbacks.base import Callback, Trainer

log = logging.getLogger(__name__)

Mode = Literal["min", "max"]


class _Monitor(Callback):
    """Watches ``monitor`` (a column of ``metrics_during_training.csv``) for improvements by more than
    ``min_delta`` in the direction ``mode``; keeps the best value and the points since it."""

    def __init__(self, monitor: str, mode: Mode, min_delta: float):
        if mode not in ("min", "max"):
            raise ValueError(f"{type(self).__name__}: mode={mode!r}; give 'min' (lower is better, e.g. "
                             f"classifier_fd) or 'max' (higher is better, e.g. coverage).")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"{type(self).__name__}: min_delta={min_delta} must be a finite number >= 0.")
        if current_key(monitor) != monitor:  # a key of ganvae 0.x: watch the same column under its new name
            warnings.warn(f"{type(self).__name__}(monitor={monitor!r}): the metric is now called "
                          f"{current_key(monitor)!r}; watching that. Give monitor={current_key(monitor)!r}.",
                          FutureWarning, stacklevel=3)
            monitor = current_key(monitor)
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None  # the best value seen, None before the first point
        self.best_step: int | None = None  # the step it was measured at
        self.waited = 0  # points since the last improvement
        self._warned = False

    def _observe(self, metrics: Mapping[str, float]) -> bool | None:
        """Whether this point improved on the best (updating it); None when the point lacks the metric (said once)."""
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(value):
            if not self._warned:
                log.warning("%s: the quality points have no finite %r (they have %s); it watches nothing",
                            type(self).__name__, self.monitor, ", ".join(sorted(metrics)))
                self._warned = True
            return None
        better = self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                       else value > self.best + self.min_delta)
        if better:
            self.best, self.best_step, self.waited = float(value), int(metrics.get("step", 0)), 0
        else:
            self.waited += 1
        return better

    def on_train_start(self, trainer: Trainer) -> None:
        tc = trainer.cfg.train
        if not tc.eval_every and not tc.eval_interval_minutes:  # no quality points: it would watch nothing
            trainer.warn(f"{type(self).__name__}(monitor={self.monitor!r}) watches the in-training quality points, "
                         f"which are off: set train.eval_every (epochs) or train.eval_interval_minutes")

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "mode": self.mode, "best": self.best, "best_step": self.best_step,
                "waited": self.waited}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if (current_key(str(state.get("monitor"))), state.get("mode")) != (self.monitor, self.mode):
            log.info("%s: the interrupted run watched %s (%s); this one watches %s (%s), from scratch",
                     type(self).__name__, state.get("monitor"), state.get("mode"), self.monitor, self.mode)
            return
        self.best, self.best_step, self.waited = state.get("best"), state.get("best_step"), int(state.get("waited", 0))


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` quality points (a useful rule for
    long budgets: ``--max-minutes`` as a ceiling, this as the stop).

    Args:
        patience: quality points without improvement before stopping.
        min_delta: the improvement that counts (in the metric's units).
        monitor: the column of ``metrics_during_training.csv`` to watch (default the Frechet distance).
        mode: ``"min"`` when lower is better (``classifier_fd``), ``"max"`` when higher is (``class_entropy``).
        metric: the former name of ``monitor``.
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, monitor: str = FID.key, mode: Mode = "min",
                 metric: str | None = None):
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience={patience} must be at least 1.")
        super().__init__(metric or monitor, mode, min_delta)
        self.patience = patience

    @property
    def metric(self) -> str:
        return self.monitor

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self._observe(metrics) is False and self.waited >= self.patience:
            trainer.request_stop(f"{self.monitor} has not improved on {self.best:.4g} for {self.waited} quality "
                                 f"points")


class BestCheckpoint(_Monitor):
    """Keep a resumable checkpoint of the position where ``monitor`` was best: ``RUN/checkpoints/best.safetensors``
    (the run's ``last.safetensors`` stays where training stopped). Sample, evaluate or export it as any
    checkpoint: ``ganvae sample RUN/checkpoints/best.safetensors``.

    Args:
        monitor: the column of ``metrics_during_training.csv`` to watch (default the Frechet distance).
        mode: ``"min"`` when lower is better, ``"max"`` when higher is.
        min_delta: the improvement that counts.
        filename: the checkpoint's name in ``RUN/checkpoints``.
    """

    def __init__(self, monitor: str = FID.key, mode: Mode = "min", min_delta: float = 0.0,
                 filename: str = "best.safetensors"):
        super().__init__(monitor, mode, min_delta)
        if Path(filename).name != filename or not filename.endswith(".safetensors") or filename == "last.safetensors":
            raise ValueError(f"BestCheckpoint: filename={filename!r}; give a plain name ending in .safetensors, other "
                             f"than last.safetensors (the run's own).")
        self.filename = filename

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        if self._observe(metrics):
            path = trainer.save_checkpoint(trainer.run_dir / "checkpoints" / self.filename)
            log.info("best %s so far (%.4g at step %d): %s", self.monitor, self.best, self.best_step, path)
