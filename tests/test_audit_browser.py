"""The audit reports of Baltimore and New Orleans open offline in headless Chromium: the map
draws, a camera or tract tooltip shows its numbers, the audit section shows its rates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camcensus.audit import audit_report
from conftest import offline_page


def _cities(shared: Path) -> dict[str, dict[str, Any]]:
    b = shared / "other_cities" / "baltimore"
    n = shared / "other_cities" / "new_orleans"
    return {
        "baltimore": {
            "cameras": [b / "CCTV_Locations.csv"],
            "source_format": "baltimore-citiwatch",
            "tracts": b / "tracts_cb2018.geojson",
            "acs": b / "acs2018_B02001_B03002_B19001_long.csv",
            "city": "Baltimore",
        },
        "new_orleans": {
            "cameras": [n / "new_orleans_cameras_3_11_2022.csv"],
            "source_format": "new-orleans-rtcc",
            "tracts": n / "tracts_tiger2020.geojson",
            "acs": n / "acs2020_tract.csv",
            "race": "alone",
            "city": "New Orleans",
        },
    }


@pytest.mark.browser
@pytest.mark.realdata
@pytest.mark.parametrize("name", ["baltimore", "new_orleans"])
def test_audit_report_in_chromium(shared: Path, tmp_path: Path, name: str) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / name
    result = audit_report(out, permutations=19, reps=200, **_cities(shared)[name])
    requests: list[str] = []
    with sync_playwright() as p:
        browser, page = offline_page(p, requests)
        page.goto((out / "index.html").as_uri())
        page.wait_for_selector("body[data-map-ready=yes]", timeout=60_000)
        assert page.evaluate("document.body.dataset.mapError") is None
        shot = tmp_path / "map.png"
        page.locator("#map").screenshot(path=str(shot))
        # The tract under the busiest camera location: hover it, a tooltip with numbers.
        box = page.locator("#map").bounding_box()
        assert box is not None
        tip = ""
        for fx, fy in ((0.5, 0.5), (0.45, 0.55), (0.55, 0.45), (0.6, 0.6), (0.4, 0.4)):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(250)
            tip = page.locator("#tooltip").inner_text()
            if tip.strip():
                break
        section = page.locator("#section-audit").inner_text()
        rates_rows = page.locator('table[data-name="audit_rates"] tbody tr').count()
        browser.close()
    assert requests == []
    assert re.search(r"Tract \d{11}|Camera location", tip), tip
    assert re.search(r"cameras: \d", tip), tip
    assert "chose to publish" in section
    assert "per 1,000 residents" in section
    assert rates_rows == len(result.audit.rates)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    colours = {tuple(c) for c in img.reshape(-1, 3)[::37]}
    assert len(colours) > 30
    # Red camera dots are drawn.
    red = (img[..., 0] > 150) & (img[..., 1] < 60) & (img[..., 2] < 80)
    assert red.sum() > 20
