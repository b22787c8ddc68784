"""The learned prior (models/prior.py): the EM fit, its storage in checkpoints and pretrained folders, the trainer's
fit at the end of training and `ganvae fit-prior`."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import tiny_config, tiny_data

from ganvae.models.base import fit_latent_prior
from ganvae.models.prior import GaussianMixturePrior


def blobs(n_per: int = 400, seed: int = 0):
    """Four well-separated Gaussian blobs in 3-d with different shapes, shares and means: (codes, true means)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([[8.0, 0, 0], [-8, 0, 0], [0, 8, 0], [0, -8, 4]])
    shares = [1, 2, 3, 4]
    parts = []
    for m, share, scale in zip(means, shares, [0.5, 1.0, 0.3, 0.8]):
        parts.append(m + scale * torch.randn(n_per * share, 3, generator=g))
    return torch.cat(parts), means, torch.tensor(shares, dtype=torch.float) / sum(shares)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_the_fit_recovers_well_separated_blobs(covariance):
    codes, means, shares = blobs()
    prior = GaussianMixturePrior(3, 4, covariance)
    fit = prior.fit(codes, seed=3)
    assert prior.is_fitted and fit.converged and fit.n == len(codes)
    # each true mean has a fitted component within 0.2, carrying that blob's share of the data
    dist = torch.cdist(means, prior.means[0])  # (4 true, 4 fitted)
    nearest = dist.argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]
    assert dist.min(1).values.max() < 0.2
    assert torch.allclose(prior.log_weights[0].exp()[nearest], shares, atol=0.02)
    # the log-density matches torch.distributions' mixture of the fitted parameters
    if covariance == "full":
        comp = torch.distributions.MultivariateNormal(prior.means[0].double(), scale_tril=prior.scale_tril[0].double())
    else:
        comp = torch.distributions.Independent(torch.distributions.Normal(prior.means[0].double(),
                                                                          prior.scales[0].double()), 1)
    ref = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=prior.log_weights[0].double()),
                                                comp)
    assert torch.allclose(prior.log_prob(codes[:100]), ref.log_prob(codes[:100].double()), atol=1e-4)
    # samples fall around the blobs in their shares
    z = prior.draw(4000, torch.Generator().manual_seed(0))
    assigned = torch.cdist(z, means).argmin(1)
    assert torch.allclose(torch.bincount(assigned, minlength=4).float() / len(z), shares, atol=0.03)


def test_one_mixture_per_class_draws_each_class_from_its_own_blobs():
    codes, means, _ = blobs(200)
    # class 0 holds blobs 0 and 1, class 1 blobs 2 and 3 (the blob sizes are 200, 400, 600, 800)
    labels = torch.cat([torch.zeros(600, dtype=torch.long), torch.ones(1400, dtype=torch.long)])
    prior = GaussianMixturePrior(3, 2, "full", groups=2)
    with pytest.raises(ValueError, match="labels"):
        prior.fit(codes)
    prior.fit(codes, labels, seed=0)
    assert torch.allclose(prior.group_log_weights.exp(), torch.tensor([0.3, 0.7]))
    z = prior.draw(2000, torch.Generator().manual_seed(1), labels=torch.tensor([0, 1]).repeat(1000))
    blob = torch.cdist(z, means).argmin(1)
    assert set(blob[0::2].tolist()) == {0, 1} and set(blob[1::2].tolist()) == {2, 3}
    # without a class: each class by its share (the pooled mixture)
    pooled = torch.cdist(prior.draw(4000, torch.Generator().manual_seed(2)), means).argmin(1)
    assert abs(float((pooled >= 2).float().mean()) - 0.7) < 0.03
    # the same noise under another class lands in that class's blobs (what a class grid's column does)
    u, eps = prior.noise(5, torch.Generator().manual_seed(3))
    a, b = (prior.transform(u, eps, torch.zeros(5, dtype=torch.long)),
            prior.transform(u, eps, torch.ones(5, dtype=torch.long)))
    assert torch.cdist(a, means).argmin(1).max() <= 1 and torch.cdist(b, means).argmin(1).min() >= 2
    lp = prior.log_prob(codes[:10], torch.zeros(10, dtype=torch.long))
    assert torch.isfinite(lp).all() and (prior.log_prob(codes[:10]) > lp + math.log(0.3) - 1e-6).all()


def test_the_fit_is_deterministic_for_a_seed_and_varies_with_it():
    codes, _, _ = blobs(100)
    a, b, c = (GaussianMixturePrior(3, 6, "full") for _ in range(3))
    a.fit(codes, seed=1)
    b.fit(codes, seed=1)
    c.fit(codes, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.means, c.means)


def test_the_fit_refuses_too_few_or_broken_codes():
    prior = GaussianMixturePrior(3, 10)
    with pytest.raises(ValueError, match="too few codes to fit a mixture"):
        prior.fit(torch.randn(1, 3))
    with pytest.raises(ValueError, match="NaN"):
        prior.fit(torch.full((50, 3), math.nan))
    with pytest.raises(ValueError, match="codes of size 2"):
        prior.fit(torch.randn(50, 2))


def test_the_mixtures_size_follows_the_data(caplog):
    """Issue 38: 100 full components on 180 codes replayed the training codes. A full 3-d component has 10
    parameters, so 30 codes each (CODES_PER_PARAMETER = 3)."""
    from ganvae.models.latents import inverse_cdf

    g = torch.Generator().manual_seed(0)
    many, few, tiny = GaussianMixturePrior(3, 10), GaussianMixturePrior(3, 10), GaussianMixturePrior(3, 10)
    assert many.fit(torch.randn(1000, 3, generator=g)).components == 10 and many.describe().startswith("gmm (k=10,")
    fit = few.fit(torch.randn(65, 3, generator=g))
    assert fit.components == 2 and few.describe() == "gmm (k=2 of at most 10, full covariance)"
    assert (few.log_weights[0, 2:].exp() == 0).all() and not caplog.records
    drawn = few.transform(torch.rand(4000, 2, generator=g), torch.zeros(4000, 3)).unique(dim=0)
    assert {tuple(z) for z in drawn.tolist()} == {tuple(m) for m in few.means[0, :2].tolist()}  # only fitted ones
    tiny.fit(torch.randn(8, 3, generator=g))
    assert int(tiny.used[0]) == 1 and "8 codes for one component (fewer than the 30" in caplog.text
    # a uniform at the very top of [0, 1) never lands on a zero-weight component, whatever the rounding
    probs = torch.tensor([0.1] * 7 + [0.3 + 1e-7, 0.0, 0.0])
    assert int(inverse_cdf(probs, torch.tensor([1 - 2**-24]))[0]) == 7
    assert int(many.used[0]) == 10 and torch.isfinite(few.state_dict()["log_weights"]).all()  # checkpoints take it


def fitted_vae(components: int = 4, covariance: str = "full", conditional: bool = False):
    from ganvae.registry import build_model

    extra = [f"model.prior_components={components}", f"model.prior_covariance={covariance}"]
    cfg = tiny_config("vae", *extra, *(["model.conditional=true"] if conditional else []))
    torch.manual_seed(0)
    model = build_model(cfg, (1, 16, 16))
    data = tiny_data(48)
    fit = fit_latent_prior(model, data.train_images, data.train_labels, seed=0)
    return model, cfg, fit


def test_an_unfitted_prior_draws_from_the_standard_normal_and_a_fitted_one_from_the_mixture():
    from ganvae.registry import build_model

    cfg = tiny_config("vae", "model.prior_components=4")
    model = build_model(cfg, (1, 16, 16))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    from ganvae.models.latents import StandardNormalPrior

    assert torch.equal(model.latent_prior.draw(8, g()), StandardNormalPrior(model.latent_dim).draw(8, g()))
    assert "not fitted" in model.latent_prior.describe()
    fit_latent_prior(model, tiny_data(48).train_images, seed=0)
    assert model.latent_prior.describe() == "gmm (k=1 of at most 4, full covariance)"  # 48 codes: one component
    assert torch.equal(model.latent_prior.draw(8, g()), model.latent_prior.transform(*model.latent_prior.noise(8, g())))
    assert not torch.equal(model.latent_prior.draw(8, g()), torch.randn(8, model.latent_dim, generator=g()))
    normal = build_model(tiny_config("vae", "model.prior=normal"), (1, 16, 16))
    assert not normal.latent_prior.fittable and normal.latent_prior.describe() == "normal: N(0, I)"
    with pytest.raises(ValueError, match="no learned prior"):
        fit_latent_prior(normal, tiny_data(48).train_images)


def test_a_conditional_model_fits_one_mixture_per_class_and_draws_from_the_asked_one():
    model, _, fit = fitted_vae(components=20, conditional=True)  # 2 components for each of 10 classes
    prior = model.latent_prior
    assert fit.n == 48 and prior.is_fitted and prior.groups == 10 and prior.components == 2
    assert "per class" in model.latent_prior.describe()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    threes = model.latent_prior.draw(6, g(), labels=torch.full((6,), 3))
    assert torch.equal(threes, prior.draw(6, g(), torch.full((6,), 3)))
    images = model.sample(10, torch.Generator().manual_seed(0), labels=3)
    assert images.shape == (10, 1, 16, 16) and torch.isfinite(images).all()
    z, labels = model.latent_prior.class_grid(4, model.classes, g())
    assert z.shape == (40, model.latent_dim) and labels.tolist() == [c for c in range(10) for _ in range(4)]


def test_checkpoint_round_trip_gives_bit_identical_samples(tmp_path):
    from ganvae.storage import checkpoint as ckpt_io
    from ganvae.storage import load as load_run

    model, cfg, _ = fitted_vae()
    path = tmp_path / "run" / "checkpoints" / "last.safetensors"
    ckpt_io.save_checkpoint(path, model, "vae", cfg.to_dict(), counters={"step": 0, "epoch": 0, "step_in_epoch": 0},
                            extra_header={"image_shape": [1, 16, 16]})
    loaded = load_run(tmp_path / "run", device="cpu")
    assert loaded.model.latent_prior.is_fitted
    g = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    model.eval()
    assert torch.equal(loaded.model.sample(16, g()), model.sample(16, g()))


def test_pretrained_round_trip_keeps_the_prior_in_float32_and_samples_bit_identically(tmp_path):
    from safetensors import safe_open

    from ganvae.storage.pretrained_folder import load_pretrained, save_pretrained

    model, cfg, _ = fitted_vae()
    save_pretrained(model, cfg, tmp_path / "m", dtype="float16")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as fh:
        assert fh.get_tensor("latent_prior.scale_tril").dtype == torch.float32
    loaded, _ = load_pretrained(tmp_path / "m")
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(loaded.latent_prior.draw(32, g()), model.latent_prior.draw(32, g()))
    again, _ = load_pretrained(tmp_path / "m")
    assert torch.equal(again.sample(8, g()), loaded.sample(8, g()))


def test_a_prior_of_the_wrong_size_is_refused(tmp_path):
    from ganvae.errors import CheckpointError
    from ganvae.storage.pretrained_folder import load_pretrained, save_pretrained

    model, cfg, _ = fitted_vae(components=4)
    folder = save_pretrained(model, cfg, tmp_path / "m", dtype="float32")
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["prior_components"] = 5
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError,
                       match=r"do not fit the sampling state .*latent_prior.means \[1, 4, 4\] "
                             r"\(expected \[1, 5, 4\]\).*fit-prior"):
        load_pretrained(folder)
    meta["model"]["prior_components"], meta["model"]["prior"] = 4, "normal"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="latent_prior"):
        load_pretrained(folder)


def test_training_fits_the_prior_at_the_end_and_fit_prior_refits_in_place(tmp_path):
    from conftest import tiny_flags, train_cli_runs

    from ganvae.cli import main
    from ganvae.storage import load as load_run

    runs = train_cli_runs(tmp_path, ["vae"], "--epochs", "1", "--batch-size", "16", "--set", "model.prior_components=3")
    run, data = runs["vae"], runs["data"]
    loaded = load_run(run, device="cpu")
    assert loaded.model.latent_prior.is_fitted and (run / "samples" / "learned_prior.png").is_file()
    fit = json.loads((run / "summary.json").read_text())["prior_fit"]  # what the model cards read
    assert fit["prior"] == loaded.model.latent_prior.describe() == "gmm (k=1 of at most 3, full covariance)"
    assert fit["dataset"] == "mnist" and fit["seed"] == loaded.config.train.seed and fit["iterations"] >= 1
    assert fit["codes"] == 64  # every training image of the IDX set train_cli_runs writes
    before = loaded.checkpoint.tensors
    # refit with other settings: the training state is kept byte for byte, the config records the change
    assert main(["-q", "fit-prior", str(run), "--components", "2", "--covariance", "diag",
                 "--data-dir", str(data)]) == 0
    refit = load_run(run, device="cpu")
    assert refit.model.latent_prior.describe() == "gmm (k=2, diag covariance)"
    from ganvae.errors import ConfigError
    from ganvae.inference.tasks import fit_prior

    with pytest.raises(ConfigError, match="refitted in place"):  # a run is refitted where it is, never copied
        fit_prior(run, out=tmp_path / "copy", data_dir=str(data))
    assert not (tmp_path / "copy" / "config.json").exists()
    assert refit.config.model.prior_components == 2 and refit.config.model.prior_covariance == "diag"
    for key, value in before.items():
        if not key.startswith("model.latent_prior."):
            assert torch.equal(refit.checkpoint.tensors[key], value), key
    # the run still resumes with other prior settings; it is fitted again when the resumed run ends
    assert main(["-q", "train", "vae", "--dataset", "mnist", "--data-dir", str(data), "--out", str(run), "--resume",
                 "--epochs", "2", "--batch-size", "16", "--set", "model.prior_components=3",
                 "--set", "model.prior_covariance=full",
                 *tiny_flags("vae")]) == 0
    resumed = load_run(run, device="cpu")
    assert resumed.checkpoint.header["epoch"] == 2
    assert resumed.model.latent_prior.describe() == "gmm (k=1 of at most 3, full covariance)"
    # resumed with no epochs left: nothing is trained, the prior is fitted again and the position kept
    assert main(["-q", "train", "vae", "--dataset", "mnist", "--data-dir", str(data), "--out", str(run), "--resume",
                 "--epochs", "2", "--batch-size", "16", *tiny_flags("vae")]) == 0
    again = load_run(run, device="cpu")
    assert (again.checkpoint.header["epoch"] == 2
            and again.checkpoint.header["step"] == resumed.checkpoint.header["step"])
    assert again.model.latent_prior.is_fitted


def test_fit_prior_refits_a_pretrained_folder_with_another_covariance(tmp_path, idx_dir):
    from ganvae.inference.tasks import fit_prior
    from ganvae.storage import load as load_run
    from ganvae.storage.pretrained_folder import save_pretrained

    model, cfg, _ = fitted_vae(components=3)  # a 16x16 model: refit on the 28x28 IDX set at its own size
    folder = save_pretrained(model, cfg, tmp_path / "m")
    with pytest.raises(Exception, match="image_size"):
        fit_prior(folder, out=tmp_path / "bad", dataset="mnist", data_dir=str(idx_dir))
    cfg28 = tiny_config("vae", "model.prior_components=3", "data.image_size=28")
    from ganvae.registry import build_model

    model28 = build_model(cfg28, (1, 28, 28))
    folder28 = save_pretrained(model28, cfg28, tmp_path / "m28")
    result = fit_prior(folder28, out=tmp_path / "refit", covariance="diag", components=2, dataset="mnist",
                       data_dir=str(idx_dir))
    assert result["prior"] == "gmm (k=2, diag covariance)" and result["codes"] == 200
    loaded = load_run(tmp_path / "refit", device="cpu")
    assert loaded.model.latent_prior.describe() == "gmm (k=2, diag covariance)"
    assert torch.equal(loaded.model.decoder.net[0].weight, model28.decoder.net[0].weight.half().float())


def test_fit_prior_refuses_gans_and_the_shipped_folders_in_place(capsys, tmp_path, tiny_pretrained):
    from conftest import LIKE_ZOO

    from ganvae.cli import main

    gan = tiny_pretrained(*LIKE_ZOO["gan"])
    assert main(["fit-prior", str(gan), "--out", str(tmp_path / "out")]) == 2
    assert "has no encoder" in capsys.readouterr().err
    assert main(["fit-prior", "mnist-vae"]) == 2  # a zoo model is never rewritten in place (the subject: the zoo)
    assert "--out DIR" in capsys.readouterr().err


def test_a_conditional_run_fits_one_mixture_per_class_when_training_ends(tmp_path):
    from conftest import train

    from ganvae.storage import load as load_run

    cfg = tiny_config("vae", "model.conditional=true", "model.prior_components=10", "train.epochs=1")
    train(cfg, tmp_path / "run", data=tiny_data(60))
    model = load_run(tmp_path / "run", device="cpu").model
    assert model.latent_prior.is_fitted and model.latent_prior.groups == 10 and model.latent_prior.components == 1
    assert (tmp_path / "run" / "samples" / "learned_prior.png").is_file()


def test_too_little_data_for_the_mixture_is_a_warning_not_a_failure(tmp_path, caplog):
    from conftest import train

    from ganvae.storage import load as load_run

    cfg = tiny_config("vae", "train.epochs=1")  # the default 100 components, 40 images of 4 latents
    with caplog.at_level("WARNING", logger="ganvae"):
        train(cfg, tmp_path / "run", data=tiny_data(40))
    assert "40 codes for one component (fewer than the 45" in caplog.text  # a single Gaussian, said so
    assert load_run(tmp_path / "run", device="cpu").model.latent_prior.describe() == (
        "gmm (k=1 of at most 100, full covariance)")
