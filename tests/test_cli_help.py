"""Every flag and argument of every ``ganvae`` command says what it does in ``--help``."""

import argparse

from ganvae.cli import build_parser

SKIP = {"demo"}  # being rewritten elsewhere; its own change gives its flags help


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for the parser and each sub-command's, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name not in SKIP:
                    yield from _commands(sub, (*path, name))


def test_every_flag_and_argument_has_help():
    missing = []
    for path, parser in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue  # -h is argparse's own; a sub-command list is described by its commands' help
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"ganvae {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "no help text:\n" + "\n".join(missing)


def test_every_command_has_help():
    parser = build_parser()
    for path, sub in _commands(parser):
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {a.dest for a in action._choices_actions}
                for name in action.choices:
                    assert name in listed, f"ganvae {' '.join(path)} {name}: no help line"
