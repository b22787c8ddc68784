"""What several commands share: argument types, the RUN help text, the data and memory flags (their defaults read
from their owners), and the command line's words for the library's errors (:func:`flag`, :func:`message`).
Torch-free, like every parser of the ``ganvae`` command."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ganvae.common.memory import MAX_MEMORY_GB
from ganvae.errors import NO_VALUE, FieldError, GanvaeError

RUN_HELP = "run folder, checkpoint file, pretrained folder, or a pretrained name (`ganvae models`)"


def classes(text: str) -> list[int]:
    """``3,5`` -> [3, 5], for --classes."""
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--classes {text!r}: expected class indices separated by commas, "
                                         "e.g. 3,5") from None


def size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (w, h), for --size."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1080x1080") from None


def digit_pair(text: str) -> tuple[int, int]:
    """``A,B`` -> (A, B), for --between-digits."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give two classes as A,B, e.g. 1,7")
    return int(parts[0]), int(parts[1])


def port(text: str) -> int:
    """A TCP port, 1-65535, for --port."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a whole number from 1 to 65535, e.g. 8000")
    return int(text)


def positive_int(text: str) -> int:
    """A whole number of at least 1, for the explorer's limits (0 would refuse every request)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1 (0 would refuse every request)")
    return int(text)


def positive_float(text: str) -> float:
    """A number of seconds above 0 (not inf, not nan)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 30")
    return value


def model_names() -> list[str]:
    """The registered families (the registry is torch-free until a family is built)."""
    from ganvae.registry import model_names

    return model_names()


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """--dataset and --data-dir, with the help text of their entries in :data:`ganvae.config.SHORTCUTS`."""
    from ganvae.config import SHORTCUTS

    for s in SHORTCUTS:
        if s.path in ("data.dataset", "data.data_dir"):
            p.add_argument(s.flag, help=s.help)


def add_memory_flag(p: argparse.ArgumentParser) -> None:
    """--max-memory-gb, defaulting to :data:`ganvae.common.memory.MAX_MEMORY_GB`."""
    p.add_argument("--max-memory-gb", type=float, default=MAX_MEMORY_GB,
                   help="refuse pictures needing more memory than this (default %(default)g GB)")


# ----------------------------------------------------------------------------- the library's errors in flags

FLAG_NAMES = {"n": "-n"}  # a library field whose flag is not --FIELD-WITH-DASHES (n_samples -> --n-samples)
FLAG_VALUES = {"size": lambda v: "x".join(map(str, v))}  # how a flag's value is typed, where not as it prints
NONE_FLAGS = {"out": "--no-grid"}  # a field whose None has a switch of its own (`ganvae sample --no-grid`)
POSITIONAL = {"run": "RUN"}  # a library field the command line takes as a positional argument: its value alone


def flag(name: str, value: Any = NO_VALUE) -> str:
    """A library field as the command line sets it (:data:`ganvae.errors.Spelling`): an argument by its flag
    (``n_samples`` -> ``--n-samples 10``); a config key by its own flag where it has one (``train.epochs`` ->
    ``--epochs 0``), else ``--set model.lr=0.1``. Without a value, the ways to set it (``--epochs, --set
    train.epochs=...``)."""
    from ganvae.config import SHORTCUTS

    if name in POSITIONAL:
        return POSITIONAL[name] if value is NO_VALUE else str(os.fspath(value) if isinstance(value, os.PathLike)
                                                               else value)
    own = next((s.flag for s in SHORTCUTS if s.path == name), None)
    if "." in name and own is None:  # a config key without a flag: --set
        return f"--set {name}=..." if value is NO_VALUE else f"--set {name}={_yaml_text(value)}"
    text = own or FLAG_NAMES.get(name) or "--" + name.replace("_", "-")
    if value is NO_VALUE:
        return f"{text}, --set {name}=..." if own else text
    if value is None and name in NONE_FLAGS:
        return NONE_FLAGS[name]
    if value is True:  # a switch: the flag alone
        return text
    if name in FLAG_VALUES:
        return f"{text} {FLAG_VALUES[name](value)}"
    if isinstance(value, (list, tuple)):  # --classes 3,5, --between-digits 1,7
        return f"{text} {','.join(map(str, value))}"
    return f"{text} {os.fspath(value) if isinstance(value, os.PathLike) else value}"


def _yaml_text(value: Any) -> str:
    """A value as ``--set`` reads it (YAML): strings bare, the rest as JSON (true, 3, [3, 5])."""
    return value if isinstance(value, str) else json.dumps(value)


def message(err: GanvaeError) -> str:
    """The error as the command line says it: a field error names the flag its user typed."""
    return err.render(flag) if isinstance(err, FieldError) else str(err)
