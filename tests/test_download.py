"""Downloads against a local HTTP server: verified file kept; wrong checksum or cut-off leaves nothing."""

import hashlib
from dataclasses import replace

import pytest
from conftest import gz, make_images

from ganvae.data.idx import encode_idx
from ganvae.data.sources import MNIST, FileSpec, download, resolve_files
from ganvae.errors import DataError, DownloadError


def tiny_source(files: dict):
    """MNIST's roles with the tests' own files and checksums."""
    images, labels = make_images(20)
    payloads = {
        "train-images-idx3-ubyte.gz": gz(encode_idx(images)),
        "train-labels-idx1-ubyte.gz": gz(encode_idx(labels)),
        "t10k-images-idx3-ubyte.gz": gz(encode_idx(images[:10])),
        "t10k-labels-idx1-ubyte.gz": gz(encode_idx(labels[:10])),
    }
    files.update(payloads)
    specs = {role: FileSpec(spec.filename, hashlib.md5(payloads[spec.filename]).hexdigest())
             for role, spec in MNIST.files.items()}
    return replace(MNIST, files=specs), payloads


def test_good_download_is_cached(http_server, tmp_path):
    base, files = http_server
    source, payloads = tiny_source(files)
    paths = download(source, cache_dir=tmp_path / "c", mirrors=[f"{base}/good/"])
    for path in paths.values():
        assert path.read_bytes() == payloads[path.name]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(payloads)  # no temporary files left


def test_wrong_checksum_leaves_nothing(http_server, tmp_path):
    base, files = http_server
    source, _ = tiny_source(files)
    bad = replace(source, files={**source.files, "train_images": FileSpec("train-images-idx3-ubyte.gz", "0" * 32)})
    with pytest.raises(DownloadError, match="wrong checksum"):
        download(bad, cache_dir=tmp_path / "c", mirrors=[f"{base}/good/"], roles=["train_images"])
    assert list((tmp_path / "c").iterdir()) == []


def test_cut_off_download_leaves_nothing(http_server, tmp_path):
    base, files = http_server
    source, _ = tiny_source(files)
    with pytest.raises(DownloadError, match="cut off|connection broke"):
        download(source, cache_dir=tmp_path / "c", mirrors=[f"{base}/cut/"], roles=["train_images"])
    assert list((tmp_path / "c").iterdir()) == []


def test_falls_back_to_second_mirror(http_server, tmp_path):
    base, files = http_server
    source, _ = tiny_source(files)
    paths = download(source, cache_dir=tmp_path / "c", mirrors=[f"{base}/cut/", f"{base}/good/"],
                     roles=["train_images"])
    assert paths["train_images"].is_file()


def test_no_network_message_says_how_to_proceed(tmp_path):
    # port 9 on loopback refuses connections: the same error as a machine without network
    with pytest.raises(DownloadError, match=r"--data-dir DIR.*--dataset mnist-25k"):
        download(MNIST, cache_dir=tmp_path / "c", mirrors=["http://127.0.0.1:9/"], roles=["train_labels"], timeout=2)
    assert not any((tmp_path / "c").iterdir())


def test_download_disabled(tmp_path):
    with pytest.raises(DataError, match="downloads are off"):
        resolve_files(MNIST, allow_download=False, cache_dir=tmp_path / "empty")
