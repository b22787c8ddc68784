"""Hooks into training: the trainer's own outputs and your metric, logger or stopping rule, one mechanism for both
(as Lightning's callbacks; STYLE.md, Pattern 20).

Subclass :class:`Callback`, override the hooks you need, and pass instances to ``ganvae.train(...,
callbacks=[...])`` (or ``ganvae.training.launch.train_run(..., callbacks=[...])``). Every hook receives the running
:class:`~ganvae.training.trainer.Trainer`; what a callback may read from it:

- ``trainer.cfg`` (the run's :class:`~ganvae.config.ExperimentConfig`), ``trainer.run_dir``, ``trainer.device``;
- ``trainer.model`` (the :class:`~ganvae.models.base.GenerativeModel`; call ``model.sample(...)`` inside
  ``torch.no_grad()`` and leave its random state alone: sample with your own ``torch.Generator``, or the run will
  not resume bit for bit);
- ``trainer.state`` (a :class:`~ganvae.training.state.TrainingState`: ``step``, ``epoch``, ``step_in_epoch``,
  ``images_seen``); ``trainer.clock.elapsed()`` is the training time so far (earlier sessions included);
- ``trainer.dist.is_main`` (under torchrun every rank calls the hooks; write files on rank 0 only);
- ``trainer.save_checkpoint(path)``: a resumable checkpoint of the current position at ``path`` (rank 0 writes).
- ``trainer.writer`` (the run's TensorBoard writer, or None), ``trainer.logged`` (in ``on_log``: the interval's
  losses of every step, :class:`~ganvae.training.outputs.LoggedLosses`), ``trainer.epoch_elapsed`` (in
  ``on_epoch_end``: the training time at the epoch's end), ``trainer.warn(message)`` (a warning kept for
  ``summary.json``).

A callback that keeps a state across steps (a best score, a patience count, a clock) returns it from
:meth:`Callback.state_dict` (JSON values) and takes it back in :meth:`Callback.load_state_dict`: the trainer saves
every callback's state in each checkpoint, under :attr:`Callback.state_key`, and restores it on ``--resume``, so a
resumed run's callbacks continue exactly where the interrupted run's were.

To stop training, call ``trainer.request_stop("why")``: the run stops at the end of that step on every rank, writes
a checkpoint at that exact position (so ``--resume`` continues it), fits its prior and summary as after a time
budget, and reports ``stopped_by == "callback"`` with the reason in ``summary.json``.

Hooks run in order: the trainer's built-in outputs (its files: :mod:`ganvae.training.callbacks.outputs`; its checks
and summary: :mod:`ganvae.training.callbacks.builtin`), the trackers (``run.log_to``), then yours. An exception in a
hook stops training (it is a bug to see, not to hide).
"""

from ganvae.training.callbacks.base import Callback, CallbackList, Trainer, TrainResult
from ganvae.training.callbacks.monitor import BestCheckpoint, EarlyStopping

__all__ = ["BestCheckpoint", "Callback", "CallbackList", "EarlyStopping", "Trainer", "TrainResult"]
