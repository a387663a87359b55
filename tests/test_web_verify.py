"""The verify routes over HTTP (the real app, TestClient): take a machine tag, give a verdict,
the refusals in the one error shape, CSRF, log-in and the rate limit; the stored rows checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from camcensus.db.verify import VERIFY_CAP, import_detections, verification_table
from test_web_api import (
    Browser,
    add_project,
    assert_error_shape,
    logged_in,
    make_app,
    rows,
    tag,
    take_task,
)

MODEL = "web-model"


def add_detections(app: FastAPI, rows_: list[tuple[str, float, float, float]]) -> None:
    """Import machine tags (panorama_id, heading, pitch, score) through the library."""
    frame = pd.DataFrame(rows_, columns=["panorama_id", "heading_deg", "pitch_deg", "score"])
    frame["fov_deg"] = 60.0
    frame["camera_type"] = "dome"
    with Session(app.state.engine) as session, session.begin():
        import_detections(session, project="city", detections=frame, model_id=MODEL)


def machine_tag_ids(app: FastAPI) -> dict[str, str]:
    """``panorama_id:heading`` -> tag id of every machine tag."""
    found = rows(
        app,
        "SELECT t.tag_id, s.panorama_id, t.heading_deg FROM tags t "
        "JOIN submissions s ON s.submission_id = t.submission_id WHERE t.machine",
    )
    return {f"{r['panorama_id']}:{r['heading_deg']:g}": r["tag_id"] for r in found}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    application = make_app(tmp_path)
    add_project(application, n=3, k=3)
    add_detections(
        application,
        [("pano-0", 10.0, 5.0, 0.9), ("pano-0", 200.0, 20.0, 0.4), ("pano-1", 90, 1, 0.6)],
    )
    yield application
    application.state.engine.dispose()


def test_verify_tasks_until_none_is_left(app: FastAPI) -> None:
    b = logged_in(app, "lynx")
    tags = machine_tag_ids(app)
    judged: dict[str, str] = {}
    answers = iter(["agree", "disagree", "unsure"])
    while True:
        r = b.post("/api/projects/city/verifications")
        if r.status_code == 204:
            assert r.content == b""
            break
        assert r.status_code == 200, r.text
        task: dict[str, Any] = r.json()
        assert set(task) == {"tag_id", "panorama", "tag"}
        t = task["tag"]
        key = f"{task['panorama']['panorama_id']}:{t['heading_deg']:g}"
        assert tags[key] == task["tag_id"] == t["tag_id"]
        assert t["fov_deg"] == 60.0 and t["camera_type"] == "dome" and t["attachment"] == "unknown"
        # The verdict must not lean on the machine's confidence: the score stays server-side.
        assert "score" not in t
        assert task["panorama"]["image_url"] == (
            f"/api/panoramas/{task['panorama']['panorama_id']}/image"
        )
        answer = next(answers)
        r = b.post(f"/api/verifications/{task['tag_id']}", json={"answer": answer})
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True, "tag_id": task["tag_id"], "answer": answer}
        judged[task["tag_id"]] = answer
    assert sorted(judged) == sorted(tags.values())
    stored = rows(app, "SELECT v.tag_id, v.answer, o.pseudonym FROM validations v "
                 "JOIN volunteers o ON o.volunteer_id = v.volunteer_id")  # fmt: skip
    assert {r["tag_id"]: r["answer"] for r in stored} == judged
    assert {r["pseudonym"] for r in stored} == {"lynx"}
    # The same answer again is acknowledged with the stored row; another is a conflict.
    first, answer = next(iter(judged.items()))
    r = b.post(f"/api/verifications/{first}", json={"answer": answer})
    assert r.json() == {"ok": True, "tag_id": first, "answer": answer}
    other = "agree" if answer != "agree" else "disagree"
    body = assert_error_shape(b.post(f"/api/verifications/{first}", json={"answer": other}), 409)
    assert body["errors"][0]["field"] == "answer"
    assert len(rows(app, "SELECT * FROM validations")) == 3
    # A verifier is never given the panoramas they verified to tag: only pano-2 is left.
    assert take_task(b)["panorama"]["panorama_id"] == "pano-2"


def test_a_tag_settles_and_takes_no_more_verdicts(app: FastAPI) -> None:
    target = machine_tag_ids(app)["pano-1:90"]
    for name in ("v-one", "v-two"):
        b = logged_in(app, name)
        assert (
            b.post(f"/api/verifications/{target}", json={"answer": "disagree"}).status_code == 200
        )
    late = logged_in(app, "v-three")
    body = assert_error_shape(
        late.post(f"/api/verifications/{target}", json={"answer": "agree"}), 409
    )
    assert "rejected" in body["error"]
    offered = set()
    while (r := late.post("/api/projects/city/verifications")).status_code == 200:
        offered.add(r.json()["tag_id"])
        late.post(f"/api/verifications/{r.json()['tag_id']}", json={"answer": "unsure"})
    assert r.status_code == 204 and target not in offered and len(offered) == 2
    table = verification_table(app.state.engine, project="city").set_index("tag_id")
    assert table.loc[target, "status"] == "rejected"
    assert list(table.loc[target, ["n_disagree", "n_agree"]]) == [2, 0] and VERIFY_CAP == 5


def test_refusals_in_the_one_error_shape(app: FastAPI) -> None:
    tags = machine_tag_ids(app)
    anonymous = Browser(app)
    assert_error_shape(anonymous.post("/api/projects/city/verifications"), 401)
    assert_error_shape(
        anonymous.post(f"/api/verifications/{tags['pano-0:10']}", json={"answer": "agree"}), 401
    )
    b = logged_in(app, "heron")
    # CSRF: without the header the verdict is refused and nothing is stored.
    bare = b.client.post(
        f"/api/verifications/{tags['pano-0:10']}",
        json={"answer": "agree"},
        headers={"X-CSRF-Token": ""},
    )
    assert_error_shape(bare, 403)
    assert rows(app, "SELECT * FROM validations") == []
    body = assert_error_shape(
        b.post(f"/api/verifications/{tags['pano-0:10']}", json={"answer": "yes"}), 422
    )
    assert body["errors"][0]["field"].endswith("answer")
    body = assert_error_shape(
        b.post(f"/api/verifications/{tags['pano-0:10']}", json={"answer": "agree", "x": 1}), 422
    )
    assert_error_shape(b.post("/api/verifications/no-such-tag", json={"answer": "agree"}), 404)
    assert_error_shape(b.post("/api/verifications/bad%20id", json={"answer": "agree"}), 422)
    assert_error_shape(b.post("/api/projects/nowhere/verifications"), 404)
    # A panorama given to the volunteer as a task: its machine tags are refused (403) and
    # never offered.
    task = take_task(b)
    given = task["panorama"]["panorama_id"]
    on_given = [v for k, v in tags.items() if k.startswith(given + ":")]
    for tag_id in on_given:
        assert_error_shape(b.post(f"/api/verifications/{tag_id}", json={"answer": "agree"}), 403)
    r = b.post("/api/projects/city/verifications")
    while r.status_code == 200:
        assert r.json()["panorama"]["panorama_id"] != given
        b.post(f"/api/verifications/{r.json()['tag_id']}", json={"answer": "unsure"})
        r = b.post("/api/projects/city/verifications")
    # A volunteer's own tag is not a machine tag: 404 pointing to the validation route.
    b.post(f"/api/tasks/{task['task_id']}/submit", json={"no_camera": False, "tags": [tag("a", 5)]})
    [volunteer_tag] = rows(app, "SELECT tag_id FROM tags WHERE NOT machine")
    body = assert_error_shape(
        logged_in(app, "egret").post(
            f"/api/verifications/{volunteer_tag['tag_id']}", json={"answer": "agree"}
        ),
        404,
    )
    assert "/api/validations" in body["errors"][0]["message"]


def test_verdicts_are_rate_limited(tmp_path: Path) -> None:
    app = make_app(tmp_path, write_burst=3, write_per_minute=1.0)
    add_project(app, n=3, k=3)
    add_detections(app, [("pano-0", 10.0, 5.0, 0.9), ("pano-1", 20.0, 5.0, 0.9)])
    try:
        b = logged_in(app, "swift")
        statuses = [b.post("/api/projects/city/verifications").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = b.post("/api/projects/city/verifications")
        body = assert_error_shape(r, 429)
        assert int(r.headers["Retry-After"]) >= 1 and body["error"]
        tag_id = machine_tag_ids(app)["pano-0:10"]
        assert_error_shape(b.post(f"/api/verifications/{tag_id}", json={"answer": "agree"}), 429)
        assert rows(app, "SELECT * FROM validations") == []
    finally:
        app.state.engine.dispose()


def test_openapi_documents_the_verify_routes(app: FastAPI) -> None:
    schema = app.openapi()
    take = schema["paths"]["/api/projects/{name}/verifications"]["post"]
    give = schema["paths"]["/api/verifications/{tag_id}"]["post"]
    assert take["summary"].startswith("Take a machine tag to verify")
    assert "204" in take["responses"] and "200" in take["responses"]
    assert give["summary"].startswith("Verify a machine tag")
    ref = give["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/VerificationIn")
    answer = schema["components"]["schemas"]["VerificationIn"]["properties"]["answer"]
    assert answer["enum"] == ["agree", "disagree", "unsure"]
