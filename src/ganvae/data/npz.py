"""``.npz`` files of images and labels: ``--dataset npz:PATH`` (``data.dataset: npz:PATH``).

The file holds either Keras' four arrays, ``x_train``, ``y_train``, ``x_test``, ``y_test`` (its own split, as
``keras.datasets.cifar10.load_data()`` returns them), or ``images`` and (optionally) ``labels``, of which a seeded
``data.test_fraction`` is held out as the test split, as for folders. An optional ``class_names`` (1-D text) names
the classes. Images are taken as from Python (:func:`ganvae.data.arrays.pixels_uint8`: ``(N, H, W)``, ``(N, C, H,
W)`` or ``(N, H, W, C)``, C 1 or 3, uint8 or floats in [0, 1] or 16-bit) and are not resized (set
``data.image_size`` to their side); labels as :func:`ganvae.data.arrays.labels_int64` takes them (Keras' ``(N,
1)`` too). Read with ``allow_pickle=False``: an array of Python objects is refused, never unpickled.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ganvae.data.arrays import ArrayProblem, Splits, labels_int64, pixels_uint8, split_indices
from ganvae.errors import DataError

PREFIX = "npz:"
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
PLAIN_KEYS = ("images", "labels")
CLASS_NAMES = "class_names"

_FIX = ("Save it with np.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...) or np.savez(PATH, "
        "images=..., labels=...).")


def is_npz(dataset: str) -> bool:
    return dataset.startswith(PREFIX)


def npz_path(dataset: str) -> Path:
    """The file of ``npz:PATH``."""
    return Path(dataset.removeprefix(PREFIX)).expanduser()


def _images(array: np.ndarray, path: Path, key: str) -> np.ndarray:
    try:
        return pixels_uint8(array).numpy()
    except ArrayProblem as err:
        raise DataError(f"{path}: array {key!r}: {err.problem}") from None


def _labels(array: np.ndarray | None, n: int, path: Path, key: str) -> np.ndarray:
    try:
        return labels_int64(array, n).numpy()
    except ArrayProblem as err:
        raise DataError(f"{path}: array {key!r}: {err.problem}") from None


def array_sizes(path: Path) -> dict[str, int]:
    """Each array of the file -> its size in bytes once read (from the zip's directory, before anything is read)."""
    with zipfile.ZipFile(path) as z:
        return {info.filename.removesuffix(".npy"): info.file_size for info in z.infolist()}


def read_npz(path: str | os.PathLike, test_fraction: float = 0.1, seed: int = 0) -> tuple[Splits, tuple[str, ...]]:
    """The splits and class names of an ``.npz`` file (the layouts in this module's docstring), checked."""
    from ganvae.common.memory import check_available_memory

    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz:{path}: no such file. Give the .npz file as --dataset npz:PATH.")
    try:
        # the arrays, their float32 conversion where they are floats, and the uint8 result
        check_available_memory(6 * sum(array_sizes(path).values()), str(path),
                               "Save fewer or smaller images in it.")
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if set(KERAS_KEYS) <= keys:
                arrays: dict[str, Any] = {k: npz[k] for k in KERAS_KEYS}
            elif "images" in keys:
                arrays = {k: npz[k] for k in PLAIN_KEYS if k in keys}
            else:
                raise DataError(f"{path}: holds the arrays {', '.join(sorted(keys)) or 'none'}; expected x_train, "
                                f"y_train, x_test, y_test (Keras' layout) or images and labels. {_FIX}")
            names = npz[CLASS_NAMES] if CLASS_NAMES in keys else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # not a zip, truncated, or object arrays
        why = ("it holds arrays of Python objects, which would need pickle (never used to read data)"
               if "allow_pickle" in str(err) else str(err))
        raise DataError(f"{path}: cannot be read as a .npz file of arrays ({why}). {_FIX}") from None
    if "x_train" in arrays:
        x_train, x_test = _images(arrays["x_train"], path, "x_train"), _images(arrays["x_test"], path, "x_test")
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(f"{path}: x_train's images are {x_train.shape[1:]} (C, H, W) but x_test's "
                            f"{x_test.shape[1:]}; both splits must have the same size and channels. {_FIX}")
        splits = Splits(x_train, _labels(arrays["y_train"], len(x_train), path, "y_train"),
                        x_test, _labels(arrays["y_test"], len(x_test), path, "y_test"))
    else:
        images = _images(arrays["images"], path, "images")
        labels = _labels(arrays.get("labels"), len(images), path, "labels")
        test, train = split_indices(len(images), test_fraction, seed)
        splits = Splits(images[train], labels[train], images[test], labels[test])
    k = int(max(splits.train_labels.max(initial=0), splits.test_labels.max(initial=0))) + 1
    return splits, _class_names(names, k, path)


def _class_names(names: np.ndarray | None, k: int, path: Path) -> tuple[str, ...]:
    if names is None:
        return tuple(str(c) for c in range(k))
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) < k:
        raise DataError(f"{path}: array 'class_names' should be 1-D text with a name for each of the {k} classes "
                        f"(found {names.dtype} of shape {names.shape}). Save class_names=np.array(['cat', ...]), or "
                        f"leave it out (the classes are then numbered).")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
