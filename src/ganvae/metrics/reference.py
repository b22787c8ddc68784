"""The test split's features on a feature network, computed once and cached on disk by the network's checksum and
the split's content: every evaluation, in-training quality point and Inception-v3 figure reads them from here."""

from __future__ import annotations

import logging
from typing import Protocol

import torch

from ganvae.common.pixels import uint8_to_unit

log = logging.getLogger(__name__)


class ReferenceNetwork(Protocol):
    """What :func:`reference_features` needs of a network (:class:`~ganvae.metrics.classifier.FeatureNetwork`,
    :class:`~ganvae.metrics.inception.InceptionFeatures`)."""

    sha256: str

    def check_images(self, shape: tuple[int, ...], what: str = "images") -> None: ...

    def extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def reference_features(data, fnet: ReferenceNetwork) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and probabilities of the test split of ``data`` (an :class:`~ganvae.data.dataset.ImageData`), cached
    on disk by the network's checksum and the split's content."""
    import hashlib

    from safetensors.torch import load_file, save_file

    from ganvae.common.files import atomic_save, default_cache_dir

    fnet.check_images(tuple(data.test_images.shape), f"{data.name}'s images")

    digest = hashlib.blake2b(data.test_images.cpu().numpy().tobytes(), digest_size=8).hexdigest()
    path = default_cache_dir() / "features" / f"{fnet.sha256[:16]}-{digest}.safetensors"
    if path.is_file():
        try:
            cached = load_file(str(path))
            return cached["features"], cached["probs"]
        except Exception:  # a damaged cache is recomputed
            pass
    feats, probs = fnet.extract(uint8_to_unit(data.test_images))
    try:
        atomic_save(path, lambda tmp: save_file({"features": feats, "probs": probs}, str(tmp)))
    except OSError:
        log.debug("could not cache reference features at %s", path)
    return feats, probs
