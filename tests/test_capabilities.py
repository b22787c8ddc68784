"""A family's capabilities are declared by its model class (GenerativeModel's class attributes) and the config
fields they read are checked when the family is registered, not probed with getattr later (issue 37, item 2)."""

from __future__ import annotations

import dataclasses

import pytest

from ganvae.errors import ConfigError
from ganvae.models.base import AdversarialModel, GenerativeModel
from ganvae.registry import register_model, unregister_model


@dataclasses.dataclass
class WithEma:
    latent_dim: int = 4
    ema_decay: float | None = None


@dataclasses.dataclass
class MisnamedEma:
    latent_dim: int = 4
    ema: float | None = 0.999  # the field the model reads is ema_decay


class Averaged(GenerativeModel):
    networks = ("generator",)
    ema_networks = ("generator",)

    # the contract's methods (register_model checks they are there); this test is about the config's fields
    def make_optimizers(self):
        raise NotImplementedError

    def training_step(self, x, optimizers, ctx):
        raise NotImplementedError

    def decode(self, z, labels=None):
        raise NotImplementedError


def test_a_family_that_declares_ema_networks_needs_ema_decay():
    with pytest.raises(ConfigError, match="has no field 'ema_decay'.*declares ema_networks=\\('generator',\\)"):
        register_model(name="misnamed", config=MisnamedEma, model=Averaged, description="x")
    entry = register_model(name="averaged", config=WithEma, model=Averaged, description="x")
    try:
        assert entry.name == "averaged"
    finally:
        unregister_model("averaged")


def test_every_family_needs_latent_dim_and_a_dataclass_config():
    @dataclasses.dataclass
    class NoLatent:
        width: int = 4

    with pytest.raises(ConfigError, match="has no field 'latent_dim'"):
        register_model(name="nolatent", config=NoLatent, model=GenerativeModel, description="x")
    with pytest.raises(ConfigError, match="not a dataclass"):
        register_model(name="notdc", config=dict, model=GenerativeModel, description="x")


def test_the_built_in_families_declare_what_they_are():
    from ganvae.registry import get_entry

    for name in ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn"):
        cls = get_entry(name).model_cls
        fields = {f.name for f in dataclasses.fields(get_entry(name).config_cls)}
        assert "latent_dim" in fields and (not cls.ema_networks or "ema_decay" in fields), name
        assert cls.has_encoder == (name not in ("gan", "dcgan")), name
        assert issubclass(cls, AdversarialModel) == (name in ("gan", "dcgan")), name
