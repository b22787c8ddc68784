"""Does a feature network see what matters? The check a reviewer would run on any FID-like metric.

:func:`degradation_check` splits a dataset's test split into two disjoint halves: half A is the reference, half B
plays the samples. Real against real (half B as it is) must score near the floor, and each deliberate damage to
half B must score worse than the clean images, the strong version worse than the mild one:

* Gaussian blur (sigma 0.5 and 1.5 pixels): the look of a VAE's mean images;
* additive Gaussian noise (std 0.05 and 0.2 of the pixel range, clipped): speckle;
* dropped classes (one class; half the classes), the rest of half B in their place: mode dropping (labelled data);
* a colour cast (colour data): red gained and blue lost by 10% and 30% of their levels, as a wrong white balance;
* a hue rotation (30 and 120 degrees, in the YIQ plane, brightness kept; colour data). Data whose hues are spread
  evenly round the circle (the colour digits: uniform ground hues, strokes opposite) is nearly unchanged by it: a
  network that sees colour well may rightly score it near the floor there, so fail its checks on such data.

Every row compares the same number of images (the fewest any row has: half B without its dropped classes), so the
Frechet distance's small-sample bias is the same in every row. The function returns a report (a dict: rows, checks,
passed) that a fast test asserts on tiny data and ``benchmarks/feature_validation.py`` prints for MNIST
(``benchmarks/RESULTS.md``). :func:`random_network` is the known-weak baseline that the trained networks must beat.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
import torch.nn.functional as F

from ganvae.common.pixels import uint8_to_unit
from ganvae.metrics import core

if TYPE_CHECKING:
    from ganvae.metrics.classifier import ConvClassifier

BLUR_SIGMAS = {"mild": 0.5, "strong": 1.5}  # pixels
NOISE_STDS = {"mild": 0.05, "strong": 0.2}  # of the [0, 1] range
HUE_DEGREES = {"mild": 30.0, "strong": 120.0}
CAST_GAINS = {"mild": 0.1, "strong": 0.3}  # red x (1 + g), blue x (1 - g)
KD_SUBSETS = 10  # KID subsets per row (of up to 1000 images): enough for the near-zero check, quick


class Extractor(Protocol):
    """What the check needs of a feature network (:class:`~ganvae.metrics.classifier.FeatureNetwork`,
    :class:`~ganvae.metrics.inception.InceptionFeatures`)."""

    @property
    def name(self) -> str: ...

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(B, C, H, W)`` in [0, 1] blurred with a Gaussian of ``sigma`` pixels (separable, radius ``ceil(3 sigma)``,
    reflected borders)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)  # rows
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)  # columns


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` plus Gaussian noise of ``std``, clipped to [0, 1]."""
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(0, 1)


# RGB <-> YIQ (NTSC): Y is the brightness, (I, Q) the colour plane a hue rotation turns
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def colour_cast(x: torch.Tensor, gain: float) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] warmer: red times ``1 + gain``, blue times ``1 - gain``, clipped to [0, 1]."""
    return (x * torch.tensor([1 + gain, 1.0, 1 - gain]).view(1, 3, 1, 1)).clamp(0, 1)


def rotate_hue(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] with the hue turned by ``degrees`` (a rotation of the YIQ colour plane,
    brightness kept), clipped to [0, 1]."""
    a = math.radians(degrees)
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])
    m = torch.linalg.inv(_YIQ) @ turn @ _YIQ  # (3, 3), RGB -> RGB
    return torch.einsum("ij,bjhw->bihw", m, x).clamp(0, 1)


@dataclass(frozen=True)
class Degradation:
    """One damage at one severity: ``apply(images, labels, generator)`` -> the damaged images in [0, 1] (fewer of
    them for a dropped class)."""

    kind: str
    severity: str  # "mild" or "strong"
    setting: str  # its parameter, in words
    apply: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def _blurred(sigma: float, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return gaussian_blur(x, sigma)


def _noisy(std: float, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return add_noise(x, std, g)


def _without(gone: list[int], x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x[~torch.isin(y, torch.tensor(gone))]


def _turned(degrees: float, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return rotate_hue(x, degrees)


def _cast(gain: float, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return colour_cast(x, gain)


def degradations(image_shape: tuple[int, ...], classes: list[int], seed: int = 0) -> list[Degradation]:
    """The damages that fit the data: blur and noise always; dropped classes where it has 3 or more classes (one
    class; half of them) or 2 (one class, no strong version); a colour cast and a hue rotation for colour images."""
    out = [Degradation("blur", severity, f"sigma {sigma} px", partial(_blurred, sigma))
           for severity, sigma in BLUR_SIGMAS.items()]
    out += [Degradation("noise", severity, f"std {std}", partial(_noisy, std)) for severity, std in NOISE_STDS.items()]
    if len(classes) >= 2:
        order = [classes[i] for i in torch.randperm(len(classes), generator=torch.Generator().manual_seed(seed))]
        counts = {"mild": 1, "strong": len(classes) // 2} if len(classes) >= 3 else {"mild": 1}
        for severity, n in counts.items():
            gone = sorted(order[:n])
            out.append(Degradation("dropped classes", severity, f"{n} of {len(classes)} ({gone})",
                                   partial(_without, gone)))
    if image_shape[0] == 3:
        out += [Degradation("colour cast", severity, f"red +{gain:.0%}, blue -{gain:.0%}", partial(_cast, gain))
                for severity, gain in CAST_GAINS.items()]
        out += [Degradation("hue", severity, f"{deg:g} degrees", partial(_turned, deg))
                for severity, deg in HUE_DEGREES.items()]
    return out


def _scores(ref: torch.Tensor, feats: torch.Tensor, seed: int) -> dict[str, float]:
    kd, kd_std = core.kernel_inception_distance(ref, feats, subsets=KD_SUBSETS, seed=seed)
    prdc = core.precision_recall_density_coverage(ref, feats, k=5)
    return {"fd": core.frechet_distance(*core.gaussian_stats(feats), *core.gaussian_stats(ref)),
            "kd": kd * 1000, "kd_std": kd_std * 1000, "precision": prdc["precision"], "recall": prdc["recall"]}


def degradation_check(fnet: Extractor, data, seed: int = 0, max_images: int | None = None) -> dict[str, Any]:
    """Score deliberately damaged real images against clean ones on ``fnet``'s features.

    Args:
        fnet: a feature network (``extract(images in [0, 1]) -> (features, probabilities)``).
        data: an :class:`~ganvae.data.dataset.ImageData`; its test split (uint8 ``(N, C, H, W)``) is used, its labels
            for the dropped classes.
        max_images: at most this many images in each half (default: all of the test split).

    Returns a report: ``rows`` (the real-vs-real floor, then each damage and severity: its Frechet distance ``fd``
    and ``fd_ratio``, that over the floor's (scale-free, so networks compare), kernel distance ``kd`` x1000 with
    ``kd_std`` over its subsets, precision and recall with k = 5), ``checks``
    (each with ``passed``): every damage scores clean < mild < strong in ``fd`` and ``kd``; real against real scores
    below every mild damage; its kernel distance is within 3 standard deviations of 0; and ``passed``, all of them.
    """
    start = time.monotonic()
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.test_images), generator=g)
    half = len(order) // 2 if max_images is None else min(len(order) // 2, max_images)
    a_idx, b_idx = order[:half], order[half : 2 * half]
    ref = fnet.extract(uint8_to_unit(data.test_images[a_idx]))[0]
    x_b, y_b = uint8_to_unit(data.test_images[b_idx]), data.test_labels[b_idx].cpu()
    present = sorted(int(c) for c in y_b.unique())
    damages = degradations(tuple(x_b.shape[1:]), present, seed)
    damaged = [(d, d.apply(x_b, y_b, g)) for d in damages]
    m = min([len(x_b)] + [len(x) for _, x in damaged])  # the same count in every row

    def subsample(x: torch.Tensor) -> torch.Tensor:
        return x[torch.randperm(len(x), generator=g)[:m]] if len(x) > m else x

    rows: list[dict[str, Any]] = [{"kind": "real vs real", "severity": "floor", "setting": f"half B, {m} images",
             **_scores(ref, fnet.extract(subsample(x_b))[0], seed)}]
    for d, x in damaged:
        rows.append({"kind": d.kind, "severity": d.severity, "setting": d.setting,
                     **_scores(ref, fnet.extract(subsample(x))[0], seed)})
    floor = rows[0]
    for r in rows:  # scale-free: how many times the real-vs-real distance (features differ in scale between networks)
        r["fd_ratio"] = r["fd"] / floor["fd"] if floor["fd"] > 0 else math.inf
    checks: list[dict[str, Any]] = []
    for kind in dict.fromkeys(d.kind for d in damages):
        ladder = [floor] + [r for r in rows[1:] if r["kind"] == kind]  # floor, mild(, strong)
        for score in ("fd", "kd"):
            values = [r[score] for r in ladder]
            checks.append({"check": f"{kind}: {score} real < " + " < ".join(r["severity"] for r in ladder[1:]),
                           "values": values, "passed": all(a < b for a, b in zip(values, values[1:]))})
    mild = [r["fd"] for r in rows[1:] if r["severity"] == "mild"]
    checks.append({"check": "real vs real: fd below every mild damage", "values": [floor["fd"], min(mild)],
                   "passed": floor["fd"] < min(mild)})
    checks.append({"check": "real vs real: kd within 3 std of 0", "values": [floor["kd"], floor["kd_std"]],
                   "passed": abs(floor["kd"]) <= 3 * floor["kd_std"]})
    return {"feature_network": fnet.name, "dataset": data.name, "image_shape": list(x_b.shape[1:]),
            "reference": f"test split half A ({half} images)", "compared": f"{m} images of half B per row",
            "seed": seed, "rows": rows, "checks": checks, "passed": all(c["passed"] for c in checks),
            "seconds": round(time.monotonic() - start, 1)}


def format_report(report: dict[str, Any]) -> str:
    """The report as a text table (one row per damage, then the checks)."""
    lines = [f"{report['feature_network']} on {report['dataset']} {tuple(report['image_shape'])}: reference "
             f"{report['reference']}, {report['compared']}",
             f"  {'damage':<16} {'severity':<8} {'setting':<26} {'FD':>10} {'x floor':>8} {'KD x1000':>19} "
             f"{'prec.':>6} {'recall':>6}"]
    for r in report["rows"]:
        lines.append(f"  {r['kind']:<16} {r['severity']:<8} {r['setting']:<26} {r['fd']:10.4g} {r['fd_ratio']:8.2f} "
                     f"{r['kd']:9.3g} +- {r['kd_std']:6.2g} {r['precision']:6.3f} {r['recall']:6.3f}")
    for c in report["checks"]:
        lines.append(f"  [{'pass' if c['passed'] else 'FAIL'}] {c['check']}")
    lines.append(f"  {'all checks pass' if report['passed'] else 'SOME CHECKS FAIL'} ({report['seconds']} s)")
    return "\n".join(lines)


@dataclass
class RandomFeatures:
    """The known-weak baseline: a ``conv-gap`` network (:class:`~ganvae.metrics.classifier.ConvClassifier`) with
    random weights (seeded), never trained; its pixel statistics are those of the data's training images."""

    model: ConvClassifier
    seed: int

    @property
    def name(self) -> str:
        return f"untrained conv-gap (random weights, seed {self.seed})"

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.cat([self.model.features(chunk.float()).double() for chunk in images.split(batch_size)])
        return feats, torch.empty(len(feats), 0, dtype=torch.float64)


def random_network(data, seed: int = 0, width: int = 32) -> RandomFeatures:
    """:class:`RandomFeatures` for ``data``'s images (seeded; the caller's random stream is left as it was)."""
    from ganvae.metrics.classifier import ConvClassifier

    c, size = int(data.train_images.shape[1]), int(data.train_images.shape[-1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvClassifier(c, size, max(2, len(data.classes)), width)
    model.set_pixel_statistics(data.train_images)
    return RandomFeatures(model.eval(), seed)
