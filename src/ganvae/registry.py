"""One registry: model name -> (config class, model class, description, report family, training defaults).

The CLI's model choices, the config loader, checkpoint loading and the report all read this table; nothing else
dispatches on model names. An entry names its classes as ``"module:attribute"`` and imports them on first use, so
listing the models (``ganvae --help``, ``ganvae train --help``) imports no network and no torch; the config
dataclasses live in torch-free modules (``models/<family>_config.py``), so ``ganvae config show`` imports none
either.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any

from ganvae.errors import ConfigError, suggest


def _resolve(ref: str | type) -> type:
    """``"package.module:Attribute"`` -> the attribute (imported now); a class is returned as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the name users type: `ganvae train NAME`, model_name in config files and checkpoints
    config: str | type  # the config dataclass, or "module:Class" imported on first use (a torch-free module)
    model: str | type  # the model class (a GenerativeModel), or "module:Class"
    description: str  # one line for `ganvae train --help`
    family: str  # the kind of model the comparison report names ("GAN", "VAE", ...)
    train_defaults: dict[str, Any] = field(default_factory=dict)  # overrides of TrainConfig defaults

    @property
    def config_cls(self) -> type:
        return _resolve(self.config)

    @property
    def model_cls(self) -> type:
        return _resolve(self.model)


def _builtin(name: str, module: str, config: str, model: str, description: str, family: str,
             batch_size: int) -> ModelEntry:
    return ModelEntry(name, f"ganvae.models.{module}_config:{config}", f"ganvae.models.{module}:{model}",
                      description, family, {"batch_size": batch_size, "epochs": 30})


@functools.cache
def _registry() -> dict[str, ModelEntry]:
    entries = [
        _builtin("gan", "gan", "GANConfig", "GAN",
                 "MLP GAN: fully connected, batch norm + leaky ReLU, tanh output, dropout in D", "GAN", 64),
        _builtin("dcgan", "dcgan", "DCGANConfig", "DCGAN",
                 "DCGAN with the TensorFlow tutorial's layers, a CPU-sized recipe", "GAN", 64),
        _builtin("vae", "vae", "VAEConfig", "VAE", "MLP VAE (Kingma & Welling 2014), Bernoulli decoder", "VAE", 128),
        _builtin("conv-vae", "vae", "ConvVAEConfig", "ConvVAE", "convolutional VAE", "VAE", 128),
        _builtin("vae-gan", "vae_gan", "VAEGANConfig", "VAEGAN",
                 "VAE-GAN (Larsen et al. 2016): encoder, generator, discriminator", "VAE-GAN", 64),
        _builtin("cppn", "cppn", "CPPNConfig", "CPPN",
                 "CPPN GAN+VAE: a coordinate generator that renders at any resolution", "CPPN GAN+VAE", 64),
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
