"""ONNX export: the graphs run in real onnxruntime, with any batch size, and draw what PyTorch draws."""

import json

import numpy as np
import pytest
import torch
from conftest import LIKE_ZOO

ort = pytest.importorskip("onnxruntime", reason="pip install -e '.[test]' installs onnxruntime for this test")
pytest.importorskip("onnxscript", reason="pip install -e '.[test]' installs onnxscript for this test")

from ganvae.cli import main  # noqa: E402
from ganvae.storage import load  # noqa: E402
from ganvae.storage.onnx_export import Sampler  # noqa: E402

ATOL = 1e-4  # pixels in [0, 1]: float32 kernels differ in summation order, never by more


def run(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["image"], {k: np.asarray(v) for k, v in inputs.items()})[0])


@pytest.mark.parametrize("like", ["cvae", "dcgan", "conv-vae"])
def test_the_exported_graphs_draw_what_pytorch_draws(tmp_path, tiny_pretrained, like):
    # tiny models like the zoo's cvae: conditional, a mixture per class; dcgan: self-conditioned; conv-vae: one full
    # mixture
    folder = tiny_pretrained(*LIKE_ZOO[like])
    assert main(["export", str(folder), str(tmp_path / "onnx"), "--format", "onnx"]) == 0
    record = json.loads((tmp_path / "onnx/onnx.json").read_text())
    assert set(record["graphs"]) == {"decoder", "sampler"} and (tmp_path / "onnx/README.md").is_file()
    model = load(folder).model
    g = torch.Generator().manual_seed(3)
    n = 7  # not the batch the export traced with (4): the batch is dynamic
    labels = model.labels_for(n).long() if model.conditional else None
    extra = {"label": labels.numpy()} if labels is not None else {}
    # the decoder: model.generate on the same latents
    z = model.latent_prior.draw(n, g, labels=labels)
    assert torch.allclose(run(tmp_path / "onnx/decoder.onnx", latent=z.numpy(), **extra), model.generate(z, labels),
                          atol=ATOL)
    # the sampler: the prior's own transform of the same noise, then the decoder
    uniform, normal = torch.rand(n, 2, generator=g), torch.randn(n, model.noise_dim, generator=g)
    if model.latent_prior.kind == "gmm":  # the eager transform (a loop over components); the graph gathers instead
        want = model.generate(model.latent_prior.transform(uniform, normal, labels), labels)
    else:  # self-conditioned: the pseudo-class whose share the uniform falls in, as a one-hot
        shares = model.pseudo_classes.counts / model.pseudo_classes.counts.sum()
        ids = torch.searchsorted(shares.cumsum(0), uniform[:, 0].contiguous(), right=True).clamp(max=len(shares) - 1)
        want = model.generate(torch.cat([normal, torch.nn.functional.one_hot(ids, len(shares)).float()], 1))
    got = run(tmp_path / "onnx/sampler.onnx", uniform=uniform.numpy(), normal=normal.numpy(), **extra)
    assert got.shape == (n, *model.image_shape) and 0 <= got.min() and got.max() <= 1
    assert torch.allclose(got, want, atol=ATOL)


def test_the_sampler_follows_the_prior_of_each_kind(tiny_pretrained):
    kind = lambda like: Sampler(load(tiny_pretrained(*LIKE_ZOO[like])).model).kind  # noqa: E731
    assert kind("cgan") == "normal"  # conditional: N(0, I) and the asked label
    assert kind("gan") == "self-conditioned"
    assert kind("dcgan") == "self-conditioned"
    assert kind("vae") == "gmm"


def test_an_unknown_format_is_refused(tmp_path, capsys, tiny_pretrained):
    with pytest.raises(SystemExit):
        main(["export", str(tiny_pretrained(*LIKE_ZOO["gan"])), str(tmp_path / "x"), "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err and not (tmp_path / "x").exists()
