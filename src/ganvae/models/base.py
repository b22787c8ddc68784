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

from ganvae.losses import class_cross_entropy, discriminator_loss, generator_loss
from ganvae.models.conditioning import call, split_logits
from ganvae.models.ema import ema_decay_at, update_ema
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

    def __init__(self, config, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)  # (C, H, W)
        self.latent_dim: int = config.latent_dim
        self._classes: list[int] | None = None  # the trained classes of a conditional model (see ``classes``)

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

    def check_labels(self, labels, n: int) -> torch.Tensor | None:
        """``labels`` as ``(n,)`` int64 on the model's device (an int or a single label: the class of all ``n``),
        class weights ``(n, K)`` as they are, or None for an unconditional model; a clear error, naming the classes
        the model was trained on, for labels given to an unconditional model, missing for a conditional one, of the
        wrong size or kind, or outside those classes."""
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"this {type(self).__name__} is not conditional (trained with model.conditional=false): "
                                 "it cannot be asked for a class; drop the labels (--digit).")
            return None
        classes = self.classes
        if labels is None:
            raise ValueError(f"this {type(self).__name__} is conditional: give the class of each sample (labels=, "
                             f"--digit), among {classes}.")
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
        """The batch's labels for a conditional model's training step (None for an unconditional one)."""
        if not self.conditional:
            return None
        if ctx.labels is None:
            raise ValueError("a conditional model's training step needs the batch's labels (StepContext.labels)")
        return ctx.labels

    # ---- sampling
    def prior(self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None) -> torch.Tensor:
        """``n`` latents ``(n, latent_dim)`` from N(0, I), drawn from ``generator`` when given."""
        device = device or self.device
        return torch.randn(n, self.latent_dim, generator=generator, device=generator.device if generator is not None else device).to(device)

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
        return self.generate(self.prior(n, generator), labels, **kwargs)

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

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        return call(self.inference_network("generator"), z, labels)

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
        z = ctx.randn(b, self.latent_dim, x.device)
        y = self.step_labels(ctx)  # the fakes are asked for the real batch's classes
        y2 = None if y is None else torch.cat([y, y])
        if c.reuse_fake_logits:
            with ctx.autocast():
                fake = call(self.generator, z, y)
                out = call(self.discriminator, torch.cat([x, fake]), y2)  # (2B, 1) or (2B, 1 + K)
                d_loss = self._discriminator_loss(out, y)
                g_loss = self._generator_loss(out[b:], y)
            # each loss reaches only its own network's parameters; both before either update
            ctx.optimize_simultaneously([(opt_d, d_loss, self.discriminator), (opt_g, g_loss, self.generator)])
            return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

        with ctx.autocast():
            fake = call(self.generator, z, y)  # (B, C, H, W)
            d_loss = self._discriminator_loss(call(self.discriminator, torch.cat([x, fake.detach()]), y2), y)
        ctx.optimize(opt_d, d_loss)

        with ctx.frozen(self.discriminator) as discriminator, ctx.autocast():
            g_loss = self._generator_loss(call(discriminator, fake, y), y)
        ctx.optimize(opt_g, g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

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
