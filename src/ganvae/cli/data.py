"""``ganvae data`` (list, describe, verify, download datasets) and ``ganvae classifier`` (the metrics' feature
network)."""

from __future__ import annotations

import sys

from ganvae.cli import common
from ganvae.errors import GanvaeError


def add_data(sub) -> None:
    p = sub.add_parser("data", help="list, describe, verify and download datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = dsub.add_parser("list", help="the known datasets")
    q.add_argument("--data-dir", help="also say which datasets have their files in this folder")
    q = dsub.add_parser("info", help="a dataset's description, classes, files and mirrors")
    q.add_argument("name", metavar="NAME", help="a dataset from `ganvae data list`, folder:PATH or npz:PATH")
    q.add_argument("--data-dir", help="also say which of the dataset's files this folder holds")
    q = dsub.add_parser("verify", help="check each file: present, md5, valid content")
    q.add_argument("name", metavar="NAME", help="a dataset from `ganvae data list`, folder:PATH (every image read) "
                   "or npz:PATH (every array read)")
    q.add_argument("--data-dir", help="check this folder instead of the cache")
    q.add_argument("--accept-unverified", action="store_true",
                   help="accept a recompressed archive whose content has no published checksum, if it parses")
    q = dsub.add_parser("download", help="download into the cache ($GANVAE_DATA_DIR or ~/.cache/ganvae)")
    q.add_argument("name", metavar="NAME", help="a dataset from `ganvae data list`")
    q.add_argument("--data-dir", help="download into this folder instead (then train with --data-dir DIR)")
    p.set_defaults(func=data)


def _kind(source) -> str:
    """``grey, 28 px`` / ``colour, 28, 32 or 64 px``."""
    return f"{'colour' if source.channels == 3 else 'grey'}, {source.sizes_text()} px"


def data(args) -> int:
    from ganvae.data import sources

    if args.data_command == "list":  # (torch- and numpy-free unless --data-dir asks to look at files)
        for s in sources.SOURCES.values():
            where = "offline, ships with ganvae" if s.offline else f"download, {len(s.mirrors)} mirror(s)"
            if args.data_dir is not None and not s.offline:
                from pathlib import Path

                from ganvae.data.formats import reader

                if reader(s).holds(s, Path(args.data_dir)):
                    where += f"; its files are in {args.data_dir}"
            print(f"{s.name:<14} {s.title} ({where}; {_kind(s)})")
        print(f"{'folder:PATH':<14} any folder of png/jpg images; sub-folders are classes; grey or colour "
              f"(data.color), resized to data.image_size")
        print(f"{'npz:PATH':<14} an .npz of x_train, y_train, x_test, y_test (or images and labels): grey or colour "
              f"arrays")
        return 0
    if args.name.startswith("folder:") and args.data_command in ("info", "verify"):
        return folder_info(args.name.removeprefix("folder:"), verify=args.data_command == "verify")
    if args.name.startswith("npz:") and args.data_command in ("info", "verify"):
        return npz_info(args.name, verify=args.data_command == "verify")
    source = sources.get_source(args.name)
    if args.data_command == "info":
        from pathlib import Path

        from ganvae.data.formats import reader

        print(f"{source.name}: {source.title}")
        print(f"  {source.description}")
        print(f"  homepage: {source.homepage}")
        print(f"  license:  {source.license}")
        print(f"  images:   {_kind(source)} (data.image_size={source.sizes_text()})")
        print(f"  classes:  {', '.join(f'{i}={c}' for i, c in enumerate(source.classes))}")
        if source.packaged:
            print(f"  folder:   {sources.packaged_dir(source)} (inside the package)")
            if source.per_class:
                print(f"  slice:    the first {source.per_class[0]} train / {source.per_class[1]} test images "
                      "of each class")
        elif not source.offline:
            print(f"  cache:    {sources.dataset_cache_dir(source)}")
            print("  mirrors:  " + "\n            ".join(source.mirrors))
        for role, spec in source.files.items():
            print(f"  {role:<13} {spec.filename}  md5 {spec.md5}")
        print(f"  content sums: {reader(source).sums(source)}")
        if args.data_dir is not None and not source.offline:
            try:
                found = reader(source).found(source, Path(args.data_dir))
            except GanvaeError as err:
                print(f"  --data-dir: {common.message(err)}")
            else:
                print(f"  --data-dir: {len(found)} file(s) found: " + ", ".join(str(f) for f in found))
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
        from ganvae.data.formats import reader

        reports = reader(source).verify(source, args.data_dir, None, args.accept_unverified)
        for rep in reports:
            name = str(rep.path) if rep.path else (source.files[rep.role].filename if rep.role in source.files
                                                   else rep.role)
            status = (f"OK ({rep.note})" if rep.note else "OK") if rep.ok else f"PROBLEM: {rep.problem}"
            print(f"{name}  md5 {rep.md5 or '-':<32}  {status}")
        bad = [r for r in reports if not r.ok]
        if bad:
            fix = ("reinstall ganvae (`pip install --force-reinstall ganvae`)" if source.offline
                   else "pass --data-dir DIR with good copies" if args.data_dir
                   else f"run `ganvae data download {source.name}`")
            print(f"{len(bad)} of {len(reports)} files have problems; {fix}.", file=sys.stderr)
            return 1
        return 0
    raise AssertionError(args.data_command)


def folder_info(path: str, verify: bool) -> int:
    """`ganvae data info|verify folder:PATH`: its classes and image counts (verify: every image read, and its
    channels said)."""
    from pathlib import Path

    from ganvae.data.dataset import class_folders, image_files, load_folder

    if not verify:
        root = Path(path).expanduser()
        counts = {name: len(image_files(folder, root)) for name, folder in class_folders(path)}
        print(f"folder:{path}: {sum(counts.values()):,} images in {len(counts)} class(es) (sub-folders are classes)")
        for name, count in counts.items():
            print(f"  {name:<14} {count:,} images")
        print(f"  (`ganvae data verify folder:{path}` reads every image and says whether they are grey or colour)")
        return 0
    import torch

    data = load_folder(path, image_size=28)
    pixels = torch.cat([data.train_images.flatten(), data.test_images.flatten()])  # uint8, as training sees them
    # the levels read (16-bit images scaled to 8 bits): a folder that reads as 2 levels is visible here
    kind = "grey" if data.channels == 1 else "RGB (3 channels; data.color=grey reads it as grey)"
    print(f"folder:{path}: {len(data.train_images) + len(data.test_images):,} images read, classes "
          f"{', '.join(data.classes)}; {kind}; {'grey' if data.channels == 1 else 'colour'} levels "
          f"{int(pixels.min())}-{int(pixels.max())} ({len(torch.unique(pixels))} distinct, 8-bit; 16-bit images "
          f"scaled)  OK")
    return 0


def npz_info(name: str, verify: bool) -> int:
    """`ganvae data info|verify npz:PATH`: its arrays (verify: read and checked as training reads them)."""
    import zipfile

    from ganvae.data.npz import array_sizes, npz_path, read_npz
    from ganvae.errors import DataError

    path = npz_path(name)
    if not verify:
        try:
            sizes = array_sizes(path)
        except (OSError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: cannot be read as a .npz file ({err}). Give one written by np.savez.") from None
        print(f"{name}: {len(sizes)} array(s)")
        for key, size in sizes.items():
            print(f"  {key:<12} {size:,} bytes")
        print(f"  (`ganvae data verify {name}` reads and checks them)")
        return 0
    splits, classes = read_npz(path)
    c, h, w = splits.train_images.shape[1:]
    print(f"{name}: {len(splits.train_images):,} train and {len(splits.test_images):,} test images, {h}x{w} "
          f"{'grey' if c == 1 else 'RGB'}, {len(classes)} class(es) ({', '.join(classes[:10])}"
          f"{', ...' if len(classes) > 10 else ''})  OK")
    return 0


def add_classifier(sub) -> None:
    p = sub.add_parser("classifier", help="train the feature network that the metrics use on a dataset")
    csub = p.add_subparsers(dest="classifier_command", required=True, metavar="ACTION")
    q = csub.add_parser("train", help="train it reproducibly (seeded) on a named dataset's train split")
    q.add_argument("--dataset", default="mnist",
                   help="the dataset whose train split it learns: a named one (`ganvae data list`: mnist, "
                        "fashion-mnist, kmnist, colour-digits, cifar10), folder:PATH (classes as sub-folders) or "
                        "npz:PATH (default %(default)s)")
    q.add_argument("--data-dir", help="folder holding the dataset's files (instead of the download cache)")
    q.add_argument("--image-size", type=int,
                   help="side of the images it learns, the size the runs it scores use (default: a named dataset's "
                        "own; folders: 28)")
    q.add_argument("--objective", default="auto", choices=("auto", "classes", "rotation"),
                   help="what it learns: the data's classes, or (data without classes) the rotation of its images "
                        "(RotNet); auto: classes when there are two or more (default %(default)s)")
    q.add_argument("--architecture", choices=("mnist-cnn", "conv-gap"),
                   help="mnist-cnn (the shipped MNIST classifier's, 1x28x28 only) or conv-gap (any 1 or 3 channels at "
                        "28, 32 or 64 px); default: mnist-cnn for 1x28x28 classes, else conv-gap")
    q.add_argument("--epochs", type=int, default=6, help="passes over the train split (default %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="seeds the weights and the data order (default %(default)s)")
    q.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    q.add_argument("--out", help="output .safetensors (default: the cache, where evaluate looks: "
                   "~/.cache/ganvae/classifiers/NAME.safetensors, NAME-CxHxW.safetensors at other shapes)")
    p.set_defaults(func=classifier)


def classifier(args) -> int:
    from ganvae.metrics.classifier import train_classifier

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path, acc = train_classifier(args.dataset, data_dir=args.data_dir, epochs=args.epochs, seed=args.seed, out=args.out,
                                 image_size=args.image_size, objective=args.objective, architecture=args.architecture)
    print(f"{path}  test accuracy {acc:.4f}")
    return 0


COMMANDS = (add_data, add_classifier)
