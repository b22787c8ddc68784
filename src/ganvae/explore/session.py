"""What the explorer does with a model, independent of the web framework: draw, decode, find the main directions
of variation, encode a drawing, invert a GAN, render a CPPN. The web layer (``server.py``) validates requests and
calls these.

Images cross the wire as grey PNG data URIs (28x28 samples are ~300 bytes each); latents as lists of floats.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganvae.common import seeds
from ganvae.common.pixels import to_unit
from ganvae.errors import ConfigError
from ganvae.explore.limits import Busy, Limits, RenderAbandoned, RenderTooSlow  # noqa: F401 (re-exported)
from ganvae.inference import check_digits, run_classes
from ganvae.models.conditioning import LabelPolicy
from ganvae.storage import LoadedRun


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` array -> ``data:image/png;base64,...``."""
    from ganvae.viz.images import png_bytes

    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """``(N, C, H, W)`` in [0, 1] -> N uint8 arrays ``(H, W)`` (grey) or ``(H, W, 3)``."""
    arr = images.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return [a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0) for a in arr]


@dataclass
class Job:
    """A GAN inversion running in a background thread; the page polls it."""

    id: str
    steps: int
    step: int = 0
    loss: float | None = None  # None until the first step (JSON has no NaN)
    state: str = "running"  # running, done, failed
    image: str | None = None
    latent: list[float] | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # set when the job finishes: its time stops growing

    def finish(self, state: str, error: str | None = None) -> None:
        self.state, self.error, self.ended = state, error, time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "step": self.step, "steps": self.steps, "loss": self.loss,
                "image": self.image, "latent": self.latent, "error": self.error,
                "seconds": round((self.ended or time.monotonic()) - self.started, 2)}


class ModelView:
    """One loaded model as the explorer sees it. Forward passes hold ``lock`` (a model is not shared between
    threads mid-call), so an inversion's steps interleave with the page's other requests."""

    def __init__(self, key: str, loaded: LoadedRun, limits: Limits | None = None):
        self.key = key
        self.loaded = loaded
        self.model = loaded.model
        self.limits = limits or Limits()
        self.lock = threading.Lock()
        self._pending = 0  # requests waiting for or holding `lock`
        self._pending_lock = threading.Lock()
        self._directions: dict[str, Any] | None = None
        self._pools: dict[int | None, torch.Tensor] = {}  # digit -> the samples encode() compares a drawing with

    # ---- description
    def info(self) -> dict[str, Any]:
        m = self.model
        return {
            "name": self.key, "family": self.loaded.name, "latent_dim": m.latent_dim,
            "image_size": list(m.image_shape[1:]), "channels": m.image_shape[0], "conditional": m.conditional,
            "classes": run_classes(self.loaded),
            "has_encoder": m.has_encoder, "renders_any_size": m.renders_any_size,
        }

    @contextlib.contextmanager
    def queued(self):
        """Count a request against this model's queue for its duration; a full queue raises :class:`Busy` at once
        (the thread pool is shared by every model: one slow model must not stall the others)."""
        with self._pending_lock:
            if self._pending >= self.limits.max_queue:
                raise Busy(f"{self.key} is busy: {self._pending} requests are waiting for it (the limit is "
                           f"{self.limits.max_queue}); try again in a moment.")
            self._pending += 1
        try:
            yield
        finally:
            with self._pending_lock:
                self._pending -= 1

    # ---- checks
    def labels(self, digit: int | None, n: int) -> torch.Tensor | None:
        """``n`` copies of ``digit`` for a conditional model (default its first class); refused for others."""
        check_digits(self.loaded, None if digit is None else [digit], "digit")
        return self.model.labels_for(n, digit, LabelPolicy.FIRST_CLASS)

    def latent_tensor(self, latents: list[list[float]]) -> torch.Tensor:
        try:
            z = torch.tensor(latents, dtype=torch.float32)
        except (ValueError, TypeError):  # ragged lists
            lengths = sorted({len(row) for row in latents})
            raise ConfigError(f"latents: every latent must have {self.model.latent_dim} numbers; got lists of "
                              f"{', '.join(map(str, lengths))} numbers.") from None
        if z.dim() != 2 or z.shape[1] != self.model.latent_dim:
            raise ConfigError(f"latents: {self.key} takes latents of {self.model.latent_dim} numbers each; got shape "
                              f"{list(z.shape)}.")
        if not torch.isfinite(z).all():
            raise ConfigError("latents: every number must be finite.")
        return z

    def image_tensor(self, pixels: list[float]) -> torch.Tensor:
        """A drawing as values in [0, 1], row-major -> ``(1, C, H, W)``: ``H*W`` grey values (a colour model gets
        them in each channel: white ink on black), or a colour model's ``3*H*W`` (the red plane, green, blue)."""
        c, h, w = self.model.image_shape
        x = torch.tensor(pixels, dtype=torch.float32)
        if x.dim() != 1 or x.numel() not in {h * w, c * h * w}:
            colour = f" or {c}x{h}x{w} = {c * h * w} colour values (red plane, green, blue)" if c > 1 else ""
            raise ConfigError(f"image: {self.key} takes {h}x{w} = {h * w} grey values{colour}; got {x.numel()}.")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ConfigError("image: values must lie in [0, 1].")
        if x.numel() == h * w:
            return x.view(1, 1, h, w).expand(1, c, h, w).contiguous()
        return x.view(1, c, h, w)

    # ---- drawing
    def sample(self, seed: int, n: int, digit: int | None) -> dict[str, Any]:
        # a conditional model's per-class prior draws each latent for the asked class, as ganvae.load(...).sample does
        z = self.model.latent_prior.draw(n, torch.Generator().manual_seed(seed), self.labels(digit, n))
        return {"latents": z.tolist(), "images": self.decode(z, digit)}

    def decode(self, z: torch.Tensor, digit: int | None) -> list[str]:
        labels = self.labels(digit, len(z))
        with self.lock:
            images = self.model.generate(z, labels)
        return [png_data_uri(a) for a in to_uint8(images)]

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int, digit: int | None) -> dict[str, Any]:
        z = self.model.latent_prior.path(a[0], b[0], torch.linspace(0, 1, steps))  # (steps, Z)
        return {"latents": z.tolist(), "images": self.decode(z, digit)}

    # ---- main directions of variation
    def directions(self, k: int = 6, n: int = 2000) -> dict[str, Any]:
        """The ``k`` main directions of the latent space, each a unit vector with the spread of the codes along it.

        Encoder models: principal components of the posterior means of test images. Others: GANSpace (Harkonen et
        al. 2020, Sec. 2): principal components of the generator's first-layer activations for ``n`` prior
        samples, carried back to latent space by linear regression of the latents on the components' scores.
        """
        if self._directions is None:
            with self.lock, torch.no_grad():
                self._directions = self._posterior_directions(n) if self.model.has_encoder else self._ganspace(n)
        d = self._directions
        return {"directions": d["directions"][:k], "scales": d["scales"][:k], "source": d["source"]}

    def _ganspace(self, n: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(seeds.EXPLORER_DIRECTIONS)
        z = self.model.latent_prior.draw(n, g)
        first = first_linear(self.model.inference_network("generator" if "generator" in self.model.networks
                                                          else "decoder"))
        acts: list[torch.Tensor] = []
        hook = first.register_forward_hook(lambda m, i, o: acts.append(o.detach().flatten(1).float().cpu()))
        try:
            self.model.generate(z, self.labels(None, n), batch_size=500)
        finally:
            hook.remove()
        y = torch.cat(acts)[:n]
        y = y - y.mean(0)
        _, _, v = torch.linalg.svd(y, full_matrices=False)  # rows of v: principal axes of the activations
        scores = y @ v[:16].T  # (n, 16)
        u = torch.linalg.lstsq(scores, z - z.mean(0)).solution  # (16, Z): latent change per unit of each score
        u = u / u.norm(dim=1, keepdim=True)
        spread = (z @ u.T).std(0)  # prior spread along each direction (about 1)
        return {"directions": u.tolist(), "scales": spread.tolist(),
                "source": "GANSpace: principal components of the first layer's activations (2,000 samples)"}

    def _posterior_directions(self, n: int) -> dict[str, Any]:
        from ganvae.common.pixels import from_unit

        x, y, source = reference_images(self.loaded, n)
        mu = torch.cat([self.model.encode(from_unit(xb, self.model.value_range),
                                          yb if self.model.conditional else None)[0]
                        for xb, yb in zip(x.split(500), y.split(500))])
        mu = mu.float() - mu.float().mean(0)
        _, s, v = torch.linalg.svd(mu, full_matrices=False)
        return {"directions": v.tolist(), "scales": (s / max(len(mu) - 1, 1) ** 0.5).tolist(),
                "source": f"principal components of the posterior means of {len(x)} {source} images"}

    # ---- a drawing
    def encode(self, x: torch.Tensor, digit: int | None, nearest: int = 4) -> dict[str, Any]:
        """Encoder models: the drawing's posterior mean, its reconstruction, and the model's samples nearest to it."""
        from ganvae.common.pixels import from_unit

        labels = self.labels(digit, 1)
        with self.lock, torch.no_grad():
            mu, _ = self.model.encode(from_unit(x, self.model.value_range), labels)
            recon = self.model.generate(mu, labels)
            pool = self._nearest_pool(digit)
        d = (pool - x).flatten(1).pow(2).sum(1)
        idx = d.argsort()[:nearest]
        return {"latent": mu[0].tolist(), "reconstruction": png_data_uri(to_uint8(recon)[0]),
                "nearest": [png_data_uri(a) for a in to_uint8(pool[idx])]}

    def _nearest_pool(self, digit: int | None, n: int = 256) -> torch.Tensor:
        """``n`` fixed samples ``(n, C, H, W)`` in [0, 1] (of ``digit``, conditional models) that :meth:`encode`
        searches for a drawing's nearest neighbours: drawn once per digit, then reused (call under ``lock``)."""
        if digit not in self._pools:
            g, labels = torch.Generator().manual_seed(seeds.EXPLORER_NEAREST_POOL), self.labels(digit, n)
            self._pools[digit] = self.model.generate(self.model.latent_prior.draw(n, g, labels), labels)
        return self._pools[digit]

    def _classifier(self):
        """The classifier of the model's data at its image shape (shipped for MNIST and the 32-pixel colour
        digits; any other ``ganvae classifier train`` put in the cache), or None: inversion then matches pixels."""
        from ganvae.errors import GanvaeError
        from ganvae.metrics.classifier import load_classifier

        try:
            return load_classifier(self.loaded.config.data.dataset, image_shape=tuple(self.model.image_shape)).model
        except GanvaeError:
            return None

    def invert(self, job: Job, x: torch.Tensor, digit: int | None, lr: float = 0.05,
               feature_weight: float = 0.1) -> None:
        """GAN inversion (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold", Sec. 3.1):
        the latent whose image best matches the drawing, by Adam on z from the best of 64 random starts; loss = pixel
        MSE + ``feature_weight`` x MSE of the data's classifier's features (:meth:`_classifier`) + a small pull towards
        the prior."""
        try:
            fnet = self._classifier()
            labels = self.labels(digit, 1)
            with self.lock, torch.no_grad():
                g = torch.Generator().manual_seed(seeds.EXPLORER_INVERSION_STARTS)
                starts = self.model.latent_prior.draw(64, g, self.labels(digit, 64))
                pool = self.model.generate(starts, self.labels(digit, 64))
                z0 = starts[(pool - x).flatten(1).pow(2).sum(1).argmin()][None]
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            target_features = fnet.features(x).detach() if fnet is not None else None
            for step in range(job.steps):
                with self.lock:
                    image = to_unit(self.model.decode(z, labels), self.model.value_range)
                    loss = (image - x).pow(2).mean()
                    if fnet is not None:
                        loss = loss + feature_weight * (fnet.features(image) - target_features).pow(2).mean()
                    loss = loss + 1e-4 * z.pow(2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                job.step, job.loss = step + 1, float(loss.detach())
                if step % 10 == 0 or step == job.steps - 1:
                    job.image = png_data_uri(to_uint8(image.detach())[0])
            job.latent = z.detach()[0].tolist()
            job.finish("done")
        except Exception as err:  # reported to the page; the server keeps running
            job.finish("failed", f"{type(err).__name__}: {err}")

    # ---- cppn
    def render(self, z: torch.Tensor, size: int, digit: int | None, abandoned=lambda: False) -> bytes:
        """A CPPN latent rendered at ``size`` x ``size``, as PNG bytes (rendered in bands); ``abandoned()`` true (the
        client went away) stops it between bands (:class:`RenderAbandoned`)."""
        from ganvae.viz.images import png_bytes

        if not self.model.renders_any_size:
            raise ConfigError(f"render: {self.key} is a {self.loaded.name}, which generates "
                              f"{self.model.image_shape[1]}-pixel images only; render needs a cppn.")
        labels = self.labels(digit, 1)
        deadline = time.monotonic() + self.limits.render_seconds
        bands, rows = [], 0
        with self.lock:  # bands of 2^18 pixels (about a second each): the time limit is checked between them
            for band in self.model.render_bands(z, size, size, band_pixels=1 << 18, labels=labels):
                bands.append(band)
                rows += len(band)
                if rows < size and abandoned():
                    raise RenderAbandoned(f"render: {size}x{size} stopped after {rows} rows: the client went away")
                if time.monotonic() > deadline and rows < size:
                    raise RenderTooSlow(f"render: {size}x{size} took over {self.limits.render_seconds:g} s and was "
                                        f"stopped; ask for a smaller size.")
        return png_bytes(np.concatenate(bands, axis=0))


def first_linear(network: nn.Module) -> nn.Module:
    """The first linear layer of a generator (after a conditional wrapper's embedding): GANSpace's layer."""
    for module in network.modules():
        if isinstance(module, nn.Linear):
            return module
    raise ConfigError("this generator has no linear layer to find directions in")


def reference_images(loaded: LoadedRun, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Up to ``n`` test images (and labels) in [0, 1]: the run's dataset when it can be read here (a pretrained
    model offline: its packaged stand-in, :func:`ganvae.inference.run_data`), otherwise the offline ``mnist-5k``
    that ships with ganvae (so a pretrained model's directions work offline)."""
    from ganvae.common.pixels import uint8_to_unit
    from ganvae.data.dataset import load_dataset
    from ganvae.errors import GanvaeError
    from ganvae.inference import run_data

    size = loaded.model.image_shape[1]
    try:
        data, _ = run_data(loaded, image_size=size)
        source = f"{data.name} test"
    except GanvaeError:
        from ganvae.config import DataConfig

        data = load_dataset(DataConfig(dataset="mnist-5k", image_size=size, classes=loaded.config.data.classes))
        source = "mnist-5k test"
    return uint8_to_unit(data.test_images[:n]), data.test_labels[:n], source


class Explorer:
    """The models on show and the inversion jobs."""

    def __init__(self, views: dict[str, ModelView], limits: Limits | None = None):
        self.views = views
        self.limits = limits or Limits()
        for v in views.values():
            v.limits = self.limits
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._jobs_lock = threading.Lock()

    def public_text(self, text: str) -> str:
        """An error message for the page: paths on this machine (a model's folder, the package's install path)
        become the names the page knows."""
        from ganvae.storage.zoo import zoo_dir

        paths = {str(p): v.key for v in self.views.values() for p in (v.loaded.source, v.loaded.run_dir) if p}
        for path in sorted(paths, key=len, reverse=True):  # a checkpoint's path before its run folder's
            text = text.replace(path, paths[path])
        return text.replace(str(zoo_dir()), "<zoo>")

    def view(self, key: str) -> ModelView:
        if key not in self.views:
            raise KeyError(key)
        return self.views[key]

    def start_inversion(self, view: ModelView, x: torch.Tensor, steps: int, digit: int | None) -> Job:
        with self._jobs_lock:
            running = [j for j in self.jobs.values() if j.state == "running"]
            if len(running) >= self.limits.max_jobs:
                raise RuntimeError(f"{len(running)} inversions are running (the limit is {self.limits.max_jobs}); "
                                   f"wait for one to finish.")
            view.labels(digit, 1)  # refuse a bad digit now, not in the thread
            job = Job(id=str(next(self._ids)), steps=steps)
            self.jobs[job.id] = job
            for old in [k for k, j in self.jobs.items() if j.state != "running"][:-20]:  # keep the last 20 finished
                del self.jobs[old]
        threading.Thread(target=view.invert, args=(job, x, digit), daemon=True, name=f"invert-{job.id}").start()
        return job

