"""DCGAN (Radford et al. 2016) with the TensorFlow DCGAN tutorial's layer structure.

Generator (28x28): Dense(100 -> 7*7*C0) + BN + leaky ReLU, reshape (C0, 7, 7); ConvT 5x5 -> C1
(stride 1, 7x7) + BN + leaky ReLU; ConvT 5x5 -> C2 (stride 2, 14x14) + BN + leaky ReLU; ConvT 5x5
-> 1 (stride 2, 28x28), tanh. No biases before batch norm. Discriminator: Conv 5x5 stride 2 -> D1
(14x14), leaky ReLU (dropout); Conv 5x5 stride 2 -> D2 (7x7), leaky ReLU (dropout); linear logit.

Other sizes and colour: the depth follows the image (:func:`~ganvae.models.blocks.conv_depth`): the generator
starts at a 4x4 to 7x7 map and doubles it to the image, as Radford et al.'s starts at 4x4 (32x32: 4 -> 8 -> 16 ->
32, three doublings; 64x64: four), and the discriminator halves back down to it. 28x28 keeps the tutorial's 7x7
start and two doublings, so the networks above are unchanged. Images of any channel count ``C``.

The tutorial's own settings (C = 256, 128, 64; D = 64, 128; leaky slope 0.3; dropout 0.3; Adam 1e-4
with Keras' betas; batch 256) are the ``tf-tutorial`` preset; Radford et al.'s 64x64 network is the
``dcgan-radford2016`` preset. The defaults are the recipe that gave
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
from ganvae.models.blocks import (
    ConvDiscriminator,
    conv_depth,
    discriminator_widths,
    fit_widths,
    log_fitted_widths,
    prepare_discriminator,
)
from ganvae.models.conditioning import (
    conditioned_discriminator,
    conditioned_generator,
    generator_input_dim,
)
from ganvae.models.dcgan_config import DCGANConfig


class DCGANGenerator(nn.Module):
    """Dense projection to ``(C0, s, s)``, then a transposed convolution per further entry of
    ``generator_channels`` and one to the image: the last ``n`` double the size (stride 2), any before them keep it
    (stride 1), where ``s`` (4 to 7) and ``n`` are the image's start and depth
    (:func:`~ganvae.models.blocks.conv_depth`: 7 and 2 at 28x28, 4 and 3 at 32x32, 4 and 4 at 64x64). At 28x28
    ``[256, 128, 64]`` is the tutorial's generator and ``[128, 64]`` drops its stride-1 layer (the InfoGAN MNIST
    generator's shape, Chen et al. 2016); ``[1024, 512, 256, 128]`` at 64x64 is Radford et al.'s (2016, Fig. 1). A
    list of fewer than ``n`` entries is extended at its deep end by doubling its first width
    (:func:`~ganvae.models.blocks.fit_widths`: ``[64, 32, 16]`` at 64x64 -> ``[128, 64, 32, 16]``)."""

    def __init__(self, c: DCGANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        depth = conv_depth(image_shape)
        ch = fit_widths(c.generator_channels, depth, deepest_first=True)
        log_fitted_widths("model.generator_channels", c.generator_channels, ch, image_shape, depth)
        size = image_shape[1] >> depth  # the start: 7 at 28, 4 at 32 and 64
        k, slope = c.kernel_size, c.leaky_slope
        if k % 2 == 0 and len(ch) > depth:
            raise ConfigError(f"model.kernel_size={k}: an even kernel cannot keep the size in the stride-1 layers of "
                              f"generator_channels={ch} ({len(ch) - depth} before the {depth} that double "
                              f"{size}x{size} to {image_shape[1]}x{image_shape[2]}); use an odd kernel (5) or "
                              f"{depth} entries.")
        self.start = (ch[0], size, size)

        def activation() -> nn.Module:  # ReLU in Radford et al.'s generator, leaky ReLU in the tutorial's
            return nn.ReLU(inplace=True) if c.generator_activation == "relu" else nn.LeakyReLU(slope, inplace=True)

        self.project = nn.Sequential(
            nn.Linear(generator_input_dim(c), ch[0] * size * size, bias=False),
            nn.BatchNorm1d(ch[0] * size * size),
            activation(),
        )
        layers: list[nn.Module] = []
        outs = [*ch[1:], image_shape[0]]
        for i, (a, b) in enumerate(zip(ch, outs)):
            stride = 2 if i >= len(outs) - depth else 1  # the last `depth` layers upsample: s -> 2s -> ... -> H
            # "same" padding: the output is stride x the input for odd and even kernels
            layers.append(nn.ConvTranspose2d(a, b, k, stride=stride, padding=(k - 1) // 2,
                                             output_padding=(stride - 1) * (k % 2), bias=False))
            if i < len(outs) - 1:
                layers += [nn.BatchNorm2d(b), activation()]
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)  # (B, C0, s, s) -> ... -> (B, C, H, W)
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
        # one stride-2 convolution per halving back to the generator's start, at least
        widths = discriminator_widths(config.discriminator_channels, self.image_shape, config.kernel_size)
        discriminator = ConvDiscriminator(self.image_shape, widths, config.kernel_size, config.leaky_slope,
                                          config.dropout, config.channels_last, config.discriminator_batchnorm)
        self.discriminator = prepare_discriminator(conditioned_discriminator(discriminator, config), config,
                                                   background(self.value_range))
        self._init_ema()
