"""DCGAN (Radford et al. 2016) with the TensorFlow DCGAN tutorial's layer structure.

Generator (28x28): Dense(100 -> 7*7*C0) + BN + leaky ReLU, reshape (C0, 7, 7); ConvT 5x5 -> C1
(stride 1, 7x7) + BN + leaky ReLU; ConvT 5x5 -> C2 (stride 2, 14x14) + BN + leaky ReLU; ConvT 5x5
-> 1 (stride 2, 28x28), tanh. No biases before batch norm. Discriminator: Conv 5x5 stride 2 -> D1
(14x14), leaky ReLU (dropout); Conv 5x5 stride 2 -> D2 (7x7), leaky ReLU (dropout); linear logit.

The tutorial's own settings (C = 256, 128, 64; D = 64, 128; leaky slope 0.3; dropout 0.3; Adam 1e-4
with Keras' betas; batch 256) are the ``tf-tutorial`` preset. The defaults are the recipe that gave
the lowest FID per minute of training in controlled comparisons (benchmarks/RESULTS.md, "Recipes"):
a quarter of the tutorial's channels, Radford et al.'s optimiser, no dropout, batch 64, and an EMA
of the generator for sampling.
"""

from __future__ import annotations

import torch
from torch import nn

from ganvae.common.pixels import background
from ganvae.errors import ConfigError
from ganvae.models.base import AdversarialModel
from ganvae.models.blocks import ConvDiscriminator, prepare_discriminator
from ganvae.models.conditioning import (
    conditioned_discriminator,
    conditioned_generator,
    generator_input_dim,
)
from ganvae.models.dcgan_config import DCGANConfig


class DCGANGenerator(nn.Module):
    """Dense projection to ``(C0, H/4, W/4)``, then a transposed convolution per further entry of
    ``generator_channels`` and one to the image: the last two double the size (stride 2), any
    before them keep it (stride 1). ``[256, 128, 64]`` is the tutorial's generator; ``[128, 64]``
    drops its stride-1 layer (the InfoGAN MNIST generator's shape, Chen et al. 2016)."""

    def __init__(self, c: DCGANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        ch, size = c.generator_channels, image_shape[1] // 4
        if len(ch) < 2 or image_shape[1] % 4:
            raise ConfigError("model.generator_channels needs at least 2 entries (dense, then each transposed "
                              "convolution) and data.image_size must be a multiple of 4.")
        k, slope = c.kernel_size, c.leaky_slope
        if k % 2 == 0 and len(ch) > 2:
            raise ConfigError(f"model.kernel_size={k}: an even kernel cannot keep the size in the stride-1 layers of "
                              f"generator_channels={ch}; use an odd kernel (5) or two entries (e.g. [128, 64]).")
        self.start = (ch[0], size, size)
        self.project = nn.Sequential(
            nn.Linear(generator_input_dim(c), ch[0] * size * size, bias=False),
            nn.BatchNorm1d(ch[0] * size * size),
            nn.LeakyReLU(slope, inplace=True),
        )
        layers: list[nn.Module] = []
        outs = [*ch[1:], image_shape[0]]
        for i, (a, b) in enumerate(zip(ch, outs)):
            stride = 2 if i >= len(outs) - 2 else 1  # the last two layers upsample: H/4 -> H/2 -> H
            # "same" padding: the output is stride x the input for odd and even kernels
            layers.append(nn.ConvTranspose2d(a, b, k, stride=stride, padding=(k - 1) // 2,
                                             output_padding=(stride - 1) * (k % 2), bias=False))
            if i < len(outs) - 1:
                layers += [nn.BatchNorm2d(b), nn.LeakyReLU(slope, inplace=True)]
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)  # (B, C0, H/4, W/4) -> ... -> (B, C, H, W)
        self.memory_format = torch.channels_last if c.channels_last else torch.contiguous_format
        # weights in the activations' layout: no reorders, DDP buckets match
        self.net.to(memory_format=self.memory_format)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, Z) -> (B, C, H, W) in [-1, 1]
        h = self.project(z).view(-1, *self.start).contiguous(memory_format=self.memory_format)
        return self.net(h)


class DCGAN(AdversarialModel):
    value_range = "tanh"

    def __init__(self, config: DCGANConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.generator = conditioned_generator(DCGANGenerator(config, self.image_shape), config)
        discriminator = ConvDiscriminator(self.image_shape, config.discriminator_channels, config.kernel_size,
                                          config.leaky_slope, config.dropout, config.channels_last)
        self.discriminator = prepare_discriminator(conditioned_discriminator(discriminator, config), config,
                                                   background(self.value_range))
        self._init_ema()
