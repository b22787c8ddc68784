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

from conftest import tiny_config

GOLDEN = Path(__file__).with_name("golden_values.json")
# the six families with their defaults, and the alternative steps their configs select
CASES = {
    "gan": [], "dcgan": [], "vae": [], "conv-vae": [], "vae-gan": [], "cppn": [],
    "gan-reuse-fake-logits": ["model.reuse_fake_logits=true"],
    "dcgan-contiguous": ["model.channels_last=false", "model.dropout=0.3"],
    "vae-gaussian-dynamic": ["model.decoder=gaussian", "model.binarize=dynamic", "model.kl_warmup_epochs=2"],
    "vae-gan-feature-recon": ["model.feature_recon=true", "model.diffaugment=[translation,cutout]"],
    "cppn-alternating": ["model.schedule=alternating", "model.spectral_norm=true"],
}


def run_case(case: str) -> dict[str, list[float]]:
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
    out: dict[str, list[float]] = {}
    for step in range(2):
        losses = model.training_step(x, optimizers, StepContext(step, 0, step * 0.5))
        model.after_step(step)
        for name, value in sorted(losses.items()):
            out.setdefault(name, []).append(float(value))
    samples = model.sample(2, generator=torch.Generator().manual_seed(2))  # (2, 1, 16, 16)
    out["sample_slice"] = samples[:, 0, 6:8, 6:10].flatten().tolist()
    if model.has_encoder:
        out["reconstruction_slice"] = model.reconstruct(x[:1].add(1).div(2) if model.value_range == "tanh" else x[:1])[0, 0, 7, 4:12].tolist()
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
