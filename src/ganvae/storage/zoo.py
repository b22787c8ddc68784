"""The pretrained models shipped inside the package (``ganvae/pretrained/<name>/``, each a pretrained folder:
:mod:`ganvae.storage.pretrained_folder`), found by name. Torch-free: ``ganvae models`` lists them in a blink."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ganvae.errors import CheckpointError, suggest


def zoo_dir() -> Path:
    return Path(str(resources.files("ganvae").joinpath("pretrained")))


def pretrained_names() -> list[str]:
    """The models shipped with the package, e.g. ``mnist-dcgan``."""
    root = zoo_dir()
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []


def resolve(name_or_path: str | Path) -> Path:
    """The folder of a shipped name or a path; an unknown name gets the list and the nearest one."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    names = pretrained_names()
    if str(name_or_path) in names:
        return zoo_dir() / str(name_or_path)
    raise CheckpointError(
        f"{name_or_path}: neither a pretrained model nor a path.{suggest(str(name_or_path), names, list_all=False)} "
        f"Pretrained models: {', '.join(names) or '(none installed)'} (`ganvae models` lists them); or give a run "
        f"folder, a checkpoint, or a folder written by `ganvae export`."
    )
