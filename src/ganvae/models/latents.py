"""Latent priors: where a model's latents come from, as one object with one contract (STYLE.md, Pattern 19).

Three kinds, built once from the model's config by :func:`ganvae.models.base.build_latent_prior`:

- :class:`StandardNormalPrior`: ``z ~ N(0, I)``, the prior every family trains with.
- :class:`PseudoClassPrior`: a self-conditioned GAN's latent, ``z`` and one of ``K`` pseudo-classes as a one-hot
  ``(Z + K,)``, the class drawn by its share of the training images (Liu et al. 2020, Sec. 3). The shares are those
  the model's training-time :class:`~ganvae.models.self_conditioning.PseudoClasses` measured; the prior reads them.
- :class:`~ganvae.models.prior.GaussianMixturePrior`: a mixture fitted to an encoder model's posterior means after
  training (Ghosh et al. 2020), one per class for a conditional model; N(0, I) until it is fitted.

Every front end (the CLI's writers, the Python pipeline, the explorer, the ONNX sampler, the report, the trainer's
grids) draws through this contract and never asks which kind is in force:

- :meth:`LatentPrior.draw`: ``n`` latents from a ``torch.Generator`` (on its device), of classes ``labels``.
- :meth:`LatentPrior.noise` and :meth:`LatentPrior.transform`: the same draw as uniforms and normals turned into
  latents by a traceable function (the ONNX sampler's graph; class grids keep a column's noise across classes).
- :meth:`LatentPrior.path`: the way between two latents (spherical for N(0, I), straight among a mixture's codes).
- :meth:`LatentPrior.class_grid`, :meth:`LatentPrior.split`, :meth:`LatentPrior.describe`,
  :meth:`LatentPrior.fit` (a clear refusal where the kind cannot be fitted) and :meth:`LatentPrior.forget`.

The state a prior needs is saved with the model (a mixture's buffers under ``latent_prior.``; the pseudo-classes'
shares under ``pseudo_classes.``, where the training object keeps them), as tensors, never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ganvae.errors import ConfigError

if TYPE_CHECKING:
    from ganvae.models.self_conditioning import PseudoClasses


@dataclass
class MixtureFit:
    """What one EM fit did: ``log_likelihood`` is the mean log-density of the codes under the fit (nats per code)."""

    n: int
    components: int
    covariance: str
    iterations: int
    converged: bool
    log_likelihood: float
    seconds: float

    def record(self, prior: str, dataset: str, seed: int) -> dict:
        """What a fit of ``prior`` (``model.latent_prior.describe()``) to the codes of ``dataset`` with ``seed`` did, as
        ``ganvae fit-prior`` returns it and a training run's ``summary.json`` keeps it (``prior_fit``)."""
        return {"prior": prior, "codes": self.n, "dataset": dataset, "seed": seed, "iterations": self.iterations,
                "converged": self.converged, "log_likelihood": self.log_likelihood, "seconds": self.seconds}


class LatentPrior(nn.Module):
    """The contract of a latent prior (see the module docstring). Subclasses set :attr:`dim` and implement
    :meth:`draw`, :meth:`transform` and :meth:`describe`; the rest has defaults that fit N(0, I)."""

    fittable: ClassVar[bool] = False  # whether fit() can fit it to an encoder's codes

    def __init__(self, noise_dim: int):
        super().__init__()
        self.noise_dim = noise_dim  # width of the normal noise a draw starts from
        self.dim = noise_dim  # width of the latents it gives (what the decoder takes)
        self.latent_classes = 0  # classes the latent itself carries (a self-conditioned model's pseudo-classes)

    @property
    def kind(self) -> str:
        """What draws the latents now, as an export's record names it: normal, self-conditioned or gmm."""
        return "normal"

    @property
    def is_fitted(self) -> bool:
        """Whether a fitted density is in force (only a fitted mixture's is)."""
        return False

    def draw(self, n: int, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latents ``(n, dim)`` float32 on ``generator``'s device (the CPU without one); a conditional
        mixture draws each from the class ``labels[i]`` ``(n,)`` int64 asks for (class weights ``(n, K)`` and None
        draw from the mixture of classes). The same generator state gives the same latents, and the k-th latent
        does not depend on how many are drawn (:meth:`noise`)."""
        return self.transform(*self.noise(n, generator), labels)

    def noise(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`transform` turns into latents: uniforms ``(n, 2)`` (a class, a component) and a standard
        normal ``(n, noise_dim)``, from ``generator``, image by image (:func:`per_image_noise`)."""
        return per_image_noise(n, self.noise_dim, generator)

    def transform(self, uniform: torch.Tensor, normal: torch.Tensor,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (:meth:`noise`) -> latents ``(n, dim)`` on ``normal``'s device, by operations a graph export can
        trace with a dynamic batch (the ONNX sampler calls it)."""
        raise NotImplementedError

    def class_grid(self, cols: int, classes: list[int], generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """A class grid's inputs: one row per class of ``classes``, ``cols`` columns, each column from the same noise
        in every row (its "style") -> latents ``(K*cols, dim)`` on the CPU and labels ``(K*cols,)``. Here a column's
        latent is repeated down the rows."""
        from ganvae.models.conditioning import class_grid_inputs

        return class_grid_inputs(self.draw(cols, generator).cpu(), classes)

    def path(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Latents between ``a`` and ``b`` ``(..., dim)`` at fractions ``t`` ``(T,)`` -> ``(T, ..., dim)``:
        spherical (:func:`slerp`), as Gaussian latents concentrate near a sphere."""
        return slerp(a, b, t)

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A latent ``(B, dim)`` -> the generator's noise ``(B, noise_dim)`` and class weights ``(B, K)`` when the
        latent carries a class (pseudo-classes), else None."""
        return z, None

    def describe(self) -> str:
        """This prior as protocols, model cards and reports state it."""
        raise NotImplementedError

    def fit(self, codes: torch.Tensor, groups: torch.Tensor | None = None, seed: int = 0) -> MixtureFit:
        """Fit the prior to an encoder's codes ``(N, dim)`` (of classes ``groups`` ``(N,)``); refused by the kinds
        that cannot be fitted."""
        raise PriorNotFittable(f"this model has no learned prior: it draws its latents from {self.describe()}, which "
                               f"is not fitted to data (model.prior is normal, or the family has no encoder)")

    def forget(self) -> None:
        """Drop a fit (a resumed run fits its prior again to the weights it ends with); nothing to drop here."""


class PriorNotFittable(ConfigError, ValueError):
    """``fit`` on a prior that cannot be fitted (N(0, I), pseudo-classes)."""


class StandardNormalPrior(LatentPrior):
    """``z ~ N(0, I)`` over ``noise_dim`` latents."""

    def transform(self, uniform, normal, labels=None):
        return normal

    def describe(self) -> str:
        return "normal: N(0, I)"


class PseudoClassPrior(LatentPrior):
    """A self-conditioned GAN's latent ``(Z + K,)``: noise ``z ~ N(0, I)`` and a pseudo-class as a one-hot, drawn by
    its share of the training images (``pseudo_classes.counts``, kept and saved by the training object). A walk
    between two such latents blends the classes' embeddings (:meth:`split` normalises the weights)."""

    _pseudo_classes: PseudoClasses  # the model's training object (not a submodule; see __init__)

    def __init__(self, noise_dim: int, pseudo_classes: PseudoClasses):
        super().__init__(noise_dim)
        self.k = self.latent_classes = pseudo_classes.k
        self.dim = noise_dim + self.k
        # a reference, not a submodule: the model owns (saves, moves, broadcasts) the pseudo-classes
        object.__setattr__(self, "_pseudo_classes", pseudo_classes)

    @property
    def kind(self) -> str:
        return "self-conditioned"

    def transform(self, uniform, normal, labels=None):
        """As :meth:`LatentPrior.transform`; ``labels`` ``(n,)`` int64 here name pseudo-classes (the collapse check
        asks for each in turn), else each is drawn by its share with ``uniform[:, 0]``."""
        if labels is None:
            counts = self._pseudo_classes.counts.to(normal.device).float()
            labels = inverse_cdf(counts / counts.sum(), uniform[:, 0])  # (n,)
        one_hot = labels.to(normal.device)[:, None] == torch.arange(self.k, device=normal.device)  # (n, K), traceable
        return torch.cat([normal, one_hot.to(normal)], dim=1)

    def split(self, z):
        noise, weights = z[:, : self.noise_dim], z[:, self.noise_dim :].clamp_min(0)
        total = weights.sum(1, keepdim=True)
        uniform = torch.full_like(weights, 1.0 / weights.shape[1])
        return noise, torch.where(total > 1e-8, weights / total.clamp_min(1e-8), uniform)

    def describe(self) -> str:
        return (f"normal: N(0, I), with one of {self.k} self-conditioning clusters drawn by its share of the "
                f"training images")


def per_image_noise(n: int, width: int, generator: torch.Generator | None = None,
                    device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniforms ``(n, 2)`` and standard normals ``(n, width)`` on ``generator``'s device (else ``device``, else the
    CPU), drawn image by image (two uniforms, then ``width`` normals, for each in turn), so that the k-th image of a
    seed does not depend on how many are drawn: ``draw(16)[:4]`` equals ``draw(4)`` (a whole-batch draw would not:
    torch fills large normal tensors in blocks, and a class for every image before any noise shifts the stream)."""
    device = generator.device if generator is not None else (device or torch.device("cpu"))
    uniform, normal = torch.empty(n, 2, device=device), torch.empty(n, width, device=device)
    for i in range(n):
        torch.rand(2, generator=generator, device=device, out=uniform[i])
        torch.randn(width, generator=generator, device=device, out=normal[i])
    return uniform, normal


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Probabilities ``(K,)`` (shared) or ``(n, K)`` (a row each) and uniforms ``(n,)`` -> the index each uniform
    falls on ``(n,)``. Broadcast rather than expanded to ``n``, so a traced graph (the ONNX export) keeps its batch
    size dynamic."""
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]  # ends at exactly 1: trailing zero-weight components are never drawn
    return (u[:, None] > cdf).sum(1).clamp(max=probs.shape[-1] - 1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents ``a`` and ``b`` ``(..., Z)`` at fractions ``t`` ``(T,)``.

    Gaussian latents concentrate near a sphere; slerp stays on it where a straight line
    would pass through the low-probability centre (White 2016, "Sampling Generative Networks").
    Returns ``(T, ..., Z)``.
    """
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    a_n, b_n = a / norm_a.clamp_min(1e-12), b / norm_b.clamp_min(1e-12)
    omega = torch.acos((a_n * b_n).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))  # (...)
    t = t.view(-1, *([1] * a.dim()))
    so = torch.sin(omega).unsqueeze(-1)
    lerp = (1 - t) * a + t * b
    spherical = torch.sin((1 - t) * omega.unsqueeze(-1)) / so * a + torch.sin(t * omega.unsqueeze(-1)) / so * b
    # no angle to follow when the two are (anti)parallel or either is the origin: the straight line
    straight = (so.abs() < 1e-6) | (norm_a < 1e-12) | (norm_b < 1e-12)
    return torch.where(straight, lerp, spherical)


def straight_path(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(1 - t) a + t b`` ``(T, ..., Z)``: the path between two codes of a fitted mixture, whose latents lie around
    its components' means rather than on a sphere about the origin (a straight line between codes stays among them)."""
    t = t.view(-1, *([1] * a.dim()))
    return (1 - t) * a + t * b
