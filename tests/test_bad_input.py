"""Bad input as a new user types it (issue 13): one paragraph naming the field or file and the fix, exit code 2,
no traceback, nothing created or lost."""

from __future__ import annotations

import pytest

from ganvae.cli import main


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("argv,expected", [
    (["train", "vae", "--set", "model.lr=nan"], "model.lr is nan; it must be a finite number"),
    (["train", "vae", "--set", "model.lr=-0.1"], "model.lr is -0.1; it must be positive"),
    (["train", "gan", "--batch-size", "1"], "train.batch_size is 1; it must be at least 2"),
    (["train", "vae", "--set", "model.latent_dim=0"], "model.latent_dim is 0"),
    (["train", "vae", "--max-minutes", "-1"], "Fix --max-minutes"),
    (["train", "vae", "--max-minutes", "nan"], "train.max_minutes is nan"),
    (["train", "vae", "--classes", ""], "data.classes is []; it must be a non-empty list"),
    (["train", "vae", "--classes", "3,3"], "distinct class indices"),
    (["train", "vae", "--epochs", "0"], "train.epochs is 0; it must be at least 1"),
    (["train", "vae", "--device", "tpu"], "train.device is 'tpu'; it must be auto, cpu, cuda, cuda:N or mps"),
    (["train", "gan", "--set", "model.dropout=1.5"], "model.dropout is 1.5; it must be in [0, 1)"),
    (["train", "dcgan", "--set", "model.generator_channels=[0,8]"], "a list of values at least 1"),
    (["train", "vae", "--set", "model.hidden=[]"], "model.hidden is []; it must be a non-empty list"),
    (["train", "vae", "--set", "model.beta1=inf"], "model.beta1 is inf"),
])
def test_bad_settings_are_refused_before_anything_is_created(capsys, tmp_path, argv, expected):
    out = tmp_path / "run"
    code, err = run(capsys, *argv, "--out", str(out))
    assert code == 2 and expected in err, err
    assert not out.exists(), "a refused run must not leave a folder behind"


def test_device_that_is_not_there(capsys, tmp_path):
    code, err = run(capsys, "train", "vae", "--device", "mps", "--out", str(tmp_path / "run"))
    assert code == 2 and "no Apple GPU" in err and not (tmp_path / "run").exists()


def test_every_value_rule_names_a_real_field():
    import dataclasses

    from ganvae.config import VALUE_RULES, default_config
    from ganvae.registry import model_names

    fields = set()
    for name in model_names():
        cfg = default_config(name)
        for section in ("data", "model", "train", "run"):
            fields |= {f.name for f in dataclasses.fields(getattr(cfg, section))}
    assert set(VALUE_RULES) - fields == set()
