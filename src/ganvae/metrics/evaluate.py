"""``ganvae evaluate``: every metric of a run, each stored with its protocol.

Protocol recorded with the numbers: sample count and seed, reference split and its size,
feature network (name, version, SHA-256), k of the nearest-neighbour metrics, KID subsets,
the IWAE k and the binarisation of the test images.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganvae.config import DataConfig
from ganvae.data.dataset import ImageData, load_dataset
from ganvae.metrics import core
from ganvae.metrics.classifier import FeatureNetwork, load_classifier
from ganvae.utils import atomic_write_text

if TYPE_CHECKING:
    from ganvae.api import LoadedRun

log = logging.getLogger(__name__)

# direction of each headline metric: True = higher is better
HIGHER_IS_BETTER = {
    "fid": False, "kid": False, "precision": True, "recall": True, "density": True, "coverage": True,
    "inception_score": True, "class_entropy": True, "confident_share": True, "memorisation_ratio": True,
    "test_elbo": True, "test_nll_iwae": False, "reconstruction_error": False, "sharpness": True,
}
LABELS = {
    "fid": "Frechet distance (classifier features)", "kid": "KID (x1000)", "precision": "precision (k=5)",
    "recall": "recall (k=5)", "density": "density (k=5)", "coverage": "coverage (k=5)",
    "inception_score": "classifier Inception Score", "class_entropy": "class balance (normalised entropy)",
    "confident_share": "confident predictions", "sharpness": "edge sharpness (samples / real)", "memorisation_ratio": "sample/test distance to train (median ratio)",
    "test_elbo": "test ELBO (nats)", "test_nll_iwae": "test NLL, IWAE bound (nats)",
    "reconstruction_error": "reconstruction error (nats or MSE)",
}


def sample_metrics(samples: torch.Tensor, data: ImageData, fnet: FeatureNetwork, seed: int = 0, k: int = 5,
                   memorisation_n: int = 1000, cheap: bool = False,
                   reference: tuple[torch.Tensor, torch.Tensor] | None = None, bootstrap: int = 20) -> dict[str, Any]:
    """Metrics of ``samples`` ``(M, 1, H, W)`` in [0, 1] against the test split of ``data``.

    Args:
        cheap: only the Frechet distance and class coverage (for in-training tracking).
        reference: precomputed (features, probs) of the test split.
        bootstrap: resamplings of the samples behind the ``<metric>_std`` noise estimates (0 = none).
    """
    timings: dict[str, float] = {}
    t = time.monotonic()
    ref_feats, _ = reference if reference is not None else reference_features(data, fnet)
    feats, probs = fnet.extract(samples)
    timings["features"] = time.monotonic() - t
    t = time.monotonic()
    ref_stats = core.gaussian_stats(ref_feats)
    fid = core.frechet_distance(*core.gaussian_stats(feats), *ref_stats)
    coverage = core.class_coverage(probs, list(data.class_subset) if data.class_subset else None)
    out: dict[str, Any] = {"fid": fid, "class_entropy": coverage["entropy"], "confident_share": coverage["confident_share"],
                           "dropped_classes": coverage["dropped_classes"], "class_histogram": coverage["histogram"]}
    timings["fid_coverage"] = time.monotonic() - t
    if cheap:
        return out
    t = time.monotonic()
    kid, kid_std = core.kernel_inception_distance(ref_feats, feats, seed=seed)
    out["kid"], out["kid_std"] = kid * 1000, kid_std * 1000
    timings["kid"] = time.monotonic() - t
    t = time.monotonic()
    out.update(core.precision_recall_density_coverage(ref_feats, feats, k=k, bootstrap=bootstrap, seed=seed))
    timings["prdc"] = time.monotonic() - t
    if bootstrap > 0:
        t = time.monotonic()
        out["fid_std"] = core.frechet_distance_bootstrap(feats, ref_stats, bootstrap, seed=seed)
        timings["fid_bootstrap"] = time.monotonic() - t
    out["sharpness"] = core.sharpness_ratio(samples, data.test_images.float() / 255)
    out["inception_score"], out["inception_score_std"] = core.inception_score(probs)
    t = time.monotonic()
    g = torch.Generator().manual_seed(seed)
    m = min(memorisation_n, len(samples), len(data.test_images))
    test_sub = data.test_images[torch.randperm(len(data.test_images), generator=g)[:m]].float() / 255
    mem = core.memorisation(samples[:m], test_sub, data.train_images.float() / 255)
    out["memorisation_ratio"] = mem["ratio"]
    out["memorisation"] = mem
    timings["memorisation"] = time.monotonic() - t
    out["timings"] = timings
    return out


def reference_features(data: ImageData, fnet: FeatureNetwork) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and probabilities of the test split, cached on disk by classifier checksum and split content."""
    import hashlib

    from safetensors.torch import load_file, save_file

    from ganvae.utils import atomic_save, default_cache_dir

    digest = hashlib.blake2b(data.test_images.cpu().numpy().tobytes(), digest_size=8).hexdigest()
    path = default_cache_dir() / "features" / f"{fnet.sha256[:16]}-{digest}.safetensors"
    if path.is_file():
        try:
            cached = load_file(str(path))
            return cached["features"], cached["probs"]
        except Exception:  # a damaged cache is recomputed
            pass
    feats, probs = fnet.extract(data.test_images.float() / 255)
    try:
        atomic_save(path, lambda tmp: save_file({"features": feats, "probs": probs}, str(tmp)))
    except OSError:
        log.debug("could not cache reference features at %s", path)
    return feats, probs


@torch.inference_mode()
def likelihood_metrics(model, data: ImageData, k: int = 50, seed: int = 0, batch_size: int = 250,
                       max_images: int | None = None) -> dict[str, Any]:
    """Test ELBO, reconstruction error and the IWAE bound on the test NLL (Burda et al. 2016, Eq. 8), in nats.

    For a Bernoulli decoder the test images are binarised once, stochastically, with ``seed``
    (x ~ Bernoulli(grey level)), the protocol of Burda et al. 2016; a Gaussian decoder is
    evaluated on the grey levels in [0, 1] (a density, not comparable with the binary figures).
    """
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    x_all = data.test_images.float() / 255
    if max_images is not None:
        x_all = x_all[:max_images]
    bernoulli = getattr(cfg, "decoder", "bernoulli") == "bernoulli"
    if bernoulli:
        x_all = torch.bernoulli(x_all, generator=g)
    from ganvae.models.base import eval_mode

    device = model.device
    elbo, iwae, recon_err = [], [], []
    # the posterior draws use a forked random stream: evaluating never changes a training run's randomness
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), eval_mode(model):
        torch.manual_seed(seed)
        for x in x_all.split(batch_size):
            x = x.to(device)
            log_w = model.log_importance_weights(x, k)  # (k, B)
            elbo.append(log_w.mean(0).cpu())
            iwae.append((torch.logsumexp(log_w, 0) - math.log(k)).cpu())
            mu, _ = model.encode(x)
            recon_err.append(model.reconstruction_nll(model.decoder_logits(mu), x).cpu())
    protocol = ("test images binarised once, stochastically (seed %d), Bernoulli likelihood" % seed) if bernoulli \
        else f"grey levels in [0, 1], Gaussian likelihood (std {cfg.decoder_std})"
    return {
        "test_elbo": float(torch.cat(elbo).mean()),
        "test_nll_iwae": float(-torch.cat(iwae).mean()),
        "reconstruction_error": float(torch.cat(recon_err).mean()),
        "likelihood_protocol": {"iwae_k": k, "test_images": len(x_all), "binarisation": protocol,
                                "elbo": "mean of single-sample log weights over the k draws"},
    }


def load_image_samples(folder: str | Path, image_size: int, n: int, seed: int = 0) -> torch.Tensor:
    """Up to ``n`` images of a folder as samples ``(M, 1, S, S)`` in [0, 1] (a seeded subset when it holds more)."""
    from ganvae.data.dataset import image_files, read_grey_images
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

    x = torch.from_numpy(np.stack(read_grey_images(files, image_size)))
    return x.unsqueeze(1).float() / 255


def evaluate(run: str | Path | LoadedRun, n_samples: int = 10000, seed: int = 0, iwae_k: int = 50,
             data_dir: str | None = None, out: str | Path | None = None,
             classifier: str | Path | None = None, dataset: str = "mnist", use_ema: bool = True) -> dict[str, Any]:
    """Evaluate a run (a folder, a checkpoint, an already loaded run), ``real:DATASET`` (its training
    images as 'samples': the reference figures) or ``images:DIR`` (a folder of another program's
    samples, scored against ``dataset`` with the same protocol; images are made grey and resized to
    the dataset's size). ``use_ema=False`` scores the trained weights instead of their moving average.

    Writes the result as JSON to ``out`` (default ``<run>/metrics.json``) and returns it.
    """
    from dataclasses import replace

    from ganvae import api

    start = time.monotonic()
    real = str(run).startswith("real:")
    folder = str(run)[len("images:"):] if str(run).startswith("images:") else None
    if real or folder is not None:
        data = load_dataset(DataConfig(dataset=str(run)[5:] if real else dataset, data_dir=data_dir))
        loaded = None
        model_name = "real data (train split)" if real else f"images in {folder}"
        dataset = data.name
    else:
        loaded = api.load_run(run, use_ema=use_ema)  # (a LoadedRun is used as it is)
        if isinstance(run, api.LoadedRun):
            run = loaded.run_dir or loaded.checkpoint.path
        data_cfg = loaded.config.data if data_dir is None else replace(loaded.config.data, data_dir=data_dir)
        data = load_dataset(data_cfg)
        model_name, dataset = loaded.name, data_cfg.dataset
    fnet = load_classifier(dataset, path=classifier)
    t = time.monotonic()
    if real:
        idx = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(seed))[:n_samples]
        samples = data.train_images[idx].float() / 255
    elif folder is not None:
        samples = load_image_samples(folder, data.image_shape[-1], n_samples, seed)
    else:
        samples = api.sample_images(loaded, n_samples, seed)
    sampling_s = time.monotonic() - t
    result: dict[str, Any] = {
        "run": str(run), "model": model_name, "dataset": data.name,
        "protocol": {
            "n_samples": len(samples), "sample_seed": seed, "reference": f"test split ({len(data.test_images)} images)",
            "feature_network": {"name": fnet.name, "version": fnet.version, "sha256": fnet.sha256,
                                "test_accuracy": fnet.test_accuracy},
            "nearest_neighbour_k": 5,
            "noise": "+- = standard deviation over 20 bootstrap resamplings of the samples (reference fixed); KID and "
                     "Inception Score: over their subsets",
            "kid": "cubic polynomial kernel on features divided by the reference RMS, 50 subsets of up to 1000",
            "inception_score_splits": 10, "memorisation": "pixel L2 to nearest train image, 1000 samples vs 1000 test",
            "classes": list(data.class_subset) if data.class_subset else None,
            "weights": None if loaded is None else (
                "exponential moving average" if loaded.model.has_ema else "trained"),
        },
        "metrics": sample_metrics(samples, data, fnet, seed=seed),
    }
    result["metrics"]["timings"]["sampling"] = sampling_s
    if loaded is not None and loaded.model.has_encoder:
        t = time.monotonic()
        result["metrics"].update(likelihood_metrics(loaded.model, data, k=iwae_k, seed=seed))
        result["metrics"]["timings"]["likelihood"] = time.monotonic() - t
    if loaded is not None:
        result["training"] = training_summary(loaded.run_dir)
    result["seconds"] = round(time.monotonic() - start, 2)
    result["machine"] = machine_description()
    if out is None and loaded is not None and loaded.run_dir is not None:
        out = loaded.run_dir / "metrics.json"
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def training_summary(run_dir: Path | None) -> dict | None:
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return None
    return json.loads((run_dir / "summary.json").read_text())


def machine_description() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def format_table(result: dict[str, Any]) -> str:
    """A two-column text table of the headline metrics."""
    m = result["metrics"]
    lines = [f"{result['model']} on {result['dataset']}: {result['protocol']['n_samples']} samples, "
             f"features {result['protocol']['feature_network']['name']}"]
    for key, label in LABELS.items():
        if key in m:
            value = m[key]
            extra = f" +- {m[key + '_std']:.3f}" if key + "_std" in m else ""
            lines.append(f"  {label:<46} {value:10.4f}{extra}")
    if m.get("dropped_classes"):
        lines.append(f"  classes under a third of their share: {m['dropped_classes']}")
    lines.append(f"  ({result['seconds']:.1f} s)")
    return "\n".join(lines)
