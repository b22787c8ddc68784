"""Hostile plugins (issue 39, items 14 and 16): a family from another package whose entry breaks the contract is
refused when it is registered, naming the field and the fix; an installed one is skipped with one warning line,
whatever its import does (``sys.exit`` included); a training step that returns something else than its losses is
named, with the family and the method.

The command-line tests install real entry points: a package module and its ``*.dist-info`` (METADATA and
entry_points.txt in the group ``ganvae.models``) in a folder on PYTHONPATH, as pip leaves them."""

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import write_idx_dataset

import ganvae
from ganvae import registry
from ganvae.cli import main
from ganvae.errors import FieldConfigError, UnsupportedOperation
from ganvae.models.base import GenerativeModel, check_step_result

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "examples" / "wgan-gp-plugin" / "src"
GOOD = ("ganvae_wgan_gp", "wgan-gp", "ganvae_wgan_gp:ENTRY", None)  # the example plugin: lists, as a control


def install(site: Path, dist: str, family: str, target: str, source: str | None) -> None:
    """An installed distribution ``dist`` in ``site``: its module ``dist.py`` (``source``, when given) and the
    dist-info whose entry point ``family = target`` is in the group ``ganvae.models``."""
    info = site / f"{dist}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{registry.PLUGIN_GROUP}]\n{family} = {target}\n")
    if source is not None:
        (site / f"{dist}.py").write_text(textwrap.dedent(source))


def ganvae_cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m ganvae ARGS`` with the distributions of ``site`` (and the example plugin) installed."""
    path = os.pathsep.join([str(site), str(PLUGIN_SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "ganvae", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path, **env})


def lines_naming(text: str, family: str) -> list[str]:
    return [line for line in text.splitlines() if repr(family) in line]


# ----------------------------------------------------------------------------- item 14: skipped at registration

BAD_STRINGS = '''
    from ganvae.registry import ModelEntry

    ENTRY = ModelEntry(name="bad-strings", config="nonexistent.module:Cfg", model="nonexistent.module:Model",
                       description="classes named by strings that do not import", family="GAN")
'''
BAD_MODEL_MODULE = '''
    from dataclasses import dataclass

    from ganvae.registry import ModelEntry


    @dataclass
    class Cfg:
        latent_dim: int = 8  # size of z


    ENTRY = ModelEntry(name="bad-model", config="bad_model_plugin:Cfg", model="no_such_package.model:Model",
                       description="a model module that does not exist", family="GAN")
'''
NOT_A_DATACLASS = '''
    from ganvae.registry import ModelEntry


    class Cfg:
        latent_dim = 8


    class Model:  # not a GenerativeModel either; the config is refused first
        pass


    ENTRY = ModelEntry(name="not-dataclass", config=Cfg, model=Model, description="a plain class", family="GAN")
'''
NOT_A_MODEL = '''
    from dataclasses import dataclass

    from ganvae.registry import ModelEntry


    @dataclass
    class Cfg:
        latent_dim: int = 8  # size of z


    class Model:
        def training_step(self, x, optimizers, ctx):
            return {}


    ENTRY = ModelEntry(name="not-model", config=Cfg, model=Model, description="not a GenerativeModel", family="GAN")
'''


def test_a_plugin_whose_entry_breaks_the_contract_is_skipped_with_one_warning(tmp_path):
    """Before: `bad-strings` was listed by `ganvae train --help`, and `config show` / `train` on it ended with a
    ModuleNotFoundError traceback (exit 1). Now the entry is checked when it is registered: skipped, with one
    warning line naming the plugin, its distribution, the field and why; the family is not offered."""
    site = tmp_path / "site"
    plugins = [("badstr_plugin", "bad-strings", "badstr_plugin:ENTRY", BAD_STRINGS),
               ("bad_model_plugin", "bad-model", "bad_model_plugin:ENTRY", BAD_MODEL_MODULE),
               ("plain_plugin", "not-dataclass", "plain_plugin:ENTRY", NOT_A_DATACLASS),
               ("not_model_plugin", "not-model", "not_model_plugin:ENTRY", NOT_A_MODEL)]
    for plugin in [GOOD, *plugins]:
        install(site, *plugin)
    done = ganvae_cli(site, "train", "--help")
    assert done.returncode == 0, done.stderr
    assert "wgan-gp" in done.stdout  # a good plugin still joins
    expected = {"bad-strings": ["config='nonexistent.module:Cfg'", "ModuleNotFoundError", "'nonexistent'"],
                "bad-model": ["model='no_such_package.model:Model'", "does not import", "'no_such_package'"],
                "not-dataclass": ["config=plain_plugin.Cfg", "is not a dataclass"],
                "not-model": ["model=not_model_plugin.Model", "not a subclass of ganvae.models.base.GenerativeModel"]}
    for dist, family, _, _ in plugins:
        assert family not in done.stdout
        (line,) = lines_naming(done.stderr, family)  # one line, naming the plugin and its distribution
        assert f"model plugin {family!r} from {dist}" in line and f"uninstall {dist}" in line, line
        for part in expected[family]:
            assert part in line, (part, line)
    for command in (["config", "show", "bad-strings"], ["train", "bad-strings", "--epochs", "1"]):
        done = ganvae_cli(site, *command)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "invalid choice: 'bad-strings'" in done.stderr and "wgan-gp" in done.stderr


EXITS = '''
    import sys

    sys.exit(3)
'''
RAISES_BASE = '''
    raise GeneratorExit("a BaseException that is not an Exception")
'''


def test_a_plugin_that_exits_at_import_is_skipped_with_one_warning(tmp_path):
    """Before: a plugin calling sys.exit(3) at import made every command exit 3 without a word, `--version`
    included (and one raising a BaseException ended each with its traceback). Now each is a failing plugin like
    any other: one warning naming it and what its import did, and the command goes on."""
    site = tmp_path / "site"
    install(site, *GOOD)
    install(site, "exit_plugin", "exiter", "exit_plugin:ENTRY", EXITS)
    install(site, "base_plugin", "raiser", "base_plugin:ENTRY", RAISES_BASE)
    done = ganvae_cli(site, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ganvae {ganvae.__version__}", done
    for family, dist, why in [("exiter", "exit_plugin", "SystemExit: 3"), ("raiser", "base_plugin", "GeneratorExit")]:
        (line,) = lines_naming(done.stderr, family)
        assert f"model plugin {family!r} from {dist} could not be loaded ({why}" in line, line
        assert f"uninstall {dist}" in line, line
    done = ganvae_cli(site, "train", "--help")
    assert done.returncode == 0 and "wgan-gp" in done.stdout and "exiter" not in done.stdout, done.stderr


# ----------------------------------------------------------------------------- item 16: register_model checks all


@dataclasses.dataclass
class Cfg:
    latent_dim: int = 4  # size of z


@dataclasses.dataclass
class EmaCfg(Cfg):
    ema_decay: float | None = None  # the generator's moving average


@dataclasses.dataclass
class NoDefault:
    latent_dim: int  # no default: `ganvae config show` could not build it


@dataclasses.dataclass
class Misspelt:
    latnt_dim: int = 4


class Tiny(GenerativeModel):
    """The least a family implements: optimisers, the step, decode."""

    networks = ("generator",)

    def __init__(self, config, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.generator = torch.nn.Linear(config.latent_dim, 1)

    def make_optimizers(self):
        return {"generator": torch.optim.SGD(self.generator.parameters(), lr=0.1)}

    def training_step(self, x, optimizers, ctx):
        return {"loss": torch.zeros(())}

    def decode(self, z, labels=None, **kwargs):
        return torch.zeros(len(z), *self.image_shape)


class NoStep(GenerativeModel):
    networks = ("generator",)

    def make_optimizers(self):
        return {}

    def decode(self, z, labels=None, **kwargs):
        return z


class Ema(Tiny):
    ema_networks = ("generator",)


class StrayEma(Tiny):
    ema_networks = ("critic",)


class WrongRange(Tiny):
    value_range = "0-255"  # type: ignore[assignment]


class EncoderWithoutEncode(Tiny):
    has_encoder = True


REFUSED = [  # (what the entry gives, the field named, what the message says)
    ({"config": type("Plain", (), {"latent_dim": 4})}, "config", "is not a dataclass"),
    ({"config": "nonexistent.module:Cfg"}, "config", "does not import (ModuleNotFoundError"),
    ({"config": "ganvae.config:NoSuchClass"}, "config", "does not import (AttributeError"),
    ({"config": NoDefault}, "config", "fields without a default (latent_dim)"),
    ({"config": Misspelt}, "config", "no field 'latent_dim'"),
    ({"config": Cfg()}, "config", "is an instance; give its class, Cfg."),
    ({"model": torch.nn.Linear}, "model", "is not a subclass of ganvae.models.base.GenerativeModel"),
    ({"model": Tiny(Cfg())}, "model", "is not a subclass of ganvae.models.base.GenerativeModel"),
    ({"model": NoStep}, "model", "does not implement training_step"),
    ({"model": "no_such_package.model:Model"}, "model", "does not import (ModuleNotFoundError"),
    ({"model": "not a reference"}, "model", "give the class or 'package.module:ClassName'"),
    ({"model": Ema}, "config", "no field 'ema_decay' (Ema declares ema_networks=('generator',))"),
    ({"model": StrayEma, "config": EmaCfg}, "model", "ema_networks ['critic'] that are not among its networks"),
    ({"model": WrongRange}, "model", "value_range='0-255'"),
    ({"model": EncoderWithoutEncode}, "model", "does not implement encode"),
    ({"description": 3}, "description", "is not one line of text"),
    ({"description": "two\nlines"}, "description", "is not one line of text"),
    ({"family": None}, "family", "is not one line of text"),
    ({"train_defaults": [("batch_size", 8)]}, "train_defaults", "is not a dict of TrainConfig keys"),
    ({"train_defaults": {("batch", "size"): 8}}, "train_defaults", "is not a dict of TrainConfig keys"),
    ({"name": 7}, "name", "lower-case letters"),
]


@pytest.mark.parametrize(("given", "field", "says"), REFUSED, ids=[f"{r[1]}-{i}" for i, r in enumerate(REFUSED)])
def test_register_model_checks_every_field(given, field, says):
    """Before: register_model checked the name (and a class config for a dataclass) only; an entry with a model that
    is no GenerativeModel, a step missing, strings that do not import, a two-line description or train_defaults
    that are no dict joined the table and failed later, far away. Now each is refused, naming the field."""
    fields = {"name": "hostile-family", "config": Cfg, "model": Tiny, "description": "a family", **given}
    try:
        with pytest.raises(FieldConfigError) as caught:
            ganvae.register_model(**fields)
    finally:
        registry.unregister_model("hostile-family")
    assert caught.value.field == field and caught.value.value is fields[field], caught.value
    assert says in str(caught.value) and str(caught.value).startswith("register_model: "), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_good_entry_is_accepted_and_a_model_string_is_checked_when_first_imported():
    """A model named by a string is located when registered (its module must exist) and checked when it is first
    imported (building a model): importing it imports torch, which listing the families must not."""
    try:
        entry = ganvae.register_model(name="hostile-tiny", config=Cfg, model=Tiny, description="tiny",
                                      train_defaults={"batch_size": 8})
        assert registry.get_entry("hostile-tiny") is entry and entry.model_cls is Tiny
        lazy = ganvae.register_model(name="hostile-lazy", config=Cfg, model="ganvae.models.gan:MLPGenerator",
                                     description="a network, not a family")
        with pytest.raises(FieldConfigError, match=r"model family 'hostile-lazy': model=ganvae\.models\.gan\."
                                                   r"MLPGenerator is not a subclass of ganvae\.models\.base\."
                                                   r"GenerativeModel") as caught:
            lazy.model_cls
        assert caught.value.field == "model"
        missing = ganvae.register_model(name="hostile-missing", config=Cfg, model="ganvae.models.gan:NoSuchModel",
                                        description="a class that is not there")
        with pytest.raises(FieldConfigError, match="has no attribute 'NoSuchModel'"):
            missing.model_cls
    finally:
        for name in ("hostile-tiny", "hostile-lazy", "hostile-missing"):
            registry.unregister_model(name)


@pytest.mark.parametrize("name", registry.BUILTIN)
def test_the_builtin_families_meet_the_contract(name):
    entry = registry.get_entry(name)
    registry.check_model_class(name, entry.model_cls, entry.config_cls)  # raises if not


# ----------------------------------------------------------------------------- item 16: the step's contract

BROKEN_STEPS = [  # (what training_step returned, what the error says it got)
    (None, "returned NoneType None"),
    (0.5, "returned float 0.5"),
    ({}, "returned an empty dict"),
    ({"loss": 0.5}, "returned float 0.5 for loss 'loss'"),
    ({"loss": torch.zeros(3)}, "returned a tensor of shape (3,) for loss 'loss'"),
    ({"loss": torch.zeros(1, 1)}, "returned a tensor of shape (1, 1) for loss 'loss'"),
    ({"loss": torch.zeros((), dtype=torch.complex64)}, "returned a torch.complex64 tensor for loss 'loss'"),
    ({0: torch.zeros(())}, "returned a loss named 0 (int)"),
    ([torch.zeros(())], "returned list [tensor(0.)]"),
]


@pytest.mark.parametrize(("losses", "got"), BROKEN_STEPS, ids=[b[1] for b in BROKEN_STEPS])
def test_a_step_result_that_breaks_the_contract_is_named(losses, got):
    """Before (measured through the trainer): None or a float ended in `TypeError: 'NoneType' object is not
    iterable` inside outputs.sync_losses, a batch of losses in `unsupported format string passed to
    list.__format__` in the loss log: neither the family nor the method named. Now the family, training_step and
    the contract."""
    with pytest.raises(UnsupportedOperation) as caught:
        check_step_result("bad-step", losses)
    text = str(caught.value)
    assert text.startswith("model 'bad-step': its training_step ") and got in text, text
    assert "dict of loss name -> detached 0-dim tensor" in text, text


def test_a_step_result_that_meets_the_contract_passes_detached():
    weight = torch.ones((), requires_grad=True)
    losses = {"d_loss": weight * 2, "g_loss": torch.tensor(1.5), "count": torch.tensor(3)}
    checked = check_step_result("gan", losses)
    assert list(checked) == ["d_loss", "g_loss", "count"]
    assert not checked["d_loss"].requires_grad and float(checked["d_loss"]) == 2.0
    assert checked["g_loss"] is losses["g_loss"]  # nothing copied where nothing is to detach


STEP_PLUGIN = '''
    import os
    from dataclasses import dataclass

    import torch
    from torch import nn

    from ganvae.models.base import GenerativeModel, adam
    from ganvae.registry import ModelEntry


    @dataclass
    class Cfg:
        latent_dim: int = 4  # size of z


    class Model(GenerativeModel):
        networks = ("generator",)

        def __init__(self, config, image_shape=(1, 28, 28)):
            super().__init__(config, image_shape)
            c, h, w = image_shape
            self.generator = nn.Linear(config.latent_dim, c * h * w)

        def make_optimizers(self):
            return {"generator": adam(self.generator.parameters(), 1e-3, 0.5, 0.999)}

        def training_step(self, x, optimizers, ctx):
            loss = self.generator(ctx.randn(x.shape[0], self.noise_dim, x.device)).pow(2).mean()
            ctx.optimize(optimizers["generator"], loss)
            return {"none": None, "float": 0.5, "vector": {"loss": loss.detach().repeat(3)}}[os.environ["STEP"]]

        def decode(self, z, labels=None, **kwargs):
            return torch.tanh(self.generator(z)).view(-1, *self.image_shape)


    ENTRY = ModelEntry(name="bad-step", config=Cfg, model=Model, description="a step that breaks its contract",
                       family="GAN")
'''


def test_training_a_plugin_whose_step_breaks_the_contract_names_it(tmp_path):
    """End to end, through an installed plugin: `ganvae train` ends with one paragraph naming the family, the
    method and the contract (exit 2), not a traceback from the loss log. Needs the trainer's call of
    check_step_result after training_step (Trainer._train_epoch)."""
    site = tmp_path / "site"
    install(site, "step_plugin", "bad-step", "step_plugin:ENTRY", STEP_PLUGIN)
    data = write_idx_dataset(tmp_path / "idx", n_train=32, n_test=10)
    done = ganvae_cli(site, "-q", "train", "bad-step", "--out", str(tmp_path / "run"), "--epochs", "1",
                      "--batch-size", "16", "--dataset", "mnist", "--data-dir", str(data), "--set",
                      "train.progress=false", "--set", "run.tensorboard=false", STEP="none")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "model 'bad-step': its training_step returned NoneType None" in done.stderr, done.stderr


def test_a_plugin_model_string_that_is_no_family_stops_train_with_one_paragraph(tmp_path, capsys):
    """A model named by a string whose module exists is checked when the model is built: `ganvae train` then says
    which family, which field and the fix (exit 2) instead of failing inside the trainer."""
    data = write_idx_dataset(tmp_path / "idx", n_train=32, n_test=10)
    ganvae.register_model(name="hostile-net", config=Cfg, model="ganvae.models.gan:MLPGenerator",
                          description="a network, not a family")
    try:
        assert main(["-q", "train", "hostile-net", "--out", str(tmp_path / "run"), "--epochs", "1", "--dataset",
                     "mnist", "--data-dir", str(data), "--set", "train.progress=false"]) == 2
    finally:
        registry.unregister_model("hostile-net")
    err = capsys.readouterr().err
    assert "model family 'hostile-net': model=ganvae.models.gan.MLPGenerator is not a subclass" in err, err
