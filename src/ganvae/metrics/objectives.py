"""What a feature network is trained to predict: the data's classes, or, for data without classes, the rotation
of its own images.

A Frechet distance, a kernel distance or precision/recall is only as good as the features it is computed on: they
must move when the images get worse in the ways that matter (blur, noise, a missing class, a colour cast) and stay
still between two samples of the real data. :mod:`ganvae.metrics.validation` checks exactly that for any feature
network (``benchmarks/feature_validation.py`` on MNIST; its table is in ``benchmarks/RESULTS.md``).

**Labelled data** (a named dataset, a folder with class sub-folders): a classifier of the data's classes
(:class:`ClassObjective`), the field's substitute for Inception-v3 on small images (Binkowski et al. 2018 used a
LeNet's penultimate layer for MNIST). Its metrics' keys say so: ``classifier_fd``, ``classifier_kd``.

**Unlabelled data** (a folder without class sub-folders): rotation prediction, RotNet (Gidaris, Singh & Komodakis,
"Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018): each training image is shown at
0, 90, 180 and 270 degrees and the network learns which one it sees (:class:`RotationObjective`). The choice, among
what works offline on any folder:

* a randomly initialised, fixed-seed network needs no training but measures low-level pixel statistics: it is the
  known-weak baseline (its features barely separate what a person sees as different), kept in the benchmark only
  to show what training adds;
* a classifier trained on another labelled dataset (the colour digits) knows digits, not the user's images: its
  features are blind to whatever the user's images have that digits lack;
* rotation prediction is learned from the user's own images, without labels. To tell an upright image from a
  turned one the network must find the objects' shapes, parts and usual orientation, and Gidaris et al. show
  that these features serve for classification nearly as well as supervised ones (their Table 2: CIFAR-10 object
  classification from RotNet features within a few points of a supervised network). The same architecture and
  training loop as the classifiers, so one validation covers both.

Limits of rotation features, said where their numbers appear (the protocol names them; their keys are
``rotation_fd``, ``rotation_kd``, never ``classifier_*``):

* images without an upright (textures, top-down views, symmetric patterns) make the task unlearnable: the held-out
  rotation accuracy is recorded with the network, and under :data:`WEAK_ROTATION_ACCURACY` training warns that the
  features are weak;
* colour does not tell which way is up, so a colour cast moves these features less than shape damage does
  (the validation's hue rows show how much);
* the network is trained on the images it later judges samples against (the train split; the reference is the
  held-out test split), and is specific to that folder: numbers from two folders, or from two such networks
  (another seed), are not comparable; class-based metrics (classifier score, class balance, conditional accuracy)
  do not exist for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.common.pixels import uint8_to_unit
from ganvae.metrics import registry
from ganvae.metrics.registry import Metric

# held-out rotation accuracy under which training warns that the features are weak (chance is 0.25; on MNIST's
# digits RotNet reaches about 0.95)
WEAK_ROTATION_ACCURACY = 0.6


def shift_pixels(size: int) -> int:
    """The largest random shift of the training augmentation: 2 pixels at 28 and 32, 4 at 64."""
    return max(1, 2 * size // 28)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to :func:`shift_pixels` pixels (pad with zeros, then crop), batched: ``(B, C, H, W)``.

    At 28x28 the same random draws and the same result as the augmentation the shipped MNIST classifier was
    trained with (so ``ganvae classifier train --dataset mnist`` still reproduces it)."""
    b, c, h, w = x.shape
    s = shift_pixels(h)
    padded = F.pad(x, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
    dx = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h)).view(b, 1, h, 1).expand(b, c, h, w + 2 * s)
    cols = (dx.view(b, 1) + torch.arange(w)).view(b, 1, 1, w).expand(b, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


@dataclass(frozen=True)
class FeatureObjective:
    """What the network learns (its targets), and so what its features are called and which metrics they give.

    Attributes:
        name: stored in the weights file's metadata (``objective``).
        fd, kd: the registry's entries of the Frechet and kernel distances on these features.
        has_classes: whether the network's outputs are the data's classes (then the class-based metrics exist:
            classifier score, class balance, conditional accuracy, intra-class distance).
        words: how a protocol or an error names the features.
        keys_note: what the keys of its metrics mean (the evaluation protocol's ``keys``).
    """

    name: str
    fd: Metric
    kd: Metric
    has_classes: bool
    words: str
    keys_note: str

    def outputs(self, num_classes: int) -> int:
        """The size of the network's head."""
        raise NotImplementedError

    def batch(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented images ``(B, C, H, W)`` in [0, 1] and their labels -> the network's inputs and targets."""
        raise NotImplementedError

    @torch.inference_mode()
    def accuracy(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, chunk: int = 1000) -> float:
        """Share of held-out uint8 ``images`` whose target the network predicts."""
        model.eval()
        correct = total = 0
        for x, y in zip(images.split(chunk), labels.split(chunk)):
            inputs, targets = self.batch(uint8_to_unit(x), y)
            correct += int((model(inputs).argmax(1) == targets).sum())
            total += len(targets)
        return correct / max(total, 1)


class ClassObjective(FeatureObjective):
    """The data's classes, with cross-entropy: a classifier."""

    def outputs(self, num_classes: int) -> int:
        return num_classes

    def batch(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, labels


class RotationObjective(FeatureObjective):
    """Which of four rotations (0, 90, 180, 270 degrees) an image is shown at (Gidaris et al. 2018): every image of
    a batch at all four, as RotNet trains."""

    def outputs(self, num_classes: int) -> int:
        return 4

    def batch(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        turned = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # (4B, C, H, W)
        return turned, torch.arange(4).repeat_interleave(len(x))


INCEPTION_NOTE = "*_inception = Inception-v3 with pytorch-fid's weights (the papers' FID and KID)"
CLASSES = ClassObjective(
    "classes", registry.FID, registry.KID, True, "a classifier of the data's classes",
    "classifier_* = computed on the feature network above, not Inception-v3 (not comparable with papers' FID, KID or "
    "Inception Score); precision_k5/recall_k5 = k = 5 where Kynkaanniemi et al. use 3; " + INCEPTION_NOTE)
ROTATION = RotationObjective(
    "rotation", registry.ROTATION_FD, registry.ROTATION_KD, False,
    "a rotation predictor trained on the data's own images (RotNet, self-supervised)",
    "rotation_* = computed on a rotation predictor trained on this data's own images (self-supervised, RotNet; no "
    "classes, so no classifier score, class balance or conditional metrics): comparable only between runs scored "
    "with this same network, never with papers; precision_k5/recall_k5 = k = 5 where Kynkaanniemi et al. use 3; "
    + INCEPTION_NOTE)
OBJECTIVES: dict[str, FeatureObjective] = {o.name: o for o in (CLASSES, ROTATION)}
