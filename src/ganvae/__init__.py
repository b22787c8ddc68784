"""ganvae: train, sample, animate and compare GANs and VAEs on MNIST-like data.

Importing this package has no side effects; heavy modules (torch, models) are imported
by the sub-modules that need them.
"""

__version__ = "0.1.0"
