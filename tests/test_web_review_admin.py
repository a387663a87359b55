"""The admin's side of the three-expert review over HTTP: a plan CSV queued through the admin
API, three experts answering through the normal review task and submit routes, the
disagreements waiting for a meta-expert, the meta-expert's reference, ``reviews.csv``, the
admin review page (escaping, only disagreeing categories editable) and the gold skill table.

Every status is read through the admin routes, which only read: the submit route records each
expert answer as it is stored (:func:`camcensus.db.review.record_review_answer`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

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

CATEGORIES = (
    "n_cameras",
    "attached_street",
    "attached_building",
    "attached_unknown",
    "type_dome",
    "type_bullet",
    "type_unknown",
)
HOSTILE_STRATUM = "<script>alert('stratum')</script>"
HOSTILE_PSEUDONYM = '<img src=x onerror="alert(1)">&amp;'


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    application = make_app(tmp_path)
    yield application
    application.state.engine.dispose()


def street(client_id: str, heading: float, camera_type: str = "dome") -> dict[str, Any]:
    return tag(client_id, heading, attachment="street", camera_type=camera_type)


def building(client_id: str, heading: float) -> dict[str, Any]:
    return tag(client_id, heading, attachment="building", camera_type="unknown")


def counts(**given: int) -> dict[str, int]:
    """The seven counts of an answer (zeros unless given)."""
    return {c: given.get(c, 0) for c in CATEGORIES}


def answer_reviews(
    experts: dict[str, Browser], answers: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, list[str]]:
    """Each expert takes review tasks until none is left and answers ``answers[panorama]
    [expert]``; return the panoramas each expert reviewed."""
    seen: dict[str, list[str]] = {name: [] for name in experts}
    for name, b in experts.items():
        for _ in range(20):
            r = b.post("/api/projects/city/reviews")
            if r.status_code == 204:
                break
            assert r.status_code == 200, r.text
            task = r.json()
            assert task["kind"] == "review"
            panorama = task["panorama"]["panorama_id"]
            seen[name].append(panorama)
            tags = answers[panorama][name]
            r = b.post(
                f"/api/tasks/{task['task_id']}/submit",
                json={"no_camera": not tags, "tags": tags},
            )
            assert r.status_code == 200, r.text
        else:  # pragma: no cover - the loop must end
            raise AssertionError(f"{name} was given reviews without end")
    return seen


def plan_csv(plan: list[tuple[str, str, float]]) -> str:
    frame = pd.DataFrame(plan, columns=["PanoramaId", "stratum", "inclusion_probability"])
    frame["weight"] = 1 / frame["inclusion_probability"]
    return frame.to_csv(index=False)


class _Forms(HTMLParser):
    """The resolve forms of the admin review page: review id -> {input name: (disabled, value)}."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, tuple[bool, str | None]]] = {}
        self.marked: dict[str, list[str]] = {}
        self._form: str | None = None
        self._row: str | None = None
        self.buttons: dict[str, int] = {}

    def handle_starttag(self, tagname: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tagname == "form" and "data-review-id" in a:
            self._form = str(a["data-review-id"])
            self.forms[self._form] = {}
            self.marked[self._form] = []
            self.buttons[self._form] = 0
        elif self._form is not None and tagname == "tr" and "data-category" in a:
            self._row = str(a["data-category"])
            if a.get("class") == "disagree":
                self.marked[self._form].append(self._row)
        elif self._form is not None and tagname == "input":
            self.forms[self._form][str(a["name"])] = ("disabled" in a, a.get("value"))
        elif self._form is not None and tagname == "button":
            self.buttons[self._form] += 1

    def handle_endtag(self, tagname: str) -> None:
        if tagname == "form":
            self._form = None


def page_forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


# Three planned panoramas: the experts agree on the first, disagree on the other two.
def _three_panoramas_answered(app: FastAPI) -> dict[str, Any]:
    ids = add_project(app, n=4)
    admin = logged_in(app, "boss", role="admin")
    plan = [
        (ids[0], "median0 Unanimous", 0.5),
        (ids[1], HOSTILE_STRATUM, 0.25),
        (ids[2], "median1 2 vs 1", 0.2),
    ]
    r = admin.post("/api/admin/projects/city/review-plan", json={"plan_csv": plan_csv(plan)})
    assert r.json() == {"ok": True, "queued": 3}, r.text
    experts = {name: logged_in(app, name, role="expert") for name in ("owl", "kite", "wren")}
    answers = {
        ids[0]: {name: [street("a", 40.0)] for name in experts},
        ids[1]: {
            "owl": [street("a", 40.0)],
            "kite": [street("a", 40.0), street("b", 200.0, "bullet")],
            "wren": [street("a", 40.0), building("b", 300.0)],
        },
        ids[2]: {"owl": [], "kite": [], "wren": [building("a", 10.0)]},
    }
    seen = answer_reviews(experts, answers)
    # Each expert answered each planned panorama once; the unplanned one was never given.
    assert {name: sorted(p) for name, p in seen.items()} == {
        name: sorted(ids[:3]) for name in experts
    }
    return {"ids": ids, "admin": admin, "experts": experts, "plan": plan}


def test_plan_experts_meta_expert_and_reviews_csv(app: FastAPI) -> None:
    from camcensus.db.export import export_reviews

    state = _three_panoramas_answered(app)
    ids, admin = state["ids"], state["admin"]
    stored = {
        r["panorama_id"]: r
        for r in rows(
            app, "SELECT panorama_id, stratum, inclusion_prob, experts_needed FROM reviews"
        )
    }
    assert stored[ids[1]] == {
        "panorama_id": ids[1],
        "stratum": HOSTILE_STRATUM,
        "inclusion_prob": 0.25,
        "experts_needed": 3,
    }

    status = admin.get("/api/admin/projects/city/reviews")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["progress"] == {
        "queued": 3,
        "open": 0,
        "awaiting_meta": 2,
        "done": 1,
        "unanimous": 1,
        "resolved": 0,
        "answers": 9,
        "answers_needed": 9,
    }
    assert body["by_stratum"] == [
        {"stratum": HOSTILE_STRATUM, "open": 0, "awaiting_meta": 1, "done": 0, "queued": 1},
        {"stratum": "median0 Unanimous", "open": 0, "awaiting_meta": 0, "done": 1, "queued": 1},
        {"stratum": "median1 2 vs 1", "open": 0, "awaiting_meta": 1, "done": 0, "queued": 1},
    ]
    awaiting = {r["panorama_id"]: r for r in body["awaiting_meta"]}
    assert set(awaiting) == {ids[1], ids[2]}
    one, two = awaiting[ids[1]], awaiting[ids[2]]
    assert one["disagree"] == ["n_cameras", "attached_street", "attached_building", "type_bullet"]
    assert one["agreed"] == {"attached_unknown": 0, "type_dome": 1, "type_unknown": 0}
    assert {e["pseudonym"]: {c: e[c] for c in CATEGORIES} for e in one["experts"]} == {
        "owl": counts(n_cameras=1, attached_street=1, type_dome=1),
        "kite": counts(n_cameras=2, attached_street=2, type_dome=1, type_bullet=1),
        "wren": counts(n_cameras=2, attached_street=1, attached_building=1, type_dome=1),
    }
    assert two["disagree"] == ["n_cameras", "attached_building"]

    # The page: one form per review awaiting a meta-expert; only disagreeing categories editable.
    page = admin.get("/admin/projects/city/review")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    forms = page_forms(page.text)
    assert set(forms.forms) == {one["review_id"], two["review_id"]}
    inputs = forms.forms[one["review_id"]]
    assert {c for c, (disabled, _) in inputs.items() if not disabled} == set(one["disagree"])
    assert {c: v for c, (disabled, v) in inputs.items() if disabled} == {
        "attached_unknown": "0",
        "type_dome": "1",
        "type_unknown": "0",
    }
    assert forms.marked[one["review_id"]] == one["disagree"]
    assert forms.buttons[one["review_id"]] == 1

    url = f"/api/admin/reviews/{one['review_id']}/resolve"
    # The server checks: every disagreeing category, whole numbers, agreed values stand,
    # counts add up.
    missing = assert_error_shape(admin.post(url, json={"reference": {"n_cameras": 2}}), 422)
    assert {e["field"] for e in missing["errors"]} == {
        "reference.attached_street",
        "reference.attached_building",
        "reference.type_bullet",
    }
    good = {"n_cameras": 2, "attached_street": 1, "attached_building": 1, "type_bullet": 0}
    changed = assert_error_shape(admin.post(url, json={"reference": good | {"type_dome": 2}}), 422)
    assert [e["field"] for e in changed["errors"]] == ["reference.type_dome"]
    wrong_sum = assert_error_shape(
        admin.post(url, json={"reference": good | {"n_cameras": 3}}), 422
    )
    assert [e["field"] for e in wrong_sum["errors"]] == ["reference.n_cameras"]
    # Experts and volunteers are not meta-experts; a request without the CSRF header is refused.
    assert_error_shape(state["experts"]["owl"].post(url, json={"reference": good}), 403)
    no_csrf = Browser(app)
    no_csrf.login("boss")
    del no_csrf.client.headers["X-CSRF-Token"]
    assert_error_shape(no_csrf.post(url, json={"reference": good}), 403)
    assert_error_shape(admin.post("/api/admin/reviews/nope/resolve", json={"reference": {}}), 404)

    note = "<b>both bullets</b> were one camera"
    r = admin.post(url, json={"reference": good, "note": note})
    assert r.json() == {"ok": True}, r.text
    # The same reference again is fine (a double click); another one conflicts.
    assert admin.post(url, json={"reference": good}).json() == {"ok": True}
    assert_error_shape(
        admin.post(url, json={"reference": good | {"n_cameras": 1, "attached_building": 0}}), 409
    )
    r = admin.post(
        f"/api/admin/reviews/{two['review_id']}/resolve",
        json={"reference": {"n_cameras": 0, "attached_building": 0}},
    )
    assert r.json() == {"ok": True}, r.text

    body = admin.get("/api/admin/projects/city/reviews").json()
    assert body["awaiting_meta"] == []
    assert body["progress"]["done"] == 3 and body["progress"]["resolved"] == 2
    assert [s["done"] for s in body["by_stratum"]] == [1, 1, 1]
    assert page_forms(admin.get("/admin/projects/city/review").text).forms == {}

    # reviews.csv: the unanimous value or the meta-expert's, the plan's weights and strata.
    frame = export_reviews(app.state.engine, project="city").set_index("PanoramaId")
    assert list(frame.index) == sorted(ids[:3])
    assert frame.loc[ids[0], CATEGORIES].to_dict() == counts(
        n_cameras=1, attached_street=1, type_dome=1
    )
    assert frame.loc[ids[1], CATEGORIES].to_dict() == counts(
        n_cameras=2, attached_street=1, attached_building=1, type_dome=1
    )
    assert frame.loc[ids[2], CATEGORIES].to_dict() == counts()
    assert frame["meta"].to_dict() == {ids[0]: False, ids[1]: True, ids[2]: True}
    assert frame["stratum"].to_dict() == {p: s for p, s, _ in state["plan"]}
    assert frame["weight"].to_dict() == pytest.approx({ids[0]: 2.0, ids[1]: 4.0, ids[2]: 5.0})
    assert sorted(frame.loc[ids[1], [f"expert_{i}_n_cameras" for i in (1, 2, 3)]]) == [1, 2, 2]

    # The admin's Decode export zip holds the same reviews.csv.
    r = admin.get("/api/admin/projects/city/export/decode.zip")
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        csv = pd.read_csv(zf.open("reviews.csv"), dtype={"PanoramaId": str})
    csv = csv.set_index("PanoramaId")
    assert csv.loc[ids[1], list(CATEGORIES)].to_dict() == frame.loc[ids[1], CATEGORIES].to_dict()
    assert csv["meta"].to_dict() == frame["meta"].to_dict()


def test_review_page_shows_hostile_text_as_text(app: FastAPI) -> None:
    from camcensus.db.models import Volunteer

    state = _three_panoramas_answered(app)
    # Pseudonyms are checked at sign-up; one stored otherwise (an import, an old rule) must
    # still reach the page as text.
    with Session(app.state.engine) as session, session.begin():
        owl = session.scalars(select(Volunteer).where(Volunteer.pseudonym == "owl")).one()
        owl.pseudonym = HOSTILE_PSEUDONYM
    page = state["admin"].get("/admin/projects/city/review")
    assert page.status_code == 200
    html = page.text
    assert HOSTILE_STRATUM not in html and HOSTILE_PSEUDONYM not in html
    assert "&lt;script&gt;alert(&#39;stratum&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;amp;" in html
    assert "<script" not in html.replace('<script type="module" src="/static/js/', "")
    # The page's one script is the module; no inline script, so the CSP holds.
    assert html.count("<script") == 1
    assert "js/admin_review.js" in html
    # The API returns the same text unchanged (JSON, for textContent).
    awaiting = state["admin"].get("/api/admin/projects/city/reviews").json()["awaiting_meta"]
    assert {s["stratum"] for s in awaiting} == {HOSTILE_STRATUM, "median1 2 vs 1"}
    assert HOSTILE_PSEUDONYM in {e["pseudonym"] for r in awaiting for e in r["experts"]}


def test_an_admin_who_answered_as_expert_cannot_resolve(app: FastAPI) -> None:
    ids = add_project(app, n=2)
    boss = logged_in(app, "boss", role="admin")
    chief = logged_in(app, "chief", role="admin")
    r = boss.post(
        "/api/admin/projects/city/review-plan",
        json={"plan_csv": f"PanoramaId,inclusion_probability\n{ids[1]},1\n"},
    )
    assert r.json() == {"ok": True, "queued": 1}, r.text
    experts = {"chief": chief, "owl": logged_in(app, "owl", role="expert")}
    experts["kite"] = logged_in(app, "kite", role="expert")
    answers = {
        ids[1]: {"chief": [], "owl": [building("a", 5.0)], "kite": [building("a", 5.0)]},
    }
    answer_reviews(experts, answers)
    [review] = boss.get("/api/admin/projects/city/reviews").json()["awaiting_meta"]
    assert review["disagree"] == ["n_cameras", "attached_building"]
    assert review["stratum"] is None
    # Chief's page shows the review without a submit button and says why.
    forms = page_forms(chief.get("/admin/projects/city/review").text)
    assert forms.buttons[review["review_id"]] == 0
    assert all(disabled for disabled, _ in forms.forms[review["review_id"]].values())
    assert "You answered this review as an expert" in chief.get("/admin/projects/city/review").text
    assert page_forms(boss.get("/admin/projects/city/review").text).buttons == {
        review["review_id"]: 1
    }
    page = boss.get("/admin/projects/city/review").text
    assert "(no stratum)" in page
    reference = {"n_cameras": 1, "attached_building": 1}
    url = f"/api/admin/reviews/{review['review_id']}/resolve"
    assert_error_shape(chief.post(url, json={"reference": reference}), 403)
    assert boss.post(url, json={"reference": reference}).json() == {"ok": True}
    [row] = rows(app, "SELECT status FROM reviews")
    assert row["status"] == "done"


def test_review_page_access(app: FastAPI) -> None:
    add_project(app, n=1)
    anonymous = Browser(app)
    r = anonymous.get("/admin/projects/city/review", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/admin/projects/city/review"
    for name, role in (("lynx", "volunteer"), ("owl", "expert")):
        r = logged_in(app, name, role=role).get("/admin/projects/city/review")
        assert r.status_code == 403 and "needs the role admin" in r.text
        assert_error_shape(
            logged_in(app, f"{name}2", role=role).get("/api/admin/projects/city/reviews"), 403
        )
    admin = logged_in(app, "boss", role="admin")
    assert admin.get("/admin/projects/nowhere/review").status_code == 404
    page = admin.get("/admin/projects/city/review")
    assert page.status_code == 200
    assert "No review queued yet." in page.text
    assert "No review is waiting for a meta-expert." in page.text
    assert 'id="p-file" name="plan" type="file"' in page.text
    # The admin page links each project's review page.
    assert 'href="/admin/projects/city/review"' in admin.get("/admin").text
    assert_error_shape(admin.get("/api/admin/projects/nowhere/reviews"), 404)


def test_queue_route_takes_experts_per_panorama(app: FastAPI) -> None:
    ids = add_project(app, n=3)
    admin = logged_in(app, "boss", role="admin")
    r = admin.post("/api/admin/projects/city/reviews", json={"panorama_ids": [ids[0]]})
    assert r.json() == {"ok": True, "queued": 1}, r.text
    r = admin.post(
        "/api/admin/projects/city/reviews", json={"panorama_ids": [ids[1]], "experts": 1}
    )
    assert r.json() == {"ok": True, "queued": 1}, r.text
    needed = {
        r["panorama_id"]: r["experts_needed"]
        for r in rows(app, "SELECT panorama_id, experts_needed FROM reviews")
    }
    assert needed == {ids[0]: 3, ids[1]: 1}
    for bad in (0, 21, "three"):
        body = assert_error_shape(
            admin.post(
                "/api/admin/projects/city/reviews", json={"panorama_ids": [ids[2]], "experts": bad}
            ),
            422,
        )
        assert body["errors"][0]["field"] == "experts"
    # The single-expert review is done after one answer; the three-expert one waits.
    owl = logged_in(app, "owl", role="expert")
    answer_reviews({"owl": owl}, {p: {"owl": [street("a", 1.0)]} for p in ids[:2]})
    status = admin.get("/api/admin/projects/city/reviews").json()
    assert status["progress"]["done"] == 1 and status["progress"]["open"] == 1
    assert status["progress"]["answers"] == 2 and status["progress"]["answers_needed"] == 4
    done = rows(app, "SELECT panorama_id FROM reviews WHERE status = 'done'")
    assert done == [{"panorama_id": ids[1]}]


def test_review_plan_refusals(app: FastAPI) -> None:
    ids = add_project(app, n=2)
    admin = logged_in(app, "boss", role="admin")
    url = "/api/admin/projects/city/review-plan"
    body = assert_error_shape(admin.post(url, json={"plan_csv": "PanoramaId\npano-0\n"}), 422)
    assert [e["field"] for e in body["errors"]] == ["inclusion_probability"]
    body = assert_error_shape(
        admin.post(
            url,
            json={
                "plan_csv": "PanoramaId,inclusion_probability\n"
                f"{ids[0]},0\n{ids[1]},0.5\n{ids[1]},0.5\n"
            },
        ),
        422,
    )
    assert [e["field"] for e in body["errors"]] == [
        "inclusion_probability[row 1]",
        "PanoramaId[row 3]",
    ]
    body = assert_error_shape(
        admin.post(url, json={"plan_csv": "PanoramaId,inclusion_probability\nnope,0.5\n"}), 404
    )
    assert "nope" in body["errors"][0]["message"]
    assert_error_shape(admin.post(url, json={"plan_csv": ""}), 422)
    assert_error_shape(
        admin.post(
            url, json={"plan_csv": f"PanoramaId,inclusion_probability\n{ids[0]},1\n", "experts": 0}
        ),
        422,
    )
    assert_error_shape(
        logged_in(app, "owl", role="expert").post(
            url, json={"plan_csv": f"PanoramaId,inclusion_probability\n{ids[0]},1\n"}
        ),
        403,
    )
    # Nothing was queued by the refused plans.
    assert rows(app, "SELECT count(*) AS n FROM reviews") == [{"n": 0}]


def test_gold_skill_table(app: FastAPI) -> None:
    from camcensus.db.models import Project

    ids = add_project(app, n=2)
    with Session(app.state.engine) as session, session.begin():
        session.scalars(select(Project)).one().gold_every = 1
    admin = logged_in(app, "boss", role="admin")
    truth = [
        {"heading_deg": 100.0, "pitch_deg": 20.0, "attachment": "street", "camera_type": "dome"},
        {
            "heading_deg": 250.0,
            "pitch_deg": 5.0,
            "attachment": "building",
            "camera_type": "unknown",
        },
    ]
    assert admin.post(f"/api/admin/panoramas/{ids[0]}/gold", json={"answer": truth}).json() == {
        "ok": True
    }
    lynx = logged_in(app, "lynx")
    task = take_task(lynx)
    assert task["kind"] == "gold"
    # One camera found (3° off), one missed, one extra tag.
    r = lynx.post(
        f"/api/tasks/{task['task_id']}/submit",
        json={"no_camera": False, "tags": [tag("a", 103.0, 21.0), tag("b", 20.0)]},
    )
    assert r.status_code == 200, r.text
    skill = admin.get("/api/admin/projects/city/skill")
    assert skill.status_code == 200, skill.text
    [row] = skill.json()
    assert {k: v for k, v in row.items() if k != "decoder_id"} == {
        "pseudonym": "lynx",
        "gold_tasks": 1,
        "found": 1,
        "missed": 1,
        "extra": 1,
        "detection_rate": 0.5,
        "false_per_panorama": 1.0,
    }
    assert isinstance(row["decoder_id"], str) and row["decoder_id"]
    html = admin.get("/admin/projects/city/review").text
    assert (
        '<tr><th scope="row">lynx</th><td>1</td><td>1</td><td>1</td><td>1</td>'
        "<td>50%</td><td>1.00</td></tr>"
    ) in html
    assert_error_shape(lynx.get("/api/admin/projects/city/skill"), 403)
