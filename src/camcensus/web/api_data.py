"""Public data routes (tags, panoramas, submissions as JSON/GeoJSON) and panorama discussions.

Public answers carry the volunteers' random ``public_id`` (the exports' ``decoder_id``), never
a pseudonym; gold panoramas (known answers used to train and check volunteers) and tutorial
submissions are never public. Tags are the versions that stood at submit time
(``current and not deleted``), as in the exports.

The k answers of a panorama must stay independent: tags and submissions are public only once
their panorama is done (``status=done``, the default); experts and admins may ask for
panoramas in progress. A volunteer who holds an unanswered task on a panorama does not see its
discussion until they have submitted (they may still post to it). Lists come a page at a time
(``limit`` at most :data:`MAX_PAGE`, ``offset``; a full page carries a ``Link: rel="next"``
header) and reads are rate-limited per client in memory.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import Session

from camcensus.db.projects import panorama_status, status_clause
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
    OptionalVolunteer,
    ReadSession,
    rate_limit,
)

if TYPE_CHECKING:
    from camcensus.db.accounts import SessionIdentity

__all__ = ["DISCUSSION_LOCKED", "MAX_PAGE", "discussion_locked", "router"]

#: The largest page of the public list routes (``limit``).
MAX_PAGE = 5000
#: What a volunteer with an unanswered task on the panorama is told about its discussion.
DISCUSSION_LOCKED = "The discussion opens once you have submitted your answer."
_ROLE_RANK = {"volunteer": 0, "expert": 1, "admin": 2}

router = APIRouter(prefix="/api", tags=["data"], responses=ERRORS)

Status = Literal["todo", "in_progress", "done", "problem"]
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
AnswerStatusQ = Annotated[
    Status | None,
    Query(
        description="The panorama's completion status (default done; the others only for "
        "experts and admins: the k answers stay independent)"
    ),
]
LimitQ = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE})")]
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
    # The same statuses as the progress map (camcensus.db.projects.status_clause).
    if status is not None:
        query = query.where(status_clause(status, Project.k))
    return query


def _answer_status(status: str | None, identity: SessionIdentity | None) -> str:
    """Return the status filter of tags and submissions: done, unless an expert asks."""
    if status is None or status == "done":
        return "done"
    role = identity.role if identity is not None else "anonymous"
    if _ROLE_RANK.get(role, -1) < _ROLE_RANK["expert"]:
        raise HTTPException(
            403,
            detail={
                "error": "Answers are public only for panoramas that are done: the k "
                "volunteers of a panorama answer independently.",
                "errors": [
                    {
                        "field": "status",
                        "message": f"found {status!r}, which needs the role 'expert' "
                        f"(you are {role!r}); leave status out or ask for 'done'",
                    }
                ],
            },
        )
    return status


def _next_page(request: Request, response: Response, n: int, limit: int, offset: int) -> None:
    """Point to the next page (``Link: <...>; rel="next"``) when this page is full."""
    if n >= limit:
        url = request.url.include_query_params(limit=limit, offset=offset + limit)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def _feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": properties,
    }


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


def _verdicts(db: Session, tag_ids: list[str]) -> dict[str, dict[str, int]]:
    """Return the verify task's verdict counts (agree, disagree, unsure) of machine tags."""
    from camcensus.db.models import Validation

    out: dict[str, dict[str, int]] = {}
    for lo in range(0, len(tag_ids), 500):
        chunk = tag_ids[lo : lo + 500]
        stmt = (
            select(Validation.tag_id, Validation.answer, func.count())
            .where(Validation.tag_id.in_(chunk))
            .group_by(Validation.tag_id, Validation.answer)
        )
        for tag_id, answer, n in db.execute(stmt):
            out.setdefault(str(tag_id), {})[str(answer)] = int(n)
    return out


def _verify_fields(machine: bool, counts: dict[str, int] | None) -> dict[str, Any]:
    """Return a tag's verify fields: verdict counts and status for machine tags, else nulls.

    The same fields as ``camcensus export tags`` (:func:`camcensus.db.export.verify_columns`).
    """
    from camcensus.db.verify import verify_status

    if not machine:
        return dict.fromkeys(
            ("verify_agree", "verify_disagree", "verify_unsure", "verify_status"), None
        )
    c = counts or {}
    agree, disagree = c.get("agree", 0), c.get("disagree", 0)
    return {
        "verify_agree": agree,
        "verify_disagree": disagree,
        "verify_unsure": c.get("unsure", 0),
        "verify_status": verify_status(agree, disagree),
    }


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
    status: AnswerStatusQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
    request: Request,
    response: Response,
    identity: OptionalVolunteer,
    db: ReadSession,
) -> dict[str, Any]:
    """Return the tags that stood at submit time, oldest first, ``limit`` at a time.

    Only tags of panoramas that are done, unless an expert or admin asks for another
    ``status``. The detector's tags (``machine`` true, ``score``) carry the verify task's
    ``verify_agree``, ``verify_disagree``, ``verify_unsure`` and ``verify_status``
    (``confirmed`` | ``rejected`` | ``open``; null for human tags), as ``camcensus export
    tags`` does.
    """
    from camcensus.db.models import Panorama, Project, Submission, Tag

    rate_limit(request, "data")
    shown = _answer_status(status, identity)
    query: Select[*tuple[Any, ...]] = (
        select(Tag, Submission, Panorama.lon, Panorama.lat, Project.name)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .join(Project, Project.project_id == Panorama.project_id)
        .where(Tag.current.is_(True), Tag.deleted.is_(False), Submission.kind != "tutorial")
    )
    query = _panorama_filters(query, project, _bbox(bbox), shown)
    if since is not None:
        query = query.where(Submission.submitted_at >= _utc(since))
    if until is not None:
        query = query.where(Submission.submitted_at < _utc(until))
    query = query.order_by(Submission.submitted_at, Tag.tag_id).limit(limit).offset(offset)
    rows = db.execute(query).all()
    verdicts = _verdicts(db, [tag.tag_id for tag, *_ in rows if tag.machine])
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
                **_verify_fields(bool(tag.machine), verdicts.get(tag.tag_id)),
                "submitted_at": _iso(sub.submitted_at),
            },
        )
        for tag, sub, lon, lat, name in rows
    ]
    _next_page(request, response, len(features), limit, offset)
    return {"type": "FeatureCollection", "features": features}


@router.get("/panoramas", response_model=FeatureCollection, summary="Panoramas as GeoJSON")
def public_panoramas(
    *,
    project: ProjectQ = None,
    bbox: BboxQ = None,
    status: StatusQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
    request: Request,
    response: Response,
    db: ReadSession,
) -> dict[str, Any]:
    """Return the panoramas (not gold ones) with their completion status (no answers)."""
    from camcensus.db.models import Panorama, Project

    rate_limit(request, "data")
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
                "k": int(p.k_target or k),
                "status": panorama_status(
                    int(p.n_done or 0),
                    int(p.n_live or 0),
                    int(p.n_problem or 0),
                    int(k),
                    p.k_target,
                ),
            },
        )
        for p, name, k in db.execute(query)
    ]
    _next_page(request, response, len(features), limit, offset)
    return {"type": "FeatureCollection", "features": features}


@router.get("/submissions", response_model=list[SubmissionOut], summary="Submissions as JSON")
def public_submissions(
    *,
    project: ProjectQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    status: AnswerStatusQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
    request: Request,
    response: Response,
    identity: OptionalVolunteer,
    db: ReadSession,
) -> list[SubmissionOut]:
    """Return submissions (not gold, not tutorial), with their count of standing tags.

    Only submissions of panoramas that are done, unless an expert or admin asks for
    another ``status``.
    """
    from camcensus.db.models import Panorama, Project, Submission, Tag

    rate_limit(request, "data")
    shown = _answer_status(status, identity)
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
    query = _panorama_filters(query, project, None, shown)
    if since is not None:
        query = query.where(Submission.submitted_at >= _utc(since))
    if until is not None:
        query = query.where(Submission.submitted_at < _utc(until))
    query = query.order_by(Submission.submitted_at, Submission.submission_id)
    out = [
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
    _next_page(request, response, len(out), limit, offset)
    return out


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


def discussion_locked(db: Session, panorama_id: str, volunteer_id: int) -> bool:
    """Return whether the volunteer holds an unanswered task on the panorama.

    Such a volunteer does not see the panorama's discussion: other volunteers' comments would
    tell them what to answer. A task that expired still counts (it can be submitted late); a
    skipped one does not (it can never be answered).
    """
    from camcensus.db.models import Assignment

    return bool(
        db.scalar(
            select(
                exists().where(
                    Assignment.panorama_id == panorama_id,
                    Assignment.volunteer_id == volunteer_id,
                    Assignment.status.in_(("open", "expired")),
                    Assignment.submission_id.is_(None),
                )
            )
        )
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
    db: ReadSession,
) -> list[CommentOut]:
    """Return a panorama's comments, oldest first (bodies are text, never HTML).

    403 while the volunteer holds an unanswered task on the panorama (:func:`
    discussion_locked`).
    """
    from camcensus.db.models import Comment, Volunteer

    _panorama_or_404(db, panorama_id)
    if discussion_locked(db, panorama_id, identity.volunteer_id):
        raise HTTPException(
            403,
            detail={
                "error": DISCUSSION_LOCKED,
                "errors": [
                    {
                        "field": "panorama_id",
                        "message": "submit your task on this panorama first; you may post "
                        "a comment now",
                    }
                ],
            },
        )
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
    """Store a comment exactly as typed; it is only ever shown as text.

    Allowed while the volunteer's own task on the panorama is open (it flags the panorama).
    """
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
