"""The MLP and convolutional VAEs' configs (``models/vae.py`` builds their networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from ganvae.bounds import AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS
from ganvae.models.configs import ConditionalConfig, ConvNetConfig, VAEObjectiveConfig


@dataclass
class VAEConfig(VAEObjectiveConfig, ConditionalConfig):
    """MLP VAE, 784-400-10 (the PyTorch example's 784-400-20 is ``--preset mlp-vae-original``).

    Latent size 10 rather than 20: prior samples fall into fewer holes of the aggregate posterior, so they look more
    like digits, at some cost in variety; measured in benchmarks/RESULTS.md ("MLP VAE: latent size"). For
    likelihood bounds, more latents (``--set model.latent_dim=50``) fit the test set better.
    """

    latent_dim: Annotated[int, AT_LEAST_1] = 10  # size of z
    # encoder layer widths (the decoder mirrors them)
    hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [400])
    lr: Annotated[float, POSITIVE] = 1e-3  # Adam learning rate
    beta1: Annotated[float, PROBABILITY] = 0.9  # Adam beta1
    beta2: Annotated[float, PROBABILITY] = 0.999  # Adam beta2


@dataclass
class ConvVAEConfig(VAEConfig, ConvNetConfig):
    """Convolutional VAE: stride-2 convolutions down to a 4x4 to 7x7 map, as many transposed convolutions up (two
    each at 28x28, three at 32x32, four at 64x64: ``ConvNetConfig.channels``)."""

    latent_dim: Annotated[int, AT_LEAST_1] = 16  # size of z
    # dense layers between the convolutions and z
    hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [256])
