"""The one memory guard of the picture writers (command line, Python API, explorer), and its default limit.

Torch-free, so the command line's parser reads the default from here without importing a network.
"""

from __future__ import annotations

from ganvae.errors import ConfigError

MAX_MEMORY_GB = 4.0  # default limit of one picture's memory (--max-memory-gb, Pipeline.max_memory_gb raise it)


def check_memory(needed_bytes: float, what: str, max_memory_gb: float, hint: str = "",
                 knob: str = "--max-memory-gb") -> None:
    """Refuse, before allocating, a picture that needs more than ``max_memory_gb`` of memory (the command line's
    and the Python API's one guard; ``knob`` names the setting that raises the limit, in the caller's words)."""
    if needed_bytes > max_memory_gb * 2**30:
        raise ConfigError(f"{what} needs about {needed_bytes / 2**30:,.1f} GB of memory, over the limit of "
                          f"{max_memory_gb:g} GB.{' ' + hint if hint else ''} Raise the limit with {knob} "
                          f"if this machine has the memory.")
