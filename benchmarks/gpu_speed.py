"""Training speed of every family on a GPU at a large batch: fp32, bf16, torch.compile and CUDA graphs.

    .venv/bin/python benchmarks/gpu_speed.py [--batch-size 512] [--steps 50] [--out benchmarks/out/gpu_speed.json]

Part of ``benchmarks/gpu_check.sh`` (issue 38, item 9). For each family's default recipe (the registry's config with
only ``train.batch_size``, ``train.precision`` and ``train.compile`` changed) it times the trainer's hot path as
``benchmarks/bench_speed.py`` does: the uint8 training images on the device, the trainer's batch indices, scaling on
the fly, ``model.training_step`` and ``model.after_step`` (the EMA), one host sync per measured block. Variants:

- ``fp32``: the defaults;
- ``bf16``: ``train.precision=bf16`` (autocast, as the trainer sets it);
- ``compile``: ``train.compile=true`` (each network ``.compile()``d, as the trainer does);
- ``cudagraphs``: the networks compiled with ``mode="reduce-overhead"`` (CUDA graphs), not a trainer option: it
  says whether adding one would pay.

Each family's model is built, and a self-conditioned GAN clusters its images (``before_epoch``), once, before any
timing; each variant trains a copy of it: ``--warmup`` untimed steps (compilation happens there), then ``--steps``
timed steps, cut short after ``--seconds``. Each measurement runs under a limit of ``--limit-s`` seconds (an alarm:
a compilation that hangs is recorded as timed out and the next measurement starts). The cheap variants run first
for every family, then the compiled ones family by family, so a run cut short by ``gpu_check.sh``'s ``timeout`` keeps
the most figures; ``--out`` is rewritten after every measurement.

``--device cpu --steps 2`` runs anywhere (a smoke test of the script itself; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import platform
import signal
import time
from pathlib import Path

import torch

MODELS = ("gan", "dcgan", "vae", "conv-vae", "vae-gan", "cppn")
VARIANTS = ("fp32", "bf16", "compile", "cudagraphs")
# the overrides each variant puts on the default recipe (the cudagraphs variant compiles the networks itself)
VARIANT_OVERRIDES = {"fp32": [], "bf16": ["train.precision=bf16"], "compile": ["train.compile=true"],
                     "cudagraphs": []}


class MeasurementTimeout(Exception):
    """A measurement ran past its ``--limit-s``."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`MeasurementTimeout` in the main thread after ``seconds`` (0: no limit; POSIX only)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise MeasurementTimeout(f"past the {seconds:g} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (a smoke test of the script)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated families (default: all)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--dataset", default="mnist-25k", help="a dataset name (default: the packaged mnist-25k)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation happens here)")
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--seconds", type=float, default=5.0, help="end the timed block after this many seconds")
    p.add_argument("--limit-s", type=float, default=60.0, help="limit of one measurement, set-up included (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/out/gpu_speed.json")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    from ganvae.registry import model_names

    unknown = [m for m in args.models if m not in model_names()]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(model_names())}")
    if args.batch_size < 2 or args.steps < 1 or args.warmup < 0:
        p.error("--batch-size must be at least 2, --steps at least 1, --warmup at least 0")
    return args


def plan(models: list[str], variants: list[str]) -> list[tuple[str, str]]:
    """The (family, variant) pairs in the order they run: the uncompiled variants of every family first, then the
    compiled ones family by family, so that a run cut short keeps the cheap figures of every family and both
    compiled figures of the first families."""
    cheap = [v for v in variants if v in ("fp32", "bf16")]
    compiled = [v for v in variants if v in ("compile", "cudagraphs")]
    return [(m, v) for m in models for v in cheap] + [(m, v) for m in models for v in compiled]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def built_model(name: str, data, args, device: torch.device, cache: dict):
    """A copy of ``name``'s default model on ``device``, seeded, after its first ``before_epoch`` (a self-conditioned
    GAN's clustering of the training images, done once per family and not timed)."""
    from ganvae.common.device import seed_everything
    from ganvae.config import build_config
    from ganvae.registry import build_model

    if name not in cache:
        cfg = build_config(name, overrides=[f"data.dataset={args.dataset}", f"train.seed={args.seed}"])
        seed_everything(cfg.train.seed)
        model = build_model(cfg, data.image_shape).to(device)
        model.before_epoch(0, data.train_images, seed=cfg.train.seed)
        cache[name] = model
    return copy.deepcopy(cache[name])


def measure(name: str, variant: str, data, args, device: torch.device, cache: dict) -> dict:
    """One (family, variant) measurement: images/s of the timed steps, and where the time went."""
    from ganvae.common.device import bf16_autocast
    from ganvae.common.pixels import scale_images
    from ganvae.config import build_config
    from ganvae.data.dataset import iter_batch_indices
    from ganvae.models.step import StepContext

    row: dict = {"model": name, "variant": variant, "batch_size": args.batch_size}
    start = time.perf_counter()
    # the run's config as the trainer would see it (checked: a variant the config refuses fails here)
    cfg = build_config(name, overrides=[f"data.dataset={args.dataset}", f"train.batch_size={args.batch_size}",
                                        f"train.seed={args.seed}", f"train.device={device}",
                                        *VARIANT_OVERRIDES[variant]])
    model = built_model(name, data, args, device, cache)
    optimizers = model.make_optimizers()
    if cfg.train.compile:  # as the trainer does
        for net in model.networks:
            model._modules[net].compile()
    elif variant == "cudagraphs":
        for net in model.networks:
            model._modules[net].compile(mode="reduce-overhead")
    autocast = bf16_autocast(device) if cfg.train.precision == "bf16" else None
    row["setup_s"] = time.perf_counter() - start
    images = data.train_images
    n = len(images)
    epoch, batches = 0, None

    def step(s: int) -> torch.Tensor:
        nonlocal epoch, batches
        idx = next(batches, None) if batches is not None else None
        if idx is None:  # a new epoch (the trainer's batch order: a seeded permutation per epoch)
            batches = iter_batch_indices(n, args.batch_size, cfg.train.seed, epoch, device=images.device)
            epoch += 1
            idx = next(batches)
        if variant == "cudagraphs":
            torch.compiler.cudagraph_mark_step_begin()
        x = scale_images(images.index_select(0, idx), model.value_range)  # (B, C, H, W) in the model's range
        labels = model.training_labels(idx, data.train_labels)
        losses = model.training_step(x, optimizers, StepContext(s, epoch - 1, 0.0, autocast, labels=labels))
        model.after_step(s)
        return torch.stack([v.detach().float() for v in losses.values()]).sum()

    t = time.perf_counter()
    for s in range(args.warmup):
        step(s).item()
    sync(device)
    row["warmup_s"] = time.perf_counter() - t
    pending = []
    t = time.perf_counter()
    done = 0
    while done < args.steps:
        pending.append(step(args.warmup + done))
        done += 1
        if time.perf_counter() - t > args.seconds:
            break
    total = float(torch.stack(pending).sum().item())  # the block's one host sync
    seconds = time.perf_counter() - t
    row.update(steps=done, seconds=seconds, images_per_s=done * args.batch_size / seconds,
               ms_per_step=1000 * seconds / done, finite=math.isfinite(total),
               precision=cfg.train.precision, compile=cfg.train.compile)
    return row


def write(path: Path, header: dict, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**header, "rows": rows}, indent=2))
    tmp.replace(path)  # whole or not at all, even when a timeout ends the process


def main(argv=None) -> int:
    args = parse_args(argv)
    from ganvae.common.device import machine_description, resolve_device
    from ganvae.config import DataConfig
    from ganvae.data.dataset import load_dataset

    device = resolve_device(args.device)
    data = load_dataset(DataConfig(dataset=args.dataset)).to(device)
    header = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "machine": machine_description(), "platform": platform.platform(), "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dataset": args.dataset,
              "batch_size": args.batch_size, "warmup": args.warmup, "steps": args.steps, "seconds": args.seconds,
              "limit_s": args.limit_s}
    out = Path(args.out)
    rows: list[dict] = []
    cache: dict = {}  # one built (and clustered) model per family, copied for each variant
    for name, variant in plan(args.models, args.variants):
        try:
            with time_limit(args.limit_s):
                row = measure(name, variant, data, args, device, cache)
        except MeasurementTimeout as e:
            row = {"model": name, "variant": variant, "error": f"timed out: {e}"}
        except Exception as e:  # one variant failing (bf16 without bf16 units, a compile error) ends only itself
            row = {"model": name, "variant": variant, "error": f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"}
        finally:
            if variant in ("compile", "cudagraphs"):
                torch._dynamo.reset()  # the next compiled measurement starts from no cached graphs
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
        write(out, header, rows)
        if "error" in row:
            print(f"{name:8s} {variant:10s} {row['error']}", flush=True)
        else:
            print(f"{name:8s} {variant:10s} {row['images_per_s']:10.0f} img/s ({row['ms_per_step']:.2f} ms/step, "
                  f"{row['steps']} steps; set-up {row['setup_s']:.1f} s, warm-up {row['warmup_s']:.1f} s)", flush=True)
    write(out, header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
