"""The Python API in the style of diffusers' pipelines: ``ganvae.load("mnist-dcgan").sample(16)``.

:func:`load` takes a pretrained name, a pretrained folder, a run folder or a checkpoint, and returns a
:class:`Pipeline` whose methods return :class:`Images`: a tensor ``(N, C, H, W)`` in [0, 1] with helpers to make
PIL images and grids; grids show inline in Jupyter. :func:`train` runs the trainer from Python.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganvae import errors, inference, storage
from ganvae.common.memory import MAX_MEMORY_GB, check_memory
from ganvae.errors import NO_VALUE, ConfigError, FieldError, UnsupportedOperation
from ganvae.models.conditioning import LabelPolicy

log = logging.getLogger(__name__)


class Images:
    """Images ``(N, C, H, W)`` in [0, 1] (``.tensor``), as a model drew them."""

    def __init__(self, tensor: torch.Tensor, nrow: int | None = None):
        self.tensor = tensor.detach().cpu()
        self.nrow = nrow

    def __len__(self) -> int:
        return len(self.tensor)

    def __getitem__(self, index) -> "Images":
        t = self.tensor[index]
        return Images(t[None] if t.dim() == 3 else t)

    def __repr__(self) -> str:
        return f"Images({tuple(self.tensor.shape)}, values in [0, 1])"

    def to_pil(self) -> list:
        """One PIL image per sample."""
        from ganvae.viz.images import make_grid, to_pil

        return [to_pil(make_grid(img[None], nrow=1, padding=0)) for img in self.tensor]

    def grid(self, nrow: int | None = None, scale: int = 2) -> "Grid":
        """The samples tiled ``nrow`` per row (default a square), enlarged ``scale`` times."""
        from ganvae.viz.images import make_grid, upscale

        return Grid(upscale(make_grid(self.tensor, nrow=nrow or self.nrow), scale))

    def save(self, path: str | Path, nrow: int | None = None) -> Path:
        """Write the grid as a PNG (atomically)."""
        return self.grid(nrow, scale=1).save(path)

    def _repr_png_(self) -> bytes:  # Jupyter shows the grid
        return self.grid()._repr_png_()


class Grid:
    """A uint8 picture (``.array``) that Jupyter displays and :meth:`save` writes."""

    def __init__(self, array):
        self.array = array

    def to_pil(self):
        from ganvae.viz.images import to_pil

        return to_pil(self.array)

    def save(self, path: str | Path) -> Path:
        from ganvae.viz.images import save_png

        return save_png(self.array, path)

    def _repr_png_(self) -> bytes:
        from ganvae.viz.images import png_bytes

        return png_bytes(self.array)


class Pipeline:
    """A trained model ready to draw. ``name``: the model family; ``run``: the :class:`~ganvae.storage.LoadedRun`."""

    max_memory_gb: float = MAX_MEMORY_GB  # the most memory one call's images may take (set it to allow more)

    def __init__(self, run: storage.LoadedRun):
        self.run = run
        self.model = run.model
        self.config = run.config

    # ---- the checks every method makes (Python's words: `sample(n=...)`, not flags)
    def _guard(self, call: str, images: int, width: int | None = None, height: int | None = None) -> None:
        """Refuse, before drawing, ``images`` images (of ``width`` x ``height``, default the model's) whose float32
        tensor would take more than :attr:`max_memory_gb`: the same guard as the command line's."""
        c, h, w = self.model.image_shape
        with python_words(pipeline_keyword):  # the limit is this object's attribute, not an argument
            check_memory(images * c * (height or h) * (width or w) * 4 * 2, f"{call}: {images:,} images",
                         self.max_memory_gb, "Draw fewer at a time (in a loop).")

    def _latents(self, latents, call: str) -> torch.Tensor:
        try:
            z = torch.as_tensor(latents, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"{call}: latents must be a tensor or array of numbers, shape (n, "
                              f"{self.model.latent_dim}); got {type(latents).__name__}.") from None
        if z.dim() != 2 or z.shape[1] != self.model.latent_dim or len(z) == 0:
            raise ConfigError(f"{call}: latents of shape {tuple(z.shape)}; this {self.name} takes (n, "
                              f"{self.model.latent_dim}), n >= 1.")
        if not torch.isfinite(z).all():
            raise ConfigError(f"{call}: latents hold NaN or infinite values; every number must be finite.")
        return z

    def _labels_checked(self, labels, n: int, call: str, policy: LabelPolicy | None = LabelPolicy.BALANCED
                        ) -> torch.Tensor | None:
        """``labels`` (an int, one per sample, or class weights ``(n, K)``: a blend) checked for this model; None ->
        those of ``policy`` (default: the trained classes in turn; ``policy=None``: required of a conditional
        model), as :func:`ganvae.inference.request_labels` decides for every front end."""
        if labels is not None and not (isinstance(labels, (torch.Tensor, np.ndarray)) or _is_int(labels) or (
                isinstance(labels, (list, tuple)) and all(_is_int(v) or isinstance(v, (list, tuple)) for v in labels))):
            raise ConfigError(f"{call}: labels={labels!r}; give a class number (e.g. labels=3), one per sample "
                              f"(a list or tensor of ints), or class weights (n, K).")
        try:
            with python_words():
                return inference.request_labels(self.run, labels, n, policy)
        except ValueError as err:  # the model's own check (front-end neutral), under the Python argument's name
            raise ConfigError(f"{call}: {err}") from None

    @property
    def name(self) -> str:
        return self.run.name

    def __repr__(self) -> str:
        return f"Pipeline({self.name}, latent {self.model.latent_dim}, from {self.run.source})"

    @property
    def classes(self) -> list[int] | None:
        """The classes a conditional model was trained on (None: not conditional)."""
        return inference.run_classes(self.run)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (and its images are drawn)."""
        return self.model.device

    def to(self, device: "str | torch.device") -> "Pipeline":
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device``) and
        return this pipeline, as diffusers' ``pipe.to("cuda")``. Draws do not change with the device: latents come
        from the generator's device (the CPU for ``seed=``) and are then moved."""
        try:
            target = torch.device(device)
        except (TypeError, RuntimeError):
            raise ConfigError(f"to({device!r}): not a device; give 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
        from ganvae.common.device import resolve_device

        with python_words(pipeline_keyword):
            self.model.to(resolve_device(str(target)))
        return self

    def sample(self, n: int = 16, seed: int | None = None, latents: torch.Tensor | None = None,
               labels: "int | list[int] | torch.Tensor | None" = None,
               generator: "torch.Generator | list[torch.Generator] | None" = None) -> Images:
        """``n`` samples from the prior, or the images of given ``latents``. Conditional models: ``labels`` is one
        class for all or one per sample (default: the classes in turn).

        The randomness, as in diffusers: ``seed`` (an int) or ``generator`` (a ``torch.Generator``, whose state the
        draw advances; or a list of ``n``, one per image); neither: a fresh random draw. Each image's latent is
        drawn in turn, so the k-th image of a seed does not depend on ``n``: ``sample(16, seed=0)[:4]`` is
        ``sample(4, seed=0)``."""
        if latents is None:
            n = _count(n, "sample(n=...)")
        else:
            latents = self._latents(latents, "sample(latents=...)")
            n = len(latents)
        generators = _generators(seed, generator, n, "sample")
        self._guard(f"sample(n={n})", n)
        labels = self._labels_checked(labels, n, "sample(labels=...)")
        if latents is None:  # a conditional model's learned prior draws each latent for its class
            prior = self.model.latent_prior
            if isinstance(generators, list):  # one generator per image
                latents = torch.cat([prior.draw(1, g, None if labels is None else labels[i : i + 1]).cpu()
                                     for i, g in enumerate(generators)])
            else:
                latents = prior.draw(n, generators, labels)
        return Images(self.model.generate(latents.to(self.device), labels))

    def class_grid(self, cols: int = 8, seed: int = 0) -> Images:
        """A conditional model's class grid: one row per trained class, the same ``cols`` latents in every row."""
        cols, seed = _count(cols, "class_grid(cols=...)"), _fixed_seed(seed, "class_grid(seed=...)")
        self._guard(f"class_grid(cols={cols})", cols * len(inference.grid_classes(self.run)))  # before any latent
        z, labels = inference.class_grid(self.run, cols, seed)
        return Images(self.model.generate(z, labels), nrow=cols)

    def interpolate(self, seed_a: int = 0, seed_b: int = 1, steps: int = 8, labels=None) -> Images:
        """A walk of ``steps`` images from the latent of ``seed_a`` to that of ``seed_b`` (spherical under N(0, I),
        straight under a fitted mixture; conditional models: within class ``labels``, default the first class)."""
        seed_a, seed_b = _fixed_seed(seed_a, "interpolate(seed_a=...)"), _fixed_seed(seed_b, "interpolate(seed_b=...)")
        steps = _count(steps, "interpolate(steps=...)", 2)
        self._guard(f"interpolate(steps={steps})", steps)
        a = self.model.latent_prior.draw(1, torch.Generator().manual_seed(seed_a))
        b = self.model.latent_prior.draw(1, torch.Generator().manual_seed(seed_b))
        z = self.model.latent_prior.path(a[0], b[0], torch.linspace(0, 1, steps))  # (steps, Z)
        labels = self._labels_checked(labels, steps, "interpolate(labels=...)", LabelPolicy.FIRST_CLASS)
        return Images(self.model.generate(z, labels), nrow=steps)

    def reconstruct(self, images: "torch.Tensor | Images", labels=None, as_labels=None) -> Images:
        """Encode and decode images ``(N, C, H, W)`` (float in [0, 1], or uint8 0-255, converted) with a model that
        has an encoder. A conditional model needs the images' ``labels``; ``as_labels`` decodes them as other
        classes."""
        from ganvae.common.pixels import uint8_to_unit

        inference.require_encoder(self.run)
        x = images.tensor if isinstance(images, Images) else torch.as_tensor(images)
        with python_words():  # colour images for a grey model (or the reverse), another size: the shapes and the fix
            inference.check_image_shape(self.run, tuple(x.shape), "images")
        if x.dtype == torch.uint8:
            x = uint8_to_unit(x)
        elif not x.is_floating_point():
            raise ConfigError(f"reconstruct(images=...): {x.dtype} images; give float images in [0, 1] or uint8 0-255.")
        x = x.float()
        if not torch.isfinite(x).all():
            raise ConfigError("reconstruct(images=...): the images hold NaN or infinite values.")
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(f"reconstruct(images=...): values from {float(x.min()):.3g} to {float(x.max()):.3g}; "
                              f"float images must lie in [0, 1] (divide uint8 images by 255, or pass them as uint8).")
        self._guard(f"reconstruct({len(x)} images)", len(x))
        # a conditional model encodes each image with its class: required (policy None), as the classes to decode as
        y = self._labels_checked(labels, len(x), "reconstruct(labels=...)", policy=None)
        as_y = None if as_labels is None else self._labels_checked(as_labels, len(x), "reconstruct(as_labels=...)",
                                                                   None)
        return Images(inference.reconstruct(self.run, x, y, as_y))

    def render(self, size: int | tuple[int, int] = 512, seed: int = 0, labels=None) -> Images:
        """One latent rendered at ``size`` (an int, or (width, height)) by a coordinate generator (cppn); a
        conditional one of class ``labels`` (default its first class)."""
        if not self.model.renders_any_size:
            raise UnsupportedOperation(f"{self.name} generates {self.model.image_shape[1]}-pixel images only; render "
                                       f"needs a cppn.")
        pair: tuple = (size, size) if _is_int(size) else tuple(size) if isinstance(size, (tuple, list)) else ()
        if len(pair) != 2 or not all(_is_int(v) and v >= 1 for v in pair):
            raise ConfigError(f"render(size={size!r}): give a whole number of pixels a side, or (width, height), "
                              f"each at least 1.")
        width, height = int(pair[0]), int(pair[1])
        seed = _fixed_seed(seed, "render(seed=...)")
        self._guard(f"render(size=({width}, {height}))", 1, width, height)
        z = self.model.latent_prior.draw(1, torch.Generator().manual_seed(seed))
        labels = self._labels_checked(labels, 1, "render(labels=...)", LabelPolicy.FIRST_CLASS)
        renderer: Any = self.model  # a coordinate generator (renders_any_size): the CPPN's render
        return Images(renderer.render(z, height, width, labels=labels))

    def save_pretrained(self, folder: str | Path, dtype: str = "float16") -> Path:
        """Write this model as a pretrained folder that :func:`load` reads back."""
        from ganvae.storage import pretrained_folder

        return pretrained_folder.save_pretrained(self.model, self.config, folder, dtype=dtype)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _count(value, call: str, minimum: int = 1) -> int:
    """A count argument (``n``, ``steps``, ``cols``): a whole number of at least ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"{call}: {value!r}; give a whole number of at least {minimum}.")
    return int(value)


def _seed(value, call: str) -> int | None:
    """A seed: None (fresh randomness) or a whole number from 0 to 2**63 - 1 (what torch's generators take)."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < 2**63:
        raise ConfigError(f"{call}: {value!r}; a seed is a whole number from 0 to 2**63 - 1.")
    return int(value)


def _generators(seed, generator, n: int, call: str) -> "torch.Generator | list[torch.Generator]":
    """The randomness of a draw of ``n``: ``seed`` or ``generator`` (one, or a list of ``n``), not both; neither: a
    generator seeded afresh."""
    seed = _seed(seed, f"{call}(seed=...)")
    if generator is None:
        return torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(2**63 - 1, ())))
    if seed is not None:
        raise ConfigError(f"{call}(seed={seed}, generator=...): give one of seed= and generator=, not both.")
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (list, tuple)) and all(isinstance(g, torch.Generator) for g in generator):
        if len(generator) != n:
            raise ConfigError(f"{call}(generator=[...]): {len(generator)} generators for {n} images; give one "
                              f"per image, or a single torch.Generator.")
        return list(generator)
    raise ConfigError(f"{call}(generator={type(generator).__name__}): give a torch.Generator (e.g. "
                      f"torch.Generator().manual_seed(0)), a list of one per image, or use seed=.")


def _fixed_seed(value, call: str) -> int:
    """A seed that must be given (a grid, a walk, a render are drawn to be drawn again): as :func:`_seed`, not None."""
    seed = _seed(value, call)
    if seed is None:
        raise ConfigError(f"{call}: None; give a whole number from 0 to 2**63 - 1 "
                          "(this drawing is made to be repeated).")
    return seed


def _enable_logging() -> None:
    """Library log lines reach a Python or notebook user at INFO without configuring ``logging`` (the command line
    sets its own level); left alone when the application configured the ``ganvae`` logger or the root logger."""
    from ganvae.storage.run_folder import LOGGER_NAME, setup_logging

    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        return
    setup_logging(logging.INFO)


def load(name_or_path: str | Path, device: str = "auto") -> Pipeline:
    """A pretrained name (``mnist-dcgan``; ``ganvae.storage.zoo.pretrained_names()`` lists them), a pretrained folder,
    a run folder or a checkpoint file -> a :class:`Pipeline`. Loading reads weights and JSON only."""
    _enable_logging()
    return Pipeline(storage.load(name_or_path, device=device))


def train(model: str, *, out: str | Path | None = None, data=None, resume: bool = False, preset: str | None = None,
          config: str | Path | None = None, callbacks=None, **overrides) -> Pipeline:
    """Train ``model`` (a family name) from Python and return the trained :class:`Pipeline` (``.run.run_dir`` is
    the run folder). ``overrides`` are ``section__key=value`` pairs or plain train/data keys, e.g.
    ``ganvae.train("vae", epochs=2, dataset="mnist-5k", model__latent_dim=8)``; each value goes into the config as
    the value it is (``data_dir="2024"`` is the folder 2024, None sets null), checked like every other setting.
    ``data`` is your own images instead of a named dataset: a uint8 (0-255) or float ([0, 1]) tensor or array
    ``(N, H, W)`` / ``(N, 1, H, W)``, ``(images, labels)``, a ``torch.utils.data.Dataset`` of images or
    ``(image, label)`` items, or a folder (:mod:`ganvae.datasets`; 10% is held out, seeded, as the test split).
    ``callbacks`` are :class:`ganvae.Callback` objects (your own metric, logger or stopping rule; see
    :mod:`ganvae.training.callbacks`)."""
    from ganvae.training.launch import train_run

    _enable_logging()
    if resume and not out:
        raise ConfigError("train(..., resume=True) needs out=RUN_FOLDER: the run to continue.")
    values = keyword_settings(overrides)
    if data is not None:  # your own images: a tensor or array, (images, labels), a Dataset, or a folder
        from ganvae.data.provenance import python_dataset_name
        from ganvae.datasets import as_image_data

        given = [k for k in ("dataset", "data_dir") if k in values.get("data", {})]
        if given:  # one source of images: `dataset` would be recorded, and used by every later command
            raise ConfigError(f"train: give data= or {'/'.join(given)}=, not both: data= trains on your images, "
                              f"{given[0]}= names a dataset (and would be recorded as the run's data).")
        data = as_image_data(data, seed=int(overrides.get("seed", 0)))
        if isinstance(data, str):  # a folder: loaded (and resized) like `--dataset folder:PATH`
            values.setdefault("data", {})["dataset"] = data
            data = None
        else:  # recorded as python:<fingerprint> (of the channels data.color asks); their own size, unless asked
            from ganvae.data.dataset import with_color

            data = with_color(data, str(values.get("data", {}).get("color", "auto")))
            values.setdefault("data", {})["dataset"] = python_dataset_name(data)
            values["data"].setdefault("image_size", data.image_shape[-1])
    argv = [sys.argv[0], "ganvae.train", model, *(["--resume"] if resume else []),
            *(f"{k}={v!r}" for k, v in overrides.items())]
    with python_words():
        result = train_run(model, out=out, resume=resume, config_file=config, values=values, preset=preset,
                           data=data, argv=argv, callbacks=callbacks)
    return load(result.run_dir)


# ----------------------------------------------------------------------------- the library's errors in keywords


def keyword_settings(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``ganvae.train``'s keywords -> the config values they set, by section: ``model__latent_dim=8`` ->
    ``{"model": {"latent_dim": 8}}``; a shortcut by its section (``data_dir=`` -> ``data``, see
    :data:`ganvae.config.SHORTCUTS`); any other plain key is the train section's (``epochs=``)."""
    from ganvae.config import SHORTCUTS

    sections = {s.key: s.section for s in SHORTCUTS}
    values: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.partition("__") if "__" in key else (sections.get(key, "train"), "", key)
        values.setdefault(section, {})[name] = value
    return values


def keyword(name: str, value: Any = NO_VALUE) -> str:
    """A library field as a Python user writes it (:data:`ganvae.errors.Spelling`): a config key as
    ``ganvae.train``'s keyword (``data.data_dir`` -> ``data_dir='2024'``, ``train.epochs`` -> ``epochs=0``,
    ``model.latent_dim`` -> ``model__latent_dim=0``), an argument by its name (``n_samples=10``)."""
    from ganvae.config import SHORTCUTS

    if "." in name:
        section, key = name.split(".", 1)
        if section == "train" or any(s.path == name for s in SHORTCUTS):
            name = key  # ganvae.train takes it bare (a plain key is the train section's)
    return errors.keyword(name, value)


def pipeline_keyword(name: str, value: Any = NO_VALUE) -> str:
    """:func:`keyword`, but the memory limit is the pipeline's attribute, not an argument."""
    if name == "max_memory_gb" and value is NO_VALUE:
        return "the pipeline's max_memory_gb (e.g. `model.max_memory_gb = 16`)"
    return keyword(name, value)


@contextlib.contextmanager
def python_words(spell: errors.Spelling = keyword):
    """A field error raised inside speaks Python's words (``data_dir='2024'``, not ``--data-dir 2024``)."""
    try:
        yield
    except FieldError as err:
        err.worded(spell)
        raise
