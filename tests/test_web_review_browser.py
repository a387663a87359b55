"""The admin's expert review page in Debian's Chromium: a plan CSV uploaded through the file
input, three experts' answers (through the normal review routes), the meta-expert's form
(only the disagreeing categories editable, the server's refusal shown, then the reference
recorded), and the old queue form's experts field.

The real app runs under uvicorn on a loopback port; the page is watched for console errors,
Content-Security-Policy violations and requests that leave the server (``Watch`` of
test_web_browser.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from conftest import offline_page, serve_in_thread
from test_web_api import PASSWORD, Browser, add_account, add_project, make_app, rows
from test_web_browser import Watch
from test_web_review_admin import HOSTILE_PSEUDONYM, answer_reviews, building, street

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """The app over a fresh database under uvicorn (a background thread); its URL and app."""

    app = make_app(tmp_path, rate_limits=False)
    try:
        with serve_in_thread(app) as url:
            yield url, app
    finally:
        app.state.engine.dispose()


def _wait_status(page: Any, selector: str) -> str:
    """Wait until the live region ``selector`` says ok or error; return its kind."""
    page.wait_for_selector(
        f"{selector}[data-kind='ok'], {selector}[data-kind='error']", state="attached"
    )
    return str(page.eval_on_selector(selector, "e => e.dataset.kind"))


def test_admin_review_page_in_chromium(live: tuple[str, FastAPI]) -> None:
    from playwright.sync_api import sync_playwright

    from camcensus.db.export import export_reviews

    base, app = live
    ids = add_project(app, n=3)
    add_account(app, "boss", role="admin")
    plan = f"PanoramaId,stratum,inclusion_probability\n{ids[0]},low,0.5\n{ids[1]},high,0.25\n"
    with sync_playwright() as pw:
        blocked: list[str] = []
        browser, page = offline_page(pw, blocked)
        watch = Watch(page, base)
        try:
            page.goto(f"{base}/login?next=/admin/projects/city/review")
            page.fill("#pseudonym", "boss")
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_url(f"{base}/admin/projects/city/review")
            page.set_input_files(
                "#p-file",
                files=[{"name": "plan.csv", "mimeType": "text/csv", "buffer": plan.encode()}],
            )
            page.click("#plan-form button[type=submit]")
            assert _wait_status(page, "#plan-status") == "ok", page.inner_text("#plan-status")
            assert page.inner_text("#plan-status").startswith("Queued 2 panoramas.")

            # Three experts answer through the normal routes: agree on ids[0], not on ids[1].
            experts = {}
            for name in ("owl", "kite", "wren"):
                add_account(app, name, role="expert")
                experts[name] = Browser(app)
                experts[name].login(name)
            answers = {
                ids[0]: {name: [street("a", 40.0)] for name in experts},
                ids[1]: {
                    "owl": [street("a", 40.0)],
                    "kite": [street("a", 40.0)],
                    "wren": [street("a", 40.0), building("b", 300.0)],
                },
            }
            answer_reviews(experts, answers)
            with app.state.engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE volunteers SET pseudonym = ? WHERE pseudonym = 'wren'",
                    (HOSTILE_PSEUDONYM,),
                )

            page.reload()
            strata = page.inner_text("#strata")
            assert "high\t1\t0\t1\t0" in strata and "low\t1\t0\t0\t1" in strata, strata
            forms = page.query_selector_all("form.resolve-form")
            assert len(forms) == 1
            form = forms[0]
            # The hostile pseudonym is a header's text, not an element.
            assert HOSTILE_PSEUDONYM in form.inner_text()
            assert form.query_selector("img") is None
            enabled = form.eval_on_selector_all(
                "input:not(:disabled)", "xs => xs.map((x) => x.name)"
            )
            assert enabled == ["n_cameras", "attached_building"]
            marked = form.eval_on_selector_all(
                "tr.disagree", "xs => xs.map((x) => x.dataset.category)"
            )
            assert marked == ["n_cameras", "attached_building"]

            # Counts that do not add up: the server's refusal is shown, the form stays open.
            page.fill("form.resolve-form input[name=n_cameras]", "3")
            page.fill("form.resolve-form input[name=attached_building]", "1")
            page.click("form.resolve-form button[type=submit]")
            assert _wait_status(page, "form.resolve-form .status") == "error"
            assert "reference.n_cameras" in form.inner_text()
            # Chromium logs the refused request (the one 422 expected here) as a console error.
            refused = [p for p in watch.problems if "status of 422" in p]
            assert len(refused) == 1, watch.problems
            watch.problems.remove(refused[0])
            page.fill("form.resolve-form input[name=n_cameras]", "2")
            page.fill("form.resolve-form textarea[name=note]", "the building camera is real")
            page.eval_on_selector("form.resolve-form .status", "e => { e.dataset.kind = ''; }")
            page.click("form.resolve-form button[type=submit]")
            assert _wait_status(page, "form.resolve-form .status") == "ok", form.inner_text()
            assert form.get_attribute("data-resolved") == "1"

            # The old queue form sends the experts per panorama.
            page.goto(f"{base}/admin")
            page.fill("#r-project", "city")
            page.fill("#r-ids", ids[2])
            page.fill("#r-experts", "2")
            page.click("#review-form button[type=submit]")
            assert _wait_status(page, "#review-status") == "ok", page.inner_text("#review-status")
            watch.check()
        finally:
            browser.close()
        assert blocked == []

    needed = rows(
        app, "SELECT panorama_id, experts_needed, status FROM reviews ORDER BY panorama_id"
    )
    assert needed == [
        {"panorama_id": ids[0], "experts_needed": 3, "status": "done"},
        {"panorama_id": ids[1], "experts_needed": 3, "status": "done"},
        {"panorama_id": ids[2], "experts_needed": 2, "status": "open"},
    ]
    frame = export_reviews(app.state.engine, project="city").set_index("PanoramaId")
    reference = frame.loc[ids[1], ["n_cameras", "attached_street", "attached_building"]]
    assert reference.to_dict() == {"n_cameras": 2, "attached_street": 1, "attached_building": 1}
    assert frame["meta"].tolist() == [False, True]
    [note] = rows(app, "SELECT note FROM review_answers WHERE role = 'meta'")
    assert note == {"note": "the building camera is real"}
