"""Clustering helpers shared by the learned prior's initialisation (``models/prior.py``) and self-conditioning
(``models/self_conditioning.py``): k-means with k-means++ seeds, and the Hungarian matching of two clusterings.
torch and numpy only."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ganvae.models.configs import AUTO_PSEUDO_CLASSES


class ClusteringStopped(Exception):
    """Raised inside a clustering when :func:`stop_when`'s predicate turned true (a signal, a spent budget)."""


# the caller's "should the clustering stop?" (the trainer's signal flag and time budget), checked between steps
_should_stop: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("should_stop", default=None)


@contextlib.contextmanager
def stop_when(predicate: Callable[[], bool]) -> Iterator[None]:
    """Within the block, the clusterings (spectral embedding, k-means) check ``predicate`` between their steps
    and raise :class:`ClusteringStopped` once it is true: a long clustering notices Ctrl-C, SIGTERM and the time
    budget instead of running for minutes past them."""
    token = _should_stop.set(predicate)
    try:
        yield
    finally:
        _should_stop.reset(token)


def _check_stop() -> None:
    predicate = _should_stop.get()
    if predicate is not None and predicate():
        raise ClusteringStopped


def cluster_means(x: torch.Tensor, assign: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """Each cluster's mean of ``x`` ``(N, F)`` under ``assign`` ``(N,)`` -> ``(k, F)``; an empty cluster gets a
    random point (as the paper's code restarts a starved cluster)."""
    counts = torch.bincount(assign, minlength=k).to(x.dtype)
    means = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, assign, x) / counts.clamp_min(1)[:, None]
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        means[empty] = x[torch.randint(len(x), (len(empty),), generator=g)]
    return means


def kmeans(x: torch.Tensor, k: int, g: torch.Generator, init: torch.Tensor | None = None,
           iterations: int = 20, restarts: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of ``x`` ``(N, F)`` -> (assignments ``(N,)``, centroids ``(k, F)``): from ``init``
    ``(k, F)``, or, without one, the best (least squared distance) of ``restarts`` runs from k-means++ seeds
    (Arthur & Vassilvitskii 2007) drawn from ``g``, as the paper's code runs scikit-learn's KMeans (n_init=10)."""
    n = len(x)
    if n < k:
        raise ValueError(f"{n} images cannot form {k} pseudo-classes: set model.self_conditioning below {n}, or to 0 "
                         f"for none (unset, an unconditional gan or dcgan forms {AUTO_PSEUDO_CLASSES})")
    if init is not None:
        return _lloyd(x, init.clone(), k, g, iterations)
    best = None
    for _ in range(restarts):
        _check_stop()
        assign, c = _lloyd(x, _kmeans_pp(x, k, g), k, g, iterations)
        inertia = float(((x - c[assign]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, assign, c)
    return best[1], best[2]


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeds ``(k, F)``: each next seed drawn with probability its squared distance to the nearest one."""
    n = len(x)
    centres = [x[torch.randint(n, (1,), generator=g)].squeeze(0)]
    dist = ((x - centres[0]) ** 2).sum(1)
    for i in range(1, k):
        if i % 64 == 0:
            _check_stop()
        probs = dist / dist.sum() if dist.sum() > 0 else torch.full_like(dist, 1.0 / n)
        nxt = x[torch.multinomial(probs, 1, generator=g)].squeeze(0)
        centres.append(nxt)
        dist = torch.minimum(dist, ((x - nxt) ** 2).sum(1))
    return torch.stack(centres)


def nearest(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The index of each row of ``x`` ``(N, F)``'s nearest centre in ``c`` ``(k, F)`` ``(N,)``: the argmin of
    ``|c|^2 - 2 x . c`` (|x|^2 does not change a row's order), one matrix product and no square roots."""
    return torch.addmm((c * c).sum(1)[None], x, c.T, alpha=-2).argmin(1)


def _lloyd(x: torch.Tensor, c: torch.Tensor, k: int, g: torch.Generator, iterations: int):
    assign = nearest(x, c)
    for _ in range(iterations):
        _check_stop()
        c = cluster_means(x, assign, k, g)
        new = nearest(x, c)
        if torch.equal(new, assign):
            break
        assign = new
    return assign, c


def match_clusters(new: torch.Tensor, old: torch.Tensor, k: int) -> torch.Tensor:
    """The one-to-one map ``(k,)`` from new cluster ids to old ones that keeps the most images in their old
    cluster: the assignment problem on the overlap counts, solved exactly by :func:`hungarian`."""
    overlap = torch.zeros(k, k, dtype=torch.long)
    overlap.index_put_((new, old), torch.ones_like(new), accumulate=True)  # (new, old) image counts
    cost = (overlap.max() - overlap).double().numpy()
    return torch.as_tensor(hungarian(cost), dtype=torch.long)


def hungarian(cost: np.ndarray) -> np.ndarray:
    """The minimum-cost perfect matching of a square cost matrix ``(k, k)``: ``out[i]`` is the column of row ``i``.

    The Hungarian method (Kuhn 1955) in its O(k^3) shortest-augmenting-path form with potentials (Jonker &
    Volgenant 1987), rows added one at a time.
    """
    k = cost.shape[0]
    inf = float("inf")
    u, v = np.zeros(k + 1), np.zeros(k + 1)  # row and column potentials (1-based; 0 is a virtual column)
    match = np.zeros(k + 1, dtype=np.int64)  # match[j]: the row matched to column j (0 = none)
    way = np.zeros(k + 1, dtype=np.int64)
    for i in range(1, k + 1):
        match[0] = i
        j0 = 0
        minv = np.full(k + 1, inf)
        used = np.zeros(k + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used
            free[0] = False
            cur = np.full(k + 1, inf)
            cur[1:] = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv)
            minv[better], way[better] = cur[better], j0
            j1 = int(np.argmin(np.where(free, minv, inf)))
            delta = minv[j1]
            u[match[used]] += delta
            v[used] -= delta
            minv[free] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while True:  # augment along the path found
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
            if j0 == 0:
                break
    out = np.zeros(k, dtype=np.int64)
    for j in range(1, k + 1):
        out[match[j] - 1] = j - 1
    return out


def pca_project(x: torch.Tensor, dims: int) -> torch.Tensor:
    """``x`` ``(N, D)`` centred and projected on its ``dims`` leading principal axes -> ``(N, min(dims, D))``.

    Exact (the covariance's eigendecomposition), so it draws no random numbers and gives the same projection on
    every rank and every run, up to each axis's sign. The mean is taken in float64 and the big product ``x^T x``
    over the centred data in float32 (a third of float64's time); the eigendecomposition is float64."""
    x = x.float()
    xc = x - x.double().mean(0).float()
    cov = (xc.T @ xc).double() / max(1, len(x) - 1)  # (D, D)
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    axes = vectors[:, -min(dims, x.shape[1]):].flip(1)  # (D, dims), leading axis first
    return xc @ axes.float()


def _orthonormal(y: torch.Tensor) -> torch.Tensor:
    """The Q of ``y = QR`` ``(N, d)``, R's diagonal positive (as Householder QR up to column signs), by Cholesky QR:
    R from the Cholesky factor of the small Gram matrix ``y^T y`` (float64), then ``Q = y R^-1``. Two thin matrix
    products instead of LAPACK's Householder sweeps over the tall ``y``; it needs ``y`` well conditioned, as the
    iterates of a subspace iteration on a matrix with eigenvalues in [0, 2] whose leading ones are kept are. Falls
    back to Householder QR when the Gram matrix is not positive definite."""
    gram = (y.T @ y).double()
    chol, info = torch.linalg.cholesky_ex(gram)
    if info.item() != 0:
        return torch.linalg.qr(y)[0]
    return torch.linalg.solve_triangular(chol.T.to(y.dtype), y, upper=True, left=False)


def knn_graph(x: torch.Tensor, neighbours: int, chunk: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``neighbours`` nearest neighbours of every row of ``x`` ``(N, F)`` (itself excluded) -> (indices
    ``(N, neighbours)``, squared distances ``(N, neighbours)``), in chunks of ``chunk`` rows so that memory stays
    ``chunk * N`` floats."""
    sq = (x * x).sum(1)
    xt = x.T.contiguous()  # (F, N)
    idx, dist = [], []
    for start in range(0, len(x), chunk):
        _check_stop()
        block = x[start : start + chunk]
        # |x_j|^2 - 2 x_i . x_j  (chunk, N) in one product; |x_i|^2 is the same along a row, so it is added to the
        # chosen few only (the product's output is what costs here: one pass over it saved is a third of the time)
        d = torch.addmm(sq[None], block, xt, alpha=-2)
        d[torch.arange(len(block)), torch.arange(start, start + len(block))] = float("inf")  # not itself
        v, i = d.topk(neighbours, largest=False)
        idx.append(i)
        dist.append((v + sq[start : start + chunk, None]).clamp_min(0))
    return torch.cat(idx), torch.cat(dist)


def spectral_embedding(x: torch.Tensor, dims: int, g: torch.Generator, neighbours: int = 10,
                       iterations: int = 300) -> torch.Tensor:
    """Spectral embedding of ``x`` ``(N, F)`` -> ``(N, dims)`` rows of unit length (Ng, Jordan & Weiss 2001):
    the leading eigenvectors of the normalised affinity D^-1/2 W D^-1/2 of the symmetrised ``neighbours``-nearest-
    neighbour graph, with the self-tuning affinity W_ij = exp(-d_ij^2 / (s_i s_j)), s_i the distance to the
    ``neighbours``-th neighbour (Zelnik-Manor & Perona 2004). k-means on these rows finds clusters that are
    connected in the data rather than round, which groups MNIST's digits far better than k-means of the PCA
    projection does (benchmarks/RESULTS.md, "Self-conditioning's features").

    The eigenvectors come from ``iterations`` steps of subspace iteration on (I + A), whose eigenvalues lie in
    [0, 2], started from ``g``'s normal draws: deterministic for a given generator, and torch only. The default is
    the step count the MNIST clusters were measured with; iterating to convergence grouped the digits worse, so
    more is not better for clustering (same section). Clusters whose graph has a tiny eigengap, such as long thin
    rings, need more steps to separate."""
    n = len(x)
    if n < 3:
        raise ValueError(f"{n} images are too few for a nearest-neighbour graph")
    neighbours, dims = min(neighbours, n - 1), min(dims, n)  # a tiny dataset: every other image is a neighbour
    idx, dist = knn_graph(x, neighbours)
    scale = dist[:, -1].sqrt().clamp_min(1e-12)  # (N,) distance to the farthest of the neighbours
    w = torch.exp(-dist / (scale[:, None] * scale[idx]))  # (N, neighbours)
    rows = torch.arange(n).repeat_interleave(neighbours)
    pairs = torch.cat([torch.stack([rows, idx.flatten()]), torch.stack([idx.flatten(), rows])], dim=1)
    with warnings.catch_warnings():  # torch's "sparse is beta" notices
        warnings.simplefilter("ignore", UserWarning)
        affinity = torch.sparse_coo_tensor(pairs, torch.cat([w.flatten(), w.flatten()]), (n, n)).coalesce()
        (i, j), v = affinity.indices(), affinity.values()
        degree = torch.zeros(n).index_add_(0, i, v)
        inv_sqrt = degree.clamp_min(1e-12).rsqrt()
        a = torch.sparse_coo_tensor(affinity.indices(), v * inv_sqrt[i] * inv_sqrt[j], (n, n)).to_sparse_csr()
        q = torch.randn(n, dims, generator=g)
        for _ in range(iterations):
            _check_stop()
            q = _orthonormal(a @ q + q)
    return q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
