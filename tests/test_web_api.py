"""The JSON API of the volunteer platform: accounts, the task loop, public data, admin routes.

The helpers at the top (``make_app``, ``Browser``) are shared with test_web_security.py and
test_web_schemathesis.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
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


def add_project(app: FastAPI, name: str = "city", n: int = 3, k: int = 3) -> list[str]:
    """Create a project of ``n`` panoramas through the library; return their ids."""
    from camcensus.db.projects import create_project

    ids = [f"pano-{i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": [-73.99 + 0.001 * i for i in range(n)],
            "lat": [40.70 + 0.001 * i for i in range(n)],
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
