"""Validation tasks and the expert review queue.

- :func:`next_validation` shows a volunteer another volunteer's standing tag, only on a
  **complete** panorama (``n_done >= coalesce(k_target, k)``: the adaptive rule's target, else
  the project's k; not gold) and never on a panorama the volunteer was given as a task: a
  validator who has seen someone's answer on a panorama can then never be one of its taggers
  (:func:`camcensus.db.tasks.next_task` also refuses panoramas whose tags the volunteer
  validated). :func:`validate` refuses the tags :func:`next_validation` would not show.
- :func:`queue_review` (a list of panoramas) and :func:`queue_plan` (a review plan: panoramas
  with their inclusion probabilities, as :func:`camcensus.quality.design.plan_review` returns)
  put panoramas in the expert queue, at most one unfinished review per panorama (a partial
  unique index, so two admins at once cannot queue it twice).
- The review as Amnesty did it (methodology 1.4.2): :func:`next_review` hands each review to
  ``experts_needed`` (3) **different** experts (role ``expert`` or ``admin``), one
  assignment of kind ``review`` each, never to someone who tagged, validated, or was given the
  panorama as any task. Each answer is recorded (:func:`record_review_answer`) as the counts
  per category of the expert's standing tags (the semantics of ``counts.csv``). When the
  experts agree on every category their answer is the reference and the review is ``done``;
  otherwise it is ``awaiting_meta`` until a meta-expert (an admin who is none of the experts)
  sees their answers and gives the reference where they disagree (:func:`resolve_review`).
  Status: ``open`` -> (``awaiting_meta`` ->) ``done``.
- :func:`volunteer_skill`: per-volunteer detection and false tags from their gold tasks.

Locks follow the order of :mod:`camcensus.db.tasks` (volunteer, panorama, assignments).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select
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
    REVIEW_ANSWER_COUNTS,
    VALIDATION_ANSWERS,
    Assignment,
    Panorama,
    Project,
    Review,
    ReviewAnswer,
    Submission,
    Tag,
    Validation,
    Volunteer,
)
from camcensus.db.progress import answers_needed

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GOLD_TOLERANCE_DEG",
    "REVIEW_CATEGORIES",
    "REVIEW_EXPERTS",
    "add_verdict",
    "check_verdict_answer",
    "counts_of_tags",
    "match_gold",
    "next_review",
    "next_validation",
    "queue_plan",
    "queue_review",
    "ray_distance_deg",
    "record_review_answer",
    "resolve_review",
    "review_progress",
    "reviews_awaiting_meta",
    "stored_verdict",
    "sync_reviews",
    "validate",
    "volunteer_skill",
]

#: Independent expert answers per review (Amnesty's design: 3 experts and a meta-expert).
REVIEW_EXPERTS = 3
#: The reviewed categories: the count columns of counts.csv.
REVIEW_CATEGORIES: tuple[str, ...] = REVIEW_ANSWER_COUNTS
#: A tag within this angle of a gold ray counts as found (as the gold feedback of tasks.py).
GOLD_TOLERANCE_DEG = 5.0
_UNFINISHED = ("open", "awaiting_meta")


def _complete(k: Any) -> Any:
    """The panorama holds the counted answers it needs (``coalesce(k_target, k)``), not gold."""
    return (Panorama.n_done >= answers_needed(k)) & Panorama.gold.is_(False)


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
    panoramas (``n_done >= coalesce(k_target, k)``) that were never given to this volunteer
    (so never their own tags); the starting point in the random tag-id order is drawn afresh
    each call, so validations spread over the tags instead of piling on the first ones. None
    when nothing is left.

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
        No such tag or volunteer, or a machine tag (the detector's: judged in verify tasks).
    Forbidden
        The tag is the volunteer's own, or on a panorama the volunteer was given as a task.
    Conflict
        The tag's panorama is not complete yet (or is gold), or the volunteer already gave
        a different answer on this tag.
    """
    now = utc_now(now)
    check_verdict_answer(answer, "The validation answer")
    row = session.execute(
        select(Tag.tag_id, Tag.machine, Submission.decoder_id, Submission.panorama_id)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .where(Tag.tag_id == tag_id)
    ).one_or_none()
    if row is None:
        raise NotFound(
            "No tag has this id.",
            errors=[{"field": "tag_id", "message": "take a new validation task"}],
        )
    if row.machine:
        # The detector's tags are judged in verify tasks (margin rule and cap: db.verify).
        raise NotFound(
            "This tag is the detector's: machine tags are judged in verify tasks.",
            errors=[{"field": "tag_id", "message": f"use POST /api/verifications/{tag_id}"}],
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
    existing = stored_verdict(
        session,
        tag_id=tag_id,
        volunteer_id=volunteer_id,
        answer=answer,
        conflict="You already validated this tag with another answer.",
    )
    if existing is not None:
        return existing
    return add_verdict(session, tag_id=tag_id, volunteer_id=volunteer_id, answer=answer, now=now)


def check_verdict_answer(answer: str, what: str) -> None:
    """Refuse an answer that is not ``agree`` / ``disagree`` / ``unsure`` (``what``: the
    message's subject, e.g. "The validation answer")."""
    if answer not in VALIDATION_ANSWERS:
        raise Invalid(
            f"{what} is not one of the choices.",
            errors=[
                {
                    "field": "answer",
                    "message": f"found {answer!r}; expected one of {VALIDATION_ANSWERS}",
                }
            ],
        )


def stored_verdict(
    session: Session, *, tag_id: str, volunteer_id: int, answer: str, conflict: str
) -> Validation | None:
    """The volunteer's stored verdict on the tag when it is ``answer`` (a double click), None
    when there is none; a different stored answer raises :class:`Conflict` (``conflict``: its
    message). Call it with the volunteer locked."""
    existing = session.scalars(
        select(Validation).where(
            Validation.tag_id == tag_id, Validation.volunteer_id == volunteer_id
        )
    ).one_or_none()
    if existing is None or existing.answer == answer:
        return existing
    raise Conflict(
        conflict,
        errors=[{"field": "answer", "message": f"your answer was {existing.answer!r}"}],
    )


def add_verdict(
    session: Session, *, tag_id: str, volunteer_id: int, answer: str, now: datetime
) -> Validation:
    """Store a verdict (a ``validations`` row) and flush it."""
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
    strata: Mapping[str, str] | None = None,
    experts_needed: int = 1,
    now: datetime | None = None,
) -> list[Review]:
    """Put panoramas in the project's expert review queue; return their unfinished reviews.

    Idempotent: a panorama with an unfinished (``open`` or ``awaiting_meta``) review already
    is not queued twice, and that review is returned (in the order of ``panorama_ids``,
    duplicates once). A panorama whose review is done may be queued again. ``inclusion_prob``
    (one value, or one per panorama id) is the sampling probability the quality statistics
    weight by; ``strata`` the plan's stratum of each panorama; ``experts_needed`` how many
    independent expert answers each new review takes (1 here, as before the three-expert
    review; :func:`queue_plan` queues a quality sample with :data:`REVIEW_EXPERTS`).

    Raises
    ------
    NotFound
        No such project, or panoramas not in it (all listed).
    Invalid
        An inclusion probability outside (0, 1], or ``experts_needed`` below 1.
    """
    now = utc_now(now)
    proj = project_named(session, project)
    if not 1 <= int(experts_needed) <= 20:
        raise Invalid(
            "A review needs between 1 and 20 experts.",
            errors=[{"field": "experts_needed", "message": f"found {experts_needed!r}"}],
        )
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
                stratum=None if strata is None or strata.get(p) is None else str(strata[p]),
                experts_needed=int(experts_needed),
                status="open",
                created_at=now,
            )
            for p in ids
            if p not in queued
        ]
        if not fresh:
            return [queued[p] for p in ids]
        # Another admin may queue the same panorama at once: the unique index on unfinished
        # reviews refuses the second insert (on PostgreSQL after the first commits); read theirs.
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


def queue_plan(
    session: Session,
    *,
    project: str,
    plan: pd.DataFrame,
    experts_needed: int = REVIEW_EXPERTS,
    now: datetime | None = None,
) -> list[Review]:
    """Queue a review plan: each of its panoramas gets ``experts_needed`` expert answers.

    Parameters
    ----------
    session
        An open session; the caller commits.
    project
        The project's name.
    plan
        One row per panorama to review: ``PanoramaId``, ``inclusion_probability`` (in
        (0, 1]) and optionally ``stratum`` (other columns, e.g. ``weight``, are ignored), as
        :func:`camcensus.quality.design.plan_review` returns.
    experts_needed
        Independent expert answers per review (3, as Amnesty's review).
    now
        The time (default: now, UTC).

    Returns
    -------
    list of Review
        The unfinished review of each planned panorama, in the plan's order (a panorama
        already waiting for review keeps its review and its inclusion probability).

    Raises
    ------
    Invalid
        A missing column, an empty or repeated ``PanoramaId``, or an inclusion probability
        outside (0, 1] (every bad row named, counted from 1 after the header).
    NotFound
        No such project, or planned panoramas not in it.
    """
    errors: list[dict[str, object]] = []
    for column in ("PanoramaId", "inclusion_probability"):
        if column not in plan.columns:
            add_error(errors, column, f"no {column!r} column; the plan has {list(plan.columns)}")
    if errors:
        raise Invalid("The review plan lacks a column it needs.", errors=errors)
    ids: list[str] = []
    probs: dict[str, float] = {}
    strata: dict[str, str] = {}
    has_stratum = "stratum" in plan.columns
    for row, (pid, prob) in enumerate(
        zip(plan["PanoramaId"], plan["inclusion_probability"], strict=True), start=1
    ):
        name = "" if pid is None or (isinstance(pid, float) and math.isnan(pid)) else str(pid)
        if not name.strip():
            add_error(errors, f"PanoramaId[row {row}]", "empty; give the panorama's id")
            continue
        if name in probs:
            add_error(errors, f"PanoramaId[row {row}]", f"{name!r} is planned twice")
            continue
        try:
            value = float(prob)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= 1):
            add_error(
                errors,
                f"inclusion_probability[row {row}]",
                f"found {prob!r} for {name!r}; expected a number in (0, 1]",
            )
            continue
        ids.append(name)
        probs[name] = value
        if has_stratum:
            stratum = plan["stratum"].iloc[row - 1]
            if stratum is not None and not (isinstance(stratum, float) and math.isnan(stratum)):
                strata[name] = str(stratum)
    if errors:
        raise Invalid(f"The review plan has {len(errors)} bad row(s).", errors=errors[:200])
    return queue_review(
        session,
        project=project,
        panorama_ids=ids,
        inclusion_prob=probs,
        strata=strata,
        experts_needed=experts_needed,
        now=now,
    )


def _open_reviews(session: Session, project_id: int, ids: list[str]) -> dict[str, Review]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Review).where(
            Review.project_id == project_id,
            Review.status.in_(_UNFINISHED),
            Review.panorama_id.in_(ids),
        )
    ).all()
    return {r.panorama_id: r for r in rows}


# --------------------------------------------------------------------------- expert answers


def counts_of_tags(tags: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Count ``(attachment, camera_type)`` pairs per category, as ``counts.csv`` does.

    ``n_cameras`` counts every tag, ``attached_*`` by attachment, and ``type_*`` only the
    cameras on street furniture (Amnesty typed only those).
    """
    out = dict.fromkeys(REVIEW_CATEGORIES, 0)
    for attachment, camera_type in tags:
        out["n_cameras"] += 1
        out[f"attached_{attachment}"] += 1
        if attachment == "street":
            out[f"type_{camera_type}"] += 1
    return out


def _standing_counts(session: Session, submission_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Tag.attachment, Tag.camera_type).where(
            Tag.submission_id == submission_id, Tag.current.is_(True), Tag.deleted.is_(False)
        )
    ).all()
    return counts_of_tags((str(a), str(c)) for a, c in rows)


def _answers(session: Session, review_id: str) -> tuple[list[ReviewAnswer], ReviewAnswer | None]:
    """The review's expert answers (in the order given) and its meta answer."""
    rows = session.scalars(
        select(ReviewAnswer)
        .where(ReviewAnswer.review_id == review_id)
        .order_by(ReviewAnswer.created_at, ReviewAnswer.answer_id)
    ).all()
    experts = [r for r in rows if r.role == "expert"]
    meta = next((r for r in rows if r.role == "meta"), None)
    return experts, meta


def _disagreements(experts: Sequence[ReviewAnswer]) -> list[str]:
    return [c for c in REVIEW_CATEGORIES if len({getattr(a, c) for a in experts}) > 1]


def _settle(session: Session, review: Review, now: datetime) -> None:
    """Set the review's status from its answers: done when the experts agree on every
    category or a meta-expert decided; awaiting_meta when all experts answered and disagree."""
    experts, meta = _answers(session, review.review_id)
    if meta is not None:
        status, decided = "done", review.decided_at or meta.created_at
    elif len(experts) >= review.experts_needed:
        if _disagreements(experts[: review.experts_needed]):
            status, decided = "awaiting_meta", None
        else:
            status, decided = "done", review.decided_at or now
    else:
        status, decided = "open", None
    review.status = status
    review.decided_at = decided
    session.flush()


def _lock_review(session: Session, review_id: str) -> Review | None:
    query = select(Review).where(Review.review_id == review_id)
    if is_postgres(session):
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def record_review_answer(
    session: Session, *, assignment_id: str, submission_id: str, now: datetime | None = None
) -> ReviewAnswer | None:
    """Record an expert's submission to a ``review`` task as one of the review's answers.

    The hook :func:`camcensus.db.tasks.submit` calls after storing the submission of a
    review task (and :func:`sync_reviews` for answers stored without it). The answer holds
    the counts per category of the submission's standing tags; the review then becomes
    ``done`` (its experts agree on every category) or ``awaiting_meta`` once its
    ``experts_needed`` answers are in. Idempotent.

    Returns
    -------
    ReviewAnswer or None
        The answer; None when the submission reports a problem (no answer: the review waits
        for another expert), or the review already had its answers (a late answer to an
        expired task is stored as a submission but not counted).
    """
    now = utc_now(now)
    row = session.execute(
        select(
            Assignment.project_id,
            Assignment.panorama_id,
            Assignment.volunteer_id,
            Assignment.kind,
            Assignment.issued_at,
            Submission.problem,
        )
        .join(Submission, Submission.assignment_id == Assignment.assignment_id)
        .where(
            Assignment.assignment_id == assignment_id,
            Submission.submission_id == submission_id,
        )
    ).one_or_none()
    if row is None or row.kind != "review":
        raise NotFound(
            "No review task has this id and submission.",
            errors=[{"field": "task_id", "message": "take a new review"}],
        )
    existing = session.scalars(
        select(ReviewAnswer).where(ReviewAnswer.submission_id == submission_id)
    ).one_or_none()
    if existing is not None:
        return existing
    if row.problem is not None:
        return None
    review_id = session.scalar(
        select(Review.review_id)
        .where(
            Review.project_id == row.project_id,
            Review.panorama_id == row.panorama_id,
            Review.created_at <= row.issued_at,
        )
        .order_by(Review.created_at.desc(), Review.review_id.desc())
        .limit(1)
    )
    review = _lock_review(session, str(review_id)) if review_id is not None else None
    if review is None:
        return None
    experts, meta = _answers(session, review.review_id)
    if meta is not None or len(experts) >= review.experts_needed:
        return None
    if any(a.volunteer_id == row.volunteer_id for a in experts):
        return None
    answer = ReviewAnswer(
        answer_id=new_id(),
        review_id=review.review_id,
        volunteer_id=int(row.volunteer_id),
        role="expert",
        submission_id=submission_id,
        created_at=now,
        **_standing_counts(session, submission_id),
    )
    session.add(answer)
    session.flush()
    _settle(session, review, now)
    return answer


def sync_reviews(session: Session, *, project: str, now: datetime | None = None) -> int:
    """Record every expert answer to a review task that has no review answer yet.

    Also puts back in line a review that a single-expert submit path marked ``done`` before
    its experts had all answered. Returns the number of answers recorded.
    """
    now = utc_now(now)
    proj = project_named(session, project)
    pending = session.execute(
        select(Assignment.assignment_id, Submission.submission_id)
        .join(Submission, Submission.assignment_id == Assignment.assignment_id)
        .where(
            Assignment.project_id == proj.project_id,
            Assignment.kind == "review",
            Submission.problem.is_(None),
            ~exists().where(ReviewAnswer.submission_id == Submission.submission_id),
        )
        .order_by(Submission.submitted_at, Submission.submission_id)
    ).all()
    recorded = 0
    for assignment_id, submission_id in pending:
        answer = record_review_answer(
            session, assignment_id=str(assignment_id), submission_id=str(submission_id), now=now
        )
        recorded += answer is not None
    stale = session.scalars(
        select(Review).where(
            Review.project_id == proj.project_id,
            Review.status == "done",
            Review.decided_at.is_(None),
        )
    ).all()
    for review in stale:
        _settle(session, review, now)
    return recorded


def _require_role(session: Session, volunteer_id: int, roles: tuple[str, ...]) -> Volunteer:
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )
    if volunteer.role not in roles:
        who = "experts" if "expert" in roles else "admins"
        raise Forbidden(
            f"Only {who} do this.",
            errors=[{"field": "role", "message": "ask an admin for an invitation"}],
        )
    return volunteer


def next_review(
    session: Session, *, project: str, volunteer_id: int, now: datetime | None = None
) -> Assignment | None:
    """Give an expert the next open review as an assignment of kind ``review``.

    The answer is submitted with :func:`camcensus.db.tasks.submit` (a submission of kind
    ``expert``) and recorded by :func:`record_review_answer`. Each review goes to
    ``experts_needed`` different experts (at most that many answers and live tasks at once);
    an expert never reviews a panorama they were given as any task (tag, gold, review),
    validated a tag on, or submitted on. Reviews that already have answers come first, so
    reviews finish. None when nothing is left for this expert.

    Raises
    ------
    NotFound
        No such project or volunteer.
    Forbidden
        The volunteer is not an expert or admin.
    """
    now = utc_now(now)
    proj = project_named(session, project)
    expert = _require_role(session, volunteer_id, ("expert", "admin"))
    postgres = is_postgres(session)
    lock_volunteer(session, volunteer_id, postgres=postgres)
    expire_stale(session, proj.project_id, now, postgres=postgres)
    sync_reviews(session, project=project, now=now)
    running = open_assignment(session, proj.project_id, volunteer_id, ("review",), now)
    if running is not None:
        return running
    answered = (
        select(func.count())
        .select_from(ReviewAnswer)
        .where(ReviewAnswer.review_id == Review.review_id, ReviewAnswer.role == "expert")
        .scalar_subquery()
    )
    live = (
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.panorama_id == Review.panorama_id,
            Assignment.kind == "review",
            Assignment.status == "open",
            Assignment.issued_at >= Review.created_at,
        )
        .scalar_subquery()
    )
    seen = exists().where(
        Assignment.panorama_id == Review.panorama_id, Assignment.volunteer_id == volunteer_id
    )
    validated = exists().where(
        Validation.volunteer_id == volunteer_id,
        Tag.tag_id == Validation.tag_id,
        Submission.submission_id == Tag.submission_id,
        Submission.panorama_id == Review.panorama_id,
    )
    authored = exists().where(
        Submission.panorama_id == Review.panorama_id, Submission.decoder_id == expert.public_id
    )
    skipped: set[str] = set()
    for _ in range(RETRIES):
        query = (
            select(Review.review_id, Review.panorama_id)
            .where(
                Review.project_id == proj.project_id,
                Review.status == "open",
                answered + live < Review.experts_needed,
                ~seen,
                ~validated,
                ~authored,
            )
            .order_by(answered.desc(), Review.created_at, Review.review_id)
            .limit(1)
        )
        if skipped:
            query = query.where(Review.review_id.not_in(skipped))
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Review)
        found = session.execute(query).first()
        if found is None:
            return None
        review_id, panorama_id = str(found.review_id), str(found.panorama_id)
        if postgres:
            # Counted again after the lock: another expert may have just taken a place.
            full = session.scalar(
                select(Review.review_id).where(
                    Review.review_id == review_id,
                    (Review.status != "open") | (answered + live >= Review.experts_needed),
                )
            )
            if full is not None:
                skipped.add(review_id)
                continue
        savepoint = session.begin_nested() if postgres else None
        try:
            assignment = issue_task(session, proj, panorama_id, volunteer_id, "review", None, now)
        except IntegrityError:
            if savepoint is None:
                raise
            savepoint.rollback()
            skipped.add(review_id)
            continue
        if savepoint is not None:
            savepoint.commit()
        return assignment
    return None


def _reference(experts: Sequence[ReviewAnswer], meta: ReviewAnswer | None) -> dict[str, int]:
    """Per category: the experts' unanimous value, else the meta-expert's."""
    out: dict[str, int] = {}
    for c in REVIEW_CATEGORIES:
        values = {getattr(a, c) for a in experts}
        if len(values) == 1:
            out[c] = int(values.pop())
        elif meta is not None:
            out[c] = int(getattr(meta, c))
    return out


def resolve_review(
    session: Session,
    *,
    review_id: str,
    volunteer_id: int,
    reference: Mapping[str, Any],
    note: str | None = None,
    now: datetime | None = None,
) -> ReviewAnswer:
    """Record the meta-expert's reference for a review whose experts disagree.

    Parameters
    ----------
    session
        An open session; the caller commits.
    review_id
        A review ``awaiting_meta``.
    volunteer_id
        The meta-expert: an admin who is none of the review's experts.
    reference
        A whole number >= 0 for each category the experts disagree on (the others keep the
        experts' unanimous value; a different value given for one of them is refused). The
        reference must add up as counts do: ``n_cameras`` = ``attached_street`` +
        ``attached_building`` + ``attached_unknown`` and ``type_dome`` + ``type_bullet`` +
        ``type_unknown`` = ``attached_street``.
    note
        The meta-expert's note (at most 500 characters).
    now
        The time (default: now, UTC).

    Returns
    -------
    ReviewAnswer
        The meta answer (role ``meta``) with the whole reference; the review is ``done``.
        Sending the same reference again returns the stored answer.

    Raises
    ------
    NotFound, Forbidden, Conflict, Invalid
        No such review; not an admin or one of its experts; the review is not awaiting a
        meta-expert; a value missing, not a whole number >= 0, or not adding up.
    """
    now = utc_now(now)
    _require_role(session, volunteer_id, ("admin",))
    review = _lock_review(session, review_id)
    if review is None:
        raise NotFound(
            "No review has this id.", errors=[{"field": "review_id", "message": "reload the page"}]
        )
    experts, meta = _answers(session, review_id)
    if any(a.volunteer_id == volunteer_id for a in experts):
        raise Forbidden(
            "The meta-expert must be none of the review's experts.",
            errors=[{"field": "review_id", "message": "you answered this review as an expert"}],
        )
    errors: list[dict[str, object]] = []
    values: dict[str, int] = {}
    disagree = _disagreements(experts)
    for c in REVIEW_CATEGORIES:
        given = reference.get(c)
        unanimous = None if c in disagree or not experts else int(getattr(experts[0], c))
        if given is None or given == "":
            if unanimous is None:
                add_error(errors, f"reference.{c}", "the experts disagree: give the count")
            else:
                values[c] = unanimous
            continue
        try:
            number = float(given)
        except (TypeError, ValueError):
            number = math.nan
        if not (math.isfinite(number) and number >= 0 and number == math.floor(number)):
            add_error(errors, f"reference.{c}", f"found {given!r}; expected a whole number >= 0")
            continue
        if unanimous is not None and int(number) != unanimous:
            add_error(
                errors,
                f"reference.{c}",
                f"found {int(number)}; the experts agree on {unanimous}, which stands",
            )
            continue
        values[c] = int(number)
    if not errors:
        parts = values["attached_street"] + values["attached_building"]
        if values["n_cameras"] != parts + values["attached_unknown"]:
            add_error(
                errors,
                "reference.n_cameras",
                f"{values['n_cameras']} cameras but the attachments add up to "
                f"{parts + values['attached_unknown']}",
            )
        types = values["type_dome"] + values["type_bullet"] + values["type_unknown"]
        if types != values["attached_street"]:
            add_error(
                errors,
                "reference.attached_street",
                f"{values['attached_street']} street cameras but the types add up to {types}",
            )
    if note is not None and len(note) > 500:
        add_error(errors, "note", f"{len(note)} characters; at most 500")
    if errors:
        raise Invalid("The reference is not complete or does not add up.", errors=errors)
    if meta is not None:
        if meta.volunteer_id == volunteer_id and all(
            getattr(meta, c) == values[c] for c in REVIEW_CATEGORIES
        ):
            return meta
        raise Conflict(
            "A meta-expert already gave this review's reference.",
            errors=[{"field": "review_id", "message": "reload the page"}],
        )
    if review.status != "awaiting_meta":
        raise Conflict(
            "This review is not waiting for a meta-expert (its experts have not all answered, "
            "or they agree).",
            errors=[{"field": "review_id", "message": f"its status is {review.status!r}"}],
        )
    answer = ReviewAnswer(
        answer_id=new_id(),
        review_id=review_id,
        volunteer_id=volunteer_id,
        role="meta",
        submission_id=None,
        note=note,
        created_at=now,
        **values,
    )
    session.add(answer)
    session.flush()
    _settle(session, review, now)
    return answer


def review_progress(session: Session, *, project: str) -> dict[str, int]:
    """Count the project's reviews by status, and the expert answers in.

    Keys: ``queued``, ``open``, ``awaiting_meta``, ``done``, ``unanimous`` (done without a
    meta-expert), ``resolved`` (done by a meta-expert), ``answers`` (expert answers in) and
    ``answers_needed`` (all reviews' ``experts_needed``).
    """
    proj = project_named(session, project)
    by_status = dict(
        session.execute(
            select(Review.status, func.count())
            .where(Review.project_id == proj.project_id)
            .group_by(Review.status)
        ).all()
    )
    needed = session.scalar(
        select(func.coalesce(func.sum(Review.experts_needed), 0)).where(
            Review.project_id == proj.project_id
        )
    )
    roles = dict(
        session.execute(
            select(ReviewAnswer.role, func.count())
            .join(Review, Review.review_id == ReviewAnswer.review_id)
            .where(Review.project_id == proj.project_id)
            .group_by(ReviewAnswer.role)
        ).all()
    )
    done = int(by_status.get("done", 0))
    resolved = int(roles.get("meta", 0))
    return {
        "queued": int(sum(by_status.values())),
        "open": int(by_status.get("open", 0)),
        "awaiting_meta": int(by_status.get("awaiting_meta", 0)),
        "done": done,
        "unanimous": done - resolved,
        "resolved": resolved,
        "answers": int(roles.get("expert", 0)),
        "answers_needed": int(needed or 0),
    }


def reviews_awaiting_meta(session: Session, *, project: str) -> list[dict[str, Any]]:
    """The reviews waiting for a meta-expert, with each expert's answer.

    One dict per review: ``review_id``, ``panorama_id``, ``stratum``, ``experts`` (a list
    of dicts: ``pseudonym`` and the counts per category, in the order answered),
    ``disagree`` (the categories they disagree on) and ``agreed`` (category -> the
    unanimous value).
    """
    proj = project_named(session, project)
    reviews = session.scalars(
        select(Review)
        .where(Review.project_id == proj.project_id, Review.status == "awaiting_meta")
        .order_by(Review.created_at, Review.review_id)
    ).all()
    out: list[dict[str, Any]] = []
    for review in reviews:
        experts, _ = _answers(session, review.review_id)
        names = dict(
            session.execute(
                select(Volunteer.volunteer_id, Volunteer.pseudonym).where(
                    Volunteer.volunteer_id.in_([a.volunteer_id for a in experts])
                )
            ).all()
        )
        disagree = _disagreements(experts)
        out.append(
            {
                "review_id": review.review_id,
                "panorama_id": review.panorama_id,
                "stratum": review.stratum,
                "experts": [
                    {"pseudonym": names.get(a.volunteer_id, "?")}
                    | {c: int(getattr(a, c)) for c in REVIEW_CATEGORIES}
                    for a in experts
                ],
                "disagree": disagree,
                "agreed": {
                    c: int(getattr(experts[0], c)) for c in REVIEW_CATEGORIES if c not in disagree
                },
            }
        )
    return out


# --------------------------------------------------------------------------- skill from gold


def ray_distance_deg(h1: float, p1: float, h2: float, p2: float) -> float:
    """Return the angle in degrees between two rays given as (heading, pitch) in degrees."""
    a1, b1, a2, b2 = map(math.radians, (h1, p1, h2, p2))
    c = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def match_gold(
    gold: Sequence[tuple[float, float]], rays: Sequence[tuple[float, float]]
) -> tuple[set[int], set[int]]:
    """Pair a volunteer's rays with the gold rays, closest pairs first, within
    :data:`GOLD_TOLERANCE_DEG`; return the indices of the matched gold rays and of the matched
    volunteer rays (the gold feedback volunteers see and the skill admins see)."""
    pairs = sorted(
        (ray_distance_deg(g[0], g[1], r[0], r[1]), gi, ri)
        for gi, g in enumerate(gold)
        for ri, r in enumerate(rays)
    )
    used_g: set[int] = set()
    used_r: set[int] = set()
    for d, gi, ri in pairs:
        if d > GOLD_TOLERANCE_DEG:
            break
        if gi not in used_g and ri not in used_r:
            used_g.add(gi)
            used_r.add(ri)
    return used_g, used_r


def _match(
    gold: Sequence[tuple[float, float]], rays: Sequence[tuple[float, float]]
) -> tuple[int, int, int]:
    """(found, missed, extra) of :func:`match_gold`."""
    used_g, used_r = match_gold(gold, rays)
    return len(used_g), len(gold) - len(used_g), len(rays) - len(used_r)


def volunteer_skill(session: Session, *, project: str) -> pd.DataFrame:
    """Per-volunteer skill from their gold tasks: what they found, missed and added.

    Each gold submission (without a problem report) is matched to its panorama's known
    answer as the volunteer's feedback is (closest rays first, within
    :data:`GOLD_TOLERANCE_DEG`).

    Returns
    -------
    pandas.DataFrame
        One row per volunteer with a gold task, sorted by pseudonym: ``pseudonym``,
        ``decoder_id`` (the export's random id), ``gold_tasks``, ``found``, ``missed``,
        ``extra``, ``detection_rate`` (found / (found + missed); NaN when their gold
        panoramas held no camera) and ``false_per_panorama`` (extra / gold_tasks).
    """
    import json

    import pandas as pd

    proj = project_named(session, project)
    subs = session.execute(
        select(
            Submission.submission_id,
            Submission.decoder_id,
            Panorama.gold_answer,
            Volunteer.pseudonym,
        )
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .join(Volunteer, Volunteer.public_id == Submission.decoder_id)
        .where(
            Panorama.project_id == proj.project_id,
            Submission.gold.is_(True),
            Submission.problem.is_(None),
        )
    ).all()
    rays: dict[str, list[tuple[float, float]]] = {}
    if subs:
        for sid, h, p in session.execute(
            select(Tag.submission_id, Tag.heading_deg, Tag.pitch_deg).where(
                Tag.submission_id.in_([s.submission_id for s in subs]),
                Tag.current.is_(True),
                Tag.deleted.is_(False),
            )
        ).all():
            rays.setdefault(str(sid), []).append((float(h), float(p)))
    totals: dict[tuple[str, str], list[int]] = {}
    for s in subs:
        truth = json.loads(s.gold_answer) if s.gold_answer else []
        gold = [(float(t["heading_deg"]), float(t["pitch_deg"])) for t in truth]
        found, missed, extra = _match(gold, rays.get(str(s.submission_id), []))
        row = totals.setdefault((str(s.pseudonym), str(s.decoder_id)), [0, 0, 0, 0])
        row[0] += 1
        row[1] += found
        row[2] += missed
        row[3] += extra
    columns = ["pseudonym", "decoder_id", "gold_tasks", "found", "missed", "extra"]
    frame = pd.DataFrame(
        [[name, did, *values] for (name, did), values in sorted(totals.items())], columns=columns
    )
    for c in columns[2:]:
        frame[c] = frame[c].astype("int64")
    cameras = frame["found"] + frame["missed"]
    frame["detection_rate"] = (frame["found"] / cameras.where(cameras > 0)).astype("float64")
    frame["false_per_panorama"] = (frame["extra"] / frame["gold_tasks"]).astype("float64")
    return frame
