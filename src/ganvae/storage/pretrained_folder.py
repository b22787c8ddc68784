"""Pretrained model folders: what sampling needs, in a documented format shared by the shipped zoo and user exports.

A folder holds three files (after diffusers' ``save_pretrained``):

- ``config.json``: ``format`` ("ganvae-pretrained"), ``format_version``, ``model_name``, the model's full config
  (``model``), the data it was trained on (``data``: dataset, classes, image_size), ``image_shape``, the tensors'
  ``dtype``, and where it came from (``source``: the training command, steps, minutes, machine);
- ``model.safetensors``: the sampling networks only (``generator``, or ``encoder`` and ``decoder``...), their
  moving averages where the run kept them; ``float16`` by default (loaded back into float32);
- ``README.md``: the model card (recipe, data, budget, machine, measured metrics and their protocol, licence,
  intended use).

Loading reads JSON and tensors only: no code from the folder runs. The zoo (:mod:`ganvae.storage.zoo`) ships in
``ganvae/pretrained/<name>/``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganvae.errors import CheckpointError
from ganvae.metrics.registry import upgrade_keys
from ganvae.storage import tensorfile

if TYPE_CHECKING:  # listing and reading the zoo's cards needs no torch (`ganvae models`)
    import torch

log = logging.getLogger(__name__)

FORMAT = "ganvae-pretrained"
FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "README.md")
MAX_CONFIG_BYTES = 1 << 20  # config.json of a shipped model is about 3 KB
MAX_IMAGE_SIDE = 1024  # pixels a side of the images a pretrained model was trained on


def save_pretrained(model, config, out: str | Path, dtype: str = "float16", source: dict | None = None,
                    card: str | None = None) -> Path:
    """Write ``model``'s sampling networks (their inference versions: EMA copies where kept) as a pretrained folder.

    Args:
        model: a trained :class:`~ganvae.models.base.GenerativeModel`.
        config: its :class:`~ganvae.config.ExperimentConfig`.
        dtype: ``float16`` (half the size; measured not to move the metrics, see the zoo's cards) or ``float32``.
        source: how it was trained (command, steps, seconds, machine), stored in config.json.
        card: the README.md text; default a short card from the config.
    """
    from safetensors.torch import save_file

    from ganvae._version import __version__
    from ganvae.common.files import atomic_save, atomic_write_text
    from ganvae.storage import model_state

    if dtype not in ("float16", "float32"):
        raise CheckpointError(f"dtype {dtype!r}: choose float16 or float32.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()  # inference_network gives the EMA copies in eval mode
    tensors = {}
    for name in model.sampling_networks():
        for key, value in model.inference_network(name).state_dict().items():
            value = value.detach().cpu()
            if value.is_floating_point() and dtype == "float16":
                value = value.half()
            tensors[f"{name}.{key}"] = value.contiguous()
    for key, value in model_state.sampling_state(model).items():  # float32: a Cholesky factor loses too much in half
        tensors[key] = value.detach().cpu().contiguous()
    model.train(was_training)
    # the averaged weights are stored as the weights themselves
    model_cfg = model_state.export_settings(model, config.model)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_name": config.model_name,
        "model": model_cfg, "image_shape": list(model.image_shape),
        "data": {"dataset": config.data.dataset, "classes": config.data.classes, "image_size": config.data.image_size},
        "dtype": dtype, "ganvae_version": __version__, "source": source or {},
    }
    atomic_save(out / "model.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_text(out / "config.json", json.dumps(meta, indent=2) + "\n")
    if card is not None or not (out / "README.md").exists():
        atomic_write_text(out / "README.md", card if card is not None else default_card(meta))
    return out


def default_card(meta: dict[str, Any]) -> str:
    src = meta.get("source") or {}
    return (f"# {meta['model_name']} (ganvae)\n\nA `{meta['model_name']}` exported by `ganvae export`: the sampling "
            f"networks only, {meta['dtype']}.\n\n- data: {meta['data']['dataset']}, classes "
            f"{meta['data']['classes'] or 'all'}, {meta['data']['image_size']}x{meta['data']['image_size']}\n"
            f"- trained with: `{src.get('command', '?')}` ({src.get('steps', '?')} steps, "
            f"{src.get('train_seconds', '?')} s on {src.get('machine', '?')})\n\nLoad it with "
            f"`ganvae.load(\"PATH\")` or give PATH to any command that takes a run.\n")


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a pretrained folder, checked as a schema."""
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder}: no {name}; a pretrained folder holds {', '.join(FILES)} "
                                  f"(write one with `ganvae export RUN DIR`).")
    size = (folder / "config.json").stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{folder / 'config.json'}: {size:,} bytes, while a pretrained config takes a few KB "
                              f"(at most {MAX_CONFIG_BYTES // 1024} KB are read); re-export the model.")
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, and a number of thousands of digits
        raise CheckpointError(f"{folder / 'config.json'}: not valid JSON ({err}); re-export the model.") from None
    except RecursionError:
        raise CheckpointError(f"{folder / 'config.json'}: nested too deeply to be a pretrained config; "
                              f"re-export the model.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'config.json'}: not a ganvae pretrained config (format "
                              f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r}).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{folder / 'config.json'}: format version {meta.get('format_version')!r}, but this "
                              f"ganvae reads version {FORMAT_VERSION}; use the ganvae version that wrote it "
                              f"({meta.get('ganvae_version', '?')}), or re-export the model with this one.")
    for key, kind in (("model_name", str), ("model", dict), ("data", dict), ("image_shape", list)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{folder / 'config.json'}: {key!r} is missing or not a {kind.__name__}; re-export.")
    from ganvae.registry import model_names

    if meta["model_name"] not in model_names():  # a plugin's model, the plugin not installed here
        raise tensorfile.unregistered_family(folder / "config.json", meta["model_name"])
    shape = meta["image_shape"]
    if not (len(shape) == 3 and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            and shape[0] in (1, 3) and all(1 <= d <= MAX_IMAGE_SIDE for d in shape[1:])):
        raise CheckpointError(f"{folder / 'config.json'}: image_shape {shape!r} is not [C, H, W] with C 1 or 3 and "
                              f"H, W from 1 to {MAX_IMAGE_SIDE} pixels; re-export the model.")
    for key in ("metrics", "metrics_before_prior"):  # a card written by an older ganvae: its keys renamed (fid, ...)
        if isinstance(meta.get(key), dict):
            meta[key] = upgrade_keys(meta[key])
    return meta


def load_pretrained(folder: str | Path, device: torch.device | str = "cpu"):
    """``(model, ExperimentConfig)`` from a pretrained folder, in eval mode on ``device`` (float32)."""
    import torch
    from safetensors import safe_open

    from ganvae.config import config_from_dict
    from ganvae.registry import build_model
    from ganvae.storage import model_state

    folder = Path(folder)
    meta = read_config(folder)
    source = str(folder / "config.json")
    cfg = config_from_dict({"model_name": meta["model_name"], "model": meta["model"], "data": meta["data"]}, source)
    image_shape = tuple(meta["image_shape"])
    weights = folder / "model.safetensors"
    fix = "Re-export the model (`ganvae export RUN DIR`) or reinstall ganvae."
    header = tensorfile.read_header(weights, fix)  # the file's tensors lie inside it: bounded by its size
    # what config.json implies, on the meta device: names, shapes and dtypes, no memory (a config may ask for a
    # billion-unit layer; it is refused here, before anything is allocated)
    with torch.device("meta"):
        skeleton = build_model(cfg, image_shape)
    expected = {f"{n}.{k}": v for n in skeleton.sampling_networks()
                for k, v in getattr(skeleton, n).state_dict().items()}
    # the learned prior, pseudo-classes: absent in a folder from before them
    state = model_state.sampling_state(skeleton)
    nets = {k: v for k, v in header.items() if k.split(".")[0] in skeleton.sampling_networks()}
    tensorfile.compare_with_model(nets, expected, weights, f"the {meta['model_name']} of config.json",
                                  "config.json and model.safetensors come from different models (or one was "
                                  "edited); " + fix)
    stored = {k: v for k, v in header.items() if k not in nets}
    if stored:
        tensorfile.compare_with_model(stored, state, weights, f"the sampling state (learned prior, pseudo-classes) "
                                      f"of the {meta['model_name']} of config.json",
                                      "model.prior, prior_components, prior_covariance, latent_dim or "
                                      "self_conditioning differ from what was stored. Re-export the model, or refit "
                                      "its prior with `ganvae fit-prior`.")
    with torch.random.fork_rng(devices=[]):  # the throwaway initialisation must not move the caller's stream
        model = build_model(cfg, image_shape)
    try:
        with safe_open(str(weights), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors' own error type for damaged files
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err}); {fix}") from None
    tensorfile.check_finite(tensors, weights, fix)
    parts = model.sampling_networks()
    for name in parts:
        part = {k[len(name) + 1:]: v.float() if v.is_floating_point() else v
                for k, v in tensors.items() if k.startswith(name + ".")}
        try:
            getattr(model, name).load_state_dict(part, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"{weights}: the {name} weights do not fit the {meta['model_name']} "
                                  f"of config.json ({str(err).splitlines()[0]}); the two files come from different "
                                  f"models. Re-export the model.") from None
    rest = {k: v for k, v in tensors.items() if k.split(".")[0] not in parts}
    try:  # the learned prior, the pseudo-classes' shares; absent in a folder from before the prior existed
        model_state.load_sampling_state(model, rest)
    except ValueError as err:
        raise CheckpointError(f"{weights}: the sampling state beside the networks does not fit "
                              f"the {meta['model_name']} of config.json ({err}): model.prior, prior_components, "
                              f"prior_covariance, latent_dim or self_conditioning differ from what was stored. "
                              f"Re-export the model, or refit its prior with `ganvae fit-prior`.") from None
    return model.to(device).eval(), cfg
