"""``ganvae models`` (the shipped zoo), ``ganvae export`` (a run as a pretrained folder) and ``ganvae fit-prior``
(refit an encoder model's learned prior)."""

from __future__ import annotations

from ganvae.cli import common


def add_models(sub) -> None:
    p = sub.add_parser("models", help="the pretrained models shipped with ganvae, with their measured metrics")
    p.set_defaults(func=models)


def models(args) -> int:
    from ganvae.metrics.registry import CONDITIONAL_ACCURACY, FID, RECALL, TEST_NLL_IWAE
    from ganvae.storage import pretrained_folder, zoo

    names = zoo.pretrained_names()
    if not names:
        print("no pretrained models installed")
        return 0
    width = max(16, *(len(n) for n in names))
    print(f"{'name':<{width}} {'model':<9} {'cls FD':>7} {'recall':>7} {'NLL':>7} {'asked':>6}  {'size':>7}  trained")
    for name in names:
        folder = zoo.zoo_dir() / name
        meta = pretrained_folder.read_config(folder)
        m = (meta.get("metrics") or {})
        nll = f"{m[TEST_NLL_IWAE.key]:.1f}" if TEST_NLL_IWAE.key in m else "-"
        asked = f"{m[CONDITIONAL_ACCURACY.key]:.1%}" if CONDITIONAL_ACCURACY.key in m else "-"
        size = (folder / "model.safetensors").stat().st_size / 2**20
        src = meta.get("source") or {}
        minutes = f"{src['train_seconds'] / 60:.0f} min" if src.get("train_seconds") else "?"
        print(f"{name:<{width}} {meta['model_name']:<9} {m.get(FID.key, float('nan')):7.1f} "
              f"{m.get(RECALL.key, float('nan')):7.3f} "
              f"{nll:>7} {asked:>6}  {size:5.1f}MB  {minutes}, {meta['data']['dataset']}")
    print("\ncls FD: Frechet distance to the model's own dataset's test split, on that dataset's classifier's features "
          "(classifier_fd; not Inception FID): compare it within a dataset only;"
          " NLL: test bound (nats); asked: conditional accuracy, the share of samples drawing the digit asked for."
          "\nuse one wherever a command takes RUN (`ganvae sample mnist-dcgan -n 64`), or `ganvae.load(NAME)` "
          "in Python;"
          "\neach folder's README.md is its model card: " + str(zoo.zoo_dir()))
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a run's sampling networks as a pretrained folder (for ganvae.load)")
    p.add_argument("run", metavar="RUN", help="run folder or checkpoint file")
    p.add_argument("out", metavar="DIR", help="folder to write config.json, model.safetensors, README.md into")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                   help="tensor precision on disk (default float16: half the size; loaded as float32)")
    p.add_argument("--format", choices=["ganvae", "onnx"], default="ganvae",
                   help="ganvae: a pretrained folder for ganvae.load (default); onnx: sampler.onnx and decoder.onnx "
                        "for onnxruntime, float32, dynamic batch, checked against PyTorch (pip install 'ganvae[onnx]')")
    p.set_defaults(func=export)


def export(args) -> int:
    from ganvae.inference import tasks as operations

    print(operations.export(args.run, args.out, dtype=args.dtype, format=args.format))
    return 0


def add_fit_prior(sub) -> None:
    p = sub.add_parser("fit-prior", help="fit an encoder model's learned prior (a Gaussian mixture over its latents)",
                       description="Fit a Gaussian mixture to the posterior means of the training images (Ghosh et "
                                   "al. 2020's ex-post density estimation) and sample from it instead of N(0, I). "
                                   "Training fits it when it ends (model.prior: gmm); this refits a run (in place, "
                                   "still resumable) or a pretrained folder.")
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint, pretrained name or folder")
    p.add_argument("--out", metavar="DIR", help="pretrained models: write the refitted model here (required for a "
                                                "shipped name)")
    p.add_argument("--components", type=int, help="mixture components (model.prior_components)")
    p.add_argument("--covariance", choices=["full", "diag"],
                   help="each component's covariance (model.prior_covariance)")
    p.add_argument("--seed", type=int, help="seed of the fit (default: the run's train.seed)")
    common.add_data_flags(p)
    p.set_defaults(func=fit_prior)


def fit_prior(args) -> int:
    from ganvae.inference import tasks as operations

    result = operations.fit_prior(args.run, out=args.out, components=args.components, covariance=args.covariance,
                           dataset=args.dataset, data_dir=args.data_dir, seed=args.seed)
    print(f"{result['prior']}: fitted to {result['codes']:,} posterior means of {result['dataset']} in "
          f"{result['seconds']:.1f} s ({result['iterations']} EM iterations, {result['log_likelihood']:.3f} nats per "
          f"code) -> {result['written']}")
    return 0


COMMANDS = (add_models, add_export, add_fit_prior)
