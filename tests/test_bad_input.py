"""Bad input as a new user types it (issue 13): one paragraph naming the field or file and the fix, exit code 2,
no traceback, nothing created or lost."""

from __future__ import annotations

import re

import pytest

from ganvae.cli import main
from ganvae.errors import ConfigError


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("argv,expected", [
    (["train", "vae", "--set", "model.lr=nan"], "model.lr is nan; it must be a finite number"),
    (["train", "vae", "--set", "model.lr=-0.1"], "model.lr is -0.1; it must be positive"),
    (["train", "gan", "--batch-size", "1"], "train.batch_size is 1; it must be at least 2"),
    (["train", "vae", "--set", "model.latent_dim=0"], "model.latent_dim is 0"),
    (["train", "vae", "--max-minutes", "-1"], "Fix --max-minutes"),
    (["train", "vae", "--max-minutes", "nan"], "train.max_minutes is nan"),
    (["train", "vae", "--classes", ""], "data.classes is []; it must be a non-empty list"),
    (["train", "vae", "--classes", "3,3"], "distinct class indices"),
    (["train", "vae", "--epochs", "0"], "train.epochs is 0; it must be at least 1"),
    (["train", "vae", "--device", "tpu"], "train.device is 'tpu'; it must be auto, cpu, cuda, cuda:N or mps"),
    (["train", "gan", "--set", "model.dropout=1.5"], "model.dropout is 1.5; it must be in [0, 1)"),
    (["train", "dcgan", "--set", "model.generator_channels=[0,8]"], "a list of values at least 1"),
    (["train", "vae", "--set", "model.hidden=[]"], "model.hidden is []; it must be a non-empty list"),
    (["train", "vae", "--set", "model.beta1=inf"], "model.beta1 is inf"),
    (["train", "gan", "--set", "model.conditional=true", "--set", "model.num_classes=0"], "model.num_classes is 0"),
    (["train", "gan", "--set", "model.conditional=true", "--set", "model.class_embedding_dim=0"],
     "model.class_embedding_dim is 0"),
    (["train", "gan", "--set", "model.conditional=true", "--classes", "3,12"],
     "data.classes is [3, 12]; it must be classes below model.num_classes=10"),
])
def test_bad_settings_are_refused_before_anything_is_created(capsys, tmp_path, argv, expected):
    out = tmp_path / "run"
    code, err = run(capsys, *argv, "--out", str(out))
    assert code == 2 and expected in err, err
    assert not out.exists(), "a refused run must not leave a folder behind"


def test_device_that_is_not_there(capsys, tmp_path):
    code, err = run(capsys, "train", "vae", "--device", "mps", "--out", str(tmp_path / "run"))
    assert code == 2 and "no Apple GPU" in err and not (tmp_path / "run").exists()


# numeric fields with no bound, and why: any integer seeds a run; the balanced schedule's loss thresholds are
# compared with a loss, and any value (even a negative one) only makes a step always or never happen
UNBOUNDED = {"seed", "discriminator_loss_floor", "discriminator_step_max_g_loss", "generator_loss_target"}


def _outside(bound):
    """A value the bound refuses: just below its lower end, or just above its upper end."""
    if bound.lo is not None:
        return bound.lo if bound.lo_open else bound.lo - 1
    return bound.hi if bound.hi_open else bound.hi + 0.5


def _numeric_fields():
    import dataclasses
    import typing

    from ganvae.bounds import field_bounds
    from ganvae.config import SECTIONS, default_config
    from ganvae.registry import model_names

    for name in model_names():
        cfg = default_config(name)
        for section in SECTIONS:
            cls = type(getattr(cfg, section))
            hints, bounds = typing.get_type_hints(cls), field_bounds(cls)
            for f in dataclasses.fields(cls):
                args = typing.get_args(hints[f.name]) or (hints[f.name],)
                inner = {a for t in args for a in (typing.get_args(t) or (t,))}
                if inner & {int, float} and bool not in inner:
                    yield name, cfg, section, f.name, bounds.get(f.name)


def test_every_numeric_field_declares_its_bound():
    """Each family's every int/float field (or list of them) carries its bound on the field itself, except the
    few listed as unbounded; a new field without one fails here."""
    missing = {f"{name}: {section}.{field}" for name, _, section, field, bound in _numeric_fields()
               if bound is None and field not in UNBOUNDED}
    assert not missing, f"declare a bound (ganvae.bounds) on: {sorted(missing)}"


def test_every_bound_refuses_a_value_outside_it_and_allows_the_default():
    import dataclasses

    from ganvae.config import validate

    checked = 0
    for name, cfg, section, field, bound in _numeric_fields():
        if bound is None:
            continue
        default = getattr(getattr(cfg, section), field)
        if default is not None:
            for v in default if isinstance(default, list) else [default]:
                assert bound.allows(v), f"{name}: {section}.{field}'s default {v} is outside its bound"
        bad = _outside(bound)
        value = [bad] if isinstance(default, list) or field in ("classes",) else bad
        edited = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: value})})
        with pytest.raises(ConfigError, match=rf"{section}\.{field} is .*it must be .*{re.escape(bound.says)}"):
            validate(edited, "probe")
        if bound.non_empty:
            edited = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: []})})
            with pytest.raises(ConfigError, match=re.escape(bound.empty_says)):
                validate(edited, "probe")
        checked += 1
    assert checked > 100  # six families x their bounded fields


def _rewrite_header(path, edit) -> None:
    """Rewrite a checkpoint's JSON header with ``edit(header)``, keeping its tensors (a hand-edited file)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as fh:
        header = json.loads(fh.metadata()["ganvae"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    edit(header)
    save_file(tensors, str(path), metadata={"ganvae": json.dumps(header)})


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    from conftest import tiny_config, tiny_data, train

    run = tmp_path_factory.mktemp("ck") / "run"
    train(tiny_config("vae", "train.epochs=1"), run, data=tiny_data())
    return run / "checkpoints" / "last.safetensors"


@pytest.mark.parametrize("edit,expected", [
    (lambda h: h.pop("config"), "'config' is missing"),
    (lambda h: h.update(model_name="evil"), "'model_name' is 'evil', not one of"),
    (lambda h: h.update(step=-3), "'step' is -3; it must be an integer >= 0"),
    (lambda h: h.update(step="12"), "'step' is '12'"),
    (lambda h: h.update(model_name="gan"), "'config.model_name' is 'vae' while the header says 'gan'"),
    (lambda h: h.update(image_shape=[1, 0, 28]), "'image_shape'"),
    (lambda h: h["config"]["model"].update(latent_dim=-1), "model.latent_dim is -1"),
])
def test_tampered_checkpoint_header_is_refused(capsys, tmp_path, trained_checkpoint, edit, expected):
    import shutil

    path = tmp_path / "edited.safetensors"
    shutil.copy(trained_checkpoint, path)
    _rewrite_header(path, edit)
    code, err = run(capsys, "sample", str(path), "-n", "4", "--out", str(tmp_path / "s.png"))
    assert code == 2 and expected in err and str(path) in err, err
    assert not (tmp_path / "s.png").exists()


@pytest.fixture(scope="module")
def cppn_run(tmp_path_factory):
    from conftest import tiny_config, tiny_data, train

    run = tmp_path_factory.mktemp("cppn") / "run"
    train(tiny_config("cppn", "train.epochs=1", "data.image_size=28"), run, data=tiny_data(size=28))
    return run


@pytest.mark.parametrize("argv,expected", [
    (["sample", "{run}", "-n", "-5"], "-n -5: it must be at least 1"),
    (["sample", "{run}", "-n", "0"], "-n 0: it must be at least 1"),
    (["sample", "{run}", "-n", "100000000"], "needs about 657.1 GB of memory, over the limit of 4 GB"),
    (["sample", "{run}", "--out", "{tmp}"], "is a folder; give a file name"),
    (["sample", "{run}", "--out", "{file}/x.png"], "is a file, so nothing can be created under it"),
    (["sample", "{run}", "--separate", "{file}"], "--separate {file}: is a file, not a folder"),
    (["evaluate", "{run}", "--n-samples", "0"], "--n-samples 0: it must be at least 50"),
    (["evaluate", "{run}", "--n-samples", "3"], "--n-samples 3: it must be at least 50"),
    (["evaluate", "{run}", "--out", "{tmp}"], "metrics.json"),
    (["render", "{run}", "--size", "100000x100000"], "needs about 9.3 GB of memory"),
    (["render", "{run}", "--size", "2048x2048", "--gif", "--max-memory-gb", "0.5"], "x 72 frames needs about"),
    (["reconstruct", "{run}", "-n", "0"], "-n 0: it must be at least 1"),
    (["train", "vae", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["train", "vae", "--out", "{file}/run"], "is a file, so nothing can be created under it"),
    (["compare", "{run}", "{run}", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["interpolate", "{run}", "--points", "400", "--steps", "1000", "--walks", "64"], "over the limit of 4 GB"),
])
def test_bad_output_requests(capsys, tmp_path, cppn_run, argv, expected):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    fill = {"run": str(cppn_run), "tmp": str(tmp_path), "file": str(file)}
    code, err = run(capsys, *[a.format(**fill) for a in argv])
    assert code == 2 and expected.format(**fill) in err, err
    assert file.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unwritable_place(capsys, tmp_path, cppn_run):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK) and os.geteuid() == 0 and not os.path.isdir("/proc/self"):
            pytest.skip("no place to test an unwritable folder")
        target = "/proc/ganvae-test/x.png" if os.path.isdir("/proc/self") else str(locked / "x.png")
        code, err = run(capsys, "sample", str(cppn_run), "--out", target)
        assert code == 2 and "cannot create files in" in err, err
        code, err = run(capsys, "train", "vae", "--out", "/proc/ganvae-test-run")
        assert code == 2 and "cannot create files in /proc" in err, err
    finally:
        locked.chmod(0o700)


def test_full_disk_names_the_file_and_keeps_the_previous_version(tmp_path):
    from safetensors import SafetensorError

    from ganvae.common.files import atomic_save
    from ganvae.errors import GanvaeError

    path = tmp_path / "last.safetensors"
    path.write_bytes(b"previous checkpoint")

    def full_disk(tmp):
        tmp.write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    with pytest.raises(GanvaeError, match=f"{path}: the disk holding {tmp_path} is full"):
        atomic_save(path, full_disk)
    assert path.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temporary file left


def test_large_render_streams_in_bands_identical_to_one_pass(cppn_run, tmp_path):
    import numpy as np
    from PIL import Image

    from ganvae import storage
    from ganvae.inference import writers
    from ganvae.viz.images import make_grid

    loaded = storage.load(cppn_run)
    z = loaded.model.latent_prior.draw(1, generator=torch_generator(3))
    whole = make_grid(loaded.model.render(z, 61, 97), nrow=1, padding=0)  # (61, 97) uint8
    bands = list(loaded.model.render_bands(z, 61, 97, band_pixels=97 * 7))  # 9 bands of up to 7 rows
    assert len(bands) == 9
    np.testing.assert_array_equal(np.concatenate(bands), whole)
    out = writers.render(loaded, size=(97, 61), seed=3, out=tmp_path / "r.png")
    np.testing.assert_array_equal(np.array(Image.open(out)), whole)


def torch_generator(seed):
    import torch

    return torch.Generator().manual_seed(seed)


def test_compare_warns_about_runs_that_cannot_be_compared(trained_checkpoint, tmp_path):
    from conftest import tiny_config, tiny_data, train

    from ganvae import storage
    from ganvae.inference.report import comparability_warnings

    run = trained_checkpoint.parent.parent
    same = comparability_warnings([run, run], [storage.load(run), storage.load(run)])
    assert len(same) == 1 and "are the same run" in same[0]
    other = tmp_path / "other"
    train(tiny_config("vae", "train.epochs=1", "data.classes=[1,2]"), other, data=tiny_data())
    warnings = comparability_warnings([run, other], [storage.load(run), storage.load(other)])
    assert len(warnings) == 1 and "different class subsets" in warnings[0] and "[1, 2]" in warnings[0]
    assert comparability_warnings([run], [storage.load(run)]) == []


def test_ctrl_c_during_start_up(capsys, monkeypatch):
    import ganvae.cli as cli

    def interrupted_import():
        raise KeyboardInterrupt  # as Ctrl-C lands while torch is being imported

    monkeypatch.setattr(cli, "build_parser", interrupted_import)
    assert cli.main(["data", "list"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_bad_classifier_files(capsys, tmp_path):
    from importlib import resources

    import torch
    from safetensors.torch import save_file

    shipped = resources.files("ganvae").joinpath("weights", "mnist_classifier.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(shipped[:5000])
    (tmp_path / "text.safetensors").write_text("not weights")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"), metadata={"dataset": "mnist"})
    for name, expected in (("truncated", "not a readable safetensors classifier"),
                           ("text", "not a readable safetensors classifier"),
                           ("other", "not those of ganvae's feature classifier")):
        path = tmp_path / f"{name}.safetensors"
        code, err = run(capsys, "evaluate", "real:mnist-5k", "--n-samples", "100", "--classifier", str(path),
                        "--out", str(tmp_path / "m.json"))
        assert code == 2 and expected in err and str(path) in err, err
    assert not (tmp_path / "m.json").exists()


def test_resume_applies_what_may_change_and_refuses_the_rest(capsys, tmp_path):
    """`--resume` continues from the run's own settings; learning rates, budgets and batch size given now take
    effect (and are logged); settings that change the weights or the data are refused with their names."""
    out = str(tmp_path / "run")
    # a small run in seconds: the packaged mnist-5k (not the default mnist-25k), a narrow network, a 2-component prior
    # (the default 100-component fit alone took most of a minute), the default latent width and batch size
    small = ["--dataset", "mnist-5k", "--set", "model.hidden=[32]", "--set", "model.prior_components=2",
             "--set", "train.progress=false", "--set", "run.tensorboard=false"]
    assert main(["train", "vae", "--epochs", "1", "--out", out, *small]) == 0
    capsys.readouterr()
    # no --set model.hidden nor --dataset now: the run's own are kept (the defaults' [400] would not fit the weights)
    assert main(["train", "vae", "--out", out, "--resume", "--epochs", "2", "--set", "model.lr=0.0005",
                 "--batch-size", "64"]) == 0
    err = capsys.readouterr().err
    for line in ("changed on resume: model.lr: 0.001 -> 0.0005", "train.epochs: 1 -> 2", "train.batch_size: 128 -> 64"):
        assert line in err, err
    from ganvae.storage.checkpoint import load_checkpoint

    header = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors").header
    assert header["config"]["model"]["lr"] == 0.0005 and header["config"]["train"]["batch_size"] == 64
    for argv, expected in ((["--set", "model.latent_dim=3"],
                            "model.latent_dim: 10 -> 3 (it changes the networks' weights)"),
                           (["--dataset", "mnist-25k"], "data.dataset: 'mnist-5k' -> 'mnist-25k'"),
                           (["--seed", "3"], "train.seed: 0 -> 3 (the run's data order and noise derive from it)")):
        code, err = run(capsys, "train", "vae", "--out", out, "--resume", "--epochs", "3", *argv)
        assert code == 2 and expected in err and "cannot change" in err, err
    assert load_checkpoint(tmp_path / "run/checkpoints/last.safetensors").header["epoch"] == 2  # nothing trained


def test_learning_rate_changed_on_resume_reaches_the_optimisers(tmp_path):
    from conftest import tiny_config, tiny_data, train

    from ganvae.training.launch import resume_checkpoint
    from ganvae.training.trainer import Trainer

    train(tiny_config("gan", "train.epochs=1"), tmp_path / "run", data=tiny_data())
    trainer = Trainer(tiny_config("gan", "train.epochs=2", "model.lr_generator=0.00005"), tmp_path / "run",
                      data=tiny_data(), resume=resume_checkpoint(tmp_path / "run", "gan"))
    trainer._setup()
    assert [g["lr"] for g in trainer.optimizers["generator"].param_groups] == [0.00005]
    assert [g["lr"] for g in trainer.optimizers["discriminator"].param_groups] == [0.0002]
    assert trainer.optimizers["generator"].state  # the moments were restored, not reset


def test_divergence_advice_names_the_family_learning_rates(tmp_path, monkeypatch):
    from conftest import tiny_config, tiny_data, train

    from ganvae.errors import TrainingDiverged
    from ganvae.models.vae import VAE

    original = VAE.training_step

    def diverge(self, x, optimizers, ctx):
        losses = original(self, x, optimizers, ctx)
        return {**losses, "loss": losses["loss"] * float("nan")} if ctx.step >= 7 else losses

    monkeypatch.setattr(VAE, "training_step", diverge)
    with pytest.raises(TrainingDiverged,
                       match=r"halve model\.lr: ganvae train vae --out .* --resume --set model\.lr=0\.0005"):
        train(tiny_config("vae", "train.epochs=3"), tmp_path / "run", data=tiny_data())


def test_second_training_into_the_same_folder_is_refused(tmp_path):
    from conftest import tiny_config, tiny_data, train

    from ganvae.errors import GanvaeError
    from ganvae.storage.run_folder import RunLock

    run_dir = tmp_path / "run"
    with RunLock(run_dir):  # as a first training holds it
        with pytest.raises(GanvaeError, match=f"{run_dir}: another training is writing to this run folder \\(pid "):
            train(tiny_config("vae", "train.epochs=1"), run_dir, data=tiny_data())
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # the second wrote nothing
    # released (and a lock file left behind by a killed process is not stale): the folder trains normally
    assert train(tiny_config("vae", "train.epochs=1"), run_dir, data=tiny_data()).step > 0
    with RunLock(run_dir):  # and the finished training released it
        pass


def test_many_samples_stream_to_files_in_chunks(capsys, tmp_path, cppn_run):
    import numpy as np
    from PIL import Image

    from ganvae import inference, storage
    from ganvae.inference import writers

    writers.sample(cppn_run, n=23, seed=4, out=tmp_path / "grid.png", separate=tmp_path / "files", chunk=7)
    reference = inference.sample_images(storage.load(cppn_run), 23, seed=4)
    files = sorted((tmp_path / "files").iterdir())
    assert len(files) == 23
    np.testing.assert_array_equal(np.array(Image.open(files[22])), (reference[22, 0] * 255).round().byte().numpy())
    # files only: no grid, so a request far over the grid's memory limit streams within it
    code, err = run(capsys, "sample", str(cppn_run), "-n", "30", "--separate", str(tmp_path / "only"), "--no-grid",
                    "--max-memory-gb", "0.00001")
    assert code == 0 and len(list((tmp_path / "only").iterdir())) == 30, err
    code, err = run(capsys, "sample", str(cppn_run), "-n", "30", "--max-memory-gb", "0.00001", "--out",
                    str(tmp_path / "g.png"))
    assert code == 2 and "--separate DIR --no-grid" in err
