"""``ganvae sample``, ``interpolate``, ``reconstruct`` and ``render``: pictures from a trained model (each a thin
wrapper over :mod:`ganvae.inference.writers`)."""

from __future__ import annotations

from ganvae.cli import common


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="a grid (or files) of samples from a trained run")
    p.add_argument("run", metavar="RUN", help=common.RUN_HELP)
    p.add_argument("-n", type=int, default=64, help="number of samples (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the latents: the same seed draws the same images (default %(default)s)")
    p.add_argument("--out", default="samples.png", help="the grid's PNG file (default %(default)s)")
    p.add_argument("--nrow", type=int, help="images per row")
    p.add_argument("--separate", metavar="DIR", help="also write one PNG per sample into DIR")
    p.add_argument("--no-grid", action="store_true", help="with --separate: write only the files "
                   "(any -n fits in memory)")
    p.add_argument("--digit", type=int, metavar="D", help="conditional models: draw this class (default: a class grid, "
                   "one row per class, the same noise in every row)")
    common.add_memory_flag(p)
    p.set_defaults(func=sample)


def sample(args) -> int:
    from ganvae.inference import writers

    grid = writers.sample(args.run, n=args.n, seed=args.seed, out=None if args.no_grid else args.out, nrow=args.nrow,
                          separate=args.separate, max_memory_gb=args.max_memory_gb, digit=args.digit)
    print(grid or args.separate)
    return 0


def add_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="a looping latent walk (spherical interpolation) as a GIF")
    p.add_argument("run", metavar="RUN", help=common.RUN_HELP)
    p.add_argument("--points", type=int, default=4, help="latent points visited")
    p.add_argument("--steps", type=int, default=30, help="frames between two points")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent points visited (default %(default)s)")
    p.add_argument("--out", default="walk.gif", help="output file (default walk.gif, or walk.png with --grid)")
    p.add_argument("--grid", action="store_true", help="a still grid (one row per pair of points) instead of a GIF")
    p.add_argument("--walks", type=int, default=16, help="walks shown side by side in the GIF")
    p.add_argument("--scale", type=int, default=2, help="pixel enlargement of the GIF")
    p.add_argument("--digit", type=int, metavar="D", help="conditional models: walk within this class")
    p.add_argument("--between-digits", type=common.digit_pair, metavar="A,B",
                   help="conditional models: keep each style and morph its class from A to B")
    common.add_memory_flag(p)
    p.set_defaults(func=interpolate)


def interpolate(args) -> int:
    from ganvae.inference import writers

    out = args.out if not (args.grid and args.out == "walk.gif") else "walk.png"
    print(writers.interpolate(args.run, points=args.points, steps=args.steps, seed=args.seed, out=out, grid=args.grid,
                              walks=args.walks, scale=args.scale, max_memory_gb=args.max_memory_gb, digit=args.digit,
                              between_digits=args.between_digits))
    return 0


def add_reconstruct(sub) -> None:
    p = sub.add_parser("reconstruct", help="test images above their reconstructions (models with an encoder)")
    p.add_argument("run", metavar="RUN", help=common.RUN_HELP)
    p.add_argument("-n", type=int, default=16, help="number of test images (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed choosing the test images (default %(default)s)")
    p.add_argument("--out", default="reconstructions.png", help="output PNG file (default %(default)s)")
    p.add_argument("--as-digit", type=int, metavar="D", help="conditional VAEs: decode each image's code as class D "
                   "(its style, another digit)")
    common.add_data_flags(p)
    p.set_defaults(func=reconstruct)


def reconstruct(args) -> int:
    from ganvae.inference import writers

    print(writers.reconstruct(args.run, n=args.n, seed=args.seed, out=args.out, dataset=args.dataset,
                              data_dir=args.data_dir, as_digit=args.as_digit))
    return 0


def add_render(sub) -> None:
    p = sub.add_parser("render", help="render a cppn latent at any resolution")
    p.add_argument("run", metavar="RUN", help=common.RUN_HELP)
    p.add_argument("--size", type=common.size, default=(1080, 1080), help="WIDTHxHEIGHT (default 1080x1080)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents rendered (default %(default)s)")
    p.add_argument("--out", help="output file (default render.png, or render.gif with --gif)")
    p.add_argument("--gif", action="store_true", help="a looping latent morph at that size")
    p.add_argument("--frames", type=int, default=24, help="frames between two latents in the --gif morph")
    p.add_argument("--points", type=int, default=3, help="latents visited by the --gif morph")
    p.add_argument("--digit", type=int, metavar="D", help="conditional cppn: render this class")
    common.add_memory_flag(p)
    p.set_defaults(func=render)


def render(args) -> int:
    from ganvae.inference import writers

    print(writers.render(args.run, size=args.size, seed=args.seed, out=args.out, gif=args.gif, frames=args.frames,
                         points=args.points, max_memory_gb=args.max_memory_gb, digit=args.digit))
    return 0


COMMANDS = (add_sample, add_interpolate, add_reconstruct, add_render)
