"""The MLP GAN's config (``models/gan.py`` builds its networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, PROBABILITY, WIDTHS
from ganvae.models.configs import ConditionalDiscriminatorConfig, GANStepConfig


@dataclass
class GANConfig(GANStepConfig, ConditionalDiscriminatorConfig):
    """MLP GAN: the hobby scripts' network and optimiser (Adam 2e-4, beta1 0.5, batch 64; the ``mlp-gan-original``
    preset) plus an EMA of the generator for sampling (Yazici et al. 2019), which removed most of the trained
    weights' speckle at equal minutes. Measured in benchmarks/RESULTS.md ("Recipes").
    """

    latent_dim: Annotated[int, AT_LEAST_1] = 100  # size of the noise vector z
    # generator layer widths
    generator_hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [256, 512, 1024])
    # discriminator layer widths
    discriminator_hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [1024, 512, 256])
    leaky_slope: Annotated[float, AT_LEAST_0] = 0.2  # negative slope of the leaky ReLUs
    dropout: Annotated[float, PROBABILITY] = 0.3  # dropout after each discriminator activation
    # batch norm after each hidden generator layer, as the widely used PyTorch-GAN MLP has it: without it the
    # generator collapsed to one or two blurred digits within a few epochs on full MNIST
    generator_batchnorm: bool = True
