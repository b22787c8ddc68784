"""The Python API in the style of diffusers' pipelines: ``ganvae.load("mnist-dcgan").sample(16)``.

:func:`load` takes a pretrained name, a pretrained folder, a run folder or a checkpoint, and returns a
:class:`Pipeline` whose methods return :class:`Images`: a tensor ``(N, C, H, W)`` in [0, 1] with helpers to make
PIL images and grids; grids show inline in Jupyter. :func:`train` runs the trainer from Python.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from ganvae import api
from ganvae.errors import UnsupportedOperation
from ganvae.models.conditioning import balanced_labels

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
    """A trained model ready to draw. ``name``: the model family; ``run``: the :class:`~ganvae.api.LoadedRun`."""

    def __init__(self, run: api.LoadedRun):
        self.run = run
        self.model = run.model
        self.config = run.config

    @property
    def name(self) -> str:
        return self.run.name

    def __repr__(self) -> str:
        return f"Pipeline({self.name}, latent {self.model.latent_dim}, from {self.run.source})"

    @property
    def classes(self) -> list[int] | None:
        """The classes a conditional model was trained on (None: not conditional)."""
        return api.run_classes(self.run) if self.model.conditional else None

    def _labels(self, labels, n: int) -> torch.Tensor | None:
        """``labels`` (an int, one per sample, or class weights ``(n, K)``: a blend) for a conditional model; None ->
        the trained classes in turn."""
        if not self.model.conditional:
            api.check_digits(self.run, None if labels is None else torch.as_tensor(labels).reshape(-1).tolist(), "labels")
            return None
        if labels is None:
            return balanced_labels(n, self.classes)
        labels = torch.as_tensor(labels)
        if not (labels.is_floating_point() and labels.dim() == 2):  # class weights (n, K) are checked by the model
            api.check_digits(self.run, sorted(set(labels.reshape(-1).tolist())), "labels")
        return self.model.check_labels(labels, n)

    def sample(self, n: int = 16, seed: int | None = None, latents: torch.Tensor | None = None,
               labels: "int | list[int] | torch.Tensor | None" = None) -> Images:
        """``n`` samples from the prior (``seed`` None: a fresh random draw), or the images of given ``latents``.
        Conditional models: ``labels`` is one class for all or one per sample (default: the classes in turn)."""
        n = n if latents is None else len(latents)
        labels = self._labels(labels, n)
        if latents is None:  # a conditional model's learned prior draws each latent for its class
            generator = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(2**31, ())))
            latents = self.model.prior(n, generator=generator, device=torch.device("cpu"), labels=labels)
        return Images(self.model.generate(latents, labels))

    def class_grid(self, cols: int = 8, seed: int = 0) -> Images:
        """A conditional model's class grid: one row per trained class, the same ``cols`` latents in every row."""
        if not self.model.conditional:
            raise UnsupportedOperation(f"{self.name} is not conditional; it has no class grid. Use sample().")
        z, labels = api.class_grid(self.run, cols, seed)
        return Images(self.model.generate(z, labels), nrow=cols)

    def interpolate(self, seed_a: int = 0, seed_b: int = 1, steps: int = 8, labels=None) -> Images:
        """A spherical walk of ``steps`` images from the latent of ``seed_a`` to that of ``seed_b`` (conditional
        models: within class ``labels``, default the first trained class)."""
        a = self.model.prior(1, generator=torch.Generator().manual_seed(seed_a), device=torch.device("cpu"))
        b = self.model.prior(1, generator=torch.Generator().manual_seed(seed_b), device=torch.device("cpu"))
        z = api.latent_path(self.model, a[0], b[0], torch.linspace(0, 1, steps))  # (steps, Z)
        if self.model.conditional and labels is None:
            labels = self.classes[0]
        return Images(self.model.generate(z, self._labels(labels, steps)), nrow=steps)

    def reconstruct(self, images: "torch.Tensor | Images", labels=None, as_labels=None) -> Images:
        """Encode and decode images ``(N, C, H, W)`` in [0, 1] (models with an encoder). A conditional model needs
        the images' ``labels``; ``as_labels`` decodes them as other classes."""
        if not self.model.has_encoder:
            raise UnsupportedOperation(f"{self.name} has no encoder, so it cannot reconstruct an image; use sample().")
        x = images.tensor if isinstance(images, Images) else images
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.model.image_shape):
            raise UnsupportedOperation(f"reconstruct: images must be (N, {', '.join(map(str, self.model.image_shape))}) "
                                       f"in [0, 1]; got {tuple(x.shape)}.")
        if not self.model.conditional:
            self._labels(labels if labels is not None else as_labels, len(x))  # refuses labels
            return Images(self.model.reconstruct(x.float()))
        if labels is None:
            raise UnsupportedOperation(f"{self.name} is conditional: reconstruct(images, labels=...) needs the class "
                                       f"of each image.")
        y = self._labels(labels, len(x))
        return Images(self.model.reconstruct(x.float(), y, None if as_labels is None else self._labels(as_labels, len(x))))

    def render(self, size: int | tuple[int, int] = 512, seed: int = 0, labels=None) -> Images:
        """One latent rendered at ``size`` (an int, or (width, height)) by a coordinate generator (cppn); a
        conditional one of class ``labels`` (default its first class)."""
        if not self.model.renders_any_size:
            raise UnsupportedOperation(f"{self.name} generates {self.model.image_shape[1]}-pixel images only; render "
                                       f"needs a cppn.")
        width, height = (size, size) if isinstance(size, int) else size
        api.check_memory(width * height * 4 * 3, f"render size {width}x{height}", api.MAX_MEMORY_GB)
        z = self.model.prior(1, generator=torch.Generator().manual_seed(seed), device=torch.device("cpu"))
        if self.model.conditional and labels is None:
            labels = self.classes[0]
        return Images(self.model.render(z, height, width, labels=self._labels(labels, 1)))

    def save_pretrained(self, folder: str | Path, dtype: str = "float16") -> Path:
        """Write this model as a pretrained folder that :func:`load` reads back."""
        from ganvae import pretrained

        return pretrained.save_pretrained(self.model, self.config, folder, dtype=dtype)


def _enable_logging() -> None:
    """Library log lines reach a Python or notebook user at INFO without configuring ``logging`` (the command line
    sets its own level); left alone when the application configured the ``ganvae`` logger or the root logger."""
    from ganvae.runs import LOGGER_NAME, setup_logging

    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        return
    setup_logging(logging.INFO)


def load(name_or_path: str | Path, device: str = "auto") -> Pipeline:
    """A pretrained name (``mnist-dcgan``; ``ganvae.pretrained.pretrained_names()`` lists them), a pretrained folder,
    a run folder or a checkpoint file -> a :class:`Pipeline`. Loading reads weights and JSON only."""
    _enable_logging()
    return Pipeline(api.load_run(name_or_path, device=device))


def train(model: str, *, out: str | Path | None = None, data=None, resume: bool = False, preset: str | None = None,
          config: str | Path | None = None, **overrides) -> Pipeline:
    """Train ``model`` (a family name) from Python and return the trained :class:`Pipeline` (``.run.run_dir`` is
    the run folder). ``overrides`` are ``section__key=value`` pairs or plain train/data keys, e.g.
    ``ganvae.train("vae", epochs=2, dataset="mnist-5k", model__latent_dim=8)``."""
    from ganvae.config import build_config
    from ganvae.training.trainer import Trainer

    _enable_logging()
    sections = {"epochs": "train", "max_minutes": "train", "batch_size": "train", "seed": "train", "device": "train",
                "dataset": "data", "data_dir": "data", "classes": "data"}
    sets = []
    for key, value in overrides.items():
        section, _, name = key.partition("__") if "__" in key else (sections.get(key, "train"), "", key)
        sets.append(f"{section}.{name}={_yaml(value)}")
    cfg = build_config(model, config, overrides=sets, preset=preset)
    result = Trainer(cfg, out or cfg.run.out, data=data, resume=resume, argv=[sys.argv[0], "ganvae.train", model]).fit()
    return load(result.run_dir)


def _yaml(value) -> str:
    import json

    return json.dumps(value) if not isinstance(value, str) else value
