"""The model-agnostic training loop.

The trainer owns the data stream, budgets, the training position and resumption; its outputs (the loss log,
sample grids, checkpoint cadences: :mod:`ganvae.training.outputs`; the in-training metrics) are small objects it
calls, and users add their own through :mod:`ganvae.training.callbacks`. The model owns its networks, optimisers
and training step. Nothing here depends on which family is trained.

Exact resumption: the data order of epoch ``e`` depends only on ``(seed, e)``, and a
checkpoint stores weights, optimiser moments, all random states and the position inside
the epoch; so a resumed run draws the same batches and the same noise as an
uninterrupted one and, on CPU, produces the same losses bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganvae import seeds
from ganvae.config import ExperimentConfig, config_from_dict, validate
from ganvae.data.dataset import ImageData, iter_batch_indices, load_dataset, steps_per_epoch
from ganvae.errors import CheckpointError, ConfigError, GanvaeError, Interrupted
from ganvae.metrics.during_training import TrainingMetrics
from ganvae.models.base import GenerativeModel
from ganvae.models.conditioning import trained_classes
from ganvae.models.step import StepContext
from ganvae.pixels import scale_images
from ganvae.registry import build_model
from ganvae.runs import RunLock, add_file_log, default_run_dir, record_resume, write_run_metadata
from ganvae.storage import checkpoint as ckpt_io
from ganvae.training import speed_check
from ganvae.training.callbacks import Callback, CallbackList
from ganvae.training.denormals import flush_denormals
from ganvae.training.distributed import DistContext
from ganvae.training.outputs import CheckpointCadence, LossLog, SampleGrids, open_tensorboard, truncate_csv
from ganvae.training.resume import resumed_config
from ganvae.training.state import TrainingState
from ganvae.training.tracking import tracker_callbacks
from ganvae.utils import atomic_write_text, check_output, resolve_device, resolve_precision, seed_everything

log = logging.getLogger(__name__)


def bf16_autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast, only where the hardware computes in bf16 natively (STYLE.md, Pattern 6):
    CUDA GPUs with bf16 support, and CPUs with AVX512-BF16 or AMX (through oneDNN)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise GanvaeError(
        f"train.precision=bf16: {device} has no native bf16 arithmetic (needs a recent NVIDIA GPU, or a CPU with "
        f"AVX512-BF16/AMX); it would run slower than fp32. Use --set train.precision=fp32."
    )


def check_conditional_data(cfg, data: ImageData) -> None:
    """A conditional model needs the data's labels to be the classes it is told of (``trained_classes``)."""
    found = sorted(set(data.train_labels.unique().tolist()))
    expected = trained_classes(cfg)
    if found != expected:  # expected lies below model.num_classes (config validation)
        raise ConfigError(
            f"model.conditional: the training data holds classes {found}, but the run describes {expected} "
            f"(model.num_classes={cfg.model.num_classes}, data.classes={cfg.data.classes}); set "
            f"--set model.num_classes={max(found) + 1} and, for a subset, --classes {','.join(map(str, found))}.")


def fixed_noise(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    """The latents every sample grid of a run is drawn from (same seed, same grids)."""
    g = torch.Generator().manual_seed(seed + seeds.FIXED_NOISE)
    return model.prior(n, generator=g, device=torch.device("cpu"))


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    step: int
    epoch: int
    images_per_second: float
    seconds: float
    stopped_by: str  # "epochs", "time", "interrupt", "callback"
    last_losses: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None  # a callback's request_stop(reason)


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the current step and exits."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("\nsignal %d received: finishing this step, writing a checkpoint, then stopping", signum)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Train ``cfg.model_name`` on ``cfg.data`` into ``run_dir``.

    Args:
        cfg: the full experiment config.
        run_dir: output folder; default ``cfg.run.out`` or ``runs/<model>-<timestamp>``.
        data: an already loaded dataset (tests pass tiny ones); default loads ``cfg.data``.
        resume: continue from ``run_dir/checkpoints/last.safetensors`` (True), or from that checkpoint already
            read (:func:`ganvae.training.launch.train_run` reads it once to build the config on the run's own).
        argv: the command line to record in the run folder.
        callbacks: :class:`~ganvae.training.callbacks.Callback` objects whose hooks run during training (a metric, a
            logger, a stopping rule: ``trainer.request_stop(reason)``).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path | None = None, data: ImageData | None = None,
                 resume: "bool | ckpt_io.Checkpoint" = False, argv: list[str] | None = None,
                 dist: DistContext | None = None, callbacks: "list[Callback] | None" = None):
        self.dist = dist or DistContext.from_env()
        self.callbacks = CallbackList([*tracker_callbacks(cfg.run), *(callbacks or ())])  # run.log_to's first
        self._stop_reason: str | None = None
        self.resume_checkpoint: ckpt_io.Checkpoint | None = None
        run_dir = Path(run_dir or cfg.run.out or default_run_dir(cfg.model_name))
        if isinstance(resume, ckpt_io.Checkpoint):  # already read (by training.launch, the front ends' way in)
            if resume.model_name != cfg.model_name:
                raise CheckpointError(f"{resume.path}: a {resume.model_name} checkpoint, not {cfg.model_name}.")
            self.resume_checkpoint = resume
        elif resume:
            path = ckpt_io.run_checkpoint(run_dir)
            if not path.is_file():
                raise CheckpointError(f"--resume: no checkpoint at {path}. Give the run folder with --out, or drop --resume.")
            self.resume_checkpoint = ckpt_io.load_checkpoint(path, expected_model=cfg.model_name)
        if self.resume_checkpoint is not None:
            cfg = self._resumed_config(cfg, self.resume_checkpoint)
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

    def _resumed_config(self, cfg: ExperimentConfig, ckpt: ckpt_io.Checkpoint) -> ExperimentConfig:
        """``cfg`` if it differs from the checkpoint's config only in settings that may change on resume (each
        logged); see :mod:`ganvae.training.resume`."""
        self.saved_cfg = config_from_dict(ckpt.header["config"], str(ckpt.path))
        image_shape = tuple(ckpt.header.get("image_shape") or (1, cfg.data.image_size, cfg.data.image_size))
        cfg, self.resume_changes = resumed_config(self.saved_cfg, cfg, image_shape, str(ckpt.path))
        return cfg

    # ------------------------------------------------------------------ set-up
    def _setup(self):
        cfg = self.cfg
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        seed_everything(cfg.train.seed)
        data = self._data if self._data is not None else load_dataset(cfg.data)
        self.data = data.to(self.device)
        if getattr(cfg.model, "conditional", False):  # a plugin family may have no class conditioning
            check_conditional_data(cfg, data)
        model = build_model(cfg, data.image_shape).to(self.device)
        if cfg.train.sync_batchnorm and self.dist.enabled:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.optimizers = model.make_optimizers()
        self.state = TrainingState(fixed_noise=fixed_noise(model, cfg.run.n_fixed, cfg.train.seed))
        self.excluded_seconds = 0.0  # in-training evaluation, not counted against the time budget
        # the clusterings of a self-conditioned model (40 s for spectral ones on MNIST): in the budget, but not
        # training speed, which the speed check and the logged images/s measure
        self.clustering_seconds = 0.0
        self._speed_checked = False
        self.warnings: list[str] = []  # this session's training speed, budget and mode-collapse warnings, for summary.json
        self.prior_fit: dict | None = None  # the learned prior's fit at the end of this session (MixtureFit.record)
        self.fingerprint = data.fingerprint()
        self.last_checkpoint_step: int | None = None
        self._last_saved = self.state.at(0, 0, 0.0)  # the last checkpoint's state (rewritten with the fitted prior)
        if self.resume_checkpoint is not None:
            ck = self.resume_checkpoint
            if ck.header.get("data_fingerprint") not in (None, self.fingerprint):
                raise CheckpointError(
                    f"{ck.path}: the run was trained on other data (fingerprint {ck.header['data_fingerprint']}, "
                    f"now {self.fingerprint}). Resume with the same --dataset, --data-dir and --classes."
                )
            self.state = TrainingState.from_checkpoint(ck)  # refused before any weight is touched
            ckpt_io.restore_model(model, ck, refit_prior=True)
            ckpt_io.restore_optimizers(self.optimizers, ck)
            # the restored optimisers carry the saved learning rates and betas: the config's (changed or not) rule
            for name, fresh in model.make_optimizers().items():
                for group, new in zip(self.optimizers[name].param_groups, fresh.param_groups):
                    group.update({k: new[k] for k in ("lr", "betas", "eps", "weight_decay") if k in new})
            self.state.restore_rng()
            old_batch = self.saved_cfg.train.batch_size
            if old_batch != cfg.train.batch_size and self.state.step_in_epoch:
                # the position inside the epoch is kept in images: the first images of the rest may repeat
                self.state.step_in_epoch = self.state.step_in_epoch * old_batch // cfg.train.batch_size
            self.last_checkpoint_step = self.state.step
            self._last_saved = self.state.at(self.state.epoch, self.state.step_in_epoch, self.state.elapsed_seconds)
            if model.latent_prior is not None:  # fitted to the weights before this session: refitted at its end
                model.latent_prior.fitted.fill_(False)
            log.info("resumed %s at epoch %d, step %d", ck.path, self.state.epoch + 1, self.state.step)
        self.elapsed_before = self.state.elapsed_seconds  # training time of the earlier sessions
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
        if self.dist.is_main:
            self._prepare_files()
        # every rank checks the (reduced) losses and keeps the cadences; only rank 0 writes
        self.loss_log = LossLog(self.run_dir, self.ckpt_path, self.dist, self.device, self.writer,
                                advice=lambda kept: divergence_advice(self.cfg, self.run_dir, kept))
        self.grids = SampleGrids(self.run_dir, self.dist, self.writer, self.cfg.run.gif_fps)
        self.cadence = CheckpointCadence(self.cfg.train, self.dist)
        if self.resume_checkpoint is not None and self.dist.is_main:
            # rows written after the checkpoint (a killed run logs past its last checkpoint) are redone on resume:
            # losses.csv numbers steps from 0 (row s = the step that made step s + 1 done), the metrics CSV counts them
            self.loss_log.truncate(self.state.step)
            truncate_csv(self.run_dir / "metrics_during_training.csv", "step", lambda s: s <= self.state.step)

    def _prepare_files(self):
        """Rank 0: the run folder, its log file, metadata and TensorBoard writer."""
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        self.file_log = add_file_log(self.run_dir / "train.log")
        for line in getattr(self, "resume_changes", []):  # logged once the run's own log file listens too
            log.info("changed on resume: %s", line)
        if self.resume_checkpoint is None:
            write_run_metadata(self.run_dir, self.cfg, self.argv, {
                "device": str(self.device), "world_size": self.dist.world_size,
                "global_batch_size": self.cfg.train.batch_size,
            })
        else:
            record_resume(self.run_dir, self.cfg, self.argv)
        if self.cfg.run.tensorboard:
            self.writer = open_tensorboard(self.run_dir, self.state.step)

    def _check_speed(self, final: bool) -> None:
        """Once a session (rank 0): a default recipe far slower than measured says why and what to do
        (:mod:`ganvae.training.speed_check`)."""
        if self._speed_checked or not self.dist.is_main or self.device.type != "cpu":
            return
        session = time.monotonic() - self.session_start - self.excluded_seconds - self.clustering_seconds
        if session < (speed_check.MIN_SECONDS if final else speed_check.CHECK_AFTER_S):
            return
        self._speed_checked = True
        reference = speed_check.reference_speed(self.cfg)
        if reference is None:
            return
        message = speed_check.slow_training_message(self.cfg.model_name, self.images_this_session / session, reference,
                                                    torch.get_num_threads(), *speed_check.machine_load())
        if message:
            log.warning(message)
            self.warnings.append(message)

    def request_stop(self, reason: str) -> None:
        """Stop at the end of the current step (every rank, together), with a checkpoint at that position; for
        callbacks (:class:`~ganvae.training.callbacks.EarlyStopping`)."""
        if self._stop_reason is None:
            log.info("stop requested: %s", reason)
            self._stop_reason = reason

    # ------------------------------------------------------------------ outputs
    def _log_losses(self, pending: list[tuple[int, int, dict[str, torch.Tensor]]], imgs_per_s: float, bar) -> dict[str, float]:
        """The loss log (checked, written), the progress bar's figures and the callbacks' ``on_log``."""
        last = self.loss_log.write(pending, imgs_per_s)
        if bar is not None:
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in last.items()}, "img/s": f"{imgs_per_s:.0f}"}, refresh=False)
        self.callbacks("on_log", self, last, imgs_per_s)
        self._check_speed(final=False)
        return last

    def _sample_grid(self, epoch: int) -> None:
        self.grids.write(self.model, self.state.fixed_noise, epoch, self.state.step)

    def _checkpoint(self, epoch: int, step_in_epoch: int, elapsed: float) -> None:
        self._save(self.state.at(epoch, step_in_epoch, elapsed))

    def _save(self, saved: TrainingState) -> None:
        """Write the checkpoint: the model, its optimisers and the training state ``saved`` (the position of the
        current step; the random states are taken as they are now)."""
        self._last_saved = saved
        self.cadence.saved()
        self.last_checkpoint_step = self.state.step
        if self.dist.is_main:
            self._write_checkpoint(saved)
        self.callbacks("on_checkpoint", self, self.ckpt_path)

    def _write_checkpoint(self, saved: TrainingState) -> None:
        ckpt_io.save_checkpoint(
            self.ckpt_path, self.model, self.cfg.model_name, self.cfg.to_dict(), self.optimizers,
            counters=saved.counters(), extra_tensors=saved.tensors(),
            extra_header={"data_fingerprint": self.fingerprint, "dataset": self.data.name,
                          "classes": list(self.data.class_subset) if self.data.class_subset else None,
                          "image_shape": list(self.data.image_shape), "world_size": self.dist.world_size},
        )
        log.debug("checkpoint written: %s (step %d)", self.ckpt_path, self.state.step)

    def _finish_outputs(self) -> None:
        self.grids.finish()
        self.loss_log.finish(title=f"{self.cfg.model_name} losses")

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        self._setup()
        self.writer = self.file_log = None
        # one training at a time per run folder: taken before anything is written, released however fit ends
        with RunLock(self.run_dir) if self.dist.is_main else contextlib.nullcontext():
            try:
                self._prepare_run_dir()
                self.metrics = TrainingMetrics(self.cfg, self.run_dir, self.dist, self.writer)
                with flush_denormals(self.cfg.train.flush_denormals and self.device.type == "cpu"):
                    return self._fit()
            except RuntimeError as err:
                if self.dist.enabled and _collective_failure(err):
                    raise self._rank_failure() from None
                raise
            finally:
                self.dist.close()
                if self.writer is not None:
                    self.writer.close()
                if self.file_log is not None:
                    logging.getLogger("ganvae").removeHandler(self.file_log)
                    self.file_log.close()

    def _rank_failure(self) -> GanvaeError:
        """The message of a rank whose peers vanished mid-job (a killed or crashed worker, a lost machine)."""
        d = self.dist
        who = f"rank {1 - d.rank}" if d.world_size == 2 else f"another of the {d.world_size} ranks"
        if self.ckpt_path.exists() or self.last_checkpoint_step is not None:
            last = f"last checkpoint: {self.ckpt_path} (step {self.last_checkpoint_step})"
            again = f"torchrun ... -m ganvae train {self.cfg.model_name} --out {self.run_dir} --resume"
        else:
            last, again = "no checkpoint was written yet", "the same command"
        return GanvaeError(f"{who} died or lost its connection at step {self.state.step}, so rank {d.rank} stops too; "
                           f"{last}. When every machine is back, continue with: {again}")

    def _fit(self) -> TrainResult:
        """Epochs until the budget: each trained by :meth:`_train_epoch`, closed by :meth:`_end_epoch`; then
        :meth:`_finish` writes the run's summary."""
        cfg, tc = self.cfg, self.cfg.train
        per_rank_batch = tc.batch_size // self.dist.world_size
        n_steps = steps_per_epoch(len(self.data), per_rank_batch, self.dist.world_size)
        budget_s = tc.max_minutes * 60 if tc.max_minutes is not None else math.inf
        log.info("training %s on %s (%d images, %d steps/epoch, batch %d) on %s, %s (%s) -> %s",
                 cfg.model_name, self.data.name, len(self.data), n_steps, tc.batch_size, self.device, tc.precision,
                 self.precision_reason, self.run_dir)
        self.model.train()
        self.session_start = time.monotonic()
        self.cadence.saved()  # the mid-epoch cadence counts from the start of this session
        self.images_this_session = 0
        self.last_losses: dict[str, float] = {}
        stopped_by = "epochs"
        self.callbacks("on_train_start", self)
        with _StopFlag() as stop:
            epoch = self.state.epoch
            while epoch < tc.epochs:
                if self._train_epoch(epoch, n_steps, per_rank_batch, budget_s, stop):
                    stopped_by = ("interrupt" if self.dist.any(stop.signum is not None) else
                                  "callback" if self.dist.any(self._stop_reason is not None) else "time")
                    epoch = self._stop_mid_epoch(epoch, n_steps)
                    break
                epoch = self._end_epoch(epoch)
                if self.dist.any(self._stop_reason is not None):  # asked at the epoch's end (on_metrics, on_epoch_end)
                    stopped_by = "callback"
                    if self.last_checkpoint_step != self.state.step:
                        self._checkpoint(epoch, 0, self.elapsed())
                    break
            else:
                if not self.ckpt_path.exists():  # e.g. resumed with no epochs left
                    self._checkpoint(epoch, 0, self.elapsed())
        if stopped_by != "interrupt":
            self._fit_latent_prior()
        return self._finish(epoch, stopped_by)

    def _fit_latent_prior(self) -> None:
        """Fit an encoder model's learned prior (``model.prior: gmm``) to the training images' posterior means, then
        rewrite the last checkpoint with it (same position and counters; the fit's time is not training time).
        Too few images for the mixture is a warning, not a failure: the run keeps N(0, I)."""
        model = self.model
        if model.latent_prior is None or not self.dist.is_main:
            return
        start = time.monotonic()
        try:
            with self.dist.unwrapped(model):
                fit = model.fit_prior(self.data.train_images, self.data.train_labels, seed=self.cfg.train.seed)
        except ValueError as err:
            log.warning("learned prior not fitted (%s); samples come from N(0, I). Fit it later with "
                        "`ganvae fit-prior %s`.", err, self.run_dir)
            return
        log.info("learned prior: %s fitted to %d posterior means in %.1f s (%d EM iterations, log-likelihood %.3f "
                 "nats per code)", model.prior_description(), fit.n, fit.seconds, fit.iterations, fit.log_likelihood)
        self.prior_fit = fit.record(model.prior_description(), self.data.name, self.cfg.train.seed)
        self._save(self._last_saved)
        from ganvae.viz.images import make_grid, save_png

        g, n = torch.Generator().manual_seed(self.cfg.train.seed + seeds.FIXED_NOISE), len(self.state.fixed_noise)
        with self.dist.unwrapped(model):
            if model.conditional:  # a class grid: one row per class, each from its class's mixture
                cols = -(-n // len(model.classes))
                z, labels = model.class_grid_latents(cols, model.classes, g)
            else:
                cols, z, labels = None, model.prior(n, generator=g, device=torch.device("cpu")), None
            grid = make_grid(model.generate(z.to(self.device), labels), nrow=cols)
        save_png(grid, self.run_dir / "samples" / "learned_prior.png")
        self.excluded_seconds += time.monotonic() - start

    def elapsed(self) -> float:
        """Training seconds of the whole run: earlier sessions, plus this one less in-training evaluation."""
        return self.elapsed_before + time.monotonic() - self.session_start - self.excluded_seconds

    def _train_epoch(self, epoch: int, n_steps: int, per_rank_batch: int, budget_s: float, stop: _StopFlag) -> bool:
        """Train from the current position to the end of ``epoch``, logging every ``train.log_every`` steps.
        Returns True when the time budget ran out or a signal arrived (every rank stops at the same step)."""
        tc, world = self.cfg.train, self.dist.world_size
        bar = self._progress_bar(epoch, n_steps)
        pending: list = []  # (step, epoch, losses) not yet synced to the host
        out_of_time = False
        if self.state.step_in_epoch == 0:
            self._before_epoch(epoch)
        tick, tick_images = time.monotonic(), 0
        for idx in iter_batch_indices(len(self.data.train_images), per_rank_batch, tc.seed, epoch, self.state.step_in_epoch,
                                      self.dist.rank, world, self.data.train_images.device):
            batch = self.data.train_images.index_select(0, idx)  # 5 us against 34 for images[idx] (batch 128, CPU)
            x = scale_images(batch, self.model.value_range)  # (B, C, H, W) in the model's range
            labels = self.model.training_labels(idx, self.data.train_labels)  # the data's, pseudo-classes, or None
            ctx = self.dist.step_context(StepContext(self.state.step, epoch, epoch + self.state.step_in_epoch / n_steps, self.autocast,
                                                     labels=labels))
            losses = self.model.training_step(x, self.optimizers, ctx)
            self.model.after_step(self.state.step)
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
            session_s = time.monotonic() - self.session_start - self.excluded_seconds
            out_of_time = self.dist.any(session_s > budget_s or stop.signum is not None or self._stop_reason is not None)
            if len(pending) >= tc.log_every or self.state.step_in_epoch == n_steps or out_of_time:
                rate = tick_images / max(time.monotonic() - tick, 1e-9)
                self.last_losses = self._log_losses(pending, rate, bar)
                pending, tick, tick_images = [], time.monotonic(), 0
                if not out_of_time and self.state.step_in_epoch < n_steps:
                    self._record_metrics(epoch + self.state.step_in_epoch / n_steps, self.elapsed(), epoch_end=False)
                    self._checkpoint_if_due(epoch)
            if out_of_time:
                break
        if bar is not None:
            bar.close()
        return out_of_time

    def _before_epoch(self, epoch: int) -> None:
        """The model's start-of-epoch hook (a self-conditioned model's clustering). Every rank computes it from the
        same weights and data; rank 0's result is then sent to all, so the ranks train on one labelling."""
        start = time.monotonic()
        with self.dist.unwrapped(self.model):
            info = self.model.before_epoch(epoch, self.data.train_images, seed=self.cfg.train.seed)
        if info is None:
            return
        self.clustering_seconds += time.monotonic() - start
        if self.dist.enabled:
            self.dist.broadcast_buffers(self.model.pseudo_classes)
        log.info("self-conditioning: %d images clustered at epoch %d into %d pseudo-classes (%.1f%% changed id; "
                 "sizes %d-%d)", len(self.data.train_images), epoch + 1, self.model.pseudo_classes.k,
                 100 * info["changed"], info["smallest"], info["largest"])

    def _checkpoint_if_due(self, epoch: int) -> None:
        """A mid-epoch checkpoint when its cadence says so (:class:`~ganvae.training.outputs.CheckpointCadence`)."""
        if self.cadence.due_mid_epoch():
            self._checkpoint(epoch, self.state.step_in_epoch, self.elapsed())

    def _stop_mid_epoch(self, epoch: int, n_steps: int) -> int:
        """Out of time or interrupted: a grid of the partial epoch (a resumed run overwrites it) and a checkpoint at
        the exact position. Returns the epoch to record (the next one if the budget ran out exactly at an end)."""
        elapsed = self.elapsed()
        self._sample_grid(epoch)
        if self.state.step_in_epoch == n_steps:
            epoch, self.state.step_in_epoch = epoch + 1, 0
        self._checkpoint(epoch, self.state.step_in_epoch, elapsed)
        return epoch

    def _end_epoch(self, epoch: int) -> int:
        """After a full epoch: its sample grid, in-training metrics and checkpoint on their cadences. Returns the
        next epoch."""
        tc = self.cfg.train
        elapsed = self.elapsed()
        if (epoch + 1) % tc.sample_every == 0 or epoch + 1 == tc.epochs:
            self._sample_grid(epoch)
        epoch, self.state.step_in_epoch = epoch + 1, 0
        self._record_metrics(epoch, elapsed, epoch_end=True)
        if self.cadence.due_at_epoch_end(epoch):
            self._checkpoint(epoch, 0, elapsed)
        self.callbacks("on_epoch_end", self, epoch)
        return epoch

    def _finish(self, epoch: int, stopped_by: str) -> TrainResult:
        """The progress GIF, the loss plot and ``summary.json``; raises :class:`Interrupted` after a signal."""
        cfg = self.cfg
        elapsed = self.elapsed()
        session = time.monotonic() - self.session_start - self.excluded_seconds - self.clustering_seconds
        rate = self.images_this_session / session if session > 0 else 0.0
        self._finish_outputs()
        self._check_speed(final=True)
        points = self.run_dir / "metrics_during_training.csv"  # this session's or an earlier one's
        measured = self.metrics.last_point is not None or (points.is_file() and len(points.read_text().splitlines()) > 1)
        budget = speed_check.budget_message(stopped_by, int(measured),
                                            cfg.train.eval_every > 0 or cfg.train.eval_interval_minutes > 0,
                                            cfg.train.max_minutes)
        if budget and self.dist.is_main:
            log.warning(budget)
            self.warnings.append(budget)
        result = TrainResult(self.run_dir, self.ckpt_path, self.state.step, epoch, rate, elapsed, stopped_by, self.last_losses,
                             self._stop_reason if stopped_by == "callback" else None)
        if self.dist.is_main:
            summary = {"model_name": cfg.model_name, "steps": self.state.step, "epochs_completed": epoch,
                       "images_seen": self.state.images_seen, "train_seconds": round(elapsed, 2),
                       "images_per_second": round(rate, 1), "stopped_by": stopped_by, "last_losses": self.last_losses,
                       "device": str(self.device), "precision": cfg.train.precision, "world_size": self.dist.world_size}
            if result.stop_reason is not None:
                summary["stop_reason"] = result.stop_reason
            if self.warnings:
                summary["warnings"] = self.warnings
            if self.prior_fit is not None:
                summary["prior_fit"] = self.prior_fit
            path = self.run_dir / "summary.json"
            if self.images_this_session == 0 and self.resume_checkpoint is not None and path.is_file():
                # resumed with nothing left to train: the speed and losses are those of the sessions that trained
                try:
                    before = json.loads(path.read_text())
                except ValueError:
                    before = {}
                summary["images_per_second"] = before.get("images_per_second", summary["images_per_second"])
                summary["last_losses"] = summary["last_losses"] or before.get("last_losses", {})
            atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
            log.info("done: %d steps, %d epochs, %.0f images/s, %.1f s (%s) -> %s", self.state.step, epoch, rate, elapsed,
                     stopped_by, self.run_dir)
        self.callbacks("on_train_end", self, result)
        if stopped_by == "interrupt":
            raise Interrupted(f"interrupted at step {self.state.step}; checkpoint written to {self.ckpt_path}. "
                              f"Continue with: ganvae train {cfg.model_name} --out {self.run_dir} --resume")
        return result

    def _progress_bar(self, epoch: int, n_steps: int):
        interactive = sys.stderr.isatty() or "ipykernel" in sys.modules  # a terminal or a notebook: no bars in log files
        if (not (self.cfg.train.progress and self.dist.is_main) or not interactive
                or logging.getLogger("ganvae").getEffectiveLevel() > logging.INFO):
            return None
        from tqdm.auto import tqdm  # the notebook widget in Jupyter (when ipywidgets is installed), text elsewhere

        return tqdm(total=n_steps, initial=self.state.step_in_epoch, desc=f"epoch {epoch + 1}/{self.cfg.train.epochs}",
                    unit="step", leave=False, dynamic_ncols=True)

    def _record_metrics(self, epoch: float, elapsed: float, epoch_end: bool) -> None:
        """Call the in-training metrics (they decide whether one is due) and leave their time out of the budget."""
        before = self.metrics.last_point
        try:
            self.excluded_seconds += self.metrics(self.model, self.data, self.state.step, epoch, elapsed, epoch_end)
        except GanvaeError as err:  # a missing classifier must not end a training run
            log.warning("in-training metrics skipped: %s", err)
        if self.metrics.last_point is not before:
            collapse = self.metrics.collapse
            if collapse is not None and not any(w.startswith("mode collapse") for w in self.warnings):
                log.warning(collapse)  # once a session: the first point that finds it says when it happened
                self.warnings.append(collapse)
            self.callbacks("on_metrics", self, self.metrics.last_point)


def _collective_failure(err: RuntimeError) -> bool:
    """Whether ``err`` is a distributed backend's report of a peer that vanished (gloo: connection closed or reset,
    timeouts; NCCL: its errors; torch's own DistError types)."""
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None and isinstance(err, dist_error):
        return True
    text = str(err)
    return any(s in text for s in ("gloo", "Connection reset", "Connection closed", "NCCL", "Timed out", "timed out"))


SENSIBLE_LR = (1e-5, 1e-3)  # Adam's rates in every family's recipes and presets lie in this range


def divergence_advice(cfg: ExperimentConfig, run_dir: Path, resumable: bool) -> str:
    """What to do after a divergence: halve each learning rate while it lies in the sensible range; a rate far
    outside it is brought back into it (halving 1e300 would not help)."""
    rates = {f.name: getattr(cfg.model, f.name) for f in dataclasses.fields(cfg.model) if f.name.startswith("lr")}
    low, high = SENSIBLE_LR
    new = {r: (v / 2 if low <= v <= high * 10 else 2e-4) for r, v in rates.items()}
    wild = [f"model.{r}={v:g}" for r, v in rates.items() if not low <= v <= high * 10]
    sets = " ".join(f"--set model.{r}={v:g}" for r, v in new.items())
    again = f"ganvae train {cfg.model_name} --out {run_dir} --resume {sets}" if resumable else f"train again with {sets}"
    if wild:
        return (f"{' and '.join(wild)} {'is' if len(wild) == 1 else 'are'} far outside the range that trains "
                f"({low:g} to {high:g} for Adam here; the recipes use 1e-4 to 1e-3): {again}")
    return (f"Lower the learning rate{'s' if len(rates) > 1 else ''} (sensible: {low:g} to {high:g}), e.g. halve "
            f"{' and '.join('model.' + r for r in rates)}: {again}")

