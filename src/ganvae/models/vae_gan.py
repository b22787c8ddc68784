"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

Encoder -> z -> decoder (the generator) -> image, plus a discriminator that tells data
from reconstructions and from prior samples. Losses (Sec. 2.2):

- encoder and decoder: reconstruction + beta * KL, as a VAE; the reconstruction is pixel
  binary cross-entropy by default, or (``feature_recon``) a Gaussian error on the
  discriminator's hidden features, Larsen's "learned similarity" (Eq. 7);
- decoder, adversarially: the generator loss on reconstructions and prior samples, weighted
  by ``adversarial_weight``; as in Larsen's Algorithm 1 the encoder gets no adversarial
  gradient (the reconstruction fed to it uses a detached z);
- discriminator: data vs reconstructions and prior samples, with one-sided label
  smoothing (real label 0.9) by default.
"""

from __future__ import annotations

import torch

from ganvae.common.pixels import background
from ganvae.models.base import adam
from ganvae.models.blocks import ConvDiscriminator, discriminator_widths, prepare_discriminator
from ganvae.models.conditioning import call, conditioned_discriminator, step_labels
from ganvae.models.losses import discriminator_loss, gaussian_kl, generator_loss
from ganvae.models.step import StepContext
from ganvae.models.vae import VAEBase, conv_encoder_decoder
from ganvae.models.vae_gan_config import VAEGANConfig


class VAEGAN(VAEBase):
    value_range = "unit"
    networks = ("encoder", "decoder", "discriminator")
    training_only_networks = ("discriminator",)
    ema_networks = ("encoder", "decoder")  # samples, reconstructions and likelihoods use the averaged pair

    def __init__(self, config: VAEGANConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        c = config
        self.encoder, self.decoder = conv_encoder_decoder(c, self.image_shape)
        widths = discriminator_widths(c.discriminator_channels, self.image_shape, 4)  # one per halving at least
        discriminator = ConvDiscriminator(self.image_shape, widths, 4, c.leaky_slope, c.dropout)
        self.discriminator = prepare_discriminator(conditioned_discriminator(discriminator, c), c,
                                                   background(self.value_range))
        self._init_ema()

    def make_optimizers(self):
        c = self.config
        vae_params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {
            "vae": adam(vae_params, c.lr_generator, c.beta1, c.beta2),
            "discriminator": adam(self.discriminator.parameters(), c.lr_discriminator, c.beta1, c.beta2),
        }

    def training_step(self, x, optimizers, ctx: StepContext):
        c = self.config
        x = self.prepare(x)
        b = x.shape[0]
        y = step_labels(self.config, ctx)  # conditional: prior samples are drawn for the batch's classes too
        y2, y3 = (None, None) if y is None else (torch.cat([y, y]), torch.cat([y, y, y]))
        with ctx.autocast():
            mu, logvar = self.encode(x, y)
            z = self.reparameterize(mu, logvar, ctx)
            # one decoder pass on [z, prior z, detached z] -> reconstructions, prior samples, and
            # reconstructions for the adversarial term that the encoder must not receive
            zs = torch.cat([z, ctx.randn(b, z.shape[1], z.device), z.detach()])
            recon_logits, prior_logits, adv_logits = call(self.decoder, zs, y3).split(b)
            recon_images, prior_images = torch.sigmoid(recon_logits), torch.sigmoid(prior_logits)
            # --- discriminator: data vs reconstructions and prior samples (detached), one pass
            logits = call(self.discriminator, torch.cat([x, recon_images.detach(), prior_images.detach()]), y3)
            d_loss = discriminator_loss(logits[:b], logits[b:], c.gan_loss, c.real_label)
        ctx.optimize(optimizers["discriminator"], d_loss)

        # --- encoder + decoder, with the discriminator frozen
        with ctx.frozen(self.discriminator) as discriminator, ctx.autocast():
            if c.feature_recon:
                # Gaussian error on discriminator features (Larsen et al. 2016, Eq. 7), per image
                f_real, f_fake = discriminator.features(torch.cat([x, recon_images])).flatten(1).split(b)
                recon = 0.5 * (f_real - f_fake).float().pow(2).sum(1)
            else:
                recon = self.reconstruction_nll(recon_logits, x)
            kl = gaussian_kl(mu, logvar)
            adv = generator_loss(call(discriminator, torch.cat([torch.sigmoid(adv_logits), prior_images]), y2),
                                 c.gan_loss)
            recon, kl = recon.mean(), kl.mean()
            loss = recon + self.kl_beta(ctx) * kl + c.adversarial_weight * adv
        ctx.optimize(optimizers["vae"], loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(), "d_loss": d_loss.detach(),
                "g_loss": adv.detach()}
