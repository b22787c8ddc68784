"""Every registered model: builds, shapes, one step (right weights change), save/load, seeded sampling."""


import pytest
import torch
from conftest import tiny_config

from ganvae.models.step import StepContext
from ganvae.registry import build_model, model_names
from ganvae.storage.checkpoint import load_checkpoint, restore_model, save_checkpoint

NAMES = model_names()


def build(name, *extra):
    torch.manual_seed(0)
    cfg = tiny_config(name, *extra)
    return cfg, build_model(cfg, (1, 16, 16))


def batch(model, n=8):
    x = torch.rand(n, 1, 16, 16)
    return x * 2 - 1 if model.value_range == "tanh" else x


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


def test_all_six_registered():
    assert set(NAMES) == {"gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn"}


@pytest.mark.parametrize("name", NAMES)
def test_builds_and_shapes(name):
    cfg, model = build(name)
    z = model.latent_prior.draw(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, cfg.model.latent_dim)
    images = model.generate(z)
    assert images.shape == (5, 1, 16, 16)
    assert images.min() >= 0 and images.max() <= 1
    if model.has_encoder:
        mu, logvar = model.encode(batch(model, 3))
        assert mu.shape == logvar.shape == (3, cfg.model.latent_dim)
        assert model.reconstruct(torch.rand(3, 1, 16, 16)).shape == (3, 1, 16, 16)


@pytest.mark.parametrize("name", NAMES)
def test_one_step_finite_and_updates_every_network(name):
    cfg, model = build(name)
    opts = model.make_optimizers()
    before = params(model)
    losses = model.training_step(batch(model), opts, StepContext(0, 0, 0.0))
    assert losses and all(torch.isfinite(v).all() for v in losses.values())
    moved = changed(before, model)
    for net in model.networks:
        net_params = {f"{net}.{k}" for k, _ in getattr(model, net).named_parameters()}
        assert net_params & moved, f"{net} did not change"


ADVERSARIAL = [n for n in NAMES if n in ("gan", "dcgan", "vae-gan", "cppn")]


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_generator_step_leaves_discriminator_alone(name):
    """D's weights and gradients after its own step equal those at the end of the whole step,
    and the D step leaves no gradient in the generator side."""
    extra = ["model.schedule=alternating"] if name == "cppn" else []
    cfg, model = build(name, *extra)
    opts = model.make_optimizers()
    d_opt = opts["discriminator"]
    generator_side = [p for n, p in model.named_parameters() if not n.startswith("discriminator.")]
    snapshot = {}
    original_step = d_opt.step

    def step_and_snapshot(*args, **kwargs):
        snapshot["grads_into_generator"] = [p.grad for p in generator_side
                                            if p.grad is not None and p.grad.abs().sum() > 0]
        out = original_step(*args, **kwargs)
        snapshot["d"] = params(model.discriminator)
        snapshot["d_grads"] = [p.grad.clone() for p in model.discriminator.parameters()]
        return out

    d_opt.step = step_and_snapshot
    model.training_step(batch(model), opts, StepContext(0, 0, 0.0))
    assert "d" in snapshot
    assert snapshot["grads_into_generator"] == []
    assert changed(snapshot["d"], model.discriminator) == set()
    for g0, p in zip(snapshot["d_grads"], model.discriminator.parameters()):
        assert torch.equal(g0, p.grad), "the generator step accumulated gradient in the discriminator"


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_reuse_fake_logits_option_trains(name):
    cfg, model = build(name, "model.reuse_fake_logits=true")
    opts = model.make_optimizers()
    before = params(model)
    losses = model.training_step(batch(model), opts, StepContext(0, 0, 0.0))
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(k.startswith("generator.") for k in changed(before, model))
    assert any(k.startswith("discriminator.") for k in changed(before, model))


def test_ema_decay_warms_up_then_holds():
    from ganvae.models.ema import ema_decay_at

    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)  # first update: mostly the new weights
    assert ema_decay_at(0.999, 90) == pytest.approx(0.91)
    assert ema_decay_at(0.999, 10**6) == 0.999  # capped at the configured decay


def test_ema_generator_tracks_and_samples():
    cfg, model = build("gan", "model.ema_decay=0.5")
    opts = model.make_optimizers()
    ema_before = params(model.ema_generator)
    model.training_step(batch(model), opts, StepContext(0, 0, 0.0))
    model.after_step(1000)  # past the warm-up: the configured decay 0.5
    assert changed(ema_before, model.ema_generator)  # moved halfway to the new weights
    for (k, e), (_, g) in zip(model.ema_generator.named_parameters(), model.generator.named_parameters()):
        assert torch.allclose(e, 0.5 * ema_before[k] + 0.5 * g)
    z = model.latent_prior.draw(4, generator=torch.Generator().manual_seed(0))
    model.eval()
    assert torch.allclose(model.decode(z), model.ema_generator(z))


ADVERSARIAL = [n for n in NAMES if hasattr(tiny_config(n).model, "ema_decay")]


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_ema_acts_in_every_adversarial_family(name):
    """ema_decay averages each family's sampling networks, and sampling, reconstruction and the
    likelihood bound read the averaged copies in eval mode (the live ones while training)."""
    cfg, model = build(name, "model.ema_decay=0.9")
    assert model.ema_networks
    opts = model.make_optimizers()
    for step in range(3):
        model.training_step(batch(model), opts, StepContext(step, 0, 0.0))
        model.after_step(step)
    z = model.latent_prior.draw(4, generator=torch.Generator().manual_seed(0))
    model.eval()
    averaged = model.decode(z)
    model.train()
    live = model.decode(z)
    assert not torch.allclose(averaged, live)  # the averaged weights differ from the live ones
    for net in model.ema_networks:
        assert model.inference_network(net) is getattr(model, net)
        model.eval()
        assert model.inference_network(net) is getattr(model, f"ema_{net}")
        model.train()
    if model.has_encoder:
        x = torch.rand(3, 1, 16, 16)
        model.eval()
        mu, _ = model.encode(x)
        assert torch.allclose(mu, model.ema_encoder(x)[0])
    assert model.has_ema
    model.drop_ema()  # `evaluate --no-ema`: the trained networks themselves
    assert not model.has_ema
    model.eval()
    assert all(model.inference_network(n) is getattr(model, n) for n in model.ema_networks)
    assert not torch.allclose(model.decode(z), averaged)
    # without ema_decay there are no copies and sampling uses the live networks
    cfg, plain_model = build(name, "model.ema_decay=null")
    assert all(getattr(plain_model, f"ema_{n}") is None for n in plain_model.ema_networks)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_identical_outputs(name, tmp_path):
    cfg, model = build(name)
    opts = model.make_optimizers()
    model.training_step(batch(model), opts, StepContext(0, 0, 0.0))  # move away from the init
    path = save_checkpoint(tmp_path / "c.safetensors", model, name, cfg.to_dict(), opts)
    torch.manual_seed(123)  # a different init for the copy
    again = build_model(cfg, (1, 16, 16))
    restore_model(again, load_checkpoint(path, expected_model=name))
    z = model.latent_prior.draw(6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.generate(z), again.generate(z))


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_seeded(name):
    _, model = build(name)
    a = model.sample(4, generator=torch.Generator().manual_seed(5))
    b = model.sample(4, generator=torch.Generator().manual_seed(5))
    c = model.sample(4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_cppn_renders_any_resolution_consistently():
    _, model = build("cppn")
    z = model.latent_prior.draw(1, generator=torch.Generator().manual_seed(0))
    small = model.render(z, 16, 16)
    large = model.render(z, 61, 61)  # 61 = 4 * 15 + 1: every 4th pixel falls on the 16-pixel grid
    assert large.shape == (1, 1, 61, 61)
    assert torch.allclose(large[..., ::4, ::4], small, atol=1e-5)
    wide = model.render(z, 16, 40)
    assert wide.shape == (1, 1, 16, 40)


def test_kl_warmup():
    cfg, model = build("vae", "model.kl_warmup_epochs=2")
    assert model.kl_beta(StepContext(0, 0, 0.0)) == 0.0
    assert model.kl_beta(StepContext(0, 0, 1.0)) == 0.5
    assert model.kl_beta(StepContext(0, 0, 3.0)) == 1.0


@pytest.mark.parametrize("loss", ["hinge", "lsgan"])
def test_other_gan_losses(loss):
    cfg, model = build("dcgan", f"model.gan_loss={loss}")
    losses = model.training_step(batch(model), model.make_optimizers(), StepContext(0, 0, 0.0))
    assert all(torch.isfinite(v) for v in losses.values())


def test_vae_gan_feature_reconstruction_option():
    cfg, model = build("vae-gan", "model.feature_recon=true")
    losses = model.training_step(batch(model), model.make_optimizers(), StepContext(0, 0, 0.0))
    assert torch.isfinite(losses["recon"])


def test_diffaugment_translation_and_cutout():
    from ganvae.models.blocks import diff_augment

    torch.manual_seed(0)
    x = torch.rand(64, 1, 16, 16) + 1.0  # every pixel above the fill value
    moved = diff_augment(x, ("translation",), background=-1.0)
    assert moved.shape == x.shape
    filled = (moved == -1.0).flatten(1).sum(1)
    assert (filled > 0).any() and (filled == 0).any()  # some shifted (border filled), some not (shift 0)
    assert filled.max() <= 16 * 16 - 14 * 14  # at most 2 pixels (1/8 of 16) of shift per axis
    # a shifted image is the original moved: its unfilled pixels are pixels of the original
    i = int(filled.argmax())
    assert set(moved[i][moved[i] != -1].tolist()) <= set(x[i].flatten().tolist())
    cut = diff_augment(x, ("cutout",), background=0.0)
    blank = (cut == 0).flatten(1).sum(1)
    assert blank.max() == 8 * 8 and blank.min() > 0  # a square of half the side, clipped at the borders
    # differentiable: gradients reach the input through both
    y = x.clone().requires_grad_(True)
    diff_augment(y, ("translation", "cutout"), background=-1.0).sum().backward()
    assert y.grad is not None and y.grad.sum() > 0


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_discriminator_options_act(name):
    """spectral_norm normalises every discriminator layer; diffaugment changes what D sees, only in training."""
    cfg, model = build(name, "model.spectral_norm=true")
    sn = [m for m in model.discriminator.modules() if hasattr(m, "parametrizations")]
    assert sn and all("weight" in m.parametrizations for m in sn)
    w = sn[0].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2) <= 1.05  # after a power iteration or two: sigma ~ 1
    model.training_step(batch(model), model.make_optimizers(), StepContext(0, 0, 0.0))
    cfg, model = build(name, "model.diffaugment=[translation,cutout]", "model.dropout=0")
    x = batch(model)
    torch.manual_seed(1)
    a = model.discriminator(x)
    torch.manual_seed(2)
    assert not torch.equal(a, model.discriminator(x))  # random augmentation while training
    model.eval()
    assert torch.equal(model.discriminator(x), model.discriminator(x))  # none in eval mode
    with pytest.raises(Exception, match="unknown augmentation"):
        build(name, "model.diffaugment=[flip]")


@pytest.mark.parametrize("name", ["vae", "conv-vae", "vae-gan", "cppn"])
def test_one_likelihood_for_training_and_evaluation(name, monkeypatch):
    """A Gaussian decoder trains with the Gaussian likelihood that evaluation scores it with (no Bernoulli term)."""
    import ganvae.models.vae as vae_module

    def refuse(*args):
        raise AssertionError("the Bernoulli likelihood was used with decoder=gaussian")

    monkeypatch.setattr(vae_module, "bernoulli_nll", refuse)
    _, model = build(name, "model.decoder=gaussian")
    calls = []
    original = type(model).reconstruction_nll
    monkeypatch.setattr(type(model), "reconstruction_nll", lambda self, *a: calls.append(1) or original(self, *a))
    model.training_step(batch(model), model.make_optimizers(), StepContext(0, 0, 0.0))
    assert calls, "the training step does not use the model's reconstruction likelihood"
    calls.clear()
    model.log_importance_weights(batch(model, 2), k=2)  # what the likelihood bounds evaluate
    assert calls


def test_cppn_gradients_flow_after_sampling_at_the_same_size():
    """The coordinate grid cached by a sample (inference mode) must not break a later backward (GAN inversion)."""
    from conftest import tiny_config

    from ganvae.registry import build_model

    model = build_model(tiny_config("cppn"), (1, 16, 16)).eval()
    model.sample(2)  # caches the 16x16 grid under inference mode
    z = model.latent_prior.draw(1).requires_grad_(True)
    model.decode(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_r1_penalty_is_half_gamma_times_the_squared_input_gradient():
    """R1 (Mescheder et al. 2018, Eq. 9) of a linear discriminator D(x) = w . x: its input gradient is w, so the
    penalty is gamma / 2 * |w|^2 whatever the images, and it reaches w."""
    from ganvae.models.losses import r1_penalty

    w = torch.randn(16, requires_grad=True)
    x = torch.rand(5, 1, 4, 4, requires_grad=True)
    penalty = r1_penalty((x.flatten(1) @ w)[:, None], x, gamma=3.0)
    assert torch.allclose(penalty, 1.5 * w.detach().pow(2).sum())
    penalty.backward()
    assert torch.allclose(w.grad, 3.0 * w.detach())


def test_mode_seeking_loss_is_large_when_the_noise_is_ignored():
    """Mao et al. 2019, Eq. 3: 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + eps); the same image from two noises
    gives 1 / eps, images as far apart as their noises give about 1, and it pushes the images apart."""
    from ganvae.models.losses import mode_seeking_loss

    z_a, z_b = torch.zeros(4, 3), torch.full((4, 3), 2.0)  # mean |z_a - z_b| = 2
    same = torch.ones(4, 1, 2, 2, requires_grad=True)
    assert torch.isclose(mode_seeking_loss(same, same, z_a, z_b, eps=1e-5), torch.tensor(1e5))
    a, b = torch.zeros(4, 1, 2, 2, requires_grad=True), torch.full((4, 1, 2, 2), 3.0, requires_grad=True)
    loss = mode_seeking_loss(a, b, z_a, z_b, eps=0.0)
    assert torch.isclose(loss, torch.tensor(2.0 / 3.0))
    loss.backward()
    assert (a.grad > 0).all() and (b.grad < 0).all()  # descending moves a down and b up: further apart


@pytest.mark.parametrize("reuse", [False, True])
def test_mode_seeking_adds_to_the_generator_loss_of_a_model_with_labels(reuse):
    from ganvae.models.step import StepContext
    from ganvae.registry import build_model

    losses = []
    for weight in (0.0, 1.0):
        cfg = tiny_config("dcgan", f"model.mode_seeking={weight}", "model.conditional=true",
                          f"model.reuse_fake_logits={str(reuse).lower()}")
        torch.manual_seed(0)
        model = build_model(cfg, (1, 16, 16))
        x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
        torch.manual_seed(5)
        losses.append(model.training_step(x, model.make_optimizers(),
                                          StepContext(0, 0, 0.0, labels=torch.arange(8) % 3)))
    assert torch.equal(losses[0]["d_loss"], losses[1]["d_loss"])  # the discriminator's step is untouched
    assert losses[1]["g_loss"] > losses[0]["g_loss"]  # plus a positive term


@pytest.mark.parametrize("reuse", [False, True])
def test_r1_gamma_adds_the_penalty_to_the_discriminator_loss(reuse):
    from ganvae.models.step import StepContext
    from ganvae.registry import build_model

    losses = []
    for gamma in (0.0, 10.0):
        cfg = tiny_config("dcgan", f"model.r1_gamma={gamma}", f"model.reuse_fake_logits={str(reuse).lower()}")
        torch.manual_seed(0)
        model = build_model(cfg, (1, 16, 16))
        x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
        losses.append(model.training_step(x, model.make_optimizers(), StepContext(0, 0, 0.0)))
    assert losses[1]["d_loss"] > losses[0]["d_loss"]  # the same first pass plus a positive penalty
