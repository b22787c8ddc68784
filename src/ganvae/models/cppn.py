"""CPPN GAN+VAE, after Ha (2016), "Generating Large Images from Latent Vectors".

The generator is a compositional pattern-producing network: a function of one pixel's
coordinates and the latent, ``f(x, y, r, z) -> intensity``. Its first layer sums linear
maps of z, x, y and r = sqrt(x^2 + y^2); then ``n_layers`` tanh layers; a sigmoid output.
Evaluated on a grid of any density, one z renders at any resolution.

Training couples a VAE (encoder -> z -> CPPN, reconstruction + KL) with a GAN
(discriminator on data vs decoded images). The default ``balanced`` schedule follows the
original code: up to ``max_generator_steps`` generator steps while the generator's
adversarial loss is above ``generator_loss_target``, then one discriminator step only when
the discriminator is not winning (its loss above ``discriminator_loss_floor``) and the
generator is doing well enough (loss below ``discriminator_step_max_g_loss``).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ganvae.common.pixels import background
from ganvae.models.base import adam, eval_mode
from ganvae.models.blocks import ConvDiscriminator, ConvEncoder, prepare_discriminator
from ganvae.models.conditioning import (
    call,
    check_labels,
    conditioned_discriminator,
    conditioned_encoder,
    conditioned_generator,
    encoder_input_shape,
    generator_input_dim,
    step_labels,
)
from ganvae.models.cppn_config import CPPNConfig
from ganvae.models.losses import discriminator_loss, gaussian_kl, generator_loss
from ganvae.models.step import StepContext
from ganvae.models.vae import VAEBase


class CPPNGenerator(nn.Module):
    def __init__(self, c: CPPNConfig, channels: int = 1):
        super().__init__()
        self.scale = c.scale
        self.z_proj = nn.Linear(generator_input_dim(c), c.hidden_size)  # W_z z + b (z and the class embedding)
        self.coord_proj = nn.Linear(3, c.hidden_size, bias=False)  # W_x x + W_y y + W_r r
        layers: list[nn.Module] = []
        for _ in range(c.n_layers):
            layers += [nn.Linear(c.hidden_size, c.hidden_size), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(c.hidden_size, channels)
        self.channels = channels
        self._grid_cache: dict = {}

    def coordinates(self, height: int, width: int, device, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """``(R*W, 3)`` rows of (x, y, r) for image rows ``rows`` (default all ``H``); the shorter side spans
        [-scale, scale], aspect kept. Whole grids are cached (training asks for the same one every step)."""
        key = (height, width, str(device))
        cached = self._grid_cache.get(key) if rows is None else None
        # a grid made under inference mode cannot enter autograd (a GAN inversion after sampling): made again then
        if cached is not None and (torch.is_inference_mode_enabled() or not cached.is_inference()):
            return cached
        r0, r1 = rows or (0, height)
        s = self.scale
        sx, sy = (s * width / height, s) if width >= height else (s, s * height / width)
        ys = torch.linspace(-sy, sy, height, device=device)[r0:r1]
        xs = torch.linspace(-sx, sx, width, device=device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy, torch.sqrt(gx**2 + gy**2)], dim=-1).view(-1, 3)
        if rows is None:
            self._grid_cache = {key: grid}
        return grid

    def forward(self, z: torch.Tensor, height: int, width: int, chunk: int | None = None,
                rows: tuple[int, int] | None = None) -> torch.Tensor:
        """``(B, Z)`` -> ``(B, C, R, W)`` logits of image rows ``rows`` (default all: ``R = H``), evaluating
        ``chunk`` pixels at a time."""
        coords = self.coordinates(height, width, z.device, rows)
        hz = self.z_proj(z).unsqueeze(1)  # (B, 1, hidden)
        chunk = chunk or coords.shape[0]
        outs = []
        for part in coords.split(chunk):
            h = torch.tanh(hz + self.coord_proj(part).unsqueeze(0))  # (B, P, hidden)
            outs.append(self.out(self.body(h)))  # (B, P, C)
        out = torch.cat(outs, dim=1)  # (B, R*W, C)
        n_rows = coords.shape[0] // width
        return out.transpose(1, 2).reshape(z.shape[0], self.channels, n_rows, width)


class CPPN(VAEBase):
    value_range = "unit"
    renders_any_size = True
    networks = ("encoder", "generator", "discriminator")
    training_only_networks = ("discriminator",)
    ema_networks = ("encoder", "generator")  # samples, renders, reconstructions and likelihoods use the averaged pair

    def __init__(self, config: CPPNConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = config
        encoder = ConvEncoder(encoder_input_shape(c, self.image_shape), c.encoder_channels, c.hidden, c.latent_dim)
        self.encoder = conditioned_encoder(encoder, c, self.image_shape)
        self.generator = conditioned_generator(CPPNGenerator(c, self.image_shape[0]), c)
        discriminator = ConvDiscriminator(self.image_shape, c.discriminator_channels, 4, c.leaky_slope, c.dropout)
        self.discriminator = prepare_discriminator(conditioned_discriminator(discriminator, c), c,
                                                   background(self.value_range))
        self._init_ema()

    # the VAE machinery calls decoder_logits(z) for logits at the training resolution
    def decoder(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The generator being trained, at the training resolution: ``(B, Z)`` -> logits ``(B, C, H, W)``."""
        return call(self.generator, z, labels, self.image_shape[1], self.image_shape[2])

    def decoder_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return call(self.inference_network("generator"), z, labels, self.image_shape[1], self.image_shape[2])

    def decode(self, z, labels=None, height: int | None = None, width: int | None = None, **kwargs):
        h, w = height or self.image_shape[1], width or self.image_shape[2]
        return torch.sigmoid(call(self.inference_network("generator"), z, labels, h, w, chunk=self.config.render_chunk))

    def render(self, z: torch.Tensor, height: int, width: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``(B, Z)`` (and labels ``(B,)``, conditional) -> images ``(B, C, height, width)`` in [0, 1], one
        at a time."""
        labels = check_labels(self, labels, len(z))
        return torch.cat([self.generate(zi[None], None if labels is None else labels[i : i + 1], batch_size=1,
                                        height=height, width=width) for i, zi in enumerate(z)])

    @torch.inference_mode()
    def render_bands(self, z: torch.Tensor, height: int, width: int, band_pixels: int = 1 << 20,
                     labels: torch.Tensor | None = None) -> Iterator[np.ndarray]:
        """One latent ``(1, Z)`` (and label ``(1,)``, conditional) rendered at ``height`` x ``width`` as bands of
        rows, uint8 ``(r, W)`` (grey) or ``(r, W, C)``: memory grows with the band, not the image, for
        :func:`ganvae.viz.images.save_png_rows`."""
        band = max(1, band_pixels // width)
        labels = check_labels(self, labels, len(z))
        with eval_mode(self):
            generator = self.inference_network("generator")
            for r0 in range(0, height, band):
                rows = (r0, min(height, r0 + band))
                logits = call(generator, z.to(self.device), labels, height, width, chunk=self.config.render_chunk,
                              rows=rows)
                pixels = torch.sigmoid(logits[0].float()).mul(255).round().to(torch.uint8).cpu().numpy()  # (C, r, W)
                yield pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)

    def make_optimizers(self):
        c = self.config
        return {
            "generator": adam([*self.encoder.parameters(), *self.generator.parameters()], c.lr_generator, c.beta1,
                              c.beta2),
            "discriminator": adam(self.discriminator.parameters(), c.lr_discriminator, c.beta1, c.beta2),
        }

    def _generator_step(self, x, opt, ctx: StepContext, y: torch.Tensor | None):
        c = self.config
        n_pixels = math.prod(self.image_shape)
        with ctx.autocast():
            mu, logvar = self.encode(x, y)
            z = self.reparameterize(mu, logvar, ctx)
            logits = self.decoder(z, y)
            # VAE loss per pixel (the original divides by the image size) keeps it on the GAN loss's scale
            vae_loss = (self.reconstruction_nll(logits, x)
                        + self.kl_beta(ctx) * gaussian_kl(mu, logvar)).mean() / n_pixels
            with ctx.frozen(self.discriminator) as discriminator:
                g_loss = generator_loss(call(discriminator, torch.sigmoid(logits), y), c.gan_loss)
            loss = c.vae_weight * vae_loss + g_loss
        ctx.optimize(opt, loss)
        return g_loss.detach(), vae_loss.detach(), torch.sigmoid(logits).detach()

    def _discriminator_loss(self, x, fake, ctx: StepContext, y: torch.Tensor | None):
        b = x.shape[0]
        with ctx.autocast():
            logits = call(self.discriminator, torch.cat([x, fake]),
                          None if y is None else torch.cat([y, y]))  # one pass
            return discriminator_loss(logits[:b], logits[b:], self.config.gan_loss, self.config.real_label)

    def training_step(self, x, optimizers, ctx: StepContext):
        c = self.config
        x = self.prepare(x)
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        y = step_labels(self.config, ctx)
        if c.schedule == "alternating":
            with torch.no_grad():
                fake = torch.sigmoid(self.decoder(self.reparameterize(*self.encode(x, y), ctx), y))
            d_loss = self._discriminator_loss(x, fake, ctx, y)
            ctx.optimize(opt_d, d_loss)
            g_loss, vae_loss, _ = self._generator_step(x, opt_g, ctx, y)
            g_steps, d_steps = 1, 1
        else:
            # balanced: the decisions need loss values on the host (one sync per decision);
            # under torchrun they use the mean over ranks so that every rank takes the same branch
            g_steps = 0
            for _ in range(c.max_generator_steps):
                g_loss, vae_loss, fake = self._generator_step(x, opt_g, ctx, y)
                g_steps += 1
                if ctx.reduce_mean(g_loss).item() < c.generator_loss_target:
                    break
            with torch.no_grad():  # a probe only: DDP allows no grad-enabled forward without a backward
                d_loss = self._discriminator_loss(x, fake, ctx, y)
            d_steps = 0
            if (ctx.reduce_mean(d_loss).item() > c.discriminator_loss_floor
                    and ctx.reduce_mean(g_loss).item() < c.discriminator_step_max_g_loss):
                d_loss = self._discriminator_loss(x, fake, ctx, y)
                ctx.optimize(opt_d, d_loss)
                d_steps = 1
        return {
            "g_loss": g_loss, "d_loss": d_loss.detach(), "vae_loss": vae_loss,
            "g_steps": torch.tensor(float(g_steps)), "d_steps": torch.tensor(float(d_steps)),
        }
