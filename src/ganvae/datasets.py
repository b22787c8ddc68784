"""Real images from Python: ``ganvae.datasets.load(name, split)`` for digits to reconstruct, compare or show, and
the conversions that let ``ganvae.train(model, data=...)`` take your own images (a tensor or array, a
``torch.utils.data.Dataset``, or a folder).

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
from ganvae.data.dataset import ImageData, scale_16bit
from ganvae.errors import DataError, FieldConfigError, FieldDataError, suggest

if TYPE_CHECKING:
    from ganvae.data.sources import DatasetSource

SPLITS = ("train", "test")

# Labels given with your own images lie below max(LABEL_BOUND, number of images): a label L makes L + 1 classes
# (a class name each, and a conditional model's embedding row each), so one stray 10**12 would build 10**12 class
# names before anything else failed. 1,000 leaves room for sparse class numbers in a small dataset.
LABEL_BOUND = 1000

# A torch Dataset declaring more items than this is refused before any item is read (it is read whole into
# memory; a Dataset that large cannot be, at any image size). Below it, the memory the read needs is checked
# against the machine's after the first item (its size is then known).
MAX_DATASET_ITEMS = 10**8


def label_bound(n_images: int) -> int:
    """The bound labels given with ``n_images`` images lie below: ``max(LABEL_BOUND, n_images)``."""
    return max(LABEL_BOUND, n_images)


def load(name: str = "mnist-25k", split: str = "test", data_dir: str | os.PathLike | None = None,
         classes: list[int] | None = None, image_size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, H, W)`` float32 in [0, 1] and labels ``(N,)`` int64 of a named dataset's ``split`` (the
    names of ``ganvae data list``; ``mnist-25k`` and ``mnist-5k`` ship with ganvae, the others are read from
    ``data_dir`` or the cache, or downloaded), or of ``folder:PATH``.

        x, y = ganvae.datasets.load("mnist-25k", "test")
        ganvae.load("mnist-vae").reconstruct(x[:16])

    Args:
        name: a dataset of ``ganvae data list``, or ``folder:PATH`` (a folder of images; sub-folders are classes).
        split: ``"train"`` or ``"test"``.
        data_dir: the folder holding a named dataset's files (default: the cache, downloading what it lacks).
        classes: keep only these class numbers (a list, e.g. ``[3, 5]``); default all.
        image_size: the side in pixels: a folder's images are resized to it; a named dataset's must be its own
            (28).

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
    elif source is None:
        raise FieldDataError("name", name, f"{{given}}: unknown dataset.{suggest(name, list(SOURCES), list_all=False)}"
                             f" Known datasets: {known}, or 'folder:PATH' for a folder of images "
                             f"(`ganvae data list`).", reason="a known dataset")
    if split not in SPLITS:
        raise FieldConfigError("split", split, f"{{given}}: choose 'train' or 'test'."
                               f"{suggest(str(split), list(SPLITS), list_all=False)}", reason="'train' or 'test'")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise FieldConfigError("data_dir", data_dir, f"{{given}}: give the folder as a str or pathlib.Path, or None "
                               f"for the cache ({type(data_dir).__name__} given).", reason="a folder path")
    if not _is_int(image_size) or image_size < 4:
        raise FieldConfigError("image_size", image_size, "{given}: give the side in pixels as a whole number, at "
                               "least 4 (e.g. image_size=28).", reason="a whole number, at least 4", bound=4)
    if source is not None and image_size != source.image_size:
        raise FieldConfigError("image_size", image_size, f"{{given}}: {name} images are {source.image_size} pixels a "
                               f"side and named datasets are not resized; drop {{field}} or pass "
                               f"image_size={source.image_size} (folder:PATH images are resized).",
                               reason=f"{source.image_size} for {name}", bound=source.image_size)
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
    """``(N, H, W)`` or ``(N, 1, H, W)`` grey images, as a tensor or an array -> ``(N, 1, H, W)`` uint8. Accepted
    pixels: uint8 0-255; other integers in 0-255 (kept as they are); floats in [0, 1] (rounded to the nearest
    grey level); uint16, 16-bit grey levels 0-65535, scaled like a 16-bit PNG (``value * 255 / 65535``,
    rounded; a uint16 array whose largest value is 1-255 is refused as ambiguous: pass 8-bit levels as uint8)."""
    try:
        if isinstance(images, torch.Tensor):
            x = images
        else:
            array = np.asarray(images)
            if array.dtype.byteorder == ">":  # torch takes native byte order only
                array = array.astype(array.dtype.newbyteorder("="))
            x = torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError):
        raise _refused(what, f"expected images as a tensor or array of numbers, got {type(images).__name__}.",
                       "images as numbers") from None
    x = x.detach().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] < 2:
        raise _refused(what, f"images of shape {tuple(x.shape)}; give (N, H, W) or (N, 1, H, W) grey images, "
                       f"N >= 2 (colour images: convert them to grey first).", "(N, H, W) grey images")
    if x.shape[2] != x.shape[3] or x.shape[2] < 4:
        raise _refused(what, f"{x.shape[2]}x{x.shape[3]} images; the models take square images of at least 4 "
                       f"pixels a side (crop or resize them first, or use a folder: it is resized).",
                       "square images, at least 4x4")
    if x.dtype == torch.bool or x.is_complex():
        raise _refused(what, f"{x.dtype} images; give uint8 0-255 or floats in [0, 1].", "uint8 or float pixels")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise _refused(what, "the images hold NaN or infinite values.", "finite pixels")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise _refused(what, f"float pixel values from {lo:.3g} to {hi:.3g}; floats must lie in [0, 1] "
                           f"(divide 0-255 values by 255, or pass them as uint8).", "floats in [0, 1]")
        return (x.float() * 255).round().to(torch.uint8)
    if x.dtype == torch.uint8:
        return x
    levels = x.numpy()  # torch has no min/max for uint16/32/64; numpy has
    lo, hi = int(levels.min()), int(levels.max())
    if x.dtype == torch.uint16:  # 16-bit grey levels, as np.asarray(Image.open(a 16-bit PNG)) gives them
        if 0 < hi <= 255:
            raise _refused(what, f"uint16 images with values 0 to {hi}: read as 16-bit grey levels (0-65535, "
                           f"scaled to 0-255 like a 16-bit PNG) they would be almost black. If they are 8-bit grey "
                           f"levels, pass images.astype(np.uint8) (or .to(torch.uint8)); if they are 16-bit, pass "
                           f"images / 65535 as floats.", "16-bit grey levels", value=hi)
        return torch.from_numpy(scale_16bit(levels))
    if lo < 0 or hi > 255:
        raise _refused(what, f"integer pixel values from {lo} to {hi}; give grey levels 0-255 (or uint16 for "
                       f"16-bit levels 0-65535).", "grey levels 0-255")
    return x.to(torch.uint8)


_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates", "m": "durations",
          "V": "records"}


def _labels(labels: Any, n: int, what: str) -> torch.Tensor:
    """Labels ``(n,)`` int64, checked: whole numbers (ints, bools, or floats without fractions), finite,
    non-negative, below :func:`label_bound`, one per image (``(n,)`` or ``(n, 1)``). The one check of labels given
    as a tensor or array and of a Dataset's (:func:`from_dataset` gathers those into an array first); no labels:
    every image is class 0."""
    if labels is None:
        return torch.zeros(n, dtype=torch.long)
    if isinstance(labels, torch.Tensor):
        y = labels.detach().cpu()
        a = (y.float() if y.dtype in (torch.float16, torch.bfloat16) else y).numpy()  # numpy has no bfloat16
    else:
        try:
            a = np.asarray(labels)
        except (TypeError, ValueError):  # a ragged list, e.g. [1, [2, 3]]
            raise _refused(what, "labels must be whole class numbers, one per image; got a ragged list.",
                           "one class number per image") from None
    if a.dtype.kind not in "biuf":
        raise _refused(what, f"labels must be whole class numbers; got {_KINDS.get(a.dtype.kind, str(a.dtype))} "
                       f"({a.dtype}). Map class names to numbers 0, 1, 2, ... first.", "whole class numbers")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]  # (N, 1) -> (N,)
    if a.ndim != 1:
        raise _refused(what, f"labels of shape {a.shape}; give one class number per image, shape (N,) "
                       f"(one-hot labels: labels.argmax(1)).", "one class number per image")
    if len(a) != n:
        raise _refused(what, f"{len(a)} labels for {n} images; give one label per image (or none).",
                       "one label per image", value=len(a), bound=n)
    if not len(a):
        return torch.zeros(0, dtype=torch.long)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise _refused(what, "the labels hold NaN or infinite values; labels are class numbers 0, 1, 2, ...",
                           "finite class numbers")
        if not np.array_equal(a, np.round(a)):
            fraction = float(a[a != np.round(a)][0])
            raise _refused(what, f"labels must be whole class numbers; got fractions (e.g. {fraction:g}).",
                           "whole class numbers", value=fraction)
    lo, hi = a.min(), a.max()
    if lo < 0:
        raise _refused(what, f"label {int(lo)}; labels are class numbers 0, 1, 2, ...", "0 or more", value=int(lo),
                       bound=0)
    bound = label_bound(n)
    if hi >= bound:  # before any class name or embedding row is made for it
        where = int(np.argmax(a))
        raise _refused(what, f"label {int(hi):,} (at index {where}) is too large: labels are class numbers 0, 1, "
                       f"2, ... below max({LABEL_BOUND:,}, number of images) = {bound:,}, and a label L makes L + 1 "
                       f"classes. Number the classes 0..K-1, e.g. labels = np.unique(labels, return_inverse=True)[1].",
                       f"below {bound:,}", value=int(hi), bound=bound)
    return torch.from_numpy(a.astype(np.int64))  # a copy: the tensor owns its memory


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
    """A ``torch.utils.data.Dataset`` whose items are an image, or ``(image, label)``: each image a tensor, an
    array or a PIL image ``(H, W)`` or ``(1, H, W)``, all the same size. Read once into memory.

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
        a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
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
