"""Channels of images: grey (1 channel) and RGB (3), and the conversions between them.

One rule for every source of images (folders, named datasets, ``.npz`` files, images given from Python):

* ``data.color=auto`` keeps what the data is. A folder is grey (1 channel) when all its files are grey and RGB (3
  channels) when any file is colour; its grey files are then repeated in each channel. A file counts as colour
  when its pixels are: a file saved as RGB whose channels are all within :data:`GREY_TOLERANCE` levels of each
  other (as a grey image saved as a colour JPEG comes back) counts as grey.
* ``grey`` converts colour to 1 channel with Pillow's luma (ITU-R 601-2: ``L = 0.299 R + 0.587 G + 0.114 B``, in
  Pillow's integer arithmetic, so a converted tensor equals ``Image.convert("L")``); ``rgb`` repeats grey in 3.
* Transparent pixels (an alpha channel, or a palette or colour key with transparency) are composited on **white**,
  the background such images are drawn for (a web icon's dark glyph on a transparent ground stays visible; on
  black it would vanish). Dark-on-light results can be turned with ``data.invert``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image as PILImage

COLOR_MODES = ("auto", "grey", "rgb")  # the values of data.color (its Literal in ganvae.config.DataConfig)
CHANNELS = (1, 3)  # grey, RGB: the channel counts ganvae's images have

# a pixel whose R, G and B differ by at most this many levels is grey: a grey image saved as a colour JPEG comes
# back with channels 1 level apart at most, and 2 leaves room for a resize's rounding
GREY_TOLERANCE = 2

# Pillow's 16-bit grey modes (a 16-bit PNG opens as I;16, or as I in older Pillow): convert("L") clips these at
# 255 instead of scaling them, so they are scaled by scale_16bit instead
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "F"}) | SIXTEEN_BIT_MODES  # Pillow modes without colour


def scale_16bit(levels: np.ndarray) -> np.ndarray:
    """16-bit levels 0-65535 -> uint8 0-255 of the same shape: ``value * 255 / 65535``, rounded (half up).
    The inverse of how a 16-bit file stores an 8-bit level (``v * 257``), so 8-bit content comes back exactly.
    The caller checks the range (values outside 0-65535 would wrap)."""
    wide = levels.astype(np.uint32)  # 65535 * 255 + 32767 < 2**32
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def grey_from_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> ``(N, 1, H, W)``: Pillow's luma, bit for bit (``(19595 R + 38470 G + 7471 B +
    32768) >> 16``)."""
    wide = images.to(torch.int32)
    luma = (wide[:, 0] * 19595 + wide[:, 1] * 38470 + wide[:, 2] * 7471 + 0x8000) >> 16  # (N, H, W), 0-255
    return luma.to(torch.uint8).unsqueeze(1)


def rgb_from_grey(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 1, H, W)`` -> ``(N, 3, H, W)``, the grey level in each channel."""
    return images.repeat(1, 3, 1, 1)


def with_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` with C 1 or 3 -> ``(N, channels, H, W)`` (the same tensor when C is already it)."""
    if images.shape[1] == channels:
        return images
    return grey_from_rgb(images) if channels == 1 else rgb_from_grey(images)


def is_colour(rgb: np.ndarray) -> bool:
    """Whether an ``(H, W, 3)`` uint8 image has colour: some pixel's channels differ by more than
    :data:`GREY_TOLERANCE` levels."""
    wide = rgb.astype(np.int16)
    spread = wide.max(axis=-1) - wide.min(axis=-1)  # (H, W)
    return bool(spread.size) and int(spread.max()) > GREY_TOLERANCE


def on_white(im: PILImage.Image) -> PILImage.Image:
    """A Pillow image with transparency (an alpha channel, a transparent palette entry or colour key) composited
    on white: ``RGB``, or ``L`` where the image has no colour mode (``LA``); any other image as it is."""
    from PIL import Image

    if not im.has_transparency_data:
        return im
    grey = im.mode in GREY_MODES
    rgba = im.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return flat.convert("L") if grey else flat


def pil_array(im: Any) -> np.ndarray:
    """A Pillow image as the array ganvae reads: ``(H, W)`` for grey modes (16-bit grey as uint16, ``1`` as 0/255),
    ``(H, W, 3)`` uint8 for colour ones; transparency composited on white (:func:`on_white`)."""
    im = on_white(im)
    if im.mode in SIXTEEN_BIT_MODES:
        return np.asarray(im)
    if im.mode in GREY_MODES:
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))
