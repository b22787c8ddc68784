"""Each loss of ``ganvae.models.losses`` on fixed inputs, against values worked out by hand from its paper's formula,
so a sign error, a swapped argument or a missing 1/2 fails here (STYLE.md, Pattern 23)."""

from __future__ import annotations

import math

import pytest
import torch

from ganvae.models import losses

REAL = torch.tensor([2.0, 0.5, -1.0])  # discriminator logits on real images
FAKE = torch.tensor([-3.0, 0.0, 1.5])  # ... and on generated ones


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_hinge_losses_follow_lim_and_ye():
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3
    assert float(losses.discriminator_loss(REAL, FAKE, "hinge")) == pytest.approx(2.5 / 3 + 3.5 / 3)
    # G: -mean(fake) = -(-3 + 0 + 1.5) / 3
    assert float(losses.generator_loss(FAKE, "hinge")) == pytest.approx(0.5)


def test_hinge_losses_reward_the_right_side():
    """A discriminator that scores real high and fake low has a smaller loss; a generator whose fakes score higher
    has a smaller loss (an inverted sign fails both)."""
    good = losses.discriminator_loss(torch.tensor([3.0]), torch.tensor([-3.0]), "hinge")
    bad = losses.discriminator_loss(torch.tensor([-3.0]), torch.tensor([3.0]), "hinge")
    assert float(good) == 0.0 and float(bad) == 8.0
    assert losses.generator_loss(torch.tensor([2.0]), "hinge") < losses.generator_loss(torch.tensor([-2.0]), "hinge")


def test_lsgan_losses_follow_mao_et_al():
    # D: 1/2 mean((real - 1)^2) + 1/2 mean(fake^2) = 1/2 (1 + 0.25 + 4) / 3 + 1/2 (9 + 0 + 2.25) / 3
    assert float(losses.discriminator_loss(REAL, FAKE, "lsgan")) == pytest.approx(0.5 * 5.25 / 3 + 0.5 * 11.25 / 3)
    # G: 1/2 mean((fake - 1)^2) = 1/2 (16 + 1 + 0.25) / 3
    assert float(losses.generator_loss(FAKE, "lsgan")) == pytest.approx(0.5 * 17.25 / 3)
    # one-sided smoothing moves the real target: 1/2 mean((real - 0.9)^2) + the fake term
    smoothed = 0.5 * sum((r - 0.9) ** 2 for r in REAL.tolist()) / 3 + 0.5 * 11.25 / 3
    assert float(losses.discriminator_loss(REAL, FAKE, "lsgan", real_label=0.9)) == pytest.approx(smoothed)


def test_bce_losses_follow_goodfellow_et_al():
    # D: mean(-log sigmoid(real)) + mean(-log(1 - sigmoid(fake))) = mean(softplus(-real)) + mean(softplus(fake))
    expected = sum(softplus(-r) for r in REAL.tolist()) / 3 + sum(softplus(f) for f in FAKE.tolist()) / 3
    assert float(losses.discriminator_loss(REAL, FAKE, "bce")) == pytest.approx(expected, rel=1e-6)
    # G, non-saturating: mean(-log sigmoid(fake)) = mean(softplus(-fake))
    assert float(losses.generator_loss(FAKE, "bce")) == pytest.approx(sum(softplus(-f) for f in FAKE.tolist()) / 3,
                                                                      rel=1e-6)


def test_unknown_gan_loss_is_refused():
    with pytest.raises(ValueError, match="wgan"):
        losses.discriminator_loss(REAL, FAKE, "wgan")
    with pytest.raises(ValueError, match="wgan"):
        losses.generator_loss(FAKE, "wgan")


def test_gaussian_kl_matches_the_closed_form():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # per dim: 1/2 (sigma^2 + mu^2 - 1 - log sigma^2): 1/2 (1 + 1 - 1 - 0) + 1/2 (4 + 0 - 1 - log 4)
    assert float(losses.gaussian_kl(mu, logvar)[0]) == pytest.approx(0.5 + 0.5 * (3 - math.log(4.0)))
    assert float(losses.gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))[0]) == 0.0


def test_bernoulli_and_gaussian_nll():
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    logits = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    assert float(losses.bernoulli_nll(logits, x)[0]) == pytest.approx(math.log(2) + softplus(2.0), rel=1e-6)
    mean = torch.tensor([0.5, 0.0]).view(1, 1, 1, 2)
    expected = 0.5 * 0.25 / 0.01 + 2 * (math.log(0.1) + 0.5 * math.log(2 * math.pi))
    assert float(losses.gaussian_nll(mean, x, 0.1)[0]) == pytest.approx(expected, rel=1e-6)


def test_mode_seeking_is_large_when_the_noise_is_ignored():
    z_a, z_b = torch.zeros(2, 4), torch.ones(2, 4)
    same = torch.full((2, 1, 2, 2), 0.3)
    assert float(losses.mode_seeking_loss(same, same, z_a, z_b)) == pytest.approx(1e5)
    # images differing by 0.5 per pixel for noises differing by 1: 1 / (0.5 + eps)
    assert float(losses.mode_seeking_loss(same, same + 0.5, z_a, z_b)) == pytest.approx(2.0, rel=1e-4)
