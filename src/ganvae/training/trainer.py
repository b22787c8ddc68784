"""The model-agnostic training loop.

The trainer owns the data stream, budgets, the training position, its clock, the divergence check and the
checkpoints at a stop; everything else it produces is a callback like a user's, called in order: its files (the
loss log, sample grids, in-training quality points, checkpoints on their cadence:
:mod:`ganvae.training.callbacks.outputs`), its checks and summary (the speed check, the learned prior's fit,
``summary.json``: :mod:`ganvae.training.callbacks.builtin`), the trackers, then yours. Every callback's state is saved
in each checkpoint and restored on resume. The model owns its networks, optimisers and training step. Nothing here
depends on which family is trained.

Exact resumption: the data order of epoch ``e`` depends only on ``(seed, e)``, and a checkpoint stores weights,
optimiser moments, all random states and the position inside the epoch; so a resumed run draws the same batches and
the same noise as an uninterrupted one and, on CPU, produces the same losses bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import torch

from ganvae.common.device import bf16_autocast, resolve_device, resolve_precision, seed_everything
from ganvae.common.files import check_output
from ganvae.common.pixels import scale_images
from ganvae.config import ExperimentConfig, validate
from ganvae.data.dataset import ImageData, iter_batch_indices, steps_per_epoch, with_color
from ganvae.data.provenance import load_named
from ganvae.errors import ConfigError, GanvaeError, Interrupted
from ganvae.models.base import check_step_result
from ganvae.models.clustering import ClusteringStopped, stop_when
from ganvae.models.conditioning import check_conditional_data, check_pseudo_classes
from ganvae.models.step import StepContext
from ganvae.registry import build_model
from ganvae.storage import checkpoint as ckpt_io
from ganvae.storage.run_folder import RunLock, default_run_dir, open_run_folder
from ganvae.training import faults, outputs
from ganvae.training.callbacks import Callback, CallbackList
from ganvae.training.callbacks.builtin import CollapseCheck, LatentPriorFit, RunSummary, SpeedCheck
from ganvae.training.callbacks.outputs import LossLog, PeriodicCheckpoint, QualityPoints, SampleGrids
from ganvae.training.denormals import flush_denormals
from ganvae.training.distributed import DistContext, collective_failure
from ganvae.training.resume import config_on_resume, restore_training
from ganvae.training.signals import StopFlag
from ganvae.training.state import TrainingClock, TrainingState, TrainResult, fixed_noise  # noqa: F401 (TrainResult)
from ganvae.training.step_memory import check_step_fits
from ganvae.training.tracking import tracker_callbacks

log = logging.getLogger(__name__)


class Trainer:
    """Train ``cfg.model_name`` on ``cfg.data`` into ``run_dir``.

    Args:
        cfg: the full experiment config.
        run_dir: output folder; default ``cfg.run.out`` or ``runs/<model>-<timestamp>``.
        data: an already loaded dataset (tests pass tiny ones); default loads ``cfg.data``.
        resume: the run's checkpoint, read by the one way in, :func:`ganvae.training.launch.resume_checkpoint`
            (which the front ends' :func:`~ganvae.training.launch.train_run` calls): training continues from it.
        argv: the command line to record in the run folder.
        callbacks: :class:`~ganvae.training.callbacks.Callback` objects whose hooks run during training (a metric, a
            logger, a stopping rule: ``trainer.request_stop(reason)``).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path | None = None, data: ImageData | None = None,
                 resume: ckpt_io.Checkpoint | None = None, argv: list[str] | None = None,
                 dist: DistContext | None = None, callbacks: list[Callback] | None = None):
        self.dist = dist or DistContext.from_env()
        # the built-in outputs first (at an epoch's end: grid, quality point, checkpoint; summary.json before any
        # other on_train_end), then run.log_to's trackers, then the caller's
        prior_fit = LatentPriorFit()
        self.callbacks = CallbackList([LossLog(), SampleGrids(cfg.run.gif_fps), QualityPoints(), PeriodicCheckpoint(),
                                       RunSummary(prior_fit), prior_fit, SpeedCheck(), CollapseCheck(),
                                       *tracker_callbacks(cfg.run),
                                       *(callbacks or ())])
        self._stop_reason: str | None = None
        self.warnings: list[str] = []  # this session's speed, budget and collapse warnings, for summary.json
        run_dir = Path(run_dir or cfg.run.out or default_run_dir(cfg.model_name))
        if resume is not None and not isinstance(resume, ckpt_io.Checkpoint):
            raise TypeError("Trainer(resume=...) takes the run's checkpoint as read by "
                            "ganvae.training.launch.resume_checkpoint(run_dir, model), the one way to resume.")
        self.resume_checkpoint = resume
        if resume is not None:  # the settings that may change on resume change, each logged; the rest are refused
            self.saved_cfg, cfg, self.resume_changes = config_on_resume(resume, cfg)
        elif ckpt_io.run_checkpoint(run_dir).exists():
            raise GanvaeError(
                f"{run_dir} already holds a trained run; add --resume to continue it, or choose another --out."
            )
        validate(cfg, "invalid setting")  # every check before anything is created (configs built in Python too)
        check_output(run_dir, kind="folder")
        if cfg.train.batch_size % self.dist.world_size:
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} must be divisible by the number of processes "
                              f"({self.dist.world_size}); it is the global batch.")
        self.cfg, self.run_dir, self.argv = cfg, run_dir, argv
        self.device = self.dist.device if self.dist.enabled else resolve_device(cfg.train.device)
        # auto is resolved once and the result stored in the run's config, so a resumed run keeps its precision
        cfg.train.precision, self.precision_reason = resolve_precision(cfg.train.precision, self.device)
        self._data = data

    # ------------------------------------------------------------------ set-up
    def _setup(self):
        cfg = self.cfg
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.train.seed)
        data = with_color(self._data, cfg.data.color) if self._data is not None else load_named(cfg.data, self.run_dir)
        self.data = data.to(self.device)
        if getattr(cfg.model, "conditional", False):  # a plugin family may have no class conditioning
            check_conditional_data(cfg, data)
        check_pseudo_classes(cfg.model, len(data))  # before the clustering (and the run folder) would find out
        self.model = model = build_model(cfg, data.image_shape).to(self.device)
        check_step_fits(model, len(data), cfg.train.batch_size // self.dist.world_size, self.dist.world_size)
        if cfg.train.sync_batchnorm and self.dist.enabled:
            self.model = model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.optimizers = model.make_optimizers()
        self.state = TrainingState(fixed_noise=fixed_noise(model, cfg.run.n_fixed, cfg.train.seed))
        self.fingerprint = data.fingerprint()
        self.last_checkpoint_step: int | None = None
        self._last_saved = self.state.at(0, 0, 0.0)  # the last checkpoint's state (rewritten with the fitted prior)
        if self.resume_checkpoint is not None:
            self.state = restore_training(model, self.optimizers, self.resume_checkpoint, self.saved_cfg, cfg,
                                          self.fingerprint)
            self.last_checkpoint_step = self.state.step
            self._last_saved = self.state.at(self.state.epoch, self.state.step_in_epoch, self.state.elapsed_seconds)
        if self.dist.enabled:
            self.dist.wrap(model)  # each network in DDP; the model object stays the one we save
        if cfg.train.compile:
            for name in model.networks:  # the networks are what the training step calls
                model._modules[name].compile()
        self.autocast = bf16_autocast(self.device) if cfg.train.precision == "bf16" else None

    def _prepare_run_dir(self):
        self.ckpt_path = ckpt_io.run_checkpoint(self.run_dir)
        self.writer = None
        self.file_log = None
        if self.dist.is_main:  # the run folder, its log file, metadata and TensorBoard writer
            self.file_log = open_run_folder(self.run_dir, self.cfg, self.argv,
                                            resumed=self.resume_checkpoint is not None,
                                            changes=getattr(self, "resume_changes", []),
                                            extra={"device": str(self.device), "world_size": self.dist.world_size,
                                                   "global_batch_size": self.cfg.train.batch_size})
            self.writer = outputs.open_tensorboard(self.run_dir, self.state.step) if self.cfg.run.tensorboard else None
        if self.resume_checkpoint is not None:
            self.callbacks.load_state_dict(self.resume_checkpoint.header.get("callbacks") or {})

    # ------------------------------------------------------------------ what callbacks call
    def request_stop(self, reason: str) -> None:
        """Stop at the end of the current step (every rank, together), with a checkpoint at that position; for
        callbacks (:class:`~ganvae.training.callbacks.EarlyStopping`)."""
        if self._stop_reason is None:
            log.info("stop requested: %s", reason)
            self._stop_reason = reason

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning and keep it for ``summary.json`` (rank 0; once per distinct message)."""
        if self.dist.is_main and message not in self.warnings:
            log.warning(message)
            self.warnings.append(message)

    def save_run_checkpoint(self, elapsed: float | None = None) -> None:
        """The run's checkpoint at the current position (``elapsed``: its training time, default now), on every
        rank (rank 0 writes); then every callback's ``on_checkpoint``. For
        :class:`~ganvae.training.callbacks.outputs.PeriodicCheckpoint`."""
        elapsed = self.clock.elapsed() if elapsed is None else elapsed
        self._save(self.state.at(self._epoch, self.state.step_in_epoch, elapsed))

    def save_checkpoint(self, path: str | Path) -> Path:
        """A resumable checkpoint of the current position at ``path`` (rank 0 writes), for callbacks
        (:class:`~ganvae.training.callbacks.BestCheckpoint`)."""
        path = Path(path)
        if self.dist.is_main:
            self._write_checkpoint(self.state.at(self._epoch, self.state.step_in_epoch, self.clock.elapsed()), path)
        return path

    def rewrite_last_checkpoint(self) -> None:
        """The last checkpoint again, at its own position, with the model as it is now (a fitted prior)."""
        self._save(self._last_saved)

    # ------------------------------------------------------------------ outputs
    def _log_losses(self, pending: list[tuple[int, int, dict[str, torch.Tensor]]], imgs_per_s: float,
                    bar) -> dict[str, float]:
        """The interval's losses synced and checked (:attr:`logged`), the progress bar's figures, then the
        callbacks' ``on_log`` (the first writes ``losses.csv``)."""
        advice = lambda kept: outputs.divergence_advice(self.cfg, self.run_dir, kept)  # noqa: E731
        self.logged = outputs.sync_losses(pending, self.dist, self.device, self.ckpt_path, advice)
        pending.clear()  # synced: a hook failing below must not have them written twice (faults.flush_losses)
        last = self.logged.last()
        if bar is not None:
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in last.items()}, "img/s": f"{imgs_per_s:.0f}"}, refresh=False)
        self.callbacks("on_log", self, last, imgs_per_s)
        return last

    def _save(self, saved: TrainingState) -> None:
        """Write the checkpoint: the model, its optimisers, the training state ``saved`` (the position of the
        current step; the random states are taken as they are now) and the callbacks' states."""
        self._last_saved = saved
        self.last_checkpoint_step = self.state.step
        if self.dist.is_main:
            self._write_checkpoint(saved, self.ckpt_path)
        self.callbacks("on_checkpoint", self, self.ckpt_path)

    def _write_checkpoint(self, saved: TrainingState, path: Path) -> None:
        ckpt_io.save_checkpoint(
            path, self.model, self.cfg.model_name, self.cfg.to_dict(), self.optimizers,
            counters=saved.counters(), extra_tensors=saved.tensors(),
            extra_header={"data_fingerprint": self.fingerprint, "dataset": self.data.name,
                          "classes": list(self.data.class_subset) if self.data.class_subset else None,
                          "image_shape": list(self.data.image_shape), "world_size": self.dist.world_size,
                          "callbacks": self.callbacks.state_dict()},
        )
        log.debug("checkpoint written: %s (step %d)", path, self.state.step)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        self._setup()
        self.writer = self.file_log = None
        # one training at a time per run folder: taken before anything is written, released however fit ends
        with RunLock(self.run_dir) if self.dist.is_main else contextlib.nullcontext():
            try:
                self._prepare_run_dir()
                with flush_denormals(self.cfg.train.flush_denormals and self.device.type == "cpu"):
                    return self._fit()
            except RuntimeError as err:
                if self.dist.enabled and collective_failure(err):
                    raise self.dist.peer_failure(self.state.step, self.ckpt_path, self.last_checkpoint_step,
                                                 self.cfg.model_name, self.run_dir) from None
                raise
            finally:
                self.dist.close()
                if self.writer is not None:
                    self.writer.close()
                if self.file_log is not None:
                    logging.getLogger("ganvae").removeHandler(self.file_log)
                    self.file_log.close()

    def _fit(self) -> TrainResult:
        """Epochs until the budget: each trained by :meth:`_train_epoch`, closed by :meth:`_end_epoch`; then
        :meth:`_finish` writes the run's summary."""
        cfg, tc = self.cfg, self.cfg.train
        per_rank_batch = tc.batch_size // self.dist.world_size
        n_steps = steps_per_epoch(len(self.data), per_rank_batch, self.dist.world_size)
        budget_s = tc.max_minutes * 60 if tc.max_minutes is not None else math.inf
        self.max_steps = tc.max_steps if tc.max_steps is not None else math.inf
        log.info("training %s on %s (%d images, %d steps/epoch, batch %d) on %s, %s (%s) -> %s",
                 cfg.model_name, self.data.name, len(self.data), n_steps, tc.batch_size, self.device, tc.precision,
                 self.precision_reason, self.run_dir)
        self.model.train()
        self.clock = TrainingClock(self.state.elapsed_seconds)
        self.epoch_elapsed = self.state.elapsed_seconds
        self.stopped_in_epoch: int | None = None  # the epoch (from 0) this session stopped inside, if it did
        self.images_this_session = 0
        self.last_losses: dict[str, float] = {}
        self._epoch = self.state.epoch
        self.in_step = False  # inside a training step (its weights half-updated): no exact position to save
        self.pending_losses: list = []  # (step, epoch, losses) of the steps not yet logged (for faults)
        try:
            self.callbacks("on_train_start", self)
            with StopFlag() as stop:
                epoch, stopped_by = self._run_epochs(n_steps, per_rank_batch, budget_s, stop)
            self.callbacks("on_fit_end", self, stopped_by)
            return self._finish(epoch, stopped_by)
        except Exception as err:
            faults.checkpoint_before_error(self, err)
            raise

    def _run_epochs(self, n_steps: int, per_rank_batch: int, budget_s: float, stop: StopFlag) -> tuple[int, str]:
        """Train until a budget, the epochs, a stop or a signal ends it; the run's checkpoint is then current.
        Returns the epoch to record and why training stopped."""
        tc = self.cfg.train
        stopped_by = "epochs"
        epoch = self._epoch = self.state.epoch
        # a stop asked before the first step (on_train_start) trains none; decided by every rank together
        while (epoch < tc.epochs and self.state.step < self.max_steps
               and not self.dist.any(self._stop_reason is not None)):
            if self._train_epoch(epoch, n_steps, per_rank_batch, budget_s, stop):
                stopped_by = ("interrupt" if self.dist.any(stop.signum is not None) else
                              "callback" if self.dist.any(self._stop_reason is not None) else
                              "steps" if self.state.step >= self.max_steps else "time")
                epoch = self._stop_mid_epoch(epoch, n_steps)
                break
            epoch = self._end_epoch(epoch)
            if self.dist.any(self._stop_reason is not None):  # asked at the epoch's end (on_metrics, on_epoch_end)
                stopped_by = "callback"
                break
        if self._stop_reason is not None and stopped_by == "epochs":  # asked in on_train_start
            stopped_by = "callback"
        elif stopped_by == "epochs" and epoch < tc.epochs:  # resumed at (or past) train.max_steps
            stopped_by = "steps"
        if not self.ckpt_path.exists() or (stopped_by == "callback"
                                           and self.last_checkpoint_step != self.state.step):
            self.save_run_checkpoint()  # e.g. no epochs left
        return epoch, stopped_by

    def _train_epoch(self, epoch: int, n_steps: int, per_rank_batch: int, budget_s: float, stop: StopFlag) -> bool:
        """Train from the current position to the end of ``epoch``, logging every ``train.log_every`` steps.
        Returns True when a budget (time, steps) ran out, a stop was asked or a signal arrived (every rank stops at
        the same step)."""
        tc, world, cfg_name = self.cfg.train, self.dist.world_size, self.cfg.model_name
        bar = outputs.progress_bar(self.cfg, self.dist, epoch, n_steps, self.state.step_in_epoch)
        pending: list = []  # (step, epoch, losses) not yet synced to the host
        self.pending_losses = pending  # the same list, for a checkpoint before an error
        out_of_time = False
        if self.state.step_in_epoch == 0 and self._before_epoch(epoch, budget_s, stop):
            return True  # stopped while clustering: by a signal or the budget, before the epoch's first step
        tick, tick_images = time.monotonic(), 0
        for idx in iter_batch_indices(len(self.data.train_images), per_rank_batch, tc.seed, epoch,
                                      self.state.step_in_epoch, self.dist.rank, world, self.data.train_images.device):
            batch = self.data.train_images.index_select(0, idx)  # 5 us against 34 for images[idx] (batch 128, CPU)
            x = scale_images(batch, self.model.value_range)  # (B, C, H, W) in the model's range
            labels = self.model.training_labels(idx, self.data.train_labels)  # the data's, pseudo-classes, or None
            ctx = self.dist.step_context(StepContext(self.state.step, epoch, epoch + self.state.step_in_epoch / n_steps,
                                                     self.autocast, labels=labels))
            self.in_step = True
            losses = check_step_result(cfg_name, self.model.training_step(x, self.optimizers, ctx))  # contract
            self.model.after_step(self.state.step)
            self.in_step = False
            pending.append((self.state.step, epoch, losses))
            self.state.step += 1
            self.state.step_in_epoch += 1
            self.state.images_seen += tc.batch_size
            tick_images += tc.batch_size
            self.images_this_session += tc.batch_size
            if bar is not None:
                bar.update(1)
            if self.callbacks:
                self.callbacks("on_step_end", self, losses)
            # every rank must stop at the same step: the decision is taken together
            out_of_time = self.dist.any(self.clock.session() > budget_s or stop.signum is not None
                                        or self._stop_reason is not None or self.state.step >= self.max_steps)
            if len(pending) >= tc.log_every or self.state.step_in_epoch == n_steps or out_of_time:
                rate = tick_images / max(time.monotonic() - tick, 1e-9)
                self.last_losses = self._log_losses(pending, rate, bar)
                pending, tick, tick_images = [], time.monotonic(), 0
                self.pending_losses = pending
                if not out_of_time and self.state.step_in_epoch < n_steps:
                    self.callbacks("on_mid_epoch", self, epoch + self.state.step_in_epoch / n_steps)
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        return out_of_time

    def _before_epoch(self, epoch: int, budget_s: float, stop: StopFlag) -> bool:
        """The model's start-of-epoch hook (a self-conditioned model's clustering), then the callbacks'. Every rank
        computes the model's from the same weights and data; rank 0's result is sent to all. A signal or the time
        budget stops the clustering between its steps: returns True (a resumed run clusters again)."""
        stopping = lambda: stop.signum is not None or self.clock.session() > budget_s  # noqa: E731
        try:  # (in a distributed run the ranks would disagree where to stop: there it runs to its end)
            with self.clock.clustering_time(), self.dist.unwrapped(self.model), \
                    stop_when(bool if self.dist.enabled else stopping):
                info = self.model.before_epoch(epoch, self.data.train_images, seed=self.cfg.train.seed)
        except ClusteringStopped:  # nothing of the epoch is done: the stop's checkpoint is at its start
            return True
        if info is not None:
            if self.dist.enabled:
                self.dist.broadcast_buffers(info["module"])
            log.info("self-conditioning: %d images clustered at epoch %d into %d pseudo-classes (%.1f%% changed id; "
                     "sizes %d-%d)", len(self.data.train_images), epoch + 1, info["clusters"],
                     100 * info["changed"], info["smallest"], info["largest"])
        self.callbacks("on_epoch_start", self, epoch)
        return False

    def _stop_mid_epoch(self, epoch: int, n_steps: int) -> int:
        """Out of time, interrupted or asked to stop: a checkpoint at the exact position (the grids draw the partial
        epoch at ``on_fit_end``). Returns the epoch to record (the next one if the budget ran out exactly at an
        end)."""
        self.stopped_in_epoch = epoch
        if self.state.step_in_epoch == n_steps:
            epoch, self.state.step_in_epoch = epoch + 1, 0
        self._epoch = epoch
        self.save_run_checkpoint()
        return epoch

    def _end_epoch(self, epoch: int) -> int:
        """After a full epoch: the position moves to the next one's start, and the callbacks' ``on_epoch_end`` (its
        sample grid, quality point and checkpoint on their cadences, timed at :attr:`epoch_elapsed`). Returns the
        next epoch."""
        self.epoch_elapsed = self.clock.elapsed()  # the epoch's end, before its outputs
        epoch, self.state.step_in_epoch = epoch + 1, 0
        self._epoch = epoch
        self.callbacks("on_epoch_end", self, epoch)
        return epoch

    def _finish(self, epoch: int, stopped_by: str) -> TrainResult:
        """The callbacks' ``on_train_end`` (the loss plot, the progress GIF, ``summary.json``, the trackers', yours);
        raises :class:`Interrupted` after a signal."""
        cfg = self.cfg
        elapsed, stepping = self.clock.elapsed(), self.clock.stepping()
        rate = self.images_this_session / stepping if stepping > 0 else 0.0
        result = TrainResult(self.run_dir, self.ckpt_path, self.state.step, epoch, rate, elapsed, stopped_by,
                             self.last_losses, self._stop_reason if stopped_by == "callback" else None)
        self.callbacks("on_train_end", self, result)
        if stopped_by == "interrupt":
            raise Interrupted(f"interrupted at step {self.state.step}; checkpoint written to {self.ckpt_path}. "
                              f"Continue with: ganvae train {cfg.model_name} --out {self.run_dir} --resume")
        return result
