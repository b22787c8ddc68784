"""The machine: seeding every random generator, the device and precision (resolved once), bf16 autocast,
and the line that names the machine beside every measured figure."""

from __future__ import annotations

import logging
import os
import random

from ganvae.errors import FieldConfigError, GanvaeError

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto"):
    """Resolve ``auto`` to CUDA, then MPS, then CPU; check an explicit device exists."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    def refuse(says: str) -> FieldConfigError:  # the front end words {given:...}: --device auto, device='auto'
        return FieldConfigError("train.device", name, f"train.device is {name!r}{says}",
                                values={"train.device#auto": "auto"})

    try:
        device = torch.device(name)
    except RuntimeError:
        raise refuse(", which is not a device; use auto, cpu, cuda, cuda:N or mps "
                     "({given:train.device#auto}).") from None
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise refuse(" but this machine has no Apple GPU (MPS); use {given:train.device#auto} (or cpu).")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise refuse(" but CUDA is not available on this machine; use {given:train.device#auto} (or cpu).")
    return device


def cpu_flags() -> set[str]:
    """The CPU feature flags the Linux kernel reports (``/proc/cpuinfo``); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str, device) -> tuple[str, str]:
    """``train.precision`` -> (``fp32`` or ``bf16``, the reason), resolving ``auto`` once per run.

    ``auto`` is bf16 where the device has matrix units for it (CUDA GPUs with bf16; CPUs with
    Intel AMX, flag ``amx_bf16``), fp32 elsewhere, CPUs with only AVX512-BF16 included (bf16 dot
    products but no tile units; ``train.precision=bf16`` still runs there when asked for).
    """
    import torch

    if precision != "auto":
        return precision, "set explicitly"
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16", f"auto: {torch.cuda.get_device_name(device)} computes bf16 natively"
    if device.type == "cpu" and "amx_bf16" in cpu_flags():
        return "bf16", "auto: this CPU has AMX-BF16 tile units"
    return "fp32", f"auto: {device.type} without bf16 matrix units (no CUDA bf16, no AMX)"


def bf16_autocast(device):
    """``torch.autocast`` in bf16, only where the hardware computes in bf16 natively (STYLE.md, Pattern 6):
    CUDA GPUs with bf16 support, and CPUs with AVX512-BF16 or AMX (through oneDNN)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise GanvaeError(
        f"train.precision=bf16: {device} has no native bf16 arithmetic (needs a recent NVIDIA GPU, or a CPU with "
        f"AVX512-BF16/AMX); it would run slower than fp32. Use --set train.precision=fp32."
    )


def machine_description() -> str:
    """The processor, core count, torch version and threads (and GPU): the line every measured figure carries."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    n = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({n} thread{'' if n == 1 else 's'}){gpu}"


