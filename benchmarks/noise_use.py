"""Does a trained conditional or self-conditioned generator use its noise? For each class (or pseudo-class), 64
noises decoded with it, and the pixel standard deviation across them, averaged over the pixels (real MNIST digits
of one class: about 0.15; a generator that ignores its noise and draws one image per class: under 0.01). This is
the failure ``benchmarks/cdcgan_diversity.py`` measures on a fresh 1,500-step training, read off a finished run.

    .venv/bin/python benchmarks/noise_use.py RUN [--no-ema]

RUN: a run folder, checkpoint, pretrained folder or zoo name (``mnist-cdcgan``).
"""

import argparse

import torch
import torch.nn.functional as F

from ganvae.storage import load

NOISES = 64


def spreads(model, generator: torch.Generator) -> list[float]:
    """Per class ``c``: the mean over pixels of the std over ``NOISES`` images of class ``c``."""
    out = []
    if model.self_conditioned:
        k = model.pseudo_classes.k
        for c in range(k):
            z = torch.randn(NOISES, model.noise_dim, generator=generator)
            x = model.generate(torch.cat([z, F.one_hot(torch.full((NOISES,), c), k).to(z)], dim=1))
            out.append(float(x.std(0).mean()))
    elif model.conditional:
        for c in model.classes:
            z = model.prior(NOISES, generator, labels=torch.full((NOISES,), c))
            out.append(float(model.generate(z, torch.full((NOISES,), c)).std(0).mean()))
    else:
        raise SystemExit("the model takes no classes or pseudo-classes: nothing to measure per class")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--no-ema", action="store_true", help="the trained weights, not their moving average")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = load(args.run, device="cpu", use_ema=not args.no_ema).model
    values = spreads(model, torch.Generator().manual_seed(0))
    kind = "pseudo-class" if model.self_conditioned else "class"
    print(f"{args.run}: pixel std across {NOISES} noises per {kind}: {[round(v, 3) for v in values]} "
          f"(min {min(values):.3f}; real digits about 0.15)")


if __name__ == "__main__":
    main()
