"""compare writes a report whose HTML parses and holds every section; demo runs end to end."""

import json
from html.parser import HTMLParser

import pytest
import yaml
from conftest import TINY, train, write_idx_dataset

from ganvae.config import build_config
from ganvae.inference.report import SECTIONS, compare


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.h2, self.imgs, self.stack = set(), [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.imgs.append(attrs["src"])
        self._in_h2 = tag == "h2"
        if tag not in ("img", "br", "meta"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = write_idx_dataset(root / "idx", n_train=96, n_test=40)
    runs = []
    for name in ("gan", "vae"):
        cfg = build_config(name, overrides=[*TINY[name], "data.dataset=mnist",
                                            f"data.data_dir={data}", "train.epochs=2",
                                            "train.batch_size=16", "train.progress=false", "run.tensorboard=false",
                                            "train.eval_every=1", "train.eval_samples=100", "run.n_fixed=16"])
        runs.append(train(cfg, root / name).run_dir)
    return runs


def test_compare_report_has_every_section(two_runs, tmp_path):
    report = compare(two_runs, tmp_path / "report", n_samples=200)
    parser = _Collector()
    parser.feed(report.read_text())
    assert parser.stack == ["html"] or parser.stack == []
    for section in SECTIONS:
        assert section in parser.h2, section
    assert all(src.startswith("data:image/") for src in parser.imgs)  # self-contained: no file or network links
    text = report.read_text()
    assert "Frechet distance" in text and "IWAE" in text and " +- " in text and 'id="verdict"' in text
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    # two-epoch models on 96 images: whatever they draw, a model the checks flag is marked, never best
    for label, problems in summary["untrusted"].items():
        assert problems and all(label not in v for k, v in summary["best"].items() if k != "test_nll_iwae")
    assert ("\u2020" in text) == bool(summary["untrusted"])
    assert summary["verdict"].startswith("With ")
    md = (tmp_path / "report" / "report.md").read_text()
    for section in SECTIONS:
        assert f"## {section}" in md
    assert (tmp_path / "report" / "quality.png").is_file()


def test_evaluate_writes_metrics_with_protocol(two_runs):
    import json

    metrics = json.loads((two_runs[1] / "metrics.json").read_text())  # written by compare
    assert metrics["run"] == str(two_runs[1])  # compare passes the loaded run; the file still names its folder
    assert metrics["protocol"]["n_samples"] == 200
    assert metrics["protocol"]["feature_network"]["sha256"]
    for key in ("classifier_fd", "classifier_kd", "precision_k5", "recall_k5", "density", "coverage",
                "classifier_score", "class_entropy",
                "memorisation_ratio", "test_elbo", "test_nll_iwae"):
        assert key in metrics["metrics"], key


def test_demo_end_to_end(tmp_path):
    from ganvae.errors import ConfigError, GanvaeError
    from ganvae.training.demo import demo

    lines = []
    # a budget of steps: the same run on any machine, so the test does not depend on the machine's speed
    report = demo(tmp_path / "demo", models=("gan", "vae"), n_samples=300, dataset="mnist-5k", steps=40,
                  overrides=["run.gif_fps=2", "train.eval_samples=100"], say=lines.append)
    assert report.is_file()
    for name in ("gan", "vae"):
        summary = json.loads((tmp_path / "demo" / name / "summary.json").read_text())
        assert (summary["steps"], summary["stopped_by"]) == (40, "steps")
        assert yaml.safe_load((tmp_path / "demo" / name / "config.yaml").read_text())["run"]["gif_fps"] == 2
    # 40 steps of 128 on mnist-5k's 4,000 images span 1.3 epochs: one quality point, at the first epoch's end
    assert (tmp_path / "demo" / "vae" / "metrics_during_training.csv").read_text().count("\n") == 2
    assert (tmp_path / "demo" / "gan" / "progress.gif").is_file()  # a grid even when no epoch completed
    # one line per stage with the time left, progress lines at each tenth of the steps, the report, the verdict
    stages = [line for line in lines if line.startswith("[")]
    assert stages[0].startswith("[1/3] training gan for 40 steps on mnist-5k (about ") and "min left" in stages[0]
    assert stages[2].startswith("[3/3] evaluating 2 models")
    progress = [line for line in lines if line.strip().startswith("vae: ")]
    assert progress and all("steps/s" in line and "min left" in line for line in progress)
    assert str(report) in lines[-2] and lines[-1].startswith("Verdict: ")
    with pytest.raises(Exception, match="not empty"):
        demo(tmp_path / "demo", models=("vae",))
    with pytest.raises(ConfigError, match="unknown model.*nope.*choose from gan, dcgan"):
        demo(tmp_path / "other", models=("gan", "nope"))
    with pytest.raises(ConfigError, match="no_such_key"):  # a bad --set before any training
        demo(tmp_path / "third", models=("gan",), overrides=["train.no_such_key=1"])
    assert not (tmp_path / "third" / "gan").exists()
    # data without a feature network at its size is refused before any training, with the size ganvae ships one at
    with pytest.raises(GanvaeError, match="no feature network for colour-digits at 3x28x28.*data.image_size=32"):
        demo(tmp_path / "fourth", models=("gan",), dataset="colour-digits")
    assert not (tmp_path / "fourth").exists()


def test_the_demo_command_takes_trains_flags():
    from ganvae.cli import build_parser

    args = build_parser().parse_args(["demo", "--set", "train.num_threads=1", "--data-dir", "d", "--dataset",
                                      "mnist", "--seed", "3", "--steps", "50"])
    assert (args.set, args.data_dir, args.dataset, args.seed, args.steps) == (["train.num_threads=1"], "d", "mnist",
                                                                                3, 50)


def test_observations_read_the_numbers():
    from pathlib import Path

    from ganvae.inference.report import RunEntry, best_per_row, observations

    def entry(label, fid, precision, recall, dropped, entropy, nll=None):
        metrics = {"classifier_fd": fid, "precision_k5": precision, "recall_k5": recall, "coverage": recall,
                   "class_entropy": entropy,
                   "dropped_classes": dropped, "class_histogram": [0.1] * 10, "memorisation_ratio": 1.0}
        if nll is not None:
            metrics.update(test_nll_iwae=nll, likelihood_protocol={"iwae_k": 50})
        return RunEntry(label, Path(label), {"metrics": metrics})

    entries = [entry("gan", 200.0, 0.9, 0.6, [], 0.97), entry("dcgan", 1800.0, 1.0, 0.0, list(range(9)), 0.0),
               entry("vae", 400.0, 0.92, 0.65, [], 0.97, nll=110.0)]
    text = " ".join(observations(entries))
    assert "gan has the lowest Frechet distance (200.00" in text
    assert "Cannot be trusted: dcgan's precision" in text  # its perfect precision is qualified
    assert "Mode collapse: dcgan's samples give classes [0, 1, 2, 3, 4, 5, 6, 7, 8]" in text
    assert "vae 110.0 nats" in text
    best = best_per_row(entries)
    assert best["classifier_fd"] == {"gan"} and best["recall_k5"] == {"vae"}
    assert best["precision_k5"] == {"vae"}  # dcgan's 1.0 comes from a collapsed model: never best


def _metrics(fid, fid_std, recall=0.6, dropped=(), entropy=0.97, sharpness=1.0):
    return {"classifier_fd": fid, "classifier_fd_std": fid_std, "precision_k5": 0.8, "recall_k5": recall,
            "recall_k5_std": 0.01, "coverage": recall,
            "coverage_std": 0.01, "class_entropy": entropy, "dropped_classes": list(dropped),
            "class_histogram": [0.1] * 10, "sharpness": sharpness}


def test_differences_within_the_noise_are_ties():
    from pathlib import Path

    from ganvae.inference.report import RunEntry, best_per_row, tied

    a, b, c = _metrics(100.0, 4.0), _metrics(108.0, 3.0), _metrics(130.0, 3.0)
    assert tied("classifier_fd", a, b) and not tied("classifier_fd", a, c)  # 8 < 2 * 5; 30 > 2 * 5
    entries = [RunEntry("a", Path("a"), {"metrics": a}), RunEntry("b", Path("b"), {"metrics": b}),
               RunEntry("c", Path("c"), {"metrics": c})]
    assert best_per_row(entries)["classifier_fd"] == {"a", "b"}


def test_verdict_names_the_leader_the_blur_and_the_collapsed():
    from pathlib import Path

    from ganvae.inference.report import RunEntry, verdict

    def entry(label, model, m):
        return RunEntry(label, Path(label), {"model": model, "metrics": m, "training": {"train_seconds": 90.0}})

    text = verdict([entry("gan", "gan", _metrics(60.0, 1.0, recall=0.8, sharpness=1.3)),
                    entry("vae", "vae", _metrics(250.0, 2.0, recall=0.7, sharpness=0.45)),
                    entry("dcgan", "dcgan", _metrics(900.0, 5.0, recall=0.02, dropped=range(8), entropy=0.3))])
    assert text.startswith("With 1.5 minutes of training each, the samples closest to real digits come from gan (GAN)")
    assert ("vae blurred ones (0.45" in text
            and "The widest variety of real digits is reached by gan (recall 0.800" in text)
    assert "Left out of this comparison: dcgan" in text and "dcgan 900" not in text


def test_class_grid_shows_a_dropped_class_as_a_grey_row():
    import torch

    from ganvae.inference.report import class_grid

    images = torch.rand(30, 1, 4, 4)
    probs = torch.nn.functional.one_hot(torch.tensor([0] * 20 + [2] * 10), 3).float()
    grid = class_grid(images, probs, [0, 1, 2], per_row=12)
    assert grid.shape == (36, 1, 4, 4)
    assert torch.equal(grid[:12], images[:12])  # class 0: its first 12 samples, in draw order
    assert (grid[12:24] == 0.35).all()  # class 1 never drawn: a grey row
    assert torch.equal(grid[24:34], images[20:30]) and (grid[34:] == 0.35).all()


def test_low_recall_with_balanced_classes_is_far_from_the_data_not_collapse():
    """Issue 38: a VAE drawing all ten digits (class entropy 0.993) was called collapsed because recall < 0.1."""
    from pathlib import Path

    from ganvae.inference.report import RunEntry, observations, verdict

    def entry(label, model, m, warnings=()):
        return RunEntry(label, Path(label), {"model": model, "metrics": m,
                                             "training": {"train_seconds": 12.0, "steps": 200,
                                                          "warnings": list(warnings)}})

    far = _metrics(300.0, 3.0, recall=0.002, entropy=0.993)
    gan = _metrics(200.0, 2.0, recall=0.5)
    slow = "training at 39 images/s, under 12.5% of what the default vae recipe reaches"
    entries = [entry("gan", "gan", gan), entry("vae", "vae", far, [slow])]
    text = verdict(entries) + " ".join(observations(entries))
    assert "collapsed" not in text and "Mode collapse" not in text
    assert "Left out of this comparison: vae, whose samples are far from the data (recall 0.002" in text
    assert "Far from the data: vae" in text and "This is not collapse" in text
    assert f"Warning from vae's training: {slow}" in text  # the run's own warning, next to its model
    # nothing trusted: the verdict says the training was too short, and why, not just "train longer"
    alone = verdict([entry("vae", "vae", far, [slow]), entry("vae2", "vae", far)])
    assert "the training was too short to judge these models after vae 200 steps, vae2 200 steps" in alone
    assert "the training of vae warned" in alone and "collapsed" not in alone
    collapsed = verdict([entry("dcgan", "dcgan", _metrics(900.0, 5.0, recall=0.02, dropped=range(8),
                                                          entropy=0.3))])
    assert "dcgan collapsed" in collapsed and "train longer (more steps)" in collapsed


def test_a_verdict_of_step_budgets_reads_the_same_on_any_machine():
    from pathlib import Path

    from ganvae.inference.report import RunEntry, verdict

    def entry(label, model, seconds, steps):
        return RunEntry(label, Path(label), {"model": model, "metrics": _metrics(100.0 + steps / 100, 1.0),
                                             "training": {"train_seconds": seconds, "steps": steps,
                                                          "stopped_by": "steps"}})

    idle = verdict([entry("gan", "gan", 60.0, 3000), entry("vae", "vae", 30.0, 8000)])
    busy = verdict([entry("gan", "gan", 150.0, 3000), entry("vae", "vae", 75.0, 8000)])
    assert idle == busy and idle.startswith("With gan 3,000, vae 8,000 steps of training, the samples")
