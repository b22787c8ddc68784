"""The README's commands and its Python block, as a user copies them: every command parses and its settings are
valid, and those that need nothing but the installed package run for real, offline, from a folder with no
repository or MNIST beside it."""

import re
import shlex
from pathlib import Path

import pytest

from ganvae.cli import build_parser, main
from ganvae.config import build_config
from ganvae.registry import BUILTIN

README = (Path(__file__).parents[1] / "README.md").read_text()


def readme_commands() -> list[list[str]]:
    """Every ``ganvae ...`` line of the README's shell blocks, as argv after ``ganvae`` (comments dropped;
    ``torchrun ... -m ganvae ...`` lines too, with their continuation lines)."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            if "ganvae" in words:
                commands.append(words[words.index("ganvae") + 1 :])
    return commands


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_has_the_commands_this_test_reads():
    commands = readme_commands()
    assert len(commands) >= 40 and ["models"] in commands and any(c[:1] == ["train"] for c in commands)


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses_and_its_settings_are_valid(argv):
    parser = build_parser()
    names = BUILTIN if "MODEL" in argv else [None]  # `ganvae train MODEL ...`: each family
    for name in names:
        args = parser.parse_args([name if a == "MODEL" else a for a in argv])  # a wrong flag exits 2 here
        if getattr(args, "set", None) is not None and getattr(args, "model", None):
            build_config(args.model, overrides=args.set, preset=getattr(args, "preset", None))  # unknown keys raise


# the README's commands that need only the package: run exactly as printed
RUNNABLE = [
    "data list",
    "data info mnist",
    "config show dcgan",
    "config show dcgan --set train.batch_size=128 --set model.gan_loss=hinge",
    "config presets",
    "config show dcgan --preset tf-tutorial",
    "models",
    "sample mnist-dcgan -n 64 --out grid.png",
    "sample mnist-cgan --digit 7 -n 16 --out sevens.png",
    "sample colour-digits-conv-vae -n 64 --out colour.png",
]


def test_the_runnable_list_is_the_readmes_own():
    assert all(shlex.split(c) in readme_commands() for c in RUNNABLE)


@pytest.mark.parametrize("command", RUNNABLE)
def test_readme_commands_run_offline(offline, command, capsys):
    assert main(shlex.split(command)) == 0
    out = capsys.readouterr().out
    assert out.strip()
    for word in shlex.split(command):
        if word.endswith(".png"):
            assert (offline / word).stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("command", ["render mnist-cppn --size 2160x2160 --out poster.png",
                                     "compare mnist-gan mnist-cgan --dataset mnist-25k --out report"])
def test_slower_readme_commands_run_offline(offline, command):
    assert shlex.split(command) in readme_commands()
    assert main(shlex.split(command)) == 0


def test_the_readme_python_block_runs_offline(offline):
    """The Python API block, with its two long lines shortened: training to a single epoch, the render to 128."""
    block = next(b for b in python_blocks() if "ganvae.load(" in b and "save_pretrained" in b)
    assert "images" in block.split("reconstruct(")[0]  # the images it reconstructs are defined before
    assert "epochs=3" in block and ".render(1024" in block  # what the shortening below replaces
    code = block.replace("epochs=3", "epochs=1").replace(".render(1024", ".render(128")  # the same calls, smaller
    namespace: dict = {}
    exec(compile(code, "README.md[python]", "exec"), namespace)  # noqa: S102
    assert (offline / "my-vae" / "model.safetensors").is_file()
