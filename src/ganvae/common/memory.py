"""The one memory guard of the picture writers (command line, Python API, explorer), and its default limit.

Torch-free, so the command line's parser reads the default from here without importing a network.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from ganvae.errors import FieldConfigError

MAX_MEMORY_GB = 4.0  # default limit of one picture's memory (--max-memory-gb, Pipeline.max_memory_gb raise it)


def check_memory(needed_bytes: float, what: str, max_memory_gb: float, hint: str = "",
                 values: Mapping[str, Any] | None = None) -> None:
    """Refuse, before allocating, a picture that needs more than ``max_memory_gb`` of memory (the command line's
    and the Python API's one guard). The error is the field ``max_memory_gb``'s: each front end names the setting
    that raises the limit in its own words (``--max-memory-gb``, ``Pipeline.max_memory_gb``); ``hint`` may name
    other fields the same way (``{field:steps}``, ``{given:separate}`` with its value in ``values``: see
    :class:`~ganvae.errors.FieldError`)."""
    if needed_bytes > max_memory_gb * 2**30:
        raise FieldConfigError("max_memory_gb", max_memory_gb,
                               f"{what} needs about {needed_bytes / 2**30:,.1f} GB of memory, over the limit of "
                               f"{max_memory_gb:g} GB.{' ' + hint if hint else ''} Raise the limit with {{field}} "
                               f"if this machine has the memory.", reason="over the memory limit",
                               bound=max_memory_gb, values=values)


def available_memory_bytes() -> int | None:
    """The memory this machine can still give a new allocation, in bytes: Linux's ``MemAvailable`` (free memory
    plus what the kernel can reclaim), else the physical memory (``os.sysconf``), else None where neither is known
    (then a caller skips its check). Read when called, never at import."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


def check_available_memory(needed_bytes: float, what: str, fix: str) -> None:
    """Refuse, before allocating, data that would need more memory than this machine has available
    (:func:`available_memory_bytes`; no check where that is unknown). ``what`` names the data (its file or folder),
    ``fix`` says what to do instead; the error is a :class:`~ganvae.errors.DataError`."""
    from ganvae.errors import DataError

    available = available_memory_bytes()
    if available is not None and needed_bytes > available:
        raise DataError(f"{what}: reading it needs about {needed_bytes / 2**30:,.1f} GB of memory, more than the "
                        f"{available / 2**30:,.1f} GB this machine has available; nothing was read. {fix}")
