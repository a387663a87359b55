"""Admin routes (role ``admin``, checked on the server): projects, invitations, gold, reviews,
export.

Server paths an admin names (an imagery folder, an intersections CSV) must lie inside the
media root: panoramas' ``image_uri`` are relative to it, and an admin session can then never
read the rest of the server's disk.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from camcensus._errors import InputError, OptionError
from camcensus.web.api_auth import ERRORS
from camcensus.web.api_images import PanoramaId, image_store
from camcensus.web.api_projects import ProjectName, _project_out
from camcensus.web.schemas import (
    AdminProjectIn,
    GoldIn,
    InvitationIn,
    InvitationOut,
    OkOut,
    ProjectOut,
    ReviewQueueIn,
    ReviewQueueOut,
)
from camcensus.web.security import (
    AdminVolunteer,
    DbSession,
    ReadSession,
)

__all__ = ["review_overview", "router", "skill_rows"]

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERRORS)


def _inside_media(request: Request, value: str, field: str) -> FsPath:
    """Resolve a server path and refuse it unless it lies inside the media root."""
    root = FsPath(request.app.state.media_root).resolve()
    try:
        path = FsPath(value)
        resolved = (path if path.is_absolute() else root / path).resolve()
        usable = resolved.is_relative_to(root) and resolved.exists()
    except (ValueError, OSError):  # a NUL byte, a name too long, a loop of links
        usable = False
    if not usable:
        raise HTTPException(
            422,
            detail={
                "error": "The path is not inside the media root.",
                "errors": [
                    {
                        "field": field,
                        "message": "name an existing path inside the server's media root "
                        "(relative paths are read from it)",
                    }
                ],
            },
        )
    return resolved


def _import_refusal(exc: InputError | OptionError, source: str) -> HTTPException:
    """The one error shape for an import's problems (each names its file, row and column)."""
    from camcensus.imagery import SourceError

    if isinstance(exc, InputError):
        errors = [
            {
                "field": p.column or ("panoramax_url" if source == "panoramax" else source),
                "message": str(p),
            }
            for p in exc.problems[:200]
        ]
        # An unreachable or failing imagery service is the admin's to fix (another URL or
        # later), so it is refused like any other unusable input.
        error = (
            "The imagery service could not be used."
            if isinstance(exc, SourceError)
            else f"The imagery source has {len(exc.problems)} problem(s)."
        )
    else:
        errors = [{"field": source, "message": str(exc)}]
        error = "The imagery source cannot be imported with these options."
    return HTTPException(422, detail={"error": error, "errors": errors})


@router.post(
    "/projects",
    response_model=ProjectOut,
    status_code=201,
    summary="Create a project from an imagery source",
)
def create_project(
    *,
    body: AdminProjectIn,
    request: Request,
    identity: AdminVolunteer,
    db: DbSession,
) -> ProjectOut:
    """Import the panoramas of a folder or a Panoramax bbox and create the project."""
    from camcensus.db import projects
    from camcensus.imagery import import_project_source

    folder = None
    if body.source == "folder":
        if body.folder is None:
            raise HTTPException(
                422,
                detail={
                    "error": "A folder source needs a folder.",
                    "errors": [{"field": "folder", "message": "name the folder of images"}],
                },
            )
        folder = _inside_media(request, body.folder, "folder")
    elif body.bbox is None or body.panoramax_url is None:
        raise HTTPException(
            422,
            detail={
                "error": "A Panoramax source needs a bbox and the instance's URL.",
                "errors": [{"field": "bbox", "message": "give [west, south, east, north]"}],
            },
        )
    intersections_csv = (
        _inside_media(request, body.intersections_csv, "intersections_csv")
        if body.intersections_csv is not None
        else None
    )
    try:
        panoramas, intersections = import_project_source(
            source=body.source,
            media_root=request.app.state.media_root,
            folder=folder,
            panoramax_url=body.panoramax_url,
            bbox=tuple(body.bbox) if body.bbox is not None else None,
            intersections_csv=intersections_csv,
            area_geojson=body.area_geojson,
            store=image_store(request),
            licence=body.licence or None,
        )
    except (InputError, OptionError) as exc:
        raise _import_refusal(exc, body.source) from exc
    projects.create_project(
        db,
        name=body.name,
        title=body.title,
        panoramas=panoramas,
        intersections=intersections,
        k=body.k or request.app.state.settings.k,
        licence=body.licence or "",
        task_timeout_s=body.task_timeout_s,
    )
    db.flush()
    out = _project_out(db, body.name)
    db.commit()
    return out


@router.post(
    "/invitations", response_model=InvitationOut, status_code=201, summary="Invite an account"
)
def create_invitation(
    *,
    body: InvitationIn,
    request: Request,
    identity: AdminVolunteer,
    db: DbSession,
) -> InvitationOut:
    """Create a single-use invitation; the token is shown once (only its hash is stored)."""
    from urllib.parse import quote

    from camcensus.db import accounts

    token = accounts.create_invitation(
        db,
        role=body.role,
        created_by=identity.volunteer_id,
        project=body.project,
        lifetime_s=request.app.state.settings.invitation_lifetime_s,
    )
    db.commit()
    return InvitationOut(
        token=token, signup_url=f"/signup?invitation={quote(token, safe='')}", role=body.role
    )


@router.post("/panoramas/{panorama_id}/gold", response_model=OkOut, summary="Mark a gold panorama")
def mark_gold(
    *,
    body: GoldIn,
    panorama_id: PanoramaId,
    identity: AdminVolunteer,
    db: DbSession,
) -> OkOut:
    """Store a panorama's known answer; it then gives feedback and never counts to completion."""
    from camcensus.db import projects

    projects.mark_gold(db, panorama_id, [t.model_dump() for t in body.answer])
    db.commit()
    return OkOut()


@router.post(
    "/projects/{name}/reviews", response_model=ReviewQueueOut, summary="Queue expert reviews"
)
def queue_reviews(
    *,
    body: ReviewQueueIn,
    name: ProjectName,
    identity: AdminVolunteer,
    db: DbSession,
) -> ReviewQueueOut:
    """Put panoramas in the project's expert review queue (``experts`` answers each)."""
    from camcensus.db import review

    queued: Any = review.queue_review(
        db, project=name, panorama_ids=body.panorama_ids, experts_needed=body.experts
    )
    n = len(queued) if isinstance(queued, (list, tuple)) else int(queued or 0)
    db.commit()
    return ReviewQueueOut(queued=n)


@router.get(
    "/projects/{name}/export/decode.zip",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "A zip file"}},
    summary="Amnesty's four CSV files of the project, zipped",
)
def export_decode_zip(
    *,
    request: Request,
    name: ProjectName,
    identity: AdminVolunteer,
) -> FileResponse:
    """Export counts.csv, intersections.csv, panorama_url.csv and cameras.csv as one zip."""
    from camcensus.db.export import export_decode

    folder = FsPath(tempfile.mkdtemp(prefix="camcensus-export-"))
    try:
        files = export_decode(request.app.state.engine, project=name, out=folder / "export")
        archive = folder / f"{name}-decode.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(FsPath(p) for p in files.values()):
                zf.write(path, arcname=path.name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"{name}-decode.zip",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


class ReviewPlanIn(BaseModel):
    """A review plan as CSV text: ``PanoramaId``, ``inclusion_probability``[, ``stratum``]."""

    model_config = ConfigDict(extra="forbid")

    plan_csv: str = Field(min_length=1, max_length=2_000_000)
    experts: int = Field(default=3, ge=1, le=20)


class ReferenceIn(BaseModel):
    """The meta-expert's counts where the experts disagree (the others stand)."""

    model_config = ConfigDict(extra="forbid")

    reference: dict[str, int]
    note: str | None = Field(default=None, max_length=500)


@router.post(
    "/projects/{name}/review-plan",
    response_model=ReviewQueueOut,
    summary="Queue a review plan (3 experts per panorama, a meta-expert resolves)",
)
def queue_review_plan(
    *, body: ReviewPlanIn, name: ProjectName, identity: AdminVolunteer, db: DbSession
) -> ReviewQueueOut:
    """Read the plan CSV and queue each panorama for independent expert answers."""
    import io

    import pandas as pd

    from camcensus.db import review

    try:
        plan = pd.read_csv(io.StringIO(body.plan_csv), dtype={"PanoramaId": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise HTTPException(
            422,
            detail={
                "error": "The review plan is not a CSV file.",
                "errors": [{"field": "plan_csv", "message": str(exc)[:300]}],
            },
        ) from exc
    queued = review.queue_plan(db, project=name, plan=plan, experts_needed=body.experts)
    db.commit()
    return ReviewQueueOut(queued=len(queued))


@router.get(
    "/projects/{name}/reviews", summary="Review progress and reviews awaiting a meta-expert"
)
def review_status(
    *, name: ProjectName, identity: AdminVolunteer, db: ReadSession
) -> dict[str, Any]:
    """Counts by status, and each review awaiting a meta-expert with its experts' answers."""
    return review_overview(db, project=name)


def review_overview(session: Session, *, project: str) -> dict[str, Any]:
    """Return what the admin pages show about the project's reviews; reads only.

    Expert answers are recorded as they are submitted (:func:`camcensus.db.tasks.submit`
    calls :func:`camcensus.db.review.record_review_answer`); answers stored without that
    hook are recorded by :func:`camcensus.db.review.sync_reviews`, which the next review
    task (a write) runs, never a read.

    Returns
    -------
    dict
        ``progress`` (:func:`camcensus.db.review.review_progress`), ``by_stratum`` (one dict
        per stratum of the plan, sorted by name, ``None`` for reviews queued without one:
        ``stratum``, ``open``, ``awaiting_meta``, ``done``, ``queued``) and ``awaiting_meta``
        (:func:`camcensus.db.review.reviews_awaiting_meta`).

    Raises
    ------
    camcensus.db.errors.NotFound
        No project of that name.
    """
    from sqlalchemy import func, select

    from camcensus.db import review
    from camcensus.db.models import Project, Review

    progress = review.review_progress(session, project=project)
    counts = session.execute(
        select(Review.stratum, Review.status, func.count())
        .join(Project, Project.project_id == Review.project_id)
        .where(Project.name == project)
        .group_by(Review.stratum, Review.status)
    ).all()
    strata: dict[str | None, dict[str, Any]] = {}
    for stratum, status, n in counts:
        row = strata.setdefault(
            stratum,
            {"stratum": stratum, "open": 0, "awaiting_meta": 0, "done": 0, "queued": 0},
        )
        row[str(status)] = row.get(str(status), 0) + int(n)
        row["queued"] += int(n)
    by_stratum = [strata[k] for k in sorted(strata, key=lambda s: (s is None, s or ""))]
    return {
        "progress": progress,
        "by_stratum": by_stratum,
        "awaiting_meta": review.reviews_awaiting_meta(session, project=project),
    }


@router.post("/reviews/{review_id}/resolve", response_model=OkOut, summary="Give a reference")
def resolve_review(
    *, review_id: str, body: ReferenceIn, identity: AdminVolunteer, db: DbSession
) -> OkOut:
    """The meta-expert's reference for a review whose experts disagree."""
    from camcensus.db import review

    review.resolve_review(
        db,
        review_id=review_id[:64],
        volunteer_id=identity.volunteer_id,
        reference=body.reference,
        note=body.note,
    )
    db.commit()
    return OkOut()


@router.get("/projects/{name}/skill", summary="Per-volunteer skill from gold panoramas")
def volunteer_skill(
    *, name: ProjectName, identity: AdminVolunteer, db: ReadSession
) -> list[dict[str, Any]]:
    """Gold tasks, found, missed, extra, detection rate and false tags per panorama."""
    return skill_rows(db, project=name)


def skill_rows(session: Session, *, project: str) -> list[dict[str, Any]]:
    """Return :func:`camcensus.db.review.volunteer_skill` as JSON-ready rows (NaN -> None).

    Raises
    ------
    camcensus.db.errors.NotFound
        No project of that name.
    """
    import math

    from camcensus.db import review

    frame = review.volunteer_skill(session, project=project)
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in record.items()} for record in frame.to_dict("records")
    ]
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
            elif hasattr(value, "item"):  # a numpy scalar
                row[key] = value.item()
    return rows
