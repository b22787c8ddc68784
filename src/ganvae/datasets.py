"""Real images from Python: ``ganvae.datasets.load(name, split)`` for digits to reconstruct, compare or show, and
the conversions that let ``ganvae.train(model, data=...)`` take your own images (a tensor or array, a
``torch.utils.data.Dataset``, or a folder).

Every value is checked before training starts: the shape, the dtype and range of the pixels, the labels against
the images; the error names the argument and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganvae.common.pixels import uint8_to_unit
from ganvae.data.dataset import ImageData
from ganvae.errors import DataError

SPLITS = ("train", "test")


def load(name: str = "mnist-25k", split: str = "test", data_dir: str | Path | None = None,
         classes: list[int] | None = None, image_size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, H, W)`` float32 in [0, 1] and labels ``(N,)`` int64 of a named dataset's ``split`` (the
    names of ``ganvae data list``; ``mnist-25k`` and ``mnist-5k`` ship with ganvae, the others are read from
    ``data_dir`` or the cache, or downloaded), or of ``folder:PATH``.

        x, y = ganvae.datasets.load("mnist-25k", "test")
        ganvae.load("mnist-vae").reconstruct(x[:16])
    """
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset

    if split not in SPLITS:
        raise DataError(f"datasets.load(split={split!r}): choose 'train' or 'test'.")
    data = load_dataset(DataConfig(dataset=name, data_dir=None if data_dir is None else str(data_dir),
                                   classes=classes, image_size=image_size))
    images, labels = ((data.train_images, data.train_labels) if split == "train"
                      else (data.test_images, data.test_labels))
    return uint8_to_unit(images), labels.clone()


def to_uint8_images(images: Any, what: str = "data") -> torch.Tensor:
    """``(N, H, W)`` or ``(N, 1, H, W)`` images, uint8 0-255 (or other integers in that range) or floats in
    [0, 1], as a tensor or an array -> ``(N, 1, H, W)`` uint8 (floats rounded to the nearest grey level)."""
    try:
        x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{what}: expected images as a tensor or array of numbers, "
                        f"got {type(images).__name__}.") from None
    x = x.detach().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] < 2:
        raise DataError(f"{what}: images of shape {tuple(x.shape)}; give (N, H, W) or (N, 1, H, W) grey images, "
                        f"N >= 2 (colour images: convert them to grey first).")
    if x.shape[2] != x.shape[3] or x.shape[2] < 4:
        raise DataError(f"{what}: {x.shape[2]}x{x.shape[3]} images; the models take square images of at least 4 "
                        f"pixels a side (crop or resize them first, or use a folder: it is resized).")
    if x.dtype == torch.bool or x.is_complex():
        raise DataError(f"{what}: {x.dtype} images; give uint8 0-255 or floats in [0, 1].")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise DataError(f"{what}: the images hold NaN or infinite values.")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise DataError(f"{what}: float pixel values from {lo:.3g} to {hi:.3g}; floats must lie in [0, 1] "
                            f"(divide 0-255 values by 255, or pass them as uint8).")
        return (x.float() * 255).round().to(torch.uint8)
    if x.dtype != torch.uint8:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{what}: integer pixel values from {lo} to {hi}; give grey levels 0-255.")
    return x.to(torch.uint8)


def _labels(labels: Any, n: int, what: str) -> torch.Tensor:
    if labels is None:
        return torch.zeros(n, dtype=torch.long)
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).detach().cpu()
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise DataError(f"{what}: labels must be whole class numbers; got fractions.")
    y = y.reshape(-1).to(torch.long)
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} labels for {n} images; give one label per image (or none).")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{what}: label {int(y.min())}; labels are class numbers 0, 1, 2, ...")
    return y


def from_images(images: Any, labels: Any = None, name: str = "memory", test_fraction: float = 0.1,
                seed: int = 0) -> ImageData:
    """Your images (and optional labels) as a dataset: a seeded ``test_fraction`` is held out as the test split
    (the in-training metrics and ``evaluate`` compare samples with it). Without labels every image is class 0."""
    x = to_uint8_images(images, f"data ({name})")
    y = _labels(labels, len(x), f"data ({name})")
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction={test_fraction}: give a share between 0 and 1, e.g. 0.1.")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    k = int(y.max()) + 1 if len(y) else 1
    return ImageData(name, tuple(str(c) for c in range(k)), x[train], y[train], x[test], y[test])


def from_dataset(dataset: torch.utils.data.Dataset, name: str | None = None, test_fraction: float = 0.1,
                 seed: int = 0) -> ImageData:
    """A ``torch.utils.data.Dataset`` whose items are an image, or ``(image, label)``: each image a tensor, an
    array or a PIL image ``(H, W)`` or ``(1, H, W)``, all the same size. Read once into memory."""
    name = name or type(dataset).__name__
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(f"data ({name}): the Dataset has no len(); give a map-style Dataset.") from None
    images, labels = [], []
    for i in range(n):
        item = dataset[i]
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) >= 2 else (item, None)
        a = np.asarray(image)
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if images and a.shape != images[0].shape:
            raise DataError(f"data ({name}): item {i} is {a.shape}, item 0 {images[0].shape}; every image must "
                            f"have the same size.")
        images.append(a)
        if (label is None) != (not labels) and i:
            raise DataError(f"data ({name}): item {i} {'has' if label is not None else 'lacks'} a label, item 0 "
                            f"{'lacks' if label is not None else 'has'} one; give labels for all items or none.")
        if label is not None:
            labels.append(int(label))
    return from_images(np.stack(images), labels or None, name=name, test_fraction=test_fraction, seed=seed)


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
