"""IDX reader: round trip, and a specific error for every kind of bad file."""

import gzip

import numpy as np
import pytest
from conftest import make_images, write_idx_dataset

from ganvae.data.dataset import load_idx_source
from ganvae.data.idx import encode_idx, read_idx, write_idx
from ganvae.data.sources import MNIST
from ganvae.errors import DataError


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_round_trip_images_and_labels(tmp_path, suffix):
    images, labels = make_images(37)
    write_idx(tmp_path / f"im{suffix}", images)
    write_idx(tmp_path / f"lb{suffix}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"im{suffix}", "images"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"lb{suffix}", "labels", 10), labels)


def test_round_trip_other_dtypes(tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    write_idx(tmp_path / "f.idx", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), arr)


def test_truncated_raw_file(tmp_path):
    images, _ = make_images(10)
    raw = encode_idx(images)
    (tmp_path / "t").write_bytes(raw[:-100])
    with pytest.raises(DataError, match=r"t: truncated: the header declares 10 items"):
        read_idx(tmp_path / "t", "images")


def test_truncated_gzip(tmp_path):
    images, _ = make_images(10)
    data = gzip.compress(encode_idx(images))
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.gz: the gzip stream is truncated"):
        read_idx(tmp_path / "t.gz")


def test_corrupt_gzip(tmp_path):
    images, _ = make_images(10)
    data = bytearray(gzip.compress(encode_idx(images)))
    data[20:40] = b"\xff" * 20
    (tmp_path / "c.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"c\.gz: the gzip data is corrupt"):
        read_idx(tmp_path / "c.gz")


def test_gz_name_but_not_gzip(tmp_path):
    (tmp_path / "x.gz").write_bytes(encode_idx(np.zeros((2, 2, 2), np.uint8)))
    with pytest.raises(DataError, match="not gzip data"):
        read_idx(tmp_path / "x.gz")


def test_bad_magic(tmp_path):
    (tmp_path / "m").write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(DataError, match=r"not an IDX file \(magic number 0x12345678"):
        read_idx(tmp_path / "m")


def test_extra_bytes(tmp_path):
    (tmp_path / "e").write_bytes(encode_idx(np.zeros((2, 2, 2), np.uint8)) + b"junk")
    with pytest.raises(DataError, match="4 bytes more than the header declares"):
        read_idx(tmp_path / "e")


def test_labels_where_images_expected(tmp_path):
    write_idx(tmp_path / "l", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="wrong magic number 2049: this is an IDX labels file.*names swapped"):
        read_idx(tmp_path / "l", "images")


def test_images_where_labels_expected(tmp_path):
    write_idx(tmp_path / "i", np.zeros((5, 4, 4), np.uint8))
    with pytest.raises(DataError, match="wrong magic number 2051: this is an IDX images file, where a labels"):
        read_idx(tmp_path / "i", "labels")


def test_label_out_of_range(tmp_path):
    write_idx(tmp_path / "l", np.array([1, 2, 12], np.uint8))
    with pytest.raises(DataError, match="label 12 is out of range for 10 classes"):
        read_idx(tmp_path / "l", "labels", 10)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope")


def test_count_mismatch_between_images_and_labels(tmp_path):
    folder = write_idx_dataset(tmp_path / "d", n_train=30, n_test=10)
    write_idx(folder / "train-labels-idx1-ubyte.gz", make_images(29)[1])
    with pytest.raises(DataError, match="holds 30 images but .*train-labels.* holds 29 labels"):
        load_idx_source(MNIST, data_dir=folder)


@pytest.mark.parametrize("dotted,gz", [(False, True), (True, False), (False, False)])
def test_load_from_data_dir_both_spellings(tmp_path, dotted, gz):
    folder = write_idx_dataset(tmp_path / "d", n_train=30, n_test=10, gz=gz, dotted=dotted)
    data = load_idx_source(MNIST, data_dir=folder)
    assert data.train_images.shape == (30, 1, 28, 28) and data.train_images.dtype.is_floating_point is False
    assert data.test_labels.tolist() == list(range(10))


def test_missing_file_in_data_dir(tmp_path):
    folder = write_idx_dataset(tmp_path / "d", n_train=30, n_test=10)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is missing"):
        load_idx_source(MNIST, data_dir=folder)
