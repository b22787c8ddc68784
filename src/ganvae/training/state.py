"""The training position as one typed object: what a checkpoint saves and a resumed run restores, whole.

Weights and optimiser moments belong to the model and its optimisers; everything else that makes a resumed run
draw the same batches and noise as an uninterrupted one is here: the counters, the time already trained, the
grids' fixed noise and the global random states. The header keys are those checkpoints have always had, so older
runs still resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganvae.common import seeds
from ganvae.errors import CheckpointError
from ganvae.storage import checkpoint as ckpt_io

# the position's header keys, in the order the checkpoint lists them
POSITION_KEYS = ("step", "epoch", "step_in_epoch", "elapsed_seconds", "images_seen")


@dataclass
class TrainingState:
    """Where a run is: ``step`` optimiser steps done, ``epoch`` epochs completed and ``step_in_epoch`` steps into
    the next, ``elapsed_seconds`` of training (earlier sessions included, evaluation excluded), ``images_seen``
    (global, over every rank), the ``fixed_noise`` ``(n_fixed, Z)`` of the per-epoch grids, and the global random
    states at the moment it was saved (``rng_tensors``: torch CPU/CUDA; ``rng_meta``: Python, NumPy)."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    elapsed_seconds: float = 0.0
    images_seen: int = 0
    fixed_noise: torch.Tensor | None = None
    rng_tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    rng_meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def at(self, epoch: int, step_in_epoch: int, elapsed_seconds: float) -> TrainingState:
        """This state at another position of the same step (a checkpoint at an epoch's end, or the last one again)."""
        return dataclasses.replace(self, epoch=epoch, step_in_epoch=step_in_epoch, elapsed_seconds=elapsed_seconds)

    def counters(self) -> dict[str, Any]:
        """The header entries of the position (``step``, ``epoch``, ...)."""
        return {k: getattr(self, k) for k in POSITION_KEYS}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.fixed_noise is None else {"fixed_noise": self.fixed_noise}

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> TrainingState:
        """The state a checkpoint saved; refused, naming the file, when it is not a training checkpoint."""
        missing = [k for k in ("step", "epoch", "step_in_epoch") if k not in ckpt.header]
        if missing or "fixed_noise" not in ckpt.tensors or "rng.torch" not in ckpt.tensors:
            what = ", ".join(missing + [k for k in ("fixed_noise", "rng.torch") if k not in ckpt.tensors])
            raise CheckpointError(f"{ckpt.path}: not a training checkpoint (no {what} in it), so it cannot be "
                                  f"resumed; start a new run folder.")
        h = ckpt.header
        return cls(step=h["step"], epoch=h["epoch"], step_in_epoch=h["step_in_epoch"],
                   elapsed_seconds=h.get("elapsed_seconds", 0.0), images_seen=h.get("images_seen", 0),
                   fixed_noise=ckpt.tensors["fixed_noise"],
                   rng_tensors={k: v for k, v in ckpt.tensors.items() if k.startswith("rng.")},
                   rng_meta=h.get("rng", {}))

    def restore_rng(self) -> None:
        """Set the global random states to those saved (the data order and every noise draw continue from there)."""
        ckpt_io.restore_rng_state(ckpt_io.Checkpoint({"rng": self.rng_meta}, self.rng_tensors, path=None))


class TrainingClock:
    """The run's training time, in one place: seconds of earlier sessions plus this session's, less what this
    session spent measuring (in-training evaluation, the prior's fit); clustering counts against the budget but not
    as training speed.

    - :meth:`elapsed`: the whole run's training seconds (checkpoints, summary.json, quality points' x-axis);
    - :meth:`session`: this session's training seconds (the ``--max-minutes`` budget);
    - :meth:`stepping`: this session's seconds of optimisation steps only (images per second).
    """

    def __init__(self, before: float = 0.0):
        self.before = before  # training seconds of the earlier sessions
        self.start = time.monotonic()
        self.excluded = 0.0  # measuring, not training: left out of the budget and of elapsed time
        self.clustering = 0.0  # self-conditioning's clusterings: in the budget, not in the speed

    def elapsed(self) -> float:
        return self.before + self.session()

    def session(self) -> float:
        return time.monotonic() - self.start - self.excluded

    def stepping(self) -> float:
        return self.session() - self.clustering

    def excluding(self) -> contextlib.AbstractContextManager[None]:
        """Time spent inside is not training time (evaluation, a fit, a picture)."""
        return self._counted("excluded")

    def clustering_time(self) -> contextlib.AbstractContextManager[None]:
        """Time spent inside counts against the budget but not as training speed."""
        return self._counted("clustering")

    @contextlib.contextmanager
    def _counted(self, counter: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            setattr(self, counter, getattr(self, counter) + time.monotonic() - start)


@dataclass
class TrainResult:
    """What a training session did: where it stopped, how fast, and why."""

    run_dir: Path
    checkpoint: Path
    step: int
    epoch: int
    images_per_second: float
    seconds: float
    stopped_by: str  # "epochs", "steps", "time", "interrupt", "callback"
    last_losses: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None  # a callback's request_stop(reason)


def fixed_noise(model, n: int, seed: int) -> torch.Tensor:
    """The latents every sample grid of a run is drawn from (same seed, same grids)."""
    g = torch.Generator().manual_seed(seed + seeds.FIXED_NOISE)
    return model.latent_prior.draw(n, g)
