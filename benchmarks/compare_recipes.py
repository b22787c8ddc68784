"""Controlled recipe comparisons: the same family, budget, seed and threads; only the named settings differ.

    .venv/bin/python benchmarks/compare_recipes.py dcgan --minutes 3 --data-dir ../shared/data/mnist \\
        --variant "radford=model.beta1=0.5 model.lr_generator=2e-4 model.lr_discriminator=2e-4" \\
        --variant "radford+ema=model.beta1=0.5 model.lr_generator=2e-4 model.lr_discriminator=2e-4 model.ema_decay=0.999"

Each variant is ``NAME=SECTION.KEY=VALUE ...`` (``--set`` overrides, separated by spaces; ``NAME=`` alone is the
family's defaults). Every run trains on full MNIST for ``--minutes`` of wall-clock (the run's own budget, so a
faster recipe takes more steps), then ``ganvae evaluate --n-samples N`` scores it (FID on the shipped classifier's
features, class coverage, precision/recall). Runs go one after the other, never two at once, so their speeds are
comparable. Prints a markdown table and writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run_variant(family: str, name: str, overrides: list[str], args) -> dict:
    run_dir = Path(args.out) / f"{family}-{name}"
    cmd = [sys.executable, "-m", "ganvae", "-q", "train", family, "--dataset", "mnist", "--max-minutes", str(args.minutes),
           "--epochs", "100000", "--seed", str(args.seed), "--out", str(run_dir), "--set", f"train.num_threads={args.threads}",
           "--set", "train.progress=false", "--set", "train.checkpoint_every=100000"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    for o in overrides:
        cmd += ["--set", o]
    if not (run_dir / "summary.json").is_file():
        subprocess.run(cmd, check=True)
    ev = [sys.executable, "-m", "ganvae", "-q", "evaluate", str(run_dir), "--n-samples", str(args.n_samples),
          "--iwae-k", "1"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    if not (run_dir / "metrics.json").is_file():
        subprocess.run(ev, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((run_dir / "summary.json").read_text())
    m = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    live = None
    if any("ema_decay=" in o and not o.endswith("=null") for o in overrides) or args.score_live:
        # the same run scored with its trained weights instead of their average: EMA against none at equal training
        live_path = run_dir / "metrics-live.json"
        if not live_path.is_file():
            subprocess.run(ev + ["--no-ema", "--out", str(live_path)], check=True, stdout=subprocess.DEVNULL)
        live = json.loads(live_path.read_text())["metrics"]["fid"]
    n_classes = sum(1 for v in m["class_histogram"] if v > 0.1 / len(m["class_histogram"]))
    return {"variant": name, "overrides": overrides, "steps": summary["steps"], "images_per_second": summary["images_per_second"],
            "fid": m["fid"], "precision": m["precision"], "recall": m["recall"], "class_entropy": m["class_entropy"],
            "dropped_classes": m["dropped_classes"], "classes_seen": n_classes, "run": str(run_dir), "fid_live_weights": live,
            "command": " ".join(cmd)}


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
    p.add_argument("--score-live", action="store_true", help="also score the trained weights (when the defaults use EMA)")
    args = p.parse_args(argv)
    rows = []
    start = time.strftime("%Y-%m-%d %H:%M")
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        rows.append(run_variant(args.family, name, rest.split(), args))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results-{args.family}.json").write_text(json.dumps({"started": start, "minutes": args.minutes, "rows": rows}, indent=2))
    print(f"\n{args.family}, {args.minutes:g} min each, seed {args.seed}, {args.threads} threads, FID on {args.n_samples} samples\n")
    print("| variant | settings | steps | images/s | FID | FID, trained weights | precision | recall | classes under 1/3 share |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        live = f"{r['fid_live_weights']:.1f}" if r["fid_live_weights"] is not None else "-"
        print(f"| {r['variant']} | {' '.join(r['overrides']) or 'defaults'} | {r['steps']} | {r['images_per_second']:.0f} | "
              f"{r['fid']:.1f} | {live} | {r['precision']:.3f} | {r['recall']:.3f} | {r['dropped_classes'] or 'none'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
