"""Real images from Python: ``ganvae.datasets.load(name, split)`` for digits to reconstruct, compare or show, and
the conversions that let ``ganvae.train(model, data=...)`` take your own images (a tensor or array, a
``torch.utils.data.Dataset``, or a folder), grey or colour.

Every value is checked before training starts: the shape, the dtype and range of the pixels, the labels against
the images; the error names the argument and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganvae.common.pixels import uint8_to_unit
from ganvae.data.arrays import LABEL_BOUND as LABEL_BOUND  # re-exported: the bound labels lie below
from ganvae.data.arrays import ArrayProblem, labels_int64, min_image_size, pixels_uint8
from ganvae.data.arrays import label_bound as label_bound
from ganvae.data.colour import pil_array
from ganvae.data.dataset import ImageData
from ganvae.errors import DataError, FieldConfigError, FieldDataError, suggest

if TYPE_CHECKING:
    from ganvae.data.sources import DatasetSource

SPLITS = ("train", "test")

# A torch Dataset declaring more items than this is refused before any item is read (it is read whole into
# memory; a Dataset that large cannot be, at any image size). Below it, the memory the read needs is checked
# against the machine's after the first item (its size is then known).
MAX_DATASET_ITEMS = 10**8


def load(name: str = "mnist-25k", split: str = "test", data_dir: str | os.PathLike | None = None,
         classes: list[int] | None = None, image_size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, C, H, W)`` float32 in [0, 1] (C 1 for grey, 3 for colour) and labels ``(N,)`` int64 of a named
    dataset's ``split`` (the names of ``ganvae data list``; ``mnist-25k``, ``mnist-5k`` and ``colour-digits`` ship
    with ganvae, the others are read from ``data_dir`` or the cache, or downloaded), of ``folder:PATH`` or of
    ``npz:PATH``. The channels are the data's own (a folder: RGB if any file is colour), as ``data.color=auto``.

        x, y = ganvae.datasets.load("mnist-25k", "test")
        ganvae.load("mnist-vae").reconstruct(x[:16])
        x, y = ganvae.datasets.load("colour-digits", "test", image_size=32)  # (5000, 3, 32, 32)

    Args:
        name: a dataset of ``ganvae data list``, ``folder:PATH`` (a folder of images; sub-folders are classes) or
            ``npz:PATH`` (an .npz of x_train, y_train, x_test, y_test, or images and labels).
        split: ``"train"`` or ``"test"``.
        data_dir: the folder holding a named dataset's files (default: the cache, downloading what it lacks).
        classes: keep only these class numbers (a list, e.g. ``[3, 5]``); default all.
        image_size: the side in pixels: a folder's images are resized to it; a named dataset comes in its own
            sizes (28; 32 for cifar10; 28, 32 or 64 for colour-digits), an .npz file in its images'.

    Every argument is checked before anything is read: a bad one is a :class:`~ganvae.errors.FieldError` naming
    it (an unknown name or a missing folder a ``DataError``, any other value a ``ConfigError``), with the valid
    values and the nearest valid name.
    """
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset

    source = _check_load_arguments(name, split, data_dir, classes, image_size)
    data = load_dataset(DataConfig(dataset=name, data_dir=None if data_dir is None else os.fspath(data_dir),
                                   image_size=image_size))
    if classes is not None:
        if source is None:  # a folder: its classes are known once it is read
            _check_classes(classes, data.classes, name)
        data = data.select_classes(list(classes))
    images, labels = ((data.train_images, data.train_labels) if split == "train"
                      else (data.test_images, data.test_labels))
    return uint8_to_unit(images), labels.clone()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_load_arguments(name: Any, split: Any, data_dir: Any, classes: Any,
                           image_size: Any) -> DatasetSource | None:
    """:func:`load`'s arguments, before anything is read; returns the named dataset's source (None for a
    folder)."""
    from ganvae.data.npz import is_npz, npz_path
    from ganvae.data.sources import SOURCES

    known = ", ".join(repr(s) for s in SOURCES)
    if not isinstance(name, str):
        raise FieldConfigError("name", name, f"{{given}}: give a dataset's name as a string: one of {known}, or "
                               f"'folder:PATH' for a folder of images.", reason="a dataset name")
    source = SOURCES.get(name)
    if name.startswith("folder:"):
        folder = Path(name.removeprefix("folder:")).expanduser()
        if not folder.is_dir():
            raise FieldDataError("name", name, f"{{given}}: {folder} is not a folder; give 'folder:PATH' with PATH a "
                                 f"folder of images (sub-folders are classes).", reason="no such folder")
    elif is_npz(name):
        if not npz_path(name).is_file():
            raise FieldDataError("name", name, f"{{given}}: {npz_path(name)} is not a file; give 'npz:PATH' with PATH "
                                 f"an .npz of x_train, y_train, x_test, y_test (or images and labels).",
                                 reason="no such file")
    elif source is None:
        raise FieldDataError("name", name, f"{{given}}: unknown dataset.{suggest(name, list(SOURCES), list_all=False)}"
                             f" Known datasets: {known}, 'folder:PATH' for a folder of images or 'npz:PATH' for an "
                             f".npz file (`ganvae data list`).", reason="a known dataset")
    if split not in SPLITS:
        raise FieldConfigError("split", split, f"{{given}}: choose 'train' or 'test'."
                               f"{suggest(str(split), list(SPLITS), list_all=False)}", reason="'train' or 'test'")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise FieldConfigError("data_dir", data_dir, f"{{given}}: give the folder as a str or pathlib.Path, or None "
                               f"for the cache ({type(data_dir).__name__} given).", reason="a folder path")
    smallest = min_image_size()
    if not _is_int(image_size) or image_size < smallest:
        raise FieldConfigError("image_size", image_size, f"{{given}}: give the side in pixels as a whole number, at "
                               f"least {smallest} (e.g. image_size=28).", reason=f"a whole number, at least {smallest}",
                               bound=smallest)
    if source is not None and image_size not in source.image_sizes:
        sizes = source.sizes_text()
        raise FieldConfigError("image_size", image_size, f"{{given}}: {name} images are {sizes} pixels a side and "
                               f"named datasets are not resized; "
                               + (f"drop {{field}} or pass image_size={source.image_size}"
                                  if len(source.image_sizes) == 1 else f"pass image_size={sizes}")
                               + " (folder:PATH images are resized).",
                               reason=f"{sizes} for {name}", bound=source.image_sizes)
    if classes is not None:
        if (not isinstance(classes, (list, tuple)) or not classes
                or not all(_is_int(c) and c >= 0 for c in classes)):
            example = f"[{classes}]" if _is_int(classes) else "[3, 5]"
            raise FieldConfigError("classes", classes, f"{{given}}: give a non-empty list of class numbers 0, 1, "
                                   f"2, ... (e.g. classes={example}), or None for all classes.",
                                   reason="a non-empty list of class numbers")
        if source is not None:
            _check_classes(classes, source.classes, name)
    return source


def _check_classes(classes: list[int] | tuple[int, ...], names: tuple[str, ...], dataset: str) -> None:
    bad = [int(c) for c in classes if c >= len(names)]
    if bad:
        numbered = names == tuple(str(i) for i in range(len(names)))  # digits: their names are their numbers
        shown = "" if numbered else (" (" + ", ".join(f"{i}={c}" for i, c in enumerate(names[:20]))
                                     + (", ..." if len(names) > 20 else "") + ")")
        raise FieldConfigError("classes", list(classes), f"{{given}}: {bad} out of range; {dataset} has classes "
                               f"0..{len(names) - 1}{shown}.", reason=f"0..{len(names) - 1}",
                               bound=len(names) - 1)


def _refused(what: str, problem: str, reason: str, value: Any = None, bound: Any = None) -> FieldDataError:
    """The error of a refused ``data`` value (the argument of ``ganvae.train``): ``what`` says which (``data
    (memory)``, ``data (MyDataset)``), ``problem`` what was found and the fix."""
    return FieldDataError("data", value, f"{what}: {problem}", reason=reason, bound=bound)


def to_uint8_images(images: Any, what: str = "data") -> torch.Tensor:
    """Grey or colour images, as a tensor or an array -> ``(N, C, H, W)`` uint8, C 1 (grey) or 3 (RGB).

    Layouts: ``(N, H, W)`` grey; ``(N, C, H, W)`` or ``(N, H, W, C)`` with C 1 or 3 (a shape that fits both is read
    by :func:`ganvae.data.arrays.image_layout`: the reading that gives square images, channels first where both
    do); other channel counts are refused (RGBA: drop or composite the alpha first). Square, at least 8 pixels a
    side, N >= 2. Accepted pixels: uint8 0-255; other integers in 0-255 (kept as they are); floats in [0, 1]
    (rounded to the nearest level); uint16, 16-bit levels 0-65535, scaled like a 16-bit PNG (``value * 255 /
    65535``, rounded; a uint16 array whose largest value is 1-255 is refused as ambiguous: pass 8-bit levels as
    uint8). A refusal is a :class:`~ganvae.errors.FieldDataError` of ``data`` (``what`` says which)."""
    try:
        return pixels_uint8(images)
    except ArrayProblem as err:
        raise _refused(what, err.problem, err.reason, err.value, err.bound) from None


def _labels(labels: Any, n: int, what: str) -> torch.Tensor:
    """Labels ``(n,)`` int64, checked (:func:`ganvae.data.arrays.labels_int64`: whole numbers, finite,
    non-negative, below :func:`label_bound`, one per image). The one check of labels given as a tensor or array and
    of a Dataset's (:func:`from_dataset` gathers those into an array first); no labels: every image is class 0."""
    try:
        return labels_int64(labels, n)
    except ArrayProblem as err:
        raise _refused(what, err.problem, err.reason, err.value, err.bound) from None


def from_images(images: Any, labels: Any = None, name: str = "memory", test_fraction: float = 0.1,
                seed: int = 0) -> ImageData:
    """Your images (and optional labels) as a dataset: a seeded ``test_fraction`` is held out as the test split
    (the in-training metrics and ``evaluate`` compare samples with it). Without labels every image is class 0.
    Pixels as :func:`to_uint8_images` takes them; labels whole numbers 0, 1, 2, ... below
    ``max(1000, number of images)`` (:data:`LABEL_BOUND`), one per image."""
    x = to_uint8_images(images, f"data ({name})")
    y = _labels(labels, len(x), f"data ({name})")
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction={test_fraction}: give a share between 0 and 1, e.g. 0.1.")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    k = int(y.max()) + 1 if len(y) else 1  # bounded by _labels
    return ImageData(name, tuple(str(c) for c in range(k)), x[train], y[train], x[test], y[test])


def _check_read_memory(n: int, first: np.ndarray, what: str) -> None:
    """Refuse a Dataset whose read would need more memory than the machine has left, knowing its first image."""
    from ganvae.common.memory import available_memory_bytes

    # per item, at the peak: the item's own array in the list and its copy in np.stack (2 x its bytes), the
    # float32 scaling of to_uint8_images and its rounded copy (8 bytes a pixel), the uint8 result (1 a pixel),
    # and about 300 bytes of Python objects (the array, its label)
    needed = n * (2 * first.nbytes + 9 * first.size + 300)
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise _refused(what, f"the Dataset declares {n:,} items of {'x'.join(map(str, first.shape))} {first.dtype} "
                       f"({first.nbytes:,} bytes each): reading it into memory needs about {needed / 2**30:,.1f} "
                       f"GB, more than the {available / 2**30:,.1f} GB this machine has available. Give fewer items "
                       f"(torch.utils.data.Subset(dataset, range(k))) or smaller images.",
                       "fits in memory", value=n, bound=available)


def from_dataset(dataset: torch.utils.data.Dataset, name: str | None = None, test_fraction: float = 0.1,
                 seed: int = 0) -> ImageData:
    """A ``torch.utils.data.Dataset`` whose items are an image, or ``(image, label)``: each image a tensor or an
    array ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` (C 1 or 3, as :func:`to_uint8_images` reads them), or a PIL
    image (grey, RGB; transparency composited on white, a palette expanded), all the same size. Read once into
    memory.

    Its declared ``len()`` is bounded before any item is read (at most :data:`MAX_DATASET_ITEMS`, and, once the
    first item shows the image size, no more than the machine's memory can hold); its labels are checked as
    labels given as a tensor are (:func:`from_images`)."""
    name = name or type(dataset).__name__
    what = f"data ({name})"
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise _refused(what, "the Dataset has no len(); give a map-style Dataset.", "a map-style Dataset") from None
    except (ValueError, OverflowError) as err:  # len() < 0, or over sys.maxsize
        raise _refused(what, f"the Dataset's len() failed ({err}); give a map-style Dataset whose len() is its "
                       f"number of items.", "a map-style Dataset") from None
    if n > MAX_DATASET_ITEMS:
        raise _refused(what, f"the Dataset declares {n:,} items, over the {MAX_DATASET_ITEMS:,} that are read into "
                       f"memory (every item is read before training); nothing was read. Give fewer items "
                       f"(torch.utils.data.Subset(dataset, range(k))), or check its __len__.",
                       f"at most {MAX_DATASET_ITEMS:,} items", value=n, bound=MAX_DATASET_ITEMS)
    if n < 2:
        raise _refused(what, f"the Dataset holds {n} item(s); give at least 2 images.", "at least 2 items",
                       value=n, bound=2)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for i in range(n):
        item = dataset[i]
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) >= 2 else (item, None)
        a = (np.asarray(image.detach().cpu()) if isinstance(image, torch.Tensor)
             else pil_array(image) if _is_pil(image) else np.asarray(image))
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]  # (1, H, W) -> (H, W)
        if images and a.shape != images[0].shape:
            raise _refused(what, f"item {i} is {a.shape}, item 0 {images[0].shape}; every image must have the same "
                           f"size.", "images of one size")
        if not images:
            _check_read_memory(n, a, what)
        images.append(a)
        if (label is None) != (not labels) and i:
            raise _refused(what, f"item {i} {'has' if label is not None else 'lacks'} a label, item 0 "
                           f"{'lacks' if label is not None else 'has'} one; give labels for all items or none.",
                           "labels for all items or none")
        if label is not None:
            value = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label)
            if value.size != 1:
                raise _refused(what, f"item {i}'s label has shape {value.shape}; give one class number per item "
                               f"(one-hot labels: their argmax).", "one class number per image")
            labels.append(value.reshape(()))
    # the labels as one array (N,), checked by from_images exactly as labels given as a tensor are
    return from_images(np.stack(images), np.array(labels) if labels else None, name=name,
                       test_fraction=test_fraction, seed=seed)


def _is_pil(value: Any) -> bool:
    """Whether ``value`` is a PIL image (without importing PIL where it is not)."""
    import sys

    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(value, pil.Image)


def as_image_data(data: Any, seed: int = 0) -> ImageData | str:
    """What ``ganvae.train(data=...)`` was given, as a dataset: an :class:`ImageData` as it is; a folder (a path,
    or ``folder:PATH``) as the ``data.dataset`` name ``folder:PATH`` to load like any other; a Dataset, a tensor or
    array of images, or ``(images, labels)``, in memory."""
    if isinstance(data, ImageData):
        return data
    if isinstance(data, (str, Path)):
        path = str(data).removeprefix("folder:")
        if not Path(path).expanduser().is_dir():
            raise DataError(f"data={str(data)!r}: not a folder; give a folder of images (sub-folders are classes).")
        return f"folder:{path}"
    if isinstance(data, torch.utils.data.Dataset):
        return from_dataset(data, seed=seed)
    if isinstance(data, tuple) and len(data) == 2:
        return from_images(data[0], data[1], name="memory", seed=seed)
    return from_images(data, name="memory", seed=seed)
