"""`ganvae config show --explain`: each field's meaning beside its value, read from the comment at its definition,
so every field of every family needs one."""

import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import yaml

from ganvae.cli import main
from ganvae.cli.train import explained_yaml, field_meanings
from ganvae.config import SECTIONS, default_config
from ganvae.registry import model_names


@pytest.mark.parametrize("model", model_names())
def test_every_field_of_every_family_says_what_it_means(model):
    cfg = default_config(model)
    missing = [f"{section}.{name}" for section in SECTIONS
               for name, meaning in field_meanings(type(getattr(cfg, section))).items() if not meaning.strip()]
    assert not missing, f"{model}: no comment at the definition of {', '.join(missing)}; add one beside the field"


def test_explain_prints_each_meaning_above_its_value(capsys):
    assert main(["config", "show", "dcgan"]) == 0
    plain = capsys.readouterr().out
    assert main(["config", "show", "dcgan", "--explain", "--set", "model.latent_dim=8"]) == 0
    explained = capsys.readouterr().out
    assert "  # size of the noise vector z\n  latent_dim: 8\n" in explained
    assert "# Where the training images come from and how they are prepared.\ndata:\n" in explained
    assert "  # passes over the training set" in explained  # a comment above its field, joined and rewrapped
    # the same YAML as without the flag (a config file to start from), the comments aside
    values = "".join(line + "\n" for line in explained.splitlines() if not line.lstrip().startswith("#"))
    assert values == plain.replace("latent_dim: 100", "latent_dim: 8")
    assert yaml.safe_load(explained)["model"]["latent_dim"] == 8


def test_explain_answers_without_torch():
    """Like `config show`, a light command (tests/test_import_graph.py): reading the comments imports no network."""
    probe = ("import sys\nfrom ganvae.cli import main\nmain(['config', 'show', 'cppn', '--explain'])\n"
             "print('HEAVY=' + ','.join(sorted(m for m in ('torch', 'numpy') if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stdout, done.stdout.split("HEAVY=")[-1]


def test_explain_keeps_every_line_of_a_value():
    cfg = default_config("vae")
    cfg.data.classes = [3, 5]
    assert explained_yaml(cfg).replace("  # train on these class indices only (e.g. [3, 5])\n", "").count(
        "  classes:\n  - 3\n  - 5\n") == 1
    assert yaml.safe_load(explained_yaml(cfg)) == cfg.to_dict()


@dataclass
class _Base:
    size: int = 3  # on its line
    # above it,
    # on two lines
    widths: list[int] = field(default_factory=lambda: [1, 2])
    tag: str = "a # not a comment"
    both: int = 0  # and on its line  # noqa: E501
    pragma: int = 0  # type: ignore


@dataclass
class _Child(_Base):
    size: int = 4  # (an override that only changes the default keeps its parent's meaning below)
    widths: list[int] = field(default_factory=list)


def test_field_meanings_read_the_comment_at_the_definition():
    assert field_meanings(_Base) == {"size": "on its line", "widths": "above it, on two lines", "tag": "",
                                     "both": "and on its line", "pragma": ""}
    child = field_meanings(_Child)
    assert child["size"].startswith("(an override") and child["widths"] == "above it, on two lines"
