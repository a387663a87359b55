"""The report: results.json, tables, figures, and an index.html that works offline."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus.io.formats import sha256, tables_from_sqlite
from camcensus.pipeline import run_demo
from camcensus.report import write_report

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo")
    # The demo's inputs live beside the report: a report folder never holds its inputs.
    out = base / "report"
    write_report(run_demo(base / "work", seed=0), out)
    return out


@pytest.fixture(scope="module")
def nyc_report(tmp_path_factory: pytest.TempPathFactory, citywide_result) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("nyc")
    write_report(citywide_result, out)
    return out


def test_results_json(demo_report: Path) -> None:
    results = json.loads((demo_report / "results.json").read_text())
    assert results["numbers"]["public_cameras"] > 0
    for e in results["exclusions"]:
        assert set(e) == {"stage", "reason", "count"} and e["count"] > 0
    # Checksums of the inputs are the files' own.
    counts = next(i for i in results["inputs"] if i["role"] == "raw_counts")
    assert counts["sha256"] == sha256(counts["path"])
    # Every table shown is in results.json, and equals the CSV written.
    table = pd.read_csv(demo_report / "tables" / "camera_counts.csv", index_col="borough")
    shown = {r["borough"]: r for r in results["tables"]["cameras_by_attachment"]}
    assert shown["Total"]["attached_street"] == table.loc["Total", "attached_street"]
    assert results["settings"]["radius_m"] == 120.0


def test_tract_coverage_table(nyc_report: Path) -> None:
    t = pd.read_csv(nyc_report / "tables" / "tract_coverage.csv", dtype={"GEOID": str})
    assert len(t) == 2_165
    for col in (
        "GEOID",
        "eff_cameras",
        "eff_cameras_within_200m",
        "cameras",
        "cameras_within_200m",
    ):
        assert col in t.columns
    assert t["cameras"].sum() == 3_317
    small = t["popn"] <= 250
    assert t.loc[small, "surveillance_level"].isna().all()
    rated = t.loc[~small]
    np.testing.assert_allclose(
        rated["surveillance_level"], rated["eff_cameras"] / rated["popn"] * 1000
    )
    results = json.loads((nyc_report / "results.json").read_text())
    excl = {e["reason"]: e["count"] for e in results["exclusions"]}
    assert excl["tract population at most 250 (parks, airports): no rate"] == int(small.sum())


def test_sqlite_store_round_trip(demo_report: Path) -> None:
    db = demo_report / "camcensus.sqlite"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    back = tables_from_sqlite(db, ["panoramas", "tract_coverage"])
    pan = pd.read_csv(demo_report / "tables" / "panoramas.csv")
    assert len(back["panoramas"]) == len(pan)
    np.testing.assert_allclose(back["panoramas"].geometry.x, pan["lon"], atol=1e-6)


def test_html_needs_no_network(nyc_report: Path) -> None:
    html = (nyc_report / "index.html").read_text()
    assert "maplibregl.Map" in html
    # Outside the inlined scripts (whose strings hold MapLibre's attribution link), no tag
    # loads anything from elsewhere; the browser test checks the scripts' own requests.
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert re.findall(r"<script[^>]*\ssrc=", markup) == []
    external = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", markup)
    assert external == []
    assert not re.search(r"""url\(\s*["']?https?://""", html)
    assert "3,317" in html  # the headline number is on the page


@pytest.mark.browser
def test_report_renders_offline_in_chromium(nyc_report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is required: make test installs it"
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--enable-unsafe-swiftshader",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})

        # Any request that leaves the file itself fails the test.
        def _route(route) -> None:  # type: ignore[no-untyped-def]
            url = route.request.url
            if not url.startswith(("file:", "data:", "blob:")):
                requests.append(url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", _route)
        page.goto((nyc_report / "index.html").as_uri())
        page.wait_for_selector("body[data-map-ready=yes]", timeout=60_000)
        assert page.evaluate("document.body.dataset.mapError") is None
        shot = tmp_path / "report.png"
        page.locator("#map").screenshot(path=str(shot))
        # Hover the middle of Brooklyn: a tract tooltip with its numbers appears.
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.62)
        page.wait_for_timeout(300)
        tip = page.locator("#tooltip").inner_text()
        browser.close()
    assert requests == []
    # A tract's or an intersection's tooltip, with its numbers.
    assert re.search(r"Tract \d{11}|Intersection", tip), tip
    assert re.search(r"cameras: \d", tip), tip
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The choropleth is drawn: many distinct colours, and warm (YlOrRd) tract fills.
    colours = {tuple(c) for c in img.reshape(-1, 3)[::37]}
    assert len(colours) > 50
    warm = (img[..., 0] > 200) & (img[..., 2] < 120)
    assert warm.mean() > 0.02
