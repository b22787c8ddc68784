"""Images and labels held as arrays: the checks and conversions shared by images given from Python
(:mod:`ganvae.datasets`) and arrays read from files (``.npz``), and the splits a reader returns.

A problem is raised as :class:`ArrayProblem` (what was found and the fix, without saying where the array came
from); each caller words it for its user: the ``data`` argument from Python, the file and key of an ``.npz``.

Layouts. An images array is ``(N, H, W)`` (grey), ``(N, C, H, W)`` or ``(N, H, W, C)`` with C 1 (grey) or 3 (RGB).
A 4-dimensional shape is read by :func:`image_layout`: channels first when dimension 1 is 1 or 3, channels last when
the last one is; where both are (``(N, 3, 32, 3)``), the reading that gives a square image, and channels first
(torch's layout) where both do, which happens only for ``(N, 1, 1, 1)`` and ``(N, 3, 3, 3)`` (images far below the
smallest size ganvae takes, so refused either way).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ganvae.data.colour import CHANNELS, scale_16bit

# Labels given with your own images lie below max(LABEL_BOUND, number of images): a label L makes L + 1 classes
# (a class name each, and a conditional model's embedding row each), so one stray 10**12 would build 10**12 class
# names before anything else failed. 1,000 leaves room for sparse class numbers in a small dataset.
LABEL_BOUND = 1000


class Splits(NamedTuple):
    """The train and test split of a dataset as a reader returns them: images ``(N, C, H, W)`` uint8, labels
    ``(N,)`` int64 (numpy arrays)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class ArrayProblem(Exception):
    """An array of images or labels that cannot be used: ``problem`` says what was found and the fix, ``reason``
    the rule in a few words; ``value`` and ``bound`` where there are some."""

    def __init__(self, problem: str, reason: str, value: Any = None, bound: Any = None):
        super().__init__(problem)
        self.problem, self.reason, self.value, self.bound = problem, reason, value, bound


def min_image_size() -> int:
    """The smallest image side ganvae takes: ``data.image_size``'s lower bound (on its field, in
    :class:`ganvae.config.DataConfig`)."""
    from ganvae.bounds import field_bounds
    from ganvae.config import DataConfig

    lo = field_bounds(DataConfig)["image_size"].lo
    assert lo is not None
    return int(lo)


def label_bound(n_images: int) -> int:
    """The bound labels given with ``n_images`` images lie below: ``max(LABEL_BOUND, n_images)``."""
    return max(LABEL_BOUND, n_images)


def image_layout(shape: tuple[int, ...]) -> str | None:
    """``"NCHW"`` or ``"NHWC"`` for a 4-dimensional images shape (the rule in this module's docstring), or None
    when neither dimension 1 nor the last is 1 or 3."""
    _, a, b, c = shape
    first, last = a in CHANNELS, c in CHANNELS
    if first and last:
        return "NCHW" if b == c or a != b else "NHWC"  # the square reading; channels first when both are square
    return "NCHW" if first else "NHWC" if last else None


def as_nchw(x: torch.Tensor) -> torch.Tensor:
    """Images ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` (C 1 or 3) -> a view ``(N, C, H, W)``."""
    if x.dim() == 3:
        return x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    if x.dim() != 4:
        raise ArrayProblem(f"images of shape {tuple(x.shape)}; give (N, H, W) grey images, or (N, C, H, W) or "
                           f"(N, H, W, C) with C = 1 (grey) or 3 (RGB), N >= 2.", "(N, H, W) or (N, C, H, W) images")
    layout = image_layout(tuple(x.shape))
    if layout is None:
        raise ArrayProblem(f"images of shape {tuple(x.shape)}: neither dimension 1 nor the last holds 1 (grey) or 3 "
                           f"(RGB) channels, the channel counts ganvae takes. RGBA: drop or composite the alpha "
                           f"(images[..., :3] channels last, images[:, :3] channels first); other channel counts: "
                           f"keep 1 or 3 of them.", "1 or 3 channels", value=tuple(x.shape))
    return x if layout == "NCHW" else x.permute(0, 3, 1, 2)


def pixels_uint8(images: Any) -> torch.Tensor:
    """Images as a tensor or array -> ``(N, C, H, W)`` uint8 (C 1 or 3, layouts as :func:`as_nchw` reads them),
    square, at least :func:`min_image_size` a side, N >= 2. Accepted pixels: uint8 0-255; other integers in 0-255
    (kept as they are); floats in [0, 1] (rounded to the nearest level); uint16, 16-bit levels 0-65535, scaled like
    a 16-bit PNG (``value * 255 / 65535``, rounded; a uint16 array whose largest value is 1-255 is refused as
    ambiguous: pass 8-bit levels as uint8). Raises :class:`ArrayProblem`."""
    try:
        if isinstance(images, torch.Tensor):
            x = images
        else:
            array = np.asarray(images)
            if array.dtype.byteorder == ">":  # torch takes native byte order only
                array = array.astype(array.dtype.newbyteorder("="))
            x = torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError):
        raise ArrayProblem(f"expected images as a tensor or array of numbers, got {type(images).__name__}.",
                           "images as numbers") from None
    x = as_nchw(x.detach().cpu())
    if x.shape[0] < 2:
        raise ArrayProblem(f"images of shape {tuple(x.shape)}; give at least 2 images (N >= 2).", "at least 2 images",
                           value=x.shape[0], bound=2)
    smallest = min_image_size()
    if x.shape[2] != x.shape[3] or x.shape[2] < smallest:
        raise ArrayProblem(f"{x.shape[2]}x{x.shape[3]} images; the models take square images of at least {smallest} "
                           f"pixels a side (crop or resize them first, or use a folder: it is resized).",
                           f"square images, at least {smallest}x{smallest}")
    if x.dtype == torch.bool or x.is_complex():
        raise ArrayProblem(f"{x.dtype} images; give uint8 0-255 or floats in [0, 1].", "uint8 or float pixels")
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ArrayProblem("the images hold NaN or infinite values.", "finite pixels")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ArrayProblem(f"float pixel values from {lo:.3g} to {hi:.3g}; floats must lie in [0, 1] (divide "
                               f"0-255 values by 255, or pass them as uint8).", "floats in [0, 1]")
        return (x.float() * 255).round().to(torch.uint8).contiguous()
    if x.dtype == torch.uint8:
        return x.contiguous()
    levels = x.contiguous().numpy()  # torch has no min/max for uint16/32/64; numpy has
    lo, hi = int(levels.min()), int(levels.max())
    if x.dtype == torch.uint16:  # 16-bit levels, as np.asarray(Image.open(a 16-bit PNG)) gives them
        if 0 < hi <= 255:
            raise ArrayProblem(f"uint16 images with values 0 to {hi}: read as 16-bit levels (0-65535, scaled to "
                               f"0-255 like a 16-bit PNG) they would be almost black. If they are 8-bit levels, pass "
                               f"images.astype(np.uint8) (or .to(torch.uint8)); if they are 16-bit, pass "
                               f"images / 65535 as floats.", "16-bit levels", value=hi)
        return torch.from_numpy(scale_16bit(levels))
    if lo < 0 or hi > 255:
        raise ArrayProblem(f"integer pixel values from {lo} to {hi}; give grey levels 0-255 (each channel's levels "
                           f"0-255 for RGB; uint16 for 16-bit levels 0-65535).", "levels 0-255")
    return x.to(torch.uint8).contiguous()


_KINDS = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates", "m": "durations",
          "V": "records"}


def labels_int64(labels: Any, n: int) -> torch.Tensor:
    """Labels ``(n,)`` int64, checked: whole numbers (ints, bools, or floats without fractions), finite,
    non-negative, below :func:`label_bound`, one per image (``(n,)`` or ``(n, 1)``). No labels: every image is
    class 0. Raises :class:`ArrayProblem`."""
    if labels is None:
        return torch.zeros(n, dtype=torch.long)
    if isinstance(labels, torch.Tensor):
        y = labels.detach().cpu()
        a = (y.float() if y.dtype in (torch.float16, torch.bfloat16) else y).numpy()  # numpy has no bfloat16
    else:
        try:
            a = np.asarray(labels)
        except (TypeError, ValueError):  # a ragged list, e.g. [1, [2, 3]]
            raise ArrayProblem("labels must be whole class numbers, one per image; got a ragged list.",
                               "one class number per image") from None
    if a.dtype.kind not in "biuf":
        raise ArrayProblem(f"labels must be whole class numbers; got {_KINDS.get(a.dtype.kind, str(a.dtype))} "
                           f"({a.dtype}). Map class names to numbers 0, 1, 2, ... first.", "whole class numbers")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]  # (N, 1) -> (N,)
    if a.ndim != 1:
        raise ArrayProblem(f"labels of shape {a.shape}; give one class number per image, shape (N,) (one-hot "
                           f"labels: labels.argmax(1)).", "one class number per image")
    if len(a) != n:
        raise ArrayProblem(f"{len(a)} labels for {n} images; give one label per image (or none).",
                           "one label per image", value=len(a), bound=n)
    if not len(a):
        return torch.zeros(0, dtype=torch.long)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ArrayProblem("the labels hold NaN or infinite values; labels are class numbers 0, 1, 2, ...",
                               "finite class numbers")
        if not np.array_equal(a, np.round(a)):
            fraction = float(a[a != np.round(a)][0])
            raise ArrayProblem(f"labels must be whole class numbers; got fractions (e.g. {fraction:g}).",
                               "whole class numbers", value=fraction)
    lo, hi = a.min(), a.max()
    if lo < 0:
        raise ArrayProblem(f"label {int(lo)}; labels are class numbers 0, 1, 2, ...", "0 or more", value=int(lo),
                           bound=0)
    bound = label_bound(n)
    if hi >= bound:  # before any class name or embedding row is made for it
        where = int(np.argmax(a))
        raise ArrayProblem(f"label {int(hi):,} (at index {where}) is too large: labels are class numbers 0, 1, 2, "
                           f"... below max({LABEL_BOUND:,}, number of images) = {bound:,}, and a label L makes L + 1 "
                           f"classes. Number the classes 0..K-1, e.g. labels = np.unique(labels, "
                           f"return_inverse=True)[1].", f"below {bound:,}", value=int(hi), bound=bound)
    return torch.from_numpy(a.astype(np.int64))  # a copy: the tensor owns its memory


def per_class_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """The indices of the first ``n`` items of each class, in their order (how ``mnist-5k`` is cut)."""
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:n]] = True
    return np.flatnonzero(keep)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(test indices, train indices)`` of ``n`` items: a seeded ``test_fraction`` held out (folders and
    ``.npz`` files without their own split; none of a single item)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction)) if n > 1 else 0
    return order[:n_test], order[n_test:]
