"""Build the offline MNIST subset that ships inside the package (``mnist-25k``; ``mnist-5k`` is a slice of it).

    python tools/make_mnist_25k.py --data-dir ../shared/data/mnist

Reads the four original MNIST files (checked against their published md5 sums) and writes, under
``src/ganvae/data/packaged/mnist-25k/``, four gzip IDX files in MNIST's own format:

* train: 2,000 images of each class of the official training set (20,000);
* test:  500 images of each class of the official test set (5,000);

each drawn at random without replacement (numpy ``default_rng(0)``, class by class) and kept in file order. Random,
not the first of each class: MNIST's files are ordered by writer population (the first 5,000 test images come from
NIST's cleaner SD-3 writers, the last 5,000 from SD-1), so a "first N" subset would not look like the whole.
Deterministic (gzip level 9, mtime 0): rerunning it reproduces the shipped bytes; it prints their md5 sums for
``ganvae/data/sources.py``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

from ganvae.common.files import md5_file
from ganvae.data.idx import encode_idx, read_idx
from ganvae.data.sources import MNIST, resolve_files

PER_CLASS = {"train": 2000, "test": 500}
OUT = Path(__file__).resolve().parents[1] / "src" / "ganvae" / "data" / "packaged" / "mnist-25k"


def random_per_class(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` random examples of every class (without replacement), in file order."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        keep[rng.choice(np.flatnonzero(labels == c), size=n, replace=False)] = True
    return np.flatnonzero(keep)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder holding the four original MNIST files")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    paths = resolve_files(MNIST, data_dir=args.data_dir, allow_download=False)
    for role, path in paths.items():
        if md5_file(path) != MNIST.files[role].md5:
            raise SystemExit(f"{path}: not the published MNIST file (md5 differs)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in PER_CLASS.items():
        images = read_idx(paths[f"{split}_images"], "images")
        labels = read_idx(paths[f"{split}_labels"], "labels")
        idx = random_per_class(labels, n)
        for role, array in (("images", images[idx]), ("labels", labels[idx])):
            name = MNIST.files[f"{split}_{role}"].filename
            data = encode_idx(array)
            (out / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
            print(f"{name}: {len(idx)} items, gz md5 {md5_file(out / name)}, "
                  f"unpacked md5 {hashlib.md5(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
