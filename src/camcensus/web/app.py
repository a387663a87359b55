"""The volunteer platform's FastAPI application and its server.

:func:`create_app` assembles the JSON API (``/api``), the server-rendered pages and the static
files over one database engine and one media root; :func:`serve` runs it with uvicorn. Every
route is thin: it parses the request, calls one library function of :mod:`camcensus.db` and
formats the result. Security (headers, CSRF, body size, unexpected errors) lives in
:mod:`camcensus.web.security`; there is one error mapping, :func:`~camcensus.web.security.
error_response`.
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from camcensus._version import package_version
from camcensus.db.engine import GroupCommit, session_factory
from camcensus.web.ratelimit import Limit, RateLimiter
from camcensus.web.security import IdentityCache, SecurityMiddleware, error_response

if TYPE_CHECKING:
    from camcensus.exposure import ExposureIndex

__all__ = [
    "GSV_KEY_ENV",
    "SERVER_GC_THRESHOLDS",
    "STATIC_DIR",
    "TIPS",
    "WebSettings",
    "create_app",
    "serve",
    "tune_gc_for_serving",
]

#: The environment variable holding the Google Street View key (``WebSettings.gsv_key``).
GSV_KEY_ENV = "CAMCENSUS_GSV_KEY"

#: The front end's static files (vendored libraries, page scripts, styles).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Tips shown with the first tasks (``WebSettings.tip_tasks``).
TIPS = (
    "Look up and zoom in: cameras hang high on poles and walls.",
    "Not sure it is a camera? Don't tag it.",
    "Street lights, signal heads and antennas are not cameras; the guide shows look-alikes.",
    "Pan all the way round: cameras behind you count too.",
    "No camera anywhere? Say so with 'No camera here'.",
)


@dataclass(frozen=True)
class WebSettings:
    """Settings of the web app.

    Attributes
    ----------
    k
        Default number of independent volunteers per panorama for projects an admin creates.
    rate_limits
        Turn the in-memory rate limits on (off only for simulated load and benchmarks).
    signup_burst, signup_per_minute
        Sign-ups per client: at most ``burst`` at once, refilled at ``per_minute``.
    login_burst, login_per_minute
        Log-ins per client and, separately, per pseudonym.
    submit_burst, submit_per_minute
        Submissions (and problem reports) per volunteer.
    write_burst, write_per_minute
        Other writes per volunteer (comments, validations, task requests).
    data_burst, data_per_minute
        Reads of the public data routes (``/api/tags``, ``/api/panoramas``,
        ``/api/submissions``, ``/api/exposure/...``) per client.
    cookie_secure
        Mark cookies Secure; None: when the request came over https.
    max_body_bytes
        Larger request bodies are refused with 413.
    session_lifetime_s
        Lifetime of a log-in session.
    invitation_lifetime_s
        Lifetime of an invitation link.
    tip_tasks
        Tips are shown during a volunteer's first this many tasks.
    blur
        Blur faces and licence plates of every image the store fetches or imports
        (:class:`~camcensus.imagery.store.ImageStore` ``blur=``).
    gsv_key
        A Google Maps Platform key: ``gsv:<pano_id>`` panoramas are fetched through the Street
        View Static API on first request and pinned (default ``$CAMCENSUS_GSV_KEY``; without a
        key such panoramas answer 404).
    gsv_api_url
        The Street View API's address (tests point it at a local server).
    """

    k: int = 3
    rate_limits: bool = True
    signup_burst: int = 5
    signup_per_minute: float = 1.0
    login_burst: int = 10
    login_per_minute: float = 5.0
    submit_burst: int = 30
    submit_per_minute: float = 60.0
    write_burst: int = 60
    write_per_minute: float = 120.0
    data_burst: int = 120
    data_per_minute: float = 600.0
    cookie_secure: bool | None = None
    max_body_bytes: int = 256 * 1024
    session_lifetime_s: int = 14 * 24 * 3600
    invitation_lifetime_s: int = 7 * 24 * 3600
    tip_tasks: int = 20
    tips: tuple[str, ...] = field(default=TIPS)
    blur: bool = False
    gsv_key: str | None = field(default_factory=lambda: os.environ.get(GSV_KEY_ENV) or None)
    gsv_api_url: str | None = None

    def limiter(self) -> RateLimiter:
        """Return a fresh in-memory rate limiter for these settings."""
        return RateLimiter(
            {
                "signup": Limit(self.signup_burst, self.signup_per_minute),
                "login": Limit(self.login_burst, self.login_per_minute),
                "login_account": Limit(self.login_burst, self.login_per_minute),
                "submit": Limit(self.submit_burst, self.submit_per_minute),
                "write": Limit(self.write_burst, self.write_per_minute),
                "data": Limit(self.data_burst, self.data_per_minute),
            },
            enabled=self.rate_limits,
        )


def _refuse_writes(session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse a flush in a read-only session (it would write outside the write lock)."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError(
            "a read-only session (ReadSession) was asked to write; use DbSession in "
            "state-changing routes"
        )


def _handle_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


def _include_pages(app: FastAPI) -> None:
    """Include the HTML pages (camcensus.web.pages) when that module is present."""
    try:
        from camcensus.web import pages
    except ModuleNotFoundError as exc:
        if exc.name != "camcensus.web.pages":
            raise
        return
    app.include_router(pages.router)


def _docs_page(schema: dict[str, Any]) -> str:
    """Render the OpenAPI schema as plain HTML (no script, so it passes the CSP)."""
    rows = []
    for path, ops in sorted(schema.get("paths", {}).items()):
        for method, op in ops.items():
            params = ", ".join(f"{p.get('name')} ({p.get('in')})" for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = str(body.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>".format(
                    html.escape(method.upper()),
                    html.escape(path),
                    html.escape(str(op.get("summary", ""))),
                    html.escape(params),
                    html.escape(ref),
                )
            )
    title = html.escape(str(schema.get("info", {}).get("title", "API")))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1>"
        "<p>The machine-readable schema is at <a href='/openapi.json'>/openapi.json</a>. "
        "Every state-changing request needs the <code>X-CSRF-Token</code> header (the value of "
        "the <code>camcensus_csrf</code> cookie, from <code>GET /api/csrf</code>). Errors have "
        'one shape: <code>{"ok": false, "error", "errors": [{"field", "message"}], '
        '"status"}</code>.</p>'
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Parameters</th>"
        "<th>Body</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></body></html>"
    )


def create_app(
    engine: Engine,
    *,
    media_root: str | Path,
    settings: WebSettings | None = None,
    exposure: ExposureIndex | None = None,
) -> FastAPI:
    """Return the platform's web application over ``engine`` (an upgraded platform database).

    Parameters
    ----------
    engine
        The platform database (:func:`camcensus.db.connect`, then :func:`camcensus.db.upgrade`).
    media_root
        Folder of the pinned images (``image_uri`` paths are relative to it) and of rendered
        synthetic panoramas.
    settings
        Rate limits, cookie and body-size settings (default :class:`WebSettings`).
    exposure
        The exposure index behind ``/exposure`` and ``/api/exposure/...``
        (:func:`camcensus.exposure.load_index`); None: those answer 404.
    """
    from camcensus.web import (
        api_admin,
        api_auth,
        api_cameras,
        api_data,
        api_exposure,
        api_images,
        api_projects,
        api_tasks,
        api_verify,
    )

    settings = settings or WebSettings()
    app = FastAPI(
        title="camcensus volunteer platform",
        version=package_version(),
        description="Tag surveillance cameras in 360° panoramas; public data as JSON/GeoJSON.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.engine = engine
    # Writers take SQLite's write lock at their first statement; readers (GET routes, the
    # identity lookup) start deferred and never block a writer (camcensus.db.engine).
    app.state.write_sessions = session_factory(engine)
    app.state.read_sessions = session_factory(engine, readonly=True)
    event.listen(app.state.read_sessions, "before_flush", _refuse_writes)
    # The hot write routes (take a task, submit) go through one writer thread on SQLite:
    # group commit, one fsync for the requests that queued meanwhile (security.run_write).
    app.state.write_queue = (
        GroupCommit(app.state.write_sessions) if engine.dialect.name == "sqlite" else None
    )
    app.state.settings = settings
    app.state.media_root = Path(media_root)
    app.state.limiter = settings.limiter()
    app.state.identity_cache = IdentityCache()
    app.state.image_store = None
    app.state.exposure = exposure
    app.state.exposure_cache = {}
    for exc_type in (RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(exc_type, _handle_error)
    try:
        from camcensus.db.errors import PlatformError
    except ModuleNotFoundError:  # pragma: no cover - only before camcensus.db exists
        pass
    else:
        app.add_exception_handler(PlatformError, _handle_error)
    for module in (api_auth, api_tasks, api_projects, api_data, api_images, api_admin):
        app.include_router(module.router)
    app.include_router(api_cameras.router)
    app.include_router(api_exposure.router)
    app.include_router(api_verify.router)

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    _include_pages(app)
    app.include_router(api_exposure.page_router)
    if STATIC_DIR.is_dir():
        from fastapi.staticfiles import StaticFiles

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=settings.max_body_bytes,
        cookie_secure=settings.cookie_secure,
    )
    return app


#: Garbage-collector thresholds of a serving process (Python's default: 700, 10, 10).
SERVER_GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc_for_serving() -> None:
    """Make the garbage collector pause a serving process less often (call once the app is
    built, in the process that serves it).

    The objects made at start-up (modules, routes, the ORM's mappers) move to the permanent
    generation (:func:`gc.freeze`), so collections no longer walk them, and the young
    generation collects after :data:`SERVER_GC_THRESHOLDS` allocations instead of 700.
    Collection pauses were the longest stalls of a loaded server: at 300 submissions/s on
    SQLite they set the p99 latency (docs/platform.md, "Performance").
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    database: str | None = None,
    demo: bool = False,
    media: str | Path | None = None,
    forwarded_allow_ips: str | None = None,
    blur: bool = False,
    gsv_key: str | None = None,
    exposure: ExposureIndex | None = None,
) -> None:
    """Run the platform with uvicorn (the database is upgraded first).

    Parameters
    ----------
    host, port
        Where to listen (loopback by default).
    database
        A database URL (default: ``$DATABASE_URL``, else ``sqlite:///camcensus.db``; with
        ``demo`` and no URL, a fresh database in a temporary folder).
    demo
        Store the synthetic demo city (project ``demo``) and an admin whose random password is
        printed, so anyone can tag at once.
    media
        The media root (default: ``./media``, or the demo's temporary folder).
    forwarded_allow_ips
        Addresses of the reverse proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto``
        headers are trusted: a comma-separated list of IPs or networks, or ``"*"`` (uvicorn's
        ``forwarded_allow_ips``; default: ``$FORWARDED_ALLOW_IPS``, else ``127.0.0.1``). The
        client address then feeds only the in-memory rate limits; ``https`` makes cookies
        Secure.
    blur
        Blur faces and licence plates of images the store fetches or imports.
    gsv_key
        A Google Maps Platform key for ``gsv:`` panoramas (default ``$CAMCENSUS_GSV_KEY``).
    exposure
        The exposure index of the ``/exposure`` page (:func:`camcensus.exposure.load_index`).
        With ``demo`` and none given, the demo city's streets and public cameras
        (:func:`camcensus.platform_demo.demo_exposure`).

    Notes
    -----
    The access log is off: it would write client addresses, which the platform never keeps.
    """
    import uvicorn

    from camcensus.db import connect, upgrade

    if demo and database is None:
        folder = Path(tempfile.mkdtemp(prefix="camcensus-demo-"))
        database = f"sqlite:///{folder / 'platform.sqlite'}"
        media = media if media is not None else folder / "media"
    media_root = Path(media) if media is not None else Path(os.getcwd()) / "media"
    media_root.mkdir(parents=True, exist_ok=True)
    engine = connect(database)
    upgrade(engine)
    if demo:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from camcensus.db.models import Project
        from camcensus.platform_demo import DEMO_PROJECT, setup_demo

        with Session(engine) as session:
            exists = session.scalar(select(Project.name).where(Project.name == DEMO_PROJECT))
        if exists:
            print(
                f"Demo project {DEMO_PROJECT!r} is already in this database (its admin's "
                "password was printed when it was made; camcensus db create-admin adds another)."
            )
        else:
            setup = setup_demo(engine)
            print(
                f"Demo project {setup.project!r}: {setup.n_panoramas} panoramas. Admin log-in: "
                f"{setup.admin_pseudonym} / {setup.admin_password}"
            )
    if demo and exposure is None:
        from camcensus.platform_demo import demo_exposure

        exposure = demo_exposure()
        print("Exposure map of the demo city at /exposure.")
    settings = WebSettings(blur=blur)
    if gsv_key is not None:
        settings = replace(settings, gsv_key=gsv_key)
    app = create_app(engine, media_root=media_root, settings=settings, exposure=exposure)
    print(f"camcensus platform on http://{host}:{port}/ (API docs: /api/docs)")
    tune_gc_for_serving()
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
    )
