"""The trainer's own checks and summary, callbacks like a user's (STYLE.md, Pattern 20): the trainer puts them after
its files (:mod:`ganvae.training.callbacks.outputs`) and before the trackers and yours in its
:class:`~ganvae.training.callbacks.CallbackList`, so they run, save and restore their state the same way.

- :class:`SpeedCheck`: once a session, a default recipe far slower than measured says why and what to do
  (:mod:`ganvae.training.speed_check`), and a wall-clock budget that ended before the first quality point says so,
  into ``summary.json``'s warnings.
- :class:`RunSummary`: ``summary.json``, the session's budget, speed, losses, warnings and the prior's fit.
- :class:`LatentPriorFit`: at the end of training, an encoder model's learned prior is fitted to the training
  images' posterior means, the last checkpoint is rewritten with it, and ``samples/learned_prior.png`` drawn.
- :class:`CollapseCheck`: at the end of every run, whatever the in-training settings, a cheap check of the final
  model for mode collapse (classes dropped by the dataset's classifier, a generator that ignores its noise), into
  ``summary.json``'s warnings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import torch

from ganvae.common import seeds
from ganvae.common.files import atomic_write_text
from ganvae.training import speed_check
from ganvae.training.callbacks.base import Callback, Trainer

log = logging.getLogger(__name__)


class SpeedCheck(Callback):
    """Judges this session's training speed once it has trained :data:`~ganvae.training.speed_check.CHECK_AFTER_S`
    seconds (at a log interval), or at the end of a shorter session of at least
    :data:`~ganvae.training.speed_check.MIN_SECONDS`; rank 0, CPU runs of a built-in family's default recipe."""

    def __init__(self):
        self.checked = False  # once a session

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        self._check(trainer, speed_check.CHECK_AFTER_S)

    def on_fit_end(self, trainer: Trainer, stopped_by: str) -> None:
        self._check(trainer, speed_check.MIN_SECONDS)
        cfg = trainer.cfg
        points = trainer.run_dir / "metrics_during_training.csv"  # this session's points or an earlier one's
        measured = points.is_file() and len(points.read_text().splitlines()) > 1
        budget = speed_check.budget_message(stopped_by, int(measured),
                                            cfg.train.eval_every > 0 or cfg.train.eval_interval_minutes > 0,
                                            cfg.train.max_minutes)
        if budget:
            trainer.warn(budget)

    def _check(self, trainer: Trainer, after_s: float) -> None:
        if self.checked or not trainer.dist.is_main or trainer.device.type != "cpu":
            return
        seconds = trainer.clock.stepping()
        if seconds < after_s:
            return
        self.checked = True
        reference = speed_check.reference_speed(trainer.cfg)
        if reference is None:
            return
        message = speed_check.slow_training_message(trainer.cfg.model_name, trainer.images_this_session / seconds,
                                                    reference, torch.get_num_threads(), *speed_check.machine_load(),
                                                    timed=trainer.cfg.train.max_minutes is not None)
        if message:
            trainer.warn(message)


class LatentPriorFit(Callback):
    """Fit an encoder model's learned prior (``model.prior: gmm``) to the training images' posterior means when a
    session's steps are over (not after an interrupt), rewrite the last checkpoint with it (same position and
    counters; the fit's time is not training time), keep the fit's record for ``summary.json`` (``prior_fit``) and
    draw ``samples/learned_prior.png`` from it. Too few images for the mixture is a warning, not a failure: the run
    keeps N(0, I)."""

    def __init__(self):
        self.record: dict | None = None  # the fit of this session (MixtureFit.record), for summary.json

    def on_fit_end(self, trainer: Trainer, stopped_by: str) -> None:
        from ganvae.models.base import fit_latent_prior

        model = trainer.model
        if stopped_by == "interrupt" or not model.latent_prior.fittable or not trainer.dist.is_main:
            return
        with trainer.clock.excluding():
            try:
                with trainer.dist.unwrapped(model):
                    fit = fit_latent_prior(model, trainer.data.train_images, trainer.data.train_labels,
                                           seed=trainer.cfg.train.seed)
            except ValueError as err:  # a warning of the run (summary.json, the report), not only a log line
                trainer.warn(f"learned prior not fitted ({err}); samples come from N(0, I). Fit it later with "
                             f"`ganvae fit-prior {trainer.run_dir}`.")
                return
            prior = model.latent_prior.describe()
            log.info("learned prior: %s fitted to %d posterior means in %.1f s (%d EM iterations, log-likelihood "
                     "%.3f nats per code)", prior, fit.n, fit.seconds, fit.iterations, fit.log_likelihood)
            self.record = fit.record(prior, trainer.data.name, trainer.cfg.train.seed)
            trainer.rewrite_last_checkpoint()
            self._picture(trainer)

    @staticmethod
    def _picture(trainer: Trainer) -> None:
        """``samples/learned_prior.png``: as many samples as the per-epoch grids, drawn from the fitted prior (a
        conditional model: one row per class, each from its class's mixture)."""
        from ganvae.viz.images import make_grid, save_png

        model = trainer.model
        g, n = torch.Generator().manual_seed(trainer.cfg.train.seed + seeds.FIXED_NOISE), len(trainer.state.fixed_noise)
        with trainer.dist.unwrapped(model):
            if model.conditional:
                cols = -(-n // len(model.classes))
                z, labels = model.latent_prior.class_grid(cols, model.classes, g)
            else:
                cols, z, labels = None, model.latent_prior.draw(n, g), None
            grid = make_grid(model.generate(z.to(model.device), labels), nrow=cols)
        save_png(grid, trainer.run_dir / "samples" / "learned_prior.png")


class CollapseCheck(Callback):
    """Once, when a session's steps are over (not after an interrupt), rank 0: :data:`SAMPLES` samples of the final
    model (a balanced request for a conditional model; its own seeded generator, the run's random stream untouched)
    are classified by the dataset's feature network; classes under a third of their share, or a generator whose
    samples do not vary with the noise (:func:`ganvae.metrics.noise_use.collapse_message`), are a warning in
    ``summary.json`` that the report shows next to the model. A short run that collapsed then says so even with
    the in-training quality points off (their default). About a second; skipped where the dataset has no classifier
    at the run's image shape (shipped for MNIST; ``ganvae classifier train`` for other data), and where a quality
    point already measured the final step."""

    SAMPLES = 500

    def on_fit_end(self, trainer: Trainer, stopped_by: str) -> None:
        if stopped_by == "interrupt" or not trainer.dist.is_main or trainer.images_this_session == 0:
            return
        points = trainer.run_dir / "metrics_during_training.csv"
        if points.is_file() and points.read_text().splitlines()[-1].split(",")[1:2] == [str(trainer.state.step)]:
            return  # measured at this very step, warned there if it collapsed
        device = trainer.device
        with trainer.clock.excluding(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            message = self._check(trainer)
        if message:
            trainer.warn(message)

    def _check(self, trainer: Trainer) -> str | None:
        from ganvae.errors import GanvaeError
        from ganvae.metrics.classifier import load_classifier
        from ganvae.metrics.core import class_coverage
        from ganvae.metrics.noise_use import collapse_message, noise_spreads

        model, seed = trainer.model, trainer.cfg.train.seed
        try:  # the classifier of the run's data at its image shape (none trained yet: no check)
            fnet = load_classifier(trainer.cfg.data.dataset, image_shape=tuple(model.image_shape))
        except GanvaeError as err:
            log.debug("end-of-run collapse check skipped: %s", err)
            return None
        with trainer.dist.unwrapped(model), torch.no_grad():
            g = torch.Generator().manual_seed(seed + seeds.DURING_TRAINING_SAMPLES)
            samples = model.sample(self.SAMPLES, generator=g, labels=model.labels_for(self.SAMPLES)).cpu()
            spreads = noise_spreads(model, torch.Generator().manual_seed(seed + seeds.DURING_TRAINING_NOISE_USE))
        coverage = class_coverage(fnet.extract(samples)[1], model.classes if model.conditional else None)
        ignored = collapse_message(model, spreads or [], trainer.state.step)
        if ignored:
            return ignored
        if coverage["dropped_classes"]:
            return (f"mode collapse at the end of training (step {trainer.state.step}): {self.SAMPLES} samples give "
                    f"classes {coverage['dropped_classes']} under a third of their share (normalised class entropy "
                    f"{coverage['entropy']:.2f}); train longer, or try another --seed")
        return None


class RunSummary(Callback):
    """``summary.json`` (rank 0), the first of the ``on_train_end`` hooks: the session's steps, epochs, images, time,
    speed and why it stopped, its last losses, the warnings the run gave (speed, budget, collapse) and the learned
    prior's fit (``prior_fit``, from ``prior_fit``'s record)."""

    def __init__(self, prior_fit: LatentPriorFit):
        self.prior_fit = prior_fit

    def on_train_end(self, trainer: Trainer, result) -> None:
        if not trainer.dist.is_main:
            return
        cfg = trainer.cfg
        summary = {"model_name": cfg.model_name, "steps": result.step, "epochs_completed": result.epoch,
                   "images_seen": trainer.state.images_seen, "train_seconds": round(result.seconds, 2),
                   "images_per_second": round(result.images_per_second, 1), "stopped_by": result.stopped_by,
                   "last_losses": result.last_losses, "device": str(trainer.device), "precision": cfg.train.precision,
                   "world_size": trainer.dist.world_size,
                   # this session's time outside the optimisation steps: clustering counts against a --max-minutes
                   # budget (not the speed), measuring (quality points, the prior's fit, checks) against neither
                   "clustering_seconds": round(trainer.clock.clustering, 2),
                   "measuring_seconds": round(trainer.clock.excluded, 2)}
        if result.stop_reason is not None:
            summary["stop_reason"] = result.stop_reason
        if trainer.warnings:
            summary["warnings"] = trainer.warnings
        if self.prior_fit.record is not None:
            summary["prior_fit"] = self.prior_fit.record
        path = trainer.run_dir / "summary.json"
        if trainer.images_this_session == 0 and trainer.resume_checkpoint is not None and path.is_file():
            # resumed with nothing left to train: the speed and losses are those of the sessions that trained
            try:
                before = json.loads(path.read_text())
            except ValueError:
                before = {}
            summary["images_per_second"] = before.get("images_per_second", summary["images_per_second"])
            summary["last_losses"] = summary["last_losses"] or before.get("last_losses", {})
        atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
        log.info("done: %d steps, %d epochs, %.0f images/s, %.1f s (%s) -> %s", result.step, result.epoch,
                 result.images_per_second, result.seconds, result.stopped_by, trainer.run_dir)
