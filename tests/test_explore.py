"""ganvae explore's web API, against the app itself: every endpoint, every bad request (4xx with a reason)."""

from __future__ import annotations

import base64
import io
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx: pip install -e '.[test]'")

from conftest import (  # noqa: E402
    LIKE_ZOO,
    tiny_config,
    tiny_data,
    train,  # noqa: E402
)
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from ganvae.explore.server import build_explorer, create_app  # noqa: E402
from ganvae.explore.session import Limits  # noqa: E402

# a tiny vae (latent 4) trained long enough to reconstruct the bars of tiny_data where they are drawn; at MNIST's
# 28x28, so its main directions come from the packaged mnist-5k as a pretrained MNIST model's do
TRAINED_VAE = ("vae", "model.prior_components=3", "model.hidden=[64]", "model.lr=0.005", "data.image_size=28",
               "train.epochs=20", "train.checkpoint_every=20", "train.sample_every=20")
CPPN = (*LIKE_ZOO["cppn"], "data.image_size=28")  # an encoder model too: its directions come from mnist-5k


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_pretrained):
    """The app over three tiny models: a vae and a cppn (28x28 pretrained folders) and a 16x16 conditional dcgan
    (a run folder); each is named on the page by the path it was given as."""
    run = train(tiny_config("dcgan", "model.conditional=true", "train.epochs=1"),
                tmp_path_factory.mktemp("explore") / "cdcgan", data=tiny_data()).run_dir
    m = SimpleNamespace(vae=str(tiny_pretrained(*TRAINED_VAE, images=100)),
                        cppn=str(tiny_pretrained(*CPPN)), run=str(run))
    explorer = build_explorer([m.vae, m.cppn, m.run],
                              limits=Limits(max_samples=32, max_render=512, max_invert_steps=40, max_jobs=1))
    return TestClient(create_app(explorer), base_url="http://localhost"), m


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
    c, m = client
    models = {info["name"]: info for info in c.get("/api/models").json()["models"]}
    assert models[m.vae]["has_encoder"] and not models[m.vae]["conditional"]
    assert models[m.cppn]["renders_any_size"]
    assert models[m.run]["conditional"] and models[m.run]["classes"] == list(range(10))


def test_sample_is_seeded_and_shares_latents_across_models(client):
    c, m = client
    a = c.post("/api/sample", json={"model": m.vae, "seed": 3, "n": 4}).json()
    b = c.post("/api/sample", json={"model": m.vae, "seed": 3, "n": 4}).json()
    assert a == b and len(a["images"]) == 4 and png(a["images"][0]).size == (28, 28)
    other = c.post("/api/sample", json={"model": m.vae, "seed": 4, "n": 4}).json()
    assert other["images"] != a["images"]
    d7 = c.post("/api/sample", json={"model": m.run, "seed": 3, "n": 2, "digit": 7}).json()
    d1 = c.post("/api/sample", json={"model": m.run, "seed": 3, "n": 2, "digit": 1}).json()
    assert d7["latents"] == d1["latents"] and d7["images"] != d1["images"]


def test_decode_interpolate_directions(client):
    c, m = client
    z = c.post("/api/sample", json={"model": m.vae, "seed": 0, "n": 2}).json()["latents"]
    dec = c.post("/api/decode", json={"model": m.vae, "latents": z}).json()["images"]
    assert dec == c.post("/api/sample", json={"model": m.vae, "seed": 0, "n": 2}).json()["images"]
    walk = c.post("/api/interpolate", json={"model": m.vae, "a": z[0], "b": z[1], "steps": 5}).json()
    assert len(walk["images"]) == 5 and walk["images"][0] == dec[0]
    dirs = c.get("/api/directions", params={"model": m.vae, "k": 3}).json()
    u = torch.tensor(dirs["directions"])
    assert u.shape == (3, 4) and torch.allclose(u @ u.T, torch.eye(3), atol=1e-4)  # orthonormal principal axes
    assert dirs["scales"][0] >= dirs["scales"][1] >= dirs["scales"][2] > 0 and "posterior means" in dirs["source"]
    gan = c.get("/api/directions", params={"model": m.cppn, "k": 2}).json()
    assert len(gan["directions"]) == 2
    moved = [a + 3 * dirs["scales"][0] * d for a, d in zip(z[0], dirs["directions"][0])]
    assert c.post("/api/decode", json={"model": m.vae, "latents": [moved]}).json()["images"][0] != dec[0]


def digit_pixels(size=28) -> list[float]:
    x = torch.zeros(size, size)
    x[4:-4, size // 2 - 2: size // 2 + 2] = 1.0  # a "1"
    return x.flatten().tolist()


def bar_pixels(row: int, size=28) -> list[float]:
    """A drawing like tiny_data's images of one class: a bar two pixels high at ``row``."""
    x = torch.zeros(size, size)
    x[row: row + 2, 4:-4] = 1.0
    return x.flatten().tolist()


def test_encode_a_drawing(client):
    c, m = client
    res = c.post("/api/encode", json={"model": m.vae, "image": digit_pixels()}).json()
    assert len(res["latent"]) == 4 and png(res["reconstruction"]).size == (28, 28) and len(res["nearest"]) == 4
    for row, elsewhere in ((4, slice(14, 20)), (21, slice(6, 12))):  # the bars of classes 1 and 8
        res = c.post("/api/encode", json={"model": m.vae, "image": bar_pixels(row)}).json()
        recon = torch.from_numpy(np.array(png(res["reconstruction"]).convert("L"))).float() / 255
        # it drew the bar where the drawing has it
        assert recon[row: row + 2, 4:-4].mean() > 3 * recon[elsewhere, 4:-4].mean(), recon[:, 4:-4].mean(1)


def test_encode_draws_its_neighbour_pool_once(client):
    """The samples a drawing is compared with are drawn on the first request, not on every one."""
    _, m = client
    view = build_explorer([m.vae]).view(m.vae)
    drawn, generate = [], view.model.generate
    view.model.generate = lambda z, *a, **k: drawn.append(len(z)) or generate(z, *a, **k)
    x = view.image_tensor(digit_pixels())
    first, second = view.encode(x, None), view.encode(x, None)
    assert first["nearest"] == second["nearest"] and drawn.count(256) == 1


def test_invert_a_drawing_in_the_background(client):
    c, m = client
    run = m.run
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
    c, m = client
    z = c.post("/api/sample", json={"model": m.cppn, "seed": 0, "n": 1}).json()["latents"][0]
    res = c.post("/api/render", json={"model": m.cppn, "latent": z, "size": 300})
    assert res.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(res.content)).size == (300, 300)


# the models: VAE (latent 4, 28x28), CPPN (latent 4, 28x28), RUN (the conditional dcgan, 16x16)
@pytest.mark.parametrize("path,body,code,reason", [
    ("/api/sample", {"model": "nope", "n": 4}, 404, "no model 'nope' here"),
    ("/api/sample", {"model": "VAE", "n": 0}, 422, "n"),
    ("/api/sample", {"model": "VAE", "n": 33}, 413, "n 33 is over this server's limit of 32"),
    ("/api/sample", {"model": "VAE", "seed": -1}, 422, "seed"),
    ("/api/sample", {"model": "VAE", "n": "many"}, 422, "n"),
    ("/api/sample", {"model": "VAE", "digit": 3}, 400, "not conditional"),
    ("/api/sample", {"model": "RUN", "digit": 12}, 400, "trained on classes"),
    ("/api/decode", {"model": "VAE", "latents": [[0.0] * 3]}, 400, "latents of 4 numbers"),
    ("/api/decode", {"model": "VAE", "latents": []}, 422, "latents"),
    ("/api/decode", {"model": "VAE", "latents": [[0.0] * 4] * 40}, 413, "latents 40"),
    ("/api/interpolate", {"model": "VAE", "a": [0.0] * 4, "b": [0.0] * 4, "steps": 1000}, 413, "steps 1000"),
    ("/api/encode", {"model": "VAE", "image": [0.5] * 100}, 400, "784 grey values"),
    ("/api/encode", {"model": "VAE", "image": [2.0] * 784}, 400, "in [0, 1]"),
    ("/api/encode", {"model": "CPPN", "image": [0.0] * 784, "digit": 4}, 400, "not conditional"),
    ("/api/encode", {"model": "RUN", "image": [0.0] * 256}, 400, "has no encoder"),
    ("/api/invert", {"model": "RUN", "image": [0.0] * 256, "steps": 10000}, 413, "steps 10000"),
    ("/api/render", {"model": "CPPN", "latent": [0.0] * 4, "size": 100000}, 413, "size 100000"),
    ("/api/render", {"model": "VAE", "latent": [0.0] * 4, "size": 64}, 400, "render needs a cppn"),
])
def test_bad_requests_get_a_4xx_with_the_reason(client, path, body, code, reason):
    c, m = client
    names = {"VAE": m.vae, "CPPN": m.cppn, "RUN": m.run}
    body = {k: (names[v] if isinstance(v, str) and v in names else v) for k, v in body.items()}
    res = c.post(path, json=body)
    assert res.status_code == code, res.text
    assert reason in res.text


def test_bad_gets(client):
    c, m = client
    assert c.get("/api/jobs/999").status_code == 404
    assert c.get("/api/directions", params={"model": m.vae, "k": 100}).status_code == 422
    assert c.post("/api/sample", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_the_command_serves_on_localhost(tmp_path, tiny_pretrained):
    import json
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vae = str(tiny_pretrained(*LIKE_ZOO["vae"]))
    proc = subprocess.Popen([sys.executable, "-m", "ganvae", "explore", vae, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://localhost:{port}/" in line, line
        t0 = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as res:
                    assert json.loads(res.read())["models"][0]["name"] == vae
                break
            except OSError:
                assert time.monotonic() - t0 < 60 and proc.poll() is None
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
