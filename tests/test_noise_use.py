"""The collapse check (ganvae.metrics.noise_use): a generator that draws one image per class whatever its noise is
found, named with its fixes, and reported once in the run's summary when training finds it."""

import json

import pytest
import torch
from conftest import tiny_config, tiny_data, train

from ganvae.metrics import noise_use
from ganvae.registry import build_model


def ignore_the_noise(model) -> None:
    """Zero the noise columns of the generator's first layer (trained and averaged copy): the class alone acts."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.in_features == model.noise_dim + model.config.class_embedding_dim:
                m.weight[:, : model.noise_dim] = 0


@pytest.mark.parametrize("setting,classes", [("model.self_conditioning=3", 3), ("model.conditional=true", 10)])
def test_a_generator_that_ignores_its_noise_is_found_and_named(setting, classes):
    torch.manual_seed(0)
    model = build_model(tiny_config("gan", setting), (1, 16, 16))
    healthy = noise_use.noise_spreads(model, torch.Generator().manual_seed(0))
    assert len(healthy) == classes and min(healthy) > noise_use.COLLAPSED_SPREAD  # an untrained net follows z
    assert noise_use.collapse_message(model, healthy, step=5) is None
    ignore_the_noise(model)
    collapsed = noise_use.noise_spreads(model, torch.Generator().manual_seed(0))
    assert max(collapsed) < 1e-6
    message = noise_use.collapse_message(model, collapsed, step=5)
    kind = "pseudo-class" if "self" in setting else "class"
    assert message.startswith(f"mode collapse at step 5: the generator draws nearly one image per {kind}")
    assert "--set model.mode_seeking=1.0" in message
    assert ("model.self_conditioning=0" in message) == (kind == "pseudo-class")


def test_a_model_without_classes_has_nothing_to_measure():
    model = build_model(tiny_config("gan", "model.self_conditioning=0"), (1, 16, 16))
    assert noise_use.noise_spreads(model, torch.Generator().manual_seed(0)) is None
    assert noise_use.collapse_message(model, [], step=1) is None


def test_some_classes_collapsed_are_left_to_fid():
    model = build_model(tiny_config("gan", "model.self_conditioning=2"), (1, 16, 16))
    assert noise_use.collapse_message(model, [0.001, 0.1], step=1) is None


def test_training_reports_a_collapse_once_in_its_summary(tmp_path, monkeypatch):
    """Two quality points find the collapse (the measure is replaced by a collapsed one): one warning, logged with
    the first point's step, in summary.json; the same run without it has none."""
    import ganvae.metrics.during_training as during

    settings = ("data.image_size=28", "model.self_conditioning=2", "train.epochs=2", "train.eval_every=1",
                "train.eval_samples=20")
    plain = train(tiny_config("gan", *settings), tmp_path / "plain", data=tiny_data(size=28))
    summary = json.loads((plain.run_dir / "summary.json").read_text())
    assert not any(w.startswith("mode collapse") for w in summary.get("warnings", []))
    monkeypatch.setattr(during, "noise_spreads", lambda model, generator: [0.004, 0.002])
    run = train(tiny_config("gan", *settings), tmp_path / "collapsed", data=tiny_data(size=28))
    warnings = json.loads((run.run_dir / "summary.json").read_text())["warnings"]
    collapse = [w for w in warnings if w.startswith("mode collapse")]
    assert len(collapse) == 1 and "mode collapse at step 6:" in collapse[0] and "0.002-0.004" in collapse[0]
