"""Typed configuration: dataclass sections loaded from YAML and overridden with ``--set``.

A run's configuration has four sections::

    model_name: dcgan        # a name from the registry
    data:  {...}             # DataConfig
    model: {...}             # the family's own config dataclass (e.g. DCGANConfig)
    train: {...}             # TrainConfig
    run:   {...}             # RunConfig

Defaults come from the dataclasses (and the registry's per-model training defaults),
then a YAML file, then command-line flags, then ``--set section.key=value``. Every
layer is validated: an unknown key is an error naming the nearest valid key, a value of
the wrong type is an error naming the field and the expected type.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import numbers
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Union

import yaml

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, Bound, field_bounds
from ganvae.errors import ConfigError, FieldConfigError, suggest

SECTIONS = ("data", "model", "train", "run")


@dataclass
class DataConfig:
    """Where the training images come from and how they are prepared."""

    # a name from `ganvae data list` (mnist-25k and colour-digits ship with ganvae), folder:PATH (a folder of images)
    # or npz:PATH (arrays x_train, y_train, x_test, y_test, or images and labels)
    dataset: str = "mnist-25k"
    data_dir: Optional[str] = None  # folder holding the dataset's files (IDX, CIFAR-10's); default: the download cache
    # train on these class indices only (e.g. [3, 5])
    classes: Annotated[Optional[list[int]], Bound(0, says="0 or more", non_empty=True,
                                                  empty_says="a non-empty list (or null for all classes)")] = None
    # side length in pixels; folder images are resized to it, named datasets come in their own sizes (colour-digits:
    # 28, 32 or 64); from 8 (smaller images hold too little to learn from) to 256 (the families are built for small
    # images, and a folder resized to more would take gigabytes before any check of the model could refuse it)
    image_size: Annotated[int, Bound(8, 256, says="from 8 to 256")] = 28
    # channels: auto keeps the data's own (a folder is RGB if any file is colour, else grey), grey = 1, rgb = 3
    color: Literal["auto", "grey", "rgb"] = "auto"
    invert: bool = False  # invert grey levels (for dark-on-light folder images); colour images: each channel
    download: bool = True  # download a missing named dataset into the cache
    # folders and npz:PATH files without their own split: share of images held out as the test split
    test_fraction: Annotated[float, Bound(0, 1, lo_open=True, hi_open=True, says="between 0 and 1")] = 0.1


@dataclass
class TrainConfig:
    """The training loop: budgets, batches, device, logging cadence."""

    epochs: Annotated[int, AT_LEAST_1] = 20  # passes over the training set (the run stops at the first budget reached)
    # wall-clock training budget in minutes, of this session (a resumed run gets it again); None = no limit
    max_minutes: Annotated[Optional[float], Bound(0, lo_open=True, says="positive, or null for no limit")] = None
    # optimisation steps in all (earlier sessions included), as Lightning's max_steps: a budget that gives the same
    # run on any machine and under any load; None = no limit
    max_steps: Annotated[Optional[int], AT_LEAST_1] = None
    # images per optimisation step (global batch under torchrun)
    batch_size: Annotated[int, Bound(2, says="at least 2 (batch norm and the batch statistics need two images)")] = 64
    # seeds weights, data order, noise; saved with the run (what torch's generators take)
    seed: Annotated[int, Bound(0, 2**63 - 1, says="from 0 to 2**63 - 1")] = 0
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps
    # fp32; bf16 = autocast to bfloat16 where the hardware has it (GPU, CPU with AMX/AVX512-BF16): faster,
    # other numerics; auto = bf16 on CUDA GPUs with bf16 and on CPUs with AMX, else fp32 (resolved once; the run
    # records the result)
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    num_threads: Annotated[Optional[int], AT_LEAST_1] = None  # CPU threads for torch; None = torch's default
    # on CPU, flush denormal floats (below 1.2e-38) to zero on every torch thread: Adam moments decaying into that
    # range slowed the MLP VAE markedly; no effect on numbers above it (ganvae/training/denormals.py;
    # benchmarks/RESULTS.md, "What made the defaults fast")
    flush_denormals: bool = True
    log_every: Annotated[int, AT_LEAST_1] = 20  # steps between loss records (CSV, TensorBoard, progress bar)
    sample_every: Annotated[int, AT_LEAST_1] = 1  # epochs between sample grids from the fixed noise
    checkpoint_every: Annotated[int, AT_LEAST_1] = 5  # epochs between checkpoints (one is always written at the end)
    # also a checkpoint every this many minutes of training, mid-epoch if need be, so a crash loses at most that
    # much work; 0 = only by epochs
    checkpoint_minutes: Annotated[float, Bound(0, says="0 or more (0 = only by epochs)")] = 10.0
    eval_every: Annotated[int, AT_LEAST_0] = 0  # epochs between cheap in-training metrics (FID/coverage); 0 = off
    # or: every this many minutes of training (checked every log_every steps); 0 = off
    eval_interval_minutes: Annotated[float, AT_LEAST_0] = 0.0
    eval_samples: Annotated[int, Bound(10, says="at least 10")] = 2000  # samples for the in-training metrics
    compile: bool = False  # torch.compile the networks (pays back only on long runs)
    sync_batchnorm: bool = False  # under torchrun: convert BatchNorm to SyncBatchNorm
    progress: bool = True  # show a progress bar per epoch


@dataclass
class RunConfig:
    """Where outputs go and which ones are written."""

    out: Optional[str] = None  # run folder; default runs/<model>-<timestamp>
    tensorboard: bool = True  # write TensorBoard event files under <run>/tensorboard
    n_fixed: Annotated[int, AT_LEAST_1] = 64  # size of the fixed noise batch used for grids and the progress GIF
    gif_fps: Annotated[int, AT_LEAST_1] = 4  # frames per second of the training-progress GIF
    # experiment tracking (ganvae.training.tracking): "mlflow" (pip install 'ganvae[mlflow]') or "wandb" (Weights &
    # Biases, pip install 'ganvae[wandb]') logs params, losses, quality points, grids and the final checkpoint; a
    # list logs to each (mlflow,wandb on the command line); none or null: no tracker
    log_to: Optional[Union[Literal["none", "mlflow", "wandb"], list[Literal["mlflow", "wandb"]]]] = "none"
    mlflow_uri: Optional[str] = None  # the MLflow store; default MLFLOW_TRACKING_URI or sqlite:///mlflow.db here
    mlflow_experiment: str = "ganvae"  # the MLflow experiment the run goes in (made if missing)
    wandb_project: str = "ganvae"  # the W&B project the run goes in (made if missing)
    wandb_entity: Optional[str] = None  # the W&B team or user; default WANDB_ENTITY or your account's default
    # online (to W&B's server as it trains) or offline (local files under the run folder or WANDB_DIR, uploaded
    # later with `wandb sync`); default WANDB_MODE, else online
    wandb_mode: Optional[Literal["online", "offline"]] = None


@dataclass
class ExperimentConfig:
    """Everything that defines a run; saved to ``<run>/config.yaml`` and in checkpoints."""

    model_name: str
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None  # the registry's config dataclass for ``model_name``
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return {
            "model_name": self.model_name,
            **{name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS},
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ----------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " (or null)"
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


class _BadValue(Exception):
    pass


def _coerce(value: Any, tp: Any, text: bool = True) -> Any:
    """Return ``value`` converted to ``tp`` or raise ``_BadValue``. Conversions are the safe ones only; with
    ``text=False`` (Python values, not YAML or flags) a string is never read as a list or a number."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, text)
            except _BadValue:
                pass
        raise _BadValue
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _BadValue
    if origin in (list, tuple):
        if isinstance(value, str) and text:  # "3,5" from the command line
            value = [v for v in (p.strip() for p in value.split(",")) if v]
            value = [yaml.safe_load(v) for v in value]
        if not isinstance(value, (list, tuple)):
            raise _BadValue
        (elem,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, elem, text) if elem is not Any else v for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _BadValue
    if tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy's integers too
            return int(value)
        raise _BadValue
    if tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and text:  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                raise _BadValue from None
        raise _BadValue
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike) and not text:  # a pathlib.Path given in Python
            return os.fspath(value)
        raise _BadValue
    if tp is Any:
        return value
    raise _BadValue


def _refuse_retired(cls: type, where: str, key: str, source: str) -> None:
    """The error for a field this config class once had and removed (its ``RETIRED`` map says why)."""
    why = getattr(cls, "RETIRED", {}).get(key)
    if why is not None:
        raise ConfigError(f"{source}: '{where}.{key}' does not exist for this model: {why}. Remove it.")


def section_from_dict(cls: type, data: Mapping[str, Any], *, where: str, source: str) -> Any:
    """Build dataclass ``cls`` from ``data``, validating every key and type.

    Args:
        cls: a config dataclass.
        data: the section as read from YAML (missing keys keep their defaults).
        where: the section's name, used in messages (``train``).
        source: where the values came from (a file path, ``--set``), used in messages.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: section {where!r} must be a mapping of keys to values, got {data!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            _refuse_retired(cls, where, str(key), source)
            raise ConfigError(f"{source}: unknown key '{where}.{key}'.{suggest(str(key), names)}")
        kwargs[key] = coerce_field(value, hints[key], f"{where}.{key}", source)
    return cls(**kwargs)


def coerce_field(value: Any, tp: Any, dotted: str, source: str) -> Any:
    try:
        return _coerce(value, tp)
    except _BadValue:
        raise ConfigError(
            f"{source}: '{dotted}' must be {_type_name(tp)}, got {value!r} ({type(value).__name__}). "
            f"Fix the value in {source} (`ganvae config show` lists every key with its default)."
        ) from None


# ----------------------------------------------------------------------------- value rules


# the dedicated command-line flags of config keys, named in error messages
@dataclass(frozen=True)
class Shortcut:
    """A setting with its own flag on ``ganvae train`` (``--epochs``) and its own keyword on ``ganvae.train``
    (``epochs=``): the one table both front ends, and the error messages, are built from."""

    section: str
    key: str
    flag: str
    help: str | None = None
    type: Any = None  # how the flag's text is read (None: kept as text); ``classes`` for a comma-separated list

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


SHORTCUTS = (
    Shortcut("data", "dataset", "--dataset", "dataset name (`ganvae data list`), folder:PATH or npz:PATH"),
    Shortcut("data", "data_dir", "--data-dir",
             "folder holding the dataset's IDX files (instead of the download cache)"),
    Shortcut("data", "classes", "--classes", "train on these classes only, e.g. 3,5", "classes"),
    Shortcut("train", "epochs", "--epochs",
             "passes over the training set (default: the model's, `ganvae config show MODEL`); the first budget "
             "reached ends the run", int),
    Shortcut("train", "max_minutes", "--max-minutes",
             "wall-clock budget of this session (a resumed run gets it again); the first budget reached ends the run",
             float),
    Shortcut("train", "max_steps", "--max-steps",
             "optimisation steps in all (earlier sessions included): the same run on any machine; the first budget "
             "reached ends the run", int),
    Shortcut("train", "batch_size", "--batch-size",
             "images per optimisation step, at least 2 (default: the model's; the global batch under "
             "torchrun)", int),
    Shortcut("train", "seed", "--seed", "seeds the weights, the data order and the noise (default 0); saved "
             "with the run", int),
    Shortcut("train", "device", "--device", "auto, cpu, cuda, cuda:N, mps"),
    Shortcut("run", "out", "--out", "run folder (default runs/<model>-<timestamp>)"),
)


def shortcut_settings(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"epochs": 3, "dataset": "mnist"}`` (shortcut keys, e.g. parsed flags or keywords) -> the sections they
    set, ``{"train": {"epochs": 3}, "data": {"dataset": "mnist"}}``; keys that are not shortcuts are left out."""
    out: dict[str, dict[str, Any]] = {}
    for s in SHORTCUTS:
        if s.key in values:
            out.setdefault(s.section, {})[s.key] = values[s.key]
    return out


def validate(cfg: ExperimentConfig, source: str = "the config") -> ExperimentConfig:
    """Check every value against the bound declared on its field (``Annotated[int, AT_LEAST_1]``, see
    :mod:`ganvae.bounds`) and floats for being finite, then the checks that span fields, before anything is built or
    written; the error names the key, the value, the rule and where to fix it."""
    for section in SECTIONS:
        bounds = field_bounds(type(getattr(cfg, section)))
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if value is None:
                continue
            rule = bounds.get(f.name)
            values = value if isinstance(value, (list, tuple)) else [value]
            problem = None
            if isinstance(value, (list, tuple)) and not value and rule is not None and rule.non_empty:
                problem = rule.empty_says
            for v in values:
                if problem:
                    break
                if isinstance(v, float) and not math.isfinite(v):
                    problem = f"a finite number{', ' + rule.says if rule else ''}"
                elif (rule is not None and isinstance(v, (int, float)) and not isinstance(v, bool)
                      and not rule.allows(v)):
                    problem = rule.says if not isinstance(value, list) else f"a list of values {rule.says}"
            if f.name == "classes" and not problem and len(set(value)) != len(value):
                problem = "a list of distinct class indices"
            if f.name == "device" and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(value)):
                problem = "auto, cpu, cuda, cuda:N or mps"
            conditional = getattr(cfg.model, "conditional", False)
            also = {}
            if f.name == "classes" and section == "data" and not problem and conditional \
                    and max(value) >= cfg.model.num_classes:
                also = {"model.num_classes": max(value) + 1}
                problem = (f"classes below model.num_classes={cfg.model.num_classes} for a conditional model (its "
                           f"class embeddings cover 0..{cfg.model.num_classes - 1}; or raise "
                           f"{{given:model.num_classes}})")
            if f.name == "self_conditioning" and value and conditional and not problem:
                problem = ("0 for a conditional model (model.conditional=true trains on the data's labels; "
                           "self-conditioning is for data without them): choose one")
            if problem:  # the front end words {field}: --epochs, --set ... / epochs=... / ...
                key = f"{section}.{f.name}"
                raise FieldConfigError(key, value, f"{source}: {key} is {value!r}; it must be {problem}. "
                                       f"Fix {{field}} or the config file's {key}.", reason=problem, bound=rule,
                                       values=also)
    return cfg


# ----------------------------------------------------------------------------- loading


def default_config(model_name: str) -> ExperimentConfig:
    """The full default configuration of a registered model."""
    from ganvae.registry import get_entry

    entry = get_entry(model_name)
    cfg = ExperimentConfig(model_name=model_name, model=entry.config_cls())
    for key, value in entry.train_defaults.items():
        setattr(cfg.train, key, value)
    return cfg


def _section_classes(cfg: ExperimentConfig) -> dict[str, type]:
    return {name: type(getattr(cfg, name)) for name in SECTIONS}


def merge_mapping(cfg: ExperimentConfig, data: Mapping[str, Any], source: str) -> ExperimentConfig:
    """Apply a (partial) config mapping such as a YAML file's content on top of ``cfg``.

    A top-level ``description`` (presets have one) is documentation and is ignored.
    """
    valid_top = ["model_name", "description", *SECTIONS]
    for key in data:
        if key not in valid_top:
            raise ConfigError(f"{source}: unknown top-level key {key!r}.{suggest(str(key), valid_top)}")
    if "model_name" in data and data["model_name"] != cfg.model_name:
        raise ConfigError(
            f"{source}: model_name is {data['model_name']!r} but the command asked for {cfg.model_name!r}. "
            f"Use `ganvae train {data['model_name']} --config {source}`, or remove model_name from the file."
        )
    classes = _section_classes(cfg)
    for name in SECTIONS:
        if name not in data or data[name] is None:
            continue
        current = dataclasses.asdict(getattr(cfg, name))
        section = data[name]
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: section {name!r} must be a mapping of keys to values.")
        # validate the new keys, then rebuild the section from old + new values
        section_from_dict(classes[name], section, where=name, source=source)
        current.update(section)
        setattr(cfg, name, section_from_dict(classes[name], current, where=name, source=source))
    return cfg


def merge_values(cfg: ExperimentConfig, values: Mapping[str, Mapping[str, Any]]) -> ExperimentConfig:
    """Set Python values field by field on ``cfg`` (``{"data": {"data_dir": "2024"}}``, from ``ganvae.train``'s
    keywords): each checked against its field's type as the value it is, never read as text, so ``"2024"`` and
    ``"null"`` stay strings and None sets a field to null. An error is a :class:`~ganvae.errors.FieldError` naming
    the field (``data.data_dir``), which the front end words as its user typed it."""
    for section, settings in values.items():
        for key, value in settings.items():
            dotted = f"{section}.{key}"
            if section not in SECTIONS:
                raise FieldConfigError(dotted, value, f"{{given}}: there is no config section {section!r} (the "
                                       f"sections: {', '.join(SECTIONS)}).{suggest(section, list(SECTIONS), False)}",
                                       reason="an unknown section")
            obj = getattr(cfg, section)
            hints = typing.get_type_hints(type(obj))
            if key not in hints:
                why = getattr(type(obj), "RETIRED", {}).get(key)
                if why is not None:
                    raise FieldConfigError(dotted, value, f"{{given}}: '{dotted}' does not exist for this model: "
                                           f"{why}. Remove it.", reason="a retired key")
                close = difflib.get_close_matches(key, list(hints), n=1, cutoff=0.5)
                hint = f" Did you mean {{field:{section}.{close[0]}}}?" if close else \
                    " (`ganvae config show MODEL` lists every key.)"
                raise FieldConfigError(dotted, value, f"{{given}}: unknown key '{dotted}'.{hint}",
                                       reason="an unknown key")
            try:
                setattr(obj, key, _coerce(value, hints[key], text=False))
            except _BadValue:
                tp = _type_name(hints[key])
                raise FieldConfigError(dotted, value, f"{{given}}: '{dotted}' must be {tp}, not "
                                       f"{type(value).__name__}.", reason=f"must be {tp}") from None
    return cfg


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FieldConfigError("config", str(path), f"{path}: config file not found. Check the path given to "
                               f"{{field}}.", reason="an existing file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}). Fix the syntax at the position shown.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping with sections {', '.join(SECTIONS)}.")
    return data


def parse_override(text: str) -> tuple[str, str, str]:
    """Split ``section.key=value`` into its parts (value still a string)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set train.batch_size=128.")
    dotted, value = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2:
        raise ConfigError(
            f"--set {text!r}: the key must be section.key with a section among {', '.join(SECTIONS)}, "
            f"e.g. --set train.batch_size=128."
        )
    return parts[0], parts[1], value


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``--set section.key=value`` overrides; values are parsed as YAML scalars."""
    for text in overrides:
        section, key, raw = parse_override(text)
        if section not in SECTIONS:
            raise ConfigError(f"--set {text!r}: unknown section {section!r}.{suggest(section, list(SECTIONS))}")
        obj = getattr(cfg, section)
        hints = typing.get_type_hints(type(obj))
        if key not in hints:
            _refuse_retired(type(obj), section, key, "--set")
            valid = [f"{section}.{f.name}" for f in dataclasses.fields(obj)]
            raise ConfigError(f"--set {text!r}: unknown key '{section}.{key}'.{suggest(f'{section}.{key}', valid)}")
        tp = hints[key]
        value: Any = raw if tp is str else yaml.safe_load(raw) if raw.strip() else None
        setattr(obj, key, coerce_field(value, tp, f"{section}.{key}", "--set"))
    return cfg


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A named config file shipped with ganvae (``src/ganvae/presets/NAME.yaml``): an original script's settings."""

    name: str
    model_name: str
    description: str
    path: Path


def _presets_dir() -> Path:
    return Path(__file__).parent / "presets"


def list_presets() -> list[Preset]:
    """Every shipped preset, by name."""
    out = []
    for path in sorted(_presets_dir().glob("*.yaml")):
        data = load_yaml(path)
        out.append(Preset(path.stem, data["model_name"], " ".join(str(data.get("description", "")).split()), path))
    return out


def get_preset(name: str) -> Preset:
    presets = {p.name: p for p in list_presets()}
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}.{suggest(name, list(presets))} `ganvae config presets` lists them.")
    return presets[name]


def build_config(
    model_name: str,
    config_file: str | Path | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: list[str] | None = None,
    preset: str | None = None,
    base: ExperimentConfig | None = None,
    values: Mapping[str, Mapping[str, Any]] | None = None,
) -> ExperimentConfig:
    """Defaults -> preset -> YAML file -> command-line flags -> Python values -> ``--set`` overrides, all validated.

    Args:
        model_name: a registry name (``gan``, ``dcgan``, ...).
        config_file: optional YAML file.
        flags: ``{"train": {"epochs": 3}, ...}`` from dedicated flags; ``None`` values are skipped.
        overrides: ``["train.batch_size=128", ...]``.
        preset: a shipped preset's name (``tf-tutorial``); it must be one of ``model_name``'s.
        base: start from this config instead of the defaults (a resumed run's saved config).
        values: ``{"data": {"data_dir": "2024"}, ...}``: Python values (``ganvae.train``'s keywords), set as they
            are (:func:`merge_values`; a None sets null).
    """
    cfg = copy.deepcopy(base) if base is not None else default_config(model_name)
    if preset is not None:
        p = get_preset(preset)
        if p.model_name != model_name:
            raise ConfigError(f"preset {preset!r} is a {p.model_name} config, not {model_name}: "
                              f"use `ganvae train {p.model_name} --preset {preset}`.")
        cfg = merge_mapping(cfg, load_yaml(p.path), f"preset {preset} ({p.path})")
    if config_file is not None:
        cfg = merge_mapping(cfg, load_yaml(config_file), str(config_file))
    if flags:
        cleaned = {s: {k: v for k, v in kv.items() if v is not None} for s, kv in flags.items()}
        cfg = merge_mapping(cfg, {s: kv for s, kv in cleaned.items() if kv}, "command line")
    if values:
        cfg = merge_values(cfg, values)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return validate(cfg, "invalid setting")


def config_from_dict(data: Mapping[str, Any], source: str) -> ExperimentConfig:
    """Rebuild a full config from its ``to_dict()`` form (e.g. stored in a checkpoint)."""
    if "model_name" not in data:
        raise ConfigError(f"{source}: the config has no model_name.")
    cfg = default_config(data["model_name"])
    retired = getattr(type(cfg.model), "RETIRED", {})
    if isinstance(data.get("model"), Mapping) and retired.keys() & data["model"].keys():
        # a checkpoint written before those fields were removed: they never acted, so dropping them changes nothing
        data = {**data, "model": {k: v for k, v in data["model"].items() if k not in retired}}
    predates = getattr(type(cfg.model), "PREDATES", {})
    if isinstance(data.get("model"), Mapping) and predates.keys() - data["model"].keys():
        # a checkpoint written before those fields existed did what their absence means, not today's default
        data = {**data, "model": {**{k: v for k, v in predates.items() if k not in data["model"]}, **data["model"]}}
    return validate(merge_mapping(cfg, data, source), source)
