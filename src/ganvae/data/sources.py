"""Named dataset sources: official download locations, checksums, class names; download and cache.

A named IDX dataset has four files (train/test images/labels). They are found, in order:

1. in ``--data-dir DIR`` when given (both ``train-images-idx3-ubyte.gz`` and
   ``train-images.idx3-ubyte`` spellings, gzip or raw);
2. in the cache (``$GANVAE_DATA_DIR``, else ``~/.cache/ganvae``), under ``<cache>/<name>/``;
3. by download into the cache, from each mirror in turn: into a temporary file that is
   checked (length and md5) and only then renamed into place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from ganvae.common.files import default_cache_dir, md5_file
from ganvae.errors import DataError, DownloadError, FieldDataError, Placeholder, suggest

log = logging.getLogger(__name__)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: its published name, md5 of the gzip file, optional md5 unpacked."""

    filename: str
    md5: str
    raw_md5: str | None = None  # md5 of the unpacked file, where published

    @property
    def kind(self) -> str:
        return "images" if "images" in self.filename else "labels"

    def candidates(self) -> list[str]:
        """Local spellings accepted for this file, e.g. ``train-images-idx3-ubyte(.gz)`` and
        ``train-images.idx3-ubyte``."""
        base = self.filename[:-3] if self.filename.endswith(".gz") else self.filename
        stem, _, suffix = base.rpartition("-")  # train-images-idx3 , ubyte
        prefix, _, idx = stem.rpartition("-")  # train-images , idx3
        dotted = f"{prefix}.{idx}-{suffix}"  # train-images.idx3-ubyte
        return [base + ".gz", base, dotted, dotted + ".gz"]


@dataclass(frozen=True)
class DatasetSource:
    """A named IDX dataset with its download mirrors, file checksums and class names."""

    name: str
    title: str
    description: str
    homepage: str
    license: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    files: dict[str, FileSpec] = field(default_factory=dict)
    offline: bool = False  # ships with the package; never downloaded
    packaged: str | None = None  # folder under ganvae/data/packaged/ holding the offline files
    torchvision_name: str | None = None  # torchvision keeps the files in <root>/<this>/raw/
    keras_npz: str | None = None  # Keras' single-file copy (x_train, y_train, x_test, y_test), e.g. mnist.npz
    per_class: tuple[int, int] | None = None  # keep only the first (train, test) images of each class
    # the packaged dataset that stands in for this one when a pretrained model needs real images and this one's
    # files are not on the machine (a subset of the same data; the protocol records it)
    offline_stand_in: str | None = None
    # how its files are stored, which names the reader of ganvae.data.formats.READERS that finds, reads and checks
    # them: "idx" (four IDX files, or Keras' npz), "cifar" (CIFAR-10's python batches or their archive),
    # "generated" (made from a packaged dataset as it is loaded: no files of its own)
    format: str = "idx"
    channels: int = 1  # 1 (grey) or 3 (RGB)
    image_sizes: tuple[int, ...] = (28,)  # the sides (pixels) of its square images; named datasets are not resized
    download_files: tuple[str, ...] = ROLES  # the keys of ``files`` that a download fetches

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Its first (for most datasets only) image size."""
        return self.image_sizes[0]

    def sizes_text(self) -> str:
        """Its image sizes in words: ``28`` or ``28, 32 or 64``."""
        *rest, last = (str(s) for s in self.image_sizes)
        return f"{', '.join(rest)} or {last}" if rest else last


MNIST = DatasetSource(
    name="mnist",
    title="MNIST handwritten digits",
    description="70,000 28x28 grey images of the digits 0-9 (60,000 train, 10,000 test).",
    homepage="http://yann.lecun.com/exdb/mnist/",
    license="CC BY-SA 3.0",
    classes=tuple(str(d) for d in range(10)),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files={
        "train_images": FileSpec("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                 "6bbc9ace898e44ae57da46a324031adb"),
        "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                                 "a25bea736e30d166cdddb491f175f624"),
        "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                                "2646ac647ad5339dbf082846283269ea"),
        "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                                "27ae3e4e09519cfbb04c329615203637"),
    },
    torchvision_name="MNIST",
    keras_npz="mnist.npz",
    offline_stand_in="mnist-25k",
)

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando)",
    description="70,000 28x28 grey images of 10 kinds of clothing, a drop-in replacement for MNIST.",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    license="MIT",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    files={
        "train_images": FileSpec("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    torchvision_name="FashionMNIST",  # (Keras keeps Fashion-MNIST as these four .gz files in fashion-mnist/)
)

KMNIST = DatasetSource(
    name="kmnist",
    title="Kuzushiji-MNIST",
    description="70,000 28x28 grey images of 10 cursive Japanese (Kuzushiji) hiragana characters.",
    homepage="https://github.com/rois-codh/kmnist",
    license="CC BY-SA 4.0",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    mirrors=(
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    files={
        "train_images": FileSpec("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
        "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
        "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
        "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
    },
    torchvision_name="KMNIST",
)

_PACKAGED_MNIST_FILES = {
    "train_images": FileSpec("train-images-idx3-ubyte.gz", "c8a12f97e1bd0a39b3616e3952af10fb",
                             "4ac8cea088fb37fcdc4a170bcccb7fd3"),
    "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "be8daa1cadc0d7751b041fca85c46a88",
                             "7d1bf500d6c19127f13bca1fa40095a4"),
    "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "4aad987fe2ae30e15e6e7bcacbab6d4f",
                            "d80f8e719a1d1671a68caf4e6b294515"),
    "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "08ba34fc311d7a41dfb79c72119c36d4",
                            "a3d4d49e1f4ade9a5de4e4424ddddcfb"),
}

MNIST_25K = DatasetSource(
    name="mnist-25k",
    title="MNIST, 25,000-digit offline subset (ships with ganvae)",
    description=(
        "25,000 real MNIST digits in MNIST's own IDX format, inside the package (3.9 MB): 20,000 train (2,000 "
        "random images of each class of the official training set) and 5,000 test (500 random images of each "
        "class of the official test set). Made by tools/make_mnist_25k.py; no download."
    ),
    homepage="http://yann.lecun.com/exdb/mnist/",
    license="CC BY-SA 3.0 (MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
    classes=tuple(str(d) for d in range(10)),
    mirrors=(),
    files=_PACKAGED_MNIST_FILES,
    offline=True,
    packaged="mnist-25k",
)

MNIST_5K = replace(
    MNIST_25K,
    name="mnist-5k",
    title="MNIST, 5,000-digit offline subset (ships with ganvae)",
    description=(
        "5,000 real MNIST digits, a slice of mnist-25k: 4,000 train and 1,000 test (its first 400 / 100 images "
        "of each class). For tests and one-minute tries; no download."
    ),
    per_class=(400, 100),
)

CIFAR10 = DatasetSource(
    name="cifar10",
    title="CIFAR-10 (colour)",
    description=(
        "60,000 32x32 colour images of 10 classes (50,000 train, 10,000 test), read from the python version: the "
        "folder cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta) or its archive "
        "cifar-10-python.tar.gz (163 MB). Its files are pickles: ganvae reads them with an unpickler that builds "
        "numpy arrays and nothing else, so a file can never run code."
    ),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    license="none stated; its authors ask that you cite Alex Krizhevsky, Learning Multiple Layers of Features from "
            "Tiny Images, 2009",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    # the archive's md5 and its files' (as torchvision checks them; the archive is what a download fetches)
    files={
        "archive": FileSpec("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        "data_batch_1": FileSpec("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        "data_batch_2": FileSpec("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        "data_batch_3": FileSpec("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        "data_batch_4": FileSpec("data_batch_4", "634d18415352ddfa80567beed471001a"),
        "data_batch_5": FileSpec("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test_batch": FileSpec("test_batch", "40351d587109b95175f43aff81a1287e"),
        "batches.meta": FileSpec("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    format="cifar",
    channels=3,
    image_sizes=(32,),
    download_files=("archive",),
)

COLOUR_DIGITS = DatasetSource(
    name="colour-digits",
    title="Colour digits: MNIST digits in colour, made offline from mnist-25k",
    description=(
        "The 25,000 digits of mnist-25k with coloured strokes on coloured, gradient, lightly textured backgrounds, "
        "generated as they are loaded (seeded: the same bytes on every machine; about a second, no download): 28, "
        "32 or 64 pixels, chosen by data.image_size (28: MNIST's own; 32: padded; 64: upsampled and padded). At 64 "
        "pixels only the first 1,000 train / 250 test images of each class (12,500 images, 154 MB in memory). "
        "Recipe: ganvae/data/colour_digits.py."
    ),
    homepage="http://yann.lecun.com/exdb/mnist/ (the digits)",
    license="CC BY-SA 3.0 (derived from MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
    classes=tuple(str(d) for d in range(10)),
    mirrors=(),
    offline=True,
    format="generated",
    channels=3,
    image_sizes=(28, 32, 64),
    download_files=(),
)

SOURCES: dict[str, DatasetSource] = {s.name: s for s in (MNIST_5K, MNIST_25K, MNIST, FASHION_MNIST, KMNIST, CIFAR10,
                                                         COLOUR_DIGITS)}


def packaged_dir(source: DatasetSource) -> Path:
    """The folder inside the installed package that holds an offline dataset's files."""
    assert source.packaged is not None, source.name
    return Path(__file__).resolve().parent / "packaged" / source.packaged


def get_source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise DataError(
            f"unknown dataset {name!r}.{suggest(name, list(SOURCES), list_all=False)} Known datasets: "
            f"{', '.join(SOURCES)}, or folder:PATH "
            f"for a folder of images (`ganvae data list`)."
        )
    return SOURCES[name]


def dataset_cache_dir(source: DatasetSource, cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir() / source.name


def layout_folders(source: DatasetSource, folder: Path) -> list[Path]:
    """Where other tools keep the four IDX files under a folder a user gives: the folder itself, its ``raw/``
    (torchvision's ``MNIST/``), and torchvision's ``<root>/MNIST/raw/``."""
    folders = [folder, folder / "raw"]
    if source.torchvision_name:
        folders.append(folder / source.torchvision_name / "raw")
    return folders


def keras_npz_path(source: DatasetSource, folder: Path) -> Path | None:
    """Keras' single-file copy of the dataset in ``folder`` (``mnist.npz``), if the dataset has one and it is there."""
    if source.keras_npz and (folder / source.keras_npz).is_file():
        return folder / source.keras_npz
    return None


def check_readable(folder: Path, field: str = "data_dir") -> None:
    """A folder the user named (as ``field``) must be readable: a permission error names it, instead of a
    traceback."""
    try:
        with os.scandir(folder):
            pass
    except PermissionError:
        raise FieldDataError(field, str(folder), f"{{given}}: the folder cannot be read (permission denied). Make it "
                             f"readable (chmod -R u+rX {folder}), or copy the files somewhere readable.",
                             reason="cannot be read") from None


def locate_file(spec: FileSpec, folder: str | os.PathLike) -> Path | None:
    """The first accepted spelling of ``spec`` present in ``folder``, or ``None``."""
    folder = Path(folder)
    for name in spec.candidates():
        if (folder / name).is_file():
            return folder / name
    return None


# ----------------------------------------------------------------------------- download


def _progress_bar(total: int | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
        disable=logging.getLogger("ganvae").getEffectiveLevel() > logging.INFO,
    )


def download_file(url: str, dest: Path, md5: str, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` through a verified temporary file.

    The bytes go to a temporary file beside ``dest``; the length is checked against the
    server's Content-Length and the md5 against ``md5``; only then is it renamed to
    ``dest``. On any failure the temporary file is removed and ``DownloadError`` raised.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "ganvae"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with _progress_bar(total, dest.name) as bar:
                    while True:
                        try:
                            chunk = response.read(1 << 16)
                        except Exception as err:  # http.client.IncompleteRead and socket errors
                            raise DownloadError(f"{url}: connection broke after {received:,} bytes ({err}).") from None
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if total is not None and received != total:
                    raise DownloadError(f"{url}: download cut off: received {received:,} of {total:,} bytes.")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != md5:
            raise DownloadError(
                f"{url}: wrong checksum: md5 {got}, expected {md5} ({received:,} bytes). "
                f"The mirror served a different or damaged file; nothing was kept."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download(
    source: DatasetSource,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    roles: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Download every file of ``source`` that the cache lacks (or holds with a wrong md5).

    Args:
        source: a named dataset.
        cache_dir: the folder for this dataset's files; default ``<cache>/<name>``.
        mirrors: base URLs to try in order; default the source's official mirrors.
        roles: which files to fetch (keys of ``source.files``); default its ``download_files``.

    Returns:
        role -> path of the verified file in the cache.
    """
    if source.offline:
        raise DataError(f"{source.name} ships with ganvae and needs no download.")
    folder = dataset_cache_dir(source, cache_dir)
    mirrors = tuple(mirrors) if mirrors is not None else source.mirrors
    paths: dict[str, Path] = {}
    for role in roles if roles is not None else source.download_files:
        spec = source.files[role]
        dest = folder / spec.filename
        if dest.is_file() and md5_file(dest) == spec.md5:
            paths[role] = dest
            continue
        problems: list[str] = []
        network_only = True
        for base in mirrors:
            url = base.rstrip("/") + "/" + spec.filename
            log.info("downloading %s", url)
            try:
                download_file(url, dest, spec.md5, timeout=timeout)
            except DownloadError as err:
                problems.append(str(err))
                network_only = False
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                if isinstance(err, urllib.error.HTTPError):
                    network_only = False
                problems.append(f"{url}: {reason}")
            else:
                paths[role] = dest
                break
        else:
            tried = "\n  ".join(problems) or "(no mirrors configured)"
            wanted = " ".join(source.files[r].filename for r in source.download_files)
            advice = (
                f"This machine seems to have no network access. Copy {wanted} from a machine that has, and pass "
                f"--data-dir DIR, or use an offline dataset: --dataset mnist-25k (grey) or colour-digits."
                if network_only
                else "Try again later, or fetch the files by hand and pass --data-dir DIR."
            )
            raise DownloadError(f"could not download {spec.filename} for {source.name}:\n  {tried}\n{advice}")
    return paths


# ----------------------------------------------------------------------------- verification


@dataclass
class FileReport:
    role: str
    path: Path | None
    md5: str | None
    ok: bool
    problem: str = ""
    note: str = ""  # said beside OK, e.g. "same content, different compression"


def verify(
    source: DatasetSource,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    accept_unverified: bool = False,
) -> list[FileReport]:
    """Check each file of ``source``: present, md5 as published, and a valid IDX of the right kind. A recompressed
    archive is checked by its unpacked content where a content sum is known (:func:`content_sums_text`); where none
    is, it is a problem unless ``accept_unverified``, and the report says what it parses as."""
    from ganvae.data.idx import check_pair, read_bytes, read_idx

    if data_dir is not None:
        given = Path(data_dir)
        if given.is_dir():
            check_readable(given)
        folders = layout_folders(source, given)
        folder = next((f for f in folders if any(locate_file(source.files[r], f) for r in ROLES)), given)
        npz = keras_npz_path(source, given)
        if folder == given and npz is not None and not any(locate_file(source.files[r], given) for r in ROLES):
            return verify_keras_npz(source, npz)
    else:
        folder = packaged_dir(source) if source.offline else dataset_cache_dir(source, cache_dir)
    reports: list[FileReport] = []
    arrays = {}
    for role in ROLES:
        spec = source.files[role]
        path = locate_file(spec, folder)
        if path is None:
            reports.append(FileReport(role, None, None, False,
                                      f"missing: none of {', '.join(spec.candidates())} in {folder}"))
            continue
        try:
            md5 = md5_file(path)
        except OSError as err:  # present but unreadable (permissions, an I/O error): a problem of this file
            reports.append(FileReport(role, path, None, False, f"cannot be read ({err.strerror or err}); check the "
                                      f"file's permissions (e.g. chmod a+r {path}) or copy it again"))
            continue
        gz = path.name.endswith(".gz")
        expected = spec.md5 if gz else spec.raw_md5
        problems, note = [], ""
        try:
            arrays[role] = read_idx(path, spec.kind, source.num_classes)
        except DataError as err:
            problems.append(str(err).removeprefix(f"{path}: "))
        if not problems and gz and md5 != spec.md5 and spec.raw_md5 is not None:
            # another gzip of the same bytes (a mirror's or a distribution's recompression): check the content
            content = hashlib.md5(read_bytes(path)).hexdigest()
            if content == spec.raw_md5:
                note = "same content, different compression (unpacked md5 as published)"
            else:
                problems.append(f"content differs from the published file (unpacked md5 {content}, "
                                f"expected {spec.raw_md5})")
        elif not problems and gz and md5 != spec.md5:  # recompressed, and no content sum to check it against
            parsed = arrays[role]
            what = (f"{len(parsed):,} valid {parsed.shape[1]}x{parsed.shape[2]} images" if parsed.ndim == 3 else
                    f"{len(parsed):,} valid labels {int(parsed.min())}-{int(parsed.max())}")
            text = (f"the archive differs from the published one (md5 {md5}, published {spec.md5}); its content "
                    f"cannot be checked against a published sum ({source.name} publishes sums of its .gz files "
                    f"only): it parses as {what}")
            if accept_unverified:
                note = text + "; accepted (--accept-unverified)"
            else:
                problems.append(text + ". If you trust where the copy came from, accept it with "
                                "--accept-unverified; training reads it either way")
        elif expected is not None and md5 != expected:
            problems.append(f"md5 mismatch (expected {expected}): the file differs from the published one"
                            + ("" if gz or spec.raw_md5 else "; no published checksum of the unpacked file to compare"))
        elif expected is None and not gz:
            note = "no published checksum of the unpacked file; checked as a valid IDX only"
        reports.append(FileReport(role, path, md5, not problems, "; ".join(problems), note))
    for split in ("train", "test"):
        images, labels = arrays.get(f"{split}_images"), arrays.get(f"{split}_labels")
        if images is not None and labels is not None:
            try:
                check_pair(images, labels, f"{split} images", f"{split} labels")
            except DataError as err:
                for rep in reports:
                    if rep.role.startswith(split) and rep.ok:
                        rep.ok, rep.problem = False, str(err)
    return reports


def content_sums_text(source: DatasetSource) -> str:
    """Which content (unpacked-file) sums ganvae knows for ``source``, for `ganvae data info`."""
    if source.offline:
        return "the packaged files are checked by their own md5s"
    if all(source.files[r].raw_md5 for r in ROLES):
        return ("known for all four files (md5 of the unpacked IDX files of the published archives, computed "
                "from those archives): a recompressed copy is checked by its content")
    return ("none published: only the .gz archives' md5s are (by the dataset's authors); a recompressed copy "
            "is reported as unverified, with what it parses as")


def verify_keras_npz(source: DatasetSource, path: Path) -> list[FileReport]:
    """Check Keras' ``mnist.npz``: each array, re-encoded as IDX, against the md5 of the published unpacked file."""
    from ganvae.data.idx import encode_idx, read_keras_npz

    md5 = md5_file(path)
    try:
        arrays = read_keras_npz(path, source.num_classes)
    except DataError as err:
        return [FileReport(role, path, md5, False, str(err).removeprefix(f"{path}: ")) for role in ROLES]
    reports = []
    for role in ROLES:
        content = hashlib.md5(encode_idx(arrays[role])).hexdigest()
        expected = source.files[role].raw_md5
        if expected is None:
            reports.append(FileReport(role, path, content, True, note="valid arrays; no published checksum to compare"))
        elif content == expected:
            reports.append(FileReport(role, path, content, True,
                                      note=f"same content as {source.files[role].filename} (Keras' npz)"))
        else:
            reports.append(FileReport(role, path, content, False,
                                      f"content differs from the published {source.files[role].filename}"))
    return reports


def resolve_files(
    source: DatasetSource,
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    downloader: Callable[..., dict[str, Path]] | None = None,  # default: download (looked up at call time)
) -> dict[str, Path]:
    """Paths of the four files: from ``data_dir``, else the cache, else a download."""
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise FieldDataError("data_dir", str(folder), "{given}: no such folder. Point it at the folder holding the "
                                 "IDX files.", reason="no such folder")
        check_readable(folder)
        for candidate in layout_folders(source, folder):
            found = {role: locate_file(source.files[role], candidate) for role in ROLES}
            if all(path is not None for path in found.values()):
                return found  # type: ignore[return-value]
        npz = keras_npz_path(source, folder)
        if npz is not None:
            return {role: npz for role in ROLES}
        spec = next(source.files[r] for r in ROLES if locate_file(source.files[r], folder) is None)
        also = ([str(c) for c in layout_folders(source, folder)[1:]]
                + ([str(folder / source.keras_npz)] if source.keras_npz else []))
        raise FieldDataError(
            "data_dir", str(folder), f"{folder}: {source.name} file {spec.filename} is missing (looked for "
            f"{', '.join(spec.candidates())}; also in {', '.join(also)}). Copy it there, or drop {{field}} to download "
            f"it.", reason=f"{spec.filename} is missing")
    if source.offline:
        folder = packaged_dir(source)
        found = {role: locate_file(source.files[role], folder) for role in ROLES}
        missing = [source.files[r].filename for r, path in found.items() if path is None]
        if missing:
            raise DataError(f"{folder}: the packaged files {', '.join(missing)} are missing; reinstall ganvae "
                            "(`pip install --force-reinstall ganvae`).")
        return found  # type: ignore[return-value]
    folder = dataset_cache_dir(source, cache_dir)
    cached = {role: locate_file(source.files[role], folder) for role in ROLES}
    if all(p is not None for p in cached.values()):
        return cached  # type: ignore[return-value]
    if not allow_download:
        raise FieldDataError(
            "data_dir", None, f"{source.name} is not in the cache ({folder}) and downloads are off "
            f"(data.download=false). Run `ganvae data download {source.name}`, or pass {{given}}.",
            values={"data_dir": Placeholder("DIR")}, reason="not in the cache")
    return (downloader or download)(source, cache_dir=cache_dir)
