"""Self-conditioning (models/self_conditioning.py): clustering, stable ids, the model's latent, training on pseudo-
classes from a folder without class sub-folders, exact resume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import make_images, tiny_config, tiny_data

from ganvae.models.clustering import hungarian, match_clusters
from ganvae.models.latents import PseudoClassPrior
from ganvae.models.self_conditioning import PseudoClasses


@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_hungarian_finds_the_cheapest_matching(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        cost = rng.integers(0, 50, (k, k)).astype(float)
        out = hungarian(cost)
        assert sorted(out.tolist()) == list(range(k))
        best = min(sum(cost[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))
        assert cost[np.arange(k), out].sum() == best


def blob_features(seed: int = 0, n: int = 100, shift: float = 0.0):
    """Five well-separated blobs in 8-d (blob b around 10 * e_b), ``n`` points each: (features, blob ids)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(5).repeat_interleave(n)
    centres = torch.eye(5, 8) * 10 + shift
    return centres[ids] + torch.randn(len(ids), 8, generator=g), ids


def purity(assign: torch.Tensor, truth: torch.Tensor) -> float:
    return sum(int(torch.bincount(truth[assign == c]).max()) for c in assign.unique()) / len(truth)


def test_clusters_match_the_blobs_and_keep_their_ids_when_reclustered():
    feats, truth = blob_features()
    pc = PseudoClasses(5)
    info = pc.recluster(feats, seed=0)
    assert pc.clustered and info["changed"] == 1.0
    assert purity(pc.assignments, truth) == 1.0  # each cluster is one blob
    assert sorted(pc.counts.tolist()) == [100.0] * 5
    first = pc.assignments.clone()
    # the discriminator's features move (a shift, new noise): the same blobs keep the same ids
    moved, _ = blob_features(seed=1, shift=0.5)
    info = pc.recluster(moved, seed=0)
    assert torch.equal(pc.assignments, first) and info["changed"] == 0.0


def test_matching_maps_permuted_clusters_back():
    old = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    new = torch.tensor([2, 2, 0, 0, 1, 1, 0])  # relabelled, one image moved
    mapping = match_clusters(new, old, 3)
    assert mapping.tolist() == [1, 2, 0]
    assert (mapping[new] == old).float().mean() > 0.8


def test_sampling_draws_clusters_by_their_share():
    pc = PseudoClasses(3)
    pc.counts.copy_(torch.tensor([600.0, 300.0, 100.0]))
    draws = PseudoClassPrior(2, pc).draw(20000, torch.Generator().manual_seed(0))[:, 2:].argmax(1)  # the one-hots
    assert torch.allclose(torch.bincount(draws, minlength=3).float() / 20000, torch.tensor([0.6, 0.3, 0.1]), atol=0.01)


def self_conditioned(name: str = "gan", k: int = 3, *extra: str):
    from ganvae.registry import build_model

    cfg = tiny_config(name, f"model.self_conditioning={k}", "model.self_conditioning_features=discriminator", *extra)
    torch.manual_seed(0)
    return build_model(cfg, (1, 16, 16)), cfg


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_a_self_conditioned_model_is_unconditional_to_its_user(name):
    model, _ = self_conditioned(name, 4)
    assert model.latent_prior.kind == "self-conditioned" and not model.conditional
    assert model.latent_dim == model.noise_dim + 4
    data = tiny_data(48)
    info = model.before_epoch(0, data.train_images, seed=0)
    assert info is not None and model.pseudo_classes.assignments.shape == (48,)
    assert model.before_epoch(1, data.train_images) is None  # recluster_every 2: not due
    assert model.before_epoch(2, data.train_images) is not None
    z = model.latent_prior.draw(6, torch.Generator().manual_seed(1))
    assert z.shape == (6, model.latent_dim) and torch.equal(z[:, model.noise_dim:].sum(1), torch.ones(6))
    images = model.sample(6, torch.Generator().manual_seed(1))
    assert images.shape == (6, 1, 16, 16) and torch.isfinite(images).all()
    with pytest.raises(ValueError, match="not conditional"):
        model.sample(2, labels=1)
    labels = model.training_labels(torch.tensor([0, 5, 7]), data.train_labels)
    assert torch.equal(labels, model.pseudo_classes.assignments[[0, 5, 7]])


def test_self_conditioning_and_labels_are_exclusive():
    from ganvae.errors import ConfigError

    with pytest.raises(ConfigError, match="self_conditioning"):
        from ganvae.config import validate

        validate(tiny_config("gan", "model.self_conditioning=3", "model.conditional=true"))


def test_pseudo_classes_of_the_discriminator_separate_visibly_different_images():
    """Images of 10 well-separated kinds (a bright bar at a kind-dependent row, the bars apart at 28x28): the
    clusters of even an untrained discriminator's features follow the kinds."""
    from ganvae.registry import build_model

    images, kinds = make_images(300, size=28, seed=3)
    cfg = tiny_config("dcgan", "model.self_conditioning=10", "model.self_conditioning_features=discriminator")
    torch.manual_seed(0)
    model = build_model(cfg, (1, 28, 28))
    model.before_epoch(0, torch.from_numpy(images).unsqueeze(1), seed=0)
    assert purity(model.pseudo_classes.assignments, torch.from_numpy(kinds.astype(np.int64))) > 0.95


def two_rings(n: int = 200, seed: int = 0):
    """Two concentric rings in 2-d (radius 1 and 4), ``n`` points each: (points, ring ids). Connected but not round
    clusters: k-means of the points splits them across the rings."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(2).repeat_interleave(n)
    angle = torch.rand(2 * n, generator=g) * 2 * torch.pi
    radius = torch.where(ids == 0, 1.0, 4.0) + 0.1 * torch.randn(2 * n, generator=g)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], 1), ids


def test_spectral_embedding_separates_connected_clusters_that_kmeans_of_the_points_mixes():
    from ganvae.models.clustering import kmeans, spectral_embedding

    points, truth = two_rings()
    plain, _ = kmeans(points, 2, torch.Generator().manual_seed(0))
    assert purity(plain, truth) < 0.8  # the control: round clusters cut both rings
    # a ring's graph is a long cycle, whose eigengap is tiny: 300 steps (the default) leave the rings mixed
    embedded = spectral_embedding(points, 2, torch.Generator().manual_seed(0), iterations=3000)
    assert embedded.shape == (400, 2) and torch.allclose(embedded.norm(dim=1), torch.ones(400), atol=1e-5)
    assign, _ = kmeans(embedded, 2, torch.Generator().manual_seed(0))
    assert purity(assign, truth) == 1.0


def test_pca_projection_keeps_the_leading_axes_in_order():
    from ganvae.models.clustering import pca_project

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g) * torch.tensor([5.0, 0.1, 3.0, 0.1, 1.0, 0.1])
    out = pca_project(x, 3)
    assert out.shape == (500, 3)
    assert torch.allclose(out.std(0), torch.tensor([5.0, 3.0, 1.0]), rtol=0.1)  # the three widest, widest first
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-4)


def test_spectral_self_conditioning_clusters_the_pixels_once():
    """``model.self_conditioning_features: spectral``: the clusters follow the images' kinds, are found before the
    first epoch only (the pixels do not change), and the same seed gives the same clusters."""
    from ganvae.models.self_conditioning import pixel_cluster_features
    from ganvae.registry import build_model

    images, kinds = make_images(300, size=28, seed=3)
    images = torch.from_numpy(images).unsqueeze(1)
    cfg = tiny_config("gan", "model.self_conditioning=10", "model.self_conditioning_features=spectral",
                      "model.recluster_every=1")
    torch.manual_seed(0)
    model = build_model(cfg, (1, 28, 28))
    assert model.before_epoch(0, images, seed=0) is not None
    assert purity(model.pseudo_classes.assignments, torch.from_numpy(kinds.astype(np.int64))) > 0.95
    first = model.pseudo_classes.assignments.clone()
    assert model.before_epoch(1, images, seed=0) is None and model.before_epoch(2, images, seed=0) is None
    assert torch.equal(model.pseudo_classes.assignments, first) and int(model.pseudo_classes.reclusterings) == 1
    a, b = pixel_cluster_features(images, 10, seed=4), pixel_cluster_features(images, 10, seed=4)
    assert a.shape == (300, 16) and torch.equal(a, b)


def write_flat_folder(root, n: int = 48):
    """A folder of PNGs with no class sub-folders (one 'class' to the data loader)."""
    from PIL import Image

    root.mkdir(parents=True)
    images, _ = make_images(n, size=16, seed=5)
    for i, im in enumerate(images):
        Image.fromarray(im).save(root / f"img_{i:03d}.png")
    return root


@pytest.mark.parametrize("features,clusterings", [("discriminator", 3), ("spectral", 1)])
def test_training_on_an_unlabelled_folder_and_exact_resume(tmp_path, features, clusterings):
    """Pseudo-classes on folder: data without class sub-folders; a run resumed at an epoch boundary (with a
    reclustering of the discriminator's features on its first epoch, or the spectral clusters kept from before)
    gives the same losses, weights and pseudo-classes bit for bit."""
    from conftest import train

    from ganvae.storage import load as load_run
    from ganvae.storage.checkpoint import load_checkpoint

    folder = write_flat_folder(tmp_path / "flat")
    extra = [f"data.dataset=folder:{folder}", "data.image_size=16", "model.self_conditioning=3",
             f"model.self_conditioning_features={features}", "model.recluster_every=1", "train.batch_size=8"]
    full = train(tiny_config("gan", *extra, "train.epochs=3"), tmp_path / "full")
    train(tiny_config("gan", *extra, "train.epochs=1"), tmp_path / "part")
    train(tiny_config("gan", *extra, "train.epochs=3"), tmp_path / "part", resume=True)
    assert (tmp_path / "part/losses.csv").read_text() == (full.run_dir / "losses.csv").read_text()
    a = load_checkpoint(tmp_path / "full/checkpoints/last.safetensors").group("model")
    b = load_checkpoint(tmp_path / "part/checkpoints/last.safetensors").group("model")
    assert a.keys() == b.keys() and "pseudo_classes.assignments" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert int(a["pseudo_classes.reclusterings"]) == clusterings
    loaded = load_run(tmp_path / "full", device="cpu")
    assert loaded.model.pseudo_classes.assignments.shape[0] == 43  # the folder's train split (48, 10% held out)
    assert "self-conditioning clusters" in loaded.model.latent_prior.describe()


def test_pretrained_folder_keeps_the_shares_not_the_assignments(tmp_path):
    from safetensors import safe_open

    from ganvae.storage.pretrained_folder import load_pretrained, save_pretrained

    model, cfg = self_conditioned("gan", 3)
    model.before_epoch(0, tiny_data(48).train_images)
    save_pretrained(model, cfg, tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())
    assert "pseudo_classes.counts" in keys and "pseudo_classes.assignments" not in keys
    loaded, _ = load_pretrained(tmp_path / "m")
    assert torch.equal(loaded.pseudo_classes.counts, model.pseudo_classes.counts)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(loaded.latent_prior.draw(16, g()), model.latent_prior.draw(16, g()))


@pytest.mark.parametrize("name,default", [("gan", None), ("dcgan", 0)])
def test_the_default_self_conditions_an_unconditional_gan_on_ten_spectral_clusters(name, default):
    """``model.self_conditioning: null`` (the MLP GAN's default; the DCGAN's is 0): 10 spectral pseudo-classes for
    an unconditional model, none for a conditional one (its labels are the classes), and an explicit count with
    labels is refused."""
    from ganvae.config import build_config, validate
    from ganvae.errors import ConfigError
    from ganvae.models.configs import AUTO_PSEUDO_CLASSES
    from ganvae.registry import build_model

    cfg = build_config(name)
    assert cfg.model.self_conditioning == default and cfg.model.self_conditioning_features == "spectral"
    assert (build_model(cfg, (1, 28, 28)).pseudo_classes is not None) == (default is None)
    plain = build_model(tiny_config(name, "model.self_conditioning=null"), (1, 16, 16))
    assert plain.latent_prior.latent_classes == plain.pseudo_classes.k == AUTO_PSEUDO_CLASSES == 10
    assert plain.latent_dim == plain.noise_dim + 10
    images, kinds = make_images(120, size=16, seed=2)
    assert plain.before_epoch(0, torch.from_numpy(images).unsqueeze(1), seed=0) is not None
    assert plain.pseudo_classes.assignments.shape == (120,)
    labelled = build_model(tiny_config(name, "model.self_conditioning=null", "model.conditional=true"), (1, 16, 16))
    assert labelled.conditional and labelled.pseudo_classes is None and labelled.latent_dim == labelled.noise_dim
    off = build_model(tiny_config(name, "model.self_conditioning=0"), (1, 16, 16))
    assert off.pseudo_classes is None and off.latent_dim == off.noise_dim
    with pytest.raises(ConfigError, match="self_conditioning"):
        validate(tiny_config(name, "model.self_conditioning=10", "model.conditional=true"))


def test_too_few_images_for_the_default_pseudo_classes_says_how_to_fix_it():
    from ganvae.registry import build_model

    model = build_model(tiny_config("gan", "model.self_conditioning=null"), (1, 16, 16))
    images, _ = make_images(6, size=16, seed=2)
    with pytest.raises(ValueError,
                       match=r"6 images cannot form 10 pseudo-classes: set model.self_conditioning below 6"):
        model.before_epoch(0, torch.from_numpy(images).unsqueeze(1), seed=0)


def test_a_stored_config_from_before_self_conditioning_loads_as_it_was_trained():
    """A checkpoint's or pretrained folder's config without the fields (written before they existed) means no
    self-conditioning, and clustering the discriminator's features, not today's defaults (``PREDATES``)."""
    from ganvae.config import build_config, config_from_dict

    stored = build_config("dcgan").to_dict()
    old = {**stored, "model": {k: v for k, v in stored["model"].items()
                               if k not in ("self_conditioning", "self_conditioning_features")}}
    cfg = config_from_dict(old, "an old checkpoint")
    assert cfg.model.self_conditioning == 0 and cfg.model.self_conditioning_features == "discriminator"
    middle = {**stored, "model": {**old["model"], "self_conditioning": 10}}  # before the features could be chosen
    cfg = config_from_dict(middle, "a checkpoint")
    assert cfg.model.self_conditioning == 10 and cfg.model.self_conditioning_features == "discriminator"
    cfg = config_from_dict({**stored, "model": {**stored["model"], "self_conditioning": None}}, "a new checkpoint")
    assert cfg.model.self_conditioning is None and cfg.model.self_conditioning_features == "spectral"  # as stored
