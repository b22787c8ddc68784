"""In-memory image datasets and the seeded batch stream the trainer consumes.

The whole training split lives in memory as one ``uint8`` tensor ``(N, C, H, W)`` (C 1 for grey, 3 for RGB:
:mod:`ganvae.data.colour`) on the training device. A batch is an index into it (from a seeded permutation)
followed by a scale to the model's range: no per-sample Python work, no DataLoader workers.

:func:`load_dataset` is the one way from a :class:`~ganvae.config.DataConfig` to a dataset: a named dataset (read by
its format's reader, :mod:`ganvae.data.formats`), a folder of images (``folder:PATH``, here) or an ``.npz`` file
(``npz:PATH``, :mod:`ganvae.data.npz`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ganvae.common import seeds
from ganvae.config import DataConfig
from ganvae.data.arrays import Splits, split_indices
from ganvae.data.colour import GREY_MODES, SIXTEEN_BIT_MODES, is_colour, on_white, scale_16bit, with_channels
from ganvae.data.sources import SOURCES, DatasetSource, get_source, resolve_files
from ganvae.errors import DataError, FieldDataError, GanvaeError

log = logging.getLogger(__name__)

@dataclass
class ImageData:
    """A dataset held in memory.

    Attributes:
        name: the dataset's name (``mnist``, ``folder:/path``...).
        classes: class names, indexed by label.
        train_images: ``(N, C, H, W)`` uint8, C 1 (grey) or 3 (RGB).
        train_labels: ``(N,)`` int64.
        test_images: ``(M, C, H, W)`` uint8.
        test_labels: ``(M,)`` int64.
    """

    name: str
    classes: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_subset: tuple[int, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return int(self.train_images.shape[1])

    def __len__(self) -> int:
        return len(self.train_images)

    def fingerprint(self) -> str:
        """A short hash of the training images and labels: a checkpoint records it to detect other data."""
        h = hashlib.blake2b(digest_size=8)
        h.update(self.train_images.cpu().numpy().tobytes())
        h.update(self.train_labels.cpu().numpy().tobytes())
        return h.hexdigest()

    def to(self, device: torch.device | str) -> "ImageData":
        return replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )

    def select_classes(self, classes: list[int] | tuple[int, ...]) -> "ImageData":
        """Keep only the samples whose label is in ``classes`` (labels keep their original values)."""
        bad = [c for c in classes if not 0 <= c < len(self.classes)]
        if bad:
            raise DataError(
                f"data.classes: {bad} out of range for {self.name}, whose classes are 0..{len(self.classes) - 1} "
                f"({', '.join(self.classes)})."
            )
        wanted = torch.tensor(sorted(set(classes)), device=self.train_labels.device)
        keep_train = torch.isin(self.train_labels, wanted)
        keep_test = torch.isin(self.test_labels, wanted)
        return replace(
            self,
            train_images=self.train_images[keep_train],
            train_labels=self.train_labels[keep_train],
            test_images=self.test_images[keep_test],
            test_labels=self.test_labels[keep_test],
            class_subset=tuple(sorted(set(classes))),
        )


def _as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    # (N, H, W) uint8 -> (N, 1, H, W), (N, C, H, W) as it is; the tensor owns writable memory (an array that owns
    # its own is taken as it is: a reader's fresh 154 MB is not copied; a view or a read-only buffer is)
    x = torch.from_numpy(np.require(images, np.uint8, ["C_CONTIGUOUS", "WRITEABLE", "OWNDATA"]))
    return x.unsqueeze(1) if x.dim() == 3 else x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def image_data(name: str, classes: tuple[str, ...], splits: Splits) -> ImageData:
    """A dataset from a reader's splits (numpy arrays)."""
    train_x, train_y = _as_tensors(splits.train_images, splits.train_labels)
    test_x, test_y = _as_tensors(splits.test_images, splits.test_labels)
    return ImageData(name, classes, train_x, train_y, test_x, test_y)


def load_idx_source(source: DatasetSource, data_dir=None, allow_download=True, cache_dir=None) -> ImageData:
    """Load the four IDX files of a named dataset, validating each and each images/labels pair."""
    from ganvae.data.formats import read_idx_splits

    return image_data(source.name, source.classes, read_idx_splits(source, data_dir, allow_download, cache_dir))


def per_class_slice(data: ImageData, n_train: int, n_test: int) -> ImageData:
    """The first ``n_train`` / ``n_test`` images of each class, in file order (how ``mnist-5k`` is cut from
    ``mnist-25k``)."""

    def keep(labels: torch.Tensor, n: int) -> torch.Tensor:
        mask = torch.zeros(len(labels), dtype=torch.bool)
        for c in labels.unique():
            mask[torch.nonzero(labels == c).flatten()[:n]] = True
        return mask

    tr, te = keep(data.train_labels, n_train), keep(data.test_labels, n_test)
    return replace(data, train_images=data.train_images[tr], train_labels=data.train_labels[tr],
                   test_images=data.test_images[te], test_labels=data.test_labels[te])


def load_offline(source: DatasetSource) -> ImageData:
    """An offline dataset from the files inside the package, validated like any IDX dataset."""
    data = load_idx_source(source, allow_download=False)
    if source.per_class is not None:
        data = per_class_slice(data, *source.per_class)
    return data


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


MAX_IMAGE_PIXELS = 4096 * 4096  # a folder image larger than this is refused (decoding it would take ~1 GB)


def grey_8bit(im, f: Path):
    """A Pillow image as an 8-bit grey (mode ``L``) image: 16-bit grey scaled by :func:`scale_16bit`, any other
    mode through Pillow's ``convert("L")``. ``f`` names the file in an error."""
    from PIL import Image

    if im.mode not in SIXTEEN_BIT_MODES:
        return im.convert("L")
    levels = np.asarray(im)  # (H, W) uint16 (either byte order), or int32 for mode I
    lo, hi = (int(levels.min()), int(levels.max())) if levels.size else (0, 0)
    if lo < 0 or hi > 65535:  # mode I holds 32-bit integers; only a 16-bit file's 0-65535 has a known scale
        raise DataError(f"{f}: {im.mode} image with grey levels from {lo:,} to {hi:,}; ganvae reads 8-bit (0-255) "
                        f"and 16-bit (0-65535) grey images. Save it as an 8-bit or 16-bit PNG, or remove it.")
    return Image.fromarray(scale_16bit(levels))


@contextlib.contextmanager
def _opened(f: Path) -> Iterator[Any]:
    """A folder's image file, opened (its header read and its size checked, nothing decoded yet); a file that is
    not a readable image, or too large, is a DataError naming it, whether at open or at decoding."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: replaced by the size check below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im_file = Image.open(f)
        with im_file as im:
            _check_image_size(f, *im.size)
            yield im
    except Image.DecompressionBombError as err:  # far over Pillow's limit: refused at open
        raise DataError(f"{f}: {err} Shrink the image (e.g. `python -c \"from PIL import Image; "
                        f"im = Image.open('{f.name}'); im.thumbnail((1024, 1024)); im.save('{f.name}')\"`) or "
                        f"remove it from the folder.") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{f}: not a readable image ({err}). Remove it from the folder or replace it.") from None


def _resized(im, image_size: int) -> np.ndarray:
    from PIL import Image

    if im.size != (image_size, image_size):
        im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def read_grey_images(files: list[Path], image_size: int) -> list[np.ndarray]:
    """Each file as a ``(image_size, image_size)`` uint8 grey image (converted, resized bilinearly if needed).
    16-bit grey images are scaled to 8 bits (:func:`scale_16bit`), not clipped. An image over
    :data:`MAX_IMAGE_PIXELS` is refused, by its header, before it is decoded."""
    out = []
    for f in files:
        with _opened(f) as im:
            out.append(_resized(grey_8bit(im, f), image_size))
    return out


@dataclass
class FolderImage:
    """One file of a folder, read at the folder's image size (:func:`read_folder_image`)."""

    grey: np.ndarray | None  # (S, S) uint8: the file as grey (Pillow's luma; 16-bit scaled), where it may be needed
    rgb: np.ndarray | None  # (S, S, 3) uint8: a file in a colour mode, in colour (not read for data.color=grey)
    colour: bool  # rgb holds colour: some pixel's channels differ by more than colour.GREY_TOLERANCE levels


def read_folder_image(f: Path, image_size: int, color: str = "auto") -> FolderImage:
    """A folder's image file at ``image_size`` (resized bilinearly), transparency composited on white: as grey
    unless ``color`` is ``rgb`` and the file has a colour mode; in colour unless ``color`` is ``grey`` or the file
    has a grey mode (the caller repeats a grey file in 3 channels where it needs them)."""
    with _opened(f) as im:
        im = on_white(im)
        grey_mode = im.mode in GREY_MODES
        grey = _resized(grey_8bit(im, f), image_size) if color != "rgb" or grey_mode else None
        rgb = _resized(im.convert("RGB"), image_size) if color != "grey" and not grey_mode else None
    return FolderImage(grey, rgb, rgb is not None and is_colour(rgb))


def _check_image_size(f: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{f}: {width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,} a folder image may have "
                        f"(it is resized to a few dozen pixels anyway; decoding it would take "
                        f"{width * height * 3 / 2**30:.1f} GB). Shrink it to at most 4096x4096, or remove it.")


def image_files(folder: Path, root: Path | None = None) -> list[Path]:
    """The image files under ``folder`` (recursively, following no links to folders), sorted by path. A folder
    that cannot be read is an error naming it: its images would otherwise be left out without a word."""
    found: list[Path] = []

    def unreadable(err: OSError) -> None:
        raise DataError(f"{err.filename}: this folder of folder:{root or folder} cannot be read ({err.strerror}); "
                        f"its images would be left out. Make it readable (chmod -R u+rX) or move it out.")

    for here, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(here) / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(f for f in found if f.is_file())


def class_folders(path: str | Path) -> list[tuple[str, Path]]:
    """``(class name, folder)`` of a folder dataset: its sub-folders, sorted (hidden ones and links back to the
    folder, or into another class, skipped with a warning: they would count images twice), or ``("all", path)``
    when it has none. A missing or unreadable folder is a DataError naming it."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"folder:{path}: no such folder. Give the folder of images as --dataset folder:PATH.")
    try:
        entries = sorted(root.iterdir())
    except PermissionError:
        raise DataError(f"folder:{path}: the folder cannot be read (permission denied). Make it readable "
                        f"(chmod -R u+rX {path}) or copy the images somewhere readable.") from None
    subdirs: list[Path] = []
    for d in entries:
        if not d.is_dir() or d.name.startswith("."):
            continue
        target = d.resolve()
        if d.is_symlink() and (target == root.resolve() or root.resolve().is_relative_to(target)
                               or any(target == s.resolve() for s in subdirs)):
            log.warning("folder:%s: %s links to %s, which is the folder itself (or another class); skipped, so that "
                        "no image counts twice", path, d.name, target)
            continue
        subdirs.append(d)
    return [(d.name, d) for d in subdirs] if subdirs else [("all", root)]


def _folder_channels(path: str | Path, read: list[FolderImage], color: str, files: list[Path]) -> int:
    """The channels of a folder's dataset (``data.color``'s rule, :mod:`ganvae.data.colour`), said in one log
    line; a folder mixing grey and colour files under ``auto`` is a warning naming one file of each kind and the
    setting that decides (``files``: the files of ``read``, in order)."""
    n, n_colour = len(read), sum(r.colour for r in read)
    if color == "grey":
        log.info("folder:%s: %d images read as grey (1 channel), as data.color=grey asks", path, n)
        return 1
    if color == "rgb":
        log.info("folder:%s: %d images read as RGB (3 channels; %d colour, the grey ones repeated in each channel), "
                 "as data.color=rgb asks", path, n, n_colour)
        return 3
    if not n_colour:
        log.info("folder:%s: %d grey images: read as grey (1 channel; data.color=auto)", path, n)
        return 1
    if n_colour == n:
        log.info("folder:%s: %d colour images: read as RGB (3 channels; data.color=auto)", path, n)
    else:
        grey_file = next(f for f, r in zip(files, read) if not r.colour)
        colour_file = next(f for f, r in zip(files, read) if r.colour)
        log.warning("folder:%s mixes %d colour images (e.g. %s) and %d grey ones (e.g. %s): read as RGB (3 channels;"
                    " data.color=auto), the grey ones repeated in each channel. If the grey files do not belong, "
                    "remove them; --set data.color=rgb keeps this reading without this warning, data.color=grey "
                    "reads all as grey", path, n_colour, colour_file, n - n_colour, grey_file)
    return 3


def _pixels(image: FolderImage, channels: int) -> np.ndarray:
    """A folder image as ``(S, S)`` (1 channel) or ``(S, S, 3)`` (3 channels)."""
    if channels == 3 and image.rgb is not None:
        return image.rgb
    assert image.grey is not None  # read wherever the file has a grey mode or data.color is not rgb
    return image.grey if channels == 1 else np.repeat(image.grey[..., None], 3, axis=-1)


def load_folder(path: str | Path, image_size: int, invert: bool = False, test_fraction: float = 0.1,
                seed: int = 0, color: str = "auto") -> ImageData:
    """Any folder of images, resized to ``image_size``; sub-folders (sorted) are classes.

    Channels by ``color`` (``data.color``): ``auto`` keeps what the files are (all grey: 1 channel; any colour
    file: 3, the grey ones repeated in each), ``grey`` 1, ``rgb`` 3; transparency is composited on white
    (:mod:`ganvae.data.colour`). One log line says which. Images directly in ``path`` (no sub-folders) form a
    single class. A seeded ``test_fraction`` of the images is held out as the test split. A class folder that links
    back to the folder (or into another class) is skipped with a warning: it would hold the same images twice. The
    memory the images need is checked against the machine's before any is read.
    """
    from ganvae.common.memory import check_available_memory

    root = Path(path).expanduser()
    groups = class_folders(path)
    files_by_class = [(name, image_files(folder, root)) for name, folder in groups]
    for class_name, files in files_by_class:
        if not files:
            log.warning("folder:%s: class folder %s holds no images; it is not a class", path, class_name)
    files_by_class = [(name, files) for name, files in files_by_class if files]
    n = sum(len(files) for _, files in files_by_class)
    if not n:
        raise DataError(f"folder:{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    # per image, at the peak: its grey and colour readings (4 bytes a pixel), the stacked array and the tensor (3
    # and 3), and the train/test copies (3)
    check_available_memory(n * image_size * image_size * 13 + n * 2000, f"folder:{path} ({n:,} images at "
                           f"{image_size}x{image_size})", "Use a smaller data.image_size, or fewer images.")
    read: list[FolderImage] = []
    labels: list[int] = []
    for label, (_, files) in enumerate(files_by_class):
        read.extend(read_folder_image(f, image_size, color) for f in files)
        labels.extend([label] * len(files))
    channels = _folder_channels(path, read, color, [f for _, files in files_by_class for f in files])
    # (N, S, S) grey or (N, S, S, 3) colour (a grey file repeated in each channel) -> (N, C, S, S)
    x = np.stack([_pixels(r, channels) for r in read])
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    if invert:
        x = 255 - x
    y = np.asarray(labels)
    test_idx, train_idx = split_indices(len(x), test_fraction, seed)
    return image_data(f"folder:{root}", tuple(name for name, _ in files_by_class),
                      Splits(x[train_idx], y[train_idx], x[test_idx], y[test_idx]))


def with_color(data: ImageData, color: str) -> ImageData:
    """A named dataset's or an ``.npz`` file's images with the channels ``color`` (``data.color``) asks: ``auto``
    as they are, ``grey`` 1 channel (Pillow's luma), ``rgb`` 3 (grey repeated); a conversion is said in the log."""
    wanted = {"grey": 1, "rgb": 3}.get(color, data.channels)
    if wanted == data.channels:
        return data
    log.info("%s: %s images converted to %s, as data.color=%s asks", data.name,
             "colour" if data.channels == 3 else "grey", "grey (1 channel)" if wanted == 1 else "RGB (3 channels)",
             color)
    return replace(data, train_images=with_channels(data.train_images, wanted),
                   test_images=with_channels(data.test_images, wanted))


def check_named_size(source: DatasetSource, image_size: int) -> None:
    """Refuse an ``image_size`` that a named dataset does not come in (named datasets are not resized)."""
    if image_size not in source.image_sizes:
        one = len(source.image_sizes) == 1
        raise FieldDataError(
            "data.image_size", image_size,
            f"data.image_size is {image_size} but {source.name} images are {source.sizes_text()} pixels; set "
            f"data.image_size={source.image_size if one else 'one of ' + source.sizes_text()} (only folder datasets "
            f"are resized).", reason=f"{source.sizes_text()} for {source.name}", bound=source.image_sizes)


def load_npz(cfg: DataConfig) -> ImageData:
    """The ``npz:PATH`` dataset ``cfg`` names (:mod:`ganvae.data.npz`), at its own image size."""
    from ganvae.data.npz import npz_path, read_npz

    path = npz_path(cfg.dataset)
    splits, classes = read_npz(path, cfg.test_fraction)
    data = image_data(f"npz:{path}", classes, splits)
    if data.image_shape[-1] != cfg.image_size:
        raise FieldDataError("data.image_size", cfg.image_size,
                             f"data.image_size is {cfg.image_size} but the images of npz:{path} are "
                             f"{data.image_shape[-1]} pixels; set data.image_size={data.image_shape[-1]} (only folder "
                             f"datasets are resized).", reason=f"{data.image_shape[-1]} for this file",
                             bound=data.image_shape[-1])
    return data


def load_dataset(cfg: DataConfig, cache_dir: Path | None = None) -> ImageData:
    """Load the dataset a :class:`DataConfig` names (a named dataset, ``folder:PATH`` or ``npz:PATH``), with the
    channels ``data.color`` asks; select its classes; check its image size."""
    from ganvae.data.npz import is_npz

    if cfg.dataset.startswith("folder:"):
        data = load_folder(cfg.dataset.removeprefix("folder:"), cfg.image_size, cfg.invert, cfg.test_fraction,
                           color=cfg.color)
    else:
        if is_npz(cfg.dataset):
            data = load_npz(cfg)
        else:
            from ganvae.data.formats import reader

            source = get_source(cfg.dataset)
            check_named_size(source, cfg.image_size)
            if source.offline and cfg.data_dir is not None:
                log.warning("%s ships with ganvae: --data-dir %s is not used for it", source.name, cfg.data_dir)
            splits = reader(source).read(source, cfg.data_dir, cfg.download, cache_dir, cfg.image_size)
            data = image_data(source.name, source.classes, splits)
            if data.image_shape[-1] != cfg.image_size:  # a --data-dir holding other files under the right names
                raise DataError(f"{cfg.data_dir}: its {source.name} files hold {data.image_shape[-1]}-pixel images, "
                                f"not {source.name}'s {cfg.image_size}; put {source.name}'s own files there.")
        if cfg.invert:
            data = replace(data, train_images=255 - data.train_images, test_images=255 - data.test_images)
        data = with_color(data, cfg.color)
    if cfg.classes:
        data = data.select_classes(cfg.classes)
        if len(data) == 0:
            raise DataError(f"data.classes={cfg.classes}: no training images of these classes in {data.name}.")
    return data


def stand_in_config(cfg: DataConfig) -> tuple[DataConfig, str | None]:
    """``cfg``, or, where the named dataset it asks for is not on this machine (neither in ``cfg.data_dir`` nor in
    the cache) and has a packaged stand-in (``mnist-25k`` for MNIST), the stand-in's config and the line that says
    so (for the log and the protocol). Never downloads. Callers use it only where their user named neither a
    dataset nor a folder: one asked for is loaded as asked, and its error names what is missing."""
    source = SOURCES.get(cfg.dataset)
    if source is None or source.offline_stand_in is None:
        return cfg, None
    try:
        resolve_files(source, data_dir=cfg.data_dir, allow_download=False)
    except GanvaeError:
        line = (f"{cfg.dataset} is not on this machine: using the packaged {source.offline_stand_in} (its test "
                f"split, a subset of the same data) instead of a download; pass --data-dir DIR (or data_dir=) for "
                f"the full {cfg.dataset}")
        log.info("%s", line)
        return replace(cfg, dataset=source.offline_stand_in, data_dir=None), line
    return cfg, None


# ----------------------------------------------------------------------------- batches


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The order of epoch ``epoch``: a permutation that depends only on ``(seed, epoch)``.

    Deriving it from the pair (rather than from a running generator) makes a resumed run,
    or a rank of a distributed run, draw exactly the batches an uninterrupted run draws.
    """
    g = torch.Generator(device="cpu")
    g.manual_seed(seeds.per_counter(seed, epoch))
    return torch.randperm(n, generator=g).to(device)


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Full global batches per epoch (the incomplete last batch is dropped, as GAN training usually does)."""
    return n // (batch_size * world_size)


def check_batch_fits(n: int, batch_size: int, world_size: int = 1) -> int:
    """The global batch (``batch_size`` per rank), refused when the ``n`` training images cannot fill one; the
    trainer asks before it creates anything, :func:`iter_batch_indices` again as it starts."""
    global_batch = batch_size * world_size
    if n < global_batch:
        raise FieldDataError(
            "train.batch_size", global_batch, f"train.batch_size={global_batch} is larger than the training set ({n} "
            f"images); lower it, e.g. {{given:train.batch_size#example}}.", reason=f"at most {n}", bound=n,
            values={"train.batch_size#example": max(1, n // 2)})
    return global_batch


def iter_batch_indices(
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    start_step: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """Yield the indices ``(b,)`` of each batch of one epoch of ``n`` images, starting at ``start_step``.

    Under distributed training ``batch_size`` is the per-rank batch: global batch ``s`` is
    ``perm[s*B*W : (s+1)*B*W]`` and rank ``r`` takes its ``r``-th slice of ``B`` images.
    """
    global_batch = check_batch_fits(n, batch_size, world_size)
    perm = epoch_permutation(n, seed, epoch, device)
    for step in range(start_step, n // global_batch):
        start = step * global_batch + rank * batch_size
        yield perm[start : start + batch_size]
