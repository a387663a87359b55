"""Security of the web app: CSRF, roles, cookies, CSP, rate limits, traversal, payloads, privacy.

Routes are enumerated from ``app.routes``, so a route added later cannot escape the checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import inspect, text
from starlette.routing import Mount

from camcensus.web.app import STATIC_DIR
from camcensus.web.security import CSP, CSRF_HEADER
from test_web_api import (
    PASSWORD,
    Browser,
    TestClient,
    add_account,
    add_project,
    assert_error_shape,
    logged_in,
    make_app,
    rows,
    tag,
    take_task,
    write_jpeg,
)

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Values for path parameters: a valid-looking project, panorama, task and tile.
PATH_VALUES = {
    "name": "city",
    "project": "city",
    "panorama_id": "pano-0",
    "task_id": "sometask",
    "col": "0",
    "review_id": "somereview",
    "tag_id": "sometag",
    "row": "0",
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The app over a fresh database with one project and one panorama image."""
    application = make_app(tmp_path)
    add_project(application)
    write_jpeg(tmp_path / "media" / "images" / "pano-0.jpg", 256, 128)
    yield application
    application.state.engine.dispose()


def _flat_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Any]]:
    """Every (path template, methods, dependant) of the app, included routers flattened.

    FastAPI 0.16x keeps included routers as nodes of ``app.routes``; their routes (with the
    prefix applied) come from ``effective_route_contexts``.
    """
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, set(route.methods), route.dependant
        elif hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                yield ctx.path, set(ctx.methods), ctx.dependant
        elif hasattr(route, "routes") and not isinstance(route, Mount):
            raise AssertionError(f"unknown route node {route!r}: teach _flat_routes about it")


def api_routes(app: FastAPI) -> list[tuple[str, str, Any]]:
    """Every (method, concrete URL, dependant) of the app's API and pages."""
    out = []
    for path, methods, dependant in _flat_routes(app):
        url = path
        for param in re.findall(r"{(\w+)}", url):
            url = url.replace("{" + param + "}", PATH_VALUES[param])
        out.extend((method, url, (path, dependant)) for method in sorted(methods - {"HEAD"}))
    assert len(out) >= 35, "the route enumeration lost routes"
    return out


def dependency_names(route: tuple[str, Any]) -> set[str]:
    """Names of every dependency (recursively) of a route."""
    names: set[str] = set()
    stack = list(route[1].dependencies)
    while stack:
        dep = stack.pop()
        names.add(getattr(dep.call, "__name__", ""))
        stack.extend(dep.dependencies)
    return names


# --------------------------------------------------------------------------- CSRF
def test_every_state_changing_route_needs_the_csrf_header(app: FastAPI) -> None:
    admin = logged_in(app, "boss", role="admin")
    routes = [(m, u) for m, u, _ in api_routes(app) if m in STATE_CHANGING]
    assert len(routes) >= 15  # the API's writes, sign-up and log-in included
    assert ("POST", "/api/signup") in routes and ("POST", "/api/login") in routes
    bare = TestClient(app, raise_server_exceptions=False)
    bare.cookies.update(admin.client.cookies)
    for method, url in routes:
        for headers in ({}, {CSRF_HEADER: "x" * 43}, {CSRF_HEADER: ""}):
            r = bare.request(method, url, json={}, headers=headers)
            body = assert_error_shape(r, 403)
            assert body["errors"][0]["field"] == CSRF_HEADER, (method, url)
    # Anonymous, with no cookie at all, sign-up is refused too.
    fresh = TestClient(app, raise_server_exceptions=False)
    r = fresh.post("/api/signup", json={"pseudonym": "anon", "password": PASSWORD})
    assert_error_shape(r, 403)
    assert rows(app, "SELECT count(*) AS n FROM volunteers")[0]["n"] == 1


def test_a_csrf_pair_that_is_not_the_sessions_is_refused(app: FastAPI) -> None:
    b = logged_in(app, "lynx")
    # A page of another origin cannot read the cookie, but could it plant its own pair?
    forged = "F" * 43
    b.client.cookies.set("camcensus_csrf", forged)
    r = b.client.post("/api/tutorial/done", headers={CSRF_HEADER: forged})
    assert assert_error_shape(r, 403)["errors"][0]["field"] == CSRF_HEADER
    assert rows(app, "SELECT tutorial_done_at FROM volunteers")[0]["tutorial_done_at"] is None
    # /api/csrf gives the session's own token back.
    assert b.client.get("/api/csrf").json()["csrf_token"] == b.csrf


# --------------------------------------------------------------------------- roles
def test_admin_and_expert_routes_are_checked_on_the_server(app: FastAPI) -> None:
    admin_routes, expert_routes, login_routes = [], [], []
    for method, url, route in api_routes(app):
        deps = dependency_names(route)
        if "require_admin" in deps:
            admin_routes.append((method, url))
        elif "require_expert" in deps:
            expert_routes.append((method, url))
        elif "current_volunteer" in deps:
            login_routes.append((method, url))
        if route[0].startswith("/api/admin"):
            assert "require_admin" in deps, f"{method} {route[0]} is not admin-only"
    assert len(admin_routes) == 9 and len(expert_routes) == 1
    assert ("POST", "/api/projects/city/reviews") in expert_routes
    anonymous = Browser(app)
    volunteer = logged_in(app, "lynx")
    expert = logged_in(app, "owl", role="expert")
    for method, url in admin_routes + expert_routes + login_routes:
        assert_error_shape(anonymous.client.request(method, url, json={}), 401)
    for method, url in admin_routes + expert_routes:
        r = volunteer.client.request(method, url, json={})
        assert assert_error_shape(r, 403)["errors"][0]["field"] == "role", (method, url)
    for method, url in admin_routes:
        assert_error_shape(expert.client.request(method, url, json={}), 403)
    # The admin page refuses volunteers on the server too.
    assert volunteer.get("/admin").status_code == 403
    assert "boss" not in volunteer.get("/admin").text


# --------------------------------------------------------------------------- cookies
def _set_cookies(r: Any) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for v in r.headers.get_list("set-cookie")}


def test_cookie_flags(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    add_account(app, "heron")
    b = Browser(app)
    r = b.post("/api/login", json={"pseudonym": "heron", "password": PASSWORD})
    session = _set_cookies(r)["camcensus_session"].lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    assert "secure" not in session.replace("samesite", "")  # plain http in this test
    csrf = _set_cookies(TestClient(app).get("/api/csrf"))["camcensus_csrf"].lower()
    assert "samesite=strict" in csrf and "httponly" not in csrf  # the page's script reads it
    (tmp_path / "secure").mkdir()
    secure_app = make_app(tmp_path / "secure", cookie_secure=True)
    add_account(secure_app, "heron")
    # A Secure cookie travels only over https, so this client speaks https.
    client = TestClient(secure_app, base_url="https://testserver")
    client.headers[CSRF_HEADER] = client.get("/api/csrf").json()["csrf_token"]
    r = client.post("/api/login", json={"pseudonym": "heron", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert "; secure" in _set_cookies(r)["camcensus_session"].lower()
    # Over https (behind a proxy that says so) the cookie is Secure by itself.
    https = TestClient(app, base_url="https://testserver")
    assert "; secure" in _set_cookies(https.get("/api/csrf"))["camcensus_csrf"].lower()


# --------------------------------------------------------------------------- CSP
def _assert_headers(r: Any) -> None:
    assert r.headers["content-security-policy"] == CSP, r.request.url
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_csp_on_every_response(app: FastAPI) -> None:
    assert CSP == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    b = logged_in(app, "boss", role="admin")
    seen = set()
    for method, url, _ in api_routes(app):
        r = b.client.request(method, url, json={})
        _assert_headers(r)
        seen.add(r.status_code)
    anonymous = TestClient(app, raise_server_exceptions=False)
    for r in (
        anonymous.get("/nowhere"),
        anonymous.get("/api/login"),
        anonymous.post("/api/login", json={}),
        anonymous.get("/api/me"),
        anonymous.get("/static/css/nowhere.css"),
        anonymous.get("/openapi.json"),
        anonymous.get("/api/docs"),
        b.client.post("/api/login", content=b"x" * (300 * 1024)),
    ):
        _assert_headers(r)
        seen.add(r.status_code)
    assert {200, 401, 403, 404, 405, 413, 422} <= seen
    statics = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())
    assert statics
    for path in statics[:: max(1, len(statics) // 40)]:
        r = anonymous.get("/static/" + path.relative_to(STATIC_DIR).as_posix())
        assert r.status_code == 200
        _assert_headers(r)


def test_an_unexpected_error_is_a_500_in_the_error_shape_without_internals(
    app: FastAPI,
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd SELECT * FROM volunteers")

    app.add_api_route("/api/boom", boom)
    r = TestClient(app, raise_server_exceptions=False).get("/api/boom")
    assert_error_shape(r, 500)
    _assert_headers(r)
    assert "secret" not in r.text and "SELECT" not in r.text


class _PageAudit(HTMLParser):
    """Collect inline scripts, inline styles and event-handler attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k.lower(): v for k, v in attrs}
        if tag == "script":
            if not names.get("src"):
                self.problems.append("a <script> without src")
            else:
                self.scripts.append(str(names["src"]))
            self._in_script = True
        if tag == "style":
            self.problems.append("a <style> element")
        if "style" in names:
            self.problems.append(f"a style= attribute on <{tag}>")
        for name, value in names.items():
            if name.startswith("on"):
                self.problems.append(f"an {name}= handler on <{tag}>")
            if name in ("href", "src", "action") and str(value).lower().startswith("javascript:"):
                self.problems.append(f"a javascript: URL on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script text inside a <script src> element")


def test_no_inline_script_or_style_in_any_page(app: FastAPI) -> None:
    pages = [(m, u) for m, u, _ in api_routes(app) if m == "GET" and not u.startswith("/api")] + [
        ("GET", "/api/docs")
    ]
    assert len(pages) >= 11
    admin = logged_in(app, "boss", role="admin")
    admin.post("/api/panoramas/pano-0/comments", json={"body": "<script>alert(1)</script>"})
    audited = 0
    for client in (Browser(app).client, admin.client):
        for _, url in pages:
            r = client.get(url)
            _assert_headers(r)
            if not r.headers.get("content-type", "").startswith("text/html"):
                continue
            audit = _PageAudit()
            audit.feed(r.text)
            assert audit.problems == [], (url, audit.problems)
            assert "<script>alert(1)</script>" not in r.text
            for src in audit.scripts:
                assert src.startswith("/static/"), (url, src)
                assert client.get(src).status_code == 200, (url, src)
            audited += 1
    assert audited >= 15


# --------------------------------------------------------------------------- rate limits
def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        signup_burst=2,
        signup_per_minute=0.5,
        login_burst=3,
        login_per_minute=0.5,
        submit_burst=2,
        submit_per_minute=0.5,
    )
    add_project(app)

    def limited(r: Any) -> None:
        body = assert_error_shape(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert body["errors"][0]["message"].startswith("retry after")

    b = Browser(app)
    for i in range(2):
        r = Browser(app).post("/api/signup", json={"pseudonym": f"v-{i}", "password": PASSWORD})
        assert r.status_code == 201, r.text
    limited(b.post("/api/signup", json={"pseudonym": "v-2", "password": PASSWORD}))
    assert rows(app, "SELECT count(*) AS n FROM volunteers")[0]["n"] == 2
    for _ in range(3):
        r = b.post("/api/login", json={"pseudonym": "v-0", "password": "wrong password"})
        assert r.status_code == 401
    # Out of log-ins: even the right password waits (no guessing at full speed).
    limited(b.post("/api/login", json={"pseudonym": "v-0", "password": PASSWORD}))
    # Submissions are limited per volunteer (a retry counts too).
    volunteer = Browser(app)
    volunteer.client.cookies.clear()
    with_session = TestClient(app, raise_server_exceptions=False, client=("192.0.2.9", 1))
    csrf = with_session.get("/api/csrf").json()["csrf_token"]
    with_session.headers[CSRF_HEADER] = csrf
    r = with_session.post("/api/login", json={"pseudonym": "v-1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    task = with_session.post("/api/projects/city/tasks").json()
    url = f"/api/tasks/{task['task_id']}/submit"
    for _ in range(2):
        assert with_session.post(url, json={"no_camera": True}).status_code == 200
    limited(with_session.post(url, json={"no_camera": True}))
    limited(with_session.post(f"/api/tasks/{task['task_id']}/problem", json={"problem": "other"}))


def test_public_data_reads_are_rate_limited_per_client(tmp_path: Path) -> None:
    app = make_app(tmp_path, data_burst=3, data_per_minute=0.5)
    add_project(app)
    here = TestClient(app, raise_server_exceptions=False, client=("192.0.2.7", 1))
    for url in ("/api/tags", "/api/panoramas", "/api/submissions"):
        assert here.get(url).status_code == 200, url
    body = assert_error_shape(here.get("/api/tags"), 429)
    assert (
        body["errors"][0]["field"] == "data"
        and int(here.get("/api/panoramas").headers["retry-after"]) >= 1
    )
    # Another client has its own bucket; the limit keeps no address (a salted hash in memory).
    there = TestClient(app, raise_server_exceptions=False, client=("192.0.2.8", 1))
    assert there.get("/api/tags").status_code == 200
    assert all("192.0.2" not in repr(key) for key in app.state.limiter._buckets)
    app.state.engine.dispose()


def test_rate_limiter_prunes_in_amortised_constant_time() -> None:
    from camcensus.web.ratelimit import Limit, RateLimiter

    now = [0.0]
    limiter = RateLimiter({"x": Limit(2, 1.0)}, clock=lambda: now[0], max_keys=100)
    assert limiter.hit("x", "held") is None and limiter.hit("x", "held") is None
    assert limiter.hit("x", "held") is not None
    # 5000 new clients at once: every bucket is still limited, so nothing can be forgotten;
    # a prune after every request past 100 buckets would be 4900 scans.
    for i in range(5000):
        assert limiter.hit("x", f"k{i}") is None
    assert 1 <= limiter.prunes <= 12
    assert limiter.hit("x", "held") is not None  # pruning never forgets a limited client
    # Once the buckets have refilled they are forgotten at the next prune.
    now[0] += 600.0
    n = limiter.prunes
    for i in range(5000, 15_000):
        limiter.hit("x", f"k{i}")
    assert limiter.prunes > n
    assert len(limiter._buckets) < 15_000
    assert limiter.hit("x", "held") is None


def test_serve_trusts_forwarded_headers_only_from_the_named_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets
    import threading
    import time

    import httpx
    import uvicorn

    from camcensus.web import serve

    def started(forwarded_allow_ips: str) -> tuple[uvicorn.Server, threading.Thread, str]:
        servers: list[uvicorn.Server] = []

        def fake_run(app: Any, **options: Any) -> None:
            # serve() blocks in uvicorn.run; run the same options on a free port in a thread.
            assert options["proxy_headers"] is True
            assert options["forwarded_allow_ips"] == forwarded_allow_ips
            config = uvicorn.Config(app, **{**options, "port": 0, "log_level": "warning"})
            servers.append(uvicorn.Server(config))

        monkeypatch.setattr(uvicorn, "run", fake_run)
        folder = tmp_path / forwarded_allow_ips.replace("/", "_")
        folder.mkdir()
        serve(
            database=f"sqlite:///{folder / 'platform.sqlite'}",
            media=folder / "media",
            forwarded_allow_ips=forwarded_allow_ips,
        )
        [server] = servers
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        return server, thread, f"http://127.0.0.1:{port}"

    def signup(url: str, forwarded_for: str, i: int) -> httpx.Response:
        token = secrets.token_urlsafe(24)
        return httpx.post(
            f"{url}/api/signup",
            json={"pseudonym": f"v{i}-{forwarded_for}", "password": PASSWORD},
            headers={
                "Cookie": f"camcensus_csrf={token}",
                CSRF_HEADER: token,
                "X-Forwarded-For": forwarded_for,
                "X-Forwarded-Proto": "https",
            },
        )

    server, thread, url = started("127.0.0.1")
    try:
        r = httpx.get(f"{url}/api/csrf", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in r.headers["set-cookie"].lower()
        # Sign-ups are limited per client address, which comes from X-Forwarded-For.
        for i in range(5):
            r = signup(url, "203.0.113.5", i)
            assert r.status_code == 201, r.text
            assert "secure" in r.headers["set-cookie"].lower()  # the session cookie too
        assert signup(url, "203.0.113.5", 5).status_code == 429
        assert signup(url, "203.0.113.6", 0).status_code == 201
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    # A proxy that is not named is not believed: plain http, one client (this test).
    server, thread, url = started("192.0.2.1")
    try:
        r = httpx.get(f"{url}/api/csrf", headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in r.headers["set-cookie"].lower()
        statuses = [signup(url, f"203.0.113.{i}", i).status_code for i in range(6)]
        assert statuses == [201] * 5 + [429]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --------------------------------------------------------------------------- traversal
def raw_get(app: FastAPI, raw_path: bytes, cookies: dict[str, str]) -> tuple[int, bytes]:
    """Send ``raw_path`` to the app exactly as given (no client-side normalisation)."""
    path, _, query = raw_path.partition(b"?")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path.decode("latin-1")),
        "raw_path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(status), body


TRAVERSALS = [
    "../",
    "..%2f",
    "%2e%2e/",
    "%2e%2e%2f",
    "..%5c",
    "%2e%2e%5c",
    "..\\",
    "%252e%252e%252f",
    "/",
    "%2f",
    "%00",
    "..%00/",
    "....//",
]


def test_path_traversal_on_image_and_static_routes(app: FastAPI, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("TOP-SECRET-OUTSIDE-MEDIA")
    b = logged_in(app, "lynx")
    cookies = dict(b.client.cookies)
    secrets_on_disk = [b"TOP-SECRET-OUTSIDE-MEDIA", b"def create_app", b"root:x:0:0", b"[project]"]
    targets = {
        "/static/{}": [
            "{t}app.py",
            "{t}{t}web/app.py",
            "{t}{t}{t}{t}pyproject.toml",
            "{t}etc/passwd",
            "css{t}..{t}app.py",
        ],
        "/api/panoramas/{}/image": ["{t}secret.txt", "{t}{t}secret.txt", "{t}etc{t}passwd"],
        "/api/panoramas/{}/tiles/0_0.jpg": ["{t}secret.txt"],
    }
    checked = 0
    for route, tails in targets.items():
        for tail in tails:
            for t in TRAVERSALS:
                raw = route.format(tail.format(t=t)).encode()
                for path in (raw, b"/static//etc/passwd", b"/static/%2fetc%2fpasswd"):
                    status, body = raw_get(app, path, cookies)
                    assert status in (400, 401, 404, 405, 422), (path, status)
                    assert not any(s in body for s in secrets_on_disk), path
                    checked += 1
    assert checked > 300
    # Stored uris that try to leave the media root are refused too (a bad import, a bad row).

    hostile = [
        "../secret.txt",
        "images/../../secret.txt",
        str(tmp_path / "secret.txt"),
        "images\\..\\..\\secret.txt",
        "images/%2e%2e/%2e%2e/secret.txt",
        "images/a\x00.jpg",
        "file:///etc/passwd",
    ]
    for uri in hostile:
        with app.state.engine.begin() as conn:
            conn.execute(
                text("UPDATE panoramas SET image_uri = :u WHERE panorama_id = 'pano-1'"),
                {"u": uri},
            )
        for url in ("/api/panoramas/pano-1/image?w=full", "/api/panoramas/pano-1/tiles/0_0.jpg"):
            r = b.get(url)
            assert_error_shape(r, 404)
            assert "TOP-SECRET" not in r.text and str(tmp_path) not in r.text, (uri, r.text)


# --------------------------------------------------------------------------- payloads
def test_oversized_bodies_are_refused_with_413(app: FastAPI) -> None:
    b = logged_in(app, "lynx")
    limit = 256 * 1024
    big = b'{"body": "' + b"x" * limit + b'"}'
    for url in ("/api/panoramas/pano-0/comments", "/api/signup", "/api/login"):
        r = b.post(url, content=big, headers={"content-type": "application/json"})
        body = assert_error_shape(r, 413)
        assert body["errors"][0]["field"] == "body"

    # Streamed without a Content-Length (chunked): counted as it arrives.
    def chunks() -> Iterator[bytes]:
        yield b'{"body": "'
        for _ in range(40):
            yield b"y" * 8192
        yield b'"}'

    r = b.post(
        "/api/panoramas/pano-0/comments",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert_error_shape(r, 413)
    # Exactly at the limit is read (and refused only for what it says).
    at_limit = b'{"pseudonym": "' + b"z" * (limit - 40) + b'", "password": "x"}'
    at_limit = at_limit[: limit - 2] + b'"}' if len(at_limit) > limit else at_limit
    r = b.post("/api/login", content=at_limit, headers={"content-type": "application/json"})
    assert r.status_code != 413
    assert rows(app, "SELECT count(*) AS n FROM comments")[0]["n"] == 0


def test_malformed_payloads_name_the_field(app: FastAPI) -> None:
    b = logged_in(app, "lynx")
    task = take_task(b)
    submit = f"/api/tasks/{task['task_id']}/submit"
    cases: list[tuple[str, Any, set[str]]] = [
        (submit, {"no_camera": "maybe"}, {"no_camera"}),
        (submit, {"no_camera": False, "tags": [tag("a", "north")]}, {"tags.0.heading_deg"}),
        (submit, {"no_camera": False, "tags": [tag("a", 1.0, pitch=91)]}, {"tags.0.pitch_deg"}),
        (
            submit,
            {"no_camera": False, "tags": [tag("a", 1.0, attachment="roof")]},
            {"tags.0.attachment"},
        ),
        (submit, {"no_camera": True, "client_build": "x" * 101}, {"client_build"}),
        (submit, {"no_camera": True, "started_at": "2024-01-01T00:00:00"}, {"started_at"}),
        (submit, {"no_camera": True, "admin": True}, {"admin"}),
        (submit, {"no_camera": False, "tags": [{**tag("a", 1.0), "x": 1}]}, {"tags.0.x"}),
        (submit, [], {"body"}),
        ("/api/projects/city/tasks", {"bbox": [1, 2, 3]}, {"bbox"}),
        ("/api/projects/city/tasks", {"bbox": ["a", 0, 1, 1]}, {"bbox.0"}),
        ("/api/validations", {"tag_id": 5, "answer": "agree"}, {"tag_id"}),
        ("/api/panoramas/pano-0/comments", {"body": None}, {"body"}),
        ("/api/signup", {"pseudonym": ["x"], "password": PASSWORD}, {"pseudonym"}),
        ("/api/login", {"pseudonym": "x"}, {"password"}),
    ]
    for url, payload, fields in cases:
        body = assert_error_shape(b.post(url, json=payload), 422)
        assert {e["field"] for e in body["errors"]} >= fields, (url, payload, body)
    for raw in (b"{", b'{"no_camera": tru}', b"\xff\xfe", b'{"no_camera": NaN}'):
        r = b.post(submit, content=raw, headers={"content-type": "application/json"})
        body = assert_error_shape(r, 422)
        assert body["errors"][0]["field"] in ("body", "no_camera"), (raw, body)
    r = b.post(
        submit,
        content=b'{"no_camera": true, "tags": [{"heading_deg": 1e999}]}',
        headers={"content-type": "application/json"},
    )
    assert_error_shape(r, 422)
    assert rows(app, "SELECT count(*) AS n FROM submissions")[0]["n"] == 0


# --------------------------------------------------------------------------- privacy
def test_no_ip_address_is_stored_and_secrets_are_hashed(tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    app = make_app(tmp_path)
    add_project(app)
    address = "198.51.100.237"
    forwarded = "203.0.113.149"
    client = TestClient(app, raise_server_exceptions=False, client=(address, 40123))
    client.headers["X-Forwarded-For"] = forwarded
    client.headers["X-Real-IP"] = forwarded
    client.headers[CSRF_HEADER] = client.get("/api/csrf").json()["csrf_token"]
    password = "a long secret phrase 42"
    r = client.post("/api/signup", json={"pseudonym": "ghost", "password": password})
    assert r.status_code == 201, r.text
    task = client.post("/api/projects/city/tasks").json()
    client.post(
        f"/api/tasks/{task['task_id']}/submit",
        json={"no_camera": False, "tags": [tag("a", 5.0)], "client_build": "b1"},
    )
    client.post("/api/panoramas/pano-0/comments", json={"body": "hello"})
    client.post("/api/login", json={"pseudonym": "ghost", "password": "wrong one here"})
    session_cookie = client.cookies["camcensus_session"]
    dump: list[str] = []
    with app.state.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        assert {"volunteers", "web_sessions", "submissions", "tags", "comments"} <= set(tables)
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dump.extend(str(v) for v in row)
    everything = "\n".join(dump)
    for needle in (
        address,
        forwarded,
        "198.51.100",
        "203.0.113",
        "testclient",
        password,
        session_cookie,
    ):
        assert needle not in everything, needle
    [vol] = rows(app, "SELECT password_hash FROM volunteers")
    assert vol["password_hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(vol["password_hash"], password)
    sessions = rows(app, "SELECT token_hash FROM web_sessions")
    assert hashlib.sha256(session_cookie.encode()).hexdigest() in {
        s["token_hash"] for s in sessions
    }


def test_login_never_redirects_off_the_site(app: FastAPI) -> None:
    client = TestClient(app)
    cases = {
        "/tag/demo": "/tag/demo",
        "/projects/x?y=1": "/projects/x?y=1",
        "//evil.example": "/",
        "/\\evil.example": "/",
        "/\\/evil.example": "/",
        "https://evil.example": "/",
        "/\tevil": "/",
        "javascript:alert(1)": "/",
        "": "/",
    }
    for target, expected in cases.items():
        html = client.get("/login", params={"next": target}).text
        found = re.search(r'data-next="([^"]*)"', html)
        assert found is not None, target
        assert found.group(1).replace("&amp;", "&") == expected, target


def test_no_html_parsing_sink_in_any_served_script(tmp_path: Path) -> None:
    """Text reaches pages only as text nodes: neither our scripts nor the vendored libraries
    (hardened by scripts/harden_vendor.py, which is idempotent) hold an HTML-parsing sink."""
    import shutil
    import subprocess
    import sys

    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|ContextualFragment")
    scripts = [p for p in STATIC_DIR.rglob("*") if p.suffix in (".js", ".mjs")]
    assert len(scripts) > 10
    found = {str(p.relative_to(STATIC_DIR)) for p in scripts if sinks.search(p.read_text())}
    assert not found, found
    # Rerunning the hardening on the committed files changes nothing.
    copy = tmp_path / "vendor"
    shutil.copytree(STATIC_DIR / "vendor", copy)
    harden = Path(__file__).resolve().parents[1] / "scripts" / "harden_vendor.py"
    done = subprocess.run([sys.executable, str(harden), str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for p in copy.rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (STATIC_DIR / "vendor" / p.relative_to(copy)).read_bytes(), p
