"""CIFAR-10's python version: the folder ``cifar-10-batches-py`` (``data_batch_1`` .. ``data_batch_5``,
``test_batch``, ``batches.meta``) or its archive ``cifar-10-python.tar.gz``, read without running anything in them.

Each batch is a pickle (written by Python 2) of a dict: ``data``, a numpy ``(10000, 3072)`` uint8 array whose
rows are the 1024 red, then green, then blue values of a 32x32 image (row-major), and ``labels``, a list of 10000
ints 0-9; ``batches.meta`` holds ``label_names``. A pickle can name any Python function for the reader to call, so
ganvae never unpickles with the standard loader: :class:`ArraysOnlyUnpickler` resolves only the three names numpy
arrays need (``numpy.core.multiarray._reconstruct`` (``numpy._core`` in numpy 2), ``numpy.ndarray``,
``numpy.dtype``), and refuses, without calling it, anything else a file names. Every batch is checked (row length,
labels count and range) and a problem is a ``DataError`` naming the file and the fix.

Found, in order: in ``--data-dir DIR`` (``DIR/cifar-10-batches-py/``, ``DIR`` itself holding the batches, or
``DIR/cifar-10-python.tar.gz``); in the cache (``<cache>/cifar10/``, the same three places); else downloaded into
the cache (the archive, md5-checked, through :func:`ganvae.data.sources.download`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ganvae.data.arrays import Splits
from ganvae.data.sources import DatasetSource, FileReport, check_readable, dataset_cache_dir, download
from ganvae.errors import DataError, FieldDataError, Placeholder

FOLDER = "cifar-10-batches-py"  # the archive's top folder, as torchvision and Keras keep it
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META = "batches.meta"
MEMBERS = (*TRAIN_BATCHES, *TEST_BATCHES, META)
SIDE = 32
ROW = 3 * SIDE * SIDE  # 3072 values a row: the red plane, the green, the blue, each 32x32 row-major
# a batch of the real files is 31 MB (10,000 rows); a file over this is not one and is refused before it is read
MAX_FILE_BYTES = 64 * 2**20

_REFETCH = "Download it again (`ganvae data download cifar10`) or copy a good copy of the file."

# the names a numpy array's pickle refers to (Python 2's numpy and numpy 1 wrote numpy.core, numpy 2 numpy._core)
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}


class RefusedName(Exception):
    """A pickle named something outside :class:`ArraysOnlyUnpickler`'s allow-list; nothing of it was called."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


_NDARRAY = object()  # stands for numpy.ndarray in a pickle: only _reconstruct may receive it; calling it fails


class ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, strings, numbers and numpy arrays, and nothing else: every global
    a file names goes through :meth:`find_class`, which answers only the allow-list (a guarded ``_reconstruct``,
    a stand-in for ``ndarray`` that only it accepts, and ``dtype``) and raises :class:`RefusedName` for any other
    name, before anything is called. An array may hold at most ``max_items`` items (the file's size bounds what it
    can really hold: an array's bytes are in the file)."""

    def __init__(self, raw: bytes, max_items: int):
        super().__init__(io.BytesIO(raw), encoding="latin1")  # Python 2's str: text as latin-1, arrays' bytes intact
        self.max_items = max_items

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _RECONSTRUCT:
            return self._reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return _NDARRAY
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise RefusedName(module, name)

    def _reconstruct(self, cls: Any, shape: Any, dtype: Any) -> np.ndarray:
        """numpy's ``_reconstruct(ndarray, shape, dtype)`` (an empty array that the pickle's state then fills),
        for ``ndarray`` only and a bounded shape."""
        if cls is not _NDARRAY:
            raise ValueError(f"_reconstruct of a {type(cls).__name__}, not of numpy.ndarray")
        if (not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or math.prod(shape) > self.max_items):
            raise ValueError(f"an array of shape {shape!r}")
        real: Any = np.zeros(0).__reduce__()[0]  # numpy's own _reconstruct, wherever this numpy keeps it
        return real(np.ndarray, shape, dtype)


def unpickle(raw: bytes, where: object) -> Any:
    """The object pickled in ``raw`` (read by :class:`ArraysOnlyUnpickler`); ``where`` names the file in errors."""
    try:
        return ArraysOnlyUnpickler(raw, max_items=len(raw)).load()
    except RefusedName as err:
        raise DataError(f"{where}: refused: the file asks to call {err}, which is not part of a numpy array (the "
                        f"only thing a CIFAR-10 file holds); nothing of it was run. This is not a CIFAR-10 file, or it "
                        f"was altered. {_REFETCH}") from None
    except (EOFError, pickle.UnpicklingError) as err:
        raise DataError(f"{where}: truncated or not a pickle ({err or 'it ends early'}; {len(raw):,} bytes). "
                        f"{_REFETCH}") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, MemoryError, OverflowError,
            RecursionError) as err:
        raise DataError(f"{where}: corrupt: its pickle cannot be read ({type(err).__name__}: {err}). "
                        f"{_REFETCH}") from None


def _field(batch: dict, key: str) -> Any:
    """``batch[key]``, written as text (latin-1) or bytes, or None."""
    return batch.get(key, batch.get(key.encode()))


def parse_batch(raw: bytes, where: object, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A batch file's bytes -> images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64, checked."""
    batch = unpickle(raw, where)
    data, labels = (_field(batch, "data"), _field(batch, "labels")) if isinstance(batch, dict) else (None, None)
    if data is None or labels is None:
        found = ", ".join(repr(k) for k in batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{where}: not a CIFAR-10 batch: it should be a dict with 'data' and 'labels' (found "
                        f"{found}). {_REFETCH}")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: wrong layout: 'data' is a {what}; a CIFAR-10 batch holds uint8 rows of {ROW} "
                        f"values (a 32x32 image: its red, green and blue planes). {_REFETCH}")
    try:
        y = np.asarray(labels)
    except (TypeError, ValueError):
        y = np.zeros(0, dtype=object)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{where}: wrong layout: 'labels' should be a list of class numbers, found "
                        f"{type(labels).__name__} of {y.dtype}. {_REFETCH}")
    if len(y) != len(data):
        raise DataError(f"{where}: {len(data):,} images but {len(y):,} labels; they must match. The file is "
                        f"corrupt. {_REFETCH}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(y.max()) if int(y.max()) >= num_classes else int(y.min())
        raise DataError(f"{where}: label {bad} is out of range for {num_classes} classes; the file is corrupt. "
                        f"{_REFETCH}")
    return data.reshape(-1, 3, SIDE, SIDE).copy(), y.astype(np.int64)


def parse_meta(raw: bytes, where: object) -> list[str]:
    """``batches.meta``'s class names."""
    meta = unpickle(raw, where)
    names = _field(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{where}: not CIFAR-10's batches.meta: it should hold 'label_names', a list of class "
                        f"names. {_REFETCH}")
    return [n.decode() if isinstance(n, bytes) else n for n in names]


# ----------------------------------------------------------------------------- where the files are


@dataclass(frozen=True)
class Location:
    """Where CIFAR-10's files are: a folder of batches, or the archive."""

    path: Path
    archive: bool

    def __str__(self) -> str:
        return str(self.path)


def find(source: DatasetSource, folder: Path) -> Location | None:
    """CIFAR-10 in ``folder``: its ``cifar-10-batches-py/``, the folder itself holding the batches, or the
    archive; None when none is there."""
    for candidate in (folder / FOLDER, folder):
        if (candidate / TRAIN_BATCHES[0]).is_file():
            return Location(candidate, archive=False)
    archive = folder / source.files["archive"].filename
    return Location(archive, archive=True) if archive.is_file() else None


def _looked_for(source: DatasetSource, folder: Path) -> str:
    return (f"{folder / FOLDER}/, the batches ({', '.join(MEMBERS)}) in {folder} itself, or "
            f"{folder / source.files['archive'].filename}")


def locate(source: DatasetSource, data_dir: str | os.PathLike | None = None, allow_download: bool = True,
           cache_dir: str | os.PathLike | None = None) -> Location:
    """Where to read CIFAR-10 from: ``data_dir``, else the cache, else a download into the cache."""
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise FieldDataError("data_dir", str(folder), "{given}: no such folder. Point it at the folder holding "
                                 f"{FOLDER}/ or {source.files['archive'].filename}.", reason="no such folder")
        check_readable(folder)
        found = find(source, folder)
        if found is None:
            raise FieldDataError("data_dir", str(folder), f"{folder}: no CIFAR-10 here (looked for "
                                 f"{_looked_for(source, folder)}). Copy it there, or drop {{field}} to download it.",
                                 reason="no CIFAR-10 files")
        return found
    cache = dataset_cache_dir(source, cache_dir)
    found = find(source, cache) if cache.is_dir() else None
    if found is not None:
        return found
    if not allow_download:
        raise FieldDataError("data_dir", None, f"{source.name} is not in the cache ({cache}) and downloads are off "
                             f"(data.download=false). Run `ganvae data download {source.name}`, or pass {{given}} "
                             f"(a folder holding {FOLDER}/ or {source.files['archive'].filename}).",
                             values={"data_dir": Placeholder("DIR")}, reason="not in the cache")
    return Location(download(source, cache_dir=cache_dir)["archive"], archive=True)


def iter_files(location: Location, names: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each of ``names`` (of ``MEMBERS``) at ``location``: a folder's in the order given, an
    archive's in its own order, streamed (one pass, nothing extracted to disk, one file in memory at a time). Each
    is size-checked before it is read; a missing, unreadable or oversized file is a DataError naming it."""
    if not location.archive:
        for name in names:
            path = location.path / name
            try:
                size = path.stat().st_size
                if size > MAX_FILE_BYTES:
                    raise DataError(f"{path}: {size:,} bytes, more than a CIFAR-10 batch can be (about 31 MB); not a "
                                    f"CIFAR-10 file. {_REFETCH}")
                raw = path.read_bytes()
            except FileNotFoundError:
                raise DataError(f"{path}: missing ({location.path} should hold {', '.join(MEMBERS)}). Copy it "
                                f"there, or give the archive instead.") from None
            except OSError as err:
                raise DataError(f"{path}: cannot be read ({err.strerror or err}); check its permissions (chmod a+r "
                                f"{path}).") from None
            yield name, raw
        return
    seen: set[str] = set()
    try:
        with tarfile.open(location.path, "r:gz") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if name not in names or not member.isfile() or name in seen:
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise DataError(f"{location.path}: its {member.name} declares {member.size:,} bytes, more than a "
                                    f"CIFAR-10 batch can be; not CIFAR-10's archive. {_REFETCH}")
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                raw = extracted.read()
                seen.add(name)
                yield name, raw
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(f"{location.path}: the archive is truncated or corrupt ({err}). {_REFETCH}") from None
    missing = [n for n in names if n not in seen]
    if missing:
        raise DataError(f"{location.path}: the archive lacks {', '.join(missing)}; it is not CIFAR-10's python "
                        f"archive. {_REFETCH}")


def file_name(location: Location, name: str) -> str:
    """How an error names one of the files: its path, or ``ARCHIVE:NAME`` inside the archive."""
    return f"{location.path}:{name}" if location.archive else str(location.path / name)


def read(source: DatasetSource, data_dir: str | os.PathLike | None = None, allow_download: bool = True,
         cache_dir: str | os.PathLike | None = None) -> Splits:
    """CIFAR-10's train split (the five data batches, in order) and test split, each file checked."""
    from ganvae.common.memory import check_available_memory

    location = locate(source, data_dir, allow_download, cache_dir)
    # the arrays (60,000 x 3072 bytes), their joined copy, and one file's bytes and copy at a time
    check_available_memory(2 * 60_000 * ROW + 2 * MAX_FILE_BYTES, f"{source.name} ({location})",
                           "Free some memory, or train on a smaller dataset.")
    batches = {name: parse_batch(raw, file_name(location, name), source.num_classes)
               for name, raw in iter_files(location, (*TRAIN_BATCHES, *TEST_BATCHES))}
    train, test = [batches[n] for n in TRAIN_BATCHES], [batches[n] for n in TEST_BATCHES]
    return Splits(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                  np.concatenate([x for x, _ in test]), np.concatenate([y for _, y in test]))


# ----------------------------------------------------------------------------- verification


def verify(source: DatasetSource, data_dir: str | os.PathLike | None = None,
           cache_dir: str | os.PathLike | None = None, accept_unverified: bool = False) -> list[FileReport]:
    """Check each file: present, its md5 as published, and a valid batch (or meta) file; an archive is reported
    first, then each of its files (``ARCHIVE:NAME``). ``accept_unverified`` changes nothing here: every file of
    CIFAR-10 has a published md5, so a recompressed archive is checked by its files'."""
    folder = Path(data_dir) if data_dir is not None else dataset_cache_dir(source, cache_dir)
    if data_dir is not None and folder.is_dir():
        check_readable(folder)
    location = find(source, folder) if folder.is_dir() else None
    if location is None:
        return [FileReport(name, None, None, False, f"missing: looked for {_looked_for(source, folder)}")
                for name in MEMBERS]
    from ganvae.common.files import md5_file

    archive = FileReport("archive", location.path, md5_file(location.path), True) if location.archive else None
    reports: list[FileReport] = [archive] if archive is not None else []
    contents: dict[str, bytes] = {}
    if archive is not None:
        try:
            for name, raw in iter_files(location, MEMBERS):
                contents[name] = raw
        except DataError as err:  # a truncated or corrupt archive: the files read before the damage are checked
            archive.ok, archive.problem = False, str(err).removeprefix(f"{location.path}: ")
    for name in MEMBERS:
        where = file_name(location, name)
        if location.archive:
            if name not in contents:
                reports.append(FileReport(name, None, None, False, f"not read from {location.path} (see above)"))
                continue
            raw = contents[name]
        else:
            try:
                raw = next(iter_files(location, (name,)))[1]
            except DataError as err:
                missing = not (location.path / name).exists()
                reports.append(FileReport(name, None if missing else location.path / name, None, False,
                                          str(err).removeprefix(f"{where}: ")))
                continue
        md5 = hashlib.md5(raw).hexdigest()
        problems = []
        try:
            if name == META:
                names = parse_meta(raw, where)
                if tuple(names) != source.classes:
                    problems.append(f"its class names {names} are not CIFAR-10's")
                what = f"{len(names)} class names"
            else:
                x, _ = parse_batch(raw, where, source.num_classes)
                what = f"{len(x):,} valid 32x32 colour images with their labels"
        except DataError as err:
            problems.append(str(err).removeprefix(f"{where}: "))
        if not problems and md5 != source.files[name].md5:
            problems.append(f"md5 mismatch (expected {source.files[name].md5}): it parses as {what} but differs from "
                            f"the published file")
        reports.append(FileReport(name, Path(where), md5, not problems, "; ".join(problems)))
    if archive is not None and archive.ok and archive.md5 != source.files["archive"].md5:
        if all(r.ok for r in reports[1:]):
            archive.note = "same content, different compression (each file's md5 as published)"
        else:
            archive.ok, archive.problem = False, (f"md5 mismatch (expected {source.files['archive'].md5}): the "
                                                  f"archive differs from the published one")
    return reports
