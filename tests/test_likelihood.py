"""The IWAE estimate is a bound that tightens with k; k = 1 equals the ELBO."""

import torch
from conftest import tiny_config, tiny_data

from ganvae.metrics.evaluate import likelihood_metrics
from ganvae.models.step import StepContext
from ganvae.registry import build_model


def test_iwae_tightens_with_k_and_equals_elbo_at_k1():
    cfg = tiny_config("vae")
    torch.manual_seed(0)
    model = build_model(cfg, (1, 16, 16))
    data = tiny_data()
    opts = model.make_optimizers()
    x = data.train_images.float() / 255
    for step in range(30):  # a little training so the posterior is not the prior
        model.training_step(x[:16], opts, StepContext(step, 0, 0.0))
    k1 = likelihood_metrics(model, data, k=1)
    assert k1["test_nll_iwae"] == -k1["test_elbo"]
    nll = [likelihood_metrics(model, data, k=k)["test_nll_iwae"] for k in (1, 10, 200)]
    assert nll[0] > nll[1] > nll[2]  # a tighter (lower) bound on the NLL with more samples
    assert "binarised once" in k1["likelihood_protocol"]["binarisation"]
