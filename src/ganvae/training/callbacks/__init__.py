"""Hooks into training: your own metric, logger or stopping rule without editing the trainer.

Subclass :class:`Callback`, override the hooks you need, and pass instances to ``ganvae.train(...,
callbacks=[...])`` (or ``Trainer(..., callbacks=[...])``). Every hook receives the running
:class:`~ganvae.training.trainer.Trainer`; what a callback may read from it:

- ``trainer.cfg`` (the run's :class:`~ganvae.config.ExperimentConfig`), ``trainer.run_dir``, ``trainer.device``;
- ``trainer.model`` (the :class:`~ganvae.models.base.GenerativeModel`; call ``model.sample(...)`` inside
  ``torch.no_grad()`` and leave its random state alone: sample with your own ``torch.Generator``, or the run will
  not resume bit for bit);
- ``trainer.state`` (a :class:`~ganvae.training.state.TrainingState`: ``step``, ``epoch``, ``step_in_epoch``,
  ``images_seen``, ``elapsed_seconds`` of earlier sessions; ``trainer.elapsed()`` is the training time so far);
- ``trainer.dist.is_main`` (under torchrun every rank calls the hooks; write files on rank 0 only).

To stop training, call ``trainer.request_stop("why")``: the run stops at the end of that step on every rank, writes
a checkpoint at that exact position (so ``--resume`` continues it), fits its prior and summary as after a time
budget, and reports ``stopped_by == "callback"`` with the reason in ``summary.json``.

Hooks run in the order given, after the trainer's own outputs. An exception in a hook stops training (it is a bug
to see, not to hide).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

# the hooks' ``trainer`` is a ganvae.training.trainer.Trainer, and on_train_end's ``result`` its TrainResult; not
# imported here, since the trainer imports this module
Trainer = Any
TrainResult = Any


class Callback:
    """Override any of these; each does nothing by default."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Once, after set-up and resume, before the first step of this session."""

    def on_step_end(self, trainer: Trainer, losses: Mapping[str, torch.Tensor]) -> None:
        """After every optimisation step (``trainer.state.step`` already counts it). ``losses`` are the step's
        tensors, not yet synced: ``.item()`` here waits for the device each step (use :meth:`on_log` for
        numbers)."""

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        """Every ``train.log_every`` steps (and at epoch ends): the last step's losses, averaged over ranks."""

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        """After each in-training quality point (``train.eval_every`` / ``train.eval_interval_minutes``): the row
        of ``metrics_during_training.csv`` (``fid``, ``class_entropy``, ...). Rank 0 only."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After each whole epoch; ``epoch`` is the number of epochs completed (1 after the first)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was written to ``path`` (rank 0; other ranks get it too, after rank 0 wrote it)."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Once, after ``summary.json``, however training stopped short of an error (an interrupt included)."""


class CallbackList:
    """The trainer's view of its callbacks: one call runs a hook on each, in order."""

    HOOKS = ("on_train_start", "on_step_end", "on_log", "on_metrics", "on_epoch_end", "on_checkpoint", "on_train_end")

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks or ())
        for cb in self.callbacks:
            if not any(callable(getattr(cb, h, None)) for h in self.HOOKS):
                raise TypeError(f"callbacks: {cb!r} has none of the hooks {', '.join(self.HOOKS)}; subclass "
                                "ganvae.Callback and override the ones you need.")

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def __call__(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)


class EarlyStopping(Callback):
    """Stop when the in-training FID has not improved by ``min_delta`` for ``patience`` quality points (a worked
    example of a stopping rule, and a useful one for long budgets: ``--max-minutes`` as a ceiling, this as the
    stop).

    Args:
        patience: quality points without improvement before stopping.
        min_delta: the improvement that counts (FID points).
        metric: the column of ``metrics_during_training.csv`` to watch (lower is better).
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, metric: str = "fid"):
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience={patience} must be at least 1.")
        self.patience, self.min_delta, self.metric = patience, min_delta, metric
        self.best, self.waited = float("inf"), 0

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        value = metrics[self.metric]
        if value < self.best - self.min_delta:
            self.best, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.request_stop(f"{self.metric} has not improved on {self.best:.4g} for {self.waited} quality points")
