"""Variational auto-encoders (Kingma & Welling 2014): MLP [``vae``] and convolutional [``conv-vae``].

The encoder gives the mean and log-variance of q(z|x); a sample z = mu + sigma * eps
(the reparameterisation trick, Sec. 2.4) is decoded by a Bernoulli decoder (logits; binary
cross-entropy reconstruction) or a Gaussian one (fixed standard deviation). The loss is
the negative ELBO: reconstruction + beta * KL(q(z|x) || N(0, I)) with the analytic KL of
Appendix B, in nats per image; beta can warm up linearly from 0 (Bowman et al. 2016).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganvae.models.base import GenerativeModel, adam
from ganvae.models.blocks import (
    ConvDecoder,
    ConvEncoder,
    check_dense_cost,
    dense_parameters,
    dense_stack,
    encoder_widths,
)
from ganvae.models.conditioning import (
    call,
    check_labels,
    conditioned_encoder,
    conditioned_generator,
    encoder_input_shape,
    generator_input_dim,
    step_labels,
)
from ganvae.models.losses import bernoulli_nll, gaussian_kl, gaussian_nll, log_normal
from ganvae.models.step import StepContext
from ganvae.models.vae_config import ConvVAEConfig, VAEConfig


class MLPEncoder(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int], latent_dim: int):
        super().__init__()
        self.body = dense_stack([in_dim, *hidden])
        self.to_stats = nn.Linear(hidden[-1], 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, C, H, W) -> 2 x (B, Z)
        mu, logvar = self.to_stats(self.body(x.flatten(1))).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim: int, hidden: list[int], image_shape: tuple[int, int, int]):
        super().__init__()
        sizes = [latent_dim, *reversed(hidden)]
        self.net = nn.Sequential(*dense_stack(sizes), nn.Linear(sizes[-1], math.prod(image_shape)))
        self.image_shape = image_shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, Z) -> (B, C, H, W) logits
        return self.net(z).view(-1, *self.image_shape)


def conv_encoder_decoder(c, image_shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    """The convolutional encoder and decoder of ``c`` (a :class:`ConvNetConfig` with latent and conditioning
    fields), conditional when ``c.conditional``: the conv VAE's and the VAE-GAN's pair, one stride-2 layer per
    halving from the images ``(C, H, W)`` to a 4x4 to 7x7 map (:func:`~ganvae.models.blocks.encoder_widths`: 28 ->
    7 in two, 32 -> 4 in three, 64 -> 4 in four; ``c.channels`` extended by doubling where it is shorter)."""
    channels = encoder_widths(c.channels, image_shape)
    encoder = ConvEncoder(encoder_input_shape(c, image_shape), channels, c.hidden, c.latent_dim)
    decoder = ConvDecoder(image_shape, channels, c.hidden, generator_input_dim(c))
    return conditioned_encoder(encoder, c, image_shape), conditioned_generator(decoder, c)


class VAEBase(GenerativeModel):
    """The VAE objective on top of an ``encoder`` and a ``decoder`` (which outputs logits)."""

    value_range = "unit"
    has_encoder = True
    networks = ("encoder", "decoder")

    def encode(self, x, labels=None):
        return call(self.inference_network("encoder"), x, labels)

    def decoder_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``(B, Z)`` -> decoder logits ``(B, C, H, W)``, by the network evaluation uses (EMA in eval mode)."""
        return call(self.inference_network("decoder"), z, labels)

    def decode(self, z, labels=None, **kwargs):
        return torch.sigmoid(self.decoder_logits(z, labels))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor, ctx: StepContext | None = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, Eq. 10); eps from ``ctx`` when training."""
        eps = ctx.randn(*mu.shape, mu.device) if ctx is not None else torch.randn_like(mu)
        return mu + eps * torch.exp(0.5 * logvar)

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``-log p(x|z)`` per sample ``(B,)``, in nats."""
        if self.config.decoder == "bernoulli":
            return bernoulli_nll(logits, x)
        return gaussian_nll(torch.sigmoid(logits), x, self.config.decoder_std)

    def elbo_terms(self, x: torch.Tensor, ctx: StepContext | None = None,
                   labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-sample reconstruction NLL and KL per image, ``(B,)`` each (of log p(x | y) for a CVAE)."""
        mu, logvar = self.encode(x, labels)
        z = self.reparameterize(mu, logvar, ctx)
        return self.reconstruction_nll(self.decoder_logits(z, labels), x), gaussian_kl(mu, logvar)

    def kl_beta(self, ctx: StepContext) -> float:
        c = self.config
        if c.kl_warmup_epochs > 0:
            return c.kl_weight * min(1.0, ctx.epoch_progress / c.kl_warmup_epochs)
        return c.kl_weight

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(x) if self.config.binarize == "dynamic" else x

    def make_optimizers(self):
        c = self.config
        return {"vae": adam(self.parameters(), c.lr, c.beta1, c.beta2)}

    def training_step(self, x, optimizers, ctx):
        """One step on the negative ELBO, reconstruction + beta * KL, averaged over the batch."""
        x = self.prepare(x)
        with ctx.autocast():
            recon, kl = self.elbo_terms(x, ctx, step_labels(self.config, ctx))
        recon, kl = recon.mean(), kl.mean()
        loss = recon + self.kl_beta(ctx) * kl
        ctx.optimize(optimizers["vae"], loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    @torch.inference_mode()
    def log_importance_weights(self, x: torch.Tensor, k: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``log w_i = log p(x, z_i) - log q(z_i | x)`` for ``k`` posterior samples: ``(k, B)``.

        ``logsumexp(log w) - log k`` is the IWAE bound (Burda et al. 2016, Eq. 8); k = 1 is the ELBO. A conditional
        model bounds log p(x | y) with its images' ``labels``.
        """
        labels = check_labels(self, labels, len(x))
        mu, logvar = self.encode(x, labels)
        out = []
        for _ in range(k):
            z = self.reparameterize(mu, logvar)
            log_px_z = -self.reconstruction_nll(self.decoder_logits(z, labels), x)
            out.append(log_px_z + log_normal(z) - log_normal(z, mu, logvar))
        return torch.stack(out)


class VAE(VAEBase):
    """The MLP VAE, at any size and channel count: its first and last layers grow with the pixels, which
    :func:`~ganvae.models.blocks.check_dense_cost` logs and bounds."""

    def __init__(self, config: VAEConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = config
        check_dense_cost("vae", dense_parameters([math.prod(encoder_input_shape(c, self.image_shape)), *c.hidden,
                                                  2 * c.latent_dim])
                         + dense_parameters([generator_input_dim(c), *reversed(c.hidden),
                                             math.prod(self.image_shape)]), self.image_shape, ("model.hidden",))
        self.encoder = conditioned_encoder(MLPEncoder(math.prod(encoder_input_shape(c, self.image_shape)), c.hidden,
                                                      c.latent_dim), c, self.image_shape)
        self.decoder = conditioned_generator(MLPDecoder(generator_input_dim(c), c.hidden, self.image_shape), c)


class ConvVAE(VAEBase):
    def __init__(self, config: ConvVAEConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.encoder, self.decoder = conv_encoder_decoder(config, self.image_shape)
