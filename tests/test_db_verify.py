"""Machine tags and verify tasks (camcensus.db.verify) on SQLite and on PostgreSQL + PostGIS:
the detector's detections stored as model submissions, the verify task's choice and refusals,
the margin rule, and the cap and one-verdict-per-volunteer under parallel requests.

Values are checked against the raw rows and against counts worked out by hand.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select, update

from camcensus.db import projects as db_projects
from camcensus.db import session_factory
from camcensus.db import tasks as db_tasks
from camcensus.db import verify as db_verify
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound, PlatformError
from camcensus.db.models import Panorama, Submission, Tag, Validation
from camcensus.db.verify import (
    VERIFICATION_COLUMNS,
    VERIFY_CAP,
    import_detections,
    next_verification,
    verification_table,
    verify,
    verify_status,
)
from test_db_tasks import T0, Db, db, make_project, postgis_copy, postgis_template, submit, take

__all__ = ["db", "postgis_copy", "postgis_template"]  # fixtures used here (imported)

MODEL = "cam-model-1"


def detections(rows: list[tuple[str, float, float, float]], **columns: Any) -> pd.DataFrame:
    """A detections table: (panorama_id, heading, pitch, score) rows, fov 60, this model."""
    frame = pd.DataFrame(rows, columns=["panorama_id", "heading_deg", "pitch_deg", "score"])
    frame["fov_deg"] = 60.0
    frame["camera_type"] = "dome"
    frame["decoder_id"] = MODEL
    frame["machine"] = True
    for name, value in columns.items():
        frame[name] = value
    return frame


def store(db: Db, dets: pd.DataFrame, **kw: Any) -> db_verify.ImportResult:
    kw.setdefault("now", T0)
    return db.call(import_detections, project="city", detections=dets, **kw)


def machine_tags(db: Db) -> dict[str, Tag]:
    """Machine tags by ``panorama_id:heading``."""
    with db.sessions() as session:
        rows = session.execute(
            select(Tag, Submission.panorama_id)
            .join(Submission, Submission.submission_id == Tag.submission_id)
            .where(Tag.machine.is_(True))
        ).all()
    return {f"{pid}:{t.heading_deg:g}": t for t, pid in rows}


def judge(db: Db, tag: Tag | str, vid: int, answer: str) -> Validation:
    tag_id = tag if isinstance(tag, str) else tag.tag_id
    return db.call(verify, tag_id=tag_id, volunteer_id=vid, answer=answer, now=T0)


def task_for(db: Db, vid: int) -> Tag | None:
    return db.call(next_verification, project="city", volunteer_id=vid, now=T0)


# --------------------------------------------------------------------------- the rule
def test_the_margin_rule() -> None:
    # Worked out by hand: margin 2, cap 5.
    assert [verify_status(a, d) for a, d in [(0, 0), (1, 0), (1, 1), (2, 1), (3, 1)]] == [
        "open",
        "open",
        "open",
        "open",
        "confirmed",
    ]
    assert verify_status(1, 3) == "rejected" and verify_status(2, 3) == "open"


# --------------------------------------------------------------------------- import
def test_import_stores_one_model_submission_per_panorama(db: Db) -> None:
    pids = make_project(db, n=4, k=3)
    dets = detections(
        [
            (pids[0], 10.0, 5.0, 0.9),
            (pids[0], 200.0, 12.5, 0.4),
            (pids[0], 359.5, -3.0, 0.55),
            (pids[1], 90.0, 30.0, 0.75),
        ]
    )
    dets.loc[3, "camera_type"] = "bullet"
    dets.loc[3, "attachment"] = "street"
    result = store(db, dets, panoramas=pids[:3])
    assert (result.model_id, result.panoramas, result.tags, result.no_camera) == (MODEL, 3, 4, 1)
    assert result.skipped == {}
    subs = {s.panorama_id: s for s in db.rows(Submission)}
    assert sorted(subs) == pids[:3]
    for pid, s in subs.items():
        assert (s.kind, s.decoder_id, s.assignment_id, s.gold, s.problem) == (
            "model",
            MODEL,
            None,
            False,
            None,
        )
        assert s.no_camera is (pid == pids[2])
        assert s.submitted_at == T0
    tags = machine_tags(db)
    assert sorted(tags) == [f"{pids[0]}:10", f"{pids[0]}:200", f"{pids[0]}:359.5", f"{pids[1]}:90"]
    t = tags[f"{pids[0]}:200"]
    assert (t.pitch_deg, t.fov_deg, t.score, t.camera_type, t.attachment) == (
        12.5,
        60.0,
        0.4,
        "dome",
        "unknown",  # no attachment column value: unknown
    )
    assert (t.machine, t.current, t.deleted) == (True, True, False)
    b = tags[f"{pids[1]}:90"]
    assert (b.camera_type, b.attachment, b.score) == ("bullet", "street", 0.75)
    # Machine submissions count toward nothing volunteers do.
    with db.sessions() as session:
        assert set(session.scalars(select(Panorama.n_done)).all()) == {0}
    progress = db.call(db_projects.project_progress, "city")
    assert (progress["submissions"], progress["volunteers"], progress["done"]) == (0, 0, 0)
    assert progress["todo"] == 4

    # The same model again: skipped and counted, never overwritten.
    again = store(db, dets, panoramas=pids)
    assert (again.panoramas, again.tags, again.no_camera) == (1, 0, 1)  # only pids[3] is new
    assert sorted(again.skipped.values()) == [3, 4]
    assert any("already hold" in reason for reason in again.skipped)
    assert len(db.rows(Submission)) == 4 and len(machine_tags(db)) == 4
    # Another model on the same panoramas is stored beside it.
    second = store(db, dets.assign(decoder_id="cam-model-2"))
    assert (second.model_id, second.panoramas, second.tags, second.no_camera) == (
        "cam-model-2",
        2,
        4,
        0,
    )
    assert len(db.rows(Submission)) == 6


def test_import_refuses_bad_rows_and_stores_nothing(db: Db) -> None:
    pids = make_project(db, n=2, k=3)
    dets = detections(
        [
            (pids[0], 360.0, 5.0, 0.5),
            (pids[0], 10.0, 90.5, 0.5),
            ("elsewhere", 10.0, 5.0, float("nan")),
            (pids[1], -1.0, 5.0, 1.5),
            ("", 20.0, 5.0, 0.5),
        ]
    )
    dets.loc[1, "fov_deg"] = 0.0
    dets.loc[4, "camera_type"] = "ptz"
    dets.loc[0, "machine"] = False
    with pytest.raises(Invalid) as info:
        store(db, dets)
    fields = sorted(str(e["field"]) for e in info.value.errors)
    assert fields == [
        "camera_type[row 5]",
        "fov_deg[row 2]",
        "heading_deg[row 1]",
        "heading_deg[row 4]",
        "machine[row 1]",
        "panorama_id[row 3]",
        "panorama_id[row 5]",
        "pitch_deg[row 2]",
        "score[row 3]",
        "score[row 4]",
    ]
    messages = {str(e["field"]): str(e["message"]) for e in info.value.errors}
    assert "modulo 360" in messages["heading_deg[row 1]"]
    assert "'elsewhere' is not a panorama of this project" in messages["panorama_id[row 3]"]
    assert "[0, 1]" in messages["score[row 4]"]
    assert db.rows(Submission) == [] and db.rows(Tag) == []
    # A missing column is named with what a detections table holds.
    with pytest.raises(Invalid) as info:
        store(db, dets.drop(columns=["pitch_deg"]))
    assert [e["field"] for e in info.value.errors] == ["pitch_deg"]
    # A detection on a panorama outside the list the detector ran over.
    with pytest.raises(Invalid) as info:
        store(db, detections([(pids[0], 1.0, 1.0, 0.5)]), panoramas=[pids[1]])
    assert [e["field"] for e in info.value.errors] == ["panoramas"]
    with pytest.raises(NotFound):
        db.call(import_detections, project="nowhere", detections=dets)


def test_the_model_id_comes_from_the_file_or_the_caller(db: Db) -> None:
    pids = make_project(db, n=2, k=3)
    plain = detections([(pids[0], 1.0, 1.0, 0.5)]).drop(columns=["decoder_id"])
    with pytest.raises(Invalid) as info:
        store(db, plain)
    assert info.value.errors[0]["field"] == "model_id"
    mixed = detections([(pids[0], 1.0, 1.0, 0.5), (pids[1], 1.0, 1.0, 0.5)])
    mixed.loc[1, "decoder_id"] = "other"
    with pytest.raises(Invalid) as info:
        store(db, mixed)
    assert info.value.errors[0]["field"] == "decoder_id"
    with pytest.raises(Invalid) as info:
        store(db, detections([(pids[0], 1.0, 1.0, 0.5)]), model_id="renamed")
    assert "not 'renamed'" in str(info.value.errors[0]["message"])
    assert store(db, plain, model_id="given").model_id == "given"
    # Nothing detected anywhere is still recorded, once the model is named.
    empty = detections([])
    result = store(db, empty, model_id="given", panoramas=pids)
    assert (result.panoramas, result.no_camera, result.tags) == (1, 1, 0)
    assert result.skipped == {
        "panoramas that already hold model 'given''s detections (kept, never overwritten)": 1
    }


# --------------------------------------------------------------------------- verify tasks
def _two_panoramas_with_tags(db: Db, n: int = 3, k: int = 1) -> tuple[list[str], dict[str, Tag]]:
    pids = make_project(db, n=n, k=k)
    store(
        db,
        detections(
            [
                (pids[0], 10.0, 5.0, 0.9),
                (pids[0], 50.0, 5.0, 0.3),
                (pids[1], 90.0, 1, 0.6),
                (pids[2], 150.0, 2, 0.7),
            ]
        ),
        panoramas=pids,
    )
    return pids, machine_tags(db)


def test_verify_records_verdicts_and_refuses_what_it_must(db: Db) -> None:
    pids, tags = _two_panoramas_with_tags(db)
    a, b, c, d = db.volunteers(4)
    # Volunteer a was given pids[0] to tag: never its machine tags.
    task = take(db, a)
    assert task is not None
    given = task.panorama_id
    for _ in range(5):
        offered = task_for(db, a)
        assert offered is not None
        assert offered.tag_id not in {t.tag_id for k, t in tags.items() if k.startswith(given)}
    on_given = next(t for k, t in tags.items() if k.startswith(given))
    with pytest.raises(Forbidden):
        judge(db, on_given, a, "agree")
    # Two agreeing verdicts confirm a tag; a third is refused (settled).
    t10 = tags[f"{pids[0]}:10"] if given != pids[0] else tags[f"{pids[1]}:90"]
    v1 = judge(db, t10, b, "agree")
    assert judge(db, t10, b, "agree").validation_id == v1.validation_id  # a double click
    with pytest.raises(Conflict, match="another answer"):
        judge(db, t10, b, "disagree")
    judge(db, t10, c, "agree")
    with pytest.raises(Conflict, match="confirmed"):
        judge(db, t10, d, "agree")
    # The same answer again still returns the stored row once the tag is settled.
    assert judge(db, t10, b, "agree").validation_id == v1.validation_id
    with pytest.raises(Invalid):
        judge(db, t10, d, "yes")
    with pytest.raises(NotFound):
        judge(db, "no-such-tag", d, "agree")
    with pytest.raises(NotFound):
        db.call(next_verification, project="city", volunteer_id=10_000)
    # A volunteer's tag is not a machine tag.
    other = take(db, d)
    assert other is not None
    submit(db, other, [db_tasks.TagIn("x", 30.0, 2.0, 70.0, "street", "dome")])
    volunteer_tag = db.call(lambda s: s.scalars(select(Tag).where(Tag.machine.is_(False))).one())
    with pytest.raises(NotFound, match="machine tag"):
        judge(db, volunteer_tag, b, "agree")
    # Gold panoramas' machine tags are neither offered nor verified.
    target = pids[2] if given != pids[2] else pids[1]
    store(db, detections([(target, 120.0, 3.0, 0.5)], decoder_id="m2"), panoramas=[target])
    gold_tag = machine_tags(db)[f"{target}:120"]
    with db.sessions.begin() as session:
        session.execute(update(Panorama).where(Panorama.panorama_id == target).values(gold=True))
    with pytest.raises(Conflict, match="gold"):
        judge(db, gold_tag, c, "agree")
    (e,) = db.volunteers(1)
    offered_ids = set()
    while (t := task_for(db, e)) is not None:
        offered_ids.add(t.tag_id)
        judge(db, t, e, "unsure")
    assert gold_tag.tag_id not in offered_ids and t10.tag_id not in offered_ids
    # The confirmed tag in the table.
    table = verification_table(db.engine, project="city").set_index("tag_id")
    assert list(table.loc[t10.tag_id, ["n_agree", "n_disagree", "n_unsure", "status"]]) == [
        2,
        0,
        0,
        "confirmed",
    ]


def test_a_verifier_is_never_given_that_panorama_to_tag(db: Db) -> None:
    pids, tags = _two_panoramas_with_tags(db, n=3, k=1)
    (v,) = db.volunteers(1)
    t = tags[f"{pids[1]}:90"]
    judge(db, t, v, "disagree")
    seen = []
    while (a := take(db, v)) is not None:
        seen.append(a.panorama_id)
        submit(db, a)
    assert sorted(seen) == [pids[0], pids[2]]


def test_fewest_verdicts_first_and_the_cap(db: Db) -> None:
    pids = make_project(db, n=4, k=3)
    store(db, detections([(p, 10.0 * (i + 1), 0.0, 0.5) for i, p in enumerate(pids)]))
    vols = db.volunteers(VERIFY_CAP + 2)
    # Four volunteers in turn each get a tag nobody judged yet: four different tags.
    first = []
    for vid in vols[:4]:
        t = task_for(db, vid)
        assert t is not None
        first.append(t.tag_id)
        judge(db, t, vid, "unsure")
    assert len(set(first)) == 4
    # Every tag now has one verdict; unsure verdicts fill a tag up to the cap.
    target = first[0]
    for vid in vols[1:VERIFY_CAP]:
        with db.sessions() as session:
            already = session.scalar(
                select(Validation.validation_id).where(
                    Validation.tag_id == target, Validation.volunteer_id == vid
                )
            )
        if already is None:
            judge(db, target, vid, "unsure")
    with pytest.raises(Conflict, match=f"its {VERIFY_CAP} verdicts"):
        judge(db, target, vols[VERIFY_CAP], "agree")
    table = verification_table(db.engine).set_index("tag_id")
    assert list(table.loc[target, ["n_unsure", "status"]]) == [VERIFY_CAP, "open"]
    # The last volunteer is offered every tag but the full one.
    offered = set()
    while (t := task_for(db, vols[-1])) is not None:
        offered.add(t.tag_id)
        judge(db, t, vols[-1], "unsure")
    assert offered == set(first) - {target}


def test_verification_table(db: Db) -> None:
    pids, tags = _two_panoramas_with_tags(db)
    a, b, c = db.volunteers(3)
    t = tags[f"{pids[0]}:50"]
    judge(db, t, a, "disagree")
    judge(db, t, b, "unsure")
    judge(db, t, c, "disagree")
    with db.sessions() as session:
        table = verification_table(session, project="city")
    assert list(table.columns) == list(VERIFICATION_COLUMNS)
    assert len(table) == 4 and set(table["model_id"]) == {MODEL}
    assert set(table["project"]) == {"city"}
    row = table.set_index("tag_id").loc[t.tag_id]
    assert (row.panorama_id, row.heading_deg, row.fov_deg, row.score, row.camera_type) == (
        pids[0],
        50.0,
        60.0,
        0.3,
        "dome",
    )
    assert (row.n_agree, row.n_disagree, row.n_unsure, row.status) == (0, 2, 1, "rejected")
    assert Counter(table["status"]) == {"open": 3, "rejected": 1}
    assert str(table["n_agree"].dtype) == "int64" and str(table["score"].dtype) == "float64"
    assert len(verification_table(db.engine)) == 4
    with pytest.raises(NotFound):
        verification_table(db.engine, project="nowhere")


# --------------------------------------------------------------------------- concurrency
def _parallel(db: Db, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each ``call(session)`` in its own thread and transaction, all at once; return each
    result or the PlatformError it raised."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        sessions = session_factory(db.engine)
        barrier.wait()
        try:
            with sessions.begin() as session:
                out[i] = calls[i](session)
                if isinstance(out[i], Validation):
                    out[i] = (out[i].validation_id, out[i].answer)
        except PlatformError as exc:
            out[i] = exc
        except Exception as exc:  # a 500 in the web app
            out[i] = AssertionError(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not [r for r in out if isinstance(r, AssertionError)], out
    return out


def _verdict(tag_id: str, vid: int, answer: str) -> Callable[[Any], Any]:
    return lambda s: verify(s, tag_id=tag_id, volunteer_id=vid, answer=answer)


def test_parallel_verdicts_respect_the_cap_the_margin_and_the_volunteer(db: Db) -> None:
    pids = make_project(db, n=3, k=3)
    store(db, detections([(pids[0], 10.0, 0.0, 0.5), (pids[1], 20.0, 0.0, 0.5)]))
    tags = machine_tags(db)
    full, settle = tags[f"{pids[0]}:10"].tag_id, tags[f"{pids[1]}:20"].tag_id
    vols = db.volunteers(10)
    # Ten unsure verdicts at once on one tag: exactly the cap is stored.
    results = _parallel(db, [_verdict(full, v, "unsure") for v in vols])
    assert sum(isinstance(r, tuple) for r in results) == VERIFY_CAP
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, tuple))
    # One agree in; then six agree at once: the first settles it, the others are refused.
    judge(db, settle, vols[0], "agree")
    results = _parallel(db, [_verdict(settle, v, "agree") for v in vols[1:7]])
    assert sum(isinstance(r, tuple) for r in results) == 1
    # One volunteer clicking four times at once, two answers: one row, its answer wins.
    (w,) = db.volunteers(1)
    store(db, detections([(pids[2], 30.0, 0.0, 0.5)]))
    lone = machine_tags(db)[f"{pids[2]}:30"].tag_id
    answers = ["agree", "disagree", "agree", "disagree"]
    results = _parallel(db, [_verdict(lone, w, a) for a in answers])
    with db.sessions() as session:
        stored = session.scalars(select(Validation).where(Validation.tag_id == lone)).all()
        counts = Counter(session.scalars(select(Validation.tag_id)).all())
    assert len(stored) == 1
    winner = stored[0].answer
    for a, r in zip(answers, results, strict=True):
        if a == winner:
            assert r == (stored[0].validation_id, winner)
        else:
            assert isinstance(r, Conflict)
    assert counts[full] == VERIFY_CAP and counts[settle] == 2


def test_panoramas_to_detect_leaves_out_gold_and_those_run(db: Db) -> None:
    pids = make_project(db, n=4, k=3)
    with db.sessions.begin() as session:
        session.execute(update(Panorama).where(Panorama.panorama_id == pids[3]).values(gold=True))
    store(db, detections([(pids[0], 1.0, 1.0, 0.5)]), panoramas=pids[:2])
    todo = db.call(db_verify.panoramas_to_detect, project="city", model_id=MODEL)
    assert list(todo.columns) == ["panorama_id", "image_uri", "heading_deg"]
    assert todo["panorama_id"].tolist() == [pids[2]]
    assert todo["image_uri"].tolist() == [f"synthetic:0:{pids[2]}"]
    other = db.call(db_verify.panoramas_to_detect, project="city", model_id="another")
    assert other["panorama_id"].tolist() == pids[:3]
    # "all" is every panorama of the project, gold included (it was asked for).
    result = store(db, detections([]), model_id="another", panoramas="all")
    assert (result.panoramas, result.no_camera) == (4, 4)
    with pytest.raises(Invalid):
        store(db, detections([]), model_id="another", panoramas="everything")  # type: ignore[arg-type]


def test_the_window_pages_through_many_tags(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from sqlalchemy import insert

    pids = make_project(db, n=250, k=3)
    store(db, detections([(p, 10.0, 0.0, 0.5) for p in pids]))
    tag_ids = sorted(t.tag_id for t in machine_tags(db).values())
    (v,) = db.volunteers(1)
    others = db.volunteers(3)
    # The volunteer judged all but ten tags; the ten left have 3, 1, 2, 3, 1, ... verdicts.
    rest = tag_ids[::25]
    rows = [
        {"validation_id": f"v{i}", "tag_id": t, "volunteer_id": v, "answer": "unsure"}
        for i, t in enumerate(sorted(set(tag_ids) - set(rest)))
    ]
    counts = {t: (3, 1, 2)[i % 3] for i, t in enumerate(rest)}
    for t, n in counts.items():
        rows += [
            {"validation_id": f"o{t}{j}", "tag_id": t, "volunteer_id": who, "answer": "unsure"}
            for j, who in enumerate(others[:n])
        ]
    with db.sessions.begin() as session:
        session.execute(
            insert(Validation), [r | {"created_at": T0 - timedelta(hours=1)} for r in rows]
        )
    got = {task_for(db, v).tag_id for _ in range(12)}  # type: ignore[union-attr]
    assert got <= {t for t, n in counts.items() if n == 1} and got
    # The last one left, 225th in id order, is found from the very start (past the first
    # batch of 200 ids) and from just after it (wrapping round).
    for t in rest[:-1]:
        judge(db, t, v, "unsure")
    for start in ("", rest[-1] + "~"):
        monkeypatch.setattr(db_verify, "_random_start", lambda s=start: s)
        found = task_for(db, v)
        assert found is not None and found.tag_id == rest[-1]
    judge(db, rest[-1], v, "unsure")
    assert task_for(db, v) is None


def test_validation_refuses_machine_tags(db: Db) -> None:
    """The validate task (for volunteers' tags) never records a verdict on a machine tag: the
    margin rule and the cap would be skipped. Its panorama is complete (k = 1) so nothing else
    refuses it."""
    from camcensus.db.review import validate

    _pids, tags = _two_panoramas_with_tags(db, n=3, k=1)
    a, b = db.volunteers(2)
    task = take(db, a)
    assert task is not None
    submit(db, task, [])
    on_it = next(t for key, t in tags.items() if key.startswith(f"{task.panorama_id}:"))
    with pytest.raises(NotFound, match="verify tasks"):
        db.call(validate, tag_id=on_it.tag_id, volunteer_id=b, answer="agree")
    assert db.call(lambda s: s.scalars(select(Validation)).all()) == []
