"""``ganvae explore``: the browser explorer (its limits' defaults read from :class:`ganvae.explore.limits.Limits`)."""

from __future__ import annotations

from ganvae.cli import common
from ganvae.errors import UnsupportedOperation
from ganvae.explore.limits import Limits


def add_explore(sub) -> None:
    p = sub.add_parser("explore", help="a local web app: walk the latent space, sliders, draw a digit, zoom a cppn")
    p.add_argument("runs", nargs="+", metavar="RUN", help=common.RUN_HELP + " (several: side by side)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    d = Limits()  # the defaults, from their owner
    p.add_argument("--port", type=common.port, default=8000, help="TCP port, 1-65535 (default 8000)")
    p.add_argument("--max-samples", type=common.positive_int, default=d.max_samples, help="images per request")
    p.add_argument("--max-render", type=common.positive_int, default=d.max_render,
                   help=f"largest cppn render, pixels a side (default {d.max_render}: a few seconds on 2 cores)")
    p.add_argument("--max-invert-steps", type=common.positive_int, default=d.max_invert_steps,
                   help="optimisation steps of one GAN inversion")
    p.add_argument("--max-jobs", type=common.positive_int, default=d.max_jobs, help="inversions running at once")
    p.add_argument("--max-queue", type=common.positive_int, default=d.max_queue,
                   help="requests waiting for one model; more are answered 429 (busy)")
    p.add_argument("--render-seconds", type=common.positive_float, default=d.render_seconds,
                   help="a cppn render still running after this many seconds is stopped")
    p.set_defaults(func=explore)


def explore(args) -> int:
    try:
        from ganvae.explore.server import serve  # fastapi and uvicorn: the [explore] extra
    except ImportError as err:
        raise UnsupportedOperation(str(err)) from None
    limits = Limits(max_samples=args.max_samples, max_render=args.max_render, max_invert_steps=args.max_invert_steps,
                    max_jobs=args.max_jobs, max_queue=args.max_queue, render_seconds=args.render_seconds)
    serve(args.runs, host=args.host, port=args.port, limits=limits)
    return 0


COMMANDS = (add_explore,)
