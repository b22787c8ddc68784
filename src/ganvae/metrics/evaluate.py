"""``ganvae evaluate``: every metric of a run, each stored with its protocol.

Protocol recorded with the numbers: sample count and seed, reference split and its size,
feature network (name, version, SHA-256, the dataset and image shape it was trained on, what it learned, the command
that trained it), k of the nearest-neighbour metrics, KID subsets, the IWAE k and the binarisation of the test images;
with Inception-v3 weights given, the papers' FID and KID and that network's identity.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganvae.common.pixels import uint8_to_unit
from ganvae.data.dataset import ImageData
from ganvae.metrics import core
from ganvae.metrics.classifier import FEATURE_DIM, FeatureNetwork
from ganvae.metrics.reference import reference_features
from ganvae.metrics.registry import (
    CLASS_ENTROPY,
    CONDITIONAL_ACCURACY,
    CONFIDENT_SHARE,
    COVERAGE,
    DENSITY,
    INCEPTION_SCORE,
    INTRA_FID,
    MEMORISATION_RATIO,
    PRECISION,
    RECALL,
    RECONSTRUCTION_ERROR,
    SHARPNESS,
    TEST_ELBO,
    TEST_NLL_IWAE,
    evaluated_metrics,
)

if TYPE_CHECKING:
    from ganvae.metrics.inception import InceptionFeatures
    from ganvae.models.base import GenerativeModel

log = logging.getLogger(__name__)

def sample_metrics(samples: torch.Tensor, data: ImageData, fnet: FeatureNetwork, seed: int = 0, k: int = 5,
                   memorisation_n: int = 1000, fid_and_coverage_only: bool = False,
                   reference: tuple[torch.Tensor, torch.Tensor] | None = None, bootstrap: int = 20,
                   features: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Metrics of ``samples`` ``(M, C, H, W)`` in [0, 1] against the test split of ``data``.

    The distances' keys are those of the feature network's objective (``classifier_fd`` on a classifier,
    ``rotation_fd`` on a rotation predictor); the class-based metrics (classifier score, class balance) only on a
    classifier.

    Args:
        fid_and_coverage_only: only the Frechet distance and class coverage (for in-training tracking).
        reference: precomputed (features, probs) of the test split.
        features: precomputed (features, probs) of the samples (``fnet.extract(samples)``).
        bootstrap: resamplings of the samples behind the ``<metric>_std`` noise estimates (0 = none).
    """
    timings: dict[str, float] = {}
    fd_metric, kd_metric, has_classes = fnet.objective.fd, fnet.objective.kd, fnet.objective.has_classes
    t = time.monotonic()
    ref_feats, _ = reference if reference is not None else reference_features(data, fnet)
    feats, probs = features if features is not None else fnet.extract(samples)
    timings["features"] = time.monotonic() - t
    t = time.monotonic()
    ref_stats = core.gaussian_stats(ref_feats)
    out: dict[str, Any] = {fd_metric.key: core.frechet_distance(*core.gaussian_stats(feats), *ref_stats)}
    if has_classes:
        coverage = core.class_coverage(probs, list(data.class_subset) if data.class_subset else None)
        out.update({CLASS_ENTROPY.key: coverage["entropy"], CONFIDENT_SHARE.key: coverage["confident_share"],
                    "dropped_classes": coverage["dropped_classes"], "class_histogram": coverage["histogram"]})
    timings["fid_coverage"] = time.monotonic() - t
    if fid_and_coverage_only:
        return out
    t = time.monotonic()
    kid, kid_std = core.kernel_inception_distance(ref_feats, feats, seed=seed)
    out[kd_metric.key], out[kd_metric.std_key] = kid * 1000, kid_std * 1000
    timings["kid"] = time.monotonic() - t
    t = time.monotonic()
    prdc = core.precision_recall_density_coverage(ref_feats, feats, k=k, bootstrap=bootstrap, seed=seed)
    named = ((PRECISION, "precision"), (RECALL, "recall"), (DENSITY, "density"), (COVERAGE, "coverage"))  # core's names
    out.update({metric.key: prdc[name] for metric, name in named})
    out.update({metric.std_key: prdc[f"{name}_std"] for metric, name in named if f"{name}_std" in prdc})
    timings["prdc"] = time.monotonic() - t
    if bootstrap > 0:
        t = time.monotonic()
        out[fd_metric.std_key] = core.frechet_distance_bootstrap(feats, ref_stats, bootstrap, seed=seed)
        timings["fid_bootstrap"] = time.monotonic() - t
    out[SHARPNESS.key] = core.sharpness_ratio(samples, uint8_to_unit(data.test_images))
    if has_classes:
        out[INCEPTION_SCORE.key], out[INCEPTION_SCORE.std_key] = core.inception_score(probs)
    t = time.monotonic()
    g = torch.Generator().manual_seed(seed)
    m = min(memorisation_n, len(samples), len(data.test_images))
    test_sub = uint8_to_unit(data.test_images[torch.randperm(len(data.test_images), generator=g)[:m]])
    mem = core.memorisation(samples[:m], test_sub, uint8_to_unit(data.train_images))
    out[MEMORISATION_RATIO.key] = mem["ratio"]
    out["memorisation"] = mem
    timings["memorisation"] = time.monotonic() - t
    out["timings"] = timings
    return out


@torch.inference_mode()
def conditional_metrics(samples: torch.Tensor, labels: torch.Tensor, data: ImageData, fnet: FeatureNetwork,
                        reference: tuple[torch.Tensor, torch.Tensor] | None = None,
                        features: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """Conditional accuracy and intra-class Frechet distance of ``samples`` ``(M, C, H, W)`` drawn for ``labels``
    ``(M,)``, on the feature classifier (:func:`ganvae.metrics.core.conditional_accuracy`, ``intra_class_fid``).
    ``reference`` and ``features``: as in :func:`sample_metrics`."""
    ref_feats, _ = reference if reference is not None else reference_features(data, fnet)
    feats, probs = features if features is not None else fnet.extract(samples)
    labels = labels.cpu()
    accuracy = core.conditional_accuracy(probs, labels)
    intra = core.intra_class_fid(feats, labels, ref_feats, data.test_labels.cpu())
    return {CONDITIONAL_ACCURACY.key: accuracy["conditional_accuracy"],  # core's names on the right
            CONDITIONAL_ACCURACY.companion("per_class"): accuracy["conditional_accuracy_per_class"],
            INTRA_FID.key: intra["intra_fid"], INTRA_FID.companion("per_class"): intra["intra_fid_per_class"],
            INTRA_FID.companion("min_images"): intra["intra_fid_min_images"]}


def likelihood_metrics(model, data: ImageData, k: int = 50, seed: int = 0, batch_size: int = 250,
                       max_images: int | None = None) -> dict[str, Any]:
    """Test ELBO, reconstruction error and the IWAE bound on the test NLL (Burda et al. 2016, Eq. 8), in nats.

    For a Bernoulli decoder the test images are binarised once, stochastically, with ``seed``
    (x ~ Bernoulli(grey level)), the protocol of Burda et al. 2016; a Gaussian decoder is
    evaluated on the grey levels in [0, 1] (a density, not comparable with the binary figures).
    """
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    x_all = uint8_to_unit(data.test_images)
    y_all = data.test_labels
    if max_images is not None:
        x_all, y_all = x_all[:max_images], y_all[:max_images]
    y_chunks = y_all.split(batch_size) if model.conditional else [None] * len(x_all.split(batch_size))
    bernoulli = getattr(cfg, "decoder", "bernoulli") == "bernoulli"
    if bernoulli:
        x_all = torch.bernoulli(x_all, generator=g)
    from ganvae.models.base import eval_mode

    device = model.device
    elbo, iwae, recon_err = [], [], []
    # the posterior draws use a forked random stream: evaluating never changes a training run's randomness
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), eval_mode(model), torch.no_grad():
        torch.manual_seed(seed)
        for x, y in zip(x_all.split(batch_size), y_chunks):  # y: the labels of a conditional model's images
            x, y = x.to(device), None if y is None else y.to(device)
            log_w = model.log_importance_weights(x, k, y)  # (k, B)
            elbo.append(log_w.mean(0).cpu())
            iwae.append((torch.logsumexp(log_w, 0) - math.log(k)).cpu())
            mu, _ = model.encode(x, y)
            recon_err.append(model.reconstruction_nll(model.decoder_logits(mu, y), x).cpu())
    protocol = ("test images binarised once, stochastically (seed %d), Bernoulli likelihood" % seed) if bernoulli \
        else f"grey levels in [0, 1], Gaussian likelihood (std {cfg.decoder_std})"
    if model.conditional:
        protocol += "; conditional: log p(x | y), each image with its own label"
    # the bound is of the model as trained: the learned prior changes where samples come from, not the objective
    protocol += "; prior of the bound: N(0, I), the training objective's"
    return {
        TEST_ELBO.key: float(torch.cat(elbo).mean()),
        TEST_NLL_IWAE.key: float(-torch.cat(iwae).mean()),
        RECONSTRUCTION_ERROR.key: float(torch.cat(recon_err).mean()),
        "likelihood_protocol": {"iwae_k": k, "test_images": len(x_all), "binarisation": protocol,
                                "elbo": "mean of single-sample log weights over the k draws"},
    }


def load_image_samples(folder: str | Path, image_size: int, n: int, seed: int = 0, channels: int = 1) -> torch.Tensor:
    """Up to ``n`` images of a folder as samples ``(M, C, S, S)`` in [0, 1] (a seeded subset when it holds more):
    grey (``channels=1``), or RGB for colour data (``channels=3``: a grey file in each channel)."""
    from ganvae.data.dataset import image_files, read_folder_image, read_grey_images
    from ganvae.errors import DataError

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"images:{folder}: no such folder. Give a folder of PNG/JPG samples, e.g. images:out/samples.")
    files = image_files(root)
    if not files:
        raise DataError(f"images:{folder}: no images found (looked for .png, .jpg, .jpeg, .bmp, .gif, .webp).")
    if len(files) > n:
        keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        files = [files[i] for i in keep.tolist()]
    import numpy as np

    if channels == 1:
        return uint8_to_unit(torch.from_numpy(np.stack(read_grey_images(files, image_size))).unsqueeze(1))
    rgb = []
    for f in files:
        im = read_folder_image(f, image_size, "rgb")  # a colour file in colour; a grey one as grey
        rgb.append(im.rgb if im.rgb is not None else np.repeat(np.asarray(im.grey)[..., None], 3, axis=-1))
    return uint8_to_unit(torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).contiguous())  # (M, 3, S, S)


def evaluate(model: GenerativeModel | None, data: ImageData, fnet: FeatureNetwork, n_samples: int = 10000,
             seed: int = 0, iwae_k: int = 50, samples: torch.Tensor | None = None,
             inception: InceptionFeatures | None = None) -> dict[str, Any]:
    """Every metric of ``model`` against the test split of ``data``, stored with its protocol.

    Args:
        model: the model to sample from (its likelihood bounds too, when it has an encoder); None with ``samples``.
        fnet: the feature network of ``data`` (:func:`ganvae.metrics.classifier.load_feature_network`); images of
            another shape than it was trained on are refused before anything is drawn.
        samples: ``(M, C, H, W)`` images in [0, 1] to score instead of the model's (real data, another
            program's samples).
        n_samples, seed: how many samples to draw, from a generator seeded with ``seed``.
        iwae_k: importance samples of the likelihood bound.
        inception: pytorch-fid's Inception-v3 (:func:`ganvae.metrics.inception.load_inception`, from the user's
            weights file): adds ``fid_inception`` and ``kid_inception``, the papers' numbers.

    Returns ``{"protocol": ..., "metrics": ...}``; :func:`ganvae.inference.tasks.evaluate` adds the run's details.
    """
    fnet.check_images(tuple(data.test_images.shape), f"{data.name}'s images")  # before minutes of sampling
    t = time.monotonic()
    labels = None
    if samples is None:
        labels = model.labels_for(n_samples)  # a class-balanced request: the trained classes in turn
        samples = model.sample(n_samples, generator=torch.Generator().manual_seed(seed), labels=labels)
    sampling_s = time.monotonic() - t
    t = time.monotonic()  # features once, for the sample metrics and the conditional ones
    reference, extracted = reference_features(data, fnet), fnet.extract(samples)
    features_s = time.monotonic() - t
    result: dict[str, Any] = {
        "protocol": {
            "n_samples": len(samples), "sample_seed": seed, "reference": f"test split ({len(data.test_images)} images)",
            "feature_network": fnet.describe(),
            "nearest_neighbour_k": 5,
            "noise": "+- = standard deviation over 20 bootstrap resamplings of the samples (reference fixed); KID and "
                     "Inception Score: over their subsets",
            "kernel_distance": "KID's unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018) on the "
                               "feature network's features divided by the reference's RMS, 50 subsets of up to 1000, "
                               "x1000",
            "keys": fnet.objective.keys_note,
            "inception_score_splits": 10, "memorisation": "pixel L2 to nearest train image, 1000 samples vs 1000 test",
            "classes": list(data.class_subset) if data.class_subset else None,
            "weights": None if model is None else ("exponential moving average" if model.has_ema else "trained"),
            "prior": None if model is None else model.latent_prior.describe(),
        },
        "metrics": sample_metrics(samples, data, fnet, seed=seed, reference=reference, features=extracted),
    }
    result["metrics"]["timings"]["features"] = features_s
    result["metrics"]["timings"]["sampling"] = sampling_s
    if inception is not None:
        from ganvae.metrics.inception import inception_metrics

        t = time.monotonic()
        result["metrics"].update(inception_metrics(samples, data, inception, seed=seed))
        result["metrics"]["timings"]["inception"] = time.monotonic() - t
        result["protocol"]["inception"] = inception.describe()
    if labels is not None and fnet.objective.has_classes:
        t = time.monotonic()
        result["metrics"].update(conditional_metrics(samples, labels, data, fnet, reference, extracted))
        result["metrics"]["timings"]["conditional"] = time.monotonic() - t
        result["protocol"]["conditional"] = ("class-balanced request (labels cycle through the classes the model was "
                                             "trained on); conditional accuracy = share the feature classifier assigns "
                                             "to the asked class, mean over classes; intra-class Frechet distance = "
                                             "per class against that class's test images, mean over classes (Miyato & "
                                             "Koyama 2018)")
    if model is not None and model.has_encoder:
        t = time.monotonic()
        result["metrics"].update(likelihood_metrics(model, data, k=iwae_k, seed=seed))
        result["metrics"]["timings"]["likelihood"] = time.monotonic() - t
    return result


# with fewer images of a class than feature dimensions (128) its covariance is rank-deficient and the intra-FID
# reads high (the protocol's 10,000 samples against MNIST's test split give about 1,000 a class on each side)
INTRA_FID_FAIR = FEATURE_DIM


def format_table(result: dict[str, Any]) -> str:
    """A two-column text table of the headline metrics."""
    m = result["metrics"]
    prior = result["protocol"].get("prior")
    lines = [f"{result['model']} on {result['dataset']}: {result['protocol']['n_samples']} samples"
             f"{' from the prior ' + prior if prior else ''}, features {result['protocol']['feature_network']['name']}"]
    if result["protocol"].get("stand_in"):
        lines.append(f"  ({result['protocol']['stand_in']})")
    for metric in evaluated_metrics():
        if m.get(metric.key) is not None:
            value = m[metric.key]
            extra = f" +- {m[metric.std_key]:.3f}" if metric.std_key in m else ""
            lines.append(f"  {metric.label:<46} {value:10.4f}{extra}")
    if m.get("dropped_classes"):
        lines.append(f"  classes under a third of their share: {m['dropped_classes']}")
    for metric, name in ((CONDITIONAL_ACCURACY, "conditional accuracy"), (INTRA_FID, "intra-FID")):
        if m.get(metric.companion("per_class")):
            lines.append(f"  {name} per class: "
                         + ", ".join(f"{c}: {v:.3f}" for c, v in m[metric.companion("per_class")].items()))
    fewest = m.get(INTRA_FID.companion("min_images"), INTRA_FID_FAIR)
    if m.get(INTRA_FID.companion("per_class")) and fewest < INTRA_FID_FAIR:
        lines.append(f"  (intra-class Frechet distance from as few as {fewest} images of a class: fewer than "
                     f"the {INTRA_FID_FAIR} feature dimensions, it reads high; compare it only at equal counts)")
    lines.append(f"  ({result['seconds']:.1f} s)")
    return "\n".join(lines)
