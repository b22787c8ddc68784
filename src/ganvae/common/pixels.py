"""Pixel value ranges, in one place for the data and the models.

Images are stored as uint8 (a quarter of float32's memory); pictures and metrics use floats in [0, 1]; each
model's networks see and produce their own range (:data:`ValueRange`).
"""

from __future__ import annotations

from typing import Literal

import torch

ValueRange = Literal["tanh", "unit"]  # [-1, 1] for tanh generators, [0, 1] for Bernoulli/sigmoid decoders


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (any shape) -> float32 in [0, 1]."""
    return x.float().div_(255.0)


def scale_images(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    """uint8 ``(B, 1, H, W)`` -> float in the model's range: [-1, 1] (``tanh``) or [0, 1] (``unit``)."""
    x = x.float()
    if value_range == "tanh":
        return x.mul_(2.0 / 255.0).sub_(1.0)
    return x.mul_(1.0 / 255.0)


def background(value_range: ValueRange) -> float:
    """The value of a blank pixel in ``value_range`` (MNIST's black): what the discriminators' augmentations pad
    with."""
    return -1.0 if value_range == "tanh" else 0.0


def from_unit(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    """Images in [0, 1] -> the model's range."""
    return x * 2.0 - 1.0 if value_range == "tanh" else x


def to_unit(x: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    """Model-range images back to [0, 1] for saving and metrics."""
    if value_range == "tanh":
        return (x + 1.0).mul(0.5).clamp(0.0, 1.0)
    return x.clamp(0.0, 1.0)
