"""What may change when a run is resumed, and what may not.

``ganvae train MODEL --out RUN --resume [settings]`` continues from the checkpoint's config with the given
settings applied on top. Settings that only steer training (budgets, cadences, batch size, learning rates, loss
weights, device) take effect and are logged as changed; settings that would make the checkpoint's weights or data
meaningless (anything that changes the networks' weights, the dataset and its preparation, the seed that fixes the
data order and noise, the fixed noise of the grids) are refused with their names, before anything is written.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from ganvae.config import SECTIONS, ExperimentConfig, config_from_dict
from ganvae.errors import CheckpointError, ConfigError
from ganvae.storage import checkpoint as ckpt_io
from ganvae.training.state import TrainingState

log = logging.getLogger(__name__)

# settings of these sections that cannot change on resume (every other one can, except model settings that change
# the networks' weights, found by building the networks)
FIXED = {
    "data": {"dataset": "the run's weights were trained on its data",
             "classes": "the run's weights were trained on its data",
             "image_size": "the networks' shapes depend on it", "invert": "the run's weights were trained on its data",
             "test_fraction": "the data split would change",
             "color": "the networks' channels depend on it"},
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
    from ganvae.storage.model_state import without_prior

    with torch.random.fork_rng(devices=[]):  # building initialises weights: the caller's random stream stays as it was
        # the learned prior is not trained: it is fitted again when the resumed run ends, so its settings may change
        return {k: tuple(v.shape) for k, v in without_prior(build_model(cfg, image_shape).state_dict()).items()}


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


def restore_training(model, optimizers: dict, ck, saved_cfg: ExperimentConfig, cfg: ExperimentConfig,
                     fingerprint: str):
    """Continue from checkpoint ``ck`` (of a run trained with ``saved_cfg``, resumed with ``cfg``): the model's
    weights, its optimisers' moments under ``cfg``'s rates, the global random states; returns the
    :class:`~ganvae.training.state.TrainingState` to continue from. Refused, naming the file, when the run was
    trained on other data (``fingerprint``) or the file is not a training checkpoint, before any weight is touched.
    The learned prior is forgotten: it was fitted to the weights before this session and is refitted at its end."""
    if ck.header.get("data_fingerprint") not in (None, fingerprint):
        raise CheckpointError(
            f"{ck.path}: the run was trained on other data (fingerprint {ck.header['data_fingerprint']}, "
            f"now {fingerprint}). Resume with the same --dataset, --data-dir and --classes."
        )
    state = TrainingState.from_checkpoint(ck)
    ckpt_io.restore_model(model, ck, refit_prior=True)
    ckpt_io.restore_optimizers(optimizers, ck)
    # the restored optimisers carry the saved learning rates and betas: the config's (changed or not) rule
    for name, fresh in model.make_optimizers().items():
        for group, new in zip(optimizers[name].param_groups, fresh.param_groups):
            group.update({k: new[k] for k in ("lr", "betas", "eps", "weight_decay") if k in new})
    state.restore_rng()
    old_batch = saved_cfg.train.batch_size
    if old_batch != cfg.train.batch_size and state.step_in_epoch:
        # the position inside the epoch is kept in images: the first images of the rest may repeat
        state.step_in_epoch = state.step_in_epoch * old_batch // cfg.train.batch_size
    model.latent_prior.forget()
    log.info("resumed %s at epoch %d, step %d", ck.path, state.epoch + 1, state.step)
    return state


def config_on_resume(ck, cfg: ExperimentConfig) -> tuple[ExperimentConfig, ExperimentConfig, list[str]]:
    """For a run resumed from checkpoint ``ck`` with ``cfg``: (the run's saved config, the config to continue with,
    one line per changed setting); see :func:`resumed_config`. A checkpoint of another model is refused."""
    if ck.model_name != cfg.model_name:
        raise CheckpointError(f"{ck.path}: a {ck.model_name} checkpoint, not {cfg.model_name}.")
    saved = config_from_dict(ck.header["config"], str(ck.path))
    image_shape = tuple(ck.header.get("image_shape") or (1, cfg.data.image_size, cfg.data.image_size))
    wanted, changes = resumed_config(saved, cfg, image_shape, str(ck.path))
    return saved, wanted, changes
