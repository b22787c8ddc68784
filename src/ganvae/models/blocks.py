"""Building blocks shared by several families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Dropout):
    """Inverted dropout as ``nn.Dropout`` (Srivastava et al. 2014), with masks drawn faster on CPUs.

    Each unit is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, so the
    expected output equals the input, as with ``nn.Dropout``. What differs is how the mask
    is drawn on a CPU, where torch's random number generator runs on one thread and was the
    largest cost of the layer: ``bernoulli_`` (``nn.Dropout``'s way) took 12% of a DCGAN
    training step, a uniform draw compared with ``1 - p`` a third of that, and the mask of
    :func:`keep_mask` about two thirds of the uniform one. On other devices the mask comes
    from a uniform draw. The mask is float32 whatever the activations' dtype.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return torch.zeros_like(x)
        if x.device.type == "cpu":
            mask = keep_mask(x, 1.0 - self.p)
        else:
            keep = 1.0 - self.p
            mask = torch.rand_like(x, dtype=torch.float32).lt_(keep).mul_(1.0 / keep)
        return x * mask.to(x.dtype)


def keep_mask(x: torch.Tensor, keep: float) -> torch.Tensor:
    """A float32 dropout mask shaped and laid out like ``x``: ``1 / k`` with probability ``k``, else 0.

    ``k`` is ``keep`` rounded to a multiple of 2^-15 (0.7 -> 0.700012), and the scale is
    ``1 / k``, so the mask's mean is exactly 1. Each 31-bit integer of the generator
    (``random_`` on int32) gives two 15-bit uniform draws (bits 0-14 and 16-30): half the
    generator calls of a float draw, which is what bounds the speed on a CPU (the draw took
    6.6 against 19.4 ms for the 6.4M units of a DCGAN discriminator layer at batch 512, the
    whole mask 14 against 22 ms for a uniform draw compared with ``keep``).
    """
    threshold = round(keep * 32768)  # P(kept) = threshold / 2^15
    out = torch.empty_like(x, dtype=torch.float32)  # same memory format as x (channels-last stays so)
    flat = out.as_strided((out.numel(),), (1,))  # the dense storage, in memory order
    if threshold == 0:  # keep below 2^-16: nothing is kept
        return out.zero_()
    n = flat.numel()
    half = (n + 1) // 2
    bits = torch.empty(half, dtype=torch.int32, device=x.device).random_()  # uniform on [0, 2^31)
    flat[:half].copy_(bits.bitwise_and(32767))  # draws from bits 0-14, as exact floats 0..32767
    flat[half:].copy_(bits[: n - half] >> 16)  # draws from bits 16-30
    # kept <=> draw >= 2^15 - threshold; then draw - (2^15 - 1 - threshold) >= 1, else <= 0: clamp gives 1 or 0
    # (integer arithmetic, exact in float32; cheaper than a comparison, which writes bools to convert)
    return out.sub_(32767 - threshold).clamp_(0.0, 1.0).mul_(32768 / threshold)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], background: float) -> torch.Tensor:
    """Differentiable augmentation of a discriminator's input (Zhao et al. 2020, "Differentiable
    Augmentation for Data-Efficient GAN Training"): the same random transforms for real and fake
    images, differentiable, so the generator learns through them.

    - ``translation``: shift each image by up to 1/8 of its size (the paper's ratio), uncovered
      pixels set to ``background``;
    - ``cutout``: blank one square of half the image size at a random place (the paper's ratio).

    The paper fills with 0, mid-grey for images in [-1, 1]; here the fill is the images'
    ``background`` (-1 or 0), since MNIST's background is black and a grey frame would itself
    tell real from fake. Shapes: ``(B, C, H, W)`` -> ``(B, C, H, W)``.
    """
    for name in policy:
        x = AUGMENTATIONS[name](x, background)
    return x


def _translation(x: torch.Tensor, fill: float, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + ty + 1, 0, h + 1)  # indices into the padded image; out of range -> the fill border
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1], value=fill).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[gb, gy, gx].permute(0, 3, 1, 2)  # (B, C, H, W)


def _cutout(x: torch.Tensor, fill: float, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)  # the square's centre
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    dy, dx = ys - oy + ch // 2, xs - ox + cw // 2  # position inside the square, if in [0, ch) x [0, cw)
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)  # (B, H, W)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, fill), x)


AUGMENTATIONS = {"translation": _translation, "cutout": _cutout}


def prepare_discriminator(discriminator: nn.Module, config, background: float) -> nn.Module:
    """Apply a discriminator's regularisers from an adversarial config, in place; returns it.

    - ``spectral_norm``: every convolution and linear layer's weight divided by its largest
      singular value, estimated by one power iteration per step (Miyato et al. 2018).
    - ``diffaugment``: :func:`diff_augment` on every input while training, as a forward
      pre-hook, so the weights' names (and checkpoints) are unchanged.
    """
    if config.spectral_norm:
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.utils.parametrizations.spectral_norm(module)
    policy = tuple(config.diffaugment)
    unknown = [p for p in policy if p not in AUGMENTATIONS]
    if unknown:
        from ganvae.errors import ConfigError

        raise ConfigError(f"model.diffaugment: unknown augmentation(s) {unknown}; choose among {sorted(AUGMENTATIONS)}.")
    if policy:
        def augment(module, args):
            return (diff_augment(args[0], policy, background), *args[1:]) if module.training else None

        discriminator.register_forward_pre_hook(augment)
    return discriminator
