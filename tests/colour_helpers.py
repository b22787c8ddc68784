"""Colour images built directly for the colour tests (the colour data layer is built elsewhere): ``ImageData``
holding uint8 tensors ``(N, C, H, W)``, as tests/conftest.py's ``tiny_data`` holds grey ones."""

from __future__ import annotations

import numpy as np
import torch

from ganvae.data.dataset import ImageData

# one colour per class (RGB, 0-255): a class is visible by its hue, so a colour model has something to condition on
PALETTE = np.array([[230, 25, 25], [25, 200, 25], [25, 60, 230], [230, 200, 25], [200, 25, 200],
                    [25, 200, 200], [240, 130, 20], [120, 60, 20], [150, 150, 150], [250, 250, 250]], dtype=np.uint8)


def make_colour_images(n: int, size: int = 32, channels: int = 3, seed: int = 0,
                       classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images ``(n, channels, size, size)`` uint8 in ``classes`` classes, and their labels ``(n,)`` int64: a
    dark noisy background and a bar in the class's colour (:data:`PALETTE`) at a class-dependent row. Channels
    beyond 3 repeat the palette; one channel is the palette's grey level."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = (rng.random((n, size, size, channels)) * 40).astype(np.uint8)  # (N, H, W, C)
    colours = PALETTE[labels % len(PALETTE)]  # (N, 3)
    if channels == 1:
        colours = colours.mean(1, keepdims=True).astype(np.uint8)
    else:
        colours = np.tile(colours, (1, -(-channels // 3)))[:, :channels]
    for i, c in enumerate(labels):
        row = 1 + int(c) * max(1, size - 4) // classes
        images[i, row : row + max(2, size // 8), size // 8 : size - size // 8] = colours[i]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels.astype(np.int64))


def tiny_colour_data(n: int = 48, size: int = 32, channels: int = 3, seed: int = 0, classes: int = 10) -> ImageData:
    """A synthetic in-memory colour dataset: ``n`` training and 20 test images ``(channels, size, size)``."""
    train_x, train_y = make_colour_images(n, size, channels, seed, classes)
    test_x, test_y = make_colour_images(20, size, channels, seed + 1, classes)
    return ImageData(f"tiny-colour-{channels}x{size}", tuple(str(i) for i in range(classes)), train_x, train_y,
                     test_x, test_y)


def solid(colour: tuple[int, int, int], n: int = 1, size: int = 8) -> torch.Tensor:
    """``n`` images ``(n, 3, size, size)`` in [0, 1] of one colour (0-255 per channel)."""
    return torch.tensor(colour, dtype=torch.float32).div(255).view(1, 3, 1, 1).expand(n, 3, size, size).clone()
