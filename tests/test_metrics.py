"""The metrics measure what they claim (on real digits from the offline subset, with the shipped classifier)."""

import numpy as np
import pytest
import torch

from ganvae.config import DataConfig
from ganvae.data.dataset import load_dataset
from ganvae.metrics import core
from ganvae.metrics.classifier import load_classifier


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset(DataConfig(dataset="mnist-5k"))


@pytest.fixture(scope="module")
def fnet():
    return load_classifier("mnist-5k")


@pytest.fixture(scope="module")
def features(mnist5k, fnet):
    train = fnet.extract(mnist5k.train_images.float() / 255)
    test = fnet.extract(mnist5k.test_images.float() / 255)
    return train, test


def fid(a, b):
    return core.frechet_distance(*core.gaussian_stats(a), *core.gaussian_stats(b))


def test_shipped_classifier_is_accurate(mnist5k, fnet):
    assert fnet.test_accuracy >= 0.993  # on the full MNIST test split, recorded when it was trained
    pred = fnet.extract(mnist5k.test_images.float() / 255)[1].argmax(1)
    assert (pred == mnist5k.test_labels).float().mean() > 0.98


def test_frechet_distance_real_vs_real_near_zero_and_noise_far(mnist5k, fnet, features):
    (train_f, _), (test_f, _) = features
    real = fid(train_f, test_f)
    noise_f, _ = fnet.extract(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    ones = mnist5k.train_images[mnist5k.train_labels == 1].float() / 255
    single_f, _ = fnet.extract(ones)
    # both degenerate sets are far worse than real against real (which is near zero)
    assert real < 0.05 * fid(single_f, test_f)
    assert real < 0.05 * fid(noise_f, test_f)


def test_frechet_distance_matches_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 32)) @ rng.normal(size=(32, 32))
    b = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32)) + 0.3
    mu1, s1 = core.gaussian_stats(torch.from_numpy(a))
    mu2, s2 = core.gaussian_stats(torch.from_numpy(b))
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert core.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-3)


def test_inception_score_near_ceiling_for_real_and_low_for_one_class(mnist5k, features, fnet):
    (_, train_p), _ = features
    score, _ = core.inception_score(train_p)
    assert score > 9.0
    ones = fnet.extract(mnist5k.train_images[mnist5k.train_labels == 1].float() / 255)[1]
    assert core.inception_score(ones)[0] < 1.5


def test_class_coverage_flags_dropped_classes(mnist5k, features):
    (_, train_p), _ = features
    full = core.class_coverage(train_p)
    assert full["dropped_classes"] == [] and full["entropy"] > 0.99
    keep = mnist5k.train_labels >= 5
    half = core.class_coverage(train_p[keep])
    assert half["dropped_classes"] == [0, 1, 2, 3, 4]
    assert half["entropy"] < 0.8
    # trained on classes 5..9 only: those are the expected classes, none dropped
    assert core.class_coverage(train_p[keep], classes=[5, 6, 7, 8, 9])["dropped_classes"] == []


def test_precision_recall_move_the_right_way(mnist5k, features):
    (train_f, _), (test_f, _) = features
    idx = torch.randperm(len(train_f), generator=torch.Generator().manual_seed(0))[:2000]
    full = core.precision_recall_density_coverage(test_f, train_f[idx])
    half = core.precision_recall_density_coverage(test_f, train_f[idx][mnist5k.train_labels[idx] >= 5])
    assert full["precision"] > 0.8 and full["recall"] > 0.8
    assert half["recall"] < full["recall"] - 0.3  # half the classes missing: recall and coverage drop
    assert half["coverage"] < full["coverage"] - 0.3
    assert half["precision"] > 0.8  # what remains is still realistic


def test_kid_small_for_real_large_for_noise(features, fnet):
    (train_f, _), (test_f, _) = features
    noise_f, _ = fnet.extract(torch.rand(500, 1, 28, 28))
    real, _ = core.kernel_inception_distance(test_f, train_f, subsets=5, subset_size=500)
    far, _ = core.kernel_inception_distance(test_f, noise_f, subsets=5, subset_size=500)
    assert abs(real) < 0.05 * far


def test_memorisation_detects_copies(mnist5k):
    train = mnist5k.train_images[:1000].float() / 255
    test = mnist5k.test_images[:200].float() / 255
    copies = core.memorisation(train[:200], test, train)
    fresh = core.memorisation(test, test, train)
    assert copies["sample_to_train_median"] < 0.05  # zero up to float32 round-off of the expanded distance
    assert copies["share_closer_than_test_p1"] == 1.0
    assert fresh["ratio"] == pytest.approx(1.0)


def test_nearest_distances_matches_cdist():
    a, b = torch.randn(50, 7), torch.randn(80, 7)
    assert torch.allclose(core.nearest_distances(a, b), torch.cdist(a, b).min(1).values, atol=1e-4)


def test_kid_estimator_is_stable_on_real_data(features):
    """Real against real: KID near zero with a spread small against the noise case (no blow-up from feature scale)."""
    (train_f, _), (test_f, _) = features
    mean, std = core.kernel_inception_distance(test_f, train_f, subsets=10, subset_size=500)
    scaled, _ = core.kernel_inception_distance(test_f, train_f * 1.1, subsets=10, subset_size=500)
    # MNIST's train and test writers differ a little (full MNIST: Frechet distance 3.26), so not exactly zero
    assert abs(mean) < 0.03 and std < 0.02 and scaled > 4 * abs(mean)


def test_kth_neighbour_radii_matches_brute_force():
    x = torch.randn(300, 5)
    d = torch.cdist(x, x)
    assert torch.allclose(core.kth_neighbour_radii(x, 5), d.kthvalue(6, dim=1).values, atol=1e-5)


def test_evaluate_images_folder_scores_like_the_tensors(mnist5k, fnet, tmp_path):
    """`evaluate images:DIR` reads any program's PNGs (grey or RGB) and scores them with the same protocol."""
    from PIL import Image

    from ganvae.errors import DataError
    from ganvae.inference.tasks import evaluate
    from ganvae.metrics.evaluate import sample_metrics

    images = mnist5k.train_images[:120]  # (120, 1, 28, 28) uint8
    for i, im in enumerate(images[:, 0].numpy()):
        pic = Image.fromarray(im)
        (pic.convert("RGB") if i % 2 else pic).save(tmp_path / f"{i:04d}.png")  # RGB files are made grey
    result = evaluate(f"images:{tmp_path}", n_samples=1000, dataset="mnist-5k", out=tmp_path / "m.json")
    direct = sample_metrics(images.float() / 255, mnist5k, fnet)
    assert result["protocol"]["n_samples"] == 120
    assert result["metrics"]["classifier_fd"] == pytest.approx(direct["classifier_fd"], rel=1e-5)
    assert result["metrics"]["precision_k5"] == pytest.approx(direct["precision_k5"])
    assert (tmp_path / "m.json").is_file()
    # fewer requested than present: a seeded subset of that size
    assert evaluate(f"images:{tmp_path}", n_samples=50, dataset="mnist-5k")["protocol"]["n_samples"] == 50
    with pytest.raises(DataError, match="no such folder"):
        evaluate(f"images:{tmp_path / 'missing'}", dataset="mnist-5k")


def test_bootstrap_noise_shrinks_with_more_samples():
    """The +- of the report: the spread of the metric over resamplings of the samples, about 1/sqrt(n)."""
    from ganvae.metrics import core

    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 8, generator=g)
    stats = core.gaussian_stats(real)
    small, large = torch.randn(250, 8, generator=g) + 0.3, torch.randn(4000, 8, generator=g) + 0.3
    s_small, s_large = (core.frechet_distance_bootstrap(small, stats, 20),
                        core.frechet_distance_bootstrap(large, stats, 20))
    assert s_small > 2 * s_large > 0
    prdc = core.precision_recall_density_coverage(real[:500], small, k=5, bootstrap=20)
    assert 0 < prdc["precision_std"] < 0.1 and 0 < prdc["coverage_std"] < 0.1


def test_sharpness_sees_blur(mnist5k):
    from ganvae.metrics import core

    real = mnist5k.test_images[:500].float() / 255
    blurred = torch.nn.functional.avg_pool2d(real, 3, stride=1, padding=1)
    assert abs(core.sharpness_ratio(real, real) - 1) < 1e-6
    assert core.sharpness_ratio(blurred, real) < 0.5
    assert core.sharpness_ratio(torch.rand_like(real), real) > 2  # speckle is not sharpness: above 1 is flagged too
