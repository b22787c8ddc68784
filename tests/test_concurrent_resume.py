"""Two ``--resume`` of one run (issue 39, item 1): the run folder is locked before its checkpoint is read, so a
second resume started while the first trains is refused before it reads anything, instead of continuing from the
stale checkpoint and overwriting the first's epochs when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import ganvae
from ganvae.errors import GanvaeError

TESTS = Path(__file__).parent

# a resumed training that holds its run folder (waiting in on_train_start, after the checkpoint was read) until
# the file `go` appears, then trains its epochs
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import ganvae
    from conftest import tiny_data

    run, go = Path(sys.argv[1]), Path(sys.argv[2])

    class WaitForGo(ganvae.Callback):
        def on_train_start(self, trainer):
            print("holding", flush=True)
            deadline = time.monotonic() + 60
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    data = tiny_data(size=28)
    images = data.train_images
    ganvae.train("vae", out=run, resume=True, epochs=3, data=(images, data.train_labels), callbacks=[WaitForGo()])
""")


def _data():
    from conftest import tiny_data

    data = tiny_data(size=28)
    return data.train_images, data.train_labels


@pytest.fixture()
def trained_run(tmp_path):
    run = tmp_path / "run"
    ganvae.train("vae", out=run, epochs=1, data=_data(), batch_size=16)
    return run


def test_a_second_resume_is_refused_before_it_reads_the_checkpoint(trained_run, tmp_path, monkeypatch):
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(trained_run), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"  # it holds the lock now
        lock = (trained_run / ".lock").read_text()
        assert f"pid {holder.pid}" in lock
        # the second resume, here: it must not read the checkpoint the first is about to replace
        from ganvae.storage import checkpoint as ckpt_io

        reads = []
        real_load = ckpt_io.load_checkpoint
        monkeypatch.setattr(ckpt_io, "load_checkpoint", lambda *a, **k: reads.append(a) or real_load(*a, **k))
        with pytest.raises(GanvaeError, match="another training is writing to this run folder"):
            ganvae.train("vae", out=trained_run, resume=True, epochs=3, data=_data())
        assert reads == []
    finally:
        go.touch()
        out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err[-2000:]
    # the run is the first resume's: three epochs, and one resume recorded
    import json

    assert json.loads((trained_run / "summary.json").read_text())["epochs_completed"] == 3
    commands = (trained_run / "command.txt").read_text()
    assert commands.count("--resume") == 1, commands


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    from ganvae.storage.run_folder import RunLock

    with RunLock(tmp_path, shared=True), RunLock(tmp_path):  # the front end's and the trainer's: one holder
        pass
    # released: another process takes it at once
    code = ("import sys; from ganvae.storage.run_folder import RunLock\n"
            "with RunLock(sys.argv[1]): print('taken')")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "taken", out.stderr
    assert time.monotonic() - started < 60
