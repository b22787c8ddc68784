"""Pretrained folders (export, load, the shipped zoo) and the pipeline API (ganvae.load / ganvae.train)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import LIKE_ZOO, tiny_config, tiny_data

import ganvae
from ganvae import inference, storage
from ganvae.cli import main
from ganvae.errors import CheckpointError, GanvaeError
from ganvae.inference import tasks as operations
from ganvae.storage.zoo import pretrained_names


def network_bytes(folder) -> int:
    """Bytes of a pretrained folder's network tensors (not the sampling state beside them)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        return sum(fh.get_tensor(k).nbytes for k in fh.keys() if not k.startswith(("latent_prior.", "pseudo_classes.")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from conftest import train

    root = tmp_path_factory.mktemp("runs")
    return {name: train(tiny_config(name, "train.epochs=1"), root / name, data=tiny_data()).run_dir
            for name in ("dcgan", "vae-gan", "cppn")}


@pytest.mark.parametrize("name", ["dcgan", "vae-gan", "cppn"])
def test_export_then_load_draws_what_the_run_draws(runs, tmp_path, name):
    run = storage.load(runs[name])
    exact = operations.export(runs[name], tmp_path / "f32", dtype="float32")
    assert sorted(p.name for p in exact.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = ganvae.load(exact)
    assert torch.equal(loaded.sample(6, seed=3).tensor,
                       inference.sample_images(run, 6, seed=3))  # the EMA weights exactly
    half = ganvae.load(operations.export(runs[name], tmp_path / "f16"))
    assert (half.sample(6, seed=3).tensor - inference.sample_images(run, 6, seed=3)).abs().max() < 0.02
    # the networks' tensors halve (the learned prior beside them stays float32, test_prior.py)
    assert network_bytes(tmp_path / "f16") < 0.6 * network_bytes(tmp_path / "f32")
    if run.model.has_encoder:
        x = torch.rand(2, 1, 16, 16)
        assert torch.equal(loaded.reconstruct(x).tensor, run.model.reconstruct(x).cpu())
    assert "discriminator" not in json.dumps(list(__import__("safetensors").safe_open(
        str(exact / "model.safetensors"), "pt").keys()))


def test_commands_take_a_pretrained_folder(runs, tmp_path, capsys):
    folder = tmp_path / "exported"
    assert main(["export", str(runs["cppn"]), str(folder)]) == 0
    assert main(["sample", str(folder), "-n", "9", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["render", str(folder), "--size", "64x48", "--out", str(tmp_path / "r.png")]) == 0
    assert main(["interpolate", str(folder), "--points", "2", "--steps", "3", "--out", str(tmp_path / "w.gif")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "r.png").size == (64, 48)


@pytest.mark.parametrize("damage,expected", [
    (lambda f: (f / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda f: (f / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda f: (f / "config.json").write_text(json.dumps({"format": "diffusers"})), "not a ganvae pretrained config"),
    (lambda f: _edit(f, format_version=99), "format version 99"),
    (lambda f: _edit(f, model_name="vae"), r"config.json: unknown key 'model\.\w+'"),
    (lambda f: _edit(f, model={**json.loads((f / "config.json").read_text())["model"], "latent_dim": 50}),
     r"the tensors do not fit the dcgan of config.json \(generator\.project\.0\.weight \[256, 8\] "
     r"\(expected \[256, 50\]\)"),
    (lambda f: _edit(f, model={"latent_dim": 0}), "model.latent_dim is 0"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x80\x04\x95pickle"), "not a safetensors file"),
])
def test_damaged_folders_name_the_file_and_the_fix(runs, tmp_path, damage, expected):
    folder = operations.export(runs["dcgan"], tmp_path / "m")
    damage(folder)
    with pytest.raises(GanvaeError, match=expected):
        ganvae.load(folder)


def _edit(folder, **changes):
    meta = json.loads((folder / "config.json").read_text())
    meta.update(changes)
    (folder / "config.json").write_text(json.dumps(meta))


def test_unknown_name_lists_the_models_and_the_nearest(capsys):
    if "mnist-dcgan" in pretrained_names():
        with pytest.raises(CheckpointError, match="Did you mean 'mnist-dcgan'"):
            ganvae.load("mnist-dcgna")
    code = main(["sample", "no-such-model"])
    err = capsys.readouterr().err
    assert code == 2 and "neither a pretrained model nor a path" in err and "ganvae models" in err


def test_images_helpers(runs, tmp_path):
    model = ganvae.load(runs["dcgan"])
    images = model.sample(5, seed=1)
    assert torch.equal(images.tensor, model.sample(5, seed=1).tensor) and len(images.to_pil()) == 5
    assert images._repr_png_().startswith(b"\x89PNG") and images[0].tensor.shape == (1, 1, 16, 16)
    assert images.save(tmp_path / "g.png").is_file()
    assert model.interpolate(0, 1, steps=4).tensor.shape == (4, 1, 16, 16)


def test_train_from_python_returns_a_pipeline(tmp_path):
    trained = ganvae.train("vae", out=tmp_path / "run", data=tiny_data(), epochs=1, data__image_size=16,
                           batch_size=8, model__hidden=[16], train__progress=False,
                           run__tensorboard=False)
    assert trained.name == "vae" and trained.run.run_dir == tmp_path / "run"
    assert trained.sample(3, seed=0).tensor.shape == (3, 1, 16, 16)


@pytest.mark.parametrize("name", pretrained_names())
def test_every_shipped_model_loads_offline_and_draws(name):
    model = ganvae.load(name)
    images = model.sample(8, seed=0).tensor
    assert images.shape == (8, *model.model.image_shape) and 0 <= images.min() and images.max() <= 1
    assert images.std() > 0.05
    assert model.model.image_shape == (1, 28, 28) or name.startswith("colour-digits-")  # the grey zoo is MNIST's
    meta = json.loads((ganvae.storage.zoo.zoo_dir() / name / "config.json").read_text())
    card = (ganvae.storage.zoo.zoo_dir() / name / "README.md").read_text()
    assert "classifier_fd" in meta["metrics"] and card.startswith("# ")


def test_models_command(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in pretrained_names())


@pytest.mark.skipif(len(pretrained_names()) < 6, reason="the pretrained zoo is not built")
def test_quickstart_notebook_runs_and_runs_again(tmp_path, monkeypatch):
    """Execute examples/quickstart.ipynb's code cells in order, as Jupyter would (offline, in a fresh folder), then
    its training cell once more: a second run must not collide with the first (no fixed out=)."""

    notebook = Path(__file__).parents[1] / "examples" / "quickstart.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("outputs") for c in code), "the notebook is committed with its outputs"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}

    def source(cell) -> str:
        # the same calls on a shorter budget: the user's 30 epochs, and an evaluation of 1,000 samples against
        # mnist-25k's test split with the IWAE bound, took 84 s of the suite's time
        text = "".join(cell["source"])
        return text.replace("epochs=30", "epochs=1").replace('n_samples=1000, dataset="mnist-25k"',
                                                              'n_samples=200, iwae_k=1, dataset="mnist-5k"')

    for i, cell in enumerate(code):
        exec(compile(source(cell), f"{notebook.name}[cell {i}]", "exec"), namespace)  # noqa: S102
    training = next(i for i, c in enumerate(code) if "ganvae.train(" in "".join(c["source"]))
    assert "epochs=30" in "".join(code[training]["source"])  # what the shortening above replaces
    assert any('n_samples=1000, dataset="mnist-25k"' in "".join(c["source"]) for c in code)
    exec(compile(source(code[training]), f"{notebook.name}[cell {training}]", "exec"), namespace)  # noqa: S102
    runs = sorted((tmp_path / "runs").iterdir())  # the grey vae twice (no collision), the colour conv-vae once
    assert len(runs) == 3 and all((r / "checkpoints" / "last.safetensors").is_file() for r in runs)
    assert sum(r.name.startswith("vae-") for r in runs) == 2 and sum(r.name.startswith("conv-vae-") for r in runs) == 1
    first = "".join(code[0]["source"])
    assert 'ganvae.load("mnist-vae-gan")' in first  # it leads with the best-drawing unconditional model
    assert any("class_grid(" in "".join(c["source"]) for c in code) and any("as_labels=" in "".join(c["source"])
                                                                          for c in code)


def test_readme_has_no_unfilled_placeholders():
    """The README's measured sections are filled in (placeholders are upper-case words ending in a known stem)."""
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert not re.findall(r"\b[A-Z]+_(?:SIZE|TABLE|RESULTS|FIGURES|VERDICT|ROWS|LINE)\b", readme)


def test_evaluating_a_pretrained_model_reports_its_training_budget(tmp_path, tiny_pretrained):
    """A report on pretrained models states their budgets (from config.json's record of the run), not '?'."""
    from ganvae.storage.pretrained_folder import read_config

    # a tiny vae at MNIST's size (evaluated against mnist-5k), exported from its run: config.json records the training
    folder = tiny_pretrained(*LIKE_ZOO["vae"], "data.image_size=28")
    result = operations.evaluate(folder, n_samples=100, iwae_k=1, dataset="mnist-5k", out=tmp_path / "m.json")
    source = read_config(folder)["source"]
    assert source["train_seconds"] is not None and source["steps"] == 6  # 48 images in batches of 8, one epoch
    assert result["training"]["train_seconds"] == source["train_seconds"]
    assert result["training"]["steps"] == source["steps"]


def test_a_report_names_pretrained_models_by_their_names(tmp_path, tiny_pretrained):
    """Two pretrained models of one family are two columns named by their folders (as the zoo's vae and cvae are),
    not 'vae' twice."""
    import shutil

    from ganvae.inference.report import _label_runs

    names = ["tiny-vae", "tiny-cvae"]
    for name, like in zip(names, ["vae", "cvae"]):
        shutil.copytree(tiny_pretrained(*LIKE_ZOO[like]), tmp_path / name)
    paths = [tmp_path / n for n in names]
    loaded = [storage.load(p) for p in paths]
    assert [r.name for r in loaded] == ["vae", "vae"]  # one family
    assert _label_runs(paths, loaded) == names
