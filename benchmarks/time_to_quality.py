"""Minutes of training until a run first reaches a quality target, read from its in-training metrics.

    .venv/bin/python benchmarks/time_to_quality.py runs/docs-dcgan --fid 30
    .venv/bin/python benchmarks/time_to_quality.py runs/ttq-vae --nll 100

The run must have been trained with ``--set train.eval_every=1`` (FID and class coverage on
``train.eval_samples`` samples every epoch; an IWAE k=10 NLL bound on 2,000 binarised test images
for encoder models). Times are training seconds (in-training evaluation excluded).
"""

import argparse
import csv
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--fid", type=float, help="target: Frechet distance below this, with full class coverage")
    p.add_argument("--nll", type=float, help="target: test NLL bound (nats) below this")
    args = p.parse_args(argv)
    path = Path(args.run) / "metrics_during_training.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        # full class coverage: no class under a third of its share (column present in newer runs),
        # else a normalised class entropy of at least 0.99 (one class at a third of its share gives 0.986)
        covered = int(r["dropped_classes"]) == 0 if r.get("dropped_classes") not in (None, "") else float(r["class_entropy"]) >= 0.99
        ok_fid = args.fid is None or (float(r["fid"]) < args.fid and covered)
        ok_nll = args.nll is None or (r.get("test_nll_iwae10") not in (None, "") and float(r["test_nll_iwae10"]) < args.nll)
        if ok_fid and ok_nll:
            print(f"{args.run}: target reached after epoch {r['epoch']} (step {r['step']}), "
                  f"{float(r['train_seconds']) / 60:.1f} minutes of training: FID {float(r['fid']):.2f}, "
                  f"class entropy {float(r['class_entropy']):.3f}" + (f", NLL {float(r['test_nll_iwae10']):.1f}" if r.get("test_nll_iwae10") else ""))
            return 0
    last = rows[-1] if rows else {}
    print(f"{args.run}: target not reached in {len(rows)} evaluations (last: {dict(last)})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
