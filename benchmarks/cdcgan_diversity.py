"""Does a conditional generator use its noise? Train 1,500 steps on mnist-25k in-process, then report, per class,
the pixel standard deviation across 64 noises (real digits: about 0.15; a generator that ignores its noise: ~0.01).

    .venv/bin/python benchmarks/cdcgan_diversity.py VARIANT [SECTION.KEY=VALUE ...]

VARIANT: ``base`` (conditional dcgan), ``uncond`` (unconditional dcgan; its samples grouped by the classifier's
label), ``mlp`` (conditional MLP gan), ``dplain`` (conditional dcgan whose projection is zeroed and frozen: an
unconditional discriminator). Overrides apply to the model's config, e.g. ``model.class_conditioning=acgan``,
``model.spectral_norm=true``, ``model.discriminator_channels=[64,128]``, ``train.seed=1``, and
``model.class_embedding_std=1.0`` (the generator's class embedding starting at nn.Embedding's N(0, 1), the
default before it was found to collapse the dcgan; 0.02 now).
"""

import sys
import time

import torch

from ganvae.common.pixels import scale_images
from ganvae.config import build_config
from ganvae.data.dataset import iter_batch_indices, load_dataset
from ganvae.models.step import StepContext
from ganvae.registry import build_model

STEPS = 1500


def main() -> None:
    torch.set_num_threads(1)
    variant, extra = sys.argv[1], sys.argv[2:]
    family = "gan" if variant == "mlp" else "dcgan"
    cfg = build_config(family, overrides=[f"model.conditional={variant != 'uncond'}", "data.dataset=mnist-25k", *extra])
    data = load_dataset(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.image_shape)
    if variant == "dplain":
        model.discriminator.embedding.weight.data.zero_()
        model.discriminator.embedding.weight.requires_grad_(False)
    optimizers = model.make_optimizers()
    step, t0 = 0, time.time()
    for epoch in range(1000):
        for idx in iter_batch_indices(len(data.train_images), 64, 0, epoch):
            x = scale_images(data.train_images[idx], model.value_range)
            labels = None if variant == "uncond" else data.train_labels[idx]
            model.training_step(x, optimizers, StepContext(step, epoch, 0.0, labels=labels))
            model.after_step(step)
            step += 1
            if step >= STEPS:
                break
        if step >= STEPS:
            break
    z = model.latent_prior.draw(640, torch.Generator().manual_seed(0))
    if variant == "uncond":
        from ganvae.metrics.classifier import load_classifier

        x = model.generate(z)
        y = load_classifier("mnist").extract(x)[1].argmax(1)
    else:
        y = torch.arange(640) % 10
        x = model.generate(z, y)
    spread = [round(float(x[y == c].std(0).mean()), 3) for c in range(10)]
    print(f"{variant} {extra}: {time.time() - t0:.0f} s; per-class pixel std across noises {spread}")


if __name__ == "__main__":
    main()
