"""End to end in Debian's Chromium: a volunteer's whole journey through the real pages.

The real app (``camcensus.web.create_app``) runs under uvicorn on a loopback port over a SQLite
platform database; the project's panoramas are synthetic scenes rendered by
``camcensus.simulate`` whose truth tables say where every camera is. The browser signs up, does
the tutorial, tags two cameras by clicking the rendered panorama where the truth says they
are (the stored rays must be within 1° of the truth), changes a tag's type, deletes a stray
tag, submits, reports a problem, validates another volunteer's tag; an admin downloads the
Decode export and ``camcensus aggregate`` gives the medians the submissions imply. Every page
is watched for console errors and Content-Security-Policy violations, and no request may leave
the server's origin.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from camcensus.io.decode import CATEGORIES
from conftest import offline_page, serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED = 7
PROJECT = "e2e"
PASSWORD = "a long enough password"
#: Greatest error allowed between a stored ray and the truth (degrees).
TOLERANCE_DEG = 1.0
#: How many panoramas the project holds (each with a pole camera and another camera).
N_PANORAMAS = 4
# The viewer's own warnings (SwiftShader's "GPU stall due to ReadPixels") are not errors.
_INIT_SCRIPT = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});
"""


@dataclass
class Site:
    """The running platform: its URL, database and the truth of every panorama."""

    base: str
    engine: Any
    truth: dict[str, pd.DataFrame]
    lonlat: dict[str, tuple[float, float]]
    volunteers: dict[str, int] = field(default_factory=dict)


def _angle(h1: float, p1: float, h2: float, p2: float) -> float:
    """Great-circle angle in degrees between two rays (heading, pitch)."""
    a1, b1, a2, b2 = np.radians([h1, p1, h2, p2])
    c = np.sin(b1) * np.sin(b2) + np.cos(b1) * np.cos(b2) * np.cos(a1 - a2)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _heading_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _two_cameras(cams: pd.DataFrame) -> pd.DataFrame | None:
    """Pick a pole camera and the largest other camera at least 8° from it, or None."""
    street = cams[cams["attachment"] == "street"].sort_values("angular_width_deg")
    for first in street[::-1].itertuples():
        others = cams[cams["object_id"] != first.object_id]
        far = [
            r.Index
            for r in others.itertuples()
            if _angle(first.heading_deg, first.pitch_deg, r.heading_deg, r.pitch_deg) > 8.0
        ]
        if far:
            second = others.loc[far].sort_values("angular_width_deg").iloc[-1]
            return cams.loc[[first.Index, second.name]]
    return None


def _render_project(media: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Render the synthetic panoramas; return the panoramas, intersections and camera truth."""
    from camcensus.imagery.store import ImageStore
    from camcensus.simulate import simulate_city
    from camcensus.simulate.render import render_panorama, to_jpeg
    from camcensus.simulate.scene import objects_in_view, panorama_scene

    city = simulate_city(SEED, nx=8, ny=8)
    store = ImageStore(media)
    p = city.panoramas
    rows, inter, truth = [], [], {}
    for i, pid in enumerate(p["PanoramaId"].astype(str)):
        heading = (37.5 + 61.0 * i) % 360.0
        view = objects_in_view(panorama_scene(city, pid, seed=SEED, heading_deg=heading))
        cams = view[(view["kind"] == "camera") & view["visible"]]
        chosen = _two_cameras(cams) if len(cams) >= 2 else None
        if chosen is None:
            continue
        rendered = render_panorama(
            panorama_scene(city, pid, seed=SEED, heading_deg=heading), width=4096, height=2048
        )
        drawn = rendered.truth.set_index("object_id").loc[chosen["object_id"], "drawn"]
        if not bool(drawn.all()):
            continue
        uri = store.put(pid, to_jpeg(rendered.image), suffix=".jpg")
        lon = float(p.loc[p["PanoramaId"].astype(str) == pid, "GoogleLong"].iloc[0])
        lat = float(p.loc[p["PanoramaId"].astype(str) == pid, "GoogleLat"].iloc[0])
        rows.append(
            {
                "panorama_id": pid,
                "lon": lon,
                "lat": lat,
                "heading_deg": heading,
                "captured": "2024-05",
                "source": "synthetic",
                "image_uri": uri,
                "width_px": 4096,
                "height_px": 2048,
                "licence": "synthetic (no restriction)",
            }
        )
        inter.append(
            {"intersection_id": f"I{len(inter) + 1}", "lon": lon, "lat": lat, "panorama_id": pid}
        )
        truth[pid] = chosen.reset_index(drop=True)
        if len(rows) == N_PANORAMAS:
            break
    assert len(rows) == N_PANORAMAS, "the seeded city has too few panoramas with two cameras"
    return pd.DataFrame(rows), pd.DataFrame(inter), truth


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Start the real app under uvicorn on a free loopback port (a background thread)."""
    from sqlalchemy.orm import Session

    from camcensus.db import accounts, connect, projects, upgrade
    from camcensus.web import WebSettings, create_app

    folder = tmp_path_factory.mktemp("platform")
    url = f"sqlite:///{folder / 'platform.sqlite'}"
    upgrade(url)
    engine = connect(url)
    media = folder / "media"
    panoramas, intersections, truth = _render_project(media)
    volunteers = {}
    with Session(engine) as session:
        projects.create_project(
            session,
            name=PROJECT,
            title="End-to-end test city",
            panoramas=panoramas,
            intersections=intersections,
            k=3,
            licence="CC0-1.0",
        )
        for name, role in (
            ("e2e-admin", "admin"),
            ("second-vol", "volunteer"),
            ("third-vol", "volunteer"),
            ("fourth-vol", "volunteer"),
        ):
            v = accounts.create_volunteer(session, pseudonym=name, password=PASSWORD, role=role)
            session.flush()
            volunteers[name] = int(v.volunteer_id)
        session.commit()
    app = create_app(engine, media_root=media, settings=WebSettings(rate_limits=False))
    lonlat = {r.panorama_id: (r.lon, r.lat) for r in panoramas.itertuples()}
    try:
        with serve_in_thread(app) as url:
            yield Site(url, engine, truth, lonlat, volunteers)
    finally:
        engine.dispose()


class Watch:
    """Console errors, page errors, CSP violations and requests that leave the server."""

    def __init__(self, page: Any, base: str) -> None:
        self.base = base
        self.problems: list[str] = []
        self.outside: list[str] = []
        self.requests: list[str] = []
        page.add_init_script(script=_INIT_SCRIPT)
        page.on("console", self._console)
        page.on("pageerror", lambda err: self.problems.append(f"page error on {page.url}: {err}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.unroute("**/*")  # offline_page's route allows only file: URLs
        page.route("**/*", self._route)
        self.page = page

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error on {self.page.url}: {message.text}")

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.base + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def check(self) -> None:
        """Fail with every problem seen so far."""
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.problems == [], "\n".join(self.problems)


def _wait_attr(
    page: Any,
    name: str,
    value: str | None = None,
    *,
    not_value: str | None = None,
    timeout: float = 60_000,
) -> str:
    """Wait until ``<body data-NAME>`` has ``value`` (or any value other than ``not_value``)."""
    if value is not None:
        page.wait_for_selector(f"body[data-{name}='{value}']", state="attached", timeout=timeout)
        return value
    selector = f"body[data-{name}]:not([data-{name}=''])"
    if not_value is not None:
        selector += f":not([data-{name}='{not_value}'])"
    page.wait_for_selector(selector, state="attached", timeout=timeout)
    return str(page.eval_on_selector("body", f"b => b.getAttribute('data-{name}')"))


def _aim(
    page: Any,
    heading: float,
    pitch: float,
    *,
    offset: tuple[float, float] = (0.0, 0.0),
    hfov: float = 40.0,
) -> tuple[float, float]:
    """Turn the viewer near a ray; return the page point where that ray is drawn."""
    page.evaluate(
        """([h, p, dy, dp, fov]) => {
            const v = window.camcensus.viewer;
            const pos = v.position(h, p);
            v.lookAt(h, p, fov);
            v.viewer.rotate({yaw: pos.yaw + dy * Math.PI / 180,
                             pitch: pos.pitch + dp * Math.PI / 180});
        }""",
        [heading, pitch, offset[0], offset[1], hfov],
    )
    page.wait_for_timeout(400)
    point = page.evaluate(
        """([h, p]) => {
            const v = window.camcensus.viewer;
            const xy = v.viewer.dataHelper.sphericalCoordsToViewerCoords(v.position(h, p));
            const box = v.container.getBoundingClientRect();
            return [box.left + xy.x, box.top + xy.y, box.width, box.height, xy.x, xy.y];
        }""",
        [heading, pitch],
    )
    x, y, w, h, vx, vy = point
    assert 10 < vx < w - 10 and 10 < vy < h - 60, f"the ray is not on screen: {point}"
    return float(x), float(y)


def _click_ray(page: Any, heading: float, pitch: float, offset: tuple[float, float]) -> None:
    x, y = _aim(page, heading, pitch, offset=offset)
    page.mouse.click(x, y)
    page.wait_for_timeout(450)  # two clicks closer than PSV's double-click delay are one


def _category_counts(tags: list[tuple[str, str]]) -> dict[str, int]:
    counts = dict.fromkeys(CATEGORIES, 0)
    for attachment, camera_type in tags:
        counts["n_cameras"] += 1
        counts[f"attached_{attachment}"] += 1
        if attachment == "street":
            counts[f"type_{camera_type}"] += 1
    return counts


def _library_submit(site: Site, volunteer: str, panorama_id: str, cams: pd.DataFrame) -> None:
    """Submit ``cams`` for ``volunteer`` on ``panorama_id`` through the library."""
    from sqlalchemy.orm import Session

    from camcensus.db import tasks

    lon, lat = site.lonlat[panorama_id]
    with Session(site.engine) as session:
        task = tasks.next_task(
            session,
            project=PROJECT,
            volunteer_id=site.volunteers[volunteer],
            bbox=[lon - 1e-5, lat - 1e-5, lon + 1e-5, lat + 1e-5],
        )
        assert task is not None and task.panorama_id == panorama_id
        tags = [
            tasks.TagIn(
                client_id=f"{volunteer}-{i}",
                heading_deg=float(c.heading_deg),
                pitch_deg=float(c.pitch_deg),
                fov_deg=50.0,
                attachment=str(c.attachment),
                camera_type=str(c.camera_type) if c.attachment == "street" else "unknown",
                replaces=None,
                deleted=False,
                clicked_at=None,
            )
            for i, c in enumerate(cams.itertuples())
        ]
        tasks.submit(
            session,
            assignment_id=task.assignment_id,
            volunteer_id=site.volunteers[volunteer],
            tags=tags,
            no_camera=False,
        )
        session.commit()


def _tutorial(page: Any, site: Site) -> None:
    """Tag every tutorial camera with the keyboard (aim the cross, Enter) and get it right."""
    from camcensus.web.api_images import tutorial_truth

    _, cameras = tutorial_truth()
    _wait_attr(page, "viewer-ready", "1")
    for cam in cameras:
        page.evaluate(
            "([h, p]) => window.camcensus.viewer.lookAt(h, p, 40)",
            [cam["heading_deg"], cam["pitch_deg"]],
        )
        page.wait_for_timeout(300)
        page.focus("#viewer")
        page.keyboard.press("Enter")
        page.check(f"#tag-editor input[name=attachment][value={cam['attachment']}]")
        if cam["attachment"] == "street":
            page.check(f"#tag-editor input[name=camera_type][value={cam['camera_type']}]")
        page.click("#tag-done")
    page.click("#check")
    _wait_attr(page, "tutorial-checked", "1")
    feedback = page.inner_text("#feedback")
    assert page.eval_on_selector("body", "b => b.dataset.tutorialPassed") == "1", feedback
    assert f"found all {len(cameras)} cameras" in feedback
    page.click("#finish")
    page.wait_for_url(site.base + "/")


def test_volunteer_journey_end_to_end(site: Site, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from camcensus.cli import app as cli
    from camcensus.db.models import Assignment, Submission, Tag, Validation, Volunteer
    from camcensus.io.formats import read_csv

    with sync_playwright() as pw:
        blocked: list[str] = []
        browser, page = offline_page(pw, blocked)
        watch = Watch(page, site.base)
        try:
            # Sign up (the form posts JSON with the CSRF header), then the tutorial.
            page.goto(site.base + "/signup")
            page.fill("#pseudonym", "first-volunteer")
            page.fill("#password", PASSWORD)
            page.click("#signup-form button[type=submit]")
            page.wait_for_url(site.base + "/tutorial")
            _tutorial(page, site)
            with Session(site.engine) as session:
                me = session.scalars(
                    select(Volunteer).where(Volunteer.pseudonym == "first-volunteer")
                ).one()
                assert me.tutorial_done_at is not None
                my_id, my_public = me.volunteer_id, me.public_id

            # Tag two cameras where the truth says they are.
            page.goto(f"{site.base}/tag/{PROJECT}")
            task_id = _wait_attr(page, "task-id", not_value="none")
            _wait_attr(page, "viewer-ready", "1")
            with Session(site.engine) as session:
                first_panorama = session.get(Assignment, task_id).panorama_id  # type: ignore[union-attr]
            cams = site.truth[first_panorama]
            for i, cam in enumerate(cams.itertuples()):
                # The view is turned a little off the camera, so the click is not the centre.
                _click_ray(page, cam.heading_deg, cam.pitch_deg, (4.0 - 8.0 * i, -2.5))
                assert page.eval_on_selector("body", "b => b.dataset.tags") == str(i + 1)
                page.check(f"#tag-editor input[name=attachment][value={cam.attachment}]")
                if cam.attachment == "street":
                    wrong = "bullet" if cam.camera_type != "bullet" else "dome"
                    page.check(f"#tag-editor input[name=camera_type][value={wrong}]")
                page.click("#tag-done")
            # A stray tag, deleted with the keyboard before submitting.
            stray = cams.iloc[0]
            _click_ray(page, (stray.heading_deg + 25.0) % 360, -5.0, (3.0, 2.0))
            assert page.eval_on_selector("body", "b => b.dataset.tags") == "3"
            # Move it before deleting it: the first click stays stored, the move is a new
            # version that replaces it.
            page.click("#tag-move")
            _click_ray(page, (stray.heading_deg + 40.0) % 360, -10.0, (0.0, 0.0))
            assert page.eval_on_selector("body", "b => b.dataset.tags") == "3"
            page.focus("#viewer")
            page.keyboard.press("Delete")
            assert page.eval_on_selector("body", "b => b.dataset.tags") == "2"
            # Change the pole camera's type: select it in the list, pick the true type.
            street = cams[cams["attachment"] == "street"].iloc[0]
            index = int(np.flatnonzero(cams["object_id"] == street.object_id)[0])
            page.click(f"#tag-list li:nth-child({index + 1}) button")
            page.check(f"#tag-editor input[name=camera_type][value={street.camera_type}]")
            page.click("#tag-done")
            assert street.camera_type in page.inner_text("#tag-list").replace("dome/PTZ", "dome")
            page.click("#submit")
            _wait_attr(page, "last-submission")
            second_task = _wait_attr(page, "task-id", not_value=task_id)
            assert second_task != "none"

            with Session(site.engine) as session:
                sub = session.scalars(
                    select(Submission).where(Submission.assignment_id == task_id)
                ).one()
                assert sub.decoder_id == my_public and sub.no_camera is False
                assert sub.client_build and sub.client_build.startswith("camcensus-web/")
                rows = session.scalars(
                    select(Tag).where(Tag.submission_id == sub.submission_id)
                ).all()
                standing = [t for t in rows if t.current and not t.deleted]
                assert len(standing) == 2
                assert sum(t.deleted for t in rows) == 1
                moved = [
                    t for t in rows
                    if not t.deleted and t.replaces_tag_id is not None
                    and _heading_diff(t.heading_deg, (stray.heading_deg + 40.0) % 360) < 2.0
                ]  # fmt: skip
                assert len(moved) == 1 and not moved[0].current
                first_click = [t for t in rows if t.tag_id == moved[0].replaces_tag_id]
                assert len(first_click) == 1 and not first_click[0].current
                assert _heading_diff(first_click[0].heading_deg, stray.heading_deg + 25.0) < 2.0
                for cam in cams.itertuples():
                    near = [
                        t for t in standing
                        if _heading_diff(t.heading_deg, cam.heading_deg) <= TOLERANCE_DEG
                        and abs(t.pitch_deg - cam.pitch_deg) <= TOLERANCE_DEG
                    ]  # fmt: skip
                    assert len(near) == 1, (cam, [(t.heading_deg, t.pitch_deg) for t in standing])
                    tag = near[0]
                    assert tag.attachment == cam.attachment
                    assert 20.0 < tag.fov_deg < 60.0
                    if cam.attachment == "street":
                        assert tag.camera_type == cam.camera_type
                        old = [t for t in rows if t.tag_id == tag.replaces_tag_id]
                        assert len(old) == 1 and not old[0].current
                        assert old[0].camera_type != cam.camera_type
                        assert (old[0].heading_deg, old[0].pitch_deg) == (
                            tag.heading_deg,
                            tag.pitch_deg,
                        )
                    else:
                        assert tag.camera_type == "unknown" and tag.replaces_tag_id is None
                    err = _angle(tag.heading_deg, tag.pitch_deg, cam.heading_deg, cam.pitch_deg)
                    assert err < TOLERANCE_DEG, err

            # Report a problem with the next panorama.
            page.click("#problem-open")
            page.check("#problem-form input[name=problem][value=wrong_place]")
            page.fill("#problem-note", "This is a <b>car park</b>, not the crossing")
            page.click("#problem-send")
            assert _wait_attr(page, "last-problem") == second_task
            with Session(site.engine) as session:
                sub = session.scalars(
                    select(Submission).where(Submission.assignment_id == second_task)
                ).one()
                assert sub.problem == "wrong_place"
                assert sub.problem_note == "This is a <b>car park</b>, not the crossing"

            # Phone width: the tagging page fits 375 px and asks for the 2048 px image.
            page.set_viewport_size({"width": 375, "height": 740})
            page.reload()
            _wait_attr(page, "viewer-ready", "1")
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            assert any("/image?w=2048" in u for u in watch.requests)
            page.set_viewport_size({"width": 1280, "height": 1000})

            # Two more volunteers submit the first panorama through the library: the second
            # as the truth, the third only the first camera.
            _library_submit(site, "second-vol", first_panorama, cams)
            _library_submit(site, "third-vol", first_panorama, cams.iloc[:1])
            # Only complete panoramas never given to the validator are validated: three
            # other volunteers answer a panorama this volunteer has not seen.
            with Session(site.engine) as session:
                seen = set(
                    session.scalars(
                        select(Assignment.panorama_id).where(Assignment.volunteer_id == my_id)
                    )
                )
            other = sorted(set(site.lonlat) - seen)[0]
            for name in ("second-vol", "third-vol", "fourth-vol"):
                _library_submit(site, name, other, site.truth[other])

            # Validate another volunteer's tag.
            page.goto(f"{site.base}/validate/{PROJECT}")
            tag_id = _wait_attr(page, "tag-id", not_value="none")
            _wait_attr(page, "viewer-ready", "1")
            page.click("#agree")
            assert _wait_attr(page, "last-validation") == tag_id
            with Session(site.engine) as session:
                v = session.scalars(select(Validation).where(Validation.tag_id == tag_id)).one()
                assert (v.volunteer_id, v.answer) == (my_id, "agree")
                owner = session.scalars(
                    select(Submission.decoder_id)
                    .join(Tag, Tag.submission_id == Submission.submission_id)
                    .where(Tag.tag_id == tag_id)
                ).one()
                assert owner != my_public

            # Discussion: typed markup is shown as text, never as HTML.
            page.goto(f"{site.base}/panoramas/{first_panorama}/discussion")
            page.fill("#body", "<img src=x onerror=alert(1)> is this a dome?")
            page.click("#comment-form button[type=submit]")
            page.wait_for_selector("#comments li")
            assert "<img src=x onerror=alert(1)> is this a dome?" in page.inner_text("#comments")
            assert page.query_selector("#comments img") is None

            # The admin logs in and downloads the Decode export.
            page.goto(site.base + "/")
            page.click("#logout")
            page.wait_for_selector("header a[href='/login']")
            page.goto(site.base + "/login?next=/admin")
            page.fill("#pseudonym", "e2e-admin")
            page.fill("#password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_url(site.base + "/admin")
            with page.expect_download() as info:
                page.click(f"a.export[href='/api/admin/projects/{PROJECT}/export/decode.zip']")
            archive = tmp_path / "decode.zip"
            info.value.save_as(archive)

            # The progress map and the guide.
            page.goto(f"{site.base}/projects/{PROJECT}")
            _wait_attr(page, "map-ready", "1")
            assert page.inner_text("#n-panoramas") == str(N_PANORAMAS)
            page.goto(site.base + "/guide")
            assert page.eval_on_selector_all("img", "imgs => imgs.every(i => i.naturalWidth > 0)")

            watch.check()
        finally:
            browser.close()
        assert blocked == []

    out = tmp_path / "export"
    with zipfile.ZipFile(archive) as z:
        z.extractall(out)
    found = {p.name: p for p in out.rglob("*.csv")}
    agg = tmp_path / "counts_per_intersections.csv"
    result = CliRunner().invoke(
        cli,
        [
            "aggregate",
            "--raw-counts", str(found["counts.csv"]),
            "--raw-intersections", str(found["intersections.csv"]),
            "--panoramas", str(found["panorama_url.csv"]),
            "--pick", "first",
            "--out", str(agg),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = read_csv(agg, dtype={"PanoramaId": str}).set_index("PanoramaId")
    # Two panoramas have three counted submissions (the problem report never counts).
    assert sorted(got.index) == sorted([first_panorama, other])
    labels = [
        (str(c.attachment), str(c.camera_type) if c.attachment == "street" else "unknown")
        for c in cams.itertuples()
    ]
    votes = [_category_counts(labels), _category_counts(labels), _category_counts(labels[:1])]
    for c in CATEGORIES:
        want = sorted(v[c] for v in votes)[1]
        assert got.loc[first_panorama, f"{c}_median"] == want, c
    assert got.loc[first_panorama, "n_cameras_median"] == 2
