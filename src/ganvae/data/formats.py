"""The readers of named datasets, one per ``DatasetSource.format``: how its files are found, read and checked.

A reader returns :class:`~ganvae.data.arrays.Splits` (numpy arrays); :func:`ganvae.data.dataset.load_dataset`
makes them a dataset. ``ganvae data`` asks the same reader whether a folder holds a dataset's files and to verify
them, so no command asks which format a dataset has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ganvae.data import cifar, colour_digits
from ganvae.data.arrays import Splits, per_class_indices
from ganvae.data.sources import (
    ROLES,
    SOURCES,
    DatasetSource,
    FileReport,
    content_sums_text,
    md5_file,
    resolve_files,
    verify,
)
from ganvae.errors import GanvaeError

PathLike = str | os.PathLike | None


@dataclass(frozen=True)
class Reader:
    """What ganvae does with one format of dataset files.

    Attributes:
        read: ``(source, data_dir, allow_download, cache_dir, image_size) -> Splits``: the dataset, from
            ``data_dir``, else the cache, else a download (where ``allow_download``), at ``image_size`` (one of
            ``source.image_sizes``, checked by the caller).
        verify: ``(source, data_dir, cache_dir, accept_unverified) -> [FileReport]``: each file checked.
        holds: ``(source, folder) -> bool``: whether ``folder`` holds the dataset's files (``ganvae data list
            --data-dir``).
        found: ``(source, folder) -> [Path]``: the files it would read there; an error naming what is missing.
        sums: ``(source) -> str``: which checksums of its content ganvae knows (``ganvae data info``).
    """

    read: Callable[[DatasetSource, PathLike, bool, PathLike, int], Splits]
    verify: Callable[[DatasetSource, PathLike, PathLike, bool], list[FileReport]]
    holds: Callable[[DatasetSource, Path], bool]
    found: Callable[[DatasetSource, Path], list[Path]]
    sums: Callable[[DatasetSource], str]


def read_idx_splits(source: DatasetSource, data_dir: PathLike = None, allow_download: bool = True,
                    cache_dir: PathLike = None) -> Splits:
    """The four IDX files of a named dataset (or Keras' npz of them), each validated and each images/labels pair
    checked: images ``(N, 1, 28, 28)``."""
    from ganvae.data.idx import check_pair, read_idx, read_keras_npz

    paths = resolve_files(source, data_dir=data_dir, allow_download=allow_download, cache_dir=cache_dir)
    if paths["train_images"].suffix == ".npz":  # Keras' single file
        arrays = read_keras_npz(paths["train_images"], source.num_classes)
    else:
        arrays = {role: read_idx(paths[role], source.files[role].kind, source.num_classes) for role in ROLES}
    for split in ("train", "test"):
        check_pair(arrays[f"{split}_images"], arrays[f"{split}_labels"],
                   paths[f"{split}_images"], paths[f"{split}_labels"])
    return Splits(*(arrays[role][:, None] if role.endswith("images") else arrays[role].astype(np.int64)
                    for role in ROLES))


def per_class(splits: Splits, n_train: int, n_test: int) -> Splits:
    """The first ``n_train`` / ``n_test`` images of each class, in file order."""
    tr, te = per_class_indices(splits.train_labels, n_train), per_class_indices(splits.test_labels, n_test)
    return Splits(splits.train_images[tr], splits.train_labels[tr], splits.test_images[te], splits.test_labels[te])


def _read_idx(source: DatasetSource, data_dir: PathLike, allow_download: bool, cache_dir: PathLike,
              image_size: int) -> Splits:
    splits = read_idx_splits(source, None if source.offline else data_dir, allow_download, cache_dir)
    return per_class(splits, *source.per_class) if source.per_class else splits


def _holds_idx(source: DatasetSource, folder: Path) -> bool:
    try:  # the labels file is small: its checksum tells datasets with the same file names apart
        labels = resolve_files(source, data_dir=folder, allow_download=False)["train_labels"]
        return md5_file(labels) == source.files["train_labels"].md5
    except (GanvaeError, OSError):
        return False


def _found_idx(source: DatasetSource, folder: Path) -> list[Path]:
    return sorted(set(resolve_files(source, data_dir=folder, allow_download=False).values()))


def _read_cifar(source: DatasetSource, data_dir: PathLike, allow_download: bool, cache_dir: PathLike,
                image_size: int) -> Splits:
    return cifar.read(source, data_dir, allow_download, cache_dir)


def _found_cifar(source: DatasetSource, folder: Path) -> list[Path]:
    location = cifar.locate(source, data_dir=folder, allow_download=False)
    return [location.path] if location.archive else [location.path / name for name in cifar.MEMBERS]


def _read_generated(source: DatasetSource, data_dir: PathLike, allow_download: bool, cache_dir: PathLike,
                    image_size: int) -> Splits:
    return colour_digits.colour_digits(read_idx_splits(SOURCES[colour_digits.BASE_DATASET]), image_size)


def _verify_generated(source: DatasetSource, data_dir: PathLike = None, cache_dir: PathLike = None,
                      accept_unverified: bool = False) -> list[FileReport]:
    """The packaged files it is made from, then whether the recipe gives its pinned bytes at each size."""
    base_source = SOURCES[colour_digits.BASE_DATASET]
    reports = verify(base_source)
    if not all(r.ok for r in reports):
        return reports
    base = read_idx_splits(base_source)
    for size in source.image_sizes:
        got, pinned = colour_digits.first_images_sha256(base, size), colour_digits.FIRST_IMAGES_SHA256[size]
        reports.append(FileReport(f"recipe at {size} pixels", None, None, got == pinned,
                                  "" if got == pinned else f"the first images' sha256 is {got}, not the pinned "
                                  f"{pinned}: this machine's numpy generates other bytes (report it)",
                                  f"the first 16 images are the pinned bytes (sha256 {pinned[:16]}...)"))
    return reports


def _none(source: DatasetSource, folder: Path) -> bool:
    return False


def _no_files(source: DatasetSource, folder: Path) -> list[Path]:
    return []


def _cifar_sums(source: DatasetSource) -> str:
    return ("the archive's md5 and each of its files' (as torchvision checks them): a recompressed archive is checked "
            "by its files")


def _generated_sums(source: DatasetSource) -> str:
    return (f"none of its own: generated from {colour_digits.BASE_DATASET} (checked by its md5s), its first images "
            f"checked against a pinned sha256 at each size")


READERS: dict[str, Reader] = {
    "idx": Reader(_read_idx, verify, _holds_idx, _found_idx, content_sums_text),
    "cifar": Reader(_read_cifar, cifar.verify, lambda s, f: cifar.find(s, f) is not None, _found_cifar, _cifar_sums),
    "generated": Reader(_read_generated, _verify_generated, _none, _no_files, _generated_sums),
}


def reader(source: DatasetSource) -> Reader:
    """The reader of ``source``'s format."""
    return READERS[source.format]
