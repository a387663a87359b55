"""Adaptive redundancy on the platform: a panorama's target number of answers.

After each counted tag answer of a project whose ``adaptive_rule`` is not ``fixed``,
:mod:`camcensus.db.tasks` stores :func:`panorama_target` as the panorama's ``k_target``. It
calls :func:`camcensus.quality.adaptive.adaptive_target` with:

- one ``(street, building, unknown)`` tuple per counted answer (:func:`panorama_answers`: the
  submission's standing tags by attachment), so two answers agree only when every category
  agrees and ``stop_unanimous`` keeps every per-category median of k = 3 unchanged
  (docs/quality.md, section 5);
- for ``stop_posterior``, the project's :class:`~camcensus.quality.adaptive.CountModel`
  (:func:`project_count_model`, fitted on the project's own answers and its gold panoramas,
  cached per process) and the panorama's number of machine tags (:func:`machine_tag_count`).
  Where at least :data:`DETECTOR_FIT_PANORAMAS` of the panoramas fitted on carry the
  detector's tags, the model fits the detector's recall and false-tag rate on them too (the
  gold panoramas' known counts pin them): the constants measured on the synthetic city hold
  only for that detector at a score of 0.5.

Until the project has :data:`PILOT_PANORAMAS` panoramas with at least 2 counted answers and
:data:`GOLD_PANORAMAS` gold panoramas answered at least twice, there is no model and
``stop_posterior`` asks k answers, as ``fixed``. These are the sizes the rule was measured
with (:func:`camcensus.quality.adaptive.simulate_adaptive`'s ``pilot=100`` and ``gold=75``,
benchmarks/bench_adaptive.py; docs/quality.md, Goal 3).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, bindparam, case, func, select
from sqlalchemy.orm import Session

from camcensus.db.engine import session_factory
from camcensus.db.models import Assignment, Panorama, Submission, Tag
from camcensus.quality.adaptive import CountModel, adaptive_target, fit_count_model

__all__ = [
    "DETECTOR_FIT_PANORAMAS",
    "GOLD_PANORAMAS",
    "INLINE_FIT_PANORAMAS",
    "MACHINE_TAG_SCORE",
    "PILOT_PANORAMAS",
    "RECOUNT_S",
    "REFIT_GROWTH",
    "REFIT_PANORAMAS",
    "clear_count_models",
    "count_model_rows",
    "machine_tag_count",
    "panorama_answers",
    "panorama_target",
    "project_count_model",
]

#: Non-gold panoramas with at least 2 counted answers needed before ``stop_posterior`` has a
#: model (the pilot of :func:`camcensus.quality.adaptive.simulate_adaptive`: 100 at k = 3).
PILOT_PANORAMAS = 100
#: Gold panoramas answered at least twice needed as well (the simulation's 75 × 2 answers).
GOLD_PANORAMAS = 75
#: Lowest detector score of a machine tag that counts as evidence for ``stop_posterior``.
#: ``detect run`` stores tags from 0.3 for volunteers to verify, but at 0.3 the synthetic-city
#: detector adds 6.4 tags per empty panorama (variance 12), and the rule saved 27.9% of tasks
#: instead of 32.9% under default volunteers (docs/quality.md, Goal 3, the real detector).
MACHINE_TAG_SCORE = 0.5
#: Panoramas fitted on (answered non-gold and gold) with machine tags needed before the model
#: fits the detector's rates (fewer: :func:`~camcensus.quality.count_model.stop_cost` uses
#: the documented constants).
DETECTOR_FIT_PANORAMAS = 50
#: The cached model is refitted when the project's model panoramas (answered + gold) grew by this
#: fraction since the last fit, and by at least :data:`REFIT_PANORAMAS`.
REFIT_GROWTH = 0.10
#: See :data:`REFIT_GROWTH`.
REFIT_PANORAMAS = 25
#: Largest first fit run inside the submit's transaction (EM: about 0.03 s on 175 panoramas,
#: 6 s on 10,000 on the 2-core test machine); larger ones run in a background thread.
INLINE_FIT_PANORAMAS = 1000
#: Seconds between two counts of a project's model panoramas (the model changes slowly; a
#: newly reached pilot size takes effect within this time).
RECOUNT_S = 30.0
#: ``fit_count_model``'s default ``t_max`` (most cameras a panorama may hold in the model);
#: raised to a gold panorama's true count when one holds more.
_T_MAX = 10

_A = Assignment.__table__.c
_S = Submission.__table__.c
_T = Tag.__table__.c
_P = Panorama.__table__.c

_STANDING = (_T.submission_id == _S.submission_id) & _T.current.is_(True)
_STANDING = _STANDING & _T.deleted.is_(False) & _T.machine.is_(False)


def _by(attachment: str) -> Any:
    return func.coalesce(func.sum(case((_T.attachment == attachment, 1), else_=0)), 0)


#: The counted tag answers of one panorama: standing volunteer tags by attachment.
_ANSWERS = (
    select(_by("street"), _by("building"), _by("unknown"))
    .select_from(Assignment.__table__)
    .join(Submission.__table__, _S.submission_id == _A.submission_id)
    .outerjoin(Tag.__table__, _STANDING)
    .where(_A.panorama_id == bindparam("p"), _A.kind == "tag", _A.status == "submitted")
    .group_by(_S.submission_id)
    .order_by(_S.submission_id)
)

#: Standing machine tags of the panorama's latest model submission (None: no such submission).
_LATEST_MODEL = (
    select(_S.submission_id)
    .where(_S.panorama_id == bindparam("p"), _S.kind == "model")
    .order_by(_S.submitted_at.desc(), _S.submission_id.desc())
    .limit(1)
    .scalar_subquery()
)
_COUNTED_MACHINE = (
    _T.machine.is_(True)
    & _T.current.is_(True)
    & _T.deleted.is_(False)
    & (_T.score >= MACHINE_TAG_SCORE)
)
_MACHINE_TAGS = select(
    _LATEST_MODEL,
    select(func.count(_T.tag_id))
    .where(_T.submission_id == _LATEST_MODEL, _COUNTED_MACHINE)
    .scalar_subquery(),
)

_GOLD_ANSWERED = (
    select(_S.panorama_id)
    .join(Panorama.__table__, _P.panorama_id == _S.panorama_id)
    .where(
        _P.project_id == bindparam("project"),
        _P.gold.is_(True),
        _S.gold.is_(True),
        _S.kind == "volunteer",
        _S.problem.is_(None),
    )
    .group_by(_S.panorama_id)
    .having(func.count() >= 2)
)


def _answered(at_least: int) -> Any:
    return (
        select(func.count())
        .select_from(Panorama.__table__)
        .where(_P.project_id == bindparam("project"), _P.gold.is_(False), _P.n_done >= at_least)
        .scalar_subquery()
    )


#: The pilot's size (non-gold panoramas with >= 2 answers: the gate of the first fit), the
#: non-gold panoramas the model is fitted on (>= 1 answer), the gold panoramas and the
#: detector's submissions on the project (a new ``detect run`` import changes the tags).
_SIZES = select(
    _answered(2),
    _answered(1),
    select(func.count()).select_from(_GOLD_ANSWERED.subquery()).scalar_subquery(),
    select(func.count())
    .select_from(Submission.__table__)
    .join(Panorama.__table__, _P.panorama_id == _S.panorama_id)
    .where(_P.project_id == bindparam("project"), _S.kind == "model")
    .scalar_subquery(),
)
#: n_cameras of every counted answer of the non-gold panoramas with at least one (the pilot's
#: and every later one's: see :func:`count_model_rows`).
_PILOT_ROWS = (
    select(_A.panorama_id, func.count(_T.tag_id))
    .select_from(Assignment.__table__)
    .join(Panorama.__table__, _P.panorama_id == _A.panorama_id)
    .join(Submission.__table__, _S.submission_id == _A.submission_id)
    .outerjoin(Tag.__table__, _STANDING)
    .where(
        _P.project_id == bindparam("project"),
        _P.gold.is_(False),
        _P.n_done >= 1,
        _A.kind == "tag",
        _A.status == "submitted",
    )
    .group_by(_A.panorama_id, _S.submission_id)
    .order_by(_A.panorama_id, _S.submission_id)
)
#: n_cameras of every gold answer of the gold panoramas answered at least twice, and the truth.
_GOLD_ROWS = (
    select(_S.panorama_id, _P.gold_answer, func.count(_T.tag_id))
    .select_from(Submission.__table__)
    .join(Panorama.__table__, _P.panorama_id == _S.panorama_id)
    .outerjoin(Tag.__table__, _STANDING)
    .where(
        _S.panorama_id.in_(_GOLD_ANSWERED),
        _S.gold.is_(True),
        _S.kind == "volunteer",
        _S.problem.is_(None),
    )
    .group_by(_S.panorama_id, _P.gold_answer, _S.submission_id)
    .order_by(_S.panorama_id, _S.submission_id)
)

#: Standing machine tags of every model submission on the project's panoramas, oldest first
#: (the latest per panorama counts, as in :func:`machine_tag_count`).
_PROJECT_MACHINE_TAGS = (
    select(_S.panorama_id, func.count(_T.tag_id))
    .select_from(Submission.__table__)
    .join(Panorama.__table__, _P.panorama_id == _S.panorama_id)
    .outerjoin(Tag.__table__, (_T.submission_id == _S.submission_id) & _COUNTED_MACHINE)
    .where(_P.project_id == bindparam("project"), _S.kind == "model")
    .group_by(_S.panorama_id, _S.submitted_at, _S.submission_id)
    .order_by(_S.panorama_id, _S.submitted_at, _S.submission_id)
)


def _conn(conn_or_session: Connection | Session) -> Connection:
    if isinstance(conn_or_session, Session):
        return conn_or_session.connection()
    return conn_or_session


def panorama_answers(
    conn_or_session: Connection | Session, panorama_id: str
) -> list[tuple[int, int, int]]:
    """Return the panorama's counted tag answers as ``(street, building, unknown)`` counts.

    One tuple per counted answer (a submitted ``tag`` task; problem reports and gold answers
    are not counted answers): its standing (current, non-deleted) volunteer tags by
    attachment. Machine tags are never included. One Core query.

    Parameters
    ----------
    conn_or_session
        A connection or a session (its connection and transaction are used).
    panorama_id
        The panorama.

    Returns
    -------
    list of tuple of int
        In submission id order (any order suits :func:`adaptive_target`).
    """
    rows = _conn(conn_or_session).execute(_ANSWERS, {"p": panorama_id}).all()
    return [(int(s), int(b), int(u)) for s, b, u in rows]


def machine_tag_count(conn: Connection | Session, panorama_id: str) -> int | None:
    """Return the number of standing machine tags on the panorama's model submission.

    The detector's detections on a panorama are one ``kind="model"`` submission with one
    machine tag per detection (:mod:`camcensus.db.verify`). Where several models' detections
    were imported, the latest submission counts. Only tags scored at least
    :data:`MACHINE_TAG_SCORE` count. Volunteers' verdicts on the tags are not used: the tags
    are the detector's independent opinion.

    Returns
    -------
    int or None
        None when the panorama has no model submission (the detector was not run on it).
    """
    sid, n = _conn(conn).execute(_MACHINE_TAGS, {"p": panorama_id}).one()
    return None if sid is None else int(n)


def _truth(answer_json: str | None) -> int:
    return len(json.loads(answer_json)) if answer_json else 0


def count_model_rows(
    conn: Connection | Session, project_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Return the answers, known counts and machine tags :func:`project_count_model` fits on.

    Rows are the project's non-gold panoramas with at least one counted answer (in panorama id
    order), then its gold panoramas answered at least twice (gold tasks without a problem
    report). Each row holds the answers' ``n_cameras`` (standing volunteer tags), padded with
    -1 (missing).

    Panoramas that ``stop_posterior`` ended after one answer stay in: the rule decides on the
    answers seen, so the answers it did not ask for are missing at random given those, and EM
    on every panorama is consistent. The panoramas with at least 2 answers alone are not: once
    the rule runs, the ones it ended after one answer are missing from them, and a refit on
    them alone misreads the prior (in the test, a first answer of 3 often ends a panorama:
    P(T = 3) 0.05 is refitted as 0.01-0.02; tests/test_quality_adaptive.py). Two departures
    remain: the rule stops on two answers that agree in every category while the fit sees
    their totals, and while fewer than :data:`DETECTOR_FIT_PANORAMAS` panoramas have machine
    tags the rule weighs tags the fit leaves out.

    Returns
    -------
    answers : numpy.ndarray
        Panoramas × answers counts (int64, -1 = missing).
    truth : numpy.ndarray
        Per row, the gold panorama's true count (its gold answer's tags), else -1.
    machine_tags : numpy.ndarray
        Per row, the standing machine tags of the panorama's latest model submission
        (:func:`machine_tag_count`), -1 where the detector was not run on it.
    pilot, gold : int
        Number of non-gold rows and of gold rows.
    """
    c = _conn(conn)
    params = {"project": project_id}
    per: dict[str, list[int]] = {}
    for pid, n in c.execute(_PILOT_ROWS, params).all():
        per.setdefault(str(pid), []).append(int(n))
    gold: dict[str, list[int]] = {}
    known: dict[str, int] = {}
    for pid, answer, n in c.execute(_GOLD_ROWS, params).all():
        gold.setdefault(str(pid), []).append(int(n))
        known[str(pid)] = _truth(answer)
    lists = list(per.values()) + list(gold.values())
    width = max((len(x) for x in lists), default=2)
    answers = np.full((len(lists), width), -1, dtype="int64")
    for i, x in enumerate(lists):
        answers[i, : len(x)] = x
    truth = np.array([-1] * len(per) + [known[p] for p in gold], dtype="int64")
    latest = {str(pid): int(n) for pid, n in c.execute(_PROJECT_MACHINE_TAGS, params).all()}
    tags = np.array([latest.get(p, -1) for p in [*per, *gold]], dtype="int64")
    return answers, truth, tags, len(per), len(gold)


@dataclass
class _Entry:
    model: CountModel | None = None
    size: int = 0  # panoramas fitted on (answered non-gold + gold) at the last fit
    detector_runs: int = 0  # the project's model submissions at the last fit
    fits: int = 0
    fitted_at: datetime | None = None
    counted_at: datetime | None = None
    fitting: threading.Thread | None = None  # a background refit in progress
    busy: bool = False  # a first fit in progress in a caller's transaction


_LOCK = threading.Lock()
_MODELS: dict[tuple[str, int], _Entry] = {}
_LOG = logging.getLogger(__name__)


def clear_count_models() -> None:
    """Forget every cached project model (tests; after restoring a database)."""
    with _LOCK:
        _MODELS.clear()


def _key(session: Session, project_id: int) -> tuple[str, int]:
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    return url, int(project_id)


def _fit_rows(answers: np.ndarray, truth: np.ndarray, tags: np.ndarray) -> CountModel:
    t_max = max(_T_MAX, int(truth.max(initial=-1)))
    enough = int((tags >= 0).sum()) >= DETECTOR_FIT_PANORAMAS
    return fit_count_model(answers, truth=truth, machine_tags=tags if enough else None, t_max=t_max)


def _store(entry: _Entry, model: CountModel, fitted_on: tuple[int, int], now: datetime) -> None:
    """Cache the model with what it was fitted on: (panoramas, model submissions)."""
    with _LOCK:
        entry.model, entry.fitting, entry.busy = model, None, False
        entry.size, entry.detector_runs = fitted_on
        entry.fits += 1
        entry.fitted_at = now


def _refit(
    engine: Engine, entry: _Entry, project_id: int, fitted_on: tuple[int, int], now: datetime
) -> None:
    """Refit in a thread of its own, on its own read-only connection (committed answers; on
    SQLite a deferred transaction, which never blocks writers)."""
    try:
        with session_factory(engine, readonly=True)() as session:
            answers, truth, tags, _, _ = count_model_rows(session, project_id)
        model = _fit_rows(answers, truth, tags)
    except Exception:  # the previous model stays; the next count tries again
        _LOG.exception("camcensus: refitting project %s's count model failed", project_id)
        with _LOCK:
            entry.fitting = None
        return
    _store(entry, model, fitted_on, now)


def project_count_model(
    session: Session, project_id: int, *, now: datetime | None = None
) -> CountModel | None:
    """Return ``stop_posterior``'s count model for the project, fitted on its own answers.

    :func:`camcensus.quality.adaptive.fit_count_model` on :func:`count_model_rows` (``truth``
    = the gold panoramas' known counts). The model is cached per process, keyed by database
    URL and project. The project's model panoramas (answered non-gold + gold) are counted at
    most once every :data:`RECOUNT_S` seconds (one indexed query), and the model is refitted
    only when they grew by :data:`REFIT_GROWTH` and by at least :data:`REFIT_PANORAMAS` since
    the last fit, or when the number of the project's model submissions changed (the
    detector was run again, perhaps another model: its rates must be refitted), so a submit
    normally costs no query and no fit. A first fit on at most
    :data:`INLINE_FIT_PANORAMAS` panoramas (the pilot: some 175, tens of ms) runs in the
    caller's transaction; any other fit runs in a background thread on its own read-only
    connection (EM on 10,000 panoramas takes seconds, and a submit on SQLite holds the write
    lock) while callers keep the previous model (None before the first). Thread-safe (one
    lock).

    Parameters
    ----------
    session
        The request's session (its transaction reads the counts and the first fit's rows).
    project_id
        The project.
    now
        The time of the call (default: the clock); tests step it past :data:`RECOUNT_S`.

    Returns
    -------
    CountModel or None
        None until the project has :data:`PILOT_PANORAMAS` non-gold panoramas with at least 2
        counted answers and :data:`GOLD_PANORAMAS` gold panoramas answered at least twice.
    """
    now = now or datetime.now(UTC)
    key = _key(session, project_id)
    with _LOCK:
        entry = _MODELS.setdefault(key, _Entry())
        last = entry.counted_at
        if last is not None and (now - last).total_seconds() < RECOUNT_S:
            return entry.model
        entry.counted_at = now
    conn = session.connection()
    sizes = conn.execute(_SIZES, {"project": project_id}).one()
    pilot, answered, gold, runs = (int(x) for x in sizes)
    if pilot < PILOT_PANORAMAS or gold < GOLD_PANORAMAS:
        return None
    size = answered + gold
    with _LOCK:
        grown = size - entry.size
        due = (
            entry.model is None
            or (grown >= REFIT_PANORAMAS and grown >= REFIT_GROWTH * entry.size)
            or runs != entry.detector_runs
        )
        if not due or entry.fitting is not None or entry.busy:
            return entry.model
        if entry.model is not None or size > INLINE_FIT_PANORAMAS:
            engine = session.get_bind().engine
            entry.fitting = threading.Thread(
                target=_refit,
                args=(engine, entry, project_id, (size, runs), now),
                name=f"camcensus-refit-{project_id}",
                daemon=True,
            )
            entry.fitting.start()
            return entry.model
        entry.busy = True
    try:
        answers, truth, tags, _, _ = count_model_rows(conn, project_id)
        model = _fit_rows(answers, truth, tags)
    except BaseException:
        with _LOCK:
            entry.busy = False
        raise
    _store(entry, model, (size, runs), now)
    return model


def _wait(session: Session, project_id: int) -> int:
    """Wait for a refit in progress; return how many times the model was fitted (tests)."""
    with _LOCK:
        entry = _MODELS.get(_key(session, project_id))
        thread = None if entry is None else entry.fitting
    if thread is not None:
        thread.join()
    with _LOCK:
        return 0 if entry is None else entry.fits


def panorama_target(
    session: Session,
    *,
    panorama_id: str,
    project_id: int,
    k: int,
    rule: str,
    k_max: int,
    now: datetime | None = None,
) -> int:
    """Return how many counted answers the panorama needs, from its answers so far.

    :func:`camcensus.quality.adaptive.adaptive_target` on :func:`panorama_answers` (one
    category tuple per answer), with, for ``stop_posterior``, :func:`project_count_model` and
    :func:`machine_tag_count`.

    Parameters
    ----------
    session
        The submit's session.
    panorama_id, project_id
        The panorama and its project.
    k, rule, k_max
        The project's volunteers per panorama, ``adaptive_rule`` and most volunteers
        ``extend_disagreement`` may ask for.
    now
        The time of the call, for :func:`project_count_model` (default: the clock).

    Returns
    -------
    int
        The panorama's new ``k_target``.
    """
    answers = panorama_answers(session, panorama_id)
    model: CountModel | None = None
    tags: int | None = None
    if rule == "stop_posterior":
        model = project_count_model(session, project_id, now=now)
        if model is not None:
            tags = machine_tag_count(session, panorama_id)
    return adaptive_target(answers, k=k, rule=rule, k_max=k_max, model=model, machine_tags=tags)
