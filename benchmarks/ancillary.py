"""The computations a run does outside its training steps, timed against the machine and a peer (issue 38, item 2).

    .venv/bin/python benchmarks/ancillary.py [--repeats 3] [--no-sklearn] [--out benchmarks/out/ancillary.json]

- **Mixture fit**: the learned prior's EM (:meth:`ganvae.models.prior.GaussianMixturePrior.fit`) on the posterior
  means of the 20,000 training images of the packaged ``mnist-25k`` under the shipped ``mnist-vae``, 100 full-
  covariance components, tolerance 1e-3 nats per code; side by side with scikit-learn's ``GaussianMixture`` on the
  same codes with the same k, covariance type, tolerance, regularisation, iteration cap and a k-means start. Both
  report the mean log-likelihood they reached, so a faster fit that stops worse shows it.
- **Self-conditioning's clustering**: what a default (self-conditioned, spectral) gan does before its first step
  (:meth:`ganvae.models.base.AdversarialModel.before_epoch`) on the same 20,000 images, split into its stages.

Each figure is the fastest of ``--repeats`` runs (the machine's own speed, not its neighbours'); the machine, torch's
threads and the load average are printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from ganvae.common.device import machine_description


def best_of(repeats: int, fn):
    """(fastest seconds, last result) of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def codes_of_training_images():
    from ganvae.common.pixels import from_unit, uint8_to_unit
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.inference.pipeline import load
    from ganvae.models.base import eval_mode

    model = load("mnist-vae", device="cpu").model
    data = load_dataset(DataConfig(dataset="mnist-25k"))
    out = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(data.train_images), 1000):
            x = from_unit(uint8_to_unit(data.train_images[start:start + 1000]), model.value_range)
            out.append(model.encode(x, None)[0].float())
    return torch.cat(out), data


def mixture_fit(codes: torch.Tensor, k: int, repeats: int, sklearn: bool) -> dict:
    from ganvae.models.prior import REG_COVAR, GaussianMixturePrior

    def ours():
        prior = GaussianMixturePrior(codes.shape[1], k, "full")
        return prior.fit(codes, seed=0, tol=1e-3)

    seconds, fit = best_of(repeats, ours)
    row = {"codes": len(codes), "dims": codes.shape[1], "components": k, "covariance": "full", "tol": 1e-3,
           "ganvae_seconds": round(seconds, 3), "ganvae_iterations": fit.iterations,
           "ganvae_log_likelihood": round(fit.log_likelihood, 4)}
    if sklearn:
        from sklearn.mixture import GaussianMixture

        x = codes.double().numpy()

        def theirs():
            return GaussianMixture(k, covariance_type="full", tol=1e-3, reg_covar=REG_COVAR, max_iter=300,
                                   init_params="kmeans", random_state=0).fit(x)

        s_seconds, gm = best_of(repeats, theirs)
        row.update(sklearn_seconds=round(s_seconds, 3), sklearn_iterations=int(gm.n_iter_),
                   sklearn_log_likelihood=round(float(gm.score(x)), 4),
                   speedup=round(s_seconds / seconds, 1))
    return row


def clustering(data, repeats: int) -> dict:
    from ganvae.config import build_config
    from ganvae.models.clustering import kmeans
    from ganvae.models.self_conditioning import pixel_cluster_features
    from ganvae.registry import build_model

    images = data.train_images
    model = build_model(build_config("gan", overrides=["data.dataset=mnist-25k"]), data.image_shape)
    k = model.latent_prior.latent_classes

    def whole():
        model.pseudo_classes.assignments = torch.zeros(0, dtype=torch.long)  # as before the first epoch
        return model.before_epoch(0, images, seed=0)

    seconds, info = best_of(repeats, whole)
    feat_s, feats = best_of(repeats, lambda: pixel_cluster_features(images, k, seed=0))
    km_s, _ = best_of(repeats, lambda: kmeans(feats, k, torch.Generator().manual_seed(0)))
    return {"images": len(images), "pseudo_classes": k, "seconds": round(seconds, 3),
            "features_seconds": round(feat_s, 3), "kmeans_seconds": round(km_s, 3),
            "smallest": info["smallest"], "largest": info["largest"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--components", type=int, default=100)
    p.add_argument("--no-sklearn", action="store_true", help="ganvae only (scikit-learn is not a dependency)")
    p.add_argument("--skip", choices=["fit", "clustering"], action="append", default=[])
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/ancillary.json"))
    args = p.parse_args()
    out = {"machine": machine_description(), "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    codes, data = codes_of_training_images()
    if "fit" not in args.skip:
        out["mixture_fit"] = mixture_fit(codes, args.components, args.repeats, not args.no_sklearn)
        print(json.dumps(out["mixture_fit"]), flush=True)
    if "clustering" not in args.skip:
        out["clustering"] = clustering(data, args.repeats)
        print(json.dumps(out["clustering"]), flush=True)
    out["load_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("machine", "threads", "load_before", "load_after")}))


if __name__ == "__main__":
    main()
