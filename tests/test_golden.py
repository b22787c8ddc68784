"""Golden values, as diffusers' fast tests have them: two seeded CPU training steps of each family's tiny
model, then the losses of both steps and a slice of a seeded sample compared with stored numbers.

Shapes and "the loss is finite" pass whatever the arithmetic does; these fail when a change alters the numbers
a model computes (a dropout mask drawn differently, a layer reordered, a loss term weighted differently). The
tolerance (relative 1e-4) is far above the rounding differences between CPUs and thread counts and far below
what any change of the computation gives.

After an intended numeric change, regenerate and review the diff of ``golden_values.json``:
``GANVAE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import make_images, tiny_config

GOLDEN = Path(__file__).with_name("golden_values.json")
# the six families with their defaults, and the alternative steps their configs select
CASES = {
    "gan": [], "dcgan": [], "vae": [], "conv-vae": [], "vae-gan": [], "cppn": [],
    "gan-reuse-fake-logits": ["model.reuse_fake_logits=true"],
    "dcgan-contiguous": ["model.channels_last=false", "model.dropout=0.3"],
    "vae-gaussian-dynamic": ["model.decoder=gaussian", "model.binarize=dynamic", "model.kl_warmup_epochs=2"],
    "vae-gan-feature-recon": ["model.feature_recon=true", "model.diffaugment=[translation,cutout]"],
    "cppn-alternating": ["model.schedule=alternating", "model.spectral_norm=true"],
    # the recipes users run: the MLP GAN's default self-conditioning (null: 10 spectral pseudo-classes) and the zoo
    # mnist-dcgan's (10 spectral pseudo-classes), clustered on 40 images before the two steps
    "gan-self-conditioned": ["model.self_conditioning=null"],
    "dcgan-self-conditioned": ["model.self_conditioning=10", "model.self_conditioning_features=spectral"],
    # a conditional VAE sampling each class from its own fitted mixture (the zoo's mnist-cvae recipe, tiny)
    "vae-conditional-class-mixture": ["model.conditional=true", "model.prior_components=20"],
    "dcgan-conditional": ["model.conditional=true"],
    "gan-hinge": ["model.gan_loss=hinge"],
    "dcgan-lsgan": ["model.gan_loss=lsgan"],
}
SELF_CONDITIONED = {"gan-self-conditioned", "dcgan-self-conditioned"}


def run_case(case: str) -> dict[str, list[float]]:
    from ganvae.models.base import fit_latent_prior
    from ganvae.models.step import StepContext
    from ganvae.registry import build_model

    family = next(n for n in ("vae-gan", "conv-vae", "dcgan", "cppn", "gan", "vae") if case.startswith(n))
    cfg = tiny_config(family, *CASES[case])
    torch.manual_seed(0)
    model = build_model(cfg, (1, 16, 16))
    optimizers = model.make_optimizers()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 1, 16, 16, generator=g)  # (B, C, H, W) in [0, 1]
    x = x * 2 - 1 if model.value_range == "tanh" else x
    images, classes = make_images(40, size=16, seed=3)
    images, classes = torch.from_numpy(images)[:, None], torch.from_numpy(classes).long()  # (40, 1, 16, 16) uint8
    labels = None
    if case in SELF_CONDITIONED:  # the step trains on the pseudo-classes of the 40 images' first 8
        model.before_epoch(0, images, seed=0)
        idx = torch.arange(8)
        labels = model.training_labels(idx, classes)
        x = images[:8].float().div(255) * 2 - 1
    elif model.conditional:
        labels = classes[:8]
    out: dict[str, list[float]] = {}
    for step in range(2):
        losses = model.training_step(x, optimizers, StepContext(step, 0, step * 0.5, labels=labels))
        model.after_step(step)
        for name, value in sorted(losses.items()):
            out.setdefault(name, []).append(float(value))
    if model.latent_prior.fittable and model.conditional:  # one mixture per class, fitted to the 40 images
        fit_latent_prior(model, images, classes, seed=0)
        out["class_sample_slice"] = model.sample(
            4, generator=torch.Generator().manual_seed(2),
            labels=torch.tensor([3, 3, 7, 7]))[:, 0, 6:8, 6:8].flatten().tolist()
        z, _ = model.latent_prior.class_grid(2, model.classes, torch.Generator().manual_seed(4))
        out["class_grid_latents"] = z[:, 0].tolist()
        return out
    sample_labels = torch.tensor([1, 2]) if model.conditional else None
    samples = model.sample(2, generator=torch.Generator().manual_seed(2), labels=sample_labels)  # (2, 1, 16, 16)
    out["sample_slice"] = samples[:, 0, 6:8, 6:10].flatten().tolist()
    if model.has_encoder:
        out["reconstruction_slice"] = model.reconstruct(
            x[:1].add(1).div(2) if model.value_range == "tanh" else x[:1])[0, 0, 7, 4:12].tolist()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_golden_values(case):
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    got = run_case(case)
    if os.environ.get("GANVAE_UPDATE_GOLDEN"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[case] = got
        GOLDEN.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    expected = json.loads(GOLDEN.read_text())[case]
    assert sorted(got) == sorted(expected), f"{case}: the step returns other losses than stored"
    for key, values in expected.items():
        torch.testing.assert_close(torch.tensor(got[key]), torch.tensor(values), rtol=1e-4, atol=1e-5,
                                   msg=lambda m, key=key: f"{case}: {key} changed ({m})")
