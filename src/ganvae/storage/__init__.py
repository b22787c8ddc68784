"""One home for what ganvae keeps on disk, and one way to read it back: :func:`load`.

- :mod:`ganvae.storage.checkpoint`: a training run's checkpoint (weights, optimiser moments, training state).
- :mod:`ganvae.storage.pretrained_folder`: a pretrained folder (config.json, model.safetensors, README.md), the
  format of the shipped zoo (:mod:`ganvae.storage.zoo`) and of ``ganvae export``.

Loading reads tensors and JSON only: no code from a file runs. This module imports torch only when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ganvae.errors import CheckpointError
from ganvae.storage.layout import run_checkpoint

if TYPE_CHECKING:
    from ganvae.config import ExperimentConfig
    from ganvae.models.base import GenerativeModel
    from ganvae.storage.checkpoint import Checkpoint


@dataclass
class LoadedRun:
    """A trained model ready to draw: from a run's checkpoint, or from a pretrained folder (``checkpoint`` None)."""

    model: GenerativeModel
    config: ExperimentConfig
    checkpoint: Checkpoint | None
    run_dir: Path | None
    source: Path | None = None  # the checkpoint file or the pretrained folder it came from

    @property
    def name(self) -> str:
        return self.config.model_name


def checkpoint_path(run: str | Path) -> Path:
    run = Path(run)
    if run.is_dir():
        path = run_checkpoint(run)
        if not path.is_file():
            raise CheckpointError(f"{run}: no checkpoint at {path}; is this a finished (or interrupted) ganvae run "
                                  f"folder, or a pretrained folder (config.json, model.safetensors)?")
        return path
    return run


def is_pretrained_folder(path: Path) -> bool:
    """A pretrained folder (config.json beside the weights), not a run folder (which holds a checkpoint)."""
    return path.is_dir() and not run_checkpoint(path).is_file() and (path / "config.json").is_file()


def load(run: "str | Path | LoadedRun", device: str = "auto", use_ema: bool = True) -> LoadedRun:
    """Rebuild a trained model (weights and JSON only; no code from the files runs) from a run folder, a checkpoint
    file, a pretrained folder, or a pretrained name (``mnist-dcgan``; `ganvae models` lists them).

    A ``LoadedRun`` is returned as it is, so callers that make several pictures load once.
    ``use_ema=False`` drops the moving averages, so sampling uses the trained weights themselves (runs only: a
    pretrained folder holds one set of weights).
    """
    from ganvae.common.device import resolve_device
    from ganvae.config import config_from_dict
    from ganvae.registry import build_model
    from ganvae.storage import checkpoint as ckpt_io
    from ganvae.storage import zoo
    from ganvae.storage.pretrained_folder import load_pretrained

    if isinstance(run, LoadedRun):
        return run
    path = zoo.resolve(run)
    if is_pretrained_folder(path):
        model, cfg = load_pretrained(path)
        return LoadedRun(model.to(resolve_device(device)).eval(), cfg, None, None, path)
    path = checkpoint_path(path)
    ckpt = ckpt_io.load_checkpoint(path)
    cfg = config_from_dict(ckpt.header["config"], str(path))
    model = build_model(cfg, tuple(ckpt.header.get("image_shape", (1, cfg.data.image_size, cfg.data.image_size))))
    ckpt_io.restore_model(model, ckpt)
    if not use_ema:
        model.drop_ema()
    model.to(resolve_device(device)).eval()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    return LoadedRun(model, cfg, ckpt, run_dir, path)
