"""Tasks: who tags which panorama next, storing submissions, validations and expert reviews.

What the platform guarantees (docs/platform.md, issue 7):

- Each non-gold panorama gets exactly ``k`` counted submissions from ``k`` different
  volunteers. A ``tag`` assignment holds one of the panorama's slots ``1..k``; the partial
  unique index on ``assignments (panorama_id, slot)`` for live (``open`` or ``submitted``)
  assignments makes the database itself refuse an over-assignment, and ``panoramas.n_live``
  (live slots) is only ever raised by a conditional ``UPDATE ... WHERE n_live < k``.
- Nobody sees the same panorama twice (unique ``(panorama_id, volunteer_id)``).
- A task not submitted within the project's ``task_timeout_s`` expires and its slot returns to
  the pool; a skipped task (:func:`abandon`) returns at once.
- Panoramas already in progress come first (fewest remaining slots, then a stable
  pseudo-random order), so panoramas finish instead of being spread thin, and never past k.
- Gold panoramas (known answers) give feedback and never count toward completion; a volunteer
  gets at most one gold task in any ``gold_every`` consecutive tasks.
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
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.models import (
    ATTACHMENTS,
    CAMERA_TYPES,
    PROBLEMS,
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

__all__ = [
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

#: Most tag versions one submission may carry.
MAX_TAGS = 200
#: A tag within this angle of a gold ray counts as found.
GOLD_TOLERANCE_DEG = 5.0
_LIVE = ("open", "submitted")
_RETRIES = 8


@dataclass(frozen=True)
class TagIn:
    """One tag version as the client sent it.

    ``client_id`` is the client's id of this version; ``replaces`` the ``client_id`` of an
    earlier version in the same submission that this one edits (moved, re-typed or deleted).
    """

    client_id: str
    heading_deg: float
    pitch_deg: float
    fov_deg: float
    attachment: str
    camera_type: str
    replaces: str | None = None
    deleted: bool = False
    clicked_at: datetime | None = None


@dataclass(frozen=True)
class SubmitResult:
    """The stored submission's id and, for a gold task, the feedback.

    ``feedback`` has ``found``, ``missed`` and ``extra`` (counts of rays matched within
    :data:`GOLD_TOLERANCE_DEG`), ``missed_rays`` (the gold rays not found, to show where to
    look) and ``tolerance_deg``.
    """

    submission_id: str
    feedback: dict[str, Any] | None = field(default=None)


def _new_id() -> str:
    return secrets.token_urlsafe(12)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(UTC)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _project(session: Session, name: str) -> Project:
    project = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if project is None:
        raise NotFound(
            f"No project is named {name!r}.",
            errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
        )
    return project


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


def _lock_panorama(
    session: Session, panorama_id: str, *, postgres: bool, skip_locked: bool = False
) -> bool:
    """Lock a panorama's row on PostgreSQL (``FOR NO KEY UPDATE``); False when skipped.

    Every transaction that changes a panorama's slots (issues, submits, skips or expires one
    of its tasks) locks the panorama first and its assignments after, so transactions queue on
    the panorama and never deadlock on each other's assignment rows or slot index entries.
    ``FOR NO KEY UPDATE`` still lets others insert rows that reference the panorama. On
    SQLite the whole transaction already holds the database's write lock.
    """
    if not postgres:
        return True
    query = (
        select(Panorama.panorama_id)
        .where(Panorama.panorama_id == panorama_id)
        .with_for_update(key_share=True, skip_locked=skip_locked)
    )
    return session.scalar(query) is not None


def _lock_volunteer(session: Session, volunteer_id: int, *, postgres: bool) -> None:
    """Check that the volunteer exists; on PostgreSQL lock the row (``FOR NO KEY UPDATE``) so
    two requests of one volunteer (a double click) are given the same task.

    Raises
    ------
    NotFound
        No volunteer has this id.
    """
    query = select(Volunteer.volunteer_id).where(Volunteer.volunteer_id == volunteer_id)
    if postgres:
        query = query.with_for_update(key_share=True)
    if session.scalar(query) is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )


def _expire_stale(session: Session, project_id: int, now: datetime, *, postgres: bool) -> None:
    """Mark open assignments past their time as expired and free their slots.

    On PostgreSQL a panorama locked by another transaction is left for a later call (it never
    waits here).
    """
    stale = session.scalars(
        select(Assignment.panorama_id)
        .where(
            Assignment.project_id == project_id,
            Assignment.status == "open",
            Assignment.expires_at <= now,
        )
        .distinct()
    ).all()
    for panorama_id in sorted(stale):
        if not _lock_panorama(session, panorama_id, postgres=postgres, skip_locked=True):
            continue
        kinds = session.scalars(
            update(Assignment)
            .where(
                Assignment.panorama_id == panorama_id,
                Assignment.status == "open",
                Assignment.expires_at <= now,
            )
            .values(status="expired")
            .returning(Assignment.kind)
            .execution_options(synchronize_session=False)
        ).all()
        freed = sum(kind == "tag" for kind in kinds)
        if freed:
            session.execute(
                update(Panorama)
                .where(Panorama.panorama_id == panorama_id)
                .values(n_live=Panorama.n_live - freed)
                .execution_options(synchronize_session=False)
            )


def _open_assignment(
    session: Session, project_id: int, volunteer_id: int, kinds: tuple[str, ...], now: datetime
) -> Assignment | None:
    return session.scalars(
        select(Assignment)
        .where(
            Assignment.volunteer_id == volunteer_id,
            Assignment.project_id == project_id,
            Assignment.status == "open",
            Assignment.kind.in_(kinds),
            Assignment.expires_at > now,
        )
        .order_by(Assignment.issued_at)
        .limit(1)
    ).first()


def _unseen(volunteer_id: int) -> Any:
    """``NOT EXISTS`` an assignment of this volunteer on the panorama."""
    return ~exists().where(
        Assignment.panorama_id == Panorama.panorama_id, Assignment.volunteer_id == volunteer_id
    )


def _candidate(
    session: Session,
    project: Project,
    volunteer_id: int,
    bbox: tuple[float, float, float, float] | None,
    *,
    postgres: bool,
) -> str | None:
    """Return the next panorama to tag: most advanced first, then the stable random order."""
    for n_live in range(project.k - 1, -1, -1):
        query = select(Panorama.panorama_id).where(
            Panorama.project_id == project.project_id,
            Panorama.gold.is_(False),
            Panorama.n_live == n_live,
            _unseen(volunteer_id),
        )
        if bbox is not None:
            w, s, e, n = bbox
            query = query.where(Panorama.lon.between(w, e), Panorama.lat.between(s, n))
        query = query.order_by(Panorama.shuffle_key, Panorama.panorama_id).limit(1)
        if postgres:
            query = query.with_for_update(skip_locked=True, key_share=True, of=Panorama)
        found = session.scalar(query)
        if found is not None:
            return str(found)
    return None


def _gold_due(session: Session, project: Project, volunteer_id: int) -> bool:
    """Whether the volunteer's last ``gold_every - 1`` tasks hold no gold task."""
    window = project.gold_every - 1
    kinds = session.scalars(
        select(Assignment.kind)
        .where(
            Assignment.volunteer_id == volunteer_id,
            Assignment.project_id == project.project_id,
            Assignment.kind.in_(("tag", "gold")),
        )
        .order_by(Assignment.issued_at.desc())
        .limit(max(window, 0))
    ).all()
    return len(kinds) >= window and "gold" not in kinds


def _issue(
    session: Session,
    project: Project,
    panorama_id: str,
    volunteer_id: int,
    kind: str,
    slot: int | None,
    now: datetime,
) -> Assignment:
    assignment = Assignment(
        assignment_id=_new_id(),
        project_id=project.project_id,
        panorama_id=panorama_id,
        volunteer_id=volunteer_id,
        kind=kind,
        slot=slot,
        issued_at=now,
        expires_at=now + timedelta(seconds=project.task_timeout_s),
        status="open",
    )
    session.add(assignment)
    session.flush()
    return assignment


def _free_slot(session: Session, panorama_id: str, k: int) -> int | None:
    used = set(
        session.scalars(
            select(Assignment.slot).where(
                Assignment.panorama_id == panorama_id,
                Assignment.kind == "tag",
                Assignment.status.in_(_LIVE),
            )
        ).all()
    )
    free = [s for s in range(1, k + 1) if s not in used]
    return free[0] if free else None


def _take_slot(
    session: Session, project: Project, panorama_id: str, volunteer_id: int, now: datetime
) -> Assignment | None:
    """Raise the panorama's live count (only below k) and issue a tag assignment on a free slot."""
    taken = session.execute(
        update(Panorama)
        .where(Panorama.panorama_id == panorama_id, Panorama.n_live < project.k)
        .values(n_live=Panorama.n_live + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None
    slot = _free_slot(session, panorama_id, project.k)
    if slot is None:  # n_live and the slots disagree: never issue past k
        raise IntegrityError("no free slot", None, Exception("no free slot"))
    return _issue(session, project, panorama_id, volunteer_id, "tag", slot, now)


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
        ``(west, south, east, north)`` in WGS84 degrees: only panoramas inside.
    now
        The time (default: now, UTC).

    Returns
    -------
    Assignment or None
        The volunteer's open task if one is still running, else a new ``tag`` assignment (or
        a ``gold`` one when due), expiring after the project's ``task_timeout_s``.

    Raises
    ------
    NotFound
        No such project or volunteer.
    Invalid
        A bounding box that is not a lon/lat box.
    """
    now = _now(now)
    box = _check_bbox(bbox)
    proj = _project(session, project)
    if proj.status != "open":
        return None
    postgres = _postgres(session)
    _lock_volunteer(session, volunteer_id, postgres=postgres)
    _expire_stale(session, proj.project_id, now, postgres=postgres)
    running = _open_assignment(session, proj.project_id, volunteer_id, ("tag", "gold"), now)
    if running is not None:
        return running
    for _ in range(_RETRIES):
        panorama_id = _candidate(session, proj, volunteer_id, box, postgres=postgres)
        if panorama_id is None:
            return None
        savepoint = session.begin_nested() if postgres else None
        try:
            assignment = _give(session, proj, panorama_id, volunteer_id, box, now)
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


def _give(
    session: Session,
    project: Project,
    panorama_id: str,
    volunteer_id: int,
    bbox: tuple[float, float, float, float] | None,
    now: datetime,
) -> Assignment | None:
    """Issue a gold task when due (and one is left), else a slot of ``panorama_id``."""
    if _gold_due(session, project, volunteer_id):
        query = select(Panorama.panorama_id).where(
            Panorama.project_id == project.project_id,
            Panorama.gold.is_(True),
            _unseen(volunteer_id),
        )
        if bbox is not None:
            w, s, e, n = bbox
            query = query.where(Panorama.lon.between(w, e), Panorama.lat.between(s, n))
        gold = session.scalar(query.order_by(Panorama.shuffle_key, Panorama.panorama_id).limit(1))
        if gold is not None:
            return _issue(session, project, str(gold), volunteer_id, "gold", None, now)
    return _take_slot(session, project, panorama_id, volunteer_id, now)


def _bad(errors: list[dict[str, object]], field_name: str, message: str) -> None:
    errors.append({"field": field_name, "message": message})


def _number(
    errors: list[dict[str, object]],
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
    expected: str,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        _bad(errors, name, f"found {value!r}; expected {expected}")


def _as_tag(tag: TagIn | Mapping[str, Any], index: int, errors: list[dict[str, object]]) -> TagIn:
    if isinstance(tag, TagIn):
        return tag
    try:
        return TagIn(**dict(tag))
    except TypeError as exc:
        _bad(errors, f"tags[{index}]", f"not a tag ({exc}); expected the fields of TagIn")
        return TagIn("", math.nan, math.nan, math.nan, "", "")


def _check_tags(tags: Sequence[TagIn], errors: list[dict[str, object]]) -> None:
    seen: dict[str, int] = {}
    replaced: set[str] = set()
    for i, t in enumerate(tags):
        at = f"tags[{i}]"
        if not isinstance(t.client_id, str) or not 1 <= len(t.client_id) <= 100:
            _bad(errors, f"{at}.client_id", "expected a text id of 1 to 100 characters")
        elif t.client_id in seen:
            _bad(
                errors,
                f"{at}.client_id",
                f"found {t.client_id!r} again (first at tags[{seen[t.client_id]}]); every "
                "version needs its own client_id",
            )
        _number(
            errors,
            f"{at}.heading_deg",
            t.heading_deg,
            0,
            360,
            open_high=True,
            expected="a bearing in [0, 360) degrees from true north",
        )
        _number(
            errors,
            f"{at}.pitch_deg",
            t.pitch_deg,
            -90,
            90,
            expected="an angle in [-90, 90] degrees above the horizon",
        )
        _number(
            errors,
            f"{at}.fov_deg",
            t.fov_deg,
            0,
            180,
            open_low=True,
            expected="the viewer's horizontal field of view in (0, 180] degrees",
        )
        if t.attachment not in ATTACHMENTS:
            _bad(
                errors, f"{at}.attachment", f"found {t.attachment!r}; expected one of {ATTACHMENTS}"
            )
        if t.camera_type not in CAMERA_TYPES:
            _bad(
                errors,
                f"{at}.camera_type",
                f"found {t.camera_type!r}; expected one of {CAMERA_TYPES}",
            )
        if not isinstance(t.deleted, bool):
            _bad(errors, f"{at}.deleted", f"found {t.deleted!r}; expected true or false")
        if t.clicked_at is not None and (
            not isinstance(t.clicked_at, datetime) or t.clicked_at.tzinfo is None
        ):
            _bad(errors, f"{at}.clicked_at", "expected a time with its UTC offset")
        if t.replaces is not None:
            if t.replaces not in seen:
                _bad(
                    errors,
                    f"{at}.replaces",
                    f"found {t.replaces!r}; expected the client_id of an earlier tag version "
                    "in this submission",
                )
            elif t.replaces in replaced:
                _bad(
                    errors,
                    f"{at}.replaces",
                    f"version {t.replaces!r} is already replaced by another; edit the newest "
                    "version",
                )
            else:
                replaced.add(t.replaces)
        if isinstance(t.client_id, str):
            seen.setdefault(t.client_id, i)


def _validated_tags(
    tags: Iterable[TagIn | Mapping[str, Any]],
    *,
    no_camera: bool,
    problem: str | None,
    problem_note: str | None,
    client_build: str | None,
    started_at: datetime | None,
) -> list[TagIn]:
    errors: list[dict[str, object]] = []
    items = list(tags)
    if len(items) > MAX_TAGS:
        raise Invalid(
            f"A submission may carry at most {MAX_TAGS} tag versions; found {len(items)}.",
            errors=[{"field": "tags", "message": f"found {len(items)}; expected <= {MAX_TAGS}"}],
        )
    parsed = [_as_tag(t, i, errors) for i, t in enumerate(items)]
    if not errors:
        _check_tags(parsed, errors)
    if not isinstance(no_camera, bool):
        _bad(errors, "no_camera", f"found {no_camera!r}; expected true or false")
    if problem is not None and problem not in PROBLEMS:
        _bad(errors, "problem", f"found {problem!r}; expected null or one of {PROBLEMS}")
    if problem_note is not None:
        if not isinstance(problem_note, str) or len(problem_note) > 500:
            _bad(errors, "problem_note", "expected a text of at most 500 characters")
        elif problem is None:
            _bad(errors, "problem_note", "a note goes with a problem; say which problem")
    if client_build is not None and (not isinstance(client_build, str) or len(client_build) > 200):
        _bad(errors, "client_build", "expected a text of at most 200 characters")
    if started_at is not None and (
        not isinstance(started_at, datetime) or started_at.tzinfo is None
    ):
        _bad(errors, "started_at", "expected a time with its UTC offset")
    if not errors:
        standing = _standing(parsed)
        if problem is None and not standing and not no_camera:
            _bad(
                errors,
                "no_camera",
                'no tag stands in this submission; say no_camera: true ("no camera here") '
                "or tag the cameras",
            )
        if no_camera and standing:
            _bad(
                errors,
                "no_camera",
                f"no_camera is true but {len(standing)} tag(s) stand; delete them or set "
                "no_camera to false",
            )
    if errors:
        raise Invalid(f"The submission has {len(errors)} invalid value(s).", errors=errors)
    return parsed


def _standing(tags: Sequence[TagIn]) -> list[TagIn]:
    """The current (not replaced), not deleted versions."""
    replaced = {t.replaces for t in tags if t.replaces is not None}
    return [t for t in tags if t.client_id not in replaced and not t.deleted]


def ray_distance_deg(h1: float, p1: float, h2: float, p2: float) -> float:
    """Return the angle in degrees between two rays given as (heading, pitch) in degrees."""
    a1, b1, a2, b2 = map(math.radians, (h1, p1, h2, p2))
    c = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _gold_feedback(answer_json: str | None, rays: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Match the volunteer's rays to the gold rays (closest pairs first, within tolerance)."""
    import json

    truth = json.loads(answer_json) if answer_json else []
    gold = [(float(t["heading_deg"]), float(t["pitch_deg"])) for t in truth]
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


def _result(session: Session, assignment: Assignment, submission_id: str) -> SubmitResult:
    """The result of a stored submission (recomputed the same way on a retry)."""
    if assignment.kind != "gold":
        return SubmitResult(submission_id=submission_id)
    rays = session.execute(
        select(Tag.heading_deg, Tag.pitch_deg).where(
            Tag.submission_id == submission_id, Tag.current.is_(True), Tag.deleted.is_(False)
        )
    ).all()
    answer = session.scalar(
        select(Panorama.gold_answer).where(Panorama.panorama_id == assignment.panorama_id)
    )
    return SubmitResult(
        submission_id=submission_id,
        feedback=_gold_feedback(answer, [(float(h), float(p)) for h, p in rays]),
    )


def _owned_assignment(
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
        _lock_panorama(session, row.panorama_id, postgres=postgres)
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one()


def _reclaim(session: Session, assignment: Assignment, now: datetime) -> None:
    """Take back a slot for a late submit of an expired tag task, or raise Conflict."""
    k = session.scalar(select(Project.k).where(Project.project_id == assignment.project_id))
    slot = _free_slot(session, assignment.panorama_id, int(k or 0))
    message = (
        "This task expired and its place was given to another volunteer, so these tags were "
        "not stored; take the next task."
    )
    if slot is None:
        raise Conflict(message, errors=[{"field": "task_id", "message": "the task expired"}])
    taken = session.execute(
        update(Panorama)
        .where(Panorama.panorama_id == assignment.panorama_id, Panorama.n_live < int(k or 0))
        .values(n_live=Panorama.n_live + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise Conflict(message, errors=[{"field": "task_id", "message": "the task expired"}])
    assignment.slot = slot


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
        returns the same result and stores nothing.

    Raises
    ------
    Invalid
        A value out of range, naming ``tags[i].field``.
    NotFound, Forbidden
        No such task, or another volunteer's.
    Conflict
        The task was skipped, or it expired and its slot went to another volunteer.
    """
    now = _now(now)
    versions = _validated_tags(
        tags,
        no_camera=no_camera,
        problem=problem,
        problem_note=problem_note,
        client_build=client_build,
        started_at=started_at,
    )
    postgres = _postgres(session)
    assignment = _owned_assignment(session, assignment_id, volunteer_id, postgres=postgres)
    if assignment.status == "submitted" and assignment.submission_id is not None:
        return _result(session, assignment, assignment.submission_id)
    if assignment.status == "abandoned":
        raise Conflict(
            "This task was skipped; its tags cannot be submitted.",
            errors=[{"field": "task_id", "message": "take the next task"}],
        )
    savepoint = session.begin_nested() if postgres else None
    try:
        if assignment.kind == "tag" and assignment.status == "expired":
            _reclaim(session, assignment, now)
        result = _store(
            session,
            assignment,
            versions,
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
            "This task expired and its place was given to another volunteer, so these tags "
            "were not stored; take the next task.",
            errors=[{"field": "task_id", "message": "the task expired"}],
        ) from None
    if savepoint is not None:
        savepoint.commit()
    return result


def _store(
    session: Session,
    assignment: Assignment,
    versions: Sequence[TagIn],
    *,
    now: datetime,
    no_camera: bool,
    problem: str | None,
    problem_note: str | None,
    client_build: str | None,
    started_at: datetime | None,
) -> SubmitResult:
    public_id = session.scalar(
        select(Volunteer.public_id).where(Volunteer.volunteer_id == assignment.volunteer_id)
    )
    submission_id = _new_id()
    session.execute(
        insert(Submission).values(
            submission_id=submission_id,
            panorama_id=assignment.panorama_id,
            decoder_id=str(public_id),
            assignment_id=assignment.assignment_id,
            kind="expert" if assignment.kind == "review" else "volunteer",
            started_at=started_at,
            submitted_at=now,
            no_camera=bool(no_camera),
            problem=problem,
            problem_note=problem_note,
            gold=assignment.kind == "gold",
            client_build=client_build,
        )
    )
    if versions:
        ids = {t.client_id: _new_id() for t in versions}
        replaced = {t.replaces for t in versions if t.replaces is not None}
        session.execute(
            insert(Tag),
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
    assignment.status = "submitted"
    assignment.submission_id = submission_id
    session.flush()
    if assignment.kind == "tag":
        session.execute(
            update(Panorama)
            .where(Panorama.panorama_id == assignment.panorama_id)
            .values(n_done=Panorama.n_done + 1)
            .execution_options(synchronize_session=False)
        )
    elif assignment.kind == "review":
        session.execute(
            update(Review)
            .where(
                Review.project_id == assignment.project_id,
                Review.panorama_id == assignment.panorama_id,
                Review.status == "open",
            )
            .values(status="done", submission_id=submission_id)
            .execution_options(synchronize_session=False)
        )
    if assignment.kind == "gold":
        standing = _standing(versions)
        answer = session.scalar(
            select(Panorama.gold_answer).where(Panorama.panorama_id == assignment.panorama_id)
        )
        rays = [(float(t.heading_deg), float(t.pitch_deg)) for t in standing]
        return SubmitResult(submission_id=submission_id, feedback=_gold_feedback(answer, rays))
    return SubmitResult(submission_id=submission_id)


def abandon(
    session: Session, *, assignment_id: str, volunteer_id: int, now: datetime | None = None
) -> None:
    """Give a task back (skip): its slot returns to the pool at once.

    The volunteer will not be given this panorama again. Skipping a task twice, or one that
    has expired, does nothing.

    Raises
    ------
    NotFound, Forbidden
        No such task, or another volunteer's.
    Conflict
        The task was already submitted.
    """
    _now(now)
    assignment = _owned_assignment(
        session, assignment_id, volunteer_id, postgres=_postgres(session)
    )
    if assignment.status == "submitted":
        raise Conflict(
            "This task was already submitted; it cannot be skipped.",
            errors=[{"field": "task_id", "message": "take the next task"}],
        )
    if assignment.status != "open":
        return
    assignment.status = "abandoned"
    session.flush()
    if assignment.kind == "tag":
        session.execute(
            update(Panorama)
            .where(Panorama.panorama_id == assignment.panorama_id)
            .values(n_live=Panorama.n_live - 1)
            .execution_options(synchronize_session=False)
        )


def next_validation(
    session: Session, *, project: str, volunteer_id: int, now: datetime | None = None
) -> Tag | None:
    """Return a standing tag of another volunteer that this volunteer has not validated.

    Tags come from counted volunteer submissions (not gold, not the volunteer's own); the
    starting point in the random tag-id order is drawn afresh each call, so validations spread
    over the tags instead of piling on the first ones. None when nothing is left.
    """
    _now(now)
    proj = _project(session, project)
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
        The tag is the volunteer's own.
    Conflict
        The volunteer already gave a different answer on this tag.
    """
    now = _now(now)
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
        select(Tag.tag_id, Submission.decoder_id)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .where(Tag.tag_id == tag_id)
    ).one_or_none()
    if row is None:
        raise NotFound(
            "No tag has this id.",
            errors=[{"field": "tag_id", "message": "take a new validation task"}],
        )
    # One answer of a volunteer at a time: a double click returns the stored row.
    _lock_volunteer(session, volunteer_id, postgres=_postgres(session))
    public_id = session.scalar(
        select(Volunteer.public_id).where(Volunteer.volunteer_id == volunteer_id)
    )
    if row.decoder_id == public_id:
        raise Forbidden(
            "Volunteers validate other volunteers' tags, not their own.",
            errors=[{"field": "tag_id", "message": "this tag is yours"}],
        )
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
        validation_id=_new_id(),
        tag_id=tag_id,
        volunteer_id=volunteer_id,
        answer=answer,
        created_at=now,
    )
    session.add(validation)
    session.flush()
    return validation


def queue_review(
    session: Session,
    *,
    project: str,
    panorama_ids: Iterable[str],
    inclusion_prob: float | Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> list[Review]:
    """Put panoramas in the project's expert review queue; return the reviews created.

    A panorama with an open review already is not queued twice. ``inclusion_prob`` (one value,
    or one per panorama id) is the sampling probability the quality statistics weight by.

    Raises
    ------
    NotFound
        No such project, or panoramas not in it (all listed).
    Invalid
        An inclusion probability outside (0, 1].
    """
    now = _now(now)
    proj = _project(session, project)
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
            _bad(errors, f"inclusion_prob[{p}]", f"found {value!r}; expected a value in (0, 1]")
        probs[p] = None if value is None else float(value)
    if errors:
        raise Invalid("Inclusion probabilities must lie in (0, 1].", errors=errors)
    queued = (
        set(
            session.scalars(
                select(Review.panorama_id).where(
                    Review.project_id == proj.project_id,
                    Review.status == "open",
                    Review.panorama_id.in_(ids),
                )
            ).all()
        )
        if ids
        else set()
    )
    reviews = [
        Review(
            review_id=_new_id(),
            project_id=proj.project_id,
            panorama_id=p,
            inclusion_prob=probs[p],
            status="open",
            created_at=now,
        )
        for p in ids
        if p not in queued
    ]
    session.add_all(reviews)
    session.flush()
    return reviews


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
    now = _now(now)
    proj = _project(session, project)
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
    postgres = _postgres(session)
    _lock_volunteer(session, volunteer_id, postgres=postgres)
    _expire_stale(session, proj.project_id, now, postgres=postgres)
    running = _open_assignment(session, proj.project_id, volunteer_id, ("review",), now)
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
    for _ in range(_RETRIES):
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
            assignment = _issue(session, proj, str(panorama_id), volunteer_id, "review", None, now)
        except IntegrityError:
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        return assignment
    return None
