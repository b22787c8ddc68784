"""Pure loss functions, each citing where it comes from. Shapes: logits ``(B,)`` or ``(B, 1)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str,
                       real_label: float = 1.0) -> torch.Tensor:
    """Discriminator objective on real vs generated samples.

    - ``bce``: ``-log D(x) - log(1 - D(G(z)))`` (Goodfellow et al. 2014, Eq. 1), written with
      logits; ``real_label < 1`` is one-sided label smoothing (Salimans et al. 2016, Sec. 3.4).
    - ``hinge``: ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`` (Lim & Ye 2017; Miyato et al. 2018).
    - ``lsgan``: ``1/2 E[(D(x) - a)^2] + 1/2 E[D(G(z))^2]`` (Mao et al. 2017, Eq. 2 with b = 0).
    """
    real_logits, fake_logits = real_logits.float().flatten(), fake_logits.float().flatten()
    if kind == "bce":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * (real_logits - real_label).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator objective.

    - ``bce``: the non-saturating ``-log D(G(z))`` ("call fakes real", Goodfellow et al. 2014, Sec. 3).
    - ``hinge``: ``-E[D(G(z))]`` (Lim & Ye 2017).
    - ``lsgan``: ``1/2 E[(D(G(z)) - 1)^2]`` (Mao et al. 2017, Eq. 2 with c = 1).
    """
    fake_logits = fake_logits.float().flatten()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "lsgan":
        return 0.5 * (fake_logits - 1.0).pow(2).mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per sample, summed over latent dims: ``(B, D) -> (B,)``.

    Kingma & Welling 2014, Appendix B: ``-1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)``.
    """
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``-log p(x | z)`` of a Bernoulli decoder, per sample in nats: ``(B, C, H, W) -> (B,)``.

    Binary cross-entropy summed over pixels (Kingma & Welling 2014, Appendix C.1); ``x`` in [0, 1].
    """
    return F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, std: float) -> torch.Tensor:
    """``-log N(x; mean, std^2 I)`` per sample in nats, summed over pixels: ``(B, C, H, W) -> (B,)``."""
    se = (x.float() - mean.float()).pow(2).flatten(1).sum(1)
    d = x[0].numel()
    return 0.5 * se / std**2 + d * (math.log(std) + 0.5 * math.log(2 * math.pi))


def log_normal(z: torch.Tensor, mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """``log N(z; mu, exp(logvar))`` summed over the last dim (standard normal when mu is None)."""
    if mu is None:
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def class_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of class logits ``(B, K)`` against labels ``(B,)``: the auxiliary classifier's loss L_C
    (Odena et al. 2017, Eq. 2), in float32."""
    return F.cross_entropy(logits.float(), labels)


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma / 2 * E[||grad_x D(x)||^2]`` on real images ``x`` (Mescheder et al. 2018, "Which Training Methods
    for GANs do actually Converge?", Eq. 9): the gradient of the logits with respect to ``real`` (which must require
    grad), kept in the graph so the discriminator's step minimises it."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return 0.5 * gamma * grad.float().pow(2).flatten(1).sum(1).mean()


def mode_seeking_loss(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """The mode-seeking term of Mao et al. 2019 ("Mode Seeking Generative Adversarial Networks for Diverse Image
    Synthesis", Eq. 3, as their code computes it): for two fakes of the same class from noises ``z_a``, ``z_b``
    ``(M, Z)``, ``1 / (mean|G(z_a) - G(z_b)| / mean|z_a - z_b| + eps)``. Added to the generator's loss it is large
    when the generator draws the same image whatever its noise, the collapse of a conditional GAN to one image per
    class, and small when the images differ as much as their noises."""
    ratio = (fake_a.float() - fake_b.float()).abs().mean() / (z_a.float() - z_b.float()).abs().mean()
    return 1.0 / (ratio + eps)
