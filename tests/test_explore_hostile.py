"""ganvae explore against hostile requests, through a real uvicorn on 127.0.0.1 (raw sockets where a client library
would tidy the request up): every refusal is a 4xx with its reason, bounded in time, and the server keeps serving."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")

from conftest import LIKE_ZOO, uvicorn_in_thread  # noqa: E402

from ganvae.explore.server import build_explorer, create_app  # noqa: E402
from ganvae.explore.session import Limits  # noqa: E402

RENDER_SECONDS = 0.001  # a tiny cppn renders 1024x1024 in well under a second; one band of it takes longer than this


@pytest.fixture(scope="module")
def models(tiny_pretrained):
    """The page's names of the two tiny models on show: a vae (latent 4) and a cppn (latent 4), given as paths (the
    cppn at 28x28 is test_explore.py's, built once a session)."""
    vae, cppn = tiny_pretrained(*LIKE_ZOO["vae"]), tiny_pretrained(*LIKE_ZOO["cppn"], "data.image_size=28")
    return str(vae), str(cppn)


@pytest.fixture(scope="module")
def server(models):
    explorer = build_explorer(list(models), limits=Limits(max_queue=1, render_seconds=RENDER_SECONDS))
    with uvicorn_in_thread(create_app(explorer)) as port:
        yield port, explorer


def post(port: int, path: str, body, headers: dict | None = None, timeout: float = 20) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, {"content-type": "application/json", **(headers or {})})
    res = conn.getresponse()
    payload = res.read()
    conn.close()
    return res.status, json.loads(payload) if payload.startswith(b"{") else {"raw": payload[:200]}


def test_ragged_latents_are_a_422_not_a_500(server, models):
    port, _ = server
    vae, _ = models
    status, body = post(port, "/api/decode", {"model": vae, "latents": [[0.0] * 4, [0.0]]})
    assert status == 422 and "got lists of 1, 4 numbers" in body["detail"], body
    status, body = post(port, "/api/decode", {"model": vae, "latents": [[0.0] * 5000]})
    assert status == 422  # an inner list over the bound is refused by validation, before any tensor is made


def test_an_oversized_body_is_refused_before_it_is_parsed(server, models):
    port, explorer = server
    size = explorer.limits.max_body_bytes + 1
    t0 = time.monotonic()
    status, body = post(port, "/api/decode", b"[" + b"0," * (size // 2) + b"0]")
    assert status == 413 and "over this server's limit" in body["detail"]
    assert time.monotonic() - t0 < 10
    # a body that streams in chunks without declaring its length is counted as it arrives
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"POST /api/decode HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"0," * 65536
        try:
            for _ in range(size // len(chunk) + 2):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may answer and close before the client has sent everything
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert post(port, "/api/sample", {"model": models[0], "n": 2})[0] == 200  # and it still serves


def test_a_foreign_host_header_is_refused(server, models):
    port, _ = server
    vae, _ = models
    status, _ = post(port, "/api/sample", {"model": vae, "n": 1}, headers={"Host": "evil.example:8000"})
    assert status == 400
    assert post(port, "/api/sample", {"model": vae, "n": 1}, headers={"Host": f"localhost:{port}"})[0] == 200
    assert post(port, "/api/sample", {"model": vae, "n": 1}, headers={"Host": f"127.0.0.1:{port}"})[0] == 200


def test_a_full_queue_is_a_429_and_other_models_still_answer(server, models):
    port, explorer = server
    vae, cppn = models
    view = explorer.view(cppn)
    release, entered = threading.Event(), threading.Event()
    original = view.render

    def slow_render(*args, **kwargs):
        entered.set()
        release.wait(20)
        return original(*args, **kwargs)

    view.render = slow_render
    try:
        # size 64: one band, so the render time limit (checked between bands) does not stop it
        first = threading.Thread(target=post, args=(port, "/api/render",
                                                    {"model": cppn, "latent": [0.1] * 4, "size": 64}))
        first.start()
        assert entered.wait(20)
        t0 = time.monotonic()
        status, body = post(port, "/api/render", {"model": cppn, "latent": [0.1] * 4, "size": 64})
        assert status == 429 and "busy" in body["detail"] and time.monotonic() - t0 < 5
        assert post(port, "/api/sample", {"model": vae, "n": 1})[0] == 200  # another model is not stalled
    finally:
        release.set()
        first.join(20)
        view.render = original
    assert post(port, "/api/render", {"model": cppn, "latent": [0.1] * 4, "size": 64})[0] == 200


def test_a_render_past_its_time_limit_is_stopped(server, models):
    port, _ = server
    status, body = post(port, "/api/render", {"model": models[1], "latent": [0.1] * 4, "size": 1024})
    assert status == 503 and f"took over {RENDER_SECONDS:g} s" in body["detail"]


def test_interpolating_from_the_origin_is_a_straight_line(server, models):
    port, _ = server
    status, body = post(port, "/api/interpolate", {"model": models[0], "a": [0.0] * 4, "b": [1.0] * 4, "steps": 3})
    assert status == 200
    z = torch.tensor(body["latents"])
    assert torch.isfinite(z).all() and torch.allclose(z[1], torch.full((4,), 0.5))


def test_error_messages_name_models_not_paths():
    """A shipped model's folder is named by its zoo name, and the package's install path never shows (the subject
    is the zoo's own paths, so this one loads a zoo model)."""
    from ganvae.storage.zoo import zoo_dir

    explorer = build_explorer(["mnist-vae"])
    view = explorer.view("mnist-vae")
    text = explorer.public_text(f"--digit: vae from {view.loaded.source} is not conditional")
    assert str(zoo_dir()) not in text and "mnist-vae" in text


def test_a_finished_inversion_keeps_its_time():
    from ganvae.explore.session import Job

    job = Job(id="1", steps=1)
    job.finish("done")
    first = job.as_dict()["seconds"]
    time.sleep(0.05)
    assert job.as_dict()["seconds"] == first


@pytest.mark.parametrize("field", ["max_samples", "max_jobs", "max_render", "max_queue"])
def test_limits_of_zero_are_refused(field):
    from ganvae.errors import ConfigError

    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        Limits(**{field: 0})


@pytest.mark.parametrize("args,says", [(["--port", "70000"], "1 to 65535"), (["--port", "-1"], "1 to 65535"),
                                       (["--max-samples", "0"], "at least 1"), (["--max-jobs", "0"], "at least 1")])
def test_explore_flags_are_checked_when_parsed(args, says, models):
    res = subprocess.run([sys.executable, "-m", "ganvae", "explore", models[0], *args], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and says in res.stderr and "Traceback" not in res.stderr and "http://" not in res.stdout


def test_a_port_in_use_is_named_and_no_url_is_printed(models):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "ganvae", "explore", models[0], "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and f"127.0.0.1:{port}" in res.stderr and "--port" in res.stderr
    assert "http://" not in res.stdout and "Traceback" not in res.stderr


def test_a_render_whose_client_went_away_is_stopped(models):
    """A client that closes its connection mid-render (a closed tab): the render stops at its next band instead
    of running to its end (or its time limit), and the model is free for the next request at once."""
    cppn = models[1]
    explorer = build_explorer([cppn], limits=Limits(render_seconds=60))
    view = explorer.view(cppn)
    bands = []
    original = view.model.render_bands

    def slow_bands(*args, **kwargs):
        for band in original(*args, **kwargs):
            bands.append(time.monotonic())
            time.sleep(0.05)  # each band of rows takes a while, as a 4096-pixel render's do
            yield band

    view.model.render_bands = slow_bands
    with uvicorn_in_thread(create_app(explorer)) as port:
        body = json.dumps({"model": cppn, "latent": [0.1] * 4, "size": 2048}).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        deadline = time.monotonic() + 10
        while not bands and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.close()  # gone before the answer
        time.sleep(1.0)
        drawn = len(bands)
        time.sleep(0.5)
        assert len(bands) == drawn, "the render went on after its client left"
        assert drawn < 2048 * 2048 // (1 << 18)  # stopped before its last band
        view.model.render_bands = original
        status, _ = post(port, "/api/render", {"model": cppn, "latent": [0.1] * 4, "size": 64}, timeout=10)
        assert status == 200
