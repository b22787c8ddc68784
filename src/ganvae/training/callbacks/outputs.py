"""The trainer's own files, as callbacks like a user's (STYLE.md, Pattern 20): the trainer puts these first in its
:class:`~ganvae.training.callbacks.CallbackList`, in this order, so that at an epoch's end the grid is drawn, then
the quality point measured, then the checkpoint written, and only then do the trackers and your callbacks run.

- :class:`LossLog`: ``losses.csv`` (one row per step), TensorBoard's ``loss/*`` and speed scalars, ``losses.png``.
- :class:`SampleGrids`: a grid on the fixed noise after each ``train.sample_every`` epochs, then ``progress.gif``.
- :class:`QualityPoints`: the in-training metrics (:class:`ganvae.metrics.during_training.TrainingMetrics`) on their
  cadence, the collapse warning, and ``on_metrics`` for every other callback; their clock is saved in checkpoints.
- :class:`PeriodicCheckpoint`: the run's checkpoint every ``train.checkpoint_every`` epochs, at the last one, and
  mid-epoch after ``train.checkpoint_minutes``.

Only rank 0 writes files; the decisions that every rank must take together (a quality point, a mid-epoch
checkpoint) are taken together, since every rank calls the same hooks at the same steps.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganvae.errors import GanvaeError
from ganvae.models.conditioning import class_grid_inputs
from ganvae.training.callbacks.base import Callback, Trainer, TrainResult
from ganvae.training.outputs import truncate_csv

if TYPE_CHECKING:
    from ganvae.metrics.during_training import TrainingMetrics

log = logging.getLogger(__name__)


def restart_record(trainer: Trainer, path: Path, keep) -> None:
    """A CSV of the run by step (its ``step`` column) as a session starts, rank 0: a fresh run (the same command
    again after a kill before any checkpoint) starts a fresh record; a resumed run keeps the rows ``keep(step)``
    accepts, dropping those a killed run logged after its last checkpoint (they are redone)."""
    if not trainer.dist.is_main:
        return
    if trainer.resume_checkpoint is None:
        path.unlink(missing_ok=True)
    else:
        truncate_csv(path, "step", keep)


class LossLog(Callback):
    """``losses.csv`` (one row per step, steps numbered from 0: row ``s`` is the step that made step ``s + 1``
    done), TensorBoard's ``loss/*`` and ``speed/images_per_second``, and at the end the loss plot ``losses.png``.
    The trainer has already averaged the interval's losses over the ranks and checked them (a non-finite loss
    stops the run before anything is written): :attr:`Trainer.logged <ganvae.training.trainer.Trainer.logged>`."""

    def on_train_start(self, trainer: Trainer) -> None:
        # row s is the step that made step s + 1 done: the rows from the checkpoint's step on are redone
        restart_record(trainer, trainer.run_dir / "losses.csv", lambda s: s < trainer.state.step)

    def on_log(self, trainer: Trainer, losses: Mapping[str, float], images_per_second: float) -> None:
        if not trainer.dist.is_main:
            return
        logged = trainer.logged
        path = trainer.run_dir / "losses.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(["step", "epoch", *logged.names])
            for step, epoch, row in logged.rows():
                w.writerow([step, epoch + 1, *(f"{v:.6g}" for v in row)])
        if trainer.writer is not None:
            for step, _, row in logged.rows():
                for n, v in zip(logged.names, row):
                    trainer.writer.add_scalar(f"loss/{n}", v, step)
            trainer.writer.add_scalar("speed/images_per_second", images_per_second, logged.steps[-1])

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        path = trainer.run_dir / "losses.csv"
        if trainer.dist.is_main and path.exists():
            from ganvae.viz.plots import plot_losses

            plot_losses(path, path.with_suffix(".png"), title=f"{trainer.cfg.model_name} losses")


class SampleGrids(Callback):
    """A grid on the fixed noise (``trainer.state.fixed_noise``) after each ``train.sample_every`` epochs and the
    last (``samples/epoch_NNNN.png``; a conditional model: one row per class, the same noise in every row), one of
    the partial epoch when a session stops inside it (a resumed run overwrites it when it completes the epoch), and
    at the end ``progress.gif`` from them all. TensorBoard shows each as the image ``samples``."""

    def __init__(self, gif_fps: float):
        self.gif_fps = gif_fps

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if epoch % trainer.cfg.train.sample_every == 0 or epoch == trainer.cfg.train.epochs:
            self.write(trainer, epoch - 1)

    def on_fit_end(self, trainer: Trainer, stopped_by: str) -> None:
        if trainer.stopped_in_epoch is not None:
            self.write(trainer, trainer.stopped_in_epoch)

    def write(self, trainer: Trainer, epoch: int) -> None:
        """The grid of ``epoch`` (0-based), rank 0."""
        if not trainer.dist.is_main:
            return
        from ganvae.viz.images import make_grid, save_png

        model, noise = trainer.model, trainer.state.fixed_noise
        with trainer.dist.unwrapped(model):
            if model.conditional:  # one row per class, the same noise in every row
                classes = model.classes
                cols = -(-len(noise) // len(classes))
                z, labels = class_grid_inputs(noise[:cols], classes)
                grid = make_grid(model.generate(z.to(model.device), labels), nrow=cols)
            else:
                grid = make_grid(model.generate(noise.to(model.device)))
        save_png(grid, trainer.run_dir / "samples" / f"epoch_{epoch + 1:04d}.png")
        if trainer.writer is not None:
            # make_grid: (H, W) grey or (H, W, 3) colour
            trainer.writer.add_image("samples", grid if grid.ndim == 3 else grid[None], trainer.state.step,
                                     dataformats="HWC" if grid.ndim == 3 else "CHW")

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        if not trainer.dist.is_main:
            return
        from ganvae.viz.images import load_png, save_gif

        frames = [load_png(p) for p in sorted((trainer.run_dir / "samples").glob("epoch_*.png"))]
        if frames:
            save_gif(frames, trainer.run_dir / "progress.gif", fps=self.gif_fps)


class QualityPoints(Callback):
    """The in-training metrics (FID, class coverage, a likelihood bound; :mod:`ganvae.metrics.during_training`) at
    epoch ends every ``train.eval_every`` epochs or at logging intervals every ``train.eval_interval_minutes`` of
    training. Their time is not training time. A new point goes to every callback's ``on_metrics``; the first point
    of a session that finds mode collapse warns (into ``summary.json``). The clock of the points is this callback's
    saved state, so a resumed run's next point is due when the interrupted run's would have been."""

    state_key = "quality_points"  # the key checkpoints have always used

    def __init__(self):
        self._saved: dict[str, Any] = {}
        self.metrics: TrainingMetrics | None = None  # built when training starts

    def state_dict(self) -> dict[str, Any]:
        return self.metrics.state_dict() if self.metrics is not None else dict(self._saved)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._saved = dict(state)

    def on_train_start(self, trainer: Trainer) -> None:
        from ganvae.metrics.during_training import TrainingMetrics

        self.metrics = TrainingMetrics(trainer.cfg, trainer.run_dir, trainer.dist, trainer.writer)
        self.metrics.load_state_dict(self._saved)
        # a point's step counts the steps done: the point at the checkpoint's own step stays
        restart_record(trainer, self.metrics.path, lambda s: s <= trainer.state.step)

    def on_mid_epoch(self, trainer: Trainer, epoch: float) -> None:
        self._measure(trainer, epoch, epoch_end=False, elapsed=trainer.clock.elapsed())

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self._measure(trainer, epoch, epoch_end=True, elapsed=trainer.epoch_elapsed)

    def _measure(self, trainer: Trainer, epoch: float, epoch_end: bool, elapsed: float) -> None:
        metrics = self.metrics
        assert metrics is not None, "on_train_start builds the metrics"
        before = metrics.last_point
        with trainer.clock.excluding():
            try:
                metrics(trainer.model, trainer.data, trainer.state.step, epoch, elapsed, epoch_end)
            except GanvaeError as err:  # a missing classifier must not end a training run
                log.warning("in-training metrics skipped: %s", err)
        if metrics.last_point is not before:
            if metrics.collapse is not None and not any(w.startswith("mode collapse") for w in trainer.warnings):
                trainer.warn(metrics.collapse)  # once a session: the first point that finds it says when
            trainer.callbacks("on_metrics", trainer, metrics.last_point)


class PeriodicCheckpoint(Callback):
    """The run's checkpoint (``checkpoint.safetensors``) on its cadences: after every ``train.checkpoint_every``
    epochs and the last one, and mid-epoch once ``train.checkpoint_minutes`` have passed since the last checkpoint
    (decided by all ranks together), so a crash early in a long epoch loses at most that much work. Stops, interrupts
    and errors get their own checkpoint from the trainer, at the exact position."""

    def __init__(self):
        self.last_time = time.monotonic()

    def on_train_start(self, trainer: Trainer) -> None:
        self.last_time = time.monotonic()  # the mid-epoch cadence counts from the start of this session

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        self.last_time = time.monotonic()

    def on_mid_epoch(self, trainer: Trainer, epoch: float) -> None:
        minutes = trainer.cfg.train.checkpoint_minutes
        if minutes > 0 and trainer.dist.any(time.monotonic() - self.last_time >= minutes * 60):
            trainer.save_run_checkpoint()

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        if epoch % trainer.cfg.train.checkpoint_every == 0 or epoch == trainer.cfg.train.epochs:
            trainer.save_run_checkpoint(trainer.epoch_elapsed)
