"""Time to quality: every family's default recipe and the TensorFlow DCGAN tutorial, side by side.

    .venv/bin/python benchmarks/time_to_quality.py --data-dir ../shared/data/mnist --minutes 10

Each family trains on full MNIST with its defaults for ``--minutes`` of wall-clock on ``--threads``
threads, one run at a time; every ``--eval-minutes`` it records FID and class coverage on 2,000 samples
(the time spent evaluating is excluded from the budget). At the end ``ganvae evaluate --n-samples 10000``
scores it. The TensorFlow tutorial (``benchmarks/tf_dcgan_tutorial.py``, run by ``--tf-python``, an
interpreter with ``tensorflow-cpu``: ``pip install -e ".[bench]"``) trains for the same minutes and its
samples are scored with ``ganvae evaluate images:DIR``, the same protocol. Writes ``OUT/results.json``,
``OUT/fid_vs_minutes.png`` and prints a markdown table with the targets of issue 10.

``--dataset mnist-25k --tf-python ''`` trains on the packaged subset instead (no download, no TensorFlow): the quick
form ``benchmarks/gpu_check.sh`` runs on a GPU, e.g. ``--models gan,dcgan --minutes 0.5 --eval-minutes 0.1``.

``--read RUN`` instead prints when an existing run (trained with ``train.eval_every`` or
``train.eval_interval_minutes``) first reached ``--fid`` (with every class covered).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_common import fid_or_dash, ganvae, print_table, score_run

from ganvae.metrics.registry import upgrade_keys

MODELS = ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn")
TARGET_FID = {"gan": 50.0, "dcgan": 50.0}  # the others: 150
TF_FACTOR = 5.0  # every family at least this many times lower FID than the tutorial


def curve(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics_during_training.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as fh:  # a run of an older ganvae says fid: read under the current names
        rows = [upgrade_keys(r) for r in csv.DictReader(fh)]
    return [{"minutes": float(r["train_seconds"]) / 60, "classifier_fd": float(r["classifier_fd"]),
             "dropped": int(r["dropped_classes"] or 0)} for r in rows]


def train_family(name: str, args) -> dict:
    run_dir = Path(args.out) / name
    if not (run_dir / "summary.json").is_file():
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        subprocess.run(ganvae("train", name, "--dataset", args.dataset, *data, "--epochs", "100000",
                              "--max-minutes", str(args.minutes), "--seed", str(args.seed), "--out", str(run_dir),
                              "--set", f"train.num_threads={args.threads}", "--set", "train.progress=false",
                              "--set", f"train.eval_interval_minutes={args.eval_minutes}",
                              "--set", "train.eval_samples=2000",
                              "--set", "train.checkpoint_every=100000"), check=True)
    summary, metrics, live = score_run(run_dir, args.data_dir)
    return {"fid_live_weights": live, "model": name, "steps": summary["steps"],
            "minutes": summary["train_seconds"] / 60,
            "images_per_second": summary["images_per_second"], "precision_used": summary.get("precision"),
            "classifier_fd": metrics["classifier_fd"], "dropped_classes": metrics["dropped_classes"],
            "precision_k5": metrics["precision_k5"],
            "recall_k5": metrics["recall_k5"], "curve": curve(run_dir), "run": str(run_dir)}


def train_tf(args) -> dict | None:
    out = Path(args.out) / "tf-tutorial"
    if not (out / "summary.json").is_file():
        if args.dataset != "mnist":
            print(f"skipping the TensorFlow tutorial: it trains on full MNIST, not {args.dataset}", file=sys.stderr)
            return None
        if not args.tf_python or not Path(args.tf_python).exists():
            print(f"skipping the TensorFlow tutorial: no interpreter with tensorflow at {args.tf_python!r}",
                  file=sys.stderr)
            return None
        subprocess.run([args.tf_python, str(Path(__file__).with_name("tf_dcgan_tutorial.py")),
                        "--data-dir", args.data_dir, "--minutes", str(args.minutes),
                        "--eval-minutes", str(args.eval_minutes), "--threads", str(args.threads),
                        "--seed", str(args.seed), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    points, final = [], None
    for p in summary["points"]:
        metrics_path = Path(p["folder"]) / "metrics.json"
        if not metrics_path.is_file():
            subprocess.run(ganvae("evaluate", f"images:{p['folder']}", "--dataset", "mnist",
                                  "--data-dir", args.data_dir, "--n-samples", "10000", "--out", str(metrics_path)),
                           check=True, stdout=subprocess.DEVNULL)
        m = json.loads(metrics_path.read_text())["metrics"]
        point = {"minutes": p["train_seconds"] / 60, "classifier_fd": m["classifier_fd"],
                 "dropped": len(m["dropped_classes"])}
        if p.get("final"):
            final = m
        else:
            points.append(point)
    return {"model": "TF tutorial", "steps": summary["steps"], "minutes": summary["train_seconds"] / 60,
            "images_per_second": summary["images_per_second"], "precision_used": "fp32",
            "classifier_fd": final["classifier_fd"],
            "dropped_classes": final["dropped_classes"], "precision_k5": final["precision_k5"],
            "recall_k5": final["recall_k5"],
            "curve": points, "run": str(out), "tensorflow": summary["tensorflow"], "fid_live_weights": None}


def verdicts(rows: list[dict]) -> dict[str, str]:
    by = {r["model"]: r for r in rows}
    tf = by.get("TF tutorial")
    out = {}
    for r in rows:
        if r["model"] == "TF tutorial":
            continue
        target = TARGET_FID.get(r["model"], 150.0)
        checks = [f"FID <= {target:g}: {'yes' if r['classifier_fd'] <= target else 'NO'}",
                  f"every class: {'yes' if not r['dropped_classes'] else 'NO ' + str(r['dropped_classes'])}"]
        if tf is not None:
            checks.append(f"5x below TF: {'yes' if r['classifier_fd'] * TF_FACTOR <= tf['classifier_fd'] else 'NO'}")
        if r["model"] == "vae-gan" and "conv-vae" in by:
            sharper = r['classifier_fd'] < by['conv-vae']['classifier_fd']
            checks.append(f"sharper than conv-vae: {'yes' if sharper else 'NO'}")
        out[r["model"]] = "; ".join(checks)
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        pts = [(p["minutes"], p["classifier_fd"]) for p in r["curve"]]
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=r["model"],
                        ls="--" if r["model"] == "TF tutorial" else "-")
        ax.plot([r["minutes"]], [r["classifier_fd"]], marker="*", ms=11,
                color=line.get_color())  # the final 10,000-sample FID
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (evaluation excluded)")
    ax.set_ylabel("FID, classifier features (log scale)")
    ax.set_title("FID against wall-clock minutes (dots: 2,000 samples; stars: final, 10,000)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def read_run(run: str, fid: float) -> int:
    """When an existing run first reached ``fid`` with every class covered."""
    points = curve(Path(run))
    for p in points:
        if p["classifier_fd"] < fid and p["dropped"] == 0:
            print(f"{run}: classifier FD {p['classifier_fd']:.2f} < {fid:g} with every class after {p['minutes']:.1f} "
                  f"minutes of training")
            return 0
    print(f"{run}: target not reached in {len(points)} evaluations"
          + (f" (last: FID {points[-1]['classifier_fd']:.2f} at {points[-1]['minutes']:.1f} min)" if points else ""))
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="folder with the four MNIST files")
    p.add_argument("--dataset", default="mnist",
                   help="the families' data (default mnist, from --data-dir); mnist-25k (packaged, no download) for "
                        "a quick check, as benchmarks/gpu_check.sh runs it; the TensorFlow tutorial needs mnist"),
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--eval-minutes", type=float, default=1.0)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tf-python", default=".venv-bench/bin/python", help="interpreter with tensorflow-cpu ('' to skip)")
    p.add_argument("--out", default="benchmarks/out/time_to_quality")
    p.add_argument("--read", metavar="RUN", help="only report when RUN first reached --fid")
    p.add_argument("--fid", type=float, default=50.0)
    args = p.parse_args(argv)
    if args.read:
        return read_run(args.read, args.fid)
    if args.dataset == "mnist" and not args.data_dir:
        p.error("--data-dir is required (the folder with MNIST's four files)")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for name in args.models.split(","):
        rows.append(train_family(name, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
    tf = train_tf(args)
    if tf is not None:
        rows.append(tf)
    out = Path(args.out)
    from ganvae.common.device import machine_description

    checks = verdicts(rows)
    (out / "results.json").write_text(json.dumps({"started": started, "minutes": args.minutes, "threads": args.threads,
                                                 "dataset": args.dataset,
                                                 "machine": machine_description(), "rows": rows, "checks": checks},
                                                 indent=2))
    plot(rows, out / "fid_vs_minutes.png")
    print(f"\n{args.minutes:g} minutes each, {args.threads} threads, seed {args.seed}, started {started}; "
          f"{machine_description()}\n")
    print_table(["model", "steps", "images/s", "FID (10,000 samples)", "FID, trained weights (no EMA)", "precision",
                 "recall", "classes under 1/3 share", "targets"], ["---"] + ["---:"] * 6 + ["---", "---"],
                [[r["model"], str(r["steps"]), f"{r['images_per_second']:.0f}", f"{r['classifier_fd']:.1f}",
                  fid_or_dash(r["fid_live_weights"]), f"{r['precision_k5']:.3f}", f"{r['recall_k5']:.3f}",
                  str(r["dropped_classes"] or "none"), checks.get(r["model"], "")] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
