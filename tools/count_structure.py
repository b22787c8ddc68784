"""Count the structure figures issue 37 sets targets for (run from the repository root):
GenerativeModel's members, the trainer's lines, top-level modules, branches on the prior kind outside
the prior modules, files that handle the ``latent_prior.`` key prefix.

    python tools/count_structure.py
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path("src/ganvae")


def class_members(path: Path, name: str) -> list[str]:
    """Methods and properties defined in class ``name`` of ``path`` (a property and its setter count once)."""
    tree = ast.parse(path.read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    return sorted({n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})


def main() -> None:
    members = class_members(SRC / "models" / "base.py", "GenerativeModel")
    print(f"GenerativeModel members (methods and properties): {len(members)}: {', '.join(members)}")
    trainer = SRC / "training" / "trainer.py"
    print(f"training/trainer.py lines: {len(trainer.read_text().splitlines())}")
    top = sorted(p.name for p in SRC.glob("*.py"))
    print(f"top-level modules: {len(top)}: {', '.join(top)}")
    prior_files = {"models/latents.py", "models/prior.py"}
    # questions about which prior is in force (the mixture or not, fitted or not, how many groups, its kind); the
    # adversarial model asking whether its own self-conditioning object exists is not one
    kind = re.compile(r"latent_prior is (not )?None|self_conditioned|\.is_fitted|\.groups [<>=]|"
                      r"isinstance\([^)]*Prior|prior\.kind ==")
    branches = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if str(p.relative_to(SRC)) not in prior_files
                for i, line in enumerate(p.read_text().splitlines(), 1) if kind.search(line)]
    print(f"lines asking which prior is in force outside the prior modules: {len(branches)} {branches}")
    prefix = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                    if re.search(r"[\"']latent_prior\.", p.read_text()))
    print(f"files spelling the 'latent_prior.' key prefix: {len(prefix)} {prefix}")


if __name__ == "__main__":
    main()
