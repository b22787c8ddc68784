"""What a model's training step is handed: where training is, and the plumbing it should not spell out.

The trainer builds one :class:`StepContext` per step. It hides mixed precision (``autocast()`` is always a
context manager), distributed training (``frozen()`` yields the network outside its DDP wrapper; ``randn`` and
``reduce_mean`` keep every rank in step) and the optimiser call sequence (``optimize``), as Lightning's manual
optimisation hands a GAN step ``toggle_optimizer`` and ``manual_backward``. A model's step then reads as its
paper's algorithm, and the models import nothing from the training layer (STYLE.md, Pattern 12).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn


def unwrap_ddp(module: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (or the network itself)."""
    return getattr(module, "module", module)


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


@dataclass
class StepContext:
    """Where training is, and the helpers a step uses instead of the plumbing behind them."""

    step: int = 0  # global optimisation step, from 0
    epoch: int = 0  # current epoch, from 0
    epoch_progress: float = 0.0  # epochs done, fractional (for warm-ups)
    amp: contextlib.AbstractContextManager | None = None  # the bf16 autocast the trainer chose; None = fp32
    # mean over distributed ranks; decisions based on loss values must use it so all ranks agree
    reduce_mean: Callable[[torch.Tensor], torch.Tensor] = _identity
    rank: int = 0  # this process's rank under torchrun
    world_size: int = 1  # number of processes
    # the batch's labels (B,) int64 from GenerativeModel.training_labels: the data's classes for a conditional model,
    # the pseudo-classes of a self-conditioned GAN, None otherwise; the families' steps read them through
    # ganvae.models.conditioning.step_labels
    labels: torch.Tensor | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision region for forward passes and losses (a no-op in fp32)."""
        return self.amp if self.amp is not None else contextlib.nullcontext()

    def randn(self, n: int, dim: int, device: torch.device) -> torch.Tensor:
        """Standard normal noise ``(n, dim)`` for this rank's share of the global batch.

        Every rank draws the noise of the whole global batch from the same random stream and
        keeps its own slice, so W processes with batch n draw exactly the noise that one
        process with batch W*n draws (and the streams stay identical across ranks).
        """
        z = torch.randn(n * self.world_size, dim, device=device)
        return z[self.rank * n : (self.rank + 1) * n]

    @staticmethod
    def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One gradient step of ``optimizer``'s parameters on ``loss``: clear, backward, update."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @staticmethod
    def optimize_simultaneously(updates: Sequence[tuple[torch.optim.Optimizer, torch.Tensor, nn.Module]]) -> None:
        """Simultaneous gradient steps: each ``(optimizer, loss, network)`` takes the gradient of its loss with
        respect to its own network only, all computed before any network changes (one shared graph, so the
        TensorFlow tutorial's GAN step needs one discriminator pass on the fakes, not two)."""
        for optimizer, _, _ in updates:
            optimizer.zero_grad(set_to_none=True)
        for i, (_, loss, network) in enumerate(updates):
            loss.backward(inputs=list(unwrap_ddp(network).parameters()), retain_graph=i < len(updates) - 1)
        for optimizer, _, _ in updates:
            optimizer.step()

    @staticmethod
    @contextlib.contextmanager
    def frozen(network: nn.Module) -> Iterator[nn.Module]:
        """Yield ``network`` (outside any DDP wrapper) with no gradient accumulating in its weights, e.g. the
        discriminator during the generator's step. Gradients still flow *through* it to its inputs; the
        unwrapped call keeps DDP's rule of one grad-enabled forward of a wrapped network per backward."""
        plain = unwrap_ddp(network)
        flags = [p.requires_grad for p in plain.parameters()]
        for p in plain.parameters():
            p.requires_grad_(False)
        try:
            yield plain
        finally:
            for p, flag in zip(plain.parameters(), flags):
                p.requires_grad_(flag)
