"""Volunteer accounts, invitations and log-in sessions.

Volunteers are pseudonymous: a pseudonym (3–40 letters, digits, ``.``, ``_`` or ``-``; never an
e-mail address) and an argon2id password hash; no e-mail and no IP address is ever stored.
Invitation and session tokens are random (``secrets``); the database keeps only their sha256,
so a copy of the database opens no account.

The first admin is made by the command line or the demo setup (:func:`create_volunteer` with
``role="admin"``); the web sign-up only ever creates volunteers, or the role an admin's
invitation names.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from camcensus.db.errors import Conflict, Invalid, NotFound
from camcensus.db.models import Invitation, Project, Submission, Volunteer, WebSession

__all__ = [
    "INVITATION_LIFETIME_S",
    "ROLES",
    "SESSION_LIFETIME_S",
    "SessionIdentity",
    "authenticate",
    "check_password",
    "check_pseudonym",
    "create_invitation",
    "create_volunteer",
    "end_session",
    "hash_token",
    "mark_tutorial_done",
    "purge_expired_sessions",
    "session_identity",
    "session_volunteer",
    "start_session",
    "tasks_done",
]

ROLES = ("volunteer", "expert", "admin")
#: Default lifetime of a log-in session (14 days).
SESSION_LIFETIME_S = 14 * 24 * 3600
#: Default lifetime of an invitation (7 days).
INVITATION_LIFETIME_S = 7 * 24 * 3600
_PSEUDONYM = re.compile(r"[A-Za-z0-9._-]{3,40}")
_MIN_PASSWORD = 10
_MAX_PASSWORD = 1024
# OWASP's argon2id parameters (19 MiB, 2 passes, 1 lane): ~20 ms a hash on a small server.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@dataclass(frozen=True)
class SessionIdentity:
    """Who a session cookie belongs to (plain values, usable after the session closes)."""

    volunteer_id: int
    public_id: str
    pseudonym: str
    role: str
    csrf_token: str
    expires_at: datetime
    tutorial_done: bool


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now


def hash_token(token: str) -> str:
    """Return the sha256 hex digest stored in place of a session or invitation token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the pseudonym is unknown (same cost as a real failure)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def check_pseudonym(pseudonym: str) -> list[dict[str, str]]:
    """Return the problems of a pseudonym (empty when it is acceptable)."""
    if "@" in pseudonym:
        return [
            {
                "field": "pseudonym",
                "message": "a pseudonym may not contain '@' (never use an e-mail address); "
                "choose a name of letters, digits, '.', '_' or '-'",
            }
        ]
    if not _PSEUDONYM.fullmatch(pseudonym):
        return [
            {
                "field": "pseudonym",
                "message": f"found {len(pseudonym)} characters; expected 3 to 40 letters, digits, "
                "'.', '_' or '-' (no spaces)",
            }
        ]
    return []


def check_password(password: str) -> list[dict[str, str]]:
    """Return the problems of a password (empty when it is acceptable)."""
    if len(password) < _MIN_PASSWORD:
        return [
            {
                "field": "password",
                "message": f"found {len(password)} characters; expected at least {_MIN_PASSWORD}",
            }
        ]
    if len(password) > _MAX_PASSWORD:
        return [{"field": "password", "message": f"expected at most {_MAX_PASSWORD} characters"}]
    return []


def create_volunteer(
    session: Session,
    *,
    pseudonym: str,
    password: str,
    role: str = "volunteer",
    invitation: str | None = None,
    now: datetime | None = None,
) -> Volunteer:
    """Create an account; with ``invitation`` (a token) the account gets the invitation's role.

    Parameters
    ----------
    session
        An open database session; the caller commits.
    pseudonym
        3–40 letters, digits, ``.``, ``_`` or ``-``; unique regardless of case.
    password
        At least 10 characters; stored only as an argon2id hash.
    role
        ``volunteer``, ``expert`` or ``admin`` (the web sign-up always passes ``volunteer``).
    invitation
        An unused, unexpired invitation token; it is used up by this call.
    now
        The time (default: now, UTC).

    Raises
    ------
    Invalid
        A bad pseudonym, password, role or invitation (422).
    Conflict
        The pseudonym is taken (409).
    """
    now = _now(now)
    problems = check_pseudonym(pseudonym) + check_password(password)
    if role not in ROLES:
        problems.append({"field": "role", "message": f"found {role!r}; expected one of {ROLES}"})
    invite: Invitation | None = None
    if invitation is not None:
        invite = session.scalars(
            select(Invitation).where(
                Invitation.token_hash == hash_token(invitation),
                Invitation.used_at.is_(None),
                Invitation.expires_at > now,
            )
        ).one_or_none()
        if invite is None:
            problems.append(
                {
                    "field": "invitation",
                    "message": "this invitation is unknown, used or expired; ask an admin for a "
                    "new link",
                }
            )
    if problems:
        raise Invalid("The account cannot be created.", errors=problems)
    taken = session.scalar(
        select(func.count())
        .select_from(Volunteer)
        .where(func.lower(Volunteer.pseudonym) == pseudonym.lower())
    )
    if taken:
        raise Conflict(
            "This pseudonym is taken.",
            errors=[{"field": "pseudonym", "message": "choose another pseudonym"}],
        )
    volunteer = Volunteer(
        public_id=secrets.token_urlsafe(12),
        pseudonym=pseudonym,
        password_hash=_HASHER.hash(password),
        role=invite.role if invite is not None else role,
        created_at=now,
    )
    session.add(volunteer)
    session.flush()
    if invite is not None:
        # Single use even under concurrent sign-ups: only one UPDATE finds it unused.
        used = session.execute(
            update(Invitation)
            .where(Invitation.token_hash == invite.token_hash, Invitation.used_at.is_(None))
            .values(used_by=volunteer.volunteer_id, used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(used, "rowcount", 0) != 1:
            raise Invalid(
                "The account cannot be created.",
                errors=[{"field": "invitation", "message": "this invitation was just used"}],
            )
    return volunteer


def authenticate(session: Session, pseudonym: str, password: str) -> Volunteer | None:
    """Return the volunteer whose password this is, or None.

    An unknown pseudonym costs the same argon2 verification as a wrong password, so the
    answer's timing does not tell which pseudonyms exist. A hash made with older parameters is
    replaced (the caller commits).
    """
    volunteer = session.scalars(
        select(Volunteer).where(Volunteer.pseudonym == pseudonym[:200])
    ).one_or_none()
    stored = volunteer.password_hash if volunteer is not None else _dummy_hash()
    try:
        _HASHER.verify(stored, password[:_MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if volunteer is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        volunteer.password_hash = _HASHER.hash(password)
    return volunteer


def create_invitation(
    session: Session,
    *,
    role: str,
    created_by: int,
    project: str | None = None,
    lifetime_s: int = INVITATION_LIFETIME_S,
    now: datetime | None = None,
) -> str:
    """Create an invitation for an account of ``role``; return its token (shown once).

    Only the token's sha256 is stored. ``project`` is a project name (optional).
    """
    now = _now(now)
    if role not in ROLES:
        raise Invalid(
            "The invitation cannot be created.",
            errors=[{"field": "role", "message": f"found {role!r}; expected one of {ROLES}"}],
        )
    project_id = None
    if project is not None:
        project_id = session.scalar(select(Project.project_id).where(Project.name == project))
        if project_id is None:
            raise NotFound(
                f"No project is named {project!r}.",
                errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
            )
    token = secrets.token_urlsafe(24)
    session.add(
        Invitation(
            token_hash=hash_token(token),
            role=role,
            project_id=project_id,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_s),
        )
    )
    session.flush()
    return token


def start_session(
    session: Session,
    volunteer_id: int,
    *,
    csrf_token: str,
    lifetime_s: int = SESSION_LIFETIME_S,
    now: datetime | None = None,
) -> str:
    """Open a log-in session; return the cookie's token (only its sha256 is stored)."""
    now = _now(now)
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=hash_token(token),
            volunteer_id=volunteer_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_s),
        )
    )
    session.flush()
    return token


_V = Volunteer.__table__.c
_W = WebSession.__table__.c
_S = Submission.__table__.c
# Built once (Core, on the tables): the identity lookup and the task count run on every task
# request; rebuilding them cost more than running them.
_IDENTITY = (
    select(
        _V.volunteer_id,
        _V.public_id,
        _V.pseudonym,
        _V.role,
        _V.tutorial_done_at,
        _W.csrf_token,
        _W.expires_at,
    )
    .join_from(Volunteer.__table__, WebSession.__table__, _W.volunteer_id == _V.volunteer_id)
    .where(
        _W.token_hash == bindparam("h"), _W.expires_at > bindparam("now", type_=_W.expires_at.type)
    )
)
_TASKS_DONE = (
    select(func.count())
    .select_from(Submission.__table__)
    .where(_S.decoder_id == bindparam("d"), _S.kind != "tutorial")
)


def session_identity(
    session: Session, token: str, *, now: datetime | None = None
) -> SessionIdentity | None:
    """Return who holds the session ``token``, or None when it is unknown or expired."""
    now = _now(now)
    row = (
        session.connection().execute(_IDENTITY, {"h": hash_token(token), "now": now}).one_or_none()
    )
    if row is None:
        return None
    expires = row.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return SessionIdentity(
        volunteer_id=int(row.volunteer_id),
        public_id=str(row.public_id),
        pseudonym=str(row.pseudonym),
        role=str(row.role),
        csrf_token=str(row.csrf_token),
        expires_at=expires,
        tutorial_done=row.tutorial_done_at is not None,
    )


def session_volunteer(
    session: Session, token: str, *, now: datetime | None = None
) -> Volunteer | None:
    """Return the volunteer of the session ``token``, or None when unknown or expired."""
    identity = session_identity(session, token, now=now)
    if identity is None:
        return None
    return session.get(Volunteer, identity.volunteer_id)


def end_session(session: Session, token: str) -> None:
    """End the session ``token`` (log out); unknown tokens are ignored."""
    session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))


def purge_expired_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete expired sessions; return how many."""
    result: Any = session.execute(delete(WebSession).where(WebSession.expires_at <= _now(now)))
    return int(result.rowcount or 0)


def mark_tutorial_done(session: Session, volunteer_id: int, *, now: datetime | None = None) -> None:
    """Record that the volunteer finished the tutorial (the first time only)."""
    session.execute(
        update(Volunteer)
        .where(Volunteer.volunteer_id == volunteer_id, Volunteer.tutorial_done_at.is_(None))
        .values(tutorial_done_at=_now(now))
    )


def tasks_done(session: Session, public_id: str) -> int:
    """Return how many tasks the volunteer with ``public_id`` has submitted."""
    return int(session.connection().execute(_TASKS_DONE, {"d": public_id}).scalar() or 0)
