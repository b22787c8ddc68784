"""CLI smoke test: train tiny runs, then every image command on them."""

import numpy as np
import pytest
from conftest import grey_image, tiny_flags, train_cli_runs, write_idx_dataset
from PIL import Image

from ganvae.cli import main

COMMON = ["--epochs", "1", "--batch-size", "16", "--set", "train.progress=false", "--set", "run.tensorboard=false",
          "--set", "run.n_fixed=16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_cli_runs(tmp_path_factory.mktemp("cli"), ("gan", "vae", "cppn"), *COMMON)


def test_train_wrote_run(runs):
    assert (runs["gan"] / "checkpoints/last.safetensors").is_file()
    assert (runs["gan"] / "samples/epoch_0001.png").is_file()


def test_sample_grid_and_separate(runs, tmp_path):
    assert main(["sample", str(runs["gan"]), "-n", "6", "--nrow", "3", "--out", str(tmp_path / "g.png"),
                 "--separate", str(tmp_path / "sep")]) == 0
    assert grey_image(tmp_path / "g.png").shape == (2 * 30 + 2, 3 * 30 + 2)  # 28 px + 2 px padding
    assert len(list((tmp_path / "sep").glob("*.png"))) == 6
    main(["sample", str(runs["gan"]), "-n", "6", "--out", str(tmp_path / "again.png"), "--nrow", "3"])
    assert np.array_equal(grey_image(tmp_path / "g.png"), grey_image(tmp_path / "again.png"))  # same seed, same grid


def test_sample_from_checkpoint_file(runs, tmp_path):
    assert main(["sample", str(runs["vae"] / "checkpoints/last.safetensors"), "-n", "4",
                 "--out", str(tmp_path / "v.png")]) == 0


def test_interpolate_gif_and_grid(runs, tmp_path):
    assert main(["interpolate", str(runs["vae"]), "--points", "3", "--steps", "4",
                 "--out", str(tmp_path / "w.gif")]) == 0
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == 12  # 3 legs of 4 frames, looping
    assert main(["interpolate", str(runs["gan"]), "--points", "3", "--steps", "5", "--grid",
                 "--out", str(tmp_path / "w.png")]) == 0
    assert grey_image(tmp_path / "w.png").shape == (2 * 30 + 2, 6 * 30 + 2)


def test_reconstruct(runs, tmp_path, capsys):
    assert main(["reconstruct", str(runs["vae"]), "-n", "4", "--out", str(tmp_path / "r.png")]) == 0
    assert grey_image(tmp_path / "r.png").shape == (2 * 30 + 2, 4 * 30 + 2)
    assert main(["reconstruct", str(runs["gan"]), "--out", str(tmp_path / "x.png")]) == 2
    assert "needs a model with an encoder" in capsys.readouterr().err


def test_render_png_gif_and_refusal(runs, tmp_path, capsys):
    assert main(["render", str(runs["cppn"]), "--size", "64x40", "--out", str(tmp_path / "c.png")]) == 0
    assert grey_image(tmp_path / "c.png").shape == (40, 64)
    assert main(["render", str(runs["cppn"]), "--size", "32x32", "--gif", "--frames", "3", "--points", "2",
                 "--out", str(tmp_path / "c.gif")]) == 0
    with Image.open(tmp_path / "c.gif") as im:
        assert im.n_frames == 6 and im.size == (32, 32)
    assert main(["render", str(runs["vae"]), "--out", str(tmp_path / "no.png")]) == 2
    assert "coordinate-based generator" in capsys.readouterr().err


def test_resume_from_cli(runs):
    rc = main(["-q", "train", "gan", "--out", str(runs["gan"]), "--resume", "--epochs", "2", "--dataset", "mnist",
               "--data-dir", str(runs["data"]), *COMMON[2:], *tiny_flags("gan")])
    assert rc == 0
    assert (runs["gan"] / "samples/epoch_0002.png").is_file()


def test_truncated_data_file_at_train_is_one_paragraph(tmp_path, capsys):
    folder = write_idx_dataset(tmp_path / "d", n_train=20, n_test=10)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    assert main(["train", "gan", "--dataset", "mnist", "--data-dir", str(folder),
                 "--out", str(tmp_path / "r"), *COMMON]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "t10k-images-idx3-ubyte.gz" in err and "truncated" in err
    assert "Traceback" not in err
