"""The named seed streams: every derived seed in the package, in one place.

A run has one user seed (``train.seed``). Each consumer of randomness that must not share a stream with another
(the data order, the fixed noise of the sample grids, the samples scored during training, ...) offsets it by its
own constant here. The values are fixed: changing one changes every run's pictures and the golden values.
"""

from __future__ import annotations

FIXED_NOISE = 7919  # train.seed + this: the latents of every sample grid and the progress GIF of a run
DURING_TRAINING_SAMPLES = 104729  # train.seed + this + rank: the samples scored by the in-training FID curve
DURING_TRAINING_NOISE_USE = 15485863  # train.seed + this: the noises of the in-training collapse check
PER_EPOCH_STRIDE = 1_000_003  # seed * this + epoch (or reclustering): one generator per (seed, counter) pair

# The explorer's fixed draws (one model, the same pictures every visit)
EXPLORER_DIRECTIONS = 1234  # the latents GANSpace's PCA is fitted to
EXPLORER_NEAREST_POOL = 99  # the pool a drawing's nearest samples are searched in
EXPLORER_INVERSION_STARTS = 7  # the random starts of GAN inversion


def per_counter(seed: int, counter: int) -> int:
    """The seed of counter ``counter`` (an epoch, a reclustering) of the stream seeded ``seed``."""
    return seed * PER_EPOCH_STRIDE + counter
