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
from conftest import offline_page


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return run_demo(tmp_path_factory.mktemp("demo_inputs"), seed=0, platform=False)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory, demo_result) -> Path:  # type: ignore[no-untyped-def]
    # The demo's inputs live beside the report: a report folder never holds its inputs.
    out = tmp_path_factory.mktemp("demo") / "report"
    write_report(demo_result, out)
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
    # The report says which coverage model produced its figures.
    assert "disc model: 120 m discs (30 segments per quarter circle)" in html


@pytest.mark.browser
def test_report_renders_offline_in_chromium(nyc_report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser, page = offline_page(p, requests)
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


def _tables(html: str) -> dict[str, str]:
    return dict(re.findall(r'<table data-name="([^"]+)">(.*?)</table>', html, flags=re.S))


def test_only_total_rows_are_bold(demo_report: Path) -> None:
    tables = _tables((demo_report / "index.html").read_text(encoding="utf-8"))
    assert {"camera_counts", "survival", "exclusions"} <= set(tables)
    for name, body in tables.items():
        last_row = re.findall(r"<tr[^>]*>", body)[-1]
        is_total = bool(re.search(r"<tr[^>]*>\s*<td[^>]*>Total</td>(?!.*<tr)", body, flags=re.S))
        assert ('class="total"' in last_row) == is_total, name
    assert 'class="total"' in tables["camera_counts"]
    assert 'class="total"' not in tables["survival"]


def test_every_disparity_table_shown_with_interval_method(demo_report: Path, demo_result) -> None:  # type: ignore[no-untyped-def]
    html = (demo_report / "index.html").read_text(encoding="utf-8")
    tables = _tables(html)
    for key in demo_result.disparity.tables:
        assert f"who_{key}" in tables, key
    assert "Intervals and verdicts:" in html
    method = getattr(demo_result.disparity, "interval_method", None)
    if method:
        assert f"Intervals and verdicts: {method}." in html


def test_intersections_not_claimed_as_a_census(nyc_report: Path, citywide_result) -> None:  # type: ignore[no-untyped-def]
    from camcensus.aggregate import has_zero_rows

    # The citywide copy lists only intersections with at least one camera.
    assert not has_zero_rows(citywide_result.panoramas)
    html = (nyc_report / "index.html").read_text(encoding="utf-8")
    table = _tables(html)["intersections_by_borough"]
    header = re.search(r"<thead>(.*?)</thead>", table, flags=re.S)
    assert header is not None
    assert "intersections listed (each with ≥1 camera)" in header.group(1)
    assert "panoramas" not in header.group(1) and "with camera" not in header.group(1)
    csv = pd.read_csv(nyc_report / "tables" / "intersections_by_borough.csv")
    assert "panoramas" not in csv.columns and "with_camera" not in csv.columns
    assert "intersections listed, each with at least one camera" in html


def test_legends_never_cover_data(
    demo_result,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    import camcensus.report.figures as figures
    import camcensus.report.who as who
    from camcensus.report.sections import ReportContext

    checked: list[str] = []
    real_save = figures._save

    def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
        for legend in (lg for lg in legends if lg is not None):
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), path.name
                label = ax.xaxis.label
                if label.get_text():
                    assert not box.overlaps(label.get_window_extent(renderer)), path.name
            checked.append(path.name)
        return real_save(fig, path)

    monkeypatch.setattr(figures, "_save", _save)
    monkeypatch.setattr(who, "_save", _save)
    ctx = ReportContext(demo_result, tmp_path)
    figures.write_figures(demo_result, tmp_path, ctx.outlines)
    who.who_figures(demo_result, tmp_path)
    assert {"cameras_by_borough.png", "agreement.png", "stop_model_coefficients.png",
            "sensitivity_radius.png"} <= set(checked)  # fmt: skip


def test_a_stage_adds_a_section(
    demo_result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import camcensus.report.sections as sections

    def _extra(ctx: sections.ReportContext) -> sections.Section:
        frame = pd.DataFrame({"district": ["A", "Total"], "cameras": [3, 3]}).set_index("district")
        return sections.Section(
            "districts",
            "Council districts",
            25,
            (
                sections.Text("One more stage."),
                sections.Table("districts", "By district", frame, index="district"),
            ),
            results={"districts": {"A": 3}},
        )

    monkeypatch.setattr(sections, "_BUILDERS", list(sections.section_builders()))
    sections.register_section(_extra)
    paths = write_report(demo_result, tmp_path / "r")
    html = paths["html"].read_text(encoding="utf-8")
    assert '<section id="section-districts">' in html and "Council districts" in html
    assert html.index("Council districts") < html.index("Who is watched")
    assert 'class="total"' in _tables(html)["districts"]
    results = json.loads(paths["results"].read_text())
    assert results["districts"] == {"A": 3}
    assert "tables/districts.csv" in results["tables_written"]
    assert pd.read_csv(paths["districts"]).columns.tolist() == ["district", "cameras"]


def test_camera_inventory_section(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "in", seed=1, platform=False)
    write_report(result, tmp_path / "r")
    inv = pd.read_csv(tmp_path / "r" / "tables" / "camera_inventory.csv")
    cams = pd.read_csv(tmp_path / "r" / "tables" / "cameras.csv")
    assert inv["cameras"].sum() == len(cams) == result.numbers["total_cameras"]
    street = inv.loc[inv["mount"] == "street", "cameras"].sum()
    assert street == result.numbers["public_cameras"]
    con = sqlite3.connect(tmp_path / "r" / "camcensus.sqlite")
    n = con.execute("SELECT COUNT(*) FROM cameras").fetchone()[0]
    con.close()
    assert n == len(cams)
    assert "The camera inventory" in (tmp_path / "r" / "index.html").read_text()
