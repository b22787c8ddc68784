"""What the benchmark scripts share: the ganvae command line, scoring a run (with and without its EMA), tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def ganvae(*args: str) -> list[str]:
    """The ``ganvae`` command of this interpreter, quiet."""
    return [sys.executable, "-m", "ganvae", "-q", *args]


def child_json(code: str, *args: object) -> dict:
    """Run ``code`` in a fresh interpreter (its own peak memory, nothing cached) with ``args`` as ``sys.argv[1:]``;
    its last line of output, parsed as JSON."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def score_run(run_dir: Path, data_dir: str | None, n_samples: int = 10000) -> tuple[dict, dict, float | None]:
    """``ganvae evaluate`` a run once (cached in its ``metrics.json``); returns (summary, metrics, FID of the
    trained weights). The last is the same run scored with ``--no-ema`` (EMA against none at exactly the same
    training), or None when the run has no moving average (its config says ``ema_decay`` is off or absent)."""
    data = ["--data-dir", data_dir] if data_dir else []
    base = ["evaluate", str(run_dir), "--n-samples", str(n_samples), "--iwae-k", "1", *data]
    if not (run_dir / "metrics.json").is_file():
        subprocess.run(ganvae(*base), check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    live = None
    if yaml.safe_load((run_dir / "config.yaml").read_text())["model"].get("ema_decay") is not None:
        live_path = run_dir / "metrics-live.json"
        if not live_path.is_file():
            subprocess.run(ganvae(*base, "--no-ema", "--out", str(live_path)), check=True, stdout=subprocess.DEVNULL)
        live = json.loads(live_path.read_text())["metrics"]["classifier_fd"]
    return summary, metrics, live


def fid_or_dash(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def print_table(header: list[str], align: list[str], rows: list[list[str]]) -> None:
    """A markdown table; ``align`` holds ``---`` or ``---:`` per column."""
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(align) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
