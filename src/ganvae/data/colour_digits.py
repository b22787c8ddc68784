"""``colour-digits``: the MNIST digits of ``mnist-25k`` in colour, made offline, the same bytes on every machine.

The recipe (one image; every number drawn from a seeded generator, ``numpy.random.default_rng([RECIPE_SEED,
split])``, split 0 train and 1 test, ``DRAWS`` uniform numbers and a 5x5 grid of texture noise per image, drawn for
the whole split at once so that an image's colours do not depend on the size or on which images are kept):

1. **The digit** is mnist-25k's 28x28 grey image, used as the stroke's coverage (alpha = level / 255). At 28 pixels
   as it is; at 32 padded with 2 empty pixels each side (LeNet's 32x32 MNIST); at 64 upsampled 2x (bilinear, in
   exact integer arithmetic) to 56 and padded with 4.
2. **Contrast first.** Half the images (``u0 < 0.5``) are light strokes on a dark ground, half dark strokes on a
   light ground. The ground's luma (``0.299 R + 0.587 G + 0.114 B``) is drawn in [0.12, 0.28] (dark) or [0.72,
   0.88] (light), the stroke's in [0.72, 0.9] or [0.12, 0.28]: with the ground's gradient and texture (below) the
   stroke's luma is at least 0.3 of full scale (about 80 levels) from every ground pixel's.
3. **Hues far apart.** The ground's hue is drawn uniformly; the stroke's lies opposite it, within 60 degrees
   (so 120 to 180 degrees away). Saturations: ground 0.35-0.85, stroke 0.65-1. A colour of a given hue and
   saturation is brought to its luma by scaling it (darker) or mixing it with white (lighter), which keeps its hue.
4. **The ground** is a smooth linear gradient in a random direction between two colours whose hues differ by up
   to 30 degrees and whose luma is 0.05 below and above the drawn value, plus a low-contrast texture: a 5x5 grid of
   noise, bilinearly interpolated over the image, of amplitude 0.02-0.05 (luma units, the same in each channel).
5. **Compositing**: ``pixel = ground * (1 - alpha) + stroke * alpha``, rounded to 8 bits.

Only +, -, *, /, min, max and floor are used (no matrix products or transcendental functions, whose last bits vary
between machines), in float32, so the bytes are reproducible; a test pins a hash of the first images at each size
(:data:`FIRST_IMAGES_SHA256`, also checked by ``ganvae data verify colour-digits``). Generation is vectorised in
chunks of about 4 MB of work arrays (faster than larger chunks: they stay in the CPU's cache), so its memory is the
result's plus a few tens of MB, and it takes about a second (measured figures belong in benchmarks/RESULTS.md).

Sizes and counts: 28 and 32 pixels keep all 25,000 images (20,000 train, 5,000 test; 59 and 77 MB as uint8); at
64 pixels the first :data:`PER_CLASS_64` train / test images of each class are kept (12,500 images, 154 MB instead
of 307 MB). The labels are the digits.

Licence: the images are derived from MNIST (Yann LeCun, Corinna Cortes, Christopher J.C. Burges), distributed under
CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/), as is mnist-25k (its README); so are these
generated images. ganvae's MIT licence does not apply to them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ganvae.data.arrays import Splits, per_class_indices

BASE_DATASET = "mnist-25k"  # the packaged digits it colours
SIZES = (28, 32, 64)
RECIPE_SEED = 40  # part of the recipe (issue 40): changing it changes every image
DRAWS = 11  # uniform numbers drawn per image (the recipe's u0..u10)
GRID = 5  # side of the texture's noise grid
PER_CLASS_64 = (1000, 250)  # at 64 pixels: the first (train, test) images of each class
# sha256 of the first 16 train images (N, 3, S, S) uint8 at each size: the recipe's output, pinned
FIRST_IMAGES_SHA256 = {
    28: "b3073cca0ab3f830b33229328ad54b7aa8af422f41f1858f2085f325484a5e36",
    32: "a77ac6a59e1ce8b0d0972f32f3fbd01a5fd3cc916ee685ba9231205734abeef7",
    64: "6215d44978d49d76b7ae3c26bbff6c75e2879c007467d3a466fd271a84568285",
}

_LUMA = (np.float32(0.299), np.float32(0.587), np.float32(0.114))


def upsample2x(digits: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> ``(N, 2H, 2W)``: bilinear with half-pixel centres (each output pixel 3/4 of its
    nearest input and 1/4 of the next, per axis, edges repeated), in integer arithmetic (exact, rounded half up)."""
    x = digits.astype(np.int32)

    def along(a: np.ndarray, axis: int) -> np.ndarray:  # weights (1, 3) and (3, 1): the sum of the pair is 4 a
        before = np.concatenate([a.take([0], axis), a.take(range(a.shape[axis] - 1), axis)], axis)
        after = np.concatenate([a.take(range(1, a.shape[axis]), axis), a.take([-1], axis)], axis)
        out = np.stack([3 * a + before, 3 * a + after], axis=axis + 1)  # (..., n, 2, ...)
        shape = list(a.shape)
        shape[axis] *= 2
        return out.reshape(shape)

    wide = along(along(x, 1), 2)  # 16 x the value
    return ((wide + 8) // 16).astype(np.uint8)


def digit_alpha(digits: np.ndarray, size: int) -> np.ndarray:
    """mnist's ``(N, 28, 28)`` uint8 -> the stroke coverage ``(N, size, size)`` float32 in [0, 1] (step 1)."""
    if size == 64:
        digits = upsample2x(digits)  # 56 x 56
    pad = (size - digits.shape[-1]) // 2
    if pad:
        digits = np.pad(digits, ((0, 0), (pad, pad), (pad, pad)))
    return digits.astype(np.float32) / np.float32(255)


def hue_rgb(hue: np.ndarray) -> np.ndarray:
    """Hues ``(N,)`` in sextants [0, 6) (0 red, 1 yellow, 2 green, 3 cyan, 4 blue, 5 magenta) -> fully saturated
    colours ``(N, 3)`` float32 in [0, 1], piecewise linear (no trigonometry)."""
    one, zero = np.float32(1), np.float32(0)
    r = np.clip(np.abs(hue - 3) - 1, zero, one)
    g = np.clip(2 - np.abs(hue - 2), zero, one)
    b = np.clip(2 - np.abs(hue - 4), zero, one)
    return np.stack([r, g, b], axis=1)


def coloured(hue: np.ndarray, saturation: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Colours ``(N, 3)`` of the given hues, saturations and lumas (each ``(N,)``): the saturated hue mixed with
    white to the saturation, then scaled (to darken) or mixed further with white (to lighten) to the luma."""
    full = hue_rgb(hue)
    c = 1 - saturation[:, None] * (1 - full)  # (N, 3)
    own = c[:, 0] * _LUMA[0] + c[:, 1] * _LUMA[1] + c[:, 2] * _LUMA[2]  # (N,), at least 0.114 (pure blue)
    darker = c * (luma / own)[:, None]
    lighter = c + (1 - c) * ((luma - own) / np.maximum(1 - own, np.float32(1e-6)))[:, None]
    return np.where((own >= luma)[:, None], darker, lighter).astype(np.float32)


def texture(grid: np.ndarray, size: int) -> np.ndarray:
    """Noise grids ``(N, 5, 5)`` in [-1, 1] -> ``(N, size, size)``, bilinearly interpolated (corners aligned)."""
    pos = np.arange(size, dtype=np.float32) * np.float32(GRID - 1) / np.float32(size - 1)  # (size,) in [0, 4]
    lo = np.minimum(np.floor(pos).astype(np.int64), GRID - 2)
    w = pos - lo.astype(np.float32)  # (size,) in [0, 1]
    rows = grid[:, lo, :] * (1 - w)[None, :, None] + grid[:, lo + 1, :] * w[None, :, None]  # (N, size, 5)
    return rows[:, :, lo] * (1 - w)[None, None, :] + rows[:, :, lo + 1] * w[None, None, :]  # (N, size, size)


def colourise(digits: np.ndarray, u: np.ndarray, grid: np.ndarray, size: int) -> np.ndarray:
    """The recipe (module docstring) on one chunk: digits ``(N, 28, 28)`` uint8, draws ``u`` ``(N, 11)`` and
    noise ``grid`` ``(N, 5, 5)`` in [0, 1) -> images ``(N, 3, size, size)`` uint8."""
    u = u.astype(np.float32)
    dark = u[:, 0] < 0.5  # light stroke on a dark ground
    ground_luma = np.where(dark, 0.12 + 0.16 * u[:, 5], 0.72 + 0.16 * u[:, 5]).astype(np.float32)
    stroke_luma = np.where(dark, 0.72 + 0.18 * u[:, 6], 0.12 + 0.16 * u[:, 6]).astype(np.float32)
    ground_hue = 6 * u[:, 1]  # sextants
    stroke_hue = np.mod(ground_hue + 3 + 2 * (u[:, 2] - 0.5), np.float32(6))  # opposite, within 60 degrees
    other_hue = np.mod(ground_hue + (u[:, 9] - 0.5), np.float32(6))  # the gradient's far end, within 30 degrees
    ground_sat = 0.35 + 0.5 * u[:, 3]
    stroke = coloured(stroke_hue, 0.65 + 0.35 * u[:, 4], stroke_luma)  # (N, 3)
    near = coloured(ground_hue, ground_sat, ground_luma - np.float32(0.05))
    far = coloured(other_hue, ground_sat, ground_luma + np.float32(0.05))

    axis = (2 * np.arange(size, dtype=np.float32) - np.float32(size - 1)) / np.float32(size - 1)  # [-1, 1]
    a, b = 2 * u[:, 7] - 1, 2 * u[:, 8] - 1  # the gradient's direction
    norm = np.abs(a) + np.abs(b) + np.float32(1e-3)
    along = (a[:, None, None] * axis[None, None, :] + b[:, None, None] * axis[None, :, None]) / norm[:, None, None]
    t = (along + 1) * np.float32(0.5)  # (N, size, size) in [0, 1]
    ground = near[:, :, None, None] + (far - near)[:, :, None, None] * t[:, None]  # (N, 3, size, size)
    amplitude = 0.02 + 0.03 * u[:, 10]  # the texture's, in luma units
    ground = ground + (amplitude[:, None, None] * texture(2 * grid.astype(np.float32) - 1, size))[:, None]
    ground = np.clip(ground, np.float32(0), np.float32(1))

    alpha = digit_alpha(digits, size)[:, None]  # (N, 1, size, size)
    image = ground * (1 - alpha) + stroke[:, :, None, None] * alpha
    return np.floor(image * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def generate(digits: np.ndarray, split: int, size: int, keep: np.ndarray | None = None,
             chunk_bytes: int = 4 * 2**20) -> np.ndarray:
    """Colour digits ``(N, 3, size, size)`` uint8 of one split (0 train, 1 test) of the base dataset's digits
    ``(M, 28, 28)``; ``keep`` (indices) generates only those images, with the colours they have in the whole
    split. Chunks of about ``chunk_bytes`` of float32 work arrays bound the memory."""
    if size not in SIZES:
        raise ValueError(f"colour-digits comes in {SIZES} pixels, not {size}")
    rng = np.random.default_rng([RECIPE_SEED, split])
    u = rng.random((len(digits), DRAWS))  # drawn for the whole split: an image's colours depend on its index only
    grid = rng.random((len(digits), GRID, GRID))
    index = np.arange(len(digits)) if keep is None else np.asarray(keep)
    out = np.empty((len(index), 3, size, size), dtype=np.uint8)
    step = max(1, chunk_bytes // (3 * size * size * 4))
    for start in range(0, len(index), step):
        part = index[start : start + step]
        out[start : start + len(part)] = colourise(digits[part], u[part], grid[part], size)
    return out


def colour_digits(base: Splits, size: int) -> Splits:
    """The dataset at ``size`` from the base dataset's splits (``(N, 1, 28, 28)`` digits): all of them at 28 and
    32 pixels, the first :data:`PER_CLASS_64` of each class at 64."""
    out = []
    for split, (images, labels) in enumerate(((base.train_images, base.train_labels),
                                              (base.test_images, base.test_labels))):
        keep = per_class_indices(labels, PER_CLASS_64[split]) if size == 64 else None
        out += [generate(images[:, 0], split, size, keep), labels if keep is None else labels[keep]]
    return Splits(*out)


def first_images_sha256(base: Splits, size: int, n: int = 16) -> str:
    """sha256 of the first ``n`` train images at ``size`` (what :data:`FIRST_IMAGES_SHA256` pins)."""
    images = generate(base.train_images[:, 0], 0, size, keep=np.arange(n))
    return hashlib.sha256(images.tobytes()).hexdigest()
