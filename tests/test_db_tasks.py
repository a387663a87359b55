"""Task assignment, submissions, validations and the review queue (camcensus.db.tasks), and the
progress numbers (camcensus.db.projects), on SQLite and on PostgreSQL + PostGIS.

Every guarantee of issue 7 is checked against the raw rows: k submissions from k different
volunteers, nobody twice on a panorama, timeouts through ``now=`` (no sleeping), gold feedback,
idempotent retries, edits as new rows, validation and the expert queue.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from camcensus.db import connect, session_factory, upgrade
from camcensus.db import projects as db_projects
from camcensus.db import tasks as db_tasks
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.models import (
    Assignment,
    Panorama,
    Review,
    ReviewAnswer,
    Submission,
    Tag,
    Validation,
    Volunteer,
)
from camcensus.db.tasks import TagIn

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers
class Db:
    """An upgraded platform database and one-transaction calls into the library."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in its own committed transaction (as a web route does)."""
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    def volunteers(self, n: int, role: str = "volunteer") -> list[int]:
        """Add ``n`` accounts directly (no argon2: tests of tasks need no password)."""
        with self.sessions.begin() as session:
            rows = [
                Volunteer(
                    public_id=secrets.token_urlsafe(12),
                    pseudonym=f"{role}-{secrets.token_hex(6)}",
                    password_hash="-",
                    role=role,
                    created_at=T0,
                )
                for _ in range(n)
            ]
            session.add_all(rows)
            session.flush()
            return [v.volunteer_id for v in rows]

    def public_id(self, volunteer_id: int) -> str:
        with self.sessions() as session:
            return str(
                session.scalar(
                    select(Volunteer.public_id).where(Volunteer.volunteer_id == volunteer_id)
                )
            )

    def rows(self, model: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model)).all())


def panoramas_frame(n: int, *, seed: int = 0, prefix: str = "pano") -> pd.DataFrame:
    """``n`` panoramas scattered over a 0.1° square of Manhattan."""
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}-{i:04d}" for i in range(n)]
    return pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": -74.0 + 0.1 * rng.random(n),
            "lat": 40.7 + 0.1 * rng.random(n),
            "heading_deg": 360 * rng.random(n),
            "captured": "2021-05",
            "source": "synthetic",
            "image_uri": [f"synthetic:0:{i}" for i in ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC0-1.0",
        }
    )


def make_project(
    db: Db, name: str = "city", n: int = 10, *, k: int = 3, **options: Any
) -> list[str]:
    frame = panoramas_frame(n, prefix=name)
    db.call(
        db_projects.create_project,
        name=name,
        title=name.title(),
        panoramas=frame,
        k=k,
        licence="CC0-1.0",
        now=T0,
        **options,
    )
    return list(frame["panorama_id"])


def tag(client_id: str, heading: float = 10.0, pitch: float = 5.0, **kw: Any) -> TagIn:
    return TagIn(
        client_id=client_id,
        heading_deg=heading,
        pitch_deg=pitch,
        fov_deg=kw.pop("fov", 75.0),
        attachment=kw.pop("attachment", "street"),
        camera_type=kw.pop("camera_type", "dome"),
        **kw,
    )


def take(db: Db, vid: int, project: str = "city", **kw: Any) -> Assignment | None:
    kw.setdefault("now", T0)
    return db.call(db_tasks.next_task, project=project, volunteer_id=vid, **kw)


def submit(
    db: Db, a: Assignment, tags: list[TagIn] | None = None, **kw: Any
) -> db_tasks.SubmitResult:
    kw.setdefault("now", T0)
    kw.setdefault("no_camera", not tags)
    return db.call(
        db_tasks.submit,
        assignment_id=a.assignment_id,
        volunteer_id=a.volunteer_id,
        tags=tags or [],
        **kw,
    )


def submissions_by_panorama(db: Db) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in db.rows(Submission):
        out.setdefault(s.panorama_id, []).append(s.decoder_id)
    return out


@pytest.fixture(scope="module")
def postgis_template(postgis_url: str) -> Iterator[str]:
    """An upgraded PostGIS database that each test's database is copied from (fast)."""
    import psycopg

    base = postgis_url.rpartition("/")[0]
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    name = f"tasks_template_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE camcensus_test")
    engine = connect(f"{base}/{name}")
    upgrade(engine)
    engine.dispose()
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgis_copy(postgis_url: str, postgis_template: str) -> Iterator[str]:
    """The URL of a fresh copy of the upgraded template; dropped after the test."""
    import psycopg

    base = postgis_url.rpartition("/")[0]
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    name = f"tasks_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {postgis_template}")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A fresh, upgraded database: a SQLite file, or a new PostGIS database."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'tasks.sqlite'}")
        upgrade(engine)
    else:
        engine = connect(request.getfixturevalue("postgis_copy"))
    yield Db(engine)
    engine.dispose()


# --------------------------------------------------------------------------- assignment
def test_each_panorama_gets_k_submissions_from_k_volunteers(db: Db) -> None:
    pids = make_project(db, n=12, k=3)
    vids = db.volunteers(7)
    rng = random.Random(1)
    seen: dict[int, list[str]] = {v: [] for v in vids}
    active = list(vids)
    while active:
        vid = rng.choice(active)
        a = take(db, vid)
        if a is None:
            active.remove(vid)
            continue
        assert a.kind == "tag" and a.status == "open" and 1 <= (a.slot or 0) <= 3
        assert a.expires_at == T0 + timedelta(seconds=900)
        seen[vid].append(a.panorama_id)
        submit(db, a, [tag("t1", rng.uniform(0, 359))] if rng.random() < 0.5 else None)
    by_pano = submissions_by_panorama(db)
    assert sorted(by_pano) == sorted(pids)
    for pid in pids:
        assert len(by_pano[pid]) == 3
        assert len(set(by_pano[pid])) == 3
    for vid in vids:
        assert len(seen[vid]) == len(set(seen[vid]))
    assert sum(len(s) for s in seen.values()) == 36
    with db.sessions() as session:
        n = dict(session.execute(select(Panorama.panorama_id, Panorama.n_done)).all())
        live = dict(session.execute(select(Panorama.panorama_id, Panorama.n_live)).all())
    assert set(n.values()) == {3} and set(live.values()) == {3}
    progress = db.call(db_projects.project_progress, "city")
    assert progress == {
        "panoramas": 12,
        "done": 12,
        "problem": 0,
        "in_progress": 0,
        "todo": 0,
        "submissions": 36,
        "problems": 0,
        "volunteers": 7,
        "gold": 0,
        "k": 3,
    }


def test_one_volunteer_sees_each_panorama_once(db: Db) -> None:
    pids = make_project(db, n=6, k=2)
    (vid,) = db.volunteers(1)
    got = []
    while (a := take(db, vid)) is not None:
        got.append(a.panorama_id)
        submit(db, a)
    assert sorted(got) == sorted(pids)
    # Nothing left for them although every panorama still needs a second volunteer.
    assert db.call(db_projects.project_progress, "city")["in_progress"] == 6
    (other,) = db.volunteers(1)
    assert take(db, other) is not None


def test_an_open_task_is_given_back_until_answered(db: Db) -> None:
    make_project(db, n=3, k=1)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    b = take(db, vid, now=T0 + timedelta(seconds=10))
    assert a is not None and b is not None
    assert b.assignment_id == a.assignment_id
    assert len(db.rows(Assignment)) == 1


def test_in_progress_panoramas_are_finished_first(db: Db) -> None:
    make_project(db, n=5, k=3)
    vids = db.volunteers(3)
    first = [take(db, v) for v in vids]
    # Three volunteers in a row get the same panorama: it fills before another one starts.
    assert len({a.panorama_id for a in first if a is not None}) == 1
    assert sorted(a.slot for a in first if a is not None) == [1, 2, 3]


def test_expired_task_returns_after_the_timeout(db: Db) -> None:
    make_project(db, n=1, k=1, task_timeout_s=600)
    a_vid, b_vid = db.volunteers(2)
    a = take(db, a_vid)
    assert a is not None
    assert take(db, b_vid, now=T0 + timedelta(seconds=599)) is None
    b = take(db, b_vid, now=T0 + timedelta(seconds=600))
    assert b is not None and b.panorama_id == a.panorama_id and b.slot == 1
    statuses = {x.assignment_id: x.status for x in db.rows(Assignment)}
    assert statuses == {a.assignment_id: "expired", b.assignment_id: "open"}
    # The late answer of the first volunteer is refused: its slot went to someone else.
    with pytest.raises(Conflict, match="expired"):
        submit(db, a, now=T0 + timedelta(seconds=700))
    assert db.rows(Submission) == []
    # The first volunteer is never given the panorama again.
    assert take(db, a_vid, now=T0 + timedelta(seconds=5000)) is None
    submit(db, b, now=T0 + timedelta(seconds=700))
    assert [s.decoder_id for s in db.rows(Submission)] == [db.public_id(b_vid)]


def test_late_submit_of_an_expired_task_counts_when_its_slot_is_free(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=2, task_timeout_s=60)
    a_vid, b_vid, c_vid = db.volunteers(3)
    a = take(db, a_vid)
    assert a is not None and a.slot == 1
    # b's request expires a's task and takes its slot; one slot stays free.
    b = take(db, b_vid, now=T0 + timedelta(seconds=61))
    assert b is not None and b.panorama_id == pid and b.slot == 1
    statuses = {x.assignment_id: x.status for x in db.rows(Assignment)}
    assert statuses == {a.assignment_id: "expired", b.assignment_id: "open"}
    # a's late answer takes the free slot back and counts.
    result = submit(db, a, [tag("x")], now=T0 + timedelta(seconds=90))
    retry = submit(db, a, [tag("x")], now=T0 + timedelta(seconds=91))
    assert retry == result
    slots = {x.assignment_id: (x.status, x.slot) for x in db.rows(Assignment)}
    assert slots == {a.assignment_id: ("submitted", 2), b.assignment_id: ("open", 1)}
    assert take(db, c_vid, now=T0 + timedelta(seconds=100)) is None  # both slots live
    submit(db, b, now=T0 + timedelta(seconds=110))
    with db.sessions() as session:
        assert session.execute(select(Panorama.n_done, Panorama.n_live)).one() == (2, 2)
    assert sorted(submissions_by_panorama(db)[pid]) == sorted(
        [db.public_id(a_vid), db.public_id(b_vid)]
    )
    progress = db.call(db_projects.project_progress, "city")
    assert (progress["done"], progress["submissions"]) == (1, 2)


def test_abandoned_task_returns_at_once(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=1)
    a_vid, b_vid, c_vid = db.volunteers(3)
    a = take(db, a_vid)
    assert a is not None and take(db, b_vid) is None
    with pytest.raises(Forbidden):
        db.call(db_tasks.abandon, assignment_id=a.assignment_id, volunteer_id=b_vid)
    with pytest.raises(NotFound):
        db.call(db_tasks.abandon, assignment_id="no-such-task", volunteer_id=a_vid)
    db.call(db_tasks.abandon, assignment_id=a.assignment_id, volunteer_id=a_vid)
    db.call(db_tasks.abandon, assignment_id=a.assignment_id, volunteer_id=a_vid)  # no-op
    with pytest.raises(Conflict, match="skipped"):
        submit(db, a)
    b = take(db, b_vid)
    assert b is not None and b.panorama_id == pid and b.slot == 1
    assert take(db, a_vid) is None  # skipped once, never given again
    submit(db, b)
    with pytest.raises(Conflict, match="already submitted"):
        db.call(db_tasks.abandon, assignment_id=b.assignment_id, volunteer_id=b_vid)
    assert take(db, c_vid) is None
    with db.sessions() as session:
        assert session.execute(select(Panorama.n_done, Panorama.n_live)).one() == (1, 1)


def test_bbox_chooses_the_area(db: Db) -> None:
    pids = make_project(db, n=40, k=1)
    frame = panoramas_frame(40, prefix="city").set_index("panorama_id")
    box = (-74.0, 40.7, -73.95, 40.75)
    inside = {
        p
        for p in pids
        if box[0] <= frame.at[p, "lon"] <= box[2] and box[1] <= frame.at[p, "lat"] <= box[3]
    }
    assert 3 <= len(inside) < 40
    vids = db.volunteers(len(inside) + 1)
    got = set()
    for vid in vids:
        a = take(db, vid, bbox=box)
        if a is None:
            break
        got.add(a.panorama_id)
        submit(db, a)
    assert got == inside
    # Outside the box work remains.
    assert take(db, vids[-1]) is not None
    for bad in ([1, 2, 3], [10, 0, 5, 1], [-200, 0, 0, 1], ["a", 0, 1, 1], [0, 0, math.nan, 1]):
        with pytest.raises(Invalid) as err:
            take(db, vids[0], bbox=bad)
        assert err.value.errors[0]["field"] == "bbox"


def test_unknown_and_closed_projects(db: Db) -> None:
    make_project(db, n=2, k=1)
    (vid,) = db.volunteers(1)
    with pytest.raises(NotFound) as err:
        take(db, vid, project="nowhere")
    assert err.value.status == 404
    with pytest.raises(NotFound) as err:
        take(db, vid + 1000)
    assert err.value.errors[0]["field"] == "volunteer_id"
    with db.sessions.begin() as session:
        from camcensus.db.models import Project

        session.scalars(select(Project)).one().status = "closed"
    assert take(db, vid) is None


# --------------------------------------------------------------------------- gold
GOLD_ANSWER = [
    {"heading_deg": 10.0, "pitch_deg": 5.0, "attachment": "street", "camera_type": "dome"},
    {"heading_deg": 200.0, "pitch_deg": -3.0, "attachment": "building", "camera_type": "bullet"},
    {"heading_deg": 359.0, "pitch_deg": 20.0},
]


def test_gold_feedback_and_spacing(db: Db) -> None:
    pids = make_project(db, n=30, k=3, gold_every=5)
    golds = pids[:4]
    for pid in golds:
        db.call(db_projects.mark_gold, pid, GOLD_ANSWER)
    (vid,) = db.volunteers(1)
    kinds: list[str] = []
    feedback: list[dict[str, Any]] = []
    for i in range(40):
        a = take(db, vid, now=T0 + timedelta(seconds=i))
        if a is None:
            break
        kinds.append(a.kind)
        assert (a.panorama_id in golds) == (a.kind == "gold")
        assert (a.slot is None) == (a.kind == "gold")
        if a.kind == "gold":
            # Found: 2.2° and 3.9° (across north) off two gold rays; missed: the one at 200°;
            # extra: a ray 5.5° off the first gold ray once it is taken, and one far away.
            tags = [
                tag("a", 12.0, 6.0),
                tag("b", 2.0, 21.0),
                tag("c", 4.5, 5.0),
                tag("d", 100.0, 0.0),
                tag("e", 205.5, -3.0, deleted=True),
            ]
            res = submit(db, a, tags, now=T0 + timedelta(seconds=i))
            assert res.feedback is not None
            feedback.append(res.feedback)
            assert submit(db, a, tags, now=T0 + timedelta(seconds=i)) == res
        else:
            assert submit(db, a, now=T0 + timedelta(seconds=i)).feedback is None
    # 26 regular panoramas + 4 gold, one gold at most in any 5 consecutive tasks.
    assert len(kinds) == 30
    assert Counter(kinds) == {"tag": 26, "gold": 4}
    assert [i for i, k in enumerate(kinds) if k == "gold"] == [4, 9, 14, 19]
    for start in range(len(kinds) - 4):
        assert kinds[start : start + 5].count("gold") <= 1
    expected = {
        "found": 2,
        "missed": 1,
        "extra": 2,
        "missed_rays": [{"heading_deg": 200.0, "pitch_deg": -3.0}],
        "tolerance_deg": 5.0,
    }
    assert feedback == [expected] * 4
    # Gold never counts toward completion.
    with db.sessions() as session:
        gold_done = session.scalars(
            select(Panorama.n_done).where(Panorama.panorama_id.in_(golds))
        ).all()
        gold_subs = session.scalars(select(Submission).where(Submission.gold.is_(True))).all()
    assert list(gold_done) == [0, 0, 0, 0]
    assert len(gold_subs) == 4 and {s.panorama_id for s in gold_subs} == set(golds)
    progress = db.call(db_projects.project_progress, "city")
    assert progress["panoramas"] == 26 and progress["gold"] == 4
    assert progress["submissions"] == 26 and progress["in_progress"] == 26
    geo = db.call(db_projects.progress_geojson, "city")
    assert {f["properties"]["panorama_id"] for f in geo["features"]} == set(pids[4:])


def test_gold_is_given_only_when_due_and_only_once(db: Db) -> None:
    pids = make_project(db, n=6, k=1, gold_every=2)
    db.call(db_projects.mark_gold, pids[0], [])
    (vid,) = db.volunteers(1)
    kinds = []
    while (a := take(db, vid)) is not None:
        kinds.append(a.kind)
        res = submit(db, a)
        if a.kind == "gold":
            # An empty gold answer: "no camera" is right.
            assert res.feedback == {
                "found": 0,
                "missed": 0,
                "extra": 0,
                "missed_rays": [],
                "tolerance_deg": 5.0,
            }
    assert kinds == ["tag", "gold", "tag", "tag", "tag", "tag"]


def test_mark_gold_refusals(db: Db) -> None:
    pids = make_project(db, n=2, k=2)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    with pytest.raises(Conflict):
        db.call(db_projects.mark_gold, a.panorama_id, GOLD_ANSWER)
    other = next(p for p in pids if p != a.panorama_id)
    with pytest.raises(NotFound):
        db.call(db_projects.mark_gold, "nope", GOLD_ANSWER)
    with pytest.raises(Invalid) as err:
        db.call(
            db_projects.mark_gold,
            other,
            [
                {"heading_deg": 360, "pitch_deg": 0},
                {"heading_deg": 1, "pitch_deg": 0, "camera_type": "x"},
            ],
        )
    assert [e["field"] for e in err.value.errors] == [
        "answer[0].heading_deg",
        "answer[1].camera_type",
    ]
    db.call(db_projects.mark_gold, other, GOLD_ANSWER[:1])
    with db.sessions() as session:
        stored = session.scalar(select(Panorama.gold_answer).where(Panorama.panorama_id == other))
    assert json.loads(str(stored)) == GOLD_ANSWER[:1]


def test_ray_distance_matches_vectors() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        h1, h2 = rng.uniform(0, 360, 2)
        p1, p2 = rng.uniform(-90, 90, 2)

        def vec(h: float, p: float) -> np.ndarray:
            h, p = math.radians(h), math.radians(p)
            return np.array([math.cos(p) * math.sin(h), math.cos(p) * math.cos(h), math.sin(p)])

        cos = float(np.clip(vec(h1, p1) @ vec(h2, p2), -1, 1))
        assert db_tasks.ray_distance_deg(h1, p1, h2, p2) == pytest.approx(
            math.degrees(math.acos(cos)), abs=1e-6
        )
    assert db_tasks.ray_distance_deg(359.0, 0.0, 1.0, 0.0) == pytest.approx(2.0)


# --------------------------------------------------------------------------- submissions
def test_submit_is_idempotent(db: Db) -> None:
    make_project(db, n=2, k=2)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    first = submit(db, a, [tag("x"), tag("y", 90.0)], client_build="build-7")
    again = submit(db, a, [tag("x"), tag("y", 90.0)], client_build="build-7")
    different = submit(db, a, None, now=T0 + timedelta(hours=5))
    assert first == again == different
    assert len(db.rows(Submission)) == 1 and len(db.rows(Tag)) == 2
    sub = db.rows(Submission)[0]
    assert sub.submission_id == first.submission_id
    assert (sub.client_build, sub.submitted_at, sub.kind) == ("build-7", T0, "volunteer")
    with db.sessions() as session:
        assert session.scalar(select(func.sum(Panorama.n_done))) == 1


def test_submit_refuses_others_and_unknown_tasks(db: Db) -> None:
    make_project(db, n=2, k=2)
    a_vid, b_vid = db.volunteers(2)
    a = take(db, a_vid)
    assert a is not None
    with pytest.raises(Forbidden):
        db.call(
            db_tasks.submit,
            assignment_id=a.assignment_id,
            volunteer_id=b_vid,
            tags=[],
            no_camera=True,
        )
    with pytest.raises(NotFound):
        db.call(db_tasks.submit, assignment_id="nope", volunteer_id=a_vid, tags=[], no_camera=True)
    assert db.rows(Submission) == []


def test_edits_are_new_rows(db: Db) -> None:
    make_project(db, n=1, k=1)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    clicked = T0 - timedelta(seconds=30)
    versions = [
        tag("a1", 10.25, 4.5, clicked_at=clicked),
        tag("b1", 120.0, 2.0),
        tag("a2", 11.75, 5.5, replaces="a1"),  # moved
        tag("a3", 11.75, 5.5, replaces="a2", camera_type="bullet"),  # re-typed
        tag("b2", 120.0, 2.0, replaces="b1", deleted=True),  # deleted
        tag("c1", 300.0, -10.0, attachment="building", camera_type="unknown"),
    ]
    res = submit(db, a, versions, problem="other", problem_note="a tree hides the pole")
    rows = {t.client_tag_id: t for t in db.rows(Tag)}
    assert set(rows) == {"a1", "b1", "a2", "a3", "b2", "c1"}
    assert all(t.submission_id == res.submission_id for t in rows.values())
    current = {c for c, t in rows.items() if t.current}
    assert current == {"a3", "b2", "c1"}
    assert {c for c, t in rows.items() if t.deleted} == {"b2"}
    assert rows["a2"].replaces_tag_id == rows["a1"].tag_id
    assert rows["a3"].replaces_tag_id == rows["a2"].tag_id
    assert rows["b2"].replaces_tag_id == rows["b1"].tag_id
    assert rows["a1"].replaces_tag_id is None
    # Every version exactly as sent.
    assert (rows["a1"].heading_deg, rows["a1"].pitch_deg, rows["a1"].clicked_at) == (
        10.25,
        4.5,
        clicked,
    )
    assert (rows["a3"].camera_type, rows["a2"].camera_type) == ("bullet", "dome")
    assert (rows["c1"].attachment, rows["c1"].fov_deg) == ("building", 75.0)
    assert len({t.tag_id for t in rows.values()}) == 6
    sub = db.rows(Submission)[0]
    assert (sub.problem, sub.problem_note, sub.no_camera) == (
        "other",
        "a tree hides the pole",
        False,
    )


@pytest.mark.parametrize(
    ("tags", "kw", "fields"),
    [
        ([tag("a", 360.0)], {}, ["tags[0].heading_deg"]),
        ([tag("a", 10.0, 91.0, fov=0.0)], {}, ["tags[0].pitch_deg", "tags[0].fov_deg"]),
        (
            [tag("a", attachment="roof", camera_type="ptz")],
            {},
            ["tags[0].attachment", "tags[0].camera_type"],
        ),
        ([tag("a"), tag("a")], {}, ["tags[1].client_id"]),
        ([tag("a"), tag("b", replaces="zz")], {}, ["tags[1].replaces"]),
        ([tag("a"), tag("b", replaces="a"), tag("c", replaces="a")], {}, ["tags[2].replaces"]),
        ([tag("a", replaces="b"), tag("b")], {}, ["tags[0].replaces"]),
        ([], {"no_camera": False}, ["no_camera"]),
        ([tag("a", deleted=True)], {"no_camera": False}, ["no_camera"]),
        ([tag("a")], {"no_camera": True}, ["no_camera"]),
        ([], {"problem": "blurry"}, ["problem"]),
        ([], {"problem_note": "x"}, ["problem_note"]),
        ([], {"problem": "other", "problem_note": "x" * 501}, ["problem_note"]),
        ([tag("a", clicked_at=datetime(2025, 1, 1))], {}, ["tags[0].clicked_at"]),
        ([{"client_id": "a", "heading_deg": 1}], {}, ["tags[0]"]),
    ],
)
def test_invalid_submissions_name_the_field(
    db: Db, tags: list[Any], kw: dict[str, Any], fields: list[str]
) -> None:
    make_project(db, n=1, k=1)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    kw.setdefault("no_camera", False)
    with pytest.raises(Invalid) as err:
        db.call(db_tasks.submit, assignment_id=a.assignment_id, volunteer_id=vid, tags=tags, **kw)
    assert err.value.status == 422
    assert [e["field"] for e in err.value.errors] == fields
    assert db.rows(Submission) == [] and db.rows(Tag) == []
    # The task is still open: a valid answer goes through.
    submit(db, a, [tag("ok")])


def test_tags_as_mappings_and_too_many(db: Db) -> None:
    make_project(db, n=2, k=1)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    many = [tag(f"t{i}", float(i)) for i in range(db_tasks.MAX_TAGS + 1)]
    with pytest.raises(Invalid) as err:
        submit(db, a, many)
    assert err.value.errors[0]["field"] == "tags"
    mapping = {
        "client_id": "m",
        "heading_deg": 45.0,
        "pitch_deg": 1.0,
        "fov_deg": 60.0,
        "attachment": "unknown",
        "camera_type": "unknown",
    }
    db.call(
        db_tasks.submit,
        assignment_id=a.assignment_id,
        volunteer_id=vid,
        tags=[mapping],
        no_camera=False,
        now=T0,
    )
    (row,) = db.rows(Tag)
    assert (row.client_tag_id, row.heading_deg, row.current, row.deleted) == (
        "m",
        45.0,
        True,
        False,
    )


# --------------------------------------------------------------------------- validation
def test_validation(db: Db) -> None:
    pids = make_project(db, n=3, k=1, gold_every=2)
    db.call(db_projects.mark_gold, pids[2], GOLD_ANSWER)
    a_vid, b_vid, c_vid = db.volunteers(3)
    # gold_every=2: a's first task is regular, the second the gold one.
    a1 = take(db, a_vid)
    assert a1 is not None and a1.kind == "tag"
    submit(
        db,
        a1,
        [
            tag("x1", 10.0),
            tag("x2", 20.0),
            tag("x3", 30.0, replaces="x2"),
            tag("gone", 40.0, deleted=True),
        ],
    )
    a2 = take(db, a_vid)
    assert a2 is not None and a2.kind == "gold"
    submit(db, a2, [tag("g", 10.0)])
    rows = {t.client_tag_id: t for t in db.rows(Tag)}
    offered = {rows["x1"].tag_id, rows["x3"].tag_id}  # standing, counted, not gold

    assert db.call(db_tasks.next_validation, project="city", volunteer_id=a_vid) is None
    got = set()
    for _ in range(2):
        t = db.call(db_tasks.next_validation, project="city", volunteer_id=b_vid)
        assert t is not None and t.tag_id in offered and t.tag_id not in got
        got.add(t.tag_id)
        v = db.call(db_tasks.validate, tag_id=t.tag_id, volunteer_id=b_vid, answer="agree", now=T0)
        assert (v.answer, v.volunteer_id) == ("agree", b_vid)
    assert got == offered
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=b_vid) is None
    # c still has both to do; the same answer again is the same row; another one conflicts.
    tid = rows["x1"].tag_id
    v1 = db.call(db_tasks.validate, tag_id=tid, volunteer_id=c_vid, answer="unsure")
    v2 = db.call(db_tasks.validate, tag_id=tid, volunteer_id=c_vid, answer="unsure")
    assert v1.validation_id == v2.validation_id
    with pytest.raises(Conflict):
        db.call(db_tasks.validate, tag_id=tid, volunteer_id=c_vid, answer="disagree")
    with pytest.raises(Forbidden):
        db.call(db_tasks.validate, tag_id=tid, volunteer_id=a_vid, answer="agree")
    with pytest.raises(Invalid):
        db.call(db_tasks.validate, tag_id=tid, volunteer_id=c_vid, answer="maybe")
    with pytest.raises(NotFound):
        db.call(db_tasks.validate, tag_id="nope", volunteer_id=c_vid, answer="agree")
    t = db.call(db_tasks.next_validation, project="city", volunteer_id=c_vid)
    assert t is not None and t.tag_id == rows["x3"].tag_id
    answers = Counter((v.tag_id, v.volunteer_id) for v in db.rows(Validation))
    assert set(answers.values()) == {1} and len(answers) == 3


# --------------------------------------------------------------------------- review queue
def test_expert_review_queue(db: Db) -> None:
    pids = make_project(db, n=4, k=1)
    (vol,) = db.volunteers(1)
    e1, e2 = db.volunteers(2, role="expert")
    first = take(db, e1)  # the expert tagged this one as a volunteer
    assert first is not None
    submit(db, first)
    reviews = db.call(
        db_tasks.queue_review,
        project="city",
        panorama_ids=[first.panorama_id, pids[3], pids[3]],
        inclusion_prob={first.panorama_id: 0.5, pids[3]: 0.25},
        now=T0,
    )
    assert sorted(r.panorama_id for r in reviews) == sorted({first.panorama_id, pids[3]})
    # Idempotent: queueing again returns the open review.
    again = db.call(db_tasks.queue_review, project="city", panorama_ids=[pids[3]], now=T0)
    assert [r.review_id for r in again] == [
        r.review_id for r in reviews if r.panorama_id == pids[3]
    ]
    with pytest.raises(NotFound):
        db.call(db_tasks.queue_review, project="city", panorama_ids=["nope"])
    with pytest.raises(Invalid):
        db.call(db_tasks.queue_review, project="city", panorama_ids=[pids[1]], inclusion_prob=0.0)
    with pytest.raises(Forbidden):
        db.call(db_tasks.next_review, project="city", volunteer_id=vol)

    r1 = db.call(db_tasks.next_review, project="city", volunteer_id=e1, now=T0)
    assert r1 is not None and r1.kind == "review" and r1.slot is None
    assert r1.panorama_id == pids[3]  # never the panorama e1 tagged
    same = db.call(db_tasks.next_review, project="city", volunteer_id=e1, now=T0)
    assert same is not None and same.assignment_id == r1.assignment_id
    r2 = db.call(db_tasks.next_review, project="city", volunteer_id=e2, now=T0)
    assert r2 is not None and r2.panorama_id == first.panorama_id  # the other one is taken
    e3 = db.volunteers(1, role="admin")[0]
    assert db.call(db_tasks.next_review, project="city", volunteer_id=e3, now=T0) is None

    res = submit(db, r1, [tag("r", 33.0)])
    with db.sessions() as session:
        sub = session.get(Submission, res.submission_id)
        review = session.scalars(select(Review).where(Review.panorama_id == pids[3])).one()
        n_done = session.scalar(select(Panorama.n_done).where(Panorama.panorama_id == pids[3]))
    assert sub is not None and (sub.kind, sub.gold) == ("expert", False)
    assert (review.status, review.inclusion_prob) == ("done", 0.25)
    # The expert's answer is recorded as the review's answer (camcensus.db.review).
    with db.sessions() as session:
        answers = session.scalars(
            select(ReviewAnswer.submission_id).where(ReviewAnswer.review_id == review.review_id)
        ).all()
    assert answers == [res.submission_id]
    assert n_done == 0  # experts' answers do not count toward completion
    progress = db.call(db_projects.project_progress, "city")
    assert progress["submissions"] == 1  # only e1's volunteer submission
    # e2's review expires; e3 then takes it over.
    later = T0 + timedelta(seconds=901)
    r3 = db.call(db_tasks.next_review, project="city", volunteer_id=e3, now=later)
    assert r3 is not None and r3.panorama_id == first.panorama_id


# --------------------------------------------------------------------------- progress
def _brute_progress(db: Db, k: int) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Recount project_progress and progress_geojson from the raw rows, in Python."""
    panoramas = {p.panorama_id: p for p in db.rows(Panorama) if not p.gold}
    assignments = db.rows(Assignment)
    subs = [
        s
        for s in db.rows(Submission)
        if s.kind == "volunteer" and not s.gold and s.panorama_id in panoramas
    ]
    tags = db.rows(Tag)
    live = Counter(
        a.panorama_id for a in assignments if a.kind == "tag" and a.status in ("open", "submitted")
    )
    # Problem reports hold no slot and count no answer; more than k/2 retire a panorama.
    done = Counter(s.panorama_id for s in subs if s.problem is None)
    reported = Counter(s.panorama_id for s in subs if s.problem is not None)
    standing = Counter(t.submission_id for t in tags if t.current and not t.deleted)
    per_pano: dict[str, dict[str, Any]] = {}
    for pid in panoramas:
        if done[pid] >= k:
            status = "done"
        elif 2 * reported[pid] > k:
            status = "problem"
        elif live[pid] > 0:
            status = "in_progress"
        else:
            status = "todo"
        counts = [
            standing[s.submission_id] for s in subs if s.panorama_id == pid and s.problem is None
        ]
        agreement = None
        if status == "done":
            if len(set(counts)) == 1:
                agreement = "agree"
            elif max(counts) - min(counts) <= 1:
                agreement = "within_one"
            else:
                agreement = "disagree"
        p = panoramas[pid]
        per_pano[pid] = {
            "coordinates": [p.lon, p.lat],
            "panorama_id": pid,
            "status": status,
            "n_done": done[pid],
            "k": k,
            "agreement": agreement,
            "problems": sum(1 for s in subs if s.panorama_id == pid and s.problem is not None),
        }
    statuses = Counter(v["status"] for v in per_pano.values())
    progress = {
        "panoramas": len(panoramas),
        "done": statuses["done"],
        "problem": statuses["problem"],
        "in_progress": statuses["in_progress"],
        "todo": statuses["todo"],
        "submissions": len(subs),
        "problems": sum(1 for s in subs if s.problem is not None),
        "volunteers": len({s.decoder_id for s in subs}),
        "gold": sum(1 for p in db.rows(Panorama) if p.gold),
        "k": k,
    }
    return progress, per_pano


def test_progress_matches_a_brute_force_recount(db: Db) -> None:
    pids = make_project(db, n=60, k=3, gold_every=4, task_timeout_s=300)
    for pid in pids[:3]:
        db.call(db_projects.mark_gold, pid, GOLD_ANSWER)
    vids = db.volunteers(9)
    rng = random.Random(7)
    now = T0
    checked = 0
    for step in range(120):
        now += timedelta(seconds=rng.randint(1, 40))
        vid = rng.choice(vids)
        a = take(db, vid, now=now)
        if a is None:
            continue
        action = rng.random()
        if action < 0.1:
            db.call(db_tasks.abandon, assignment_id=a.assignment_id, volunteer_id=vid)
        elif action < 0.2:
            pass  # left open: it expires later
        else:
            n_tags = rng.choice([0, 0, 1, 1, 2, 3])
            tags = [
                tag(f"t{i}", rng.uniform(0, 359.9), rng.uniform(-30, 60)) for i in range(n_tags)
            ]
            problem = rng.choice([None] * 6 + ["no_image", "indoor"])
            try:
                submit(db, a, tags, problem=problem, now=now)
            except Conflict:
                continue
        if step % 30 == 29:
            expected, per_pano = _brute_progress(db, 3)
            assert db.call(db_projects.project_progress, "city") == expected
            geo = db.call(db_projects.progress_geojson, "city")
            assert geo["type"] == "FeatureCollection"
            got = {
                f["properties"]["panorama_id"]: {
                    "coordinates": f["geometry"]["coordinates"],
                    **f["properties"],
                }
                for f in geo["features"]
            }
            assert got == per_pano
            checked += 1
    assert checked == 4
    expected, per_pano = _brute_progress(db, 3)
    # The run reached every state and every agreement class.
    assert {v["status"] for v in per_pano.values()} == {"todo", "in_progress", "done", "problem"}
    assert expected["problems"] > 0
    assert {v["agreement"] for v in per_pano.values() if v["status"] == "done"} >= {
        "agree",
        "within_one",
    }


def test_progress_of_unknown_project(db: Db) -> None:
    with pytest.raises(NotFound):
        db.call(db_projects.project_progress, "nope")
    with pytest.raises(NotFound):
        db.call(db_projects.progress_geojson, "nope")


# --------------------------------------------------------------------------- review findings
def _panorama(db: Db, pid: str) -> tuple[int, int, int, bool]:
    """``(n_done, n_live, n_problem, gold)`` of a panorama."""
    with db.sessions() as session:
        p = session.get(Panorama, pid)
        assert p is not None
        return (p.n_done, p.n_live, p.n_problem, p.gold)


def _status(db: Db, assignment: Assignment) -> str:
    with db.sessions() as session:
        a = session.get(Assignment, assignment.assignment_id)
        assert a is not None
        return a.status


def _wait_until_blocked(engine: Engine, thread: threading.Thread) -> None:
    """Wait (at most 10 s) until a PostgreSQL backend waits on a lock or ``thread`` ended."""
    from sqlalchemy import text

    for _ in range(500):
        if not thread.is_alive():
            return
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
        if waiting:
            return
        time.sleep(0.02)


@pytest.fixture
def pg(postgis_copy: str) -> Iterator[Db]:
    """A fresh, upgraded PostGIS database (for races between two open transactions)."""
    engine = connect(postgis_copy)
    yield Db(engine)
    engine.dispose()


def test_validation_waits_for_complete_panoramas_the_validator_never_saw(db: Db) -> None:
    make_project(db, n=2, k=3)
    a, b, c, d = db.volunteers(4)
    ta = take(db, a)
    assert ta is not None
    submit(db, ta, [tag("a1", 10.0)])
    tb = take(db, b)
    assert tb is not None and tb.panorama_id == ta.panorama_id  # in progress first
    submit(db, tb, [tag("b1", 20.0)])
    tag_a = next(t for t in db.rows(Tag) if t.client_tag_id == "a1")
    # Two of three answers are in: c must not see them before giving their own.
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=c) is None
    with pytest.raises(Conflict):
        db.call(db_tasks.validate, tag_id=tag_a.tag_id, volunteer_id=c, answer="agree")
    tc = take(db, c)
    assert tc is not None and tc.panorama_id == ta.panorama_id
    submit(db, tc, [tag("c1", 30.0)])
    # Complete: d, never given the panorama, validates all three; its taggers none.
    shown = set()
    while (t := db.call(db_tasks.next_validation, project="city", volunteer_id=d)) is not None:
        shown.add(t.client_tag_id)
        db.call(db_tasks.validate, tag_id=t.tag_id, volunteer_id=d, answer="agree")
    assert shown == {"a1", "b1", "c1"}
    for vid in (a, b, c):
        assert db.call(db_tasks.next_validation, project="city", volunteer_id=vid) is None
    with pytest.raises(Forbidden):
        db.call(db_tasks.validate, tag_id=tag_a.tag_id, volunteer_id=b, answer="agree")
    assert len(db.rows(Validation)) == 3


def test_next_task_never_gives_a_panorama_whose_tags_the_volunteer_validated(db: Db) -> None:
    make_project(db, n=2, k=3)
    a, e = db.volunteers(2)
    ta = take(db, a)
    assert ta is not None
    submit(db, ta, [tag("a1")])
    (tag_a,) = db.rows(Tag)
    # A validation on the panorama in progress (stored directly: the library now refuses it).
    with db.sessions.begin() as session:
        session.add(
            Validation(
                validation_id="old",
                tag_id=tag_a.tag_id,
                volunteer_id=e,
                answer="agree",
                created_at=T0,
            )
        )
    te = take(db, e)
    assert te is not None and te.panorama_id != ta.panorama_id
    submit(db, te)
    assert take(db, e) is None  # the validated panorama is the only one left for e


def test_choosing_an_area_gives_back_the_open_task_outside_it(db: Db) -> None:
    pids = make_project(db, n=3, k=3)
    where = panoramas_frame(3, prefix="city").set_index("panorama_id")

    def around(pid: str) -> list[float]:
        lon, lat = float(where.at[pid, "lon"]), float(where.at[pid, "lat"])
        return [lon - 1e-6, lat - 1e-6, lon + 1e-6, lat + 1e-6]

    (a,) = db.volunteers(1)
    first = take(db, a)
    assert first is not None
    same = take(db, a, bbox=around(first.panorama_id))
    assert same is not None and same.assignment_id == first.assignment_id
    other = next(p for p in pids if p != first.panorama_id)
    moved = take(db, a, bbox=around(other))
    assert moved is not None and moved.panorama_id == other
    assert _status(db, first) == "abandoned"
    assert _panorama(db, first.panorama_id)[:2] == (0, 0)  # its slot is free again
    # An area with nothing in it: the open task is given back too, and no task (a 204).
    assert take(db, a, bbox=[10.0, 10.0, 11.0, 11.0]) is None
    assert _status(db, moved) == "abandoned"
    assert {_panorama(db, p)[1] for p in pids} == {0}


def test_late_answer_to_a_panorama_made_gold_is_refused(db: Db) -> None:
    make_project(db, n=2, k=3)
    a, b = db.volunteers(2)
    ta = take(db, a)
    assert ta is not None
    later = T0 + timedelta(seconds=901)
    # b asks for work where there is none; a's task expires on the way and frees its slot.
    assert take(db, b, bbox=[10.0, 10.0, 11.0, 11.0], now=later) is None
    assert _status(db, ta) == "expired"
    db.call(db_projects.mark_gold, ta.panorama_id, GOLD_ANSWER)
    with pytest.raises(Conflict) as err:
        submit(db, ta, [tag("late")], now=later)
    assert "gold" in str(err.value)
    with pytest.raises(Conflict):
        submit(db, ta, problem="indoor", now=later)
    assert _panorama(db, ta.panorama_id) == (0, 0, 0, True)
    assert db.rows(Submission) == []


@pytest.mark.postgis
def test_mark_gold_waits_for_a_task_being_given(pg: Db) -> None:
    make_project(pg, n=1, k=3)
    (a,) = pg.volunteers(1)
    outcome: list[object] = []

    def mark() -> None:
        try:
            pg.call(db_projects.mark_gold, "city-0000", GOLD_ANSWER)
            outcome.append("gold")
        except Conflict as exc:
            outcome.append(exc)

    with pg.sessions() as giving:
        task = db_tasks.next_task(giving, project="city", volunteer_id=a, now=T0)
        assert task is not None and task.panorama_id == "city-0000"
        thread = threading.Thread(target=mark)
        thread.start()
        _wait_until_blocked(pg.engine, thread)
        giving.commit()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    assert _panorama(pg, "city-0000") == (0, 1, 0, False)


def test_one_open_review_per_panorama(db: Db) -> None:
    pids = make_project(db, n=2, k=1)
    first = db.call(db_tasks.queue_review, project="city", panorama_ids=[pids[0]], now=T0)
    again = db.call(db_tasks.queue_review, project="city", panorama_ids=[pids[1], pids[0]])
    assert [r.panorama_id for r in again] == [pids[1], pids[0]]
    assert again[1].review_id == first[0].review_id
    # The database itself refuses a second open review of a panorama.
    with pytest.raises(IntegrityError), db.sessions.begin() as session:
        session.add(
            Review(
                review_id="twin",
                project_id=first[0].project_id,
                panorama_id=pids[0],
                status="open",
                created_at=T0,
            )
        )
    # Once done, a panorama may be queued again.
    with db.sessions.begin() as session:
        session.execute(update(Review).where(Review.panorama_id == pids[0]).values(status="done"))
    fresh = db.call(db_tasks.queue_review, project="city", panorama_ids=[pids[0]])
    assert fresh[0].review_id != first[0].review_id
    assert sorted((r.panorama_id, r.status) for r in db.rows(Review)) == [
        (pids[0], "done"),
        (pids[0], "open"),
        (pids[1], "open"),
    ]


@pytest.mark.postgis
def test_two_admins_queue_the_same_panorama_at_once(pg: Db) -> None:
    make_project(pg, n=1, k=1)
    theirs: list[str] = []

    def queue() -> None:
        reviews = pg.call(db_tasks.queue_review, project="city", panorama_ids=["city-0000"])
        theirs.extend(r.review_id for r in reviews)

    with pg.sessions() as first_admin:
        mine = [
            r.review_id
            for r in db_tasks.queue_review(first_admin, project="city", panorama_ids=["city-0000"])
        ]
        thread = threading.Thread(target=queue)
        thread.start()
        _wait_until_blocked(pg.engine, thread)
        first_admin.commit()
    thread.join(30)
    assert theirs == mine
    assert [r.review_id for r in pg.rows(Review)] == mine


def test_problem_reports_free_their_slot_and_a_majority_retires_the_panorama(db: Db) -> None:
    make_project(db, "one", n=1, k=3)
    make_project(db, "two", n=1, k=3)
    vids = db.volunteers(6)
    # one: a problem report, then three answers: done with 3 counted answers of 4 submissions.
    t = [take(db, v, "one") for v in vids[:3]]
    assert all(x is not None for x in t)
    t0, t1, t2 = (x for x in t if x is not None)
    first = submit(db, t0, problem="no_image")
    assert _status(db, t0) == "reported" and _panorama(db, "one-0000") == (0, 2, 1, False)
    submit(db, t1, [tag("x")])
    submit(db, t2)
    t3 = take(db, vids[3], "one")
    assert t3 is not None and t3.slot == t0.slot  # the slot the report freed
    assert take(db, vids[4], "one") is None
    submit(db, t3, [tag("y")])
    assert _panorama(db, "one-0000") == (3, 3, 1, False)
    assert take(db, vids[5], "one") is None
    progress = db.call(db_projects.project_progress, "one")
    assert (progress["done"], progress["problem"], progress["submissions"]) == (1, 0, 4)
    assert progress["problems"] == 1
    # A retried report is the same submission; a reported task cannot be skipped.
    assert submit(db, t0, problem="no_image").submission_id == first.submission_id
    with pytest.raises(Conflict):
        db.call(db_tasks.abandon, assignment_id=t0.assignment_id, volunteer_id=t0.volunteer_id)

    # two: two of three report a problem: retired, given to nobody else; the third answer counts.
    u = [take(db, v, "two") for v in vids[:3]]
    u0, u1, u2 = (x for x in u if x is not None)
    submit(db, u0, problem="indoor")
    submit(db, u1, problem="wrong_place", problem_note="a car park")
    assert take(db, vids[3], "two") is None
    submit(db, u2, [tag("z")])
    assert _panorama(db, "two-0000") == (1, 1, 2, False)
    progress = db.call(db_projects.project_progress, "two")
    assert (progress["done"], progress["problem"], progress["in_progress"]) == (0, 1, 0)
    (feature,) = db.call(db_projects.progress_geojson, "two")["features"]
    assert (feature["properties"]["status"], feature["properties"]["problems"]) == ("problem", 2)
    assert db_projects.panorama_status(1, 1, 2, 3) == "problem"


def test_a_late_problem_report_needs_no_slot(db: Db) -> None:
    make_project(db, n=1, k=1)
    a, b = db.volunteers(2)
    ta = take(db, a)
    assert ta is not None
    later = T0 + timedelta(seconds=901)
    tb = take(db, b, now=later)  # a's task expired; b has its slot
    assert tb is not None and tb.slot == ta.slot
    submit(db, ta, problem="other", problem_note="blurred", now=later)
    assert _status(db, ta) == "reported"
    assert _panorama(db, "city-0000") == (0, 1, 1, False)
    assert db.call(db_projects.progress_geojson, "city")["features"][0]["properties"]["status"] == (
        "problem"
    )
    # b's answer still counts, and k counted answers make the panorama done.
    submit(db, tb, [tag("b")], now=later)
    assert _panorama(db, "city-0000") == (1, 1, 1, False)
    assert db.call(db_projects.project_progress, "city")["done"] == 1


# --------------------------------------------------------------------------- adaptive redundancy
def _set_rule(db: Db, rule: str, project: str = "city") -> None:
    from camcensus.db.models import Project

    with db.sessions.begin() as session:
        session.execute(update(Project).where(Project.name == project).values(adaptive_rule=rule))


def _pano_row(db: Db, pid: str) -> Panorama:
    with db.sessions() as session:
        found = session.get(Panorama, pid)
        assert found is not None
        return found


def _answer(db: Db, vid: int, n_cameras: int) -> Assignment:
    a = take(db, vid)
    assert a is not None
    submit(db, a, [tag(f"t{j}", heading=40.0 * j) for j in range(n_cameras)])
    return a


def test_adaptive_stop_after_two_zero_answers(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    _set_rule(db, "stop_unanimous_zero")
    v1, v2, v3 = db.volunteers(3)
    _answer(db, v1, 0)
    assert _pano_row(db, pid).k_target == 3  # one answer decides nothing
    _answer(db, v2, 0)
    p = _pano_row(db, pid)
    assert (p.k_target, p.n_done, p.n_live) == (2, 2, 2)
    assert take(db, v3) is None  # the panorama is complete with two answers
    assert len(db.rows(Submission)) == 2


def test_adaptive_disagreement_asks_more_volunteers_up_to_k_max(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    _set_rule(db, "extend_disagreement")
    vids = db.volunteers(7)
    for vid, n in zip(vids[:3], (0, 1, 2), strict=True):
        _answer(db, vid, n)
    assert _pano_row(db, pid).k_target == 4  # all three disagree: a fourth volunteer
    a4 = _answer(db, vids[3], 3)
    assert a4.slot == 4
    assert _pano_row(db, pid).k_target == 5  # four different answers: a fifth (k_max)
    _answer(db, vids[4], 4)
    p = _pano_row(db, pid)
    assert (p.k_target, p.n_done, p.n_live) == (5, 5, 5)  # never past k_max = 5
    assert take(db, vids[5]) is None
    by_pano = submissions_by_panorama(db)
    assert len(by_pano[pid]) == 5 and len(set(by_pano[pid])) == 5  # 5 distinct volunteers


def test_adaptive_task_open_when_the_rule_stops_still_counts(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    _set_rule(db, "stop_unanimous_zero")
    v1, v2, v3, v4 = db.volunteers(4)
    tasks = [take(db, v) for v in (v1, v2, v3)]
    assert all(t is not None for t in tasks)
    submit(db, tasks[0])  # type: ignore[arg-type]
    submit(db, tasks[1])  # type: ignore[arg-type]
    assert _pano_row(db, pid).k_target == 2
    submit(db, tasks[2], [tag("t1")])  # type: ignore[arg-type]
    p = _pano_row(db, pid)
    # The third answer was asked for before the rule stopped: it counts, and the target
    # never falls below the answers already counted.
    assert (p.k_target, p.n_done, p.n_live) == (3, 3, 3)
    assert take(db, v4) is None


def test_fixed_rule_submit_runs_no_adaptive_statement(db: Db) -> None:
    from sqlalchemy import event

    (pid,) = make_project(db, n=1, k=3)
    (vid,) = db.volunteers(1)
    a = take(db, vid)
    assert a is not None
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        submit(db, a)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert statements, "the listener saw the submit"
    assert not [s for s in statements if "k_target" in s]
    assert _pano_row(db, pid).k_target is None


def _status_of(db: Db, pid: str) -> tuple[str, int]:
    """The progress map's status and k of a panorama, checked against the SQL status filter."""
    from camcensus.db.models import Project
    from camcensus.db.progress import PANORAMA_STATUSES, status_clause

    features = db.call(db_projects.progress_geojson, "city")["features"]
    props = next(f["properties"] for f in features if f["properties"]["panorama_id"] == pid)
    with db.sessions() as session:
        in_sql = [
            s
            for s in PANORAMA_STATUSES
            if session.scalar(
                select(Panorama.panorama_id)
                .join(Project, Project.project_id == Panorama.project_id)
                .where(Panorama.panorama_id == pid, status_clause(s, Project.k))
            )
        ]
    assert in_sql == [props["status"]]
    return str(props["status"]), int(props["k"])


def test_a_panorama_the_rule_stopped_at_two_is_complete_and_validatable(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    _set_rule(db, "stop_unanimous")
    v1, v2, v3 = db.volunteers(3)
    _answer(db, v1, 1)
    assert _status_of(db, pid) == ("in_progress", 3)
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=v3) is None
    _answer(db, v2, 1)
    assert _pano_row(db, pid).k_target == 2
    assert _status_of(db, pid) == ("done", 2)
    progress = db.call(db_projects.project_progress, "city")
    assert (progress["done"], progress["in_progress"], progress["todo"], progress["k"]) == (
        1,
        0,
        0,
        3,
    )
    features = db.call(db_projects.progress_geojson, "city")["features"]
    assert features[0]["properties"]["agreement"] == "agree"
    # Complete with two answers: a third volunteer may validate its tags.
    t = db.call(db_tasks.next_validation, project="city", volunteer_id=v3)
    assert t is not None
    v = db.call(db_tasks.validate, tag_id=t.tag_id, volunteer_id=v3, answer="agree", now=T0)
    assert v.answer == "agree"


def test_a_panorama_the_rule_extended_to_five_is_in_progress_until_five(db: Db) -> None:
    (pid,) = make_project(db, n=1, k=3)
    _set_rule(db, "extend_disagreement")
    vids = db.volunteers(7)
    for vid, n in zip(vids[:3], (0, 1, 2), strict=True):
        _answer(db, vid, n)
    assert _status_of(db, pid) == ("in_progress", 4)  # three answers, a fourth needed
    assert db.call(db_projects.project_progress, "city")["done"] == 0
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=vids[6]) is None
    _answer(db, vids[3], 3)
    assert _status_of(db, pid) == ("in_progress", 5)
    a5 = take(db, vids[4])
    assert a5 is not None and a5.slot == 5
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=vids[6]) is None
    submit(db, a5, [tag(f"t{j}", heading=40.0 * j) for j in range(4)])
    assert _status_of(db, pid) == ("done", 5)
    assert db.call(db_projects.project_progress, "city")["done"] == 1
    assert db.call(db_tasks.next_validation, project="city", volunteer_id=vids[6]) is not None
