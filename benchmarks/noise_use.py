"""Does a trained conditional or self-conditioned generator use its noise? For each class (or pseudo-class), 64
noises decoded with it, and the pixel standard deviation across them, averaged over the pixels (real MNIST digits
of one class: about 0.15; a generator that ignores its noise and draws one image per class: under 0.01). This is
the failure ``benchmarks/cdcgan_diversity.py`` measures on a fresh 1,500-step training, read off a finished run
(:func:`ganvae.metrics.noise_use.noise_spreads`, which training also checks at every quality point).

    .venv/bin/python benchmarks/noise_use.py RUN [--no-ema]

RUN: a run folder, checkpoint, pretrained folder or zoo name (``mnist-cdcgan``).
"""

import argparse

import torch

from ganvae.metrics.noise_use import NOISES, noise_spreads
from ganvae.storage import load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--no-ema", action="store_true", help="the trained weights, not their moving average")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = load(args.run, device="cpu", use_ema=not args.no_ema).model
    values = noise_spreads(model, torch.Generator().manual_seed(0))
    if values is None:
        raise SystemExit("the model takes no classes or pseudo-classes: nothing to measure per class")
    kind = "pseudo-class" if model.latent_prior.latent_classes else "class"
    print(f"{args.run}: pixel std across {NOISES} noises per {kind}: {[round(v, 3) for v in values]} "
          f"(min {min(values):.3f}; real digits about 0.15)")


if __name__ == "__main__":
    main()
