"""A training batch that cannot fit in memory is refused before the first step (issue 40, item 7): the estimate
(ganvae.training.step_memory) grows with the image, touches nothing of the run, and its refusal names the batch,
the image shape and a batch that fits, before the run folder exists."""

from __future__ import annotations

import pytest
import torch
from colour_helpers import tiny_colour_data
from conftest import tiny_config, train

from ganvae.errors import DataError
from ganvae.registry import build_model
from ganvae.training import step_memory


def model_at(name: str, shape: tuple[int, int, int], *extra: str):
    from ganvae.config import build_config

    return build_model(build_config(name, overrides=[f"data.image_size={shape[-1]}", *extra]), shape)


@pytest.mark.parametrize("name", ["gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn"])
def test_the_estimate_grows_with_the_image_and_leaves_the_model_and_its_randomness_alone(name):
    small, large = model_at(name, (1, 28, 28)), model_at(name, (3, 64, 64))
    before = {k: v.clone() for k, v in large.state_dict().items()}
    modes = [m.training for m in large.modules()]
    rng = torch.get_rng_state()
    per_small, per_large = step_memory.activation_bytes_per_image(small), step_memory.activation_bytes_per_image(large)
    assert per_small and per_large and per_large > 2 * per_small  # 3x the values per image at 64x64x3 than 28x28x1
    assert all(torch.equal(before[k], v) for k, v in large.state_dict().items())  # no batch-norm statistics moved
    assert modes == [m.training for m in large.modules()] and torch.equal(rng, torch.get_rng_state())
    # the step's estimate: the batch's activations and four copies of the weights (weights, gradients, Adam's moments)
    weights = sum(p.numel() * p.element_size() for p in large.parameters())
    image = step_memory.ACTIVATION_FACTOR * per_large + step_memory.IMAGE_COPIES * 4 * 3 * 64 * 64
    assert step_memory.step_bytes(large, 10, per_large) == 10 * image + 4 * weights


def test_a_batch_that_cannot_fit_is_refused_before_the_run_folder_with_one_that_fits(tmp_path, monkeypatch):
    per_image = step_memory.activation_bytes_per_image(model_at("dcgan", (3, 64, 64), *tiny_overrides()))
    model = model_at("dcgan", (3, 64, 64), *tiny_overrides())
    weights = step_memory.step_bytes(model, 0, per_image)
    # a machine with room for 5 images' steps: batch 16 is refused, 4 suggested (the power of two that fits)
    monkeypatch.setattr(step_memory, "available_memory_bytes",
                        lambda: weights + 5 * step_memory.image_bytes(model, per_image))
    with pytest.raises(DataError) as err:
        train(tiny_config("dcgan", "data.image_size=64", "train.batch_size=16"), tmp_path / "run",
              data=tiny_colour_data(32, 64))
    text = str(err.value)
    assert "train.batch_size=16 of 3x64x64 images needs about" in text and "batch_size=4" in text
    assert "nothing was trained" in text and not (tmp_path / "run").exists()
    # the batch it suggests trains
    result = train(tiny_config("dcgan", "data.image_size=64", "train.batch_size=4", "train.epochs=1"),
                   tmp_path / "run", data=tiny_colour_data(8, 64))
    assert result.step == 2


def test_where_the_memory_is_unknown_nothing_is_refused(monkeypatch):
    monkeypatch.setattr(step_memory, "available_memory_bytes", lambda: None)
    step_memory.check_step_memory(model_at("dcgan", (3, 64, 64)), 10**9, torch.device("cpu"))


def tiny_overrides() -> list[str]:
    from conftest import TINY

    return TINY["dcgan"]
