"""How fast `ganvae explore` answers: a slider move (one /api/decode round trip over HTTP on 127.0.0.1, as the page
makes it) and a GAN inversion (/api/invert until its job is done).

    .venv/bin/python benchmarks/bench_explore.py mnist-vae mnist-dcgan mnist-cppn --invert mnist-dcgan

Prints the median and 95th percentile of the slider latency per model and the inversion's wall time.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
import urllib.request

import torch


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as res:
        return json.loads(res.read())


def main() -> None:
    import uvicorn

    from ganvae.common.device import machine_description
    from ganvae.explore.server import build_explorer, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--moves", type=int, default=100, help="slider moves timed per model")
    parser.add_argument("--invert", help="a GAN to time an inversion of")
    parser.add_argument("--invert-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(build_explorer(args.models)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    print(f"machine: {machine_description()}; {args.moves} slider moves per model")
    for name in args.models:
        z = post(f"{base}/api/sample", {"model": name, "seed": 0, "n": 1})["latents"][0]
        with urllib.request.urlopen(f"{base}/api/directions?model={name}&k=6") as res:
            d = json.loads(res.read())
        times = []
        for i in range(args.moves):
            a = 3 * (i / args.moves) - 1.5
            moved = [zi + a * d["scales"][0] * di for zi, di in zip(z, d["directions"][0])]
            t = time.perf_counter()
            post(f"{base}/api/decode", {"model": name, "latents": [moved]})
            times.append(1000 * (time.perf_counter() - t))
        times.sort()
        print(f"{name}: slider image back in median {statistics.median(times):.1f} ms, "
              f"95th percentile {times[int(0.95 * len(times)) - 1]:.1f} ms")
    if args.invert:
        x = torch.zeros(28, 28)
        x[5:23, 12:16] = 1.0  # a drawn "1"
        t = time.perf_counter()
        job = post(f"{base}/api/invert",
                   {"model": args.invert, "image": x.flatten().tolist(), "steps": args.invert_steps})
        while True:
            with urllib.request.urlopen(f"{base}/api/jobs/{job['id']}") as res:
                j = json.loads(res.read())
            if j["state"] != "running":
                break
            time.sleep(0.05)
        if j["state"] != "done":
            raise SystemExit(f"{args.invert}: the inversion {j['state']}: {j['error']}")
        print(f"{args.invert}: inversion of {args.invert_steps} steps in {time.perf_counter() - t:.1f} s "
              f"(final loss {j['loss']:.4f})")
    server.should_exit = True


if __name__ == "__main__":
    main()
