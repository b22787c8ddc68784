"""Building blocks shared by several families, and the rule that sets a convolutional family's depth from the
image size (:func:`conv_depth`)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.errors import ConfigError, FieldConfigError

log = logging.getLogger(__name__)


class Dropout(nn.Dropout):
    """Inverted dropout as ``nn.Dropout`` (Srivastava et al. 2014), with masks drawn faster on CPUs.

    Each unit is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, so the
    expected output equals the input, as with ``nn.Dropout``. What differs is how the mask
    is drawn on a CPU, where torch's random number generator runs on one thread and was the
    largest cost of the layer: :func:`keep_mask` needs half the generator calls of a uniform
    draw, which itself is cheaper than ``bernoulli_`` (``nn.Dropout``'s way; timings in
    benchmarks/RESULTS.md, "What made the defaults fast"). On other devices the mask comes from a uniform draw. The
    mask is float32 whatever the activations' dtype.
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
    generator calls of a float draw, which is what bounds the speed on a CPU.
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

    - ``spectral_norm``: every convolution and linear layer's weight, and a projection discriminator's class
      embedding (as Miyato & Koyama 2018 normalise theirs), divided by its largest singular value, estimated by one
      power iteration per step (Miyato et al. 2018).
    - ``diffaugment``: :func:`diff_augment` on every input while training, as a forward
      pre-hook, so the weights' names (and checkpoints) are unchanged.
    """
    if config.spectral_norm:
        for module in list(discriminator.modules()):
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                nn.utils.parametrizations.spectral_norm(module)
    policy = tuple(config.diffaugment)
    unknown = [p for p in policy if p not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"model.diffaugment: unknown augmentation(s) {unknown}; "
                          f"choose among {sorted(AUGMENTATIONS)}.")
    if policy:
        def augment(module, args):
            return (diff_augment(args[0], policy, background), *args[1:]) if module.training else None

        discriminator.register_forward_pre_hook(augment)
    return discriminator


# ----------------------------------------------------------------------------- depth from the image size

# Sides of the smallest feature map, where a generator starts and a discriminator ends: Radford et al. (2016) start
# their 64x64 generator at 4x4; the TensorFlow DCGAN tutorial starts its 28x28 one at 7x7.
START_SIDES = (4, 5, 6, 7)
LARGEST_SIDE = 256  # data.image_size's own bound: the sizes an error lists stop here


def start_and_depth(side: int) -> tuple[int, int] | None:
    """``side = start * 2**depth`` with ``start`` in :data:`START_SIDES` and ``depth >= 1`` -> ``(start, depth)``:
    28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4), 16 -> (4, 2); None for a side no such pair gives (36 = 9 x 4, 30, 6)."""
    depth = 0
    while side % 2 == 0 and side // 2 >= START_SIDES[0]:  # halve while the half is whole and at least 4
        side //= 2
        depth += 1
    return (side, depth) if depth >= 1 and side in START_SIDES else None


def conv_sizes(largest: int = LARGEST_SIDE) -> list[int]:
    """Every image side the convolutional families build, up to ``largest``: 8, 10, 12, 14, 16, 20, 24, 28, 32, 40,
    48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256."""
    return [side for side in range(1, largest + 1) if start_and_depth(side) is not None]


def conv_depth(image_shape: tuple[int, int, int]) -> int:
    """How many stride-2 layers a convolutional family (dcgan, conv-vae, vae-gan) puts between its 4x4 to 7x7
    start and images ``(C, H, W)``: 2 at 28 (7 -> 14 -> 28, the TensorFlow tutorial's shapes, so 28x28 models are
    unchanged), 3 at 32, 4 at 64 (4 -> 8 -> ... -> 64, Radford et al. 2016). Any channel count.

    Raises:
        FieldConfigError: ``data.image_size``, for a side no start of 4 to 7 pixels doubles to (36, 30, 6) or
            non-square images; the message lists the sides that work and the nearest ones.
    """
    _, h, w = image_shape
    found = start_and_depth(h) if h == w else None
    if found is not None:
        return found[1]
    sizes = conv_sizes()
    nearest = sorted(sorted(sizes, key=lambda s: (abs(s - h), s))[:2])
    shown = f"{h}x{w}" if h != w else f"{h}x{h}"
    raise FieldConfigError(
        "data.image_size", h if h == w else (h, w),
        f"{{given}}: the convolutional families (dcgan, conv-vae, vae-gan) draw from a 4x4 to 7x7 map doubled by "
        f"stride-2 layers to the image, so they build square images of side 4 to 7 times a power of two: "
        f"{', '.join(map(str, sizes))}; {shown} is not one. Use {{given:data.image_size#near}} or "
        f"{nearest[-1]} (folder images are resized to it), or a family that takes any size (gan, vae, cppn).",
        reason="a side of 4 to 7 times a power of two", bound=sizes,
        values={"data.image_size#near": nearest[0]})


def fit_widths(widths: list[int], depth: int, deepest_first: bool = False) -> list[int]:
    """``widths`` (one per stride-2 layer) with at least ``depth`` entries: a shorter list is extended by doubling
    its deepest width until it has ``depth`` (``[32, 64]`` at depth 4 -> ``[32, 64, 128, 256]``; deepest first, as
    a generator lists them: ``[64, 32, 16]`` -> ``[128, 64, 32, 16]``), as Radford et al.'s widths double at each
    halving (128-256-512-1024). A list of ``depth`` entries or more is returned as it is."""
    out = list(widths)
    while len(out) < depth:
        if deepest_first:
            out.insert(0, 2 * out[0])
        else:
            out.append(2 * out[-1])
    return out


def encoder_widths(channels: list[int], image_shape: tuple[int, int, int], field: str = "model.channels") -> list[int]:
    """The channels of a convolutional encoder and its mirrored decoder (:class:`ConvEncoder`,
    :class:`ConvDecoder`) for images ``(C, H, W)``: one entry per stride-2 layer, :func:`conv_depth` of them at
    least (:func:`fit_widths` extends a shorter list). A longer list halves the start further (``[4, 8, 8]`` at
    16: 16 -> 8 -> 4 -> 2), as long as the decoder can double a whole start back to the image.

    Raises:
        FieldConfigError: ``field``, for a list with more halvings than the side allows (3 at 28, which halves
            exactly twice).
    """
    depth = conv_depth(image_shape)
    widths = fit_widths(channels, depth)
    side = image_shape[1]
    exact = (side & -side).bit_length() - 1  # how many times the side halves exactly (28 = 7 x 2^2: twice)
    if len(widths) > exact:
        raise FieldConfigError(field, list(channels),
                               f"{{given}}: {len(widths)} stride-2 layers would halve {side}x{side} images to "
                               f"{side / 2 ** len(widths):g} pixels, which the decoder cannot double back to {side}; "
                               f"give at most {exact} entries (one per halving, {side} = {side >> exact} x "
                               f"2^{exact}), e.g. {{given:{field}#fit}}.",
                               reason=f"at most {exact} entries at {side}x{side}", bound=exact,
                               values={f"{field}#fit": list(channels)[:exact]})
    log_fitted_widths(field, channels, widths, image_shape, depth)
    return widths


def discriminator_widths(channels: list[int], image_shape: tuple[int, int, int], kernel_size: int,
                         field: str = "model.discriminator_channels") -> list[int]:
    """The channels of a :class:`ConvDiscriminator` for images ``(C, H, W)``: one per stride-2 convolution, the
    generator's :func:`conv_depth` at least (the mirror of the generator: 64 -> 4 in four halvings, as Radford et
    al.'s discriminator; a shorter list is extended by :func:`fit_widths`). A longer list halves further, while a
    pixel is left.

    Raises:
        FieldConfigError: ``field``, for a list whose halvings leave no pixel.
    """
    depth = conv_depth(image_shape)
    widths = fit_widths(channels, depth)
    side, pad = image_shape[1], (kernel_size - 1) // 2
    for n in range(len(widths)):
        side = _halved(side, kernel_size, pad)
        if side < 1:
            raise FieldConfigError(field, list(channels),
                                   f"{{given}}: {len(widths)} stride-2 convolutions leave no pixel of "
                                   f"{image_shape[1]}x{image_shape[1]} images; give at most {n} entries, e.g. "
                                   f"{{given:{field}#fit}}.", reason=f"at most {n} entries", bound=n,
                                   values={f"{field}#fit": list(channels)[:n]})
    log_fitted_widths(field, channels, widths, image_shape, depth)
    return widths


def log_fitted_widths(field: str, given: list[int], widths: list[int], image_shape: tuple[int, int, int],
                      depth: int) -> None:
    """Say (at DEBUG) that ``field``'s list ``given`` was extended to ``widths`` for images ``(C, H, W)``."""
    if len(widths) != len(given):
        log.debug("%s=%s extended to %s for %dx%d images (%d halvings to %dx%d)", field, list(given), widths,
                  image_shape[1], image_shape[2], depth, image_shape[1] >> depth, image_shape[2] >> depth)


# ----------------------------------------------------------------------------- what a fully connected family costs

# The most parameters a fully connected family (gan, vae) builds. Their first and last layers grow with the pixels
# (the MLP GAN's: 1,024 x C*H*W each), so they take any size and channel count but cost more with each: about 200
# million parameters take 3 GB to train in float32 (16 bytes a parameter: weights, gradients, Adam's two moments),
# which the MLP GAN reaches near 181x181 colour images. The convolutional families' parameters do not grow so.
MAX_DENSE_PARAMETERS = 200_000_000
# above this many parameters the count is said at INFO (the default MLP GAN passes it near 40x40 colour images), below
# at DEBUG: MNIST's models load without a line about their size
LARGE_DENSE_PARAMETERS = 10_000_000
TRAINING_BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments


def dense_parameters(sizes: list[int]) -> int:
    """The weights and biases of linear layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def check_dense_cost(family: str, n_parameters: int, image_shape: tuple[int, int, int],
                     widths_fields: tuple[str, ...]) -> None:
    """Say what a fully connected family costs at images ``(C, H, W)``, before its layers are allocated: the
    parameter count and training memory, logged (at INFO above :data:`LARGE_DENSE_PARAMETERS`); refused above
    :data:`MAX_DENSE_PARAMETERS`.

    Raises:
        FieldConfigError: ``data.image_size``, naming the count, the bound and the fixes (a convolutional family,
            smaller images, narrower ``widths_fields``).
    """
    c, h, w = image_shape
    gb = n_parameters * TRAINING_BYTES_PER_PARAMETER / 2**30
    what = f"the {family} for {h}x{w}x{c} images has {n_parameters / 1e6:,.1f}M parameters"
    if n_parameters > MAX_DENSE_PARAMETERS:
        raise FieldConfigError(
            "data.image_size", h,
            f"{{given}}: {what} (its first and last layers grow with the {c * h * w:,} pixel values), about "
            f"{gb:,.1f} GB to train, over the {MAX_DENSE_PARAMETERS // 10**6}M a fully connected family builds. "
            f"Use a convolutional family (dcgan, conv-vae, vae-gan, cppn), smaller images ({{field}}), or narrower "
            f"layers ({', '.join(f'{{field:{name}}}' for name in widths_fields)}).",
            reason=f"at most {MAX_DENSE_PARAMETERS:,} parameters",
            bound=MAX_DENSE_PARAMETERS)
    log.log(logging.INFO if n_parameters > LARGE_DENSE_PARAMETERS else logging.DEBUG, "%s, about %.2f GB to train",
            what, gb)


# ----------------------------------------------------------------------------- layers


def dense_stack(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes, each followed by a ReLU: ``[a, b, c]`` -> Linear(a, b), ReLU, Linear(b, c),
    ReLU."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


def _halved(size: int, kernel: int, padding: int) -> int:
    """Output size of a stride-2 convolution."""
    return (size + 2 * padding - kernel) // 2 + 1


class ConvEncoder(nn.Module):
    """Conv 4x4 stride 2 + ReLU per entry of ``channels`` (H/2, H/4, ...), a dense ReLU layer per entry of
    ``hidden``, then a linear map to ``(mu, logvar)`` (the encoder of the convolutional VAE, the VAE-GAN and the
    CPPN). The conv VAE and the VAE-GAN give it :func:`encoder_widths` (one entry per halving to the 4x4 to 7x7
    start); the CPPN its own list, at any size (odd sides round up at each halving)."""

    def __init__(self, image_shape: tuple[int, int, int], channels: list[int], hidden: list[int], latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = image_shape[0], image_shape[1]
        for ch in channels:
            layers += [nn.Conv2d(in_ch, ch, 4, stride=2, padding=1), nn.ReLU()]
            in_ch, size = ch, _halved(size, 4, 1)
        self.convs = nn.Sequential(*layers)
        self.dense = dense_stack([in_ch * size * size, *hidden])
        self.to_stats = nn.Linear(hidden[-1] if hidden else in_ch * size * size, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, C, H, W) -> 2 x (B, Z)
        mu, logvar = self.to_stats(self.dense(self.convs(x).flatten(1))).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: dense ReLU layers ``Z -> hidden[-1] -> ... -> hidden[0] -> (C_last,
    H / 2^n, W / 2^n)``, then a transposed conv 4x4 stride 2 per entry of ``channels`` (reversed): logits."""

    def __init__(self, image_shape: tuple[int, int, int], channels: list[int], hidden: list[int], latent_dim: int):
        super().__init__()
        ch = list(reversed(channels))
        size = image_shape[1] // 2 ** len(channels)
        if size < 1 or size * 2 ** len(channels) != image_shape[1]:  # encoder_widths refuses such lists first
            raise ValueError(f"ConvDecoder: {len(channels)} doublings cannot end at {image_shape[1]} pixels; give "
                             f"the channels encoder_widths returns")
        self.start = (ch[0], size, size)
        self.dense = dense_stack([latent_dim, *reversed(hidden), ch[0] * size * size])
        layers: list[nn.Module] = []
        for a, b in zip(ch, [*ch[1:], image_shape[0]]):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers[:-1])  # no activation after the last: logits

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, Z) -> (B, C, H, W) logits
        return self.convs(self.dense(z).view(-1, *self.start))


class ConvDiscriminator(nn.Module):
    """A convolution (stride 2, "same" padding) + leaky ReLU + dropout per entry of ``channels``, then a linear
    logit: the discriminator of the DCGAN (kernel 5, the TensorFlow tutorial's), the VAE-GAN and the CPPN (4).

    With ``batchnorm`` every convolution but the first is followed by batch norm (and has no bias, which the norm
    would cancel), as in Radford et al. (2016, Sec. 3: "not applying batchnorm to ... the discriminator input
    layer"); a model whose discriminator has batch norm shows it real and fake images in separate passes
    (:meth:`ganvae.models.base.AdversarialModel.discriminate_pair`).

    With ``channels_last`` the convolutions run in NHWC memory format (faster on CPUs and tensor cores), and the
    head reads its weight in (H, W, C) order to match the activations: the same sum as ``head(h.flatten(1))``
    without reordering ``h`` (flatten would copy h to NCHW and send back an NCHW gradient, and the leaky ReLU and
    dropout backward passes would then run on mixed layouts; benchmarks/RESULTS.md, "What made the defaults fast").
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: list[int], kernel_size: int = 4,
                 slope: float = 0.2, dropout: float = 0.0, channels_last: bool = False, batchnorm: bool = False):
        super().__init__()
        pad = (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        in_ch, size = image_shape[0], image_shape[1]
        for i, out_ch in enumerate(channels):
            normed = batchnorm and i > 0  # never on the input layer (Radford et al. 2016)
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size, stride=2, padding=pad, bias=not normed))
            if normed:
                layers.append(nn.BatchNorm2d(out_ch))
            layers += [nn.LeakyReLU(slope, inplace=True), Dropout(dropout)]
            in_ch, size = out_ch, _halved(size, kernel_size, pad)
        self.features = nn.Sequential(*layers)  # (B, C_last, H / 2^n, W / 2^n)
        self.head = nn.Linear(in_ch * size * size, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.features.to(memory_format=self.memory_format)  # weights in the activations' layout

    @property
    def n_projection_features(self) -> int:
        """Channels of the last feature map (of the last convolution)."""
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels

    def features_and_logit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W)`` -> the last feature map summed over positions ``(B, C_last)`` (what a conditional
        discriminator projects the class onto) and the logit ``(B, 1)``."""
        h = self.features(x.contiguous(memory_format=self.memory_format))  # (B, C_last, H', W')
        return h.sum(dim=(2, 3)), self.logit(self._flat(h))

    def cluster_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> what self-conditioning clusters ``(B, 4 C_last)``: the last feature map averaged over
        a 2x2 grid of regions. The sum over positions that the projection uses cannot tell where a stroke is, so
        its clusters mix images that differ in where their strokes are (benchmarks/RESULTS.md, "Self-conditioning's
        features"; tests/test_self_conditioning.py)."""
        h = self.features(x.contiguous(memory_format=self.memory_format))
        return torch.nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)

    def _flat(self, h: torch.Tensor) -> torch.Tensor:
        """The feature map ``(B, C, H', W')`` -> ``(B, F)`` as the head reads it, in the activations' memory order."""
        if self.memory_format is torch.contiguous_format:
            return h.flatten(1)
        return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # (B, H'*W'*C): a view of the NHWC storage

    def logit(self, phi: torch.Tensor) -> torch.Tensor:
        """Flat features (:meth:`_flat`) -> ``(B, 1)`` logits."""
        if self.memory_format is torch.contiguous_format:
            return self.head(phi)
        c = self.n_projection_features  # channels of the last feature map
        hw = self.head.in_features // c
        weight = self.head.weight.view(1, c, hw).transpose(1, 2).reshape(1, -1)  # (1, H'*W'*C)
        return F.linear(phi, weight, self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1) logits
        return self.logit(self._flat(self.features(x.contiguous(memory_format=self.memory_format))))
