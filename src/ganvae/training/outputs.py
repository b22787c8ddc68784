"""What the trainer needs around its loop, apart from the callbacks that write its files
(:mod:`ganvae.training.callbacks.outputs`): the TensorBoard writer they share, the losses of a logging interval
synced and checked for divergence (with the advice a divergence ends with), CSV truncation on resume, and the
progress bar."""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path
from typing import Callable

import torch

from ganvae.common.files import atomic_write_text
from ganvae.errors import TrainingDiverged
from ganvae.metrics.registry import current_key

log = logging.getLogger(__name__)


def open_tensorboard(run_dir: Path, step: int):
    """A TensorBoard writer into ``run_dir/tensorboard`` (events after ``step`` purged on resume), or None when
    tensorboard is not installed: it is an extra (``pip install 'ganvae[tensorboard]'``), and ``run.tensorboard`` is
    on by default, so a core install would otherwise warn on every run of a set-up that is supported. Its absence is
    said once per run (this is called once per run), at INFO: on the console of ``ganvae train`` and in the run's
    ``train.log``, and not in ``summary.json``'s warnings; ``run.tensorboard=false`` turns it off quietly."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard logging is off: tensorboard is not installed (pip install 'ganvae[tensorboard]' "
                 "installs it; --set run.tensorboard=false silences this line)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=step if step else None)


def truncate_csv(path: Path, column: str, keep: Callable[[int], bool]) -> None:
    """Keep the rows of a CSV whose integer ``column`` passes ``keep`` (atomically; absent files are left). A header
    an older ganvae wrote gets the metrics' current names (``fid`` -> ``classifier_fd``, same columns), so the rows
    a resumed run appends sit under the names it writes."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    header = [current_key(name) for name in rows[0]]
    i = header.index(column)
    kept = [header] + [r for r in rows[1:] if keep(int(r[i]))]
    if len(kept) < len(rows) or header != rows[0]:
        atomic_write_text(path, "".join(",".join(r) + "\n" for r in kept))


@dataclasses.dataclass
class LoggedLosses:
    """One logging interval's losses, averaged over the ranks, on the host: ``values[i, j]`` is loss ``names[j]``
    of step ``steps[i]`` (numbered from 0) in epoch ``epochs[i]`` (from 0)."""

    steps: list[int]
    epochs: list[int]
    names: list[str]
    values: torch.Tensor  # (steps, losses), float32 on the CPU

    def rows(self):
        """``(step, epoch, [value per loss])`` for each step."""
        return zip(self.steps, self.epochs, self.values.tolist())

    def last(self) -> dict[str, float]:
        return dict(zip(self.names, self.values[-1].tolist()))


def sync_losses(pending: list[tuple[int, int, dict[str, torch.Tensor]]], dist, device: torch.device,
                ckpt_path: Path, advice: Callable[[bool], str]) -> LoggedLosses:
    """Sync the pending ``(step, epoch, losses)`` to the host once (averaged over ranks, so every rank sees the same
    numbers) and check them: a non-finite loss stops the run with :class:`TrainingDiverged`, naming the loss, the
    step, the last good checkpoint (``ckpt_path``, when it exists) and what to do (``advice(checkpoint exists)``),
    on every rank together, before anything is written."""
    names = list(pending[0][2])
    # (steps, losses)
    values = torch.stack([torch.stack([step[n].float().to(device) for n in names]) for _, _, step in pending])
    values = dist.reduce_mean(values).cpu()
    bad = ~torch.isfinite(values)
    if bad.any():
        i, j = (int(v) for v in bad.nonzero()[0])
        step, epoch = pending[i][0], pending[i][1]
        kept = ckpt_path.exists()
        where = f"the last good checkpoint {ckpt_path} (kept)" if kept else "no checkpoint yet"
        raise TrainingDiverged(
            f"training diverged: {names[j]} became {values[i, j].item()} at step {step} (epoch {epoch + 1}). "
            f"Stopped; {where}. {advice(kept)}")
    return LoggedLosses([s for s, _, _ in pending], [e for _, e, _ in pending], names, values)


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
