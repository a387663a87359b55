"""The JSON API of the volunteer platform: accounts, the task loop, public data, admin routes.

The helpers at the top (``make_app``, ``Browser``) are shared with test_web_security.py and
test_web_schemathesis.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from camcensus.db import accounts, connect, upgrade
from camcensus.db.models import Volunteer
from camcensus.web import WebSettings, create_app

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork; the pinned httpx works the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


# --------------------------------------------------------------------------- shared helpers
def make_engine(folder: Path) -> Engine:
    """Return an upgraded SQLite platform database in ``folder``."""
    engine = connect(f"sqlite:///{folder / 'platform.sqlite'}")
    upgrade(engine)
    return engine


def make_app(folder: Path, **settings: Any) -> FastAPI:
    """Return the app over a fresh database in ``folder`` (media root ``folder/media``)."""
    engine = make_engine(folder)
    return create_app(engine, media_root=folder / "media", settings=WebSettings(**settings))


def add_account(app: FastAPI, pseudonym: str, role: str = "volunteer") -> None:
    """Create an account through the library (as the CLI does for the first admin)."""
    with Session(app.state.engine) as session, session.begin():
        accounts.create_volunteer(session, pseudonym=pseudonym, password=PASSWORD, role=role)


class Browser:
    """A TestClient that behaves like the site's pages: CSRF cookie echoed in the header."""

    def __init__(self, app: FastAPI) -> None:
        self.client = TestClient(app, raise_server_exceptions=False)
        self.csrf = self.client.get("/api/csrf").json()["csrf_token"]
        self.client.headers["X-CSRF-Token"] = self.csrf

    def login(self, pseudonym: str, password: str = PASSWORD) -> dict[str, Any]:
        r = self.client.post("/api/login", json={"pseudonym": pseudonym, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, **kw)


def add_project(
    app: FastAPI,
    name: str = "city",
    n: int = 3,
    k: int = 3,
    *,
    prefix: str = "pano",
    lon0: float = -73.99,
) -> list[str]:
    """Create a project of ``n`` panoramas through the library; return their ids."""
    from camcensus.db.projects import create_project

    ids = [f"{prefix}-{i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": [lon0 + 0.001 * i for i in range(n)],
            "lat": [40.70 + 0.001 * ((7 * i) % n) for i in range(n)],
            "heading_deg": [10.0 * i for i in range(n)],
            "captured": "2021-05",
            "source": "folder",
            "source_ref": None,
            "image_uri": [f"images/{i}.jpg" for i in ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC-BY-SA 4.0",
            "republishable": True,
            "intersection_id": None,
        }
    )
    with Session(app.state.engine) as session, session.begin():
        create_project(session, name=name, title="A city", panoramas=frame, k=k, licence="CC0")
    return ids


def assert_error_shape(r: Any, status: int) -> dict[str, Any]:
    """Assert the one error shape with ``status``; return the body."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"ok", "error", "errors", "status"}
    assert body["ok"] is False
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    for item in body["errors"]:
        assert set(item) == {"field", "message"}
        assert isinstance(item["field"], str) and isinstance(item["message"], str)
    return body


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """The app over a fresh database, with the default (strict) settings."""
    application = make_app(tmp_path)
    yield application
    application.state.engine.dispose()


# --------------------------------------------------------------------------- accounts
def test_signup_login_logout_flow(app: FastAPI) -> None:
    b = Browser(app)
    r = b.post("/api/signup", json={"pseudonym": "river.otter", "password": PASSWORD})
    assert r.status_code == 201, r.text
    me = r.json()
    assert me["pseudonym"] == "river.otter" and me["role"] == "volunteer"
    assert me["tasks_done"] == 0 and me["tutorial_done"] is False
    assert b.get("/api/me").json() == me
    assert b.post("/api/tutorial/done").json() == {"ok": True}
    assert b.get("/api/me").json()["tutorial_done"] is True
    assert b.post("/api/logout").json() == {"ok": True}
    assert_error_shape(b.get("/api/me"), 401)
    assert b.login("river.otter")["public_id"] == me["public_id"]
    assert b.get("/api/me").status_code == 200
    # The database holds the session's hash, never the cookie's value.
    cookie = b.client.cookies.get("camcensus_session")
    assert cookie
    with app.state.engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM web_sessions"))
    assert cookie not in dump and accounts.hash_token(cookie) in dump


def test_log_in_purges_expired_sessions(app: FastAPI) -> None:
    from datetime import UTC, datetime, timedelta

    add_account(app, "lynx")
    [vid] = [r["volunteer_id"] for r in rows(app, "SELECT volunteer_id FROM volunteers")]
    past = datetime.now(UTC) - timedelta(days=30)
    with Session(app.state.engine) as session, session.begin():
        for _ in range(3):
            accounts.start_session(session, vid, csrf_token="x" * 20, lifetime_s=60, now=past)
        live = accounts.start_session(session, vid, csrf_token="y" * 20, lifetime_s=3600)
    assert rows(app, "SELECT count(*) AS n FROM web_sessions")[0]["n"] == 4
    b = Browser(app)
    b.login("lynx")
    hashes = {r["token_hash"] for r in rows(app, "SELECT token_hash FROM web_sessions")}
    # The three expired sessions are gone; the live one and the new one stay.
    assert len(hashes) == 2 and accounts.hash_token(live) in hashes
    assert b.get("/api/me").status_code == 200


def test_signup_refusals(app: FastAPI) -> None:
    b = Browser(app)
    body = assert_error_shape(
        b.post("/api/signup", json={"pseudonym": "me@example.org", "password": "short"}), 422
    )
    assert {e["field"] for e in body["errors"]} == {"pseudonym", "password"}
    assert "@" in body["errors"][0]["message"]
    assert b.post("/api/signup", json={"pseudonym": "Otter", "password": PASSWORD}).status_code
    # Unique regardless of case.
    b2 = Browser(app)
    assert_error_shape(
        b2.post("/api/signup", json={"pseudonym": "otter", "password": PASSWORD}), 409
    )
    # A role cannot be chosen at sign-up (unknown fields are refused).
    body = assert_error_shape(
        b2.post("/api/signup", json={"pseudonym": "x-y-z", "password": PASSWORD, "role": "admin"}),
        422,
    )
    assert body["errors"][0]["field"] == "role"
    with Session(app.state.engine) as session:
        assert session.scalars(select(Volunteer.role)).all() == ["volunteer"]


def test_wrong_password_and_unknown_pseudonym_answer_alike(app: FastAPI) -> None:
    add_account(app, "heron")
    b = Browser(app)
    wrong = b.post("/api/login", json={"pseudonym": "heron", "password": "not the password"})
    unknown = b.post("/api/login", json={"pseudonym": "nobody", "password": "not the password"})
    assert assert_error_shape(wrong, 401) == assert_error_shape(unknown, 401)


def test_invitation_gives_its_role_once(app: FastAPI) -> None:
    add_account(app, "boss", role="admin")
    admin = Browser(app)
    admin.login("boss")
    r = admin.post("/api/admin/invitations", json={"role": "expert"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert r.json()["signup_url"].endswith(token)
    b = Browser(app)
    r = b.post(
        "/api/signup", json={"pseudonym": "expert-1", "password": PASSWORD, "invitation": token}
    )
    assert r.status_code == 201 and r.json()["role"] == "expert"
    again = Browser(app).post(
        "/api/signup", json={"pseudonym": "expert-2", "password": PASSWORD, "invitation": token}
    )
    assert assert_error_shape(again, 422)["errors"][0]["field"] == "invitation"
    with app.state.engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM invitations"))
    assert token not in dump and accounts.hash_token(token) in dump


# --------------------------------------------------------------------------- more helpers
def volunteer_id(app: FastAPI, pseudonym: str) -> int:
    """Return the volunteer id of ``pseudonym``."""
    with Session(app.state.engine) as session:
        vid = session.scalar(select(Volunteer.volunteer_id).where(Volunteer.pseudonym == pseudonym))
    assert vid is not None
    return int(vid)


def rows(app: FastAPI, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run ``sql`` on the app's database and return plain dict rows."""
    from sqlalchemy import text

    with app.state.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def logged_in(app: FastAPI, pseudonym: str, role: str = "volunteer") -> Browser:
    """Create an account and return a browser logged in as it."""
    add_account(app, pseudonym, role=role)
    b = Browser(app)
    b.login(pseudonym)
    return b


def take_task(b: Browser, project: str = "city", **body: Any) -> dict[str, Any]:
    """Take the next task of ``project`` (asserting 200) and return it."""
    r = b.post(f"/api/projects/{project}/tasks", json=body or None)
    assert r.status_code == 200, r.text
    task: dict[str, Any] = r.json()
    return task


def tag(client_id: str, heading: float, pitch: float = 10.0, **extra: Any) -> dict[str, Any]:
    """A tag as the viewer sends it."""
    return {
        "client_id": client_id,
        "heading_deg": heading,
        "pitch_deg": pitch,
        "fov_deg": 75.0,
        "attachment": "street",
        "camera_type": "dome",
        **extra,
    }


def write_jpeg(path: Path, width: int, height: int, seed: int = 0) -> Any:
    """Write a smooth random JPEG (a gradient plus blobs) and return its pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    base = rng.uniform(0, 255, size=(1, 1, 3))
    pixels = (base * (0.3 + 0.7 * x) * (0.5 + 0.5 * y)).clip(0, 255).astype(np.uint8)
    pixels = np.broadcast_to(pixels, (height, width, 3)).copy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    return pixels


# --------------------------------------------------------------------------- the task loop
def test_the_tip_follows_the_tasks_submitted_and_stops_after_tip_tasks(app: FastAPI) -> None:
    from dataclasses import replace

    add_project(app, n=4)
    app.state.settings = replace(app.state.settings, tip_tasks=2)
    tips = app.state.settings.tips
    b = logged_in(app, "lynx")
    seen = []
    for _ in range(3):
        task = take_task(b)
        seen.append(task["tip"])
        r = b.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": True, "tags": []})
        assert r.status_code == 200, r.text
    assert seen == [tips[0], tips[1], None]
    assert b.get("/api/me").json()["tasks_done"] == 3


def test_submit_stores_every_tag_version_exactly(app: FastAPI) -> None:
    add_project(app)
    b = logged_in(app, "lynx")
    public_id = b.get("/api/me").json()["public_id"]
    task = take_task(b)
    assert task["kind"] == "tag" and task["tip"] == app.state.settings.tips[0]
    pano = task["panorama"]
    assert pano["image_url"] == f"/api/panoramas/{pano['panorama_id']}/image"
    assert pano["width_px"] == 4096 and pano["licence"] == "CC-BY-SA 4.0"
    # Asking again while the task runs gives the same task.
    assert take_task(b)["task_id"] == task["task_id"]
    sent = [
        tag("a1", 123.456789012, 12.3456789, clicked_at="2024-03-01T10:00:01.250000+00:00"),
        tag("a2", 124.0, 11.0, replaces="a1", camera_type="bullet"),
        tag("b1", 359.999, -89.5, attachment="building", camera_type="unknown"),
        tag("c1", 0.0, 90.0, deleted=True),
    ]
    body = {
        "no_camera": False,
        "tags": sent,
        "client_build": "web-2024.03.01+abc123",
        "started_at": "2024-03-01T09:59:00+00:00",
    }
    r = b.post(f"/api/tasks/{task['task_id']}/submit", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ok"] is True and out["feedback"] is None
    # A retry is safe: the same submission, nothing stored twice.
    assert b.post(f"/api/tasks/{task['task_id']}/submit", json=body).json() == out
    [sub] = rows(app, "SELECT * FROM submissions")
    assert sub["submission_id"] == out["submission_id"]
    assert sub["decoder_id"] == public_id and sub["kind"] == "volunteer"
    assert sub["client_build"] == "web-2024.03.01+abc123" and not sub["no_camera"]
    assert sub["panorama_id"] == pano["panorama_id"] and sub["assignment_id"] == task["task_id"]
    assert str(sub["started_at"]).startswith("2024-03-01 09:59:00")
    stored = {t["client_tag_id"]: t for t in rows(app, "SELECT * FROM tags")}
    assert set(stored) == {"a1", "a2", "b1", "c1"}
    for version in sent:
        row = stored[version["client_id"]]
        for key in ("heading_deg", "pitch_deg", "fov_deg", "attachment", "camera_type"):
            assert row[key] == version[key], (version["client_id"], key)
        assert row["submission_id"] == out["submission_id"]
        assert bool(row["deleted"]) == version.get("deleted", False)
        assert not row["machine"]
    assert stored["a2"]["replaces_tag_id"] == stored["a1"]["tag_id"]
    assert [k for k, t in sorted(stored.items()) if t["current"]] == ["a2", "b1", "c1"]
    assert str(stored["a1"]["clicked_at"]).startswith("2024-03-01 10:00:01.25")
    # The panorama is not done (1 of k=3): its answers are not public yet, so the next
    # volunteers answer independently; an expert may look.
    assert b.get("/api/tags").json()["features"] == []
    expert = logged_in(app, "owl", role="expert")
    public = expert.get("/api/tags", params={"status": "in_progress"}).json()["features"]
    # The tags are the standing, not deleted versions: a2 and b1.
    assert sorted(f["properties"]["heading_deg"] for f in public) == [124.0, 359.999]
    assert {f["properties"]["decoder_id"] for f in public} == {public_id}
    assert b.get("/api/me").json()["tasks_done"] == 1


def test_submit_refusals_name_the_field(app: FastAPI) -> None:
    add_project(app)
    b = logged_in(app, "lynx")
    task = take_task(b)
    url = f"/api/tasks/{task['task_id']}/submit"
    body = assert_error_shape(b.post(url, json={"no_camera": False, "tags": []}), 422)
    assert any("no_camera" in e["field"] or "tags" in e["field"] for e in body["errors"])
    body = assert_error_shape(
        b.post(url, json={"no_camera": False, "tags": [tag("a", 360.0)]}), 422
    )
    assert body["errors"][0]["field"] == "tags.0.heading_deg"
    other = logged_in(app, "puma")
    assert_error_shape(other.post(url, json={"no_camera": True}), 403)
    assert_error_shape(b.post("/api/tasks/nosuchtask/submit", json={"no_camera": True}), 404)
    # Nothing was stored by the refusals.
    assert rows(app, "SELECT * FROM submissions") == []


def test_no_camera_problem_skip_and_progress(app: FastAPI) -> None:
    ids = add_project(app, n=2, k=2)
    vols = [logged_in(app, f"vol-{i}") for i in range(4)]
    # vol-0 skips: the slot returns at once and vol-0 never sees that panorama again.
    skipped = take_task(vols[0])
    assert vols[0].post(f"/api/tasks/{skipped['task_id']}/skip").json() == {"ok": True}
    # Skipping again is a safe retry; submitting a skipped task is refused.
    assert vols[0].post(f"/api/tasks/{skipped['task_id']}/skip").status_code == 200
    assert_error_shape(
        vols[0].post(f"/api/tasks/{skipped['task_id']}/submit", json={"no_camera": True}), 409
    )
    again = take_task(vols[0])
    assert again["panorama"]["panorama_id"] != skipped["panorama"]["panorama_id"]
    r = vols[0].post(f"/api/tasks/{again['task_id']}/submit", json={"no_camera": True})
    assert r.status_code == 200, r.text
    # vol-1 reports a problem: stored, but it frees its slot and never counts toward k.
    t1 = take_task(vols[1])
    r = vols[1].post(
        f"/api/tasks/{t1['task_id']}/problem", json={"problem": "indoor", "note": "a mall <b>"}
    )
    assert r.status_code == 200, r.text
    body = assert_error_shape(
        vols[1].post(f"/api/tasks/{t1['task_id']}/problem", json={"problem": "ugly"}), 422
    )
    assert body["errors"][0]["field"] == "problem"
    t2 = take_task(vols[2])
    vols[2].post(
        f"/api/tasks/{t2['task_id']}/submit", json={"no_camera": False, "tags": [tag("x", 45.0)]}
    )
    subs = rows(app, "SELECT panorama_id, no_camera, problem, problem_note FROM submissions")
    assert sorted((s["problem"] or "", s["problem_note"] or "") for s in subs) == [
        ("", ""),
        ("", ""),
        ("indoor", "a mall <b>"),
    ]
    n_done = {r["panorama_id"]: r["n_done"] for r in rows(app, "SELECT * FROM panoramas")}
    assert sum(n_done.values()) == 2
    # vol-3 takes a task and leaves it open.
    take_task(vols[3])
    # Progress, recomputed from the stored counters (camcensus.db.projects.panorama_status).
    from camcensus.db.projects import panorama_status

    panoramas = rows(app, "SELECT * FROM panoramas")
    status = {
        p["panorama_id"]: panorama_status(p["n_done"], p["n_live"], p["n_problem"], 2)
        for p in panoramas
    }
    counts = {s: list(status.values()).count(s) for s in ("done", "in_progress", "todo", "problem")}
    assert sum(p["n_problem"] for p in panoramas) == 1
    progress = vols[3].get("/api/projects/city").json()
    assert progress == {
        "name": "city",
        "title": "A city",
        "k": 2,
        "status": "open",
        "panoramas": 2,
        **counts,
        "submissions": 3,
        "problems": 1,
        "volunteers": 3,
    }
    assert vols[3].get("/api/projects").json() == [progress]
    geo = vols[3].get("/api/projects/city/progress.geojson").json()
    assert geo["type"] == "FeatureCollection"
    by_id = {f["properties"]["panorama_id"]: f for f in geo["features"]}
    assert set(by_id) == set(ids)
    for pid, feature in by_id.items():
        props = feature["properties"]
        assert props["n_done"] == n_done[pid] and props["k"] == 2
        assert props["status"] == status[pid]
        assert feature["geometry"]["type"] == "Point"
    # A volunteer does not learn of problem reports on panoramas still being tagged; an
    # admin's live map shows them.
    for pid, feature in by_id.items():
        shown = feature["properties"]["problems"]
        assert (shown is None) == (status[pid] not in ("done", "problem")), (pid, shown)
    admin = logged_in(app, "map-admin", role="admin")
    live = admin.get("/api/projects/city/progress.geojson").json()["features"]
    assert sum(f["properties"]["problems"] for f in live) == 1
    assert "in_progress" in status.values()  # the hiding above was exercised
    # The public panoramas list gives the same statuses.
    public = Browser(app).get("/api/panoramas").json()["features"]
    assert {f["properties"]["panorama_id"]: f["properties"]["status"] for f in public} == status
    # Nothing left for vol-0 (one panorama done, the other one skipped and now full).
    assert vols[0].post("/api/projects/city/tasks").status_code == 204
    assert_error_shape(vols[0].get("/api/projects/nowhere"), 404)
    assert_error_shape(vols[0].post("/api/projects/nowhere/tasks"), 404)


def test_bbox_task_request(app: FastAPI) -> None:
    ids = add_project(app, n=3)
    b = logged_in(app, "lynx")
    # Only pano-2 (lon -73.988, lat 40.702) lies in this box.
    task = take_task(b, bbox=[-73.9885, 40.7015, -73.9875, 40.7025])
    assert task["panorama"]["panorama_id"] == ids[2]
    b.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": True})
    assert (
        b.post(
            "/api/projects/city/tasks", json={"bbox": [-73.9885, 40.7015, -73.9875, 40.7025]}
        ).status_code
        == 204
    )
    body = assert_error_shape(
        b.post("/api/projects/city/tasks", json={"bbox": [10, 10, 0, 0]}), 422
    )
    assert body["errors"][0]["field"] == "bbox"


def test_gold_task_gives_feedback_and_never_counts(app: FastAPI) -> None:
    from camcensus.db.models import Project

    ids = add_project(app, n=2)
    with Session(app.state.engine) as session, session.begin():
        session.scalars(select(Project)).one().gold_every = 1
    admin = logged_in(app, "boss", role="admin")
    answer = [
        {"heading_deg": 100.0, "pitch_deg": 20.0, "attachment": "street", "camera_type": "dome"},
        {
            "heading_deg": 250.0,
            "pitch_deg": 5.0,
            "attachment": "building",
            "camera_type": "unknown",
        },
    ]
    r = admin.post(f"/api/admin/panoramas/{ids[0]}/gold", json={"answer": answer})
    assert r.json() == {"ok": True}, r.text
    b = logged_in(app, "lynx")
    task = take_task(b)
    assert task["kind"] == "gold" and task["panorama"]["panorama_id"] == ids[0]
    # One found within 5°, one extra, one missed.
    r = b.post(
        f"/api/tasks/{task['task_id']}/submit",
        json={"no_camera": False, "tags": [tag("a", 103.0, 21.0), tag("b", 20.0)]},
    )
    feedback = r.json()["feedback"]
    assert (feedback["found"], feedback["missed"], feedback["extra"]) == (1, 1, 1)
    assert feedback["missed_rays"] == [{"heading_deg": 250.0, "pitch_deg": 5.0}]
    [pano] = rows(app, "SELECT n_done, gold FROM panoramas WHERE panorama_id = :p", p=ids[0])
    assert pano["gold"] and pano["n_done"] == 0
    # Gold panoramas and their submissions are never public.
    assert b.get("/api/tags").json()["features"] == []
    assert ids[0] not in {
        f["properties"]["panorama_id"] for f in b.get("/api/panoramas").json()["features"]
    }
    assert b.get("/api/submissions").json() == []
    # Volunteers and anonymous users cannot mark gold.
    assert_error_shape(b.post(f"/api/admin/panoramas/{ids[1]}/gold", json={"answer": []}), 403)
    body = assert_error_shape(
        admin.post(f"/api/admin/panoramas/{ids[1]}/gold", json={"answer": [{"heading_deg": 1}]}),
        422,
    )
    assert {e["field"] for e in body["errors"]} >= {"answer.0.pitch_deg"}


def test_validation_loop(app: FastAPI) -> None:
    # k=1: the panorama is complete after one answer (only complete ones are validated).
    add_project(app, n=1, k=1)
    a = logged_in(app, "lynx")
    task = take_task(a)
    a.post(
        f"/api/tasks/{task['task_id']}/submit",
        json={"no_camera": False, "tags": [tag("a", 10.0), tag("b", 20.0, replaces="a")]},
    )
    [standing] = rows(app, "SELECT tag_id FROM tags WHERE current")
    # Nobody validates their own tags.
    assert a.post("/api/projects/city/validations").status_code == 204
    assert_error_shape(
        a.post("/api/validations", json={"tag_id": standing["tag_id"], "answer": "agree"}), 403
    )
    b = logged_in(app, "puma")
    r = b.post("/api/projects/city/validations")
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["tag"]["tag_id"] == v["validation_task"] == standing["tag_id"]
    assert v["tag"]["heading_deg"] == 20.0 and v["panorama"]["panorama_id"] == "pano-0"
    assert b.post(
        "/api/validations", json={"tag_id": v["tag"]["tag_id"], "answer": "agree"}
    ).json() == {"ok": True}
    # The same answer again is fine; a different one conflicts.
    assert (
        b.post(
            "/api/validations", json={"tag_id": v["tag"]["tag_id"], "answer": "agree"}
        ).status_code
        == 200
    )
    assert_error_shape(
        b.post("/api/validations", json={"tag_id": v["tag"]["tag_id"], "answer": "disagree"}),
        409,
    )
    assert b.post("/api/projects/city/validations").status_code == 204
    assert_error_shape(b.post("/api/validations", json={"tag_id": "nope", "answer": "agree"}), 404)
    body = assert_error_shape(
        b.post("/api/validations", json={"tag_id": "x", "answer": "maybe"}), 422
    )
    assert body["errors"][0]["field"] == "answer"
    [val] = rows(app, "SELECT * FROM validations")
    assert val["answer"] == "agree" and val["tag_id"] == standing["tag_id"]


def test_expert_review_loop(app: FastAPI) -> None:
    ids = add_project(app, n=2)
    admin = logged_in(app, "boss", role="admin")
    # One expert per review here (the three-expert review: tests/test_db_review_experts.py).
    r = admin.post(
        "/api/admin/projects/city/reviews", json={"panorama_ids": [ids[1]], "experts": 1}
    )
    assert r.json() == {"ok": True, "queued": 1}, r.text
    assert_error_shape(
        admin.post("/api/admin/projects/city/reviews", json={"panorama_ids": ["nope"]}), 404
    )
    volunteer = logged_in(app, "lynx")
    assert_error_shape(volunteer.post("/api/projects/city/reviews"), 403)
    expert = logged_in(app, "owl", role="expert")
    r = expert.post("/api/projects/city/reviews")
    assert r.status_code == 200, r.text
    task = r.json()
    assert task["kind"] == "review" and task["panorama"]["panorama_id"] == ids[1]
    assert task["tip"] is None
    r = expert.post(
        f"/api/tasks/{task['task_id']}/submit", json={"no_camera": False, "tags": [tag("e", 77.0)]}
    )
    assert r.status_code == 200, r.text
    [sub] = rows(app, "SELECT kind, panorama_id FROM submissions")
    assert sub == {"kind": "expert", "panorama_id": ids[1]}
    [review] = rows(app, "SELECT status FROM reviews")
    assert review["status"] == "done"
    assert expert.post("/api/projects/city/reviews").status_code == 204
    # An expert review never counts toward completion.
    assert rows(app, "SELECT sum(n_done) AS n FROM panoramas")[0]["n"] == 0


def test_comments_are_stored_as_typed_and_returned_as_text(app: FastAPI) -> None:
    add_project(app, n=1)
    b = logged_in(app, "lynx")
    typed = "<script>alert('x')</script> & \"quotes\"\n\tline two — ünïcode 🎥"
    r = b.post("/api/panoramas/pano-0/comments", json={"body": typed})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["body"] == typed and r.json()["pseudonym"] == "lynx"
    [row] = rows(app, "SELECT body FROM comments")
    assert row["body"] == typed
    listed = b.get("/api/panoramas/pano-0/comments")
    assert listed.headers["content-type"] == "application/json"
    assert [c["body"] for c in listed.json()] == [typed]
    assert_error_shape(b.post("/api/panoramas/nope/comments", json={"body": "hi"}), 404)
    assert_error_shape(b.get("/api/panoramas/nope/comments"), 404)
    body = assert_error_shape(b.post("/api/panoramas/pano-0/comments", json={"body": ""}), 422)
    assert body["errors"][0]["field"] == "body"
    assert_error_shape(b.post("/api/panoramas/pano-0/comments", json={"body": "x" * 2001}), 422)
    assert_error_shape(Browser(app).get("/api/panoramas/pano-0/comments"), 401)


def test_discussion_opens_once_the_volunteer_has_answered(app: FastAPI) -> None:
    from camcensus.web.api_data import DISCUSSION_LOCKED

    add_project(app, n=1, k=3)
    first, second, third = (logged_in(app, name) for name in ("lynx", "otter", "heron"))
    url = "/api/panoramas/pano-0/comments"
    task = take_task(first)
    # The first volunteer's own thread is closed while their task is open; posting flags it.
    assert_error_shape(first.get(url), 403)
    assert (
        first.post(url, json={"body": "is the thing on the left pole a camera?"}).status_code == 201
    )
    r = first.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": True})
    assert r.status_code == 200, r.text
    assert [c["pseudonym"] for c in first.get(url).json()] == ["lynx"]
    assert first.post(url, json={"body": "I think it is a dome camera."}).status_code == 201
    # A second volunteer with an open task on it may not read the others' comments ...
    task = take_task(second)
    assert task["panorama"]["panorama_id"] == "pano-0"
    body = assert_error_shape(second.get(url), 403)
    assert body["error"] == DISCUSSION_LOCKED
    page = second.get("/panoramas/pano-0/discussion")
    assert page.status_code == 200 and "dome camera" not in page.text
    assert 'data-locked="1"' in page.text and DISCUSSION_LOCKED in page.text
    # ... may post (flag for discussion) ...
    assert second.post(url, json={"body": "flagging this one"}).status_code == 201
    assert_error_shape(second.get(url), 403)
    # ... and reads the thread once they have answered.
    r = second.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": True})
    assert r.status_code == 200, r.text
    assert [c["pseudonym"] for c in second.get(url).json()] == ["lynx", "lynx", "otter"]
    assert 'data-locked="0"' in second.get("/panoramas/pano-0/discussion").text
    # A volunteer without a task on it reads it; one who skipped their task too (a skipped
    # task can never be answered), and an expired unanswered task still closes it.
    assert len(third.get(url).json()) == 3
    task = take_task(third)
    assert_error_shape(third.get(url), 403)
    with Session(app.state.engine) as session, session.begin():
        session.execute(
            text("UPDATE assignments SET status = 'expired' WHERE assignment_id = :a"),
            {"a": task["task_id"]},
        )
    assert_error_shape(third.get(url), 403)
    with Session(app.state.engine) as session, session.begin():
        session.execute(
            text("UPDATE assignments SET status = 'open' WHERE assignment_id = :a"),
            {"a": task["task_id"]},
        )
    assert third.post(f"/api/tasks/{task['task_id']}/skip").status_code == 200
    assert len(third.get(url).json()) == 3


def test_gsv_panorama_is_fetched_once_and_served_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools
    import io

    from PIL import Image

    from camcensus.db.projects import create_project
    from camcensus.imagery import gsv
    from test_imagery_remote import KEY, VIEWS, FakeServer, StreetView

    # Small views and panorama keep the test fast; the app passes the key and the address.
    small = functools.partial(gsv.gsv_fetcher, width=512, view_px=128, backoff_s=0.01)
    monkeypatch.setattr(gsv, "gsv_fetcher", small)
    street_view = StreetView()
    street_view.panos = {"PANO_A": (40.73, -73.99)}
    with FakeServer(street_view) as server:
        app = create_app(
            make_engine(tmp_path),
            media_root=tmp_path / "media",
            settings=WebSettings(gsv_key=KEY, gsv_api_url=server.url),
        )
        frame = pd.DataFrame(
            {
                "panorama_id": ["g-1"],
                "lon": [-73.99],
                "lat": [40.73],
                "heading_deg": [0.0],
                "captured": ["2019-05"],
                "source": ["gsv"],
                "source_ref": ["PANO_A"],
                "image_uri": ["gsv:PANO_A"],
                "width_px": [2560],
                "height_px": [1280],
                "licence": ["© Google"],
                "republishable": [False],
                "intersection_id": [None],
            }
        )
        with Session(app.state.engine) as session, session.begin():
            create_project(session, name="gsv", title="GSV", panoramas=frame, k=3, licence="x")
        images = []
        for name in ("lynx", "otter"):
            b = logged_in(app, name)
            task = take_task(b, "gsv")
            r = b.get(task["panorama"]["image_url"], params={"w": "1024"})
            assert r.status_code == 200, r.text
            images.append(r.content)
    assert images[0] == images[1]
    with Image.open(io.BytesIO(images[0])) as im:
        assert im.size == (512, 256)
    views = [p for p, _ in server.requests if p.startswith("/maps/api/streetview?")]
    assert len(views) == len(VIEWS)  # fetched once, for both volunteers
    assert all(f"key={KEY}" in p for p in views)
    assert app.state.image_store.stats["fetched"] == 1
    app.state.engine.dispose()


def test_image_store_settings_blur_and_gsv_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camcensus.web.api_images import image_store

    monkeypatch.setenv("CAMCENSUS_GSV_KEY", "from-the-environment")
    assert WebSettings().gsv_key == "from-the-environment"
    monkeypatch.delenv("CAMCENSUS_GSV_KEY")
    assert WebSettings().gsv_key is None
    app = make_app(tmp_path, blur=True)

    class Request:  # what image_store reads of a request
        pass

    request = Request()
    request.app = app  # type: ignore[attr-defined]
    store = image_store(request)  # type: ignore[arg-type]
    assert store.blur is True and image_store(request) is store  # type: ignore[arg-type]
    # Without a key a gsv panorama is refused (404 in the routes), never fetched.
    with pytest.raises(ValueError, match="no fetcher is registered for 'gsv'"):
        store.materialize("gsv:PANO_A")
    app.state.engine.dispose()


# --------------------------------------------------------------------------- public data
def _utc(value: Any) -> Any:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _fill_two_projects(app: FastAPI) -> None:
    """Two projects, four volunteers, submissions spread over days, some tasks left open."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from camcensus.db import tasks
    from camcensus.db.models import Panorama
    from camcensus.db.projects import mark_gold

    add_project(app, "north", n=8, k=2, prefix="n")
    add_project(app, "south", n=5, k=2, prefix="s", lon0=-73.985)
    with Session(app.state.engine) as session, session.begin():
        mark_gold(session, "n-7", [])
        vids = [
            accounts.create_volunteer(session, pseudonym=f"vol-{i}", password=PASSWORD).volunteer_id
            for i in range(4)
        ]
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = 0
    for rnd in range(2):
        for vid in vids:
            for project in ("north", "south"):
                now = start + timedelta(hours=13 * step)
                step += 1
                with Session(app.state.engine) as session, session.begin():
                    task = tasks.next_task(session, project=project, volunteer_id=vid, now=now)
                    if task is None:
                        continue
                    if rnd == 1 and vid == vids[0]:
                        continue  # left open (later requests expire it)
                    n_tags = int(rng.integers(0, 4))
                    versions = [
                        tasks.TagIn(
                            client_id=f"c{j}",
                            heading_deg=float(rng.uniform(0, 360)),
                            pitch_deg=float(rng.uniform(-10, 40)),
                            fov_deg=70.0,
                            attachment=str(rng.choice(["street", "building", "unknown"])),
                            camera_type="dome",
                            deleted=bool(j == 2),
                        )
                        for j in range(n_tags)
                    ]
                    standing = [t for t in versions if not t.deleted]
                    tasks.submit(
                        session,
                        assignment_id=task.assignment_id,
                        volunteer_id=vid,
                        tags=versions,
                        no_camera=not standing,
                        problem="other" if step % 7 == 0 else None,
                        now=now + timedelta(minutes=3),
                    )
    # A task running now on an untouched panorama: in progress although nothing is done.
    with Session(app.state.engine) as session, session.begin():
        late = accounts.create_volunteer(session, pseudonym="late", password=PASSWORD)
        untouched = session.scalars(
            select(Panorama).where(Panorama.n_done == 0, Panorama.gold.is_(False))
        ).first()
        assert untouched is not None
        box = (
            untouched.lon - 1e-6,
            untouched.lat - 1e-6,
            untouched.lon + 1e-6,
            untouched.lat + 1e-6,
        )
        project = "north" if untouched.panorama_id.startswith("n") else "south"
        task = tasks.next_task(session, project=project, volunteer_id=late.volunteer_id, bbox=box)
        assert task is not None and task.panorama_id == untouched.panorama_id


def _brute_force(app: FastAPI) -> dict[str, Any]:
    """Every panorama, submission and standing tag with its project, place, time and status."""
    from camcensus.db.models import Assignment, Panorama, Project, Submission, Tag

    with Session(app.state.engine) as session:
        projects = {p.project_id: p for p in session.scalars(select(Project))}
        open_panos = set(
            session.scalars(
                select(Assignment.panorama_id).where(
                    Assignment.status == "open", Assignment.kind == "tag"
                )
            )
        )
        # Counted answers, problem reports and live slots, from the rows themselves.
        counted: dict[str, int] = {}
        reported: dict[str, int] = {}
        for sub in session.scalars(select(Submission).where(Submission.kind == "volunteer")):
            into = reported if sub.problem is not None else counted
            into[sub.panorama_id] = into.get(sub.panorama_id, 0) + 1
        panos = {}
        for p in session.scalars(select(Panorama)):
            k = projects[p.project_id].k
            n_done = counted.get(p.panorama_id, 0)
            n_problem = reported.get(p.panorama_id, 0)
            live = n_done > 0 or p.panorama_id in open_panos
            status = (
                "done"
                if n_done >= k
                else "problem"
                if 2 * n_problem > k
                else "in_progress"
                if live
                else "todo"
            )
            panos[p.panorama_id] = {
                "project": projects[p.project_id].name,
                "lon": p.lon,
                "lat": p.lat,
                "gold": p.gold,
                "status": status,
            }
        subs = {
            s.submission_id: {
                "panorama_id": s.panorama_id,
                "at": _utc(s.submitted_at),
                "gold": s.gold,
                "kind": s.kind,
            }
            for s in session.scalars(select(Submission))
        }
        tags = {
            t.tag_id: {"submission_id": t.submission_id, "heading_deg": t.heading_deg}
            for t in session.scalars(select(Tag).where(Tag.current, ~Tag.deleted))
        }
    return {"panos": panos, "subs": subs, "tags": tags}


def test_public_data_filters_match_brute_force(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    import numpy as np

    # Hundreds of reads from one test client: above the default per-client read limit.
    app = make_app(tmp_path, data_burst=10_000)
    _fill_two_projects(app)
    truth = _brute_force(app)
    panos, subs, tags = truth["panos"], truth["subs"], truth["tags"]
    assert len(tags) > 10 and len(subs) > 10
    statuses = [p["status"] for p in panos.values() if not p["gold"]]
    assert {s: statuses.count(s) for s in set(statuses)} == {"todo": 5, "in_progress": 1, "done": 6}
    b = Browser(app)  # public routes: no log-in needed
    expert = logged_in(app, "owl", role="expert")
    rng = np.random.default_rng(11)
    times = sorted(s["at"] for s in subs.values())
    n_refused = 0
    for _ in range(40):
        q: dict[str, Any] = {}
        if rng.random() < 0.5:
            q["project"] = str(rng.choice(["north", "south"]))
        if rng.random() < 0.5:
            w, e = sorted(rng.uniform(-73.992, -73.978, 2))
            s_, n_ = sorted(rng.uniform(40.699, 40.709, 2))
            q["bbox"] = f"{w},{s_},{e},{n_}"
        if rng.random() < 0.6:
            q["status"] = str(rng.choice(["todo", "in_progress", "done", "problem"]))
        since = until = None
        if rng.random() < 0.5:
            since = times[int(rng.integers(0, len(times)))]
            q["since"] = since.isoformat()
        if rng.random() < 0.5:
            # Exactly a submission's time half of the time: ``until`` is exclusive.
            until = times[int(rng.integers(0, len(times)))]
            until += timedelta(seconds=int(rng.integers(0, 2)))
            q["until"] = until.isoformat()

        def pano_ok(pid: str, q: dict[str, Any], status: str | None) -> bool:
            p = panos[pid]
            if p["gold"] or ("project" in q and p["project"] != q["project"]):
                return False
            if status is not None and p["status"] != status:
                return False
            if "bbox" in q:
                w, s_, e, n_ = map(float, q["bbox"].split(","))
                return bool(w <= p["lon"] <= e and s_ <= p["lat"] <= n_)
            return True

        def time_ok(at: datetime, since: Any = since, until: Any = until) -> bool:
            return (since is None or at >= since) and (until is None or at < until)

        # Answers (tags, submissions) only of panoramas that are done, unless an expert asks.
        answers_status = q.get("status", "done")
        want_tags = {
            tid
            for tid, t in tags.items()
            if pano_ok(subs[t["submission_id"]]["panorama_id"], q, answers_status)
            and time_ok(subs[t["submission_id"]]["at"])
        }
        got = expert.get("/api/tags", params=q)
        assert got.status_code == 200, (q, got.text)
        assert {f["properties"]["tag_id"] for f in got.json()["features"]} == want_tags, q
        for f in got.json()["features"]:
            pid = f["properties"]["panorama_id"]
            assert f["geometry"]["coordinates"] == [panos[pid]["lon"], panos[pid]["lat"]]
            assert panos[pid]["status"] == answers_status
        anonymous = b.get("/api/tags", params=q)
        if answers_status == "done":
            assert anonymous.json() == got.json(), q
        else:
            body = assert_error_shape(anonymous, 403)
            assert body["errors"][0]["field"] == "status"
            n_refused += 1
        pq = {key: v for key, v in q.items() if key in ("project", "bbox", "status")}
        want_panos = {pid for pid in panos if pano_ok(pid, pq, pq.get("status"))}
        got = b.get("/api/panoramas", params=pq).json()["features"]
        assert {f["properties"]["panorama_id"] for f in got} == want_panos, pq
        assert all(
            f["properties"]["status"] == panos[f["properties"]["panorama_id"]]["status"]
            for f in got
        )
        sq = {key: v for key, v in q.items() if key in ("project", "since", "until", "status")}
        want_subs = {
            sid
            for sid, s in subs.items()
            if not s["gold"] and pano_ok(s["panorama_id"], sq, answers_status) and time_ok(s["at"])
        }
        got = expert.get("/api/submissions", params=sq)
        assert {s["submission_id"] for s in got.json()} == want_subs, sq
        anonymous = b.get("/api/submissions", params=sq)
        if answers_status == "done":
            assert anonymous.json() == got.json(), sq
        else:
            assert_error_shape(anonymous, 403)
    assert n_refused >= 5
    # n_tags counts the standing tags; paging slices the same order.
    per_sub: dict[str, int] = {}
    for t in tags.values():
        per_sub[t["submission_id"]] = per_sub.get(t["submission_id"], 0) + 1
    every = b.get("/api/submissions").json()
    done_subs = {
        sid
        for sid, s in subs.items()
        if not s["gold"] and panos[s["panorama_id"]]["status"] == "done"
    }
    assert {s["submission_id"]: s["n_tags"] for s in every} == {
        sid: per_sub.get(sid, 0) for sid in done_subs
    }
    full = b.get("/api/tags").json()["features"]
    assert len(full) >= 7
    page = b.get("/api/tags", params={"limit": 4, "offset": 3})
    assert page.json()["features"] == full[3:7]
    # A full page points to the next one; walking the links gives everything once.
    walked: list[Any] = []
    url: str | None = "/api/tags?limit=3"
    while url is not None:
        r = b.get(url)
        walked += r.json()["features"]
        link = r.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
    assert walked == full
    # A zone-less time is UTC; refusals name the parameter.
    naive = times[3].astimezone(UTC).replace(tzinfo=None).isoformat()
    assert (
        b.get("/api/submissions", params={"since": naive}).json()
        == b.get("/api/submissions", params={"since": times[3].isoformat()}).json()
    )
    for params, field in (
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "10,0,0,10"}, "bbox"),
        ({"bbox": "nan,0,1,1"}, "bbox"),
        ({"status": "finished"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"project": "Not A Slug"}, "project"),
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
    ):
        body = assert_error_shape(b.get("/api/tags", params=params), 422)
        assert body["errors"][0]["field"] == field, (params, body)
    app.state.engine.dispose()


# --------------------------------------------------------------------------- images
def test_images_downscaled_and_tiled(app: FastAPI, tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    add_project(app, n=2)
    write_jpeg(tmp_path / "media" / "images" / "pano-0.jpg", 2048, 1024, seed=3)
    assert_error_shape(Browser(app).get("/api/panoramas/pano-0/image"), 401)
    b = logged_in(app, "lynx")

    def jpeg(r: Any) -> Any:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "private, max-age=86400"
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == "JPEG"
            return np.asarray(im.convert("RGB")).astype(float)

    full = jpeg(b.get("/api/panoramas/pano-0/image", params={"w": "full"}))
    assert full.shape == (1024, 2048, 3)
    for w in ("2048", "4096"):  # an original narrower than w is served whole
        assert jpeg(b.get("/api/panoramas/pano-0/image", params={"w": w})).shape == full.shape
    assert jpeg(b.get("/api/panoramas/pano-0/image")).shape == full.shape
    small = jpeg(b.get("/api/panoramas/pano-0/image", params={"w": "1024"}))
    assert small.shape == (512, 1024, 3)
    # The phone copy is the full image scaled down (2x2 block means, within JPEG loss).
    blocks = full.reshape(512, 2, 1024, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - blocks).mean() < 3.0
    body = assert_error_shape(b.get("/api/panoramas/pano-0/image", params={"w": "999"}), 422)
    assert body["errors"][0]["field"] == "w"
    # Tiles put back together are the image at that width.
    grid = np.zeros_like(small)
    for col in range(4):
        for row in range(2):
            r = b.get(
                f"/api/panoramas/pano-0/tiles/{col}_{row}.jpg",
                params={"cols": 4, "rows": 2, "w": "1024"},
            )
            tile = jpeg(r)
            assert tile.shape == (256, 256, 3)
            grid[row * 256 : (row + 1) * 256, col * 256 : (col + 1) * 256] = tile
    assert np.abs(grid - small).mean() < 3.0
    tiles = "/api/panoramas/pano-0/tiles"
    assert_error_shape(b.get(f"{tiles}/4_0.jpg", params={"cols": 4, "rows": 2}), 422)
    assert_error_shape(b.get(f"{tiles}/0_0.jpg", params={"cols": 3, "rows": 2}), 422)
    # A panorama whose file is missing, and an unknown panorama: 404.
    assert_error_shape(b.get("/api/panoramas/pano-1/image"), 404)
    assert_error_shape(b.get("/api/panoramas/pano-1/tiles/0_0.jpg"), 404)
    assert_error_shape(b.get("/api/panoramas/nope/image"), 404)


def test_tutorial_panorama_and_check(app: FastAPI) -> None:
    from camcensus.web.api_images import tutorial_truth

    b = logged_in(app, "lynx")
    meta = b.get("/api/tutorial").json()
    _, cameras = tutorial_truth()
    assert meta["cameras"] == len(cameras) > 0
    assert meta["panorama"]["image_url"] == "/api/tutorial/image"
    first = cameras[0]
    tags = [
        tag(
            "right",
            first["heading_deg"] + 1.0,
            first["pitch_deg"],
            attachment=first["attachment"],
            camera_type=first["camera_type"],
        ),
        tag("nothing", (first["heading_deg"] + 180.0) % 360.0, -60.0),
    ]
    out = b.post("/api/tutorial/check", json={"tags": tags}).json()
    assert out["found"] == 1 and out["missed"] == len(cameras) - 1
    assert [t["correct"] for t in out["tags"]] == [True, False]
    assert out["tags"][0]["nearest_deg"] == pytest.approx(
        abs(np.cos(np.radians(first["pitch_deg"]))) * 1.0, abs=0.01
    )
    assert out["passed"] is False


# --------------------------------------------------------------------------- admin
def _folder_source(root: Path) -> dict[str, Any]:
    """A folder of three panoramas plus an intersections list inside the media root."""
    folder = root / "imports" / "town"
    ids = ["p-a", "p-b", "p-c"]
    pixels = {pid: write_jpeg(folder / f"{pid}.jpg", 256, 128, seed=i) for i, pid in enumerate(ids)}
    pd.DataFrame(
        {
            "panorama_id": ids,
            "lat": [52.0, 52.001, 52.002],
            "lon": [4.0, 4.001, 4.002],
            "heading_deg": [0.0, 90.0, 180.5],
            "captured": ["2023-06-01", "2023-06", ""],
            "licence": "CC-BY-SA-4.0",
        }
    ).to_csv(folder / "panoramas.csv", index=False)
    pd.DataFrame(
        {"intersection_id": ["i1", "i2"], "lon": [4.00001, 4.00201], "lat": [52.0, 52.002]}
    ).to_csv(folder / "intersections.csv", index=False)
    return {"ids": ids, "pixels": pixels}


def test_admin_creates_a_project_from_a_folder(app: FastAPI, tmp_path: Path) -> None:
    import io

    from PIL import Image

    source = _folder_source(tmp_path / "media")
    admin = logged_in(app, "boss", role="admin")
    body = {
        "name": "town",
        "title": "A town",
        "source": "folder",
        "folder": "imports/town",
        "intersections_csv": "imports/town/intersections.csv",
        "k": 2,
        "licence": "CC-BY-SA-4.0",
    }
    r = admin.post("/api/admin/projects", json=body)
    assert r.status_code == 201, r.text
    # Only the panoramas matched to a listed intersection become tasks (p-b is none's).
    assert r.json()["panoramas"] == 2 and r.json()["k"] == 2 and r.json()["todo"] == 2
    panos = rows(app, "SELECT * FROM panoramas ORDER BY source_ref")
    assert [p["source_ref"] for p in panos] == ["p-a", "p-c"]
    assert [p["heading_deg"] for p in panos] == [0.0, 180.5]
    assert [p["captured"] for p in panos] == ["2023-06-01", None]
    assert {p["source"] for p in panos} == {"folder"}
    inter = rows(app, "SELECT intersection_id, panorama_id FROM intersections ORDER BY 1")
    by_ref = {p["panorama_id"]: p["source_ref"] for p in panos}
    assert [(i["intersection_id"], by_ref[i["panorama_id"]]) for i in inter] == [
        ("i1", "p-a"),
        ("i2", "p-c"),
    ]
    # The stored image is the folder's image.
    r = admin.get(f"/api/panoramas/{panos[1]['panorama_id']}/image", params={"w": "full"})
    with Image.open(io.BytesIO(r.content)) as im:
        served = np.asarray(im.convert("RGB")).astype(float)
    assert np.abs(served - source["pixels"]["p-c"]).mean() < 3.0
    # The same name again conflicts; paths outside the media root are refused before reading.
    assert_error_shape(admin.post("/api/admin/projects", json=body), 409)
    for field, value in (
        ("folder", str(tmp_path)),
        ("folder", "../"),
        ("folder", "/etc"),
        ("folder", "imports/../../"),
        ("folder", "no/such/folder"),
        ("intersections_csv", "/etc/passwd"),
    ):
        bad = {**body, "name": "other", field: value}
        err = assert_error_shape(admin.post("/api/admin/projects", json=bad), 422)
        assert err["errors"][0]["field"] == field, (field, value, err)
    # A folder whose index lacks a column: the problem names the column.
    (tmp_path / "media" / "imports" / "broken").mkdir()
    pd.DataFrame({"panorama_id": ["x"], "lat": [1.0]}).to_csv(
        tmp_path / "media" / "imports" / "broken" / "panoramas.csv", index=False
    )
    err = assert_error_shape(
        admin.post(
            "/api/admin/projects",
            json={**body, "name": "b", "folder": "imports/broken", "intersections_csv": None},
        ),
        422,
    )
    assert "lon" in {e["field"] for e in err["errors"]}
    err = assert_error_shape(
        admin.post("/api/admin/projects", json={**body, "name": "c", "folder": None}), 422
    )
    assert err["errors"][0]["field"] == "folder"
    err = assert_error_shape(
        admin.post("/api/admin/projects", json={**body, "name": "c", "source": "panoramax"}),
        422,
    )
    assert err["errors"][0]["field"] == "bbox"
    assert len(rows(app, "SELECT * FROM projects")) == 1


def test_admin_export_decode_zip(app: FastAPI) -> None:
    import io
    import zipfile

    add_project(app, n=2, k=2)
    sent = {
        "vol-0": [tag("a", 10.0), tag("b", 20.0, attachment="building")],
        "vol-1": [],
        "vol-2": [tag("c", 30.0, camera_type="bullet")],
    }
    for pseudonym, tags_sent in sent.items():
        b = logged_in(app, pseudonym)
        task = take_task(b)
        r = b.post(
            f"/api/tasks/{task['task_id']}/submit",
            json={"no_camera": not tags_sent, "tags": tags_sent},
        )
        assert r.status_code == 200, r.text
    admin = logged_in(app, "boss", role="admin")
    assert_error_shape(Browser(app).get("/api/admin/projects/city/export/decode.zip"), 401)
    assert_error_shape(
        logged_in(app, "lynx").get("/api/admin/projects/city/export/decode.zip"), 403
    )
    assert_error_shape(admin.get("/api/admin/projects/nowhere/export/decode.zip"), 404)
    r = admin.get("/api/admin/projects/city/export/decode.zip")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="city-decode.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        assert {"counts.csv", "intersections.csv", "panorama_url.csv", "cameras.csv"} <= names
        counts = pd.read_csv(zf.open("counts.csv"))
        cameras = pd.read_csv(zf.open("cameras.csv"))
    public = {
        p: rows(app, "SELECT public_id FROM volunteers WHERE pseudonym = :p", p=p)[0]["public_id"]
        for p in sent
    }
    by_decoder = dict(zip(counts["DecoderId"], counts["n_cameras"], strict=True))
    assert by_decoder == {public[p]: len(t) for p, t in sent.items()}
    assert sorted(cameras["Pov.heading"]) == [10.0, 20.0, 30.0]


def test_identity_cache_expires_and_is_dropped() -> None:
    from datetime import UTC, datetime, timedelta

    from camcensus.db.accounts import SessionIdentity
    from camcensus.web.security import IdentityCache

    clock = [100.0]
    cache = IdentityCache(ttl_s=5.0, clock=lambda: clock[0])

    def identity(vid: int, minutes: float) -> SessionIdentity:
        return SessionIdentity(
            volunteer_id=vid,
            public_id=f"p{vid}",
            pseudonym=f"v{vid}",
            role="volunteer",
            csrf_token="c" * 20,
            expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
            tutorial_done=False,
        )

    cache.put("a" * 20, identity(1, 60))
    cache.put("b" * 20, identity(1, 60))
    cache.put("c" * 20, identity(2, 60))
    cache.put("d" * 20, identity(3, -1))  # the session itself has expired
    found = cache.get("a" * 20)
    assert found is not None and (found.volunteer_id, found.public_id) == (1, "p1")
    assert cache.get("d" * 20) is None
    cache.drop_volunteer(1)
    assert cache.get("a" * 20) is None and cache.get("b" * 20) is None
    assert cache.get("c" * 20) is not None
    clock[0] += 5.01  # past the time to live: asked again from the database
    assert cache.get("c" * 20) is None


def test_cached_identity_still_checks_csrf_and_sees_log_out(app: FastAPI) -> None:
    b = logged_in(app, "lynx")
    assert b.get("/api/me").status_code == 200  # the identity is cached now
    token = b.client.cookies.get("camcensus_session")
    assert token and app.state.identity_cache.get(token) is not None
    # Another browser replaying the session cookie with its own (valid double-submit) CSRF
    # pair is refused: the token must be the session's, cached identity or not.
    other = Browser(app)
    other.client.cookies.set("camcensus_session", token)
    assert_error_shape(other.post("/api/tutorial/done"), 403)
    assert rows(app, "SELECT tutorial_done_at FROM volunteers")[0]["tutorial_done_at"] is None
    assert b.post("/api/logout").json() == {"ok": True}
    assert app.state.identity_cache.get(token) is None
    # The old cookie, replayed after log-out, opens nothing.
    assert_error_shape(other.get("/api/me"), 401)
