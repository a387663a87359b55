"""Progress of a project: each panorama's status, the numbers and the live progress map.

A panorama's status (:func:`panorama_status`, :func:`status_clause` in SQL) is ``done`` with
the counted answers it needs (``n_done >= coalesce(k_target, k)``: the adaptive rule's target
``panoramas.k_target`` when :func:`camcensus.db.tasks.submit` set one, else the project's k),
else ``problem`` when more than half of the project's k volunteers reported a problem
(``2 * n_problem > k``: retired, given to nobody else, as :mod:`camcensus.db.tasks` decides),
else ``in_progress`` while a slot is live, else ``todo``. Gold panoramas are left out (they
never count toward completion). :mod:`camcensus.db.projects` re-exports these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from camcensus.db.errors import NotFound
from camcensus.db.models import Panorama, Project, Submission, Tag

__all__ = [
    "PANORAMA_STATUSES",
    "answers_needed",
    "panorama_status",
    "progress_geojson",
    "project_progress",
    "status_clause",
]

#: What :func:`panorama_status` returns.
PANORAMA_STATUSES = ("todo", "in_progress", "done", "problem")


def answers_needed(k: Any) -> ColumnElement[int]:
    """Return the SQL count of answers a panorama needs: ``coalesce(k_target, k)``.

    ``k`` is a number or a column (``Project.k`` in a query joined to ``projects``).
    """
    return func.coalesce(Panorama.k_target, k)


def panorama_status(
    n_done: int, n_live: int, n_problem: int, k: int, k_target: int | None = None
) -> str:
    """Return a panorama's status from its counters (module docstring).

    ``k`` is the project's k; ``k_target`` the panorama's adaptive target (None: k).
    """
    if n_done >= (k if k_target is None else k_target):
        return "done"
    if 2 * n_problem > k:
        return "problem"
    return "in_progress" if n_live > 0 else "todo"


def status_clause(status: str, k: Any) -> ColumnElement[bool]:
    """Return the SQL condition on ``panoramas`` of :func:`panorama_status` being ``status``.

    ``k`` is a number or a column (``Project.k`` in a query joined to ``projects``).

    Raises
    ------
    ValueError
        A status not in :data:`PANORAMA_STATUSES`.
    """
    p = Panorama
    done: ColumnElement[bool] = p.n_done >= answers_needed(k)
    problem = ~done & (2 * p.n_problem > k)
    rest = ~done & (2 * p.n_problem <= k)
    clauses: dict[str, ColumnElement[bool]] = {
        "done": done,
        "problem": problem,
        "in_progress": rest & (p.n_live > 0),
        "todo": rest & (p.n_live == 0),
    }
    if status not in clauses:
        raise ValueError(f"status {status!r} is not one of {PANORAMA_STATUSES}")
    return clauses[status]


def _project_row(session: Session, name: str) -> Project:
    project = session.scalars(select(Project).where(Project.name == name)).one_or_none()
    if project is None:
        raise NotFound(
            f"No project is named {name!r}.",
            errors=[{"field": "project", "message": "use a name from GET /api/projects"}],
        )
    return project


def project_progress(session: Session, name: str) -> dict[str, int]:
    """Return a project's progress numbers.

    Keys: ``panoramas`` (not gold), ``done`` (the counted answers each needs), ``problem``
    (retired as a problem panorama), ``in_progress``, ``todo`` (the four statuses of
    :func:`panorama_status`), ``submissions`` (volunteer submissions on non-gold panoramas),
    ``problems`` (of them, problem reports), ``volunteers`` (distinct), ``gold`` (gold
    panoramas), ``k`` (the project's).
    """
    project = _project_row(session, name)
    k = project.k
    p = Panorama
    counts = session.execute(
        select(
            func.count().filter(p.gold.is_(False)),
            func.count().filter(p.gold.is_(False), status_clause("done", k)),
            func.count().filter(p.gold.is_(False), status_clause("in_progress", k)),
            func.count().filter(p.gold.is_(False), status_clause("todo", k)),
            func.count().filter(p.gold.is_(True)),
            func.count().filter(p.gold.is_(False), status_clause("problem", k)),
        ).where(p.project_id == project.project_id)
    ).one()
    subs = session.execute(
        select(
            func.count(),
            func.count(Submission.problem),
            func.count(func.distinct(Submission.decoder_id)),
        )
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .where(
            Panorama.project_id == project.project_id,
            Submission.kind == "volunteer",
            Submission.gold.is_(False),
        )
    ).one()
    return {
        "panoramas": int(counts[0]),
        "done": int(counts[1]),
        "problem": int(counts[5]),
        "in_progress": int(counts[2]),
        "todo": int(counts[3]),
        "submissions": int(subs[0]),
        "problems": int(subs[1]),
        "volunteers": int(subs[2]),
        "gold": int(counts[4]),
        "k": int(k),
    }


def _agreement(counts: Sequence[int]) -> str:
    """``agree`` (all equal), ``within_one`` (max - min <= 1) or ``disagree``."""
    from camcensus.aggregate import agreement_class

    if str(agreement_class(np.asarray([counts]))[0]) == "Unanimous":
        return "agree"
    return "within_one" if max(counts) - min(counts) <= 1 else "disagree"


def progress_geojson(session: Session, name: str, *, live_problems: bool = True) -> dict[str, Any]:
    """Return the progress map: a FeatureCollection with one Point per (non-gold) panorama.

    Properties: ``panorama_id``, ``status`` (``todo`` | ``in_progress`` | ``done`` |
    ``problem``, :func:`panorama_status`), ``n_done``, ``k`` (the answers this panorama
    needs: its adaptive target, else the project's k), ``agreement`` (for done panoramas,
    from the number of standing tags in each of its counted answers: ``agree`` |
    ``within_one`` | ``disagree``; else null) and ``problems`` (problem reports).

    With ``live_problems=False`` (the public map) ``problems`` is null until a panorama is
    done or retired: the next volunteer must not learn that someone reported a problem there.
    """
    project = _project_row(session, name)
    k = project.k
    rows = session.execute(
        select(
            Panorama.panorama_id,
            Panorama.lon,
            Panorama.lat,
            Panorama.n_done,
            Panorama.n_live,
            Panorama.n_problem,
            Panorama.k_target,
        )
        .where(Panorama.project_id == project.project_id, Panorama.gold.is_(False))
        .order_by(Panorama.panorama_id)
    ).all()
    standing = (
        select(Tag.submission_id, func.count().label("n"))
        .where(Tag.current.is_(True), Tag.deleted.is_(False))
        .group_by(Tag.submission_id)
        .subquery()
    )
    subs = session.execute(
        select(
            Submission.panorama_id,
            func.coalesce(standing.c.n, 0),
            case((Submission.problem.is_(None), 0), else_=1),
        )
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .outerjoin(standing, standing.c.submission_id == Submission.submission_id)
        .where(
            Panorama.project_id == project.project_id,
            Panorama.gold.is_(False),
            Submission.kind == "volunteer",
            Submission.gold.is_(False),
        )
    ).all()
    tag_counts: dict[str, list[int]] = {}
    problems: dict[str, int] = {}
    for pid, n, problem in subs:
        if problem:
            problems[pid] = problems.get(pid, 0) + 1
        else:
            tag_counts.setdefault(pid, []).append(int(n))
    features = []
    for pid, lon, lat, n_done, n_live, n_problem, k_target in rows:
        needed = int(k) if k_target is None else int(k_target)
        status = panorama_status(int(n_done), int(n_live), int(n_problem), int(k), needed)
        counts = tag_counts.get(pid, [])
        agreement = _agreement(counts) if status == "done" and counts else None
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
                "properties": {
                    "panorama_id": pid,
                    "status": status,
                    "n_done": int(n_done),
                    "k": needed,
                    "agreement": agreement,
                    "problems": problems.get(pid, 0)
                    if live_problems or status in ("done", "problem")
                    else None,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
