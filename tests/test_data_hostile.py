"""Folder datasets and data folders that fight back: huge images, links back to the root, unreadable folders and
recompressed archives are each named (file, folder, fix), and nothing is dropped without a word."""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx_dataset
from PIL import Image

from ganvae.cli import main
from ganvae.data.dataset import load_folder
from ganvae.errors import DataError


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` grey pixels, with (almost) no data: Pillow opens it
    lazily and knows the size, so this tests the refusal without making a gigapixel image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def small_pngs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((28, 28), i * 10 % 255, dtype=np.uint8)).save(folder / f"{i}.png")


@pytest.mark.parametrize("side,says", [(20000, "Shrink the image"), (10000, "10000x10000 pixels, over the")])
def test_a_huge_image_is_named_before_it_is_decoded(tmp_path, side, says):
    small_pngs(tmp_path / "d", 3)
    png_header_only(tmp_path / "d" / "huge.png", side, side)
    with pytest.raises(DataError, match=says) as err:
        load_folder(tmp_path / "d", 28)
    assert "huge.png" in str(err.value)


def test_a_link_back_to_the_root_is_skipped_with_a_warning(tmp_path, caplog):
    small_pngs(tmp_path / "d" / "a", 3)
    small_pngs(tmp_path / "d" / "b", 2)
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    with caplog.at_level(logging.WARNING):
        data = load_folder(tmp_path / "d", 28, test_fraction=0)
    assert data.classes == ("a", "b") and len(data.train_images) == 5
    assert "loop links to" in caplog.text and "skipped" in caplog.text


def test_an_unreadable_class_folder_is_named_not_dropped(tmp_path, monkeypatch):
    small_pngs(tmp_path / "d" / "a", 3)
    small_pngs(tmp_path / "d" / "b", 2)
    real = os.scandir
    blocked = str(tmp_path / "d" / "b")

    def scandir(path="."):  # root ignores permissions, so refuse the folder here as the OS would for a user
        if str(path) == blocked:
            raise PermissionError(13, "Permission denied", blocked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError, match=r"d/b: this folder of folder:.* cannot be read \(Permission denied\)"):
        load_folder(tmp_path / "d", 28)


def test_an_unreadable_root_is_named(tmp_path, monkeypatch, capsys):
    small_pngs(tmp_path / "d", 2)
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == tmp_path / "d":
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError, match="the folder cannot be read"):
        load_folder(tmp_path / "d", 28)


def test_data_verify_on_an_unreadable_folder_names_it(tmp_path, monkeypatch, capsys):
    folder = write_idx_dataset(tmp_path / "idx")
    real = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(folder))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["data", "verify", "mnist", "--data-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {folder}: the folder cannot be read" in err and "Traceback" not in err


def test_data_info_and_verify_describe_a_folder(tmp_path, capsys):
    small_pngs(tmp_path / "d" / "cats", 3)
    small_pngs(tmp_path / "d" / "dogs", 2)
    assert main(["data", "info", f"folder:{tmp_path / 'd'}"]) == 0
    out = capsys.readouterr().out
    assert "5 images in 2 class(es)" in out and "cats" in out and "unknown" not in out
    assert main(["data", "verify", f"folder:{tmp_path / 'd'}"]) == 0
    assert "5 images read" in capsys.readouterr().out


def recompress(folder: Path) -> None:
    for f in folder.glob("*.gz"):
        raw = gzip.decompress(f.read_bytes())
        f.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))  # same content, other archive bytes


def test_a_recompressed_copy_without_content_sums_is_unverified_not_corrupt(tmp_path, capsys):
    """Fashion-MNIST publishes md5s of its .gz files only: a recompressed copy cannot be checked by content. The
    report says so, with what it parses as; --accept-unverified accepts it."""
    folder = write_idx_dataset(tmp_path / "fashion")
    recompress(folder)
    assert main(["data", "verify", "fashion-mnist", "--data-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "its content cannot be checked against a published sum" in out
    assert "parses as 200 valid 28x28 images" in out and "--accept-unverified" in out
    assert main(["data", "verify", "fashion-mnist", "--data-dir", str(folder), "--accept-unverified"]) == 0
    assert "accepted (--accept-unverified)" in capsys.readouterr().out
    assert main(["data", "info", "fashion-mnist"]) == 0
    assert "content sums: none published" in capsys.readouterr().out
    assert main(["data", "info", "mnist"]) == 0
    assert "content sums: known for all four files" in capsys.readouterr().out
