"""The shipped zoo draws bit for bit what it drew when ``zoo_samples.json`` was written: a seeded sample, a class
grid or an interpolation, and a render for the CPPN, through the Python API.

This is one of the few tests about the shipped weights themselves (others build tiny models). It pins the
sampling code against the zoo: a refactor of the latent prior, the labels or the decoders must leave every model's
pictures unchanged. Each entry is keyed by the sha256 of the model's weights, so after a zoo rebuild the failure
says which model changed; regenerate then with ``GANVAE_UPDATE_GOLDEN=1 python -m pytest tests/test_zoo_samples.py``
and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).with_name("zoo_samples.json")
ZOO = Path(__file__).resolve().parents[1] / "src" / "ganvae" / "pretrained"
MODELS = sorted(p.name for p in ZOO.iterdir() if (p / "model.safetensors").is_file())


def digest(t: torch.Tensor) -> str:
    """sha256 of a float32 tensor's bytes: equal only when every value is bit-identical."""
    return hashlib.sha256(t.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()[:24]


def draw(name: str) -> dict[str, str]:
    import ganvae

    pipe = ganvae.load(name, device="cpu")
    out = {"sample": digest(pipe.sample(6, seed=3).tensor)}
    if pipe.classes:
        out["class_sample"] = digest(pipe.sample(4, seed=5, labels=3).tensor)
        out["class_grid"] = digest(pipe.class_grid(cols=2, seed=1).tensor)
    out["interpolate"] = digest(pipe.interpolate(seed_a=0, seed_b=1, steps=3).tensor)
    if name == "mnist-cppn":
        out["render"] = digest(pipe.render(40, seed=2).tensor)
    return out


@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_draws_what_it_drew(name):
    weights = hashlib.sha256((ZOO / name / "model.safetensors").read_bytes()).hexdigest()[:16]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reductions whatever the machine's cores
    try:
        got = {"weights": weights, **draw(name)}
    finally:
        torch.set_num_threads(threads)
    if os.environ.get("GANVAE_UPDATE_GOLDEN"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[name] = got
        GOLDEN.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
        return
    expected = json.loads(GOLDEN.read_text()).get(name)
    assert expected is not None, f"{name}: no stored samples; regenerate (see the module docstring)"
    assert expected["weights"] == weights, (f"{name}: its weights changed (a zoo rebuild); regenerate "
                                            f"zoo_samples.json (see the module docstring)")
    assert got == expected, f"{name}: the same seeds now draw other images"


@pytest.mark.parametrize("name", MODELS)
def test_the_kth_image_of_a_seed_does_not_depend_on_how_many_are_drawn(name):
    """Issue 38: the component, pseudo-class or class weights of a whole batch were drawn before any noise, so
    sample(16, seed=0)[:4] differed from sample(4, seed=0)."""
    import ganvae

    pipe = ganvae.load(name, device="cpu")
    prior = pipe.model.latent_prior
    seeded = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(prior.draw(16, seeded())[:4], prior.draw(4, seeded()))
    # the same latents decoded in a batch of 16 or of 4: equal up to the matrix kernels' batch-size rounding
    torch.testing.assert_close(pipe.sample(16, seed=0).tensor[:4], pipe.sample(4, seed=0).tensor, rtol=0, atol=1e-5)


def test_generator_is_taken_as_diffusers_takes_it():
    import ganvae
    from ganvae.errors import ConfigError

    pipe = ganvae.load("mnist-cvae", device="cpu")
    by_seed = pipe.sample(4, seed=0, labels=3).tensor
    g = torch.Generator().manual_seed(0)
    assert torch.equal(pipe.sample(4, generator=g, labels=3).tensor, by_seed)
    assert not torch.equal(pipe.sample(4, generator=g, labels=3).tensor, by_seed)  # the generator moved on
    # one generator per image: image i is what seed s_i draws first
    per_image = pipe.sample(2, generator=[torch.Generator().manual_seed(s) for s in (7, 0)], labels=3).tensor
    torch.testing.assert_close(per_image[1], by_seed[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(per_image[0], pipe.sample(1, seed=7, labels=3).tensor[0], rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="one of seed= and generator="):
        pipe.sample(4, seed=0, generator=torch.Generator())
    with pytest.raises(ConfigError, match="2 generators for 4 images"):
        pipe.sample(4, generator=[torch.Generator(), torch.Generator()])
    with pytest.raises(ConfigError, match="give a torch.Generator"):
        pipe.sample(4, generator=0)
    assert pipe.to("cpu") is pipe and pipe.device == torch.device("cpu")
    with pytest.raises(ConfigError, match="not a device"):
        pipe.to("gpu please")
