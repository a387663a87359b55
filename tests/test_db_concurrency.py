"""200 parallel volunteers take tasks and submit until nothing is left, on SQLite (file, WAL)
and on PostgreSQL + PostGIS: never over-assigned, nobody twice on a panorama, nothing lost.

Each client is a thread with its own Session on one shared engine, as the web app's requests
are. Only :class:`~camcensus.db.errors.PlatformError` refusals may reach a client (the web app
answers them with 4xx); any other exception would be a 500 and fails the test.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from camcensus.db import connect, session_factory, upgrade
from camcensus.db import projects as db_projects
from camcensus.db import tasks as db_tasks
from camcensus.db.errors import PlatformError
from camcensus.db.models import Assignment, Panorama, Submission, Tag, Validation, Volunteer

N_CLIENTS = 200
N_PANORAMAS = 120
K = 3
TIMEOUT_S = 900
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
#: The clock of the second phase: every task of the first phase has expired.
LATE = T0 + timedelta(seconds=TIMEOUT_S + 1)


@dataclass
class Outcome:
    """What the clients saw: acknowledged submissions and every refusal or failure."""

    acknowledged: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    abandoned: int = 0
    twins: int = 0
    db_errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, vid: int, exc: BaseException) -> None:
        with self.lock:
            self.failures.append(f"volunteer {vid}: {type(exc).__name__}: {exc}"[:3000])

    def refuse(self, what: str, exc: PlatformError) -> None:
        with self.lock:
            self.refusals[f"{what} {type(exc).__name__}"] += 1


def _setup(engine: Engine, out: Outcome) -> list[int]:
    upgrade(engine)

    @event.listens_for(engine, "handle_error")
    def _count(context: Any) -> None:
        # Every error the database raised, also those the library caught and retried.
        with out.lock:
            out.db_errors[type(context.original_exception).__name__] += 1

    rng = np.random.default_rng(5)
    ids = [f"c-{i:04d}" for i in range(N_PANORAMAS)]
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": -74.0 + 0.1 * rng.random(N_PANORAMAS),
            "lat": 40.7 + 0.1 * rng.random(N_PANORAMAS),
            "heading_deg": 360 * rng.random(N_PANORAMAS),
            "source": "synthetic",
            "image_uri": [f"synthetic:0:{i}" for i in ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC0-1.0",
        }
    )
    with session_factory(engine).begin() as session:
        db_projects.create_project(
            session,
            name="race",
            title="Race",
            panoramas=frame,
            k=K,
            licence="CC0",
            task_timeout_s=TIMEOUT_S,
            now=T0,
        )
        volunteers = [
            Volunteer(
                public_id=secrets.token_urlsafe(12),
                pseudonym=f"racer-{i:03d}-{secrets.token_hex(3)}",
                password_hash="-",
                role="volunteer",
                created_at=T0,
            )
            for i in range(N_CLIENTS + 20)
        ]
        session.add_all(volunteers)
        session.flush()
        return [v.volunteer_id for v in volunteers]


def _tags(rng: random.Random) -> list[db_tasks.TagIn]:
    return [
        db_tasks.TagIn(f"t{i}", rng.uniform(0, 359), rng.uniform(-20, 60), 70.0, "street", "dome")
        for i in range(rng.choice([0, 1, 2]))
    ]


def _submit(
    sessions: sessionmaker[Session],
    out: Outcome,
    vid: int,
    task: tuple[str, str],
    tags: list[db_tasks.TagIn],
    now: datetime,
    *,
    twin: bool,
) -> None:
    """Send one answer (with ``twin``, the same answer twice at once: a double click)."""
    results: list[str] = []
    errors: list[str] = []

    def send() -> None:
        try:
            with sessions.begin() as session:
                result = db_tasks.submit(
                    session,
                    assignment_id=task[0],
                    volunteer_id=vid,
                    tags=tags,
                    no_camera=not tags,
                    now=now,
                )
            results.append(result.submission_id)
        except PlatformError as exc:
            errors.append(type(exc).__name__)
            out.refuse("submit", exc)
        except Exception as exc:
            out.fail(vid, exc)

    if twin:
        other = threading.Thread(target=send)
        other.start()
        send()
        other.join()
        with out.lock:
            out.twins += 1
    else:
        send()
    # Both copies of a double click get the same answer: stored once, or refused both times.
    assert len(set(results)) <= 1 and not (results and errors), (results, errors)
    with out.lock:
        if results:
            out.acknowledged[results[0]] = (task[1], vid, len(tags))
        elif errors:
            out.refused.add(task[0])


def _take(
    sessions: sessionmaker[Session], out: Outcome, vid: int, now: datetime
) -> tuple[str, str] | bool | None:
    """A task (id, panorama) or None when nothing is left; False when refused (try again)."""
    try:
        with sessions.begin() as session:
            task = db_tasks.next_task(session, project="race", volunteer_id=vid, now=now)
            return None if task is None else (task.assignment_id, task.panorama_id)
    except PlatformError as exc:
        out.refuse("next_task", exc)
        return False


def _work(
    sessions: sessionmaker[Session], out: Outcome, vid: int, rng: random.Random, now: datetime
) -> None:
    """Take and answer tasks until nothing is left (sometimes skip one)."""
    while True:
        task = _take(sessions, out, vid, now)
        if task is None:
            return
        if task is False:
            continue
        assert isinstance(task, tuple)
        if rng.random() < 0.05:
            with sessions.begin() as session:
                db_tasks.abandon(session, assignment_id=task[0], volunteer_id=vid, now=now)
            with out.lock:
                out.abandoned += 1
            continue
        _submit(sessions, out, vid, task, _tags(rng), now, twin=rng.random() < 0.1)


def _race(engine: Engine, out: Outcome, vids: list[int], client: Callable[..., None]) -> float:
    """Run ``client(sessions, out, vid, rng)`` in one thread per volunteer, all at once."""
    barrier = threading.Barrier(len(vids))

    def run(vid: int, seed: int) -> None:
        sessions = session_factory(engine)
        rng = random.Random(seed)
        barrier.wait()
        try:
            client(sessions, out, vid, rng)
        except Exception as exc:  # a 500 in the web app
            out.fail(vid, exc)

    threads = [
        threading.Thread(target=run, args=(vid, i), daemon=True) for i, vid in enumerate(vids)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "clients still running after 120 s"
    return time.perf_counter() - start


def _check(engine: Engine, out: Outcome) -> None:
    assert out.failures == [], "\n".join(out.failures)
    sessions = session_factory(engine)
    with sessions() as session:
        subs = session.scalars(select(Submission)).all()
        assignments = session.scalars(select(Assignment)).all()
        panoramas = {p.panorama_id: p for p in session.scalars(select(Panorama)).all()}
        tags = Counter(session.scalars(select(Tag.submission_id)).all())
        public = dict(session.execute(select(Volunteer.volunteer_id, Volunteer.public_id)).all())
    # No lost submission, none stored that was not acknowledged, every tag stored.
    assert {s.submission_id for s in subs} == set(out.acknowledged)
    for s in subs:
        panorama_id, vid, n_tags = out.acknowledged[s.submission_id]
        assert (s.panorama_id, s.decoder_id) == (panorama_id, public[vid])
        assert tags[s.submission_id] == n_tags
    assert sum(tags.values()) == sum(n for _, _, n in out.acknowledged.values())
    # A refused task stored nothing.
    status = {a.assignment_id: a.status for a in assignments}
    assert all(status[a] == "expired" for a in out.refused)
    # Exactly k submissions by k distinct volunteers on every panorama.
    by_panorama: dict[str, list[str]] = {}
    for s in subs:
        by_panorama.setdefault(s.panorama_id, []).append(s.decoder_id)
    assert set(by_panorama) == set(panoramas)
    assert {len(v) for v in by_panorama.values()} == {K}
    assert {len(set(v)) for v in by_panorama.values()} == {K}
    # Nobody got a panorama twice; never more than k live slots, each slot once.
    pairs = Counter((a.panorama_id, a.volunteer_id) for a in assignments)
    assert max(pairs.values()) == 1
    live = [a for a in assignments if a.status in ("open", "submitted")]
    assert {a.status for a in live} == {"submitted"}
    assert max(Counter((a.panorama_id, a.slot) for a in live).values()) == 1
    assert {a.slot for a in live} == set(range(1, K + 1))
    assert Counter(a.panorama_id for a in live) == dict.fromkeys(panoramas, K)
    assert sum(a.status == "abandoned" for a in assignments) == out.abandoned
    assert {(p.n_done, p.n_live) for p in panoramas.values()} == {(K, K)}
    with sessions.begin() as session:
        progress = db_projects.project_progress(session, "race")
    assert (progress["done"], progress["submissions"]) == (N_PANORAMAS, N_PANORAMAS * K)


def _assignment_race(url: str, label: str) -> None:
    """All clients take and answer tasks at one instant until nothing is left."""
    engine = connect(url)
    try:
        out = Outcome()
        vids = _setup(engine, out)[:N_CLIENTS]
        elapsed = _race(
            engine, out, vids, lambda sessions, out, vid, rng: _work(sessions, out, vid, rng, T0)
        )
        print(
            f"{label}: {len(out.acknowledged)} submissions by {N_CLIENTS} clients in "
            f"{elapsed:.2f} s; refusals {dict(out.refusals)}; database errors "
            f"{dict(out.db_errors)}; double clicks {out.twins}; skips {out.abandoned}"
        )
        _check(engine, out)
        # Nothing is refused while nothing expires.
        assert out.refusals == Counter()
        assert out.twins > 0 and out.abandoned > 0
    finally:
        engine.dispose()


def _expiry_race(url: str, label: str) -> None:
    """Every client holds a task, lets it expire, then answers it late while the others take
    the freed slots; a sweep of fresh volunteers finishes what the race left."""
    engine = connect(url)
    try:
        out = Outcome()
        everyone = _setup(engine, out)
        vids, sweepers = everyone[:N_CLIENTS], everyone[N_CLIENTS:]
        held: dict[int, tuple[str, str]] = {}

        def hold(sessions: sessionmaker[Session], out: Outcome, vid: int, rng: Any) -> None:
            task = _take(sessions, out, vid, T0)
            assert isinstance(task, tuple)
            with out.lock:
                held[vid] = task

        first = _race(engine, out, vids, hold)
        assert len({t[0] for t in held.values()}) == N_CLIENTS

        late_senders: set[int] = set()

        def late(sessions: sessionmaker[Session], out: Outcome, vid: int, rng: Any) -> None:
            if rng.random() < 0.5:
                with out.lock:
                    late_senders.add(vid)
                _submit(sessions, out, vid, held[vid], _tags(rng), LATE, twin=rng.random() < 0.2)
            _work(sessions, out, vid, rng, LATE)

        second = _race(engine, out, vids, late)
        sessions = session_factory(engine)
        rng = random.Random(0)
        for vid in sweepers:
            _work(sessions, out, vid, rng, LATE)
        print(
            f"{label}: {N_CLIENTS} tasks taken at once in {first:.2f} s; then "
            f"{len(out.acknowledged)} submissions in {second:.2f} s; refusals "
            f"{dict(out.refusals)}; database errors {dict(out.db_errors)}"
        )
        _check(engine, out)
        assert set(out.refusals) <= {"submit Conflict"}, out.refusals
        # Every late answer either counted or was refused; refused ones stored nothing.
        answered = {held[vid][0] for vid in late_senders}
        with session_factory(engine)() as session:
            stored = set(
                session.scalars(
                    select(Submission.assignment_id).where(Submission.assignment_id.in_(answered))
                ).all()
            )
        assert stored | out.refused >= answered and not stored & out.refused
        print(
            f"{label}: late answers {len(answered)}: {len(stored)} counted, refused "
            f"{len(answered & out.refused)}"
        )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_200_clients_on_sqlite(tmp_path: Path) -> None:
    _assignment_race(f"sqlite:///{tmp_path / 'race.sqlite'}", "sqlite")


@pytest.mark.slow
@pytest.mark.postgis
def test_200_clients_on_postgis(postgis_fresh_url: str) -> None:
    _assignment_race(postgis_fresh_url, "postgis")


@pytest.mark.slow
def test_200_clients_late_answers_on_sqlite(tmp_path: Path) -> None:
    _expiry_race(f"sqlite:///{tmp_path / 'late.sqlite'}", "sqlite")


@pytest.mark.slow
@pytest.mark.postgis
def test_200_clients_late_answers_on_postgis(postgis_fresh_url: str) -> None:
    _expiry_race(postgis_fresh_url, "postgis")


def _setup_extra_volunteer(engine: Engine) -> int:
    with session_factory(engine).begin() as session:
        volunteer = Volunteer(
            public_id=secrets.token_urlsafe(12),
            pseudonym=f"checker-{secrets.token_hex(3)}",
            password_hash="-",
            role="volunteer",
            created_at=T0,
        )
        session.add(volunteer)
        session.flush()
        return volunteer.volunteer_id


def _double_clicks(url: str) -> None:
    """Twenty requests of one volunteer at once get one task; answering it twenty times at once
    stores one submission; validating a tag twenty times at once stores one validation."""
    engine = connect(url)
    try:
        out = Outcome()
        vid = _setup(engine, out)[0]
        tasks: list[Any] = []
        _race(engine, out, [vid] * 20, lambda s, o, v, r: tasks.append(_take(s, o, v, T0)))
        assert out.failures == [] and len({t[0] for t in tasks}) == 1
        task = tasks[0]
        tags = [db_tasks.TagIn("a", 1.0, 2.0, 60.0, "building", "bullet")]
        _race(
            engine,
            out,
            [vid] * 20,
            lambda s, o, v, r: _submit(s, o, v, task, tags, T0, twin=False),
        )
        assert out.failures == [] and out.refusals == Counter()
        # Another volunteer validates the tag twenty times at once: one row. Validations wait
        # for complete panoramas: stand in for the other K - 1 answers with the counters.
        with session_factory(engine).begin() as session:
            session.execute(
                update(Panorama).where(Panorama.panorama_id == task[1]).values(n_live=K, n_done=K)
            )
        other = _setup_extra_volunteer(engine)
        with session_factory(engine)() as session:
            tag_id = session.scalars(select(Tag.tag_id)).one()
        answers: list[str] = []

        def validate(s: sessionmaker[Session], o: Outcome, v: int, r: Any) -> None:
            with s.begin() as session:
                answers.append(
                    db_tasks.validate(
                        session, tag_id=tag_id, volunteer_id=v, answer="agree"
                    ).validation_id
                )

        _race(engine, out, [other] * 20, validate)
        assert out.failures == [] and len(answers) == 20 and len(set(answers)) == 1
        with session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Validation)) == 1
            assert session.scalar(select(func.count()).select_from(Assignment)) == 1
            assert session.scalar(select(func.count()).select_from(Submission)) == 1
            assert session.scalar(select(func.count()).select_from(Tag)) == 1
            assert session.scalar(select(func.sum(Panorama.n_done))) == K
    finally:
        engine.dispose()


def test_double_clicks_on_sqlite(tmp_path: Path) -> None:
    _double_clicks(f"sqlite:///{tmp_path / 'twice.sqlite'}")


@pytest.mark.postgis
def test_double_clicks_on_postgis(postgis_fresh_url: str) -> None:
    _double_clicks(postgis_fresh_url)


# --------------------------------------------------------------------------- group commit
def _volunteer(name: str) -> Volunteer:
    return Volunteer(
        public_id=f"pub-{name}",
        pseudonym=f"person{name}",
        password_hash="x" * 40,
        role="volunteer",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def test_group_commit_batches_rolls_back_a_failing_job_alone_and_acks_after_commit(
    tmp_path: Path,
) -> None:
    from camcensus.db.engine import GroupCommit

    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    upgrade(url)
    engine = connect(url)
    queue = GroupCommit(session_factory(engine))
    gate = threading.Event()

    def first(session: Session) -> str:
        gate.wait(timeout=20)  # the writer is busy: the next jobs queue up meanwhile
        session.add(_volunteer("first"))
        return "first"

    runs: dict[str, int] = {}

    def add(name: str) -> Callable[[Session], str]:
        def job(session: Session) -> str:
            runs[name] = runs.get(name, 0) + 1
            session.add(_volunteer(name))
            session.flush()
            if name.startswith("bad"):
                raise PlatformError(409, f"{name} refused")
            return name

        return job

    seen_on_ack: dict[str, bool] = {}

    def check_durable(name: str) -> Callable[[Any], None]:
        def callback(future: Any) -> None:
            if future.exception() is None:
                # Another connection sees the row the moment the job is acknowledged.
                with engine.connect() as conn:
                    n = conn.execute(
                        select(func.count()).where(Volunteer.public_id == f"pub-{name}")
                    ).scalar_one()
                seen_on_ack[name] = n == 1

        return callback

    futures = {"first": queue.submit(first)}
    names = [f"v{i}" for i in range(10)] + ["bad1"] + [f"w{i}" for i in range(10)]
    for name in names:
        futures[name] = queue.submit(add(name))
        futures[name].add_done_callback(check_durable(name))
    gate.set()
    for name, future in futures.items():
        if name.startswith("bad"):
            with pytest.raises(PlatformError):
                future.result(timeout=30)
        else:
            assert future.result(timeout=30) == name
    with engine.connect() as conn:
        stored = list(conn.execute(select(Volunteer.public_id)).scalars())
    # Every acknowledged job's row once (a job run again after the failing one was rolled
    # back is not stored twice); nothing of the failing job.
    assert sorted(stored) == sorted(f"pub-{n}" for n in futures if not n.startswith("bad"))
    assert runs["bad1"] == 1
    assert all(seen_on_ack.values()) and len(seen_on_ack) == 20
    # The 21 jobs queued behind the first went in one or a few commits, not 21.
    assert queue.committed == 21 and queue.commits <= 3
    engine.dispose()


def test_group_commit_a_failed_commit_fails_every_job_of_the_batch(tmp_path: Path) -> None:
    from camcensus.db.engine import GroupCommit

    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    upgrade(url)
    engine = connect(url)
    sessions = session_factory(engine)

    def failing_commit(session: Session, *args: Any) -> None:
        raise RuntimeError("disk full")

    def adding(name: str) -> Callable[[Session], str]:
        def job(session: Session) -> str:
            session.add(_volunteer(name))
            return "ok"

        return job

    queue = GroupCommit(sessions)
    event.listen(sessions, "before_commit", failing_commit)
    try:
        future = queue.submit(adding("lost"))
        with pytest.raises(RuntimeError, match="disk full"):
            future.result(timeout=30)
    finally:
        event.remove(sessions, "before_commit", failing_commit)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Volunteer)).scalar_one() == 0
    # The writer survives: the next job commits.
    assert queue.submit(adding("kept")).result(30) == "ok"
    engine.dispose()


def _count(engine: Any, name: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(Volunteer.public_id == f"pub-{name}")
            ).scalar_one()
        )


def test_group_commit_in_the_event_loop_batches_and_rolls_back_a_failing_job_alone(
    tmp_path: Path,
) -> None:
    """``GroupCommit.run``: the jobs that arrive in one turn of the event loop share one
    commit in the loop's thread; a failing job gets its error and the others are stored once;
    each is acknowledged only when another connection sees its row."""
    import asyncio

    from camcensus.db.engine import GroupCommit

    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    upgrade(url)
    engine = connect(url)
    queue = GroupCommit(session_factory(engine))
    runs: dict[str, int] = {}
    threads: set[str] = set()

    def add(name: str) -> Callable[[Session], str]:
        def job(session: Session) -> str:
            runs[name] = runs.get(name, 0) + 1
            threads.add(threading.current_thread().name)
            session.add(_volunteer(name))
            session.flush()
            if name.startswith("bad"):
                raise PlatformError(409, f"{name} refused")
            return name

        return job

    async def one(name: str) -> tuple[str, object]:
        try:
            assert await queue.run(add(name)) == name
        except PlatformError as exc:
            return name, exc
        return name, _count(engine, name) == 1  # durable when acknowledged

    async def main() -> list[tuple[str, object]]:
        names = [f"v{i}" for i in range(10)] + ["bad1"] + [f"w{i}" for i in range(10)]
        return await asyncio.gather(*(one(n) for n in names))

    results = asyncio.run(main())
    for name, out in results:
        if name.startswith("bad"):
            assert isinstance(out, PlatformError)
        else:
            assert out is True, name
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(Volunteer.public_id)).scalars())
    assert stored == sorted(f"pub-{n}" for n, _ in results if not n.startswith("bad"))
    assert runs["bad1"] == 1
    assert threads == {threading.current_thread().name}  # no writer thread
    assert queue.committed == 20 and queue.commits == 1
    engine.dispose()


def test_group_commit_in_the_event_loop_never_waits_for_the_write_lock(tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock (another process, here a raw
    connection) or another thread of this process holds the writers' lock, ``run`` hands its
    batch to the writer thread and the event loop goes on; the job is stored once the lock
    is free."""
    import asyncio
    import sqlite3

    from camcensus.db.engine import GroupCommit

    path = tmp_path / "b.sqlite"
    upgrade(f"sqlite:///{path}")
    engine = connect(f"sqlite:///{path}")
    sessions = session_factory(engine)
    queue = GroupCommit(sessions)

    def add(name: str) -> Callable[[Session], str]:
        def job(session: Session) -> str:
            session.add(_volunteer(name))
            return threading.current_thread().name

        return job

    async def main(hold: Callable[[], Any], release: Callable[[Any], None]) -> tuple[str, int]:
        held = hold()
        task = asyncio.ensure_future(queue.run(add(f"n{id(held)}")))
        ticks = 0
        for _ in range(20):  # the loop keeps turning while the batch waits elsewhere
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        release(held)
        return await asyncio.wait_for(task, 30), ticks

    # 1. another process: a raw connection in BEGIN IMMEDIATE
    def hold_file() -> sqlite3.Connection:
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        return raw

    def release_file(raw: sqlite3.Connection) -> None:
        raw.execute("ROLLBACK")
        raw.close()

    thread_name, ticks = asyncio.run(main(hold_file, release_file))
    assert thread_name == "camcensus-writer" and ticks == 20

    # 2. another thread of this process: a write session holding the writers' lock
    def hold_session() -> Session:
        session = sessions()
        session.connection()  # BEGIN IMMEDIATE: the lock is held until rollback
        return session

    def release_session(session: Session) -> None:
        session.rollback()
        session.close()

    thread_name, ticks = asyncio.run(main(hold_session, release_session))
    assert thread_name == "camcensus-writer" and ticks == 20

    # 3. the lock free again: the loop writes itself, on its own connection
    async def free() -> str:
        return await queue.run(add("free"))

    assert asyncio.run(free()) == threading.current_thread().name
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Volunteer)).scalar_one() == 3
    engine.dispose()
