"""A training batch that cannot fit in memory is refused before the first step, with the largest that fits.

At 64x64x3 a family's step takes 4 to 14 times its memory at 28x28x1 (the estimates in benchmarks/RESULTS.md,
"Images per second at 28x28x1, 32x32x3 and 64x64x3"), so a batch size that trains MNIST
can exhaust a machine's memory minutes into a colour run (or swap it to a standstill). The estimate per image: the
outputs of every leaf module while the model draws (and, with an encoder, reconstructs) :data:`PROBE` images, times
:data:`ACTIVATION_FACTOR` (kept for the backward pass, and the discriminator's passes), plus :data:`IMAGE_COPIES`
float32 copies of the image (the batch, the losses' element-wise temporaries: an MLP VAE's memory is mostly these);
times the batch; plus the weights, their gradients and Adam's two moments. It catches the order-of-magnitude
mistake, not the last byte: against the peak memory growth of two real steps (CPU, fp32, batch 256, the CPPN's
32; ``benchmarks/step_memory.py``, table in benchmarks/RESULTS.md, "Memory of a training step") the estimate was
0.77x (vae-gan) to 2.8x (cppn) of it at 64x64x3 and 0.57x (vae-gan) to 1.4x (cppn) at 32x32x3. So a batch may be
refused that needs as little as 0.36 of the available memory (the CPPN at 64x64x3), and one that needs up to 1.75
times it may pass (the VAE-GAN at 32x32x3); a batch ten times too large is refused in every family.
"""

from __future__ import annotations

import logging
import math

import torch

from ganvae.common.memory import available_memory_bytes
from ganvae.errors import FieldDataError, GanvaeError

log = logging.getLogger(__name__)

PROBE = 2  # images drawn to measure the activations (the estimate is per image)
ACTIVATION_FACTOR = 2  # the outputs kept for the backward pass, and the discriminator's passes (fitted, see above)
IMAGE_COPIES = 16  # float32 copies of each image: the batch and the losses' temporaries (fitted, see above)
OPTIMISER_COPIES = 4  # weights, gradients and Adam's two moments, per parameter


def activation_bytes_per_image(model) -> int | None:
    """Bytes of the leaf modules' outputs per image while ``model`` draws ``PROBE`` images (and reconstructs them,
    with an encoder); None where the model cannot draw yet (then nothing is checked). The run's random streams are
    untouched (a generator of its own, the global state forked)."""
    sizes: list[int] = []

    def hook(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel() * out.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    device = model.device
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            labels = model.labels_for(PROBE) if model.conditional else None
            x = model.sample(PROBE, generator=torch.Generator().manual_seed(0), labels=labels)
            if model.has_encoder:
                model.reconstruct(x, labels)
    except (GanvaeError, RuntimeError, NotImplementedError) as err:  # e.g. a plugin family that cannot draw yet
        log.debug("step memory not estimated: %s", err)
        return None
    finally:
        for h in handles:
            h.remove()
    return sum(sizes) // PROBE


def image_bytes(model, per_image: int) -> int:
    """Estimated bytes of one image in a training step, from its leaf modules' outputs ``per_image``."""
    return ACTIVATION_FACTOR * per_image + IMAGE_COPIES * 4 * math.prod(model.image_shape)


def step_bytes(model, batch_size: int, per_image: int) -> int:
    """Estimated peak bytes of one training step of ``batch_size`` images per rank."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return image_bytes(model, per_image) * batch_size + OPTIMISER_COPIES * weights


def device_memory_bytes(device: torch.device) -> int | None:
    """Memory a new allocation can still get on ``device``: the GPU's free memory, or the machine's available."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return available_memory_bytes()


def check_step_fits(model, n: int, batch_size: int, world_size: int = 1) -> None:
    """Before anything is trained: the ``n`` training images fill a global batch
    (:func:`~ganvae.data.dataset.check_batch_fits`), and one step of ``batch_size`` images per rank fits in the
    memory of the model's device (:func:`check_step_memory`)."""
    from ganvae.data.dataset import check_batch_fits

    check_batch_fits(n, batch_size, world_size)
    check_step_memory(model, batch_size, model.device)


def check_step_memory(model, batch_size: int, device: torch.device) -> None:
    """Refuse ``train.batch_size`` (per rank) when one step's estimated memory exceeds what ``device`` has
    available, naming the image shape, both sizes and the largest power-of-two batch that fits."""
    available = device_memory_bytes(device)
    if available is None:
        return
    per_image = activation_bytes_per_image(model)
    if per_image is None or per_image == 0:
        return
    needed = step_bytes(model, batch_size, per_image)
    if needed <= available:
        return
    weights = step_bytes(model, 0, per_image)
    fits = (available - weights) // image_bytes(model, per_image)
    example = 2 ** int(math.log2(fits)) if fits >= 1 else 1
    shape = "x".join(str(s) for s in model.image_shape)
    raise FieldDataError(
        "train.batch_size", batch_size,
        f"train.batch_size={batch_size} of {shape} images needs about {_size(needed)} for one training step "
        f"(about {_size(image_bytes(model, per_image))} per image), more than the "
        f"{_size(available)} {'the GPU' if device.type == 'cuda' else 'this machine'} has available; "
        f"nothing was trained. Lower it, e.g. {{given:train.batch_size#example}}, or train at a smaller "
        f"data.image_size.",
        reason="a batch that fits in memory", bound=int(max(fits, 1)), values={"train.batch_size#example": example})


def _size(n: float) -> str:
    return f"{n / 2**30:,.1f} GB" if n >= 2**30 else f"{n / 2**20:,.1f} MB"
