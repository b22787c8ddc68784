"""MLP GAN: fully connected generator and discriminator (Goodfellow et al. 2014).

Generator: z (100) -> 256 -> 512 -> 1024 -> C*H*W, batch norm and leaky ReLU between layers, tanh output.
Discriminator: C*H*W -> 1024 -> 512 -> 256 -> 1 logit, leaky ReLU and dropout after each hidden layer.
Any size and channel count; the first and last layers grow with the pixels (3.0M parameters at 28x28 grey, 26.5M
at 64x64 colour), which :func:`~ganvae.models.blocks.check_dense_cost` logs, and refuses above 200M.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganvae.common.pixels import background
from ganvae.models.base import AdversarialModel
from ganvae.models.blocks import Dropout, check_dense_cost, dense_parameters, prepare_discriminator
from ganvae.models.conditioning import (
    conditioned_discriminator,
    conditioned_generator,
    generator_input_dim,
)
from ganvae.models.gan_config import GANConfig


def mlp(sizes: list[int], slope: float, dropout: float = 0.0, batchnorm: bool = False) -> nn.Sequential:
    """Linear layers with (batch norm,) leaky ReLU (and dropout) after each but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(slope, inplace=True))
            if dropout > 0:
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, c: GANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.image_shape = image_shape
        self.net = mlp([generator_input_dim(c), *c.generator_hidden, math.prod(image_shape)], c.leaky_slope,
                       batchnorm=c.generator_batchnorm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, Z) -> (B, C, H, W) in [-1, 1]
        return torch.tanh(self.net(z)).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, c: GANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.net = mlp([math.prod(image_shape), *c.discriminator_hidden, 1], c.leaky_slope, c.dropout)

    @property
    def n_projection_features(self) -> int:
        return self.net[-1].in_features

    def features_and_logit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W)`` -> the last hidden layer ``(B, F)`` and the logit ``(B, 1)``."""
        phi = self.net[:-1](x.flatten(1))
        return phi, self.net[-1](phi)

    def cluster_features(self, x: torch.Tensor) -> torch.Tensor:
        """What self-conditioning clusters: the last hidden layer ``(B, F)``."""
        return self.net[:-1](x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1) logits
        return self.net(x.flatten(1))


class GAN(AdversarialModel):
    value_range = "tanh"

    def __init__(self, config: GANConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c, pixels = config, math.prod(self.image_shape)  # any size and channel count: both end layers grow with it
        check_dense_cost("gan", dense_parameters([generator_input_dim(c), *c.generator_hidden, pixels])
                         + dense_parameters([pixels, *c.discriminator_hidden, 1]), self.image_shape,
                         ("model.generator_hidden", "model.discriminator_hidden"))
        self.generator = conditioned_generator(MLPGenerator(config, self.image_shape), config)
        self.discriminator = prepare_discriminator(
            conditioned_discriminator(MLPDiscriminator(config, self.image_shape), config), config,
            background(self.value_range))
        self._init_ema()
