"""Colour and size through the data layer (issue 40, items 1 and 4): grey and RGB images from Python, folders
(data.color), named datasets at their own sizes, and the offline colour-digits dataset. The CIFAR-10 and .npz
readers: tests/test_colour_readers.py."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganvae
from ganvae.config import DataConfig, build_config
from ganvae.data.dataset import load_dataset, load_folder
from ganvae.datasets import from_dataset, from_images, to_uint8_images
from ganvae.errors import ConfigError, DataError, FieldDataError

# ----------------------------------------------------------------------------- images from Python


def colour_images(n: int = 6, size: int = 8, seed: int = 0) -> np.ndarray:
    """``(n, 3, size, size)`` uint8 with colour (channels differ)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def test_each_layout_of_colour_images_gives_the_same_tensor():
    chw = colour_images()
    want = torch.from_numpy(chw)
    for given in (chw, chw.transpose(0, 2, 3, 1), torch.from_numpy(chw).float() / 255,
                  np.ascontiguousarray(chw.transpose(0, 2, 3, 1)).astype(np.float64) / 255):
        got = to_uint8_images(given)
        assert got.shape == (6, 3, 8, 8) and got.dtype == torch.uint8 and got.is_contiguous()
        assert torch.equal(got, want)
    # 16-bit colour levels are scaled like a 16-bit PNG's (v * 257 -> v)
    assert torch.equal(to_uint8_images(chw.astype(np.uint16) * 257), want)
    # grey: (N, H, W), (N, 1, H, W) and (N, H, W, 1) alike
    grey = chw[:, 0]
    for given in (grey, grey[:, None], grey[..., None]):
        assert torch.equal(to_uint8_images(given), torch.from_numpy(grey)[:, None])


def test_an_ambiguous_shape_is_read_by_the_documented_rule():
    from ganvae.data.arrays import image_layout

    assert image_layout((2, 3, 32, 32)) == "NCHW" and image_layout((2, 32, 32, 3)) == "NHWC"
    assert image_layout((2, 3, 3, 3)) == "NCHW"  # both readings square: channels first (torch's layout)
    assert image_layout((2, 3, 3, 1)) == "NHWC"  # only channels last gives a square image
    assert image_layout((2, 3, 32, 3)) == "NCHW"  # neither square: channels first, then refused as not square
    assert image_layout((2, 4, 8, 8)) is None
    with pytest.raises(FieldDataError, match=r"3x3 images; the models take square images of at least 8"):
        to_uint8_images(np.zeros((2, 3, 3, 3), np.uint8))


@pytest.mark.parametrize("shape", [(5, 4, 16, 16), (5, 16, 16, 4), (5, 2, 16, 16)])
def test_other_channel_counts_are_refused_naming_the_shape_and_the_fix(shape):
    import re

    says = re.escape(str(shape)) + r": neither dimension 1 nor the last holds 1 \(grey\) or 3 \(RGB\).*RGBA: drop"
    with pytest.raises(FieldDataError, match=says) as err:
        from_images(np.zeros(shape, np.uint8))
    assert err.value.field == "data" and err.value.value == shape


class ColourItems(torch.utils.data.Dataset):
    """A map-style Dataset of colour images, each item as ``kind`` gives it."""

    def __init__(self, kind: str):
        self.images, self.kind = colour_images(8, 16, seed=1), kind

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        chw = self.images[i]
        image = {"tensor": torch.from_numpy(chw).float() / 255, "array": chw.transpose(1, 2, 0),
                 "pil": Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0)))}[self.kind]
        return image, i % 2


@pytest.mark.parametrize("kind", ["tensor", "array", "pil"])
def test_a_dataset_of_colour_images_works(kind):
    data = from_dataset(ColourItems(kind), test_fraction=0.25)
    assert data.image_shape == (3, 16, 16) and data.channels == 3
    every = torch.cat([data.train_images, data.test_images])
    assert sorted(map(bytes, every.numpy())) == sorted(map(bytes, ColourItems(kind).images))


def test_pil_items_with_alpha_are_composited_on_white():
    class Transparent(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            rgba = np.zeros((8, 8, 4), np.uint8)
            rgba[..., 0] = 200  # red where opaque
            rgba[:4, :, 3] = 255  # the top half opaque, the bottom transparent
            return Image.fromarray(rgba, "RGBA")

    x = from_dataset(Transparent()).train_images
    assert x.shape[1:] == (3, 8, 8)
    assert x[0, :, 0, 0].tolist() == [200, 0, 0] and x[0, :, 7, 0].tolist() == [255, 255, 255]


# ----------------------------------------------------------------------------- folders and data.color


def save(folder, name, array, mode=None):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(folder / name)


@pytest.fixture
def mixed_folder(tmp_path):
    """Two classes: ``a`` holds 2 colour images, ``b`` 2 grey ones and 1 RGB file whose pixels are grey."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mixed"
    for i in range(2):
        save(folder / "a", f"{i}.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
        save(folder / "b", f"{i}.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    save(folder / "b", "grey-as-rgb.png", np.repeat(rng.integers(0, 256, (20, 20, 1), dtype=np.uint8), 3, axis=2))
    return folder


def test_a_folder_with_any_colour_file_is_rgb_and_says_so(mixed_folder, caplog):
    with caplog.at_level(logging.INFO, logger="ganvae"):
        data = load_folder(mixed_folder, image_size=16, test_fraction=0.2)
    assert data.image_shape == (3, 16, 16)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    # a mixed folder is a warning naming a file of each kind and the setting that decides
    assert f"mixes 2 colour images (e.g. {mixed_folder / 'a' / '0.png'}) and 3 grey ones (e.g. " in warning
    assert str(mixed_folder / "b") in warning and "--set data.color=rgb" in warning and "data.color=grey" in warning
    every = torch.cat([data.train_images, data.test_images])
    labels = torch.cat([data.train_labels, data.test_labels])
    grey = every[labels == 1]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])  # repeated in each channel
    # a colour file is the file resized bilinearly, in colour
    want = np.asarray(Image.open(mixed_folder / "a" / "0.png").resize((16, 16), Image.Resampling.BILINEAR))
    assert any(np.array_equal(x.permute(1, 2, 0).numpy(), want) for x in every[labels == 0])


def test_an_all_grey_folder_stays_grey_even_in_rgb_files(tmp_path, caplog):
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    save(tmp_path / "g", "l.png", levels)
    save(tmp_path / "g", "rgb.png", np.repeat(levels[..., None], 3, axis=2))  # grey content, RGB file
    Image.fromarray(np.repeat(levels[..., None], 3, axis=2)).save(tmp_path / "g" / "rgb.jpg", quality=95)
    with caplog.at_level(logging.INFO, logger="ganvae"):
        data = load_folder(tmp_path / "g", image_size=16, test_fraction=0.01)
    assert data.image_shape == (1, 16, 16) and "3 grey images: read as grey (1 channel" in caplog.text
    # exactly what the grey reading always gave (Pillow's convert("L"), resized): a grey folder's data is unchanged
    want = np.asarray(Image.open(tmp_path / "g" / "rgb.png").convert("L").resize((16, 16), Image.Resampling.BILINEAR))
    assert any(np.array_equal(x[0].numpy(), want) for x in data.train_images)


@pytest.mark.parametrize("color, channels", [("grey", 1), ("rgb", 3), ("auto", 3)])
def test_data_color_sets_the_channels(mixed_folder, color, channels):
    data = load_dataset(DataConfig(dataset=f"folder:{mixed_folder}", image_size=16, color=color))
    assert data.channels == channels
    if color == "grey":  # colour files through Pillow's luma, as the grey reading always did
        want = np.asarray(Image.open(mixed_folder / "a" / "1.png").convert("L")
                          .resize((16, 16), Image.Resampling.BILINEAR))
        every = torch.cat([data.train_images, data.test_images])
        assert any(np.array_equal(x[0].numpy(), want) for x in every)


def test_a_grey_folder_as_rgb(tmp_path):
    save(tmp_path / "g", "a.png", np.full((10, 10), 77, np.uint8))
    save(tmp_path / "g", "b.png", np.full((10, 10), 99, np.uint8))
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'g'}", image_size=8, color="rgb"))
    assert data.image_shape == (3, 8, 8) and set(torch.cat([data.train_images, data.test_images]).unique().tolist()) \
        == {77, 99}


def test_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 2] = 255  # blue
    rgba[:, :4, 3] = 255  # left half opaque
    save(tmp_path / "t", "rgba.png", rgba, "RGBA")
    la = np.zeros((8, 8, 2), np.uint8)  # black, half transparent (alpha 128)
    la[..., 1] = 128
    save(tmp_path / "t", "la.png", la, "LA")
    data = load_folder(tmp_path / "t", image_size=8, test_fraction=0.01)
    by_colour = sorted(torch.cat([data.train_images, data.test_images]), key=lambda x: int(x[0, 0, 0]))
    rgb_file, la_file = by_colour  # blue (R 0) sorts first
    assert rgb_file[:, 0, 0].tolist() == [0, 0, 255] and rgb_file[:, 0, 7].tolist() == [255, 255, 255]
    assert la_file[:, 0, 0].tolist() == [127, 127, 127]  # black over white at half alpha, repeated in 3 channels


@pytest.mark.parametrize("size", [28, 32, 64])
def test_folders_load_at_28_32_and_64(mixed_folder, size):
    data = load_dataset(DataConfig(dataset=f"folder:{mixed_folder}", image_size=size))
    assert data.image_shape == (3, size, size)


def test_a_folder_too_large_for_memory_is_refused_before_any_image_is_read(mixed_folder, monkeypatch):
    import ganvae.common.memory as memory
    import ganvae.data.dataset as dataset

    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 10_000)
    monkeypatch.setattr(dataset, "read_folder_image", lambda *a: pytest.fail("an image was read"))
    with pytest.raises(DataError, match=r"folder:.*mixed \(5 images at 256x256\): reading it needs about .* GB of "
                                        r"memory.*nothing was read\. Use a smaller data.image_size"):
        load_folder(mixed_folder, image_size=256)


def test_a_folder_without_images_or_with_a_broken_one(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"folder:.*empty: no images found"):
        load_folder(tmp_path / "empty", image_size=28)
    save(tmp_path / "broken", "ok.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "broken" / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DataError, match=r"bad\.jpg: not a readable image.*Remove it"):
        load_folder(tmp_path / "broken", image_size=28)


def test_grey_conversion_is_pillows_luma_bit_for_bit():
    from ganvae.data.colour import grey_from_rgb

    rgb = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.array_equal(grey_from_rgb(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0].numpy(), want)


# ----------------------------------------------------------------------------- config: data.color, sizes


def test_data_color_is_a_checked_commented_choice():
    import typing

    from ganvae.cli.train import field_meanings
    from ganvae.data.colour import COLOR_MODES

    assert typing.get_args(typing.get_type_hints(DataConfig)["color"]) == COLOR_MODES
    assert "auto" in field_meanings(DataConfig)["color"]
    with pytest.raises(ConfigError, match=r"'data.color' must be one of 'auto', 'grey', 'rgb', got 'blue'"):
        build_config("vae", overrides=["data.color=blue"])
    with pytest.raises(ConfigError, match=r"data.image_size is 4; it must be from 8 to 256"):
        build_config("vae", overrides=["data.image_size=4"])


@pytest.mark.parametrize("name, size, says", [("colour-digits", 48, r"colour-digits images are 28, 32 or 64 pixels"),
                                              ("mnist-5k", 32, r"mnist-5k images are 28 pixels; set "
                                                               r"data.image_size=28"),
                                              ("cifar10", 28, r"cifar10 images are 32 pixels; set "
                                                              r"data.image_size=32")])
def test_a_size_a_named_dataset_does_not_come_in_is_refused_naming_its_sizes(name, size, says):
    with pytest.raises(FieldDataError, match=says) as err:
        load_dataset(DataConfig(dataset=name, image_size=size))
    assert err.value.field == "data.image_size"
    with pytest.raises(ConfigError, match=r"image_size=4: give the side in pixels as a whole number, at least 8"):
        ganvae.datasets.load("mnist-5k", image_size=4)
    with pytest.raises(ConfigError, match=r"colour-digits images are 28, 32 or 64 pixels a side.*image_size=28, 32 "
                                          r"or 64"):
        ganvae.datasets.load("colour-digits", image_size=30)


def test_named_datasets_convert_on_request_and_stay_grey_otherwise(idx_dir):
    grey = load_dataset(DataConfig(dataset="mnist-5k"))
    rgb = load_dataset(DataConfig(dataset="mnist-5k", color="rgb"))
    assert grey.image_shape == (1, 28, 28) and rgb.image_shape == (3, 28, 28)
    assert torch.equal(rgb.train_images, grey.train_images.repeat(1, 3, 1, 1))
    for name in ("fashion-mnist", "kmnist"):  # other grey datasets are still read as they were
        data = load_dataset(DataConfig(dataset=name, data_dir=str(idx_dir)))
        assert data.image_shape == (1, 28, 28) and ganvae.data.SOURCES[name].channels == 1


# ----------------------------------------------------------------------------- colour-digits

# sha256 of the first 16 train images (16, 3, S, S) uint8 of colour-digits at each size: the recipe's bytes, pinned
# here (and in ganvae.data.colour_digits.FIRST_IMAGES_SHA256 for `ganvae data verify`)
PINNED = {28: "b3073cca0ab3f830b33229328ad54b7aa8af422f41f1858f2085f325484a5e36",
          32: "a77ac6a59e1ce8b0d0972f32f3fbd01a5fd3cc916ee685ba9231205734abeef7",
          64: "6215d44978d49d76b7ae3c26bbff6c75e2879c007467d3a466fd271a84568285"}


@pytest.fixture(scope="module")
def colour_digits_28():
    return load_dataset(DataConfig(dataset="colour-digits"))


def test_colour_digits_are_pinned_bit_for_bit_at_each_size():
    from ganvae.data import colour_digits
    from ganvae.data.formats import read_idx_splits

    base = read_idx_splits(ganvae.data.SOURCES["mnist-25k"])
    for size, pinned in PINNED.items():
        assert colour_digits.first_images_sha256(base, size) == pinned == colour_digits.FIRST_IMAGES_SHA256[size]


def test_colour_digits_at_28_are_mnist_25k_in_colour(colour_digits_28):
    data, mnist = colour_digits_28, load_dataset(DataConfig(dataset="mnist-25k"))
    assert data.image_shape == (3, 28, 28) and data.classes == tuple("0123456789")
    assert (len(data.train_images), len(data.test_images)) == (20000, 5000)
    assert torch.equal(data.train_labels, mnist.train_labels) and torch.equal(data.test_labels, mnist.test_labels)
    assert hashlib.sha256(data.train_images[:16].numpy().tobytes()).hexdigest() == PINNED[28]
    again = load_dataset(DataConfig(dataset="colour-digits"))  # generated again: the same bytes
    assert torch.equal(again.train_images, data.train_images) and torch.equal(again.test_images, data.test_images)


def test_colour_digits_at_32_and_64(colour_digits_28):
    d32 = ganvae.datasets.load("colour-digits", "test", image_size=32)[0]
    assert d32.shape == (5000, 3, 32, 32)
    d64 = load_dataset(DataConfig(dataset="colour-digits", image_size=64))
    assert (len(d64.train_images), len(d64.test_images)) == (10000, 2500)  # capped: 1,000 / 250 of each class
    assert torch.bincount(d64.train_labels).tolist() == [1000] * 10
    assert hashlib.sha256(d64.train_images[:16].numpy().tobytes()).hexdigest() == PINNED[64]
    # the same image has the same ground colour at every size (its corner pixel: no stroke there)
    x28 = colour_digits_28.test_images[:50, :, 0, 0].int()
    assert (x28 - (d32[:50, :, 0, 0] * 255).round().int()).abs().max() <= 20  # the gradient's other end


def test_colour_digits_strokes_stand_out_from_their_ground(colour_digits_28):
    """Every image of a sample: the stroke's luma at least 60 levels from every ground pixel's, and the stroke's
    hue far from the ground's."""
    from ganvae.data.colour import grey_from_rgb

    mnist = load_dataset(DataConfig(dataset="mnist-25k")).train_images[:2000, 0]
    images = colour_digits_28.train_images[:2000]
    luma = grey_from_rgb(images)[:, 0].int()
    for i in range(len(images)):
        stroke, ground = luma[i][mnist[i] == 255], luma[i][mnist[i] == 0]
        if len(stroke):
            gap = (ground - stroke.float().mean()).abs().min()
            assert gap >= 60, (i, float(gap))


def test_colour_digits_generation_is_fast_and_lean():
    code = ("import resource, time\nfrom ganvae.config import DataConfig\nfrom ganvae.data.dataset import load_dataset"
            "\nimport torch\nbase = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\nt = time.perf_counter()\n"
            "load_dataset(DataConfig(dataset='colour-digits', image_size=64))\n"
            "print(time.perf_counter() - t, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    seconds, mb = done.stdout.split()
    assert float(seconds) < 60 and int(mb) < 400  # measured: 1.4 s, 196 MB (the data is 154 MB)


def test_data_commands_know_the_colour_sources(mixed_folder, capsys):
    from ganvae.cli import main

    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "colour-digits" in listing and "cifar10" in listing and "npz:PATH" in listing
    assert main(["data", "verify", f"folder:{mixed_folder}"]) == 0
    assert "RGB (3 channels; data.color=grey reads it as grey); colour levels" in capsys.readouterr().out
    assert main(["data", "verify", "colour-digits"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 7 and all("OK" in row for row in rows) and rows[-1].startswith("recipe at 64 pixels")
    assert main(["data", "info", "colour-digits"]) == 0
    assert "CC BY-SA 3.0 (derived from MNIST" in capsys.readouterr().out
    assert main(["data", "download", "colour-digits"]) == 0
    assert "ships with ganvae; nothing to download" in capsys.readouterr().out


def test_data_color_acts_on_images_given_from_python(tmp_path):
    """``ganvae.train(data=colour, data__color="grey")`` trains a grey model on the images' luma, records the
    fingerprint of what it trained on, and takes the same colour images again when evaluated or resumed."""
    from colour_helpers import make_colour_images

    import ganvae
    from ganvae.data.dataset import with_color
    from ganvae.datasets import as_image_data
    from ganvae.inference import run_data
    from ganvae.storage import load as load_run

    x, y = make_colour_images(48, 16)
    tiny = {"model__latent_dim": 4, "model__hidden": [32]}  # conftest's TINY["vae"]
    pipe = ganvae.train("vae", out=tmp_path / "run", data=(x, y), data__color="grey", epochs=1, batch_size=8,
                        progress=False, **tiny)
    assert pipe.model.image_shape == (1, 16, 16)
    loaded = load_run(tmp_path / "run")
    assert loaded.config.data.color == "grey"
    images, _ = run_data(loaded, data=(x, y))  # the colour images again: converted as training converted them
    assert images.image_shape == (1, 16, 16)
    assert torch.equal(images.train_images, with_color(as_image_data((x, y)), "grey").train_images)
    resumed = ganvae.train("vae", out=tmp_path / "run", resume=True, data=(x, y), data__color="grey", epochs=2,
                           batch_size=8, progress=False, **tiny)
    assert resumed.model.image_shape == (1, 16, 16)
