"""The explorer with colour models (issue 40, item 5): RGB samples, walks and renders; a drawing sent in colour (or
grey, white ink in each channel) is encoded or inverted; a drawing of the wrong length names both lengths."""

from __future__ import annotations

import base64
import io
import time

import pytest
import torch

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx: pip install -e '.[test]'")

from colour_helpers import tiny_colour_data  # noqa: E402
from conftest import tiny_config, train  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from ganvae.explore.server import build_explorer, create_app  # noqa: E402
from ganvae.explore.session import Limits  # noqa: E402


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """The app over a tiny colour conv-vae and a tiny colour dcgan (16x16x3 run folders)."""
    root = tmp_path_factory.mktemp("explore-colour")
    data = tiny_colour_data(32, 16)
    vae = train(tiny_config("conv-vae", "model.prior_components=2", "train.epochs=1"), root / "vae", data=data).run_dir
    gan = train(tiny_config("dcgan", "train.epochs=1"), root / "gan", data=data).run_dir
    explorer = build_explorer([str(vae), str(gan)], limits=Limits(max_samples=8, max_render=64, max_invert_steps=10,
                                                                  max_jobs=1))
    return TestClient(create_app(explorer), base_url="http://localhost"), str(vae), str(gan)


def png(data_uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))


def red_bar(channels: int = 3, size: int = 16) -> list[float]:
    """A red bar on black, channel-major (or its brightness, ``channels=1``)."""
    x = torch.zeros(3, size, size)
    x[0, 6:9, 2:-2] = 1.0
    return (x if channels == 3 else x.mean(0, keepdim=True)).flatten().tolist()


def test_colour_models_describe_their_channels_and_draw_rgb(colour):
    c, vae, gan = colour
    models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
    assert models[vae]["channels"] == 3 and models[gan]["channels"] == 3 and models[vae]["image_size"] == [16, 16]
    res = c.post("/api/sample", json={"model": gan, "seed": 0, "n": 2}).json()
    images = [png(u) for u in res["images"]]
    assert all(im.mode == "RGB" and im.size == (16, 16) for im in images)
    walk = c.post("/api/interpolate", json={"model": vae, "a": res["latents"][0][:4], "b": [0.0] * 4,
                                            "steps": 3}).json()
    assert len(walk["images"]) == 3 and png(walk["images"][1]).mode == "RGB"


def test_a_colour_drawing_is_encoded_in_colour_and_a_grey_one_in_every_channel(colour):
    c, vae, _ = colour
    res = c.post("/api/encode", json={"model": vae, "image": red_bar()})
    assert res.status_code == 200, res.text
    assert png(res.json()["reconstruction"]).mode == "RGB" and len(res.json()["latent"]) == 4
    grey = c.post("/api/encode", json={"model": vae, "image": red_bar(1)})
    assert grey.status_code == 200 and grey.json()["latent"] != res.json()["latent"]


def test_a_drawing_of_another_length_names_both_lengths(colour):
    c, vae, _ = colour
    res = c.post("/api/encode", json={"model": vae, "image": [0.5] * 700})
    assert res.status_code == 400
    assert "256 grey values or 3x16x16 = 768 colour values" in res.text


def test_a_colour_drawing_is_inverted_by_the_colour_gan(colour):
    c, _, gan = colour
    job = c.post("/api/invert", json={"model": gan, "image": red_bar(), "steps": 5}).json()
    t0 = time.monotonic()
    while (j := c.get(f"/api/jobs/{job['id']}").json())["state"] == "running":
        assert time.monotonic() - t0 < 60
        time.sleep(0.05)
    assert j["state"] == "done", j
    assert png(j["image"]).mode == "RGB"
