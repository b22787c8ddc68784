"""The source distribution is complete: built from this tree, unpacked elsewhere, its own tests run from it."""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    build = subprocess.run([sys.executable, "-c",
                            f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    archive = out / build.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        tar.extractall(out / "unpacked", filter="data")
    (folder,) = (out / "unpacked").iterdir()
    return folder


def test_the_sdist_holds_what_its_tests_and_users_need(sdist):
    for name in ("tests/conftest.py", "tests/dist_worker.py", "tests/golden_values.json", "LICENSE", "README.md",
                 "constraints.txt", "src/ganvae/py.typed", "src/ganvae/pretrained/mnist-gan/model.safetensors",
                 "src/ganvae/weights", "examples/wgan-gp-plugin/pyproject.toml", "examples/quickstart.ipynb"):
        assert (sdist / name).exists(), name
    meta = (sdist / "PKG-INFO").read_text()
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert not list(sdist.rglob("__pycache__"))


def test_a_fast_subset_of_the_tests_runs_from_the_unpacked_sdist(sdist):
    """Its code, not this tree's: PYTHONPATH puts the sdist's src first."""
    import os

    env = {**os.environ, "PYTHONPATH": str(sdist / "src")}
    probe = subprocess.run([sys.executable, "-c", "import ganvae, sys; print(ganvae.__file__)"], cwd=sdist, env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().startswith(str(sdist / "src")), probe
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_config.py",
                           "tests/test_idx.py"], cwd=sdist, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_the_public_api_is_listed():
    import ganvae

    public = set(ganvae.__all__)
    assert {"load", "train", "Pipeline", "Images", "Callback", "register_model"} <= public
    assert public <= set(dir(ganvae))
    for name in public:
        assert getattr(ganvae, name) is not None, name
