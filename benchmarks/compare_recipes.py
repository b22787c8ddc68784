"""Controlled recipe comparisons: the same family, budget, seed and threads; only the named settings differ.

    .venv/bin/python benchmarks/compare_recipes.py dcgan --minutes 3 --data-dir ../shared/data/mnist \\
        --variant "radford=model.beta1=0.5 model.lr_generator=2e-4 model.lr_discriminator=2e-4" \\
        --variant \\
        "radford+ema=model.beta1=0.5 model.lr_generator=2e-4 model.lr_discriminator=2e-4 model.ema_decay=0.999"

Each variant is ``NAME=SECTION.KEY=VALUE ...`` (``--set`` overrides, separated by spaces; ``NAME=`` alone is the
family's defaults). Every run trains on full MNIST for ``--minutes`` of wall-clock (the run's own budget, so a
faster recipe takes more steps), then ``ganvae evaluate --n-samples N`` scores it (FID on the shipped classifier's
features, class coverage, precision/recall); a run with an EMA is also scored with its trained weights
(``--no-ema``). Runs go one after the other, never two at once, so their speeds are
comparable. Prints a markdown table and writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_common import fid_or_dash, ganvae, print_table, score_run


def run_variant(family: str, name: str, overrides: list[str], args) -> dict:
    run_dir = Path(args.out) / f"{family}-{name}"
    cmd = ganvae("train", family, "--dataset", "mnist", "--max-minutes", str(args.minutes), "--epochs", "100000",
                 "--seed", str(args.seed), "--out", str(run_dir), "--set", f"train.num_threads={args.threads}",
                 "--set", "train.progress=false", "--set", "train.checkpoint_every=100000")
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    for o in overrides:
        cmd += ["--set", o]
    if not (run_dir / "summary.json").is_file():
        subprocess.run(cmd, check=True)
    summary, m, live = score_run(run_dir, args.data_dir, args.n_samples)
    n_classes = sum(1 for v in m["class_histogram"] if v > 0.1 / len(m["class_histogram"]))
    return {"variant": name, "overrides": overrides, "steps": summary["steps"],
            "images_per_second": summary["images_per_second"],
            "classifier_fd": m["classifier_fd"], "precision_k5": m["precision_k5"], "recall_k5": m["recall_k5"],
            "class_entropy": m["class_entropy"],
            "dropped_classes": m["dropped_classes"], "classes_seen": n_classes, "run": str(run_dir),
            "fid_live_weights": live, "command": " ".join(cmd)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family")
    p.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE KEY=VALUE ...")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--data-dir")
    p.add_argument("--out", default="benchmarks/out/recipes")
    args = p.parse_args(argv)
    rows = []
    start = time.strftime("%Y-%m-%d %H:%M")
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        rows.append(run_variant(args.family, name, rest.split(), args))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results-{args.family}.json").write_text(json.dumps({"started": start, "minutes": args.minutes,
                                                                 "rows": rows}, indent=2))
    print(f"\n{args.family}, {args.minutes:g} min each, seed {args.seed}, {args.threads} threads, "
          f"FID on {args.n_samples} samples\n")
    print_table(["variant", "settings", "steps", "images/s", "FID", "FID, trained weights", "precision", "recall",
                 "classes under 1/3 share"], ["---", "---"] + ["---:"] * 6 + ["---"],
                [[r["variant"], " ".join(r["overrides"]) or "defaults",
                  str(r["steps"]), f"{r['images_per_second']:.0f}",
                  f"{r['classifier_fd']:.1f}", fid_or_dash(r["fid_live_weights"]), f"{r['precision_k5']:.3f}",
                  f"{r['recall_k5']:.3f}",
                  str(r["dropped_classes"] or "none")] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
