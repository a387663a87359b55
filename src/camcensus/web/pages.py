"""The volunteer-facing HTML pages (Jinja2, server-rendered, one external script per page).

Every page extends ``base.html`` and gets ``request``, ``me`` (the logged-in
:class:`~camcensus.db.accounts.SessionIdentity`, or None), ``project`` (the
:class:`~camcensus.db.models.Project` the page is about, or None) and ``static_url`` (the URL of
a file under ``/static/``). Input text reaches the HTML only through Jinja2's autoescape; the
page scripts write server data only with ``textContent``. There is no inline script or style
anywhere (the Content-Security-Policy forbids both): values a script needs travel in
``data-*`` attributes of ``<body>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from camcensus._version import package_version
from camcensus.web.security import optional_volunteer

if TYPE_CHECKING:
    from camcensus.db.accounts import SessionIdentity
    from camcensus.db.models import Project

__all__ = ["REVIEW_LABELS", "TEMPLATES_DIR", "router", "static_url"]

#: The page templates.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_STATIC_DIR = Path(__file__).resolve().parent / "static"
_ROLE_RANK = {"volunteer": 0, "expert": 1, "admin": 2}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)

Identity = Annotated["SessionIdentity | None", Depends(optional_volunteer)]


def static_url(path: str) -> str:
    """Return the URL of ``path`` under ``/static/``, versioned by the file's modification time.

    Parameters
    ----------
    path
        A path relative to the static folder, e.g. ``"js/tag.js"``.
    """
    clean = path.lstrip("/")
    try:
        version = int((_STATIC_DIR / clean).stat().st_mtime)
    except OSError:
        return f"/static/{quote(clean)}"
    return f"/static/{quote(clean)}?v={version}"


def local_path(target: str | None) -> str:
    """Return ``target`` when it is a path on this site, else ``/`` (no open redirect).

    Browsers read ``/\\`` as ``//`` (another host), and drop tabs and newlines from URLs, so a
    target with a backslash or a control character is refused too.
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
        or len(target) > 500
    ):
        return "/"
    return target


def _read_session(request: Request) -> Session:
    """Return a read-only session (it never blocks a writer on SQLite)."""
    factory: sessionmaker[Session] = request.app.state.read_sessions
    return factory()


def _project(request: Request, name: str) -> Project | None:
    """Return the project called ``name``, or None."""
    from camcensus.db.models import Project

    with _read_session(request) as session:
        project = session.scalar(select(Project).where(Project.name == name))
        if project is not None:
            session.expunge(project)
        return project


def _projects(request: Request) -> list[Project]:
    """Return every project, open ones first, by name."""
    from camcensus.db.models import Project

    with _read_session(request) as session:
        rows = list(session.scalars(select(Project).order_by(Project.status.desc(), Project.name)))
        for row in rows:
            session.expunge(row)
        return rows


def _render(
    request: Request,
    template: str,
    me: SessionIdentity | None,
    *,
    project: Project | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """Render ``template`` with the common context."""
    context: dict[str, Any] = {
        "request": request,
        "me": me,
        "project": project,
        "static_url": static_url,
        "build": package_version(),
        **extra,
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _login_redirect(request: Request) -> RedirectResponse:
    """Send a visitor who is not logged in to the log-in page, coming back here afterwards."""
    target = request.url.path
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def _message(
    request: Request, me: SessionIdentity | None, title: str, text: str, status_code: int
) -> HTMLResponse:
    return _render(
        request, "message.html", me, status_code=status_code, title=title, message_text=text
    )


def _project_page(
    request: Request,
    me: SessionIdentity | None,
    name: str,
    template: str,
    role: str,
    **extra: Any,
) -> Response:
    """Render a page of project ``name`` for a logged-in volunteer of at least ``role``."""
    if me is None:
        return _login_redirect(request)
    if _ROLE_RANK.get(me.role, -1) < _ROLE_RANK[role]:
        return _message(request, me, "Not allowed", f"This page needs the role {role}.", 403)
    project = _project(request, name)
    if project is None:
        return _message(request, me, "No such project", f"There is no project {name}.", 404)
    return _render(request, template, me, project=project, **extra)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, me: Identity) -> Response:
    """Show the projects with their progress and the volunteer's own progress."""
    return _render(request, "home.html", me, projects=_projects(request))


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, me: Identity) -> Response:
    """Show the sign-up form (a pseudonym and a password; an invitation from the link)."""
    invitation = request.query_params.get("invitation", "")[:200]
    return _render(request, "signup.html", me, invitation=invitation)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, me: Identity) -> Response:
    """Show the log-in form."""
    return _render(request, "login.html", me, next_url=local_path(request.query_params.get("next")))


@router.get("/tutorial", response_class=HTMLResponse)
def tutorial_page(request: Request, me: Identity) -> Response:
    """Show the interactive tutorial on a synthetic panorama."""
    if me is None:
        return _login_redirect(request)
    return _render(request, "tutorial.html", me)


@router.get("/tag/{project}", response_class=HTMLResponse)
def tag_page(request: Request, project: str, me: Identity) -> Response:
    """Show the 360° tagging page of ``project``."""
    return _project_page(request, me, project, "tag.html", "volunteer", mode="tag")


@router.get("/validate/{project}", response_class=HTMLResponse)
def validate_page(request: Request, project: str, me: Identity) -> Response:
    """Show the validation page of ``project`` (agree / disagree / unsure on one tag)."""
    return _project_page(request, me, project, "validate.html", "volunteer")


@router.get("/verify/{project}", response_class=HTMLResponse)
def verify_page(request: Request, project: str, me: Identity) -> Response:
    """Show the verify page of ``project``: is the detector's machine tag a camera?"""
    return _project_page(request, me, project, "verify.html", "volunteer")


@router.get("/review/{project}", response_class=HTMLResponse)
def review_page(request: Request, project: str, me: Identity) -> Response:
    """Show the expert review queue of ``project``."""
    return _project_page(request, me, project, "tag.html", "expert", mode="review")


@router.get("/guide", response_class=HTMLResponse)
def guide_page(request: Request, me: Identity) -> Response:
    """Show the illustrated guide to cameras and their look-alikes."""
    return _render(request, "guide.html", me)


@router.get("/projects/{name}", response_class=HTMLResponse)
def project_page(request: Request, name: str, me: Identity) -> Response:
    """Show the live progress map of project ``name``."""
    project = _project(request, name)
    if project is None:
        return _message(request, me, "No such project", f"There is no project {name}.", 404)
    return _render(request, "project.html", me, project=project)


@router.get("/panoramas/{panorama_id}/discussion", response_class=HTMLResponse)
def discussion_page(request: Request, panorama_id: str, me: Identity) -> Response:
    """Show the discussion thread of one panorama.

    A volunteer with an unanswered task on the panorama is told that the discussion opens once
    they have submitted (the comments API refuses them the thread; posting stays open).
    """
    from camcensus.web.api_data import DISCUSSION_LOCKED, discussion_locked

    if me is None:
        return _login_redirect(request)
    panorama_id = panorama_id[:200]
    with _read_session(request) as session:
        locked = discussion_locked(session, panorama_id, me.volunteer_id)
    return _render(
        request,
        "discussion.html",
        me,
        panorama_id=panorama_id,
        discussion_locked=locked,
        locked_text=DISCUSSION_LOCKED,
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, me: Identity) -> Response:
    """Show the admin page (create a project, invite, mark gold, export)."""
    if me is None:
        return _login_redirect(request)
    if me.role != "admin":
        return _message(request, me, "Not allowed", "This page needs the role admin.", 403)
    return _render(request, "admin.html", me, projects=_projects(request))


#: What the admin's review page calls each reviewed category (the count columns of counts.csv).
REVIEW_LABELS: dict[str, str] = {
    "n_cameras": "Cameras",
    "attached_street": "On street furniture (public)",
    "attached_building": "On a building (private)",
    "attached_unknown": "Attachment unknown",
    "type_dome": "Dome (street cameras)",
    "type_bullet": "Bullet (street cameras)",
    "type_unknown": "Type unknown (street cameras)",
}


def _skill_cells(row: dict[str, Any]) -> dict[str, Any]:
    """Format one row of the gold skill table (rates as percentages, none as a dash)."""
    rate = row.get("detection_rate")
    false = row.get("false_per_panorama")
    return row | {
        "detection_text": "—" if rate is None else f"{100 * float(rate):.0f}%",
        "false_text": "—" if false is None else f"{float(false):.2f}",
    }


@router.get("/admin/projects/{name}/review", response_class=HTMLResponse)
def admin_review_page(request: Request, name: str, me: Identity) -> Response:
    """Show a project's expert review: plan upload, progress, the meta-expert's forms, skill.

    Expert answers stored without the review hook are recorded first (the page shows what the
    admin API's ``GET /api/admin/projects/{name}/reviews`` returns).
    """
    from camcensus.db.review import REVIEW_CATEGORIES
    from camcensus.web.api_admin import review_overview, skill_rows

    if me is None:
        return _login_redirect(request)
    if me.role != "admin":
        return _message(request, me, "Not allowed", "This page needs the role admin.", 403)
    project = _project(request, name[:64])
    if project is None:
        return _message(request, me, "No such project", f"There is no project {name}.", 404)
    with _read_session(request) as session:
        overview = review_overview(session, project=project.name)
        skill = [_skill_cells(row) for row in skill_rows(session, project=project.name)]
    me_name = me.pseudonym.casefold()
    awaiting = [
        review
        | {
            "own": any(str(e["pseudonym"]).casefold() == me_name for e in review["experts"]),
            "image_url": f"/api/panoramas/{quote(str(review['panorama_id']), safe='')}/image",
            "discussion_url": (
                f"/panoramas/{quote(str(review['panorama_id']), safe='')}/discussion"
            ),
        }
        for review in overview["awaiting_meta"]
    ]
    return _render(
        request,
        "admin_review.html",
        me,
        project=project,
        progress=overview["progress"],
        by_stratum=overview["by_stratum"],
        awaiting=awaiting,
        skill=skill,
        categories=[(c, REVIEW_LABELS.get(c, c)) for c in REVIEW_CATEGORIES],
    )
