"""Datasets in memory: offline subset, folders, class selection, seeded batches, scaling."""

import numpy as np
import pytest
import torch
from conftest import SHARED_MNIST, iter_batches
from PIL import Image

from ganvae.common.pixels import scale_images, to_unit
from ganvae.config import DataConfig
from ganvae.data.dataset import epoch_permutation, load_dataset
from ganvae.errors import DataError


def test_mnist_5k_offline():
    data = load_dataset(DataConfig(dataset="mnist-5k"))
    assert data.train_images.shape == (4000, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(data.train_labels).tolist() == [400] * 10
    assert torch.bincount(data.test_labels).tolist() == [100] * 10
    assert data.train_images.float().mean() > 20  # real digits, not blank


def test_mnist_25k_is_packaged_and_verified(capsys):
    from ganvae.cli import main

    big, small = load_dataset(DataConfig(dataset="mnist-25k")), load_dataset(DataConfig(dataset="mnist-5k"))
    assert big.train_images.shape == (20000, 1, 28, 28) and big.test_images.shape == (5000, 1, 28, 28)
    assert torch.bincount(big.train_labels).tolist() == [2000] * 10
    assert torch.bincount(big.test_labels).tolist() == [500] * 10
    # mnist-5k is the first 400 / 100 of each class of mnist-25k, in file order
    for c in range(10):
        assert torch.equal(small.train_images[small.train_labels == c], big.train_images[big.train_labels == c][:400])
        assert torch.equal(small.test_images[small.test_labels == c], big.test_images[big.test_labels == c][:100])
    # the packaged files carry their md5 sums, and `data verify` checks them
    assert main(["data", "verify", "mnist-25k"]) == 0
    assert capsys.readouterr().out.count("OK") == 4


@pytest.mark.slow
def test_mnist_25k_is_what_its_tool_makes(tmp_path):
    """The shipped files are exactly what tools/make_mnist_25k.py makes from the original MNIST files."""
    import importlib.util
    from pathlib import Path

    from ganvae.data.sources import MNIST_25K, packaged_dir

    tool = Path(__file__).resolve().parents[1] / "tools" / "make_mnist_25k.py"
    spec = importlib.util.spec_from_file_location("make_mnist_25k", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--data-dir", str(SHARED_MNIST), "--out", str(tmp_path)]) == 0
    for spec_ in MNIST_25K.files.values():
        assert (tmp_path / spec_.filename).read_bytes() == (packaged_dir(MNIST_25K) / spec_.filename).read_bytes()


def test_class_subset(idx_dir):
    data = load_dataset(DataConfig(dataset="mnist", data_dir=str(idx_dir), classes=[3, 5]))
    assert set(data.train_labels.tolist()) == {3, 5}
    assert set(data.test_labels.tolist()) == {3, 5}
    assert len(data) == 40
    with pytest.raises(DataError, match=r"data.classes: \[12\] out of range"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(idx_dir), classes=[12]))


def test_unknown_dataset_suggests():
    with pytest.raises(DataError, match="Did you mean 'mnist'"):
        load_dataset(DataConfig(dataset="mnsit"))


def test_folder_dataset_with_class_subfolders(tmp_path):
    for cls, value in (("cats", 30), ("dogs", 220)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((40, 50, 3), value, np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'imgs'}", image_size=16, test_fraction=0.2))
    assert data.classes == ("cats", "dogs")
    assert data.train_images.shape == (8, 1, 16, 16) and len(data.test_images) == 2
    for img, label in zip(data.train_images, data.train_labels):
        assert int(img.float().mean()) == (30 if label == 0 else 220)


def test_folder_flat_and_bad_image(tmp_path):
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "flat" / "a.png")
    (tmp_path / "flat" / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"b\.png: not a readable image"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'flat'}", image_size=8))


def test_image_size_mismatch(idx_dir):
    with pytest.raises(DataError, match="data.image_size is 32 but mnist images are 28"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(idx_dir), image_size=32))


def test_scaling_ranges():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    assert scale_images(x, "tanh").flatten().tolist() == [-1.0, 1.0]
    assert scale_images(x, "unit").flatten().tolist() == [0.0, 1.0]
    assert to_unit(scale_images(x, "tanh"), "tanh").flatten().tolist() == [0.0, 1.0]


def test_batches_are_a_seeded_permutation():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    batches = list(iter_batches(images, 10, seed=3, epoch=0))
    assert len(batches) == 10
    seen = torch.cat(batches).flatten().tolist()
    assert sorted(seen) == list(range(100))
    again = torch.cat(list(iter_batches(images, 10, seed=3, epoch=0))).flatten().tolist()
    assert again == seen
    other_epoch = torch.cat(list(iter_batches(images, 10, seed=3, epoch=1))).flatten().tolist()
    assert other_epoch != seen
    # resuming at step 4 yields exactly the remaining batches
    tail = torch.cat(list(iter_batches(images, 10, seed=3, epoch=0, start_step=4))).flatten().tolist()
    assert tail == seen[40:]


def test_ranks_take_disjoint_shards_of_the_global_batch():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    single = [b.flatten().tolist() for b in iter_batches(images, 20, seed=0, epoch=0)]
    r0 = [b.flatten().tolist() for b in iter_batches(images, 10, seed=0, epoch=0, rank=0, world_size=2)]
    r1 = [b.flatten().tolist() for b in iter_batches(images, 10, seed=0, epoch=0, rank=1, world_size=2)]
    assert [a + b for a, b in zip(r0, r1)] == single


def test_batch_larger_than_dataset():
    with pytest.raises(DataError, match="larger than the training set"):
        next(iter_batches(torch.zeros(5, 1, 2, 2, dtype=torch.uint8), 8, 0, 0))


def test_permutation_independent_of_global_rng():
    torch.manual_seed(1)
    a = epoch_permutation(50, 0, 2)
    torch.manual_seed(2)
    assert torch.equal(a, epoch_permutation(50, 0, 2))


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_full_mnist_loads():
    data = load_dataset(DataConfig(dataset="mnist", data_dir=str(SHARED_MNIST)))
    assert data.train_images.shape == (60000, 1, 28, 28)
    assert torch.bincount(data.test_labels).sum() == 10000
