"""The one key map between a model and what storage keeps of it.

A model's ``state_dict`` holds its networks (``generator.*``, ``encoder.*``, ...), their moving averages
(``ema_<network>.*``) and the state outside the networks: the latent prior's (a fitted mixture under
``latent_prior.*``; :mod:`ganvae.models.latents`) and a self-conditioned GAN's pseudo-classes (``pseudo_classes.*``).
Checkpoints keep all of it; a pretrained folder keeps the sampling networks and the *sampling state* (what drawing
needs besides the networks: everything outside them but the model's ``training_only_state``). The learned prior is
not trained but fitted, so resume rules and refits treat its keys apart. Every reader and writer asks this module,
so the key names live here once and today's checkpoints, pretrained folders and zoo load unchanged.
"""

from __future__ import annotations

import dataclasses

import torch

PRIOR = "latent_prior."  # the latent prior's keys in a model's state


def is_prior_key(key: str) -> bool:
    """Whether ``key`` of a model's state belongs to its latent prior (fitted, not trained)."""
    return key.startswith(PRIOR)


def prior_state(model) -> dict[str, torch.Tensor]:
    """The latent prior's tensors by model state key (empty for a prior that keeps none)."""
    return {PRIOR + k: v for k, v in model.latent_prior.state_dict().items()}


def without_prior(state: dict) -> dict:
    """``state`` (a model's state, or shapes by key) without the latent prior's keys."""
    return {k: v for k, v in state.items() if not is_prior_key(k)}


def with_prior_of(model, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with its latent prior replaced by ``model``'s own (unfitted, or as the model holds it)."""
    return {**without_prior(state), **prior_state(model)}


def sampling_state(model) -> dict[str, torch.Tensor]:
    """What sampling needs besides the sampling networks, by state key: every tensor outside the networks and their
    moving averages but the model's ``training_only_state`` (a fitted mixture; a self-conditioned GAN's pseudo-class
    shares, not its assignments of the training images). A pretrained folder stores these in float32."""
    networks = {*model.networks, *(f"ema_{n}" for n in model.networks)}
    return {k: v for k, v in model.state_dict().items()
            if k.split(".")[0] not in networks and k not in model.training_only_state}


def load_sampling_state(model, tensors: dict[str, torch.Tensor]) -> None:
    """Load :func:`sampling_state` tensors into ``model`` (exactly its keys and shapes, else a ``ValueError`` naming
    them). An empty dict, from a folder written before the learned prior existed, leaves the mixture unfitted."""
    own = sampling_state(model)
    if not tensors and all(is_prior_key(k) for k in own):
        return
    if tensors.keys() != own.keys() or any(tuple(tensors[k].shape) != tuple(own[k].shape) for k in own):
        have = {k: tuple(v.shape) for k, v in tensors.items()}
        want = {k: tuple(v.shape) for k, v in own.items()}
        raise ValueError(f"stored {have or 'nothing'}, the config implies {want or 'nothing'}")
    for key, value in tensors.items():
        own[key].copy_(value.to(own[key]))


def export_settings(model, config=None) -> dict:
    """The model settings an export records: ``config`` (default the model's own), with the moving average switched
    off where it is kept (an export stores the averaged weights as the weights themselves)."""
    settings = dataclasses.asdict(config if config is not None else model.config)
    if model.ema_networks and "ema_decay" in settings:
        settings["ema_decay"] = None
    return settings
