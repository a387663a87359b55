"""Helpers shared by :mod:`camcensus.db.tasks` and :mod:`camcensus.db.review` (private).

Ids, times, the project by name, the row locks (one order: the volunteer, then the panorama,
then its assignments) and issuing or expiring an assignment. See :mod:`camcensus.db.tasks`
for the guarantees they serve.

The hot paths (a task given, an answer stored) run SQLAlchemy Core statements built once at
import, on the tables (not the ORM entities), through the session's connection: the statement
is never rebuilt and its compiled SQL comes from the engine's cache, which is most of what a
request used to cost.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from camcensus.db.errors import NotFound
from camcensus.db.models import Assignment, Panorama, Project, Volunteer

__all__ = [
    "LIVE",
    "RETRIES",
    "ProjectInfo",
    "TaskState",
    "add_error",
    "assignments_table",
    "connection",
    "expire_stale",
    "is_postgres",
    "issue_task",
    "issue_task_core",
    "lock_panorama",
    "lock_volunteer",
    "new_id",
    "open_assignment",
    "open_assignment_id",
    "panoramas_table",
    "project_info",
    "project_named",
    "task_state",
    "utc_now",
]

#: Assignment statuses that hold a panorama's slot.
LIVE = ("open", "submitted")
#: Attempts at a contended insert before answering "try again".
RETRIES = 8


def _table(entity: Any) -> Table:
    table = entity.__table__
    assert isinstance(table, Table)
    return table


#: The tables behind the ORM entities (Core statements are built on these).
assignments_table = _table(Assignment)
panoramas_table = _table(Panorama)
_projects = _table(Project)
_volunteers = _table(Volunteer)
_A = assignments_table.c
_P = panoramas_table.c


@dataclass(frozen=True)
class ProjectInfo:
    """The columns of a project the task paths read (plain values, no ORM object)."""

    project_id: int
    name: str
    k: int
    task_timeout_s: int
    gold_every: int
    status: str
    adaptive_rule: str


_PROJECT_INFO = select(
    _projects.c.project_id,
    _projects.c.name,
    _projects.c.k,
    _projects.c.task_timeout_s,
    _projects.c.gold_every,
    _projects.c.status,
    _projects.c.adaptive_rule,
).where(_projects.c.name == bindparam("name"))


def _project_of(row: Any) -> ProjectInfo:
    return ProjectInfo(
        project_id=int(row.project_id),
        name=str(row.name),
        k=int(row.k),
        task_timeout_s=int(row.task_timeout_s),
        gold_every=int(row.gold_every),
        status=str(row.status),
        adaptive_rule=str(row.adaptive_rule or "fixed"),
    )


def connection(session: Session) -> Connection:
    """The session's connection (its transaction starts here: on SQLite, ``BEGIN IMMEDIATE``)."""
    return session.connection()


def project_info(session: Session, name: str) -> ProjectInfo:
    """Return the project named ``name`` as plain values (one indexed Core query).

    Raises
    ------
    NotFound
        No project has this name.
    """
    row = connection(session).execute(_PROJECT_INFO, {"name": name}).one_or_none()
    if row is None:
        raise NotFound(
            f"No project is named {name!r}.",
            errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
        )
    return _project_of(row)


def new_id() -> str:
    return secrets.token_urlsafe(12)


def utc_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(UTC)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def project_named(session: Session, name: str) -> Project:
    project = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if project is None:
        raise NotFound(
            f"No project is named {name!r}.",
            errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
        )
    return project


def lock_panorama(
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


_VOLUNTEER = select(_volunteers.c.volunteer_id).where(_volunteers.c.volunteer_id == bindparam("v"))
_VOLUNTEER_LOCK = _VOLUNTEER.with_for_update(key_share=True)
_STALE = (
    select(_A.panorama_id)
    .where(
        _A.project_id == bindparam("project_id"),
        _A.status == "open",
        _A.expires_at <= bindparam("now", type_=_A.expires_at.type),
    )
    .distinct()
)


def lock_volunteer(session: Session, volunteer_id: int, *, postgres: bool) -> None:
    """Check that the volunteer exists; on PostgreSQL lock the row (``FOR NO KEY UPDATE``) so
    two requests of one volunteer (a double click) are given the same task.

    Raises
    ------
    NotFound
        No volunteer has this id.
    """
    query = _VOLUNTEER_LOCK if postgres else _VOLUNTEER
    if connection(session).execute(query, {"v": volunteer_id}).scalar() is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )


def expire_stale(session: Session, project_id: int, now: datetime, *, postgres: bool) -> None:
    """Mark open assignments past their time as expired and free their slots.

    On PostgreSQL a panorama locked by another transaction is left for a later call (it never
    waits here).
    """
    stale = (
        connection(session).execute(_STALE, {"project_id": project_id, "now": now}).scalars().all()
    )
    for panorama_id in sorted(stale):
        if not lock_panorama(session, panorama_id, postgres=postgres, skip_locked=True):
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


def open_assignment(
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


def _open_id(project_id: Any) -> Any:
    """The volunteer's running tag or gold task in the project ``project_id`` (an expression)."""
    return (
        select(_A.assignment_id)
        .where(
            _A.volunteer_id == bindparam("v"),
            _A.project_id == project_id,
            _A.status == "open",
            (_A.kind == "tag") | (_A.kind == "gold"),
            _A.expires_at > bindparam("now", type_=_A.expires_at.type),
        )
        .order_by(_A.issued_at)
        .limit(1)
    )


_OPEN_ID = _open_id(bindparam("project_id"))


def open_assignment_id(
    session: Session, project_id: int, volunteer_id: int, now: datetime
) -> str | None:
    """The id of the volunteer's running tag or gold task (as :func:`open_assignment`)."""
    found = (
        connection(session)
        .execute(_OPEN_ID, {"v": volunteer_id, "project_id": project_id, "now": now})
        .scalar()
    )
    return None if found is None else str(found)


@dataclass(frozen=True)
class TaskState:
    """What :func:`camcensus.db.tasks.next_task` reads before it picks a panorama."""

    project: ProjectInfo
    #: The volunteer's running tag or gold task (as :func:`open_assignment_id`), or None.
    running_id: str | None
    #: Whether some open assignment of the project is past its time (:func:`expire_stale`).
    stale: bool
    #: Whether the project has gold panoramas at all.
    has_gold: bool


_TASK_STATE = select(
    *_PROJECT_INFO.selected_columns,
    select(_volunteers.c.volunteer_id)
    .where(_volunteers.c.volunteer_id == bindparam("v"))
    .scalar_subquery()
    .label("volunteer"),
    exists().where(_P.project_id == _projects.c.project_id, _P.gold.is_(True)).label("has_gold"),
    exists()
    .where(
        _A.project_id == _projects.c.project_id,
        _A.status == "open",
        _A.expires_at <= bindparam("now", type_=_A.expires_at.type),
    )
    .label("stale"),
    _open_id(_projects.c.project_id).scalar_subquery().label("running"),
).where(_projects.c.name == bindparam("name"))


def task_state(session: Session, name: str, volunteer_id: int, now: datetime) -> TaskState:
    """Read the project, whether the volunteer exists, whether tasks are stale and the
    volunteer's running task in one statement (SQLite: the transaction holds the write lock
    already, so nothing needs a row lock; PostgreSQL takes them one by one).

    Raises
    ------
    NotFound
        No project has this name; or the project is open and no volunteer has this id.
    """
    params = {"name": name, "v": volunteer_id, "now": now}
    row = connection(session).execute(_TASK_STATE, params).one_or_none()
    if row is None:
        raise NotFound(
            f"No project is named {name!r}.",
            errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
        )
    project = _project_of(row)
    if project.status == "open" and row.volunteer is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )
    running = None if row.running is None else str(row.running)
    return TaskState(project, running, bool(row.stale), bool(row.has_gold))


_INSERT_ASSIGNMENT = insert(assignments_table)


def issue_task_core(
    session: Session,
    project: ProjectInfo,
    panorama_id: str,
    volunteer_id: int,
    kind: str,
    slot: int | None,
    now: datetime,
) -> Assignment:
    """Insert an open assignment with one Core ``INSERT`` and return it as a persistent
    (clean) ORM object of the session, as if it had been loaded: no flush, no reload."""
    values: dict[str, Any] = {
        "assignment_id": new_id(),
        "project_id": project.project_id,
        "panorama_id": panorama_id,
        "volunteer_id": volunteer_id,
        "kind": kind,
        "slot": slot,
        "issued_at": now,
        "expires_at": now + timedelta(seconds=project.task_timeout_s),
        "status": "open",
        "submission_id": None,
    }
    connection(session).execute(_INSERT_ASSIGNMENT, values)
    assignment = Assignment(**values)
    make_transient_to_detached(assignment)
    session.add(assignment)
    return assignment


def issue_task(
    session: Session,
    project: Project | ProjectInfo,
    panorama_id: str,
    volunteer_id: int,
    kind: str,
    slot: int | None,
    now: datetime,
) -> Assignment:
    assignment = Assignment(
        assignment_id=new_id(),
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


def add_error(errors: list[dict[str, object]], field_name: str, message: str) -> None:
    errors.append({"field": field_name, "message": message})
