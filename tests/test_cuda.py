"""What needs a CUDA device: training on it, a CPU run resumed on it, bf16 autocast there, and sampling from a CPU
generator. Skipped without CUDA (CI has none); ``benchmarks/gpu_check.sh`` runs them on a GPU."""

import json
import math

import pytest
import torch
from conftest import LIKE_ZOO, tiny_config, tiny_data, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def finite_losses(result) -> bool:
    return bool(result.last_losses) and all(math.isfinite(v) for v in result.last_losses.values())


@pytest.mark.parametrize("name", ["gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn"])
def test_a_tiny_model_trains_on_cuda(tmp_path, name):
    cfg = tiny_config(name, "train.device=cuda", "train.epochs=1")
    result = train(cfg, tmp_path / "run", data=tiny_data(size=cfg.data.image_size))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["device"].startswith("cuda") and result.step == 6  # 48 images, batch 8
    assert finite_losses(result), result.last_losses


def test_a_cpu_checkpoint_resumes_on_cuda(tmp_path):
    data = tiny_data(size=16)
    run = tmp_path / "run"
    first = train(tiny_config("dcgan", "train.device=cpu", "train.epochs=1"), run, data=data)
    resumed = train(tiny_config("dcgan", "train.device=cuda", "train.epochs=2"), run, data=data, resume=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["device"].startswith("cuda")
    assert resumed.step == 2 * first.step and finite_losses(resumed)
    import ganvae

    images = ganvae.load(run, device="cpu").sample(4, seed=0).tensor  # and the CUDA checkpoint loads on a CPU
    assert images.shape == (4, 1, 16, 16) and torch.isfinite(images).all()


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(), reason="GPU without bf16")
def test_bf16_autocast_trains_on_cuda(tmp_path):
    cfg = tiny_config("dcgan", "train.device=cuda", "train.precision=bf16", "train.epochs=1")
    result = train(cfg, tmp_path / "run", data=tiny_data(size=16))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["precision"] == "bf16" and finite_losses(result), (summary, result.last_losses)


def test_a_cpu_generator_gives_the_same_latents_and_images_on_cuda(tiny_pretrained):
    import ganvae

    folder = tiny_pretrained(*LIKE_ZOO["vae"])  # a fitted mixture prior: latents drawn by the prior's own code
    on_cpu, on_cuda = ganvae.load(folder, device="cpu"), ganvae.load(folder, device="cuda")
    z_cpu = on_cpu.model.latent_prior.draw(8, torch.Generator().manual_seed(0))
    z_cuda = on_cuda.model.latent_prior.draw(8, torch.Generator().manual_seed(0))
    assert torch.equal(z_cpu.cpu(), z_cuda.cpu())  # the draw is made on the CPU generator, whatever the device
    a, b = on_cpu.sample(8, seed=0).tensor, on_cuda.sample(8, seed=0).tensor.cpu()
    assert torch.allclose(a, b, atol=2e-3), (a - b).abs().max()  # the same images, up to GPU arithmetic
