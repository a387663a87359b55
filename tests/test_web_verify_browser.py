"""The verify page end to end in Debian's Chromium: a volunteer logs in, gets the detector's
machine tag centred in the 360° viewer, answers with the mouse and with the keyboard (also at
phone width) until nothing is left; the stored validations rows are checked. Console errors,
Content-Security-Policy violations and requests leaving the server fail the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from conftest import offline_page, serve_in_thread
from test_web_browser import Watch, _wait_attr

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROJECT = "verify-city"
PASSWORD = "a long enough password"
MODEL = "browser-model"
#: The machine tags: (panorama, heading, pitch, score).
DETECTIONS = [("vp-0", 40.0, 12.0, 0.8), ("vp-1", 300.0, 25.0, 0.5), ("vp-2", 120.0, -5.0, 0.7)]


@dataclass
class Site:
    base: str
    engine: Any
    volunteer_id: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The real app under uvicorn over a SQLite database with three machine tags."""
    from sqlalchemy.orm import Session

    from camcensus.db import accounts, connect, projects, upgrade
    from camcensus.db.verify import import_detections
    from camcensus.web import WebSettings, create_app
    from test_web_api import write_jpeg

    folder = tmp_path_factory.mktemp("verify-site")
    url = f"sqlite:///{folder / 'platform.sqlite'}"
    upgrade(url)
    engine = connect(url)
    media = folder / "media"
    ids = [*sorted({d[0] for d in DETECTIONS}), "vp-3"]
    for i, pid in enumerate(ids):
        write_jpeg(media / "images" / f"{pid}.jpg", 1024, 512, seed=i)
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": [-73.99 + 0.001 * i for i in range(len(ids))],
            "lat": 40.7,
            "heading_deg": [15.0 * i for i in range(len(ids))],
            "captured": "2024-05",
            "source": "folder",
            "image_uri": [f"images/{pid}.jpg" for pid in ids],
            "width_px": 1024,
            "height_px": 512,
            "licence": "CC0-1.0",
        }
    )
    dets = pd.DataFrame(DETECTIONS, columns=["panorama_id", "heading_deg", "pitch_deg", "score"])
    dets["fov_deg"] = 60.0
    dets["camera_type"] = ["dome", "bullet", "unknown"]
    with Session(engine) as session:
        projects.create_project(
            session, name=PROJECT, title="Verify city", panoramas=frame, k=3, licence="CC0-1.0"
        )
        v = accounts.create_volunteer(session, pseudonym="checker", password=PASSWORD)
        session.flush()
        vid = int(v.volunteer_id)
        import_detections(session, project=PROJECT, detections=dets, model_id=MODEL, panoramas=ids)
        session.commit()
    app = create_app(engine, media_root=media, settings=WebSettings(rate_limits=False))
    try:
        with serve_in_thread(app) as base:
            yield Site(base, engine, vid)
    finally:
        engine.dispose()


def _marker_offset(page: Any) -> tuple[float, float]:
    """Pixels between the machine tag's marker and the centre of the viewer."""
    x, y, w, h = page.evaluate(
        """() => {
            const v = window.camcensus.viewer;
            const t = window.camcensus.verification().tag;
            const xy = v.viewer.dataHelper.sphericalCoordsToViewerCoords(
                v.position(t.heading_deg, t.pitch_deg));
            const box = v.container.getBoundingClientRect();
            return [xy.x, xy.y, box.width, box.height];
        }"""
    )
    return abs(x - w / 2), abs(y - h / 2)


def test_a_volunteer_verifies_machine_tags(site: Site) -> None:
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from camcensus.db.models import Submission, Tag, Validation
    from camcensus.db.verify import verification_table

    with Session(site.engine) as session:
        tag_of = {
            str(pid): str(tid)
            for tid, pid in session.execute(
                select(Tag.tag_id, Submission.panorama_id).join(
                    Submission, Submission.submission_id == Tag.submission_id
                )
            ).all()
        }
    with sync_playwright() as pw:
        blocked: list[str] = []
        browser, page = offline_page(pw, blocked)
        watch = Watch(page, site.base)
        try:
            page.goto(f"{site.base}/login?next=/verify/{PROJECT}")
            page.fill("#pseudonym", "checker")
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_url(f"{site.base}/verify/{PROJECT}")
            answers: dict[str, str] = {}

            # First task: the marker is centred; "Camera" with the mouse.
            first = _wait_attr(page, "tag-id", not_value="none")
            _wait_attr(page, "viewer-ready", "1")
            page.wait_for_timeout(300)
            dx, dy = _marker_offset(page)
            assert dx < 3 and dy < 3, (dx, dy)
            assert page.locator(".psv-marker").count() == 1
            assert "The detector suggests" in page.inner_text("#tag-says")
            # The question excludes far cameras (docs/detect.md: the detector tags them).
            question = " ".join(page.inner_text("#verify-question").split())
            assert "at this intersection" in question and "far down the street" in question
            assert "at this intersection" in page.inner_text("#status")
            assert page.inner_text("#not-camera") == "Not a camera here"
            page.click("#camera")
            assert _wait_attr(page, "last-verification") == first
            answers[first] = "agree"

            # Second task at phone width: the buttons fit; "Not a camera here" with the keyboard.
            page.set_viewport_size({"width": 390, "height": 844})
            second = _wait_attr(page, "tag-id", not_value=first)
            assert second != "none"
            _wait_attr(page, "viewer-ready", "1")
            for button in ("#camera", "#not-camera", "#not-sure"):
                box = page.locator(button).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            page.focus("#not-camera")
            page.keyboard.press("Enter")
            assert _wait_attr(page, "last-verification", second) == second
            answers[second] = "disagree"

            # Third: "Not sure" with Tab from the middle button and the space bar.
            third = _wait_attr(page, "tag-id", not_value=second)
            assert third not in ("none", first)
            _wait_attr(page, "viewer-ready", "1")
            page.focus("#not-camera")
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.id") == "not-sure"
            page.keyboard.press(" ")
            assert _wait_attr(page, "last-verification", third) == third
            answers[third] = "unsure"

            # Nothing is left.
            _wait_attr(page, "tag-id", "none")
            assert "No machine tag is waiting" in page.inner_text("#status")

            # The project page links to the verify page.
            page.goto(f"{site.base}/projects/{PROJECT}")
            assert page.locator(f"a[href='/verify/{PROJECT}']").count() == 1
            watch.check()
            assert blocked == []
        finally:
            browser.close()

    assert sorted(answers) == sorted(tag_of.values())
    with Session(site.engine) as session:
        stored = session.scalars(select(Validation)).all()
    assert {v.tag_id: v.answer for v in stored} == answers
    assert {v.volunteer_id for v in stored} == {site.volunteer_id}
    table = verification_table(site.engine, project=PROJECT).set_index("tag_id")
    for tag_id, answer in answers.items():
        counts = list(table.loc[tag_id, ["n_agree", "n_disagree", "n_unsure"]])
        assert counts == [int(answer == a) for a in ("agree", "disagree", "unsure")]
    assert set(table["status"]) == {"open"}  # one verdict never settles a machine tag
