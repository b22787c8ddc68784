"""Errors that the command line prints as one paragraph, without a traceback.

Every message says *what* is wrong, *where* (file, field, step) and *how to fix it*.
"""

from __future__ import annotations

import difflib


class GanvaeError(Exception):
    """Base class for user-facing errors; the CLI prints ``str(err)`` and exits with ``exit_code``."""

    exit_code = 2


class ConfigError(GanvaeError):
    """A config file or ``--set`` override is invalid (unknown key, wrong type, bad value)."""


class DataError(GanvaeError):
    """A data file is missing, truncated, corrupt, or fails its checksum."""


class DownloadError(DataError):
    """A dataset could not be downloaded from any mirror."""


class CheckpointError(GanvaeError):
    """A checkpoint cannot be loaded (other model, other format version, corrupt file)."""


class TrainingDiverged(GanvaeError):
    """A loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""

    exit_code = 3


class UnsupportedOperation(GanvaeError):
    """A command was asked of a model that cannot do it (e.g. reconstruct with a GAN)."""


class Interrupted(GanvaeError):
    """Ctrl-C or SIGTERM: a checkpoint was written and the run can be resumed."""

    exit_code = 130


def suggest(name: str, valid: list[str], list_all: bool = True) -> str:
    """The hint appended to an unknown name's message: " Did you mean 'x'?" for the nearest valid name, else
    (with ``list_all``) the valid names, else nothing. One rule for config keys, models, presets and datasets."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    if close:
        return f" Did you mean {close[0]!r}?"
    return " Valid keys: " + ", ".join(valid) + "." if list_all else ""
