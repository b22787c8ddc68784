"""Every field of every family's config acts (STYLE.md, Pattern 11): changing it changes what the model builds
(parameter names, shapes, layouts, initial values) or what it computes (losses of three seeded training steps,
seeded samples, reconstructions, how often each network is called). A field that a model inherits but ignores
fails here."""

from __future__ import annotations

import dataclasses
import typing
from collections import Counter

import pytest
import torch
from conftest import tiny_config

from ganvae.models.step import StepContext
from ganvae.registry import build_model, get_entry, model_names

# values for fields whose generic change (below) would not reach them in three steps of a tiny model
SPECIAL = {
    "ema_decay": lambda default: None if default is not None else 0.9,
    "kernel_size": lambda default: 3,
    "render_chunk": lambda default: 64,  # 16x16 = 256 pixels: four chunks instead of one
    "max_generator_steps": lambda default: 1,
    "generator_loss_target": lambda default: 10.0,  # stop after the first generator step
    "discriminator_loss_floor": lambda default: 10.0,  # never a discriminator step
    "discriminator_step_max_g_loss": lambda default: 0.0,  # never a discriminator step
    "diffaugment": lambda default: ["translation"],
    "self_conditioning": lambda default: 0 if default is None else default + 1,  # null (auto: 10) -> off
}
# settings under which a field matters (the Gaussian decoder's deviation, with the Gaussian decoder)
CONTEXT = {"decoder_std": {"decoder": "gaussian"}, "num_classes": {"conditional": True},
           "class_embedding_dim": {"conditional": True}, "class_embedding_std": {"conditional": True},
           "class_conditioning": {"conditional": True},
           "recluster_every": {"self_conditioning": 2, "self_conditioning_features": "discriminator"},
           "self_conditioning_features": {"self_conditioning": 2}, "mode_seeking": {"conditional": True}}


def changed_value(name: str, tp, default):
    if name in SPECIAL:
        return SPECIAL[name](default)
    if typing.get_origin(tp) is typing.Literal:
        return next(v for v in typing.get_args(tp) if v != default)
    if tp is bool:
        return not default
    if tp is int:
        return default + 1
    if tp is float:
        return default + 0.05 if default < 0.9 else default - 0.25
    if typing.get_origin(tp) is list:
        return [*default, default[-1]]  # one more layer
    raise AssertionError(f"no change defined for field {name}: {tp}")


def signature(model_name: str, fields: dict) -> list:
    cfg = tiny_config(model_name)
    for key, value in fields.items():
        setattr(cfg.model, key, value)
    torch.manual_seed(0)
    model = build_model(cfg, (1, 16, 16))
    sig: list = [(k, tuple(v.shape), tuple(v.stride()), round(float(v.double().sum()), 6))
                 for k, v in model.state_dict().items()]
    calls: Counter = Counter()
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: calls.update([k])) for k, m in model.named_modules() if k]
    optimizers = model.make_optimizers()
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    x = x * 2 - 1 if model.value_range == "tanh" else x
    labels = (torch.arange(8) % 10) if model.conditional else None
    if getattr(model, "pseudo_classes", None) is not None:  # three epochs' clusterings of the batch, on their schedule
        images = (x if model.value_range == "unit" else (x + 1) / 2).mul(255).to(torch.uint8)
        for epoch in range(3):
            model.before_epoch(epoch, images)
        sig.append(sorted((k, v.tolist()) for k, v in model.pseudo_classes.state_dict().items()))
        labels = model.training_labels(torch.arange(8), torch.zeros(8, dtype=torch.long))
    for step in range(3):
        losses = model.training_step(x, optimizers, StepContext(step, 0, 0.0, labels=labels))
        model.after_step(step)
        sig.append(sorted((k, round(float(v), 6)) for k, v in losses.items()))
    sig.append(model.sample(4, generator=torch.Generator().manual_seed(2),
                            labels=labels[:4] if model.conditional else None).flatten().tolist())
    if model.has_encoder:
        sig.append(model.reconstruct(torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(3)),
                                     None if labels is None else labels[:2]).flatten().tolist())
    for h in hooks:
        h.remove()
    sig.append(sorted(calls.items()))
    return sig


CASES = [(name, f.name) for name in model_names() for f in dataclasses.fields(get_entry(name).config_cls)]


@pytest.mark.parametrize("model_name,field", CASES, ids=[f"{m}.{f}" for m, f in CASES])
def test_every_config_field_acts(model_name, field):
    cls = get_entry(model_name).config_cls
    tp = typing.get_type_hints(cls)[field]
    if typing.get_origin(tp) is typing.Union:  # Optional[X]
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    base = dict(CONTEXT.get(field, {}))
    default = getattr(tiny_config(model_name).model, field)
    new = changed_value(field, tp, default)
    assert new != default
    assert signature(model_name, base) != signature(model_name, {**base, field: new}), (
        f"model.{field}={new!r} (default {default!r}) changes nothing that {model_name} builds or computes: "
        f"remove the field from its config, or make the model use it")
