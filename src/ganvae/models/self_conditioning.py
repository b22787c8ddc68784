"""Self-conditioning: class structure for a GAN without labels (Liu et al. 2020, "Diverse Image Generation via
Self-Conditioned GANs", Sec. 3).

The discriminator's features of the real training images are clustered by k-means into ``K`` pseudo-classes, and
the conditional machinery (the generator's class embedding, the projection discriminator) is trained on the
cluster ids as if they were labels. Every ``recluster_every`` epochs the clustering is done again on the current
discriminator's features, k-means starting from the previous clusters' means under the new features, and the new
clusters are matched one-to-one to the old ones (the Hungarian algorithm on their overlap, Kuhn 1955), so a
cluster keeps its id across reclusterings, as the paper's code does. Sampling draws a cluster by its share of the
training images (:class:`~ganvae.models.latents.PseudoClassPrior`), then the noise: a self-conditioned model is
unconditional to its user.

With ``model.self_conditioning_features: spectral`` the clustering is of the pixels instead, once before step 0:
k-means on a spectral embedding of a nearest-neighbour graph of the images' PCA projection
(:func:`pixel_cluster_features`). The default DCGAN's discriminator is small (16 and 32 channels), and its
features group MNIST's digits poorly, where the graph of the pixels groups them well (benchmarks/RESULTS.md,
"Self-conditioning's features").

The assignments of the training images are part of the model's state (a buffer sized at the first clustering),
so checkpoints save them and a resumed run continues with the same pseudo-labels.
"""

from __future__ import annotations

import torch
from torch import nn

from ganvae.common import seeds
from ganvae.common.pixels import uint8_to_unit
from ganvae.models.clustering import cluster_means, kmeans, match_clusters, pca_project, spectral_embedding

PCA_DIMS = 50  # the pixels' principal axes the nearest-neighbour graph is built on
# the most pixel values per image the PCA takes: its D x D covariance and eigendecomposition grow as D^2 and D^3
# (64x64 colour images, D = 12,288, would need 1.2 GB and minutes), so larger or colour images are area-averaged
# by the smallest whole factor that brings them within it (32x32x3 -> 16x16x3, 64x64x3 -> 16x16x3); 28x28 grey
# (784) is taken whole. The clusters follow large shapes and colours, which the averaging keeps.
MAX_PCA_FEATURES = 1024
# spectral embedding size, at least K: fewer dimensions grouped MNIST's digits worse (benchmarks/RESULTS.md,
# "Self-conditioning's features")
MIN_EMBEDDING_DIMS = 16


def pooled_pixels(images: torch.Tensor) -> torch.Tensor:
    """Images ``(N, C, H, W)`` (uint8, or float in [0, 1]) -> their pixels as rows ``(N, D)`` float in [0, 1], with
    ``D <= MAX_PCA_FEATURES``: each channel area-averaged by the smallest whole factor ``f`` that brings
    ``C * ceil(H / f) * ceil(W / f)`` within it (``f = 1``, the pixels as they are, for 28x28 grey)."""
    x = images.cpu()
    x = uint8_to_unit(x) if x.dtype == torch.uint8 else x.float()
    if x.dim() == 4:
        c, h, w = x.shape[1:]
        f = 1
        while c * -(-h // f) * -(-w // f) > MAX_PCA_FEATURES and (h > f or w > f):
            f += 1
        if f > 1:
            x = torch.nn.functional.adaptive_avg_pool2d(x, (-(-h // f), -(-w // f)))  # (N, C, H/f, W/f)
    return x.reshape(len(x), -1)


@torch.no_grad()
def pixel_cluster_features(images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """The features ``spectral`` self-conditioning clusters: images ``(N, C, H, W)`` (uint8, or float in [0, 1]; grey
    or colour) -> their spectral embedding ``(N, max(16, k))`` (:func:`~ganvae.models.clustering.spectral_embedding`
    of the 50-dimensional PCA projection of the pixels, area-averaged first where an image has more than
    :data:`MAX_PCA_FEATURES` values: :func:`pooled_pixels`). Deterministic for a given ``seed``."""
    x = pooled_pixels(images)
    g = torch.Generator().manual_seed(seeds.per_counter(seed, 0))
    return spectral_embedding(pca_project(x, PCA_DIMS), max(MIN_EMBEDDING_DIMS, k), g)


class PseudoClasses(nn.Module):
    """The training-time pseudo-labels of a self-conditioned model: each cluster's image count ``counts`` ``(K,)``
    (its latent prior draws a cluster by its share) and the cluster of every training image, ``assignments``
    ``(N,)`` int64 (training state; empty until the first clustering)."""

    counts: torch.Tensor  # buffers, declared for type checkers
    assignments: torch.Tensor
    reclusterings: torch.Tensor

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.register_buffer("counts", torch.ones(k))  # (K,): uniform until the first clustering
        self.register_buffer("assignments", torch.zeros(0, dtype=torch.long))  # (N,)
        self.register_buffer("reclusterings", torch.tensor(0))  # how many clusterings were done (seeds the next)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "assignments"
        if key in state_dict:  # sized by the data at the first clustering: take the stored size
            self.assignments = torch.empty_like(state_dict[key], device=self.assignments.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def clustered(self) -> bool:
        return self.assignments.numel() > 0

    @torch.no_grad()
    def recluster(self, features: torch.Tensor, seed: int, iterations: int = 20) -> dict:
        """Cluster ``features`` ``(N, F)`` of the training images (in dataset order) into ``k`` clusters and store
        the assignments, keeping each cluster's id from the previous clustering where it continues.

        Returns the share of images whose id changed and the smallest cluster's size.
        """
        x = features.detach().float().cpu()
        previous = self.assignments.cpu() if self.clustered and len(self.assignments) == len(x) else None
        g = torch.Generator().manual_seed(seeds.per_counter(seed, int(self.reclusterings)))
        init = None if previous is None else cluster_means(x, previous, self.k, g)
        assign, _ = kmeans(x, self.k, g, init=init, iterations=iterations)
        changed = 1.0
        if previous is not None:
            mapping = match_clusters(assign, previous, self.k)  # new id -> old id
            assign = mapping[assign]
            changed = float((assign != previous).float().mean())
        self.assignments = assign.to(self.counts.device)
        self.counts.copy_(torch.bincount(assign, minlength=self.k).to(self.counts))
        self.reclusterings += 1
        return {"changed": changed, "smallest": int(self.counts.min()), "largest": int(self.counts.max())}
