"""``ganvae explore``: a local web app to play with trained models, on FastAPI + uvicorn.

Why FastAPI: it validates every request against typed models (pydantic) and answers a malformed one with a 422
that names the field, which is most of what a safe local server needs; its test client exercises the app without
a socket; uvicorn is the standard server for it. The page is plain HTML and JavaScript served by the app (no CDN,
works offline). Endpoints do the model work in FastAPI's thread pool, and inversions run in their own threads, so
the page stays responsive while one runs.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Optional

from ganvae.errors import NO_VALUE, ConfigError, FieldError, GanvaeError
from ganvae.explore.session import Busy, Explorer, Limits, ModelView, RenderAbandoned, RenderTooSlow

try:  # the web stack is an optional extra: ganvae[explore]
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
    from starlette.middleware.trustedhost import TrustedHostMiddleware
except ImportError as err:  # pragma: no cover - reported by the CLI with the install command
    raise ImportError("ganvae explore needs FastAPI and uvicorn: pip install 'ganvae[explore]' "
                      "(from a checkout: pip install -e '.[explore]')") from err

MAX_LATENT = 1024  # numbers in one latent (far above any model here): bounds a request's size
MAX_PIXELS = 3 * 64 * 64  # values in one drawing: H*W grey, or 3*H*W colour (channel-major)
MAX_LATENTS = 1024  # latents in one decode request, before the server's --max-samples (a bound on parsing)
Latent = Annotated[list[float], Field(min_length=1, max_length=MAX_LATENT)]


class SampleRequest(BaseModel):
    model: str
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n: int = Field(16, ge=1)
    digit: Optional[int] = None


class DecodeRequest(BaseModel):
    model: str
    latents: list[Latent] = Field(..., min_length=1, max_length=MAX_LATENTS)
    digit: Optional[int] = None


class InterpolateRequest(BaseModel):
    model: str
    a: Latent
    b: Latent
    steps: int = Field(10, ge=2)
    digit: Optional[int] = None


class ImageRequest(BaseModel):
    model: str
    # values in [0, 1], row-major: H*W grey values, or a colour model's 3*H*W (red plane, green, blue)
    image: list[float] = Field(..., min_length=1, max_length=MAX_PIXELS)
    digit: Optional[int] = None


class InvertRequest(ImageRequest):
    steps: int = Field(200, ge=1)


class RenderRequest(BaseModel):
    model: str
    latent: Latent
    size: int = Field(1024, ge=8)
    digit: Optional[int] = None


JSON_FIELDS: dict[str, str] = {}  # a library field whose request field is named otherwise (none yet: digit is digit)


def json_field(name: str, value: Any = NO_VALUE) -> str:
    """A library field as the page sends it (:data:`ganvae.errors.Spelling`): the request's JSON field and its
    value (``digit 12``); a config key, which no request sets, as a config file writes it
    (``model.conditional=true``)."""
    if "." in name:
        return name if value is NO_VALUE else f"{name}={json.dumps(value, default=str)}"
    word = JSON_FIELDS.get(name, name)
    return word if value is NO_VALUE else f"{word} {json.dumps(value, default=str)}"


def error_text(err: GanvaeError) -> str:
    """An error as the explorer's user reads it: a field error names the request's JSON field."""
    return err.render(json_field) if isinstance(err, FieldError) else str(err)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before it is parsed, whether it declares
    its length or streams in chunks, so a huge body costs neither memory nor the event loop's time."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send, declared.decode("latin-1"))
        seen, refused = 0, False

        async def counted():  # past the limit: answer 413 now, and tell the app the client has gone
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    await self._refuse(send, f"over {self.max_bytes:,}")
                    return {"type": "http.disconnect"}
            return message

        async def quiet_send(message):  # the app's own answer to a refused request is dropped
            if not refused:
                await send(message)

        await self.app(scope, counted, quiet_send)

    async def _refuse(self, send, size: str) -> None:
        body = json.dumps({"detail": f"the request body ({size} bytes) is over this server's limit of "
                                     f"{self.max_bytes:,} bytes; send fewer or shorter latents."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


LOCAL_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]


def allowed_hosts(host: str) -> list[str]:
    """Host headers the API answers: this machine's names and the ``--host`` it listens on. Any other name is a
    page of another site reaching the API through DNS rebinding (answered 400). Listening on every address
    (0.0.0.0, ::) means any name the machine is reached by."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return LOCAL_HOSTS + ([host] if host not in LOCAL_HOSTS else [])


def create_app(explorer: Explorer, host: str = "127.0.0.1") -> FastAPI:
    """The web app over ``explorer``'s models, answering requests addressed to ``host`` (and localhost)."""
    app = FastAPI(title="ganvae explore", docs_url=None, redoc_url=None)
    limits = explorer.limits
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host))
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    def view(name: str) -> ModelView:
        try:
            return explorer.view(name)
        except KeyError:
            raise HTTPException(404, f"no model {name!r} here; these are: {sorted(explorer.views)}") from None

    def at_most(field: str, value: int, limit: str) -> None:
        """Refuse a request's JSON ``field`` over the server's :class:`Limits` ``limit`` (``max_samples``), which
        whoever runs the server sets (``ganvae explore --max-samples``, ``Limits(max_samples=...)``)."""
        if value > getattr(limits, limit):
            raise HTTPException(413, f"{field} {value} is over this server's limit of {getattr(limits, limit)} "
                                     f"(its {limit} setting raises it).")

    @app.exception_handler(GanvaeError)
    async def bad_request(request, err: GanvaeError):  # a request the model cannot serve: say why
        return JSONResponse(status_code=400, content={"detail": explorer.public_text(error_text(err))})

    @app.exception_handler(Busy)
    async def busy(request, err: Busy):  # this model's queue is full: come back later
        return JSONResponse(status_code=429, content={"detail": str(err)}, headers={"Retry-After": "2"})

    @app.exception_handler(RenderTooSlow)
    async def too_slow(request, err: RenderTooSlow):
        return JSONResponse(status_code=503, content={"detail": str(err)})

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
                                                            "max_invert_steps", "max_jobs", "max_queue")}}

    @app.post("/api/sample")
    def sample(req: SampleRequest) -> dict[str, Any]:
        at_most("n", req.n, "max_samples")
        v = view(req.model)
        with v.queued():
            return v.sample(req.seed, req.n, req.digit)

    @app.post("/api/decode")
    def decode(req: DecodeRequest) -> dict[str, Any]:
        at_most("latents", len(req.latents), "max_samples")
        lengths = sorted({len(z) for z in req.latents})
        if len(lengths) > 1:  # a ragged list is a malformed request, like any other validation failure
            raise HTTPException(422, f"latents: every latent must have the same length; got lists of "
                                     f"{', '.join(map(str, lengths))} numbers.")
        v = view(req.model)
        with v.queued():
            return {"images": v.decode(v.latent_tensor(req.latents), req.digit)}

    @app.post("/api/interpolate")
    def interpolate(req: InterpolateRequest) -> dict[str, Any]:
        at_most("steps", req.steps, "max_steps")
        v = view(req.model)
        with v.queued():
            return v.interpolate(v.latent_tensor([req.a]), v.latent_tensor([req.b]), req.steps, req.digit)

    @app.get("/api/directions")
    def directions(model: str, k: int = 6) -> dict[str, Any]:
        if not 1 <= k <= 16:
            raise HTTPException(422, f"k={k}: ask for 1 to 16 directions.")
        v = view(model)
        with v.queued():
            return v.directions(k)

    @app.post("/api/encode")
    def encode(req: ImageRequest) -> dict[str, Any]:
        v = view(req.model)
        if not v.model.has_encoder:
            raise HTTPException(400, f"{req.model} has no encoder; find a latent for the drawing with /api/invert.")
        with v.queued():
            return v.encode(v.image_tensor(req.image), req.digit)

    @app.post("/api/invert")
    def invert(req: InvertRequest) -> dict[str, Any]:
        at_most("steps", req.steps, "max_invert_steps")
        v = view(req.model)
        try:
            return explorer.start_inversion(v, v.image_tensor(req.image), req.steps, req.digit).as_dict()
        except RuntimeError as err:
            raise HTTPException(429, str(err)) from None

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        if job_id not in explorer.jobs:
            raise HTTPException(404, f"no inversion job {job_id!r} (finished jobs are kept for a while only).")
        state = explorer.jobs[job_id].as_dict()
        return {**state, "error": state["error"] and explorer.public_text(state["error"])}

    @app.post("/api/render")
    async def render(req: RenderRequest, request: Request) -> Response:
        """Rendered in a worker thread while this coroutine watches the connection: a client that goes away
        (a closed tab, a new slider position's request) stops the render at its next band."""
        import asyncio
        import threading

        at_most("size", req.size, "max_render")
        v = view(req.model)
        gone = threading.Event()
        with v.queued():
            work = asyncio.ensure_future(asyncio.to_thread(v.render, v.latent_tensor([req.latent]), req.size,
                                                           req.digit, gone.is_set))
            while not work.done():
                await asyncio.wait([work], timeout=DISCONNECT_POLL_SECONDS)
                if not work.done() and await request.is_disconnected():
                    gone.set()
            try:
                return Response(work.result(), media_type="image/png")
            except RenderAbandoned:
                return Response(status_code=499)  # nginx's "client closed request": no one reads it

    return app


STATIC_FILES = ("index.html", "explore.js", "explore.css")
DISCONNECT_POLL_SECONDS = 0.1  # how often a render's connection is checked for a client that went away


def static_text(name: str) -> str:
    return resources.files("ganvae.explore").joinpath("static", name).read_text(encoding="utf-8")


def build_explorer(runs: list[str], device: str = "cpu", limits: Limits | None = None) -> Explorer:
    """Load each run or pretrained name once; names shown on the page are the arguments as given."""
    from ganvae.storage import load as load_run

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

    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port}: choose a port from 1 to 65535 (e.g. --port 8000).")
    app = create_app(build_explorer(runs, limits=limits), host=host)
    sock = bind(host, port)  # bound before the URL is printed: the URL is this server's, not another's
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    say(f"ganvae explore: http://{shown}:{port}/  (Ctrl-C stops it)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can use the models")
    server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


HEAD_SECONDS = 10.0  # a connection must send a whole request head within this of opening (or of its last answer)


def uvicorn_config(app, head_seconds: float = HEAD_SECONDS, **kwargs):
    """uvicorn's config for the app, its HTTP protocol closing a connection that has not sent a whole request head
    ``head_seconds`` after it opened or after its last answer: clients that dribble their headers (slowloris) are
    let go instead of holding a connection for ever. uvicorn's own keep-alive timeout does not do this, since any
    byte received restarts it. A request whose head arrived runs to its answer (the render deadline bounds it)."""
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutH11(H11Protocol):
        _head_timer = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(head_seconds, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            waiting = self.cycle is None or self.cycle.response_complete  # no request head since the timer started
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return uvicorn.Config(app, http=HeadTimeoutH11, **kwargs)


def bind(host: str, port: int):
    """A listening socket on ``host:port``; a port in use or an address this machine lacks is a named error."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"explore: cannot listen on {host}:{port} ({err.strerror or err}); another program may "
                          f"hold the port: choose another with --port N, or --host for another address.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
