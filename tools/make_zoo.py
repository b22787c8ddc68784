"""Build the pretrained zoo (src/ganvae/pretrained/<name>/) from trained runs, with measured model cards.

    python tools/make_zoo.py --data-dir ../shared/data/mnist NAME=RUN [NAME=RUN ...]

A run on an offline dataset (the colour digits) needs no --data-dir: it is evaluated on its own dataset's test split
with that dataset's own feature network (the shipped 32-pixel colour classifier).

For each pair: export the run's sampling networks in float16 (`ganvae export`), evaluate the exported folder with
the standard protocol (`ganvae evaluate NAME --n-samples 10000`, on the full MNIST test set), compare its FID with
the float32 run's (float16 is kept only if the two agree within the sampling noise; otherwise float32 is written),
and write the model card and the headline metrics into config.json.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from pathlib import Path

from ganvae import storage
from ganvae.common.files import atomic_write_text
from ganvae.inference import tasks as operations
from ganvae.models.configs import AUTO_PSEUDO_CLASSES
from ganvae.storage.pretrained_folder import read_config, save_pretrained
from ganvae.storage.zoo import zoo_dir

HEADLINE = ["classifier_fd", "classifier_fd_std", "classifier_kd", "precision_k5", "recall_k5", "density",
            "coverage", "class_entropy", "confident_share",
            "sharpness", "memorisation_ratio", "dropped_classes", "test_elbo", "test_nll_iwae", "conditional_accuracy",
            "classifier_intra_fd"]
INTENDED = {
    "gan": "an MLP GAN for teaching and comparison: samples, latent walks",
    "dcgan": "a small DCGAN (the TensorFlow tutorial's layer structure, a quarter of its channels): samples, walks",
    "vae": "an MLP VAE (784-400-10): samples, reconstructions, likelihood bounds, a 10-d latent space to explore",
    "conv-vae": "a convolutional VAE: samples, reconstructions, likelihood bounds",
    "vae-gan": "a VAE-GAN (Larsen et al. 2016): sharper reconstructions than the VAE, an encoder and a "
               "discriminator-trained decoder",
    "cppn": "a CPPN GAN+VAE: renders one latent at any resolution (`ganvae render mnist-cppn --size 2160x2160`)",
}


def intended_text(meta: dict) -> str:
    """What the model is for; a colour model says its data and size (its depth follows the image size)."""
    c, h, w = meta["image_shape"]
    if c == 1 and (h, w) == (28, 28):
        return INTENDED[meta["model_name"]]
    return (f"a `{meta['model_name']}` for {w}x{h}{' colour' if c == 3 else ''} images of `{meta['data']['dataset']}` "
            f"(its depth follows the image size: ganvae.models.blocks.conv_depth): samples, latent walks")


def conditional_text(model_name: str) -> str:
    """How a conditional model of this family sees the class (conditioning.py), for its card."""
    how = ("a CVAE (Sohn et al. 2015): encoder and decoder both see the class" if model_name in ("vae", "conv-vae")
           else "the class embedding beside z and a projection discriminator (Miyato & Koyama 2018)")
    return f"; ask it for a digit (`labels=` in Python, `--digit` on the command line): {how}"


def per_class_text(metrics: dict) -> str:
    """A conditional model's per-class accuracy and intra-FID, for its card (empty for other models)."""
    accuracy, intra = metrics.get("conditional_accuracy_per_class"), metrics.get("classifier_intra_fd_per_class") or {}
    if not accuracy:
        return ""
    cells = ", ".join(f"{c}: {a:.1%}" + (f" / {intra[c]:.0f}" if c in intra else "") for c, a in accuracy.items())
    return f"\nPer class (conditional accuracy / intra-class classifier FD): {cells}.\n"


def prior_fit_meta(fit: dict) -> dict:
    """A card's record of a learned prior's fit (``ganvae fit-prior``'s result or a run's ``summary.json``)."""
    return {k: fit[k] for k in ("codes", "iterations", "seed", "log_likelihood", "seconds", "dataset", "prior")
            if k in fit}


def sampling_networks(folder: Path) -> list[str]:
    """The networks a pretrained folder stores, by name, without the sampling state beside them (the learned
    prior's and the pseudo-classes' tensors, which the card's prior line describes)."""
    return sorted(storage.load(folder).model.sampling_networks())


def prior_text(meta: dict) -> str:
    """The card's line on the sampling prior."""
    m = meta["model"]
    if m.get("prior") == "gmm":
        fit = meta.get("prior_fit") or {}
        how = (f", fitted after training to the posterior means of {fit['codes']:,} training images "
               f"({fit['iterations']} EM iterations, seed {fit['seed']}; `ganvae fit-prior` refits it)") if fit else ""
        used = re.search(r"k=(\d+) of at most", fit.get("prior", ""))  # the mixture's size follows the data
        shape = (f"a Gaussian mixture of {used.group(1)} components (of at most {m['prior_components']})" if used
                 else f"a Gaussian mixture of {m['prior_components']} components")
        if m.get("conditional"):
            shape = (f"one Gaussian mixture per class, {max(1, m['prior_components'] // m['num_classes'])} "
                     f"components each")
        return (f"{shape} with {m['prior_covariance']} covariances{how}, stored in float32 (Ghosh et al. 2020, "
                f"ex-post density estimation). The likelihood bounds below use N(0, I), "
                f"the training objective's prior.")
    k = m.get("self_conditioning", 0)
    if k is None:  # auto: the default count for an unconditional model
        k = 0 if m.get("conditional") else AUTO_PSEUDO_CLASSES
    if k:
        what = ("a spectral embedding of the training images' pixels, clustered once before training"
                if m.get("self_conditioning_features", "discriminator") == "spectral"
                else "the discriminator's features of the training images, clustered again during training")
        return (f"N(0, I) noise and one of {k} self-conditioning clusters ({what}), drawn by its share of the "
                f"training images (Liu et al. 2020).")
    if m.get("conditional"):
        return ("N(0, I) noise, decoded with the class asked for (`labels=`, `--digit`; by default the classes in "
                "turn).")
    return "N(0, I)."


def recipe_text(command: str | None) -> str:
    """ "ganvae's default recipe", plus the model settings the training command changed (``--set model.X=Y``)."""
    words = (command or "").split()
    changed = [w for flag, w in zip(words, words[1:]) if flag == "--set" and w.startswith("model.")]
    return "ganvae's default recipe" + (f" with {', '.join(f'`{c}`' for c in changed)}" if changed else "")


def data_text(meta: dict) -> str:
    """The card's line on the training data: MNIST's, or an offline dataset's own title and licence."""
    from ganvae.data.sources import SOURCES

    dataset, size = meta["data"]["dataset"], meta["image_shape"]
    shape = "x".join(str(v) for v in size[1:]) + (" RGB" if size[0] == 3 else "")
    if dataset.startswith("mnist"):
        return f"MNIST (LeCun, Cortes & Burges), the 60,000 training images, all ten classes, {shape}."
    source = SOURCES[dataset]
    return f"`{dataset}`: {source.title} (licence: {source.license}), {shape}; generated offline, no download."


def licence_text(meta: dict) -> str:
    dataset = meta["data"]["dataset"]
    if dataset.startswith("mnist"):
        return "Trained on MNIST (Yann LeCun and Corinna Cortes; distributed under CC BY-SA 3.0)."
    from ganvae.data.sources import SOURCES

    return f"Trained on {dataset}, {SOURCES[dataset].license}."


def _evaluation_data_dir(run, data_dir: str | None) -> str | None:
    """``--data-dir`` for MNIST runs; None for an offline dataset, which is evaluated on its own files."""
    return data_dir if storage.load(run).config.data.dataset.startswith("mnist") else None


def _epochs(n) -> str:
    return "under one epoch" if not n else f"{n} epoch{'' if n == 1 else 's'}"


def card(name: str, meta: dict, metrics: dict, protocol: dict, fp_check: str, networks: list[str]) -> str:
    src = meta["source"]
    conditional = meta["model"].get("conditional", False)
    rows = "\n".join(f"| {k} | {metrics[k]:.4g} |" if isinstance(metrics[k], float) else f"| {k} | {metrics[k]} |"
                     for k in HEADLINE if k in metrics)
    minutes = (src.get("train_seconds") or 0) / 60
    return f"""# {name}

A pretrained {'class-conditional ' if conditional else ''}`{meta['model_name']}` from ganvae: {
    intended_text(meta)}{conditional_text(meta['model_name']) if conditional else ''}.

```python
import ganvae
model = ganvae.load("{name}")
model.sample(16, seed=0{', labels=7' if conditional else ''}).grid()
```
or `ganvae sample {name} -n 64 --out grid.png`{' (a class grid; `--digit 7` for sevens)' if conditional else ''}.

## Recipe and budget
- Model: `{meta['model_name']}` with {
    recipe_text(src.get('command'))} (full config in `config.json`); the sampling networks
  only ({", ".join(networks)}), their exponential
  moving average where the recipe keeps one, stored in {meta['dtype']}.
- Prior (what samples are drawn from): {prior_text(meta)}
- Data: {data_text(meta)}
- Training: `{src.get('command')}` — {src.get('steps')} steps, {_epochs(src.get('epochs'))}, {minutes:.1f} minutes
  of training on {src.get('machine')} ({src.get('device')}).

## Measured (`{meta['metrics_protocol'].split(';')[0]}{
    ' --data-dir MNIST_DIR' if meta['data']['dataset'].startswith('mnist') else ''}`)
Feature network: {protocol['feature_network']['name']}, trained on {protocol['feature_network'].get('trained_on',
    'mnist')}'s images (test accuracy {protocol['feature_network']['test_accuracy']});
{protocol['n_samples']} samples (seed {protocol['sample_seed']}) against the {protocol['reference']}; k = 5 for
precision, recall, density and coverage (Kynkaanniemi et al.'s precision and recall use k = 3, hence the keys
precision_k5 and recall_k5); classifier_* metrics are on this feature network, not Inception-v3, so they are
not comparable with papers' FID, KID or Inception Score; noise (_std): standard deviation over 20 bootstrap
resamplings.
{('Likelihood: IWAE bound with k = ' + str(metrics.get('likelihood_protocol', {}).get('iwae_k')) + ', '
  + str(metrics.get('likelihood_protocol', {}).get('binarisation')) + '.') if 'test_nll_iwae' in metrics else ''}

| metric | value |
| --- | --- |
{rows}
{per_class_text(metrics)}
Storage: {fp_check}

## Licence and intended use
Weights: MIT, as ganvae. {licence_text(meta)}
Intended for learning, demonstrations and as a baseline in comparisons on MNIST-like digits; not for any
decision about people or documents. These are small models trained for minutes on a 2-core CPU: their Frechet
distances are far from the literature's best (see the issue notes and benchmarks/RESULTS.md for the targets and what
was reached).
"""


def readme_table() -> str:
    """The README's table of the shipped models, read from their config.json files."""
    from ganvae.storage.zoo import pretrained_names

    lines = ["| name | model | classifier FD (10,000 samples) | precision (k=5) | recall (k=5) "
             "| classes under 1/3 share | test NLL bound, k = 1 (nats) | conditional accuracy | size | trained |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    total = 0
    for name in pretrained_names():
        folder = zoo_dir() / name
        meta, m = read_config(folder), read_config(folder)["metrics"]
        size = (folder / "model.safetensors").stat().st_size
        total += size + (folder / "config.json").stat().st_size + (folder / "README.md").stat().st_size
        nll = f"{m['test_nll_iwae']:.1f}" if "test_nll_iwae" in m else "-"
        accuracy = f"{m['conditional_accuracy']:.1%}" if "conditional_accuracy" in m else "-"
        src = meta["source"]
        lines.append(f"| [{name}](src/ganvae/pretrained/{name}/README.md) | {meta['model_name']} | "
                     f"{m['classifier_fd']:.1f} +- {m['classifier_fd_std']:.1f} | {m['precision_k5']:.3f} "
                     f"| {m['recall_k5']:.3f} "
                     f"| {m['dropped_classes'] or 'none'} | {nll} | {accuracy} | {size / 2**20:.1f} MB "
                     f"| {src['train_seconds'] / 60:.0f} min, {src['machine'].split(',')[0].replace('(R)', '')} |")
    return "\n".join(lines) + f"\n\n{total / 2**20:.1f} MB in all.\n"


def refit_prior(name: str, args) -> None:
    """Fit a shipped encoder model's learned prior on full MNIST (``ganvae fit-prior``), evaluate it with the zoo's
    protocol and write it back with its card; the networks (and their float16 check) stay as they were."""
    import tempfile

    folder = zoo_dir() / name
    old = read_config(folder)
    old_card = (folder / "README.md").read_text()
    storage = next((line[len("Storage: "):] for line in old_card.splitlines() if line.startswith("Storage: ")),
                   f"{old['dtype']}.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        fit = operations.fit_prior(folder, out=out, components=args.components, covariance=args.covariance,
                            dataset="mnist", data_dir=args.data_dir)
        result = operations.evaluate(out, n_samples=args.n_samples, data_dir=args.data_dir, iwae_k=args.iwae_k,
                              out=Path(tmp) / "metrics.json")
        meta = read_config(out)
        meta["metrics"] = {k: result["metrics"][k] for k in HEADLINE if k in result["metrics"]}
        meta["metrics_protocol"] = (f"ganvae evaluate {name} --n-samples {args.n_samples} --iwae-k {args.iwae_k}; "
                                    f"full MNIST test set")
        meta["prior_fit"] = prior_fit_meta(fit)
        meta["metrics_before_prior"] = {k: old["metrics"][k] for k in ("classifier_fd", "classifier_fd_std",
                                                                       "precision_k5", "recall_k5")
                                        if k in old.get("metrics", {})}
        atomic_write_text(out / "config.json", json.dumps(meta, indent=2) + "\n")
        storage = storage.rstrip(".") + "; the prior's tensors in float32."
        atomic_write_text(out / "README.md", card(name, meta, result["metrics"], result["protocol"], storage,
                                                  sampling_networks(out)))
        for f in ("config.json", "model.safetensors", "README.md"):
            shutil.copyfile(out / f, folder / f)
    before = meta["metrics_before_prior"].get("classifier_fd")
    print(f"{name}: {fit['prior']}: FID {result['metrics']['classifier_fd']:.2f} (N(0, I): {before}), recall "
          f"{result['metrics']['recall_k5']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="*", metavar="NAME=RUN")
    parser.add_argument("--table", action="store_true", help="print the README's table of the shipped models")
    parser.add_argument("--readme", help="with --table: write it into this README between its zoo-table markers")
    parser.add_argument("--data-dir", help="folder of the four MNIST files (required to build)")
    parser.add_argument("--n-samples", type=int, default=10000)
    parser.add_argument("--iwae-k", type=int, default=1,
                        help="importance samples of the likelihood bound (1 = the ELBO)")
    parser.add_argument("--refit-prior", nargs="+", metavar="NAME", help="fit the learned prior of these shipped "
                        "encoder models (their networks unchanged), evaluate them again and rewrite their cards")
    parser.add_argument("--components", type=int, help="with --refit-prior: mixture components (default: the config's)")
    parser.add_argument("--covariance", choices=["full", "diag"], help="with --refit-prior: covariance type")
    args = parser.parse_args()
    if args.table:
        table = readme_table()
        if args.readme:
            path = Path(args.readme)
            text = path.read_text()
            start, end = "<!-- zoo-table -->\n", "<!-- /zoo-table -->"
            head, rest = text.split(start, 1)
            atomic_write_text(path, head + start + table + rest[rest.index(end):])
        print(table)
        return
    if args.refit_prior:
        if not args.data_dir:
            parser.error("--refit-prior needs --data-dir")
        for name in args.refit_prior:
            refit_prior(name, args)
        return
    if not args.pairs:
        parser.error("give NAME=RUN pairs (and --data-dir for MNIST runs), or --table")
    for pair in args.pairs:
        name, run = pair.split("=", 1)
        folder = zoo_dir() / name
        shutil.rmtree(folder, ignore_errors=True)
        data_dir = _evaluation_data_dir(run, args.data_dir)
        reference = operations.evaluate(run, n_samples=args.n_samples, data_dir=data_dir, iwae_k=args.iwae_k,
                                        out=Path("/tmp") / f"{name}-fp32.json")
        operations.export(run, folder, dtype="float16")
        half = operations.evaluate(folder, n_samples=args.n_samples, data_dir=data_dir, iwae_k=args.iwae_k,
                                   out=Path("/tmp") / f"{name}-fp16.json")
        a, b = reference["metrics"], half["metrics"]
        noise = 2 * math.hypot(a.get("classifier_fd_std", 0), b.get("classifier_fd_std", 0))
        if abs(a["classifier_fd"] - b["classifier_fd"]) <= noise:
            fp_check = (f"float16 (classifier FD {b['classifier_fd']:.2f} against {a['classifier_fd']:.2f} for the "
                        f"float32 weights: within twice the noise, {noise:.2f}).")
            result = half
        else:
            loaded = storage.load(run)
            save_pretrained(loaded.model, loaded.config, folder, dtype="float32", source=read_config(folder)["source"])
            fp_check = (f"float32 (float16 moved the classifier FD from {a['classifier_fd']:.2f} to "
                        f"{b['classifier_fd']:.2f}, beyond the noise {noise:.2f}).")
            result = reference
        meta = read_config(folder)
        meta["metrics"] = {k: result["metrics"][k] for k in HEADLINE if k in result["metrics"]}
        test_set = "full MNIST test set" if data_dir else f"{meta['data']['dataset']}'s test split"
        meta["metrics_protocol"] = (f"ganvae evaluate {name} --n-samples {args.n_samples} --iwae-k {args.iwae_k}; "
                                    f"{test_set}")
        summary = Path(run) / "summary.json"  # the learned prior fitted when training ended, if the run has one
        fit = json.loads(summary.read_text()).get("prior_fit") if summary.is_file() else None
        if fit:
            meta["prior_fit"] = prior_fit_meta(fit)
        atomic_write_text(folder / "config.json", json.dumps(meta, indent=2) + "\n")
        atomic_write_text(folder / "README.md", card(name, meta, result["metrics"], result["protocol"], fp_check,
                                                     sampling_networks(folder)))
        size = (folder / "model.safetensors").stat().st_size / 2**20
        print(f"{name}: FID {result['metrics']['classifier_fd']:.2f}, {size:.2f} MB, {fp_check}")


if __name__ == "__main__":
    main()
