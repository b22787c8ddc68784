"""A model family from outside the package (examples/wgan-gp-plugin): registered from Python or found through
its entry point, it takes the whole tool chain: train, exact resume, sample, evaluate, compare, export, load."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_idx_dataset

import ganvae
from ganvae import registry
from ganvae.cli import main
from ganvae.errors import ConfigError

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "examples" / "wgan-gp-plugin" / "src"
TINY = ["--set", "model.latent_dim=8", "--set", "model.generator_channels=[16,8]", "--set",
        "model.critic_channels=[8,16]", "--set", "model.n_critic=2", "--batch-size", "16", "--set",
        "train.progress=false", "--set", "run.tensorboard=false", "--set", "train.log_every=1"]


@pytest.fixture(scope="module")
def plugin():
    sys.path.insert(0, str(PLUGIN_SRC))
    from ganvae_wgan_gp import ENTRY

    ganvae.register_model(ENTRY)
    try:
        yield ENTRY
    finally:
        registry.unregister_model("wgan-gp")
        sys.path.remove(str(PLUGIN_SRC))


def losses(run):
    with open(Path(run) / "losses.csv", newline="") as fh:
        return list(csv.reader(fh))


def test_a_registered_family_takes_the_whole_tool_chain(plugin, tmp_path, capsys):
    data = write_idx_dataset(tmp_path / "idx", n_train=64, n_test=60)
    common = ["--dataset", "mnist", "--data-dir", str(data), *TINY]
    # train, and exact resume: 1 epoch then 2 equals 2 straight (the generator's last loss is saved with the weights)
    assert main(["-q", "train", "wgan-gp", "--out", str(tmp_path / "full"), "--epochs", "2", *common]) == 0
    assert main(["-q", "train", "wgan-gp", "--out", str(tmp_path / "part"), "--epochs", "1", *common]) == 0
    assert main(["-q", "train", "wgan-gp", "--out", str(tmp_path / "part"), "--epochs", "2", "--resume",
                 "--dataset", "mnist", "--data-dir", str(data)]) == 0
    assert losses(tmp_path / "part") == losses(tmp_path / "full")
    assert (losses(tmp_path / "full")[0] == ["step", "epoch", "d_loss", "g_loss", "gp"]
            and len(losses(tmp_path / "full")) == 9)
    run = tmp_path / "full"
    assert (main(["sample", str(run), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
            and (tmp_path / "s.png").is_file())
    assert main(["interpolate", str(run), "--points", "2", "--steps", "3", "--out", str(tmp_path / "w.gif")]) == 0
    assert main(["evaluate", str(run), "--n-samples", "60", "--data-dir", str(data)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["classifier_fd"] > 0 and 0 <= metrics["recall_k5"] <= 1
    assert main(["compare", str(run), str(tmp_path / "part"), "--out", str(tmp_path / "report"), "--n-samples", "60",
                 "--data-dir", str(data)]) == 0
    assert "wgan-gp" in (tmp_path / "report" / "report.md").read_text()
    # export keeps the sampling network only (the critic is training_only_networks), and loads as a pipeline
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "exported/model.safetensors"), "pt") as fh:
        stored = list(fh.keys())
    assert any("generator." in k for k in stored) and not any("critic" in k for k in stored), stored
    exported = ganvae.load(tmp_path / "exported")
    a = exported.sample(4, seed=3).tensor
    b = ganvae.load(run).sample(4, seed=3).tensor
    assert a.shape == (4, 1, 28, 28) and torch.allclose(a, b, atol=2e-2)  # float16 on disk
    capsys.readouterr()
    assert main(["config", "show", "wgan-gp"]) == 0 and "gp_weight: 10.0" in capsys.readouterr().out


def test_register_model_refuses_bad_entries(plugin):
    with pytest.raises(ConfigError, match="built-in family and cannot be replaced"):
        ganvae.register_model(name="gan", config=plugin.config, model=plugin.model, description="x")
    with pytest.raises(ConfigError, match="already registered"):
        ganvae.register_model(plugin)
    with pytest.raises(ConfigError, match="lower-case letters"):
        ganvae.register_model(name="My GAN", config=plugin.config, model=plugin.model, description="x")
    with pytest.raises(ConfigError, match="give name, config, model, description"):
        ganvae.register_model(name="x-gan")
    assert ganvae.register_model(plugin, replace=True) is plugin


def test_an_installed_entry_point_is_found_by_the_command_line(tmp_path):
    """An installed distribution (its dist-info with entry_points.txt on the path, as pip leaves it) adds its
    family to `ganvae train --help` and `ganvae config show`; a broken one is skipped with a warning."""
    site = tmp_path / "site"
    for name, target in [("ganvae_wgan_gp", "ganvae_wgan_gp:ENTRY"), ("broken_plugin", "no_such_module:ENTRY")]:
        info = site / f"{name}-0.1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
        family = "wgan-gp" if name == "ganvae_wgan_gp" else "broken"
        (info / "entry_points.txt").write_text(f"[ganvae.models]\n{family} = {target}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN_SRC)])}
    done = subprocess.run([sys.executable, "-m", "ganvae", "train", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wgan-gp" in done.stdout and "Wasserstein critic" in done.stdout
    assert "'broken' from broken_plugin could not be loaded" in done.stderr and "uninstall broken_plugin" in done.stderr
    done = subprocess.run([sys.executable, "-m", "ganvae", "config", "show", "wgan-gp"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0 and "n_critic: 5" in done.stdout, done.stderr
