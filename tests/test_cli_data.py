"""CLI smoke tests: data verify, data list/info, config show, and errors without tracebacks."""

import subprocess
import sys

import pytest
import yaml
from conftest import write_idx_dataset

from ganvae.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ganvae", *args], capture_output=True, text=True, timeout=120)


def test_data_verify_reports_each_file(tmp_path, capsys):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    rc = main(["data", "verify", "mnist", "--data-dir", str(folder)])
    out = capsys.readouterr().out
    # synthetic files: valid IDX, but not the published content, so the checksums must flag them
    assert rc == 1
    assert out.count("content differs from the published file") == 4
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
    line = next(row for row in result.stdout.splitlines() if "train-labels-idx1-ubyte.gz" in row)
    assert "truncated" in line


def test_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist-5k", "mnist-25k", "mnist", "fashion-mnist", "kmnist", "folder:PATH"):
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


def _source_for(folder, **kw):
    """A dataset source whose published checksums are those of the files in ``folder`` (gz and unpacked)."""
    import hashlib
    from dataclasses import replace

    from ganvae.common.files import md5_file
    from ganvae.data.idx import read_bytes
    from ganvae.data.sources import MNIST, FileSpec

    files = {role: FileSpec(spec.filename, md5_file(folder / spec.filename),
                            hashlib.md5(read_bytes(folder / spec.filename)).hexdigest())
             for role, spec in MNIST.files.items()}
    return replace(MNIST, files=files, **kw)


def test_verify_accepts_a_recompressed_gzip_and_rejects_other_content(tmp_path):
    import gzip

    from ganvae.data.sources import verify

    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    source = _source_for(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))  # other bytes, same images
    reports = {r.role: r for r in verify(source, data_dir=folder)}
    assert all(r.ok for r in reports.values())
    assert reports["train_images"].note.startswith("same content, different compression")
    changed = bytearray(raw)
    changed[-1] ^= 0xFF  # one pixel differs
    path.write_bytes(gzip.compress(bytes(changed), mtime=0))
    bad = {r.role: r for r in verify(source, data_dir=folder)}["train_images"]
    assert not bad.ok and "content differs from the published file" in bad.problem


def test_torchvision_and_keras_layouts_load_the_same_data(tmp_path, capsys):
    import numpy as np

    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.data.idx import read_idx
    from ganvae.data.sources import verify

    reference = load_dataset(DataConfig(dataset="mnist", data_dir=str(write_idx_dataset(tmp_path / "idx", 20, 10))))
    # torchvision: root/MNIST/raw/ holding the unpacked files (and root/MNIST/ given directly)
    write_idx_dataset(tmp_path / "tv" / "MNIST" / "raw", 20, 10, gz=False)
    for given in (tmp_path / "tv", tmp_path / "tv" / "MNIST"):
        data = load_dataset(DataConfig(dataset="mnist", data_dir=str(given)))
        assert data.train_images.equal(reference.train_images) and data.test_labels.equal(reference.test_labels)
    # Keras: one mnist.npz with x_train, y_train, x_test, y_test
    idx = tmp_path / "idx"
    arrays = {k: read_idx(idx / f) for k, f in (("x_train", "train-images-idx3-ubyte.gz"),
                                                 ("y_train", "train-labels-idx1-ubyte.gz"),
                                                 ("x_test", "t10k-images-idx3-ubyte.gz"),
                                                 ("y_test", "t10k-labels-idx1-ubyte.gz"))}
    (tmp_path / "keras").mkdir()
    np.savez_compressed(tmp_path / "keras" / "mnist.npz", **arrays)
    data = load_dataset(DataConfig(dataset="mnist", data_dir=str(tmp_path / "keras")))
    assert data.train_images.equal(reference.train_images) and data.test_labels.equal(reference.test_labels)
    reports = verify(_source_for(idx), data_dir=tmp_path / "keras")
    assert all(r.ok and "same content as" in r.note for r in reports)


def test_a_bad_keras_file_is_a_clear_error_and_runs_no_code(tmp_path):
    import numpy as np

    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.errors import DataError

    folder = tmp_path / "keras"
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=np.array([object()], dtype=object), y_train=np.zeros(1, np.uint8),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.zeros(1, np.uint8))
    with pytest.raises(DataError, match=r"mnist.npz: cannot be read as a .npz file"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(folder)))
    np.savez(folder / "mnist.npz", images=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"mnist.npz: not Keras' MNIST file: it lacks the arrays x_train"):
        load_dataset(DataConfig(dataset="mnist", data_dir=str(folder)))


@pytest.mark.slow
def test_verify_real_mnist_recompressed(tmp_path, capsys):
    """The published MNIST files, one of them recompressed as a distribution would: same content, accepted."""
    import gzip
    import shutil

    from conftest import SHARED_MNIST

    for f in SHARED_MNIST.glob("*.gz"):
        shutil.copyfile(f, tmp_path / f.name)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes()), compresslevel=1, mtime=1))
    assert main(["data", "verify", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert "OK (same content, different compression" in capsys.readouterr().out


@pytest.mark.parametrize("argv, quiet, verbose", [
    (["config", "show", "gan"], False, False),
    (["-q", "config", "show", "gan"], True, False),
    (["config", "show", "gan", "-q"], True, False),  # flags at the end, where users put them
    (["data", "verify", "mnist", "--verbose"], False, True),
    (["-v", "data", "list"], False, True),
])
def test_verbosity_flags_anywhere(argv, quiet, verbose):
    from ganvae.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose) == (quiet, verbose)


def test_data_info_takes_data_dir(tmp_path, capsys):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    assert main(["data", "info", "mnist", "--data-dir", str(folder)]) == 0
    assert "--data-dir: 4 file(s) found" in capsys.readouterr().out
    assert main(["data", "info", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert "train-images-idx3-ubyte.gz is missing" in capsys.readouterr().out


def test_every_data_subcommand_takes_data_dir(tmp_path, capsys, http_server, monkeypatch):
    """`data download --data-dir DIR` downloads into DIR (served here by a local mirror of the real files)."""
    from dataclasses import replace

    from conftest import SHARED_MNIST

    from ganvae.data import sources

    if not (SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"needs the MNIST files in {SHARED_MNIST}")
    base, files = http_server
    for path in SHARED_MNIST.glob("*.gz"):
        files[path.name] = path.read_bytes()
    monkeypatch.setitem(sources.SOURCES, "mnist", replace(sources.SOURCES["mnist"], mirrors=(f"{base}/good",)))
    target = tmp_path / "here"
    assert main(["data", "download", "mnist", "--data-dir", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == sorted(files)
    assert main(["data", "verify", "mnist", "--data-dir", str(target)]) == 0
    for action in ("list", "info", "verify", "download"):
        assert "--data-dir" in run_cli("data", action, "--help").stdout
    assert main(["data", "list", "--data-dir", str(target)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing if "its files are in" in line] == ["mnist"]


def test_closed_pipe_is_quiet(monkeypatch):
    """`ganvae config show gan | head -1`: the reader left, so writing raises BrokenPipeError; exit 0, no traceback."""
    import io

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["config", "show", "gan"]) == 0
