"""Account routes: CSRF token, sign-up, log-in, log-out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.orm import Session

from camcensus.db.accounts import SessionIdentity
from camcensus.web.schemas import CsrfOut, ErrorOut, LoginIn, MeOut, OkOut, SignupIn
from camcensus.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentVolunteer,
    DbSession,
    OptionalVolunteer,
    ReadSession,
    clear_session_cookie,
    csrf_token_of,
    forget_identity,
    rate_limit,
    set_csrf_cookie,
    set_session_cookie,
)

__all__ = ["ERRORS", "router"]

#: The error responses every route may give (documented in OpenAPI with the one shape).
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (401, "Not logged in"),
        (403, "Missing or wrong CSRF token, or a role is needed"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Body too large"),
        (422, "Invalid values"),
        (429, "Rate limited"),
    )
}

router = APIRouter(prefix="/api", tags=["account"], responses=ERRORS)


def _me(db: Session, identity: SessionIdentity) -> MeOut:
    from camcensus.db import accounts

    return MeOut(
        pseudonym=identity.pseudonym,
        public_id=identity.public_id,
        role=identity.role,  # type: ignore[arg-type]
        tasks_done=accounts.tasks_done(db, identity.public_id),
        tutorial_done=identity.tutorial_done,
    )


def _open_session(request: Request, response: Response, db: Session, volunteer_id: int) -> None:
    """Start a session bound to the request's CSRF token, commit, and set the cookie.

    Expired sessions are deleted here (an indexed range delete), so ``web_sessions`` holds
    only live sessions and the ones that expired since the last log-in.
    """
    from camcensus.db import accounts

    old = request.cookies.get(SESSION_COOKIE)
    if old:
        accounts.end_session(db, old)
        forget_identity(request, token=old)
    accounts.purge_expired_sessions(db)
    token = accounts.start_session(
        db,
        volunteer_id,
        csrf_token=csrf_token_of(request),
        lifetime_s=request.app.state.settings.session_lifetime_s,
    )
    db.commit()
    set_session_cookie(request, response, token)


def _identity_after_login(db: Session, request: Request, volunteer_id: int) -> MeOut:
    from camcensus.db import accounts
    from camcensus.db.models import Volunteer

    volunteer = db.get(Volunteer, volunteer_id)
    assert volunteer is not None
    return MeOut(
        pseudonym=volunteer.pseudonym,
        public_id=volunteer.public_id,
        role=volunteer.role,  # type: ignore[arg-type]
        tasks_done=accounts.tasks_done(db, volunteer.public_id),
        tutorial_done=volunteer.tutorial_done_at is not None,
    )


@router.get("/csrf", response_model=CsrfOut, summary="Get the CSRF token (sets the cookie)")
def get_csrf(
    *,
    request: Request,
    response: Response,
    identity: OptionalVolunteer,
) -> CsrfOut:
    """Return the CSRF token to send in ``X-CSRF-Token`` with every state-changing request."""
    if identity is not None:
        token = identity.csrf_token
        if request.cookies.get(CSRF_COOKIE) != token:
            set_csrf_cookie(request, response, token)
        return CsrfOut(csrf_token=token)
    return CsrfOut(csrf_token=csrf_token_of(request))


@router.post(
    "/signup", response_model=MeOut, status_code=201, summary="Create an account and log in"
)
def signup(*, body: SignupIn, request: Request, response: Response, db: DbSession) -> MeOut:
    """Create a volunteer account (or the role of an invitation) and open a session."""
    from camcensus.db import accounts

    rate_limit(request, "signup")
    volunteer = accounts.create_volunteer(
        db, pseudonym=body.pseudonym, password=body.password, invitation=body.invitation
    )
    volunteer_id = volunteer.volunteer_id
    _open_session(request, response, db, volunteer_id)
    return _identity_after_login(db, request, volunteer_id)


@router.post("/login", response_model=MeOut, summary="Log in")
def login(*, body: LoginIn, request: Request, response: Response, db: DbSession) -> MeOut:
    """Check the pseudonym and password and open a session."""
    from camcensus.db import accounts

    rate_limit(request, "login")
    rate_limit(request, "login_account", key=body.pseudonym.lower())
    volunteer = accounts.authenticate(db, body.pseudonym, body.password)
    if volunteer is None:
        raise HTTPException(
            401,
            detail={
                "error": "The pseudonym or the password is wrong.",
                "errors": [{"field": "password", "message": "check both and try again"}],
            },
        )
    volunteer_id = volunteer.volunteer_id
    _open_session(request, response, db, volunteer_id)
    return _identity_after_login(db, request, volunteer_id)


@router.post("/logout", response_model=OkOut, summary="Log out")
def logout(
    *,
    request: Request,
    response: Response,
    identity: OptionalVolunteer,
    db: DbSession,
) -> OkOut:
    """End the session (if any) and delete its cookie."""
    from camcensus.db import accounts

    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.end_session(db, token)
        db.commit()
        forget_identity(request, token=token)
    clear_session_cookie(request, response)
    return OkOut()


@router.get("/me", response_model=MeOut, summary="The logged-in volunteer")
def me(*, identity: CurrentVolunteer, db: ReadSession) -> MeOut:
    """Return the logged-in volunteer's pseudonym, public id, role and progress."""
    return _me(db, identity)
