"""Pictures in colour (issue 40, item 5): grids, PNG and GIF writers, the commands' samples, walks, renders and
reconstructions of tiny colour models write RGB files whose colours survive (a red image stays red); a grey model
asked to reconstruct colour images (and the reverse) is told the shapes and the fix; ONNX graphs of a colour model
give (B, 3, H, W) as PyTorch does. The plugin contract takes colour too."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from colour_helpers import solid, tiny_colour_data
from conftest import tiny_config, tiny_data, train
from PIL import Image

import ganvae
from ganvae.errors import FieldUnsupported
from ganvae.viz.images import make_grid, save_gif, save_grid

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def rgb(path) -> np.ndarray:
    """A PNG as it is stored (mode checked: RGB), ``(H, W, 3)`` uint8."""
    with Image.open(path) as im:
        assert im.mode == "RGB", (path, im.mode)
        return np.array(im)


def gif_frames(path) -> list[np.ndarray]:
    """Every frame of a GIF as RGB ``(H, W, 3)`` uint8 (a GIF stores a palette per frame)."""
    frames = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frames.append(np.array(im.convert("RGB")))
    return frames


def is_colour(array: np.ndarray) -> bool:
    """Whether an ``(H, W, 3)`` picture has pixels whose channels differ (not grey stored as RGB)."""
    return bool((array.astype(int).max(2) - array.astype(int).min(2)).max() > 8)


# ----------------------------------------------------------------------------- the writers themselves


def test_a_grid_of_colour_images_is_an_rgb_png_whose_colours_survive(tmp_path):
    images = torch.cat([solid(RED), solid(GREEN), solid(BLUE)])  # (3, 3, 8, 8) in [0, 1]
    grid = make_grid(images, nrow=3, padding=2)
    assert grid.shape == (12, 32, 3) and grid.dtype == np.uint8
    stored = rgb(save_grid(images, tmp_path / "grid.png", nrow=3, scale=2))
    assert stored.shape == (24, 64, 3)
    for i, colour in enumerate((RED, GREEN, BLUE)):  # the centre of each tile, enlarged twice
        assert tuple(stored[12, 2 * (2 + 10 * i + 4)]) == colour
    assert tuple(stored[0, 0]) == (128, 128, 128)  # the padding is grey


def test_a_colour_gif_keeps_each_frames_colours(tmp_path):
    frames = [make_grid(solid(c), nrow=1, padding=0) for c in (RED, GREEN, BLUE)]
    stored = gif_frames(save_gif(frames, tmp_path / "walk.gif"))
    assert [tuple(f[4, 4]) for f in stored] == [RED, GREEN, BLUE]


def test_four_channels_are_rgba_and_two_are_refused_with_the_way_out(tmp_path):
    from ganvae.viz.images import save_png_rows, to_pil

    four = torch.tensor([1.0, 0.0, 0.0, 0.5]).view(1, 4, 1, 1).expand(2, 4, 6, 6)  # half-transparent red
    with Image.open(save_grid(four, tmp_path / "rgba.png")) as im:
        assert im.mode == "RGBA" and im.getpixel((4, 4)) == (255, 0, 0, 128)
    rows = [np.full((3, 5, 4), (0, 0, 255, 255), np.uint8), np.full((2, 5, 4), (0, 255, 0, 255), np.uint8)]
    with Image.open(save_png_rows(iter(rows), 5, 5, tmp_path / "bands.png", channels=4)) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0)) == (0, 0, 255, 255) and im.getpixel((0, 4))[:3] == GREEN
    with pytest.raises(ValueError, match=r"2 channels: PNG and GIF store 1 \(grey\), 3 \(RGB\) or 4 \(RGBA\)"):
        to_pil(make_grid(torch.rand(2, 2, 4, 4)))


def test_the_python_images_are_rgb(tmp_path):
    from ganvae.inference.pipeline import Images

    images = Images(torch.cat([solid(RED), solid(BLUE)]))
    assert [im.mode for im in images.to_pil()] == ["RGB", "RGB"]
    assert tuple(images.to_pil()[1].getpixel((3, 3))) == BLUE
    assert tuple(rgb(images.save(tmp_path / "g.png", nrow=2))[5, 5]) == RED


# ----------------------------------------------------------------------------- tiny colour runs and their pictures


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny colour runs at 32x32 (trained once for the module): ``runs[name]`` is the run folder."""
    root = tmp_path_factory.mktemp("colour-runs")
    out = {}
    for name, extra in (("dcgan", ()), ("conv-vae", ("model.prior_components=3",)),
                        ("cppn", ("model.prior_components=3",)), ("cvae", ())):
        family = "vae" if name == "cvae" else name
        cond = ("model.conditional=true", "model.prior=normal") if name == "cvae" else ()
        cfg = tiny_config(family, "data.image_size=32", "train.epochs=2", "run.n_fixed=4", *extra, *cond)
        train(cfg, root / name, data=tiny_colour_data(20, 32))
        out[name] = root / name
    return out


def test_the_trainers_grids_and_progress_gif_are_colour(runs):
    run = runs["conv-vae"]
    assert is_colour(rgb(run / "samples/epoch_0002.png"))
    frames = gif_frames(run / "progress.gif")
    assert frames and all(f.ndim == 3 and f.shape[2] == 3 for f in frames)


def test_tensorboard_gets_the_colour_grids(tmp_path):
    """A colour run with TensorBoard on logs its sample grids as RGB images (HWC), not a broken CHW tensor."""
    pytest.importorskip("tensorboard", reason="TensorBoard is the tensorboard extra: pip install -e '.[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tiny_config("dcgan", "run.tensorboard=true", "train.epochs=1"), tmp_path / "run",
                data=tiny_colour_data(16, 16)).run_dir
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    image = events.Images("samples")[-1]
    with Image.open(io.BytesIO(image.encoded_image_string)) as im:
        assert im.mode == "RGB" and im.size == (image.width, image.height) == (4 * 18 + 2, 4 * 18 + 2)
        assert is_colour(np.array(im))


def painted(run, colour: tuple[int, int, int]):
    """The run loaded, its sampling networks made to draw every pixel in ``colour`` (pure primaries), so that what
    the writers store can be checked pixel by pixel: the outputs before the model's squashing (tanh's [-1, 1], or
    the logits a sigmoid maps to [0, 1]) set to the extremes, per channel."""
    from ganvae.storage import load

    loaded = load(run)
    model = loaded.model
    high = torch.tensor([1.0 if c else -1.0 for c in colour]).view(1, 3, 1, 1)  # (1, 3, 1, 1): +-1 per channel
    high = high if model.value_range == "tanh" else high * 30  # logits: sigmoid(+-30) is 1 or 0 in uint8

    def paint(module, args, out):
        return torch.zeros_like(out) + high.to(out.dtype)

    for name in model.sampling_networks():
        for net in (model._modules.get(name), model._modules.get(f"ema_{name}")):
            if net is not None and name != "encoder":
                net.register_forward_hook(paint)
    return loaded


def tiles(picture: np.ndarray, size: int, n: int, scale: int = 1) -> list[tuple]:
    """The centre pixel of each of the first ``n`` tiles of a grid (padding 2, ``size``-pixel images, row-major)."""
    step = size + 2
    per_row = (picture.shape[1] // scale - 2) // step
    centre = [(2 + (i // per_row) * step + size // 2, 2 + (i % per_row) * step + size // 2) for i in range(n)]
    return [tuple(picture[scale * y, scale * x]) for y, x in centre]


def test_the_commands_write_colour_samples_walks_and_renders(runs, tmp_path):
    """Models that draw pure red (or green, blue): the commands' grids, single samples, walks, class grids and
    renders store those colours, RGB."""
    from ganvae.inference import writers

    red_dcgan = painted(runs["dcgan"], RED)
    grid = rgb(writers.sample(red_dcgan, n=4, out=tmp_path / "s.png", separate=tmp_path / "each"))
    assert grid.shape == (2 + 2 * 34, 2 + 2 * 34, 3) and tiles(grid, 32, 4) == [RED] * 4
    assert tuple(rgb(tmp_path / "each/sample_0003.png")[16, 16]) == RED
    walk = gif_frames(writers.interpolate(red_dcgan, points=2, steps=2, walks=2, scale=1, out=tmp_path / "w.gif"))
    # (Pillow stores equal frames once: every frame here is red)
    assert walk and walk[0].shape == (36, 70, 3) and all(tiles(f, 32, 2) == [RED] * 2 for f in walk)
    green_vae = painted(runs["conv-vae"], GREEN)
    still = rgb(writers.interpolate(green_vae, points=2, steps=2, grid=True, out=tmp_path / "w.png"))
    assert tiles(still, 32, 3) == [GREEN] * 3
    # a conditional colour model: a class grid (one row per class), and one class on its own
    rows = rgb(writers.sample(painted(runs["cvae"], BLUE), n=20, out=tmp_path / "classes.png"))
    assert rows.shape == (2 + 10 * 34, 2 + 2 * 34, 3) and tiles(rows, 32, 20) == [BLUE] * 20
    assert rgb(writers.sample(runs["cvae"], n=3, digit=4, out=tmp_path / "four.png")).shape == (70, 70, 3)
    # the CPPN renders colour at any size: a still streamed in bands, and a GIF
    red_cppn = painted(runs["cppn"], RED)
    still = rgb(writers.render(red_cppn, size=(96, 72), out=tmp_path / "r.png"))
    assert still.shape == (72, 96, 3) and {tuple(p) for p in still.reshape(-1, 3)} == {RED}
    morph = gif_frames(writers.render(red_cppn, size=(40, 40), gif=True, frames=2, points=2, out=tmp_path / "r.gif"))
    assert morph and all({tuple(p) for p in f.reshape(-1, 3)} == {RED} for f in morph)
    # unpainted, a trained colour CPPN's render has channels of their own
    assert is_colour(rgb(writers.render(runs["cppn"], size=(64, 64), out=tmp_path / "own.png")))


def test_a_colour_render_counts_its_channels_against_the_memory_guard(runs):
    """The writers' and the pipeline's one guard: a 2160x2160 colour render needs three bytes a pixel in the PNG and
    12 + 12 in floats in Python; both are refused under a limit that the grey picture would fit."""
    from ganvae.errors import FieldConfigError
    from ganvae.inference import writers

    with pytest.raises(FieldConfigError, match=r"a 2160x2160 render needs about 0.0 GB|over the limit") as err:
        writers.render(runs["cppn"], size=(2160, 2160), max_memory_gb=0.01)  # 14 MB: 4.7 MB would be grey's
    assert err.value.field == "max_memory_gb"
    pipe = ganvae.load(runs["cppn"])
    pipe.max_memory_gb = 0.1  # 112 MB of floats: grey's 37 MB would fit
    with pytest.raises(FieldConfigError, match="render"):
        pipe.render(2160)


def test_a_colour_model_reconstructs_colour(runs, tmp_path):
    pipe = ganvae.load(runs["conv-vae"])
    x = tiny_colour_data(20, 32).test_images[:4]  # uint8 (4, 3, 32, 32)
    recon = pipe.reconstruct(x)
    assert recon.tensor.shape == (4, 3, 32, 32)
    assert is_colour(rgb(recon.save(tmp_path / "r.png")))
    cond = ganvae.load(runs["cvae"])
    assert cond.reconstruct(x, labels=[0, 1, 2, 3], as_labels=[5, 5, 5, 5]).tensor.shape == (4, 3, 32, 32)


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grey") / "run"
    train(tiny_config("conv-vae", "data.image_size=32", "train.epochs=1", "model.prior=normal"), folder,
          data=tiny_data(16, size=32))
    return folder


def test_grey_and_colour_mixed_up_are_told_the_shapes_and_the_fix(runs, grey_run):
    grey, colour = ganvae.load(grey_run), ganvae.load(runs["conv-vae"])
    with pytest.raises(FieldUnsupported) as err:
        grey.reconstruct(torch.rand(2, 3, 32, 32))
    text = str(err.value)
    assert err.value.field == "images" and "takes (N, 1, 32, 32)" in text and "(2, 3, 32, 32)" in text
    assert "trained on grey images and these are colour (RGB)" in text and "x.mean(dim=1, keepdim=True)" in text
    with pytest.raises(FieldUnsupported) as err:
        colour.reconstruct(torch.rand(2, 1, 32, 32))
    assert "repeat the grey channel (x.expand(-1, 3, -1, -1)" in str(err.value)
    assert colour.reconstruct(torch.rand(2, 1, 32, 32).expand(-1, 3, -1, -1)).tensor.shape == (2, 3, 32, 32)
    with pytest.raises(FieldUnsupported, match="resize them to 32x32, or reconstruct with a model trained on 28x28"):
        colour.reconstruct(torch.rand(2, 3, 28, 28))
    # the command line's reconstructions come from a data set: the error is the dataset's
    from ganvae import inference

    with pytest.raises(FieldUnsupported) as err:
        inference.reconstruct(grey.run, torch.rand(2, 3, 32, 32), field="dataset")
    assert err.value.field == "dataset"


def test_the_onnx_graphs_of_a_colour_model_draw_what_pytorch_draws(runs, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install -e '.[test]' installs onnxruntime")
    pytest.importorskip("onnxscript", reason="pip install -e '.[test]' installs onnxscript")
    from ganvae.storage import load
    from ganvae.storage.onnx_export import export_onnx

    model = load(runs["conv-vae"]).model
    record = export_onnx(model, tmp_path / "onnx")  # checks both graphs against PyTorch itself
    assert record["image_shape"] == [3, 32, 32] and record["graphs"]["decoder"]["output"]["image"] == ["B", 3, 32, 32]
    z = model.latent_prior.draw(5, torch.Generator().manual_seed(3))
    session = ort.InferenceSession(str(tmp_path / "onnx/decoder.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(["image"], {"latent": z.numpy()})[0])
    assert got.shape == (5, 3, 32, 32) and torch.allclose(got, model.generate(z), atol=1e-4)
    assert (got[:, 0] - got[:, 1]).abs().max() > 0  # three channels of their own


PLUGIN_SRC = Path(__file__).resolve().parents[1] / "examples" / "wgan-gp-plugin" / "src"


def test_a_plugin_family_trains_resumes_and_samples_in_colour(tmp_path):
    """The plugin contract (examples/wgan-gp-plugin) is unchanged for colour: a family from another package trains on
    (N, 3, 32, 32) images, resumes bit for bit and samples (B, 3, 32, 32)."""
    import csv

    from ganvae import registry
    from ganvae.config import build_config

    sys.path.insert(0, str(PLUGIN_SRC))
    try:
        from ganvae_wgan_gp import ENTRY

        ganvae.register_model(ENTRY, replace=True)
        settings = ["model.latent_dim=8", "model.generator_channels=[16,8]", "model.critic_channels=[8,16]",
                    "model.n_critic=2", "train.batch_size=8", "train.progress=false", "run.tensorboard=false",
                    "train.log_every=1", "data.image_size=32", "run.n_fixed=4", "train.checkpoint_every=1"]
        data = tiny_colour_data(16, 32)
        train(build_config("wgan-gp", overrides=[*settings, "train.epochs=2"]), tmp_path / "full", data=data)
        train(build_config("wgan-gp", overrides=[*settings, "train.epochs=1"]), tmp_path / "part", data=data)
        train(build_config("wgan-gp", overrides=[*settings, "train.epochs=2"]), tmp_path / "part", data=data,
              resume=True)
        read = lambda run: list(csv.reader(open(run / "losses.csv", newline="")))  # noqa: E731
        assert read(tmp_path / "part") == read(tmp_path / "full") and len(read(tmp_path / "full")) == 5
        assert ganvae.load(tmp_path / "full").sample(3, seed=0).tensor.shape == (3, 3, 32, 32)
    finally:
        registry.unregister_model("wgan-gp")
        sys.path.remove(str(PLUGIN_SRC))
