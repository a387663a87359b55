"""Validation tasks and the expert review queue.

- :func:`next_validation` shows a volunteer another volunteer's standing tag, only on a
  **complete** panorama (``n_done >= k``, not gold) and never on a panorama the volunteer was
  given as a task: a validator who has seen someone's answer on a panorama can then never be
  one of its k taggers (:func:`camcensus.db.tasks.next_task` also refuses panoramas whose tags
  the volunteer validated). :func:`validate` refuses the tags :func:`next_validation` would not
  show.
- :func:`queue_review` puts panoramas in the expert queue, at most one open review per
  panorama (a partial unique index, so two admins at once cannot queue it twice);
  :func:`next_review` hands one to an expert as an assignment of kind ``review``.

Locks follow the order of :mod:`camcensus.db.tasks` (volunteer, panorama, assignments).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camcensus.db._assign import (
    RETRIES,
    add_error,
    expire_stale,
    is_postgres,
    issue_task,
    lock_volunteer,
    new_id,
    open_assignment,
    project_named,
    utc_now,
)
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.models import (
    VALIDATION_ANSWERS,
    Assignment,
    Panorama,
    Project,
    Review,
    Submission,
    Tag,
    Validation,
    Volunteer,
)

__all__ = ["next_review", "next_validation", "queue_review", "validate"]


def _complete(k: Any) -> Any:
    """The panorama holds k counted answers and is not gold."""
    return (Panorama.n_done >= k) & Panorama.gold.is_(False)


def _not_given_to(volunteer_id: int) -> Any:
    """``NOT EXISTS`` an assignment of this volunteer on the panorama (any kind or status)."""
    return ~exists().where(
        Assignment.panorama_id == Panorama.panorama_id, Assignment.volunteer_id == volunteer_id
    )


def next_validation(
    session: Session, *, project: str, volunteer_id: int, now: datetime | None = None
) -> Tag | None:
    """Return a standing tag of another volunteer that this volunteer has not validated.

    Tags come from counted volunteer submissions (no problem report, not gold) on complete
    panoramas (``n_done >= k``) that were never given to this volunteer (so never their own
    tags); the starting point in the random tag-id order is drawn afresh each call, so
    validations spread over the tags instead of piling on the first ones. None when nothing
    is left.

    Raises
    ------
    NotFound
        No such project or volunteer.
    """
    utc_now(now)
    proj = project_named(session, project)
    public_id = session.scalar(
        select(Volunteer.public_id).where(Volunteer.volunteer_id == volunteer_id)
    )
    if public_id is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )
    base = (
        select(Tag)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .where(
            Panorama.project_id == proj.project_id,
            _complete(proj.k),
            _not_given_to(volunteer_id),
            Submission.problem.is_(None),
            Tag.current.is_(True),
            Tag.deleted.is_(False),
            Tag.machine.is_(False),
            Submission.kind == "volunteer",
            Submission.gold.is_(False),
            Submission.decoder_id != public_id,
            ~exists().where(
                Validation.tag_id == Tag.tag_id, Validation.volunteer_id == volunteer_id
            ),
        )
    )
    start = secrets.token_urlsafe(12)
    for condition in (Tag.tag_id >= start, Tag.tag_id < start):
        tag = session.scalars(base.where(condition).order_by(Tag.tag_id).limit(1)).first()
        if tag is not None:
            return tag
    return None


def validate(
    session: Session,
    *,
    tag_id: str,
    volunteer_id: int,
    answer: str,
    now: datetime | None = None,
) -> Validation:
    """Record a volunteer's ``agree`` / ``disagree`` / ``unsure`` on another volunteer's tag.

    Sending the same answer again returns the stored validation.

    Raises
    ------
    Invalid
        An answer that is not one of the three.
    NotFound
        No such tag or volunteer.
    Forbidden
        The tag is the volunteer's own, or on a panorama the volunteer was given as a task.
    Conflict
        The tag's panorama is not complete yet (or is gold), or the volunteer already gave
        a different answer on this tag.
    """
    now = utc_now(now)
    if answer not in VALIDATION_ANSWERS:
        raise Invalid(
            "The validation answer is not one of the choices.",
            errors=[
                {
                    "field": "answer",
                    "message": f"found {answer!r}; expected one of {VALIDATION_ANSWERS}",
                }
            ],
        )
    row = session.execute(
        select(Tag.tag_id, Submission.decoder_id, Submission.panorama_id)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .where(Tag.tag_id == tag_id)
    ).one_or_none()
    if row is None:
        raise NotFound(
            "No tag has this id.",
            errors=[{"field": "tag_id", "message": "take a new validation task"}],
        )
    # One answer of a volunteer at a time: a double click returns the stored row.
    lock_volunteer(session, volunteer_id, postgres=is_postgres(session))
    public_id = session.scalar(
        select(Volunteer.public_id).where(Volunteer.volunteer_id == volunteer_id)
    )
    if row.decoder_id == public_id:
        raise Forbidden(
            "Volunteers validate other volunteers' tags, not their own.",
            errors=[{"field": "tag_id", "message": "this tag is yours"}],
        )
    _check_validatable(session, row.panorama_id, volunteer_id)
    existing = session.scalars(
        select(Validation).where(
            Validation.tag_id == tag_id, Validation.volunteer_id == volunteer_id
        )
    ).one_or_none()
    if existing is not None:
        if existing.answer == answer:
            return existing
        raise Conflict(
            "You already validated this tag with another answer.",
            errors=[{"field": "answer", "message": f"your answer was {existing.answer!r}"}],
        )
    validation = Validation(
        validation_id=new_id(),
        tag_id=tag_id,
        volunteer_id=volunteer_id,
        answer=answer,
        created_at=now,
    )
    session.add(validation)
    session.flush()
    return validation


def _check_validatable(session: Session, panorama_id: str, volunteer_id: int) -> None:
    """Refuse a tag on a panorama that is not complete, or that the volunteer was given."""
    given = session.scalar(
        select(Assignment.assignment_id).where(
            Assignment.panorama_id == panorama_id, Assignment.volunteer_id == volunteer_id
        )
    )
    if given is not None:
        raise Forbidden(
            "Volunteers validate tags on panoramas they were not given as a task.",
            errors=[{"field": "tag_id", "message": "you were given this tag's panorama"}],
        )
    complete = session.scalar(
        select(Panorama.panorama_id)
        .join(Project, Project.project_id == Panorama.project_id)
        .where(Panorama.panorama_id == panorama_id, _complete(Project.k))
    )
    if complete is None:
        raise Conflict(
            "This tag's panorama does not have its k answers yet (or is gold); validations "
            "wait until it is complete, so they cannot sway its taggers.",
            errors=[{"field": "tag_id", "message": "take a new validation task"}],
        )


def queue_review(
    session: Session,
    *,
    project: str,
    panorama_ids: Iterable[str],
    inclusion_prob: float | Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> list[Review]:
    """Put panoramas in the project's expert review queue; return their open reviews.

    Idempotent: a panorama with an open review already is not queued twice, and its open
    review is returned (in the order of ``panorama_ids``, duplicates once). A panorama whose
    review is done may be queued again. ``inclusion_prob`` (one value,
    or one per panorama id) is the sampling probability the quality statistics weight by.

    Raises
    ------
    NotFound
        No such project, or panoramas not in it (all listed).
    Invalid
        An inclusion probability outside (0, 1].
    """
    now = utc_now(now)
    proj = project_named(session, project)
    ids = list(dict.fromkeys(str(p) for p in panorama_ids))
    known = (
        set(
            session.scalars(
                select(Panorama.panorama_id).where(
                    Panorama.project_id == proj.project_id, Panorama.panorama_id.in_(ids)
                )
            ).all()
        )
        if ids
        else set()
    )
    missing = [p for p in ids if p not in known]
    if missing:
        raise NotFound(
            f"{len(missing)} panorama id(s) are not in project {project!r}.",
            errors=[{"field": "panorama_ids", "message": f"unknown: {p!r}"} for p in missing[:50]],
        )
    probs: dict[str, float | None] = {}
    errors: list[dict[str, object]] = []
    for p in ids:
        value = inclusion_prob.get(p) if isinstance(inclusion_prob, Mapping) else inclusion_prob
        if value is not None and not (math.isfinite(float(value)) and 0 < float(value) <= 1):
            add_error(
                errors, f"inclusion_prob[{p}]", f"found {value!r}; expected a value in (0, 1]"
            )
        probs[p] = None if value is None else float(value)
    if errors:
        raise Invalid("Inclusion probabilities must lie in (0, 1].", errors=errors)
    postgres = is_postgres(session)
    for _ in range(RETRIES):
        queued = _open_reviews(session, proj.project_id, ids)
        fresh = [
            Review(
                review_id=new_id(),
                project_id=proj.project_id,
                panorama_id=p,
                inclusion_prob=probs[p],
                status="open",
                created_at=now,
            )
            for p in ids
            if p not in queued
        ]
        if not fresh:
            return [queued[p] for p in ids]
        # Another admin may queue the same panorama at once: the unique index on open reviews
        # refuses the second insert (on PostgreSQL after the first commits); read theirs.
        savepoint = session.begin_nested() if postgres else None
        try:
            session.add_all(fresh)
            session.flush()
        except IntegrityError:
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        queued.update((r.panorama_id, r) for r in fresh)
        return [queued[p] for p in ids]
    raise Conflict(
        "Too many admins queued these panoramas at once; try again.",
        errors=[{"field": "panorama_ids", "message": "retry in a second"}],
    )


def _open_reviews(session: Session, project_id: int, ids: list[str]) -> dict[str, Review]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Review).where(
            Review.project_id == project_id,
            Review.status == "open",
            Review.panorama_id.in_(ids),
        )
    ).all()
    return {r.panorama_id: r for r in rows}


def next_review(
    session: Session, *, project: str, volunteer_id: int, now: datetime | None = None
) -> Assignment | None:
    """Give an expert the next open review as an assignment of kind ``review``.

    The answer is submitted with :func:`submit` and stored as a submission of kind ``expert``;
    the review is then ``done``. An expert never reviews a panorama they tagged, and an open
    review is given to one expert at a time. None when nothing is left.

    Raises
    ------
    NotFound
        No such project or volunteer.
    Forbidden
        The volunteer is not an expert or admin.
    """
    now = utc_now(now)
    proj = project_named(session, project)
    role = session.scalar(select(Volunteer.role).where(Volunteer.volunteer_id == volunteer_id))
    if role is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )
    if role not in ("expert", "admin"):
        raise Forbidden(
            "Only experts review panoramas.",
            errors=[{"field": "role", "message": "ask an admin for an invitation"}],
        )
    postgres = is_postgres(session)
    lock_volunteer(session, volunteer_id, postgres=postgres)
    expire_stale(session, proj.project_id, now, postgres=postgres)
    running = open_assignment(session, proj.project_id, volunteer_id, ("review",), now)
    if running is not None:
        return running
    busy = exists().where(
        Assignment.panorama_id == Review.panorama_id,
        Assignment.kind == "review",
        Assignment.status == "open",
    )
    seen = exists().where(
        Assignment.panorama_id == Review.panorama_id, Assignment.volunteer_id == volunteer_id
    )
    for _ in range(RETRIES):
        query = (
            select(Review.panorama_id)
            .where(Review.project_id == proj.project_id, Review.status == "open", ~busy, ~seen)
            .order_by(Review.created_at, Review.review_id)
            .limit(1)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Review)
        panorama_id = session.scalar(query)
        if panorama_id is None:
            return None
        savepoint = session.begin_nested() if postgres else None
        try:
            assignment = issue_task(
                session, proj, str(panorama_id), volunteer_id, "review", None, now
            )
        except IntegrityError:
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        return assignment
    return None
