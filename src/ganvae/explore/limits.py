"""The explorer's limits and the refusals they produce; no torch here, so the command line can read the defaults
while it builds its parser."""

from __future__ import annotations

from dataclasses import dataclass

from ganvae.errors import ConfigError


@dataclass
class Limits:
    """Caps on the expensive work one request may ask for (the server's flags can change them)."""

    max_samples: int = 64  # images per sample/decode request
    max_steps: int = 64  # images of an interpolation
    max_render: int = 1024  # pixels a side of a CPPN render (1024: about 4 s on 2 cores, mnist-cppn)
    max_invert_steps: int = 500  # optimisation steps of one GAN inversion
    max_jobs: int = 2  # inversions running at once
    max_queue: int = 4  # requests waiting for or using one model; more are answered 429
    render_seconds: float = 30.0  # a render still running after this is stopped (503)
    max_body_bytes: int = 2 * 2**20  # a request body; 64 latents of 1024 numbers fit

    def __post_init__(self):
        for name in ("max_samples", "max_steps", "max_render", "max_invert_steps", "max_jobs", "max_queue",
                     "max_body_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"explore: {name.replace('_', '-')} {value!r} must be a whole number of at least 1 "
                                  f"(0 would refuse every request).")
        if not self.render_seconds > 0:
            raise ConfigError(f"explore: render-seconds {self.render_seconds!r} must be above 0.")


class Busy(Exception):
    """A model's queue is full (the server answers 429)."""


class RenderTooSlow(Exception):
    """A render ran past :attr:`Limits.render_seconds` and was stopped (the server answers 503)."""


class RenderAbandoned(Exception):
    """The client of a render went away and the render was stopped (no one is left to answer)."""
