"""``ganvae explore``: a local web app to play with trained models, on FastAPI + uvicorn.

Why FastAPI: it validates every request against typed models (pydantic) and answers a malformed one with a 422
that names the field, which is most of what a safe local server needs; its test client exercises the app without
a socket; uvicorn is the standard server for it. The page is plain HTML and JavaScript served by the app (no CDN,
works offline). Endpoints do the model work in FastAPI's thread pool, and inversions run in their own threads, so
the page stays responsive while one runs.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Optional

from ganvae.errors import ConfigError, GanvaeError
from ganvae.explore.session import Explorer, Limits, ModelView

try:  # the web stack is an optional extra: ganvae[explore]
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
except ImportError as err:  # pragma: no cover - reported by the CLI with the install command
    raise ImportError("ganvae explore needs FastAPI and uvicorn: pip install 'ganvae[explore]' "
                      "(from a checkout: pip install -e '.[explore]')") from err

MAX_LATENT = 1024  # numbers in one latent (far above any model here): bounds a request's size
MAX_PIXELS = 64 * 64  # grey values in one drawing


class SampleRequest(BaseModel):
    model: str
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n: int = Field(16, ge=1)
    digit: Optional[int] = None


class DecodeRequest(BaseModel):
    model: str
    latents: list[list[float]] = Field(..., min_length=1)
    digit: Optional[int] = None


class InterpolateRequest(BaseModel):
    model: str
    a: list[float] = Field(..., min_length=1, max_length=MAX_LATENT)
    b: list[float] = Field(..., min_length=1, max_length=MAX_LATENT)
    steps: int = Field(10, ge=2)
    digit: Optional[int] = None


class ImageRequest(BaseModel):
    model: str
    image: list[float] = Field(..., min_length=1, max_length=MAX_PIXELS)  # grey values in [0, 1], row-major
    digit: Optional[int] = None


class InvertRequest(ImageRequest):
    steps: int = Field(200, ge=1)


class RenderRequest(BaseModel):
    model: str
    latent: list[float] = Field(..., min_length=1, max_length=MAX_LATENT)
    size: int = Field(1024, ge=8)
    digit: Optional[int] = None


def create_app(explorer: Explorer) -> FastAPI:
    """The web app over ``explorer``'s models."""
    app = FastAPI(title="ganvae explore", docs_url=None, redoc_url=None)
    limits = explorer.limits

    def view(name: str) -> ModelView:
        try:
            return explorer.view(name)
        except KeyError:
            raise HTTPException(404, f"no model {name!r} here; these are: {sorted(explorer.views)}") from None

    def at_most(value: int, limit: int, what: str, flag: str) -> None:
        if value > limit:
            raise HTTPException(413, f"{what} {value} is over this server's limit of {limit} ({flag} raises it).")

    @app.exception_handler(GanvaeError)
    async def bad_request(request, err: GanvaeError):  # a request the model cannot serve: say why
        return JSONResponse(status_code=400, content={"detail": str(err)})

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return static_text("index.html")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        media = {"js": "text/javascript", "css": "text/css"}.get(name.rsplit(".", 1)[-1])
        if media is None or name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(static_text(name), media_type=media)

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {"models": [v.info() for v in explorer.views.values()],
                "limits": {k: getattr(limits, k) for k in ("max_samples", "max_steps", "max_render",
                                                            "max_invert_steps", "max_jobs")}}

    @app.post("/api/sample")
    def sample(req: SampleRequest) -> dict[str, Any]:
        at_most(req.n, limits.max_samples, "n", "--max-samples")
        return view(req.model).sample(req.seed, req.n, req.digit)

    @app.post("/api/decode")
    def decode(req: DecodeRequest) -> dict[str, Any]:
        at_most(len(req.latents), limits.max_samples, "latents", "--max-samples")
        v = view(req.model)
        return {"images": v.decode(v.latent_tensor(req.latents), req.digit)}

    @app.post("/api/interpolate")
    def interpolate(req: InterpolateRequest) -> dict[str, Any]:
        at_most(req.steps, limits.max_steps, "steps", "--max-steps")
        v = view(req.model)
        return v.interpolate(v.latent_tensor([req.a]), v.latent_tensor([req.b]), req.steps, req.digit)

    @app.get("/api/directions")
    def directions(model: str, k: int = 6) -> dict[str, Any]:
        if not 1 <= k <= 16:
            raise HTTPException(422, f"k={k}: ask for 1 to 16 directions.")
        return view(model).directions(k)

    @app.post("/api/encode")
    def encode(req: ImageRequest) -> dict[str, Any]:
        v = view(req.model)
        if not v.model.has_encoder:
            raise HTTPException(400, f"{req.model} has no encoder; find a latent for the drawing with /api/invert.")
        return v.encode(v.image_tensor(req.image), req.digit)

    @app.post("/api/invert")
    def invert(req: InvertRequest) -> dict[str, Any]:
        at_most(req.steps, limits.max_invert_steps, "steps", "--max-invert-steps")
        v = view(req.model)
        try:
            return explorer.start_inversion(v, v.image_tensor(req.image), req.steps, req.digit).as_dict()
        except RuntimeError as err:
            raise HTTPException(429, str(err)) from None

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        if job_id not in explorer.jobs:
            raise HTTPException(404, f"no inversion job {job_id!r} (finished jobs are kept for a while only).")
        return explorer.jobs[job_id].as_dict()

    @app.post("/api/render")
    def render(req: RenderRequest) -> Response:
        at_most(req.size, limits.max_render, "size", "--max-render")
        v = view(req.model)
        return Response(v.render(v.latent_tensor([req.latent]), req.size, req.digit), media_type="image/png")

    return app


STATIC_FILES = ("index.html", "explore.js", "explore.css")


def static_text(name: str) -> str:
    return resources.files("ganvae.explore").joinpath("static", name).read_text(encoding="utf-8")


def build_explorer(runs: list[str], device: str = "cpu", limits: Limits | None = None) -> Explorer:
    """Load each run or pretrained name once; names shown on the page are the arguments as given."""
    from ganvae.api import load_run

    if not runs:
        raise ConfigError("explore: name at least one run folder or pretrained model (`ganvae models` lists them).")
    views = {}
    for run in runs:
        key = str(run)
        if key in views:
            continue
        views[key] = ModelView(key, load_run(run, device=device))
    return Explorer(views, limits)


def _say(text: str) -> None:
    print(text, flush=True)  # the URL must reach a piped stdout before the server blocks


def serve(runs: list[str], host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          say=_say) -> None:
    """Load the models and serve the app until Ctrl-C."""
    import uvicorn

    app = create_app(build_explorer(runs, limits=limits))
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    say(f"ganvae explore: http://{shown}:{port}/  (Ctrl-C stops it)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can use the models")
    uvicorn.run(app, host=host, port=port, log_level="warning")
