"""Pretrained folders and checkpoints that lie: every one is refused with the file, the field and the fix, before it
can allocate more memory than its own size (each measured in a fresh process, under a 200 MB ceiling)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct

import pytest
import torch
from conftest import LIKE_ZOO, load_peak_growth

import ganvae
from ganvae.errors import CheckpointError
from ganvae.storage.zoo import zoo_dir

CEILING_MB = 200


@pytest.fixture
def folder(tmp_path, tiny_pretrained):
    """A copy of a tiny self-conditioned gan's pretrained folder, to damage."""
    out = tmp_path / "gan"
    shutil.copytree(tiny_pretrained(*LIKE_ZOO["gan"]), out)
    return out


def edit_config(folder, **model):
    meta = json.loads((folder / "config.json").read_text())
    meta["model"].update(model)
    (folder / "config.json").write_text(json.dumps(meta))


def peak_growth_mb(*folders) -> list[tuple[float, str]]:
    """Load each of ``folders`` in turn in one fresh process: for each, (growth of the peak resident memory in MB
    while loading it, the error's text); :func:`conftest.load_peak_growth`."""
    return load_peak_growth(folders, timeout=120)


HUGE_MODELS = [{"latent_dim": 10**9}, {"generator_hidden": [10**6, 10**6]}, {"generator_hidden": [20000, 20000]}]


@pytest.fixture(scope="module")
def huge_model_loads(tmp_path_factory, tiny_pretrained):
    """Each config of :data:`HUGE_MODELS` over a copy of the tiny gan's folder, loaded in one fresh process."""
    root = tmp_path_factory.mktemp("huge")
    folders = []
    for i, model in enumerate(HUGE_MODELS):
        folder = root / f"gan{i}"
        shutil.copytree(tiny_pretrained(*LIKE_ZOO["gan"]), folder)
        edit_config(folder, **model)
        folders.append(folder)
    return peak_growth_mb(*folders)


@pytest.mark.parametrize("case", range(len(HUGE_MODELS)), ids=[str(m) for m in HUGE_MODELS])
def test_a_config_that_implies_a_huge_model_is_refused_before_allocating(huge_model_loads, case):
    growth, message = huge_model_loads[case]
    # refused from the header's shapes, or (the fully connected gan's first and last layers growing with them) by the
    # family's own size bound before any layer is built; either way before allocating
    assert ("the tensors do not fit the gan of config.json" in message and "expected" in message) \
        or "over the 200M a fully connected family builds" in message, message
    assert growth < CEILING_MB, f"{growth:.0f} MB"


def write_header_only(path, header: dict, file_bytes: int) -> None:
    raw = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(file_bytes)  # sparse: no disk is used for the declared data


def test_a_sparse_file_declaring_a_huge_tensor_is_refused(folder):
    weights = folder / "model.safetensors"
    header = {"generator.net.0.weight": {"dtype": "F32", "shape": [2**28], "data_offsets": [0, 2**30]}}
    write_header_only(weights, header, 4096)
    (growth, message), = peak_growth_mb(folder)
    assert str(weights) in message and "declares 1,073,741,824 bytes" in message and "holds" in message, message
    assert growth < CEILING_MB


def test_a_large_sparse_file_whose_tensors_do_not_fit_is_refused_unread(folder):
    """The data does lie inside the (sparse, 1 GB) file, but the names and shapes are not the model's."""
    header = {"generator.net.0.weight": {"dtype": "F32", "shape": [2**28], "data_offsets": [0, 2**30]}}
    raw_len = len(json.dumps(header).encode())
    write_header_only(folder / "model.safetensors", header, 8 + raw_len + 2**30)
    (growth, message), = peak_growth_mb(folder)
    assert "do not fit" in message and growth < CEILING_MB, message


@pytest.mark.parametrize("shape", [["a", None], [-1, 28, 28], [1, 100000, 100000], [1, 28], [2, 28, 28], True])
def test_image_shape_is_checked(folder, shape):
    meta = json.loads((folder / "config.json").read_text())
    meta["image_shape"] = shape
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError,
                       match=r"config.json: ('image_shape' is missing|image_shape .* is not \[C, H, W\])"):
        ganvae.load(folder)


@pytest.mark.parametrize("text,says", [('{"format": ' + "9" * 5000 + "}", "not valid JSON"),
                                        ("[" * 100000 + "]" * 100000, "nested too deeply|not valid JSON")])
def test_hostile_json_is_a_named_refusal(folder, text, says):
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=says):
        ganvae.load(folder)


def test_an_oversized_config_is_not_read(folder):
    with open(folder / "config.json", "ab") as fh:
        fh.truncate(50 * 2**20)
    with pytest.raises(CheckpointError, match="a pretrained config takes a few KB"):
        ganvae.load(folder)


def rewrite_weights(folder, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def first_generator_weight(folder) -> str:
    """The name of the generator's first weight in the folder's file (whatever the networks call their layers)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        return sorted(k for k in fh.keys() if k.startswith("generator.") and k.endswith(".weight"))[0]


def test_nan_weights_are_refused_with_the_tensor_named(folder):
    key = first_generator_weight(folder)

    def poison(t):
        t[key].view(-1)[0] = float("nan")

    rewrite_weights(folder, poison)
    with pytest.raises(CheckpointError, match=re.escape(f"'{key}' holds 1 NaN or infinite value")):
        ganvae.load(folder)


def test_integer_weights_are_refused(folder):
    key = first_generator_weight(folder)

    def to_int(t):
        t[key] = t[key].to(torch.int32)

    rewrite_weights(folder, to_int)
    with pytest.raises(CheckpointError, match=re.escape(f"{key} is I32 (expected a float tensor)")):
        ganvae.load(folder)


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    from conftest import tiny_config, tiny_data, train
    from safetensors import safe_open
    from safetensors.torch import save_file

    from ganvae.storage.checkpoint import CHECKSUM_KEY, run_checkpoint, tensor_checksum

    run = train(tiny_config("gan", "train.epochs=1"), tmp_path / "run", data=tiny_data()).run_dir
    path = run_checkpoint(run)
    with safe_open(str(path), framework="pt") as fh:
        header, tensors = json.loads(fh.metadata()["ganvae"]), {k: fh.get_tensor(k) for k in fh.keys()}
    key = next(k for k in tensors if k.startswith("model.") and tensors[k].is_floating_point())
    tensors[key].view(-1)[0] = float("inf")
    header[CHECKSUM_KEY] = tensor_checksum(tensors)  # as a run that diverged before it was saved writes it
    save_file(tensors, str(path), metadata={"ganvae": json.dumps(header)})
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        ganvae.load(run)


def test_the_shipped_zoo_still_loads():
    for name in ("mnist-gan", "mnist-vae", "mnist-cvae"):
        assert torch.isfinite(ganvae.load(name).sample(2, seed=0).tensor).all()
    assert os.path.isdir(zoo_dir())
