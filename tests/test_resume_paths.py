"""Resume means the same from Python and from the command line, and a resumed run's files stay true to what ran."""

from __future__ import annotations

import json

import pytest
import yaml

import ganvae
from ganvae.cli import main
from ganvae.config import default_config
from ganvae.errors import GanvaeError
from ganvae.training.outputs import divergence_advice


@pytest.fixture
def run(tmp_path):
    """A vae trained with a non-default model, data and batch setting (mnist-5k ships offline)."""
    out = tmp_path / "vae"
    ganvae.train("vae", out=out, epochs=1, dataset="mnist-5k", batch_size=128, model__latent_dim=8,
                 train__progress=False, run__tensorboard=False)
    return out


def test_python_resume_starts_from_the_runs_own_settings(run):
    pipe = ganvae.train("vae", out=run, resume=True, epochs=2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 2 and pipe.model.latent_dim == 8
    assert pipe.config.data.dataset == "mnist-5k" and pipe.config.train.batch_size == 128
    with pytest.raises(GanvaeError, match="model.latent_dim: 8 -> 12"):  # a weight-changing setting is refused
        ganvae.train("vae", out=run, resume=True, epochs=3, model__latent_dim=12)


def test_python_resume_needs_the_run_folder():
    with pytest.raises(GanvaeError, match=r"train\(..., resume=True\) needs out=RUN_FOLDER"):
        ganvae.train("vae", resume=True)


def test_the_command_line_resumes_the_same_run_and_its_files_say_what_ran(run):
    assert main(["-q", "train", "vae", "--out", str(run), "--resume", "--epochs", "2", "--batch-size", "64"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["batch_size"] == 64 and saved["train"]["epochs"] == 2 and saved["model"]["latent_dim"] == 8
    commands = (run / "command.txt").read_text().splitlines()
    assert len(commands) == 2 and "ganvae.train" in commands[0] and "--batch-size 64" in commands[1]
    before = json.loads((run / "summary.json").read_text())
    assert before["images_per_second"] > 0
    # nothing left to train: the summary keeps the real figures of the sessions that trained
    assert main(["-q", "train", "vae", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    after = json.loads((run / "summary.json").read_text())
    assert after["images_per_second"] == before["images_per_second"] and after["last_losses"] == before["last_losses"]
    assert after["steps"] == before["steps"]
    assert len((run / "command.txt").read_text().splitlines()) == 3


def test_divergence_advice_makes_sense_for_wild_rates(tmp_path):
    cfg = default_config("gan")
    cfg.model.lr_generator = 1e300
    text = divergence_advice(cfg, tmp_path, resumable=True)
    assert "model.lr_generator=1e+300 is far outside the range that trains" in text
    assert "--set model.lr_generator=0.0002" in text and "5e+299" not in text
    sane = divergence_advice(default_config("gan"), tmp_path, resumable=False)
    assert "halve" in sane and f"--set model.lr_generator={default_config('gan').model.lr_generator / 2:g}" in sane


def test_a_morph_between_one_digit_and_itself_is_refused(tmp_path, capsys, tiny_pretrained):
    from conftest import LIKE_ZOO

    cgan = tiny_pretrained(*LIKE_ZOO["cgan"])
    assert main(["interpolate", str(cgan), "--between-digits", "1,1", "--out", str(tmp_path / "w.gif")]) == 2
    err = capsys.readouterr().err
    assert "needs two different classes" in err and "--digit 1" in err and not (tmp_path / "w.gif").exists()
