"""Does a generator that takes classes use its noise? The collapse of a conditional or self-conditioned GAN to one
image per class whatever its noise (a conditional DCGAN before its class embedding started small, issue 15; a
DCGAN self-conditioned on spectral pseudo-classes, benchmarks/RESULTS.md, "Self-conditioning's features") leaves
FID high but says nothing of why; this measure names it.

For each class (or pseudo-class) ``c``: ``NOISES`` latents of class ``c`` decoded, and the standard deviation of
each pixel across them, averaged over the pixels. A collapsed generator's classes vary far less than real digits
of one class, and a healthy one's about as much (the spreads measured: benchmarks/RESULTS.md, "Self-conditioning's
features").
"""

from __future__ import annotations

import torch

NOISES = 64  # latents decoded per class
# below this (every class's pixels vary by under a fifth of a real class's) a generator ignores its noise: it lies
# between the collapsed and the healthy runs' spreads (benchmarks/RESULTS.md, "Self-conditioning's features")
COLLAPSED_SPREAD = 0.03


@torch.no_grad()
def noise_spreads(model, generator: torch.Generator, noises: int = NOISES) -> list[float] | None:
    """Per class of a conditional model (its trained classes) or pseudo-class of a self-conditioned one: the mean
    over pixels of the std over ``noises`` images of that class, drawn from ``generator`` (CPU). None for a model
    whose networks take no classes."""
    out = []
    prior = model.latent_prior
    if prior.latent_classes:  # classes carried in the latent (pseudo-classes): the prior draws each in turn
        for c in range(prior.latent_classes):
            out.append(float(model.generate(prior.draw(noises, generator, torch.full((noises,), c))).std(0).mean()))
    elif model.conditional:
        for c in model.classes:
            labels = torch.full((noises,), c)
            out.append(float(model.generate(prior.draw(noises, generator, labels), labels).std(0).mean()))
    else:
        return None
    return out


def collapse_message(model, spreads: list[float], step: int) -> str | None:
    """A warning naming the collapse and its measured fixes, when every class's spread is under
    :data:`COLLAPSED_SPREAD`; None otherwise (also when only some classes collapsed: FID and the dropped classes
    show those)."""
    if not spreads or max(spreads) >= COLLAPSED_SPREAD:
        return None
    pseudo = model.latent_prior.latent_classes > 0
    kind = "pseudo-class" if pseudo else "class"
    fixes = []
    if hasattr(model.config, "mode_seeking") and model.config.mode_seeking == 0:
        fixes.append("--set model.mode_seeking=1.0 (Mao et al. 2019; it stopped this collapse in a measured DCGAN, at "
                     "a cost in FID)")
    if pseudo:
        fixes.append("--set model.self_conditioning=0 (no pseudo-classes)")
    fixes.append("another --seed")
    return (f"mode collapse at step {step}: the generator draws nearly one image per {kind} whatever its noise "
            f"(pixel std across {NOISES} noises per {kind}: {min(spreads):.3f}-{max(spreads):.3f}; real digits "
            f"about 0.15, below {COLLAPSED_SPREAD} is collapse). Train again with " + ", or ".join(fixes)
            + "; benchmarks/RESULTS.md, \"Self-conditioning's features\", has the measurements.")
