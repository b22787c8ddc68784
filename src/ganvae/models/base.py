"""The objective layer shared by every family.

A *model* here owns its networks (plain ``nn.Module``s from ``blocks.py`` or its own
file), its losses, its optimisers and its training step; the trainer calls only the
methods below and knows nothing family-specific (Pattern 3 of STYLE.md).
"""

from __future__ import annotations

import contextlib
import copy
from typing import ClassVar, Iterator

import torch
from torch import nn

from ganvae.common.pixels import ValueRange, from_unit, to_unit
from ganvae.errors import UnsupportedOperation
from ganvae.models.conditioning import (
    LabelPolicy,
    call,
    check_labels,
    default_labels,
    pseudo_class_count,
    split_logits,
    step_labels,
)
from ganvae.models.ema import ema_decay_at, update_ema
from ganvae.models.latents import LatentPrior, MixtureFit, PseudoClassPrior, StandardNormalPrior
from ganvae.models.losses import class_cross_entropy, discriminator_loss, generator_loss, mode_seeking_loss, r1_penalty
from ganvae.models.prior import GaussianMixturePrior
from ganvae.models.self_conditioning import PseudoClasses, pixel_cluster_features
from ganvae.models.step import StepContext


def build_latent_prior(config, *, encoder: bool, pseudo_classes: PseudoClasses | None = None) -> LatentPrior:
    """The latent prior of a model with ``config`` (:mod:`ganvae.models.latents`; the one place that decides which
    kind is in force): pseudo-classes for a self-conditioned model (its ``pseudo_classes``, whose number
    :func:`~ganvae.models.conditioning.pseudo_class_count` decides), a mixture for an encoder model with
    ``model.prior: gmm`` (one per class when conditional, ``prior_components`` shared among them:
    benchmarks/RESULTS.md, "Learned prior"), else N(0, I)."""
    if pseudo_classes is not None:
        return PseudoClassPrior(config.latent_dim, pseudo_classes)
    if encoder and getattr(config, "prior", "normal") == "gmm":  # a plugin's encoder family may have no such field
        groups = config.num_classes if config.conditional else 1
        return GaussianMixturePrior(config.latent_dim, max(1, config.prior_components // groups),
                                    config.prior_covariance, groups)
    return StandardNormalPrior(config.latent_dim)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def adam(params, lr: float, beta1: float, beta2: float) -> torch.optim.Adam:
    """Adam (Kingma & Ba 2015) in its fused form: one pass over parameters, gradients and moments.

    The same update as the default implementation; on CPU the fused kernel is several times
    faster than the foreach one, whose Adam step cost more than the MLP GAN's own forward and
    backward (benchmarks/RESULTS.md, "What made the defaults fast"). Falls back to foreach where fused is
    unsupported.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=True)
    except RuntimeError:  # e.g. a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), foreach=True)


class GenerativeModel(nn.Module):
    """Base of every family: the step contract the trainer calls, EMA, and encode/decode/generate.

    Subclasses set the class attributes (their capabilities), build their networks in ``__init__`` and implement
    :meth:`make_optimizers`, :meth:`training_step`, :meth:`decode`; encoder models also :meth:`encode`. Where the
    latents come from is :attr:`latent_prior` (:mod:`ganvae.models.latents`), built once from the config.
    """

    value_range: ClassVar[ValueRange] = "tanh"  # range of the images the networks see and produce
    has_encoder: ClassVar[bool] = False  # can reconstruct and has a likelihood bound
    renders_any_size: ClassVar[bool] = False  # generator is a function of pixel coordinates (CPPN)
    networks: ClassVar[tuple[str, ...]] = ()  # trainable sub-networks, each wrapped once in DDP under torchrun
    # networks whose exponential moving average is used for sampling and evaluation when config.ema_decay is set (a
    # family that names any must have that config field)
    ema_networks: ClassVar[tuple[str, ...]] = ()
    # networks only training needs (a GAN's critic): an export leaves them out, and sampling never calls them
    training_only_networks: ClassVar[tuple[str, ...]] = ()
    # state outside the networks that only training needs (a self-conditioned GAN's pseudo-labels of its training
    # images): an export leaves it out
    training_only_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, image_shape: tuple[int, int, int] = (1, 28, 28),
                 pseudo_classes: PseudoClasses | None = None):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)  # (C, H, W)
        self.noise_dim: int = config.latent_dim  # the generator's noise z
        self._classes: list[int] | None = None  # the trained classes of a conditional model (see ``classes``)
        self.latent_prior: LatentPrior = build_latent_prior(config, encoder=self.has_encoder,
                                                            pseudo_classes=pseudo_classes)
        # what decode takes: z, or for a self-conditioned model z and its pseudo-class as a one-hot (Z + K,), so that
        # every front end's latent maths (walks, sliders, inversion) works on it unchanged
        self.latent_dim: int = self.latent_prior.dim

    # ---- what the trainer calls
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, x: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer],
                      ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch ``x`` ``(B, C, H, W)`` in :attr:`value_range`, with the batch's labels
        in ``ctx.labels`` (:meth:`training_labels`).

        Returns the losses as detached 0-dim tensors (the trainer syncs them to the host
        only once per logging interval).
        """
        raise NotImplementedError

    def training_labels(self, idx: torch.Tensor, data_labels: torch.Tensor) -> torch.Tensor | None:
        """The labels of training images ``idx`` ``(B,)`` the step trains on (``StepContext.labels``): the data's
        for a conditional model, None for one whose networks take no labels."""
        return data_labels.index_select(0, idx) if self.conditional else None

    @torch.no_grad()
    def before_epoch(self, epoch: int, images: torch.Tensor, seed: int = 0) -> dict | None:
        """The trainer's call at the start of each epoch ``epoch`` (from 0) with the training images ``(N, C, H, W)``
        uint8. Returns what it did (the trainer logs it; the buffers of ``info["module"]`` are sent from rank 0 to
        every rank), or None; nothing here."""
        return None

    def after_step(self, step: int) -> None:
        """Hook after optimisation step ``step`` (counted from 0): updates the EMA copies."""
        if not self.ema_networks or self.config.ema_decay is None:
            return
        d = ema_decay_at(self.config.ema_decay, step)
        for name in self.ema_networks:
            update_ema(self._modules[f"ema_{name}"], self._modules[name], d)  # _modules: the plain network, not DDP

    # ---- exponential moving average of the sampling networks
    def _init_ema(self) -> None:
        """Create ``ema_<name>`` for each of :attr:`ema_networks` (call at the end of ``__init__``).

        The copies are submodules, so they are saved in checkpoints and moved with the model;
        they get no gradients and are updated only by :meth:`after_step`.
        """
        enabled = bool(self.ema_networks) and self.config.ema_decay is not None
        for name in self.ema_networks:
            ema = copy.deepcopy(self._modules[name]).requires_grad_(False) if enabled else None
            setattr(self, f"ema_{name}", ema)

    @property
    def has_ema(self) -> bool:
        """Whether sampling and evaluation use moving averages of the trained networks."""
        return any(self._modules.get(f"ema_{name}") is not None for name in self.ema_networks)

    def drop_ema(self) -> None:
        """Forget the EMA copies: sampling and evaluation then use the trained networks themselves."""
        for name in self.ema_networks:
            setattr(self, f"ema_{name}", None)

    def inference_network(self, name: str) -> nn.Module:
        """The network ``name`` as sampling and evaluation use it: its EMA copy in eval mode when there is one."""
        ema = self._modules.get(f"ema_{name}")
        if ema is not None and not self.training:
            return ema
        return getattr(self, name)

    def sampling_networks(self) -> tuple[str, ...]:
        """The networks sampling, reconstruction and rendering use, and so what an export keeps: every trained
        network but :attr:`training_only_networks`."""
        return tuple(n for n in self.networks if n not in self.training_only_networks)

    # ---- class conditioning
    @property
    def conditional(self) -> bool:
        """Whether the networks take class labels (``model.conditional``); sampling then needs ``labels``."""
        return bool(getattr(self.config, "conditional", False))  # a plugin family may have no class conditioning

    @property
    def classes(self) -> list[int]:
        """The classes a conditional model may be asked for: those it was trained on (``build_model`` sets them
        from ``data.classes``), else all ``model.num_classes``."""
        return self._classes or list(range(getattr(self.config, "num_classes", 0)))

    @classes.setter
    def classes(self, classes: list[int]) -> None:
        self._classes = sorted(int(c) for c in classes)

    def labels_for(self, n: int, labels=None, policy: LabelPolicy | None = None, start: int = 0
                   ) -> torch.Tensor | None:
        """The labels of ``n`` samples: ``labels`` as asked (checked by
        :func:`~ganvae.models.conditioning.check_labels`), or, when a conditional model is asked for none, those of
        ``policy`` (default balanced; :class:`~ganvae.models.conditioning.LabelPolicy`); None for an unconditional
        model."""
        if labels is not None or not self.conditional:
            return check_labels(self, labels, n)
        return default_labels(self.classes, n, policy or LabelPolicy.BALANCED, start=start)

    # ---- sampling
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Latents (and, for a conditional model, labels ``(B,)``) -> images in :attr:`value_range` (the sampling
        network, EMA copy when enabled)."""
        raise NotImplementedError

    @torch.inference_mode()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 500,
                 **kwargs) -> torch.Tensor:
        """Latents (and labels, conditional models) -> images in [0, 1], in eval mode, in chunks of ``batch_size``."""
        labels = check_labels(self, labels, len(z))
        label_chunks = labels.split(batch_size) if labels is not None else [None] * len(z.split(batch_size))
        with eval_mode(self):
            out = [to_unit(self.decode(chunk.to(self.device), y, **kwargs), self.value_range).float()
                   for chunk, y in zip(z.split(batch_size), label_chunks)]
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               **kwargs) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` in [0, 1] from the prior (of class ``labels`` ``(n,)``, conditional models)."""
        labels = check_labels(self, labels, n)
        return self.generate(self.latent_prior.draw(n, generator, labels), labels, **kwargs)

    # ---- encoder models
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in :attr:`value_range` (and their labels, conditional models) -> ``(mu, logvar)``, each
        ``(B, latent_dim)``."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                    as_labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] -> reconstructions in [0, 1] (decoding the posterior mean). A conditional model encodes
        with ``labels`` and decodes with ``as_labels`` (default: the same): the CVAE's style-and-content swap."""
        labels = check_labels(self, labels, len(x))
        as_labels = labels if as_labels is None else check_labels(self, as_labels, len(x))
        with eval_mode(self):
            mu, _ = self.encode(from_unit(x.to(self.device), self.value_range), labels)
            return to_unit(self.decode(mu, as_labels), self.value_range).float()

    def parameter_count(self) -> int:
        """The parameters training updates: every network's, not the EMA copies (``ema_*``), which follow them."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("ema_"))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def check_step_result(family: str, losses: object) -> dict[str, torch.Tensor]:
    """``losses``, as a family's :meth:`GenerativeModel.training_step` returned them, checked against its contract:
    a non-empty dict of loss name -> 0-dim real tensor. Returns them detached (the contract asks for detached
    tensors; one with a graph would keep the step's activations alive until the losses are logged). Checks types
    and shapes only: no value is read, so the device is not synchronised.

    Raises :class:`~ganvae.errors.UnsupportedOperation` naming ``family`` (the registered name), the method and
    what the contract asks, instead of a ``TypeError`` from deep inside the loss logging."""
    contract = ("the contract (GenerativeModel.training_step) is a dict of loss name -> detached 0-dim tensor, "
                "e.g. {'loss': loss.detach()}")
    if not isinstance(losses, dict) or not losses:
        got = "an empty dict" if isinstance(losses, dict) else f"{type(losses).__name__} {_short(losses)}"
        raise UnsupportedOperation(f"model {family!r}: its training_step returned {got}; {contract}.")
    out = {}
    for name, value in losses.items():
        if not isinstance(name, str):
            raise UnsupportedOperation(f"model {family!r}: its training_step returned a loss named {name!r} "
                                       f"({type(name).__name__}); {contract}, named by strings (the columns of "
                                       f"losses.csv).")
        if not isinstance(value, torch.Tensor) or value.dim() != 0 or value.is_complex():
            got = (f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) and value.dim()
                   else f"a {value.dtype} tensor" if isinstance(value, torch.Tensor)
                   else f"{type(value).__name__} {_short(value)}")
            raise UnsupportedOperation(f"model {family!r}: its training_step returned {got} for loss {name!r}; "
                                       f"{contract} (a 0-dim tensor: loss.mean(), not a batch of losses or a "
                                       f"Python number).")
        out[name] = value.detach() if value.requires_grad else value
    return out


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(repr(value).split())  # one line
    return text if len(text) <= limit else text[: limit - 3] + "..."


@torch.no_grad()
def fit_latent_prior(model: GenerativeModel, images: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0,
                     batch_size: int = 1000) -> MixtureFit:
    """Fit ``model``'s latent prior to the posterior means of ``images`` ``(N, C, H, W)`` (uint8, or float in
    [0, 1]); a conditional model encodes each with its ``labels`` and fits one mixture per class. A prior that cannot
    be fitted refuses (:class:`~ganvae.models.latents.PriorNotFittable`) before any image is encoded."""
    from ganvae.common.pixels import uint8_to_unit
    from ganvae.models.prior import MAX_FIT_IMAGES

    prior = model.latent_prior
    if not prior.fittable:
        prior.fit(torch.empty(0, prior.dim))  # its refusal, naming the prior
    if len(images) > MAX_FIT_IMAGES:  # a seeded subset: the same codes for the same seed
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:MAX_FIT_IMAGES]
        images, labels = images[keep], None if labels is None else labels[keep]
    codes = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(model.device)
            x = uint8_to_unit(x) if x.dtype == torch.uint8 else x.float()
            y = None if labels is None or not model.conditional else labels[start : start + batch_size].to(model.device)
            mu, _ = model.encode(from_unit(x, model.value_range), y)
            codes.append(mu.float().cpu())
    groups = labels.long().cpu() if labels is not None and model.conditional else None
    return prior.fit(torch.cat(codes), groups, seed=seed)


class AdversarialModel(GenerativeModel):
    """A generator/discriminator pair trained with the two-optimiser GAN step.

    Subclasses create ``self.generator`` and ``self.discriminator``, then call ``_init_ema()``
    (the EMA copy of the generator, when ``config.ema_decay`` is set).

    Self-conditioning (``model.self_conditioning``; Liu et al. 2020) is the adversarial models' own: their
    ``pseudo_classes`` (:class:`~ganvae.models.self_conditioning.PseudoClasses`) label the training images with
    clusters (:meth:`before_epoch`), the step trains on them as classes (:meth:`training_labels`), and the latent
    prior draws a cluster by its share (:class:`~ganvae.models.latents.PseudoClassPrior`).
    """

    networks = ("generator", "discriminator")
    ema_networks = ("generator",)
    training_only_networks = ("discriminator",)
    training_only_state = ("pseudo_classes.assignments", "pseudo_classes.reclusterings")

    def __init__(self, config, image_shape: tuple[int, int, int] = (1, 28, 28)):
        k = pseudo_class_count(config)
        pseudo_classes = PseudoClasses(k) if k else None
        super().__init__(config, image_shape, pseudo_classes=pseudo_classes)
        self.pseudo_classes: PseudoClasses | None = pseudo_classes

    def training_labels(self, idx: torch.Tensor, data_labels: torch.Tensor) -> torch.Tensor | None:
        """The data's labels of a conditional model, the pseudo-classes of a self-conditioned one, else None."""
        if self.pseudo_classes is None:
            return super().training_labels(idx, data_labels)
        return self.pseudo_classes.assignments.index_select(0, idx.to(self.pseudo_classes.assignments.device))

    @torch.no_grad()
    def before_epoch(self, epoch: int, images: torch.Tensor, seed: int = 0, batch_size: int = 1000) -> dict | None:
        """A self-conditioned model clusters the training images ``(N, C, H, W)`` uint8 again when due (epoch 0,
        then every ``model.recluster_every`` epochs), on the features its discriminator gives them now; with
        ``model.self_conditioning_features: spectral``, once, on their pixels. Returns what the clustering did, or
        None."""
        pc = self.pseudo_classes
        if pc is None:
            return None
        if self.config.self_conditioning_features == "spectral":  # the pixels do not change: cluster them once
            features = None if pc.clustered else pixel_cluster_features(images, pc.k, seed)
        elif pc.clustered and epoch % self.config.recluster_every:
            features = None
        else:
            features = self._discriminator_features(images, batch_size)
        if features is None:
            return None
        return {**pc.recluster(features, seed=seed), "clusters": pc.k, "module": pc}

    def _discriminator_features(self, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        """What discriminator self-conditioning clusters: the discriminator's features of ``images`` ``(N, F)``."""
        from ganvae.common.pixels import scale_images

        discriminator = self._modules["discriminator"]  # the plain network (the trainer unwraps DDP)
        feats = []
        with eval_mode(discriminator):  # no dropout, no augmentation: the features of the images themselves
            for start in range(0, len(images), batch_size):
                x = scale_images(images[start : start + batch_size], self.value_range).to(self.device)
                feats.append(discriminator.cluster_features(x).float().cpu())
        return torch.cat(feats)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        noise, weights = self.latent_prior.split(z)
        return call(self.inference_network("generator"), noise, labels if weights is None else weights)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": adam(self.generator.parameters(), c.lr_generator, c.beta1, c.beta2),
            "discriminator": adam(self.discriminator.parameters(), c.lr_discriminator, c.beta1, c.beta2),
        }

    def training_step(self, x, optimizers, ctx):
        """The two-pass GAN step (Goodfellow et al. 2014, Algorithm 1 with k = 1).

        1. Discriminator: one pass on real ``x`` and ``G(z)`` detached (concatenated: without
           batch norm in the discriminator this equals two passes; with it, two passes:
           :meth:`discriminate_pair`), so no gradient reaches G.
        2. Generator: D frozen (no gradient accumulates in it) and run again on the fakes
           after its update, as the PyTorch DCGAN example does. With ``reuse_fake_logits``
           the generator's loss uses the discriminator's first pass (before its update), as
           the TensorFlow DCGAN tutorial does: one D forward fewer, a different step.
        """
        c = self.config
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        b = x.shape[0]
        z = ctx.randn(b, self.noise_dim, x.device)
        y = step_labels(self.config, ctx)  # the fakes are asked for the real batch's classes (or pseudo-classes)
        y2 = None if y is None else torch.cat([y, y])
        if c.reuse_fake_logits:
            with ctx.autocast():
                fake = call(self.generator, z, y)
                out = self.discriminate_pair(self.discriminator, x, fake, y, y2)  # (2B, 1) or (2B, 1 + K)
                d_loss = self._discriminator_loss(out, y)
                if c.r1_gamma > 0:
                    d_loss = d_loss + self._r1(x, y)
                g_loss = self._generator_loss(out[b:], y) + self._mode_seeking(fake, z, y, ctx)
            # each loss reaches only its own network's parameters; both before either update
            ctx.optimize_simultaneously([(opt_d, d_loss, self.discriminator), (opt_g, g_loss, self.generator)])
            return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

        with ctx.autocast():
            fake = call(self.generator, z, y)  # (B, C, H, W)
            d_loss = self._discriminator_loss(self.discriminate_pair(self.discriminator, x, fake.detach(), y, y2), y)
            if c.r1_gamma > 0:  # one more pass on the real images, differentiated twice
                d_loss = d_loss + self._r1(x, y)
        ctx.optimize(opt_d, d_loss)

        with ctx.frozen(self.discriminator) as discriminator, ctx.autocast():
            g_loss = self._generator_loss(call(discriminator, fake, y), y) + self._mode_seeking(fake, z, y, ctx)
        ctx.optimize(opt_g, g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @staticmethod
    def discriminate_pair(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                          labels: torch.Tensor | None, labels2: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's output on ``[real; fake]`` ``(2B, ...)`` (``labels2``: ``labels`` twice, or None).

        One pass on the concatenation, unless the discriminator has batch norm: then one pass each, as Radford et
        al.'s code and the PyTorch DCGAN example do, since in one pass each half would be normalised by statistics
        of both, and the discriminator could tell them apart by that alone."""
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
            return call(discriminator, torch.cat([real, fake]), labels2)
        return torch.cat([call(discriminator, real, labels), call(discriminator, fake, labels)])

    def _mode_seeking(self, fake: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None,
                      ctx: StepContext) -> torch.Tensor | float:
        """``model.mode_seeking`` times :func:`ganvae.models.losses.mode_seeking_loss` between the first quarter of the
        fakes ``fake[:M]`` and a second pass of the generator on the same classes with new noise (Mao et al. 2019
        draw two noises per condition); 0 when off or when the networks take no labels."""
        weight = self.config.mode_seeking
        if weight <= 0 or labels is None:
            return 0.0
        m = max(1, fake.shape[0] // 4)
        z_b = ctx.randn(m, self.noise_dim, z.device)
        with ctx.autocast():
            fake_b = call(self.generator, z_b, labels[:m])
        return weight * mode_seeking_loss(fake[:m], fake_b, z[:m], z_b)

    def _r1(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The R1 penalty of the discriminator on the real batch ``x`` (:func:`ganvae.models.losses.r1_penalty`)."""
        real = x.detach().requires_grad_(True)
        logits, _ = split_logits(call(self.discriminator, real, labels))
        return r1_penalty(logits, real, self.config.r1_gamma)

    def _discriminator_loss(self, out: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The discriminator's loss from its output on ``[real; fake]`` ``(2B, 1)``; with the auxiliary classifier
        ``(2B, 1 + K)`` it also learns to name the class of both halves (Odena et al. 2017, L_S + L_C)."""
        c = self.config
        logits, classes = split_logits(out)
        b = logits.shape[0] // 2
        loss = discriminator_loss(logits[:b], logits[b:], c.gan_loss, c.real_label)
        if classes is not None:
            loss = loss + class_cross_entropy(classes, torch.cat([labels, labels]))
        return loss

    def _generator_loss(self, out: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The generator's loss from the discriminator's output on the fakes ``(B, 1)``; with the auxiliary
        classifier the fakes must also be classified as the class they were asked for (L_C - L_S)."""
        logits, classes = split_logits(out)
        loss = generator_loss(logits, self.config.gan_loss)
        if classes is not None:
            loss = loss + class_cross_entropy(classes, labels)
        return loss
