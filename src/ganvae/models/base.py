"""The objective layer shared by every family.

A *model* here owns its networks (plain ``nn.Module``s from ``blocks.py`` or its own
file), its losses, its optimisers and its training step; the trainer calls only the
methods below and knows nothing family-specific (Pattern 3 of STYLE.md).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ganvae.losses import class_cross_entropy, discriminator_loss, generator_loss, mode_seeking_loss, r1_penalty
from ganvae.models.conditioning import LabelPolicy, call, default_labels, pseudo_class_count, split_logits
from ganvae.models.ema import ema_decay_at, update_ema
from ganvae.models.prior import GaussianMixturePrior, MixtureFit
from ganvae.models.self_conditioning import PseudoClasses, pixel_cluster_features
from ganvae.models.step import StepContext
from ganvae.pixels import ValueRange, from_unit, to_unit


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
    backward (benchmarks/RESULTS.md, "Speed"). Falls back to foreach where fused is unsupported.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=True)
    except RuntimeError:  # e.g. a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), foreach=True)


class GenerativeModel(nn.Module):
    """Base of every family.

    Subclasses set the class attributes, build their networks in ``__init__`` and implement
    :meth:`make_optimizers`, :meth:`training_step`, :meth:`decode`; encoder models also
    :meth:`encode`.
    """

    value_range: ClassVar[ValueRange] = "tanh"  # range of the images the networks see and produce
    has_encoder: ClassVar[bool] = False  # can reconstruct and has a likelihood bound
    renders_any_size: ClassVar[bool] = False  # generator is a function of pixel coordinates (CPPN)
    networks: ClassVar[tuple[str, ...]] = ()  # trainable sub-networks, each wrapped once in DDP under torchrun
    # networks whose exponential moving average is used for sampling and evaluation when config.ema_decay is set
    ema_networks: ClassVar[tuple[str, ...]] = ()
    # networks only training needs (a GAN's critic): an export leaves them out, and sampling never calls them
    training_only_networks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)  # (C, H, W)
        self.noise_dim: int = config.latent_dim  # the generator's noise z
        # a self-conditioned model's latent is z and its pseudo-class as a one-hot (K,), so that every front end's
        # latent maths (walks, sliders, inversion) works on it unchanged; otherwise z alone
        self.pseudo_classes: PseudoClasses | None = None
        if pseudo_class_count(config):
            self.pseudo_classes = PseudoClasses(pseudo_class_count(config))
        self.latent_dim: int = config.latent_dim + (self.pseudo_classes.k if self.pseudo_classes is not None else 0)
        self._classes: list[int] | None = None  # the trained classes of a conditional model (see ``classes``)
        # the learned prior of an encoder model (model.prior: gmm), fitted after training; None = N(0, I) only
        self.latent_prior: GaussianMixturePrior | None = None
        if getattr(config, "prior", "normal") == "gmm":
            # a conditional model: one mixture per class, prior_components shared among them (benchmarks/RESULTS.md,
            # "Learned prior": the CVAE's FID 52.8 with one pooled mixture, 24.8 with one per class)
            groups = config.num_classes if getattr(config, "conditional", False) else 1
            self.latent_prior = GaussianMixturePrior(config.latent_dim, max(1, config.prior_components // groups),
                                                     config.prior_covariance, groups)

    # ---- what the trainer calls
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, x: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch ``x`` ``(B, C, H, W)`` in :attr:`value_range`.

        Returns the losses as detached 0-dim tensors (the trainer syncs them to the host
        only once per logging interval).
        """
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Hook after optimisation step ``step`` (counted from 0): updates the EMA copies."""
        decay = getattr(self.config, "ema_decay", None)
        if decay is None:
            return
        d = ema_decay_at(decay, step)
        for name in self.ema_networks:
            update_ema(self._modules[f"ema_{name}"], self._modules[name], d)  # _modules: the plain network, not DDP

    # ---- exponential moving average of the sampling networks
    def _init_ema(self) -> None:
        """Create ``ema_<name>`` for each of :attr:`ema_networks` (call at the end of ``__init__``).

        The copies are submodules, so they are saved in checkpoints and moved with the model;
        they get no gradients and are updated only by :meth:`after_step`.
        """
        enabled = getattr(self.config, "ema_decay", None) is not None
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

    # ---- class conditioning
    @property
    def conditional(self) -> bool:
        """Whether the networks take class labels (``model.conditional``); sampling then needs ``labels``."""
        return bool(getattr(self.config, "conditional", False))

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
        """The labels of ``n`` samples: ``labels`` as asked (checked by :meth:`check_labels`), or, when a
        conditional model is asked for none, those of ``policy`` (default balanced;
        :class:`~ganvae.models.conditioning.LabelPolicy`); None for an unconditional model."""
        if labels is not None or not self.conditional:
            return self.check_labels(labels, n)
        return default_labels(self.classes, n, policy or LabelPolicy.BALANCED, start=start)

    def encoder_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """The data's labels of images to encode, as the encoder takes them: as they are for a conditional model,
        None for one that takes no class (so a caller passes what the data has, whatever the model)."""
        return labels if self.conditional else None

    def check_labels(self, labels, n: int) -> torch.Tensor | None:
        """``labels`` as ``(n,)`` int64 on the model's device (an int or a single label: the class of all ``n``),
        class weights ``(n, K)`` as they are, or None for an unconditional model; a clear error, naming the classes
        the model was trained on, for labels given to an unconditional model, missing for a conditional one, of the
        wrong size or kind, or outside those classes."""
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"this {type(self).__name__} is not conditional (trained with model.conditional=false): "
                                 "it cannot be asked for a class; drop the labels.")
            return None
        classes = self.classes
        if labels is None:
            raise ValueError(f"this {type(self).__name__} is conditional: it needs the class of each sample, among "
                             f"{classes}.")
        k = self.config.num_classes
        labels = torch.as_tensor(labels, device=self.device)
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

    def step_labels(self, ctx: StepContext) -> torch.Tensor | None:
        """The batch's labels for the training step of a conditional model (the data's) or a self-conditioned one
        (its pseudo-classes'); None for a model whose networks take no labels."""
        if not self.conditional and self.pseudo_classes is None:
            return None
        if ctx.labels is None:
            raise ValueError("a conditional or self-conditioned model's training step needs the batch's labels "
                             "(StepContext.labels)")
        return ctx.labels

    @property
    def self_conditioned(self) -> bool:
        """Whether the networks are trained on pseudo-classes (``model.self_conditioning``, Liu et al. 2020)."""
        return self.pseudo_classes is not None

    def training_labels(self, idx: torch.Tensor, data_labels: torch.Tensor) -> torch.Tensor | None:
        """The labels of training images ``idx`` ``(B,)`` the step trains on: the data's for a conditional model,
        their pseudo-classes for a self-conditioned one, None otherwise."""
        if self.conditional:
            return data_labels.index_select(0, idx)
        if self.pseudo_classes is not None:
            return self.pseudo_classes.assignments.index_select(0, idx.to(self.pseudo_classes.assignments.device))
        return None

    @torch.no_grad()
    def before_epoch(self, epoch: int, images: torch.Tensor, seed: int = 0, batch_size: int = 1000) -> dict | None:
        """The trainer's call at the start of each epoch ``epoch`` (from 0) with the training images ``(N, C, H,
        W)`` uint8: a self-conditioned model clusters them again when due (epoch 0, then every
        ``model.recluster_every`` epochs), on the features its discriminator gives them now; with
        ``model.self_conditioning_features: spectral``, once, on their pixels. Returns what the clustering did, or
        None."""
        pc = self.pseudo_classes
        if pc is None:
            return None
        if self.config.self_conditioning_features == "spectral":  # the pixels do not change: cluster them once
            return None if pc.clustered else pc.recluster(pixel_cluster_features(images, pc.k, seed), seed=seed)
        if pc.clustered and epoch % self.config.recluster_every:
            return None
        from ganvae.pixels import scale_images

        discriminator = self._modules["discriminator"]  # the plain network (the trainer unwraps DDP)
        feats = []
        with eval_mode(discriminator):  # no dropout, no augmentation: the features of the images themselves
            for start in range(0, len(images), batch_size):
                x = scale_images(images[start : start + batch_size], self.value_range).to(self.device)
                feats.append(discriminator.cluster_features(x).float().cpu())
        return pc.recluster(torch.cat(feats), seed=seed)

    # ---- sampling
    def prior(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None,
              labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latents ``(n, latent_dim)`` from the model's prior, drawn from ``generator`` when given: the fitted
        mixture of an encoder model (``model.prior: gmm``), else N(0, I). A conditional model's mixture draws each
        latent from its class's mixture when class indices ``labels`` ``(n,)`` are given, else from their mixture
        (a latent to be decoded under several classes: walks, morphs, the explorer)."""
        device = device or self.device
        if self.latent_prior is not None and self.latent_prior.is_fitted:
            groups = labels if labels is not None and self.latent_prior.groups > 1 and not labels.is_floating_point() \
                else None
            return self.latent_prior.sample(n, generator, groups).to(device)
        z = torch.randn(n, self.noise_dim, generator=generator, device=generator.device if generator is not None else device)
        if self.pseudo_classes is not None:  # then a pseudo-class by its share of the data, as a one-hot
            k = self.pseudo_classes.k
            z = torch.cat([z, F.one_hot(self.pseudo_classes.sample(n, generator), k).to(z)], dim=1)
        return z.to(device)

    def sampling_networks(self) -> tuple[str, ...]:
        """The networks sampling, reconstruction and rendering use, and so what an export keeps: every trained
        network but :attr:`training_only_networks`."""
        return tuple(n for n in self.networks if n not in self.training_only_networks)

    def export_settings(self, config=None) -> dict:
        """The model settings an export records: ``config`` (default the model's own), with the moving average
        switched off where it is kept (an export stores the averaged weights as the weights themselves)."""
        settings = dataclasses.asdict(config if config is not None else self.config)
        if self.ema_networks and "ema_decay" in settings:
            settings["ema_decay"] = None
        return settings

    def sampling_state(self) -> dict[str, torch.Tensor]:
        """What sampling needs besides the sampling networks, by state-dict key: the fitted mixture
        (``latent_prior.*``) and the pseudo-classes' shares (``pseudo_classes.counts``; their assignments of the
        training images are training state). A pretrained folder stores these in float32."""
        out = {}
        if self.latent_prior is not None:
            out.update({f"latent_prior.{k}": v for k, v in self.latent_prior.state_dict().items()})
        if self.pseudo_classes is not None:
            out["pseudo_classes.counts"] = self.pseudo_classes.counts
        return out

    def load_sampling_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load :meth:`sampling_state` tensors (exactly its keys and shapes, else a ``ValueError`` naming them). An
        empty dict, from a folder written before the learned prior existed, leaves the mixture unfitted."""
        own = self.sampling_state()
        if not tensors and self.pseudo_classes is None:
            return
        if tensors.keys() != own.keys() or any(tuple(tensors[k].shape) != tuple(own[k].shape) for k in own):
            have = {k: tuple(v.shape) for k, v in tensors.items()}
            want = {k: tuple(v.shape) for k, v in own.items()}
            raise ValueError(f"stored {have or 'nothing'}, the config implies {want or 'nothing'}")
        for key, value in tensors.items():
            own[key].copy_(value.to(own[key]))

    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A self-conditioned model's latent ``(B, Z + K)`` -> noise ``(B, Z)`` and pseudo-class weights ``(B, K)``
        (made non-negative and summing to 1, so a walk between two latents blends their classes' embeddings);
        ``(z, None)`` for any other model."""
        if self.pseudo_classes is None:
            return z, None
        noise, weights = z[:, : self.noise_dim], z[:, self.noise_dim :].clamp_min(0)
        total = weights.sum(1, keepdim=True)
        uniform = torch.full_like(weights, 1.0 / weights.shape[1])
        return noise, torch.where(total > 1e-8, weights / total.clamp_min(1e-8), uniform)

    def prior_description(self) -> str:
        """Which prior :meth:`prior` draws from, as protocols and model cards state it."""
        if self.pseudo_classes is not None:
            return (f"normal: N(0, I), with one of {self.pseudo_classes.k} self-conditioning clusters drawn by its "
                    f"share of the training images")
        return "normal: N(0, I)" if self.latent_prior is None else self.latent_prior.describe()

    @torch.no_grad()
    def fit_prior(self, images: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0,
                  batch_size: int = 1000) -> MixtureFit:
        """Fit the learned prior to the posterior means of ``images`` ``(N, C, H, W)`` (uint8, or float in [0, 1]);
        a conditional model encodes each with its ``labels`` and fits one mixture per class."""
        from ganvae.models.prior import MAX_FIT_IMAGES
        from ganvae.pixels import uint8_to_unit

        if self.latent_prior is None:
            raise ValueError(f"this {type(self).__name__} has no learned prior (model.prior is normal, or the family "
                             f"has no encoder)")
        if len(images) > MAX_FIT_IMAGES:  # a seeded subset: the same codes for the same seed
            keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:MAX_FIT_IMAGES]
            images, labels = images[keep], None if labels is None else labels[keep]
        codes = []
        with eval_mode(self):
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size].to(self.device)
                x = uint8_to_unit(x) if x.dtype == torch.uint8 else x.float()
                y = None if labels is None or not self.conditional else labels[start : start + batch_size].to(self.device)
                mu, _ = self.encode(from_unit(x, self.value_range), y)
                codes.append(mu.float().cpu())
        groups = labels.long().cpu() if self.latent_prior.groups > 1 else None
        return self.latent_prior.fit(torch.cat(codes), groups, seed=seed)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Latents (and, for a conditional model, labels ``(B,)``) -> images in :attr:`value_range` (the sampling
        network, EMA copy when enabled)."""
        raise NotImplementedError

    @torch.inference_mode()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 500, **kwargs) -> torch.Tensor:
        """Latents (and labels, conditional models) -> images in [0, 1], in eval mode, in chunks of ``batch_size``."""
        labels = self.check_labels(labels, len(z))
        label_chunks = labels.split(batch_size) if labels is not None else [None] * len(z.split(batch_size))
        with eval_mode(self):
            out = [to_unit(self.decode(chunk.to(self.device), y, **kwargs), self.value_range).float()
                   for chunk, y in zip(z.split(batch_size), label_chunks)]
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               **kwargs) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` in [0, 1] from the prior (of class ``labels`` ``(n,)``, conditional models)."""
        labels = self.check_labels(labels, n)
        return self.generate(self.prior(n, generator, labels=labels), labels, **kwargs)

    def class_grid_latents(self, cols: int, classes: list[int], generator: torch.Generator | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """A class grid's inputs: one row per class, ``cols`` columns, each column from the same noise in every
        row (its "style") -> latents ``(K*cols, Z)`` on the CPU and labels ``(K*cols,)``. With a per-class learned
        prior a column's noise is carried through each class's own mixture; otherwise its latent is repeated."""
        from ganvae.models.conditioning import class_grid_inputs

        prior = self.latent_prior
        if prior is None or not prior.is_fitted or prior.groups == 1:
            return class_grid_inputs(self.prior(cols, generator, device=torch.device("cpu")), classes)
        u, eps = prior.noise(cols, generator)
        labels = default_labels(classes, len(classes) * cols, LabelPolicy.CLASS_GRID)
        z = prior.transform(u.repeat(len(classes), 1), eps.repeat(len(classes), 1), labels)
        return z.cpu(), labels

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
        labels = self.check_labels(labels, len(x))
        as_labels = labels if as_labels is None else self.check_labels(as_labels, len(x))
        with eval_mode(self):
            mu, _ = self.encode(from_unit(x.to(self.device), self.value_range), labels)
            return to_unit(self.decode(mu, as_labels), self.value_range).float()

    @property
    def background(self) -> float:
        """The value of a blank pixel in :attr:`value_range` (MNIST's black)."""
        return -1.0 if self.value_range == "tanh" else 0.0

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class AdversarialModel(GenerativeModel):
    """A generator/discriminator pair trained with the two-optimiser GAN step.

    Subclasses create ``self.generator`` and ``self.discriminator``, then call ``_init_ema()``
    (the EMA copy of the generator, when ``config.ema_decay`` is set).
    """

    networks = ("generator", "discriminator")
    ema_networks = ("generator",)
    training_only_networks = ("discriminator",)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        noise, weights = self.split_latent(z)
        return call(self.inference_network("generator"), noise, labels if weights is None else weights)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            "generator": adam(self.generator.parameters(), c.lr_generator, c.beta1, c.beta2),
            "discriminator": adam(self.discriminator.parameters(), c.lr_discriminator, c.beta1, c.beta2),
        }

    def training_step(self, x, optimizers, ctx):
        """The two-pass GAN step (Goodfellow et al. 2014, Algorithm 1 with k = 1).

        1. Discriminator: one pass on real ``x`` and ``G(z)`` detached (concatenated: the
           discriminators here have no batch norm, so this equals two passes), so no
           gradient reaches G.
        2. Generator: D frozen (no gradient accumulates in it) and run again on the fakes
           after its update, as the PyTorch DCGAN example does. With ``reuse_fake_logits``
           the generator's loss uses the discriminator's first pass (before its update), as
           the TensorFlow DCGAN tutorial does: one D forward fewer, a different step.
        """
        c = self.config
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        b = x.shape[0]
        z = ctx.randn(b, self.noise_dim, x.device)
        y = self.step_labels(ctx)  # the fakes are asked for the real batch's classes (or pseudo-classes)
        y2 = None if y is None else torch.cat([y, y])
        if c.reuse_fake_logits:
            with ctx.autocast():
                fake = call(self.generator, z, y)
                out = call(self.discriminator, torch.cat([x, fake]), y2)  # (2B, 1) or (2B, 1 + K)
                d_loss = self._discriminator_loss(out, y)
                if c.r1_gamma > 0:
                    d_loss = d_loss + self._r1(x, y)
                g_loss = self._generator_loss(out[b:], y) + self._mode_seeking(fake, z, y, ctx)
            # each loss reaches only its own network's parameters; both before either update
            ctx.optimize_simultaneously([(opt_d, d_loss, self.discriminator), (opt_g, g_loss, self.generator)])
            return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

        with ctx.autocast():
            fake = call(self.generator, z, y)  # (B, C, H, W)
            d_loss = self._discriminator_loss(call(self.discriminator, torch.cat([x, fake.detach()]), y2), y)
            if c.r1_gamma > 0:  # one more pass on the real images, differentiated twice
                d_loss = d_loss + self._r1(x, y)
        ctx.optimize(opt_d, d_loss)

        with ctx.frozen(self.discriminator) as discriminator, ctx.autocast():
            g_loss = self._generator_loss(call(discriminator, fake, y), y) + self._mode_seeking(fake, z, y, ctx)
        ctx.optimize(opt_g, g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def _mode_seeking(self, fake: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None,
                      ctx: StepContext) -> torch.Tensor | float:
        """``model.mode_seeking`` times :func:`ganvae.losses.mode_seeking_loss` between the first quarter of the
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
        """The R1 penalty of the discriminator on the real batch ``x`` (:func:`ganvae.losses.r1_penalty`)."""
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
