"""Tasks: who tags which panorama next and storing the answers.

What the platform guarantees (docs/platform.md, issue 7):

- Each non-gold panorama gets exactly ``k`` counted submissions from ``k`` different
  volunteers. A ``tag`` assignment holds one of the panorama's slots ``1..k``; the partial
  unique index on ``assignments (panorama_id, slot)`` for live (``open`` or ``submitted``)
  assignments makes the database itself refuse an over-assignment, and ``panoramas.n_live``
  (live slots) is only ever raised by a conditional ``UPDATE ... WHERE n_live < k``.
- A problem report (no image, wrong place, indoor, other) completes the volunteer's task but
  fills none of the k counted slots: its assignment becomes ``reported`` (no slot), its slot
  goes to another volunteer and ``panoramas.n_problem`` counts it. When more than half of k
  volunteers report a problem (``2 * n_problem > k``: 2 of 3) before k counted answers exist,
  the panorama is retired as a problem panorama and given to nobody else. So a panorama takes
  at most ``k + k // 2`` tag submissions (4 for k = 3).
- Nobody sees the same panorama twice (unique ``(panorama_id, volunteer_id)``), and nobody tags
  a panorama whose tags they validated (:mod:`camcensus.db.review` shows only complete
  panoramas, so the k answers stay independent).
- A task not submitted within the project's ``task_timeout_s`` expires and its slot returns to
  the pool; a skipped task (:func:`abandon`) returns at once, and so does an open task outside
  a newly chosen area (``bbox``).
- Panoramas already in progress come first (fewest remaining slots, then a stable
  pseudo-random order), so panoramas finish instead of being spread thin, and never past k.
- Gold panoramas (known answers) give feedback and never count toward completion; a volunteer
  gets at most one gold task in any ``gold_every`` consecutive tasks; a late answer to a task
  whose panorama has since become gold is refused.
- Every tag version the client sent is a row; ``current`` marks the version that stands at
  submit time. Submitting the same task twice returns the same result.

On SQLite every writing transaction starts with ``BEGIN IMMEDIATE`` (:mod:`camcensus.db.engine`),
so assignment is serial. On PostgreSQL (READ COMMITTED) the locks follow one order, so 200
concurrent clients neither over-assign nor deadlock: :func:`next_task` locks the volunteer's
row (one task request of a volunteer at a time), then candidate panoramas with ``FOR NO KEY
UPDATE SKIP LOCKED`` (concurrent requests take different panoramas instead of queueing);
:func:`submit` and :func:`abandon` lock the task's panorama before the task; expiry skips
panoramas locked by others. Slots are read only after the panorama is locked, and an insert
that still collides is retried inside a savepoint. Each call runs a handful of indexed
statements; the caller commits.

Validation and the expert review queue live in :mod:`camcensus.db.review`; their functions are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from camcensus.db._answers import MAX_TAGS, TagIn, standing_tags, validated_tags
from camcensus.db._assign import (
    LIVE,
    RETRIES,
    ProjectInfo,
    _table,
    assignments_table,
    connection,
    expire_stale,
    is_postgres,
    issue_task_core,
    lock_panorama,
    lock_volunteer,
    new_id,
    open_assignment_id,
    panoramas_table,
    project_info,
    task_state,
    utc_now,
)
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.models import (
    Assignment,
    Panorama,
    Project,
    Submission,
    Tag,
    Validation,
    Volunteer,
)
from camcensus.db.progress import answers_needed
from camcensus.db.review import (
    GOLD_TOLERANCE_DEG,
    match_gold,
    next_review,
    next_validation,
    queue_review,
    ray_distance_deg,
    validate,
)

__all__ = [
    "ADAPTIVE_K_MAX",
    "GOLD_TOLERANCE_DEG",
    "MAX_TAGS",
    "SubmitResult",
    "TagIn",
    "abandon",
    "next_review",
    "next_task",
    "next_validation",
    "queue_review",
    "ray_distance_deg",
    "submit",
    "validate",
]

#: Most counted answers an adaptive rule may ask of one panorama (``k_max`` of
#: :func:`camcensus.quality.adaptive.adaptive_target`).
ADAPTIVE_K_MAX = 5

_A = assignments_table.c
_P = panoramas_table.c
_S = Submission.__table__.c
_T = Tag.__table__.c
_VAL = Validation.__table__.c


@dataclass(frozen=True)
class SubmitResult:
    """The stored submission's id and, for a gold task, the feedback.

    ``feedback`` has ``found``, ``missed`` and ``extra`` (counts of rays matched within
    :data:`GOLD_TOLERANCE_DEG`), ``missed_rays`` (the gold rays not found, to show where to
    look) and ``tolerance_deg``.
    """

    submission_id: str
    feedback: dict[str, Any] | None = field(default=None)


def _check_bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    message = "expected [west, south, east, north] in degrees (WGS84 lon/lat), west < east"
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise Invalid(
            "The bounding box is not four numbers.", errors=[{"field": "bbox", "message": message}]
        ) from None
    ok = all(math.isfinite(v) for v in (w, s, e, n)) and -180 <= w < e <= 180 and -90 <= s < n <= 90
    if not ok:
        raise Invalid(
            f"The bounding box [{w}, {s}, {e}, {n}] is not a lon/lat box.",
            errors=[{"field": "bbox", "message": f"found [{w}, {s}, {e}, {n}]; {message}"}],
        )
    return w, s, e, n


def _unseen(volunteer: Any) -> Any:
    """Neither an assignment of this volunteer on the panorama nor a validation of a tag on it.

    Validations only show complete panoramas (:mod:`camcensus.db.review`); refusing validated
    panoramas here too keeps the k answers independent whatever the order of events.
    ``volunteer`` is a volunteer id or a bound parameter.
    """
    assigned = exists().where(_A.panorama_id == _P.panorama_id, _A.volunteer_id == volunteer)
    validated = exists().where(
        _VAL.volunteer_id == volunteer,
        _T.tag_id == _VAL.tag_id,
        _S.submission_id == _T.submission_id,
        _S.panorama_id == _P.panorama_id,
    )
    return ~assigned & ~validated


def _open_to_tag(k: Any) -> Any:
    """Not gold and not retired as a problem panorama (more than k/2 problem reports)."""
    return _P.gold.is_(False) & (2 * _P.n_problem <= k)


def _needed() -> ColumnElement[int]:
    """Counted answers the panorama needs: its adaptive target, else the project's k."""
    return answers_needed(bindparam("k"))


def _candidate_query(*, bbox: bool, postgres: bool) -> Select[Any]:
    """The next panorama with ``n_live`` live slots (bound), most advanced first by the caller."""
    query = select(_P.panorama_id).where(
        _P.project_id == bindparam("project_id"),
        _open_to_tag(bindparam("k")),
        _P.n_live == bindparam("n_live"),
        _needed() > bindparam("n_live"),
        _unseen(bindparam("v")),
    )
    if bbox:
        query = query.where(
            _P.lon.between(bindparam("w"), bindparam("e")),
            _P.lat.between(bindparam("s"), bindparam("n")),
        )
    query = query.order_by(_P.shuffle_key, _P.panorama_id).limit(1)
    if postgres:
        query = query.with_for_update(skip_locked=True, key_share=True, of=panoramas_table)
    return query


#: The candidate queries, built once: (with a bounding box, on PostgreSQL) -> query.
_CANDIDATE = {
    (b, pg): _candidate_query(bbox=b, postgres=pg) for b in (False, True) for pg in (False, True)
}


def _box_params(bbox: tuple[float, float, float, float] | None) -> dict[str, float]:
    if bbox is None:
        return {}
    w, s, e, n = bbox
    return {"w": w, "s": s, "e": e, "n": n}


def _most_live(project: ProjectInfo) -> int:
    """The most live slots a panorama may hold under the project's rule."""
    return project.k if project.adaptive_rule == "fixed" else max(project.k, ADAPTIVE_K_MAX)


def _candidate(
    session: Session,
    project: ProjectInfo,
    volunteer_id: int,
    bbox: tuple[float, float, float, float] | None,
    *,
    postgres: bool,
) -> str | None:
    """Return the next panorama to tag: most advanced first, then the stable random order."""
    query = _CANDIDATE[(bbox is not None, postgres)]
    params: dict[str, Any] = {
        "project_id": project.project_id,
        "k": project.k,
        "v": volunteer_id,
        **_box_params(bbox),
    }
    conn = connection(session)
    for n_live in range(_most_live(project) - 1, -1, -1):
        found = conn.execute(query, {**params, "n_live": n_live}).scalar()
        if found is not None:
            return str(found)
    return None


_RECENT_KINDS = (
    select(_A.kind)
    .where(
        _A.volunteer_id == bindparam("v"),
        _A.project_id == bindparam("project_id"),
        (_A.kind == "tag") | (_A.kind == "gold"),  # no IN: its list is expanded per call
    )
    .order_by(_A.issued_at.desc())
    .limit(bindparam("window"))
)


def _gold_due(session: Session, project: ProjectInfo, volunteer_id: int) -> bool:
    """Whether the volunteer's last ``gold_every - 1`` tasks hold no gold task."""
    window = project.gold_every - 1
    if window <= 0:
        return True
    kinds = (
        connection(session)
        .execute(
            _RECENT_KINDS, {"v": volunteer_id, "project_id": project.project_id, "window": window}
        )
        .scalars()
        .all()
    )
    return len(kinds) >= window and "gold" not in kinds


_USED_SLOTS = select(_A.slot).where(
    _A.panorama_id == bindparam("p"), _A.kind == "tag", or_(*(_A.status == s for s in LIVE))
)


def _free_slot(session: Session, panorama_id: str, most: int) -> int | None:
    """The lowest slot ``1..most`` no live tag assignment of the panorama holds."""
    used = set(connection(session).execute(_USED_SLOTS, {"p": panorama_id}).scalars().all())
    free = [s for s in range(1, most + 1) if s not in used]
    return free[0] if free else None


#: Raise the live count only below the panorama's need, never on a gold or retired panorama.
_TAKE = (
    update(panoramas_table)
    .where(
        _P.panorama_id == bindparam("p"),
        _P.n_live < _needed(),
        _open_to_tag(bindparam("k")),
    )
    .values(n_live=_P.n_live + 1)
)


def _take_slot(
    session: Session, project: ProjectInfo, panorama_id: str, volunteer_id: int, now: datetime
) -> Assignment | None:
    """Raise the panorama's live count (only below its need, never on a gold or retired
    panorama) and issue a tag assignment on a free slot."""
    taken = connection(session).execute(_TAKE, {"p": panorama_id, "k": project.k})
    if getattr(taken, "rowcount", 0) != 1:
        return None
    slot = _free_slot(session, panorama_id, _most_live(project))
    if slot is None:  # n_live and the slots disagree: never issue past the need
        raise IntegrityError("no free slot", None, Exception("no free slot"))
    return issue_task_core(session, project, panorama_id, volunteer_id, "tag", slot, now)


def next_task(
    session: Session,
    *,
    project: str,
    volunteer_id: int,
    bbox: Sequence[float] | None = None,
    now: datetime | None = None,
) -> Assignment | None:
    """Give the volunteer a panorama to tag, or None when nothing is left for them.

    Parameters
    ----------
    session
        An open session; the caller commits.
    project
        The project's name.
    volunteer_id
        The volunteer asking.
    bbox
        ``(west, south, east, north)`` in WGS84 degrees: only panoramas inside. An open
        task of the volunteer outside the box is given back (as :func:`abandon`) first.
    now
        The time (default: now, UTC).

    Returns
    -------
    Assignment or None
        The volunteer's open task if one is still running (and inside ``bbox``), else a new
        ``tag`` assignment (or a ``gold`` one when due), expiring after the project's
        ``task_timeout_s``.

    Raises
    ------
    NotFound
        No such project or volunteer.
    Invalid
        A bounding box that is not a lon/lat box.
    """
    now = utc_now(now)
    box = _check_bbox(bbox)
    postgres = is_postgres(session)
    if postgres:
        proj = project_info(session, project)
        if proj.status != "open":
            return None
        lock_volunteer(session, volunteer_id, postgres=postgres)
        expire_stale(session, proj.project_id, now, postgres=postgres)
        running_id = open_assignment_id(session, proj.project_id, volunteer_id, now)
        has_gold = True
    else:  # the write lock is held: one statement reads all of it
        state = task_state(session, project, volunteer_id, now)
        proj, running_id, has_gold = state.project, state.running_id, state.has_gold
        if proj.status != "open":
            return None
        if state.stale:
            expire_stale(session, proj.project_id, now, postgres=postgres)
    running = session.get(Assignment, running_id) if running_id is not None else None
    if running is not None:
        if box is None or _inside(session, running.panorama_id, box):
            return running
        # The volunteer chose another area: the task outside it goes back to the pool.
        lock_panorama(session, running.panorama_id, postgres=postgres)
        _give_back(session, running.assignment_id, running.panorama_id)
    for _ in range(RETRIES):
        panorama_id = _candidate(session, proj, volunteer_id, box, postgres=postgres)
        if panorama_id is None:
            return None
        savepoint = session.begin_nested() if postgres else None
        try:
            assignment = _give(session, proj, panorama_id, volunteer_id, box, now, gold=has_gold)
        except IntegrityError:
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        if assignment is not None:
            return assignment
    raise Conflict(
        "Too many volunteers asked for this project's tasks at once; try again.",
        errors=[{"field": "project", "message": "retry in a second"}],
    )


def _inside(session: Session, panorama_id: str, box: tuple[float, float, float, float]) -> bool:
    w, s, e, n = box
    found = session.scalar(
        select(Panorama.panorama_id).where(
            Panorama.panorama_id == panorama_id,
            Panorama.lon.between(w, e),
            Panorama.lat.between(s, n),
        )
    )
    return found is not None


def _give_back(session: Session, assignment_id: str, panorama_id: str) -> None:
    """Mark an open task ``abandoned`` and free its slot (the panorama is locked already)."""
    kinds = session.scalars(
        update(Assignment)
        .where(Assignment.assignment_id == assignment_id, Assignment.status == "open")
        .values(status="abandoned")
        .returning(Assignment.kind)
        .execution_options(synchronize_session=False)
    ).all()
    if "tag" in kinds:
        session.execute(
            update(Panorama)
            .where(Panorama.panorama_id == panorama_id)
            .values(n_live=Panorama.n_live - 1)
            .execution_options(synchronize_session=False)
        )


_GOLD = {
    box: select(_P.panorama_id)
    .where(
        _P.project_id == bindparam("project_id"),
        _P.gold.is_(True),
        _unseen(bindparam("v")),
        *(
            (
                _P.lon.between(bindparam("w"), bindparam("e")),
                _P.lat.between(bindparam("s"), bindparam("n")),
            )
            if box
            else ()
        ),
    )
    .order_by(_P.shuffle_key, _P.panorama_id)
    .limit(1)
    for box in (False, True)
}


def _give(
    session: Session,
    project: ProjectInfo,
    panorama_id: str,
    volunteer_id: int,
    bbox: tuple[float, float, float, float] | None,
    now: datetime,
    *,
    gold: bool = True,
) -> Assignment | None:
    """Issue a gold task when due (and one is left), else a slot of ``panorama_id``
    (``gold=False``: the project has no gold panorama, nothing to check)."""
    if gold and _gold_due(session, project, volunteer_id):
        params = {"project_id": project.project_id, "v": volunteer_id, **_box_params(bbox)}
        found = connection(session).execute(_GOLD[bbox is not None], params).scalar()
        if found is not None:
            return issue_task_core(session, project, str(found), volunteer_id, "gold", None, now)
    return _take_slot(session, project, panorama_id, volunteer_id, now)


def _gold_feedback(answer_json: str | None, rays: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Match the volunteer's rays to the gold rays (closest pairs first, within tolerance)."""
    import json

    truth = json.loads(answer_json) if answer_json else []
    gold = [(float(t["heading_deg"]), float(t["pitch_deg"])) for t in truth]
    used_g, used_r = match_gold(gold, rays)
    return {
        "found": len(used_g),
        "missed": len(gold) - len(used_g),
        "extra": len(rays) - len(used_r),
        "missed_rays": [
            {"heading_deg": g[0], "pitch_deg": g[1]}
            for gi, g in enumerate(gold)
            if gi not in used_g
        ],
        "tolerance_deg": GOLD_TOLERANCE_DEG,
    }


_V = Volunteer.__table__.c
_PR = Project.__table__.c
_submissions = _table(Submission)
_tags = _table(Tag)


@dataclass(frozen=True)
class _Owned:
    """The task being answered, with its volunteer's public id and its project's rule."""

    assignment_id: str
    project_id: int
    panorama_id: str
    volunteer_id: int
    kind: str
    slot: int | None
    status: str
    submission_id: str | None
    public_id: str
    k: int
    adaptive_rule: str


_OWNED = (
    select(
        _A.assignment_id,
        _A.project_id,
        _A.panorama_id,
        _A.volunteer_id,
        _A.kind,
        _A.slot,
        _A.status,
        _A.submission_id,
        _V.public_id,
        _PR.k,
        _PR.adaptive_rule,
    )
    .join_from(assignments_table, Volunteer.__table__, _V.volunteer_id == _A.volunteer_id)
    .join(Project.__table__, _PR.project_id == _A.project_id)
    .where(_A.assignment_id == bindparam("a"))
)
_OWNED_LOCKED = _OWNED.with_for_update(of=assignments_table)


def _owned_assignment(
    session: Session, assignment_id: str, volunteer_id: int, *, postgres: bool
) -> _Owned:
    """Return the volunteer's task in one Core query (locked, its panorama first, on
    PostgreSQL)."""
    conn = connection(session)
    row = conn.execute(_OWNED, {"a": assignment_id}).one_or_none()
    if row is None:
        raise NotFound(
            "No task has this id.",
            errors=[{"field": "task_id", "message": "take a new task from the project"}],
        )
    if row.volunteer_id != volunteer_id:
        raise Forbidden(
            "This task was given to another volunteer.",
            errors=[{"field": "task_id", "message": "take your own task from the project"}],
        )
    if postgres:
        lock_panorama(session, row.panorama_id, postgres=postgres)
        row = conn.execute(_OWNED_LOCKED, {"a": assignment_id}).one()
    return _Owned(
        assignment_id=str(row.assignment_id),
        project_id=int(row.project_id),
        panorama_id=str(row.panorama_id),
        volunteer_id=int(row.volunteer_id),
        kind=str(row.kind),
        slot=None if row.slot is None else int(row.slot),
        status=str(row.status),
        submission_id=None if row.submission_id is None else str(row.submission_id),
        public_id=str(row.public_id),
        k=int(row.k),
        adaptive_rule=str(row.adaptive_rule or "fixed"),
    )


_GOLD_ANSWER = select(_P.gold_answer).where(_P.panorama_id == bindparam("p"))
_STANDING_RAYS = select(_T.heading_deg, _T.pitch_deg).where(
    _T.submission_id == bindparam("sid"), _T.current.is_(True), _T.deleted.is_(False)
)


def _result(session: Session, owned: _Owned, submission_id: str) -> SubmitResult:
    """The result of a stored submission (recomputed the same way on a retry)."""
    if owned.kind != "gold":
        return SubmitResult(submission_id=submission_id)
    conn = connection(session)
    rays = conn.execute(_STANDING_RAYS, {"sid": submission_id}).all()
    answer = conn.execute(_GOLD_ANSWER, {"p": owned.panorama_id}).scalar()
    return SubmitResult(
        submission_id=submission_id,
        feedback=_gold_feedback(answer, [(float(h), float(p)) for h, p in rays]),
    )


def _owned_orm(
    session: Session, assignment_id: str, volunteer_id: int, *, postgres: bool
) -> Assignment:
    """Return the volunteer's assignment, locked (its panorama first) on PostgreSQL."""
    row = session.execute(
        select(Assignment.panorama_id, Assignment.volunteer_id).where(
            Assignment.assignment_id == assignment_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(
            "No task has this id.",
            errors=[{"field": "task_id", "message": "take a new task from the project"}],
        )
    if row.volunteer_id != volunteer_id:
        raise Forbidden(
            "This task was given to another volunteer.",
            errors=[{"field": "task_id", "message": "take your own task from the project"}],
        )
    query = select(Assignment).where(Assignment.assignment_id == assignment_id)
    if postgres:
        lock_panorama(session, row.panorama_id, postgres=postgres)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one()


_EXPIRED = (
    "This task expired and its place was given to another volunteer, so these tags were "
    "not stored; take the next task."
)
_IS_GOLD = select(_P.gold).where(_P.panorama_id == bindparam("p"))


def _refuse_if_gold(session: Session, panorama_id: str) -> None:
    """Refuse an answer to a tag task whose panorama has since become gold (Conflict)."""
    if connection(session).execute(_IS_GOLD, {"p": panorama_id}).scalar():
        raise Conflict(
            "This task expired and its panorama has since become a gold panorama (known "
            "answers), so these tags were not stored; take the next task.",
            errors=[{"field": "task_id", "message": "the task expired"}],
        )


_RECLAIM = (
    update(panoramas_table)
    .where(_P.panorama_id == bindparam("p"), _P.n_live < _needed(), _P.gold.is_(False))
    .values(n_live=_P.n_live + 1)
)


def _reclaim(session: Session, owned: _Owned) -> int:
    """Take back a slot for a late submit of an expired tag task (its number), or raise
    Conflict."""
    most = owned.k if owned.adaptive_rule == "fixed" else max(owned.k, ADAPTIVE_K_MAX)
    slot = _free_slot(session, owned.panorama_id, most)
    if slot is None:
        raise Conflict(_EXPIRED, errors=[{"field": "task_id", "message": "the task expired"}])
    taken = connection(session).execute(_RECLAIM, {"p": owned.panorama_id, "k": owned.k})
    if getattr(taken, "rowcount", 0) != 1:
        raise Conflict(_EXPIRED, errors=[{"field": "task_id", "message": "the task expired"}])
    return slot


def submit(
    session: Session,
    *,
    assignment_id: str,
    volunteer_id: int,
    tags: Iterable[TagIn | Mapping[str, Any]],
    no_camera: bool,
    problem: str | None = None,
    problem_note: str | None = None,
    client_build: str | None = None,
    started_at: datetime | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store a task's answer: one submission and every tag version exactly as sent.

    Parameters
    ----------
    session
        An open session; the caller commits (the answer is acknowledged only after that).
    assignment_id
        The task id from :func:`next_task` or :func:`next_review`.
    volunteer_id
        The volunteer the task was given to.
    tags
        Every version of every tag, in the order made (:class:`TagIn` or mappings of its
        fields); at most :data:`MAX_TAGS`.
    no_camera
        The explicit "no camera here" answer; required when no tag stands and no problem is
        reported.
    problem, problem_note
        A reported problem (``no_image``, ``wrong_place``, ``indoor``, ``other``) and a note of
        at most 500 characters.
    client_build, started_at
        The client's build id and when the volunteer opened the task.
    now
        The time (default: now, UTC).

    Returns
    -------
    SubmitResult
        The submission id and, for a gold task, the feedback. A second call for the same task
        returns the same result and stores nothing. A tag task answered with a ``problem``
        becomes ``reported``: it frees its slot and counts in ``panoramas.n_problem``, not
        ``n_done`` (module docstring).

    Raises
    ------
    Invalid
        A value out of range, naming ``tags[i].field``.
    NotFound, Forbidden
        No such task, or another volunteer's.
    Conflict
        The task was skipped, or it expired and its slot went to another volunteer (or its
        panorama became gold).
    """
    now = utc_now(now)
    versions = validated_tags(
        tags,
        no_camera=no_camera,
        problem=problem,
        problem_note=problem_note,
        client_build=client_build,
        started_at=started_at,
    )
    postgres = is_postgres(session)
    assignment = _owned_assignment(session, assignment_id, volunteer_id, postgres=postgres)
    if assignment.status in ("submitted", "reported") and assignment.submission_id is not None:
        return _result(session, assignment, assignment.submission_id)
    if assignment.status == "abandoned":
        raise Conflict(
            "This task was skipped; its tags cannot be submitted.",
            errors=[{"field": "task_id", "message": "take the next task"}],
        )
    savepoint = session.begin_nested() if postgres else None
    try:
        slot = assignment.slot
        if assignment.kind == "tag" and assignment.status == "expired":
            _refuse_if_gold(session, assignment.panorama_id)
            if problem is None:  # a problem report needs no slot
                slot = _reclaim(session, assignment)
        result = _store(
            session,
            assignment,
            versions,
            slot=slot,
            now=now,
            no_camera=no_camera,
            problem=problem,
            problem_note=problem_note,
            client_build=client_build,
            started_at=started_at,
        )
    except IntegrityError:
        if savepoint is None:
            raise
        savepoint.rollback()
        raise Conflict(
            _EXPIRED, errors=[{"field": "task_id", "message": "the task expired"}]
        ) from None
    if savepoint is not None:
        savepoint.commit()
    return result


_INSERT_SUBMISSION = insert(_submissions)
_INSERT_TAGS = insert(_tags)
_ANSWERED = (
    update(assignments_table)
    .where(_A.assignment_id == bindparam("a"))
    .values(status=bindparam("new_status"), submission_id=bindparam("sid"), slot=bindparam("sl"))
)
_COUNTED = (
    update(panoramas_table)
    .where(_P.panorama_id == bindparam("p"), _P.gold.is_(False))
    .values(n_done=_P.n_done + 1)
)
_REPORTED = (
    update(panoramas_table)
    .where(_P.panorama_id == bindparam("p"), _P.gold.is_(False))
    .values(n_problem=_P.n_problem + 1, n_live=_P.n_live - bindparam("held"))
)


def _store(
    session: Session,
    assignment: _Owned,
    versions: Sequence[TagIn],
    *,
    slot: int | None,
    now: datetime,
    no_camera: bool,
    problem: str | None,
    problem_note: str | None,
    client_build: str | None,
    started_at: datetime | None,
) -> SubmitResult:
    conn = connection(session)
    submission_id = new_id()
    conn.execute(
        _INSERT_SUBMISSION,
        {
            "submission_id": submission_id,
            "panorama_id": assignment.panorama_id,
            "decoder_id": assignment.public_id,
            "assignment_id": assignment.assignment_id,
            "kind": "expert" if assignment.kind == "review" else "volunteer",
            "started_at": started_at,
            "submitted_at": now,
            "no_camera": bool(no_camera),
            "problem": problem,
            "problem_note": problem_note,
            "gold": assignment.kind == "gold",
            "client_build": client_build,
        },
    )
    if versions:
        ids = {t.client_id: new_id() for t in versions}
        replaced = {t.replaces for t in versions if t.replaces is not None}
        conn.execute(
            _INSERT_TAGS,
            [
                {
                    "tag_id": ids[t.client_id],
                    "submission_id": submission_id,
                    "heading_deg": float(t.heading_deg),
                    "pitch_deg": float(t.pitch_deg),
                    "fov_deg": float(t.fov_deg),
                    "attachment": t.attachment,
                    "camera_type": t.camera_type,
                    "machine": False,
                    "score": None,
                    "client_tag_id": t.client_id,
                    "replaces_tag_id": ids[t.replaces] if t.replaces is not None else None,
                    "deleted": bool(t.deleted),
                    "current": t.client_id not in replaced,
                    "clicked_at": t.clicked_at,
                    "created_at": now,
                }
                for t in versions
            ],
        )
    held_slot = assignment.status == "open"
    reported = assignment.kind == "tag" and problem is not None
    status = "reported" if reported else "submitted"
    conn.execute(_ANSWERED, {"a": assignment.assignment_id, "new_status": status,
                             "sid": submission_id, "sl": slot})  # fmt: skip
    _sync_loaded(session, assignment.assignment_id, status=status, submission_id=submission_id,
                 slot=slot)  # fmt: skip
    if assignment.kind == "tag":
        # A problem report frees the slot it held; an answer fills it. Never on gold.
        if reported:
            counted = conn.execute(_REPORTED, {"p": assignment.panorama_id, "held": int(held_slot)})
        else:
            counted = conn.execute(_COUNTED, {"p": assignment.panorama_id})
        if getattr(counted, "rowcount", 0) != 1:
            _refuse_if_gold(session, assignment.panorama_id)
        if not reported and assignment.adaptive_rule != "fixed":
            _adapt(session, assignment)
    elif assignment.kind == "review":
        # The review counts the expert's answer (camcensus.db.review: three experts, then a
        # meta-expert where they disagree).
        from camcensus.db.review import record_review_answer

        record_review_answer(
            session, assignment_id=assignment.assignment_id, submission_id=submission_id, now=now
        )
    if assignment.kind == "gold":
        standing = standing_tags(versions)
        answer = conn.execute(_GOLD_ANSWER, {"p": assignment.panorama_id}).scalar()
        rays = [(float(t.heading_deg), float(t.pitch_deg)) for t in standing]
        return SubmitResult(submission_id=submission_id, feedback=_gold_feedback(answer, rays))
    return SubmitResult(submission_id=submission_id)


def _sync_loaded(session: Session, assignment_id: str, **values: Any) -> None:
    """Give an Assignment object the session already holds the values just written by Core
    (no query, no flush)."""
    loaded = session.identity_map.get(identity_key(Assignment, assignment_id))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


_SET_TARGET = (
    update(panoramas_table)
    .where(_P.panorama_id == bindparam("p"))
    .values(k_target=bindparam("target"))
)


def _adapt(session: Session, assignment: _Owned) -> None:
    """Set the panorama's ``k_target`` from its counted answers so far and the project's
    adaptive rule (:func:`camcensus.db.adaptive.panorama_target`)."""
    from camcensus.db.adaptive import panorama_target

    target = panorama_target(
        session,
        panorama_id=assignment.panorama_id,
        project_id=assignment.project_id,
        k=assignment.k,
        rule=assignment.adaptive_rule,
        k_max=max(assignment.k, ADAPTIVE_K_MAX),
    )
    connection(session).execute(_SET_TARGET, {"p": assignment.panorama_id, "target": int(target)})


def abandon(
    session: Session, *, assignment_id: str, volunteer_id: int, now: datetime | None = None
) -> None:
    """Give a task back (skip): its slot returns to the pool at once.

    The volunteer will not be given this panorama again. Skipping a task twice, or one that
    has expired, does nothing. (:func:`next_task` with a ``bbox`` gives back an open task
    outside it the same way.)

    Raises
    ------
    NotFound, Forbidden
        No such task, or another volunteer's.
    Conflict
        The task was already submitted.
    """
    utc_now(now)
    assignment = _owned_orm(session, assignment_id, volunteer_id, postgres=is_postgres(session))
    if assignment.status in ("submitted", "reported"):
        raise Conflict(
            "This task was already submitted; it cannot be skipped.",
            errors=[{"field": "task_id", "message": "take the next task"}],
        )
    if assignment.status != "open":
        return
    _give_back(session, assignment.assignment_id, assignment.panorama_id)
    session.refresh(assignment)
