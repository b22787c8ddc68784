"""WGAN-GP for ganvae: the entry point ``ganvae.models: wgan-gp`` names :data:`ENTRY`.

This module is torch-free (the classes are named as strings and imported when a model is built), so that
``ganvae --help`` and ``ganvae config show wgan-gp`` stay quick with the plugin installed.
"""

from ganvae.registry import ModelEntry

ENTRY = ModelEntry(
    name="wgan-gp",
    config="ganvae_wgan_gp.config:WGANGPConfig",
    model="ganvae_wgan_gp.model:WGANGP",
    description="WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic with a gradient penalty (plugin)",
    family="GAN",
    train_defaults={"batch_size": 64, "epochs": 30},
)
