"""The ``ganvae`` command: parse arguments, then call the library. No work happens at import."""

from __future__ import annotations

import argparse
import logging
import sys

from ganvae.errors import GanvaeError, UnsupportedOperation
from ganvae.memory import MAX_MEMORY_GB

log = logging.getLogger("ganvae")


# ----------------------------------------------------------------------------- helpers


def _classes(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--classes {text!r}: expected class indices separated by commas, e.g. 3,5") from None


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1080x1080") from None


def _model_names() -> list[str]:
    from ganvae.registry import model_names

    return model_names()


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    from ganvae.config import SHORTCUTS

    for s in SHORTCUTS:
        if s.path in ("data.dataset", "data.data_dir"):
            p.add_argument(s.flag, help=s.help)


# ----------------------------------------------------------------------------- commands


def cmd_data(args) -> int:
    from ganvae.data import sources

    if args.data_command == "list":
        for s in sources.SOURCES.values():
            where = "offline, ships with ganvae" if s.offline else f"download, {len(s.mirrors)} mirrors"
            if args.data_dir is not None and not s.offline:
                try:  # the labels file is small: its checksum tells datasets with the same file names apart
                    labels = sources.resolve_files(s, data_dir=args.data_dir, allow_download=False)["train_labels"]
                    if sources.md5_file(labels) == s.files["train_labels"].md5:
                        where += f"; its files are in {args.data_dir}"
                except GanvaeError:
                    pass
            print(f"{s.name:<14} {s.title} ({where})")
        print(f"{'folder:PATH':<14} any folder of png/jpg images; sub-folders are classes")
        return 0
    if args.name.startswith("folder:") and args.data_command in ("info", "verify"):
        return _folder_info(args.name.removeprefix("folder:"), verify=args.data_command == "verify")
    source = sources.get_source(args.name)
    if args.data_command == "info":
        print(f"{source.name}: {source.title}")
        print(f"  {source.description}")
        print(f"  homepage: {source.homepage}")
        print(f"  license:  {source.license}")
        print(f"  classes:  {', '.join(f'{i}={c}' for i, c in enumerate(source.classes))}")
        if source.offline:
            print(f"  folder:   {sources.packaged_dir(source)} (inside the package)")
            if source.per_class:
                print(f"  slice:    the first {source.per_class[0]} train / {source.per_class[1]} test images of each class")
        else:
            print(f"  cache:    {sources.dataset_cache_dir(source)}")
            print("  mirrors:  " + "\n            ".join(source.mirrors))
        for role in sources.ROLES:
            spec = source.files[role]
            print(f"  {role:<13} {spec.filename}  md5 {spec.md5}")
        print(f"  content sums: {sources.content_sums_text(source)}")
        if args.data_dir is not None and not source.offline:
            try:
                found = sources.resolve_files(source, data_dir=args.data_dir, allow_download=False)
            except GanvaeError as err:
                print(f"  --data-dir: {err}")
            else:
                print(f"  --data-dir: {len(set(found.values()))} file(s) found: " + ", ".join(sorted({str(v) for v in found.values()})))
                print(f"  (`ganvae data verify {source.name} --data-dir {args.data_dir}` checks their content)")
        return 0
    if args.data_command == "download":
        if source.offline:
            print(f"{source.name} ships with ganvae; nothing to download.")
            return 0
        paths = sources.download(source, cache_dir=args.data_dir)
        for role, path in paths.items():
            print(f"{role:<13} {path}  OK")
        return 0
    if args.data_command == "verify":
        reports = sources.verify(source, data_dir=args.data_dir, accept_unverified=args.accept_unverified)
        for rep in reports:
            name = str(rep.path) if rep.path else source.files[rep.role].filename
            status = (f"OK ({rep.note})" if rep.note else "OK") if rep.ok else f"PROBLEM: {rep.problem}"
            print(f"{name}  md5 {rep.md5 or '-':<32}  {status}")
        bad = [r for r in reports if not r.ok]
        if bad:
            fix = "pass --data-dir DIR with good copies" if args.data_dir else f"run `ganvae data download {source.name}`"
            print(f"{len(bad)} of {len(reports)} files have problems; {fix}.", file=sys.stderr)
            return 1
        return 0
    raise AssertionError(args.data_command)


def _folder_info(path: str, verify: bool) -> int:
    """`ganvae data info|verify folder:PATH`: its classes and image counts (verify: every image read)."""
    from pathlib import Path

    from ganvae.data.dataset import class_folders, image_files, load_folder

    if not verify:
        root = Path(path).expanduser()
        counts = {name: len(image_files(folder, root)) for name, folder in class_folders(path)}
        print(f"folder:{path}: {sum(counts.values()):,} images in {len(counts)} class(es) (sub-folders are classes)")
        for name, count in counts.items():
            print(f"  {name:<14} {count:,} images")
        print(f"  (`ganvae data verify folder:{path}` reads every image)")
        return 0
    data = load_folder(path, image_size=28)
    print(f"folder:{path}: {len(data.train_images) + len(data.test_images):,} images read, classes "
          f"{', '.join(data.classes)}  OK")
    return 0


def cmd_config(args) -> int:
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


def cmd_train(args) -> int:
    from ganvae.config import SHORTCUTS, shortcut_settings
    from ganvae.training.launch import train_run

    settings = shortcut_settings({s.key: getattr(args, s.key) for s in SHORTCUTS})
    result = train_run(args.model, out=args.out, resume=args.resume, config_file=args.config, settings=settings,
                       overrides=args.set, preset=args.preset, argv=args.argv)
    print(result.run_dir)
    return 0


def cmd_export(args) -> int:
    from ganvae import operations

    print(operations.export(args.run, args.out, dtype=args.dtype))
    return 0


def cmd_fit_prior(args) -> int:
    from ganvae import operations

    result = operations.fit_prior(args.run, out=args.out, components=args.components, covariance=args.covariance,
                           dataset=args.dataset, data_dir=args.data_dir, seed=args.seed)
    print(f"{result['prior']}: fitted to {result['codes']:,} posterior means of {result['dataset']} in "
          f"{result['seconds']:.1f} s ({result['iterations']} EM iterations, {result['log_likelihood']:.3f} nats per "
          f"code) -> {result['written']}")
    return 0


def cmd_models(args) -> int:

    from ganvae import zoo
    from ganvae.storage import pretrained_folder

    names = zoo.pretrained_names()
    if not names:
        print("no pretrained models installed")
        return 0
    print(f"{'name':<16} {'model':<9} {'FID':>7} {'recall':>7} {'NLL':>7} {'asked':>6}  {'size':>7}  trained")
    for name in names:
        folder = zoo.zoo_dir() / name
        meta = pretrained_folder.read_config(folder)
        m = (meta.get("metrics") or {})
        nll = f"{m['test_nll_iwae']:.1f}" if "test_nll_iwae" in m else "-"
        asked = f"{m['conditional_accuracy']:.1%}" if "conditional_accuracy" in m else "-"  # conditional accuracy
        size = (folder / "model.safetensors").stat().st_size / 2**20
        src = meta.get("source") or {}
        minutes = f"{src['train_seconds'] / 60:.0f} min" if src.get("train_seconds") else "?"
        print(f"{name:<16} {meta['model_name']:<9} {m.get('fid', float('nan')):7.1f} {m.get('recall', float('nan')):7.3f} "
              f"{nll:>7} {asked:>6}  {size:5.1f}MB  {minutes}, {meta['data']['dataset']}")
    print("\nNLL: test bound (nats); asked: conditional accuracy, the share of samples drawing the digit asked for."
          "\nuse one wherever a command takes RUN (`ganvae sample mnist-dcgan -n 64`), or `ganvae.load(NAME)` in Python;"
          "\neach folder's README.md is its model card: " + str(zoo.zoo_dir()))
    return 0


def cmd_classifier(args) -> int:
    from ganvae.metrics.classifier import train_classifier

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path, acc = train_classifier(args.dataset, data_dir=args.data_dir, epochs=args.epochs, seed=args.seed, out=args.out)
    print(f"{path}  test accuracy {acc:.4f}")
    return 0


def cmd_evaluate(args) -> int:
    from ganvae.metrics.evaluate import format_table
    from ganvae.operations import evaluate

    result = evaluate(args.run, n_samples=args.n_samples, seed=args.seed, iwae_k=args.iwae_k, data_dir=args.data_dir,
                      out=args.out, classifier=args.classifier, dataset=args.dataset, use_ema=not args.no_ema)
    print(format_table(result))
    return 0


def cmd_compare(args) -> int:
    from ganvae.report import compare

    print(compare(args.runs, args.out, n_samples=args.n_samples, seed=args.seed, data_dir=args.data_dir))
    return 0


def cmd_demo(args) -> int:
    from ganvae.demo import DEMO_MINUTES, DEMO_MODELS, demo

    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models is not None else DEMO_MODELS
    demo(args.out, minutes=DEMO_MINUTES if args.minutes is None else args.minutes, models=models, n_samples=args.n_samples,
         say=(lambda *_: None) if args.quiet else print)
    return 0


def cmd_sample(args) -> int:
    from ganvae import writers

    grid = writers.sample(args.run, n=args.n, seed=args.seed, out=None if args.no_grid else args.out, nrow=args.nrow,
                      separate=args.separate, max_memory_gb=args.max_memory_gb, digit=args.digit)
    print(grid or args.separate)
    return 0


def cmd_interpolate(args) -> int:
    from ganvae import writers

    out = args.out if not (args.grid and args.out == "walk.gif") else "walk.png"
    print(writers.interpolate(args.run, points=args.points, steps=args.steps, seed=args.seed, out=out, grid=args.grid,
                          walks=args.walks, scale=args.scale, max_memory_gb=args.max_memory_gb, digit=args.digit,
                          between_digits=args.between_digits))
    return 0


def cmd_reconstruct(args) -> int:
    from ganvae import writers

    print(writers.reconstruct(args.run, n=args.n, seed=args.seed, out=args.out, dataset=args.dataset, data_dir=args.data_dir,
                          as_digit=args.as_digit))
    return 0


def cmd_render(args) -> int:
    from ganvae import writers

    print(writers.render(args.run, size=args.size, seed=args.seed, out=args.out, gif=args.gif, frames=args.frames,
                     points=args.points, max_memory_gb=args.max_memory_gb, digit=args.digit))
    return 0


# ----------------------------------------------------------------------------- parser


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


RUN_HELP = "run folder, checkpoint file, pretrained folder, or a pretrained name (`ganvae models`)"


def _add_train_command(sub, models: list[str]) -> None:
    """``ganvae train``."""
    from ganvae.config import SHORTCUTS
    from ganvae.registry import get_entry

    p = sub.add_parser("train", help="train a model", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="models:\n" + "\n".join(f"  {n:<9} {get_entry(n).description}" for n in models))
    p.add_argument("model", choices=models, metavar="MODEL", help=f"one of: {', '.join(models)}")
    p.add_argument("--preset", help="a shipped preset (`ganvae config presets`), e.g. tf-tutorial; applied before --config")
    p.add_argument("--config", help="YAML config file")
    for s in SHORTCUTS:  # --dataset, --epochs, --out, ...: the settings with their own flag (config.SHORTCUTS)
        p.add_argument(s.flag, type=_classes if s.type == "classes" else s.type, help=s.help)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config value")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=cmd_train)


def _digit_pair(text: str) -> tuple[int, int]:
    """``A,B`` -> (A, B), for --between-digits."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give two classes as A,B, e.g. 1,7")
    return int(parts[0]), int(parts[1])


def _add_sample_command(sub) -> None:
    """``ganvae sample``."""
    p = sub.add_parser("sample", help="a grid (or files) of samples from a trained run")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")
    p.add_argument("--nrow", type=int, help="images per row")
    p.add_argument("--separate", metavar="DIR", help="also write one PNG per sample into DIR")
    p.add_argument("--no-grid", action="store_true", help="with --separate: write only the files (any -n fits in memory)")
    p.add_argument("--digit", type=int, metavar="D", help="conditional models: draw this class (default: a class grid, "
                   "one row per class, the same noise in every row)")
    p.add_argument("--max-memory-gb", type=float, default=MAX_MEMORY_GB,
                   help="refuse pictures needing more memory than this (default %(default)g GB)")
    p.set_defaults(func=cmd_sample)


def _add_interpolate_command(sub) -> None:
    """``ganvae interpolate``."""
    p = sub.add_parser("interpolate", help="a looping latent walk (spherical interpolation) as a GIF")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--points", type=int, default=4, help="latent points visited")
    p.add_argument("--steps", type=int, default=30, help="frames between two points")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="walk.gif")
    p.add_argument("--grid", action="store_true", help="a still grid (one row per pair of points) instead of a GIF")
    p.add_argument("--walks", type=int, default=16, help="walks shown side by side in the GIF")
    p.add_argument("--scale", type=int, default=2, help="pixel enlargement of the GIF")
    p.add_argument("--digit", type=int, metavar="D", help="conditional models: walk within this class")
    p.add_argument("--between-digits", type=_digit_pair, metavar="A,B",
                   help="conditional models: keep each style and morph its class from A to B")
    p.add_argument("--max-memory-gb", type=float, default=MAX_MEMORY_GB,
                   help="refuse pictures needing more memory than this (default %(default)g GB)")
    p.set_defaults(func=cmd_interpolate)


def _add_reconstruct_command(sub) -> None:
    """``ganvae reconstruct``."""
    p = sub.add_parser("reconstruct", help="test images above their reconstructions (models with an encoder)")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reconstructions.png")
    p.add_argument("--as-digit", type=int, metavar="D", help="conditional VAEs: decode each image's code as class D "
                   "(its style, another digit)")
    _add_data_flags(p)
    p.set_defaults(func=cmd_reconstruct)


def cmd_explore(args) -> int:
    try:
        from ganvae.explore.server import serve
        from ganvae.explore.session import Limits
    except ImportError as err:
        raise UnsupportedOperation(str(err)) from None
    limits = Limits(max_samples=args.max_samples, max_render=args.max_render, max_invert_steps=args.max_invert_steps,
                    max_jobs=args.max_jobs, max_queue=args.max_queue, render_seconds=args.render_seconds)
    serve(args.runs, host=args.host, port=args.port, limits=limits)
    return 0


def _port(text: str) -> int:
    """A TCP port, 1-65535, for --port."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a whole number from 1 to 65535, e.g. 8000")
    return int(text)


def _positive_int(text: str) -> int:
    """A whole number of at least 1, for the explorer's limits (0 would refuse every request)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1 (0 would refuse every request)")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 30")
    return value


def _add_explore_command(sub) -> None:
    """``ganvae explore``."""
    p = sub.add_parser("explore", help="a local web app: walk the latent space, sliders, draw a digit, zoom a cppn")
    p.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP + " (several: side by side)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    from ganvae.explore.limits import Limits

    d = Limits()
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 1-65535 (default 8000)")
    p.add_argument("--max-samples", type=_positive_int, default=d.max_samples, help="images per request")
    p.add_argument("--max-render", type=_positive_int, default=d.max_render,
                   help=f"largest cppn render, pixels a side (default {d.max_render}: a few seconds on 2 cores)")
    p.add_argument("--max-invert-steps", type=_positive_int, default=d.max_invert_steps,
                   help="optimisation steps of one GAN inversion")
    p.add_argument("--max-jobs", type=_positive_int, default=d.max_jobs, help="inversions running at once")
    p.add_argument("--max-queue", type=_positive_int, default=d.max_queue,
                   help="requests waiting for one model; more are answered 429 (busy)")
    p.add_argument("--render-seconds", type=_positive_float, default=d.render_seconds,
                   help="a cppn render still running after this many seconds is stopped")
    p.set_defaults(func=cmd_explore)


def _add_render_command(sub) -> None:
    """``ganvae render``."""
    p = sub.add_parser("render", help="render a cppn latent at any resolution")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--size", type=_size, default=(1080, 1080), help="WIDTHxHEIGHT (default 1080x1080)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output file (default render.png, or render.gif with --gif)")
    p.add_argument("--gif", action="store_true", help="a looping latent morph at that size")
    p.add_argument("--frames", type=int, default=24, help="frames between two latents in the --gif morph")
    p.add_argument("--points", type=int, default=3, help="latents visited by the --gif morph")
    p.add_argument("--digit", type=int, metavar="D", help="conditional cppn: render this class")
    p.add_argument("--max-memory-gb", type=float, default=MAX_MEMORY_GB,
                   help="refuse pictures needing more memory than this (default %(default)g GB)")
    p.set_defaults(func=cmd_render)


def _add_evaluate_command(sub) -> None:
    """``ganvae evaluate``."""
    p = sub.add_parser("evaluate", help="metrics of a trained run, real:DATASET (the reference figures) or images:DIR")
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint, pretrained name or folder, real:mnist (train split against test split), "
                                              "or images:DIR (a folder of any program's samples)")
    p.add_argument("--dataset", help="score against this dataset's test split (default: the run's own; mnist for images:DIR), "
                                     "e.g. mnist-25k offline for a model trained on full MNIST")
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iwae-k", type=int, default=50, help="importance samples of the NLL bound (5000 as in the literature)")
    p.add_argument("--data-dir", help="folder of the dataset's files, if not where the run found them")
    p.add_argument("--classifier", help="feature classifier .safetensors (default: the one for the run's dataset)")
    p.add_argument("--out", help="metrics JSON (default <run>/metrics.json)")
    p.add_argument("--no-ema", action="store_true", help="score the trained weights, not their moving average")
    p.set_defaults(func=cmd_evaluate)


def _add_compare_command(sub) -> None:
    """``ganvae compare``."""
    p = sub.add_parser("compare", help="a side-by-side HTML + Markdown report of several runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_compare)


def _add_demo_command(sub) -> None:
    """``ganvae demo``."""
    p = sub.add_parser("demo", help="train a GAN, a DCGAN and a VAE on the offline mnist-25k and compare them")
    p.add_argument("--out", help="folder for the runs and the report (default runs/demo-<timestamp>)")
    p.add_argument("--minutes", type=float, help="training budget per model (default 1.5)")
    p.add_argument("--models", help="comma-separated models to train (default gan,dcgan,vae; any of gan, dcgan, vae, conv-vae, vae-gan, cppn)")
    p.add_argument("--n-samples", type=int, default=5000, help="samples per model for the final metrics")
    p.set_defaults(func=cmd_demo)


def _add_data_command(sub) -> None:
    """``ganvae data``."""
    p = sub.add_parser("data", help="list, describe, verify and download datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = dsub.add_parser("list", help="the known datasets")
    q.add_argument("--data-dir", help="also say which datasets have their files in this folder")
    q = dsub.add_parser("info", help="a dataset's description, classes, files and mirrors")
    q.add_argument("name")
    q.add_argument("--data-dir", help="also say which of the dataset's files this folder holds")
    q = dsub.add_parser("verify", help="check each file: present, md5, valid IDX")
    q.add_argument("name")
    q.add_argument("--data-dir", help="check this folder instead of the cache")
    q.add_argument("--accept-unverified", action="store_true",
                   help="accept a recompressed archive whose content has no published checksum, if it parses")
    q = dsub.add_parser("download", help="download into the cache ($GANVAE_DATA_DIR or ~/.cache/ganvae)")
    q.add_argument("name")
    q.add_argument("--data-dir", help="download into this folder instead (then train with --data-dir DIR)")
    p.set_defaults(func=cmd_data)


def _add_classifier_command(sub) -> None:
    """``ganvae classifier``."""
    p = sub.add_parser("classifier", help="train the feature classifier that the metrics use")
    csub = p.add_subparsers(dest="classifier_command", required=True, metavar="ACTION")
    q = csub.add_parser("train", help="train it reproducibly (seeded) on a named dataset's train split")
    q.add_argument("--dataset", default="mnist")
    q.add_argument("--data-dir")
    q.add_argument("--epochs", type=int, default=6)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    q.add_argument("--out", help="output .safetensors (default: the cache, ~/.cache/ganvae/classifiers/NAME.safetensors)")
    p.set_defaults(func=cmd_classifier)


def _add_config_command(sub, models: list[str]) -> None:
    """``ganvae config``."""
    p = sub.add_parser("config", help="show configurations")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = csub.add_parser("show", help="print a model's full configuration (defaults, or a file with overrides)")
    q.add_argument("model", choices=models, metavar="MODEL")
    q.add_argument("--preset", help="a shipped preset to apply first")
    q.add_argument("--config", help="YAML file to apply")
    q.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    csub.add_parser("presets", help="list the shipped presets: the original scripts' settings")
    p.set_defaults(func=cmd_config)


def _add_export_command(sub) -> None:
    """``ganvae export``."""
    p = sub.add_parser("export", help="write a run's sampling networks as a pretrained folder (for ganvae.load)")
    p.add_argument("run", metavar="RUN", help="run folder or checkpoint file")
    p.add_argument("out", metavar="DIR", help="folder to write config.json, model.safetensors, README.md into")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                   help="tensor precision on disk (default float16: half the size; loaded as float32)")
    p.set_defaults(func=cmd_export)


def _add_fit_prior_command(sub) -> None:
    """``ganvae fit-prior``."""
    p = sub.add_parser("fit-prior", help="fit an encoder model's learned prior (a Gaussian mixture over its latents)",
                       description="Fit a Gaussian mixture to the posterior means of the training images (Ghosh et "
                                   "al. 2020's ex-post density estimation) and sample from it instead of N(0, I). "
                                   "Training fits it when it ends (model.prior: gmm); this refits a run (in place, "
                                   "still resumable) or a pretrained folder.")
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint, pretrained name or folder")
    p.add_argument("--out", metavar="DIR", help="pretrained models: write the refitted model here (required for a "
                                                "shipped name)")
    p.add_argument("--components", type=int, help="mixture components (model.prior_components)")
    p.add_argument("--covariance", choices=["full", "diag"], help="each component's covariance (model.prior_covariance)")
    p.add_argument("--seed", type=int, help="seed of the fit (default: the run's train.seed)")
    _add_data_flags(p)
    p.set_defaults(func=cmd_fit_prior)


def _add_models_command(sub) -> None:
    """``ganvae models``."""
    p = sub.add_parser("models", help="the pretrained models shipped with ganvae, with their measured metrics")
    p.set_defaults(func=cmd_models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganvae",
        description="Train, sample, animate and compare GANs and VAEs on MNIST-like data.",
    )
    from ganvae._version import __version__

    parser.add_argument("--version", action="version", version=f"ganvae {__version__}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    models = _model_names()
    _add_train_command(sub, models)
    _add_sample_command(sub)
    _add_interpolate_command(sub)
    _add_reconstruct_command(sub)
    _add_render_command(sub)
    _add_evaluate_command(sub)
    _add_compare_command(sub)
    _add_demo_command(sub)
    _add_data_command(sub)
    _add_classifier_command(sub)
    _add_config_command(sub, models)
    _add_export_command(sub)
    _add_fit_prior_command(sub)
    _add_models_command(sub)
    _add_explore_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; user errors print one paragraph (exit 2), Ctrl-C exits 130 at any
    point, start-up (the imports of torch and the models) included."""
    import os

    try:
        from ganvae.runs import setup_logging

        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = ["ganvae", *(sys.argv[1:] if argv is None else argv)]  # what ran, for command.txt
        quiet = args.quiet or int(os.environ.get("RANK", "0")) > 0  # under torchrun only rank 0 talks
        setup_logging(logging.WARNING if quiet else logging.DEBUG if args.verbose else logging.INFO)
        return int(args.func(args) or 0)
    except GanvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ganvae data info mnist | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (keeps the interpreter's final flush quiet)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
