"""Memory and time bounded before any work (issue 39, items 7 and 9): sizes that would take gigabytes or minutes
are refused when the settings are checked, with one line naming the field; a long clustering notices the time
budget and signals."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import pytest
from conftest import tiny_config, tiny_data, train

from ganvae.errors import ConfigError
from ganvae.models import clustering


def _run(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    """``ganvae ARGS`` in a fresh process: its result and its peak RSS growth in MB over the process with torch
    and ganvae's modules imported (the issue's measure: what the command itself takes)."""
    code = ("import resource, sys, torch\nimport ganvae.config, ganvae.registry, ganvae.inference.tasks\n"
            "from ganvae.cli import main\nbase = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "rc = main(sys.argv[1:])\n"
            "print('RSS_MB', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024, file=sys.stderr)\n"
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return out, int(out.stderr.rsplit("RSS_MB", 1)[1].split()[0])


@pytest.mark.parametrize("setting, says", [("model.prior_components=100000000", "from 1 to 1000"),
                                           ("data.image_size=30000", "from 8 to 256"),
                                           ("model.self_conditioning=3999000", "from 0 to 1000")])
def test_huge_sizes_are_refused_by_the_settings_check(tmp_path, setting, says):
    family = "gan" if "self_conditioning" in setting else "vae"
    out, rss = _run("train", family, "--dataset", "mnist-5k", "--out", str(tmp_path / "run"), "--set", setting)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr
    assert rss < 300  # nothing of the size asked for
    assert not (tmp_path / "run").exists()


def test_fit_prior_with_a_huge_mixture_is_refused_before_the_fit(tmp_path):
    run = tmp_path / "run"
    train(tiny_config("vae", "data.image_size=28", "train.epochs=1"), run, data=tiny_data(size=28))
    before = (run / "checkpoints/last.safetensors").read_bytes()
    out, rss = _run("fit-prior", str(run), "--components", "100000000")
    assert out.returncode == 2 and "model.prior_components is 100000000" in out.stderr and rss < 300
    assert (run / "checkpoints/last.safetensors").read_bytes() == before


def test_more_pseudo_classes_than_images_is_refused_before_the_clustering(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(clustering, "knn_graph", lambda *a, **k: calls.append(a) or pytest.fail("clustered"))
    with pytest.raises(ConfigError, match="48 training images cannot form 60 pseudo-classes"):
        train(tiny_config("gan", "model.self_conditioning=60"), tmp_path / "run", data=tiny_data())
    assert calls == [] and not (tmp_path / "run").exists()


def test_a_large_k_is_warned_about(caplog):
    from ganvae.models.conditioning import check_pseudo_classes

    class Cfg:
        self_conditioning, conditional = 500, False

    check_pseudo_classes(Cfg(), 10_000)
    assert "model.self_conditioning=500" in caplog.text and "grows with K squared" in caplog.text


def test_a_long_clustering_stops_at_the_time_budget_and_resumes(tmp_path, monkeypatch):
    """A clustering that would run for minutes (here: for ever) stops at --max-minutes between its steps; the run
    stops by time with a checkpoint at step 0, and a resumed run clusters again."""
    real = clustering.spectral_embedding

    def endless(*args, **kwargs):
        while True:
            clustering._check_stop()
            time.sleep(0.01)

    monkeypatch.setattr("ganvae.models.self_conditioning.spectral_embedding", endless)
    started = time.monotonic()
    result = train(tiny_config("gan", "model.self_conditioning=4", "train.max_minutes=0.02"), tmp_path / "run",
                   data=tiny_data())
    assert time.monotonic() - started < 30
    assert (result.stopped_by, result.step) == ("time", 0)
    monkeypatch.setattr("ganvae.models.self_conditioning.spectral_embedding", real)
    resumed = train(tiny_config("gan", "model.self_conditioning=4"), tmp_path / "run", data=tiny_data(), resume=True)
    assert resumed.step == 12  # two epochs of 6 steps, on pseudo-classes clustered this time


def test_stop_when_interrupts_every_clustering_loop():
    import torch

    x = torch.randn(200, 5)
    g = torch.Generator().manual_seed(0)
    with clustering.stop_when(lambda: True):
        for call in (lambda: clustering.kmeans(x, 3, g), lambda: clustering.spectral_embedding(x, 4, g),
                     lambda: clustering.knn_graph(x, 5)):
            with pytest.raises(clustering.ClusteringStopped):
                call()
    clustering.kmeans(x, 3, g)  # outside the block: runs
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_a_batch_larger_than_the_data_is_refused_before_the_run_folder(tmp_path):
    import torch

    import ganvae
    from ganvae.errors import DataError

    with pytest.raises(DataError, match="train.batch_size=128 is larger than the training set"):
        ganvae.train("vae", out=tmp_path / "run", data=torch.rand(40, 28, 28), epochs=1)
    assert not (tmp_path / "run").exists()
