"""The light install (issue 38): the core leaves TensorBoard, matplotlib and full MLflow to extras, and a run on the
core install still writes its plots (drawn with Pillow) and says once, quietly, that TensorBoard is off."""

import json
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, tiny_data, train
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(requirements: list[str]) -> set[str]:
    """The distribution names of PEP 508 requirement strings (``"mlflow-skinny>=2.12"`` -> ``mlflow-skinny``)."""
    import re

    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower().replace("_", "-") for r in requirements}


def test_the_core_leaves_tensorboard_matplotlib_and_full_mlflow_to_extras():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = requirement_names(project["dependencies"])
    extras = {name: requirement_names(reqs) for name, reqs in project["optional-dependencies"].items()}
    assert not core & {"tensorboard", "matplotlib", "mlflow", "mlflow-skinny"}, core
    assert {"torch", "numpy", "pillow"} <= core  # Pillow draws the plots' fallback
    assert "tensorboard" in extras["tensorboard"] and "matplotlib" in extras["plots"]
    assert "mlflow-skinny" in extras["mlflow"] and "mlflow" not in extras["mlflow"]
    assert {"sqlalchemy", "alembic"} <= extras["mlflow"]  # MLflow's default store, sqlite:///mlflow.db
    assert {"tensorboard", "matplotlib", "mlflow-skinny"} <= extras["test"]  # CI installs .[test]
    assert project["optional-dependencies"]["all"] == ["ganvae[tensorboard,plots,explore,mlflow,wandb,onnx]"]


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib unimportable, as on the core install."""
    for name in ("matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)


def check_png(path: Path, min_size: tuple[int, int]) -> Image.Image:
    """The file is a whole PNG of at least ``min_size`` pixels with something drawn in colour on it."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    image = Image.open(path).convert("RGB")
    assert image.width >= min_size[0] and image.height >= min_size[1], image.size
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}
    assert (255, 255, 255) in colours and (0, 0, 0) in colours  # background, frame and text
    assert any(max(c) - min(c) > 60 for c in colours), "no coloured line or bar"
    return image


def test_losses_png_is_drawn_without_matplotlib(no_matplotlib, tmp_path):
    from ganvae.viz.plots import plot_losses

    csv = tmp_path / "losses.csv"
    csv.write_text("step,epoch,d_loss,g_loss\n" + "".join(f"{s},1,{1 + 1 / (s + 1):.4f},{0.5 + s % 7 / 10}\n"
                                                            for s in range(200)) + "200,1,,0.8\n")  # a blank: NaN
    out = plot_losses(csv, tmp_path / "losses.png", title="gan losses")
    check_png(out, (500, 300))  # 7 x 4.4 inches at 100 dpi: one panel per loss


@pytest.mark.parametrize("rows", ["", "0,1,0.7\n"], ids=["no rows", "one row"])
def test_losses_png_of_a_run_too_short_to_plot_is_still_an_image(no_matplotlib, tmp_path, rows):
    from ganvae.viz.plots import plot_losses

    (tmp_path / "losses.csv").write_text("step,epoch,loss\n" + rows)
    with Image.open(plot_losses(tmp_path / "losses.csv", tmp_path / "losses.png")) as image:
        image.verify()


def test_the_reports_plots_are_drawn_without_matplotlib(no_matplotlib, tmp_path):
    from ganvae.inference import report

    entries = []
    for i, label in enumerate(("gan", "vae")):
        run = tmp_path / label
        run.mkdir()
        (run / "metrics_during_training.csv").write_text(
            "step,epoch,train_seconds,fid\n" + "".join(f"{e * 100},{e},{e * 30},{(i + 1) * 600 / e ** 1.5}\n"
                                                       for e in range(1, 6)))
        histogram = [0.1 + (0.05 if c == i else -0.05 / 9) for c in range(10)]
        entries.append(report.RunEntry(label=label, path=run, result={"metrics": {"class_histogram": histogram}}))
    assert report._quality_plot(entries, tmp_path / "quality.png")
    check_png(tmp_path / "quality.png", (800, 250))
    report._class_plot(entries, [str(c) for c in range(10)], tmp_path / "classes.png")
    check_png(tmp_path / "classes.png", (500, 250))


def test_a_run_on_the_core_install_writes_its_plot_and_says_once_that_tensorboard_is_off(no_matplotlib, monkeypatch,
                                                                                         tmp_path):
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)
    cfg = tiny_config("gan", "run.tensorboard=true", "train.epochs=1")  # true: as run.tensorboard's default
    run = train(cfg, tmp_path / "run", data=tiny_data()).run_dir
    check_png(run / "losses.png", (500, 300))
    assert not (run / "tensorboard").exists()
    said = [line for line in (run / "train.log").read_text().splitlines() if "TensorBoard logging is off" in line]
    assert len(said) == 1 and " INFO " in said[0], said  # once, not a warning: the core install is supported
    assert "pip install 'ganvae[tensorboard]'" in said[0] and "run.tensorboard=false" in said[0]
    assert not any("ensorboard" in w for w in json.loads((run / "summary.json").read_text()).get("warnings", []))
