"""Every family at every channel count and size (issue 40, item 2): the depth each convolutional family takes from
the image size, the sizes refused, what the fully connected families cost, the CPPN's colour renders; and tiny
colour runs (32x32 and 64x64, C=3) of each family that train, checkpoint, resume bit for bit and sample
``(B, 3, H, W)``. Pictures, reconstructions and ONNX in colour are in tests/test_colour_models_pictures.py."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
from colour_helpers import tiny_colour_data
from conftest import tiny_config, train

from ganvae.errors import FieldConfigError
from ganvae.models.blocks import conv_depth, conv_sizes, start_and_depth
from ganvae.models.step import StepContext
from ganvae.registry import build_model
from ganvae.training.callbacks import Callback

CONV = ("dcgan", "conv-vae", "vae-gan")


def build(name: str, shape: tuple[int, int, int], *extra: str):
    torch.manual_seed(0)
    return build_model(tiny_config(name, f"data.image_size={shape[1]}", *extra), shape)


def strides(module: torch.nn.Module, kind: type) -> list[int]:
    return [m.stride[0] for m in module.modules() if isinstance(m, kind)]


# ----------------------------------------------------------------------------- the depth rule


def test_the_depth_follows_the_image_size():
    assert {s: start_and_depth(s) for s in (8, 16, 28, 32, 48, 64, 256)} == {
        8: (4, 1), 16: (4, 2), 28: (7, 2), 32: (4, 3), 48: (6, 3), 64: (4, 4), 256: (4, 6)}
    assert [start_and_depth(s) for s in (4, 6, 30, 36, 100)] == [None] * 5
    assert conv_sizes() == [8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256]
    assert conv_depth((3, 64, 64)) == conv_depth((1, 64, 64)) == 4  # any channel count


@pytest.mark.parametrize("size,start,doublings", [(28, 7, 2), (32, 4, 3), (64, 4, 4)])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_starts_at_4x4_to_7x7_and_doubles_to_the_image(size, start, doublings, channels):
    model = build("dcgan", (channels, size, size))
    gen = model.generator
    assert gen.start[1:] == (start, start)
    assert strides(gen.net, torch.nn.ConvTranspose2d).count(2) == doublings
    z = torch.randn(2, model.noise_dim)
    assert model.generate(z).shape == (2, channels, size, size)
    # the discriminator halves back to the start: its last feature map is start x start
    h = model.discriminator.features(torch.zeros(2, channels, size, size))
    assert h.shape[2:] == (start, start)


@pytest.mark.parametrize("name", CONV)
def test_every_size_the_rule_gives_builds_and_draws_it(name):
    for side in conv_sizes(128):  # (160 to 256 too; left out for time: the same rule, more doublings)
        # 10 and 14 halve once exactly (to 5 and 7): an encoder and its decoder take one entry there
        one = ["model.channels=[4]"] if side in (10, 14) and name != "dcgan" else []
        model = build_model(tiny_config(name, *one), (3, side, side))
        z = model.latent_prior.draw(2, torch.Generator().manual_seed(0))
        assert model.generate(z).shape == (2, 3, side, side), side
        if model.has_encoder:
            assert model.reconstruct(torch.rand(2, 3, side, side)).shape == (2, 3, side, side), side
        logits = model.discriminator(torch.rand(2, 3, side, side)) if hasattr(model, "discriminator") else None
        assert logits is None or logits.shape == (2, 1)


def test_28x28_keeps_the_tutorial_shapes():
    """The shipped zoo and the golden values rest on these: a 7x7 start, one stride-1 and two stride-2 layers."""
    model = build_model(tiny_config("dcgan", "data.image_size=28", "model.generator_channels=[64,32,16]",
                                    "model.discriminator_channels=[16,32]"), (1, 28, 28))
    assert model.generator.start == (64, 7, 7)
    assert strides(model.generator.net, torch.nn.ConvTranspose2d) == [1, 2, 2]
    assert [m.out_channels for m in model.discriminator.features if isinstance(m, torch.nn.Conv2d)] == [16, 32]
    vae = build_model(tiny_config("conv-vae", "data.image_size=28", "model.channels=[32,64]"), (1, 28, 28))
    assert vae.decoder.start == (64, 7, 7)
    assert [m.out_channels for m in vae.encoder.convs if isinstance(m, torch.nn.Conv2d)] == [32, 64]


@pytest.mark.parametrize("size,encoder", [(28, [4, 8]), (32, [4, 8, 16]), (64, [4, 8, 16, 32])])
@pytest.mark.parametrize("name", ["conv-vae", "vae-gan"])
def test_a_short_channel_list_is_extended_by_doubling(name, size, encoder):
    model = build(name, (3, size, size))  # the tiny config's model.channels=[4, 8]
    assert [m.out_channels for m in model.encoder.convs if isinstance(m, torch.nn.Conv2d)] == encoder
    assert model.decoder.start == (encoder[-1], size >> len(encoder), size >> len(encoder))
    x = torch.rand(2, 3, size, size)
    assert model.reconstruct(x).shape == (2, 3, size, size)
    if name == "vae-gan":  # the discriminator mirrors: [4, 8] -> one convolution per halving
        widths = [m.out_channels for m in model.discriminator.features if isinstance(m, torch.nn.Conv2d)]
        assert widths == encoder


def test_dcgan_lists_grow_at_their_deep_end():
    model = build("dcgan", (3, 64, 64))  # tiny: generator [16, 8, 4], discriminator [4, 8]
    assert model.generator.start == (32, 4, 4)  # [32, 16, 8, 4]: four doublings, no stride-1 layer
    assert strides(model.generator.net, torch.nn.ConvTranspose2d) == [2, 2, 2, 2]
    assert [m.out_channels for m in model.discriminator.features if isinstance(m, torch.nn.Conv2d)] == [4, 8, 16, 32]
    # a longer generator list keeps its extra entries as stride-1 layers at the start (the tutorial's 7x7 layer)
    longer = build("dcgan", (3, 32, 32), "model.generator_channels=[32,16,8,4]")
    assert longer.generator.start == (32, 4, 4)
    assert strides(longer.generator.net, torch.nn.ConvTranspose2d) == [1, 2, 2, 2]


@pytest.mark.parametrize("name", CONV)
@pytest.mark.parametrize("shape", [(3, 36, 36), (3, 30, 30), (1, 6, 6), (3, 32, 64)])
def test_sizes_no_architecture_builds_are_refused_with_those_that_work(name, shape):
    with pytest.raises(FieldConfigError) as err:
        build_model(tiny_config(name), shape)  # images of that shape, from wherever they came
    assert err.value.field == "data.image_size"
    text = str(err.value)
    assert "8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64" in text and "gan, vae, cppn" in text
    if shape == (3, 36, 36):
        assert "data__image_size=32" in text and "or 40" in text  # the nearest sides that work


def test_a_channel_list_longer_than_the_size_halves_is_refused():
    with pytest.raises(FieldConfigError) as err:
        build("conv-vae", (3, 28, 28), "model.channels=[4,8,16]")
    assert err.value.field == "model.channels"
    assert "halve 28x28 images to 3.5 pixels" in str(err.value) and "at most 2 entries" in str(err.value)
    # where the side halves further, a longer list goes deeper (16 -> 2x2 with three entries)
    assert build("conv-vae", (3, 16, 16), "model.channels=[4,8,8]").decoder.start == (8, 2, 2)


# ----------------------------------------------------------------------------- fully connected families and the CPPN


@pytest.mark.parametrize("name", ["gan", "vae"])
@pytest.mark.parametrize("shape", [(3, 30, 30), (4, 12, 12), (3, 64, 64)])
def test_fully_connected_families_take_any_size_and_channel_count(name, shape, caplog):
    with caplog.at_level(logging.DEBUG, logger="ganvae"):  # at INFO above MNIST's 784 pixel values
        model = build(name, shape)
    opts = model.make_optimizers()
    x = torch.rand(8, *shape)
    losses = model.training_step(x * 2 - 1 if model.value_range == "tanh" else x, opts, StepContext(0, 0, 0.0))
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, *shape)
    said = [r.getMessage() for r in caplog.records if "parameters" in r.getMessage()]
    assert said and f"{shape[1]}x{shape[2]}x{shape[0]} images has" in said[0] and "GB to train" in said[0]


def test_a_fully_connected_family_too_large_is_refused_before_it_is_built():
    from ganvae.config import build_config

    with pytest.raises(FieldConfigError) as err:  # the default MLP GAN at 256x256 colour: 404M parameters
        build_model(build_config("gan"), (3, 256, 256))
    assert err.value.field == "data.image_size"
    assert "404.2M parameters" in str(err.value) and "over the 200M" in str(err.value)
    assert "dcgan" in str(err.value) and "model__generator_hidden" in str(err.value)


def test_the_default_mlp_gan_says_nothing_at_mnist_size(caplog):
    with caplog.at_level(logging.INFO, logger="ganvae"):
        build("gan", (1, 28, 28))
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "parameters" in r.getMessage()]


def test_the_cppn_renders_colour_at_any_resolution(tmp_path):
    from PIL import Image

    from ganvae.viz.images import save_png_rows

    model = build("cppn", (3, 32, 32))
    z = model.latent_prior.draw(1, torch.Generator().manual_seed(0))
    image = model.render(z, 96, 80)
    assert image.shape == (1, 3, 96, 80) and 0 <= image.min() and image.max() <= 1
    assert image[0, 0].sub(image[0, 1]).abs().max() > 0  # three channels, not one grey copied
    # in bands of rows, streamed into an RGB PNG: the same pixels
    path = save_png_rows(model.render_bands(z, 96, 80, band_pixels=800), 80, 96, tmp_path / "r.png", channels=3)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (80, 96)
        pixels = torch.from_numpy(np.array(im)).permute(2, 0, 1).float()
    assert torch.equal(pixels, image[0].mul(255).round())


# ----------------------------------------------------------------------------- tiny colour runs of every family

# (family, image size, extra overrides): each family at 32 and 64, plus conditioning and self-conditioning in colour
RUNS = [(name, size, ()) for name in ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn") for size in (32, 64)] + [
    ("dcgan", 32, ("model.self_conditioning=2", "model.self_conditioning_features=spectral")),
    ("gan", 32, ("model.self_conditioning=2", "model.self_conditioning_features=discriminator")),
    ("conv-vae", 32, ("model.conditional=true",)),
    ("dcgan", 64, ("model.conditional=true",)),
]
IDS = [f"{n}-{s}" + ("-" + e[0].split("=")[0].split(".")[1] if e else "") for n, s, e in RUNS]


def colour_config(name: str, size: int, *extra: str):
    # 16 images, batch 8: 2 steps an epoch, 4 in all; a fitted mixture prior of 3 components for the encoder models
    prior = ["model.prior_components=3"] if name in ("vae", "conv-vae", "vae-gan", "cppn") else []
    return tiny_config(name, f"data.image_size={size}", "train.epochs=2", "run.n_fixed=4", *prior, *extra)


class StopAt(Callback):
    """Interrupts a run after optimisation step ``step`` (mid-epoch), as a kill would, at a known position."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, losses):
        if trainer.state.step == self.step:
            trainer.request_stop(f"interrupted at step {self.step}")


def read_losses(run_dir) -> list[list[str]]:
    with open(run_dir / "losses.csv", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def colour_runs(tmp_path_factory):
    """``run(name, size, extra)`` -> the folder of an uninterrupted tiny colour run (trained once per module)."""
    cache: dict = {}

    def run(name: str, size: int, extra: tuple = ()):
        key = (name, size, extra)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{name}-{size}") / "run"
            train(colour_config(name, size, *extra), folder, data=tiny_colour_data(16, size))
            cache[key] = folder
        return cache[key]

    return run


@pytest.mark.parametrize("name,size,extra", RUNS, ids=IDS)
def test_a_colour_run_trains_and_samples_colour(colour_runs, name, size, extra):
    """Each family trained on colour images: it samples (B, 3, H, W) from its EMA networks and learned prior (or
    pseudo-classes), reconstructs colour, and a conditional one draws the classes it is asked for."""
    from PIL import Image

    from ganvae.storage import load

    full = colour_runs(name, size, extra)
    assert len(read_losses(full)) == 5  # the header and four steps
    with Image.open(full / "samples/epoch_0002.png") as im:
        assert im.mode == "RGB"  # the trainer's grids are colour
    model = load(full).model
    assert model.image_shape == (3, size, size)
    labels = torch.tensor([0, 1, 2]) if model.conditional else None
    images = model.sample(3, generator=torch.Generator().manual_seed(0), labels=labels)
    assert images.shape == (3, 3, size, size) and 0 <= images.min() and images.max() <= 1
    if model.conditional:  # the same latent, another class: another image
        z = model.latent_prior.draw(1, torch.Generator().manual_seed(1), torch.tensor([0])).expand(3, -1)
        drawn = model.generate(z, torch.tensor([0, 1, 2]))
        assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[1], drawn[2])
    if model.has_ema:  # sampling uses the moving average of the trained weights, a network of its own
        net = model.ema_networks[0]
        averaged, trained = model._modules[f"ema_{net}"], model._modules[net]
        assert any(not torch.equal(a, b) for a, b in zip(averaged.parameters(), trained.parameters()))
    if model.has_encoder:
        if not model.conditional:  # (a conditional one has too few codes per class here to fit one per class)
            assert model.latent_prior.kind == "gmm"  # the mixture was fitted to the colour images' codes
        x = tiny_colour_data(16, size).test_images[:2].float() / 255
        assert model.reconstruct(x, labels[:2] if labels is not None else None).shape == (2, 3, size, size)
    if getattr(model, "pseudo_classes", None) is not None:
        assert model.pseudo_classes.clustered and len(model.pseudo_classes.assignments) == 16


# The DCGAN's networks are channels-last (model.channels_last): its restored Adam moments take their parameter's
# layout (storage/checkpoint.py _restore_optimizer), or the fused Adam rounds differently in the resumed steps
@pytest.mark.parametrize("name,size,extra", RUNS, ids=IDS)
def test_a_colour_run_interrupted_and_resumed_is_the_uninterrupted_run(tmp_path, colour_runs, name, size, extra):
    full = colour_runs(name, size, extra)
    part = train(colour_config(name, size, *extra), tmp_path / "part", data=tiny_colour_data(16, size),
                 callbacks=[StopAt(3)])  # mid-epoch: step 3 of 4
    assert part.step == 3 and part.stop_reason == "interrupted at step 3"
    train(colour_config(name, size, *extra), tmp_path / "part", data=tiny_colour_data(16, size), resume=True)
    assert read_losses(tmp_path / "part") == read_losses(full)


def test_the_dcgan_resumes_bit_for_bit_in_colour_with_contiguous_weights(tmp_path, colour_runs):
    """With model.channels_last=false too, the DCGAN's colour run resumes exactly."""
    extra = ("model.channels_last=false", "model.conditional=true")
    test_a_colour_run_interrupted_and_resumed_is_the_uninterrupted_run(tmp_path, colour_runs, "dcgan", 32, extra)


def test_a_conditional_colour_model_draws_its_classes():
    """A conditional VAE learns each class's colour within a hundred steps of a tiny MLP: decoded at z = 0, class c
    comes out nearest to class c's colour, red, green or blue, and brightest in that channel (the class reaches the
    decoder's three channels, each the right one; 40 steps already order them, for three seeds)."""
    from colour_helpers import PALETTE

    torch.manual_seed(0)
    cfg = tiny_config("vae", "data.image_size=8", "model.conditional=true", "model.num_classes=3", "model.hidden=[32]",
                      "model.prior=normal")
    model = build_model(cfg, (3, 8, 8))
    colours = torch.from_numpy(PALETTE[:3]).float() / 255  # red, green, blue
    labels = torch.arange(48) % 3
    x = colours[labels].view(48, 3, 1, 1).expand(48, 3, 8, 8).clone()
    x += 0.05 * torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    x = x.clamp(0, 1)
    opts = model.make_optimizers()
    for step in range(100):
        idx = torch.randperm(48, generator=torch.Generator().manual_seed(step))[:16]
        model.training_step(x[idx], opts, StepContext(step, 0, 0.0, labels=labels[idx]))
    drawn = model.generate(torch.zeros(3, cfg.model.latent_dim), torch.arange(3)).mean((2, 3))  # (3 classes, RGB)
    assert torch.cdist(drawn, colours).argmin(1).tolist() == [0, 1, 2], drawn
    assert drawn.argmax(1).tolist() == [0, 1, 2], drawn


def purity(assign: torch.Tensor, truth: torch.Tensor) -> float:
    """The share of images in their cluster's most common kind."""
    return sum(int(torch.bincount(truth[assign == c]).max()) for c in assign.unique()) / len(truth)


@pytest.mark.parametrize("size", [32, 64])
def test_spectral_self_conditioning_clusters_colour_pixels(size):
    """Ten kinds of image that differ only in colour (the same bar in each of the palette's colours): the pixels'
    spectral clusters (images (N, 3, H, W), area-averaged before the PCA) follow the kinds, where the same images in
    grey, whose levels the colours share in part, are clustered worse: the clustering sees colour."""
    from colour_helpers import PALETTE

    from ganvae.models.self_conditioning import pooled_pixels

    g = torch.Generator().manual_seed(size)
    kinds = torch.arange(300) % 10
    images = torch.randint(0, 40, (300, 3, size, size), generator=g, dtype=torch.uint8)  # a dark, noisy ground
    for i, c in enumerate(kinds):
        images[i, :, 2 : 2 + size // 4, size // 8 : size - size // 8] = torch.from_numpy(PALETTE[c]).view(3, 1, 1)
    assert pooled_pixels(images).shape == (300, 768)  # 3 x 16 x 16 after area-averaging
    found = {}
    for channels, x in (("colour", images), ("grey", images.float().mean(1, keepdim=True).round().byte())):
        model = build("dcgan", x.shape[1:], "model.self_conditioning=10", "model.self_conditioning_features=spectral")
        model.before_epoch(0, x, seed=0)
        found[channels] = purity(model.pseudo_classes.assignments, kinds)
    assert found["colour"] == 1.0 and found["grey"] < 0.95, found


def test_the_radford_preset_builds_at_64x64_colour_and_takes_a_step():
    """Radford et al. (2016): 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3 with batch norm and ReLU;
    the mirror discriminator with batch norm (not on its first layer) and leaky ReLU 0.2; Adam 2e-4, beta1 0.5,
    batch 128. One step on a batch of 4 (the architecture is the preset's; a full batch takes seconds on a CPU)."""
    from ganvae.config import build_config

    cfg = build_config("dcgan", preset="dcgan-radford2016")
    m = cfg.model
    assert (m.lr_generator, m.lr_discriminator, m.beta1, cfg.train.batch_size) == (2e-4, 2e-4, 0.5, 128)
    torch.manual_seed(0)
    model = build_model(cfg, (3, 64, 64))
    gen = model.generator
    assert gen.start == (1024, 4, 4)
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in gen.net if isinstance(c, torch.nn.ConvTranspose2d)] \
        == [(1024, 512, 2), (512, 256, 2), (256, 128, 2), (128, 3, 2)]
    assert all(isinstance(a, torch.nn.ReLU) for a in (gen.project[2], *gen.net[2:9:3]))
    convs = [c for c in model.discriminator.features if isinstance(c, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 128), (128, 256), (256, 512), (512, 1024)]
    norms = [b.num_features for b in model.discriminator.features if isinstance(b, torch.nn.BatchNorm2d)]
    assert norms == [256, 512, 1024]  # none on the input layer
    assert model.discriminator.features[1].negative_slope == 0.2 and not model.has_ema
    # real and fake images go through the discriminator in separate passes (its batch norm must not mix them)
    calls = []
    model.discriminator.register_forward_hook(lambda mod, args, out: calls.append(len(args[0])))
    opts = model.make_optimizers()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = model.training_step(x, opts, StepContext(0, 0, 0.0))
    assert all(torch.isfinite(v) for v in losses.values())
    assert calls == [4, 4, 4]  # real, fake (discriminator step), fake (generator step)
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("generator.") for k in moved) and any(k.startswith("discriminator.") for k in moved)
