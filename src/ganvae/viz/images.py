"""Image grids, PNGs and GIFs (no torchvision). Images are ``(N, C, H, W)`` floats in [0, 1]."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ganvae.utils import atomic_write_bytes


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [0, 1] into one uint8 array ``(H', W')`` (grey) or ``(H', W', 3)``.

    Args:
        nrow: images per row; default the ceiling of sqrt(N).
        padding: pixels between images.
        pad_value: grey level of the padding.
    """
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol_rows = math.ceil(n / nrow)
    grid = torch.full((c, ncol_rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    array = (grid * 255).round().to(torch.uint8).numpy()
    return array[0] if c == 1 else array.transpose(1, 2, 0)


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so 28-pixel digits are visible in a browser."""
    if factor <= 1:
        return array
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def to_pil(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB")


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    to_pil(array).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 array as PNG, atomically."""
    atomic_write_bytes(path, png_bytes(array))
    return Path(path)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    return save_png(upscale(make_grid(images, nrow), scale), path)


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 10, loop: bool = True) -> bytes:
    pil_frames = [to_pil(f) for f in frames]
    buf = io.BytesIO()
    pil_frames[0].save(
        buf, format="GIF", save_all=True, append_images=pil_frames[1:], duration=int(1000 / fps), loop=0 if loop else 1,
        optimize=False, disposal=1,
    )
    return buf.getvalue()


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 10, loop: bool = True) -> Path:
    """Write frames (uint8 arrays, all the same size) as an animated GIF, atomically."""
    if not frames:
        raise ValueError("no frames")
    atomic_write_bytes(path, gif_bytes(frames, fps, loop))
    return Path(path)


def load_png(path: str | Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L") if im.mode in ("L", "P", "I") else im.convert("RGB"))
