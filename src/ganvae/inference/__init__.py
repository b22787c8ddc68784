"""The inference core every front end draws through: labels, latents and images as tensors.

The command line's writers (:mod:`ganvae.inference.writers`), :class:`ganvae.Pipeline` and the explorer's session adapt
what is here to files, :class:`~ganvae.inference.pipeline.Images` and data URIs. What a conditional model draws when
no class is asked is :class:`~ganvae.models.conditioning.LabelPolicy`'s one answer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
import torch.nn.functional as F

from ganvae.common.pixels import uint8_to_unit
from ganvae.errors import ConfigError, FieldConfigError, FieldUnsupported, UnsupportedOperation
from ganvae.models.conditioning import LabelPolicy, check_labels
from ganvae.storage import LoadedRun

log = logging.getLogger(__name__)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample_images(loaded: LoadedRun, n: int, seed: int = 0, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples ``(n, C, H, W)`` in [0, 1] (of classes ``labels``, conditional models: default the trained
    classes in turn, a class-balanced request); the same seed gives the same images."""
    return loaded.model.sample(n, generator=_generator(seed), labels=loaded.model.labels_for(n, labels))


def run_classes(loaded: LoadedRun) -> list[int] | None:
    """The classes a conditional run was trained on (``data.classes``, else all ``model.num_classes``); None for an
    unconditional run, which cannot be asked for one."""
    return loaded.model.classes if loaded.model.conditional else None


def check_digits(loaded: LoadedRun, digits: "list[int] | None", field: str = "digit") -> "list[int] | None":
    """Digits asked of a run (as the argument ``field``: ``digit``, ``as_digit``, ``labels``): refused for an
    unconditional model, or outside the classes the run was trained on. The error names ``field`` for the front
    end to word (``--digit 12``, ``labels=12``, ``digit 12``)."""
    if not digits:
        return None
    if not loaded.model.conditional:
        raise FieldUnsupported(
            field, _one(digits), f"{{given}}: {loaded.name} from {loaded.source} is not conditional (trained without "
            f"model.conditional), so it cannot be asked for a class; it draws whatever digit its noise gives. Train "
            f"a conditional {loaded.name} with {{given:model.conditional}}.", values={"model.conditional": True},
            reason="the model is not conditional")
    classes = run_classes(loaded)
    outside = [d for d in digits if d not in classes]
    if outside:
        raise FieldConfigError(field, _one(outside), f"{{given}}: {loaded.source} was trained on classes {classes}; "
                               f"choose among them.", reason=f"one of the classes {classes}", bound=classes)
    return list(digits)


def _one(values: list):
    """One value as itself, several as a list (the value a field error shows)."""
    return values[0] if len(values) == 1 else list(values)


def request_labels(loaded: LoadedRun, labels, n: int, policy: LabelPolicy | None = LabelPolicy.BALANCED,
                   field: str = "labels") -> torch.Tensor | None:
    """The labels of a request for ``n`` images: ``labels`` as asked (a class, one per image, or class weights
    ``(n, K)``), checked against the run's classes and refused, as ``field``, for an unconditional run; when
    none are asked, those of ``policy`` (a conditional model) or None (an unconditional one). ``policy=None``: the
    caller must give them (encoding an image needs its class). The model's own checks raise ValueError."""
    if labels is not None:
        asked = torch.as_tensor(labels)
        if not (asked.is_floating_point() and asked.dim() == 2
                and loaded.model.conditional):  # weights: the model checks
            check_digits(loaded, sorted(set(asked.reshape(-1).tolist())) or None, field)
    if policy is None:
        return check_labels(loaded.model, labels, n)
    return loaded.model.labels_for(n, labels, policy)


def class_grid(loaded: LoadedRun, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A conditional model's class grid: one row per trained class, each column from the same noise in every row
    (:meth:`~ganvae.models.latents.LatentPrior.class_grid`) -> latents ``(K*cols, Z)``, labels ``(K*cols,)``."""
    return loaded.model.latent_prior.class_grid(cols, grid_classes(loaded), _generator(seed))


def grid_classes(loaded: LoadedRun) -> list[int]:
    """The rows of a class grid (the trained classes); refused for an unconditional model, which has none."""
    classes = run_classes(loaded)
    if classes is None:
        raise UnsupportedOperation(f"{loaded.name} is not conditional; it has no class grid. Draw samples instead.")
    return classes


def grid_layout(loaded: LoadedRun, n: int, nrow: int | None, digit: int | None) -> tuple[int, int | None, int | None]:
    """How ``n`` samples are laid out when no class is asked (:attr:`LabelPolicy.CLASS_GRID` for a conditional
    model): ``(count, images per row, class-grid columns or None)``. A class grid rounds ``n`` up to whole rows,
    one per trained class."""
    classes = run_classes(loaded)
    if classes is None or digit is not None:
        return n, nrow, None
    cols = -(-n // len(classes))
    return cols * len(classes), cols, cols


def overview(loaded: LoadedRun, cols: int, seed: int) -> tuple[torch.Tensor, int]:
    """The picture a person looks at first, ``(images, per row)``: a conditional model's class grid (one row per
    class, ``cols`` columns), else ``cols x cols`` samples."""
    n, nrow, grid_cols = grid_layout(loaded, cols * cols, cols, None)
    if grid_cols is None:
        return sample_images(loaded, n, seed), cols
    z, asked = class_grid(loaded, grid_cols, seed)
    return loaded.model.generate(z, asked), grid_cols


def require_encoder(loaded: LoadedRun) -> None:
    """Refuse a request that encodes images when the model has no encoder."""
    if not loaded.model.has_encoder:
        raise UnsupportedOperation(
            f"reconstruct needs a model with an encoder (vae, conv-vae, vae-gan, cppn); {loaded.name} only maps "
            f"noise to images, so it has no way to encode a given image. Draw samples from it instead.")


CHANNEL_WORDS = {1: "grey", 3: "colour (RGB)"}


def check_image_shape(loaded: LoadedRun, shape: tuple[int, ...], field: str = "images") -> None:
    """Refuse images of ``shape`` that the run's model cannot encode: it takes ``(N, C, H, W)`` with its own
    ``(C, H, W)`` and ``N >= 1``. A grey model given colour images, or the reverse, is told the conversion that fits
    (or to use a model trained on such images); other sizes, to resize. The error is ``field``'s (the images as the
    caller gave them: ``images``, or the ``dataset`` they came from)."""
    want, got = tuple(loaded.model.image_shape), tuple(shape)
    if len(got) == 4 and got[1:] == want and got[0] > 0:
        return
    c, h, w = want
    takes = f"{loaded.name}{f' from {loaded.source}' if loaded.source else ''} takes (N, {c}, {h}, {w})"
    if len(got) != 4 or got[0] == 0:
        fix = "give a batch of at least one image, (N, C, H, W)"
    elif got[2:] == want[1:]:  # the right size, other channels
        seen = CHANNEL_WORDS.get(got[1], f"{got[1]}-channel")
        trained = CHANNEL_WORDS.get(c, f"{c}-channel")
        if c == 1 and got[1] == 3:
            how = "convert them to grey (x.mean(dim=1, keepdim=True), or PIL's convert('L'))"
        elif c == 3 and got[1] == 1:
            how = "repeat the grey channel (x.expand(-1, 3, -1, -1), or PIL's convert('RGB'))"
        else:
            how = f"give {c}-channel images"
        fix = (f"this model was trained on {trained} images and these are {seen}: {how}, or reconstruct with a "
               f"model trained on {seen} images")
    else:
        fix = f"resize them to {h}x{w}, or reconstruct with a model trained on {got[2]}x{got[3]} images"
    raise FieldUnsupported(field, got, f"reconstruct: {takes}; the images ({{field}}) are {got}: {fix}.",
                           reason=f"images of shape (N, {c}, {h}, {w})", bound=want)


def reconstruct(loaded: LoadedRun, x: torch.Tensor, labels: torch.Tensor | None = None,
                as_labels: torch.Tensor | None = None, field: str = "images") -> torch.Tensor:
    """Images ``(N, C, H, W)`` in [0, 1] encoded and decoded; ``labels`` are the images' own classes (from the
    data: used by a conditional model, unused by another), ``as_labels`` the classes to decode as (asked and
    checked by the caller: :func:`request_labels`). Images of another shape than the model's (colour for a grey
    model, or the reverse) are refused as ``field``'s (:func:`check_image_shape`)."""
    require_encoder(loaded)
    check_image_shape(loaded, tuple(x.shape), field)
    model = loaded.model
    return model.reconstruct(x, labels if model.conditional else None, as_labels).cpu()


def class_morph(k: int, a: int, b: int, steps: int) -> torch.Tensor:
    """Class weights ``(steps, k)`` going linearly from class ``a`` to class ``b``."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return (1 - t) * F.one_hot(torch.tensor(a), k).float() + t * F.one_hot(torch.tensor(b), k).float()


def _at_least(value: int, minimum: int, field: str, why: str = "") -> None:
    """Refuse a count below ``minimum``, naming the argument ``field`` (``n_samples``) for the front end to word."""
    if value < minimum:
        raise FieldConfigError(field, value, f"{{given}}: it must be at least {minimum}{why}.",
                               reason=f"at least {minimum}", bound=minimum)


ONE_DRAW = 1_000_000  # up to this many samples, `sample` draws its latents at once (the images of sample_images)


def _draw_in_chunks(loaded: LoadedRun, n: int, cols: int | None, digit: int | None, seed: int, chunk: int):
    """``(indices, images)`` of ``n`` samples (of class ``digit``, or a class grid of ``cols`` columns), ``chunk``
    at a time. Up to :data:`ONE_DRAW` samples the latents are one draw from ``seed``; beyond, they are drawn chunk
    by chunk from the same generator, so memory stays that of a chunk whatever ``n`` (a class grid then draws
    ``chunk // K`` columns at a time, and the indices place each image in its row)."""
    model, g = loaded.model, _generator(seed)

    def labels(count: int) -> torch.Tensor | None:
        return None if digit is None else torch.full((count,), digit, dtype=torch.long)

    if n <= ONE_DRAW:
        if cols is not None:
            z, y = class_grid(loaded, cols, seed)
        else:
            y = labels(n)
            z = model.latent_prior.draw(n, g, y)  # one draw
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            yield torch.arange(start, min(n, start + chunk)), model.generate(z[part], None if y is None else y[part])
    elif cols is None:
        for start in range(0, n, chunk):
            count = min(chunk, n - start)
            yield torch.arange(start, start + count), model.generate(
                model.latent_prior.draw(count, g, labels(count)), labels(count))
    else:
        classes = run_classes(loaded)
        step = max(1, chunk // len(classes))
        for c0 in range(0, cols, step):
            width = min(step, cols - c0)
            z, y = model.latent_prior.class_grid(width, classes, g)  # (K*width, Z): row-major by class
            rows = torch.arange(len(classes)).repeat_interleave(width)
            yield rows * cols + c0 + torch.arange(width).repeat(len(classes)), model.generate(z, y)


def walk_latents(loaded: LoadedRun, points: int, steps: int, walks: int, seed: int, loop: bool = True) -> torch.Tensor:
    """Latents of a walk through ``points`` random latents: ``(frames, walks, Z)``."""
    if points < 2 or steps < 1:  # the callers check their own arguments (points, steps, frames) first
        raise UnsupportedOperation(f"a latent walk needs at least 2 points and 1 step between two; got {points} "
                                   f"points and {steps} steps.")
    anchors = loaded.model.latent_prior.draw(points * walks, _generator(seed)).view(points, walks, -1)
    t = torch.arange(steps) / steps
    legs = points if loop else points - 1
    path = loaded.model.latent_prior.path
    return torch.cat([path(anchors[i], anchors[(i + 1) % points], t) for i in range(legs)])


def run_data(loaded: LoadedRun, dataset: str | None = None, data_dir: str | None = None, image_size: int | None = None,
             data=None):
    """The real images that go with a run: its own dataset and folder, or ``dataset`` (with ``data_dir``, not the
    run's folder) and/or ``data_dir`` as asked, or ``data`` (images given from Python, as ``ganvae.train(data=)``
    takes them). A pretrained model asked for neither, whose dataset's files are not on this machine (neither where
    it was trained nor in the cache), uses that dataset's packaged stand-in (``mnist-25k`` for MNIST) instead of
    downloading, and says so in one line. The run's own data (and ``data``) must be the images its checkpoint
    records (:mod:`ganvae.data.provenance`); a run trained on images given from Python needs them passed again.
    Returns ``(ImageData, stand_in)``, ``stand_in`` the line said (None when the run's own data was used), for the
    protocol."""
    from ganvae.data import provenance
    from ganvae.data.dataset import load_dataset, stand_in_config

    recorded = loaded.checkpoint.header.get("data_fingerprint") if loaded.checkpoint is not None else None
    run = loaded.run_dir or loaded.source or loaded.name
    if data is not None:
        from ganvae.datasets import as_image_data

        if dataset is not None or data_dir is not None:
            raise ConfigError(f"{run}: give data= or dataset=/data_dir=, not both (one source of images).")
        images = as_image_data(data, seed=loaded.config.train.seed)
        if isinstance(images, str):  # a folder, loaded as the run would load it
            return run_data(loaded, dataset=images, image_size=image_size)
        from ganvae.data.dataset import with_color

        images = with_color(images, loaded.config.data.color)  # the channels the run was trained on, as ganvae.train
        provenance.check_fingerprint(images, recorded, run, "the images passed")
        return images, None
    cfg = loaded.config.data
    if dataset is None and provenance.is_python_data(cfg.dataset):
        raise provenance.not_stored(run, cfg.dataset)
    if dataset is not None:
        cfg = replace(cfg, dataset=dataset, data_dir=None)
    if data_dir is not None:
        cfg = replace(cfg, data_dir=data_dir)
    if image_size is not None:
        cfg = replace(cfg, image_size=image_size)
    stand_in = None
    if dataset is None and data_dir is None and loaded.run_dir is None:  # a pretrained model, nothing asked
        cfg, stand_in = stand_in_config(cfg)
    images = load_dataset(cfg)
    if dataset is None and stand_in is None and image_size in (None, loaded.config.data.image_size):
        provenance.check_fingerprint(images, recorded, run, f"data.dataset={cfg.dataset}")
    return images, stand_in


def held_out_images(loaded: LoadedRun, n: int, seed: int, dataset: str | None = None, data_dir: str | None = None,
                    with_labels: bool = False):
    """``n`` test-split images of the run's dataset (:func:`run_data`), in [0, 1], chosen with ``seed`` (and
    their labels)."""
    data, _ = run_data(loaded, dataset, data_dir)
    idx = torch.randperm(len(data.test_images), generator=_generator(seed))[:n]
    if with_labels:
        return uint8_to_unit(data.test_images[idx]), data.test_labels[idx]
    return uint8_to_unit(data.test_images[idx])
