"""Reader and writer for the IDX format of MNIST-like datasets (gzip or raw).

Layout (big-endian): two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, one int32 per dimension, then the data, row-major. MNIST images are magic
2051 (ubyte, 3 dims: count, rows, cols); labels are magic 2049 (ubyte, 1 dim: count).

Everything read is validated, and every problem raises :class:`DataError` with the file
name, what is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ganvae.errors import DataError

# type code -> numpy dtype (IDX stores multi-byte values big-endian)
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803  # 2051
LABELS_MAGIC = 0x00000801  # 2049
GZIP_MAGIC = b"\x1f\x8b"

_REFETCH = "Download it again (`ganvae data download NAME`) or copy a good copy of the file."


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file, transparently un-gzipping it (detected by content, not by name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror}).") from None
    if raw[:2] != GZIP_MAGIC:
        if path.suffix == ".gz":
            raise DataError(f"{path}: the name ends in .gz but the file is not gzip data. {_REFETCH}")
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(
            f"{path}: the gzip stream is truncated (the file ends early, {len(raw):,} bytes on disk). "
            f"The file is incomplete. {_REFETCH}"
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataError(f"{path}: the gzip data is corrupt ({err}). {_REFETCH}") from None


def parse_idx(raw: bytes, path: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking the header against the data length."""
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes; too short for an IDX header. The file is truncated. "
                        f"{_REFETCH}")
    zero, type_code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\0\0" or type_code not in IDX_DTYPES or ndim == 0:
        magic = struct.unpack(">I", raw[:4])[0]
        raise DataError(
            f"{path}: not an IDX file (magic number 0x{magic:08x}; expected 0x00000803 for images or "
            f"0x00000801 for labels). Check that the right file is at this path. {_REFETCH}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated inside its header ({len(raw)} bytes). {_REFETCH}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) < expected:
        raise DataError(
            f"{path}: truncated: the header declares {dims[0]:,} items of shape {tuple(dims[1:])} "
            f"({expected:,} bytes) but the data has only {len(raw):,} bytes. {_REFETCH}"
        )
    if len(raw) > expected:
        raise DataError(
            f"{path}: {len(raw) - expected:,} bytes more than the header declares ({dims[0]:,} items); "
            f"the file is corrupt or is not the file it claims to be. {_REFETCH}"
        )
    return np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header).reshape(dims)


def read_idx(path: str | os.PathLike, kind: str | None = None, num_classes: int | None = None) -> np.ndarray:
    """Read and validate an IDX file.

    Args:
        path: a ``.gz`` or raw IDX file.
        kind: ``"images"`` (magic 2051, uint8, 3 dims) or ``"labels"`` (magic 2049, uint8,
            1 dim); ``None`` accepts any valid IDX file.
        num_classes: for labels, the number of classes every label must be below.

    Returns:
        A read-only ``numpy`` array: images ``(N, rows, cols)`` uint8, labels ``(N,)`` uint8.
    """
    raw = read_bytes(path)
    array = parse_idx(raw, path)
    if kind is not None:
        magic = struct.unpack(">I", raw[:4])[0]
        expected_magic, expected_ndim = (IMAGES_MAGIC, 3) if kind == "images" else (LABELS_MAGIC, 1)
        if magic != expected_magic or array.ndim != expected_ndim:
            other = "labels" if kind == "images" else "images"
            if magic in (IMAGES_MAGIC, LABELS_MAGIC):
                raise DataError(f"{path}: wrong magic number {magic}: this is an IDX {other} file, where a {kind} file "
                                f"(magic {expected_magic}) belongs. Are the file names swapped? Put the {kind} file "
                                f"under this name (`ganvae data verify` checks each file).")
            raise DataError(f"{path}: expected an IDX {kind} file (magic {expected_magic}, {expected_ndim} dimensions) "
                            f"but found magic {magic} with {array.ndim} dimensions.")
        if kind == "labels" and num_classes is not None and array.size and int(array.max()) >= num_classes:
            raise DataError(
                f"{path}: label {int(array.max())} is out of range for {num_classes} classes; the file is corrupt. "
                f"{_REFETCH}"
            )
    return array


def check_pair(images: np.ndarray, labels: np.ndarray, images_path, labels_path) -> None:
    """Images and labels must describe the same number of samples."""
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} labels; "
            f"they must match. One of the two files is from another dataset or split: check both."
        )


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    for code, dtype in IDX_DTYPES.items():
        if dtype.kind == array.dtype.kind and dtype.itemsize == array.dtype.itemsize:
            break
    else:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write an IDX file; gzip-compressed when ``compress`` (default: the name ends in ``.gz``)."""
    path = Path(path)
    data = encode_idx(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


KERAS_KEYS = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}


def read_keras_npz(path: str | os.PathLike, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """The four arrays of Keras' ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``), validated like
    IDX files: images ``(N, rows, cols)`` uint8, labels ``(N,)`` below ``num_classes``. Read without pickle, so
    a crafted file cannot run code."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KERAS_KEYS.values() if k not in npz.files]
            if missing:
                raise DataError(f"{path}: not Keras' MNIST file: it lacks the arrays {', '.join(missing)} "
                                f"(it holds {', '.join(npz.files) or 'none'}). {_REFETCH}")
            arrays = {role: npz[key] for role, key in KERAS_KEYS.items()}
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as err:  # not a zip, truncated, or object arrays that need pickle
        raise DataError(f"{path}: cannot be read as a .npz file ({err}). {_REFETCH}") from None
    for role, array in arrays.items():
        ndim = 3 if role.endswith("images") else 1
        if array.dtype != np.uint8 or array.ndim != ndim:
            raise DataError(f"{path}: {KERAS_KEYS[role]} should be uint8 with {ndim} dimensions, found {array.dtype} "
                            f"with shape {array.shape}. {_REFETCH}")
        if role.endswith("labels") and num_classes is not None and array.size and int(array.max()) >= num_classes:
            raise DataError(f"{path}: {KERAS_KEYS[role]} holds label {int(array.max())}, out of range for "
                            f"{num_classes} classes; the file is corrupt. {_REFETCH}")
    return arrays
