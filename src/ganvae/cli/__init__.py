"""The ``ganvae`` command: parse arguments, then call the library. No work happens at import, and no torch: each
command group lives in its own module (its parsers beside its handlers) and imports what it needs when it runs, so
``ganvae --help``, ``--version``, ``config show``, ``data list`` and ``models`` answer without loading torch.

A new command goes in the module of its group (or a new one listed in :data:`GROUPS`): an ``add_NAME(sub)`` that
builds its parser and sets ``func``, the handler beside it, and the adder listed in the module's ``COMMANDS``."""

from __future__ import annotations

import argparse
import logging
import sys

from ganvae.cli import data, draw, evaluate, explore, train, zoo
from ganvae.errors import GanvaeError

log = logging.getLogger("ganvae")

# the command groups, in the order ``ganvae --help`` lists their commands
GROUPS = (train, draw, evaluate, data, zoo, explore)


def _add_verbosity(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors")
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="debug messages too")


class _CommandParser(argparse.ArgumentParser):
    """A sub-command's parser: takes -q/-v too, so they work after the command (``ganvae train gan -q``).
    Their default is SUPPRESS, so a sub-command that is not given them keeps what came before it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _add_verbosity(self, argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    from ganvae._version import __version__

    parser = argparse.ArgumentParser(
        prog="ganvae",
        description="Train, sample, animate and compare GANs and VAEs on MNIST-like data.",
    )
    parser.add_argument("--version", action="version", version=f"ganvae {__version__}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    for group in GROUPS:
        for add in group.COMMANDS:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; user errors print one paragraph (exit 2), Ctrl-C exits 130 at any
    point, start-up (the imports of torch and the models) included."""
    import os

    try:
        from ganvae.storage.run_folder import setup_logging

        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = ["ganvae", *(sys.argv[1:] if argv is None else argv)]  # what ran, for command.txt
        quiet = args.quiet or int(os.environ.get("RANK", "0")) > 0  # under torchrun only rank 0 talks
        setup_logging(logging.WARNING if quiet else logging.DEBUG if args.verbose else logging.INFO)
        return int(args.func(args) or 0)
    except GanvaeError as err:  # in the command line's words: a field error names its flag (cli.common.message)
        from ganvae.cli.common import message

        print(f"error: {message(err)}", file=sys.stderr)
        return err.exit_code
    except ImportError as err:  # an optional package missing: ganvae's own sentences say what to install
        if "pip install" not in str(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ganvae data info mnist | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (keeps the interpreter's final flush quiet)
        return 0
