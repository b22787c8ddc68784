"""Where a run's data came from (issue 39, item 2): a run trained on images given from Python records them as
such (``python:<fingerprint>``), and every later command that needs its training images refuses to use another
dataset in their place, says how to pass them again, and checks what it is given against the checkpoint's
fingerprint."""

from __future__ import annotations

import pytest
import yaml
from conftest import tiny_config, tiny_data, train

import ganvae
from ganvae import operations
from ganvae.cli import main
from ganvae.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def python_run(tmp_path_factory):
    data = tiny_data(size=28)
    images = (data.train_images, data.train_labels)
    run = tmp_path_factory.mktemp("provenance") / "run"
    ganvae.train("vae", out=run, data=images, epochs=1, batch_size=16)
    return run, images


def test_the_run_records_images_given_from_python(python_run):
    run, _ = python_run
    dataset = yaml.safe_load((run / "config.yaml").read_text())["data"]["dataset"]
    assert dataset.startswith("python:") and len(dataset) == len("python:") + 16


@pytest.mark.parametrize("command", ["fit-prior", "evaluate"])
def test_commands_refuse_to_stand_another_dataset_in(python_run, command, capsys):
    run, _ = python_run
    assert main([command, str(run), *(["--n-samples", "50"] if command == "evaluate" else [])]) != 0
    err = capsys.readouterr().err
    assert "trained on images given from Python" in err and "data=IMAGES" in err and "Traceback" not in err
    with pytest.raises(DataError, match="not stored with the run"):
        operations.fit_prior(run)


def test_the_images_passed_again_must_be_the_runs(python_run):
    run, (x, y) = python_run
    assert operations.fit_prior(run, data=(x, y))["written"].endswith("last.safetensors")
    with pytest.raises(DataError, match="fingerprint"):
        operations.fit_prior(run, data=(x[:-1], y[:-1]))


def test_the_cli_resume_of_such_a_run_says_how(python_run, capsys):
    run, _ = python_run
    assert main(["train", "vae", "--out", str(run), "--resume", "--epochs", "2"]) != 0
    assert "ganvae.train(..., out=RUN, resume=True, data=IMAGES)" in capsys.readouterr().err


def test_data_and_a_dataset_name_together_are_refused(tmp_path):
    data = tiny_data(size=28)
    with pytest.raises(ConfigError, match="give data= or dataset=, not both"):
        ganvae.train("vae", out=tmp_path / "run", data=data.train_images, dataset="mnist-25k")
    assert not (tmp_path / "run").exists()


def test_a_run_whose_images_are_not_its_named_dataset_is_not_scored_against_it(tmp_path):
    """A run trained on other images than its ``data.dataset`` names (as ganvae.train(data=...) recorded before):
    evaluate refuses the dataset's images, whose fingerprint is not the checkpoint's."""
    run = tmp_path / "run"
    train(tiny_config("vae", "data.dataset=mnist-5k", "data.image_size=28"), run, data=tiny_data(size=28))
    with pytest.raises(DataError, match="fingerprint"):
        operations.evaluate(run, n_samples=50)
    # asked for by name, on purpose: scored against it
    assert operations.evaluate(run, n_samples=50, dataset="mnist-5k")["dataset"] == "mnist-5k"
