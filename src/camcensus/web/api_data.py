"""Public data routes (tags, panoramas, submissions as JSON/GeoJSON) and panorama discussions.

Public answers carry the volunteers' random ``public_id`` (the exports' ``decoder_id``), never
a pseudonym; gold panoramas (known answers used to train and check volunteers) and tutorial
submissions are never public. Tags are the versions that stood at submit time
(``current and not deleted``), as in the exports.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from camcensus.web.api_auth import ERRORS
from camcensus.web.api_images import PanoramaId
from camcensus.web.schemas import (
    CommentIn,
    CommentOut,
    FeatureCollection,
    SubmissionOut,
    check_bbox,
)
from camcensus.web.security import (
    CurrentVolunteer,
    DbSession,
    rate_limit,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["data"], responses=ERRORS)

Status = Literal["todo", "in_progress", "done"]
ProjectQ = Annotated[
    str | None, Query(pattern=r"^[a-z0-9-]{1,64}$", description="A project's name")
]
BboxQ = Annotated[
    str | None,
    Query(
        pattern=r"^[-+0-9.eE]+,[-+0-9.eE]+,[-+0-9.eE]+,[-+0-9.eE]+$",
        max_length=200,
        description="west,south,east,north in WGS84 degrees",
    ),
]
SinceQ = Annotated[
    datetime | None, Query(description="Submitted at or after (ISO 8601; UTC when no zone)")
]
UntilQ = Annotated[
    datetime | None, Query(description="Submitted before (ISO 8601; UTC when no zone)")
]
StatusQ = Annotated[Status | None, Query(description="The panorama's completion status")]
LimitQ = Annotated[int, Query(ge=1, le=50_000)]
OffsetQ = Annotated[int, Query(ge=0, le=10_000_000)]


def _bbox(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return check_bbox([float(x) for x in text.split(",")])
    except ValueError as exc:
        raise HTTPException(
            422,
            detail={
                "error": "The bbox is not a box.",
                "errors": [{"field": "bbox", "message": str(exc)}],
            },
        ) from exc


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _panorama_filters(
    query: Select[*tuple[Any, ...]],
    project: str | None,
    bbox: list[float] | None,
    status: str | None,
) -> Select[*tuple[Any, ...]]:
    """Filter a query that joins Panorama and Project: project, bbox, completion status."""
    from camcensus.db.models import Panorama, Project

    query = query.where(Panorama.gold.is_(False))
    if project is not None:
        query = query.where(Project.name == project)
    if bbox is not None:
        w, s, e, n = bbox
        query = query.where(
            Panorama.lon >= w, Panorama.lon <= e, Panorama.lat >= s, Panorama.lat <= n
        )
    # The same statuses as the progress map (camcensus.db.projects.progress_geojson): a slot
    # held by a running or submitted tag task (n_live) puts a panorama in progress.
    if status == "done":
        query = query.where(Panorama.n_done >= Project.k)
    elif status == "todo":
        query = query.where(Panorama.n_live == 0)
    elif status == "in_progress":
        query = query.where(Panorama.n_done < Project.k, Panorama.n_live > 0)
    return query


def _status(n_done: int, k: int, n_live: int) -> str:
    """The completion status, as the ``status`` filter computes it (a running task counts)."""
    return "done" if n_done >= k else "in_progress" if n_live > 0 else "todo"


def _feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": properties,
    }


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


@router.get(
    "/tags",
    response_model=FeatureCollection,
    summary="Tags (rays) as GeoJSON: a Point at the panorama, the ray in the properties",
)
def public_tags(
    *,
    project: ProjectQ = None,
    bbox: BboxQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    status: StatusQ = None,
    limit: LimitQ = 5000,
    offset: OffsetQ = 0,
    db: DbSession,
) -> dict[str, Any]:
    """Return the tags that stood at submit time, newest last, ``limit`` at a time."""
    from camcensus.db.models import Panorama, Project, Submission, Tag

    query: Select[*tuple[Any, ...]] = (
        select(Tag, Submission, Panorama.lon, Panorama.lat, Project.name)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .join(Project, Project.project_id == Panorama.project_id)
        .where(Tag.current.is_(True), Tag.deleted.is_(False), Submission.kind != "tutorial")
    )
    query = _panorama_filters(query, project, _bbox(bbox), status)
    if since is not None:
        query = query.where(Submission.submitted_at >= _utc(since))
    if until is not None:
        query = query.where(Submission.submitted_at < _utc(until))
    query = query.order_by(Submission.submitted_at, Tag.tag_id).limit(limit).offset(offset)
    features = [
        _feature(
            lon,
            lat,
            {
                "tag_id": tag.tag_id,
                "submission_id": sub.submission_id,
                "panorama_id": sub.panorama_id,
                "project": name,
                "decoder_id": sub.decoder_id,
                "kind": sub.kind,
                "heading_deg": tag.heading_deg,
                "pitch_deg": tag.pitch_deg,
                "fov_deg": tag.fov_deg,
                "attachment": tag.attachment,
                "camera_type": tag.camera_type,
                "machine": bool(tag.machine),
                "score": tag.score,
                "submitted_at": _iso(sub.submitted_at),
            },
        )
        for tag, sub, lon, lat, name in db.execute(query)
    ]
    return {"type": "FeatureCollection", "features": features}


@router.get("/panoramas", response_model=FeatureCollection, summary="Panoramas as GeoJSON")
def public_panoramas(
    *,
    project: ProjectQ = None,
    bbox: BboxQ = None,
    status: StatusQ = None,
    limit: LimitQ = 5000,
    offset: OffsetQ = 0,
    db: DbSession,
) -> dict[str, Any]:
    """Return the panoramas (not gold ones) with their completion status."""
    from camcensus.db.models import Panorama, Project

    query: Select[*tuple[Any, ...]] = select(Panorama, Project.name, Project.k).join(
        Project, Project.project_id == Panorama.project_id
    )
    query = _panorama_filters(query, project, _bbox(bbox), status)
    query = query.order_by(Panorama.panorama_id).limit(limit).offset(offset)
    features = [
        _feature(
            p.lon,
            p.lat,
            {
                "panorama_id": p.panorama_id,
                "project": name,
                "heading_deg": p.heading_deg,
                "captured": p.captured,
                "source": p.source,
                "licence": p.licence,
                "republishable": bool(p.republishable),
                "intersection_id": p.intersection_id,
                "n_done": int(p.n_done or 0),
                "k": int(k),
                "status": _status(int(p.n_done or 0), int(k), int(p.n_live or 0)),
            },
        )
        for p, name, k in db.execute(query)
    ]
    return {"type": "FeatureCollection", "features": features}


@router.get("/submissions", response_model=list[SubmissionOut], summary="Submissions as JSON")
def public_submissions(
    *,
    project: ProjectQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    limit: LimitQ = 5000,
    offset: OffsetQ = 0,
    db: DbSession,
) -> list[SubmissionOut]:
    """Return submissions (not gold, not tutorial), with their count of standing tags."""
    from camcensus.db.models import Panorama, Project, Submission, Tag

    n_tags = (
        select(func.count())
        .select_from(Tag)
        .where(
            and_(
                Tag.submission_id == Submission.submission_id,
                Tag.current.is_(True),
                Tag.deleted.is_(False),
            )
        )
        .scalar_subquery()
    )
    query: Select[*tuple[Any, ...]] = (
        select(Submission, Project.name, n_tags)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .join(Project, Project.project_id == Panorama.project_id)
        .where(Submission.kind != "tutorial", Submission.gold.is_(False))
    )
    query = _panorama_filters(query, project, None, None)
    if since is not None:
        query = query.where(Submission.submitted_at >= _utc(since))
    if until is not None:
        query = query.where(Submission.submitted_at < _utc(until))
    query = query.order_by(Submission.submitted_at, Submission.submission_id)
    return [
        SubmissionOut(
            submission_id=s.submission_id,
            panorama_id=s.panorama_id,
            project=name,
            decoder_id=s.decoder_id,
            kind=s.kind,
            submitted_at=_utc(s.submitted_at),
            no_camera=bool(s.no_camera),
            problem=s.problem,
            gold=bool(s.gold),
            n_tags=int(n or 0),
        )
        for s, name, n in db.execute(query.limit(limit).offset(offset))
    ]


def _comment_out(comment: Any, pseudonym: str) -> CommentOut:
    return CommentOut(
        comment_id=comment.comment_id,
        panorama_id=comment.panorama_id,
        pseudonym=pseudonym,
        body=comment.body,
        created_at=_utc(comment.created_at) or datetime.now(UTC),
    )


def _panorama_or_404(db: Session, panorama_id: str) -> None:
    from camcensus.db.models import Panorama

    if db.get(Panorama, panorama_id) is None:
        raise HTTPException(
            404,
            detail={
                "error": "No panorama has this id.",
                "errors": [{"field": "panorama_id", "message": f"unknown {panorama_id!r}"}],
            },
        )


@router.get(
    "/panoramas/{panorama_id}/comments",
    response_model=list[CommentOut],
    summary="A panorama's discussion",
)
def list_comments(
    *,
    panorama_id: PanoramaId,
    identity: CurrentVolunteer,
    db: DbSession,
) -> list[CommentOut]:
    """Return a panorama's comments, oldest first (bodies are text, never HTML)."""
    from camcensus.db.models import Comment, Volunteer

    _panorama_or_404(db, panorama_id)
    rows = db.execute(
        select(Comment, Volunteer.pseudonym)
        .join(Volunteer, Volunteer.volunteer_id == Comment.volunteer_id)
        .where(Comment.panorama_id == panorama_id)
        .order_by(Comment.created_at, Comment.comment_id)
        .limit(1000)
    )
    return [_comment_out(c, p) for c, p in rows]


@router.post(
    "/panoramas/{panorama_id}/comments",
    response_model=CommentOut,
    status_code=201,
    summary="Add to a panorama's discussion (flag for discussion)",
)
def add_comment(
    *,
    body: CommentIn,
    request: Request,
    panorama_id: PanoramaId,
    identity: CurrentVolunteer,
    db: DbSession,
) -> CommentOut:
    """Store a comment exactly as typed; it is only ever shown as text."""
    from camcensus.db.models import Comment

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    _panorama_or_404(db, panorama_id)
    comment = Comment(
        comment_id=secrets.token_urlsafe(12),
        panorama_id=panorama_id,
        volunteer_id=identity.volunteer_id,
        body=body.body,
        created_at=datetime.now(UTC),
    )
    db.add(comment)
    db.flush()
    out = _comment_out(comment, identity.pseudonym)
    db.commit()
    return out
