"""The three-expert review with a meta-expert (camcensus.db.review), its export
(camcensus.db.export.export_reviews) and per-volunteer skill from gold, on SQLite and on
PostgreSQL + PostGIS: values asserted against counts worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select, update

from camcensus.db import connect, upgrade
from camcensus.db import projects as db_projects
from camcensus.db import review as db_review
from camcensus.db import tasks as db_tasks
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.export import export_decode, export_reviews
from camcensus.db.models import Assignment, Review, ReviewAnswer, Volunteer
from camcensus.db.tasks import TagIn
from test_db_tasks import T0
from test_db_tasks import Db as TasksDb


class Db(TasksDb):
    """test_db_tasks' database helper, plus the panorama's review."""

    def review(self, panorama_id: str) -> Review:
        with self.sessions() as session:
            return session.scalars(select(Review).where(Review.panorama_id == panorama_id)).one()


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'review.sqlite'}")
    else:
        engine = connect(request.getfixturevalue("postgis_fresh_url"))
    upgrade(engine)
    yield Db(engine)
    engine.dispose()


def make_project(db: Db, n: int = 4, *, k: int = 1, gold_every: int = 20) -> list[str]:
    ids = [f"pano-{i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": -74.0 + 0.001 * np.arange(n),
            "lat": 40.7 + 0.001 * np.arange(n),
            "heading_deg": 90.0,
            "captured": "2021-05",
            "source": "synthetic",
            "image_uri": [f"synthetic:0:{i}" for i in ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC0-1.0",
        }
    )
    db.call(
        db_projects.create_project,
        name="city",
        title="City",
        panoramas=frame,
        k=k,
        licence="CC0-1.0",
        gold_every=gold_every,
        now=T0,
    )
    return ids


def tag(cid: str, heading: float, attachment: str = "street", kind: str = "dome") -> TagIn:
    return TagIn(
        client_id=cid,
        heading_deg=heading,
        pitch_deg=10.0,
        fov_deg=75.0,
        attachment=attachment,
        camera_type=kind,
    )


def answer(db: Db, a: Assignment, tags: list[TagIn], *, now: datetime = T0) -> str:
    """Submit a task as the web route does (tasks.submit records a review answer itself)."""
    result = db.call(
        db_tasks.submit,
        assignment_id=a.assignment_id,
        volunteer_id=a.volunteer_id,
        tags=tags,
        no_camera=not tags,
        now=now,
    )
    return result.submission_id


def take_review(db: Db, vid: int, now: datetime = T0) -> Assignment | None:
    return db.call(db_review.next_review, project="city", volunteer_id=vid, now=now)


def plan(ids: list[str], probs: list[float], strata: list[str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"PanoramaId": ids, "inclusion_probability": probs})
    if strata is not None:
        frame["stratum"] = strata
    return frame


def test_counts_of_tags_follow_the_export_semantics() -> None:
    counts = db_review.counts_of_tags(
        [("street", "dome"), ("street", "bullet"), ("building", "dome"), ("unknown", "unknown")]
    )
    assert counts == {
        "n_cameras": 4,
        "attached_street": 2,
        "attached_building": 1,
        "attached_unknown": 1,
        "type_dome": 1,  # the building dome is not typed (Amnesty typed street cameras only)
        "type_bullet": 1,
        "type_unknown": 0,
    }


def test_three_experts_who_agree_give_the_reference(db: Db, tmp_path: Path) -> None:
    pids = make_project(db)
    (vol,) = db.volunteers(1)
    tagger = db.volunteers(1, role="expert")[0]
    e1, e2, e3, e4 = db.volunteers(4, role="expert")
    # An expert who tagged the panorama as a volunteer never reviews it.
    first = db.call(db_tasks.next_task, project="city", volunteer_id=tagger, now=T0)
    assert (first is not None and first.panorama_id == pids[0]) or first is not None
    answer(db, first, [tag("t", 40.0)])
    tagged = first.panorama_id
    reviews = db.call(
        db_review.queue_plan,
        project="city",
        plan=plan([tagged], [0.25], ["median1 2 vs 1"]),
        now=T0,
    )
    assert [(r.panorama_id, r.inclusion_prob, r.stratum, r.experts_needed, r.status)
            for r in reviews] == [(tagged, 0.25, "median1 2 vs 1", 3, "open")]  # fmt: skip
    with pytest.raises(Forbidden):
        take_review(db, vol)
    assert take_review(db, tagger) is None
    tasks = [take_review(db, e) for e in (e1, e2, e3)]
    assert all(t is not None and t.panorama_id == tagged and t.kind == "review" for t in tasks)
    assert len({t.volunteer_id for t in tasks if t is not None}) == 3
    assert take_review(db, e4) is None  # three places, all taken
    # The same expert asking again gets the same task, never a second place.
    again = take_review(db, e1)
    assert again is not None and tasks[0] is not None
    assert again.assignment_id == tasks[0].assignment_id
    same = [tag("a", 10.0), tag("b", 200.0, "building")]
    for i, t in enumerate(tasks):
        assert t is not None
        answer(db, t, [tag("a", 10.0 + i), tag("b", 200.0 - i, "building")] if i else same)
        status = db.review(tagged).status
        assert status == ("done" if i == 2 else "open")
    review = db.review(tagged)
    assert review.decided_at == T0
    progress = db.call(db_review.review_progress, project="city")
    assert progress == {
        "queued": 1,
        "open": 0,
        "awaiting_meta": 0,
        "done": 1,
        "unanimous": 1,
        "resolved": 0,
        "answers": 3,
        "answers_needed": 3,
    }
    out = export_reviews(db.engine, project="city")
    assert len(out) == 1
    row = out.iloc[0]
    assert row["PanoramaId"] == tagged and row["stratum"] == "median1 2 vs 1"
    assert row["inclusion_probability"] == 0.25 and row["weight"] == 4.0
    assert bool(row["meta"]) is False and row["n_experts"] == 3
    reference = {c: int(row[c]) for c in db_review.REVIEW_CATEGORIES}
    assert reference == {
        "n_cameras": 2,
        "attached_street": 1,
        "attached_building": 1,
        "attached_unknown": 0,
        "type_dome": 1,
        "type_bullet": 0,
        "type_unknown": 0,
    }
    assert [int(row[f"expert_{i}_n_cameras"]) for i in (1, 2, 3)] == [2, 2, 2]
    # The Decode export writes the same rows to reviews.csv.
    paths = export_decode(db.engine, project="city", out=tmp_path / "ex")
    written = pd.read_csv(paths["reviews"])
    assert list(written["PanoramaId"]) == [tagged]
    assert int(written["attached_building"].iloc[0]) == 1
    assert float(written["weight"].iloc[0]) == 4.0


def test_a_meta_expert_resolves_a_disagreement(db: Db) -> None:
    pids = make_project(db)
    e1, e2, e3 = db.volunteers(3, role="expert")
    a1, a2 = db.volunteers(2, role="admin")
    db.call(db_review.queue_plan, project="city", plan=plan([pids[1]], [0.5]), now=T0)
    answers = [
        [tag("a", 10.0)],  # 1 street dome
        [tag("a", 11.0, kind="bullet")],  # 1 street bullet
        [tag("a", 12.0), tag("b", 90.0, "building")],  # 1 street dome + 1 building
    ]
    for i, (e, tags) in enumerate(zip((e1, e2, e3), answers, strict=True)):
        t = take_review(db, e)
        assert t is not None
        answer(db, t, tags, now=T0 + timedelta(seconds=i))
    review = db.review(pids[1])
    assert review.status == "awaiting_meta" and review.decided_at is None
    [waiting] = db.call(db_review.reviews_awaiting_meta, project="city")
    assert waiting["review_id"] == review.review_id
    assert waiting["disagree"] == ["n_cameras", "attached_building", "type_dome", "type_bullet"]
    assert waiting["agreed"] == {"attached_street": 1, "attached_unknown": 0, "type_unknown": 0}
    assert [x["type_bullet"] for x in waiting["experts"]] == [0, 1, 0]
    resolve = db_review.resolve_review
    good = {"n_cameras": 2, "attached_building": 1, "type_dome": 1, "type_bullet": 0}
    with pytest.raises(Forbidden):  # an expert is not a meta-expert
        db.call(resolve, review_id=review.review_id, volunteer_id=e1, reference=good)
    with pytest.raises(Invalid, match="not complete"):
        db.call(resolve, review_id=review.review_id, volunteer_id=a1, reference={"n_cameras": 2})
    for bad in (
        good | {"n_cameras": 3},  # attachments add up to 2
        good | {"type_bullet": 1},  # types add up to 2 street cameras, there is 1
        good | {"attached_street": 2},  # the experts agree on 1
        good | {"type_dome": -1},
    ):
        with pytest.raises(Invalid):
            db.call(resolve, review_id=review.review_id, volunteer_id=a1, reference=bad)
    meta = db.call(
        resolve, review_id=review.review_id, volunteer_id=a1, reference=good, note="a dome", now=T0
    )
    assert (meta.role, meta.n_cameras, meta.attached_street, meta.type_dome) == ("meta", 2, 1, 1)
    again = db.call(resolve, review_id=review.review_id, volunteer_id=a1, reference=good)
    assert again.answer_id == meta.answer_id
    other = good | {"n_cameras": 1, "attached_building": 0}
    with pytest.raises(Conflict):
        db.call(resolve, review_id=review.review_id, volunteer_id=a2, reference=other)
    assert db.review(pids[1]).status == "done"
    assert db.call(db_review.reviews_awaiting_meta, project="city") == []
    row = export_reviews(db.engine, project="city").iloc[0]
    assert bool(row["meta"]) is True and row["weight"] == 2.0
    assert {c: int(row[c]) for c in db_review.REVIEW_CATEGORIES} == {
        "n_cameras": 2,
        "attached_street": 1,
        "attached_building": 1,
        "attached_unknown": 0,
        "type_dome": 1,
        "type_bullet": 0,
        "type_unknown": 0,
    }
    assert [int(row[f"expert_{i}_type_bullet"]) for i in (1, 2, 3)] == [0, 1, 0]
    progress = db.call(db_review.review_progress, project="city")
    assert (progress["done"], progress["resolved"], progress["unanimous"]) == (1, 1, 0)


def test_answers_without_the_hook_are_synced_and_unfinished_reviews_are_left_out(db: Db) -> None:
    """Before migration 0003, tasks.submit marked a review done at its first answer and kept
    no review answer; sync_reviews (run by next_review) records the answer and puts the review
    back in line; the export lists unfinished reviews in attrs['excluded'] with the reason."""
    pids = make_project(db)
    e1, e2 = db.volunteers(2, role="expert")
    db.call(db_review.queue_plan, project="city", plan=plan(pids[:2], [0.5, 0.5]), now=T0)
    t1 = take_review(db, e1)
    assert t1 is not None
    sid = answer(db, t1, [tag("a", 10.0)])
    with db.sessions.begin() as session:  # the state the single-expert path left
        session.execute(delete(ReviewAnswer))
        session.execute(
            update(Review)
            .where(Review.panorama_id == t1.panorama_id)
            .values(status="done", submission_id=sid, decided_at=None)
        )
    t2 = take_review(db, e2)  # syncs e1's answer first
    assert t2 is not None
    with db.sessions() as session:
        rows = session.scalars(select(ReviewAnswer)).all()
        statuses = dict(session.execute(select(Review.panorama_id, Review.status)).all())
    assert [(r.volunteer_id, r.role, r.n_cameras) for r in rows] == [(e1, "expert", 1)]
    assert statuses == {pids[0]: "open", pids[1]: "open"}
    # Reviews with answers come first: e2 joins e1's review.
    assert t2.panorama_id == t1.panorama_id
    assert db.call(db_review.sync_reviews, project="city") == 0
    out = export_reviews(db.engine, project="city")
    assert out.empty
    excluded = out.attrs["excluded"]
    assert sorted(excluded["reason"]) == [
        "open: 0 of 3 expert answers in",
        "open: 1 of 3 expert answers in",
    ]


def test_an_expired_review_task_frees_its_place(db: Db) -> None:
    pids = make_project(db)
    e1, e2, e3, e4 = db.volunteers(4, role="expert")
    db.call(db_review.queue_plan, project="city", plan=plan([pids[2]], [1.0]), now=T0)
    for e in (e1, e2, e3):
        assert take_review(db, e) is not None
    assert take_review(db, e4) is None
    later = T0 + timedelta(seconds=901)
    late = take_review(db, e4, now=later)
    assert late is not None and late.panorama_id == pids[2]


def test_queue_plan_refuses_bad_plans(db: Db) -> None:
    pids = make_project(db)
    queue = db_review.queue_plan
    with pytest.raises(Invalid, match="lacks a column"):
        db.call(queue, project="city", plan=pd.DataFrame({"PanoramaId": pids[:1]}))
    with pytest.raises(Invalid) as info:
        db.call(queue, project="city", plan=plan([pids[0], pids[0], pids[1]], [0.5, 0.5, 0.0]))
    fields = [e["field"] for e in info.value.errors]
    assert fields == ["PanoramaId[row 2]", "inclusion_probability[row 3]"]
    with pytest.raises(NotFound):
        db.call(queue, project="city", plan=plan(["nope"], [0.5]))
    first = db.call(queue, project="city", plan=plan([pids[0]], [0.5]))
    again = db.call(queue, project="city", plan=plan([pids[0], pids[1]], [0.2, 0.2]))
    assert again[0].review_id == first[0].review_id and again[0].inclusion_prob == 0.5
    assert again[1].inclusion_prob == 0.2


def test_volunteer_skill_from_gold(db: Db) -> None:
    pids = make_project(db, n=3, gold_every=1)
    truth = [
        {"heading_deg": 10.0, "pitch_deg": 10.0, "attachment": "street", "camera_type": "dome"},
        {"heading_deg": 100.0, "pitch_deg": 10.0, "attachment": "building", "camera_type": "dome"},
    ]
    db.call(db_projects.mark_gold, pids[0], truth)
    db.call(db_projects.mark_gold, pids[1], [])
    good, sloppy = db.volunteers(2)
    # good: both gold cameras (within 5°) on pids[0]; nothing on the empty one.
    # sloppy: one of two (12° off the second) on pids[0]; one false tag on the empty one.
    plans = {
        good: {pids[0]: [tag("a", 12.0), tag("b", 98.0)], pids[1]: []},
        sloppy: {pids[0]: [tag("a", 9.0), tag("b", 112.0)], pids[1]: [tag("c", 50.0)]},
    }
    for vid, by_pano in plans.items():
        for _ in range(2):
            t = db.call(db_tasks.next_task, project="city", volunteer_id=vid, now=T0)
            assert t is not None and t.kind == "gold"
            answer(db, t, by_pano[t.panorama_id])
    skill = db.call(db_review.volunteer_skill, project="city")
    with db.sessions() as session:
        names = dict(session.execute(select(Volunteer.volunteer_id, Volunteer.pseudonym)).all())
    rows = {r["pseudonym"]: r for r in skill.to_dict("records")}
    g, s = rows[names[good]], rows[names[sloppy]]
    assert (g["gold_tasks"], g["found"], g["missed"], g["extra"]) == (2, 2, 0, 0)
    assert (s["gold_tasks"], s["found"], s["missed"], s["extra"]) == (2, 1, 1, 2)
    assert g["detection_rate"] == 1.0 and s["detection_rate"] == 0.5
    assert g["false_per_panorama"] == 0.0 and s["false_per_panorama"] == 1.0
