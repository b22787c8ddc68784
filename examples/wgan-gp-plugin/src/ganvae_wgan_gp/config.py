"""The WGAN-GP family's config: every field acts in ``model.py``. Torch-free, like every ganvae config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS, Bound


@dataclass
class WGANGPConfig:
    """WGAN-GP with a small DCGAN-shaped generator and a critic without batch norm (the penalty is per sample).
    The optimiser follows Gulrajani et al. 2017, Algorithm 1: Adam 1e-4, beta1 0, beta2 0.9, lambda 10,
    five critic steps per generator step."""

    latent_dim: Annotated[int, AT_LEAST_1] = 64  # size of the noise vector z
    generator_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [64, 32])  # at H/4 and H/2
    critic_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [32, 64])  # at H/2 and H/4
    lr: Annotated[float, POSITIVE] = 1e-4  # Adam learning rate of both networks
    beta1: Annotated[float, PROBABILITY] = 0.0  # Adam beta1 (0 in the paper)
    beta2: Annotated[float, PROBABILITY] = 0.9  # Adam beta2
    gp_weight: Annotated[float, AT_LEAST_0] = 10.0  # lambda, the gradient penalty's weight
    n_critic: Annotated[int, AT_LEAST_1] = 5  # critic steps per generator step (each trainer step is one critic step)
    # exponential moving average of the generator for sampling; None = sample the trained weights
    ema_decay: Annotated[Optional[float], Bound(0, 1, lo_open=True, hi_open=True,
                                                says="between 0 and 1, or null")] = 0.999
