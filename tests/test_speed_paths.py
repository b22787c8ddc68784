"""The fast paths of issue 5 keep the objective: dropout masks, denormal flushing, batch gathering."""

import pytest
import torch
from conftest import iter_batches, tiny_config, tiny_data, train

from ganvae.models.blocks import Dropout, keep_mask
from ganvae.models.gan import GAN
from ganvae.training.denormals import denormals_flushed, flush_denormals, set_flush_denormal


def test_keep_mask_has_dropouts_distribution():
    torch.manual_seed(0)
    x = torch.empty(1_000_001)  # odd: the two 15-bit halves have different lengths
    mask = keep_mask(x, 0.7)
    threshold = round(0.7 * 32768)
    assert mask.unique().tolist() == [0.0, pytest.approx(32768 / threshold)]
    kept = mask > 0
    # binomial standard deviation sqrt(0.21 / 1e6) = 0.00046: 0.003 is more than 6 of them
    assert abs(kept.float().mean().item() - 0.7) < 0.003
    assert abs(mask.mean().item() - 1.0) < 0.005  # inverted dropout: E[mask] = 1
    # the two draws taken from one 31-bit integer (element i and element i + half) are independent
    half = (x.numel() + 1) // 2
    first, second = kept[: half - 1], kept[half:]
    assert abs((first & second).float().mean().item() - 0.49) < 0.004
    # and so are neighbours
    assert abs((kept[:-1] & kept[1:]).float().mean().item() - 0.49) < 0.004
    torch.manual_seed(0)
    assert torch.equal(keep_mask(x, 0.7), mask)  # seeded: reproducible


def test_dropout_layer_layout_gradient_eval_and_edges():
    torch.manual_seed(1)
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    layer = Dropout(0.3)
    y = layer(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.sum().backward()
    scale = 32768 / round(0.7 * 32768)
    dropped = y.detach() == 0
    assert torch.allclose(x.grad[~dropped], torch.full_like(x.grad[~dropped], scale))
    assert torch.allclose(y.detach()[~dropped], x.detach()[~dropped] * scale)
    assert (x.grad[dropped] == 0).all()
    layer.eval()
    assert layer(x) is x
    assert (Dropout(1.0)(x) == 0).all()
    assert Dropout(0.0)(x) is x


@pytest.fixture
def flushing_supported():
    torch.ones(1 << 21).mul_(2).sum()  # make sure torch's thread pool exists before the setting changes
    if not set_flush_denormal(True):
        set_flush_denormal(False)
        pytest.skip("denormal flushing cannot reach every thread here (not x86, or no GOMP_parallel)")
    set_flush_denormal(False)


def test_flush_denormals_reaches_pool_threads_and_restores(flushing_supported):
    assert not denormals_flushed()
    tiny = torch.full((1 << 20,), 1e-30)
    with flush_denormals():
        assert denormals_flushed()
        assert ((tiny * 1e-10) == 0).all()  # every thread's share flushed, not only this thread's
    assert not denormals_flushed()
    assert ((tiny * 1e-10) > 0).all()  # restored: denormals are computed again
    with flush_denormals(False):
        assert not denormals_flushed()


def test_trainer_flushes_denormals_while_training_only(tmp_path, monkeypatch, flushing_supported):
    seen = []
    step = GAN.training_step

    def recording_step(self, *args, **kwargs):
        seen.append(denormals_flushed())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(GAN, "training_step", recording_step)
    train(tiny_config("gan", "train.epochs=1"), tmp_path / "on", data=tiny_data())
    assert seen and all(seen)
    assert not denormals_flushed()
    seen.clear()
    train(tiny_config("gan", "train.epochs=1", "train.flush_denormals=false"), tmp_path / "off", data=tiny_data())
    assert seen and not any(seen)


def test_batches_are_the_permutations_rows():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    batches = list(iter_batches(images, 8, seed=3, epoch=1))
    seen = torch.cat([b[:, 0, 0, 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(40))  # each image once per epoch
    assert all((b == b[:, :, :1, :1]).all() for b in batches)  # whole images, not mixed rows


def test_channels_last_dcgan_is_the_same_function():
    """The channels-last discriminator (head read in (H, W, C) order) and generator compute what the NCHW ones do."""
    from ganvae.config import build_config
    from ganvae.registry import build_model

    torch.manual_seed(0)
    fast = build_model(build_config("dcgan", overrides=["model.dropout=0.0"]), (1, 28, 28))
    plain = build_model(build_config("dcgan", overrides=["model.dropout=0.0", "model.channels_last=false"]),
                        (1, 28, 28))
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(6, 1, 28, 28)
    z = torch.randn(6, 100)
    logits = []
    for model in (fast, plain):
        model.zero_grad()
        out = model.discriminator(x)
        out.sum().backward()
        logits.append(out.detach())
    assert torch.allclose(logits[0], logits[1], atol=1e-4)
    for (name, p), q in zip(fast.discriminator.named_parameters(), plain.discriminator.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-3), name
    with torch.no_grad():
        assert torch.allclose(fast.generator(z), plain.generator(z), atol=1e-4)
