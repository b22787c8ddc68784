"""The papers' FID and KID: Inception-v3 features with pytorch-fid's weights, read from a file the user supplies.

ganvae's own metrics are computed on a classifier of the dataset (``classifier_fd``...), which fits small images
far better than Inception-v3 but gives numbers no paper reports. For a number to quote beside the literature,
``fid_inception`` and ``kid_inception`` are computed as pytorch-fid computes FID (Seitzer, pytorch-fid,
``src/pytorch_fid/inception.py``, ``fid_score.py``; Heusel et al. 2017):

* the network is pytorch-fid's ``FIDInceptionV3``: torchvision's Inception-v3 with the blocks patched to match the
  TensorFlow graph of 2015-12-05 that the original FID code used: in ``Mixed_5b..5d`` (A), ``Mixed_6b..6e`` (C) and
  ``Mixed_7b`` (E, first) the pool branch's 3x3 average pool leaves the zero padding out of its mean
  (``count_include_pad=False``, as TensorFlow's does); in ``Mixed_7c`` (E, second) that branch is a 3x3 *max*
  pool (a quirk of that graph); a 1008-class ``fc`` (unused for FID), no auxiliary head;
* the weights are pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: ganvae never downloads them (the user
  gives the file; get it once from https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
  pt_inception-2015-12-05-6726825d.pth). The file is read with ``torch.load(weights_only=True)``, which builds
  tensors and nothing else (no code from the file runs), and its every key and shape is checked against the
  network before it is loaded. Its SHA-256 is recorded, and a file whose hash does not start with ``6726825d``
  (torch hub's naming rule: the name carries the first 8 hex digits of the file's SHA-256) is said not to be
  pytorch-fid's, so its numbers are not the papers';
* the images: quantised to 8-bit levels (as the PNG files pytorch-fid reads), grey repeated in 3 channels (as
  Pillow's ``convert("RGB")`` does), resized to 299x299 bilinearly (``F.interpolate(..., align_corners=False)``,
  no antialiasing), scaled from [0, 1] to [-1, 1]; the features are the 2048 outputs of the last average pool;
* FID is :func:`ganvae.metrics.core.frechet_distance` on the features' means and covariances (a test checks it
  against pytorch-fid's ``calculate_frechet_distance`` to 1e-6 relative); KID is Binkowski et al.'s unbiased MMD^2
  with the cubic kernel on the raw features (not rescaled, unlike ``classifier_kd``), 100 subsets of 1000, x1000.

Inception-v3 at 299x299 costs about 6 GFLOPs an image: the 10,000 samples and the reference split take minutes on
a GPU and an hour or more on a CPU (the reference features are cached, by the weights' and the split's hashes).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.errors import FieldDataError, GanvaeError

log = logging.getLogger(__name__)

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID weights
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub's rule: a file's name ends in the first 8 hex digits of its SHA-256
INPUT_SIZE = 299
FEATURE_DIM = 2048
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # as torch-fidelity and clean-fid compute KID


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, TensorFlow's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv: Any):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, padded, whose mean leaves the padding out (TensorFlow's; pytorch-fid's patch)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Inception block A (``Mixed_5b..5d``): 1x1, 5x5, double 3x3 and pool branches; TensorFlow's average pool."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)  # (B, 224 + pool_features, H, W)


class InceptionB(nn.Module):
    """Grid reduction (``Mixed_6a``): strided 3x3, strided double 3x3 and max-pool branches (as torchvision's)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], 1)  # (B, 480 + in_channels, H', W')


class FIDInceptionC(nn.Module):
    """Inception block C (``Mixed_6b..6e``): factorised 7x7 branches; TensorFlow's average pool."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], 1)  # (B, 768, H, W)


class InceptionD(nn.Module):
    """Grid reduction (``Mixed_7a``), as torchvision's."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)  # (B, 512 + in_channels, H', W')


class FIDInceptionE(nn.Module):
    """Inception block E (``Mixed_7b``, ``Mixed_7c``): expanded 3x3 branches. The pool branch differs between the
    two in the FID graph: ``Mixed_7b`` averages (TensorFlow's, padding left out), ``Mixed_7c`` takes the max."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.pool = pool  # "avg" (Mixed_7b) or "max" (Mixed_7c)
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        pooled = _tf_avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], 1)  # (B, 2048, H, W)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3, its modules named as in its weights file (torchvision's names)."""

    def __init__(self, num_classes: int = 1008):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, num_classes)  # in the weights file; FID does not use it

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 299, 299)`` in [-1, 1] -> ``(B, 2048)``: pytorch-fid's blocks 0-3 and the final average pool."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)  # (B, 288, 35, 35) -> (B, 768, 17, 17) -> (B, 2048, 8, 8)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 2048)


def prepare(images: torch.Tensor) -> torch.Tensor:
    """Images ``(B, C, H, W)`` in [0, 1], C 1 or 3 -> ``(B, 3, 299, 299)`` in [-1, 1] as pytorch-fid feeds its
    network: 8-bit levels (a PNG's), grey in 3 channels, bilinear resize (``align_corners=False``), ``2x - 1``."""
    x = images.float().clamp(0, 1).mul(255).round().div(255)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


@dataclass
class InceptionFeatures:
    """pytorch-fid's Inception-v3 loaded from the user's file, and its identity (stored with its metrics)."""

    model: FIDInceptionV3
    path: str
    sha256: str

    @property
    def pytorch_fid_weights(self) -> bool:
        """Whether the file is pytorch-fid's published one (by its SHA-256's first 8 hex digits)."""
        return self.sha256.startswith(WEIGHTS_SHA256_PREFIX)

    @property
    def name(self) -> str:
        return "inception-v3-fid (pytorch-fid)" if self.pytorch_fid_weights else "inception-v3-fid (other weights)"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "weights": self.path, "sha256": self.sha256,
                "pytorch_fid_weights": self.pytorch_fid_weights,
                "preprocessing": "8-bit levels, grey repeated in 3 channels, bilinear resize to 299x299 "
                                 "(align_corners=False), [0, 1] -> [-1, 1] (pytorch-fid's)",
                "features": "2048-d final average pool",
                "kid": f"unbiased MMD^2, cubic kernel, raw features, {KID_SUBSETS} subsets of up to "
                       f"{KID_SUBSET_SIZE}, x1000"}

    def to(self, device: torch.device | str) -> InceptionFeatures:
        self.model.to(device)
        return self

    def check_images(self, shape: tuple[int, ...], what: str = "images") -> None:
        """Any ``(N, 1 or 3, H, W)`` images (resized to 299x299)."""
        if len(shape) != 4 or shape[1] not in (1, 3):
            raise GanvaeError(f"{what} of shape {tuple(shape)}: Inception-v3 takes (N, 1 or 3, H, W) images.")

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, batch_size: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` in [0, 1] -> features ``(N, 2048)`` and the 1008 ``fc`` class probabilities (float64,
        CPU)."""
        self.check_images(tuple(images.shape))
        device = next(self.model.parameters()).device
        feats, probs = [], []
        for chunk in images.split(batch_size):
            f = self.model.features(prepare(chunk.to(device)))
            feats.append(f.double().cpu())
            probs.append(F.softmax(self.model.fc(f), dim=1).double().cpu())
        return torch.cat(feats), torch.cat(probs)


def _refuse(path: str | Path, why: str) -> FieldDataError:
    return FieldDataError(
        "inception_weights", str(path),
        f"{{given}}: {why}. Give pytorch-fid's FID weights, {WEIGHTS_FILE} (download it once from {WEIGHTS_URL}; "
        f"ganvae never downloads it).", reason=f"pytorch-fid's {WEIGHTS_FILE}")


def load_inception(path: str | Path, device: torch.device | str = "cpu") -> InceptionFeatures:
    """pytorch-fid's Inception-v3 with the weights of the file ``path``, in eval mode.

    The file is read with ``torch.load(weights_only=True, map_location="cpu")``: tensors only, no code of the file
    runs. Its keys and shapes must be exactly the network's (a missing ``num_batches_tracked`` counter, which
    inference does not use, is allowed); anything else is refused naming the first differences. A file that is
    not pytorch-fid's own (by its SHA-256) loads with a warning: its numbers are not the papers'.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise _refuse(path, "no such file")
    try:
        state = torch.load(file, weights_only=True, map_location="cpu")
    except Exception as err:  # torch's UnpicklingError for a file that would run code; others for damaged files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _refuse(path, f"not a weights file that loads as tensors only ({first[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise _refuse(path, f"holds a {type(state).__name__}, not a state dict of tensors")
    with torch.device("meta"):  # shapes only: the weights come from the file
        model = FIDInceptionV3()
    expected = model.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in state and k not in optional]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})" for k in expected
             if k in state and state[k].shape != expected[k].shape]
    floats = [k for k, v in state.items() if k not in optional and not v.is_floating_point()]
    if missing or unexpected or wrong or floats:
        parts = [f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
                 f"{len(unexpected)} unknown (e.g. {', '.join(unexpected[:3])})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:3])})" if wrong else "",
                 f"{len(floats)} not floating point (e.g. {', '.join(floats[:3])})" if floats else ""]
        raise _refuse(path, "its tensors are not those of pytorch-fid's FID Inception-v3: "
                      + "; ".join(p for p in parts if p))
    full = {**{k: torch.zeros((), dtype=torch.long) for k in optional}, **state}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in full.items()}, assign=True)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    net = InceptionFeatures(model.eval(), str(file), digest)
    if not net.pytorch_fid_weights:
        log.warning("%s: not pytorch-fid's %s (its SHA-256 starts %s, not %s): fid_inception and kid_inception on "
                    "these weights are not comparable with papers' FID and KID", file, WEIGHTS_FILE, digest[:8],
                    WEIGHTS_SHA256_PREFIX)
    return net.to(device)


def inception_metrics(samples: torch.Tensor, data, net: InceptionFeatures, seed: int = 0,
                      reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """``fid_inception`` and ``kid_inception`` (x1000, with its ``_std`` over the subsets) of ``samples``
    ``(M, C, H, W)`` in [0, 1] against the test split of ``data``, on pytorch-fid's Inception-v3 features.

    Args:
        reference: precomputed (features, probs) of the test split (default: computed, and cached on disk).
    """
    from ganvae.metrics import core
    from ganvae.metrics.reference import reference_features
    from ganvae.metrics.registry import FID_INCEPTION, KID_INCEPTION

    ref = (reference if reference is not None else reference_features(data, net))[0]
    fake = net.extract(samples)[0]
    fid = core.frechet_distance(*core.gaussian_stats(fake), *core.gaussian_stats(ref))
    kid, kid_std = core.kernel_inception_distance(ref, fake, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE,
                                                  seed=seed, normalise=False)
    return {FID_INCEPTION.key: fid, KID_INCEPTION.key: kid * 1000, KID_INCEPTION.std_key: kid_std * 1000}
