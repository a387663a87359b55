"""Reads never take SQLite's write lock: GET routes, pages and the identity lookup use read-only
sessions (``camcensus.db.engine.session_factory(engine, readonly=True)``), so a long read never
holds up a submission."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from camcensus.db import accounts
from camcensus.db.models import Comment
from test_web_api import (
    Browser,
    add_project,
    logged_in,
    make_app,
    rows,
    tag,
    take_task,
    write_jpeg,
)
from test_web_security import api_routes, dependency_names


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    application = make_app(tmp_path)
    add_project(application)
    write_jpeg(tmp_path / "media" / "images" / "pano-0.jpg", 256, 128)
    yield application
    application.state.engine.dispose()


def _statements(app: FastAPI) -> list[str]:
    """Start recording every SQL statement the app's engine sends; return the list."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.strip().upper())

    event.listen(app.state.engine, "before_cursor_execute", record)
    return seen


def test_no_get_route_or_page_takes_the_write_lock(app: FastAPI) -> None:
    admin = logged_in(app, "heron", role="admin")
    volunteer = logged_in(app, "lynx")
    task = take_task(volunteer)
    volunteer.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": True})
    seen = _statements(app)
    n_gets = 0
    for method, url, route in api_routes(app):
        if method != "GET":
            continue
        assert "db_session" not in dependency_names(route), f"{url} takes a write session"
        for browser in (admin, volunteer, Browser(app)):
            seen.clear()
            r = browser.get(url)
            assert r.status_code < 500, (url, r.text)
            assert not any(s.startswith("BEGIN IMMEDIATE") for s in seen), (url, seen)
            n_gets += 1
    assert n_gets >= 3 * 20
    # The writes still take the lock (a submission is acknowledged only once durable).
    seen.clear()
    assert take_task(logged_in(app, "otter"))["kind"] == "tag"
    assert any(s.startswith("BEGIN IMMEDIATE") for s in seen)


def test_a_long_read_does_not_block_a_submission(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = logged_in(app, "reader")
    writer = logged_in(app, "writer")
    task = take_task(writer)
    real_tasks_done = accounts.tasks_done
    holding = threading.Event()
    proceed = threading.Event()
    order: list[str] = []

    def held_tasks_done(session: Any, public_id: str) -> int:
        # GET /api/me has read inside its transaction; keep that transaction open until the
        # submission below is acknowledged (or give up, which fails the test).
        n = real_tasks_done(session, public_id)
        holding.set()
        proceed.wait(timeout=20)
        order.append("read done")
        return n

    monkeypatch.setattr(accounts, "tasks_done", held_tasks_done)
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(reader.get("/api/me")))
    thread.start()
    try:
        assert holding.wait(timeout=20), "GET /api/me never reached the database"
        body = {"no_camera": False, "tags": [tag("a", 12.0)]}
        r = writer.post(f"/api/tasks/{task['task_id']}/submit", json=body)
        order.append("submit done")
    finally:
        proceed.set()
        thread.join(timeout=30)
    assert r.status_code == 200, r.text
    # The submission was acknowledged while the read's transaction was still open.
    assert order == ["submit done", "read done"]
    assert answers[0].status_code == 200 and answers[0].json()["pseudonym"] == "reader"
    [sub] = rows(app, "SELECT submission_id FROM submissions")
    assert sub["submission_id"] == r.json()["submission_id"]


def test_a_read_only_session_refuses_to_write(app: FastAPI) -> None:
    from datetime import UTC, datetime

    with app.state.read_sessions() as session:
        session.add(
            Comment(
                comment_id="c1",
                panorama_id="pano-0",
                volunteer_id=1,
                body="x",
                created_at=datetime.now(UTC),
            )
        )
        with pytest.raises(RuntimeError, match="read-only session"):
            session.flush()
