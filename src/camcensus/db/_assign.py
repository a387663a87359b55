"""Helpers shared by :mod:`camcensus.db.tasks` and :mod:`camcensus.db.review` (private).

Ids, times, the project by name, the row locks (one order: the volunteer, then the panorama,
then its assignments) and issuing or expiring an assignment. See :mod:`camcensus.db.tasks`
for the guarantees they serve.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from camcensus.db.errors import NotFound
from camcensus.db.models import Assignment, Panorama, Project, Volunteer

__all__ = [
    "LIVE",
    "RETRIES",
    "add_error",
    "expire_stale",
    "is_postgres",
    "issue_task",
    "lock_panorama",
    "lock_volunteer",
    "new_id",
    "open_assignment",
    "project_named",
    "utc_now",
]

#: Assignment statuses that hold a panorama's slot.
LIVE = ("open", "submitted")
#: Attempts at a contended insert before answering "try again".
RETRIES = 8


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


def lock_volunteer(session: Session, volunteer_id: int, *, postgres: bool) -> None:
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


def expire_stale(session: Session, project_id: int, now: datetime, *, postgres: bool) -> None:
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


def issue_task(
    session: Session,
    project: Project,
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
