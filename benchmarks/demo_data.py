"""The demo's data, decided by measurement: each model trained for MINUTES on each offline dataset, scored alike.

    .venv/bin/python benchmarks/demo_data.py --minutes 1.5 --models gan,dcgan,vae --datasets mnist-5k,mnist-25k

Each run uses the default recipe, the demo's budget, seed 0 and 2 threads (without the demo's in-training metrics);
each is scored with 5,000 samples against the same reference, mnist-25k's 5,000 test images (mnist-5k's test images
are a subset of them and no model sees test images), so the figures compare across the two training sets. Runs go
one after the other. Prints one JSON line per run and writes OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganvae import inference, storage
from ganvae.config import DataConfig, build_config
from ganvae.data.dataset import load_dataset
from ganvae.metrics.classifier import load_classifier
from ganvae.metrics.evaluate import sample_metrics
from ganvae.training.trainer import Trainer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=1.5)
    p.add_argument("--models", default="gan,dcgan,vae")
    p.add_argument("--datasets", default="mnist-5k,mnist-25k")
    p.add_argument("--out", default="benchmarks/out/demo_data")
    args = p.parse_args(argv)
    out = Path(args.out)
    reference, fnet = load_dataset(DataConfig(dataset="mnist-25k")), load_classifier("mnist")
    results = []
    for model in args.models.split(","):
        for dataset in args.datasets.split(","):
            run = out / f"{model}-{dataset}"
            if not (run / "summary.json").exists():
                cfg = build_config(model, overrides=[
                    f"data.dataset={dataset}", "train.epochs=100000", f"train.max_minutes={args.minutes}",
                    "train.seed=0", "train.checkpoint_every=1000", "train.progress=false", "train.num_threads=2"])
                Trainer(cfg, run, argv=["benchmarks/demo_data.py"]).fit()
            summary = json.loads((run / "summary.json").read_text())
            m = sample_metrics(inference.sample_images(storage.load(run), 5000, 0), reference, fnet, seed=0)
            row = {"model": model, "dataset": dataset, "steps": summary["steps"],
                   "images_per_second": summary["images_per_second"],
                   "classifier_fd": round(m["classifier_fd"], 1),
                   "classifier_fd_std": round(m["classifier_fd_std"], 1), "precision_k5": round(m["precision_k5"], 3),
                   "recall_k5": round(m["recall_k5"], 3), "dropped_classes": m["dropped_classes"]}
            print(json.dumps(row), flush=True)
            results.append(row)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
