"""One registry: model name -> (config class, model class, description, report family, training defaults).

The CLI's model choices, the config loader, checkpoint loading and the report all read this table; nothing else
dispatches on model names. An entry names its classes as ``"module:attribute"`` and imports them on first use, so
listing the models (``ganvae --help``, ``ganvae train --help``) imports no network and no torch; the config
dataclasses live in torch-free modules (``models/<family>_config.py``), so ``ganvae config show`` imports none
either.

Families from outside the package join the same table: :func:`register_model` from Python, or an installed
distribution's entry point in the group ``ganvae.models`` (``wgan-gp = "my_package:ENTRY"``, where ``ENTRY`` is a
:class:`ModelEntry` or a callable returning one), read once when the table is first built. A plugin that fails to
load is skipped with a warning naming it and the fix; a plugin never replaces a built-in family.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from ganvae.errors import ConfigError, suggest

log = logging.getLogger(__name__)

PLUGIN_GROUP = "ganvae.models"  # the entry-point group an installed package registers its families in
NAME_RULE = re.compile(r"[a-z][a-z0-9-]{0,31}")  # names users type: `ganvae train NAME`


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


BUILTIN: tuple[str, ...] = ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn")


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
    table = {e.name: e for e in entries}
    for entry in _plugin_entries():
        try:
            _check_entry(entry, table)
        except ConfigError as err:
            log.warning("model plugin skipped: %s", err)
            continue
        table[entry.name] = entry
    return table


def _plugin_entries() -> list[ModelEntry]:
    """The families of installed distributions (entry-point group :data:`PLUGIN_GROUP`); one that cannot be
    loaded is skipped with a warning."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=PLUGIN_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        try:
            obj = ep.load()
            entry = obj() if callable(obj) and not isinstance(obj, ModelEntry) else obj
            if not isinstance(entry, ModelEntry):
                raise TypeError(f"{ep.value} is a {type(entry).__name__}, not a ganvae.registry.ModelEntry")
        except Exception as err:  # a broken plugin must not take the command line down with it
            log.warning("model plugin %r from %s could not be loaded (%s: %s); fix or uninstall %s.", ep.name, dist,
                        type(err).__name__, err, dist)
            continue
        if entry.name != ep.name:
            log.warning("model plugin %r from %s registers a family named %r; the entry point's name and the "
                        "family's must agree (fix its pyproject.toml).", ep.name, dist, entry.name)
            continue
        found.append(entry)
    return found


def _check_entry(entry: ModelEntry, table: dict[str, ModelEntry], replace: bool = False) -> None:
    if not isinstance(entry, ModelEntry):
        raise ConfigError(f"register_model: expected a ganvae.registry.ModelEntry, got {type(entry).__name__}.")
    if not NAME_RULE.fullmatch(entry.name):
        raise ConfigError(f"register_model: name {entry.name!r} must be lower-case letters, digits and dashes, "
                          f"starting with a letter (at most 32), e.g. 'wgan-gp'.")
    if entry.name in BUILTIN:
        raise ConfigError(f"register_model: {entry.name!r} is a built-in family and cannot be replaced; choose "
                          f"another name.")
    if entry.name in table and not replace:
        raise ConfigError(f"register_model: {entry.name!r} is already registered ({table[entry.name].model}); pass "
                          f"replace=True to replace it.")
    for what in ("config", "model"):
        ref = getattr(entry, what)
        if isinstance(ref, str) and not re.fullmatch(r"[\w.]+:[\w.]+", ref):
            raise ConfigError(f"register_model: {what}={ref!r} for {entry.name!r}; give the class or "
                              f"'package.module:ClassName'.")
    if not isinstance(entry.config, str) and not isinstance(entry.model, str):
        _check_capabilities(entry)


def _check_capabilities(entry: ModelEntry) -> None:
    """The config fields the model class's declared capabilities read (GenerativeModel's class attributes): every
    family draws latents of ``latent_dim``; one that declares ``ema_networks`` reads ``ema_decay``. Checked here,
    not probed later, so a plugin whose field is misnamed is told at registration instead of silently getting
    none."""
    import dataclasses

    if not dataclasses.is_dataclass(entry.config):
        raise ConfigError(f"register_model: config={entry.config!r} for {entry.name!r} is not a dataclass; give the "
                          f"family's typed config dataclass.")
    fields = {f.name for f in dataclasses.fields(entry.config)}
    needs = {"latent_dim": "the size of the latents every family draws"}
    if getattr(entry.model, "ema_networks", ()):
        needs["ema_decay"] = f"{entry.model.__name__} declares ema_networks={tuple(entry.model.ema_networks)}"
    for name, why in needs.items():
        if name not in fields:
            close = suggest(name, sorted(fields), list_all=False)
            raise ConfigError(f"register_model: {entry.name!r}'s config {entry.config.__name__} has no field "
                              f"{name!r} ({why}); add it.{close}")


def register_model(entry: ModelEntry | None = None, /, *, replace: bool = False, **fields: Any) -> ModelEntry:
    """Add a model family from outside the package, for this process: then ``ganvae train NAME``-style calls from
    Python (``ganvae.train(NAME, ...)``), checkpoints, ``ganvae.load``, evaluate, compare, export and the explorer
    take it like a built-in one. Give a :class:`ModelEntry`, or its fields::

        ganvae.register_model(name="wgan-gp", config=WGANGPConfig, model=WGANGP,
                              description="WGAN-GP", family="GAN", train_defaults={"batch_size": 64})

    For the command line, install a package with an entry point in the group ``ganvae.models`` instead (see
    ``examples/wgan-gp-plugin``). The contract the model class implements is :class:`ganvae.models.base.
    GenerativeModel`'s."""
    if entry is None:
        fields.setdefault("family", "custom")
        try:
            entry = ModelEntry(**fields)
        except TypeError as err:
            raise ConfigError(f"register_model: {err}; give name, config, model, description (and optionally "
                              f"family, train_defaults).") from None
    elif fields:
        raise ConfigError("register_model: give a ModelEntry or its fields, not both.")
    table = _registry()
    _check_entry(entry, table, replace)
    table[entry.name] = entry
    return entry


def unregister_model(name: str) -> None:
    """Remove a family added by :func:`register_model` (built-in families stay)."""
    if name in BUILTIN:
        raise ConfigError(f"unregister_model: {name!r} is a built-in family.")
    _registry().pop(name, None)


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
