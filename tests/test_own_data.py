"""Your own data from Python: ganvae.train(data=...) takes tensors, arrays, (images, labels), a real torch Dataset
or a folder; ganvae.datasets.load gives real digits; bad values are refused by name."""

import numpy as np
import pytest
import torch
from conftest import make_images

import ganvae
from ganvae.datasets import as_image_data, from_dataset, from_images, to_uint8_images
from ganvae.errors import GanvaeError

TINY = dict(epochs=1, batch_size=8, progress=False, model__latent_dim=4, model__hidden=[16], run__tensorboard=False,
            checkpoint_every=1)


def test_datasets_load_gives_real_digits():
    x, y = ganvae.datasets.load("mnist-5k", "test")
    assert x.shape == (1000, 1, 28, 28) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert y.dtype == torch.int64 and torch.bincount(y).tolist() == [100] * 10
    xt, _ = ganvae.datasets.load("mnist-5k", "train", classes=[3])
    assert len(xt) == 400
    with pytest.raises(GanvaeError, match="choose 'train' or 'test'"):
        ganvae.datasets.load("mnist-5k", "validation")


def test_uint8_and_float_images_give_the_same_dataset():
    images, labels = make_images(40, seed=3)  # (N, 28, 28) uint8
    a = from_images(images, labels)
    b = from_images(torch.from_numpy(images).float().unsqueeze(1) / 255, torch.from_numpy(labels))
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert len(a.train_images) == 36 and len(a.test_images) == 4 and a.image_shape == (1, 28, 28)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((10, 4, 28, 28), np.uint8), None, r"\(10, 4, 28, 28\): neither dimension 1 nor the last holds 1 "
                                                r"\(grey\) or 3 \(RGB\) channels"),  # colour (N, 3, H, W): accepted
    (np.zeros((10, 28, 20), np.uint8), None, "square images"),
    (np.full((10, 28, 28), 2.0, np.float32), None, "floats must lie in"),
    (np.full((10, 28, 28), np.nan, np.float32), None, "NaN"),
    (np.full((10, 28, 28), 300, np.int32), None, "grey levels 0-255"),
    (np.zeros((10, 28, 28), np.uint8), [1, 2], "2 labels for 10 images"),
    (np.zeros((10, 28, 28), np.uint8), [-1] * 10, "label -1"),
    (np.zeros((10, 28, 28), np.uint8), [0.5] * 10, "whole class numbers"),
])
def test_bad_images_and_labels_are_refused_by_name(images, labels, message):
    with pytest.raises(GanvaeError, match=message):
        from_images(images, labels)


class Digits(torch.utils.data.Dataset):
    """A real map-style torch Dataset: (image tensor (1, H, W) float in [0, 1], label) items."""

    def __init__(self, n=48, labelled=True):
        self.images, self.labels = make_images(n, seed=5)
        self.labelled = labelled

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).float().unsqueeze(0) / 255
        return (x, int(self.labels[i])) if self.labelled else x


def test_a_torch_dataset_is_read_with_its_labels():
    ds = Digits()
    data = from_dataset(ds)
    assert data.name == "Digits" and len(data) + len(data.test_images) == 48
    all_labels = torch.cat([data.train_labels, data.test_labels]).sort().values
    assert torch.equal(all_labels, torch.from_numpy(ds.labels).long().sort().values)
    assert len(from_dataset(Digits(labelled=False)).classes) == 1


def test_ganvae_train_takes_tensors_a_dataset_and_a_folder(tmp_path):
    images, labels = make_images(48, seed=7)
    for i, data in enumerate([torch.from_numpy(images), (images, labels), Digits()]):
        pipe = ganvae.train("vae", out=tmp_path / f"run{i}", data=data, **TINY)
        assert pipe.sample(4, seed=0).tensor.shape == (4, 1, 28, 28)
    # a folder: loaded and resized like --dataset folder:PATH (images straight in it: one class)
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(24):
        Image.fromarray(images[i]).resize((40, 40)).save(folder / f"{i}.png")
    assert as_image_data(folder) == f"folder:{folder}"
    pipe = ganvae.train("vae", out=tmp_path / "folder-run", data=folder, data__image_size=16, **TINY)
    assert pipe.run.config.data.dataset == f"folder:{folder}" and pipe.sample(2, seed=0).tensor.shape == (2, 1, 16, 16)
    with pytest.raises(GanvaeError, match="not a folder"):
        ganvae.train("vae", out=tmp_path / "x", data=str(tmp_path / "missing"), **TINY)


def test_to_uint8_rounds_floats_to_grey_levels():
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 0, :4] = torch.tensor([0.0, 0.5, 1.0, 0.2])
    assert to_uint8_images(x)[0, 0, 0, :4].tolist() == [0, 128, 255, 51]
