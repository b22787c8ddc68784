"""Config dataclasses shared by several model families (every field has a one-line comment).

Families combine these by inheritance (``VAEGANConfig(AdversarialConfig, VAEObjectiveConfig, ConvNetConfig)``),
so a field exists in a family's config only where that family's model uses it (STYLE.md, Pattern 11); a test
checks that changing any field changes what the model builds or computes.

A field a family once had but never used is listed in its config class's ``RETIRED`` map: a config file or
``--set`` naming it gets an error that says why, and a checkpoint that stored it still loads. A field added
after checkpoints were written, whose default is not what those checkpoints did, is listed in ``PREDATES``
with the value that its absence means (``config_from_dict`` applies it to stored configs only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

from ganvae.bounds import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, WIDTHS, Bound

GanLoss = Literal["bce", "hinge", "lsgan"]


@dataclass
class AdversarialConfig:
    """Fields every model with a discriminator has."""

    gan_loss: GanLoss = "bce"  # bce = non-saturating (Goodfellow 2014), hinge (Lim & Ye 2017), lsgan (Mao 2017)
    lr_generator: Annotated[float, POSITIVE] = 2e-4  # Adam learning rate of the generator (and encoder)
    lr_discriminator: Annotated[float, POSITIVE] = 2e-4  # Adam learning rate of the discriminator
    beta1: Annotated[float, PROBABILITY] = 0.5  # Adam beta1 (0.5 as in Radford et al. 2016)
    beta2: Annotated[float, PROBABILITY] = 0.999  # Adam beta2
    # target for real images in the BCE loss; 0.9 = one-sided label smoothing
    real_label: Annotated[float, Bound(0, 1, lo_open=True, says="in (0, 1]")] = 1.0
    # EMA of the generator (and encoder) weights, used for sampling and evaluation (Yazici et al. 2019); None = off
    ema_decay: Annotated[Optional[float], Bound(0, 1, lo_open=True, hi_open=True,
                                                says="between 0 and 1 (e.g. 0.999), or null for no averaging")] = 0.999
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer (Miyato et al. 2018)
    # differentiable augmentation of the discriminator's inputs (Zhao et al. 2020): translation, cutout; [] = off
    diffaugment: list[str] = field(default_factory=list)


@dataclass
class GANStepConfig(AdversarialConfig):
    """A generator/discriminator pair trained with :class:`~ganvae.models.base.AdversarialModel`'s step."""

    # generator step reuses the discriminator's pass on the fakes (faster, not the textbook step)
    reuse_fake_logits: bool = False
    # weight of the R1 gradient penalty on real images (Mescheder et al. 2018); 0 = off
    r1_gamma: Annotated[float, AT_LEAST_0] = 0.0
    # weight of the mode-seeking term (Mao et al. 2019; losses.mode_seeking_loss) of a model that takes labels or
    # pseudo-classes: a second generator pass on a quarter of the batch, same classes, new noise; 0 = off
    mode_seeking: Annotated[float, AT_LEAST_0] = 0.0


@dataclass
class LatentPriorConfig:
    """Where an encoder model's samples are drawn from (``models/prior.py``): N(0, I), or a Gaussian mixture fitted
    to the training images' posterior means once training ends (Ghosh et al. 2020, ex-post density estimation).
    Defaults measured in benchmarks/RESULTS.md ("Learned prior")."""

    prior: Literal["normal", "gmm"] = "gmm"  # gmm = fit a mixture after training and sample from it; normal = N(0, I)
    # mixture components at most (a conditional model: one mixture per class, each of at most prior_components //
    # num_classes); a fit uses fewer where the codes are few, so that each component has at least 3 codes per
    # parameter it fits (models/prior.py, CODES_PER_PARAMETER)
    # (at most 1,000: each has a full covariance, and the fit needs 3 codes per parameter of each, so 100 over 10
    # latents already need about 20,000 codes)
    prior_components: Annotated[int, Bound(1, 1000, says="from 1 to 1000")] = 100
    prior_covariance: Literal["full", "diag"] = "full"  # each component's covariance


@dataclass
class VAEObjectiveConfig(LatentPriorConfig):
    """The likelihood and KL terms of every model with an encoder (the negative ELBO, Kingma & Welling 2014)."""

    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"  # likelihood p(x|z), used by training and evaluation alike
    decoder_std: Annotated[float, POSITIVE] = 0.1  # standard deviation of the Gaussian decoder
    kl_weight: Annotated[float, AT_LEAST_0] = 1.0  # beta: weight of the KL term once warmed up (1 = the true ELBO)
    kl_warmup_epochs: Annotated[float, AT_LEAST_0] = 0.0  # epochs over which beta rises linearly from 0; 0 = no warm-up
    # dynamic = resample x ~ Bernoulli(pixel) every batch (Burda et al. 2016)
    binarize: Literal["none", "dynamic"] = "none"


@dataclass
class ConvNetConfig:
    """The convolutional encoder (and its mirrored decoder) of ``models/blocks.py``, one stride-2 layer per halving
    from the image to a 4x4 to 7x7 map (``blocks.encoder_widths``: two at 28x28, three at 32x32, four at 64x64)."""

    # encoder channels at H/2, H/4, ... (the decoder mirrors them): one per halving to the 4x4 to 7x7 start (2 at 28,
    # 3 at 32, 4 at 64); fewer entries are extended by doubling the last, more halve further where the side allows
    channels: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [32, 64])
    # dense layers between the convolutions and z
    hidden: Annotated[list[int], WIDTHS] = field(default_factory=lambda: [256])


@dataclass
class ConditionalConfig:
    """Fields of every family: whether and how its networks see the class."""

    conditional: bool = False  # generator/decoder (and encoder) receive the class; sample with labels (--digit)
    num_classes: Annotated[int, AT_LEAST_1] = 10  # class labels 0 .. num_classes - 1 the embeddings cover (MNIST: 10)
    class_embedding_dim: Annotated[int, AT_LEAST_1] = 16  # size of the learned class embedding appended to z
    # initial standard deviation of that embedding. 1.0 (nn.Embedding's) for decoders trained to reconstruct: with a
    # weak class input they learn to read the class from z and ignore the label (benchmarks/RESULTS.md, "The class
    # embedding's initial scale")
    class_embedding_std: Annotated[float, POSITIVE] = 1.0


@dataclass
class ConditionalDiscriminatorConfig(ConditionalConfig):
    """Models trained with the two-optimiser GAN step can also use the auxiliary-classifier discriminator."""

    # projection (Miyato & Koyama 2018) or acgan (Odena et al. 2017: an auxiliary class head and its cross-entropy)
    class_conditioning: Literal["projection", "acgan"] = "projection"
    # a GAN generator starts with a weak class input, so it first learns to draw from z: at 1.0 the dcgan drew one
    # image per class whatever z (benchmarks/cdcgan_diversity.py base model.class_embedding_std=1.0)
    class_embedding_std: Annotated[float, POSITIVE] = 0.02
    # self-conditioning (Liu et al. 2020; models/self_conditioning.py): train the class machinery on this many
    # k-means clusters of the real images (of the features self_conditioning_features names) instead of labels;
    # 0 = off; null (the default) = AUTO_PSEUDO_CLASSES (10) for an unconditional model, off for a conditional one,
    # which trains on the data's labels. On by default because spectral pseudo-classes lowered both GANs' FID at
    # equal minutes (benchmarks/RESULTS.md, "Self-conditioning's features")
    # (at most 1,000: the clustering's time grows with K squared, and each pseudo-class needs images of its own)
    self_conditioning: Annotated[Optional[int], Bound(0, 1000, says="from 0 to 1000")] = None
    # self-conditioning: what is clustered. discriminator = the discriminator's features, again every
    # recluster_every epochs (Liu et al. 2020); spectral = a spectral embedding of the images' pixels (a
    # nearest-neighbour graph of their PCA projection), once before step 0 (models/clustering.py): its clusters follow
    # MNIST's digits far more closely than a small discriminator's features do (benchmarks/RESULTS.md,
    # "Self-conditioning's features")
    self_conditioning_features: Literal["discriminator", "spectral"] = "spectral"
    # self-conditioning on the discriminator: epochs between two clusterings (the first is before step 0)
    recluster_every: Annotated[int, AT_LEAST_1] = 2

    # what a stored config without these fields did: checkpoints and pretrained folders from before self-conditioning
    # (or before its features could be chosen) were not self-conditioned (or clustered the discriminator's features)
    PREDATES = {"self_conditioning": 0, "self_conditioning_features": "discriminator"}


AUTO_PSEUDO_CLASSES = 10  # model.self_conditioning: null on an unconditional model (the K measured; MNIST's digits)


RETIRED_VAE_FIELDS: dict[str, str] = {
    "lr": "it never acted here; the encoder and decoder learn at model.lr_generator",
    "reuse_fake_logits": "it never acted here; only gan and dcgan have that generator step",
}

