"""The feature network: a small CNN classifier whose penultimate layer gives the features
that the Frechet distance, KID, precision/recall and density/coverage are computed on.

Inception features fit MNIST badly and cannot be downloaded here; a distance on an MNIST
classifier's features is the field's substitute (Binkowski et al. 2018 used a LeNet's
penultimate layer). The weights ship inside the package (``ganvae/weights``) with a
version and a SHA-256 checksum, so every user computes the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.common.files import default_cache_dir
from ganvae.common.pixels import uint8_to_unit
from ganvae.errors import GanvaeError

log = logging.getLogger(__name__)

FEATURE_DIM = 128
# datasets that share a classifier: mnist-5k and mnist-25k are subsets of MNIST
CLASSIFIER_FOR = {"mnist": "mnist", "mnist-5k": "mnist", "mnist-25k": "mnist", "fashion-mnist": "fashion-mnist",
                  "kmnist": "kmnist"}


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


@dataclass
class FeatureNetwork:
    """A loaded classifier and its identity (stored with every metric)."""

    model: MNISTClassifier
    dataset: str
    version: str
    sha256: str
    test_accuracy: float | None

    @property
    def name(self) -> str:
        return f"ganvae-{self.dataset}-cnn-{self.version}"

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 1, 28, 28)`` in [0, 1] -> features ``(N, 128)`` and class probabilities ``(N, K)`` (float64, CPU)."""
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


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def classifier_candidates(dataset: str) -> list[tuple[Path, str | None]]:
    """Where a classifier for ``dataset`` may be: the package's shipped weights (with the
    manifest's checksum), then the user's cache (trained with ``ganvae classifier train``)."""
    out: list[tuple[Path, str | None]] = []
    entry = _shipped_manifest().get(dataset)
    if entry:
        out.append((Path(str(resources.files("ganvae").joinpath("weights", entry["file"]))), entry["sha256"]))
    out.append((default_cache_dir() / "classifiers" / f"{dataset}.safetensors", None))
    return out


def load_classifier(dataset: str, device: torch.device | str = "cpu", path: str | Path | None = None) -> FeatureNetwork:
    """The classifier matching ``dataset`` (``mnist-5k`` uses MNIST's); refuses a mismatch or a bad checksum."""
    from safetensors import safe_open

    base = CLASSIFIER_FOR.get(dataset)
    if base is None and path is None:
        raise GanvaeError(
            f"no feature classifier for dataset {dataset!r}; classifier-based metrics need one. "
            f"Train one with `ganvae classifier train --dataset NAME` (a named IDX dataset)."
        )
    candidates = [(Path(path), None)] if path is not None else classifier_candidates(base)
    for file, expected_sha in candidates:
        if not file.is_file():
            continue
        digest = sha256_file(file)
        if expected_sha is not None and digest != expected_sha:
            raise GanvaeError(
                f"{file}: checksum {digest[:16]}... does not match the shipped manifest ({expected_sha[:16]}...); "
                f"the installed weights are damaged. Reinstall ganvae."
            )
        try:
            with safe_open(str(file), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as err:  # safetensors' own error type for damaged files, OSError for unreadable ones
            raise GanvaeError(
                f"{file}: not a readable safetensors classifier ({err}); the file is truncated, damaged or of another "
                f"format. Give the .safetensors file that `ganvae classifier train` wrote, or drop --classifier."
            ) from None
        if meta.get("dataset") not in (None, base) and path is None:
            raise GanvaeError(f"{file}: a classifier for {meta.get('dataset')!r}, not {base!r}.")
        if path is not None and base is not None and meta.get("dataset") != base:
            raise GanvaeError(
                f"{file}: a classifier trained on {meta.get('dataset')!r}, but the run's data is {dataset!r} "
                f"(needs {base!r}). Use the classifier of the run's dataset."
            )
        with torch.random.fork_rng(devices=[]):  # the throwaway random init must not move the caller's stream
            model = MNISTClassifier(int(meta.get("num_classes", 10)))
        try:
            model.load_state_dict(tensors)
        except RuntimeError as err:
            raise GanvaeError(f"{file}: its weights are not those of ganvae's feature classifier "
                              f"({str(err).splitlines()[0]}). "
                              "Give a file that `ganvae classifier train` wrote.") from None
        model.to(device).eval()
        acc = float(meta["test_accuracy"]) if "test_accuracy" in meta else None
        return FeatureNetwork(model, meta.get("dataset", base or "custom"), meta.get("version", "?"), digest, acc)
    where = ", ".join(str(f) for f, _ in candidates)
    raise GanvaeError(
        f"no classifier for {base} found (looked at {where}). Train it with `ganvae classifier train --dataset {base}`"
        f" (add --data-dir DIR for local files)."
    )


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (pad, then crop), batched."""
    b = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    dx = torch.randint(0, 5, (b,), generator=generator)
    dy = torch.randint(0, 5, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(28)).view(b, 1, 28, 1).expand(b, 1, 28, 32)
    cols = (dx.view(b, 1) + torch.arange(28)).view(b, 1, 1, 28).expand(b, 1, 28, 28)
    return padded.gather(2, rows).gather(3, cols)


@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(uint8_to_unit(x)).argmax(1) == y).sum())
                  for x, y in zip(images.split(1000), labels.split(1000)))
    return correct / len(labels)


def train_classifier(dataset: str, data_dir: str | None = None, epochs: int = 6, seed: int = 0,
                     out: str | Path | None = None, batch_size: int = 128, version: str = "1") -> tuple[Path, float]:
    """Train the feature classifier reproducibly (seeded; Adam, shifts as augmentation, LR decay).

    Returns the path of the written ``.safetensors`` and the test accuracy.
    """
    from safetensors.torch import save_file

    from ganvae.common.device import seed_everything
    from ganvae.common.files import atomic_save
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset

    seed_everything(seed)
    data = load_dataset(DataConfig(dataset=dataset, data_dir=data_dir))
    model = MNISTClassifier(len(data.classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * (len(data) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    start = time.monotonic()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(data), generator=g)
        for i in range(len(data) // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x = _augment(uint8_to_unit(data.train_images[idx]), g)
            loss = F.cross_entropy(model(x), data.train_labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, data.test_images, data.test_labels)
        log.info("classifier epoch %d/%d: test accuracy %.4f (%.0f s)", epoch + 1, epochs, acc,
                 time.monotonic() - start)
    out = (Path(out) if out
           else default_cache_dir() / "classifiers" / f"{CLASSIFIER_FOR.get(dataset, dataset)}.safetensors")
    meta = {"dataset": CLASSIFIER_FOR.get(dataset, dataset), "version": version, "test_accuracy": f"{acc:.4f}",
            "num_classes": str(len(data.classes)), "epochs": str(epochs), "seed": str(seed),
            "feature_dim": str(FEATURE_DIM), "torch_version": torch.__version__}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_save(out, lambda tmp: save_file(state, str(tmp), metadata=meta))
    return out, acc
