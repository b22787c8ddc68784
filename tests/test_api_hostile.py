"""The Python API against bad arguments: each is a GanvaeError whose message speaks Python (``sample(n=...)``), and
no request reaches the allocator unbounded. Also the command line's huge file-only draw, chunk by chunk."""

from __future__ import annotations

import pytest
import torch
from conftest import LIKE_ZOO

import ganvae
from ganvae import inference, storage
from ganvae.errors import GanvaeError
from ganvae.inference import writers


@pytest.fixture(scope="module")
def gan(tiny_pretrained):
    return ganvae.load(tiny_pretrained(*LIKE_ZOO["gan"]))


@pytest.fixture(scope="module")
def cppn(tiny_pretrained):
    return ganvae.load(tiny_pretrained(*LIKE_ZOO["cppn"]))


@pytest.fixture(scope="module")
def cgan_folder(tiny_pretrained):
    return tiny_pretrained(*LIKE_ZOO["cgan"])  # conditional, trained on 10 classes


@pytest.mark.parametrize("call,says", [
    (lambda m: m.sample(10**9), r"sample\(n=1000000000\): .* over the limit of 4 GB.*max_memory_gb"),
    (lambda m: m.sample(3 * 10**6), r"sample\(n=3000000\): .* over the limit"),
    (lambda m: m.interpolate(steps=10**9), r"interpolate\(steps=1000000000\): .* over the limit"),
    (lambda m: m.sample(-3), r"sample\(n=...\): -3; give a whole number of at least 1"),
    (lambda m: m.sample(2.5), r"sample\(n=...\): 2.5"),
    (lambda m: m.sample(latents=torch.zeros(4, 7)),
     r"sample\(latents=...\): latents of shape \(4, 7\); this gan takes \(n, 12\)"),
    (lambda m: m.sample(latents=torch.full((2, m.model.latent_dim), float("nan"))),
     r"sample\(latents=...\): latents hold NaN"),
    (lambda m: m.sample(seed=2**70), r"sample\(seed=...\): .*2\*\*63 - 1"),
    (lambda m: m.sample(labels="3"), r"sample\(labels=...\): labels='3'"),
    (lambda m: m.sample(labels=3), r"model__conditional=True"),
    (lambda m: m.interpolate(steps=1), r"interpolate\(steps=...\): 1; give a whole number of at least 2"),
])
def test_bad_arguments_are_named_in_python(gan, call, says):
    # the tiny gan is self-conditioned: its latent is 8 noises and a one-hot of its 4 pseudo-classes
    with pytest.raises(GanvaeError, match=says) as err:
        call(gan)
    assert "--" not in str(err.value)  # no command-line flags in a Python error


def test_the_memory_limit_is_a_setting(gan):
    gan.max_memory_gb = 1e-4  # 107 KB: 64 images of 16x16 floats (131 KB with their copy) do not fit
    try:
        with pytest.raises(GanvaeError, match="over the limit of 0.0001 GB"):
            gan.sample(64)
    finally:
        del gan.max_memory_gb
    assert len(gan.sample(64)) == 64


@pytest.mark.parametrize("size", [(-5, 10), (0, 0), 0, "big", (10,)])
def test_render_sizes_are_checked(cppn, size):
    with pytest.raises(GanvaeError, match=r"render\(size="):
        cppn.render(size=size)


def test_reconstruct_takes_uint8_and_refuses_nan_and_out_of_range(cppn):
    x = torch.zeros(2, 1, 16, 16)
    x[:, :, 3:13, 6:10] = 1.0
    as_float = cppn.reconstruct(x).tensor
    as_uint8 = cppn.reconstruct((x * 255).to(torch.uint8)).tensor
    assert torch.allclose(as_float, as_uint8, atol=1e-5)
    with pytest.raises(GanvaeError, match="NaN"):
        cppn.reconstruct(torch.full((1, 1, 16, 16), float("nan")))
    with pytest.raises(GanvaeError, match=r"values from 0 to 255; float images must lie in \[0, 1\]"):
        cppn.reconstruct(x * 255)


def test_class_grid_is_guarded(cgan_folder):
    cgan = ganvae.load(cgan_folder)
    with pytest.raises(GanvaeError, match=r"class_grid\(cols=100000000\): 1,000,000,000 images"):
        cgan.class_grid(cols=10**8)
    with pytest.raises(GanvaeError, match=r"sample\(labels=...\): 2 labels for 4 samples"):
        cgan.sample(4, labels=[1, 2])


def test_a_huge_file_only_draw_draws_its_latents_chunk_by_chunk(tmp_path, monkeypatch, tiny_pretrained):
    """Beyond ONE_DRAW samples, latents are drawn a chunk at a time (a billion at once would be 400 GB)."""
    loaded = storage.load(tiny_pretrained(*LIKE_ZOO["gan"]))
    drawn = []
    draw = loaded.model.latent_prior.draw
    monkeypatch.setattr(loaded.model.latent_prior, "draw", lambda n, *a, **k: drawn.append(n) or draw(n, *a, **k))
    monkeypatch.setattr(inference, "ONE_DRAW", 10)
    writers.sample(loaded, n=25, seed=0, out=None, separate=tmp_path / "files", chunk=10)
    assert drawn == [10, 10, 5] and len(list((tmp_path / "files").iterdir())) == 25
    # the same seed gives the same files
    writers.sample(loaded, n=25, seed=0, out=None, separate=tmp_path / "again", chunk=10)
    assert ((tmp_path / "files" / "sample_0017.png").read_bytes()
            == (tmp_path / "again" / "sample_0017.png").read_bytes())


def test_a_huge_class_grid_is_drawn_by_columns_into_its_rows(tmp_path, monkeypatch, cgan_folder):
    loaded = storage.load(cgan_folder)
    monkeypatch.setattr(inference, "ONE_DRAW", 10)
    seen = []
    generate = loaded.model.generate
    monkeypatch.setattr(loaded.model, "generate", lambda z, y, **k: seen.append(y.clone()) or generate(z, y, **k))
    indices = []
    for index, part in inference._draw_in_chunks(loaded, 40, 4, None, 0, 20):
        assert len(part) == len(index) <= 20
        assert torch.equal(index // 4, seen[-1])  # the image at row r, column c is of class r
        indices.append(index)
    assert torch.equal(torch.cat(indices).sort().values, torch.arange(40))  # every cell once
    assert writers.sample(loaded, n=40, seed=0, out=tmp_path / "g.png", nrow=None).is_file()
