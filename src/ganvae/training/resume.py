"""What may change when a run is resumed, and what may not.

``ganvae train MODEL --out RUN --resume [settings]`` continues from the checkpoint's config with the given
settings applied on top. Settings that only steer training (budgets, cadences, batch size, learning rates, loss
weights, device) take effect and are logged as changed; settings that would make the checkpoint's weights or data
meaningless (anything that changes the networks' weights, the dataset and its preparation, the seed that fixes the
data order and noise, the fixed noise of the grids) are refused with their names, before anything is written.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ganvae.config import SECTIONS, ExperimentConfig
from ganvae.errors import ConfigError

# settings of these sections that cannot change on resume (every other one can, except model settings that change
# the networks' weights, found by building the networks)
FIXED = {
    "data": {"dataset": "the run's weights were trained on its data", "classes": "the run's weights were trained on its data",
             "image_size": "the networks' shapes depend on it", "invert": "the run's weights were trained on its data",
             "test_fraction": "the data split would change"},
    "train": {"seed": "the run's data order and noise derive from it"},
    "run": {"n_fixed": "the grids' fixed noise is stored in the checkpoint"},
}


def changed_settings(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[tuple[str, str, Any, Any]]:
    """``(section, key, saved value, wanted value)`` for every setting that differs."""
    out = []
    for section in SECTIONS:
        a, b = getattr(saved, section), getattr(wanted, section)
        for f in dataclasses.fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                out.append((section, f.name, getattr(a, f.name), getattr(b, f.name)))
    return out


def _weight_shapes(cfg: ExperimentConfig, image_shape: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    from ganvae.registry import build_model

    with torch.random.fork_rng(devices=[]):  # building initialises weights: the caller's random stream stays as it was
        # the learned prior is not trained: it is fitted again when the resumed run ends, so its settings may change
        return {k: tuple(v.shape) for k, v in build_model(cfg, image_shape).state_dict().items()
                if not k.startswith("latent_prior.")}


def resumed_config(saved: ExperimentConfig, wanted: ExperimentConfig, image_shape: tuple[int, int, int],
                   source: str) -> tuple[ExperimentConfig, list[str]]:
    """The config to continue with (``wanted``) and one line per changed setting; raises :class:`ConfigError`
    naming every setting that cannot change."""
    if wanted.model_name != saved.model_name:
        raise ConfigError(f"{source}: a {saved.model_name} run cannot be resumed as {wanted.model_name}.")
    changes = [c for c in changed_settings(saved, wanted) if (c[0], c[1]) != ("run", "out")]
    refused, accepted = [], []
    saved_shapes = None
    for section, key, old, new in changes:
        why = FIXED.get(section, {}).get(key)
        if section == "model" and why is None:
            saved_shapes = saved_shapes or _weight_shapes(saved, image_shape)
            trial = dataclasses.replace(saved, model=dataclasses.replace(saved.model, **{key: new}))
            try:
                if _weight_shapes(trial, image_shape) != saved_shapes:
                    why = "it changes the networks' weights"
            except ConfigError as err:
                why = str(err)
        line = f"{section}.{key}: {old!r} -> {new!r}"
        (refused if why else accepted).append(f"{line} ({why})" if why else line)
    if refused:
        raise ConfigError(f"{source}: --resume continues the run as it was trained; these settings cannot change: "
                          + "; ".join(refused) + ". Drop them, or start a new run with another --out.")
    return wanted, accepted

