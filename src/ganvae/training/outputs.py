"""The trainer's outputs, one small object each (the way :class:`ganvae.metrics.during_training.TrainingMetrics`
works): the loss log (``losses.csv``, TensorBoard scalars, the divergence check, the loss plot), the sample grids
(one per epoch on the fixed noise, then ``progress.gif``) and the checkpoint cadences. The trainer owns the
training position; these own their files. Only rank 0 writes; every rank runs the divergence check on the same
reduced numbers, so all stop together.

A new output goes here (or in a user's :class:`ganvae.training.callbacks.Callback`, which needs no change to the
package)."""

from __future__ import annotations

import csv
import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable

import torch

from ganvae.common.files import atomic_write_text
from ganvae.errors import TrainingDiverged
from ganvae.models.conditioning import class_grid_inputs

log = logging.getLogger(__name__)


def open_tensorboard(run_dir: Path, step: int):
    """A TensorBoard writer into ``run_dir/tensorboard`` (events after ``step`` purged on resume), or None with a
    warning when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed; TensorBoard logging is off")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=step if step else None)


def truncate_csv(path: Path, column: str, keep: Callable[[int], bool]) -> None:
    """Keep the rows of a CSV whose integer ``column`` passes ``keep`` (atomically; absent files are left)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    i = rows[0].index(column)
    kept = [rows[0]] + [r for r in rows[1:] if keep(int(r[i]))]
    if len(kept) < len(rows):
        atomic_write_text(path, "".join(",".join(r) + "\n" for r in kept))


class LossLog:
    """``losses.csv`` (one row per step, steps numbered from 0), TensorBoard's ``loss/*`` and speed scalars, and the
    divergence check: a non-finite loss stops the run with :class:`TrainingDiverged`, naming the loss, the step
    and what to do (``advice``).

    Args:
        run_dir: the run folder.
        ckpt_path: the run's checkpoint, which the divergence message names when it exists.
        dist: the distributed context (losses are averaged over ranks before anything is written).
        device: where the losses live (they are stacked there and synced to the host once per call).
        writer: a TensorBoard writer, or None.
        advice: ``(checkpoint exists) -> str``, the fix the divergence message ends with.
    """

    def __init__(self, run_dir: Path, ckpt_path: Path, dist, device: torch.device, writer,
                 advice: Callable[[bool], str]):
        self.path, self.ckpt_path = run_dir / "losses.csv", ckpt_path
        self.dist, self.device, self.writer, self.advice = dist, device, writer, advice

    def truncate(self, step: int) -> None:
        """On resume: rows of steps at or after ``step`` (logged by a killed run after its last checkpoint) are
        redone, so they go."""
        truncate_csv(self.path, "step", lambda s: s < step)

    def write(self, pending: list[tuple[int, int, dict[str, torch.Tensor]]], imgs_per_s: float) -> dict[str, float]:
        """Sync the pending ``(step, epoch, losses)`` to the host once, check them, write the CSV and TensorBoard.
        Returns the last step's losses as floats."""
        names = list(pending[0][2])
        # (steps, losses)
        values = torch.stack([torch.stack([step[n].float().to(self.device) for n in names]) for _, _, step in pending])
        values = self.dist.reduce_mean(values).cpu()  # the mean over ranks: every rank sees the same numbers
        bad = ~torch.isfinite(values)
        if bad.any():
            i, j = (int(v) for v in bad.nonzero()[0])
            step, epoch = pending[i][0], pending[i][1]
            kept = self.ckpt_path.exists()
            where = f"the last good checkpoint {self.ckpt_path} (kept)" if kept else "no checkpoint yet"
            raise TrainingDiverged(
                f"training diverged: {names[j]} became {values[i, j].item()} at step {step} (epoch {epoch + 1}). "
                f"Stopped; {where}. {self.advice(kept)}")
        if self.dist.is_main:
            new = not self.path.exists()
            with open(self.path, "a", newline="") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(["step", "epoch", *names])
                for (step, epoch, _), row in zip(pending, values.tolist()):
                    w.writerow([step, epoch + 1, *(f"{v:.6g}" for v in row)])
            if self.writer is not None:
                for (step, _, _), row in zip(pending, values.tolist()):
                    for n, v in zip(names, row):
                        self.writer.add_scalar(f"loss/{n}", v, step)
                self.writer.add_scalar("speed/images_per_second", imgs_per_s, pending[-1][0])
        return dict(zip(names, values[-1].tolist()))

    def finish(self, title: str) -> None:
        """The loss plot, ``losses.png``."""
        if self.dist.is_main and self.path.exists():
            from ganvae.viz.plots import plot_losses

            plot_losses(self.path, self.path.with_suffix(".png"), title=title)


class SampleGrids:
    """A grid on the fixed noise after each ``train.sample_every`` epochs (``samples/epoch_NNNN.png``; a conditional
    model: one row per class, the same noise in every row) and, at the end, ``progress.gif`` from them.

    Args:
        run_dir: the run folder.
        dist: the distributed context (only rank 0 draws).
        writer: a TensorBoard writer, or None (the grid is logged as the image ``samples``).
        gif_fps: frames per second of the progress GIF.
    """

    def __init__(self, run_dir: Path, dist, writer, gif_fps: float):
        self.folder = run_dir / "samples"
        self.gif_path = run_dir / "progress.gif"
        self.dist, self.writer, self.gif_fps = dist, writer, gif_fps

    def write(self, model, fixed_noise: torch.Tensor, epoch: int, step: int) -> None:
        """The grid of ``epoch`` (0-based; a partial epoch's grid is overwritten when a resumed run completes it)."""
        if not self.dist.is_main:
            return
        from ganvae.viz.images import make_grid, save_png

        with self.dist.unwrapped(model):
            if model.conditional:  # one row per class, the same noise in every row
                classes = model.classes
                cols = -(-len(fixed_noise) // len(classes))
                z, labels = class_grid_inputs(fixed_noise[:cols], classes)
                grid = make_grid(model.generate(z.to(model.device), labels), nrow=cols)
            else:
                grid = make_grid(model.generate(fixed_noise.to(model.device)))
        save_png(grid, self.folder / f"epoch_{epoch + 1:04d}.png")
        if self.writer is not None:
            self.writer.add_image("samples", grid[None], step, dataformats="CHW")

    def finish(self) -> None:
        """``progress.gif``: every epoch's grid in order."""
        if not self.dist.is_main:
            return
        from ganvae.viz.images import load_png, save_gif

        frames = [load_png(p) for p in sorted(self.folder.glob("epoch_*.png"))]
        if frames:
            save_gif(frames, self.gif_path, fps=self.gif_fps)


class CheckpointCadence:
    """When checkpoints are due: every ``train.checkpoint_every`` epochs and at the last one, and mid-epoch after
    ``train.checkpoint_minutes`` since the last one (decided by all ranks together), so a crash early in a long
    epoch loses at most that much work."""

    def __init__(self, train_cfg, dist):
        self.every_epochs, self.epochs = train_cfg.checkpoint_every, train_cfg.epochs
        self.minutes, self.dist = train_cfg.checkpoint_minutes, dist
        self.last_time = time.monotonic()

    def saved(self) -> None:
        self.last_time = time.monotonic()

    def due_at_epoch_end(self, completed: int) -> bool:
        """After ``completed`` whole epochs."""
        return completed % self.every_epochs == 0 or completed == self.epochs

    def due_mid_epoch(self) -> bool:
        """A collective decision: every rank must call it at the same step."""
        return self.minutes > 0 and self.dist.any(time.monotonic() - self.last_time >= self.minutes * 60)


SENSIBLE_LR = (1e-5, 1e-3)  # Adam's rates in every family's recipes and presets lie in this range


def divergence_advice(cfg, run_dir: Path, resumable: bool) -> str:
    """What to do after a divergence: halve each learning rate while it lies in the sensible range; a rate far
    outside it is brought back into it (halving 1e300 would not help)."""
    rates = {f.name: getattr(cfg.model, f.name) for f in dataclasses.fields(cfg.model) if f.name.startswith("lr")}
    low, high = SENSIBLE_LR
    new = {r: (v / 2 if low <= v <= high * 10 else 2e-4) for r, v in rates.items()}
    wild = [f"model.{r}={v:g}" for r, v in rates.items() if not low <= v <= high * 10]
    sets = " ".join(f"--set model.{r}={v:g}" for r, v in new.items())
    again = (f"ganvae train {cfg.model_name} --out {run_dir} --resume {sets}" if resumable
             else f"train again with {sets}")
    if wild:
        return (f"{' and '.join(wild)} {'is' if len(wild) == 1 else 'are'} far outside the range that trains "
                f"({low:g} to {high:g} for Adam here; the recipes use 1e-4 to 1e-3): {again}")
    return (f"Lower the learning rate{'s' if len(rates) > 1 else ''} (sensible: {low:g} to {high:g}), e.g. halve "
            f"{' and '.join('model.' + r for r in rates)}: {again}")


def progress_bar(cfg, dist, epoch: int, n_steps: int, initial: int):
    """A progress bar of epoch ``epoch`` (``n_steps`` steps, ``initial`` done) on a terminal or in a notebook, rank
    0, ``train.progress`` on and logging at INFO; None elsewhere (no bars in log files)."""
    import sys

    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not (cfg.train.progress and dist.is_main) or not interactive or log.getEffectiveLevel() > logging.INFO:
        return None
    from tqdm.auto import tqdm  # the notebook widget in Jupyter (when ipywidgets is installed), text elsewhere

    return tqdm(total=n_steps, initial=initial, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="step",
                leave=False, dynamic_ncols=True)
