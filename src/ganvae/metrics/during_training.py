"""Cheap metrics recorded while training, so reports can plot quality against epochs and against wall-clock time.

:class:`TrainingMetrics` is a small object the trainer calls after each logging interval and at each epoch's
end (after lucidrains' ``FIDEvaluation``): it decides whether a measurement is due, owns its feature network and
cached reference features, its CSV and its clock (the training time of the last point, saved with the run's
checkpoints); the trainer's clock leaves the time it spends out of the run's time budget. Only the Frechet
distance and class coverage on ``train.eval_samples`` samples from a
fixed generator (seeded; the training's own random stream is not touched, so resumption stays exact), for
encoder models an IWAE bound on part of the test set, and for models whose networks take classes or
pseudo-classes whether the generator still uses its noise (:mod:`ganvae.metrics.noise_use`).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch

from ganvae.common import seeds
from ganvae.metrics.classifier import load_classifier
from ganvae.metrics.evaluate import likelihood_metrics, reference_features, sample_metrics
from ganvae.metrics.noise_use import collapse_message, noise_spreads
from ganvae.metrics.registry import (
    CLASS_ENTROPY,
    CONFIDENT_SHARE,
    FID,
    NOISE_SPREAD_MIN,
    TEST_NLL_IWAE,
    TEST_NLL_IWAE10,
)

log = logging.getLogger(__name__)

# the CSV's columns: the metrics are the registry's (ganvae.metrics.registry), and so are their names in the trackers
FIELDS = ["epoch", "step", "train_seconds", FID.key, CLASS_ENTROPY.key, CONFIDENT_SHARE.key, "n_samples",
          TEST_NLL_IWAE10.key, "dropped_classes"]
TENSORBOARD = (FID, CLASS_ENTROPY)  # the metrics of each point that TensorBoard plots (metrics/KEY)
NLL_IMAGES = 2000  # test images for the in-training likelihood bound (IWAE, k = 10)


class TrainingMetrics:
    """In-training FID, class coverage (and likelihood bound) every ``train.eval_every`` epochs (at epoch ends) or
    every ``train.eval_interval_minutes`` of training (checked at each logging interval, so slow models such as the
    CPPN, whose epoch can outlast the run, still get a curve).

    Args:
        cfg: the run's config (``train.eval_*``, the seed, the dataset's classifier).
        run_dir: where ``metrics_during_training.csv`` goes.
        dist: the distributed context: every rank decides together and draws its share of the samples.
        writer: a TensorBoard writer, or None.
    """

    def __init__(self, cfg, run_dir: Path, dist, writer=None):
        self.every_epochs = cfg.train.eval_every
        self.interval_s = cfg.train.eval_interval_minutes * 60
        self.n_samples, self.seed, self.dataset = cfg.train.eval_samples, cfg.train.seed, cfg.data.dataset
        self.path = Path(run_dir) / "metrics_during_training.csv"
        self.dist, self.writer = dist, writer
        self.last_elapsed = 0.0  # training seconds at the last measurement
        self._reference = None  # (feature network, test data on the CPU, reference features), loaded on first use
        self.last_point: dict[str, float] | None = None  # the latest row written (rank 0), for callbacks
        self.collapse: str | None = None  # the latest point's mode-collapse warning (rank 0), or None

    def state_dict(self) -> dict:
        """The clock of the quality points (training seconds at the last one), saved in checkpoints so a resumed
        run's next point is due when the interrupted run's would have been."""
        return {"last_elapsed": self.last_elapsed}

    def load_state_dict(self, state: dict) -> None:
        self.last_elapsed = float(state.get("last_elapsed", 0.0))

    def __call__(self, model, data, step: int, epoch: float, elapsed: float, epoch_end: bool) -> None:
        """Measure if due (``last_point`` is then the new row). ``epoch`` is fractional mid-epoch."""
        if not epoch_end and self.interval_s <= 0:  # nothing can be due between epoch ends: no collective call
            return
        by_epoch = epoch_end and self.every_epochs > 0 and round(epoch) % self.every_epochs == 0
        # by time: fast models (a VAE epoch can take 0.2 s) would otherwise spend more time evaluating than training
        by_time = self.interval_s > 0 and elapsed - self.last_elapsed >= self.interval_s
        if not self.dist.any(by_epoch or by_time):
            return
        self.last_elapsed = elapsed
        device = model.device
        # the run's stream stays untouched
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            self._record(model, data, step, epoch, elapsed)

    def _record(self, model, data, step: int, epoch: float, elapsed: float) -> None:
        dist = self.dist
        # every rank draws its share of the samples (its own seed); rank 0 gathers them and scores them
        per_rank = -(-self.n_samples // dist.world_size)
        g = torch.Generator().manual_seed(self.seed + seeds.DURING_TRAINING_SAMPLES + dist.rank)
        # one balanced request split over the ranks: rank r continues the class cycle where rank r - 1 stopped
        labels = model.labels_for(per_rank, start=dist.rank * per_rank)  # balanced (LabelPolicy)
        with dist.unwrapped(model):
            samples = model.sample(per_rank, generator=g, labels=labels)
        samples = dist.all_gather_cat(samples).cpu()
        if not dist.is_main:
            return
        if self._reference is None:
            cpu_data = data.to("cpu")
            fnet = load_classifier(self.dataset, image_shape=cpu_data.image_shape)
            self._reference = (fnet, cpu_data, reference_features(cpu_data, fnet))
        fnet, cpu_data, reference = self._reference
        m = sample_metrics(samples, cpu_data, fnet, fid_and_coverage_only=True, reference=reference)
        nll = ""
        if model.has_encoder:
            nll = f"{likelihood_metrics(model, cpu_data, k=10, max_images=NLL_IMAGES)[TEST_NLL_IWAE.key]:.3f}"
        new = not self.path.exists()
        row = [round(epoch, 3), step, f"{elapsed:.2f}", f"{m[FID.key]:.4f}", f"{m[CLASS_ENTROPY.key]:.4f}",
               f"{m[CONFIDENT_SHARE.key]:.4f}", len(samples), nll, len(m["dropped_classes"])]
        with open(self.path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(FIELDS)
            w.writerow(row)
        self.last_point = {k: float(v) for k, v in zip(FIELDS, row) if v != ""}
        # a generator that takes classes: does it still use its noise? (the CSV keeps its columns, so that a run
        # resumed from an older version appends rows its header describes)
        with dist.unwrapped(model):
            spreads = noise_spreads(model, torch.Generator().manual_seed(self.seed + seeds.DURING_TRAINING_NOISE_USE))
        self.collapse = collapse_message(model, spreads or [], step)
        if spreads:
            self.last_point[NOISE_SPREAD_MIN.key] = min(spreads)
            if self.writer is not None:
                self.writer.add_scalar(f"metrics/{NOISE_SPREAD_MIN.key}", min(spreads), step)
        if self.writer is not None:
            for metric in TENSORBOARD:
                self.writer.add_scalar(f"metrics/{metric.key}", m[metric.key], step)
