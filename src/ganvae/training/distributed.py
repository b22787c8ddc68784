"""Distributed training through PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --nproc-per-node N -m ganvae train MODEL ...`` sets RANK / WORLD_SIZE /
LOCAL_RANK; :meth:`DistContext.from_env` then joins the process group (nccl on CUDA,
gloo on CPU) with a timeout, so a failed rank ends the job instead of hanging it.

Each network of a model (``model.networks``: generator, discriminator, encoder,
decoder...) is wrapped once in its own ``DistributedDataParallel``. The wrapper is put in
the model's instance ``__dict__``, which shadows the plain module for ``model.generator``
calls, while ``model._modules`` (and so ``state_dict()``, ``parameters()``, checkpoints)
keeps the plain networks. The model steps obey DDP's rules: one grad-enabled forward of a
wrapped network per backward; the frozen discriminator of a generator step is called
unwrapped (``StepContext.frozen``); decisions that depend on loss values use losses averaged over
the ranks, so every rank takes the same branch.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganvae.errors import GanvaeError

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    """Where this process stands in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    wrapped: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto", timeout_s: float | None = None) -> "DistContext":
        """Join the process group if torchrun started this process; else a single-process context.

        ``timeout_s`` (default ``$GANVAE_DIST_TIMEOUT`` or 300 s) bounds every collective: a rank
        that died makes the others fail after it instead of waiting for ever.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        timeout_s = timeout_s or float(os.environ.get("GANVAE_DIST_TIMEOUT", "300"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if use_cuda:
            torch.cuda.set_device(local_rank)
            dev = torch.device("cuda", local_rank)
        else:
            dev = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                timeout=datetime.timedelta(seconds=timeout_s),
                **({"device_id": dev} if use_cuda else {}),
            )
        log.debug("rank %d/%d on %s", rank, world, dev)
        return cls(rank=rank, world_size=world, local_rank=local_rank, device=dev)

    def wrap(self, model: nn.Module) -> nn.Module:
        """Wrap each of ``model.networks`` in DDP (see the module docstring); returns ``model``."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.local_rank] if self.device.type == "cuda" else None
        for name in model.networks:
            net = model._modules[name]
            if any(p.requires_grad for p in net.parameters()):
                object.__setattr__(model, name, DDP(net, device_ids=ids))
                self.wrapped.append(name)
        return model

    @contextlib.contextmanager
    def unwrapped(self, model: nn.Module):
        """Call the plain networks (e.g. rank 0 alone drawing a sample grid, which must not
        trigger DDP's collective buffer broadcast)."""
        saved = {name: model.__dict__.pop(name) for name in self.wrapped if name in model.__dict__}
        try:
            yield model
        finally:
            for name, wrapper in saved.items():
                object.__setattr__(model, name, wrapper)

    def step_context(self, ctx):
        """Give a StepContext this process's rank, the world size and the cross-rank mean."""
        ctx.reduce_mean, ctx.rank, ctx.world_size = self.reduce_mean, self.rank, self.world_size
        return ctx

    def any(self, condition: bool) -> bool:
        """True on every rank if ``condition`` is true on any rank (so all ranks stop together)."""
        if not self.enabled:
            return bool(condition)
        return bool(self.reduce_mean(torch.tensor(float(condition))).item() > 0)

    def reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over all ranks (identity in a single process)."""
        if not self.enabled:
            return value
        import torch.distributed as dist

        out = value.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Overwrite ``module``'s buffers on every rank with rank 0's (same shapes on every rank)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for buf in module.buffers():
            moved = buf.to(self.device)
            dist.broadcast(moved, src=0)
            buf.copy_(moved.to(buf.device))

    def peer_failure(self, step: int, ckpt_path: Path, last_checkpoint_step: int | None, model_name: str,
                     run_dir: Path) -> GanvaeError:
        """The message of a rank whose peers vanished mid-job at ``step`` (a killed or crashed worker, a lost
        machine): what was saved last and the command that continues."""
        who = f"rank {1 - self.rank}" if self.world_size == 2 else f"another of the {self.world_size} ranks"
        if ckpt_path.exists() or last_checkpoint_step is not None:
            last = f"last checkpoint: {ckpt_path} (step {last_checkpoint_step})"
            again = f"torchrun ... -m ganvae train {model_name} --out {run_dir} --resume"
        else:
            last, again = "no checkpoint was written yet", "the same command"
        return GanvaeError(f"{who} died or lost its connection at step {step}, so rank {self.rank} stops too; "
                           f"{last}. When every machine is back, continue with: {again}")

    def all_gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate equally shaped tensors from all ranks along dim 0."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def collective_failure(err: RuntimeError) -> bool:
    """Whether ``err`` is a distributed backend's report of a peer that vanished (gloo: connection closed or reset,
    timeouts; NCCL: its errors; torch's own DistError types)."""
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None and isinstance(err, dist_error):
        return True
    text = str(err)
    return any(s in text for s in ("gloo", "Connection reset", "Connection closed", "NCCL", "Timed out", "timed out"))
