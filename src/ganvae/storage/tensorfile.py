"""Safe reading of safetensors files (checkpoints and pretrained folders): the header is checked against the file
before any tensor is allocated, and the tensors against what the model expects before they are used.

The safetensors format (https://huggingface.co/docs/safetensors) is an 8-byte little-endian header length, a JSON
header ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the bytes. A header
can declare anything: a 4 KB sparse file may claim a 1 GB tensor. :func:`read_header` refuses a header whose
tensors do not lie inside the file, so what loading allocates is bounded by the file's size; and since a sparse file's
size costs no disk, readers then compare the declared names, shapes and dtypes with the model built on the meta
device (:func:`compare_with_model`) before reading any tensor, so what they allocate is bounded by the model.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from ganvae.errors import CheckpointError

MAX_HEADER_BYTES = 16 * 2**20  # the JSON header of any model here is a few KB
ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
              "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


def read_header(path: str | Path, fix: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` of a safetensors file, after checking that the header is well formed and that
    every tensor lies inside the file (no tensor bytes are read). ``fix`` ends each refusal (what the user can do)."""
    return read_layout(path, fix)[0]


def read_layout(path: str | Path, fix: str) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """As :func:`read_header`, and the file's ``__metadata__`` (``{str: str}``; a checkpoint's JSON header is its
    ``ganvae`` entry), so a reader can check the tensors against what the metadata describes before reading any."""
    path = Path(path)
    size = path.stat().st_size

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: {what}; the file is damaged or not a safetensors file. {fix}")

    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise bad(f"only {size} bytes")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise bad(f"its header declares {n:,} bytes, beyond the file ({size:,} bytes) or the "
                      f"{MAX_HEADER_BYTES // 2**20} MB a header may take")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise bad(f"its header is not valid JSON ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise bad("its metadata is not a mapping of strings")
    data_bytes = size - 8 - n
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise bad(f"tensor {name!r} has no description")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in ITEM_BYTES:
            raise bad(f"tensor {name!r} has dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                for d in shape)):
            raise bad(f"tensor {name!r} has shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise bad(f"tensor {name!r} has data offsets {offsets!r}")
        begin, end = offsets
        need = math.prod(shape) * ITEM_BYTES[dtype]
        if not 0 <= begin <= end <= data_bytes or end - begin != need:
            raise bad(f"tensor {name!r} declares {need:,} bytes at {begin:,}-{end:,}, but the file holds "
                      f"{data_bytes:,} bytes of data")
        out[name] = (dtype, tuple(shape))
    return out, metadata


def unregistered_family(path: str | Path, name: str, module: str | None = None) -> CheckpointError:
    """The refusal of an intact file (a run's checkpoint, a pretrained folder's config.json) of the model family
    ``name``, which no installed package registers here: a plugin's model opened where the plugin is not installed.
    ``module``: where the family's classes came from when the file was written, where it records that."""
    from ganvae.registry import model_names

    where = f" (its classes came from the Python module {module!r})" if module else ""
    return CheckpointError(
        f"{path}: a model of the plugin family {name!r}{where}, which is not installed or registered here (this "
        f"ganvae knows {', '.join(model_names())}). The file itself is intact: install the package that provides "
        f"{name!r} (its entry point in the group 'ganvae.models' registers it), or call "
        f"ganvae.register_model(name={name!r}, config=..., model=..., description=...) before loading it.")


def compare_with_model(found: dict[str, tuple[str, tuple[int, ...]]], expected: dict, path: Path, what: str,
                       fix: str) -> None:
    """Refuse, naming the first few differences, a file whose tensors are not those ``expected``
    (``{name: torch.Tensor}``, e.g. a state dict built on the meta device: shapes and dtypes, no memory)."""
    problems = layout_problems(found, expected)
    if problems:
        raise CheckpointError(f"{path}: the tensors do not fit {what} ({'; '.join(problems)}). {fix}")


def layout_problems(found: dict[str, tuple[str, tuple[int, ...]]], expected: dict) -> list[str]:
    """What differs between a file's tensors ``found`` (:func:`read_header`) and those ``expected``
    (``{name: torch.Tensor}``): missing and unexpected names, shapes, float where an integer tensor is wanted (or
    the reverse); the first three of each kind."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [f"{k} {list(found[k][1])} (expected {list(expected[k].shape)})" for k in sorted(set(found) & set(expected))
             if tuple(found[k][1]) != tuple(expected[k].shape)]
    kind = [f"{k} is {found[k][0]} (expected a {'float' if expected[k].is_floating_point() else 'integer'} tensor)"
            for k in sorted(set(found) & set(expected))
            if (found[k][0] in FLOAT_DTYPES) != expected[k].is_floating_point()]
    return ([f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")] if missing else []) + \
           ([f"unexpected {', '.join(unexpected[:3])}" + (" ..." if len(unexpected) > 3 else "")]
            if unexpected else []) + \
           wrong[:3] + kind[:3]


def check_finite(tensors: dict, path: Path, fix: str) -> None:
    """Refuse weights holding NaN or infinity (they would draw black or NaN images without a word)."""
    import torch

    for name, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"{path}: tensor {name!r} holds {bad:,} NaN or infinite value{'s' * (bad > 1)}; "
                                  f"the weights are damaged (or the run diverged before it was saved). {fix}")
