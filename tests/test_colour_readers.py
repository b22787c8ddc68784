"""The colour readers of --data-dir and npz:PATH (issue 40, item 1): CIFAR-10's python batches (a folder or the
archive), read by an unpickler that runs nothing, and .npz files read without pickle; each bad file a clear error."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ganvae.cli import main
from ganvae.config import DataConfig
from ganvae.data import sources
from ganvae.data.dataset import load_dataset
from ganvae.errors import DataError, DownloadError, FieldDataError

# ----------------------------------------------------------------------------- CIFAR-10 files, as the real ones are


def py2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2's cPickle (protocol 2) wrote CIFAR-10's files: text as str (``U``/``T``
    opcodes), a numpy array through ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``,
    its bytes as a str. Supports dicts, lists, text, ints and 2-D uint8 arrays."""
    out = bytearray(b"\x80\x02")

    def string(s: bytes) -> None:
        out.extend(b"U" + bytes([len(s)]) + s if len(s) < 256 else b"T" + struct.pack("<i", len(s)) + s)

    def integer(i: int) -> None:
        out.extend(b"K" + bytes([i]) if 0 <= i < 256 else b"M" + struct.pack("<H", i) if 0 <= i < 65536
                   else b"J" + struct.pack("<i", i))

    def save(v) -> None:
        if isinstance(v, dict):
            out.extend(b"}(")
            for k, x in v.items():
                save(k)
                save(x)
            out.extend(b"u")
        elif isinstance(v, list):
            out.extend(b"](")
            for x in v:
                save(x)
            out.extend(b"e")
        elif isinstance(v, str):
            string(v.encode("latin1"))
        elif isinstance(v, (int, np.integer)):
            integer(int(v))
        else:  # a uint8 array: _reconstruct(ndarray, (0,), 'b'), then its state (1, shape, dtype, False, bytes)
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            integer(0)
            out.extend(b"\x85")
            string(b"b")
            out.extend(b"\x87R(")
            integer(1)
            out.extend(b"(")
            for d in v.shape:
                integer(d)
            out.extend(b"tcnumpy\ndtype\n")
            string(b"u1")
            integer(0)
            integer(1)
            out.extend(b"\x87R(")
            integer(3)
            string(b"|")
            out.extend(b"NNN")
            integer(-1)
            integer(-1)
            integer(0)
            out.extend(b"tb\x89")
            string(np.ascontiguousarray(v).tobytes())
            out.extend(b"tb")

    save(obj)
    out.extend(b".")
    return bytes(out)


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def batch(n: int, seed: int, rows: int = 3072, labels: list | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, rows), dtype=np.uint8)
    return py2_pickle({"batch_label": f"batch {seed}", "labels": labels if labels is not None else
                       [int(c) for c in rng.integers(0, 10, n)], "data": data,
                       "filenames": [f"img_{seed}_{i}.png" for i in range(n)]})


def cifar_files(n: int = 3) -> dict[str, bytes]:
    """The seven files of a tiny CIFAR-10 (``n`` images a batch)."""
    files = {f"data_batch_{i}": batch(n, i) for i in range(1, 6)}
    files["test_batch"] = batch(n, 6)
    files["batches.meta"] = py2_pickle({"num_cases_per_batch": 10000, "label_names": CLASSES, "num_vis": 3072})
    return files


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return folder


def archive_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def expected_images(raw: bytes) -> np.ndarray:
    """A batch's images (N, 3, 32, 32) as the standard loader reads them (for comparison only: test-made bytes)."""
    return pickle.loads(raw, encoding="latin1")["data"].reshape(-1, 3, 32, 32)


@pytest.mark.parametrize("layout", ["batches-folder", "folder-itself", "archive"])
def test_cifar10_reads_each_layout(tmp_path, layout):
    files = cifar_files()
    if layout == "batches-folder":
        write_folder(tmp_path / "cifar-10-batches-py", files)
    elif layout == "folder-itself":
        write_folder(tmp_path, files)
    else:
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive_bytes(files))
    data = load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path), image_size=32))
    assert data.image_shape == (3, 32, 32) and data.classes[0] == "airplane"
    assert (len(data.train_images), len(data.test_images)) == (15, 3)
    # rows are CHW planes: the second image of data_batch_2 is the train set's fifth
    assert np.array_equal(data.train_images[4].numpy(), expected_images(files["data_batch_2"])[1])
    labels = pickle.loads(files["test_batch"], encoding="latin1")["labels"]
    assert data.test_labels.tolist() == labels


def test_a_pickle_that_calls_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    files = cifar_files()
    files["data_batch_1"] = pickle.dumps({"data": Exploit(), "labels": [0]}, protocol=2)
    write_folder(tmp_path / "cifar-10-batches-py", files)
    with pytest.raises(DataError, match=r"data_batch_1: refused: the file asks to call (posix|os|nt)\.system, "
                                        r"which is not part of a numpy array.*nothing of it was run"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path), image_size=32))
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.",  # a builtin
    b"\x80\x02cnumpy\nload\nX\x01\x00\x00\x00x\x85R.",  # numpy, but not an array's own name
    b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05numpy\x8c\x0endarray.tofile\x93.",  # a dotted name
])
def test_any_name_outside_the_allow_list_is_refused(payload):
    from ganvae.data.cifar import parse_batch

    with pytest.raises(DataError, match="refused: the file asks to call"):
        parse_batch(payload, "f")


def test_an_array_whose_shape_outgrows_its_file_is_refused():
    from ganvae.data.cifar import parse_batch

    huge = py2_pickle({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}).replace(
        b"K\x00\x85U\x01b", b"J\xff\xff\xff\x7f\x85U\x01b")  # _reconstruct(ndarray, (2**31 - 1,), 'b')
    with pytest.raises(DataError, match=r"corrupt: its pickle cannot be read \(ValueError: an array of shape"):
        parse_batch(huge, "f")


@pytest.mark.parametrize("damage, says", [
    (lambda f: f["data_batch_3"][: len(f["data_batch_3"]) // 2], r"data_batch_3: truncated or not a pickle"),
    (lambda f: batch(3, 3, rows=3000), r"data_batch_3: wrong layout: 'data' is a uint8 array of shape \(3, 3000\).*"
                                       r"rows of 3072 values"),
    (lambda f: batch(3, 3, labels=[1, 2]), r"data_batch_3: 3 images but 2 labels; they must match"),
    (lambda f: batch(3, 3, labels=[1, 2, 10]), r"data_batch_3: label 10 is out of range for 10 classes"),
    (lambda f: py2_pickle({"images": np.zeros((1, 3072), np.uint8)}), r"not a CIFAR-10 batch: .*'data' and 'labels'"),
])
def test_bad_cifar_files_are_clear_errors(tmp_path, damage, says):
    files = cifar_files()
    files["data_batch_3"] = damage(files)
    write_folder(tmp_path / "cifar-10-batches-py", files)
    with pytest.raises(DataError, match=says):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path), image_size=32))


def test_a_bad_archive_or_a_missing_file_is_named(tmp_path):
    good = archive_bytes(cifar_files())
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "cifar-10-python.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: the archive is truncated or corrupt"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path / "cut"), image_size=32))
    files = cifar_files()
    del files["test_batch"]
    write_folder(tmp_path / "part" / "cifar-10-batches-py", files)
    with pytest.raises(DataError, match=r"test_batch: missing"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path / "part"), image_size=32))
    (tmp_path / "none").mkdir()
    with pytest.raises(FieldDataError, match=r"no CIFAR-10 here \(looked for .*cifar-10-batches-py/.*"
                                             r"cifar-10-python.tar.gz\)") as err:
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path / "none"), image_size=32))
    assert err.value.field == "data_dir"
    with pytest.raises(FieldDataError, match=r"cifar10 is not in the cache .* downloads are off"):
        load_dataset(DataConfig(dataset="cifar10", image_size=32, download=False))


def test_an_oversized_batch_is_refused_before_it_is_read(tmp_path):
    write_folder(tmp_path / "cifar-10-batches-py", cifar_files())
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "r+b") as f:
        f.truncate(65 * 2**20)  # sparse: no disk space, no memory
    with pytest.raises(DataError, match=r"data_batch_1: 68,157,440 bytes, more than a CIFAR-10 batch can be"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path), image_size=32))


def published(files: dict[str, bytes], archive: bytes | None = None) -> sources.DatasetSource:
    """cifar10 whose published md5s are those of these test files."""
    specs = {name: sources.FileSpec(name, hashlib.md5(raw).hexdigest()) for name, raw in files.items()}
    specs["archive"] = sources.FileSpec("cifar-10-python.tar.gz", hashlib.md5(archive or b"").hexdigest())
    return replace(sources.CIFAR10, files=specs)


def test_data_verify_reports_each_cifar_file(tmp_path, capsys, monkeypatch):
    files = cifar_files()
    write_folder(tmp_path / "d" / "cifar-10-batches-py", files)
    assert main(["data", "verify", "cifar10", "--data-dir", str(tmp_path / "d")]) == 1  # not the published files
    out = capsys.readouterr()
    rows = out.out.splitlines()
    assert len(rows) == 7 and all("md5 mismatch" in row and "PROBLEM" in row for row in rows)
    assert "7 of 7 files have problems" in out.err
    monkeypatch.setitem(sources.SOURCES, "cifar10", published(files))
    assert main(["data", "verify", "cifar10", "--data-dir", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out.count("  OK") == 7
    # an archive: itself, then each file; a recompressed one is checked by its files
    archive = archive_bytes(files)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cifar-10-python.tar.gz").write_bytes(archive)
    assert main(["data", "verify", "cifar10", "--data-dir", str(tmp_path / "a")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 8 and "OK (same content, different compression" in rows[0]
    assert rows[1].startswith(f"{tmp_path / 'a' / 'cifar-10-python.tar.gz'}:data_batch_1")
    # a damaged file is named, with what is wrong
    files["data_batch_4"] = batch(3, 4, rows=100)
    write_folder(tmp_path / "d" / "cifar-10-batches-py", files)
    assert main(["data", "verify", "cifar10", "--data-dir", str(tmp_path / "d")]) == 1
    bad = [row for row in capsys.readouterr().out.splitlines() if "PROBLEM" in row]
    assert len(bad) == 1 and "data_batch_4" in bad[0] and "wrong layout" in bad[0]


def test_data_list_and_info_find_cifar_in_a_folder(tmp_path, capsys):
    write_folder(tmp_path / "cifar-10-batches-py", cifar_files())
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing if "its files are in" in line] == ["cifar10"]
    assert main(["data", "info", "cifar10", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "--data-dir: 7 file(s) found" in out and "c58f30108f718f92721af3b95e74349a" in out and "truck" in out


def test_cifar10_downloads_its_archive_from_a_mirror(tmp_path, http_server, monkeypatch):
    base, served = http_server
    files = cifar_files()
    archive = archive_bytes(files)
    served["cifar-10-python.tar.gz"] = archive
    monkeypatch.setitem(sources.SOURCES, "cifar10", replace(published(files, archive), mirrors=(f"{base}/cut",)))
    cache = Path(os.environ["GANVAE_DATA_DIR"]) / "cifar10"
    with pytest.raises(DownloadError, match="download cut off"):
        load_dataset(DataConfig(dataset="cifar10", image_size=32))
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written
    monkeypatch.setitem(sources.SOURCES, "cifar10", replace(published(files, archive), mirrors=(f"{base}/good",)))
    data = load_dataset(DataConfig(dataset="cifar10", image_size=32))
    assert len(data.train_images) == 15 and (cache / "cifar-10-python.tar.gz").read_bytes() == archive
    assert main(["data", "verify", "cifar10"]) == 0  # the cache, checked


# ----------------------------------------------------------------------------- npz:PATH


def test_an_npz_in_keras_layout_is_a_colour_dataset(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x_train, x_test = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (20, 6))
    y_train, y_test = (rng.integers(0, 10, (n, 1)) for n in (20, 6))  # Keras' cifar10 labels are (N, 1)
    path = tmp_path / "cifar.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=np.array(CLASSES))
    data = load_dataset(DataConfig(dataset=f"npz:{path}", image_size=32))
    assert data.image_shape == (3, 32, 32) and data.classes == tuple(CLASSES)
    assert np.array_equal(data.train_images.numpy(), x_train.transpose(0, 3, 1, 2))
    assert data.test_labels.tolist() == y_test[:, 0].tolist()
    grey = load_dataset(DataConfig(dataset=f"npz:{path}", image_size=32, color="grey"))
    assert grey.image_shape == (1, 32, 32)
    assert main(["data", "verify", f"npz:{path}"]) == 0
    assert "20 train and 6 test images, 32x32 RGB, 10 class(es)" in capsys.readouterr().out
    x, y = __import__("ganvae").datasets.load(f"npz:{path}", "test", image_size=32)
    assert x.shape == (6, 3, 32, 32) and y.tolist() == y_test[:, 0].tolist()


def test_an_npz_of_images_and_labels_is_split_like_a_folder(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.random((40, 28, 28)).astype(np.float32)  # grey, floats in [0, 1]
    path = tmp_path / "mine.npz"
    np.savez_compressed(path, images=images, labels=np.arange(40) % 4)
    data = load_dataset(DataConfig(dataset=f"npz:{path}"))
    again = load_dataset(DataConfig(dataset=f"npz:{path}"))
    assert data.image_shape == (1, 28, 28) and (len(data.train_images), len(data.test_images)) == (36, 4)
    assert torch.equal(data.test_images, again.test_images) and data.classes == ("0", "1", "2", "3")


@pytest.mark.parametrize("arrays, says", [
    (dict(pictures=np.zeros((4, 28, 28), np.uint8)), r"holds the arrays pictures; expected x_train, y_train, x_test, "
                                                     r"y_test .* or images and labels"),
    (dict(images=np.zeros((4, 28, 28), np.uint8), labels=np.zeros(3)), r"array 'labels': 3 labels for 4 images"),
    (dict(images=np.zeros((4, 28, 28, 4), np.uint8)), r"array 'images': images of shape \(4, 28, 28, 4\): neither"),
    (dict(images=np.array([None, 1], dtype=object)), r"holds arrays of Python objects, which would need pickle"),
    (dict(x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4), x_test=np.zeros((4, 28, 28), np.uint8),
          y_test=np.zeros(4)), r"x_train's images are \(3, 32, 32\) .* but x_test's \(1, 28, 28\)"),
    (dict(images=np.zeros((4, 32, 32), np.uint8)), r"data.image_size is 28 but the images of npz:.* are 32 pixels; "
                                                   r"set data.image_size=32"),
])
def test_bad_npz_files_are_clear_errors(tmp_path, arrays, says):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=says):
        load_dataset(DataConfig(dataset=f"npz:{path}"))


def test_a_file_that_is_not_an_npz_is_named(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"x.npz: cannot be read as a .npz file of arrays"):
        load_dataset(DataConfig(dataset=f"npz:{path}"))
    with pytest.raises(DataError, match=r"npz:.*missing.npz: no such file"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'missing.npz'}"))
