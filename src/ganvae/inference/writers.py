"""What the commands write: sample grids and files, latent walks, reconstructions and renders, from a trained
model through :mod:`ganvae.inference`; memory is checked before anything is drawn."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ganvae import inference
from ganvae.common.files import check_output
from ganvae.common.memory import MAX_MEMORY_GB, check_memory
from ganvae.errors import FieldConfigError, Placeholder, UnsupportedOperation
from ganvae.inference import (
    _at_least,
    _draw_in_chunks,
    _generator,
    check_digits,
    class_morph,
    grid_layout,
    held_out_images,
    require_encoder,
    walk_latents,
)
from ganvae.models.conditioning import LabelPolicy
from ganvae.storage import load as load_run


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

    _at_least(n, 1, "n")
    if out is None and separate is None:
        raise FieldConfigError("separate", None, "sample: {given:out} needs {given} (otherwise nothing would be "
                               "written).", values={"out": None, "separate": Placeholder("DIR")})
    if out is not None:
        check_output(out)
    if separate is not None:
        check_output(separate, kind="folder", field="separate")
    loaded = load_run(run)
    check_digits(loaded, None if digit is None else [digit])
    n, nrow, cols = grid_layout(loaded, n, nrow, digit)  # no class asked of a conditional model: a class grid
    if out is not None:  # the samples in float32, the grid in float32 and as uint8
        check_memory(n * math.prod(loaded.model.image_shape) * 9, f"a grid of {n:,} samples", max_memory_gb,
                     "Draw fewer, or write them as files only with {given:separate} {given:out}.",
                     {"separate": Placeholder("DIR"), "out": None})
    if separate is not None:
        Path(separate).mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(n - 1)))
    grid = torch.empty(n, *loaded.model.image_shape) if out is not None else None
    for index, images in _draw_in_chunks(loaded, n, cols, digit, seed, chunk):
        if grid is not None:
            grid[index] = images
        if separate is not None:
            for i, img in zip(index.tolist(), images):
                save_png(make_grid(img[None], nrow=1, padding=0), Path(separate) / f"sample_{i:0{digits}d}.png")
    if out is None:
        return None
    save_grid(grid, out, nrow=nrow)
    return Path(out)


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

    _at_least(points, 2, "points", " (a walk goes from one latent to another)")
    if not grid and between_digits is None:
        _at_least(steps, 1, "steps")
    check_output(out)
    loaded = load_run(run)
    if digit is not None and between_digits is not None:
        raise FieldConfigError("between_digits", between_digits, "interpolate: give {field:digit} (a walk within one "
                               "class) or {field} (one style morphing between classes), not both.")
    check_digits(loaded, None if digit is None else [digit])
    check_digits(loaded, None if between_digits is None else list(between_digits), "between_digits")
    if between_digits is not None and between_digits[0] == between_digits[1]:
        a = between_digits[0]
        raise FieldConfigError("between_digits", between_digits, f"{{given}}: a morph needs two different classes "
                               f"(e.g. {{given:between_digits#example}}); for a walk within class {a}, use "
                               f"{{given:digit}}.", values={"between_digits#example": (a, (a + 1) % 10), "digit": a})
    frames = points * (steps + 1)  # an upper bound for both forms
    per_frame = (1 if grid else walks * scale * scale) * math.prod(loaded.model.image_shape) * 9
    check_memory(frames * per_frame, f"a walk of {frames:,} frames", max_memory_gb,
                 "Use fewer {field:points}, {field:steps} or {field:walks}.")
    model = loaded.model
    if between_digits is not None:
        a, b = between_digits
        k = model.config.num_classes
        if grid:  # one row per style: steps + 1 images from class a to class b
            z = model.latent_prior.draw(points, _generator(seed))
            weights = class_morph(k, a, b, steps + 1)
            images = model.generate(z.repeat_interleave(steps + 1, 0), weights.repeat(points, 1))
            return save_grid(images, out, nrow=steps + 1)
        z = model.latent_prior.draw(walks, _generator(seed))
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


def reconstruct(run, n: int = 16, seed: int = 0, out: str | Path = "reconstructions.png",
                dataset: str | None = None, data_dir: str | None = None, as_digit: int | None = None) -> Path:
    """Test images (odd rows) above their reconstructions (even rows). A conditional VAE encodes each image with its
    own label; with ``as_digit`` it decodes the code as that class instead: the image's style, another digit."""
    from ganvae.viz.images import save_grid

    _at_least(n, 1, "n")
    check_output(out)
    loaded = load_run(run)
    require_encoder(loaded)
    check_digits(loaded, None if as_digit is None else [as_digit], "as_digit")  # before the data is read
    x, y = held_out_images(loaded, n, seed, dataset, data_dir, with_labels=True)
    recon = inference.reconstruct(loaded, x, y, None if as_digit is None else torch.full_like(y, as_digit),
                                  field="dataset")  # colour images for a grey model: the data set's fault
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
    if min(width, height) < 1:
        raise FieldConfigError("size", (width, height), "{given}: each side must be at least 1 pixel.",
                               reason="at least 1 pixel a side", bound=1)
    if gif:
        _at_least(points, 2, "points", " (the morph goes from one latent to another)")
        _at_least(frames, 1, "frames")
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
    check_memory(n_frames * width * height * channels * (5 if gif else 1), f"a {width}x{height} render"
                 + (f" x {n_frames} frames" if gif else ""), max_memory_gb,
                 "Render a smaller size" + (" or fewer {field:frames}." if gif else "."))
    check_digits(loaded, None if digit is None else [digit])
    label = loaded.model.labels_for(1, digit, LabelPolicy.FIRST_CLASS)
    if not gif:
        z = loaded.model.latent_prior.draw(1, _generator(seed), label)
        return save_png_rows(loaded.model.render_bands(z, height, width, labels=label), width, height, out, channels)
    z = walk_latents(loaded, points, frames, 1, seed)[:, 0]  # (frames, Z)
    images = [make_grid(loaded.model.render(zi[None], height, width, labels=label), nrow=1, padding=0) for zi in z]
    return save_gif(images, out, fps=12)
