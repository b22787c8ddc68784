"""The memory guard's estimate of a training step against the step's measured peak (issue 40, item 7).

    .venv/bin/python benchmarks/step_memory.py [--batch 256] [--cppn-batch 32]

Each family at 64x64x3 and 32x32x3 (random uint8 images: memory does not depend on their content) in a fresh
process: the resident memory just before ``Trainer.fit`` (peak reset through ``/proc/self/clear_refs``), then the
peak (VmHWM) over two training steps of the default recipe (self-conditioning off, so nothing is clustered), one
thread. Printed: the measured growth, ``ganvae.training.step_memory``'s estimate, and their ratio (above 1: the
guard over-estimates, refusing a batch early; below 1: it lets a batch through that needs more than it said).
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse

from bench_common import child_json, print_table

CHILD = r"""
import json, sys, tempfile
import torch
from ganvae.config import build_config
from ganvae.data.dataset import ImageData
from ganvae.registry import build_model
from ganvae.training import step_memory
from ganvae.training.trainer import Trainer

fam, b, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)
y = torch.arange(b) % 10
data = ImageData("random", tuple(str(i) for i in range(10)), x, y, x[:16], y[:16])
extra = ["model.self_conditioning=0"] if fam in ("gan", "dcgan") else []
cfg = build_config(fam, overrides=[f"data.image_size={size}", f"train.batch_size={b}", "train.max_steps=2",
                                   "train.progress=false", "run.tensorboard=false", "run.n_fixed=4", *extra])
model = build_model(cfg, (3, size, size))
estimate = step_memory.step_bytes(model, b, step_memory.activation_bytes_per_image(model))
del model
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the peak from here
with tempfile.TemporaryDirectory() as d:
    Trainer(cfg, d + "/run", data=data).fit()
print(json.dumps({"model": fam, "batch": b, "size": size, "growth": status("VmHWM") - before, "estimate": estimate}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--cppn-batch", type=int, default=32, help="the CPPN's batch (its step is 20x a DCGAN's)")
    args = p.parse_args()
    rows = []
    for size in (64, 32):
        for fam in ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn"):
            b = args.cppn_batch if fam == "cppn" else args.batch
            rows.append(child_json(CHILD, fam, b, size))
    print_table(["model", "image", "batch", "measured peak growth (MB)", "estimate (MB)", "estimate / measured"],
                ["---", "---", "---:", "---:", "---:", "---:"],
                [[r["model"], f"{r['size']}x{r['size']}x3", str(r["batch"]), f"{r['growth'] / 2**20:.0f}",
                  f"{r['estimate'] / 2**20:.0f}", f"{r['estimate'] / r['growth']:.2f}x"] for r in rows])


if __name__ == "__main__":
    main()
