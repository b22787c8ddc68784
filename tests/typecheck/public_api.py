"""Checked by mypy in CI (`.ci/run`), never run: the public API as a type checker sees it, though `import ganvae`
imports it lazily. A name that became ``Any`` (a lost annotation, a lazy import the checker cannot follow) fails."""

from typing import assert_type

import torch

import ganvae
from ganvae.models.base import GenerativeModel
from ganvae.models.latents import LatentPrior

model = ganvae.load("mnist-dcgan")
assert_type(model, ganvae.Pipeline)
images = model.sample(16, seed=0)
assert_type(images, ganvae.Images)
assert_type(images.tensor, torch.Tensor)
assert_type(model.sample(4, generator=torch.Generator().manual_seed(0)), ganvae.Images)  # diffusers' convention
assert_type(model.to("cpu"), ganvae.Pipeline)
assert_type(model.device, torch.device)
assert_type(model.class_grid(cols=4), ganvae.Images)
assert_type(model.interpolate(0, 1, steps=4), ganvae.Images)
assert_type(model.model, GenerativeModel)
assert_type(model.model.latent_prior, LatentPrior)
assert_type(model.model.latent_prior.draw(4, torch.Generator().manual_seed(0)), torch.Tensor)
assert_type(ganvae.EarlyStopping(patience=2, mode="min"), ganvae.EarlyStopping)
assert_type(ganvae.BestCheckpoint(monitor="classifier_fd"), ganvae.BestCheckpoint)
