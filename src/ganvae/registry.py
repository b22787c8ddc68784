"""One registry: model name -> (config class, model class, description, training defaults).

The CLI's model choices, the config loader and checkpoint loading all read this table;
nothing else dispatches on model names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ganvae.errors import ConfigError, suggest


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    model_cls: type
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)  # overrides of TrainConfig defaults


@functools.cache
def _registry() -> dict[str, ModelEntry]:
    # imported here, not at module import, so `import ganvae.registry` stays cheap
    from ganvae.models import cppn, dcgan, gan, vae, vae_gan

    entries = [
        ModelEntry("gan", gan.GANConfig, gan.GAN, "MLP GAN: fully connected, batch norm + leaky ReLU, tanh output, dropout in D",
                   {"batch_size": 64, "epochs": 30}),
        ModelEntry("dcgan", dcgan.DCGANConfig, dcgan.DCGAN, "DCGAN with the TensorFlow tutorial's layers, a CPU-sized recipe",
                   {"batch_size": 64, "epochs": 30}),
        ModelEntry("vae", vae.VAEConfig, vae.VAE, "MLP VAE (Kingma & Welling 2014), Bernoulli decoder",
                   {"batch_size": 128, "epochs": 30}),
        ModelEntry("conv-vae", vae.ConvVAEConfig, vae.ConvVAE, "convolutional VAE",
                   {"batch_size": 128, "epochs": 30}),
        ModelEntry("vae-gan", vae_gan.VAEGANConfig, vae_gan.VAEGAN, "VAE-GAN (Larsen et al. 2016): encoder, generator, discriminator",
                   {"batch_size": 64, "epochs": 30}),
        ModelEntry("cppn", cppn.CPPNConfig, cppn.CPPN, "CPPN GAN+VAE: a coordinate generator that renders at any resolution",
                   {"batch_size": 64, "epochs": 30}),
    ]
    return {e.name: e for e in entries}


def model_names() -> list[str]:
    return list(_registry())


def get_entry(name: str) -> ModelEntry:
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"unknown model {name!r}.{suggest(name, list(registry))}")
    return registry[name]


def build_model(cfg, image_shape: tuple[int, int, int]):
    """The registered model class of ``cfg.model_name``, built from ``cfg.model`` for images ``(C, H, W)``; a
    conditional model learns the classes it may be asked for (``data.classes``, else all ``model.num_classes``)."""
    model = get_entry(cfg.model_name).model_cls(cfg.model, image_shape)
    if getattr(cfg.model, "conditional", False):
        from ganvae.models.conditioning import trained_classes

        model.classes = trained_classes(cfg)
    return model
