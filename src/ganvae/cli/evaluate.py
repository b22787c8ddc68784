"""``ganvae evaluate``, ``compare`` and ``demo``: the numbers, the report, and the two-minute tour."""

from __future__ import annotations

from ganvae.cli import common


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained run, real:DATASET (the reference figures) or images:DIR")
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint, pretrained name or folder, real:mnist (train "
                                              "split against test split), or images:DIR (a folder of any program's "
                                              "samples)")
    p.add_argument("--dataset", help="score against this dataset's test split (default: the run's own; mnist for "
                                     "images:DIR; offline, a pretrained model or images:DIR get the packaged "
                                     "mnist-25k), e.g. mnist-25k offline for a model trained on full MNIST")
    p.add_argument("--n-samples", type=int, default=10000,
                   help="samples scored, at least 50 (default %(default)s, the standard; images:DIR: at most its "
                        "images)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the samples: drawn from a model, or picked from real: and images:DIR (default "
                        "%(default)s)")
    p.add_argument("--iwae-k", type=int, default=50,
                   help="importance samples of the NLL bound (5000 as in the literature)")
    p.add_argument("--data-dir", help="folder of the dataset's files, if not where the run found them")
    p.add_argument("--classifier", metavar="FILE",
                   help="feature network .safetensors of the run's dataset (default: the shipped one for MNIST and its "
                        "subsets, else the one `ganvae classifier train --dataset NAME` put in the cache)")
    p.add_argument("--inception-weights", metavar="FILE",
                   help="also compute the papers' FID and KID (fid_inception, kid_inception) on Inception-v3 with "
                        "pytorch-fid's weights from this file, pt_inception-2015-12-05-6726825d.pth (never "
                        "downloaded; slow on a CPU)")
    p.add_argument("--out", help="metrics JSON (default <run>/metrics.json)")
    p.add_argument("--no-ema", action="store_true", help="score the trained weights, not their moving average")
    p.set_defaults(func=evaluate)


def evaluate(args) -> int:
    from ganvae.inference.tasks import evaluate
    from ganvae.metrics.evaluate import format_table

    extra = {"inception_weights": args.inception_weights} if args.inception_weights else {}
    result = evaluate(args.run, n_samples=args.n_samples, seed=args.seed, iwae_k=args.iwae_k, data_dir=args.data_dir,
                      out=args.out, classifier=args.classifier, dataset=args.dataset, use_ema=not args.no_ema, **extra)
    print(format_table(result))
    return 0


def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="a side-by-side HTML + Markdown report of several runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="the runs to compare: run folders, checkpoints, "
                                                          "pretrained names or folders (`ganvae models`)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--n-samples", type=int, default=10000,
                   help="samples scored per run, at least 50 (default %(default)s, the standard)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run's samples (default %(default)s)")
    p.add_argument("--dataset", help="score every run against this dataset's test split (default: each run's own; "
                                     "a pretrained model without its data here: the packaged mnist-25k)")
    p.add_argument("--data-dir", help="folder of the dataset's files, if not where the runs found them")
    p.set_defaults(func=compare)


def compare(args) -> int:
    from ganvae.inference.report import compare

    print(compare(args.runs, args.out, n_samples=args.n_samples, seed=args.seed, data_dir=args.data_dir,
                  dataset=args.dataset))
    return 0


def add_demo(sub) -> None:
    from ganvae.training.demo import DEMO_MODELS, DEMO_SAMPLES, DEMO_STEPS

    p = sub.add_parser("demo", help="train a GAN, a DCGAN and a VAE on the offline mnist-25k and compare them")
    p.add_argument("--out", help="folder for the runs and the report (default runs/demo-<timestamp>)")
    p.add_argument("--models", default=",".join(DEMO_MODELS),
                   help="comma-separated models to train (default %(default)s; any registered family)")
    budgets = ", ".join(f"{m} {s}" for m, s in DEMO_STEPS.items())
    p.add_argument("--steps", type=common.positive_int,
                   help=f"optimisation steps per model, the same for each (default: {budgets}; the same result on "
                        "any machine, a busy one takes longer)")
    p.add_argument("--n-samples", type=common.positive_int, default=DEMO_SAMPLES,
                   help="samples per model for the final metrics (default %(default)s)")
    p.add_argument("--dataset", default="mnist-25k",
                   help="dataset name (`ganvae data list`) or folder:PATH (default %(default)s, offline)")
    p.add_argument("--data-dir", help="folder holding the dataset's IDX files (instead of the download cache)")
    p.add_argument("--seed", type=int, default=0, help="seed of every training and of the evaluation (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config value of every model, as `ganvae train` takes it (e.g. --set "
                        "train.num_threads=1)")
    p.set_defaults(func=demo)


def demo(args) -> int:
    from ganvae.training.demo import demo

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    demo(args.out, models=models, dataset=args.dataset, data_dir=args.data_dir, n_samples=args.n_samples,
         seed=args.seed, steps=args.steps, overrides=args.set, say=(lambda *_: None) if args.quiet else print)
    return 0


COMMANDS = (add_evaluate, add_compare, add_demo)
