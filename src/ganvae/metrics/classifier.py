"""Feature networks: small CNNs whose penultimate layer gives the features that the Frechet distance, KID,
precision/recall and density/coverage are computed on.

Inception features fit MNIST badly and cannot be downloaded here; a distance on a classifier of the dataset is the
field's substitute (Binkowski et al. 2018 used a LeNet's penultimate layer). Two architectures:

* ``mnist-cnn`` (:class:`MNISTClassifier`): the shipped MNIST classifier's, for ``(1, 28, 28)`` images only. Its
  weights ship inside the package (``ganvae/weights``) with a version and a SHA-256 checksum, so every user
  computes the same numbers (the zoo's cards and the golden values are on it).
* ``conv-gap`` (:class:`ConvClassifier`): three blocks of 3x3 convolutions with batch norm, then global average
  pooling, for any labelled dataset with 1 or 3 channels at 28, 32 or 64 pixels (the same weights' shapes at every
  size; a network is still used only at the size it was trained at).

What a network learns is its objective (:mod:`ganvae.metrics.objectives`): the data's classes, or, for data
without classes, the rotation of its own images (RotNet; the choice and its limits are documented there).
``ganvae classifier train --dataset NAME`` trains one reproducibly (seeded) and writes a ``.safetensors`` file
(no pickle) whose metadata says what it is (:class:`ClassifierCard`): the dataset it was trained on, the image
shape, the classes, the objective, the held-out accuracy and the command that trained it. :func:`load_classifier`
refuses a network of another dataset or another image shape, naming both and how to train the right one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.common.files import default_cache_dir
from ganvae.common.pixels import uint8_to_unit
from ganvae.errors import FieldConfigError, FieldDataError, GanvaeError
from ganvae.metrics.objectives import CLASSES, OBJECTIVES, ROTATION, WEAK_ROTATION_ACCURACY, FeatureObjective, augment

log = logging.getLogger(__name__)

FEATURE_DIM = 128
# datasets that share a classifier: mnist-5k and mnist-25k are subsets of MNIST (any other dataset has its own)
CLASSIFIER_FOR = {"mnist": "mnist", "mnist-5k": "mnist", "mnist-25k": "mnist", "fashion-mnist": "fashion-mnist",
                  "kmnist": "kmnist"}
MNIST_SHAPE = (1, 28, 28)  # the image shape of the mnist-cnn architecture (and of a weights file that names none)
FORMAT = "ganvae-feature-network/2"  # the metadata's layout; a file without "format" is version 1 (mnist-cnn)
COLOUR_WEIGHT = 1.0  # weight of the colour-statistics loss against the cross-entropy (0.1 left colour casts unseen)


class MNISTClassifier(nn.Module):
    """Two conv blocks (3x3 convs, max-pool) and a 128-unit layer whose ReLU output is the feature."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 12, 12)
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
        )
        self.fc = nn.Linear(64 * 4 * 4, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 28, 28)`` in [0, 1] -> ``(B, 128)`` penultimate features."""
        return F.relu(self.fc(self.convs((x - 0.1307) / 0.3081).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class ConvClassifier(nn.Module):
    """Three blocks of two 3x3 convolutions (batch norm, ReLU), max-pooling between them, global average pooling
    and a 128-unit layer whose ReLU output is the feature. Global pooling makes one design serve 28, 32 and 64
    pixels; at 48 pixels and more the first block is followed by one more pooling, so the last block sees 7-8
    pixels at every size (28 -> 7, 32 -> 8, 64 -> 8).

    Colour networks also learn to predict each image's per-channel mean and standard deviation from the feature
    (``colour_head``, an auxiliary loss of weight :data:`COLOUR_WEIGHT` while training): a digit classifier trained
    on colour digits otherwise learns to ignore colour. Measured on the colour digits (6,000 images, 2 epochs, the
    degradation check of :mod:`ganvae.metrics.validation`): without the head a 10% colour cast scored 0.78x the
    real-vs-real Frechet distance (below the floor) and a 30% one 3.0x; with it, 4.1x and 19.7x (at weight 0.1:
    0.80x and 5.0x). The head costs some accuracy early in training (0.63 against 0.86 after those 2 epochs).

    Args:
        in_channels: 1 (grey) or 3 (RGB).
        image_size: the side of the (square) images it takes.
        num_outputs: the head's size (the classes, or 4 rotations).
        width: channels of the first block (the next two have 2x and 4x).
        colour_head: add the colour-statistics head (default: for 3 channels).
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_outputs: int = 10, width: int = 32,
                 colour_head: bool | None = None):
        super().__init__()
        # per-channel mean and std of the training pixels, set before training and saved with the weights
        self.register_buffer("pixel_mean", torch.zeros(in_channels))
        self.register_buffer("pixel_std", torch.ones(in_channels))

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        extra_pool = nn.MaxPool2d(2) if image_size >= 48 else nn.Identity()  # a place either way: the same keys
        self.convs = nn.Sequential(
            *block(in_channels, width), nn.MaxPool2d(2), extra_pool,  # (B, w, S/2, S/2), or S/4 from 48 pixels
            *block(width, 2 * width), nn.MaxPool2d(2),  # (B, 2w, 7 or 8, 7 or 8)
            *block(2 * width, 4 * width),  # (B, 4w, 7 or 8, 7 or 8)
        )
        self.fc = nn.Linear(4 * width, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_outputs)
        use_colour = in_channels == 3 if colour_head is None else colour_head
        # the per-channel mean and std of the (normalised) image, from the feature: (B, 2C)
        self.colour_head = nn.Linear(FEATURE_DIM, 2 * in_channels) if use_colour else None

    def set_pixel_statistics(self, images: torch.Tensor) -> None:
        """Per-channel mean and std of uint8 ``images`` ``(N, C, H, W)`` (the training split), in [0, 1]."""
        x = images.double().div(255.0).transpose(0, 1).flatten(1)  # (C, N*H*W)
        self.pixel_mean.copy_(x.mean(1).float())
        self.pixel_std.copy_(x.std(1).clamp_min(1e-3).float())  # a blank channel must not divide by zero

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S, S)`` in [0, 1] -> ``(B, 128)`` penultimate features."""
        x = (x - self.pixel_mean.view(1, -1, 1, 1)) / self.pixel_std.view(1, -1, 1, 1)
        return F.relu(self.fc(self.convs(x).mean((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the head on ``targets``, plus, with the colour head, the mean squared error of its
        prediction of each image's per-channel mean and std (normalised pixels; the two losses weigh the same)."""
        f = self.features(x)
        loss = F.cross_entropy(self.head(self.dropout(f)), targets)
        if self.colour_head is None:
            return loss
        z = (x - self.pixel_mean.view(1, -1, 1, 1)) / self.pixel_std.view(1, -1, 1, 1)
        stats = torch.cat([z.mean((2, 3)), z.std((2, 3))], 1)  # (B, 2C)
        return loss + COLOUR_WEIGHT * F.mse_loss(self.colour_head(f), stats)


@dataclass(frozen=True)
class ClassifierCard:
    """What a feature network's weights file says about itself (its safetensors metadata, strings only).

    Attributes:
        dataset: the dataset it was trained on (``mnist`` for MNIST's subsets too; ``folder:/absolute/path``).
        image_shape: ``(C, H, W)`` of the images it takes.
        num_outputs: its head's size (the classes; 4 for rotations).
        objective: what it learned (a key of :data:`ganvae.metrics.objectives.OBJECTIVES`).
        architecture: a key of :data:`ARCHITECTURES`.
        width: the first block's channels (``conv-gap``).
        colour_head: whether it has the colour-statistics head (``conv-gap``; colour networks).
        classes: the class names of the data (None where the file does not say).
        version, test_accuracy: its version, its accuracy on the dataset's test split (of its objective).
        command: the command that trained it.
    """

    dataset: str
    image_shape: tuple[int, int, int] = MNIST_SHAPE
    num_outputs: int = 10
    objective: str = CLASSES.name
    architecture: str = "mnist-cnn"
    width: int = 32
    colour_head: bool = False
    classes: tuple[str, ...] | None = None
    version: str = "1"
    test_accuracy: float | None = None
    command: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # the training's details (epochs, seed, torch version...)

    def metadata(self) -> dict[str, str]:
        """The card as safetensors metadata (strings only)."""
        meta = {"format": FORMAT, "dataset": self.dataset, "image_shape": json.dumps(list(self.image_shape)),
                "num_classes": str(self.num_outputs), "objective": self.objective, "architecture": self.architecture,
                "width": str(self.width), "colour_head": str(int(self.colour_head)), "version": self.version,
                "feature_dim": str(FEATURE_DIM)}
        if self.classes is not None:
            meta["classes"] = json.dumps(list(self.classes))
        if self.test_accuracy is not None:
            meta["test_accuracy"] = f"{self.test_accuracy:.4f}"
        if self.command is not None:
            meta["command"] = self.command
        return {**self.extra, **meta}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], file: Path) -> ClassifierCard:
        """Read a file's metadata; a file from before the format (the shipped MNIST classifier's) is ``mnist-cnn``
        on ``(1, 28, 28)``. Metadata that does not parse is a :class:`~ganvae.errors.GanvaeError` naming the file."""
        def bad(what: str) -> GanvaeError:
            return GanvaeError(f"{file}: its metadata's {what} is not what `ganvae classifier train` writes; the file "
                               f"is damaged or not a ganvae feature network. Train one with `ganvae classifier train "
                               f"--dataset NAME`.")

        if "dataset" not in meta:
            raise bad("'dataset' (the data it was trained on) is missing: it")
        try:
            shape = tuple(int(v) for v in json.loads(meta["image_shape"])) if "image_shape" in meta else MNIST_SHAPE
            classes = tuple(str(c) for c in json.loads(meta["classes"])) if "classes" in meta else None
            card = cls(dataset=meta["dataset"], image_shape=shape,  # type: ignore[arg-type]  # length checked below
                       num_outputs=int(meta.get("num_classes", 10)), objective=meta.get("objective", CLASSES.name),
                       architecture=meta.get("architecture", "mnist-cnn"), width=int(meta.get("width", 32)),
                       colour_head=meta.get("colour_head", "0") == "1",
                       classes=classes, version=meta.get("version", "?"),
                       test_accuracy=float(meta["test_accuracy"]) if "test_accuracy" in meta else None,
                       command=meta.get("command") or meta.get("trained_with"))
        except (ValueError, TypeError):
            raise bad("image shape, classes, class count, width or accuracy") from None
        if len(card.image_shape) != 3 or card.image_shape[0] not in (1, 3) or not 1 <= card.num_outputs <= 100_000:
            raise bad(f"image shape {card.image_shape} or class count {card.num_outputs}")
        if card.objective not in OBJECTIVES:
            raise bad(f"objective {card.objective!r}")
        if card.architecture not in ARCHITECTURES:
            raise bad(f"architecture {card.architecture!r}")
        return card


@dataclass(frozen=True)
class Architecture:
    """A feature network design: how to build it from a card, and which image shapes it takes."""

    name: str
    build: Callable[[ClassifierCard], MNISTClassifier | ConvClassifier]
    takes: Callable[[tuple[int, int, int]], bool]
    shapes: str  # the shapes it takes, in words


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("mnist-cnn", lambda c: MNISTClassifier(c.num_outputs), lambda s: tuple(s) == MNIST_SHAPE,
                 "(1, 28, 28) only"),
    Architecture("conv-gap", lambda c: ConvClassifier(c.image_shape[0], c.image_shape[1], c.num_outputs, c.width,
                                                      c.colour_head),
                 lambda s: s[0] in (1, 3) and s[1] == s[2] and s[1] >= 8, "1 or 3 channels, square, 8 pixels or more"),
)}


def default_architecture(objective: FeatureObjective, image_shape: tuple[int, int, int]) -> str:
    """``mnist-cnn`` for a classifier of ``(1, 28, 28)`` images (so ``ganvae classifier train --dataset mnist``
    still reproduces the shipped one), ``conv-gap`` for everything else."""
    return "mnist-cnn" if objective is CLASSES and tuple(image_shape) == MNIST_SHAPE else "conv-gap"


def image_shape_of(data) -> tuple[int, int, int]:
    """``(C, H, W)`` of an :class:`~ganvae.data.dataset.ImageData`'s images."""
    c, h, w = (int(s) for s in data.train_images.shape[1:])
    return c, h, w


def shape_text(shape: tuple[int, ...]) -> str:
    """``(3, 32, 32)`` -> ``3x32x32``."""
    return "x".join(str(s) for s in shape)


@dataclass
class FeatureNetwork:
    """A loaded feature network and its identity (stored with every metric)."""

    model: MNISTClassifier | ConvClassifier
    dataset: str
    version: str
    sha256: str
    test_accuracy: float | None
    image_shape: tuple[int, int, int] = MNIST_SHAPE
    architecture: str = "mnist-cnn"
    objective: FeatureObjective = CLASSES
    command: str | None = None
    path: str | None = None  # the weights file it was read from

    @property
    def name(self) -> str:
        if self.architecture == "mnist-cnn" and self.objective is CLASSES:  # the shipped classifier's name, as before
            return f"ganvae-{self.dataset}-cnn-{self.version}"
        kind = "classifier" if self.objective is CLASSES else "rotnet"
        return f"ganvae-{cache_slug(self.dataset)}-{shape_text(self.image_shape)}-{kind}-{self.version}"

    def describe(self) -> dict[str, Any]:
        """The network's identity for a protocol (``metrics.json``): name, version, SHA-256, accuracy, the dataset it
        was trained on, its image shape and objective, and the command that trained it."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "test_accuracy": self.test_accuracy,
                "trained_on": self.dataset, "image_shape": list(self.image_shape), "objective": self.objective.name,
                "features": f"penultimate layer ({FEATURE_DIM}) of {self.objective.words}",
                "architecture": self.architecture, "training_command": self.command}

    def check_images(self, shape: tuple[int, ...], what: str = "images") -> None:
        """Refuse images ``(N, C, H, W)`` of another ``(C, H, W)`` than the network was trained on."""
        if len(shape) == 4 and tuple(shape[1:]) == tuple(self.image_shape):
            return
        got = shape_text(shape[1:]) if len(shape) == 4 else str(tuple(shape))
        raise GanvaeError(
            f"{what} of shape {got}, but the feature network {self.name} ({self.path or 'shipped'}) was trained on "
            f"{self.dataset}'s {shape_text(self.image_shape)} images: its features of other images mean nothing. "
            f"Train one for these images: `ganvae classifier train --dataset NAME --image-size {got.split('x')[-1]}`"
            f" (and give it with --classifier FILE).")

    def to(self, device: torch.device | str) -> FeatureNetwork:
        """The network on ``device`` (moved in place); returns itself."""
        self.model.to(device)
        return self

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` in [0, 1] -> features ``(N, 128)`` and the head's probabilities ``(N, K)`` (float64,
        CPU): the classes for a classifier, the four rotations for a rotation predictor."""
        self.check_images(tuple(images.shape))
        device = next(self.model.parameters()).device
        feats, probs = [], []
        for chunk in images.split(batch_size):
            f = self.model.features(chunk.to(device, torch.float32))
            feats.append(f.double().cpu())
            probs.append(F.softmax(self.model.head(f), dim=1).double().cpu())
        return torch.cat(feats), torch.cat(probs)


def _shipped_manifest() -> dict:
    try:
        text = resources.files("ganvae").joinpath("weights/classifiers.json").read_text()
    except FileNotFoundError:
        return {}
    return json.loads(text)


def shipped_entries(dataset: str) -> list[dict]:
    """The manifest's entries of the networks ganvae ships for ``dataset`` (a classifier dataset), each with its
    ``image_shape`` (``(1, 28, 28)`` where the entry names none): MNIST's, and the colour digits' at 32 pixels."""
    out = []
    for key, entry in _shipped_manifest().items():
        if entry.get("dataset", key) == dataset:
            out.append({**entry, "image_shape": tuple(entry.get("image_shape", MNIST_SHAPE))})
    return out


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def classifier_dataset(dataset: str) -> str:
    """The dataset whose feature network serves ``dataset``: MNIST's for its subsets (``mnist-5k``), a folder by its
    absolute path (``folder:/data/faces``), any other dataset its own."""
    if dataset.startswith("folder:"):
        return "folder:" + str(Path(dataset.removeprefix("folder:")).expanduser().resolve())
    return CLASSIFIER_FOR.get(dataset, dataset)


def cache_slug(dataset: str) -> str:
    """A file-name-safe name of a (classifier) dataset: itself for named datasets, ``folder-NAME-HASH`` for a
    folder (its last part and a hash of its absolute path)."""
    if dataset.startswith("folder:"):
        digest = hashlib.blake2b(dataset.encode(), digest_size=4).hexdigest()
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(dataset.removeprefix("folder:")).name) or "folder"
        return f"folder-{name}-{digest}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset)


def cache_file(dataset: str, image_shape: tuple[int, int, int]) -> Path:
    """Where ``ganvae classifier train`` puts the network of ``dataset`` (a classifier dataset) at ``image_shape``
    by default: ``<cache>/classifiers/NAME.safetensors`` for ``(1, 28, 28)``, ``NAME-CxHxW.safetensors`` else."""
    suffix = "" if tuple(image_shape) == MNIST_SHAPE else f"-{shape_text(image_shape)}"
    return default_cache_dir() / "classifiers" / f"{cache_slug(dataset)}{suffix}.safetensors"


def classifier_candidates(dataset: str, image_shape: tuple[int, int, int] | None = None
                          ) -> list[tuple[Path, str | None]]:
    """Where a feature network for ``dataset`` (a classifier dataset) may be: the package's shipped weights (with
    the manifest's checksum), then the user's cache (trained with ``ganvae classifier train``): the file of
    ``image_shape``, or, shape unknown, every size's."""
    out: list[tuple[Path, str | None]] = [
        (Path(str(resources.files("ganvae").joinpath("weights", entry["file"]))), entry["sha256"])
        for entry in shipped_entries(dataset) if image_shape is None or tuple(image_shape) == entry["image_shape"]]
    if image_shape is not None:
        return [*out, (cache_file(dataset, image_shape), None)]
    out.append((cache_file(dataset, MNIST_SHAPE), None))
    folder = default_cache_dir() / "classifiers"
    out.extend((f, None) for f in sorted(folder.glob(f"{cache_slug(dataset)}-*x*x*.safetensors")))
    return out


def _read_weights(file: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors' own error type for damaged files, OSError for unreadable ones
        raise GanvaeError(
            f"{file}: not a readable safetensors classifier ({err}); the file is truncated, damaged or of another "
            f"format. Give the .safetensors file that `ganvae classifier train` wrote, or drop --classifier."
        ) from None
    return meta, tensors


def train_command(dataset: str) -> str:
    """The command that trains the feature network of ``dataset``."""
    return f"ganvae classifier train --dataset {shlex.quote(dataset)}"


def load_classifier(dataset: str, device: torch.device | str = "cpu", path: str | Path | None = None,
                    image_shape: tuple[int, ...] | None = None) -> FeatureNetwork:
    """The classifier of ``dataset``'s classes (``mnist-5k`` uses MNIST's), for whatever needs classes (class
    balance, conditional accuracy, the report's samples by class): :func:`load_feature_network`, refusing a rotation
    predictor."""
    fnet = load_feature_network(dataset, device, path, image_shape)
    if not fnet.objective.has_classes:
        raise GanvaeError(f"{fnet.path}: the feature network of {fnet.dataset} is {fnet.objective.words}, not a "
                          f"classifier; class-based metrics need one. Give the images classes (sub-folders) and "
                          f"train one: `{train_command(dataset)} --objective classes`.")
    return fnet


def load_feature_network(dataset: str, device: torch.device | str = "cpu", path: str | Path | None = None,
                         image_shape: tuple[int, ...] | None = None) -> FeatureNetwork:
    """The feature network of ``dataset`` (``mnist-5k`` uses MNIST's): the shipped one, the one in the cache (a
    classifier, or a rotation predictor for data without classes), or the file ``path``. Refuses a network trained
    on another dataset or (``image_shape`` given) on other images, and a shipped file whose checksum does not match,
    each with the fix.

    Args:
        dataset: the data the metrics are computed on (its name, ``folder:PATH`` for a folder).
        path: a weights file (``--classifier FILE``) instead of the default places.
        image_shape: ``(C, H, W)`` of the data; default: not checked here (:meth:`FeatureNetwork.extract` refuses
            images of another shape).
    """
    base = classifier_dataset(dataset)
    shape: tuple[int, int, int] | None = None
    if image_shape is not None:
        c, h, w = (int(s) for s in image_shape)
        shape = (c, h, w)
    candidates = [(Path(path), None)] if path is not None else classifier_candidates(base, shape)
    for file, expected_sha in candidates:
        if not file.is_file():
            if path is not None:
                raise FieldDataError("classifier", str(path), f"{{given}}: no such file. Give the .safetensors file "
                                     f"that `{train_command(dataset)} --out FILE` wrote.", reason="an existing file")
            continue
        digest = sha256_file(file)
        if expected_sha is not None and digest != expected_sha:
            raise GanvaeError(
                f"{file}: checksum {digest[:16]}... does not match the shipped manifest ({expected_sha[:16]}...); "
                f"the installed weights are damaged. Reinstall ganvae."
            )
        meta, tensors = _read_weights(file)
        card = ClassifierCard.from_metadata(meta, file) if meta.get("dataset") or path is not None \
            else ClassifierCard(dataset=base)  # a bare file in the cache: named by where it is
        if expected_sha is not None and card.command is None:  # the shipped file: its command is in the manifest
            entry = next(e for e in shipped_entries(base) if e["sha256"] == expected_sha)
            card = replace(card, command=entry.get("trained_with"))
        if card.dataset != base:
            if path is not None and shipped_entries(base):
                fix = f"Leave out {{field}}: ganvae ships {base}'s classifier, which serves {dataset}."
            else:
                fix = (f"Train one for this data with `{train_command(dataset)} --out FILE`"
                       + (" and give that FILE as {field}" if path is not None else "") + ": a network's features "
                       "are only meaningful on the data it learned.")
            where = "{given}" if path is not None else str(file)
            message = (f"{where}: a feature network trained on {card.dataset!r}, but the data is {dataset!r}"
                       f"{f' (whose network is {base!r})' if base != dataset else ''}. {fix}")
            if path is not None:
                raise FieldDataError("classifier", str(path), message, reason=f"a network trained on {base!r}")
            raise GanvaeError(message)
        if shape is not None and card.image_shape != shape:
            message = (f"{'{given}' if path is not None else file}: a feature network of {card.dataset}'s "
                       f"{shape_text(card.image_shape)} images, but the data's are {shape_text(shape)}. Train one at "
                       f"this size: `{train_command(dataset)} --image-size {shape[-1]} --out FILE`"
                       + (" and give that FILE as {field}." if path is not None else "."))
            if path is not None:
                raise FieldDataError("classifier", str(path), message,
                                     reason=f"a network of {shape_text(shape)} images")
            raise GanvaeError(message)
        return _build(card, tensors, file, digest).to(device)
    where = ", ".join(str(f) for f, _ in candidates)
    at = "" if shape is None else f" at {shape_text(shape)}"
    size = "" if shape is None or shape == MNIST_SHAPE else f" --image-size {shape[-1]}"
    shipped = [e["image_shape"] for e in shipped_entries(base)]
    also = "".join(f" ganvae ships {base}'s network at {shape_text(s)}: train at that size "
                   f"(--set data.image_size={s[-1]}) to use it." for s in shipped)
    raise GanvaeError(
        f"no feature network for {base}{at} found (looked at {where}). Train it with `{train_command(dataset)}{size}`"
        f" (add --data-dir DIR for local files), or give a trained one with --classifier FILE.{also}"
    )


def _build(card: ClassifierCard, tensors: dict[str, torch.Tensor], file: Path, digest: str) -> FeatureNetwork:
    arch = ARCHITECTURES[card.architecture]
    if not arch.takes(card.image_shape):
        raise GanvaeError(f"{file}: architecture {arch.name} takes {arch.shapes}, but the file says "
                          f"{shape_text(card.image_shape)} images; the file is damaged.")
    with torch.random.fork_rng(devices=[]):  # the throwaway random init must not move the caller's stream
        model = arch.build(card)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        raise GanvaeError(f"{file}: its weights are not those of ganvae's feature classifier "
                          f"({str(err).splitlines()[0]}). "
                          "Give a file that `ganvae classifier train` wrote.") from None
    model.eval()
    return FeatureNetwork(model, card.dataset, card.version, digest, card.test_accuracy, card.image_shape,
                          card.architecture, OBJECTIVES[card.objective], card.command, str(file))


@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of uint8 ``images`` a classifier names correctly."""
    return CLASSES.accuracy(model, images, labels)


def fit_feature_network(data, objective: FeatureObjective = CLASSES, architecture: str | None = None,
                        epochs: int = 6, seed: int = 0, batch_size: int = 128, width: int = 32,
                        max_steps: int | None = None) -> tuple[MNISTClassifier | ConvClassifier, float]:
    """Train a feature network on ``data`` (an :class:`~ganvae.data.dataset.ImageData`, uint8 ``(N, C, H, W)``)
    reproducibly: seeded weights and data order; Adam with a one-cycle schedule; random shifts of up to 2 pixels
    (4 at 64) as augmentation. For ``mnist-cnn`` the same steps, draws and numbers as the shipped classifier's
    training.

    Args:
        objective: the classes (a classifier) or the rotations (:mod:`ganvae.metrics.objectives`).
        architecture: a key of :data:`ARCHITECTURES`; default :func:`default_architecture`.
        max_steps: stop after this many steps in all (tests); default every batch of every epoch.

    Returns the network (in eval mode) and its accuracy on ``data``'s test split (of the objective).
    """
    from ganvae.common.device import seed_everything

    shape = image_shape_of(data)
    arch = ARCHITECTURES[architecture or default_architecture(objective, shape)]
    if not arch.takes(shape):
        raise FieldConfigError("architecture", arch.name, f"{{given}} takes {arch.shapes} images; {data.name}'s are "
                               f"{shape_text(shape)}. Use {{given:architecture#example}}.", reason=arch.shapes,
                               values={"architecture#example": "conv-gap"})
    if len(data) < batch_size:
        raise FieldConfigError("batch_size", batch_size, f"{{given}} is more than the {len(data)} training images of "
                               f"{data.name}; lower it, e.g. {{given:batch_size#example}}.",
                               reason="at most the training images", bound=len(data),
                               values={"batch_size#example": max(1, len(data) // 4)})
    seed_everything(seed)
    card = ClassifierCard(dataset=data.name, image_shape=shape, num_outputs=objective.outputs(len(data.classes)),
                          objective=objective.name, architecture=arch.name, width=width,
                          colour_head=arch.name == "conv-gap" and shape[0] == 3)
    model = arch.build(card)
    if isinstance(model, ConvClassifier):
        model.set_pixel_statistics(data.train_images)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch = len(data) // batch_size
    steps = epochs * per_epoch if max_steps is None else min(max_steps, epochs * per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    start, step, acc = time.monotonic(), 0, 0.0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(data), generator=g)
        for i in range(per_epoch):
            if step == steps:
                break
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x, y = objective.batch(augment(uint8_to_unit(data.train_images[idx]), g), data.train_labels[idx])
            # mnist-cnn: the shipped classifier's loss, step for step; conv-gap: its own (with the colour head)
            loss = model.loss(x, y) if isinstance(model, ConvClassifier) else F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        acc = objective.accuracy(model, data.test_images, data.test_labels)
        log.info("feature network epoch %d/%d: test accuracy %.4f (%.0f s)", epoch + 1, epochs, acc,
                 time.monotonic() - start)
        if step == steps:
            break
    model.eval()
    if objective is ROTATION and acc < WEAK_ROTATION_ACCURACY:
        log.warning("%s: the rotation predictor names %.0f%% of the held-out images' rotations (chance: 25%%): these "
                    "images may have no upright (textures, symmetric patterns), and features that cannot tell the "
                    "rotation are weak ones (ganvae.metrics.objectives).", data.name, 100 * acc)
    return model, acc


def save_feature_network(model: nn.Module, card: ClassifierCard, out: str | Path) -> Path:
    """Write ``model`` and its card as one ``.safetensors`` file (atomically); returns its path. The card's
    ``colour_head`` is read off the model."""
    from safetensors.torch import save_file

    from ganvae.common.files import atomic_save

    card = replace(card, colour_head=isinstance(model, ConvClassifier) and model.colour_head is not None)

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_save(out, lambda tmp: save_file(state, str(tmp), metadata=card.metadata()))
    return Path(out)


def train_classifier(dataset: str, data_dir: str | None = None, epochs: int = 6, seed: int = 0,
                     out: str | Path | None = None, batch_size: int = 128, version: str = "1", *,
                     image_size: int | None = None, objective: str = "auto", architecture: str | None = None,
                     width: int = 32, command: str | None = None) -> tuple[Path, float]:
    """Train the feature network of ``dataset`` (any dataset :func:`~ganvae.data.dataset.load_dataset` loads)
    reproducibly and write it as a ``.safetensors`` file whose metadata names the dataset, its image shape, classes,
    the objective, the test accuracy and the training command.

    Args:
        image_size: the images' side (a named dataset's own by default; folders are resized to it).
        objective: ``classes``, ``rotation`` (self-supervised, for data without classes) or ``auto``: the classes
            where the data has two or more, else the rotations.
        architecture: ``mnist-cnn`` (``(1, 28, 28)`` only) or ``conv-gap``; default :func:`default_architecture`.
        command: the command line recorded in the file (default: the equivalent ``ganvae classifier train``).
        out: the file (default the cache: :func:`cache_file`, where evaluation looks for it).

    Returns the path of the written file and the test accuracy.
    """
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset

    if objective not in ("auto", *OBJECTIVES):
        raise FieldConfigError("objective", objective, f"{{given}}: choose auto, {', '.join(OBJECTIVES)}.",
                               reason="auto, classes or rotation")
    cfg = DataConfig(dataset=dataset, data_dir=data_dir)
    size = image_size or _native_size(dataset)
    data = load_dataset(replace(cfg, image_size=size) if size else cfg)
    chosen = OBJECTIVES.get(objective) or (CLASSES if len(data.classes) >= 2 else ROTATION)
    if chosen is CLASSES and len(data.classes) < 2:
        raise FieldDataError("objective", objective, f"{{given}}: {data.name} has one class ({data.classes[0]!r}), "
                             f"nothing to classify. Give the classes as sub-folders, or learn rotations: "
                             f"{{given:objective#example}}.", reason="data with two or more classes",
                             values={"objective#example": "rotation"})
    shape = image_shape_of(data)
    arch = architecture or default_architecture(chosen, shape)
    log.info("training %s (%s) on %s's %d training images of %s", chosen.words, arch, data.name, len(data),
             shape_text(shape))
    model, acc = fit_feature_network(data, chosen, arch, epochs, seed, batch_size, width)
    base = classifier_dataset(dataset)
    if command is None:
        flags = [f"--dataset {shlex.quote(dataset)}"] + ([f"--data-dir {shlex.quote(str(data_dir))}"] if data_dir
                                                        else [])
        flags += [f"--image-size {shape[-1]}", f"--objective {chosen.name}", f"--epochs {epochs}", f"--seed {seed}"]
        command = "ganvae classifier train " + " ".join(flags)
    extra = {"epochs": str(epochs), "seed": str(seed), "batch_size": str(batch_size),
             "torch_version": torch.__version__, "torch_threads": str(torch.get_num_threads())}
    card = ClassifierCard(dataset=base, image_shape=shape, num_outputs=chosen.outputs(len(data.classes)),
                          objective=chosen.name, architecture=arch, width=width, classes=tuple(data.classes),
                          version=version, test_accuracy=acc, command=command, extra=extra)
    path = save_feature_network(model, card, out if out else cache_file(base, shape))
    return path, acc


def _native_size(dataset: str) -> int | None:
    """A named dataset's own image size (None for a folder, which is resized to data.image_size)."""
    if dataset.startswith("folder:"):
        return None
    from ganvae.data.sources import get_source

    try:
        return int(get_source(dataset).image_size)
    except GanvaeError:
        return None  # load_dataset names the unknown dataset
