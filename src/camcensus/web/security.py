"""Security of the web app: headers, CSRF, body size, sessions and role checks.

:class:`SecurityMiddleware` wraps the whole application (every response, errors included):

- a strict Content-Security-Policy (no inline script or style anywhere), ``nosniff``,
  ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY`` on every response;
- request bodies over the limit are refused with 413 (the ``Content-Length`` header and the
  bytes actually streamed are both counted);
- CSRF double submit: on every POST/PUT/PATCH/DELETE (sign-up and log-in included) the
  ``camcensus_csrf`` cookie must equal the ``X-CSRF-Token`` header; a logged-in volunteer's
  header must also equal the token stored with the session (:func:`optional_volunteer`);
- an unexpected exception becomes a 500 in the one error shape, without internals.

The session cookie ``camcensus_session`` is HttpOnly and SameSite=Strict; the database keeps
only its sha256. Roles are checked on the server by the dependencies :func:`current_volunteer`
and :func:`require_role`.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camcensus.db.accounts import SessionIdentity
from camcensus.web.ratelimit import client_key
from camcensus.web.schemas import error_payload

if TYPE_CHECKING:
    from camcensus.web.app import WebSettings

__all__ = [
    "CSP",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "IDENTITY_TTL_S",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "AdminVolunteer",
    "CurrentVolunteer",
    "DbSession",
    "ExpertVolunteer",
    "IdentityCache",
    "OptionalVolunteer",
    "ReadSession",
    "SecurityMiddleware",
    "clear_session_cookie",
    "csrf_token_of",
    "current_volunteer",
    "db_session",
    "error_response",
    "forget_identity",
    "json_response",
    "optional_volunteer",
    "rate_limit",
    "read_session",
    "require_role",
    "run_write",
    "set_csrf_cookie",
    "set_session_cookie",
]

SESSION_COOKIE = "camcensus_session"
CSRF_COOKIE = "camcensus_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_RAW_HEADERS = tuple((name.encode(), value.encode()) for name, value in _HEADERS.items())
_CSRF_SET_PREFIX = (CSRF_COOKIE + "=").encode()
_ROLE_RANK = {"volunteer": 0, "expert": 1, "admin": 2}
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_log = logging.getLogger("camcensus.web")


def _plausible_token(value: str | None) -> bool:
    return value is not None and 16 <= len(value) <= 128 and set(value) <= _TOKEN_CHARS


class _BodyTooLargeError(Exception):
    """The request body streamed past the limit."""


async def _send_error(
    send: Send, status: int, error: str, errors: list[dict[str, str]] | None = None
) -> None:
    body = json.dumps(error_payload(status, error, errors)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """ASGI middleware: security headers, body-size limit, CSRF double submit, 500 shape.

    Parameters
    ----------
    app
        The application to wrap.
    max_body_bytes
        Request bodies over this are refused with 413.
    cookie_secure
        Mark new CSRF cookies Secure (None: when the request came over https).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, cookie_secure: bool | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        path = str(scope.get("path", ""))
        request_headers = Headers(scope=scope)
        cookies = cookie_parser(request_headers.get("cookie", ""))
        new_csrf: str | None = None
        if not _plausible_token(cookies.get(CSRF_COOKIE)):
            new_csrf = secrets.token_urlsafe(32)
            scope.setdefault("state", {})["new_csrf_token"] = new_csrf
        secure = self.cookie_secure
        if secure is None:
            secure = scope.get("scheme") == "https"

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # The raw header list, scanned once (MutableHeaders scans it per lookup).
                raw = message["headers"] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                raw.extend(item for item in _RAW_HEADERS if item[0] not in present)
                if b"cache-control" not in present and path.startswith("/api"):
                    raw.append((b"cache-control", b"no-store"))
                if new_csrf is not None and not any(
                    name.lower() == b"set-cookie" and value.startswith(_CSRF_SET_PREFIX)
                    for name, value in raw
                ):
                    cookie = _csrf_cookie_header(new_csrf, secure=secure)
                    raw.append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        try:
            refusal = self._refusal(scope, request_headers, cookies)
            if refusal is not None:
                await _send_error(send_wrapper, *refusal)
                return
            try:
                body_receive = await self._buffered(receive)
            except _BodyTooLargeError:
                await _send_error(send_wrapper, *self._too_large())
                return
            await self.app(scope, body_receive, send_wrapper)
        except Exception:
            # Internals (paths, SQL, stack) stay in the server log; the client learns only
            # that the server failed. The log names no client address.
            _log.exception("unhandled error in %s %s", scope.get("method"), path)
            if started:
                raise
            await error_response(RuntimeError())(scope, receive, send_wrapper)

    def _too_large(self) -> tuple[int, str, list[dict[str, str]]]:
        limit = self.max_body_bytes
        return (
            413,
            f"The request body is larger than {limit // 1024} KiB.",
            [{"field": "body", "message": f"send at most {limit} bytes"}],
        )

    def _refusal(
        self, scope: Scope, headers: Headers, cookies: dict[str, str]
    ) -> tuple[int, str, list[dict[str, str]]] | None:
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return (
                    400,
                    "The Content-Length header is not a number.",
                    [{"field": "content-length", "message": "send a decimal byte count"}],
                )
            if int(length) > self.max_body_bytes:
                return self._too_large()
        if scope["method"] not in SAFE_METHODS:
            cookie = cookies.get(CSRF_COOKIE)
            header = headers.get(CSRF_HEADER)
            if (
                not _plausible_token(cookie)
                or header is None
                or not hmac.compare_digest(cookie.encode(), header.encode("utf-8", "replace"))  # type: ignore[union-attr]
            ):
                return (
                    403,
                    "The CSRF token is missing or wrong.",
                    [
                        {
                            "field": CSRF_HEADER,
                            "message": f"send the value of the {CSRF_COOKIE} cookie (from "
                            f"GET /api/csrf) in the {CSRF_HEADER} header",
                        }
                    ],
                )
        return None

    async def _buffered(self, receive: Receive) -> Receive:
        """Read the whole body (at most the limit) and return a receive that replays it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first: Message = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        return replay


def _csrf_cookie_header(token: str, *, secure: bool) -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie[CSRF_COOKIE] = token
    morsel = cookie[CSRF_COOKIE]
    morsel["path"] = "/"
    morsel["samesite"] = "Strict"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def _secure(request: Request) -> bool:
    configured: bool | None = request.app.state.settings.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def csrf_token_of(request: Request) -> str:
    """Return the request's CSRF token (the cookie's, or the one the middleware is setting)."""
    token = request.cookies.get(CSRF_COOKIE)
    if _plausible_token(token):
        return str(token)
    return str(request.scope.get("state", {}).get("new_csrf_token") or "")


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    """Set the CSRF cookie (readable by the page's script, SameSite=Strict)."""
    response.set_cookie(
        CSRF_COOKIE, token, path="/", samesite="strict", secure=_secure(request), httponly=False
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Set the session cookie (HttpOnly, SameSite=Strict, Secure over https)."""
    settings: WebSettings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_lifetime_s,
        path="/",
        samesite="strict",
        secure=_secure(request),
        httponly=True,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Delete the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", samesite="strict", secure=_secure(request), httponly=True
    )


async def db_session(request: Request) -> AsyncIterator[Session]:
    """Yield a write session; routes commit before they answer (acknowledged = durable).

    Only state-changing routes take one: on SQLite its transaction takes the write lock
    (``BEGIN IMMEDIATE``) at its first statement. The session closes when the route function
    returns, before the response is sent (``scope="function"`` below): a transaction never
    outlives its route, so the write lock is never held while a client reads its answer.

    It runs in the event loop (no thread hop): making a session does no I/O, and a route
    that committed has already handed its connection back; only a session left in a
    transaction (the route raised) is rolled back and closed in a worker thread.
    """
    session = request.app.state.write_sessions()
    try:
        yield session
    finally:
        await _close(session)


async def read_session(request: Request) -> AsyncIterator[Session]:
    """Yield a read-only session (GET routes and the identity lookup).

    Made by :func:`camcensus.db.engine.session_factory` with ``readonly=True``: on SQLite its
    transaction starts with a deferred ``BEGIN``, reads one snapshot and never blocks a writer,
    however long it lasts. A flush (an ORM write) in it raises.
    """
    session = request.app.state.read_sessions()
    try:
        yield session
    finally:
        await _close(session)


_T = TypeVar("_T")


async def run_write(request: Request, job: Callable[[Session], _T]) -> _T:
    """Run ``job`` (a function of a write session that does not commit) and commit it.

    On SQLite the app's :class:`camcensus.db.engine.GroupCommit` runs it in the event loop's
    next group commit with the other jobs waiting at the same time, one commit (one fsync) for
    all (on the writer thread when another writer holds the lock); elsewhere
    (PostgreSQL, whose row locks let writers run side by side) it runs in a worker thread in
    its own transaction. Either way it returns only after the commit that holds the job: an
    answer is acknowledged only once durable. The job's errors are raised here.
    """
    queue = request.app.state.write_queue
    if queue is not None:
        out: _T = await queue.run(job)
        return out
    return await run_in_threadpool(_write_once, request.app.state.write_sessions, job)


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Answer ``model`` as JSON without FastAPI validating it again against the route's
    ``response_model`` (it was built as that model; the schema still documents the route)."""
    return Response(
        model.model_dump_json().encode(), status_code=status_code, media_type="application/json"
    )


def _write_once(sessions: Callable[[], Session], job: Callable[[Session], _T]) -> _T:
    with sessions() as session:
        out = job(session)
        session.commit()
        return out


async def _close(session: Session) -> None:
    if session.in_transaction():
        await run_in_threadpool(session.close)
    else:
        session.close()


#: How long a looked-up session identity is reused before the database is asked again (s).
#: Log-out and the tutorial's end drop it at once in this process; other worker processes
#: of the same server notice within this time.
IDENTITY_TTL_S = 5.0
#: Most identities cached (each a few hundred bytes).
IDENTITY_CACHE_SIZE = 50_000


class IdentityCache:
    """Session identities by cookie token, held in memory for :data:`IDENTITY_TTL_S` seconds.

    The hot routes (get a task, submit) then need no identity query: the lookup is one
    dictionary read in the event loop, with no thread hop. Only found identities are kept
    (an unknown token is asked again each time), an entry never outlives its session's
    ``expires_at``, and :meth:`drop` / :meth:`drop_volunteer` forget entries at log-out and
    when the identity changes (tutorial done).
    """

    def __init__(
        self,
        *,
        ttl_s: float = IDENTITY_TTL_S,
        max_size: int = IDENTITY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = float(ttl_s)
        self.max_size = int(max_size)
        self._clock = clock
        self._entries: dict[str, tuple[float, SessionIdentity]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> SessionIdentity | None:
        """Return the cached identity of ``token`` (None when absent, stale or expired)."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        stored, identity = entry
        if self._clock() - stored > self.ttl_s or identity.expires_at <= datetime.now(UTC):
            with self._lock:
                self._entries.pop(token, None)
            return None
        return identity

    def put(self, token: str, identity: SessionIdentity) -> None:
        """Remember ``identity`` for ``token``."""
        with self._lock:
            if len(self._entries) >= self.max_size:
                self._entries.clear()
            self._entries[token] = (self._clock(), identity)

    def drop(self, token: str) -> None:
        """Forget ``token`` (log-out)."""
        with self._lock:
            self._entries.pop(token, None)

    def drop_volunteer(self, volunteer_id: int) -> None:
        """Forget every session of ``volunteer_id`` (their identity changed)."""
        with self._lock:
            for token in [
                t for t, (_, i) in self._entries.items() if i.volunteer_id == volunteer_id
            ]:
                del self._entries[token]


def _identity_cache(request: Request) -> IdentityCache | None:
    cache = getattr(request.app.state, "identity_cache", None)
    return cache if isinstance(cache, IdentityCache) else None


def forget_identity(
    request: Request, *, token: str | None = None, volunteer_id: int | None = None
) -> None:
    """Drop cached identities: the session ``token`` and/or every session of ``volunteer_id``."""
    cache = _identity_cache(request)
    if cache is None:
        return
    if token:
        cache.drop(token)
    if volunteer_id is not None:
        cache.drop_volunteer(volunteer_id)
    if token or volunteer_id is not None:
        request.state.identity = False


def _lookup_identity(request: Request, token: str) -> SessionIdentity | None:
    from camcensus.db import accounts

    with request.app.state.read_sessions() as session:
        return accounts.session_identity(session, token)


async def optional_volunteer(request: Request) -> SessionIdentity | None:
    """Return the logged-in volunteer, or None; check a state change's CSRF token.

    The identity comes from the app's :class:`IdentityCache`, else from its own short
    read-only transaction in a worker thread (it never takes SQLite's write lock), so the
    route's transaction starts fresh. This dependency runs in the event loop: a cached
    identity costs no thread hop.
    """
    cached: object = getattr(request.state, "identity", False)
    if cached is None or isinstance(cached, SessionIdentity):
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    identity = None
    if _plausible_token(token):
        cache = _identity_cache(request)
        identity = cache.get(str(token)) if cache is not None else None
        if identity is None:
            identity = await run_in_threadpool(_lookup_identity, request, str(token))
            if identity is not None and cache is not None:
                cache.put(str(token), identity)
    if identity is not None and request.method not in SAFE_METHODS:
        header = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(identity.csrf_token.encode(), header.encode("utf-8", "replace")):
            raise HTTPException(
                403,
                detail={
                    "error": "The CSRF token does not belong to this session.",
                    "errors": [
                        {
                            "field": CSRF_HEADER,
                            "message": "reload the page (GET /api/csrf) to get this "
                            "session's token",
                        }
                    ],
                },
            )
    request.state.identity = identity
    return identity


async def current_volunteer(request: Request) -> SessionIdentity:
    """Return the logged-in volunteer; 401 when nobody is logged in.

    It calls :func:`optional_volunteer` itself rather than through ``Depends``: one level of
    FastAPI's dependency solving less on every logged-in request (the hot routes' largest
    framework cost).
    """
    identity = await optional_volunteer(request)
    if identity is None:
        raise HTTPException(
            401,
            detail={
                "error": "You need to log in.",
                "errors": [{"field": SESSION_COOKIE, "message": "log in with POST /api/login"}],
            },
        )
    return identity


def require_role(role: str) -> Callable[..., Awaitable[SessionIdentity]]:
    """Return a dependency admitting ``role`` and every role above it (admin > expert)."""
    if role not in _ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(_ROLE_RANK)}")

    async def dependency(
        identity: Annotated[SessionIdentity, Depends(current_volunteer)],
    ) -> SessionIdentity:
        if _ROLE_RANK.get(identity.role, -1) < _ROLE_RANK[role]:
            raise HTTPException(
                403,
                detail={
                    "error": f"This needs the role {role!r}.",
                    "errors": [
                        {"field": "role", "message": f"found {identity.role!r}, need {role!r}"}
                    ],
                },
            )
        return identity

    dependency.__name__ = f"require_{role}"
    return dependency


def rate_limit(request: Request, rule: str, key: str | None = None) -> None:
    """Take a token of ``rule`` for ``key`` (default: the client); 429 with Retry-After if out.

    The default key is a salted in-memory hash of the client address (never stored or logged).
    """
    if key is None:
        key = client_key(request.client.host if request.client else None)
    wait = request.app.state.limiter.hit(rule, key)
    if wait is not None:
        seconds = int(wait)
        raise HTTPException(
            429,
            detail={
                "error": "Too many requests; wait a little and try again.",
                "errors": [{"field": rule, "message": f"retry after {seconds} s"}],
            },
            headers={"Retry-After": str(seconds)},
        )


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


_DEFAULT_ERRORS = {
    400: "The request is malformed.",
    401: "You need to log in.",
    403: "This is not allowed.",
    404: "Nothing is at this address.",
    405: "This method is not allowed at this address.",
    409: "This conflicts with the stored data.",
    413: "The request body is too large.",
    422: "The request has invalid values.",
    429: "Too many requests; wait a little and try again.",
}


def _items(raw: object) -> list[dict[str, str]]:
    """Normalise a list of problems to ``[{field, message}]``."""
    items: list[dict[str, str]] = []
    if not isinstance(raw, (list, tuple)):
        return items
    for item in raw:
        if isinstance(item, dict):
            items.append(
                {
                    "field": str(item.get("field", "") or ""),
                    "message": str(item.get("message", "") or ""),
                }
            )
        else:
            items.append({"field": "", "message": str(item)})
    return items


def _validation_items(exc: RequestValidationError) -> list[dict[str, str]]:
    items = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ())]
        where = loc[0] if loc else "body"
        rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", "")
            items.append({"field": "body", "message": f"the body is not valid JSON ({reason})"})
            continue
        field = ".".join(rest) or where
        items.append({"field": field, "message": str(e.get("msg", "invalid value"))})
    return items


def _platform_error_type() -> type[Exception] | None:
    try:
        from camcensus.db.errors import PlatformError
    except ModuleNotFoundError:  # pragma: no cover - only before camcensus.db exists
        return None
    return PlatformError


def error_response(exc: BaseException) -> JSONResponse:
    """Map any exception to the one error shape (the app's only error mapping).

    ``PlatformError`` subclasses keep their status, message and problems; request validation
    is 422 with one ``{field, message}`` per problem; HTTP errors keep their status; anything
    else is a 500 that names no internals.
    """
    headers: dict[str, str] = {}
    platform_error = _platform_error_type()
    if platform_error is not None and isinstance(exc, platform_error):
        status = int(getattr(exc, "status", 500))
        error = str(getattr(exc, "message", "") or exc)
        errors = _items(getattr(exc, "errors", []))
        retry = getattr(exc, "retry_after", None)
        if status == 429:
            headers["Retry-After"] = str(int(retry) if retry else 60)
    elif isinstance(exc, RequestValidationError):
        status = 422
        errors = _validation_items(exc)
        error = f"The request has {len(errors)} invalid value(s)."
    elif isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        detail = exc.detail
        if isinstance(detail, dict):
            error = str(detail.get("error") or _DEFAULT_ERRORS.get(status, "Request refused."))
            errors = _items(detail.get("errors", []))
        else:
            text = str(detail or "")
            generic = text in ("", "Not Found", "Method Not Allowed", "Bad Request")
            error = _DEFAULT_ERRORS.get(status, text) if generic else text
            errors = []
        headers.update(getattr(exc, "headers", None) or {})
    else:
        status = 500
        error = "The server failed to answer this request."
        errors = []
    return JSONResponse(error_payload(status, error, errors), status_code=status, headers=headers)


#: A write session for one state-changing request (routes commit before they answer).
DbSession = Annotated[Session, Depends(db_session, scope="function")]
#: A read-only session for one request (GET routes): never blocks a writer.
ReadSession = Annotated[Session, Depends(read_session, scope="function")]
#: The logged-in volunteer, or None.
OptionalVolunteer = Annotated[SessionIdentity | None, Depends(optional_volunteer)]
#: The logged-in volunteer (401 otherwise).
CurrentVolunteer = Annotated[SessionIdentity, Depends(current_volunteer)]
#: A logged-in expert or admin (403 for volunteers, 401 anonymous).
ExpertVolunteer = Annotated[SessionIdentity, Depends(require_role("expert"))]
#: A logged-in admin (403 for others, 401 anonymous).
AdminVolunteer = Annotated[SessionIdentity, Depends(require_role("admin"))]
