"""``ganvae train`` and ``ganvae config``: a family's settings, and training with them."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from ganvae.cli import common


def add_train(sub) -> None:
    from ganvae.config import SHORTCUTS
    from ganvae.registry import get_entry

    models = common.model_names()
    p = sub.add_parser("train", help="train a model", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="models:\n" + "\n".join(f"  {n:<9} {get_entry(n).description}" for n in models))
    p.add_argument("model", choices=models, metavar="MODEL", help=f"one of: {', '.join(models)}")
    p.add_argument("--preset",
                   help="a shipped preset (`ganvae config presets`), e.g. tf-tutorial; applied before --config")
    p.add_argument("--config", help="YAML config file")
    for s in SHORTCUTS:  # --dataset, --epochs, --out, ...: the settings with their own flag (config.SHORTCUTS)
        p.add_argument(s.flag, type=common.classes if s.type == "classes" else s.type, help=s.help)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=train)


def train(args) -> int:
    from ganvae.config import SHORTCUTS, shortcut_settings
    from ganvae.training.launch import train_run

    settings = shortcut_settings({s.key: getattr(args, s.key) for s in SHORTCUTS})
    result = train_run(args.model, out=args.out, resume=args.resume, config_file=args.config, settings=settings,
                       overrides=args.set, preset=args.preset, argv=args.argv)
    print(result.run_dir)
    return 0


def add_config(sub) -> None:
    p = sub.add_parser("config", help="show configurations")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = csub.add_parser("show", help="print a model's full configuration (defaults, or a file with overrides)")
    models = common.model_names()
    q.add_argument("model", choices=models, metavar="MODEL", help=f"one of: {', '.join(models)}")
    q.add_argument("--preset", help="a shipped preset to apply first")
    q.add_argument("--config", help="YAML file to apply")
    q.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value (repeat it for several)")
    q.add_argument("--explain", action="store_true",
                   help="above each value, its meaning (the comment at the field's definition)")
    csub.add_parser("presets", help="list the shipped presets: the original scripts' settings")
    p.set_defaults(func=config)


def config(args) -> int:
    from ganvae.config import build_config, default_config

    if args.config_command == "show":
        if args.config or args.set or args.preset:
            cfg = build_config(args.model, args.config, overrides=args.set, preset=args.preset)
        else:
            cfg = default_config(args.model)
        sys.stdout.write(explained_yaml(cfg) if args.explain else cfg.to_yaml())
        return 0
    if args.config_command == "presets":
        from ganvae.config import list_presets

        for p in list_presets():
            print(f"{p.name:<18} {p.model_name:<8} {p.description}")
        print("\nrun one with: ganvae train MODEL --preset NAME (flags and --set still apply on top)")
        return 0
    raise AssertionError(args.config_command)


# ----------------------------------------------------------------------------- config show --explain

EXPLAIN_WIDTH = 100  # columns of the wrapped comments


def explained_yaml(cfg) -> str:
    """``cfg.to_yaml()`` with each section's and field's meaning as ``#`` comments above it: the same YAML (a
    config file to start from), the comments read from the definitions (:func:`field_meanings`)."""
    import dataclasses
    import inspect

    import yaml

    from ganvae.config import SECTIONS
    from ganvae.registry import get_entry

    def comment(text: str, indent: str) -> list[str]:
        import textwrap

        return textwrap.wrap(text, EXPLAIN_WIDTH, initial_indent=indent + "# ", subsequent_indent=indent + "# ",
                             break_long_words=False, break_on_hyphens=False)

    entry = get_entry(cfg.model_name)
    lines = [*comment(f"the model family: {entry.description}", ""), f"model_name: {cfg.model_name}"]
    for name in SECTIONS:
        section = getattr(cfg, name)
        cls = type(section)
        about = (f"the {cfg.model_name} family's own settings ({cls.__name__})" if name == "model"
                 else (inspect.getdoc(cls) or "").split("\n")[0])
        lines += [*comment(about, ""), f"{name}:"]
        values = dataclasses.asdict(section)
        meanings = field_meanings(cls)
        for key, value in values.items():
            lines += comment(meanings[key] or "(its definition has no comment)", "  ")
            lines += ["  " + line for line in yaml.safe_dump({key: value}, sort_keys=False).splitlines()]
    return "\n".join(lines) + "\n"


def field_meanings(cls: type) -> dict[str, str]:
    """Each field of config dataclass ``cls`` -> its meaning: the comment at its definition (the comment lines
    right above it, then one on its own lines), from the first class in ``cls``'s MRO whose definition of it has
    one (an override that only changes the default keeps its parent's meaning); '' where none has."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(cls)]
    found: dict[str, str] = {}
    for klass in cls.__mro__[:-1]:  # (not object)
        comments = _field_comments(klass)
        for name in names:
            if name not in found and comments.get(name):
                found[name] = comments[name]
    return {name: found.get(name, "") for name in names}


@functools.cache
def _field_comments(cls: type) -> dict[str, str]:
    """The comments of the fields ``cls``'s own body annotates, by field name, read from its source."""
    import ast
    import inspect
    import io
    import re
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source kept (a class made in an interactive session): no comments
        return {}
    comments = {}  # line number (1-based, in ``source``) -> its comment's text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:  # (a linter's or type checker's pragma is no meaning)
            text = re.split(r"#\s*(?:noqa|type:)", tok.string)[0].lstrip("#").strip()
            if text:
                comments[tok.start[0]] = text
    lines = source.splitlines()
    out: dict[str, str] = {}
    tree: Any = ast.parse(source).body[0]  # the ClassDef
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above = []
        n = node.lineno - 1
        while n >= 1 and lines[n - 1].lstrip().startswith("#"):  # comment lines right above, no blank between
            if n in comments:
                above.insert(0, comments[n])
            n -= 1
        on = [comments[i] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1) if i in comments]
        out[node.target.id] = " ".join(above + on)
    return out


COMMANDS = (add_train, add_config)
