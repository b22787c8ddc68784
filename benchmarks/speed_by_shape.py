"""Training speed and step memory of every family at 28x28x1, 32x32x3 and 64x64x3 (issue 40, item 7).

Run (from the repository root, nothing else running):

    .venv/bin/python benchmarks/speed_by_shape.py [--threads 2] [--seconds 4] [--out benchmarks/out/speed_by_shape.json]

For each family at its default recipe and batch size, on the images of that shape (28x28x1: the offline
mnist-25k; 32 and 64: the offline colour digits), it times the trainer's hot path exactly as
``benchmarks/bench_speed.py`` does (the in-memory uint8 batch of a seeded permutation, scaled on the fly, then
``model.training_step``; one host sync per measured block): a warm-up block, then ``--repeats`` blocks of about
``--seconds`` each, and reports the median images per second. Self-conditioned GANs cluster their training images
once first (excluded: the trainer does it once per run). Also printed: the parameter count and the memory guard's
estimate of one step (``ganvae.training.step_memory``), the figure a batch is refused on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench_speed import time_ganvae

from ganvae.common.device import machine_description
from ganvae.config import DataConfig, build_config
from ganvae.data.dataset import load_dataset
from ganvae.registry import build_model
from ganvae.training.denormals import flush_denormals
from ganvae.training.step_memory import activation_bytes_per_image, step_bytes

MODELS = ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn")
SHAPES = {"28x28x1": ("mnist-25k", 28), "32x32x3": ("colour-digits", 32), "64x64x3": ("colour-digits", 64)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0, help="target seconds per measured block")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default="benchmarks/out/speed_by_shape.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {machine_description()}; threads {args.threads}; torch {torch.__version__}", flush=True)
    rows = []
    for shape in args.shapes.split(","):
        dataset, size = SHAPES[shape]
        data = load_dataset(DataConfig(dataset=dataset, image_size=size))
        for name in args.models.split(","):
            cfg = build_config(name, overrides=[f"data.image_size={size}"])
            bs = cfg.train.batch_size
            torch.manual_seed(0)
            model = build_model(cfg, data.image_shape)
            t = time.monotonic()
            model.before_epoch(0, data.train_images, seed=0)  # self-conditioning's clustering, once per run
            prepare = time.monotonic() - t
            opts = model.make_optimizers()
            estimate = step_bytes(model, bs, activation_bytes_per_image(model) or 0)
            with flush_denormals(cfg.train.flush_denormals):
                warm = time_ganvae(model, opts, data.train_images, bs, 3, 0, labels=data.train_labels)
                steps = max(3, int(args.seconds * warm / bs))
                rates = [time_ganvae(model, opts, data.train_images, bs, steps, r + 1, labels=data.train_labels)
                         for r in range(args.repeats)]
            row = {"model": name, "shape": shape, "dataset": dataset, "batch_size": bs,
                   "parameters": model.parameter_count(), "images_per_s": statistics.median(rates),
                   "all": rates, "steps_per_block": steps, "step_memory_estimate_mb": estimate / 2**20,
                   "clustering_seconds": prepare}
            rows.append(row)
            print(f"{shape} {name:8s} batch {bs:4d}: {row['images_per_s']:8.0f} img/s "
                  f"({min(rates):.0f}-{max(rates):.0f}), {row['parameters'] / 1e6:.2f}M parameters, step estimate "
                  f"{row['step_memory_estimate_mb']:.0f} MB", flush=True)
    print()
    names = list(dict.fromkeys(r["model"] for r in rows))
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    print("| model | batch | " + " | ".join(f"{s} img/s" for s in shapes) + " | "
          + " | ".join(f"{s} params / step MB" for s in shapes) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in shapes * 2) + " |")
    for n in names:
        cells = {r["shape"]: r for r in rows if r["model"] == n}
        bs = next(iter(cells.values()))["batch_size"]
        print(f"| {n} | {bs} | " + " | ".join(f"{cells[s]['images_per_s']:.0f}" if s in cells else "-" for s in shapes)
              + " | " + " | ".join(f"{cells[s]['parameters'] / 1e6:.2f}M / {cells[s]['step_memory_estimate_mb']:.0f}"
                                   if s in cells else "-" for s in shapes) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine_description(), "threads": args.threads,
                                          "torch": torch.__version__, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
