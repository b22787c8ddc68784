"""Checkpoints that describe themselves: safetensors weights + a JSON header.

One ``.safetensors`` file holds every tensor (model weights, optimiser moments, random
states, fixed noise) and, in its metadata, a JSON header: format and version, model name,
full config, step/epoch counters, optimiser hyper-parameters, data fingerprint, versions.
Loading parses tensors and JSON only (safetensors never unpickles), so a checkpoint
cannot execute code. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganvae.common.files import atomic_save
from ganvae.errors import CheckpointError
from ganvae.storage import model_state, tensorfile
from ganvae.storage.layout import run_checkpoint  # noqa: F401 (where a run keeps it; re-exported)

FORMAT = "ganvae-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    header: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    path: Path

    @property
    def model_name(self) -> str:
        return self.header["model_name"]

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.`` with the prefix removed."""
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict, header: dict) -> None:
    state = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    header.setdefault("optimizers", {})[name] = {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(name: str, opt: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    info = ckpt.header.get("optimizers", {}).get(name)
    if info is None:
        raise CheckpointError(f"{ckpt.path}: has no state for optimiser {name!r}; it was written by another model "
                              "or version.")
    state: dict[int, dict[str, Any]] = {}
    for key, value in ckpt.group(f"optim.{name}").items():
        idx, _, field = key.partition(".")
        state.setdefault(int(idx), {})[field] = value
    for idx, entry in info["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    try:
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{ckpt.path}: optimiser {name!r} does not fit this model ({err}).") from None


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global random states (torch CPU and CUDA as tensors, Python and NumPy as JSON)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def restore_rng_state(ckpt: Checkpoint) -> None:
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    cuda_states = [ckpt.tensors[k] for k in sorted(k for k in ckpt.tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    meta = ckpt.header.get("rng", {})
    if "python" in meta:
        v, state, gauss = meta["python"]
        random.setstate((v, tuple(state), gauss))
    if "numpy" in meta:
        kind, keys, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def rewrite_prior(ckpt: Checkpoint, header: dict[str, Any], model: torch.nn.Module) -> Path:
    """Write ``ckpt`` again, atomically, with ``header`` and ``model``'s latent prior replacing its own (a refit):
    every other tensor, the training state included, is kept byte for byte."""
    from safetensors.torch import save_file

    kept = {k: v for k, v in ckpt.tensors.items() if not model_state.is_prior_key(k.removeprefix("model."))}
    kept.update({f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.prior_state(model).items()})
    atomic_save(ckpt.path, lambda tmp: save_file(kept, str(tmp), metadata={"ganvae": json.dumps(header)}))
    return ckpt.path


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    model_name: str,
    config: dict,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    counters: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    extra_header: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically.

    Args:
        model: its ``state_dict()`` is stored under ``model.``.
        model_name: registry name; loading as another model is refused.
        config: the run's full config as a dict (``ExperimentConfig.to_dict()``).
        optimizers: name -> optimiser; their moments and hyper-parameters are stored.
        counters: step, epoch, step_in_epoch, elapsed time...
        extra_tensors: e.g. ``{"fixed_noise": z}``.
        extra_header: e.g. the data fingerprint.
    """
    from safetensors.torch import save_file

    from ganvae._version import __version__

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "config": config,
        "ganvae_version": __version__,
        "torch_version": torch.__version__,
        **(counters or {}),
        **(extra_header or {}),
    }
    for name, opt in (optimizers or {}).items():
        _flatten_optimizer(name, opt, tensors, header)
    rng_tensors, rng_meta = rng_state()
    tensors.update(rng_tensors)
    header["rng"] = rng_meta
    for k, v in (extra_tensors or {}).items():
        tensors[k] = v.detach().cpu().contiguous()
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata={"ganvae": json.dumps(header)}))
    return Path(path)


def load_checkpoint(path: str | Path, expected_model: str | None = None) -> Checkpoint:
    """Read a checkpoint (tensors and JSON only; no code runs) and check its format and model."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found.")
    tensorfile.read_header(path, "Use another checkpoint of the run (or retrain).")  # bounded by the file's size
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({err}). The file is damaged or is not a ganvae checkpoint."
        ) from None
    try:
        header = json.loads(metadata["ganvae"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: a safetensors file but not a ganvae checkpoint (no ganvae header).") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {header.get('format')!r} is not {FORMAT!r}.")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {header.get('format_version')} but this ganvae "
            f"({header.get('ganvae_version', '?')} wrote it) reads version {FORMAT_VERSION}. "
            "Use the ganvae version that wrote it."
        )
    _check_header(header, path)
    if expected_model is not None and header.get("model_name") != expected_model:
        raise CheckpointError(
            f"{path}: this is a checkpoint of model {header.get('model_name')!r}, not {expected_model!r}. "
            f"Use `ganvae train {header.get('model_name')} --resume`, or start a new run folder."
        )
    return Checkpoint(header, tensors, path)


# header fields every training checkpoint has: name -> (test, what it must be)
_COUNTERS = {
    "step": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "epoch": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "step_in_epoch": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "elapsed_seconds": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "a number >= 0"),
    "images_seen": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "image_shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(isinstance(i, int) and i > 0 for i in v),
                    "a list of 3 positive integers (C, H, W)"),
}


def _check_header(header: Any, path: Path) -> None:
    """Validate a checkpoint's JSON header as a schema: a damaged or hand-edited header is refused with the field
    named, instead of failing later as a KeyError or, worse, being used."""
    from ganvae.registry import model_names

    def bad(field: str, what: str) -> CheckpointError:
        return CheckpointError(f"{path}: the checkpoint header's {field!r} is {what}. The file was damaged or edited; "
                               f"use another checkpoint (or retrain).")

    if not isinstance(header, dict):
        raise bad("ganvae", "not a JSON object")
    name = header.get("model_name")
    if name not in model_names():
        raise bad("model_name", f"{name!r}, not one of {', '.join(model_names())}")
    config = header.get("config")
    if not isinstance(config, dict):
        raise bad("config", "missing" if config is None else "not a mapping")
    if config.get("model_name") != name:
        raise bad("config.model_name", f"{config.get('model_name')!r} while the header says {name!r}")
    for field, (test, what) in _COUNTERS.items():
        if field in header and not test(header[field]):
            raise bad(field, f"{header[field]!r}; it must be {what}")
    if "step" in header and "step_in_epoch" in header and header["step_in_epoch"] > header["step"]:
        raise bad("step_in_epoch", f"{header['step_in_epoch']}, more than the step ({header['step']})")


def restore_model(model: torch.nn.Module, ckpt: Checkpoint, refit_prior: bool = False) -> None:
    """Load the checkpoint's weights into ``model`` (strictly). A checkpoint from before the learned prior existed
    has no ``latent_prior`` tensors: the model's mixture then stays unfitted, and it draws from N(0, I) until
    ``ganvae fit-prior`` fits it. ``refit_prior`` (a resumed run, which fits its prior again when it ends): the
    stored mixture is dropped when the model's prior settings changed."""
    state = ckpt.group("model")
    own = model_state.prior_state(model)
    saved = {k: v for k, v in state.items() if model_state.is_prior_key(k)}
    fits = saved.keys() == own.keys() and all(saved[k].shape == own[k].shape for k in own)
    if not saved or (refit_prior and not fits):
        state = model_state.with_prior_of(model, state)
    fix = "Use another checkpoint of the run (an earlier one in checkpoints/), or retrain."
    tensorfile.check_finite(state, ckpt.path, fix)
    own_state = model.state_dict()
    kinds = [k for k in state if k in own_state and state[k].is_floating_point() != own_state[k].is_floating_point()]
    if kinds:
        raise CheckpointError(f"{ckpt.path}: tensor {kinds[0]!r} is {state[kinds[0]].dtype}, where the model holds "
                              f"{own_state[kinds[0]].dtype}; the file was edited or damaged. {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise CheckpointError(
            f"{ckpt.path}: the weights do not fit a {ckpt.model_name} built from this config ({' '.join(first)}). "
            f"Was the config changed (sizes, latent_dim) after the checkpoint was written?"
        ) from None


def restore_optimizers(optimizers: dict[str, torch.optim.Optimizer], ckpt: Checkpoint) -> None:
    for name, opt in optimizers.items():
        _restore_optimizer(name, opt, ckpt)
