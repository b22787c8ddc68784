"""Configs: YAML round trip, unknown keys and wrong types named, --set overrides."""

import dataclasses

import pytest
import yaml

from ganvae.config import build_config, config_from_dict, default_config
from ganvae.errors import ConfigError
from ganvae.registry import model_names


@pytest.mark.parametrize("name", model_names())
def test_defaults_round_trip_through_yaml(tmp_path, name):
    cfg = default_config(name)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    again = build_config(name, path)
    assert again == cfg
    assert config_from_dict(yaml.safe_load(cfg.to_yaml()), "x") == cfg


def test_registry_training_defaults_apply():
    assert default_config("dcgan").train.batch_size == 64  # the registry's per-model default, not TrainConfig's
    assert default_config("vae").train.batch_size == 128
    assert default_config("dcgan").model.lr_generator == 2e-4


def test_unknown_key_suggests_nearest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'train\.epoch'\. Did you mean 'epochs'\?"):
        build_config("gan", path)


def test_unknown_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="unknown top-level key 'trian'. Did you mean 'train'"):
        build_config("gan", path)


def test_wrong_type_names_field_and_type(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"'train\.batch_size' must be an integer, got 'lots'"):
        build_config("gan", path)


def test_literal_choices_checked():
    with pytest.raises(ConfigError, match=r"'model\.gan_loss' must be one of 'bce', 'hinge', 'lsgan'"):
        build_config("gan", overrides=["model.gan_loss=wasserstein"])


def test_model_name_mismatch(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_name: vae\n")
    with pytest.raises(ConfigError, match="model_name is 'vae' but the command asked for 'gan'"):
        build_config("gan", path)


def test_set_overrides_and_parses_values():
    cfg = build_config(
        "dcgan",
        overrides=["train.batch_size=32", "model.lr_generator=3e-4", "data.classes=3,5", "train.max_minutes=1.5",
                   "model.ema_decay=0.99"],
    )
    assert cfg.train.batch_size == 32
    assert cfg.model.lr_generator == pytest.approx(3e-4)
    assert cfg.data.classes == [3, 5]
    assert cfg.train.max_minutes == 1.5
    assert cfg.model.ema_decay == 0.99


def test_set_unknown_key_and_bad_form():
    with pytest.raises(ConfigError, match="Did you mean 'model.latent_dim'"):
        build_config("gan", overrides=["model.latent_dims=3"])
    with pytest.raises(ConfigError, match="expected section.key=value"):
        build_config("gan", overrides=["train.batch_size"])


def test_flags_then_set_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\n  batch_size: 16\n")
    cfg = build_config("vae", path, flags={"train": {"epochs": 2, "seed": None}}, overrides=["train.batch_size=8"])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.seed) == (2, 8, 0)


def test_inherited_configs():
    from ganvae.models.configs import AdversarialConfig, VAEObjectiveConfig
    from ganvae.models.cppn_config import CPPNConfig
    from ganvae.models.vae_config import ConvVAEConfig, VAEConfig
    from ganvae.models.vae_gan_config import VAEGANConfig

    assert issubclass(ConvVAEConfig, VAEConfig)
    for combined in (VAEGANConfig, CPPNConfig):
        assert issubclass(combined, AdversarialConfig) and issubclass(combined, VAEObjectiveConfig)
        names = {f.name for f in dataclasses.fields(combined)}
        # the VAE's own optimiser is not inherited: encoder and decoder learn at lr_generator
        assert "lr" not in names and "reuse_fake_logits" not in names and "lr_generator" in names
    conv_vae = {f.name for f in dataclasses.fields(ConvVAEConfig)} - {"lr"}
    assert conv_vae <= {f.name for f in dataclasses.fields(VAEGANConfig)}


@pytest.mark.parametrize("name", ["vae-gan", "cppn"])
def test_retired_fields_refused_with_reason_but_old_checkpoints_load(name, tmp_path):
    from ganvae.config import config_from_dict, default_config

    with pytest.raises(ConfigError, match="lr_generator"):
        build_config(name, overrides=["model.lr=0.01"])
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  reuse_fake_logits: true\n")
    with pytest.raises(ConfigError, match="reuse_fake_logits.*only gan and dcgan"):
        build_config(name, path)
    stored = default_config(name).to_dict()
    stored["model"].update(lr=0.5, reuse_fake_logits=True)  # as checkpoints written before the removal hold them
    assert config_from_dict(stored, "ckpt").model == default_config(name).model


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).parents[1] / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(path):
    data = yaml.safe_load(path.read_text())
    cfg = build_config(data["model_name"], path)
    assert cfg.model_name == data["model_name"]


def test_precision_auto_resolves_by_hardware(monkeypatch):
    import torch

    from ganvae.common import device as utils

    cpu = torch.device("cpu")
    monkeypatch.setattr(utils, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert utils.resolve_precision("auto", cpu)[0] == "fp32"  # AVX512-BF16 without AMX
    monkeypatch.setattr(utils, "cpu_flags", lambda: {"avx512f", "amx_tile", "amx_bf16"})
    assert utils.resolve_precision("auto", cpu)[0] == "bf16"
    assert utils.resolve_precision("fp32", cpu)[0] == "fp32"  # an explicit choice is kept


def test_trainer_records_the_resolved_precision(tmp_path, monkeypatch):
    from conftest import tiny_config, tiny_data

    from ganvae.common import device as utils
    from ganvae.training.trainer import Trainer

    monkeypatch.setattr(utils, "cpu_flags", lambda: set())
    cfg = tiny_config("vae", "train.precision=auto", "train.epochs=1")
    result = Trainer(cfg, tmp_path / "run", data=tiny_data()).fit()
    assert "precision: fp32" in (result.run_dir / "config.yaml").read_text()  # stored resolved, so resume keeps it


# fields that change speed only, not what is computed; a preset may leave them to the defaults
SPEED_ONLY = {"channels_last", "render_chunk"}
# class conditioning is an option on top of any preset (the original scripts had none)
CONDITIONING = {"conditional", "num_classes", "class_embedding_dim", "class_embedding_std", "class_conditioning"}


def test_presets_load_and_pin_every_setting():
    """A preset is a config file: it loads for its own model, and pins every model field, so a change of
    ganvae's defaults never changes what a preset trains."""
    import dataclasses

    from ganvae.config import build_config, list_presets, load_yaml

    presets = {p.name: p for p in list_presets()}
    assert {"tf-tutorial", "mlp-gan-original", "mlp-vae-original", "vae-gan-original", "cppn-ha2016"} <= set(presets)
    for p in presets.values():
        cfg = build_config(p.model_name, preset=p.name)
        pinned = set(load_yaml(p.path)["model"])
        missing = {f.name for f in dataclasses.fields(cfg.model)} - pinned - SPEED_ONLY - CONDITIONING
        assert not missing, f"{p.name} leaves {missing} to the defaults"
        assert p.description


def test_tf_tutorial_preset_is_the_tutorial():
    """tensorflow.org/tutorials/generative/dcgan: Adam(1e-4) for both, Keras betas, batch 256, 50 epochs,
    LeakyReLU(0.3), dropout 0.3, 5x5 kernels, channels 256-128-64 / 64-128, both losses from one D pass."""
    from ganvae.config import build_config

    cfg = build_config("dcgan", preset="tf-tutorial")
    m, t = cfg.model, cfg.train
    assert (m.lr_generator, m.lr_discriminator, m.beta1, m.beta2) == (1e-4, 1e-4, 0.9, 0.999)
    assert (t.batch_size, t.epochs) == (256, 50)
    assert (m.leaky_slope, m.dropout, m.kernel_size, m.latent_dim) == (0.3, 0.3, 5, 100)
    assert m.generator_channels == [256, 128, 64] and m.discriminator_channels == [64, 128]
    assert m.reuse_fake_logits and m.gan_loss == "bce" and m.ema_decay is None and not m.spectral_norm
    # flags and --set still apply on top of a preset
    assert build_config("dcgan", preset="tf-tutorial", overrides=["train.batch_size=64"]).train.batch_size == 64


def test_original_presets_keep_the_scripts_settings():
    from ganvae.config import build_config

    gan = build_config("gan", preset="mlp-gan-original").model
    assert (gan.lr_generator, gan.beta1, gan.dropout, gan.ema_decay) == (2e-4, 0.5, 0.3, None)
    assert gan.generator_hidden == [256, 512, 1024] and gan.discriminator_hidden == [1024, 512, 256]
    vae = build_config("vae", preset="mlp-vae-original")
    assert (vae.model.hidden, vae.model.latent_dim, vae.model.lr, vae.train.batch_size) == ([400], 20, 1e-3, 128)
    assert build_config("vae-gan", preset="vae-gan-original").model.real_label == 0.9
    cppn = build_config("cppn", preset="cppn-ha2016")  # hardmaru/cppn-gan-vae-tensorflow train.py + model.py
    assert (cppn.model.schedule, cppn.model.lr_generator, cppn.model.lr_discriminator) == ("balanced", 5e-3, 1e-3)
    assert (cppn.model.beta1, cppn.model.scale, cppn.train.batch_size, cppn.model.latent_dim) == (0.65, 8.0, 500, 32)


def test_preset_errors_name_the_fix():
    from ganvae.config import build_config

    with pytest.raises(ConfigError, match="ganvae train dcgan --preset tf-tutorial"):
        build_config("gan", preset="tf-tutorial")
    with pytest.raises(ConfigError, match="Did you mean 'tf-tutorial'"):
        build_config("dcgan", preset="tf-tutorail")
