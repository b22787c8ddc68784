#!/usr/bin/env bash
# The GPU path, in one run of under 5 minutes on one GPU (issue 38, item 9):
#
#     bash benchmarks/gpu_check.sh [OUT.json]        (default benchmarks/out/gpu_check.json)
#
# 1. tests:  the tests that need CUDA (every tests/test_*.py skipped without it: tests/test_cuda.py);
# 2. speed:  images/s of every family's default recipe at batch 512, in fp32, bf16, with train.compile=true and with
#            CUDA graphs (benchmarks/gpu_speed.py);
# 3. ttq:    time to quality of gan and dcgan, short: 0.5 minutes each on the packaged mnist-25k, FID every 0.1
#            minutes, no TensorFlow (benchmarks/time_to_quality.py);
# 4. demo:   the demo's time (`ganvae demo -q --out DIR`, its own defaults).
#
# Each part runs under its own `timeout` (seconds; from the environment): GPU_CHECK_TESTS_S=40, GPU_CHECK_SPEED_S=80,
# GPU_CHECK_TTQ_S=120, and the demo gets what is left of GPU_CHECK_TOTAL_S=280 (at least 30; or GPU_CHECK_DEMO_S).
# A part cut short is recorded as timed out with what it finished. Everything goes into OUT.json with the device,
# torch's version and the date; each part's log and files stay in the folder printed at the start (beside OUT.json).
# Exit status 1 when the tests fail or a part fails other than by its time limit.
#
# Without CUDA (CI has no GPU) it says so in one line, writes {"skipped": "no CUDA device"} to OUT.json and exits 0.
set -euo pipefail

started=$(date +%s)
caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root
out=benchmarks/out/gpu_check.json
if [ $# -ge 1 ]; then
    case $1 in
        /*) out=$1 ;;
        *) out=$caller_dir/$1 ;;  # relative to where it was called from
    esac
fi
if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python; fi
mkdir -p "$(dirname "$out")"

cuda=$("$py" -c 'import torch; print(int(torch.cuda.is_available()))')  # a broken torch fails the script here
if [ "$cuda" != 1 ]; then
    echo "gpu_check: skipped: no CUDA device (torch.cuda.is_available() is False for $py)"
    printf '{"skipped": "no CUDA device"}\n' > "$out"
    exit 0
fi

tests_s=${GPU_CHECK_TESTS_S:-40}
speed_s=${GPU_CHECK_SPEED_S:-80}
ttq_s=${GPU_CHECK_TTQ_S:-120}
total_s=${GPU_CHECK_TOTAL_S:-280}
work=$(mktemp -d "${out%.json}.XXXXXX")
echo "gpu_check: logs and runs in $work"

# part NAME LIMIT_S COMMAND...: COMMAND under `timeout`, its output in $work/NAME.log; "rc start end limit" in
# $work/NAME.status (rc 124 or 137: stopped at the limit)
part() {
    local name=$1 limit=$2 rc=0 t0
    shift 2
    t0=$(date +%s.%N)
    echo "gpu_check: $name (limit ${limit} s)"
    timeout --kill-after=5 "$limit" "$@" > "$work/$name.log" 2>&1 || rc=$?
    echo "$rc $t0 $(date +%s.%N) $limit" > "$work/$name.status"
    echo "gpu_check: $name: exit $rc after $(( $(date +%s) - ${t0%.*} )) s"
}

mapfile -t cuda_tests < <(grep -lE 'skipif\(not torch\.cuda\.is_available\(\)' tests/test_*.py || true)
if [ ${#cuda_tests[@]} -gt 0 ]; then
    part tests "$tests_s" "$py" -m pytest -q -p no:cacheprovider --junitxml="$work/tests.xml" "${cuda_tests[@]}"
fi
part speed "$speed_s" "$py" benchmarks/gpu_speed.py --device cuda --batch-size 512 --limit-s 40 \
    --out "$work/speed.json"
part ttq "$ttq_s" "$py" benchmarks/time_to_quality.py --models gan,dcgan --dataset mnist-25k --tf-python '' \
    --minutes 0.5 --eval-minutes 0.1 --threads "$(nproc)" --out "$work/ttq"
left=$(( total_s - ($(date +%s) - started) ))
part demo "${GPU_CHECK_DEMO_S:-$(( left > 30 ? left : 30 ))}" "$py" -m ganvae demo -q --out "$work/demo"

"$py" - "$out" "$work" ${cuda_tests[@]+"${cuda_tests[@]}"} <<'EOF'
"""Gather the parts into one JSON; exit 1 when the tests failed or a part failed other than by its time limit."""
import csv
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from ganvae.common.device import machine_description

out, work, cuda_tests = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
TARGET_FID = {"gan": 50.0, "dcgan": 50.0}  # time_to_quality.py's targets (issue 10)


def status(name):
    path = work / f"{name}.status"
    if not path.is_file():
        return {"ran": False}
    rc, t0, t1, limit = path.read_text().split()
    rc = int(rc)
    return {"rc": rc, "seconds": round(float(t1) - float(t0), 1), "limit_s": float(limit),
            "timed_out": rc in (124, 137), "log": str(work / f"{name}.log")}


def read_json(path):
    return json.loads(path.read_text()) if path.is_file() else None


def tests():
    part = {**status("tests"), "files": cuda_tests}
    xml = work / "tests.xml"
    if xml.is_file():
        suite = ET.parse(xml).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        part.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
        part["failed"] = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                          if case.find("failure") is not None or case.find("error") is not None]
    return part


def speed():
    part = status("speed")
    data = read_json(work / "speed.json")
    if data:
        part.update({k: data[k] for k in ("batch_size", "warmup", "steps", "dataset")})
        part["rows"] = data["rows"]
        part["images_per_s"] = {f"{r['model']} {r['variant']}": round(r["images_per_s"]) for r in data["rows"]
                                if "images_per_s" in r}
    return part


def first_under(curve, target):
    """Training minutes when FID first fell under ``target`` with every class covered (as --read says), or None."""
    return next((p["minutes"] for p in curve if p["classifier_fd"] < target and p["dropped"] == 0), None)


def ttq():
    part = status("ttq")
    runs = []
    for name in ("gan", "dcgan"):
        run = work / "ttq" / name
        summary = read_json(run / "summary.json")
        if summary is None:
            continue
        row = {"model": name, "steps": summary.get("steps"), "minutes": summary.get("train_seconds", 0) / 60,
               "images_per_second": summary.get("images_per_second")}
        curve_path = run / "metrics_during_training.csv"
        if curve_path.is_file():
            with open(curve_path, newline="") as fh:
                curve = [{"minutes": float(r["train_seconds"]) / 60, "classifier_fd": float(r["classifier_fd"]),
                          "dropped": int(r["dropped_classes"] or 0)} for r in csv.DictReader(fh)]
            row.update(curve=curve, target_fid=TARGET_FID[name],
                       minutes_to_target=first_under(curve, TARGET_FID[name]))
        metrics = read_json(run / "metrics.json")
        if metrics:
            row.update({k: metrics["metrics"].get(k) for k in ("classifier_fd", "dropped_classes", "precision_k5", "recall_k5")})
        runs.append(row)
    part["runs"] = runs
    results = read_json(work / "ttq" / "results.json")
    if results:
        part["checks"] = results.get("checks")
    return part


def demo():
    part = status("demo")
    reports = sorted((work / "demo").rglob("report.json")) if (work / "demo").is_dir() else []
    if reports:
        part["verdict"] = read_json(reports[0]).get("verdict")
    return part


result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_description(),
          "work": str(work), "tests": tests(), "speed": speed(), "time_to_quality": ttq(), "demo": demo()}
out.write_text(json.dumps(result, indent=2))
parts = [result[k] for k in ("tests", "speed", "time_to_quality", "demo")]
failed = [name for name, p in zip(("tests", "speed", "time_to_quality", "demo"), parts)
          if p.get("ran", True) and p.get("rc") != 0 and not (name != "tests" and p.get("timed_out"))]
if cuda_tests and not result["tests"].get("tests"):
    failed.append("tests (no results)")
print(f"gpu_check: {result['device']}, torch {result['torch']}: {out}"
      + (f"; FAILED: {', '.join(failed)}" if failed else ""))
sys.exit(1 if failed else 0)
EOF
