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
    return {"model": model, "fid": fid, "dropped_classes": list(dropped)}


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
        out.write_text('{"metrics": {"fid": %d}}' % (90 if "--no-ema" in cmd else 50))

    monkeypatch.setattr(common.subprocess, "run", fake_run)
    (tmp_path / "summary.json").write_text('{"steps": 3}')
    (tmp_path / "config.yaml").write_text("model:\n  ema_decay: 0.999\n")
    assert common.score_run(tmp_path, None)[1:] == ({"fid": 50}, 90)
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
