"""Adaptive redundancy on the platform (camcensus.db.adaptive): answers as category tuples,
the project's count model for ``stop_posterior`` (pilot and gold sizes, cache) and the
panorama's machine tags."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, update

from camcensus.db import adaptive as db_adaptive
from camcensus.db import projects as db_projects
from camcensus.db.models import Assignment, Panorama, Project, Submission, Tag
from camcensus.quality.adaptive import adaptive_target, fit_count_model
from test_db_tasks import (
    T0,
    Db,
    db,
    make_project,
    postgis_copy,
    postgis_template,
    submit,
    tag,
    take,
)

__all__ = ["db", "postgis_copy", "postgis_template"]  # fixtures used here (imported)

ATTACH = ("street", "building", "unknown")


def _set_rule(db: Db, rule: str, project: str = "city") -> None:
    with db.sessions.begin() as session:
        session.execute(update(Project).where(Project.name == project).values(adaptive_rule=rule))


def _k_target(db: Db, pid: str) -> int | None:
    with db.sessions() as session:
        row = session.get(Panorama, pid)
        assert row is not None
        return row.k_target


def _answer(db: Db, vid: int, counts: tuple[int, int, int]) -> str:
    a = take(db, vid)
    assert a is not None
    tags = [
        tag(f"{name}{j}", heading=30.0 * (3 * i + j), attachment=name)
        for i, name in enumerate(ATTACH)
        for j in range(counts[i])
    ]
    submit(db, a, tags)
    return a.panorama_id


# --------------------------------------------------------------------------- category tuples
def _target(db: Db, pid: str, rule: str) -> int:
    with db.sessions() as session:
        return db_adaptive.panorama_target(
            session, panorama_id=pid, project_id=1, k=3, rule=rule, k_max=5
        )


def test_stop_unanimous_compares_every_category(db: Db) -> None:
    make_project(db, n=2, k=3)  # rule "fixed": the platform leaves k_target alone
    v = db.volunteers(2)
    # Each volunteer answers p1 first (in progress first), then p2.
    p1 = _answer(db, v[0], (2, 0, 0))
    assert _answer(db, v[1], (1, 1, 0)) == p1
    p2 = _answer(db, v[0], (1, 0, 1))
    assert _answer(db, v[1], (1, 0, 1)) == p2 != p1
    with db.sessions() as session:
        assert sorted(db_adaptive.panorama_answers(session, p1)) == [(1, 1, 0), (2, 0, 0)]
        assert db_adaptive.panorama_answers(session, p2) == [(1, 0, 1), (1, 0, 1)]
    # Equal totals (2 and 2), different attachments: a third answer is needed (the totals
    # alone would stop, the lossy variant).
    assert adaptive_target([2, 2], rule="stop_unanimous") == 2
    assert _target(db, p1, "stop_unanimous") == 3
    assert _target(db, p1, "stop_unanimous_zero") == 3
    assert _target(db, p1, "fixed") == 3
    # Equal tuples: two answers are enough.
    assert _target(db, p2, "stop_unanimous") == 2
    assert _target(db, p2, "stop_unanimous_zero") == 3  # not zero
    assert _target(db, p2, "stop_agree_or_low") == 2


def test_platform_stores_the_category_target(db: Db) -> None:
    pids = make_project(db, n=2, k=3)
    _set_rule(db, "stop_unanimous")
    v = db.volunteers(3)
    _answer(db, v[0], (2, 0, 0))
    _answer(db, v[1], (1, 1, 0))
    (p1,) = [p for p in pids if _k_target(db, p) is not None]
    assert _k_target(db, p1) == 3  # equal totals, different attachments: not stopped
    _answer(db, v[2], (0, 0, 1))  # p1 is still open: the third volunteer answers it
    (p2,) = [p for p in pids if p != p1]
    _answer(db, v[0], (1, 0, 1))
    _answer(db, v[1], (1, 0, 1))
    assert _k_target(db, p2) == 2
    with db.sessions() as session:
        assert len(db_adaptive.panorama_answers(session, p1)) == 3


def test_panorama_answers_reads_standing_tags_only(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    # A building tag replaced by an unknown one, a deleted street tag, a standing street tag.
    versions = [
        tag("b", heading=10.0, attachment="building"),
        tag("b2", heading=12.0, attachment="unknown", replaces="b"),
        tag("s", heading=50.0, attachment="street", deleted=True),
        tag("s2", heading=90.0, attachment="street"),
    ]
    submit(db, a, versions)
    with db.sessions() as session:
        assert db_adaptive.panorama_answers(session, pid) == [(1, 0, 1)]
    # A problem report is not a counted answer.
    (v2,) = db.volunteers(1)
    b = take(db, v2)
    assert b is not None and b.panorama_id == pid
    submit(db, b, problem="no_image")
    with db.sessions() as session:
        assert db_adaptive.panorama_answers(session, pid) == [(1, 0, 1)]


# --------------------------------------------------------------------------- machine tags
def _model_submission(
    db: Db, pid: str, tags: list[dict[str, Any]], *, kind: str = "model", at: Any = T0
) -> str:
    sid = secrets.token_hex(8)
    with db.sessions.begin() as session:
        session.execute(
            insert(Submission).values(
                submission_id=sid,
                panorama_id=pid,
                decoder_id="cam-model-1" if kind == "model" else "expert-x",
                assignment_id=None,
                kind=kind,
                submitted_at=at,
                no_camera=not tags,
            )
        )
        for i, t in enumerate(tags):
            session.execute(
                insert(Tag).values(
                    tag_id=f"{sid}-{i}",
                    submission_id=sid,
                    heading_deg=10.0 * i,
                    pitch_deg=5.0,
                    fov_deg=75.0,
                    attachment="unknown",
                    camera_type="dome",
                    machine=t.get("machine", True),
                    score=t.get("score", 0.9),
                    deleted=t.get("deleted", False),
                    current=t.get("current", True),
                    created_at=at,
                )
            )
    return sid


def test_machine_tag_count_only_from_model_submissions(db: Db) -> None:
    p1, p2, p3 = make_project(db, n=3, k=3)
    (vid,) = db.volunteers(1)
    answered_by_volunteer = _answer(db, vid, (2, 1, 0))  # never counted as machine tags
    standing: dict[str, Any] = {}
    _model_submission(
        db,
        p1,
        [
            standing,
            standing,
            standing,
            {"deleted": True},
            {"current": False},
            {"score": db_adaptive.MACHINE_TAG_SCORE - 0.01},  # too weak to count
            {"score": db_adaptive.MACHINE_TAG_SCORE},
        ],
    )
    # Machine-flagged tags on a non-model submission do not count.
    _model_submission(db, p2, [standing, standing], kind="expert")
    _model_submission(db, p3, [])  # the detector ran and found nothing
    with db.sessions() as session:
        assert db_adaptive.machine_tag_count(session, p1) == 4
        assert db_adaptive.machine_tag_count(session, p2) is None
        assert db_adaptive.machine_tag_count(session.connection(), p3) == 0
        answered = [p for p in (p1, p2, p3) if db_adaptive.panorama_answers(session, p)]
        assert answered == [answered_by_volunteer]
        expected = {p1: 4, p2: None, p3: 0}[answered_by_volunteer]
        assert db_adaptive.machine_tag_count(session, answered_by_volunteer) == expected


# --------------------------------------------------------------------------- the count model
def _bulk_project(
    db: Db, *, pilot: int, gold: int, seed: int = 0, extra: int = 0
) -> tuple[int, np.ndarray, np.ndarray]:
    """A project with ``pilot`` panoramas answered 3 times (one with 2), ``gold`` gold
    panoramas answered twice (one gold answer a problem report) and one panorama answered
    once, written directly (fast). Returns the project id and the expected fit rows."""
    rng = np.random.default_rng(seed)
    n = pilot + gold + 1 + extra
    pids = make_project(db, n=n, k=3)
    vids = db.volunteers(3)
    with db.sessions() as session:
        project_id = int(session.query(Project.project_id).filter(Project.name == "city").scalar())
    truth_of = {p: int(rng.integers(0, 4)) for p in pids[pilot : pilot + gold]}
    for p, t in truth_of.items():
        answer = [
            {
                "heading_deg": 20.0 * i,
                "pitch_deg": 0.0,
                "attachment": "street",
                "camera_type": "dome",
            }
            for i in range(t)
        ]
        db.call(db_projects.mark_gold, p, answer)
    assignments: list[dict[str, Any]] = []
    submissions: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    expected_pilot: list[list[int]] = []
    expected_gold: list[list[int]] = []
    done: dict[str, int] = {}

    def add(p: str, j: int, n_tags: int, *, gold_task: bool, problem: str | None = None) -> None:
        sid = f"{p}-s{j}"
        aid = f"{p}-a{j}"
        assignments.append(
            {
                "assignment_id": aid,
                "project_id": project_id,
                "panorama_id": p,
                "volunteer_id": vids[j],
                "kind": "gold" if gold_task else "tag",
                "slot": None if gold_task else j + 1,
                "issued_at": T0,
                "expires_at": T0,
                "status": "submitted",
                "submission_id": sid,
            }
        )
        submissions.append(
            {
                "submission_id": sid,
                "panorama_id": p,
                "decoder_id": f"v{j}",
                "assignment_id": aid,
                "kind": "volunteer",
                "submitted_at": T0,
                "no_camera": n_tags == 0,
                "problem": problem,
                "gold": gold_task,
            }
        )
        for i in range(n_tags):
            tags.append(
                {
                    "tag_id": f"{sid}-t{i}",
                    "submission_id": sid,
                    "heading_deg": 15.0 * i,
                    "pitch_deg": 0.0,
                    "fov_deg": 75.0,
                    "attachment": ATTACH[i % 3],
                    "camera_type": "dome",
                    "created_at": T0,
                }
            )

    for idx, p in enumerate(pids[:pilot]):
        m = 2 if idx == 0 else 3
        row = [int(x) for x in rng.poisson(1.0, m)]
        for j, c in enumerate(row):
            add(p, j, c, gold_task=False)
        done[p] = m
        expected_pilot.append(row + [-1] * (3 - m))
    for idx, p in enumerate(truth_of):
        row = [int(x) for x in rng.poisson(max(truth_of[p], 0.3), 2)]
        for j, c in enumerate(row):
            add(p, j, c, gold_task=True)
        if idx == 0:
            add(p, 2, 0, gold_task=True, problem="other")  # not an answer
        expected_gold.append([*row, -1])
    single = pids[pilot + gold]
    add(single, 0, 2, gold_task=False)  # one answer: not in the pilot's size, in the fit
    done[single] = 1
    expected_pilot.append([2, -1, -1])
    with db.sessions.begin() as session:
        session.execute(insert(Assignment), assignments)
        session.execute(insert(Submission), submissions)
        if tags:
            session.execute(insert(Tag), tags)
        for p, m in done.items():
            session.execute(
                update(Panorama).where(Panorama.panorama_id == p).values(n_done=m, n_live=m)
            )
    answers = np.array(expected_pilot + expected_gold, dtype="int64").reshape(-1, 3)
    truth = np.array([-1] * (pilot + 1) + list(truth_of.values()), dtype="int64")
    return project_id, answers, truth


def test_no_model_below_pilot_and_gold_sizes(db: Db) -> None:
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, truth = _bulk_project(db, pilot=pilot - 1, gold=gold)
    with db.sessions() as session:
        rows, known, tags, n_pilot, n_gold = db_adaptive.count_model_rows(session, project_id)
        assert (tags == -1).all()  # the detector was not run on any of them
        assert (n_pilot, n_gold) == (pilot - 1 + 1, gold)  # the pilot and the single answer
        np.testing.assert_array_equal(rows, answers)
        np.testing.assert_array_equal(known, truth)
        assert db_adaptive.project_count_model(session, project_id) is None
        # stop_posterior without a model asks k, as fixed: one answer of 0 does not stop.
        single = f"city-{pilot - 1 + gold:04d}"
        assert db_adaptive.panorama_answers(session, single) == [(1, 1, 0)]
        target = db_adaptive.panorama_target(
            session, panorama_id=single, project_id=project_id, k=3, rule="stop_posterior", k_max=5
        )
        assert target == 3


def test_model_fitted_at_pilot_sizes_and_cached(db: Db) -> None:
    db_adaptive.clear_count_models()
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, truth = _bulk_project(db, pilot=pilot, gold=gold, seed=1, extra=30)
    expected = fit_count_model(answers, truth=truth)
    later = [T0 + timedelta(seconds=60 * i) for i in range(4)]
    with db.sessions() as session:
        model = db_adaptive.project_count_model(session, project_id, now=later[0])
        assert model is not None
        assert model.detection == pytest.approx(expected.detection, rel=1e-9)
        assert model.false_rate == pytest.approx(expected.false_rate, rel=1e-9)
        np.testing.assert_allclose(model.prior, expected.prior, rtol=1e-9, atol=1e-15)
        assert db_adaptive._wait(session, project_id) == 1
        # The next call reuses it: no refit (and, within RECOUNT_S, no count either).
        assert db_adaptive.project_count_model(session, project_id, now=later[0]) is model
        assert db_adaptive._wait(session, project_id) == 1
    # 24 more complete panoramas (of 175): fewer than 25, no refit.
    extra = [f"city-{pilot + gold + 1 + i:04d}" for i in range(30)]
    with db.sessions.begin() as session:
        session.execute(
            update(Panorama).where(Panorama.panorama_id.in_(extra[:24])).values(n_done=3, n_live=3)
        )
    with db.sessions() as session:
        assert db_adaptive.project_count_model(session, project_id, now=later[1]) is model
        assert db_adaptive._wait(session, project_id) == 1
    # 30 more (>= 25 and >= 10 %): refitted once, in the background; the caller keeps the
    # previous model meanwhile (those panoramas have no answer rows, so the fit sees the same
    # answers: equal parameters; only the count moved).
    with db.sessions.begin() as session:
        session.execute(
            update(Panorama).where(Panorama.panorama_id.in_(extra)).values(n_done=3, n_live=3)
        )
    with db.sessions() as session:
        assert db_adaptive.project_count_model(session, project_id, now=later[2]) is model
        assert db_adaptive._wait(session, project_id) == 2
        again = db_adaptive.project_count_model(session, project_id, now=later[3])
        assert again is not None and again is not model
        assert again.detection == pytest.approx(model.detection, rel=1e-12)
        assert db_adaptive._wait(session, project_id) == 2
        # stop_posterior's target uses the model and the machine tags, as adaptive_target.
        single = f"city-{pilot + gold:04d}"
        want = adaptive_target([(1, 1, 0)], k=3, rule="stop_posterior", model=again)
        got = db_adaptive.panorama_target(
            session, panorama_id=single, project_id=project_id, k=3, rule="stop_posterior", k_max=5
        )
        assert got == want
    _model_submission(db, single, [{}] * 6)
    with db.sessions() as session:
        want_tags = adaptive_target(
            [(1, 1, 0)], k=3, rule="stop_posterior", model=again, machine_tags=6
        )
        got_tags = db_adaptive.panorama_target(
            session, panorama_id=single, project_id=project_id, k=3, rule="stop_posterior", k_max=5
        )
        assert got_tags == want_tags


def test_platform_stop_posterior_uses_the_model_and_machine_tags(db: Db) -> None:
    db_adaptive.clear_count_models()
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, _, _ = _bulk_project(db, pilot=pilot, gold=gold, seed=2)
    _set_rule(db, "stop_posterior")
    single = f"city-{pilot + gold:04d}"  # one answer so far, (1, 1, 0)
    _model_submission(db, single, [{}] * 2)
    v1, v2 = db.volunteers(2)
    assert _answer(db, v1, (1, 0, 0)) == "city-0000"  # the pilot panorama with 2 answers first
    assert _answer(db, v2, (0, 0, 0)) == single
    with db.sessions() as session:
        model = db_adaptive.project_count_model(session, project_id)
        assert model is not None and db_adaptive._wait(session, project_id) == 1
    answers = [(1, 1, 0), (0, 0, 0)]
    want = adaptive_target(answers, k=3, rule="stop_posterior", model=model, machine_tags=2)
    assert want != adaptive_target(answers, k=3, rule="stop_posterior")  # the model decides
    assert _k_target(db, single) == want


def test_model_fits_the_detectors_rates_from_machine_tags(db: Db) -> None:
    db_adaptive.clear_count_models()
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, truth = _bulk_project(db, pilot=pilot, gold=gold, seed=4)
    rng = np.random.default_rng(4)
    pids = [f"city-{i:04d}" for i in range(pilot)]  # the fit's first rows
    expected_tags = np.full(len(answers), -1, dtype="int64")
    # The detector ran twice on the first 60 panoramas (the later run counts), never on the
    # rest; a deleted or superseded machine tag does not count.
    for i, pid in enumerate(pids[:60]):
        n = int(rng.poisson(1.5))
        _model_submission(db, pid, [{}] * 4, at=T0 - timedelta(days=1))
        weak = {"score": 0.3}
        _model_submission(db, pid, [{}] * n + [{"deleted": True}, {"current": False}, weak])
        expected_tags[i] = n
    with db.sessions() as session:
        _, _, tags, _, _ = db_adaptive.count_model_rows(session, project_id)
        np.testing.assert_array_equal(tags, expected_tags)
        model = db_adaptive.project_count_model(session, project_id)
        assert model is not None and db_adaptive._wait(session, project_id) == 1
    expected = fit_count_model(answers, truth=truth, machine_tags=expected_tags)
    assert expected.detector_recall is not None
    assert model.detector_recall == pytest.approx(expected.detector_recall, rel=1e-9)
    assert model.detector_false_rate == pytest.approx(expected.detector_false_rate, rel=1e-9)
    # Below DETECTOR_FIT_PANORAMAS panoramas with tags the detector's rates are not fitted;
    # from that many they are.
    enough = db_adaptive.DETECTOR_FIT_PANORAMAS
    few = np.where(np.arange(len(answers)) < enough - 1, expected_tags.clip(0), -1)
    assert db_adaptive._fit_rows(answers, truth, few).detector_recall is None
    just = np.where(np.arange(len(answers)) < enough, expected_tags.clip(0), -1)
    assert db_adaptive._fit_rows(answers, truth, just).detector_recall is not None


def test_a_new_detector_run_refits_the_model(db: Db) -> None:
    db_adaptive.clear_count_models()
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, truth = _bulk_project(db, pilot=pilot, gold=gold, seed=6)
    later = [T0 + timedelta(seconds=60 * i) for i in range(3)]
    with db.sessions() as session:
        first = db_adaptive.project_count_model(session, project_id, now=later[0])
        assert first is not None and first.detector_recall is None
    # The detector is run on 60 panoramas: no panorama was added, but the model is refitted
    # (in the background) and now has the detector's rates.
    tags = np.full(len(answers), -1, dtype="int64")
    for i in range(60):
        tags[i] = i % 3
        _model_submission(db, f"city-{i:04d}", [{}] * int(tags[i]))
    with db.sessions() as session:
        assert db_adaptive.project_count_model(session, project_id, now=later[1]) is first
        assert db_adaptive._wait(session, project_id) == 2
        second = db_adaptive.project_count_model(session, project_id, now=later[2])
    expected = fit_count_model(answers, truth=truth, machine_tags=tags)
    assert second is not None and expected.detector_recall is not None
    assert second.detector_recall == pytest.approx(expected.detector_recall, rel=1e-9)
    # Nothing changed since: no third fit.
    with db.sessions() as session:
        later3 = later[2] + timedelta(seconds=60)
        assert db_adaptive.project_count_model(session, project_id, now=later3) is second
        assert db_adaptive._wait(session, project_id) == 2


def test_single_answer_panoramas_count_in_the_fit_size(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 pilot + 75 gold panoramas and one answered once: the fit reads 176 rows, so with an
    # inline limit of 175 the first fit goes to the background (it counted 175 before the
    # single-answer panoramas joined the fit).
    db_adaptive.clear_count_models()
    monkeypatch.setattr(db_adaptive, "INLINE_FIT_PANORAMAS", 175)
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, _ = _bulk_project(db, pilot=pilot, gold=gold, seed=5)
    assert len(answers) == 176
    with db.sessions() as session:
        assert db_adaptive.project_count_model(session, project_id, now=T0) is None
        assert db_adaptive._wait(session, project_id) == 1


def test_large_first_fit_runs_in_the_background(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_adaptive, "INLINE_FIT_PANORAMAS", 100)  # below the 175 here
    pilot, gold = db_adaptive.PILOT_PANORAMAS, db_adaptive.GOLD_PANORAMAS
    project_id, answers, truth = _bulk_project(db, pilot=pilot, gold=gold, seed=3)
    expected = fit_count_model(answers, truth=truth)
    with db.sessions() as session:
        # Fitted on its own read-only connection while this session's transaction is open.
        assert db_adaptive.project_count_model(session, project_id, now=T0) is None
        assert db_adaptive._wait(session, project_id) == 1
        assert db_adaptive.project_count_model(session, project_id, now=T0) is not None
        model = db_adaptive.project_count_model(session, project_id, now=T0)
        assert model is not None
        assert model.detection == pytest.approx(expected.detection, rel=1e-9)
        np.testing.assert_allclose(model.prior, expected.prior, rtol=1e-9, atol=1e-15)
