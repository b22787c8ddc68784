"""Do the feature networks see what matters? The degradation check (``ganvae.metrics.validation``) of each network.

Half of a test split is the reference; the other half, clean, must score near the floor, and blurred, noisy, with
classes dropped or (colour) with its hue turned it must score worse, the strong damage worse than the mild one.

    .venv/bin/python benchmarks/feature_validation.py --data-dir ../shared/data/mnist [--colour] [--out FILE.json]

Networks on MNIST (the full test split with --data-dir, else the packaged mnist-25k's):

* the shipped MNIST classifier (what every MNIST metric uses);
* a rotation predictor trained on MNIST's training images without their labels (what a folder without classes
  gets; ``--rotnet-images`` of them, ``--rotnet-epochs``);
* an untrained ``conv-gap`` network with random weights (the known-weak baseline).

With ``--colour``, on the 32-pixel colour digits (``colour-digits``, generated offline) too: the shipped colour
classifier (what the colour runs' metrics use), a ``conv-gap`` classifier trained here on ``--colour-images`` of its
training images for ``--colour-epochs`` (a short training, for comparison), and the untrained baseline. Prints each
network's report, then a summary: each damage's Frechet distance as a multiple of the real-vs-real one (scale-free,
so networks compare).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ganvae.config import DataConfig
from ganvae.data.dataset import load_dataset
from ganvae.metrics.classifier import (
    FeatureNetwork,
    fit_feature_network,
    image_shape_of,
    load_classifier,
    load_feature_network,
)
from ganvae.metrics.objectives import CLASSES, ROTATION
from ganvae.metrics.validation import degradation_check, format_report, random_network


def subset(data, n: int, seed: int = 0):
    """The first ``n`` training images of a seeded shuffle (all of the test split)."""
    from dataclasses import replace

    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return replace(data, train_images=data.train_images[keep], train_labels=data.train_labels[keep])


def trained(data, objective, n: int, epochs: int, width: int, say) -> FeatureNetwork:
    start = time.monotonic()
    model, acc = fit_feature_network(subset(data, n), objective, "conv-gap", epochs=epochs, seed=0, width=width)
    say(f"  trained a {objective.name} conv-gap (width {width}) on {min(n, len(data))} images, {epochs} epochs: "
        f"held-out accuracy {acc:.3f} ({time.monotonic() - start:.0f} s)")
    return FeatureNetwork(model, data.name, "bench", "-", acc, image_shape_of(data), "conv-gap", objective)


def summary(reports: dict[str, dict]) -> str:
    names = list(reports)
    rows = [(r["kind"], r["severity"]) for r in next(iter(reports.values()))["rows"]]
    width = max(12, *(len(n) for n in names))
    lines = [f"{'damage':<16} {'severity':<8} " + " ".join(f"{n:>{width}}" for n in names)]
    for kind, severity in rows:
        cells = []
        for name in names:
            row = next((r for r in reports[name]["rows"] if (r["kind"], r["severity"]) == (kind, severity)), None)
            cells.append(f"{row['fd_ratio']:>{width}.2f}" if row else f"{'-':>{width}}")
        lines.append(f"{kind:<16} {severity:<8} " + " ".join(cells))
    passed = [f"{sum(c['passed'] for c in r['checks'])}/{len(r['checks'])}" for r in reports.values()]
    lines.append(f"{'checks passed':<25} " + " ".join(f"{p:>{width}}" for p in passed))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="folder of MNIST's four files (default: the packaged mnist-25k)")
    p.add_argument("--rotnet-images", type=int, default=10000, help="training images of the rotation predictor")
    p.add_argument("--rotnet-epochs", type=int, default=2)
    p.add_argument("--colour", action="store_true", help="also the colour digits (a classifier trained here)")
    p.add_argument("--colour-images", type=int, default=10000)
    p.add_argument("--colour-epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=16, help="first-block channels of the networks trained here")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--out", help="write the reports as JSON")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.monotonic()
    say = print
    cfg = DataConfig(dataset="mnist", data_dir=args.data_dir) if args.data_dir else DataConfig(dataset="mnist-25k")
    mnist = load_dataset(cfg)
    say(f"{mnist.name}: {len(mnist)} training, {len(mnist.test_images)} test images; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    results: dict[str, dict[str, dict]] = {mnist.name: {}}
    networks = {"shipped classifier": load_classifier("mnist"),
                "rotation (no labels)": trained(mnist, ROTATION, args.rotnet_images, args.rotnet_epochs, args.width,
                                                say),
                "untrained": random_network(mnist, width=args.width)}
    for name, fnet in networks.items():
        report = degradation_check(fnet, mnist)
        results[mnist.name][name] = report
        say("\n" + format_report(report))
    if args.colour:
        colour = load_dataset(DataConfig(dataset="colour-digits", image_size=32))
        results[colour.name] = {}
        for name, fnet in {"shipped classifier": load_feature_network("colour-digits", image_shape=(3, 32, 32)),
                           "short training": trained(colour, CLASSES, args.colour_images, args.colour_epochs,
                                                     args.width, say),
                           "untrained": random_network(colour, width=args.width)}.items():
            report = degradation_check(fnet, colour)
            results[colour.name][name] = report
            say("\n" + format_report(report))
    for dataset, reports in results.items():
        say(f"\n{dataset}: Frechet distance of each damage / real vs real")
        say(summary(reports))
    say(f"\n({time.monotonic() - start:.0f} s)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
