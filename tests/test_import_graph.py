"""The package's import graph has no cycle, counting imports inside functions (issue 12): a cycle means two
layers that cannot be understood, tested or replaced one without the other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ganvae

PACKAGE = Path(ganvae.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the ganvae modules it imports anywhere in its source (top level, functions, TYPE_CHECKING)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from ganvae.metrics import core` imports the module ganvae.metrics.core
                targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                               for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = 2, path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    graph = import_graph()
    assert "ganvae.models.base" in graph and graph["ganvae.cli"], "the graph was not built"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_models_do_not_import_the_training_layer():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("ganvae.models"):
            assert not {t for t in targets if t.startswith(("ganvae.training", "ganvae.data", "ganvae.config"))}, name



INFERENCE = ("ganvae.storage", "ganvae.inference", "ganvae.explore")

# the package's face and its foundations; everything else lives in a folder that says what it holds (issue 37)
TOP_LEVEL = {"__init__", "__main__", "_version", "errors", "config", "bounds", "registry", "datasets"}


def test_the_top_level_holds_only_the_face_and_the_foundations():
    assert {p.stem for p in PACKAGE.glob("*.py")} == TOP_LEVEL


def test_inference_does_not_import_the_training_package():
    """Loading, drawing, evaluating and exploring a trained model need the on-disk formats (ganvae.storage), not the
    trainer; Pipeline reaches training only through ganvae.training.launch, for Pipeline's own ``train``."""
    graph = import_graph()
    checked = [name for name in graph if name.startswith(INFERENCE)]
    assert {"ganvae.storage", "ganvae.storage.checkpoint", "ganvae.inference",
            "ganvae.inference.writers"} <= set(checked)
    for name in checked:
        if name != "ganvae.inference.pipeline":  # checked below: it trains through the one way in
            assert not {t for t in graph[name] if t.startswith("ganvae.training")}, name
    assert {t for t in graph["ganvae.inference.pipeline"]
            if t.startswith("ganvae.training")} == {"ganvae.training.launch"}
    # the format code names no network and no setting of a family: the model declares them
    for module in ("storage/pretrained_folder.py", "storage/checkpoint.py", "storage/__init__.py"):
        text = (PACKAGE / module).read_text()
        assert '"discriminator"' not in text and "ema_decay" not in text, module

# The commands that only list or print must answer without importing torch (issue 25: `ganvae --help` took
# seconds because building the parser imported every network through the registry).
LIGHT_COMMANDS = [["--help"], ["--version"], ["train", "--help"], ["config", "show", "gan"],
                  ["config", "show", "cppn"], ["data", "list"], ["models"]]


@pytest.mark.parametrize("argv", LIGHT_COMMANDS, ids=" ".join)
def test_light_commands_do_not_import_torch(argv):
    probe = ("import sys\n"
             "from ganvae.cli import main\n"
             "try:\n"
             f"    main({argv!r})\n"
             "except SystemExit:\n"
             "    pass\n"
             "heavy = sorted(m for m in ('torch', 'numpy') if m in sys.modules)\n"
             "print('HEAVY=' + ','.join(heavy))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stdout, f"ganvae {' '.join(argv)} imported {done.stdout.split('HEAVY=')[-1]}"


def test_the_probe_sees_torch_when_a_command_needs_it():
    probe = "import sys\nimport ganvae.models.gan\nprint('torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
