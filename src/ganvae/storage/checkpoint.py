"""Checkpoints that describe themselves: safetensors weights + a JSON header.

One ``.safetensors`` file holds every tensor (model weights, optimiser moments, random
states, fixed noise) and, in its metadata, a JSON header: format and version, model name,
full config, step/epoch counters, optimiser hyper-parameters, data fingerprint, versions.
Loading parses tensors and JSON only (safetensors never unpickles), so a checkpoint
cannot execute code. Writes are atomic (temporary file, then rename).

Before any tensor is read, the tensors the file declares (names, shapes, dtypes: its safetensors header) are
compared with the model its own config builds on the meta device, so a header that declares a 2 GB tensor over a
sparse file is refused without allocating it. The header also carries a checksum of the tensors
(:func:`tensor_checksum`), checked once they are read, so flipped bytes are refused instead of trained on; a
checkpoint written before the checksum existed loads without one.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
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
CHECKSUM_KEY = "tensor_checksum"  # the header entry holding tensor_checksum() of the file's tensors
CHECKSUM_RULE = re.compile(r"blake2b-256:[0-9a-f]{64}")
FIX = "Use another checkpoint of the run (an earlier one in checkpoints/), or retrain."
MAX_STATES_PER_PARAMETER = 8  # tensors an optimiser keeps per parameter (Adam: step, exp_avg, exp_avg_sq)
MAX_RNG_STATE_BYTES = 1 << 16  # a generator's state: 5,056 bytes on the CPU, 16 on CUDA
MAX_CUDA_STATES = 256  # rng.cuda.<i>: one per GPU of the machine that wrote it
MAX_GROWN_ELEMENTS = 1 << 24  # a state the model holds empty until training fills it, one per training image (the
# pseudo-classes' assignments): 16.7M images, 134 MB of int64, far above the datasets here (EMNIST: 0.8M)


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
    # the moments come back contiguous; a channels-last weight's (the DCGAN's) must have its layout, or the fused
    # Adam step rounds differently in the last digit and a resumed run is not the uninterrupted one bit for bit
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    opt.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


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


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """``"blake2b-256:<hex>"`` over every tensor in name order: its name, dtype, shape and bytes (little-endian, as
    safetensors stores them). One pass over memory, cheap beside writing or reading the file."""
    digest = hashlib.blake2b(digest_size=32)
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{str(value.dtype).removeprefix('torch.')}\0{list(value.shape)}\0".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy())
    return f"blake2b-256:{digest.hexdigest()}"


def _write(path: str | Path, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> None:
    """Write ``tensors`` with ``header`` (and the tensors' checksum in it) atomically."""
    from safetensors.torch import save_file

    header = {**header, CHECKSUM_KEY: tensor_checksum(tensors)}
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata={"ganvae": json.dumps(header)}))


def rewrite_prior(ckpt: Checkpoint, header: dict[str, Any], model: torch.nn.Module) -> Path:
    """Write ``ckpt`` again, atomically, with ``header`` and ``model``'s latent prior replacing its own (a refit):
    every other tensor, the training state included, is kept byte for byte (the checksum is of the new set)."""
    kept = {k: v for k, v in ckpt.tensors.items() if not model_state.is_prior_key(k.removeprefix("model."))}
    kept.update({f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.prior_state(model).items()})
    _write(ckpt.path, kept, header)
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
    from ganvae._version import __version__

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "model_module": type(model).__module__,  # where the family's classes came from (a plugin's package)
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
    _write(path, tensors, header)
    return Path(path)


def load_checkpoint(path: str | Path, expected_model: str | None = None) -> Checkpoint:
    """Read a checkpoint (tensors and JSON only; no code runs): its JSON header is checked as a schema, the tensors
    it declares against the model its config builds (before any is read), then their checksum."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found.")
    found, metadata = tensorfile.read_layout(path, FIX)  # bounded by the file's size
    try:
        header = json.loads(metadata["ganvae"])
    except (KeyError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: a safetensors file but not a ganvae checkpoint (no ganvae header).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {header.get('format') if isinstance(header, dict) else None!r} is "
                              f"not {FORMAT!r}.")
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
    _check_layout(found, header, path)  # bounded by the model: only now are the tensors read
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({err}). The file is damaged or is not a ganvae checkpoint."
        ) from None
    stored = header.get(CHECKSUM_KEY)
    if stored is not None and tensor_checksum(tensors) != stored:
        raise CheckpointError(f"{path}: the tensor data does not match its checksum ({CHECKSUM_KEY} in the header): "
                              f"the file was damaged after it was written (a disk, copy or transfer error) or "
                              f"edited. {FIX}")
    return Checkpoint(header, tensors, path)


def _check_layout(found: dict[str, tuple[str, tuple[int, ...]]], header: dict[str, Any], path: Path) -> None:
    """Refuse, before any tensor is read, a file whose tensors (names, shapes, dtypes, as its safetensors header
    declares them) are not those of the model its own config builds, on the meta device (no memory):

    - ``model.*``: exactly the model's state (the latent prior's keys may be absent: written before it existed; a
      state the model holds empty, filled by training, may have up to :data:`MAX_GROWN_ELEMENTS`);
    - ``optim.<name>.<i>.<field>``: optimiser ``name`` of the model, ``i`` one of its parameters, the shape that
      parameter's or a scalar's, at most :data:`MAX_STATES_PER_PARAMETER` per parameter and as many values per
      parameter value in all (a plugin's optimiser that takes no meta tensors: any parameter's shape);
    - ``fixed_noise`` ``(run.n_fixed, latent width)``; ``rng.torch`` and ``rng.cuda.<i>``: byte tensors of at most
      :data:`MAX_RNG_STATE_BYTES`; nothing else.

    So what loading then allocates is bounded by the model, whatever the file's (sparse) size says."""
    from ganvae.config import config_from_dict
    from ganvae.registry import build_model

    cfg = config_from_dict(header["config"], str(path))
    image_shape = tuple(header.get("image_shape") or (1, cfg.data.image_size, cfg.data.image_size))
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # the caller's random stream stays as it was
        skeleton = build_model(cfg, image_shape)
        try:
            optimizers: dict[str, list[tuple[int, ...]]] | None = {
                name: [tuple(p.shape) for group in opt.param_groups for p in group["params"]]
                for name, opt in skeleton.make_optimizers().items()}
        except Exception:  # a plugin's optimiser that takes no meta tensors: any parameter's shape, below
            optimizers = None
    expected = {f"model.{k}": v for k, v in skeleton.state_dict().items()}
    for key, value in list(expected.items()):  # held empty until training fills it: its length is the data's
        shape = found.get(key, (None, ()))[1]
        if 0 in value.shape and len(shape) == value.dim() and math.prod(shape) <= MAX_GROWN_ELEMENTS and all(
                a == b for a, b in zip(shape, value.shape) if b):
            expected[key] = torch.empty(shape, dtype=value.dtype, device="meta")
    if not any(model_state.is_prior_key(k.removeprefix("model.")) for k in found if k.startswith("model.")):
        expected = {k: v for k, v in expected.items() if not model_state.is_prior_key(k.removeprefix("model."))}
    problems = tensorfile.layout_problems({k: v for k, v in found.items() if k.startswith("model.")}, expected)
    parameters = [tuple(p.shape) for p in skeleton.parameters()]
    per_parameter: dict[tuple[str, int], int] = {}
    optimizer_elements = 0
    for key, (dtype, shape) in sorted(found.items()):
        if key.startswith("model."):
            continue
        parts = key.split(".")
        if parts[0] == "optim":
            if len(parts) != 4 or not (parts[2].isascii() and parts[2].isdigit()):
                problems.append(f"unexpected {key}")
                continue
            name, index = parts[1], int(parts[2])
            own = parameters if optimizers is None else optimizers.get(name)
            optimizer_elements += math.prod(shape)
            if own is None:
                problems.append(f"{key}: the model has no optimiser {name!r}")
            elif index >= len(own):
                problems.append(f"{key}: optimiser {name!r} has {len(own)} parameters")
            elif shape != () and (shape not in parameters if optimizers is None else shape != own[index]):
                want = "a parameter's" if optimizers is None else list(own[index])
                problems.append(f"{key} {list(shape)} (expected {want} or a scalar)")
            else:
                per_parameter[name, index] = per_parameter.get((name, index), 0) + 1
                if per_parameter[name, index] == MAX_STATES_PER_PARAMETER + 1:
                    problems.append(f"optim.{name}.{index}: more than {MAX_STATES_PER_PARAMETER} tensors")
        elif key == "fixed_noise":
            want = (cfg.run.n_fixed, skeleton.latent_prior.dim)
            if shape != want:
                problems.append(f"fixed_noise {list(shape)} (expected {list(want)})")
            elif dtype not in tensorfile.FLOAT_DTYPES:
                problems.append(f"fixed_noise is {dtype} (expected a float tensor)")
        elif key == "rng.torch" or (key.startswith("rng.cuda.") and len(parts) == 3 and parts[2].isascii()
                                    and parts[2].isdigit() and int(parts[2]) < MAX_CUDA_STATES):
            if dtype != "U8" or len(shape) != 1 or shape[0] > MAX_RNG_STATE_BYTES:
                problems.append(f"{key} {dtype} {list(shape)} (expected a random state: U8, at most "
                                f"{MAX_RNG_STATE_BYTES:,} bytes)")
        else:
            problems.append(f"unexpected {key}")
    budget = MAX_STATES_PER_PARAMETER * sum(math.prod(s) for s in parameters)
    if optimizer_elements > budget:  # every optimiser together (a plugin's, checked by shape only, above all)
        problems.append(f"the optimisers' state declares {optimizer_elements:,} values, more than "
                        f"{MAX_STATES_PER_PARAMETER} per parameter value ({budget:,})")
    if problems:
        shown = problems[:6] + ([f"{len(problems) - 6} more"] if len(problems) > 6 else [])
        raise CheckpointError(f"{path}: the tensors its header declares do not fit a {header['model_name']} built "
                              f"from its own config ({'; '.join(shown)}); nothing was read. The file was damaged or "
                              f"edited. {FIX}")


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
    from ganvae.registry import NAME_RULE, model_names

    def bad(field: str, what: str) -> CheckpointError:
        return CheckpointError(f"{path}: the checkpoint header's {field!r} is {what}. The file was damaged or edited; "
                               f"use another checkpoint (or retrain).")

    if not isinstance(header, dict):
        raise bad("ganvae", "not a JSON object")
    name = header.get("model_name")
    config = header.get("config")
    if name not in model_names():
        module = header.get("model_module")
        if isinstance(name, str) and NAME_RULE.fullmatch(name) and isinstance(config, dict) \
                and config.get("model_name") == name:  # consistent: a plugin's run, the plugin not installed here
            raise tensorfile.unregistered_family(path, name, module if isinstance(module, str) else None)
        raise bad("model_name", f"{name!r}, not one of {', '.join(model_names())}")
    if not isinstance(config, dict):
        raise bad("config", "missing" if config is None else "not a mapping")
    if config.get("model_name") != name:
        raise bad("config.model_name", f"{config.get('model_name')!r} while the header says {name!r}")
    for field, (test, what) in _COUNTERS.items():
        if field in header and not test(header[field]):
            raise bad(field, f"{header[field]!r}; it must be {what}")
    if "step" in header and "step_in_epoch" in header and header["step_in_epoch"] > header["step"]:
        raise bad("step_in_epoch", f"{header['step_in_epoch']}, more than the step ({header['step']})")
    checksum = header.get(CHECKSUM_KEY)
    if checksum is not None and not (isinstance(checksum, str) and CHECKSUM_RULE.fullmatch(checksum)):
        raise bad(CHECKSUM_KEY, f"{checksum!r}, not 'blake2b-256:' and 64 hexadecimal digits")


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
    tensorfile.check_finite(state, ckpt.path, FIX)
    own_state = model.state_dict()
    kinds = [k for k in state if k in own_state and state[k].is_floating_point() != own_state[k].is_floating_point()]
    if kinds:
        raise CheckpointError(f"{ckpt.path}: tensor {kinds[0]!r} is {state[kinds[0]].dtype}, where the model holds "
                              f"{own_state[kinds[0]].dtype}; the file was edited or damaged. {FIX}")
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
