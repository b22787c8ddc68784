"""The importable API behind the commands: load a trained run, sample, interpolate, reconstruct, render.

``RUN`` is a run folder (its ``checkpoints/last.safetensors`` is used) or a checkpoint file.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganvae.config import ExperimentConfig, config_from_dict
from ganvae.errors import CheckpointError, ConfigError, UnsupportedOperation
from ganvae.memory import MAX_MEMORY_GB, check_memory
from ganvae.models.base import GenerativeModel
from ganvae.models.conditioning import LabelPolicy
from ganvae.pixels import uint8_to_unit
from ganvae.training import checkpoint as ckpt_io
from ganvae.utils import atomic_write_text, check_output, machine_description, resolve_device

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained model ready to draw: from a run's checkpoint, or from a pretrained folder (``checkpoint`` None)."""

    model: GenerativeModel
    config: ExperimentConfig
    checkpoint: ckpt_io.Checkpoint | None
    run_dir: Path | None
    source: Path | None = None  # the checkpoint file or the pretrained folder it came from

    @property
    def name(self) -> str:
        return self.config.model_name


def checkpoint_path(run: str | Path) -> Path:
    run = Path(run)
    if run.is_dir():
        path = ckpt_io.run_checkpoint(run)
        if not path.is_file():
            raise CheckpointError(f"{run}: no checkpoint at {path}; is this a finished (or interrupted) ganvae run "
                                  f"folder, or a pretrained folder (config.json, model.safetensors)?")
        return path
    return run


def _is_pretrained_folder(path: Path) -> bool:
    """A pretrained folder (config.json beside the weights), not a run folder (which holds a checkpoint)."""
    return path.is_dir() and not ckpt_io.run_checkpoint(path).is_file() and (path / "config.json").is_file()


def load_run(run: "str | Path | LoadedRun", device: str = "auto", use_ema: bool = True) -> LoadedRun:
    """Rebuild a trained model (weights and JSON only; no code from the files runs) from a run folder, a checkpoint
    file, a pretrained folder, or a pretrained name (``mnist-dcgan``; `ganvae models` lists them).

    A ``LoadedRun`` is returned as it is, so callers that make several pictures load once.
    ``use_ema=False`` drops the moving averages, so sampling uses the trained weights themselves (runs only: a
    pretrained folder holds one set of weights).
    """
    from ganvae import pretrained
    from ganvae.registry import build_model

    if isinstance(run, LoadedRun):
        return run
    path = pretrained.resolve(run)
    if _is_pretrained_folder(path):
        model, cfg = pretrained.load_pretrained(path)
        return LoadedRun(model.to(resolve_device(device)).eval(), cfg, None, None, path)
    path = checkpoint_path(path)
    ckpt = ckpt_io.load_checkpoint(path)
    cfg = config_from_dict(ckpt.header["config"], str(path))
    model = build_model(cfg, tuple(ckpt.header.get("image_shape", (1, cfg.data.image_size, cfg.data.image_size))))
    ckpt_io.restore_model(model, ckpt)
    if not use_ema:
        model.drop_ema()
    model.to(resolve_device(device)).eval()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    return LoadedRun(model, cfg, ckpt, run_dir, path)


def export(run, out: str | Path, dtype: str = "float16") -> Path:
    """Write a run's sampling networks as a pretrained folder (config.json, model.safetensors, README.md)."""
    from ganvae import pretrained

    check_output(out, kind="folder")
    loaded = load_run(run)
    summary = training_summary(loaded.run_dir) or {}
    run_json = loaded.run_dir / "run.json" if loaded.run_dir else None
    environment = json.loads(run_json.read_text()) if run_json and run_json.is_file() else {}
    if "machine" not in environment and loaded.run_dir and (loaded.run_dir / "metrics.json").is_file():
        # runs from before run.json named the machine: their evaluation (same session) did
        environment["machine"] = json.loads((loaded.run_dir / "metrics.json").read_text()).get("machine")
    command = (loaded.run_dir / "command.txt").read_text().strip() if loaded.run_dir and (loaded.run_dir / "command.txt").is_file() else None
    source = {"run": str(loaded.run_dir or loaded.source), "command": command, "steps": summary.get("steps"),
              "epochs": summary.get("epochs_completed"), "train_seconds": summary.get("train_seconds"),
              "images_per_second": summary.get("images_per_second"),
              "machine": environment.get("machine") or environment.get("processor"), "device": summary.get("device"),
              "torch": environment.get("torch")}
    return pretrained.save_pretrained(loaded.model, loaded.config, out, dtype=dtype, source=source)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sample_images(loaded: LoadedRun, n: int, seed: int = 0, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples ``(n, C, H, W)`` in [0, 1] (of classes ``labels``, conditional models: default the trained
    classes in turn, a class-balanced request); the same seed gives the same images."""
    return loaded.model.sample(n, generator=_generator(seed), labels=loaded.model.labels_for(n, labels))


def run_classes(loaded: LoadedRun) -> list[int]:
    """The classes a conditional run was trained on (``data.classes``, else all ``model.num_classes``)."""
    return loaded.model.classes


def check_digits(loaded: LoadedRun, digits: "list[int] | None", flag: str = "--digit") -> "list[int] | None":
    """Digits asked of a run: refused for an unconditional model, or outside the classes the run was trained on."""
    if not digits:
        return None
    if not loaded.model.conditional:
        raise UnsupportedOperation(
            f"{flag}: {loaded.name} from {loaded.source} is not conditional (trained without model.conditional), so "
            f"it cannot be asked for a class; it draws whatever digit its noise gives. Train a conditional one with "
            + (f"`ganvae train {loaded.name} --set model.conditional=true`." if flag.startswith("-") else
               f"`ganvae.train({loaded.name!r}, model__conditional=True)`."))
    classes = run_classes(loaded)
    outside = [d for d in digits if d not in classes]
    if outside:
        raise ConfigError(f"{flag} {','.join(map(str, outside))}: {loaded.source} was trained on classes "
                          f"{classes}; choose among them.")
    return list(digits)


def class_grid(loaded: LoadedRun, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A conditional model's class grid: one row per trained class, each column from the same noise in every row
    (:meth:`~ganvae.models.base.GenerativeModel.class_grid_latents`) -> latents ``(K*cols, Z)``, labels
    ``(K*cols,)``."""
    return loaded.model.class_grid_latents(cols, run_classes(loaded), _generator(seed))


def class_morph(k: int, a: int, b: int, steps: int) -> torch.Tensor:
    """Class weights ``(steps, k)`` going linearly from class ``a`` to class ``b``."""
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    return (1 - t) * F.one_hot(torch.tensor(a), k).float() + t * F.one_hot(torch.tensor(b), k).float()


def _at_least(value: int, minimum: int, flag: str, why: str = "") -> None:
    if value < minimum:
        raise ConfigError(f"{flag} {value}: it must be at least {minimum}{why}.")


def sample(run, n: int = 64, seed: int = 0, out: str | Path | None = "samples.png", nrow: int | None = None,
           separate: str | Path | None = None, max_memory_gb: float = MAX_MEMORY_GB, chunk: int = 1000,
           digit: int | None = None) -> Path | None:
    """A grid of ``n`` samples in ``out`` and/or one PNG per sample in ``separate`` (``out=None``: files only).

    The files are drawn and written ``chunk`` samples at a time, so any number fits in memory; the grid holds
    all its samples, and is refused beyond ``max_memory_gb``. Up to a million samples the images are those of one
    draw of ``n`` latents from ``seed`` (for an unconditional model, ``sample_images(run, n, seed)``); beyond, the
    latents too are drawn chunk by chunk from ``seed`` (:func:`_draw_in_chunks`). A conditional model draws
    ``n`` samples of ``digit``, or, without one, a class grid: one row per trained class with the same noise in
    every row (``n`` rounded up to whole rows; ``nrow`` is then the number of columns, ``n / classes``).
    """
    from ganvae.viz.images import make_grid, save_grid, save_png

    _at_least(n, 1, "-n")
    if out is None and separate is None:
        raise ConfigError("sample: --no-grid needs --separate DIR (otherwise nothing would be written).")
    if out is not None:
        check_output(out)
    if separate is not None:
        check_output(separate, kind="folder", flag="--separate")
    loaded = load_run(run)
    check_digits(loaded, None if digit is None else [digit])
    if loaded.model.conditional and digit is None:
        cols = -(-n // len(run_classes(loaded)))
        n, nrow = cols * len(run_classes(loaded)), cols
    if out is not None:  # the samples in float32, the grid in float32 and as uint8
        check_memory(n * math.prod(loaded.model.image_shape) * 9, f"-n {n}: a grid of {n:,} samples", max_memory_gb,
                     "Draw fewer, or write them as files only with --separate DIR --no-grid.")
    if separate is not None:
        Path(separate).mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(n - 1)))
    grid = torch.empty(n, *loaded.model.image_shape) if out is not None else None
    for index, images in _draw_in_chunks(loaded, n, nrow if loaded.model.conditional and digit is None else None,
                                         digit, seed, chunk):
        if grid is not None:
            grid[index] = images
        if separate is not None:
            for i, img in zip(index.tolist(), images):
                save_png(make_grid(img[None], nrow=1, padding=0), Path(separate) / f"sample_{i:0{digits}d}.png")
    if out is None:
        return None
    save_grid(grid, out, nrow=nrow)
    return Path(out)


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
            z = model.prior(n, generator=g, device=torch.device("cpu"), labels=y)  # one draw
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            yield torch.arange(start, min(n, start + chunk)), model.generate(z[part], None if y is None else y[part])
    elif cols is None:
        for start in range(0, n, chunk):
            count = min(chunk, n - start)
            yield torch.arange(start, start + count), model.generate(
                model.prior(count, generator=g, device=torch.device("cpu"), labels=labels(count)), labels(count))
    else:
        classes = run_classes(loaded)
        step = max(1, chunk // len(classes))
        for c0 in range(0, cols, step):
            width = min(step, cols - c0)
            z, y = model.class_grid_latents(width, classes, g)  # (K*width, Z): row-major by class
            rows = torch.arange(len(classes)).repeat_interleave(width)
            yield rows * cols + c0 + torch.arange(width).repeat(len(classes)), model.generate(z, y)


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


def latent_path(model: GenerativeModel, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Latents between ``a`` and ``b`` ``(..., Z)`` at fractions ``t`` ``(T,)`` -> ``(T, ..., Z)``: spherical for
    the N(0, I) prior (:func:`slerp`), straight for a fitted mixture, whose latents lie around its components'
    means rather than on a sphere about the origin (a straight line between two codes stays among codes)."""
    prior = model.latent_prior
    if prior is not None and prior.is_fitted:
        t = t.view(-1, *([1] * a.dim()))
        return (1 - t) * a + t * b
    return slerp(a, b, t)


def walk_latents(loaded: LoadedRun, points: int, steps: int, walks: int, seed: int, loop: bool = True) -> torch.Tensor:
    """Latents of a walk through ``points`` random latents: ``(frames, walks, Z)``."""
    if points < 2 or steps < 1:
        raise UnsupportedOperation("interpolate needs --points >= 2 and --steps >= 1.")
    anchors = loaded.model.prior(points * walks, generator=_generator(seed), device=torch.device("cpu")).view(points, walks, -1)
    t = torch.arange(steps) / steps
    legs = points if loop else points - 1
    return torch.cat([latent_path(loaded.model, anchors[i], anchors[(i + 1) % points], t) for i in range(legs)])


def interpolate(run, points: int = 4, steps: int = 30, seed: int = 0, out: str | Path = "walk.gif",
                grid: bool = False, walks: int = 16, fps: float = 15, scale: int = 2,
                max_memory_gb: float = MAX_MEMORY_GB, digit: int | None = None,
                between_digits: tuple[int, int] | None = None) -> Path:
    """A looping latent walk as a GIF (``walks`` walks side by side), or a still grid (one row per leg).

    Conditional models walk within class ``digit`` (default: in the GIF, walk ``i`` within the ``i``-th trained
    class; in the grid, every row within the first trained class); with
    ``between_digits=(a, b)`` the latent stays and the class morphs from ``a`` to ``b`` and back (a blend of the two
    class embeddings): each walk keeps one style (the grid: one row per style, ``points`` rows).
    """
    from ganvae.viz.images import make_grid, save_gif, save_grid, upscale

    check_output(out)
    loaded = load_run(run)
    if digit is not None and between_digits is not None:
        raise ConfigError("interpolate: give --digit (a walk within one class) or --between-digits A,B (one style "
                          "morphing between classes), not both.")
    check_digits(loaded, None if digit is None else [digit])
    check_digits(loaded, None if between_digits is None else list(between_digits), "--between-digits")
    if between_digits is not None and between_digits[0] == between_digits[1]:
        a = between_digits[0]
        raise ConfigError(f"--between-digits {a},{a}: a morph needs two different classes (e.g. {a},{(a + 1) % 10}); "
                          f"for a walk within class {a}, use --digit {a}.")
    frames = points * (steps + 1)  # an upper bound for both forms
    per_frame = (1 if grid else walks * scale * scale) * math.prod(loaded.model.image_shape) * 9
    check_memory(frames * per_frame, f"a walk of {frames:,} frames", max_memory_gb,
                 "Use fewer --points, --steps or --walks.")
    model = loaded.model
    if between_digits is not None:
        a, b = between_digits
        k = model.config.num_classes
        if grid:  # one row per style: steps + 1 images from class a to class b
            z = model.prior(points, generator=_generator(seed), device=torch.device("cpu"))
            weights = class_morph(k, a, b, steps + 1)
            images = model.generate(z.repeat_interleave(steps + 1, 0), weights.repeat(points, 1))
            return save_grid(images, out, nrow=steps + 1)
        z = model.prior(walks, generator=_generator(seed), device=torch.device("cpu"))
        there = class_morph(k, a, b, steps)
        weights = torch.cat([there, there.flip(0)])  # (frames, K): a -> b -> a, a loop
        images = model.generate(z.repeat(len(weights), 1), weights.repeat_interleave(walks, 0))
        images = images.view(len(weights), walks, *model.image_shape)
        return save_gif([upscale(make_grid(f), scale) for f in images], out, fps=fps)
    if grid:
        z = walk_latents(loaded, points, steps + 1, 1, seed, loop=False)  # (legs*(steps+1), 1, Z)
        images = model.generate(z[:, 0], model.labels_for(len(z), digit, LabelPolicy.FIRST_CLASS))
        return save_grid(images, out, nrow=steps + 1)
    z = walk_latents(loaded, points, steps, walks, seed)  # (frames, walks, Z)
    per_walk = model.labels_for(walks, digit)  # walk i within class `digit`, or within the i-th class
    labels = None if per_walk is None else per_walk.expand(walks).repeat(z.shape[0])
    images = model.generate(z.flatten(0, 1), labels).view(z.shape[0], walks, *model.image_shape)
    frames = [upscale(make_grid(f), scale) for f in images]
    return save_gif(frames, out, fps=fps)


def held_out_images(loaded: LoadedRun, n: int, seed: int, dataset: str | None = None, data_dir: str | None = None,
                    with_labels: bool = False):
    """``n`` test-split images of the run's dataset, in [0, 1], chosen with ``seed`` (and their labels)."""
    from dataclasses import replace

    from ganvae.data.dataset import load_dataset

    data_cfg = loaded.config.data
    if dataset is not None or data_dir is not None:
        data_cfg = replace(data_cfg, dataset=dataset or data_cfg.dataset, data_dir=data_dir or data_cfg.data_dir)
    data = load_dataset(data_cfg)
    idx = torch.randperm(len(data.test_images), generator=_generator(seed))[:n]
    if with_labels:
        return uint8_to_unit(data.test_images[idx]), data.test_labels[idx]
    return uint8_to_unit(data.test_images[idx])


def reconstruct(run, n: int = 16, seed: int = 0, out: str | Path = "reconstructions.png",
                dataset: str | None = None, data_dir: str | None = None, as_digit: int | None = None) -> Path:
    """Test images (odd rows) above their reconstructions (even rows). A conditional VAE encodes each image with its
    own label; with ``as_digit`` it decodes the code as that class instead: the image's style, another digit."""
    from ganvae.viz.images import save_grid

    _at_least(n, 1, "-n")
    check_output(out)
    loaded = load_run(run)
    if not loaded.model.has_encoder:
        raise UnsupportedOperation(
            f"reconstruct needs a model with an encoder (vae, conv-vae, vae-gan, cppn); {loaded.name} only maps "
            f"noise to images, so it has no way to encode a given image. Use `ganvae sample` instead."
        )
    check_digits(loaded, None if as_digit is None else [as_digit], "--as-digit")
    x, y = held_out_images(loaded, n, seed, dataset, data_dir, with_labels=True)
    if loaded.model.conditional:
        as_labels = None if as_digit is None else torch.full_like(y, as_digit)
        recon = loaded.model.reconstruct(x, y, as_labels).cpu()
    else:
        recon = loaded.model.reconstruct(x).cpu()
    nrow = min(n, 8)
    rows = []
    for start in range(0, n, nrow):
        rows += [x[start : start + nrow], recon[start : start + nrow]]
    return save_grid(torch.cat(rows), out, nrow=nrow)


def render(run, size: tuple[int, int] = (1080, 1080), seed: int = 0, out: str | Path | None = None,
           gif: bool = False, frames: int = 24, points: int = 3, max_memory_gb: float = MAX_MEMORY_GB,
           digit: int | None = None) -> Path:
    """Render a cppn latent at ``size`` (width, height), or a looping latent morph as a GIF. A conditional cppn
    renders class ``digit`` (default: the first trained class).

    A still is rendered in bands of rows streamed into the PNG, so its memory is a few bands, whatever the size;
    the limit applies to the image itself (what a viewer must hold), one byte per pixel and channel. A GIF holds
    all its frames.
    """
    from ganvae.viz.images import make_grid, save_gif, save_png_rows

    width, height = size
    _at_least(min(width, height), 1, "--size", " pixels a side")
    out = Path(out or ("render.gif" if gif else "render.png"))
    check_output(out)
    loaded = load_run(run)
    if not loaded.model.renders_any_size:
        raise UnsupportedOperation(
            f"render needs a coordinate-based generator (cppn), which can be evaluated on any pixel grid; "
            f"{loaded.name} always generates {loaded.model.image_shape[1]}x{loaded.model.image_shape[2]} images. "
            f"Use `ganvae sample` instead."
        )
    channels = loaded.model.image_shape[0]
    n_frames = frames * points if gif else 1
    check_memory(n_frames * width * height * channels * (5 if gif else 1), f"--size {width}x{height}"
                 + (f" x {n_frames} frames" if gif else ""), max_memory_gb,
                 "Render a smaller size" + (" or fewer --frames." if gif else "."))
    check_digits(loaded, None if digit is None else [digit])
    label = loaded.model.labels_for(1, digit, LabelPolicy.FIRST_CLASS)
    if not gif:
        z = loaded.model.prior(1, generator=_generator(seed), device=torch.device("cpu"), labels=label)
        return save_png_rows(loaded.model.render_bands(z, height, width, labels=label), width, height, out, channels)
    z = walk_latents(loaded, points, frames, 1, seed)[:, 0]  # (frames, Z)
    images = [make_grid(loaded.model.render(zi[None], height, width, labels=label), nrow=1, padding=0) for zi in z]
    return save_gif(images, out, fps=12)


MIN_EVAL_SAMPLES = 50  # fewer samples than this make the metrics meaningless (k-NN radii, covariances)


def training_summary(run_dir: Path | None) -> dict | None:
    """The run's ``summary.json`` (steps, minutes, speed), or None."""
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return None
    return json.loads((run_dir / "summary.json").read_text())


def loaded_training_summary(loaded: LoadedRun) -> dict | None:
    """Steps, minutes and speed of a loaded model's training: its run's ``summary.json``, or, for a pretrained
    folder, the record of the run it was exported from (config.json's ``source``)."""
    from ganvae import pretrained

    summary = training_summary(loaded.run_dir)
    if summary is None and loaded.checkpoint is None and loaded.source is not None:
        src = pretrained.read_config(loaded.source).get("source") or {}
        if src.get("train_seconds") is not None:
            record = {"steps": src.get("steps"), "epochs_completed": src.get("epochs"), "train_seconds":
                      src["train_seconds"], "images_per_second": src.get("images_per_second"), "device": src.get("device")}
            summary = {k: v for k, v in record.items() if v is not None}
    return summary


def evaluate(run: "str | Path | LoadedRun", n_samples: int = 10000, seed: int = 0, iwae_k: int = 50,
             data_dir: str | None = None, out: str | Path | None = None,
             classifier: str | Path | None = None, dataset: str | None = None, use_ema: bool = True) -> dict[str, Any]:
    """Evaluate a run (a folder, a checkpoint, an already loaded run), ``real:DATASET`` (its training
    images as 'samples': the reference figures) or ``images:DIR`` (a folder of another program's
    samples, scored against ``dataset``, default mnist, with the same protocol; images are made grey and resized
    to the dataset's size). A run is scored against its own dataset's test split, or ``dataset``'s (e.g. a model
    trained on full MNIST against the offline ``mnist-25k``). ``use_ema=False`` scores the trained weights instead
    of their moving average.

    Writes the result as JSON to ``out`` (default ``<run>/metrics.json``) and returns it.
    """
    from dataclasses import replace

    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.metrics import evaluate as metrics
    from ganvae.metrics.classifier import load_classifier

    _at_least(n_samples, MIN_EVAL_SAMPLES, "--n-samples", " (the nearest-neighbour metrics use k = 5 neighbours and "
              "the Frechet distance a covariance; 10,000 is the standard)")
    if out is not None:
        check_output(out, example="metrics.json")
    start = time.monotonic()
    real = str(run).startswith("real:")
    folder = str(run)[len("images:"):] if str(run).startswith("images:") else None
    loaded = samples = None
    if real or folder is not None:
        data = load_dataset(DataConfig(dataset=str(run)[5:] if real else dataset or "mnist", data_dir=data_dir))
        model_name = "real data (train split)" if real else f"images in {folder}"
        dataset = data.name
        if real:
            idx = torch.randperm(len(data.train_images), generator=_generator(seed))[:n_samples]
            samples = uint8_to_unit(data.train_images[idx])
        else:
            samples = metrics.load_image_samples(folder, data.image_shape[-1], n_samples, seed)
    else:
        loaded = load_run(run, use_ema=use_ema)  # (a LoadedRun is used as it is)
        if isinstance(run, LoadedRun):
            run = loaded.run_dir or loaded.source
        data_cfg = loaded.config.data
        if dataset is not None:
            data_cfg = replace(data_cfg, dataset=dataset, data_dir=None)
        if data_dir is not None:
            data_cfg = replace(data_cfg, data_dir=data_dir)
        data = load_dataset(data_cfg)
        model_name, dataset = loaded.name, data_cfg.dataset
    fnet = load_classifier(dataset, path=classifier)
    result: dict[str, Any] = {"run": str(run), "model": model_name, "dataset": data.name}
    result.update(metrics.evaluate(loaded.model if loaded else None, data, fnet, n_samples, seed, iwae_k, samples))
    if loaded is not None:
        result["training"] = loaded_training_summary(loaded)
    result["seconds"] = round(time.monotonic() - start, 2)
    result["machine"] = machine_description()
    if out is None and loaded is not None and loaded.run_dir is not None:
        out = loaded.run_dir / "metrics.json"
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def fit_prior(run, out: str | Path | None = None, components: int | None = None, covariance: str | None = None,
              dataset: str | None = None, data_dir: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Fit (or refit) the learned prior of an encoder model (``model.prior: gmm``, :mod:`ganvae.models.prior`) to
    the posterior means of its training images, and store it.

    A run folder or checkpoint is rewritten in place (atomically; its training state is kept, so it still
    resumes). A pretrained folder is written to ``out``, or in place when ``out`` is None and the folder is not
    one of the shipped zoo's. A model trained with ``model.prior=normal`` is switched to ``gmm``. ``components``
    and ``covariance`` change the mixture (they are recorded in the config); ``dataset``/``data_dir`` say where the
    training images are; ``seed`` defaults to the run's seed.
    Returns what was fitted and where it was written.
    """
    from dataclasses import replace

    from ganvae import pretrained
    from ganvae.config import validate
    from ganvae.data.dataset import load_dataset
    from ganvae.registry import build_model

    if out is not None:
        check_output(out, kind="folder")
    path = pretrained.resolve(run)
    if _is_pretrained_folder(path):
        meta = pretrained.read_config(path)
        if out is None and path.resolve().is_relative_to(pretrained.zoo_dir().resolve()):
            raise ConfigError(f"fit-prior {run}: {path} is a model shipped inside the package; write the refitted "
                              f"model elsewhere: fit_prior(..., out=DIR) in Python, --out DIR on the command line "
                              f"(then use DIR wherever a run is taken).")
        model, cfg = pretrained.load_pretrained(path)
        ckpt = None
    else:
        ckpt = ckpt_io.load_checkpoint(checkpoint_path(path))
        cfg = config_from_dict(ckpt.header["config"], str(ckpt.path))
        if out is not None:
            raise ConfigError(f"fit-prior out={out}: {run} is a training run, whose checkpoint is refitted in place "
                              f"(it stays resumable); drop out= (--out), or export it first (`ganvae export`, "
                              f"Pipeline.save_pretrained) and refit the export.")
    if not hasattr(cfg.model, "prior"):
        raise UnsupportedOperation(f"fit-prior: {cfg.model_name} has no encoder, so it has no posterior to fit a "
                                   f"prior to; it draws from N(0, I). (The encoder families: vae, conv-vae, vae-gan, "
                                   f"cppn.)")
    changes = {"prior": "gmm"}
    if components is not None:
        changes["prior_components"] = components
    if covariance is not None:
        changes["prior_covariance"] = covariance
    cfg.model = replace(cfg.model, **changes)
    validate(cfg, "fit-prior")
    image_shape = tuple(model.image_shape) if ckpt is None else tuple(
        ckpt.header.get("image_shape") or (1, cfg.data.image_size, cfg.data.image_size))
    with torch.random.fork_rng(devices=[]):
        fresh = build_model(cfg, image_shape)
    if ckpt is None:
        networks = {k: v for k, v in model.state_dict().items() if not k.startswith("latent_prior.")}
        fresh.load_state_dict({**networks, **{f"latent_prior.{k}": v for k, v in fresh.latent_prior.state_dict().items()}})
    else:
        ckpt_io.restore_model(fresh, ckpt, refit_prior=True)
    model = fresh.eval()
    data_cfg = cfg.data
    if dataset is not None or data_dir is not None:
        data_cfg = replace(data_cfg, dataset=dataset or data_cfg.dataset, data_dir=data_dir or data_cfg.data_dir)
    data = load_dataset(data_cfg)
    seed = cfg.train.seed if seed is None else seed
    try:
        fit = model.fit_prior(data.train_images, data.train_labels, seed=seed)
    except ValueError as err:
        raise ConfigError(f"fit-prior {run}: {err}.") from None
    if ckpt is None:
        target = Path(out) if out is not None else path
        source_card = path / "README.md"
        card = source_card.read_text() if source_card.is_file() else None
        pretrained.save_pretrained(model, cfg, target, dtype=meta.get("dtype", "float16"),
                                   source=meta.get("source"), card=card)  # the old metrics were of the old prior
        written = target
    else:
        header = dict(ckpt.header, config=cfg.to_dict())
        tensors = {f"model.latent_prior.{k}": v for k, v in model.latent_prior.state_dict().items()}
        written = ckpt_io.rewrite_checkpoint(ckpt, header, tensors, drop_prefix="model.latent_prior.")
    log.info("fitted %s to %d posterior means of %s in %.1f s -> %s", model.prior_description(), fit.n, data.name,
             fit.seconds, written)
    return {"prior": model.prior_description(), "codes": fit.n, "dataset": data.name, "seed": seed,
            "iterations": fit.iterations, "converged": fit.converged, "log_likelihood": fit.log_likelihood,
            "seconds": fit.seconds, "written": str(written)}
