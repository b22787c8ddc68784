"""A learned prior for encoder models: a Gaussian mixture fitted to the posterior means after training.

A VAE trained with the N(0, I) prior leaves holes in its aggregate posterior ``q(z) = E_x q(z|x)``: prior samples
that fall into them decode to blurred or ambiguous shapes. Ghosh et al. 2020 ("From Variational to Deterministic
Autoencoders", Sec. 4, "ex-post density estimation") fit a density to the training codes after training and sample
from it instead; here that density is a Gaussian mixture,

    p(z) = sum_k pi_k N(z; mu_k, Sigma_k),    Sigma_k full (Cholesky factor L_k) or diagonal,

fitted by EM (Dempster et al. 1977; Bishop 2006, Sec. 9.2.2) to the posterior means ``mu(x)`` of the training
images (two large float32 products over the centred codes a step, the small per-component algebra in float64:
:class:`_Codes`), from a k-means++ start (Arthur & Vassilvitskii 2007) drawn from a seeded generator, so a fit is
the same for the same codes and seed. Only torch is used. The fit is kept as float32 buffers (log-weights, means,
Cholesky factors or standard deviations, a ``fitted`` flag): saved with the model in checkpoints and pretrained
folders as tensors, never pickled. Until it is fitted (during training, or for a run from before this prior
existed) the mixture is not used and the model draws from N(0, I).

The training objective (and so the ELBO and IWAE bounds the evaluation reports) keeps N(0, I): the mixture changes
where samples are drawn from, not what the networks were trained to do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch

from ganvae.models.clustering import kmeans
from ganvae.models.conditioning import LabelPolicy, default_labels
from ganvae.models.latents import LatentPrior, MixtureFit, inverse_cdf, per_image_noise, straight_path

log = logging.getLogger(__name__)

Covariance = Literal["full", "diag"]
REG_COVAR = 1e-6  # added to every variance: keeps a component of near-identical codes positive definite
MAX_FIT_IMAGES = 60000  # codes a fit uses at most (EM's cost is linear in them; MNIST's training split is 60,000)
# codes per fitted parameter a component needs: fewer codes fit fewer components (a full 10-d component has 65
# parameters, so 195 codes; the default 100 components were measured on 20,000 codes, 200 each: benchmarks/RESULTS.md,
# "Learned prior: the mixture's size follows the data")
CODES_PER_PARAMETER = 3
# the log-weight of a component a fit does not use: finite (checkpoints refuse non-finite tensors), and exp() of it is
# exactly 0 in float32 and float64
UNUSED_LOG_WEIGHT = -1e30


def parameters_per_component(dim: int, covariance: str) -> int:
    """A component's free parameters: its mean, its covariance (full: a symmetric matrix; diag: its variances) and
    its weight."""
    return dim + (dim * (dim + 1) // 2 if covariance == "full" else dim) + 1


def components_for(codes: int, dim: int, covariance: str, most: int) -> int:
    """The components a fit to ``codes`` codes uses: ``most``, or fewer so that each has :data:`CODES_PER_PARAMETER`
    codes per parameter; at least one."""
    return max(1, min(most, codes // (CODES_PER_PARAMETER * parameters_per_component(dim, covariance))))


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
    def used(self) -> torch.Tensor:
        """``(G,)``: the components each class's fit uses (a fit to few codes uses fewer than ``components``; the
        rest keep the weight :data:`UNUSED_LOG_WEIGHT`, zero in every sum)."""
        return (self.log_weights > UNUSED_LOG_WEIGHT / 2).sum(1)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @property
    def kind(self) -> str:
        return "gmm" if self.is_fitted else "normal"

    def forget(self) -> None:
        self.fitted.fill_(False)

    def describe(self) -> str:
        """How a protocol names this prior, e.g. ``gmm (k=100, full covariance)``, or ``gmm (k=4 of at most 100, full
        covariance)`` when the codes were too few for more."""
        state = "" if self.is_fitted else ", not fitted yet: N(0, I) is used"
        per = f" per class, one mixture for each of {self.groups} classes" if self.groups > 1 else ""
        used = sorted({int(u) for u in self.used}) if self.is_fitted else [self.components]
        k = (f"{used[0]}" if len(used) == 1 else f"{used[0]}-{used[-1]}")
        k += f" of at most {self.components}" if used != [self.components] else ""
        return f"gmm (k={k}{per}, {self.covariance} covariance{state})"

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`transform` turns into latents: uniforms ``(n, 2)`` (the class, the component) and a
        standard normal ``(n, D)``, from ``generator``, image by image (:func:`per_image_noise`)."""
        return per_image_noise(n, self.dim, generator, self.means.device)

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
        u, eps = self.noise(n, generator)
        return self.transform(u, eps, labels) if self.is_fitted else eps

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
        codes = _Codes.of(z.detach().double(), self.covariance, dtype=torch.float64)  # the fit's algebra, in float64
        per_group = torch.stack([torch.logsumexp(codes.log_probs(codes.centred(self._params(g)), self.covariance), 1)
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
        EM (:class:`_Codes`) and store it (see the module docstring). A class without codes (not in the training data)
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
        small = [g for g in range(self.groups) if 0 < counts[g] < 2]
        if n < 2 or small:
            where = f" (class {small[0]}: {int(counts[small[0]])} code)" if small else f" ({n} codes)"
            raise ValueError(f"too few codes to fit a mixture{where}: fit on more images")
        g = torch.Generator().manual_seed(seed)
        iterations, converged, total_ll = 0, True, 0.0
        per_parameter = CODES_PER_PARAMETER * parameters_per_component(d, self.covariance)
        for group in range(self.groups):
            if counts[group] == 0:
                continue
            k = components_for(int(counts[group]), d, self.covariance, self.components)
            params, its, conv, ll = _fit_one(x[labels == group], k, self.covariance, g, max_iterations, tol)
            iterations, converged, total_ll = max(iterations, its), converged and conv, total_ll + ll * counts[group]
            # the components this fit does not use keep a weight of zero (the buffers keep their shape)
            self.log_weights[group] = UNUSED_LOG_WEIGHT
            self.log_weights[group, :k] = params.log_weights.float()
            self.means[group] = 0.0
            self.means[group, :k] = params.means.float()
            if self.covariance == "full":
                self.scale_tril[group] = torch.eye(d)
                self.scale_tril[group, :k] = params.cov.float()
            else:
                self.scales[group] = 1.0
                self.scales[group, :k] = params.cov.sqrt().float()
        few = [int(c) for c in counts if 0 < c < per_parameter]
        if few:
            log.warning("the learned prior's mixture has %d codes for one component (fewer than the %d, 3 per "
                        "parameter, that a %s-covariance component over %d latents needs): a single Gaussian of "
                        "few codes; fit it on more images", min(few), per_parameter, self.covariance, d)
        shares = (counts / counts.sum()).log().float()  # (G,); a class without codes keeps a weight of zero
        self.group_log_weights.copy_(torch.where(counts > 0, shares, torch.tensor(UNUSED_LOG_WEIGHT)))
        self.fitted.fill_(True)
        return MixtureFit(n, int(self.used.max()), self.covariance, iterations, converged, float(total_ll / n),
                          round(time.monotonic() - start, 2))


def _fit_one(x: torch.Tensor, k: int, covariance: str, g: torch.Generator, max_iterations: int, tol: float):
    """EM for one mixture on codes ``x`` ``(N, D)`` float64 -> (parameters in float64, iterations, converged, mean
    log-likelihood). Each step is two large matrix products over the codes (:class:`_Codes`)."""
    codes = _Codes.of(x, covariance)
    params = _initialise(codes, k, covariance, g)
    previous, converged, iteration = -math.inf, False, 0
    for iteration in range(1, max_iterations + 1):
        log_p = codes.log_probs(params, covariance)  # (N, K), log pi_k + log N(x | k)
        total = torch.logsumexp(log_p, dim=1)  # (N,)
        ll = float(total.double().mean())
        resp = (log_p - total[:, None]).exp_()  # E step: responsibilities (N, K)
        params = codes.m_step(resp, covariance, total)
        if ll - previous < tol:
            converged = True
            break
        previous = ll
    final = float(torch.logsumexp(codes.log_probs(params, covariance), dim=1).double().mean())
    return codes.uncentred(params), iteration, converged, final


class _Codes:
    """The codes as EM's matrix products take them: centred on their mean (in float32, so products near zero lose
    little to cancellation) and their second-order terms: for full covariances the upper triangle of each code's
    outer product ``x_i x_j`` (i <= j, ``T = D (D + 1) / 2`` columns), for diagonal ones the squares. Then

        E step:  |x - mu_k|^2_(Sigma_k^-1) = pairs(x) . w_k - 2 x . (Sigma_k^-1 mu_k) + mu_k^T Sigma_k^-1 mu_k,
        M step:  E_k[x x^T] = resp_k . pairs / N_k,

    each one product ``(N, T) @ (T, K)`` over all codes and components (Bishop 2006, Eqs. 9.23-9.26), instead of a
    ``(N, K, D)`` tensor of differences: about 4 N K T flops a step. The small ``(K, D, D)`` algebra (Cholesky
    factors, inverses, log-determinants) stays in float64."""

    def __init__(self, x: torch.Tensor, shift: torch.Tensor, pairs: torch.Tensor, rows: torch.Tensor,
                 cols: torch.Tensor):
        self.x, self.shift, self.pairs, self.rows, self.cols = x, shift, pairs, rows, cols

    @classmethod
    def of(cls, x64: torch.Tensor, covariance: str, dtype: torch.dtype = torch.float32) -> _Codes:
        """``x64`` ``(N, D)`` float64 centred, in ``dtype`` (float32 for the fit's products; float64 for
        :meth:`GaussianMixturePrior.log_prob`)."""
        shift = x64.mean(0)  # (D,)
        x = (x64 - shift).to(dtype)  # (N, D)
        d = x.shape[1]
        if covariance == "diag":
            rows = cols = torch.arange(d)
        else:
            rows, cols = torch.triu_indices(d, d)
        return cls(x, shift, x[:, rows] * x[:, cols], rows, cols)

    def log_probs(self, p: _Params, covariance: str) -> torch.Tensor:
        """``log pi_k + log N(x_n; mu_k, Sigma_k)`` ``(N, K)`` in the codes' dtype, ``p`` in centred coordinates."""
        d = self.x.shape[1]
        if covariance == "diag":
            prec = 1.0 / p.cov  # (K, D)
            weights, half_logdet = prec, 0.5 * p.cov.log().sum(-1)
        else:
            prec = torch.cholesky_inverse(p.cov)  # (K, D, D) Sigma_k^-1 from the Cholesky factors
            twice = torch.where(self.rows == self.cols, 1.0, 2.0).to(prec)  # x^T A x over the upper triangle
            weights = prec[:, self.rows, self.cols] * twice  # (K, T)
            half_logdet = p.cov.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
        pm = prec * p.means if covariance == "diag" else torch.einsum("kij,kj->ki", prec, p.means)  # (K, D)
        const = (p.means * pm).sum(1)  # (K,) mu^T Sigma^-1 mu
        dtype = self.x.dtype
        maha = self.pairs @ weights.to(dtype).T - 2 * self.x @ pm.to(dtype).T + const.to(dtype)  # (N, K)
        base = (p.log_weights - 0.5 * d * math.log(2 * math.pi) - half_logdet).to(dtype)
        return base - 0.5 * maha.clamp_min_(0)

    def m_step(self, resp: torch.Tensor, covariance: str, total: torch.Tensor) -> _Params:
        """Weights, means and covariances from responsibilities ``(N, K)``; a component left with (almost) no codes
        is restarted on the code the fit explains worst (one each), so every component describes data."""
        counts = resp.sum(0, dtype=torch.float64)  # (K,)
        empty = counts < 1e-3
        if empty.any():
            worst = total.argsort()[: int(empty.sum())]
            resp = resp.clone()
            resp[:, empty] = 0.0
            resp[worst, empty.nonzero().flatten()] = 1.0
            counts = resp.sum(0, dtype=torch.float64)
        counts = counts + 10 * torch.finfo(torch.float64).eps
        means = (resp.T @ self.x).double() / counts[:, None]  # (K, D)
        second = (resp.T @ self.pairs).double() / counts[:, None]  # (K, T): E_k[x_i x_j]
        log_weights = (counts / counts.sum()).log()
        if covariance == "diag":
            return _Params(log_weights, means, (second - means**2).clamp_min(0) + REG_COVAR)
        k, d = means.shape
        cov = torch.zeros(k, d, d, dtype=torch.float64)
        cov[:, self.rows, self.cols] = second
        cov[:, self.cols, self.rows] = second
        cov = cov - means[:, :, None] * means[:, None, :] + REG_COVAR * torch.eye(d, dtype=torch.float64)
        return _Params(log_weights, means, torch.linalg.cholesky(cov))

    def uncentred(self, p: _Params) -> _Params:
        return _Params(p.log_weights, p.means + self.shift, p.cov)

    def centred(self, p: _Params) -> _Params:
        return _Params(p.log_weights, p.means - self.shift, p.cov)


@dataclass
class _Params:
    log_weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, D)
    cov: torch.Tensor  # full: Cholesky factors (K, D, D); diag: variances (K, D)


def _initialise(codes: _Codes, k: int, covariance: str, g: torch.Generator) -> _Params:
    """k-means++ seeds (Arthur & Vassilvitskii 2007) and ten Lloyd iterations, then each cluster's weight, mean and
    covariance as EM's starting point."""
    assign, _ = kmeans(codes.x, k, g, iterations=10, restarts=1)
    resp = torch.nn.functional.one_hot(assign, k).float()
    return codes.m_step(resp, covariance, torch.zeros(len(codes.x)))
