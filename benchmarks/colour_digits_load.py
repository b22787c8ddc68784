"""How long the offline colour digits take to make, and the memory they take, at each size (issue 40, item 4).

    .venv/bin/python benchmarks/colour_digits_load.py

Each size in a fresh process (so the peak is that load's own): seconds of ``load_dataset`` and the growth of the
peak resident memory (VmHWM) over the process with torch and ganvae imported, and a digest of the images (the
same on every machine: the dataset is generated bit for bit).
"""

from __future__ import annotations

from bench_common import child_json, print_table

CHILD = r"""
import hashlib, json, time
import torch
from ganvae.config import DataConfig
from ganvae.data.dataset import load_dataset

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
size = int(__import__("sys").argv[1])
before = hwm()
t = time.perf_counter()
data = load_dataset(DataConfig(dataset="colour-digits", image_size=size))
seconds = time.perf_counter() - t
digest = hashlib.sha256(data.train_images.numpy().tobytes() + data.test_images.numpy().tobytes()).hexdigest()[:16]
print(json.dumps({"size": size, "train": len(data.train_images), "test": len(data.test_images), "seconds": seconds,
                  "peak_growth_mb": (hwm() - before) / 2**20, "digest": digest}))
"""


def main() -> None:
    rows = [child_json(CHILD, size) for size in (28, 32, 64)]
    header = ["size", "train / test images", "seconds", "peak memory growth (MB)", "sha256 of the images (first 16)"]
    print_table(header, ["---:", "---:", "---:", "---:", "---"],
                [[str(r["size"]), f"{r['train']:,} / {r['test']:,}", f"{r['seconds']:.2f}",
                  f"{r['peak_growth_mb']:.0f}", f"`{r['digest']}`"] for r in rows])


if __name__ == "__main__":
    main()
