"""Exponential moving average of network weights, used for sampling (Yazici et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training"; Karras et al. 2018 use it for every
progressive-GAN figure).

The average starts from the initial weights and its decay warms up with the number of
updates, as TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` does:
``decay_t = min(decay, (1 + t) / (10 + t))``. Without the warm-up a decay of 0.999 would still
weigh the random initial weights by e^-1 after 1,000 steps, which on a CPU budget of a few
minutes is most of the run: its samples were noise. The warm-up depends only on the global
step, which checkpoints store, so resumed runs average exactly as uninterrupted ones.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_decay_at(decay: float, step: int) -> float:
    """The decay applied after optimisation step ``step`` (from 0): ``min(decay, (1 + step) / (10 + step))``."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * live`` for parameters; buffers (batch-norm statistics) are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(live.parameters()), 1.0 - decay)
    for ema_buf, buf in zip(ema.buffers(), live.buffers()):
        ema_buf.copy_(buf)
