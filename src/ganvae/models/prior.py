"""A learned prior for encoder models: a Gaussian mixture fitted to the posterior means after training.

A VAE trained with the N(0, I) prior leaves holes in its aggregate posterior ``q(z) = E_x q(z|x)``: prior samples
that fall into them decode to blurred or ambiguous shapes. Ghosh et al. 2020 ("From Variational to Deterministic
Autoencoders", Sec. 4, "ex-post density estimation") fit a density to the training codes after training and sample
from it instead; here that density is a Gaussian mixture,

    p(z) = sum_k pi_k N(z; mu_k, Sigma_k),    Sigma_k full (Cholesky factor L_k) or diagonal,

fitted by EM (Dempster et al. 1977; Bishop 2006, Sec. 9.2.2) to the posterior means ``mu(x)`` of the training
images, in float64, from a k-means++ start (Arthur & Vassilvitskii 2007) drawn from a seeded generator, so a fit is
the same for the same codes and seed. Only torch is used. The fit is kept as float32 buffers (log-weights, means,
Cholesky factors or standard deviations, a ``fitted`` flag): saved with the model in checkpoints and pretrained
folders as tensors, never pickled. Until it is fitted (during training, or for a run from before this prior
existed) the mixture is not used and the model draws from N(0, I).

The training objective (and so the ELBO and IWAE bounds the evaluation reports) keeps N(0, I): the mixture changes
where samples are drawn from, not what the networks were trained to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ganvae.models.clustering import kmeans
from ganvae.models.conditioning import LabelPolicy, default_labels
from ganvae.models.latents import LatentPrior, MixtureFit, inverse_cdf, straight_path

Covariance = Literal["full", "diag"]
REG_COVAR = 1e-6  # added to every variance: keeps a component of near-identical codes positive definite
MAX_FIT_IMAGES = 60000  # codes a fit uses at most (EM's cost is linear in them; MNIST's training split is 60,000)


class GaussianMixturePrior(LatentPrior):
    """``p(z)`` as a mixture of ``components`` Gaussians over ``dim`` latents (see the module docstring); with
    ``groups`` > 1 (a conditional model's classes) one such mixture per class, ``p(z | y)``, and their mixture by
    the classes' shares where no class is given. A :class:`~ganvae.models.latents.LatentPrior`: until it is fitted
    it draws from N(0, I).

    Drawing goes through :meth:`noise` (two uniforms and a standard normal per latent) and :meth:`transform`, so the
    same noise can be turned into latents of several classes (a class grid's columns keep their noise).
    """

    fittable = True

    def __init__(self, dim: int, components: int, covariance: Covariance = "full", groups: int = 1):
        super().__init__(dim)
        if covariance not in ("full", "diag"):
            raise ValueError(f"covariance {covariance!r}: choose full or diag")
        self.components, self.covariance, self.groups = components, covariance, groups
        g, k = groups, components
        self.register_buffer("fitted", torch.tensor(False))
        self.register_buffer("group_log_weights", torch.full((g,), -math.log(g)))  # (G,): log share of each class
        self.register_buffer("log_weights", torch.full((g, k), -math.log(k)))  # (G, K)
        self.register_buffer("means", torch.zeros(g, k, dim))  # (G, K, D)
        if covariance == "full":
            self.register_buffer("scale_tril", torch.eye(dim).repeat(g, k, 1, 1))  # (G, K, D, D): Sigma = L L^T
        else:
            self.register_buffer("scales", torch.ones(g, k, dim))  # (G, K, D): standard deviations

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @property
    def kind(self) -> str:
        return "gmm" if self.is_fitted else "normal"

    def forget(self) -> None:
        self.fitted.fill_(False)

    def describe(self) -> str:
        """How a protocol names this prior, e.g. ``gmm (k=100, full covariance)``."""
        state = "" if self.is_fitted else ", not fitted yet: N(0, I) is used"
        per = f" per class, one mixture for each of {self.groups} classes" if self.groups > 1 else ""
        return f"gmm (k={self.components}{per}, {self.covariance} covariance{state})"

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`transform` turns into latents: uniforms ``(n, 2)`` (the class, the component) and a
        standard normal ``(n, D)``, from ``generator``."""
        device = generator.device if generator is not None else self.means.device
        return (torch.rand(n, 2, generator=generator, device=device),
                torch.randn(n, self.dim, generator=generator, device=device))

    def transform(self, u: torch.Tensor, eps: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (:meth:`noise`) -> latents ``(n, D)`` on ``eps``'s device: the class ``groups`` ``(n,)`` int64
        (default, or for class weights or a single mixture: one drawn by its share with ``u[:, 0]``), a component by
        its weight with ``u[:, 1]`` (inverse CDF), then ``mu + L eps``. Unfitted (zero means, identity factors) this
        is ``eps`` itself, N(0, I), so a graph traced from it needs no branch on the fit."""
        device = eps.device
        if groups is None or self.groups == 1 or groups.is_floating_point():
            groups = inverse_cdf(self.group_log_weights.to(device).float().softmax(0), u[:, 0])
        groups = groups.to(device)
        comp = inverse_cdf(self.log_weights.to(device).float().softmax(1)[groups], u[:, 1])  # (n,)
        if self.covariance == "diag":
            return self.means.to(device)[groups, comp] + self.scales.to(device)[groups, comp] * eps
        z = self.means.to(device)[groups, comp]
        tril = self.scale_tril.to(device)
        if torch.compiler.is_compiling():  # traced (the ONNX export): one gathered factor per latent, no data loop
            return z + torch.einsum("bij,bj->bi", tril[groups, comp], eps)
        flat = groups * self.components + comp
        for c in flat.unique().tolist():  # one matrix product per component: memory O(n D), not O(n D^2)
            rows = (flat == c).nonzero().squeeze(1)
            z[rows] += eps[rows] @ tril[c // self.components, c % self.components].T
        return z

    def draw(self, n: int, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latents ``(n, D)`` float32 on the generator's device: fitted, of classes ``labels`` ``(n,)`` (default,
        or class weights: each class by its share); unfitted, from N(0, I). The same ``generator`` state gives the
        same latents."""
        if not self.is_fitted:
            device = generator.device if generator is not None else self.means.device
            return torch.randn(n, self.dim, generator=generator, device=device)
        return self.transform(*self.noise(n, generator), labels)

    def class_grid(self, cols: int, classes: list[int], generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`LatentPrior.class_grid`; with one fitted mixture per class, a column's noise is carried through
        each class's own mixture."""
        if not self.is_fitted or self.groups == 1:
            return super().class_grid(cols, classes, generator)
        u, eps = self.noise(cols, generator)
        labels = default_labels(classes, len(classes) * cols, LabelPolicy.CLASS_GRID)
        z = self.transform(u.repeat(len(classes), 1), eps.repeat(len(classes), 1), labels)
        return z.cpu(), labels

    def path(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Straight (:func:`~ganvae.models.latents.straight_path`) once fitted; spherical before."""
        return straight_path(a, b, t) if self.is_fitted else super().path(a, b, t)

    def log_prob(self, z: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(z)`` (or ``log p(z | y)`` for ``groups`` ``(n,)``) ``(n,)`` of latents ``(n, D)``, in float64."""
        per_group = torch.stack([torch.logsumexp(_component_log_probs(z.double(), self._params(g), self.covariance), 1)
                                 for g in range(self.groups)], dim=1)  # (n, G)
        if groups is not None:
            return per_group.gather(1, groups.view(-1, 1).to(per_group.device)).squeeze(1)
        return torch.logsumexp(per_group + self.group_log_weights.double(), dim=1)

    def _params(self, g: int) -> "_Params":
        cov = self.scale_tril[g] if self.covariance == "full" else self.scales[g] ** 2
        return _Params(self.log_weights[g].double(), self.means[g].double(), cov.double())

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(self, codes: torch.Tensor, groups: torch.Tensor | None = None, seed: int = 0, max_iterations: int = 300,
            tol: float = 1e-3) -> MixtureFit:
        """Fit the mixture (one per class of ``groups`` ``(N,)``, when there are several) to ``codes`` ``(N, D)`` by
        EM in float64 and store it (see the module docstring). A class without codes (not in the training data)
        keeps a weight of zero.

        Stops when the mean log-likelihood improves by less than ``tol`` nats per code (scikit-learn's default),
        or after ``max_iterations``: a tighter ``tol`` took several times the iterations for the same FID
        (benchmarks/RESULTS.md, "Learned prior"). A component left with
        (almost) no codes is restarted on the code the fit explains worst, so every component describes data.
        """
        import time

        start = time.monotonic()
        x = codes.detach().to("cpu", torch.float64)
        n, d = x.shape
        if d != self.dim:
            raise ValueError(f"codes of size {d} for a prior over {self.dim} latents")
        if not torch.isfinite(x).all():
            raise ValueError("the codes hold NaN or infinite values: the encoder's weights are broken")
        if self.groups > 1 and groups is None:
            raise ValueError(f"a prior with one mixture per class ({self.groups}) is fitted to codes and their labels")
        labels = torch.zeros(n, dtype=torch.long) if groups is None else groups.detach().to("cpu", torch.long)
        counts = torch.bincount(labels, minlength=self.groups).double()
        small = [g for g in range(self.groups) if 0 < counts[g] < self.components]
        if n < self.components or small:
            where = f" (class {small[0]}: {int(counts[small[0]])} codes)" if small else f" ({n} codes)"
            raise ValueError(f"too few codes to fit {self.components} mixture components{where}: fit on more images, "
                             f"or lower model.prior_components")
        g = torch.Generator().manual_seed(seed)
        iterations, converged, total_ll = 0, True, 0.0
        for group in range(self.groups):
            if counts[group] == 0:
                continue
            params, its, conv, ll = _fit_one(x[labels == group], self.components, self.covariance, g,
                                             max_iterations, tol)
            iterations, converged, total_ll = max(iterations, its), converged and conv, total_ll + ll * counts[group]
            self.log_weights[group] = params.log_weights.float()
            self.means[group] = params.means.float()
            if self.covariance == "full":
                self.scale_tril[group] = params.cov.float()
            else:
                self.scales[group] = params.cov.sqrt().float()
        self.group_log_weights.copy_((counts / counts.sum()).log().float())
        self.fitted.fill_(True)
        return MixtureFit(n, self.components, self.covariance, iterations, converged, float(total_ll / n),
                          round(time.monotonic() - start, 2))


def _fit_one(x: torch.Tensor, k: int, covariance: str, g: torch.Generator, max_iterations: int, tol: float):
    """EM for one mixture on codes ``x`` ``(N, D)`` float64 -> (parameters, iterations, converged, mean log-lik)."""
    params = _initialise(x, k, covariance, g)
    previous, converged, iteration = -math.inf, False, 0
    for iteration in range(1, max_iterations + 1):
        log_p = _component_log_probs(x, params, covariance)  # (N, K), log pi_k + log N(x | k)
        total = torch.logsumexp(log_p, dim=1)  # (N,)
        ll = float(total.mean())
        resp = (log_p - total[:, None]).exp()  # E step: responsibilities (N, K)
        params = _m_step(x, resp, covariance, total)
        if ll - previous < tol:
            converged = True
            break
        previous = ll
    final = float(torch.logsumexp(_component_log_probs(x, params, covariance), dim=1).mean())
    return params, iteration, converged, final


@dataclass
class _Params:
    log_weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, D)
    cov: torch.Tensor  # full: Cholesky factors (K, D, D); diag: variances (K, D)


def _component_log_probs(x: torch.Tensor, p: _Params, covariance: str, chunk: int = 4096) -> torch.Tensor:
    """``log pi_k + log N(x_n; mu_k, Sigma_k)`` ``(N, K)``, in ``x``'s dtype, as matrix products over chunks of
    ``chunk`` codes (the ``(N, K, D)`` differences are never formed)."""
    n, d = x.shape
    k = p.means.shape[0]
    const = -0.5 * d * math.log(2 * math.pi)
    if covariance == "diag":
        prec = 1.0 / p.cov  # (K, D)
        # |x - mu|^2_prec = x^2 . prec - 2 x . (mu prec) + mu^2 . prec
        maha = (x * x) @ prec.T - 2 * x @ (p.means * prec).T + (p.means**2 * prec).sum(1)
        return p.log_weights + const - 0.5 * p.cov.log().sum(-1) - 0.5 * maha
    # precision factors P_k = L_k^-1: |P_k (x - mu_k)|^2 is the Mahalanobis distance
    eye = torch.eye(d, dtype=x.dtype).expand(k, d, d)
    prec = torch.linalg.solve_triangular(p.cov, eye, upper=False)  # (K, D, D)
    weights = prec.transpose(1, 2).permute(1, 0, 2).reshape(d, k * d)  # x @ weights = [P_1 x, ..., P_K x]
    shift = torch.einsum("kij,kj->ki", prec, p.means).reshape(1, k * d)  # [P_k mu_k]
    half_logdet = p.cov.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,): log |Sigma_k| / 2
    out = []
    for part in x.split(chunk):
        y = (part @ weights - shift).view(len(part), k, d)  # (c, K, D)
        out.append(const - half_logdet - 0.5 * y.pow(2).sum(-1))
    return p.log_weights + torch.cat(out)


def _m_step(x: torch.Tensor, resp: torch.Tensor, covariance: str, total: torch.Tensor, chunk: int = 4096) -> _Params:
    """Weights, means and covariances from responsibilities ``(N, K)`` (Bishop 2006, Eqs. 9.24-9.26); the
    covariances as ``E_k[x x^T] - mu_k mu_k^T``, accumulated over chunks of codes."""
    n, d = x.shape
    counts = resp.sum(0)  # (K,)
    empty = counts < 1e-3
    if empty.any():  # restart starved components on the worst-explained codes (one each)
        worst = total.argsort()[: int(empty.sum())]
        resp = resp.clone()
        resp[:, empty] = 0.0
        resp[worst, empty.nonzero().flatten()] = 1.0
        counts = resp.sum(0)
    counts = counts + 10 * torch.finfo(x.dtype).eps
    means = resp.T @ x / counts[:, None]  # (K, D)
    log_weights = (counts / counts.sum()).log()
    if covariance == "diag":
        var = resp.T @ (x * x) / counts[:, None] - means**2
        return _Params(log_weights, means, var.clamp_min(0) + REG_COVAR)
    second = torch.zeros(len(counts), d * d, dtype=x.dtype)
    for part, r in zip(x.split(chunk), resp.split(chunk)):
        second += r.T @ (part[:, :, None] * part[:, None, :]).reshape(len(part), d * d)
    cov = second.view(-1, d, d) / counts[:, None, None] - means[:, :, None] * means[:, None, :]
    cov = 0.5 * (cov + cov.transpose(1, 2)) + REG_COVAR * torch.eye(d, dtype=x.dtype)
    return _Params(log_weights, means, torch.linalg.cholesky(cov))


def _initialise(x: torch.Tensor, k: int, covariance: str, g: torch.Generator) -> _Params:
    """k-means++ seeds (Arthur & Vassilvitskii 2007) and ten Lloyd iterations, then each cluster's weight, mean and
    covariance as EM's starting point."""
    assign, _ = kmeans(x, k, g, iterations=10, restarts=1)
    resp = torch.nn.functional.one_hot(assign, k).to(x.dtype)
    return _m_step(x, resp, covariance, torch.zeros(len(x), dtype=x.dtype))
