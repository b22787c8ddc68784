"""Flushing denormal floats to zero on every CPU thread torch computes on.

Why: x86 CPUs take a micro-code assist, tens to hundreds of cycles, for each arithmetic
operation whose operand or result is *denormal* (nonzero and below 1.2e-38 in magnitude).
Training the MLP VAE on MNIST produces them: Adam's first moment of a weight whose
gradient is almost always zero (the weights from MNIST's empty border pixels) decays as
0.9^t into the denormal range early in training; from then on every fused Adam step ran
on denormal operands and the VAE trained markedly slower (the figures are in
benchmarks/RESULTS.md, "What made the defaults fast"). Flushing (FTZ: denormal results
become 0; DAZ: denormal inputs read as 0) changes only numbers below 1.2e-38, which
cannot move a training run; TensorFlow flushes by default on CPU for the same reason, and
GPUs run their fast paths with flushing.

The catch this module handles: the flags live in each thread's MXCSR register, and
``torch.set_flush_denormal`` sets only the calling thread's. Threads of torch's OpenMP
pool that already exist keep their own flags (threads created later inherit the creator's),
so those threads' share of every parallel operation still ran slowly. :func:`set_flush_denormal` also runs
the setting on every thread of the pool, through libgomp's ``GOMP_parallel`` entry point
(the one OpenMP runtime torch's Linux wheels ship; Intel's runtime exports it too).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import sys
from typing import Iterator

import torch

log = logging.getLogger(__name__)

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@functools.lru_cache(maxsize=None)
def _gomp_parallel():
    """libgomp's ``GOMP_parallel(fn, data, num_threads, flags)`` as loaded by torch, or None (looked up once)."""
    candidates: list[ctypes.CDLL] = []
    with contextlib.suppress(OSError, TypeError):  # (TypeError: no CDLL(None) on Windows)
        candidates.append(ctypes.CDLL(None))  # symbols already loaded globally
    if sys.platform.startswith("linux"):  # torch may load its libgomp with local symbols: open that file
        with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "gomp" in line or "iomp" in line}
        for path in sorted(paths):
            with contextlib.suppress(OSError):
                candidates.append(ctypes.CDLL(path))
    for lib in candidates:
        fn = getattr(lib, "GOMP_parallel", None)
        if fn is not None:
            fn.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            fn.restype = None
            return fn
    return None


def denormals_flushed() -> bool:
    """True when a parallel operation on this thread's pool flushes every denormal result to zero."""
    # 2**20 elements: above torch's grain size, so each pool thread computes a share;
    # 1e-30 * 1e-10 is a denormal unless flushed
    y = torch.full((1 << 20,), 1e-30).mul_(1e-10)
    return bool((y == 0).all())


def set_flush_denormal(enabled: bool) -> bool:
    """Flush (or stop flushing) denormals on this thread and on every thread of torch's CPU pool.

    Returns True when the setting now holds on every thread, False where it could not be
    applied (a CPU without FTZ/DAZ, or an OpenMP runtime without ``GOMP_parallel``, where
    only this thread and pool threads created from now on have it).
    """
    if not torch.set_flush_denormal(enabled):
        return False  # not supported by this CPU (e.g. not x86 with SSE3)
    gomp = _gomp_parallel()
    if gomp is not None:
        def on_each_thread(_data) -> None:
            torch.set_flush_denormal(enabled)

        gomp(_CALLBACK(on_each_thread), None, torch.get_num_threads(), 0)  # runs once on each team thread
    applied = denormals_flushed() == enabled
    if not applied:
        log.debug("denormal flushing=%s holds on this thread only", enabled)
    return applied


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush denormals inside the block (when ``enabled``), then restore the previous setting."""
    if not enabled:
        yield
        return
    before = denormals_flushed()
    set_flush_denormal(True)
    try:
        yield
    finally:
        if not before:
            set_flush_denormal(False)
