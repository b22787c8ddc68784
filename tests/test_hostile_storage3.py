"""Hostile input and faults in storage, round three (issue 39): a run checkpoint whose header declares a huge tensor
over a sparse file is refused before any tensor is read; a plugin's run opened where the plugin is not installed is
called that (not damaged); flipped bytes in a checkpoint's tensors are refused by its checksum; and the temporary
files of a checkpoint write killed mid-way are removed when the run starts again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, TINY_TRAIN, load_peak_growth, tiny_config, tiny_data, train

import ganvae
from ganvae.cli import main
from ganvae.errors import CheckpointError
from ganvae.storage import checkpoint as ckpt_io

CEILING_MB = 300  # peak resident memory a refused load may add (reading the 2 GB tensor took 5.9 GB)
HUGE = 2**29  # float32 elements: 2 GB declared


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    """A tiny dcgan run (one epoch); copy it before damaging it."""
    run = tmp_path_factory.mktemp("dcgan") / "run"
    train(tiny_config("dcgan", "train.epochs=1"), run, data=tiny_data(16))
    return run


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def read_raw(path: Path) -> tuple[dict, bytes, int]:
    """A safetensors file as (its JSON header, its data bytes, where the data starts)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:], 8 + n


def inflate(path: Path, name: str, numel: int = HUGE) -> None:
    """Rewrite ``path`` so that its header declares tensor ``name`` as ``numel`` float32 at the end of the data, the
    file extended to match by a sparse hole (no disk used): what a hostile or corrupted header can claim."""
    header, data, _ = read_raw(path)
    out, pos = bytearray(), 0
    for key in sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0]):
        if key == name:
            continue
        begin, end = header[key]["data_offsets"]
        out += data[begin:end]
        header[key]["data_offsets"] = [pos, pos + end - begin]
        pos += end - begin
    header[name] = {"dtype": "F32", "shape": [numel], "data_offsets": [pos, pos + 4 * numel]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw + out)
        fh.truncate(8 + len(raw) + pos + 4 * numel)


def load_in_fresh_process(intact: Path, *paths: Path) -> list[tuple[float, str]]:
    """``ganvae.load`` of each path in one fresh process, after loading ``intact`` (an undamaged checkpoint of the
    same family): for each, (growth of the peak resident memory in MB, the error's text)."""
    return load_peak_growth(paths, warm_up=intact)


# ----------------------------------------------------------------------------- 6: huge tensors over sparse files

def first_key(run: Path, prefix: str) -> str:
    header, _, _ = read_raw(ckpt_io.run_checkpoint(run))
    return sorted(k for k in header if k.startswith(prefix) and header[k]["dtype"] == "F32")[0]


@pytest.fixture(scope="module")
def inflated_loads(dcgan_run, tmp_path_factory):
    """A model weight, an optimiser moment and the fixed noise, each declared 2 GB over a sparse file, loaded in one
    fresh process: {prefix: (tensor name, checkpoint path, peak growth in MB, error text)}."""
    root = tmp_path_factory.mktemp("inflated")
    cases = {}
    for prefix in ("model.", "optim.", "fixed_noise"):
        run = copy_run(dcgan_run, root / prefix.strip("."))
        name = first_key(run, prefix)
        inflate(ckpt_io.run_checkpoint(run), name)
        cases[prefix] = (name, ckpt_io.run_checkpoint(run))
    results = load_in_fresh_process(ckpt_io.run_checkpoint(dcgan_run), *(path for _, path in cases.values()))
    return {prefix: (*cases[prefix], *result) for prefix, result in zip(cases, results)}


@pytest.mark.parametrize("prefix", ["model.", "optim.", "fixed_noise"])
def test_a_checkpoint_declaring_a_huge_tensor_over_a_sparse_file_is_refused_before_reading(inflated_loads, prefix):
    name, path, growth, message = inflated_loads[prefix]
    stat = path.stat()
    assert stat.st_size > 2**31, stat.st_size
    if stat.st_blocks * 512 > 2**24:
        pytest.skip("this file system does not keep sparse files")
    assert str(path) in message and f"{name} [{HUGE}] (expected [" in message, message
    assert "nothing was read" in message and "Use another checkpoint of the run" in message, message
    assert growth < CEILING_MB, f"{growth:.0f} MB: {message}"


def test_resuming_from_an_inflated_checkpoint_is_refused_before_reading(dcgan_run, tmp_path):
    import resource

    run = copy_run(dcgan_run, tmp_path / "run")
    name = first_key(run, "model.")
    inflate(ckpt_io.run_checkpoint(run), name)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=rf"last.safetensors: the tensors its header declares do not fit a "
                                              rf"dcgan .*{name} \[{HUGE}\]"):
        train(tiny_config("dcgan", "train.epochs=2"), run, data=tiny_data(16), resume=True)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < CEILING_MB


@pytest.mark.parametrize("edit,says", [
    (lambda h: h.update({"optim.generator.999.exp_avg": h.pop(sorted(k for k in h if k.startswith("optim."))[0])}),
     "optim.generator.999.exp_avg: optimiser 'generator' has"),
    (lambda h: h.update({"extra.payload": h.pop("fixed_noise")}), "unexpected extra.payload"),
    (lambda h: h.update({"model.generator.extra": h.pop("fixed_noise")}), "unexpected model.generator.extra"),
])
def test_tensors_the_model_does_not_have_are_refused_unread(dcgan_run, tmp_path, edit, says):
    path = ckpt_io.run_checkpoint(copy_run(dcgan_run, tmp_path / "run"))
    header, data, _ = read_raw(path)
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    with pytest.raises(CheckpointError, match=f"{path}: the tensors its header declares do not fit .*{says}"):
        ganvae.load(path)


def test_more_optimiser_states_than_a_parameter_can_have_are_refused_unread(dcgan_run, tmp_path):
    """Nine scalar states of one parameter (Adam keeps three): each shape is plausible, their number is not."""
    path = ckpt_io.run_checkpoint(copy_run(dcgan_run, tmp_path / "run"))
    header, data, _ = read_raw(path)
    end = len(data)
    for i in range(ckpt_io.MAX_STATES_PER_PARAMETER + 1):
        header[f"optim.generator.0.extra{i}"] = {"dtype": "F32", "shape": [], "data_offsets": [end + 4 * i,
                                                                                            end + 4 * i + 4]}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data + bytes(4 * (ckpt_io.MAX_STATES_PER_PARAMETER + 1)))
    with pytest.raises(CheckpointError, match=f"optim.generator.0: more than {ckpt_io.MAX_STATES_PER_PARAMETER} "
                                              f"tensors"):
        ganvae.load(path)


# ----------------------------------------------------------------------------- 13: a plugin that is not installed

@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """A tiny run of a family registered for the test (a DCGAN under another name), then unregistered."""
    from ganvae import registry
    from ganvae.config import build_config
    from ganvae.models.dcgan import DCGAN
    from ganvae.models.dcgan_config import DCGANConfig

    class StrayGAN(DCGAN):
        """A DCGAN a plugin package would provide."""

    registry.register_model(name="stray-gan", config=DCGANConfig, model=StrayGAN, description="a test plugin")
    try:
        cfg = build_config("stray-gan", overrides=[*TINY["dcgan"], *TINY_TRAIN, "train.epochs=1"])
        run = train(cfg, tmp_path_factory.mktemp("plugin") / "run", data=tiny_data(16)).run_dir
    finally:
        registry.unregister_model("stray-gan")
    yield run, StrayGAN
    registry.unregister_model("stray-gan")


def test_a_plugins_run_without_the_plugin_says_it_is_not_installed(plugin_run, tmp_path, capsys):
    from ganvae import registry
    from ganvae.models.dcgan_config import DCGANConfig
    from ganvae.training.launch import resume_checkpoint

    run, family = plugin_run
    with pytest.raises(CheckpointError) as err:
        ganvae.load(run)
    message = str(err.value)
    assert str(ckpt_io.run_checkpoint(run)) in message and "plugin family 'stray-gan'" in message, message
    assert "not installed or registered here" in message and "ganvae.register_model(name='stray-gan'" in message
    assert f"the Python module {__name__!r}" in message and "damaged" not in message and "edited" not in message
    for argv in (["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png")],
                 ["export", str(run), str(tmp_path / "exported")]):
        assert main(argv) == 2
        err_text = capsys.readouterr().err
        assert "plugin family 'stray-gan'" in err_text and "not installed" in err_text, err_text
    with pytest.raises(CheckpointError, match="plugin family 'stray-gan'.*not installed"):
        resume_checkpoint(run, "stray-gan")
    # the file is intact: with the family registered again it loads; its export, opened without it, says the same
    registry.register_model(name="stray-gan", config=DCGANConfig, model=family, description="a test plugin")
    try:
        assert ganvae.load(run).sample(2, seed=0).tensor.shape == (2, 1, 16, 16)
        assert main(["export", str(run), str(tmp_path / "pretrained")]) == 0
    finally:
        registry.unregister_model("stray-gan")
    with pytest.raises(CheckpointError, match="plugin family 'stray-gan'.*not installed"):
        ganvae.load(tmp_path / "pretrained")


# ----------------------------------------------------------------------------- 16: checksums

def flip_byte(path: Path, tensor: str, offset: int = 1) -> None:
    """Flip one bit of ``tensor``'s data in place (a disk or copy error), leaving the header as it was."""
    header, _, start = read_raw(path)
    at = start + header[tensor]["data_offsets"][0] + offset
    with open(path, "r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)[0]
        fh.seek(at)
        fh.write(bytes([byte ^ 0x10]))


def test_a_checkpoint_records_the_checksum_of_its_tensors(dcgan_run):
    ck = ckpt_io.load_checkpoint(ckpt_io.run_checkpoint(dcgan_run))
    assert ck.header[ckpt_io.CHECKSUM_KEY] == ckpt_io.tensor_checksum(ck.tensors)
    assert ck.header[ckpt_io.CHECKSUM_KEY].startswith("blake2b-256:")
    assert ck.header["model_module"] == "ganvae.models.dcgan"


@pytest.mark.parametrize("prefix", ["model.", "optim.", "fixed_noise"])
def test_flipped_bytes_in_the_tensors_are_refused(dcgan_run, tmp_path, prefix):
    path = ckpt_io.run_checkpoint(copy_run(dcgan_run, tmp_path / "run"))
    flip_byte(path, first_key(tmp_path / "run", prefix))
    with pytest.raises(CheckpointError) as err:
        ganvae.load(path)
    message = str(err.value)
    assert str(path) in message and "does not match its checksum" in message, message
    assert "Use another checkpoint of the run" in message, message


def test_resume_from_a_damaged_checkpoint_is_refused_and_changes_nothing(dcgan_run, tmp_path):
    run = copy_run(dcgan_run, tmp_path / "run")
    path = ckpt_io.run_checkpoint(run)
    flip_byte(path, first_key(run, "model."), offset=2)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        train(tiny_config("dcgan", "train.epochs=2"), run, data=tiny_data(16), resume=True)
    assert path.read_bytes() == before


def rewrite_header(path: Path, edit) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as fh:
        header = json.loads(fh.metadata()["ganvae"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    edit(header)
    save_file(tensors, str(path), metadata={"ganvae": json.dumps(header)})


def test_a_checkpoint_from_before_checksums_still_loads_and_resumes(dcgan_run, tmp_path):
    run = copy_run(dcgan_run, tmp_path / "run")
    path = ckpt_io.run_checkpoint(run)
    rewrite_header(path, lambda h: h.pop(ckpt_io.CHECKSUM_KEY))
    assert ckpt_io.CHECKSUM_KEY not in ckpt_io.load_checkpoint(path).header
    assert ganvae.load(run).sample(2, seed=0).tensor.shape == (2, 1, 16, 16)
    assert train(tiny_config("dcgan", "train.epochs=2"), run, data=tiny_data(16), resume=True).epoch == 2
    assert ckpt_io.CHECKSUM_KEY in ckpt_io.load_checkpoint(path).header  # written again, with one


@pytest.mark.parametrize("value", ["md5:abc", 12, "blake2b-256:" + "0" * 63])
def test_a_malformed_checksum_field_is_refused(dcgan_run, tmp_path, value):
    path = ckpt_io.run_checkpoint(copy_run(dcgan_run, tmp_path / "run"))
    rewrite_header(path, lambda h: h.update({ckpt_io.CHECKSUM_KEY: value}))
    with pytest.raises(CheckpointError, match=f"{path}: the checkpoint header's 'tensor_checksum' is"):
        ganvae.load(path)


def test_a_refit_prior_rewrites_the_checksum(tmp_path):
    from ganvae.registry import build_model

    run = train(tiny_config("vae", "train.epochs=1"), tmp_path / "run", data=tiny_data(16)).run_dir
    ck = ckpt_io.load_checkpoint(ckpt_io.run_checkpoint(run))
    model = build_model(ganvae.load(run).config, (1, 16, 16))
    ckpt_io.restore_model(model, ck)
    model.latent_prior.means.add_(0.5)  # as a refit changes the mixture
    ckpt_io.rewrite_prior(ck, ck.header, model)
    again = ckpt_io.load_checkpoint(ck.path)
    assert again.header[ckpt_io.CHECKSUM_KEY] != ck.header[ckpt_io.CHECKSUM_KEY]
    assert torch.equal(again.tensors["model.latent_prior.means"], model.latent_prior.means)


# ----------------------------------------------------------------------------- 16: temporary files of killed writes

WRITER = textwrap.dedent("""
    import sys, time
    from ganvae.common.files import atomic_save

    def write(tmp):
        tmp.write_bytes(b"half a checkpoint")
        print("writing", flush=True)
        time.sleep(600)

    atomic_save(sys.argv[1], write)
""")


def start_writer(target: Path) -> subprocess.Popen:
    """A process inside an atomic write of ``target`` (its temporary file written, the rename not yet done)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)  # as the OOM killer or `kill -9` would, mid-write: no clean-up runs
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def temporaries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}


def test_only_the_temporary_files_of_dead_or_old_writes_are_removed(tmp_path):
    from ganvae.common import files
    from ganvae.storage.run_folder import clean_interrupted_writes

    run = tmp_path / "run"
    folder = run / "checkpoints"
    folder.mkdir(parents=True)
    killed = start_writer(folder / "last.safetensors")
    kill(killed)
    orphan, = temporaries(folder)
    assert orphan.startswith(f".last.safetensors.{files.writer_tag()}-{killed.pid}.")
    alive = start_writer(folder / "best.safetensors")  # a write in progress
    try:
        in_progress = (temporaries(folder) - {orphan}).pop()
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        old = time.time() - files.STALE_AFTER_SECONDS - 60
        elsewhere = f".last.safetensors.ffffff-{gone.pid}.abcd1234.tmp"  # another machine's writer
        planted = {
            (folder, elsewhere): None,  # kept while fresh
            (run, f".run.json.ffffff-{gone.pid}.abcd1234.tmp"): old,  # removed once old
            (folder, ".last.safetensors.k2j4h5l1.tmp"): None,  # written before the writer was recorded: kept ...
            (run, ".config.yaml.k2j4h5l1.tmp"): old,  # ... while fresh, removed once old
            (folder, "notes.tmp"): old,  # not ours
            (folder, ".last.safetensors.tmp"): old,  # not ours
        }
        for (where, name), mtime in planted.items():
            (where / name).write_bytes(b"x")
            if mtime is not None:
                os.utime(where / name, (mtime, mtime))
        link = f".x.{files.writer_tag()}-{gone.pid}.abcd1234.tmp"
        (folder / link).symlink_to(folder / "notes.tmp")  # a link is never followed nor removed
        removed = clean_interrupted_writes(run)
        assert sorted(p.name for p in removed) == sorted([orphan, f".run.json.ffffff-{gone.pid}.abcd1234.tmp",
                                                          ".config.yaml.k2j4h5l1.tmp"])
        assert temporaries(folder) == {in_progress, elsewhere, ".last.safetensors.k2j4h5l1.tmp", "notes.tmp",
                                       ".last.safetensors.tmp", link}
        assert (folder / in_progress).read_bytes() == b"half a checkpoint"  # the live write is untouched
    finally:
        kill(alive)


def test_a_resumed_run_removes_what_a_killed_checkpoint_write_left(dcgan_run, tmp_path):
    run = copy_run(dcgan_run, tmp_path / "run")
    before = ckpt_io.run_checkpoint(run).read_bytes()
    kill(start_writer(ckpt_io.run_checkpoint(run)))
    left, = temporaries(run / "checkpoints")
    assert ckpt_io.run_checkpoint(run).read_bytes() == before  # the last checkpoint is whole
    assert train(tiny_config("dcgan", "train.epochs=2"), run, data=tiny_data(16), resume=True).epoch == 2
    assert temporaries(run / "checkpoints") == set()
    assert f"removed 1 temporary file left by an interrupted write: {run / 'checkpoints' / left}" in \
        (run / "train.log").read_text()
