"""Config dataclasses shared by several model families (every field has a one-line comment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

GanLoss = Literal["bce", "hinge", "lsgan"]


@dataclass
class AdversarialConfig:
    """Fields every model with a discriminator has."""

    gan_loss: GanLoss = "bce"  # bce = non-saturating (Goodfellow 2014), hinge (Lim & Ye 2017), lsgan (Mao 2017)
    lr_generator: float = 2e-4  # Adam learning rate of the generator (and encoder)
    lr_discriminator: float = 2e-4  # Adam learning rate of the discriminator
    beta1: float = 0.5  # Adam beta1 (0.5 as in Radford et al. 2016)
    beta2: float = 0.999  # Adam beta2
    real_label: float = 1.0  # target for real images in the BCE loss; 0.9 = one-sided label smoothing
    # EMA of the generator (and encoder) weights, used for sampling and evaluation (Yazici et al. 2019); None = off
    ema_decay: Optional[float] = 0.999
    reuse_fake_logits: bool = False  # generator step reuses the discriminator's pass on the fakes (faster, not the textbook step)
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer (Miyato et al. 2018)
    # differentiable augmentation of the discriminator's inputs (Zhao et al. 2020): translation, cutout; [] = off
    diffaugment: list[str] = field(default_factory=list)
