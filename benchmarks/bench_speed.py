"""Training speed of ganvae against the way tutorials write the same training, and against the machine's ceiling.

Run (from the repository root, nothing else running):

    .venv/bin/python benchmarks/bench_speed.py --data-dir ../shared/data/mnist

For each model (gan, dcgan, vae, vae-gan at their default sizes and batch sizes) it measures,
alternately in one process, after warm-up, over several repetitions:

- ganvae: the trainer's hot path: the in-memory uint8 batch of a seeded permutation, scaled on
  the fly, then ``model.training_step`` (one host sync per measured block, as the trainer syncs
  once per logging interval), with the trainer's denormal flushing (``train.flush_denormals``);
- tutorial baseline: the tutorials' way: a ``torch.utils.data.DataLoader`` over the dataset with
  torchvision's per-sample MNIST + ToTensor + Normalize work (written out, since torchvision is
  not used), the two-pass discriminator/generator step of the PyTorch DCGAN example (the
  discriminator not frozen in the generator step), default Adam, and ``loss.item()`` every step;
  the same architecture (stock ``nn.Dropout``, leaky ReLUs not in place, the default memory
  format), batch size and thread count;
- lean baseline: the same with a faster per-sample transform (numpy to a normalised tensor, no
  PIL round trip), for a ratio that isolates the training step.

It also counts the FLOPs of one ganvae training step (``torch.utils.flop_counter``),
measures the fp32 matrix-multiply rate, and prints achieved FLOP/s and the share of that
ceiling. Results are printed as a Markdown table and written to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganvae.common.device import machine_description
from ganvae.common.pixels import scale_images
from ganvae.config import DataConfig, build_config
from ganvae.data.dataset import iter_batch_indices, load_dataset
from ganvae.models.step import StepContext
from ganvae.registry import build_model, get_entry
from ganvae.training.denormals import flush_denormals

MODELS = ("gan", "dcgan", "vae", "vae-gan")


# ----------------------------------------------------------------------------- baseline (tutorial style)


class TutorialDataset(torch.utils.data.Dataset):
    """MNIST as the tutorials read it: torchvision's ``MNIST`` dataset with ``ToTensor()`` (+ ``Normalize``).

    torchvision is not a dependency, so its per-sample code is written out: ``MNIST.__getitem__``
    makes a PIL image of the uint8 tensor row (``Image.fromarray(img.numpy(), mode="L")``);
    ``ToTensor`` turns it back into a tensor (``np.array`` copy, view, permute to CHW,
    ``.float().div(255)``); ``Normalize((0.5,), (0.5,))`` maps it to [-1, 1] for the GANs.
    With ``lean=True`` the PIL round trip is skipped (numpy straight to a normalised tensor),
    a faster loader than the tutorials', used for the stricter comparison.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, value_range: str, lean: bool = False):
        self.data, self.targets, self.value_range, self.lean = images, labels, value_range, lean
        self.numpy_data = images.numpy()

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        if self.lean:
            x = torch.from_numpy(self.numpy_data[i].astype(np.float32) / 255.0).unsqueeze(0)  # (1, 28, 28) in [0, 1]
            if self.value_range == "tanh":
                x = (x - 0.5) / 0.5
            return x, int(self.targets[i])
        img = Image.fromarray(self.data[i].numpy(), mode="L")  # torchvision MNIST.__getitem__
        x = torch.from_numpy(np.array(img, np.uint8, copy=True))  # ToTensor (F.to_tensor on a PIL image)
        x = x.view(img.size[1], img.size[0], 1).permute((2, 0, 1)).contiguous()
        x = x.to(dtype=torch.get_default_dtype()).div(255)
        if self.value_range == "tanh":  # Normalize((0.5,), (0.5,)) (F.normalize)
            mean = torch.as_tensor((0.5,), dtype=x.dtype).view(-1, 1, 1)
            std = torch.as_tensor((0.5,), dtype=x.dtype).view(-1, 1, 1)
            x = x.sub_(mean).div_(std)
        return x, int(self.targets[i])


def baseline_gan_step(model, opt_g, opt_d, real):
    """The PyTorch DCGAN example's step: D on real, D on G(z).detach(), then G through the unfrozen D."""
    c = model.config
    G, D = model.generator, model.discriminator
    b = real.shape[0]
    ones, zeros = torch.full((b, 1), 1.0), torch.zeros(b, 1)
    D.zero_grad()
    loss_real = F.binary_cross_entropy_with_logits(D(real), ones)
    fake = G(torch.randn(b, c.latent_dim))
    loss_fake = F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
    loss_d = loss_real + loss_fake
    loss_d.backward()
    opt_d.step()
    G.zero_grad()
    loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def baseline_vae_step(model, opt, x):
    """The PyTorch VAE example's step: forward, BCE(sum) + KLD, backward, step, loss.item()."""
    mu, logvar = model.encoder(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = torch.sigmoid(model.decoder(z))
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    loss = (bce + kld) / x.shape[0]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def baseline_vae_gan_step(model, opt_vae, opt_d, x):
    """Two passes as a tutorial writes them: D on real, reconstructions and prior samples, then encoder+decoder."""
    c = model.config
    E, Dec, D = model.encoder, model.decoder, model.discriminator
    b = x.shape[0]
    mu, logvar = E(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = torch.sigmoid(Dec(z))
    prior = torch.sigmoid(Dec(torch.randn_like(z)))
    D.zero_grad()
    loss_d = (F.binary_cross_entropy_with_logits(D(x), torch.full((b, 1), c.real_label))
              + F.binary_cross_entropy_with_logits(D(recon.detach()), torch.zeros(b, 1))
              + F.binary_cross_entropy_with_logits(D(prior.detach()), torch.zeros(b, 1)))
    loss_d.backward()
    opt_d.step()
    recon_adv = torch.sigmoid(Dec(z.detach()))
    adv = (F.binary_cross_entropy_with_logits(D(recon_adv), torch.ones(b, 1))
           + F.binary_cross_entropy_with_logits(D(prior), torch.ones(b, 1))) / 2
    rec = F.binary_cross_entropy(recon, x, reduction="sum") / b
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
    loss = rec + kld + c.adversarial_weight * adv
    opt_vae.zero_grad()
    loss.backward()
    opt_vae.step()
    return loss.item()


def as_tutorial_modules(model: torch.nn.Module) -> torch.nn.Module:
    """The same architecture written with the stock modules a tutorial uses: ``nn.Dropout`` for
    ganvae's faster-drawn dropout, leaky ReLUs that are not in place."""
    from ganvae.models.blocks import Dropout

    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, Dropout):
                setattr(parent, child_name, torch.nn.Dropout(child.p))
            elif isinstance(child, torch.nn.LeakyReLU):
                child.inplace = False
    return model


def make_baseline(name, model):
    """(step function taking a batch, optimiser set-up) with default Adam (no foreach/fused choice)."""
    c = model.config
    if name in ("gan", "dcgan"):
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=c.lr_generator, betas=(c.beta1, c.beta2))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=c.lr_discriminator, betas=(c.beta1, c.beta2))
        return lambda x: baseline_gan_step(model, opt_g, opt_d, x)
    if name == "vae":
        opt = torch.optim.Adam(model.parameters(), lr=c.lr)
        return lambda x: baseline_vae_step(model, opt, x)
    opt_vae = torch.optim.Adam([*model.encoder.parameters(), *model.decoder.parameters()], lr=c.lr_generator,
                               betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=c.lr_discriminator, betas=(c.beta1, c.beta2))
    return lambda x: baseline_vae_gan_step(model, opt_vae, opt_d, x)


# ----------------------------------------------------------------------------- measurement


def time_baseline(step, loader_iter_factory, steps: int) -> float:
    it = loader_iter_factory()
    t = time.perf_counter()
    n = 0
    for _ in range(steps):
        try:
            x, _ = next(it)
        except StopIteration:
            it = loader_iter_factory()
            x, _ = next(it)
        step(x)
        n += x.shape[0]
    return n / (time.perf_counter() - t)


def time_ganvae(model, opts, images, batch_size, steps: int, epoch: int, autocast=None, labels=None) -> float:
    """Images per second of the trainer's hot path: the batch of a seeded permutation (``index_select`` of the uint8
    images), scaled on the fly, the batch's labels (``training_labels``: the data's, pseudo-classes, or None), the
    family's ``training_step`` and ``after_step``; one host sync at the end (the logging interval's)."""
    labels = torch.zeros(len(images), dtype=torch.long) if labels is None else labels
    t = time.perf_counter()
    pending = []
    n = 0
    batches = iter_batch_indices(len(images), batch_size, 0, epoch, device=images.device)
    for s in range(steps):
        try:
            idx = next(batches)
        except StopIteration:
            epoch += 1
            batches = iter_batch_indices(len(images), batch_size, 0, epoch, device=images.device)
            idx = next(batches)
        batch = images.index_select(0, idx)
        ctx = StepContext(s, epoch, 0.0, autocast, labels=model.training_labels(idx, labels))
        losses = model.training_step(scale_images(batch, model.value_range), opts, ctx)
        model.after_step(s)
        pending.append(losses)
        n += batch.shape[0]
    torch.stack([v for losses in pending for v in losses.values()]).sum().item()  # the logging interval's one sync
    return n / (time.perf_counter() - t)


def step_flops(model, opts, x) -> int:
    """FLOPs of one training step (fp32 forward and backward, as counted by torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.training_step(x, opts, StepContext(0, 0, 0.0))
    return counter.get_total_flops()


def matmul_rate(n: int = 2048, reps: int = 20) -> float:
    """fp32 matrix-multiply FLOP/s (best of 3 blocks), the machine's practical ceiling."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def model_overrides(name: str, overrides: list[str]) -> list[str]:
    """The ``--set`` overrides that apply to ``name``: every ``train.*`` one, ``model.*`` ones it has a field for."""
    fields = {f.name for f in dataclasses.fields(get_entry(name).config_cls)}
    return [o for o in overrides if not o.startswith("model.") or o.split("=", 1)[0].split(".", 1)[1] in fields]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="full MNIST IDX folder (default: the offline mnist-5k subset)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="target seconds per measured block")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--set", action="append", default=[],
                   help="config overrides for ganvae's side, e.g. model.reuse_fake_logits=true or "
                        "train.flush_denormals=false")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="ganvae's side only: bf16 = the train.precision=bf16 option (autocast); "
                        "the baselines stay fp32")
    p.add_argument("--out", default="benchmarks/out/speed.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = "mnist" if args.data_dir else "mnist-5k"
    data = load_dataset(DataConfig(dataset=dataset, data_dir=args.data_dir))
    images_u8, labels = data.train_images[:, 0].contiguous(), data.train_labels
    ceiling = matmul_rate()
    autocast = None
    if args.precision == "bf16":
        from ganvae.training.trainer import bf16_autocast

        autocast = bf16_autocast(torch.device("cpu"))
    print(f"machine: {machine_description()}; threads {args.threads}; data {dataset} ({len(data)} images); "
          f"ganvae precision {args.precision}; overrides {args.set or 'none'}")
    print(f"fp32 matmul ceiling: {ceiling / 1e9:.0f} GFLOP/s")
    rows = []
    for name in args.models.split(","):
        cfg = build_config(name, overrides=model_overrides(name, args.set))
        bs = cfg.train.batch_size
        # as the trainer does: on for ganvae's steps, off (torch's default) for the baselines
        flush = cfg.train.flush_denormals
        torch.manual_seed(0)
        ours = build_model(cfg, (1, 28, 28))
        ours_opts = ours.make_optimizers()
        # the baseline: the same networks (same init), in the default memory format
        base_cfg = build_config(name, overrides=["model.channels_last=false"] if name == "dcgan" else [])
        torch.manual_seed(0)
        base = as_tutorial_modules(build_model(base_cfg, (1, 28, 28)))
        base_step = make_baseline(name, base)
        loaders = {
            kind: torch.utils.data.DataLoader(TutorialDataset(images_u8, labels, ours.value_range, lean=kind == "lean"),
                                              batch_size=bs, shuffle=True, drop_last=True, num_workers=0)
            for kind in ("tutorial", "lean")
        }
        flops = step_flops(ours, ours_opts, scale_images(data.train_images[:bs], ours.value_range))
        # warm-up all three, and size the measured blocks to about --seconds
        with flush_denormals(flush):
            warm = time_ganvae(ours, ours_opts, data.train_images, bs, 5, 0, autocast)
        for loader in loaders.values():
            time_baseline(base_step, lambda: iter(loader), 3)
        steps = max(5, int(args.seconds * warm / bs))
        rates: dict[str, list[float]] = {"ganvae": [], "tutorial": [], "lean": []}
        for r in range(args.repeats):
            for kind, loader in loaders.items():
                rates[kind].append(time_baseline(base_step, lambda: iter(loader), steps))
            with flush_denormals(flush):
                rates["ganvae"].append(time_ganvae(ours, ours_opts, data.train_images, bs, steps, r + 1, autocast))
        med = {k: statistics.median(v) for k, v in rates.items()}
        achieved = flops / bs * med["ganvae"]
        row = {"model": name, "batch_size": bs, "steps_per_block": steps, "ganvae_images_per_s": med["ganvae"],
               "baseline_images_per_s": med["tutorial"], "ratio": med["ganvae"] / med["tutorial"],
               "lean_baseline_images_per_s": med["lean"], "lean_ratio": med["ganvae"] / med["lean"],
               "gflop_per_image": flops / bs / 1e9, "achieved_gflops": achieved / 1e9,
               "ceiling_fraction": achieved / ceiling,
               "ganvae_all": rates["ganvae"], "baseline_all": rates["tutorial"], "lean_baseline_all": rates["lean"]}
        rows.append(row)
        print(f"{name:8s} batch {bs:4d}: ganvae {med['ganvae']:8.0f} img/s, "
              f"tutorial baseline {med['tutorial']:8.0f} img/s ({row['ratio']:.2f}x), "
              f"lean baseline {med['lean']:8.0f} img/s ({row['lean_ratio']:.2f}x), "
              f"{row['gflop_per_image']:.3f} GFLOP/img, {achieved / 1e9:.0f} GFLOP/s = "
              f"{row['ceiling_fraction']:.0%} of ceiling",
              flush=True)
    print()
    print("| model | batch | ganvae img/s | tutorial baseline img/s | ratio | lean baseline img/s | ratio to lean "
          "| GFLOP/image | achieved GFLOP/s | share of matmul ceiling |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['batch_size']} | {r['ganvae_images_per_s']:.0f} | {r['baseline_images_per_s']:.0f} "
              f"| {r['ratio']:.2f}x | {r['lean_baseline_images_per_s']:.0f} | {r['lean_ratio']:.2f}x | "
              f"{r['gflop_per_image']:.3f} | {r['achieved_gflops']:.0f} | {r['ceiling_fraction']:.0%} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_description(), "platform": platform.platform(),
                               "threads": args.threads,
                               "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
                               "ceiling_gflops": ceiling / 1e9, "dataset": dataset, "overrides": args.set,
                               "precision": args.precision, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
