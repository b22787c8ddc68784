"""Cheap metrics recorded while training (every ``train.eval_every`` epochs), so reports can
plot quality against epochs and against wall-clock time.

Only the Frechet distance and class coverage on ``train.eval_samples`` samples from a fixed
generator (seeded; the training's own random stream is not touched, so resumption stays
exact). The time spent here is excluded from the run's time budget.
"""

from __future__ import annotations

import csv
import time

import torch

from ganvae.metrics.classifier import load_classifier
from ganvae.metrics.evaluate import reference_features, sample_metrics

FIELDS = ["epoch", "step", "train_seconds", "fid", "class_entropy", "confident_share", "n_samples", "test_nll_iwae10",
          "dropped_classes"]
NLL_IMAGES = 2000  # test images for the in-training likelihood bound (IWAE, k = 10)


def record_training_metrics(trainer, epoch: float, elapsed: float) -> None:
    devices = [trainer.device] if trainer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the run's own random stream stays untouched
        _record(trainer, epoch, elapsed)


def _record(trainer, epoch: float, elapsed: float) -> None:
    t0 = time.monotonic()
    dist = trainer.dist
    # every rank draws its share of the samples (its own seed); rank 0 gathers them and scores them
    per_rank = -(-trainer.cfg.train.eval_samples // dist.world_size)
    g = torch.Generator().manual_seed(trainer.cfg.train.seed + 104729 + dist.rank)
    with dist.unwrapped(trainer.model):
        samples = trainer.model.sample(per_rank, generator=g)
    samples = dist.all_gather_cat(samples).cpu()
    if not dist.is_main:
        trainer.excluded_seconds += time.monotonic() - t0
        return
    state = getattr(trainer, "_metric_state", None)
    if state is None:
        fnet = load_classifier(trainer.cfg.data.dataset)
        data = trainer.data.to("cpu")
        state = trainer._metric_state = (fnet, data, reference_features(data, fnet))
    fnet, data, reference = state
    m = sample_metrics(samples, data, fnet, cheap=True, reference=reference)
    nll = ""
    if trainer.model.has_encoder:
        from ganvae.metrics.evaluate import likelihood_metrics

        nll = f"{likelihood_metrics(trainer.model, data, k=10, max_images=NLL_IMAGES)['test_nll_iwae']:.3f}"
    path = trainer.run_dir / "metrics_during_training.csv"
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(FIELDS)
        w.writerow([round(epoch, 3), trainer.step, f"{elapsed:.2f}", f"{m['fid']:.4f}", f"{m['class_entropy']:.4f}",
                    f"{m['confident_share']:.4f}", len(samples), nll, len(m["dropped_classes"])])
    if trainer.writer is not None:
        trainer.writer.add_scalar("metrics/fid", m["fid"], trainer.step)
        trainer.writer.add_scalar("metrics/class_entropy", m["class_entropy"], trainer.step)
    trainer.excluded_seconds += time.monotonic() - t0
