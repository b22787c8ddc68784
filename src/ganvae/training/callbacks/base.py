"""The callback contract (see :mod:`ganvae.training.callbacks`) and the list the trainer calls."""

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

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the first step of epoch ``epoch`` (from 0), when a session starts at an epoch's beginning."""

    def on_step_end(self, trainer: Trainer, losses: Mapping[str, torch.Tensor]) -> None:
        """After every optimisation step (``trainer.state.step`` already counts it). ``losses`` are the step's
        tensors, not yet synced: ``.item()`` here waits for the device each step (use :meth:`on_log` for
        numbers)."""

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        """Every ``train.log_every`` steps (and at epoch ends): the last step's losses, averaged over ranks."""

    def on_mid_epoch(self, trainer: Trainer, epoch: float) -> None:
        """At each logging interval inside an epoch that training goes on with (not at its end, not at a stop), on
        every rank; ``epoch`` is fractional (2.5 = half-way through the third epoch). Checks that need not wait for
        an epoch's end go here (quality points by time, mid-epoch checkpoints)."""

    def on_metrics(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        """After each in-training quality point (``train.eval_every`` / ``train.eval_interval_minutes``): the row
        of ``metrics_during_training.csv`` (``classifier_fd``, ``class_entropy``, ...). Rank 0 only."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After each whole epoch; ``epoch`` is the number of epochs completed (1 after the first)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was written to ``path`` (rank 0; other ranks get it too, after rank 0 wrote it)."""

    def on_fit_end(self, trainer: Trainer, stopped_by: str) -> None:
        """Once, when this session's steps are over (``stopped_by``: epochs, time, callback or interrupt), before
        ``summary.json`` is written: the place for work on the trained model (a fit, a last check, a picture)."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Once, after ``summary.json``, however training stopped short of an error (an interrupt included)."""

    # ---- state that survives a restart
    @property
    def state_key(self) -> str:
        """The name this callback's state is saved under in a checkpoint (two of one class get ``#2``, ...)."""
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """What this callback must remember across a restart, as JSON values; nothing by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned in the interrupted run."""


class CallbackList:
    """The trainer's view of its callbacks: one call runs a hook on each, in order; their states saved and restored
    together."""

    HOOKS = ("on_train_start", "on_epoch_start", "on_step_end", "on_log", "on_mid_epoch", "on_metrics", "on_epoch_end",
             "on_checkpoint", "on_fit_end", "on_train_end")

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

    def _keyed(self) -> list[tuple[str, Any]]:
        """Each callback with its unique state key (the second of a class gets ``#2``, in order)."""
        seen: dict[str, int] = {}
        out = []
        for cb in self.callbacks:
            key = getattr(cb, "state_key", type(cb).__qualname__)
            seen[key] = seen.get(key, 0) + 1
            out.append((key if seen[key] == 1 else f"{key}#{seen[key]}", cb))
        return out

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """Every callback's non-empty state, by its key (what a checkpoint's header keeps)."""
        states = {}
        for key, cb in self._keyed():
            state = cb.state_dict() if callable(getattr(cb, "state_dict", None)) else {}
            if state:
                states[key] = dict(state)
        return states

    def load_state_dict(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Give each callback the state saved under its key (callbacks new in this session start afresh)."""
        for key, cb in self._keyed():
            if key in states and callable(getattr(cb, "load_state_dict", None)):
                cb.load_state_dict(states[key])

