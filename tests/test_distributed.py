"""DDP on CPU with gloo over 127.0.0.1: ranks agree, 2 x b equals 1 x 2b, checkpoints resume on one process."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, write_idx_dataset

from ganvae.config import build_config
from ganvae.training.launch import resume_checkpoint
from ganvae.training.trainer import Trainer

WORKER = Path(__file__).with_name("dist_worker.py")


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run_ranks(tmp_path: Path, *jobs: tuple[int, list[dict]]) -> None:
    """Run each ``(world, specs)`` job, all at the same time: ``world`` worker processes that train the specs one after
    the other (the processes mostly wait for their imports, so a batch of specs, and jobs side by side, take little
    longer than one)."""
    procs = []
    for world, specs in jobs:
        spec_path = tmp_path / f"specs-{free_port()}.json"
        spec_path.write_text(json.dumps([{**spec, "port": free_port()} for spec in specs]))
        procs += [subprocess.Popen([sys.executable, str(WORKER), str(r), str(world), str(spec_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(world)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    return write_idx_dataset(tmp_path_factory.mktemp("ddp") / "idx", n_train=64, n_test=20)


def overrides(name, idx, batch, *extra):
    return [*TINY[name], "data.dataset=mnist", f"data.data_dir={idx}", f"train.batch_size={batch}", "train.epochs=2",
            "train.progress=false", "run.tensorboard=false", "run.n_fixed=8", "train.log_every=1", *extra]


def load(run_dir, rank):
    return torch.load(Path(run_dir) / f"rank{rank}_weights.pt", weights_only=True)


SAME_WEIGHTS = ["dcgan", "vae-gan"]
NO_BATCH_STATISTICS = ["model.dropout=0.0", "model.generator_batchnorm=false"]
SPLIT_CASES = {"vae": ("vae", []), "gan": ("gan", NO_BATCH_STATISTICS),
               "gan-conditional": ("gan", [*NO_BATCH_STATISTICS, "model.conditional=true"]),
               "gan-self-conditioned-3": ("gan", [*NO_BATCH_STATISTICS, "model.self_conditioning=3",
                                                  "model.recluster_every=1",
                                                  "model.self_conditioning_features=discriminator"]),
               "gan-default-self-conditioning": ("gan", [*NO_BATCH_STATISTICS, "model.self_conditioning=null"])}


def colour_overrides(name, npz, batch, *extra):
    """A tiny colour run (16x16x3 images from an .npz), else as :func:`overrides`."""
    return [*TINY[name], f"data.dataset=npz:{npz}", "data.image_size=16", f"train.batch_size={batch}",
            "train.epochs=2", "train.progress=false", "run.tensorboard=false", "run.n_fixed=8", "train.log_every=1",
            *extra]


@pytest.fixture(scope="module")
def colour_npz(tmp_path_factory):
    import numpy as np
    from colour_helpers import make_colour_images

    x, y = make_colour_images(64, 16)
    tx, ty = make_colour_images(20, 16, seed=1)
    path = tmp_path_factory.mktemp("ddp-colour") / "colour.npz"
    np.savez(path, x_train=x.permute(0, 2, 3, 1).numpy(), y_train=y.numpy(), x_test=tx.permute(0, 2, 3, 1).numpy(),
             y_test=ty.numpy())  # (N, H, W, 3), as Keras keeps colour images
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, idx, colour_npz):
    """Every two-rank run the tests below compare, and the one-rank runs beside them: one batch of three processes
    (two ranks, one single process) instead of three processes per case."""
    root = tmp_path_factory.mktemp("ranks")
    two = [{"model": name, "overrides": overrides(name, idx, 16), "run_dir": str(root / "same" / name)}
           for name in SAME_WEIGHTS]
    one = []
    for case, (name, extra) in SPLIT_CASES.items():
        two.append({"model": name, "overrides": overrides(name, idx, 16, *extra), "run_dir": str(root / "two" / case)})
        one.append({"model": name, "overrides": overrides(name, idx, 16, *extra), "run_dir": str(root / "one" / case)})
    # colour: the DCGAN's two ranks stay identical; the MLP GAN split over two ranks is the one-rank run
    two.append({"model": "dcgan", "overrides": colour_overrides("dcgan", colour_npz, 16),
                "run_dir": str(root / "same" / "dcgan-colour")})
    for where, rank_list in (("two", two), ("one", one)):
        rank_list.append({"model": "gan", "overrides": colour_overrides("gan", colour_npz, 16, *NO_BATCH_STATISTICS),
                          "run_dir": str(root / where / "gan-colour")})
    run_ranks(root, (2, two), (1, one))
    return root


@pytest.mark.parametrize("name", [*SAME_WEIGHTS, "dcgan-colour"])
def test_two_ranks_end_with_identical_weights(trained, name):
    run = trained / "same" / name
    a, b = load(run, 0), load(run, 1)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (run / "checkpoints/last.safetensors").is_file()
    assert not list(run.glob("rank1*.png"))  # only rank 0 writes outputs
    assert len(list((run / "samples").glob("epoch_*.png"))) == 2


@pytest.mark.parametrize("case", [*SPLIT_CASES, "gan-colour"])  # the default self-conditioning: 10 spectral clusters
def test_two_ranks_batch_b_match_one_rank_batch_2b(trained, case):
    """No batch norm and no dropout: the global batch decides the step, not how it is split."""
    two, one = trained / "two" / case, trained / "one" / case
    a, b = load(two, 0), load(one, 0)
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5), k
    for k, v in load(two, 1).items():  # the second rank trained on the same pseudo-classes
        if k.startswith("pseudo_classes."):
            assert torch.equal(v, a[k]), k
    # the logged losses (mean over ranks) match too
    assert ((two / "losses.csv").read_text().splitlines()[-1].split(",")[:2]
            == (one / "losses.csv").read_text().splitlines()[-1].split(",")[:2])


def test_two_rank_checkpoint_resumes_in_one_process(trained, idx, tmp_path):
    import shutil

    run = tmp_path / "resumed"  # a copy of the two-rank dcgan run (2 epochs), continued here for a third
    shutil.copytree(trained / "same" / "dcgan", run)
    cfg = build_config("dcgan", overrides=overrides("dcgan", idx, 16, "train.epochs=3"))
    result = Trainer(cfg, run, resume=resume_checkpoint(run, "dcgan")).fit()
    assert result.epoch == 3 and result.step == 3 * (64 // 16)
    assert (run / "samples/epoch_0003.png").is_file()


def test_failed_rank_ends_the_job(tmp_path, idx):
    """Rank 1 dies at start-up; rank 0 must fail within the timeout instead of hanging."""
    port = free_port()
    spec = {"model": "vae", "overrides": overrides("vae", idx, 16), "run_dir": str(tmp_path / "r"), "port": port}
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps([spec]))
    code = ("import os,sys;os.environ.update(RANK='1',WORLD_SIZE='2',MASTER_ADDR='127.0.0.1',MASTER_PORT=sys.argv[1]);"
            "import torch.distributed as d, datetime;"
            "d.init_process_group('gloo',timeout=datetime.timedelta(seconds=90));"
            "sys.exit(3)")
    p0 = subprocess.Popen([sys.executable, str(WORKER), "0", "2", str(spec_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          env={**__import__("os").environ, "GANVAE_DIST_TIMEOUT": "20"})
    p1 = subprocess.run([sys.executable, "-c", code, port], timeout=120)
    out = p0.communicate(timeout=120)[0]
    assert p1.returncode == 3
    assert p0.returncode != 0, out


def test_killed_rank_gives_the_survivor_a_clear_message(tmp_path, idx):
    """SIGKILL one of two ranks mid-training: the other exits with one paragraph (who died, the last checkpoint,
    how to continue), not gloo's traceback."""
    import os
    import time

    port, run_dir = free_port(), tmp_path / "run"

    def start(rank):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "GANVAE_DIST_TIMEOUT": "30", "OMP_NUM_THREADS": "1"}
        return subprocess.Popen([sys.executable, "-m", "ganvae", "train", "vae", "--dataset", "mnist", "--data-dir",
                                 str(idx), "--epochs", "100000", "--batch-size", "16", "--out", str(run_dir),
                                 "--set", "model.hidden=[16]", "--set", "train.checkpoint_every=1",
                                 "--set", "run.tensorboard=false"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    p0, p1 = start(0), start(1)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        p1.kill()
        out = p0.communicate(timeout=120)[0]
    finally:
        for p in (p0, p1):
            if p.poll() is None:
                p.kill()
    assert p0.returncode == 2, out
    assert "rank 1 died or lost its connection at step" in out and "last checkpoint:" in out, out
    assert "--resume" in out and "Traceback" not in out, out
