"""The CPPN GAN+VAE's config (``models/cppn.py`` builds its networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS
from ganvae.models.configs import RETIRED_VAE_FIELDS, AdversarialConfig, ConditionalConfig, VAEObjectiveConfig


@dataclass
class CPPNConfig(AdversarialConfig, VAEObjectiveConfig, ConditionalConfig):
    """CPPN generator + conv encoder + conv discriminator; the VAE term (reconstruction + beta * KL, per pixel)
    and the adversarial one trained together, encoder and generator at ``lr_generator``. Trains at any image size
    and channel count (its encoder and discriminator halve once per entry of their lists, odd sides rounded up) and
    renders at any resolution."""

    RETIRED: ClassVar[dict[str, str]] = RETIRED_VAE_FIELDS

    latent_dim: Annotated[int, AT_LEAST_1] = 32  # size of z
    hidden_size: Annotated[int, AT_LEAST_1] = 128  # width of every CPPN layer
    n_layers: Annotated[int, AT_LEAST_0] = 3  # tanh layers after the first (coordinates + z) layer
    scale: Annotated[float, POSITIVE] = 4.0  # coordinates x, y span [-scale, scale] (larger = finer detail)
    encoder_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [32, 64])  # encoder conv channels
    hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [256])  # encoder dense layers
    # discriminator conv channels
    discriminator_channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [32, 64])
    dropout: Annotated[float, PROBABILITY] = 0.3  # dropout in the discriminator
    leaky_slope: Annotated[float, AT_LEAST_0] = 0.2  # discriminator leaky ReLU slope
    vae_weight: Annotated[float, AT_LEAST_0] = 1.0  # weight of the per-pixel VAE loss against the adversarial loss
    # balanced = the original's G/D balancing; alternating = 1 D + 1 G step
    schedule: Literal["balanced", "alternating"] = "balanced"
    max_generator_steps: Annotated[int, AT_LEAST_1] = 4  # balanced: at most this many generator steps per batch
    generator_loss_target: float = 0.6  # balanced: stop the generator steps once its loss is below this
    discriminator_loss_floor: float = 0.6  # balanced: train D only while its loss is above this
    discriminator_step_max_g_loss: float = 0.75  # balanced: ... and the generator's loss is below this
    lr_generator: Annotated[float, POSITIVE] = 1e-3  # Adam learning rate of encoder and CPPN
    lr_discriminator: Annotated[float, POSITIVE] = 2e-4  # Adam learning rate of the discriminator
    render_chunk: Annotated[int, AT_LEAST_1] = 65536  # pixels evaluated at once when rendering large images
