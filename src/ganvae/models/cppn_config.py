"""The CPPN GAN+VAE's config (``models/cppn.py`` builds its networks).

Torch-free, so that ``ganvae config show`` and the command line's help read it without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ganvae.models.configs import RETIRED_VAE_FIELDS, AdversarialConfig, ConditionalConfig, VAEObjectiveConfig


@dataclass
class CPPNConfig(AdversarialConfig, VAEObjectiveConfig, ConditionalConfig):
    """CPPN generator + conv encoder + conv discriminator; the VAE term (reconstruction + beta * KL, per pixel)
    and the adversarial one trained together, encoder and generator at ``lr_generator``."""

    RETIRED: ClassVar[dict[str, str]] = RETIRED_VAE_FIELDS

    latent_dim: int = 32  # size of z
    hidden_size: int = 128  # width of every CPPN layer
    n_layers: int = 3  # tanh layers after the first (coordinates + z) layer
    scale: float = 4.0  # coordinates x, y span [-scale, scale] (larger = finer detail)
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64])  # encoder conv channels
    hidden: list[int] = field(default_factory=lambda: [256])  # encoder dense layers
    discriminator_channels: list[int] = field(default_factory=lambda: [32, 64])  # discriminator conv channels
    dropout: float = 0.3  # dropout in the discriminator
    leaky_slope: float = 0.2  # discriminator leaky ReLU slope
    vae_weight: float = 1.0  # weight of the per-pixel VAE loss against the adversarial loss
    schedule: Literal["balanced", "alternating"] = "balanced"  # balanced = the original's G/D balancing; alternating = 1 D + 1 G step
    max_generator_steps: int = 4  # balanced: at most this many generator steps per batch
    generator_loss_target: float = 0.6  # balanced: stop the generator steps once its loss is below this
    discriminator_loss_floor: float = 0.6  # balanced: train D only while its loss is above this
    discriminator_step_max_g_loss: float = 0.75  # balanced: ... and the generator's loss is below this
    lr_generator: float = 1e-3  # Adam learning rate of encoder and CPPN
    lr_discriminator: float = 2e-4  # Adam learning rate of the discriminator
    render_chunk: int = 65536  # pixels evaluated at once when rendering large images
