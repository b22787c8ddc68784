"""The VAE-GAN's config (``models/vae_gan.py`` builds its networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS, Bound
from ganvae.models.configs import (
    RETIRED_VAE_FIELDS,
    AdversarialConfig,
    ConditionalConfig,
    ConvNetConfig,
    VAEObjectiveConfig,
)


@dataclass
class VAEGANConfig(AdversarialConfig, VAEObjectiveConfig, ConvNetConfig, ConditionalConfig):
    """VAE-GAN = the convolutional VAE's networks and objective + a discriminator, all trained with the
    adversarial configs' two Adam optimisers (encoder and decoder at ``lr_generator``)."""

    RETIRED: ClassVar[dict[str, str]] = RETIRED_VAE_FIELDS

    latent_dim: Annotated[int, AT_LEAST_1] = 32  # size of z
    # one-sided label smoothing of real images (Salimans et al. 2016)
    real_label: Annotated[float, Bound(0, 1, lo_open=True, says="in (0, 1]")] = 0.9
    # conv channels at H/2, H/4, ...: one per halving to the decoder's start at least (fewer entries: extended by
    # doubling the last)
    discriminator_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [32, 64])
    dropout: Annotated[float, PROBABILITY] = 0.3  # dropout after each discriminator activation
    leaky_slope: Annotated[float, AT_LEAST_0] = 0.2  # negative slope of the discriminator's leaky ReLUs
    # weight of the adversarial term against the ELBO (nats per image)
    adversarial_weight: Annotated[float, AT_LEAST_0] = 20.0
    feature_recon: bool = False  # reconstruct in discriminator-feature space (Larsen et al. 2016, Eq. 7)
    lr_generator: Annotated[float, POSITIVE] = 3e-4  # Adam learning rate of encoder and decoder
    lr_discriminator: Annotated[float, POSITIVE] = 2e-4  # Adam learning rate of the discriminator
