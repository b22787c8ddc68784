"""One typed way in (issue 37, item 4): ``ganvae.train``'s keywords reach the config as the Python values they are
(never through ``--set`` text), and the library's field errors carry the field, which each front end words as its
user typed it: a flag on the command line, a keyword in Python, a JSON field in the explorer."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest
from conftest import LIKE_ZOO, write_idx_dataset

import ganvae
from ganvae.errors import ConfigError, DataError, FieldError, GanvaeError

TINY = dict(epochs=1, batch_size=8, progress=False, model__latent_dim=4, model__hidden=[16], run__tensorboard=False,
            checkpoint_every=1)


# ----------------------------------------------------------------------------- values stay values


def test_a_string_that_looks_like_a_number_stays_a_folder_name(tmp_path, monkeypatch):
    """``data_dir="2024"`` is the folder 2024 (it used to be read as the YAML number 2024 and refused with --set)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"data_dir='2024': no such folder") as err:
        ganvae.train("vae", out=tmp_path / "run", dataset="mnist", data_dir="2024", **TINY)
    assert isinstance(err.value, FieldError) and err.value.field == "data_dir" and err.value.value == "2024"
    assert "--" not in str(err.value)  # no command-line flags in a Python error


def test_the_keywords_build_the_config_as_values():
    from ganvae.config import build_config
    from ganvae.inference.pipeline import keyword_settings

    values = keyword_settings({"data_dir": "2024", "epochs": 2, "model__latent_dim": 4, "max_minutes": None,
                               "classes": (3, 5), "progress": False})
    assert values == {"data": {"data_dir": "2024", "classes": (3, 5)}, "train": {"epochs": 2, "max_minutes": None,
                                                                                "progress": False},
                      "model": {"latent_dim": 4}}
    cfg = build_config("vae", values=values)
    assert cfg.data.data_dir == "2024" and cfg.data.classes == [3, 5] and cfg.train.epochs == 2
    assert cfg.model.latent_dim == 4 and cfg.train.progress is False
    assert build_config("vae", values={"data": {"data_dir": "null"}}).data.data_dir == "null"


def test_a_folder_named_null_is_that_folder(tmp_path, monkeypatch):
    """``data_dir="null"`` trains on the folder ./null (it used to become None: the cache, or the packaged data)."""
    monkeypatch.chdir(tmp_path)
    write_idx_dataset(tmp_path / "null", n_train=64, n_test=20)
    pipe = ganvae.train("vae", out=tmp_path / "run", dataset="mnist", data_dir="null", data__download=False, **TINY)
    assert pipe.config.data.data_dir == "null"
    assert "data_dir: 'null'" in (pipe.run.run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("keywords, says", [
    ({"data_dir": 2024}, r"data_dir=2024: 'data\.data_dir' must be a string"),
    ({"classes": "3,5"}, r"classes='3,5': 'data\.classes' must be a list"),  # a string is not read as a list
    ({"model__latent_dimm": 3}, (r"model__latent_dimm=3: unknown key 'model\.latent_dimm'\. Did you mean "
                                 r"model__latent_dim=\.\.\.\?")),
    ({"epochs": 0}, r"train\.epochs is 0; it must be at least 1\. Fix epochs=\.\.\. or the config file's"),
    ({"model__latent_dim": 0}, r"Fix model__latent_dim=\.\.\. or the config file's model\.latent_dim"),
])
def test_bad_keywords_are_named_as_keywords(tmp_path, keywords, says):
    with pytest.raises(ConfigError, match=says) as err:
        ganvae.train("vae", out=tmp_path / "run", **{**TINY, **keywords})
    assert "--" not in str(err.value) and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- one error, three front ends


def test_the_evaluate_count_names_the_keyword_in_python_and_the_flag_on_the_command_line(capsys, tiny_pretrained):
    from ganvae.cli import main
    from ganvae.inference import tasks as operations

    run = tiny_pretrained(*LIKE_ZOO["gan"])
    with pytest.raises(ConfigError, match=r"^n_samples=10: it must be at least 50 ") as err:
        operations.evaluate(run, n_samples=10)
    assert (err.value.field, err.value.value, err.value.bound) == ("n_samples", 10, 50)
    assert "--" not in str(err.value)
    assert main(["evaluate", str(run), "--n-samples", "10"]) == 2
    said = capsys.readouterr().err
    assert "error: --n-samples 10: it must be at least 50 " in said and "n_samples=" not in said


def test_a_bound_broken_in_python_and_on_the_command_line(capsys, tmp_path):
    from ganvae.cli import main

    assert main(["train", "vae", "--epochs", "0", "--out", str(tmp_path / "a")]) == 2
    assert "Fix --epochs, --set train.epochs=... or the config file's train.epochs." in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"Fix epochs=\.\.\. or the config file's train\.epochs\.") as err:
        ganvae.train("vae", out=tmp_path / "b", epochs=0)
    assert err.value.field == "train.epochs" and err.value.value == 0 and err.value.bound.says == "at least 1"


def test_resume_without_a_run_folder(capsys):
    from ganvae.cli import main

    assert main(["train", "vae", "--resume"]) == 2
    assert "--resume needs --out RUN_FOLDER: the run to continue." in capsys.readouterr().err
    with pytest.raises(GanvaeError, match=r"resume=True\) needs out=RUN_FOLDER"):
        ganvae.train("vae", resume=True)


def test_an_explorer_request_is_answered_with_its_json_field(tiny_pretrained):
    pytest.importorskip("httpx", reason="FastAPI's test client needs httpx: pip install -e '.[test]'")
    from fastapi.testclient import TestClient

    from ganvae.explore.server import build_explorer, create_app

    vae, cgan = str(tiny_pretrained(*LIKE_ZOO["vae"])), str(tiny_pretrained(*LIKE_ZOO["cgan"]))
    client = TestClient(create_app(build_explorer([vae, cgan])), base_url="http://localhost")
    res = client.post("/api/sample", json={"model": vae, "n": 2, "digit": 3})
    detail = res.json()["detail"]
    assert res.status_code == 400 and detail.startswith("digit 3: ") and "not conditional" in detail, detail
    assert "--" not in detail and "labels=" not in detail
    res = client.post("/api/sample", json={"model": cgan, "n": 2, "digit": 12})
    assert res.status_code == 400 and res.json()["detail"].startswith("digit 12: "), res.json()


def test_a_field_error_is_worded_by_each_front_end():
    from ganvae.cli.common import flag
    from ganvae.errors import FieldConfigError, Placeholder
    from ganvae.explore.server import json_field
    from ganvae.inference.pipeline import keyword

    err = FieldConfigError("data.data_dir", "2024", "{given}: no such folder; or drop {field}, or pass {given:out}.",
                           values={"out": Placeholder("DIR")})
    assert err.render(flag) == ("--data-dir 2024: no such folder; or drop --data-dir, --set data.data_dir=..., "
                                "or pass --out DIR.")
    assert err.render(keyword) == "data_dir='2024': no such folder; or drop data_dir=..., or pass out=DIR."
    assert str(err) == "data__data_dir='2024': no such folder; or drop data__data_dir=..., or pass out=DIR."
    assert err.render(json_field).startswith('data.data_dir="2024": no such folder')
    import pickle

    again = pickle.loads(pickle.dumps(err.worded(keyword)))
    assert str(again) == err.render(keyword) and again.field == "data.data_dir" and isinstance(again, ConfigError)


# ----------------------------------------------------------------------------- no flag names in the library


def _library_modules():
    import ganvae as package

    for info in pkgutil.walk_packages(package.__path__, "ganvae."):
        if info.name.endswith("__main__"):
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed (the explorer's web stack, ONNX)
            continue


def test_no_library_function_takes_a_flag_name():
    """The library raises field errors; the front ends word them. So no function takes the front end's words."""
    words = {"flag", "knob", "instead", "needs_out"}
    found = []
    for module in _library_modules():
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            functions = [(name, obj)] if inspect.isfunction(obj) else [
                (f"{name}.{m}", f) for m, f in vars(obj).items() if inspect.isfunction(f)
                # a dataclass's __init__ takes its fields: a table's columns (config.Shortcut.flag, the flag of a
                # setting, is the CLI's table, read by the CLI), not a function's words
                and not (m == "__init__" and dataclasses.is_dataclass(obj))] if inspect.isclass(obj) else []
            for qualified, fn in functions:
                bad = words & set(inspect.signature(fn).parameters)
                if bad:
                    found.append(f"{module.__name__}.{qualified}({', '.join(sorted(bad))})")
    assert not found, found
