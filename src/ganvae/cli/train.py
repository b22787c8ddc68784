"""``ganvae train`` and ``ganvae config``: a family's settings, and training with them."""

from __future__ import annotations

import argparse
import sys

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
    q.add_argument("model", choices=common.model_names(), metavar="MODEL")
    q.add_argument("--preset", help="a shipped preset to apply first")
    q.add_argument("--config", help="YAML file to apply")
    q.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    csub.add_parser("presets", help="list the shipped presets: the original scripts' settings")
    p.set_defaults(func=config)


def config(args) -> int:
    from ganvae.config import build_config, default_config

    if args.config_command == "show":
        if args.config or args.set or args.preset:
            cfg = build_config(args.model, args.config, overrides=args.set, preset=args.preset)
        else:
            cfg = default_config(args.model)
        sys.stdout.write(cfg.to_yaml())
        return 0
    if args.config_command == "presets":
        from ganvae.config import list_presets

        for p in list_presets():
            print(f"{p.name:<18} {p.model_name:<8} {p.description}")
        print("\nrun one with: ganvae train MODEL --preset NAME (flags and --set still apply on top)")
        return 0
    raise AssertionError(args.config_command)


COMMANDS = (add_train, add_config)
