"""The latent prior is one object (ganvae.models.latents): every front end draws through it, so the same seed and
class give the same latents in the Python API, the command line's files, the explorer, the trainer's grids, the
ONNX sampler's transform and the class grids; and each kind refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_data

import ganvae
from ganvae.models.base import fit_latent_prior
from ganvae.models.latents import PriorNotFittable, StandardNormalPrior


@pytest.fixture(scope="module")
def cvae_folder(tmp_path_factory):
    """A tiny conditional VAE with one fitted mixture per class (2 components each), as a pretrained folder."""
    from ganvae.registry import build_model
    from ganvae.storage.pretrained_folder import save_pretrained

    cfg = tiny_config("vae", "model.conditional=true", "model.prior_components=20")
    torch.manual_seed(0)
    model = build_model(cfg, (1, 16, 16))
    data = tiny_data(60)
    fit_latent_prior(model, data.train_images, data.train_labels, seed=0)
    assert model.latent_prior.kind == "gmm" and model.latent_prior.groups == 10
    return save_pretrained(model, cfg, tmp_path_factory.mktemp("zoo") / "cvae", dtype="float32")


def test_the_same_seed_and_class_give_the_same_latents_in_every_front_end(cvae_folder, tmp_path):
    from ganvae import storage
    from ganvae.explore.session import ModelView
    from ganvae.inference import writers

    seed, digit, n = 0, 3, 4
    pipe = ganvae.load(cvae_folder, device="cpu")
    model = pipe.model
    want = model.latent_prior.draw(n, torch.Generator().manual_seed(seed), torch.full((n,), digit))
    # the mixture of class 3 (not the pooled one): another class's latents differ
    assert not torch.equal(want, model.latent_prior.draw(n, torch.Generator().manual_seed(seed), torch.full((n,), 7)))
    python = pipe.sample(n, seed=seed, labels=digit).tensor
    assert torch.equal(python, model.generate(want, torch.full((n,), digit)))
    # the explorer: the same latents, and so the same pictures
    view = ModelView("cvae", storage.load(cvae_folder, device="cpu"))
    explored = view.sample(seed, n, digit)
    assert torch.equal(torch.tensor(explored["latents"]), want)
    # the command line's files: the same images (PNG rounding aside)
    writers.sample(storage.load(cvae_folder, device="cpu"), n=n, seed=seed, out=None, separate=tmp_path / "files",
                   digit=digit)
    from PIL import Image

    files = sorted((tmp_path / "files").glob("*.png"))
    pixels = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    assert np.abs(pixels.astype(int) - (python[:, 0].numpy() * 255).round().astype(int)).max() <= 1
    # the ONNX sampler's transform of the same noise as the draw
    u, eps = model.latent_prior.noise(n, torch.Generator().manual_seed(seed))
    assert torch.equal(model.latent_prior.transform(u, eps, torch.full((n,), digit)), want)


def test_class_grids_carry_a_columns_noise_through_each_class(cvae_folder):
    model = ganvae.load(cvae_folder, device="cpu").model
    z, labels = model.latent_prior.class_grid(3, model.classes, torch.Generator().manual_seed(1))
    assert z.shape == (30, model.latent_dim) and labels.tolist() == [c for c in range(10) for _ in range(3)]
    u, eps = model.latent_prior.noise(3, torch.Generator().manual_seed(1))
    assert torch.equal(z[9:12], model.latent_prior.transform(u, eps, torch.full((3,), 3)))  # row 3, same noise


def test_paths_follow_the_prior():
    normal = StandardNormalPrior(4)
    a, b = torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])
    mid = normal.path(a, b, torch.tensor([0.5]))[0]
    assert torch.allclose(mid.norm(), torch.tensor(1.0))  # spherical: on the sphere between them
    from ganvae.models.prior import GaussianMixturePrior

    mixture = GaussianMixturePrior(4, 1)
    assert torch.allclose(mixture.path(a, b, torch.tensor([0.5]))[0].norm(), torch.tensor(1.0))  # unfitted: as N(0, I)
    mixture.fitted.fill_(True)
    assert torch.allclose(mixture.path(a, b, torch.tensor([0.5]))[0], torch.tensor([0.5, 0.5, 0, 0]))  # straight


def test_priors_that_cannot_be_fitted_say_so():
    with pytest.raises(PriorNotFittable, match="no learned prior.*N\\(0, I\\)"):
        StandardNormalPrior(4).fit(torch.zeros(10, 4))
    from ganvae.registry import build_model

    gan = build_model(tiny_config("gan", "model.self_conditioning=4"), (1, 16, 16))
    assert gan.latent_prior.kind == "self-conditioned" and not gan.latent_prior.fittable
    with pytest.raises(PriorNotFittable, match="self-conditioning clusters"):
        fit_latent_prior(gan, tiny_data().train_images)
