"""CLI smoke tests: data verify, data list/info, config show, and errors without tracebacks."""

import subprocess
import sys

import pytest
import yaml

from ganvae.cli import main

from conftest import write_idx_dataset


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ganvae", *args], capture_output=True, text=True, timeout=120)


def test_data_verify_reports_each_file(tmp_path, capsys):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    rc = main(["data", "verify", "mnist", "--data-dir", str(folder)])
    out = capsys.readouterr().out
    # synthetic files: valid IDX, but not the published bytes, so the md5 check must flag them
    assert rc == 1
    assert out.count("md5 mismatch") == 4
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in out


def test_data_verify_missing_and_truncated(tmp_path, capsys):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:300])
    assert main(["data", "verify", "mnist", "--data-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "missing" in out and "gzip stream is truncated" in out


def test_truncated_file_at_command_line_is_one_paragraph(tmp_path):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    result = run_cli("data", "verify", "mnist", "--data-dir", str(folder))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = next(l for l in result.stdout.splitlines() if "train-labels-idx1-ubyte.gz" in l)
    assert "truncated" in line


def test_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist-5k", "mnist", "fashion-mnist", "kmnist", "folder:PATH"):
        assert name in out
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert "Ankle boot" in out and "8d4fb7e6c68d591d4c3dfef9ec88bf0d" in out


def test_config_show_is_loadable_yaml(capsys):
    assert main(["config", "show", "vae-gan", "--set", "train.epochs=3"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model_name"] == "vae-gan" and cfg["train"]["epochs"] == 3 and cfg["model"]["real_label"] == 0.9


def test_config_error_is_clean(capsys):
    assert main(["config", "show", "gan", "--set", "train.batchsize=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Did you mean 'train.batch_size'" in err


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_data_verify_without_files(tmp_path, capsys, name):
    assert main(["data", "verify", name, "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.count("missing") == 4
