"""Sample-quality metrics on classifier features and probabilities (pure functions, float64).

Shapes: ``real`` ``(N, D)``, ``fake`` ``(M, D)`` feature matrices; ``probs`` ``(M, K)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased) in float64."""
    x = features.double().cpu().numpy()
    return x.mean(0), np.cov(x, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix via eigh."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})`` (Heusel et al. 2017, Eq. 6; Dowson & Landau 1982).

    ``tr((S1 S2)^{1/2})`` is computed as ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})``: the inner matrix
    is symmetric PSD, so both roots come from a symmetric eigendecomposition; this avoids
    the complex round-off of a general ``sqrtm`` on the non-symmetric ``S1 S2``.
    """
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    inner = (inner + inner.T) / 2  # remove asymmetric round-off
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000,
                              seed: int = 0, normalise: bool = True) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3`` (Binkowski et al. 2018, Sec. 3),
    averaged over random subsets; returns (mean, std).

    The kernel assumes features of order one (as Inception's are); with ``normalise`` both sets are divided by the
    root-mean-square of the ``real`` features first (one scalar). Without it the classifier's larger
    features (RMS about 3.8) blow the cubic kernel up: real MNIST against itself scored 448 +- 5064
    (x1000), no better than trained models; with it, 0.65 +- 6.6. ``normalise=False``: the raw features, as
    KID is computed on Inception-v3's (the papers' number, ``kid_inception``).
    """
    g = torch.Generator().manual_seed(seed)
    scale = real.double().pow(2).mean().sqrt() if normalise else torch.tensor(1.0, dtype=torch.float64)
    real, fake = real.double() / scale, fake.double() / scale
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]]
        y = fake[torch.randperm(len(fake), generator=g)[:m]]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) \
            - 2 * kxy.mean()
        values.append(float(mmd))
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))`` in float32, computed in chunks."""
    a, b = a.float(), b.float()
    return torch.cat([torch.cdist(part, b) for part in a.split(chunk)])


def kth_neighbour_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row ``(N,)``."""
    # +1: the point itself is at distance 0; chunked so the (N, N) matrix is never held whole
    return torch.cat([torch.cdist(part, x.float()).topk(k + 1, dim=1, largest=False).values[:, -1]
                      for part in x.float().split(2048)])


def precision_recall_density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5,
                                      bootstrap: int = 0, seed: int = 0) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020).

    - precision: share of fakes inside the real manifold (union of k-NN balls around reals);
    - recall: share of reals inside the fake manifold;
    - density: mean number of real k-NN balls each fake falls in, divided by k (can exceed 1);
    - coverage: share of reals whose k-NN ball holds at least one fake.

    ``bootstrap`` > 0 adds ``<name>_std``: the standard deviation over that many resamplings of the fakes (with
    replacement; the reference and each point's k-NN radius stay fixed), an estimate of the sampling noise.
    """
    r_real = kth_neighbour_radii(real, k)  # (N,)
    r_fake = kth_neighbour_radii(fake, k)  # (M,)
    d = _pairwise(real, fake)  # (N, M)
    inside_real = d <= r_real[:, None]  # (N, M): fake j in the ball of real i
    inside_fake = d <= r_fake[None, :]  # (N, M): real i in the ball of fake j

    def prdc(cols: torch.Tensor | None) -> dict[str, float]:
        ir, ifk = (inside_real, inside_fake) if cols is None else (inside_real[:, cols], inside_fake[:, cols])
        return {"precision": ir.any(0).float().mean().item(), "recall": ifk.any(1).float().mean().item(),
                "density": ir.sum(0).float().mean().item() / k, "coverage": ir.any(1).float().mean().item()}

    out = prdc(None)
    if bootstrap > 0:
        g = torch.Generator().manual_seed(seed)
        draws = [prdc(torch.randint(0, fake.shape[0], (fake.shape[0],), generator=g)) for _ in range(bootstrap)]
        for key in list(out):
            out[f"{key}_std"] = float(np.std([dr[key] for dr in draws]))
    return out


def frechet_distance_bootstrap(fake: torch.Tensor, real_stats: tuple[np.ndarray, np.ndarray], bootstrap: int,
                               seed: int = 0) -> float:
    """Standard deviation of the Frechet distance over ``bootstrap`` resamplings of the fakes (with replacement):
    the sampling noise of the figure, to tell a real difference between two models from a tie."""
    g = torch.Generator().manual_seed(seed)
    values = [frechet_distance(*gaussian_stats(fake[torch.randint(0, len(fake), (len(fake),), generator=g)]),
                               *real_stats)
              for _ in range(bootstrap)]
    return float(np.std(values))


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016, Sec. 4) with the classifier's
    probabilities, averaged over ``splits``; returns (mean, std). The ceiling is the number of classes."""
    # split a fixed shuffle, not the given order: class-sorted inputs would give one class per split
    probs = probs.double()[torch.randperm(len(probs), generator=torch.Generator().manual_seed(0))]
    scores = []
    for part in probs.chunk(splits):
        py = part.mean(0, keepdim=True)
        kl = (part * (torch.log(part + 1e-12) - torch.log(py + 1e-12))).sum(1).mean()
        scores.append(math.exp(float(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def class_coverage(probs: torch.Tensor, classes: list[int] | None = None, confident: float = 0.9) -> dict:
    """Which classes the samples look like, by the classifier's argmax.

    Args:
        probs: ``(M, K)`` class probabilities.
        classes: the classes the model was trained on (default all ``K``); the expected share of each is 1/len(classes).
        confident: probability above which a prediction counts as confident.

    Returns:
        histogram (share per class), normalised entropy of the histogram over the trained classes
        (1 = perfectly balanced), share of confident predictions, and the trained classes that get
        under a third of their expected share (a sign of mode collapse).
    """
    k = probs.shape[1]
    classes = list(range(k)) if classes is None else sorted(classes)
    pred = probs.argmax(1)
    hist = torch.bincount(pred, minlength=k).double() / len(pred)
    p = hist[classes]
    p_norm = p / p.sum() if p.sum() > 0 else p
    entropy = float(-(p_norm[p_norm > 0] * torch.log(p_norm[p_norm > 0])).sum())
    expected = 1.0 / len(classes)
    return {
        "histogram": [round(float(v), 5) for v in hist],
        "entropy": max(0.0, entropy / math.log(len(classes))) if len(classes) > 1 else 1.0,  # no -0.0
        "confident_share": float((probs.max(1).values > confident).double().mean()),
        "dropped_classes": [c for c in classes if float(hist[c]) < expected / 3],
        "off_class_share": float(1 - p.sum()),
    }


def conditional_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """How often the feature classifier names the class a conditional model was asked for.

    Args:
        probs: ``(M, K)`` class probabilities of the samples.
        labels: ``(M,)`` the requested classes.

    Returns ``{"conditional_accuracy": share overall, "conditional_accuracy_per_class": {class: share}}``; the
    overall share is the mean of the per-class shares (a class-balanced request makes the two agree).
    """
    hit = probs.argmax(1).eq(labels.to(probs.device)).double()
    per_class = {int(c): float(hit[labels == c].mean()) for c in labels.unique().tolist()}
    return {"conditional_accuracy": float(np.mean(list(per_class.values()))) if per_class else None,
            "conditional_accuracy_per_class": per_class}


def intra_class_fid(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor,
                    real_labels: torch.Tensor) -> dict:
    """Intra-class Frechet distance (Miyato & Koyama 2018, Sec. 5): the distance between the samples asked for class
    ``c`` and the real images of class ``c``, averaged over the classes present in both.

    Returns ``{"intra_fid": mean (None when no class has two images on both sides), "intra_fid_per_class": {class:
    distance}, "intra_fid_min_images": the fewest images of one class on either side}``. With fewer images per class
    than feature dimensions the covariances are rank-deficient and the distance reads high: compare intra-FIDs only
    at equal counts (the protocol's 10,000 samples against MNIST's test split: about 1,000 a class on each side).
    """
    per_class, counts = {}, []
    for c in sorted(set(fake_labels.tolist()) & set(real_labels.tolist())):
        f, r = fake[fake_labels == c], real[real_labels == c]
        if len(f) < 2 or len(r) < 2:
            continue
        per_class[int(c)] = frechet_distance(*gaussian_stats(f), *gaussian_stats(r))
        counts.append(min(len(f), len(r)))
    return {"intra_fid": float(np.mean(list(per_class.values()))) if per_class else None,
            "intra_fid_per_class": per_class, "intra_fid_min_images": min(counts) if counts else 0}


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each row of ``queries`` ``(Q, D)``, the Euclidean distance to its nearest row of ``reference``."""
    ref = reference.float()
    ref_sq = (ref * ref).sum(1)
    out = []
    for part in queries.float().split(chunk):
        # |q - r|^2 = |q|^2 - 2 q.r + |r|^2, one matrix product per chunk
        d2 = (part * part).sum(1, keepdim=True) - 2 * part @ ref.T + ref_sq
        out.append(d2.min(1).values.clamp_min(0).sqrt())
    return torch.cat(out)


def memorisation(samples: torch.Tensor, test: torch.Tensor, train: torch.Tensor) -> dict[str, float]:
    """Pixel-space distance of samples, and of real test images, to their nearest training image.

    Samples much closer to the training set than test images are (ratio well below 1, or
    many under the test images' 1st percentile) suggest copies of training images.
    """
    flat = lambda t: t.flatten(1).float()  # noqa: E731
    train_f = flat(train)
    d_samples = nearest_distances(flat(samples), train_f)
    d_test = nearest_distances(flat(test), train_f)
    p1 = torch.quantile(d_test, 0.01)
    return {
        "sample_to_train_median": float(d_samples.median()),
        "test_to_train_median": float(d_test.median()),
        "ratio": float(d_samples.median() / d_test.median()),
        "share_closer_than_test_p1": float((d_samples < p1).float().mean()),
    }


def gradient_energy(images: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels of ``(M, C, H, W)`` images in [0, 1].

    Blur lowers it (a blurred edge spreads one large step into several small ones, whose squares sum to less);
    speckle raises it. Unlike total variation, which a monotone blurred edge leaves unchanged.
    """
    x = images.float()
    dx = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean()
    return float(dx + dy)


def sharpness_ratio(samples: torch.Tensor, real: torch.Tensor) -> float:
    """Gradient energy of the samples over that of real images: 1 = as sharp as the data, below 1 = blurred
    (a VAE's mean images), above 1 = speckled. A pixel statistic, no classifier involved."""
    return gradient_energy(samples) / max(gradient_energy(real), 1e-12)
