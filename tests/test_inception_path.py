"""The papers' FID and KID (issue 40, item 3.4): pytorch-fid's Inception-v3 written in plain torch, its weights read
from a file the user supplies without running code from it, images prepared as pytorch-fid prepares them, and
ganvae's Frechet distance equal to pytorch-fid's. Offline: the weights here are random ones of the right shapes,
written by the test; a few images only (299x299 on a CPU is slow)."""

from __future__ import annotations

import logging
import pathlib
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganvae.data.dataset import ImageData
from ganvae.errors import DataError
from ganvae.metrics import core
from ganvae.metrics.inception import (
    WEIGHTS_FILE,
    FIDInceptionV3,
    InceptionFeatures,
    inception_metrics,
    load_inception,
    prepare,
)
from ganvae.metrics.registry import get_metric


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: on a busy machine two threads that wait for each other were several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights file of pytorch-fid's layout (random weights and batch-norm statistics), saved as pytorch-fid's is:
    ``torch.save`` of a state dict."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    with torch.no_grad():
        for name, buffer in net.named_buffers():  # batch-norm statistics that keep activations of order one
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("fid") / WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path, net.eval()


def test_the_network_has_pytorch_fids_blocks_and_shapes(weights):
    """The feature sizes pytorch-fid's InceptionV3 names (64, 192, 768, 2048) at its block ends, on 299x299 input."""
    _, net = weights
    sizes = {}
    for name in ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"):
        getattr(net, name).register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        out = net.features(torch.zeros(1, 3, 299, 299))
    assert out.shape == (1, 2048)
    assert sizes == {"Conv2d_2b_3x3": (1, 64, 147, 147), "Conv2d_4a_3x3": (1, 192, 71, 71),
                     "Mixed_5d": (1, 288, 35, 35), "Mixed_6e": (1, 768, 17, 17), "Mixed_7c": (1, 2048, 8, 8)}
    state = net.state_dict()
    assert state["fc.weight"].shape == (1008, 2048) and not any(k.startswith("AuxLogits") for k in state)
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert (net.Mixed_7b.pool, net.Mixed_7c.pool) == ("avg", "max")  # FIDInceptionE_1, FIDInceptionE_2


def test_the_tensorflow_pools_differ_from_torchvisions_where_pytorch_fid_patches_them():
    """The blocks' pool branches: TensorFlow's average leaves the padding out (a corner's mean of 4 values, not 9
    with zeros); Mixed_7c's takes the max."""
    from ganvae.metrics.inception import _tf_avg_pool

    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(_tf_avg_pool(x), x)  # torchvision's count_include_pad=True would give 4/9 in a corner
    assert F.avg_pool2d(x, 3, 1, 1)[0, 0, 0, 0] == pytest.approx(4 / 9)


def test_images_are_prepared_as_pytorch_fid_prepares_them():
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x = prepare(grey)
    assert x.shape == (2, 3, 299, 299) and torch.equal(x[:, 0], x[:, 2])  # grey in each of 3 channels
    levels = (grey * 255).round() / 255  # the 8-bit levels of the PNG files pytorch-fid reads
    expected = 2 * F.interpolate(levels.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.allclose(x, expected, atol=1e-6) and x.min() >= -1 and x.max() <= 1


def test_the_weights_file_loads_without_code_and_gives_the_networks_features(weights, caplog):
    path, net = weights
    with caplog.at_level(logging.WARNING, logger="ganvae.metrics.inception"):
        loaded = load_inception(path)
    assert "not pytorch-fid's" in caplog.text  # random weights: said not to be the papers' network
    assert not loaded.pytorch_fid_weights and loaded.describe()["pytorch_fid_weights"] is False
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    feats, probs = loaded.extract(images)
    assert feats.shape == (2, 2048) and probs.shape == (2, 1008) and torch.isfinite(feats).all()
    with torch.no_grad():
        direct = net.features(prepare(images)).double()
    assert torch.allclose(feats, direct, rtol=1e-5, atol=1e-6)
    colour = loaded.extract(images.repeat(1, 3, 1, 1))[0]  # RGB grey images: the same features as grey ones
    assert torch.allclose(colour, feats)


def test_inception_metrics_on_a_few_images(weights):
    """Two reference images, two samples: the papers' KID on the raw features (not rescaled as classifier_kd's), the
    FID finite and positive (one 2048-d Frechet distance: its eigendecompositions are most of this test's time)."""
    from ganvae.metrics.inception import KID_SUBSET_SIZE, KID_SUBSETS

    path, _ = weights
    net = load_inception(path)
    g = torch.Generator().manual_seed(2)
    test = (torch.rand(2, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    data = ImageData("tiny", ("0",), test, torch.zeros(2, dtype=torch.long), test, torch.zeros(2, dtype=torch.long))
    samples = torch.rand(2, 1, 28, 28, generator=g)
    metrics = inception_metrics(samples, data, net)
    assert set(metrics) == {"fid_inception", "kid_inception", "kid_inception_std"}
    assert np.isfinite(metrics["fid_inception"]) and metrics["fid_inception"] > 0
    kid, _ = core.kernel_inception_distance(net.extract(test / 255)[0], net.extract(samples)[0], subsets=KID_SUBSETS,
                                            subset_size=KID_SUBSET_SIZE, normalise=False)
    assert metrics["kid_inception"] == pytest.approx(kid * 1000)
    assert get_metric("fid_inception").label == "FID (Inception-v3, pytorch-fid weights)"


def test_evaluate_adds_the_inception_keys_and_their_protocol():
    """``evaluate(..., inception=...)`` (the path of ``ganvae evaluate --inception-weights FILE``): the papers' keys
    beside the classifier's, and the network's identity in the protocol. A stand-in network keeps it quick."""
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset
    from ganvae.metrics.classifier import load_classifier
    from ganvae.metrics.evaluate import evaluate

    class QuickInception(InceptionFeatures):
        def extract(self, images, batch_size=50):
            flat = F.adaptive_avg_pool2d(images.float(), 4).flatten(1).double()  # (N, C*16)
            return flat, torch.empty(len(images), 0)

    data = load_dataset(DataConfig(dataset="mnist-5k", classes=[0, 1]))
    with torch.device("meta"):  # never run: only its identity is read
        quick = QuickInception(FIDInceptionV3(), "pt_inception.pth", "0" * 64)
    result = evaluate(None, data, load_classifier("mnist-5k"), samples=data.train_images[:200] / 255,
                      inception=quick)
    assert {"fid_inception", "kid_inception", "classifier_fd"} <= set(result["metrics"])
    assert result["protocol"]["inception"]["pytorch_fid_weights"] is False
    assert "*_inception" in result["protocol"]["keys"]


def _refused(path) -> str:
    with pytest.raises(DataError) as err:
        load_inception(path)
    return str(err.value)


def test_other_files_are_refused_naming_the_difference(weights, tmp_path):
    path, net = weights
    state = torch.load(path, weights_only=True)
    wrong = dict(state, **{"fc.weight": torch.zeros(1000, 2048)})  # torchvision's 1000 classes
    torch.save(wrong, tmp_path / "wrong.pth")
    assert "fc.weight (1000, 2048) (expected (1008, 2048))" in _refused(tmp_path / "wrong.pth")
    fewer = {k: v for k, v in state.items() if not k.startswith("Mixed_7c")}
    torch.save(fewer, tmp_path / "fewer.pth")
    assert "missing (e.g. Mixed_7c." in _refused(tmp_path / "fewer.pth")
    more = dict(state, **{"AuxLogits.fc.weight": torch.zeros(1000, 768)})
    torch.save(more, tmp_path / "more.pth")
    message = _refused(tmp_path / "more.pth")
    assert "unknown (e.g. AuxLogits.fc.weight)" in message and WEIGHTS_FILE in message
    assert "inception_weights=" in message  # the field, as Python spells it
    # a file without the batch-norm counters (inference does not use them) loads
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, tmp_path / "older.pth")
    assert load_inception(tmp_path / "older.pth").extract(torch.rand(1, 3, 8, 8))[0].shape == (1, 2048)
    assert "no such file" in _refused(tmp_path / "absent.pth")


class _Trap:
    """An object whose unpickling would create a file: what a malicious weights file does, harmlessly."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_loading_a_weights_file_never_runs_its_code(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"fc.weight": _Trap(marker)}, tmp_path / "trap.pth")
    message = _refused(tmp_path / "trap.pth")
    assert not marker.exists() and "tensors only" in message
    (tmp_path / "text.pth").write_text("not weights")
    assert "tensors only" in _refused(tmp_path / "text.pth")


# ----------------------------------------------------------------------------- Frechet distance vs pytorch-fid


def pytorch_fid_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's ``calculate_frechet_distance`` (``src/pytorch_fid/fid_score.py``), step for step: scipy's
    ``sqrtm`` of the product, an ``eps`` offset if it is singular, the imaginary round-off dropped."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape
    diff = mu1 - mu2
    with warnings.catch_warnings():  # SciPy 1.16+ deprecates disp=, which pytorch-fid passes
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
        except TypeError:  # a SciPy without disp=
            covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def inception_like_features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Non-negative, correlated features of order one, like Inception's pool features (ReLU, then an average)."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(99).normal(size=(d, d)) / np.sqrt(d)
    return torch.from_numpy(np.maximum(rng.normal(size=(n, d)) @ mixing + 0.3 + shift, 0) * 0.5)


@pytest.mark.parametrize("d,n", [(512, 2000)] + [pytest.param(2048, 5000, marks=pytest.mark.slow)])
def test_frechet_distance_equals_pytorch_fids(d, n):
    pytest.importorskip("scipy")
    real, fake = inception_like_features(n, d, 0), inception_like_features(n - 500, d, 1, shift=0.05)
    mu1, s1 = core.gaussian_stats(fake)
    mu2, s2 = core.gaussian_stats(real)
    ours, theirs = core.frechet_distance(mu1, s1, mu2, s2), float(pytorch_fid_frechet_distance(mu1, s1, mu2, s2))
    print(f"d={d} n={n}: ganvae {ours!r}, pytorch-fid {theirs!r}, relative difference "
          f"{abs(ours - theirs) / theirs:.2e}")  # shown with -s
    assert ours == pytest.approx(theirs, rel=1e-6), (ours, theirs, abs(ours - theirs) / theirs)
