"""`ganvae evaluate images:DIR` works offline like every other command: asked for no dataset, with MNIST neither
in the cache nor downloadable, its images are scored against the packaged mnist-25k, and the protocol says so."""

import json

from PIL import Image

from ganvae.cli import main
from ganvae.config import DataConfig
from ganvae.data.dataset import load_dataset


def _write_pngs(folder, n: int = 60):
    folder.mkdir()
    images = load_dataset(DataConfig(dataset="mnist-5k")).train_images[:n, 0].numpy()  # (n, 28, 28) uint8
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")


def test_evaluate_images_folder_stands_in_the_packaged_data_offline(offline, capsys, caplog):
    _write_pngs(offline / "pngs")
    assert main(["evaluate", "images:pngs", "--n-samples", "60", "--out", "m.json"]) == 0
    result = json.loads((offline / "m.json").read_text())
    assert result["dataset"] == "mnist-25k" and result["protocol"]["n_samples"] == 60
    assert "mnist is not on this machine" in result["protocol"]["stand_in"]
    assert "using the packaged mnist-25k" in capsys.readouterr().out
    assert "using the packaged mnist-25k" in caplog.text


def test_evaluate_images_folder_keeps_an_asked_for_dataset_or_folder(offline):
    """Named by the user, the data is loaded as named: no stand-in hides a wrong folder."""
    _write_pngs(offline / "pngs")
    assert main(["evaluate", "images:pngs", "--n-samples", "60", "--dataset", "mnist-5k", "--out", "m.json"]) == 0
    result = json.loads((offline / "m.json").read_text())
    assert result["dataset"] == "mnist-5k" and "stand_in" not in result["protocol"]
    assert main(["evaluate", "images:pngs", "--n-samples", "60", "--data-dir", str(offline / "nowhere")]) == 2
