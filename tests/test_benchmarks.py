"""The benchmark scripts' own logic (not their measurements): targets are judged the way issue 10 states them."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    if str(BENCH) not in sys.path:  # as when run as `python benchmarks/NAME.py`: the scripts import bench_common
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(model, fid, dropped=()):
    return {"model": model, "classifier_fd": fid, "dropped_classes": list(dropped)}


def test_time_to_quality_verdicts():
    ttq = load("time_to_quality")
    rows = [row("dcgan", 40.0), row("gan", 90.0), row("conv-vae", 120.0), row("vae-gan", 100.0, [3]),
            row("TF tutorial", 400.0)]
    v = ttq.verdicts(rows)
    assert v["dcgan"].startswith("FID <= 50: yes") and "5x below TF: yes" in v["dcgan"]
    assert "FID <= 50: NO" in v["gan"] and "5x below TF: NO" in v["gan"]  # 90 * 5 > 400
    assert "FID <= 150: yes" in v["conv-vae"]
    assert "every class: NO [3]" in v["vae-gan"] and "sharper than conv-vae: yes" in v["vae-gan"]
    assert "TF tutorial" not in v


def test_time_to_quality_reads_a_run(tmp_path, capsys):
    ttq = load("time_to_quality")
    (tmp_path / "metrics_during_training.csv").write_text(
        "epoch,step,train_seconds,fid,class_entropy,confident_share,n_samples,test_nll_iwae10,dropped_classes\n"
        "1,100,60,80,0.9,0.5,2000,,2\n2,200,120,45,0.99,0.6,2000,,1\n3,300,180,40,0.99,0.6,2000,,0\n")
    assert ttq.read_run(str(tmp_path), 50) == 0
    assert "after 3.0 minutes" in capsys.readouterr().out  # the first point under 50 with every class covered
    assert ttq.read_run(str(tmp_path), 30) == 1


def test_score_run_compares_ema_only_for_runs_with_one(tmp_path, monkeypatch):
    """score_run reads the run's own config: a run with an EMA is also scored with --no-ema, others are not."""
    common = load("bench_common")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1]) if "--out" in cmd else tmp_path / "metrics.json"
        out.write_text('{"metrics": {"classifier_fd": %d}}' % (90 if "--no-ema" in cmd else 50))

    monkeypatch.setattr(common.subprocess, "run", fake_run)
    (tmp_path / "summary.json").write_text('{"steps": 3}')
    (tmp_path / "config.yaml").write_text("model:\n  ema_decay: 0.999\n")
    assert common.score_run(tmp_path, None)[1:] == ({"classifier_fd": 50}, 90)
    assert len(calls) == 2 and "--no-ema" in calls[1]
    for name in ("metrics.json", "metrics-live.json"):
        (tmp_path / name).unlink()
    (tmp_path / "config.yaml").write_text("model:\n  ema_decay: null\n")
    assert common.score_run(tmp_path, None)[2] is None and len(calls) == 3


def test_noise_use_prints_one_spread_per_class(monkeypatch, capsys, tiny_pretrained):
    from conftest import LIKE_ZOO

    noise_use = load("noise_use")
    cgan = tiny_pretrained(*LIKE_ZOO["cgan"])  # conditional, 10 classes
    monkeypatch.setattr(sys, "argv", ["noise_use.py", str(cgan)])
    noise_use.main()
    out = capsys.readouterr().out
    values = out.split("per class: [")[1].split("]")[0].split(", ")
    assert len(values) == 10 and all(0 < float(v) < 1 for v in values), out


def test_gpu_check_skips_cleanly_without_cuda(tmp_path):
    """benchmarks/gpu_check.sh on a machine without CUDA (CI): one line, the skip JSON, exit 0, in seconds."""
    import json
    import subprocess
    import time

    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: gpu_check.sh would run the whole GPU check (5 minutes)")
    out = tmp_path / "sub" / "gpu.json"
    start = time.monotonic()
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(out)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 60
    assert json.loads(out.read_text()) == {"skipped": "no CUDA device"}
    assert done.stdout.strip().splitlines() == [done.stdout.strip()] and "skipped: no CUDA device" in done.stdout


def test_gpu_speed_arguments_and_order():
    import pytest

    speed = load("gpu_speed")
    args = speed.parse_args([])
    assert (args.device, args.batch_size, args.dataset) == ("cuda", 512, "mnist-25k")
    assert args.models == list(speed.MODELS) and args.variants == ["fp32", "bf16", "compile", "cudagraphs"]
    for bad in (["--variants", "fp32,fp8"], ["--models", "gan,nope"], ["--steps", "0"]):
        with pytest.raises(SystemExit):
            speed.parse_args(bad)
    # the cheap variants of every family first, then the compiled ones family by family
    assert speed.plan(["gan", "vae"], ["compile", "fp32", "bf16"]) == [
        ("gan", "fp32"), ("gan", "bf16"), ("vae", "fp32"), ("vae", "bf16"), ("gan", "compile"), ("vae", "compile")]


def test_gpu_speed_limits_a_measurement():
    import time

    import pytest

    speed = load("gpu_speed")
    start = time.monotonic()
    with pytest.raises(speed.MeasurementTimeout):
        with speed.time_limit(0.2):
            time.sleep(5)
    assert time.monotonic() - start < 2
    with speed.time_limit(5):  # and a measurement within its limit leaves no alarm behind
        pass
    time.sleep(0.1)


def test_gpu_speed_smoke_on_cpu(tmp_path):
    """``--device cpu --steps 2``: every row is a rate or the reason it is missing (bf16 on a CPU without it)."""
    import json

    speed = load("gpu_speed")
    out = tmp_path / "speed.json"
    assert speed.main(["--device", "cpu", "--models", "vae", "--variants", "fp32,bf16", "--batch-size", "16",
                       "--steps", "2", "--warmup", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["batch_size"] == 16 and result["torch"]
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows.keys() == {"fp32", "bf16"}
    assert rows["fp32"]["steps"] == 2 and rows["fp32"]["images_per_s"] > 0 and rows["fp32"]["finite"]
    assert "images_per_s" in rows["bf16"] or "bf16" in rows["bf16"]["error"]


def test_time_to_quality_quick_form_needs_no_mnist_folder(tmp_path, monkeypatch):
    """``--dataset mnist-25k``: no --data-dir, no TensorFlow; the families train on the packaged data."""
    import json

    import pytest

    ttq = load("time_to_quality")
    with pytest.raises(SystemExit):
        ttq.main(["--models", "gan"])  # full MNIST still needs its folder
    trained = []

    def fake_train(name, args):
        trained.append((name, args.dataset, args.data_dir))
        return {**row(name, 40.0), "steps": 10, "minutes": 0.5, "images_per_second": 1000.0, "fid_live_weights": None,
                "precision_k5": 0.9, "recall_k5": 0.5, "curve": [], "run": str(tmp_path / name)}

    monkeypatch.setattr(ttq, "train_family", fake_train)
    monkeypatch.setattr(ttq, "plot", lambda rows, path: None)
    (tmp_path / "out").mkdir()
    assert ttq.main(["--models", "gan,dcgan", "--dataset", "mnist-25k", "--out", str(tmp_path / "out")]) == 0
    assert trained == [("gan", "mnist-25k", None), ("dcgan", "mnist-25k", None)]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["dataset"] == "mnist-25k" and [r["model"] for r in results["rows"]] == ["gan", "dcgan"]
