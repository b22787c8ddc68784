"""One registry: model name -> (config class, model class, description, report family, training defaults).

The CLI's model choices, the config loader, checkpoint loading and the report all read this table; nothing else
dispatches on model names. An entry names its classes as ``"module:attribute"`` and imports them on first use, so
listing the models (``ganvae --help``, ``ganvae train --help``) imports no network and no torch; the config
dataclasses live in torch-free modules (``models/<family>_config.py``), so ``ganvae config show`` imports none
either.

Families from outside the package join the same table: :func:`register_model` from Python, or an installed
distribution's entry point in the group ``ganvae.models`` (``wgan-gp = "my_package:ENTRY"``, where ``ENTRY`` is a
:class:`ModelEntry` or a callable returning one), read once when the table is first built. Every entry is checked
against the contract when it is registered (:class:`ModelEntry` says what, and when); a plugin that fails to load,
whatever its import raises (``sys.exit`` included), or whose entry breaks the contract, is skipped with one warning
line naming it, the reason and the fix; a plugin never replaces a built-in family.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from ganvae.errors import ConfigError, FieldConfigError, suggest

log = logging.getLogger(__name__)

PLUGIN_GROUP = "ganvae.models"  # the entry-point group an installed package registers its families in
NAME_RULE = re.compile(r"[a-z][a-z0-9-]{0,31}")  # names users type: `ganvae train NAME`


def _resolve(ref: str | type) -> Any:
    """``"package.module:Attribute"`` -> the attribute (imported now); a class is returned as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return functools.reduce(getattr, attr.split("."), importlib.import_module(module))


def _reason(err: BaseException) -> str:
    """An exception as one line: ``"ModuleNotFoundError: No module named 'x'"`` (a plugin's message may span
    several)."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _import_ref(name: str, what: str, ref: str | type, who: str) -> Any:
    """Entry ``name``'s ``what`` (``config`` or ``model``) imported now, or a :class:`FieldConfigError` naming the
    field, the reference and why it does not import. A plugin's module that raises anything at import, or exits
    (``sys.exit``), is refused the same way; only Ctrl-C goes through."""
    try:
        return _resolve(ref)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # a plugin's import may raise SystemExit, or anything
        raise _refuse(who, name, what, ref, f"does not import ({_reason(err)})",
                      "give the class, or an importable 'package.module:ClassName'") from err


@dataclass(frozen=True)
class ModelEntry:
    """A model family as the registry holds it, and the contract a family from another package meets.

    Checked when the entry is registered (:func:`register_model`, or an installed entry point): the name; the
    description and family (one line each); ``train_defaults`` (a dict of ``TrainConfig`` keys); ``config``
    (imported now: a dataclass whose fields all have defaults, with ``latent_dim``, and ``ema_decay`` where the
    model declares ``ema_networks``); ``model`` given as a class (a :class:`ganvae.models.base.GenerativeModel`
    subclass implementing ``make_optimizers``, ``training_step`` and ``decode``, ``encode`` too where it declares
    ``has_encoder``; see :func:`check_model_class`). A model given as ``"module:Class"`` is located then (its
    module must exist) and checked when first imported (:attr:`model_cls`, when a model is built): importing it
    imports torch, which listing the families (``ganvae --help``) must not. The step's result is checked against
    the contract by :func:`ganvae.models.base.check_step_result`.
    """

    name: str  # the name users type: `ganvae train NAME`, model_name in config files and checkpoints
    config: str | type  # the config dataclass, or "module:Class" imported on first use (a torch-free module)
    model: str | type  # the model class (a GenerativeModel), or "module:Class"
    description: str  # one line for `ganvae train --help`
    family: str  # the kind of model the comparison report names ("GAN", "VAE", ...)
    train_defaults: dict[str, Any] = field(default_factory=dict)  # overrides of TrainConfig defaults

    @property
    def config_cls(self) -> type:
        return _import_ref(self.name, "config", self.config, f"model family {self.name!r}")

    @property
    def model_cls(self) -> type:
        """The model class, imported now and checked against the contract (:func:`check_model_class`)."""
        who = f"model family {self.name!r}"
        cls = _import_ref(self.name, "model", self.model, who)
        check_model_class(self.name, cls, self.config_cls, who)
        return cls


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
    for entry, dist in _plugin_entries():
        try:
            _check_entry(entry, table, who=f"model plugin {entry.name!r} from {dist}")
        except KeyboardInterrupt:
            raise
        except ConfigError as err:
            log.warning("%s Skipped: fix or uninstall %s.", err, dist)
            continue
        except BaseException as err:  # a plugin's class may raise anything when inspected
            log.warning("model plugin %r from %s could not be checked (%s); fix or uninstall %s.", entry.name, dist,
                        _reason(err), dist)
            continue
        table[entry.name] = entry
    return table


def _plugin_entries() -> list[tuple[ModelEntry, str]]:
    """The families of installed distributions (entry-point group :data:`PLUGIN_GROUP`), each with its
    distribution's name; one that cannot be loaded is skipped with one warning, whatever its import raises (an
    exception, ``sys.exit``); only Ctrl-C goes through."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=PLUGIN_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        try:
            obj = ep.load()
            entry = obj() if callable(obj) and not isinstance(obj, ModelEntry) else obj
            if not isinstance(entry, ModelEntry):
                raise TypeError(f"{ep.value} is a {type(entry).__name__}, not a ganvae.registry.ModelEntry")
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # a broken plugin must not take the command line down, whatever it raises
            log.warning("model plugin %r from %s could not be loaded (%s); fix or uninstall %s.", ep.name, dist,
                        _reason(err), dist)
            continue
        if entry.name != ep.name:
            log.warning("model plugin %r from %s registers a family named %r; the entry point's name and the "
                        "family's must agree (fix its pyproject.toml).", ep.name, dist, entry.name)
            continue
        found.append((entry, dist))
    return found


# the methods a family must implement (GenerativeModel's raise NotImplementedError), and why
REQUIRED_METHODS = {"make_optimizers": "the trainer builds the optimisers from it",
                    "training_step": "the trainer calls it on every batch",
                    "decode": "sampling, evaluation and every picture use it"}


def _refuse(who: str, name: str, what: str, value: Any, problem: str, fix: str) -> FieldConfigError:
    """The error about field ``what`` of entry ``name``: the field with its value, what is wrong, the fix. The
    fields are ModelEntry's, which every front end spells the same way (its keywords)."""
    if isinstance(value, type):
        shown = f"{value.__module__}.{value.__qualname__}"
    elif type(value).__module__ == "builtins":  # a string, a number, a dict: as written, on one line
        shown = " ".join(repr(value).split())
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
    else:  # an object whose repr may span lines (a module): its kind
        shown = f"<a {type(value).__module__}.{type(value).__qualname__} object>"
    named = "" if repr(name) in who else f" for {name!r}"  # a plugin's warning names it already
    return FieldConfigError(what, value, f"{who}: {what}={shown}{named} {problem}; {fix}.", reason=problem)


def _check_entry(entry: ModelEntry, table: dict[str, ModelEntry], replace: bool = False,
                 who: str = "register_model") -> None:
    """Check every field of ``entry`` against the contract (:class:`ModelEntry`) before it joins ``table``; the
    error names the field and the fix, with ``who`` (the caller, or the plugin and its distribution) first."""
    if not isinstance(entry, ModelEntry):
        raise ConfigError(f"{who}: expected a ganvae.registry.ModelEntry, got {type(entry).__name__}.")
    name = entry.name
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise FieldConfigError("name", name, f"{who}: name {name!r} must be lower-case letters, digits and dashes, "
                                             f"starting with a letter (at most 32), e.g. 'wgan-gp'.",
                               reason="lower-case letters, digits and dashes")
    if name in BUILTIN:
        raise FieldConfigError("name", name, f"{who}: {name!r} is a built-in family and cannot be replaced; choose "
                                             f"another name.", reason="not a built-in family")
    if name in table and not replace:
        raise FieldConfigError("name", name, f"{who}: {name!r} is already registered ({table[name].model}); pass "
                                             f"replace=True to replace it.", reason="not registered yet")
    for what in ("description", "family"):
        text = getattr(entry, what)
        if not isinstance(text, str) or not text.strip() or "\n" in text:
            raise _refuse(who, name, what, text, "is not one line of text",
                          f"give a line for {'`ganvae train --help`' if what == 'description' else 'the report'}")
    _check_train_defaults(entry, who)
    for what in ("config", "model"):
        ref = getattr(entry, what)
        if isinstance(ref, str) and not re.fullmatch(r"[\w.]+:[\w.]+", ref):
            raise _refuse(who, name, what, ref, "is not a class reference", "give the class or "
                          "'package.module:ClassName'")
    config = _import_ref(name, "config", entry.config, who)
    _check_config_class(name, entry.config, config, entry.model, who)
    if isinstance(entry.model, str):
        _locate(entry, who)
    else:
        check_model_class(name, entry.model, None, who)  # its config is checked above


def _check_train_defaults(entry: ModelEntry, who: str) -> None:
    """``train_defaults``: a dict of ``TrainConfig`` keys (strings) to values. Which keys ``TrainConfig`` has, and
    their bounds, are the config layer's to check when the defaults are applied (:func:`ganvae.config.
    default_config`): ganvae.config reads this registry, so the registry does not import it."""
    value = entry.train_defaults
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _refuse(who, entry.name, "train_defaults", value, "is not a dict of TrainConfig keys",
                      "give a dict of TrainConfig keys to values, e.g. {'batch_size': 64}")


def _check_config_class(name: str, ref: str | type, config: Any, model: Any, who: str) -> None:
    """The config class: a dataclass every field of which has a default (``ganvae config show`` builds it with no
    arguments), with the fields the model's declared capabilities read (GenerativeModel's class attributes): every
    family draws latents of ``latent_dim``; one that declares ``ema_networks`` reads ``ema_decay``. Checked here, not
    probed later, so a plugin whose field is misnamed is told at registration instead of silently getting none."""
    import dataclasses

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        raise _refuse(who, name, "config", ref, "is an instance", f"give its class, {type(config).__name__}")
    if not isinstance(config, type) or not dataclasses.is_dataclass(config):
        raise _refuse(who, name, "config", ref, "is not a dataclass",
                      "give the family's typed config dataclass (@dataclasses.dataclass)")
    fields = {f.name: f for f in dataclasses.fields(config)}
    bare = [n for n, f in fields.items() if f.init and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]
    if bare:
        raise _refuse(who, name, "config", ref, f"has fields without a default ({', '.join(bare)})",
                      "give each one (the defaults are the family's recipe, built with no arguments)")
    needs = {"latent_dim": "the size of the latents every family draws"}
    ema = tuple(getattr(model, "ema_networks", None) or ()) if isinstance(model, type) else ()
    if ema:
        needs["ema_decay"] = f"{model.__name__} declares ema_networks={ema}"
    for key, why in needs.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
            raise _refuse(who, name, "config", ref, f"has no field {key!r} ({why})",
                          f"add it, or rename {close[0]!r}" if close else "add it")


def _locate(entry: ModelEntry, who: str) -> None:
    """A model given as ``"module:Class"``: its module exists (found, not run: importing it imports torch, and
    the families are listed without), else the error naming it."""
    from importlib.util import find_spec

    module = str(entry.model).partition(":")[0]
    try:
        found = find_spec(module) is not None  # imports the packages above the module, not the module
        problem = "" if found else f"ModuleNotFoundError: No module named {module!r}"
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # a plugin's package may raise anything, or exit, at import
        problem = _reason(err)
    if problem:
        raise _refuse(who, entry.name, "model", entry.model, f"does not import ({problem})",
                      "give the class, or an importable 'package.module:ClassName'")


def check_model_class(name: str, cls: Any, config: type | None = None, who: str = "register_model") -> None:
    """Raise :class:`FieldConfigError` (field ``model``) unless ``cls`` meets the family contract: a subclass of
    :class:`ganvae.models.base.GenerativeModel` that implements :data:`REQUIRED_METHODS` (and ``encode`` where it
    declares ``has_encoder``), whose ``value_range`` is ``"tanh"`` or ``"unit"`` and whose ``ema_networks`` and
    ``training_only_networks`` are among its ``networks``; with its ``config`` class, the config fields its
    capabilities read. Imports no torch: a GenerativeModel subclass has imported it already."""
    import sys

    base_module = sys.modules.get("ganvae.models.base")  # loaded by any subclass of its GenerativeModel
    base = getattr(base_module, "GenerativeModel", None)
    if not isinstance(cls, type) or base is None or not issubclass(cls, base):
        raise _refuse(who, name, "model", cls, "is not a subclass of ganvae.models.base.GenerativeModel",
                      "give the family's model class, a GenerativeModel subclass (see examples/wgan-gp-plugin)")
    model: Any = cls  # a GenerativeModel subclass: its capabilities are class attributes
    required = dict(REQUIRED_METHODS)
    if model.has_encoder:
        required["encode"] = "it declares has_encoder = True (reconstructions, likelihood bounds)"
    for method, why in required.items():
        if getattr(cls, method, None) is getattr(base, method):
            raise _refuse(who, name, "model", cls, f"does not implement {method} ({why})",
                          f"define {cls.__name__}.{method} (GenerativeModel.{method}'s docstring gives its contract)")
    if model.value_range not in ("tanh", "unit"):
        raise _refuse(who, name, "model", cls, f"declares value_range={model.value_range!r}",
                      "set it to 'tanh' (images in [-1, 1]) or 'unit' (in [0, 1])")
    networks = tuple(model.networks)
    for attr in ("ema_networks", "training_only_networks"):
        stray = [n for n in getattr(model, attr) if n not in networks]
        if stray:
            raise _refuse(who, name, "model", cls, f"declares {attr} {stray} that are not among its networks "
                                                   f"{networks}", f"add them to {cls.__name__}.networks")
    if config is not None:
        _check_config_class(name, config, config, cls, who)


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
