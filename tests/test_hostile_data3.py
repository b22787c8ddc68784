"""Hostile input, round three (issue 39), the data layer: 16-bit images are scaled, not clipped (folders and
arrays); a huge label or a Dataset declaring a huge size is refused before anything is built or read; the labels of
a torch Dataset pass the one check labels given as a tensor pass; ``ganvae.datasets.load`` names each bad
argument."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import make_images

import ganvae
from ganvae.cli import main
from ganvae.errors import ConfigError, DataError, FieldConfigError, FieldDataError

TINY = dict(epochs=1, batch_size=8, progress=False, model__latent_dim=4, model__hidden=[16], run__tensorboard=False)


def gradient_16bit(seed: int = 0) -> np.ndarray:
    """A 28x28 uint16 image whose 784 pixels take 784 levels spread over 0..65535 (both ends included)."""
    levels = np.linspace(0, 65535, 28 * 28).round().astype(np.uint16)
    return np.random.default_rng(seed).permutation(levels).reshape(28, 28)


def expected_8bit(levels: np.ndarray) -> np.ndarray:
    # value * 255 / 65535, rounded (never exactly half: 510 * value is even, 65535 odd)
    return np.round(levels.astype(np.float64) * 255 / 65535).astype(np.uint8)


# ----------------------------------------------------------------------------- item 3: 16-bit PNGs in a folder


def test_a_16bit_png_folder_keeps_its_grey_levels(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pngs16"
    folder.mkdir()
    images = [gradient_16bit(seed) for seed in range(4)]
    for i, levels in enumerate(images):
        Image.fromarray(levels).save(folder / f"{i}.png")  # a 16-bit grey PNG
    assert Image.open(folder / "0.png").mode.startswith("I")

    x, _ = ganvae.datasets.load(f"folder:{folder}", "train", image_size=28)  # (N, 1, 28, 28) in [0, 1]
    x8 = (x * 255).round().to(torch.uint8)
    assert len(torch.unique(x8)) > 50  # clipped by convert("L") it had 5
    assert int(x8.min()) == 0 and int(x8.max()) == 255
    # each image is exactly value * 255 / 65535, rounded: the test split plus the train split are the 4 images
    from ganvae.data.dataset import load_folder

    data = load_folder(folder, image_size=28)
    read = sorted(torch.cat([data.train_images, data.test_images])[:, 0].numpy().tolist())
    assert read == sorted(expected_8bit(levels).tolist() for levels in images)

    # `ganvae data verify` reads them as training does, and says which levels it read
    assert main(["data", "verify", f"folder:{folder}"]) == 0
    assert "grey levels 0-255 (256 distinct" in capsys.readouterr().out


def test_8bit_content_in_a_16bit_file_comes_back_exactly_and_mode_i_is_checked(tmp_path):
    from PIL import Image

    from ganvae.data.dataset import grey_8bit, scale_16bit

    levels = np.arange(256, dtype=np.uint16)
    assert scale_16bit(levels * 257).tolist() == list(range(256))  # how 16-bit files store 8-bit levels
    # mode I (32-bit integers; older Pillow opens 16-bit PNGs so): scaled when in 0-65535, else refused by file
    wide = np.array([[0, 32768, 65535]], dtype=np.int32)
    assert np.asarray(grey_8bit(Image.fromarray(wide), tmp_path / "a.png")).tolist() == [[0, 128, 255]]
    with pytest.raises(DataError, match=r"b\.png: I image with grey levels from -5 to 70,000.*8-bit or 16-bit PNG"):
        grey_8bit(Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)), tmp_path / "b.png")


# ----------------------------------------------------------------------------- item 16: uint16 (and other) arrays


def test_uint16_arrays_are_scaled_like_16bit_pngs():
    from ganvae.datasets import to_uint8_images

    images = np.stack([gradient_16bit(seed) for seed in range(3)])  # (3, 28, 28) uint16
    want = expected_8bit(images)[:, None]
    assert np.array_equal(to_uint8_images(images).numpy(), want)
    assert np.array_equal(to_uint8_images(torch.from_numpy(images)).numpy(), want)  # torch.uint16 too
    assert np.array_equal(to_uint8_images(images.astype(">u2")).numpy(), want)  # big-endian
    # 8-bit levels in a uint16 container would come out black: refused, with both ways out
    with pytest.raises(FieldDataError, match=r"uint16 images with values 0 to 200.*astype\(np.uint8\).*65535") as err:
        to_uint8_images(np.full((3, 8, 8), 200, np.uint16))
    assert err.value.field == "data"
    # other unsigned integers: grey levels 0-255, as for int32 (torch has no min/max for them)
    assert to_uint8_images(np.full((2, 8, 8), 9, np.uint32)).unique().tolist() == [9]  # (8x8: the smallest size)
    with pytest.raises(FieldDataError, match="integer pixel values from 0 to 300"):
        to_uint8_images(np.array([0, 300] * 64, np.uint64).reshape(2, 8, 8))


# ----------------------------------------------------------------------------- item 8: huge labels, huge Datasets


@pytest.mark.parametrize("label", [10**5, 1000])  # 10**7 and 10**12: in a fresh process, watched (below)
def test_a_huge_label_is_refused_before_any_class_is_built(tmp_path, label):
    images, labels = make_images(48, seed=1)
    labels = labels.astype(np.int64)
    labels[5] = label
    with pytest.raises(FieldDataError, match=rf"data \(memory\): label {label:,} \(at index 5\) is too large.*"
                       r"below max\(1,000, number of images\) = 1,000.*np.unique") as err:
        ganvae.train("vae", out=tmp_path / "run", data=(images, labels), **TINY)
    assert err.value.field == "data" and err.value.value == label and err.value.bound == 1000
    assert not (tmp_path / "run").exists()


def test_labels_may_reach_the_number_of_images():
    from ganvae.datasets import from_images

    assert len(from_images(np.zeros((48, 8, 8), np.uint8), [999] + [0] * 47).classes) == 1000
    data = from_images(np.zeros((1500, 8, 8), np.uint8), np.arange(1500))
    assert len(data.classes) == 1500


class Declared(torch.utils.data.Dataset):
    """A Dataset that declares ``n`` items of ``side``x``side`` float32 zeros, and counts the items read. Reading
    more than 1,000 is a failure of the test (a tripwire: without the bound the read would fill the machine)."""

    def __init__(self, n: int, side: int = 8):
        self.n, self.side, self.read = n, side, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.read += 1
        if self.read > 1000:
            raise AssertionError(f"item {i} read: a Dataset declaring {self.n:,} items was not refused")
        return torch.zeros(1, self.side, self.side), 0


def test_a_dataset_declaring_1e10_items_is_refused_before_reading_any():
    ds = Declared(10**10)
    with pytest.raises(FieldDataError, match=r"data \(Declared\): the Dataset declares 10,000,000,000 items, over "
                       r"the 100,000,000.*nothing was read.*Subset") as err:
        ganvae.train("vae", data=ds, **TINY)
    assert ds.read == 0 and err.value.field == "data" and err.value.value == 10**10


def test_a_dataset_too_big_for_memory_is_refused_after_its_first_item(monkeypatch):
    from ganvae.common import memory
    from ganvae.datasets import from_dataset

    available = memory.available_memory_bytes()
    assert available is None or available > 0
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 2**30)  # this test's machine: 1 GB left
    ds = Declared(10**5, side=64)  # 64x64 float32: 16 KB an item, about 7 GB to read
    with pytest.raises(FieldDataError, match=r"declares 100,000 items of 64x64 float32 \(16,384 bytes each\): "
                       r"reading it into memory needs about 6.5 GB, more than the 1.0 GB"):
        from_dataset(ds)
    assert ds.read == 1
    assert len(from_dataset(Declared(200))) == 180  # a small one reads as before


@pytest.mark.parametrize("n, message", [(0, "holds 0 item"), (1, "holds 1 item"), (-1, "len\\(\\) failed")])
def test_a_dataset_of_too_few_items_is_refused_by_name(n, message):
    from ganvae.datasets import from_dataset

    class Lying(Declared):
        def __len__(self):
            return n

    with pytest.raises(FieldDataError, match=message):
        from_dataset(Lying(2))


def test_refusals_take_no_memory_in_a_fresh_process(tmp_path):
    """Peak RSS growth of a fresh process under 300 MB while labels of 10**7 and 10**12 and a Dataset of 10**10
    items are refused (before: 0.9 GB and 10,000,001 classes; 7.3 GB, then MemoryError; a list growing without
    end). A watchdog ends the child at 300 MB
    of growth, so a regression fails in seconds rather than filling the machine."""
    script = textwrap.dedent("""
        import json, os, resource, threading, time
        import numpy as np, torch
        from ganvae.datasets import from_dataset, from_images
        from ganvae.errors import FieldDataError

        def rss():  # bytes now (Linux); the watchdog's reading
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

        start = rss()
        def watchdog():
            while True:
                if rss() - start > 300 * 2**20:
                    os._exit(3)
                time.sleep(0.02)
        threading.Thread(target=watchdog, daemon=True).start()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        refused = []
        for label in (10**7, 10**12):
            labels = np.zeros(48, np.int64)
            labels[0] = label
            try:
                from_images(np.zeros((48, 8, 8), np.uint8), labels)
            except FieldDataError as err:
                refused.append(f"{err.field}: {err}")

        class Huge(torch.utils.data.Dataset):
            def __len__(self):
                return 10**10
            def __getitem__(self, i):
                return torch.zeros(1, 8, 8), 0
        try:
            from_dataset(Huge())
        except FieldDataError as err:
            refused.append(f"{err.field}: {err}")
        growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base  # kB on Linux
        print(json.dumps({"refused": refused, "growth_mb": growth_kb / 1024}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"rc {result.returncode} (3: over 300 MB)\n{result.stderr[-2000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["refused"]) == 3 and report["growth_mb"] < 300, report
    assert report["refused"][0].startswith("data: data (memory): label 10,000,000 (at index 0) is too large")
    assert report["refused"][1].startswith("data: data (memory): label 1,000,000,000,000 (at index 0) is too large")
    assert report["refused"][2].startswith("data: data (Huge): the Dataset declares 10,000,000,000 items")


# ----------------------------------------------------------------------------- item 16: one check for all labels


class Labelled(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.zeros(1, 8, 8), self.labels[i]


BAD_LABELS = [
    ([1.7, 0, 1, 2], r"whole class numbers; got fractions \(e.g. 1.7\)"),
    (["3", "0", "1", "2"], r"whole class numbers; got text"),
    ([-1, 0, 1, 2], r"label -1; labels are class numbers"),
    ([float("nan"), 0, 1, 2], r"NaN or infinite"),
    ([float("inf"), 0, 1, 2], r"NaN or infinite"),
    ([10**5, 0, 1, 2], r"label 100,000 \(at index 0\) is too large"),  # 10**12: in a watched process
    ([{"class": 1}, 0, 1, 2], r"whole class numbers; got Python objects"),
    ([torch.tensor([1.0, 0.0]), 0, 1, 2], r"one class number per (item|image)"),
]


@pytest.mark.parametrize("labels, message", BAD_LABELS)
def test_a_datasets_labels_are_checked_as_tensor_labels_are(labels, message):
    from ganvae.datasets import from_dataset, from_images

    with pytest.raises(FieldDataError, match=r"data \(Labelled\): .*" + message) as from_ds:
        from_dataset(Labelled(labels))
    assert from_ds.value.field == "data"
    if isinstance(labels[0], torch.Tensor):  # the same labels as an array: two numbers for the first image
        labels = np.eye(4)[[0, 0, 1, 2]]
    elif isinstance(labels[0], dict):
        labels = np.array(labels, dtype=object)
    with pytest.raises(FieldDataError, match=r"data \(memory\): .*" + message):
        from_images(np.zeros((4, 8, 8), np.uint8), labels)


def test_good_dataset_labels_read_as_tensor_labels_do():
    from ganvae.datasets import from_dataset, from_images

    spelled = [torch.tensor(3), np.int64(1), 2.0, torch.tensor([0]), True, 4, 0, 1]
    as_numbers = [3, 1, 2, 0, 1, 4, 0, 1]
    a, b = from_dataset(Labelled(spelled)), from_images(np.zeros((8, 8, 8), np.uint8), as_numbers)
    assert torch.equal(a.train_labels, b.train_labels) and torch.equal(a.test_labels, b.test_labels)
    assert a.classes == b.classes == ("0", "1", "2", "3", "4")


# ----------------------------------------------------------------------------- item 16: datasets.load's arguments


@pytest.mark.parametrize("kwargs, error, field, message", [
    (dict(name="mnst"), FieldDataError, "name", r"name='mnst': unknown dataset. Did you mean 'mnist'\? Known "
                                                r"datasets: 'mnist-5k', .*'folder:PATH'"),
    (dict(name=5), FieldConfigError, "name", r"name=5: give a dataset's name as a string"),
    (dict(name="folder:/no/such/folder"), FieldDataError, "name", r"is not a folder; give 'folder:PATH'"),
    (dict(split="tset"), FieldConfigError, "split", r"split='tset': choose 'train' or 'test'. Did you mean 'test'\?"),
    (dict(split=None), FieldConfigError, "split", r"split=None: choose 'train' or 'test'"),
    (dict(data_dir=5), FieldConfigError, "data_dir", r"data_dir=5: give the folder as a str or pathlib.Path"),
    (dict(classes=[11]), FieldConfigError, "classes", r"classes=\[11\]: \[11\] out of range; mnist-5k has classes "
                                                      r"0..9\."),
    (dict(classes="3"), FieldConfigError, "classes", r"classes='3': give a non-empty list of class numbers"),
    (dict(classes=3), FieldConfigError, "classes", r"e.g. classes=\[3\]"),
    (dict(classes=[]), FieldConfigError, "classes", r"give a non-empty list"),
    (dict(image_size=32), FieldConfigError, "image_size", r"mnist-5k images are 28 pixels a side.*image_size=28"),
    (dict(image_size="28"), FieldConfigError, "image_size", r"image_size='28': give the side in pixels"),
    (dict(image_size=True), FieldConfigError, "image_size", r"give the side in pixels"),
])
def test_datasets_load_names_each_bad_argument_before_reading(monkeypatch, kwargs, error, field, message):
    import ganvae.data.dataset as dataset

    monkeypatch.setattr(dataset, "load_dataset", lambda *a, **k: pytest.fail("read before its arguments were checked"))
    args = {"name": "mnist-5k", **kwargs}
    with pytest.raises(error, match=message) as err:
        ganvae.datasets.load(**args)
    assert err.value.field == field


def test_datasets_load_checks_a_folders_classes_once_it_is_read(tmp_path):
    from PIL import Image

    images, _ = make_images(8)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(images[i]).save(tmp_path / c / f"{i}.png")
    x, y = ganvae.datasets.load(f"folder:{tmp_path}", "train", classes=[1], image_size=28)
    assert len(x) and set(y.tolist()) == {1}
    with pytest.raises(ConfigError, match=r"classes=\[5\]: \[5\] out of range; folder:.* has classes 0..1 "
                                          r"\(0=a, 1=b\)"):
        ganvae.datasets.load(f"folder:{tmp_path}", classes=[5], image_size=28)
