"""Where a run folder keeps its files (torch-free: the checkpoint code and the front ends both read it)."""

from __future__ import annotations

from pathlib import Path


def run_checkpoint(run_dir: str | Path) -> Path:
    """Where a run folder keeps its latest checkpoint (the trainer writes it, the commands read it)."""
    return Path(run_dir) / "checkpoints" / "last.safetensors"
