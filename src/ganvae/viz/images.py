"""Image grids, PNGs and GIFs (no torchvision). Images are ``(N, C, H, W)`` floats in [0, 1]: grey (C = 1) is
stored as grey (PNG mode L), colour (C = 3) as RGB, and four channels as RGBA; a GIF holds a palette of 256 colours
per frame, chosen from that frame's own colours."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ganvae.common.files import atomic_write_bytes


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [0, 1] into one uint8 array ``(H', W')`` (grey) or ``(H', W', C)`` (colour:
    ``C = 3``, RGB).

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


PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> the PIL (and PNG) mode that stores them


def pil_mode(array: np.ndarray) -> str:
    """The PIL mode of a uint8 picture ``(H, W)`` (grey) or ``(H, W, C)``; a ValueError for a channel count no
    picture format stores (2, or more than 4)."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in PIL_MODES:
        raise ValueError(f"a picture of {channels} channels: PNG and GIF store 1 (grey), 3 (RGB) or 4 (RGBA); draw "
                         f"the channels one at a time (images[:, i:i + 1]) to look at them")
    return PIL_MODES[channels]


def to_pil(array: np.ndarray):
    """A uint8 picture ``(H, W)`` or ``(H, W, C)`` as a PIL image (grey, RGB or RGBA: :func:`pil_mode`)."""
    from PIL import Image

    mode = pil_mode(array)
    image = Image.fromarray(np.ascontiguousarray(array.reshape(array.shape[:2]) if mode == "L" else array))
    return image if image.mode == mode else image.convert(mode)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    to_pil(array).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png_rows(rows: Iterator[np.ndarray], width: int, height: int, path: str | Path, channels: int = 1) -> Path:
    """Write a PNG from bands of rows ``(r, width)`` (grey) or ``(r, width, channels)`` uint8 (3: RGB, 4: RGBA), as
    they come: only one band is in memory, so a 16384x16384 render needs megabytes, not gigabytes. Atomic, like
    :func:`save_png`.

    The format (PNG specification, ISO/IEC 15948): signature, IHDR, the rows (each prefixed by filter byte 0)
    deflated into IDAT chunks, IEND; each chunk is length, type, data, CRC-32 of type and data.
    """
    import struct
    import zlib

    from ganvae.common.files import atomic_save

    if channels not in PIL_MODES:
        raise ValueError(f"save_png_rows: {channels} channels; a PNG stores 1 (grey), 3 (RGB) or 4 (RGBA)")

    def chunk(fh, kind: bytes, data: bytes) -> None:
        fh.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n")
            colour = {1: 0, 3: 2, 4: 6}[channels]  # grey, RGB, RGBA (the PNG colour types)
            chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
            deflate = zlib.compressobj(6)
            written = 0
            for band in rows:
                band = np.ascontiguousarray(band, dtype=np.uint8).reshape(band.shape[0], width * channels)
                filtered = np.concatenate([np.zeros((band.shape[0], 1), np.uint8), band], axis=1)  # filter 0: none
                data = deflate.compress(filtered.tobytes())
                if data:
                    chunk(fh, b"IDAT", data)
                written += band.shape[0]
            if written != height:
                raise ValueError(f"save_png_rows: got {written} rows for a {height}-row image")
            chunk(fh, b"IDAT", deflate.flush())
            chunk(fh, b"IEND", b"")

    atomic_save(path, write)
    return Path(path)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 array as PNG, atomically."""
    atomic_write_bytes(path, png_bytes(array))
    return Path(path)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    return save_png(upscale(make_grid(images, nrow), scale), path)


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 10, loop: bool = True) -> bytes:
    """An animated GIF of uint8 frames (grey or colour: each frame gets a palette of its own colours)."""
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
