"""ganvae explore's web API, against the app itself: every endpoint, every bad request (4xx with a reason)."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx: pip install -e '.[test]'")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from ganvae.explore.server import build_explorer, create_app  # noqa: E402
from ganvae.explore.session import Limits  # noqa: E402
from conftest import train  # noqa: E402

from conftest import tiny_config, tiny_data  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    run = train(tiny_config("dcgan", "model.conditional=true", "train.epochs=1"),
                tmp_path_factory.mktemp("explore") / "cdcgan", data=tiny_data()).run_dir
    explorer = build_explorer(["mnist-vae", "mnist-cppn", str(run)],
                              limits=Limits(max_samples=32, max_render=512, max_invert_steps=40, max_jobs=1))
    return TestClient(create_app(explorer), base_url="http://localhost"), str(run)


def png(data_uri: str) -> Image.Image:
    assert data_uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))


def test_page_and_static_files(client):
    c, _ = client
    page = c.get("/")
    assert page.status_code == 200 and "ganvae explore" in page.text and "/static/explore.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: everything is served here
    assert c.get("/static/explore.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/static/explore.css").status_code == 200
    assert c.get("/static/../server.py").status_code == 404
    assert c.get("/static/secret.txt").status_code == 404


def test_models_lists_what_each_can_do(client):
    c, run = client
    models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
    assert models["mnist-vae"]["has_encoder"] and not models["mnist-vae"]["conditional"]
    assert models["mnist-cppn"]["renders_any_size"]
    assert models[run]["conditional"] and models[run]["classes"] == list(range(10))


def test_sample_is_seeded_and_shares_latents_across_models(client):
    c, run = client
    a = c.post("/api/sample", json={"model": "mnist-vae", "seed": 3, "n": 4}).json()
    b = c.post("/api/sample", json={"model": "mnist-vae", "seed": 3, "n": 4}).json()
    assert a == b and len(a["images"]) == 4 and png(a["images"][0]).size == (28, 28)
    other = c.post("/api/sample", json={"model": "mnist-vae", "seed": 4, "n": 4}).json()
    assert other["images"] != a["images"]
    d7 = c.post("/api/sample", json={"model": run, "seed": 3, "n": 2, "digit": 7}).json()
    d1 = c.post("/api/sample", json={"model": run, "seed": 3, "n": 2, "digit": 1}).json()
    assert d7["latents"] == d1["latents"] and d7["images"] != d1["images"]


def test_decode_interpolate_directions(client):
    c, _ = client
    z = c.post("/api/sample", json={"model": "mnist-vae", "seed": 0, "n": 2}).json()["latents"]
    dec = c.post("/api/decode", json={"model": "mnist-vae", "latents": z}).json()["images"]
    assert dec == c.post("/api/sample", json={"model": "mnist-vae", "seed": 0, "n": 2}).json()["images"]
    walk = c.post("/api/interpolate", json={"model": "mnist-vae", "a": z[0], "b": z[1], "steps": 5}).json()
    assert len(walk["images"]) == 5 and walk["images"][0] == dec[0]
    dirs = c.get("/api/directions", params={"model": "mnist-vae", "k": 3}).json()
    u = torch.tensor(dirs["directions"])
    assert u.shape == (3, 10) and torch.allclose(u @ u.T, torch.eye(3), atol=1e-4)  # orthonormal principal axes
    assert dirs["scales"][0] >= dirs["scales"][1] >= dirs["scales"][2] > 0 and "posterior means" in dirs["source"]
    gan = c.get("/api/directions", params={"model": "mnist-cppn", "k": 2}).json()
    assert len(gan["directions"]) == 2
    moved = [a + 3 * dirs["scales"][0] * d for a, d in zip(z[0], dirs["directions"][0])]
    assert c.post("/api/decode", json={"model": "mnist-vae", "latents": [moved]}).json()["images"][0] != dec[0]


def digit_pixels(size=28) -> list[float]:
    x = torch.zeros(size, size)
    x[4:-4, size // 2 - 2: size // 2 + 2] = 1.0  # a "1"
    return x.flatten().tolist()


def test_encode_a_drawing(client):
    c, _ = client
    res = c.post("/api/encode", json={"model": "mnist-vae", "image": digit_pixels()}).json()
    assert len(res["latent"]) == 10 and png(res["reconstruction"]).size == (28, 28) and len(res["nearest"]) == 4
    recon = torch.from_numpy(np.array(png(res["reconstruction"]).convert("L"))).float() / 255
    assert recon[4:-4, 12:16].mean() > 3 * recon[:, :6].mean()  # it drew the stroke where the drawing has it


def test_encode_draws_its_neighbour_pool_once():
    """The samples a drawing is compared with are drawn on the first request, not on every one."""
    view = build_explorer(["mnist-vae"]).view("mnist-vae")
    drawn, generate = [], view.model.generate
    view.model.generate = lambda z, *a, **k: drawn.append(len(z)) or generate(z, *a, **k)
    x = view.image_tensor(digit_pixels())
    first, second = view.encode(x, None), view.encode(x, None)
    assert first["nearest"] == second["nearest"] and drawn.count(256) == 1


def test_invert_a_drawing_in_the_background(client):
    c, run = client
    job = c.post("/api/invert", json={"model": run, "image": digit_pixels(16), "steps": 30, "digit": 1}).json()
    assert job["state"] == "running" and job["loss"] is None  # strict JSON: no NaN before the first step
    assert c.post("/api/invert", json={"model": run, "image": digit_pixels(16), "steps": 30}).status_code in (200, 429)
    t0 = time.monotonic()
    while (j := c.get(f"/api/jobs/{job['id']}").json())["state"] == "running":
        assert c.get("/api/models").status_code == 200  # the server answers while it works
        assert time.monotonic() - t0 < 60
        time.sleep(0.05)
    latent_dim = {m["name"]: m for m in c.get("/api/models").json()["models"]}[run]["latent_dim"]
    assert j["state"] == "done" and j["step"] == 30 and len(j["latent"]) == latent_dim and j["image"]


def test_render_a_cppn(client):
    c, _ = client
    z = c.post("/api/sample", json={"model": "mnist-cppn", "seed": 0, "n": 1}).json()["latents"][0]
    res = c.post("/api/render", json={"model": "mnist-cppn", "latent": z, "size": 300})
    assert res.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(res.content)).size == (300, 300)


@pytest.mark.parametrize("path,body,code,reason", [
    ("/api/sample", {"model": "nope", "n": 4}, 404, "no model 'nope' here"),
    ("/api/sample", {"model": "mnist-vae", "n": 0}, 422, "n"),
    ("/api/sample", {"model": "mnist-vae", "n": 33}, 413, "n 33 is over this server's limit of 32"),
    ("/api/sample", {"model": "mnist-vae", "seed": -1}, 422, "seed"),
    ("/api/sample", {"model": "mnist-vae", "n": "many"}, 422, "n"),
    ("/api/sample", {"model": "mnist-vae", "digit": 3}, 400, "not conditional"),
    ("/api/sample", {"model": "RUN", "digit": 12}, 400, "trained on classes"),
    ("/api/decode", {"model": "mnist-vae", "latents": [[0.0] * 9]}, 400, "latents of 10 numbers"),
    ("/api/decode", {"model": "mnist-vae", "latents": []}, 422, "latents"),
    ("/api/decode", {"model": "mnist-vae", "latents": [[0.0] * 10] * 40}, 413, "latents 40"),
    ("/api/interpolate", {"model": "mnist-vae", "a": [0.0] * 10, "b": [0.0] * 10, "steps": 1000}, 413, "steps 1000"),
    ("/api/encode", {"model": "mnist-vae", "image": [0.5] * 100}, 400, "784 grey values"),
    ("/api/encode", {"model": "mnist-vae", "image": [2.0] * 784}, 400, "in [0, 1]"),
    ("/api/encode", {"model": "mnist-cppn", "image": [0.0] * 784, "digit": 4}, 400, "not conditional"),
    ("/api/encode", {"model": "RUN", "image": [0.0] * 256}, 400, "has no encoder"),
    ("/api/invert", {"model": "RUN", "image": [0.0] * 256, "steps": 10000}, 413, "steps 10000"),
    ("/api/render", {"model": "mnist-cppn", "latent": [0.0] * 32, "size": 100000}, 413, "size 100000"),
    ("/api/render", {"model": "mnist-vae", "latent": [0.0] * 10, "size": 64}, 400, "render needs a cppn"),
])
def test_bad_requests_get_a_4xx_with_the_reason(client, path, body, code, reason):
    c, run = client
    body = {k: (run if v == "RUN" else v) for k, v in body.items()}
    res = c.post(path, json=body)
    assert res.status_code == code, res.text
    assert reason in res.text


def test_bad_gets(client):
    c, _ = client
    assert c.get("/api/jobs/999").status_code == 404
    assert c.get("/api/directions", params={"model": "mnist-vae", "k": 100}).status_code == 422
    assert c.post("/api/sample", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_the_command_serves_on_localhost(tmp_path):
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ganvae", "explore", "mnist-vae", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://localhost:{port}/" in line, line
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as res:
                    assert json.loads(res.read())["models"][0]["name"] == "mnist-vae"
                break
            except OSError:
                assert time.monotonic() - t0 < 60 and proc.poll() is None
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
