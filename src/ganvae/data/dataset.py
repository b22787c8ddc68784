"""In-memory image datasets and the seeded batch stream the trainer consumes.

The whole training split lives in memory as one ``uint8`` tensor ``(N, 1, H, W)`` on the
training device. A batch is an index into it (from a seeded permutation) followed by a
scale to the model's range: no per-sample Python work, no DataLoader workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ganvae.common import seeds
from ganvae.config import DataConfig
from ganvae.data.idx import check_pair, read_idx, read_keras_npz
from ganvae.data.sources import ROLES, SOURCES, DatasetSource, get_source, resolve_files
from ganvae.errors import DataError, FieldDataError, GanvaeError

log = logging.getLogger(__name__)

@dataclass
class ImageData:
    """A dataset held in memory.

    Attributes:
        name: the dataset's name (``mnist``, ``folder:/path``...).
        classes: class names, indexed by label.
        train_images: ``(N, 1, H, W)`` uint8.
        train_labels: ``(N,)`` int64.
        test_images: ``(M, 1, H, W)`` uint8.
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
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

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
    # (N, H, W) uint8 -> (N, 1, H, W); copy so the tensor owns writable memory
    return torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1), torch.from_numpy(
        np.asarray(labels, dtype=np.int64)
    )


def load_idx_source(source: DatasetSource, data_dir=None, allow_download=True, cache_dir=None) -> ImageData:
    """Load the four IDX files of a named dataset, validating each and each images/labels pair."""
    paths = resolve_files(source, data_dir=data_dir, allow_download=allow_download, cache_dir=cache_dir)
    if paths["train_images"].suffix == ".npz":  # Keras' single file
        arrays = read_keras_npz(paths["train_images"], source.num_classes)
    else:
        arrays = {role: read_idx(paths[role], source.files[role].kind, source.num_classes) for role in ROLES}
    for split in ("train", "test"):
        check_pair(arrays[f"{split}_images"], arrays[f"{split}_labels"],
                   paths[f"{split}_images"], paths[f"{split}_labels"])
    train_x, train_y = _as_tensors(arrays["train_images"], arrays["train_labels"])
    test_x, test_y = _as_tensors(arrays["test_images"], arrays["test_labels"])
    return ImageData(source.name, source.classes, train_x, train_y, test_x, test_y)


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


# Pillow's modes of a 16-bit grey file (a 16-bit PNG opens as I;16, or as I in older Pillow):
# convert("L") clips these at 255 instead of scaling them, so they are scaled by scale_16bit instead
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def scale_16bit(levels: np.ndarray) -> np.ndarray:
    """16-bit grey levels 0-65535 -> uint8 0-255 of the same shape: ``value * 255 / 65535``, rounded (half up).
    The inverse of how a 16-bit file stores an 8-bit level (``v * 257``), so 8-bit content comes back exactly.
    The caller checks the range (values outside 0-65535 would wrap)."""
    wide = levels.astype(np.uint32)  # 65535 * 255 + 32767 < 2**32
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


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


def read_grey_images(files: list[Path], image_size: int) -> list[np.ndarray]:
    """Each file as a ``(image_size, image_size)`` uint8 grey image (converted, resized bilinearly if needed).
    16-bit grey images are scaled to 8 bits (:func:`scale_16bit`), not clipped. An image over
    :data:`MAX_IMAGE_PIXELS` is refused, by its header, before it is decoded."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    out = []
    for f in files:
        try:
            with warnings.catch_warnings():  # Pillow's own bomb warning: replaced by the size check below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im_file = Image.open(f)
            with im_file as im:
                _check_image_size(f, *im.size)
                im = grey_8bit(im, f)
                if im.size != (image_size, image_size):
                    im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
                out.append(np.asarray(im, dtype=np.uint8))
        except Image.DecompressionBombError as err:  # far over Pillow's limit: refused at open
            raise DataError(f"{f}: {err} Shrink the image (e.g. `python -c \"from PIL import Image; "
                            f"im = Image.open('{f.name}'); im.thumbnail((1024, 1024)); im.save('{f.name}')\"`) or "
                            f"remove it from the folder.") from None
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{f}: not a readable image ({err}). Remove it from the folder or replace it.") from None
    return out


def _check_image_size(f: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{f}: {width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,} a folder image may have "
                        f"(it is resized to a few dozen pixels anyway; decoding it would take "
                        f"{width * height * 3 / 2**30:.1f} GB). Shrink it to at most 4096x4096, or remove it.")


def image_files(folder: Path, root: Path | None = None) -> list[Path]:
    """The image files under ``folder`` (recursively, following no links to folders), sorted by path. A folder
    that cannot be read is an error naming it: its images would otherwise be left out without a word."""
    found = []

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


def load_folder(path: str | Path, image_size: int, invert: bool = False, test_fraction: float = 0.1,
                seed: int = 0) -> ImageData:
    """Any folder of images: grey, resized to ``image_size``; sub-folders (sorted) are classes.

    Images directly in ``path`` (no sub-folders) form a single class. A seeded
    ``test_fraction`` of the images is held out as the test split. A class folder that links back to the
    folder (or into another class) is skipped with a warning: it would hold the same images twice.
    """
    root = Path(path).expanduser()
    groups = class_folders(path)
    images, labels, classes = [], [], []
    for label, (class_name, folder) in enumerate(groups):
        files = image_files(folder, root)
        if not files:
            log.warning("folder:%s: class folder %s holds no images; it is not a class", path, class_name)
            continue
        classes.append(class_name)
        images.extend(read_grey_images(files, image_size))
        labels.extend([len(classes) - 1] * len(files))
    if not images:
        raise DataError(f"folder:{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    x = np.stack(images)
    if invert:
        x = 255 - x
    y = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction)) if len(x) > 1 else 0
    test_idx, train_idx = order[:n_test], order[n_test:]
    train_x, train_y = _as_tensors(x[train_idx], y[train_idx])
    test_x, test_y = _as_tensors(x[test_idx], y[test_idx])
    return ImageData(f"folder:{root}", tuple(classes), train_x, train_y, test_x, test_y)


def load_dataset(cfg: DataConfig, cache_dir: Path | None = None) -> ImageData:
    """Load the dataset a :class:`DataConfig` names, select its classes, check its image size."""
    if cfg.dataset.startswith("folder:"):
        data = load_folder(cfg.dataset.removeprefix("folder:"), cfg.image_size, cfg.invert, cfg.test_fraction)
    else:
        source = get_source(cfg.dataset)
        if source.offline:
            if cfg.data_dir is not None:
                log.warning("%s ships with ganvae: --data-dir %s is not used for it", source.name, cfg.data_dir)
            data = load_offline(source)
        else:
            data = load_idx_source(source, data_dir=cfg.data_dir, allow_download=cfg.download, cache_dir=cache_dir)
        if cfg.invert:
            data = replace(data, train_images=255 - data.train_images, test_images=255 - data.test_images)
        if data.image_shape[-1] != cfg.image_size:
            raise DataError(
                f"data.image_size is {cfg.image_size} but {cfg.dataset} images are {data.image_shape[-1]} pixels; "
                f"set data.image_size={data.image_shape[-1]} (only folder datasets are resized)."
            )
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
