"""One line, not a traceback (issue 39, item 16): a seed too large for torch, a missing optional package, an
export over another model's files."""

from __future__ import annotations

import sys

import pytest
from conftest import tiny_config, tiny_data, train

from ganvae.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("one-line") / "run"
    train(tiny_config("vae", "data.image_size=28", "train.epochs=1"), path, data=tiny_data(size=28))
    return path


@pytest.mark.parametrize("argv, says", [
    (["fit-prior", "RUN", "--seed", "99999999999999999999999"], "a seed is a whole number from 0 to 2**63 - 1"),
    (["train", "vae", "--seed", "99999999999999999999999", "--out", "NEW"], "train.seed is 99999999999999999999999"),
])
def test_a_seed_torch_cannot_take_is_refused_by_name(run, tmp_path, capsys, argv, says):
    argv = [str(run) if a == "RUN" else str(tmp_path / "new") if a == "NEW" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Overflow" not in err and "Traceback" not in err


def test_a_missing_optional_package_is_one_line(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if `pip install 'ganvae[onnx]'` had not been run
    assert main(["export", str(run), str(tmp_path / "onnx"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --format onnx needs onnx and onnxscript") and "pip install 'ganvae[onnx]'" in err
    assert "Traceback" not in err


def test_export_refuses_another_models_folder_and_replaces_its_own(run, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("my notes\n")
    assert main(["export", str(run), str(other)]) == 2
    assert "already holds README.md, not an export of" in capsys.readouterr().err
    assert (other / "README.md").read_text() == "my notes\n" and not (other / "config.json").exists()
    mine = tmp_path / "mine"
    assert main(["export", str(run), str(mine)]) == 0
    assert main(["export", str(run), str(mine)]) == 0  # the same run again: replaced, and said
    assert "replacing config.json, model.safetensors, README.md" in capsys.readouterr().err
