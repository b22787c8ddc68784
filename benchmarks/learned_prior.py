"""The learned prior of encoder models, measured: N(0, I) against Gaussian mixtures of several sizes and covariance
types fitted to the posterior means of the training images, on trained runs or pretrained models, with no retraining.

    .venv/bin/python benchmarks/learned_prior.py mnist-conv-vae mnist-vae --data-dir ../shared/data/mnist \
        --settings normal gmm:10:diag gmm:50:diag gmm:100:full --out benchmarks/out/learned_prior.json

Every setting is scored with the evaluation's protocol: FID, precision, recall and class coverage of 10,000 samples
(seed 0) against the full test split on the shipped classifier's features. ``--per-class`` also fits one mixture per
class for a conditional model and draws each class-balanced sample from its own class's mixture (the alternative
to the pooled mixture the package fits). ``--two-stage`` adds the two-stage VAE of Dai & Wipf 2019: a second,
small VAE trained on the codes, whose prior samples are decoded through it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganvae.common.device import machine_description
from ganvae.config import DataConfig
from ganvae.data.dataset import load_dataset
from ganvae.metrics import core
from ganvae.metrics.classifier import load_classifier
from ganvae.metrics.evaluate import reference_features
from ganvae.models.conditioning import balanced_labels
from ganvae.models.prior import GaussianMixturePrior
from ganvae.storage import load as load_run


def codes_of(model, images, labels):
    """Posterior means of the training images (what ganvae.models.base.fit_latent_prior fits to), (N, Z)."""
    from ganvae.common.pixels import from_unit, uint8_to_unit
    from ganvae.models.base import eval_mode

    out = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(images), 1000):
            x = from_unit(uint8_to_unit(images[start:start + 1000]), model.value_range)
            y = labels[start:start + 1000] if model.conditional else None
            out.append(model.encode(x, y)[0].float())
    return torch.cat(out)


def two_stage_sampler(codes: torch.Tensor, seed: int, minutes: float):
    """Dai & Wipf 2019's second stage: an MLP VAE (two 256-unit layers, latent as wide as the codes) trained on the
    codes with a learned Gaussian decoder variance; returns n -> latents decoded from its own N(0, I)."""
    from torch import nn

    torch.manual_seed(seed)
    d = codes.shape[1]
    mean, std = codes.mean(0), codes.std(0) + 1e-6
    data = (codes - mean) / std
    enc = nn.Sequential(nn.Linear(d, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 2 * d))
    dec = nn.Sequential(nn.Linear(d, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, d))
    log_gamma = nn.Parameter(torch.zeros(()))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), log_gamma], lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    stop = time.monotonic() + minutes * 60
    steps = 0
    while time.monotonic() < stop:
        x = data[torch.randint(len(data), (256,), generator=g)]
        mu, logvar = enc(x).chunk(2, 1)
        u = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = ((x - dec(u)) ** 2).sum(1) / (2 * log_gamma.exp() ** 2) + d * log_gamma
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        loss = (recon + kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1

    def sample(n, generator):
        with torch.no_grad():
            return dec(torch.randn(n, d, generator=generator)) * std + mean

    return sample, steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="pretrained names, pretrained folders or run folders")
    p.add_argument("--data-dir", required=True, help="folder of the full MNIST files")
    p.add_argument("--settings", nargs="+", default=["normal", "gmm:10:diag", "gmm:50:diag", "gmm:50:full",
                                                      "gmm:100:diag", "gmm:100:full", "gmm:200:full"])
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0, help="seed of the fit and of the samples")
    p.add_argument("--per-class", action="store_true", help="conditional models: one mixture per class too")
    p.add_argument("--two-stage", type=float, default=0.0, metavar="MINUTES",
                   help="also the two-stage VAE, its second stage trained for this many minutes")
    p.add_argument("--fit-images", type=int, default=60000, help="codes the mixtures are fitted to (a seeded subset)")
    p.add_argument("--tol", type=float, default=1e-4, help="EM stops below this gain in nats per code")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/learned_prior.json"))
    args = p.parse_args()

    data = load_dataset(DataConfig(dataset="mnist", data_dir=args.data_dir))
    fnet = load_classifier("mnist")
    ref_feats, _ = reference_features(data, fnet)
    ref_stats = core.gaussian_stats(ref_feats)
    rows = []
    for name in args.models:
        loaded = load_run(name, device="cpu")
        model = loaded.model
        t = time.monotonic()
        codes = codes_of(model, data.train_images, data.train_labels)
        encode_s = time.monotonic() - t
        if args.fit_images < len(codes):
            keep = torch.randperm(len(codes), generator=torch.Generator().manual_seed(args.seed))[:args.fit_images]
        else:
            keep = torch.arange(len(codes))
        n = args.n_samples
        labels = balanced_labels(n, model.classes) if model.conditional else None

        def score(z, setting, fit_s=0.0, extra=None):
            images = model.generate(z, labels)
            feats, probs = fnet.extract(images)
            fid = core.frechet_distance(*core.gaussian_stats(feats), *ref_stats)
            prdc = core.precision_recall_density_coverage(ref_feats, feats, k=5, bootstrap=0, seed=args.seed)
            cov = core.class_coverage(probs)
            row = {"model": name, "setting": setting, "classifier_fd": round(fid, 2),
                   "precision_k5": round(prdc["precision"], 3),
                   "recall_k5": round(prdc["recall"], 3), "coverage": round(prdc["coverage"], 3),
                   "class_entropy": round(cov["entropy"], 4), "dropped_classes": cov["dropped_classes"],
                   "fit_seconds": round(fit_s, 1), "codes": len(codes), **(extra or {})}
            if model.conditional:
                row["conditional_accuracy"] = round(core.conditional_accuracy(probs, labels)["conditional_accuracy"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)

        for setting in args.settings:
            g = torch.Generator().manual_seed(args.seed)
            if setting == "normal":
                score(torch.randn(n, model.latent_dim, generator=g), setting)
                continue
            _, k, cov_type = setting.split(":")
            prior = GaussianMixturePrior(model.latent_dim, int(k), cov_type)
            fit = prior.fit(codes[keep], seed=args.seed, tol=args.tol)
            score(prior.draw(n, g), setting, fit.seconds, {"iterations": fit.iterations, "fit_codes": len(keep),
                                                             "tol": args.tol,
                                                             "code_log_likelihood": round(fit.log_likelihood, 3)})
            if args.per_class and model.conditional:
                z = torch.empty(n, model.latent_dim)
                fit_s = 0.0
                for c in model.classes:
                    own = GaussianMixturePrior(model.latent_dim, max(1, int(k) // len(model.classes)), cov_type)
                    fit_s += own.fit(codes[data.train_labels == c], seed=args.seed, tol=args.tol).seconds
                    where = labels == c
                    z[where] = own.draw(int(where.sum()), g)
                score(z, f"{setting}:per-class (k/{len(model.classes)} each)", fit_s)
        if args.two_stage > 0:
            sampler, steps = two_stage_sampler(codes, args.seed, args.two_stage)
            score(sampler(n, torch.Generator().manual_seed(args.seed)), f"two-stage VAE ({args.two_stage:g} min)",
                  args.two_stage * 60, {"second_stage_steps": steps})
        print(f"# {name}: encoded {len(codes)} training images in {encode_s:.1f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine_description(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
