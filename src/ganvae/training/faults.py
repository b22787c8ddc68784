"""What training leaves behind when an error ends it (issue 39, item 5): a checkpoint of the exact position and
the losses logged up to it, so a callback that raises, a tracker that fails or bad data cost at most the step in
progress, and the way to resume is in the log. An interrupt (Ctrl-C, SIGTERM) is not an error: the trainer's
:class:`~ganvae.training.signals.StopFlag` stops it at a step's end with its own checkpoint.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ganvae.errors import Interrupted, TrainingDiverged
from ganvae.training import outputs
from ganvae.training.callbacks.outputs import LossLog

if TYPE_CHECKING:
    from ganvae.training.callbacks.base import Trainer

log = logging.getLogger(__name__)


def checkpoint_before_error(trainer: Trainer, err: Exception) -> None:
    """Called with the error about to leave :meth:`Trainer.fit` (rank 0): the losses not yet logged, then the run's
    checkpoint at the current position, unless the last checkpoint is already there. Nothing after a divergence
    (the weights are not finite: the last checkpoint is the one to resume) or inside a training step (the
    optimisers may have stepped one network of several, so the position is not exact: the last checkpoint is the
    last exact one). The first error is the one raised; a failure to save is logged beside it."""
    if isinstance(err, (TrainingDiverged, Interrupted)) or not trainer.dist.is_main:
        return
    resume = (f"ganvae train {trainer.cfg.model_name} --out {trainer.run_dir} --resume (in Python: "
              f"ganvae.train(..., out=..., resume=True))")
    current = trainer.last_checkpoint_step == trainer.state.step and trainer.ckpt_path.exists()
    if trainer.in_step or current:
        where = (f"its last checkpoint is at step {trainer.last_checkpoint_step}" if trainer.ckpt_path.exists()
                 else "it has no checkpoint yet, so it starts again")
        log.error("training stopped by %s at step %d; %s. Fix the cause, then continue with: %s",
                  type(err).__name__, trainer.state.step, where, resume)
        return
    if not flush_losses(trainer):  # the unlogged steps diverged: their weights are not worth a checkpoint
        log.error("training stopped by %s at step %d, after losses that are not finite; its last checkpoint is at "
                  "step %s", type(err).__name__, trainer.state.step, trainer.last_checkpoint_step)
        return
    try:
        trainer.save_checkpoint(trainer.ckpt_path)  # not through the callbacks: a failing on_checkpoint must not
    except Exception as save_err:  # noqa: BLE001 (the first error is the one to raise; this one is said)
        log.error("training stopped by %s at step %d, and its checkpoint could not be written (%s: %s)",
                  type(err).__name__, trainer.state.step, type(save_err).__name__, save_err)
        return
    trainer.last_checkpoint_step = trainer.state.step
    log.error("training stopped by %s at step %d; a checkpoint of this exact position is at %s. Fix the cause, "
              "then continue with: %s", type(err).__name__, trainer.state.step, trainer.ckpt_path, resume)


def flush_losses(trainer: Trainer) -> bool:
    """The losses of the steps trained since the last log into ``losses.csv``, through :class:`LossLog` alone
    (another callback's ``on_log`` may be what failed), so the record reaches the checkpoint's step and a resumed
    run continues it without a gap. Not in a distributed run (the sync is a collective, and a peer may be gone).
    Returns False when those losses are not finite (the run diverged)."""
    pending = trainer.pending_losses
    if not pending or trainer.dist.enabled:
        return True
    try:
        advice = lambda kept: outputs.divergence_advice(trainer.cfg, trainer.run_dir, kept)  # noqa: E731
        trainer.logged = outputs.sync_losses(pending, trainer.dist, trainer.device, trainer.ckpt_path, advice)
        for cb in trainer.callbacks.callbacks:
            if isinstance(cb, LossLog):
                cb.on_log(trainer, trainer.logged.last(), math.nan)
        pending.clear()
    except TrainingDiverged:
        return False
    except Exception as err:  # noqa: BLE001 (the losses are lost, the checkpoint is not)
        log.warning("the losses of the last %d steps were not written to losses.csv (%s: %s)", len(pending),
                    type(err).__name__, err)
    return True
