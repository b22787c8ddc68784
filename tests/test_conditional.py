"""Class conditioning (model.conditional): every family builds, trains, saves and loads conditionally; the label
reaches the generator, the encoder and the discriminator; the commands and the API ask for classes; the conditional
metrics score a perfect and a class-ignoring sampler as they should; bad requests get clear errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import grey_image, tiny_config, tiny_data, tiny_flags, train, train_cli_runs
from PIL import Image

import ganvae
from ganvae import inference, storage
from ganvae.cli import main
from ganvae.errors import GanvaeError
from ganvae.inference import tasks as operations
from ganvae.metrics import core
from ganvae.models.step import StepContext
from ganvae.registry import build_model, model_names

COND = "model.conditional=true"
FAMILIES = model_names()


def conditional_model(name: str, *extra: str):
    torch.manual_seed(0)
    return build_model(tiny_config(name, COND, *extra), (1, 16, 16))


@pytest.mark.parametrize("name", FAMILIES)
def test_unconditional_networks_are_unchanged(name):
    """Off by default: the same parameter names as before conditioning existed, so old checkpoints load."""
    torch.manual_seed(0)
    model = build_model(tiny_config(name), (1, 16, 16))
    assert not model.conditional
    assert not [k for k in model.state_dict() if "embedding" in k or "classifier" in k]


@pytest.mark.parametrize("name", FAMILIES)
def test_the_label_changes_what_the_model_draws(name):
    model = conditional_model(name)
    z = model.latent_prior.draw(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # fresh embeddings are random, so a different class must give different images
        for p in model.parameters():
            if p.dim() == 2 and p.shape[0] == 10:  # the class embeddings (num_classes rows)
                p.normal_()
    a = model.generate(z, torch.tensor([1, 1, 1, 1]))
    b = model.generate(z, torch.tensor([7, 7, 7, 7]))
    assert a.shape == (4, 1, 16, 16) and not torch.allclose(a, b)
    assert torch.equal(a, model.generate(z, torch.tensor([1, 1, 1, 1])))  # and the same class, the same images


@pytest.mark.parametrize("name", FAMILIES)
def test_the_class_embedding_starts_at_its_family_scale(name):
    """A GAN generator's class embedding starts small (std 0.02: with N(0, 1) the conditional DCGAN drew one image per
    class whatever its noise, benchmarks/cdcgan_diversity.py); a decoder's at N(0, 1) (at 0.02 the VAE-GAN
    decoder read the class from z and ignored the label); model.class_embedding_std sets it."""
    from ganvae.models.conditioning import LabelledGenerator

    expected = 0.02 if name in ("gan", "dcgan") else 1.0
    for extra, std in (((), expected), (("model.class_embedding_std=0.3",), 0.3)):
        generators = [m for m in conditional_model(name, *extra).modules() if isinstance(m, LabelledGenerator)]
        assert generators and all(0.5 * std < float(g.embedding.weight.detach().std()) < 1.6 * std for g in generators)


@pytest.mark.parametrize("name", ["vae", "conv-vae", "vae-gan", "cppn"])
def test_the_encoder_sees_the_label(name):
    model = conditional_model(name)
    with torch.no_grad():
        model.encoder.embedding.weight.normal_()
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    mu1, _ = model.encode(x, torch.tensor([0, 0, 0]))
    mu2, _ = model.encode(x, torch.tensor([5, 5, 5]))
    assert not torch.allclose(mu1, mu2)


@pytest.mark.parametrize("name,extra", [("gan", ()), ("dcgan", ()), ("vae-gan", ()), ("cppn", ()),
                                        ("dcgan", ("model.class_conditioning=acgan",))])
def test_the_discriminator_sees_the_label(name, extra):
    model = conditional_model(name, *extra).eval()
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for m in model.discriminator.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_()
        out_a = model.discriminator(x, torch.tensor([0, 0, 0, 0]))
        out_b = model.discriminator(x, torch.tensor([9, 9, 9, 9]))
    if "acgan" in "".join(extra):  # the auxiliary classifier: a logit and 10 class logits, labels not an input
        assert out_a.shape == (4, 11) and torch.equal(out_a, out_b)
    else:
        assert out_a.shape == (4, 1) and not torch.allclose(out_a, out_b)


@pytest.mark.parametrize("name", FAMILIES)
def test_training_steps_use_the_labels(name):
    """The same batch with other labels gives other losses (the label reaches the objective)."""
    losses = []
    for labels in (torch.arange(8) % 10, (torch.arange(8) + 3) % 10):
        model = conditional_model(name)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.Embedding):
                    m.weight.normal_()
        opt = model.make_optimizers()
        x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
        x = x * 2 - 1 if model.value_range == "tanh" else x
        torch.manual_seed(5)
        out = model.training_step(x, opt, StepContext(0, 0, 0.0, labels=labels))
        losses.append({k: float(v) for k, v in out.items()})
    assert losses[0] != losses[1]
    with pytest.raises(ValueError, match="labels"):
        conditional_model(name).training_step(torch.zeros(8, 1, 16, 16), conditional_model(name).make_optimizers(),
                                              StepContext(0, 0, 0.0))


@pytest.mark.parametrize("name", FAMILIES)
def test_train_save_load_sample_each_family(tmp_path, name):
    run = train(tiny_config(name, COND, "train.epochs=1"), tmp_path / name, data=tiny_data()).run_dir
    grid = np.asarray(Image.open(run / "samples/epoch_0001.png").convert("L"))
    # the per-epoch grid is a class grid: 10 rows of 16x16 images with 2-pixel padding
    assert grid.shape[0] == 10 * 16 + 11 * 2
    loaded = storage.load(run)
    assert loaded.model.conditional
    a = loaded.model.sample(5, torch.Generator().manual_seed(0), labels=torch.tensor([3] * 5))
    b = loaded.model.sample(5, torch.Generator().manual_seed(0), labels=torch.tensor([3] * 5))
    assert torch.equal(a, b) and a.shape == (5, 1, 16, 16)


def test_exact_resume_of_a_conditional_run(tmp_path):
    full = train(tiny_config("gan", COND, "train.epochs=2"), tmp_path / "full", data=tiny_data())
    train(tiny_config("gan", COND, "train.epochs=1"), tmp_path / "part", data=tiny_data())
    train(tiny_config("gan", COND, "train.epochs=2"), tmp_path / "part", data=tiny_data(), resume=True)
    assert (tmp_path / "part/losses.csv").read_text() == (full.run_dir / "losses.csv").read_text()


def test_classes_subset_and_wrong_num_classes(tmp_path):
    data = tiny_data().select_classes([3, 7])
    run = train(tiny_config("vae", COND, "train.epochs=1", "data.classes=[3, 7]"), tmp_path / "sub", data=data).run_dir
    loaded = storage.load(run)
    assert inference.run_classes(loaded) == [3, 7]
    with pytest.raises(GanvaeError, match=r"trained on classes \[3, 7\]"):
        inference.check_digits(loaded, [5])
    with pytest.raises(ValueError, match=r"labels \[5\]: this model was trained on classes \[3, 7\]"):
        loaded.model.sample(2, labels=5)  # the model itself knows its classes, not only the command line
    assert loaded.model.sample(2, labels=7).shape == (2, 1, 16, 16)
    with pytest.raises(GanvaeError, match=r"data.classes is \[3, 7\].*num_classes=8"):  # embeddings for 0, 1 only
        train(tiny_config("vae", COND, "train.epochs=1", "data.classes=[3, 7]", "model.num_classes=2"),
              tmp_path / "small", data=data)
    with pytest.raises(GanvaeError, match="model.num_classes=10"):
        train(tiny_config("vae", COND, "train.epochs=1"), tmp_path / "bad", data=data)
    assert not (tmp_path / "bad").exists()  # refused before the run folder was made


def test_labels_of_the_wrong_kind_are_refused():
    model = conditional_model("gan")
    z = model.latent_prior.draw(4)
    with pytest.raises(ValueError, match=r"3 labels for 4 samples.*among \[0, 1, 2"):
        model.generate(z, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels \[10\]: this model was trained on classes \[0, 1,"):
        model.generate(z, torch.tensor([1, 2, 3, 10]))
    with pytest.raises(ValueError, match="is conditional"):
        model.generate(z)
    with pytest.raises(ValueError, match="whole class numbers"):
        model.generate(z, torch.tensor([1.0, 2.0, 3.0, 6.9]))
    with pytest.raises(ValueError, match="non-negative, sum to 1"):
        model.generate(z, torch.full((4, 10), 0.5))
    assert torch.equal(model.generate(z, 7), model.generate(z, torch.full((4,), 7)))  # one class for all
    plain = build_model(tiny_config("gan"), (1, 16, 16))
    with pytest.raises(ValueError, match="not conditional"):
        plain.generate(z[:, : plain.latent_dim], torch.tensor([1, 2, 3, 4]))


def test_class_weights_blend_two_classes():
    model = conditional_model("dcgan")
    z = model.latent_prior.draw(1).repeat(3, 1)
    w = torch.zeros(3, 10)
    w[0, 1], w[1, 1], w[1, 7], w[2, 7] = 1, 0.5, 0.5, 1
    blend = model.generate(z, w)
    assert torch.allclose(blend[0], model.generate(z[:1], torch.tensor([1]))[0], atol=1e-6)
    assert torch.allclose(blend[2], model.generate(z[:1], torch.tensor([7]))[0], atol=1e-6)
    x = torch.rand(3, 1, 16, 16) * 2 - 1  # the projection discriminator takes the same weights
    one_hot = model.discriminator(x, torch.tensor([1, 1, 7]))
    assert torch.allclose(model.discriminator(x, torch.eye(10)[[1, 1, 7]]), one_hot, atol=1e-6)


def test_spectral_norm_covers_the_class_embedding():
    """Miyato & Koyama (2018) normalise the projection's class embedding with the layers."""
    model = conditional_model("dcgan", "model.spectral_norm=true")
    embedding = model.discriminator.embedding
    assert "weight" in embedding.parametrizations
    model.training_step(torch.rand(4, 1, 16, 16) * 2 - 1, model.make_optimizers(),
                        StepContext(0, 0, 0.0, labels=torch.tensor([1, 2, 3, 4])))
    assert torch.linalg.matrix_norm(embedding.weight.detach(), ord=2) <= 1.05


def test_balanced_labels_continue_across_ranks():
    from ganvae.models.conditioning import balanced_labels

    whole = balanced_labels(14, [3, 5, 7])
    assert torch.equal(torch.cat([balanced_labels(7, [3, 5, 7], start=r * 7) for r in range(2)]), whole)
    assert whole.bincount(minlength=8)[[3, 5, 7]].tolist() == [5, 5, 4]


# ---- metrics on synthetic cases: real test images stand in for a perfect sampler
@pytest.fixture(scope="module")
def real():
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.metrics.classifier import load_classifier
    from ganvae.metrics.evaluate import reference_features

    data = load_dataset(DataConfig(dataset="mnist-5k"))
    fnet = load_classifier("mnist")
    return data, fnet, reference_features(data, fnet)


def test_a_perfect_conditional_sampler_scores_full_accuracy(real):
    from ganvae.common.pixels import uint8_to_unit
    from ganvae.metrics.evaluate import conditional_metrics

    data, fnet, ref = real
    x, y = uint8_to_unit(data.test_images), data.test_labels
    perfect = conditional_metrics(x, y, data, fnet, reference=ref)
    assert perfect["conditional_accuracy"] > 0.97
    assert min(perfect["conditional_accuracy_per_class"].values()) > 0.9
    assert perfect["classifier_intra_fd"] < 1.0  # the same images as the reference
    ignoring = conditional_metrics(x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))], data,
                                   fnet, reference=ref)  # the asked class has nothing to do with the image
    assert 0.05 < ignoring["conditional_accuracy"] < 0.16
    assert ignoring["classifier_intra_fd"] > 20 * max(perfect["classifier_intra_fd"], 0.5)
    assert perfect["classifier_intra_fd_min_images"] == int(y.bincount().min())


def test_intra_fid_without_a_shared_class_is_none_not_nan():
    m = core.intra_class_fid(torch.randn(6, 4), torch.tensor([0, 0, 0, 1, 1, 1]), torch.randn(6, 4),
                             torch.tensor([2, 2, 2, 3, 3, 3]))
    assert m["intra_fid"] is None and m["intra_fid_per_class"] == {} and m["intra_fid_min_images"] == 0
    assert core.conditional_accuracy(torch.empty(0, 3),
                                     torch.empty(0, dtype=torch.long))["conditional_accuracy"] is None


def test_conditional_accuracy_counts_per_class():
    probs = torch.eye(3)[[0, 0, 1, 2, 2, 2]].double()
    asked = torch.tensor([0, 1, 1, 2, 2, 0])
    m = core.conditional_accuracy(probs, asked)
    assert m["conditional_accuracy_per_class"] == {0: 0.5, 1: 0.5, 2: 1.0}
    assert m["conditional_accuracy"] == pytest.approx(2 / 3)


# ---- the commands
@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    return train_cli_runs(tmp_path_factory.mktemp("cond"), ("dcgan", "vae", "cppn"), "--epochs", "1", "--batch-size",
                          "16", "--set", "train.progress=false", "--set", "run.tensorboard=false", "--set", COND)


def test_sample_digit_and_class_grid(cli_runs, tmp_path):
    assert main(["sample", str(cli_runs["dcgan"]), "--digit", "7", "-n", "8", "--out", str(tmp_path / "d7.png")]) == 0
    assert main(["sample", str(cli_runs["dcgan"]), "-n", "30", "--out", str(tmp_path / "grid.png")]) == 0
    grid = grey_image(tmp_path / "grid.png")
    size = 28  # MNIST files: the images keep their size
    assert grid.shape == (10 * size + 11 * 2, 3 * size + 4 * 2)  # 10 class rows, 30 / 10 = 3 columns
    # columns share the noise, rows differ by class
    cells = [[grid[2 + r * (size + 2): 2 + r * (size + 2) + size, 2 + c * (size + 2): 2 + c * (size + 2) + size]
              for c in range(3)] for r in range(10)]
    assert any(not np.array_equal(cells[0][0], cells[r][0]) for r in range(1, 10))


def test_interpolate_within_and_between_digits(cli_runs, tmp_path):
    run = str(cli_runs["dcgan"])
    assert main(["interpolate", run, "--digit", "3", "--points", "2", "--steps", "3", "--walks", "2",
                 "--out", str(tmp_path / "w3.gif")]) == 0
    assert main(["interpolate", run, "--between-digits", "1,7", "--steps", "5", "--grid", "--points", "2",
                 "--out", str(tmp_path / "b.png")]) == 0
    assert grey_image(tmp_path / "b.png").shape[1] == 6 * 28 + 7 * 2
    assert main(["interpolate", run, "--between-digits", "1,7", "--steps", "3", "--walks", "2",
                 "--out", str(tmp_path / "b.gif")]) == 0


def test_reconstruct_as_another_digit_and_render_a_digit(cli_runs, tmp_path):
    data = str(cli_runs["data"])
    assert main(["reconstruct", str(cli_runs["vae"]), "-n", "4", "--as-digit", "5", "--data-dir", data,
                 "--out", str(tmp_path / "as5.png")]) == 0
    assert main(["reconstruct", str(cli_runs["vae"]), "-n", "4", "--data-dir", data,
                 "--out", str(tmp_path / "r.png")]) == 0
    assert not np.array_equal(grey_image(tmp_path / "as5.png"), grey_image(tmp_path / "r.png"))
    assert main(["render", str(cli_runs["cppn"]), "--digit", "4", "--size", "40x30",
                 "--out", str(tmp_path / "c.png")]) == 0
    assert grey_image(tmp_path / "c.png").shape == (30, 40)


def test_bad_digit_requests_name_the_classes(cli_runs, tmp_path, capsys):
    unconditional = tmp_path / "plain"
    assert main(["-q", "train", "gan", "--dataset", "mnist", "--data-dir", str(cli_runs["data"]), "--out",
                 str(unconditional), "--epochs", "1", "--batch-size", "16", "--set", "train.progress=false",
                 *tiny_flags("gan")]) == 0
    capsys.readouterr()
    assert main(["sample", str(unconditional), "--digit", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "not conditional" in capsys.readouterr().err
    assert main(["sample", str(cli_runs["dcgan"]), "--digit", "12", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "trained on classes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and the reason
        main(["interpolate", str(cli_runs["dcgan"]), "--between-digits", "1", "--out", str(tmp_path / "x.gif")])
    assert exit_info.value.code == 2 and "give two classes as A,B" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.gif").exists()


def test_python_api_takes_labels(cli_runs):
    pipe = ganvae.load(cli_runs["dcgan"])
    assert pipe.classes == list(range(10))
    assert pipe.sample(4, seed=0, labels=7).tensor.shape == (4, 1, 28, 28)
    assert torch.equal(pipe.sample(3, seed=0, labels=[1, 2, 3]).tensor, pipe.sample(3, seed=0, labels=[1, 2, 3]).tensor)
    assert pipe.class_grid(cols=2).tensor.shape == (20, 1, 28, 28)
    weights = torch.zeros(2, 10)
    weights[:, 1] = weights[:, 7] = 0.5  # a blend of 1 and 7 through the pipeline
    assert pipe.sample(2, seed=0, labels=weights).tensor.shape == (2, 1, 28, 28)
    with pytest.raises(GanvaeError, match=r"sample\(labels=...\): 3 labels for 2 samples.*among \[0, 1"):
        pipe.sample(2, seed=0, labels=[1, 2, 3])
    vae = ganvae.load(cli_runs["vae"])
    x = torch.rand(2, 1, 28, 28)
    assert vae.reconstruct(x, labels=[1, 2], as_labels=[5, 5]).tensor.shape == (2, 1, 28, 28)
    with pytest.raises(GanvaeError, match="needs the class"):
        vae.reconstruct(x)


def test_a_conditional_model_exports_as_a_pretrained_folder(cli_runs, tmp_path):
    operations.export(cli_runs["vae"], tmp_path / "cvae")
    run, folder = storage.load(cli_runs["vae"]), storage.load(tmp_path / "cvae")
    assert folder.model.conditional and inference.run_classes(folder) == list(range(10))
    labels = torch.tensor([2, 9])
    a = run.model.sample(2, torch.Generator().manual_seed(0), labels=labels)
    b = folder.model.sample(2, torch.Generator().manual_seed(0), labels=labels)
    assert torch.allclose(a, b, atol=2e-2)  # float16 weights


def test_evaluate_reports_conditional_metrics(cli_runs, tmp_path, capsys):
    import json

    out = tmp_path / "m.json"
    assert main(["evaluate", str(cli_runs["vae"]), "--n-samples", "100", "--iwae-k", "2", "--data-dir",
                 str(cli_runs["data"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "conditional accuracy" in text and "intra-class Frechet distance" in text and "per class: 0:" in text
    # 100 samples: 10 a class, tiny test split
    assert re.search(r"intra-class Frechet distance from as few as \d+ images of a class", text)
    m = json.loads(out.read_text())["metrics"]
    assert (0 <= m["conditional_accuracy"] <= 1
            and set(m["conditional_accuracy_per_class"]) == {str(c) for c in range(10)})
    assert "conditional" in json.loads(out.read_text())["protocol"]
    assert "log p(x | y)" in m["likelihood_protocol"]["binarisation"]


def test_report_shows_conditional_metrics_and_the_class_grid(cli_runs, tmp_path):
    from ganvae.inference.report import compare

    report = compare([cli_runs["dcgan"], cli_runs["vae"]], tmp_path / "report", n_samples=100,
                     data_dir=str(cli_runs["data"]))
    html = report.read_text()
    assert "conditional accuracy" in html and "intra-class Frechet distance" in html
    assert "Conditional models, per class" in html and "<tr><td>9</td><td>" in html  # a row per class
    assert "## Conditional models, per class" in (tmp_path / "report/report.md").read_text()
    grids = sorted((tmp_path / "report").glob("*samples*.png"))
    assert grids and grey_image(grids[0]).shape[0] == 2 * (10 * 28 + 11 * 2)  # one row per class, shown at 2x


def test_one_label_policy_answers_what_a_model_draws_when_no_class_is_asked():
    from ganvae.models.conditioning import LabelPolicy

    model = conditional_model("gan", "data.classes=[3, 5]")
    assert model.classes == [3, 5]
    assert model.labels_for(3).tolist() == [3, 5, 3]  # balanced by default
    assert model.labels_for(3, start=1).tolist() == [5, 3, 5]  # a rank's share continues the cycle
    assert model.labels_for(3, policy=LabelPolicy.CLASS_GRID).tolist() == [3, 3, 5, 5]  # whole rows
    assert model.labels_for(3, policy=LabelPolicy.FIRST_CLASS).tolist() == [3, 3, 3]
    assert model.labels_for(2, 5, LabelPolicy.FIRST_CLASS).tolist() == [5, 5]  # a class asked for wins
    with pytest.raises(ValueError, match=r"trained on classes \[3, 5\]"):
        model.labels_for(2, 4)
    plain = build_model(tiny_config("gan"), (1, 16, 16))
    assert all(plain.labels_for(4, policy=p) is None for p in LabelPolicy)
    # the grids of the trainer, the report and `ganvae sample` take their rows from the same policy
    z, labels = model.latent_prior.class_grid(2, model.classes, torch.Generator().manual_seed(0))
    assert labels.tolist() == model.labels_for(4, policy=LabelPolicy.CLASS_GRID).tolist() and len(z) == 4
