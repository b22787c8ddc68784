"""The DCGAN's config (``models/dcgan.py`` builds its networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS
from ganvae.models.configs import ConditionalDiscriminatorConfig, GANStepConfig


@dataclass
class DCGANConfig(GANStepConfig, ConditionalDiscriminatorConfig):
    """DCGAN. Each default departs from the tutorial only where a comparison at equal minutes favoured it
    (benchmarks/RESULTS.md, "Recipes"): Radford et al.'s optimiser (Adam 2e-4, beta1 0.5) and leaky slope, no
    dropout, a quarter of the tutorial's channels (more images per second, and a lower FID in the same minutes),
    batch 64, and an EMA of the generator for sampling. Tried and not kept: the hinge loss, two time-scale learning
    rates, an eighth of the channels, spectral normalisation.
    """

    latent_dim: Annotated[int, AT_LEAST_1] = 100  # size of the noise vector z
    # channels of the dense projection at the 4x4 to 7x7 start (7x7 at 28x28: H/4; 4x4 at 32x32 and 64x64), then of
    # each transposed convolution but the last (the image's); the last n double the size, n = 2 at 28, 3 at 32, 4 at
    # 64 (models/blocks.py, conv_depth), any before them keep it; fewer than n entries: extended by doubling the first
    generator_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [64, 32, 16])
    # channels at H/2, H/4, ...: one stride-2 convolution per entry, down to the generator's start at least (fewer
    # entries: extended by doubling the last)
    discriminator_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [16, 32])
    kernel_size: Annotated[int, AT_LEAST_1] = 5  # kernel of every (transposed) convolution
    # negative slope of the leaky ReLUs (Radford et al. 2016; the tutorial: 0.3)
    leaky_slope: Annotated[float, AT_LEAST_0] = 0.2
    # the generator's hidden activations: leaky_relu (at leaky_slope, as the tutorial's) or relu (Radford et al. 2016)
    generator_activation: Literal["leaky_relu", "relu"] = "leaky_relu"
    # batch norm after every discriminator convolution but the first (Radford et al. 2016); real and fake images then
    # go through the discriminator in separate passes, so that neither batch's statistics normalise the other
    discriminator_batchnorm: bool = False
    dropout: Annotated[float, PROBABILITY] = 0.0  # dropout after each discriminator activation (the tutorial: 0.3)
    # Adam learning rate of the generator (Radford et al. 2016; the tutorial: 1e-4)
    lr_generator: Annotated[float, POSITIVE] = 2e-4
    lr_discriminator: Annotated[float, POSITIVE] = 2e-4  # Adam learning rate of the discriminator
    beta1: Annotated[float, PROBABILITY] = 0.5  # Adam beta1 (Radford et al. 2016; the tutorial: Keras' 0.9)
    # off by default for the DCGAN, unlike the MLP GAN: with spectral pseudo-classes some runs collapsed to one image
    # per pseudo-class whatever the noise, as the conditional dcgan did before its class embedding started small, and
    # others did not (benchmarks/RESULTS.md, "Self-conditioning's features"); training names a collapse; null = 10
    self_conditioning: Annotated[Optional[int], AT_LEAST_0] = 0
    channels_last: bool = True  # NHWC memory format for the convolutions (faster on CPU and tensor cores)
