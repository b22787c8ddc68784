"""The one memory guard of the picture writers (command line, Python API, explorer), and its default limit.

Torch-free, so the command line's parser reads the default from here without importing a network.
"""

from __future__ import annotations

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
