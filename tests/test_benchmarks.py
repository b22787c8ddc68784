"""The benchmark scripts' own logic (not their measurements): targets are judged the way issue 10 states them."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
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
