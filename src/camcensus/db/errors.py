"""Errors of the platform's library functions, each with the HTTP status the web app answers.

Every library function of :mod:`camcensus.db` raises a :class:`PlatformError` subclass; the web
app maps them to its one error shape (``{"ok": false, "error", "errors", "status"}``) in one
handler. ``errors`` lists ``{"field": ..., "message": ...}`` items, one per problem found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "PlatformError", "TooMany"]


class PlatformError(Exception):
    """A refused request: an HTTP ``status``, one sentence and the problems found.

    Parameters
    ----------
    status
        The HTTP status the web app answers with.
    message
        One sentence saying what was refused and why.
    errors
        One ``{"field": ..., "message": ...}`` item per problem (may be empty).
    """

    status: int = 500

    def __init__(
        self,
        status: int,
        message: str,
        errors: Iterable[Mapping[str, object]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.errors: list[dict[str, object]] = [dict(e) for e in (errors or [])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r}, errors={self.errors!r})"


class _Fixed(PlatformError):  # noqa: N818 - a private base, not raised itself
    """A :class:`PlatformError` whose status is fixed by its class."""

    default_status = 500

    def __init__(self, message: str, errors: Iterable[Mapping[str, object]] | None = None) -> None:
        super().__init__(self.default_status, message, errors)


class NotFound(_Fixed):
    """Nothing of this id or name exists (404)."""

    default_status = 404


class Forbidden(_Fixed):
    """The caller may not do this (403)."""

    default_status = 403


class Conflict(_Fixed):
    """The request clashes with the current state, e.g. a task whose place was re-issued (409)."""

    default_status = 409


class Invalid(_Fixed):
    """An input value is out of its range or not one of its choices (422)."""

    default_status = 422


class TooMany(_Fixed):
    """Too many requests; ``retry_after`` seconds to wait (429)."""

    default_status = 429

    def __init__(
        self,
        message: str,
        errors: Iterable[Mapping[str, object]] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, errors)
        self.retry_after = retry_after
