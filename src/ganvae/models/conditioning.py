"""Class conditioning, shared by every family (``model.conditional: true``).

- Generators and decoders see the class as a learned embedding appended to z (the conditional GAN of Mirza &
  Osindero 2014, with an embedding instead of a one-hot vector), initialised small for GAN generators and at
  N(0, 1) for decoders (``class_embedding_std``; why, at :class:`LabelledGenerator`).
- Encoders of conditional VAEs see it too (Sohn et al. 2015, "Learning Structured Output Representation using
  Deep Conditional Generative Models", the CVAE: q(z|x, y), p(x|z, y)), as one extra input channel holding a
  learned per-class map: :class:`LabelledEncoder`. A network whose input is the image then needs no other change.
- Discriminators take the projection form (Miyato & Koyama 2018, "cGANs with Projection Discriminator", Eq. 3):
  ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``; or, with ``class_conditioning: acgan``, the auxiliary-classifier
  form (Odena et al. 2017, AC-GAN): a second head predicts the class, and both players add its cross-entropy:
  :class:`ConditionalDiscriminator`.

Unconditional models build exactly the networks they built before conditioning existed (the same parameter names),
so their checkpoints load unchanged. Labels are class indices ``(B,)`` int64 in ``[0, num_classes)`` (for sampling
also class weights ``(B, K)``, a blend of two classes' embeddings); a dataset's labels are used as they are
(``--classes 3,7`` trains on labels 3 and 7 of 10 embeddings, and the model then draws only those).
"""

from __future__ import annotations

import enum
import logging

import torch
from torch import nn

from ganvae.errors import ConfigError, FieldConfigError
from ganvae.models.configs import AUTO_PSEUDO_CLASSES

log = logging.getLogger(__name__)

LARGE_PSEUDO_CLASS_COUNT = 100  # model.self_conditioning above this is warned about: its clustering takes minutes


def pseudo_class_count(config) -> int:
    """How many pseudo-classes a model self-conditions on (``model.self_conditioning``; Liu et al. 2020): its value,
    or for ``null`` (auto) :data:`AUTO_PSEUDO_CLASSES` when unconditional and 0 when conditional (the labels are the
    classes); 0 for the families without self-conditioning."""
    if not hasattr(config, "self_conditioning"):
        return 0
    if config.self_conditioning is None:
        return 0 if config.conditional else AUTO_PSEUDO_CLASSES
    return config.self_conditioning


def check_pseudo_classes(config, n_images: int) -> None:
    """Before any clustering (the settings checked against the data, as the trainer loads it): a self-conditioned
    model needs at least as many training images as pseudo-classes, and a large K is slow (its spectral embedding
    has K dimensions, each k-means restart K seeds), which is said once."""
    k = pseudo_class_count(config)
    if k > n_images:
        raise FieldConfigError("model.self_conditioning", k, f"{{given}}: {n_images} training images cannot form {k} "
                               f"pseudo-classes; set it below {n_images} ({AUTO_PSEUDO_CLASSES} is the measured "
                               f"default), or to 0 for none.", reason=f"at most {n_images}, the training images")
    if k > LARGE_PSEUDO_CLASS_COUNT:
        log.warning("model.self_conditioning=%d: clustering %d images into %d pseudo-classes takes far longer than "
                    "the %d measured (its time grows with K squared); it stops at --max-minutes and Ctrl-C", k,
                    n_images, k, AUTO_PSEUDO_CLASSES)


def label_count(config) -> int:
    """How many label values the networks embed: ``num_classes`` when conditional, the pseudo-classes
    (:func:`pseudo_class_count`) when self-conditioned, 0 when the networks take no labels."""
    if config.conditional:
        return config.num_classes
    return pseudo_class_count(config)


def generator_input_dim(config) -> int:
    """What a generator's or decoder's first layer takes: z, and the class embedding when it takes labels."""
    return config.latent_dim + (config.class_embedding_dim if label_count(config) else 0)


def encoder_input_shape(config, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The images an encoder sees: ``(C, H, W)``, plus the class map channel when conditional."""
    c, h, w = image_shape
    return (c + 1, h, w) if config.conditional else (c, h, w)


def embed(embedding: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
    """Class indices ``(B,)`` -> their embeddings ``(B, D)``; class weights ``(B, K)`` (float, rows summing to 1)
    -> the weighted mix of the embeddings, which morphs one class into another (``--between-digits``)."""
    if labels.is_floating_point():
        return labels.to(embedding.weight.dtype) @ embedding.weight
    return embedding(labels)


class LabelledGenerator(nn.Module):
    """``net(cat(z, embed(y)), ...)``: ``(B, Z)``, ``(B,)`` -> whatever ``net`` returns; further arguments (the
    CPPN's resolution) pass through."""

    def __init__(self, net: nn.Module, num_classes: int, dim: int, init_std: float = 1.0):
        super().__init__()
        self.net = net
        self.embedding = nn.Embedding(num_classes, dim)
        # How strongly the class speaks at the start decides what the network learns to use (model.
        # class_embedding_std). A GAN generator given a strong class input (N(0, 1)) drew one image per class
        # whatever z; a decoder given a weak one reads the class from the encoder's z and then ignores the label
        # (benchmarks/RESULTS.md, "The class embedding's initial scale").
        nn.init.normal_(self.embedding.weight, std=init_std)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.net(torch.cat([z, embed(self.embedding, labels).to(z.dtype)], dim=1), *args, **kwargs)


class LabelledEncoder(nn.Module):
    """``net(cat(x, map(y)))`` along channels: ``(B, C, H, W)``, ``(B,)`` -> ``net``'s ``(mu, logvar)``; ``map(y)``
    is a learned ``(1, H, W)`` image per class (initialised at 0, so training starts from the unconditional
    encoder's view of the image)."""

    def __init__(self, net: nn.Module, num_classes: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.net = net
        self.map_shape = (1, image_shape[1], image_shape[2])
        self.embedding = nn.Embedding(num_classes, image_shape[1] * image_shape[2])
        nn.init.zeros_(self.embedding.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor):
        maps = embed(self.embedding, labels).to(x.dtype).view(-1, *self.map_shape)
        return self.net(torch.cat([x, maps], dim=1))


class ConditionalDiscriminator(nn.Module):
    """A discriminator with ``features_and_logit(x) -> (phi (B, F), logit (B, 1))`` and ``n_projection_features``,
    made conditional.

    - ``projection``: ``logit + sum(embed(y) * phi)`` ``(B, 1)`` (Miyato & Koyama 2018, Eq. 3). For a convolutional
      discriminator ``phi`` is its last feature map summed over positions, as in the paper's networks (a class
      vector per channel, not a pixel template per class).
    - ``acgan``: ``(B, 1 + K)``: the unconditional logit, then ``K`` class logits from a second head on the same
      features (Odena et al. 2017); the labels are not an input. :func:`split_logits` separates the two.
    """

    def __init__(self, net: nn.Module, num_classes: int, mode: str = "projection"):
        super().__init__()
        self.net = net
        self.mode = mode
        n_features = net.n_projection_features
        if mode == "projection":
            self.embedding = nn.Embedding(num_classes, n_features)
            nn.init.normal_(self.embedding.weight, std=0.02)  # starts close to the unconditional discriminator
        else:
            self.classifier = nn.Linear(n_features, num_classes)

    @property
    def features(self) -> nn.Module:
        """The convolutional features (the VAE-GAN's learned similarity reads them)."""
        return self.net.features

    def cluster_features(self, x: torch.Tensor) -> torch.Tensor:
        """What self-conditioning clusters: the wrapped discriminator's own features, labels not involved."""
        return self.net.cluster_features(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        phi, logit = self.net.features_and_logit(x)  # (B, F), (B, 1)
        if self.mode == "projection":
            return logit + (embed(self.embedding, labels).to(phi.dtype) * phi).sum(1, keepdim=True)
        return torch.cat([logit, self.classifier(phi)], dim=1)


def conditioned_generator(net: nn.Module, config) -> nn.Module:
    """``net`` (built for :func:`generator_input_dim` inputs), taking labels when the config gives it any
    (:func:`label_count`)."""
    if not label_count(config):
        return net
    return LabelledGenerator(net, label_count(config), config.class_embedding_dim, config.class_embedding_std)


def conditioned_encoder(net: nn.Module, config, image_shape: tuple[int, int, int]) -> nn.Module:
    """``net`` (built for :func:`encoder_input_shape` images), taking labels when ``config.conditional``."""
    return LabelledEncoder(net, config.num_classes, image_shape) if config.conditional else net


def conditioned_discriminator(net: nn.Module, config) -> nn.Module:
    """``net``, taking labels when the config gives it any (projection unless the config asks for acgan)."""
    if not label_count(config):
        return net
    return ConditionalDiscriminator(net, label_count(config), getattr(config, "class_conditioning", "projection"))


def split_logits(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A discriminator's output -> (real/fake logits ``(B, 1)``, class logits ``(B, K)`` or None)."""
    return (out[:, :1], out[:, 1:]) if out.shape[1] > 1 else (out, None)


def call(net: nn.Module, x: torch.Tensor, labels: torch.Tensor | None, *args, **kwargs):
    """``net(x, labels, ...)`` for a conditional network, ``net(x, ...)`` for an unconditional one (``labels``
    None): one call site for both."""
    return net(x, *args, **kwargs) if labels is None else net(x, labels, *args, **kwargs)


class LabelPolicy(str, enum.Enum):
    """What a conditional model draws when no class is asked for: the one policy every front end follows.

    - ``BALANCED``: the trained classes in turn, a class-balanced request (evaluation, in-training metrics,
      ``sample_images``, ``Pipeline.sample``).
    - ``CLASS_GRID``: one row per trained class, ``ceil(n / K)`` columns (grids a person looks at: ``ganvae sample``,
      the report, the per-epoch grids; the rows' latents come from ``LatentPrior.class_grid``).
    - ``FIRST_CLASS``: every sample of the first trained class (a latent seen as one digit: walks, renders, the
      explorer).
    """

    BALANCED = "balanced"
    CLASS_GRID = "class-grid"
    FIRST_CLASS = "first-class"


def default_labels(classes: list[int] | tuple[int, ...], n: int, policy: LabelPolicy, start: int = 0,
                   device=None) -> torch.Tensor:
    """The labels of ``n`` samples under ``policy`` (:class:`LabelPolicy`): ``(n,)``, or ``(K * ceil(n / K),)``
    for a class grid (whole rows). ``start``: where a balanced request's cycle begins (a rank's share)."""
    if policy is LabelPolicy.BALANCED:
        return balanced_labels(n, classes, device=device, start=start)
    if policy is LabelPolicy.CLASS_GRID:
        cols = -(-n // len(classes))
        return torch.as_tensor(list(classes), dtype=torch.long, device=device).repeat_interleave(cols)
    if policy is LabelPolicy.FIRST_CLASS:
        return torch.full((n,), classes[0], dtype=torch.long, device=device)
    raise ValueError(f"unknown label policy {policy!r}; one of {[p.value for p in LabelPolicy]}")


def balanced_labels(n: int, classes: list[int] | tuple[int, ...], device=None, start: int = 0) -> torch.Tensor:
    """``n`` labels cycling through ``classes`` (``[c0, c1, ..., c0, ...]``), from position ``start`` of the cycle
    (a rank's share of one balanced request starts where the previous rank's ended): a class-balanced request."""
    classes_t = torch.as_tensor(list(classes), dtype=torch.long, device=device)
    return classes_t[(start + torch.arange(n, device=device)) % len(classes_t)]


def class_grid_inputs(z: torch.Tensor, classes: list[int] | tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A class grid's inputs: the same ``cols`` latents ``(cols, Z)`` in every row, one row per class ->
    latents ``(K*cols, Z)`` and labels ``(K*cols,)`` in row-major order (tile with ``nrow=cols``): each column shows
    one "style" across all classes."""
    labels = default_labels(classes, len(classes) * z.shape[0], LabelPolicy.CLASS_GRID)
    return z.repeat(len(classes), 1), labels


def trained_classes(config) -> list[int]:
    """The classes a conditional run was trained on: ``data.classes``, or all ``model.num_classes``."""
    if config.data.classes:
        return sorted(config.data.classes)
    return list(range(config.model.num_classes))


def check_labels(model, labels, n: int) -> torch.Tensor | None:
    """The one check of the labels a caller gives ``model`` for ``n`` samples: ``(n,)`` int64 on the model's device
    (an int or a single label: the class of all ``n``), class weights ``(n, K)`` as they are, or None for an
    unconditional model. A clear error, naming the classes the model was trained on, for labels given to an
    unconditional model, missing for a conditional one, of the wrong size or kind, or outside those classes."""
    name = type(model).__name__
    if not model.conditional:
        if labels is not None:
            raise ValueError(f"this {name} is not conditional (trained with model.conditional=false): it cannot be "
                             "asked for a class; drop the labels.")
        return None
    classes = model.classes
    if labels is None:
        raise ValueError(f"this {name} is conditional: it needs the class of each sample, among {classes}.")
    k = model.config.num_classes
    labels = torch.as_tensor(labels, device=model.device)
    if labels.is_floating_point() and labels.dim() == 2:  # class weights: a blend of classes
        if labels.shape != (n, k):
            raise ValueError(f"class weights of shape {tuple(labels.shape)} for {n} samples: give ({n}, {k}).")
        untrained = [c for c in range(k) if c not in classes]
        if (labels < 0).any() or not torch.allclose(labels.sum(1), torch.ones(n, device=labels.device), atol=1e-4) \
                or (untrained and labels[:, untrained].abs().sum() > 0):
            raise ValueError(f"class weights must be non-negative, sum to 1 in each row and weigh only the "
                             f"classes the model was trained on, {classes}.")
        return labels
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("labels must be whole class numbers (or (n, K) class weights); got fractions.")
    labels = labels.to(torch.long).reshape(-1)
    if labels.numel() == 1:
        labels = labels.expand(n).clone()  # one class for every sample
    if labels.numel() != n:
        raise ValueError(f"{labels.numel()} labels for {n} samples: give one label per sample, or one for all, "
                         f"among {classes}.")
    outside = sorted(set(labels.tolist()) - set(classes))
    if outside:
        raise ValueError(f"labels {outside[:10]}: this model was trained on classes {classes}; choose among them.")
    return labels


def step_labels(config, ctx) -> torch.Tensor | None:
    """The batch's labels a training step trains on (``ctx.labels``: the data's classes, or a self-conditioned
    model's pseudo-classes), or None when the networks take no labels (:func:`label_count`); an error when the
    networks need them and the caller gave none."""
    if not label_count(config):
        return None
    if ctx.labels is None:
        raise ValueError("a conditional or self-conditioned model's training step needs the batch's labels "
                         "(StepContext.labels, from GenerativeModel.training_labels)")
    return ctx.labels


def check_conditional_data(cfg, data) -> None:
    """A conditional run needs the labels of its ``data`` (an ``ImageData``) to be the classes it is told of
    (``trained_classes``); a clear error naming both and the settings to change.

    A conditional model needs the data's labels to be the classes it is told of (``trained_classes``)."""
    found = sorted(set(data.train_labels.unique().tolist()))
    expected = trained_classes(cfg)
    if found != expected:  # expected lies below model.num_classes (config validation)
        raise ConfigError(
            f"model.conditional: the training data holds classes {found}, but the run describes {expected} "
            f"(model.num_classes={cfg.model.num_classes}, data.classes={cfg.data.classes}); set "
            f"--set model.num_classes={max(found) + 1} and, for a subset, --classes {','.join(map(str, found))}.")
