"""Shared fixtures: tiny generated IDX datasets, a local HTTP server, tiny configs."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ganvae.data.idx import write_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own data cache, so nothing leaks into ~/.cache."""
    monkeypatch.setenv("GANVAE_DATA_DIR", str(tmp_path / "cache"))


def make_images(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images whose class is visible (a bright bar at a class-dependent row)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = (rng.random((n, size, size)) * 40).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 + int(c) * (size - 4) // 10
        images[i, row : row + 2, 4:-4] = 255
    return images, labels.astype(np.uint8)


def write_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 50, gz: bool = True,
                      dotted: bool = False) -> Path:
    """Write the four MNIST-named IDX files of a tiny synthetic dataset into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    train = make_images(n_train, seed=1)
    test = make_images(n_test, seed=2)
    names = {
        "train-images-idx3-ubyte": train[0], "train-labels-idx1-ubyte": train[1],
        "t10k-images-idx3-ubyte": test[0], "t10k-labels-idx1-ubyte": test[1],
    }
    for name, array in names.items():
        if dotted:  # the train-images.idx3-ubyte spelling
            stem, _, rest = name.partition("-idx")
            name = f"{stem}.idx{rest}"
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return folder


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return write_idx_dataset(tmp_path / "idx")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` at /good/NAME; /cut/NAME announces the full length but sends half."""

    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        mode, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "cut" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A server on 127.0.0.1; yields (base_url, files_dict) where tests put the bytes to serve."""
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# ----------------------------------------------------------------------------- training helpers


def train(cfg, run_dir=None, data=None, resume=False, argv=None, callbacks=None):
    """``Trainer(cfg, run_dir, ...).fit()`` in one call (the library's way in is ganvae.train / ganvae train)."""
    from ganvae.training.launch import resume_checkpoint
    from ganvae.training.trainer import Trainer

    checkpoint = resume_checkpoint(run_dir, cfg.model_name) if resume else None  # the one way to resume
    return Trainer(cfg, run_dir, data=data, resume=checkpoint, argv=argv, callbacks=callbacks).fit()


def iter_batches(images, batch_size: int, seed: int, epoch: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1):
    """uint8 batches ``(b, 1, H, W)`` of one epoch from ``start_step``: the trainer's data order
    (:func:`ganvae.data.dataset.iter_batch_indices`), as images."""
    from ganvae.data.dataset import iter_batch_indices

    for idx in iter_batch_indices(len(images), batch_size, seed, epoch, start_step, rank, world_size, images.device):
        yield images.index_select(0, idx)


# ----------------------------------------------------------------------------- tiny models

# --set overrides that make each registered model tiny (a few channels, 16x16 images)
# (the GANs' default self-conditioning is off here, so that a tiny model's networks take no labels and a batch of
# any size trains; tests/test_self_conditioning.py covers the default pseudo-classes)
TINY = {
    "gan": ["model.latent_dim=8", "model.generator_hidden=[32]", "model.discriminator_hidden=[32]",
            "model.self_conditioning=0"],
    "dcgan": ["model.latent_dim=8", "model.generator_channels=[16,8,4]", "model.discriminator_channels=[4,8]",
              "model.self_conditioning=0"],
    "vae": ["model.latent_dim=4", "model.hidden=[32]"],
    "conv-vae": ["model.latent_dim=4", "model.channels=[4,8]", "model.hidden=[16]"],
    "vae-gan": ["model.latent_dim=4", "model.channels=[4,8]", "model.hidden=[16]",
                "model.discriminator_channels=[4,8]"],
    "cppn": ["model.latent_dim=4", "model.hidden_size=16", "model.n_layers=2", "model.encoder_channels=[4,8]",
             "model.hidden=[16]", "model.discriminator_channels=[4,8]"],
}
TINY_TRAIN = ["data.image_size=16", "train.batch_size=8", "train.epochs=2", "train.progress=false",
              "run.tensorboard=false", "run.n_fixed=16", "train.log_every=1", "train.checkpoint_every=1"]


def tiny_config(name: str, *extra: str):
    from ganvae.config import build_config

    return build_config(name, overrides=[*TINY[name], *TINY_TRAIN, *extra])


def tiny_flags(name: str) -> list[str]:
    """The TINY overrides of ``name`` as command-line ``--set`` flags."""
    return [a for o in TINY[name] for a in ("--set", o)]


def train_cli_runs(root: Path, names, *flags: str) -> dict:
    """Tiny runs of each of ``names`` trained through ``ganvae train`` (with ``flags``) on a small IDX dataset
    written to ``root / "idx"``: ``{name: run folder, "data": the dataset folder}``."""
    from ganvae.cli import main

    data = write_idx_dataset(root / "idx", n_train=64, n_test=20)
    runs = {"data": data}
    for name in names:
        assert main(["-q", "train", name, "--dataset", "mnist", "--data-dir", str(data), "--out", str(root / name),
                     *flags, *tiny_flags(name)]) == 0
        runs[name] = root / name
    return runs


# a tiny analogue of each shipped zoo model (LIKE_ZOO["cvae"]: like the zoo's cvae), as (family, --set overrides), for
# tests whose subject is not the zoo itself: a rebuilt zoo model (new weights, another latent width or recipe) must
# break only the tests about the zoo
LIKE_ZOO = {
    "gan": ("gan", "model.self_conditioning=4"),  # self-conditioned: latent 8 noises + a one-hot of 4
    "cgan": ("gan", "model.conditional=true"),
    "dcgan": ("dcgan", "model.self_conditioning=4"),
    "cdcgan": ("dcgan", "model.conditional=true"),
    "vae": ("vae", "model.prior_components=3"),  # a fitted mixture prior
    "cvae": ("vae", "model.conditional=true", "model.prior_components=2"),  # a mixture per class
    "conv-vae": ("conv-vae", "model.prior_components=3"),
    "vae-gan": ("vae-gan", "model.prior_components=3"),
    "cppn": ("cppn", "model.prior_components=3"),
}


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """``make(name, *overrides, images=48)`` -> a pretrained folder (``ganvae export``'s) of a tiny ``name``
    (:func:`tiny_config` with ``overrides``, one epoch unless they say otherwise) trained on ``images`` images of
    :func:`tiny_data` at the config's image size; built once per session for each (name, overrides, images).
    ``make(*LIKE_ZOO["cvae"])`` is a tiny stand-in for the zoo's cvae. Treat the folder as read-only (copy it
    to damage it)."""
    from ganvae.inference import tasks as operations

    cache: dict[tuple, Path] = {}

    def make(name: str, *overrides: str, images: int = 48) -> Path:
        key = (name, overrides, images)
        if key not in cache:
            root = tmp_path_factory.mktemp("tiny-pretrained")
            cfg = tiny_config(name, "train.epochs=1", *overrides)
            run = train(cfg, root / "run", data=tiny_data(images, size=cfg.data.image_size))
            cache[key] = operations.export(run.run_dir, root / name)
        return cache[key]

    return make


def grey_image(path) -> np.ndarray:
    """A PNG as a grey uint8 array ``(H, W)``."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def tiny_data(n: int = 48, size: int = 16, seed: int = 0):
    """A synthetic in-memory dataset of ``n`` ``size``x``size`` images in 10 classes."""
    import torch

    from ganvae.data.dataset import ImageData

    train_x, train_y = make_images(n, size=size, seed=seed)
    test_x, test_y = make_images(20, size=size, seed=seed + 1)
    t = lambda a: torch.from_numpy(np.array(a)).unsqueeze(1)  # noqa: E731
    return ImageData("tiny", tuple(str(i) for i in range(10)), t(train_x), torch.from_numpy(train_y.astype(np.int64)),
                     t(test_x), torch.from_numpy(test_y.astype(np.int64)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def uvicorn_in_thread(app, **options):
    """Serve ``app`` with a real uvicorn on 127.0.0.1 in a daemon thread, configured as ``ganvae explore`` serves
    (:func:`ganvae.explore.server.uvicorn_config`, ``options`` such as ``head_seconds``); yields the port, stops on
    exit."""
    import uvicorn

    from ganvae.explore.server import uvicorn_config

    port = free_port()
    srv = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not srv.started:
        assert time.monotonic() - t0 < 30, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A fresh folder (no ../shared), an empty data cache, and downloads that fail loudly if tried."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANVAE_DATA_DIR", str(tmp_path / "empty-cache"))

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    from ganvae.data import sources

    monkeypatch.setattr(sources, "download", no_download)
    return tmp_path


# ----------------------------------------------------------------------------- shared by the hostile tests


def load_peak_growth(paths, warm_up=None, timeout: float = 300) -> list[tuple[float, str]]:
    """``ganvae.load`` of each of ``paths`` in turn in one fresh process (Python's and torch's start-up paid once),
    after loading ``warm_up`` if given (an undamaged file of the same family: the model's own start-up is not the
    file's doing): for each, (growth of the peak resident memory in MB while loading it, the error's text or
    "loaded"). The peak only grows, so a path loaded after one that allocated much shows less."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import resource, ganvae
        from ganvae.errors import GanvaeError
        for path in {[] if warm_up is None else [str(warm_up)]!r}:  # the warm-up, measured by no one
            ganvae.load(path)
        for path in {[str(p) for p in paths]!r}:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                ganvae.load(path); message = "loaded"
            except GanvaeError as err:
                message = str(err)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print((after - before) / 1024); print(message.replace(chr(10), " ")); print("--")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return [(float(block.split("\n", 1)[0]), block.split("\n", 1)[1]) for block in res.stdout.split("--\n")[:-1]]


WANDB_VARIABLES = ("WANDB_DIR", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME",
                   "WANDB_BASE_URL", "WANDB_INIT_TIMEOUT")


def offline_wandb_env(tmp_path: Path, monkeypatch) -> None:
    """W&B offline and quiet, none of the user's W&B settings, its settings, cache and artifact staging in the
    test's folder (which becomes the working folder)."""
    for name in WANDB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.setenv("WANDB_X_DISABLE_UPDATE_CHECK", "true")
    for name, folder in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / folder))
    monkeypatch.chdir(tmp_path)
