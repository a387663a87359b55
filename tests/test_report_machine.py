"""Human-confirmed and machine-only cameras stand apart in the report, with hostile names.

A machine tag alone never settles a camera (Project Sidewalk's rule for its AI validator):
wherever the detector took part, the inventory section (and the audit's section) gives the
human-confirmed and the machine-only cameras as separate numbers, counted here by brute force;
names from the inputs stay text in the page and never run in a spreadsheet.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest

from camcensus.report import write_report
from camcensus.report.inventory import camera_evidence
from conftest import small_census
from test_report_hostile import ALERT, CLOSE, COMMENT, FORMULA, IMG, SVG

CLASSES = ["volunteers", "volunteers+machine", "verified machine", "machine only", None]
_TRIGGER = re.compile(r"^\s*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]")


def _machine_cameras(gdf: gpd.GeoDataFrame, seed: int = 3) -> gpd.GeoDataFrame:
    """The census's cameras with hostile names, an evidence per row and some detector rows."""
    rng = np.random.default_rng(seed)
    out = gdf.copy()
    n = len(out)
    out["camera_id"] = [f"{IMG}{i}" for i in range(n)]
    out["source_ref"] = [CLOSE if i % 2 else COMMENT for i in range(n)]
    out["licence"] = FORMULA
    evidence = [CLASSES[int(k)] for k in rng.integers(0, len(CLASSES), n)]
    out["evidence"] = evidence
    # Rows without an evidence value: half from the detector (machine-only), half not.
    no_ev = [i for i, e in enumerate(evidence) if e is None]
    source = out["source"].astype(str).to_numpy(dtype=object)
    tier = out["tier"].astype(str).to_numpy(dtype=object)
    for j, i in enumerate(no_ev):
        if j % 2 == 0:
            source[i] = "detector"
            tier[i] = f"machine-only {SVG}"
        else:
            tier[i] = f"seen by volunteers {ALERT}"
    out["source"] = source
    out["tier"] = tier
    return out


def _truth(gdf: gpd.GeoDataFrame) -> dict[str, int]:
    """Brute force: count each row as the inventory must."""
    counts = dict.fromkeys(["volunteers", "volunteers+machine", "verified machine"], 0)
    human = machine = 0
    for ev, source, tier in zip(gdf["evidence"], gdf["source"], gdf["tier"], strict=True):
        missing = not isinstance(ev, str)  # None, or NaN once in a column
        if ev == "machine only" or (
            missing and (source == "detector" or str(tier).startswith("machine-only"))
        ):
            machine += 1
        else:
            human += 1
            if ev in counts:
                counts[ev] += 1
    return {"cameras": len(gdf), "human_confirmed": human, "machine_only": machine,
            "unconfirmed": 0, **counts}  # fmt: skip


def _check_page_and_tables(report: Path, truth: dict[str, int]) -> str:
    html = (report / "index.html").read_text(encoding="utf-8")
    for text in (IMG, COMMENT, CLOSE, SVG, ALERT, "<svg", "<img src=x", "<img src=y"):
        assert text not in html, text
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert f"Human-confirmed cameras: {truth['human_confirmed']:,} (" in page
    assert (
        f"Machine-only cameras (the detector's tags no human confirmed): "
        f"{truth['machine_only']:,}." in page
    )
    assert "A machine tag alone never settles a camera" in page
    for path in sorted((report / "tables").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    if _TRIGGER.match(cell):
                        try:
                            float(cell)
                        except ValueError:
                            assert re.fullmatch(r"-[A-Za-z0-9_-]*", cell), (path.name, cell)
    return page


@pytest.fixture(scope="module")
def census(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return small_census(tmp_path_factory.mktemp("machine") / "inputs")


def test_inventory_sets_human_confirmed_beside_machine_only(census: Any, tmp_path: Path) -> None:
    assert census.cameras is not None and len(census.cameras) > 20
    # No trace of the detector: no such numbers.
    assert camera_evidence(census.cameras) is None
    cams = _machine_cameras(census.cameras)
    truth = _truth(cams)
    assert truth["machine_only"] > 0 and truth["human_confirmed"] > 0
    assert camera_evidence(cams) == truth
    write_report(dataclasses.replace(census, cameras=cams), tmp_path / "r")
    page = _check_page_and_tables(tmp_path / "r", truth)
    # The detector rows' hostile tier is shown, as text, in the inventory table.
    assert f"machine-only {SVG}" in page
    assert "counted in the figures here" in page
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert results["camera_evidence"] == truth
    stored = (tmp_path / "r" / "tables" / "cameras.csv").read_text(encoding="utf-8")
    assert "'" + FORMULA.replace('"', '""') in stored or "'=HYPERLINK" in stored


def test_only_confirmed_rows_say_so_without_a_warning(census: Any, tmp_path: Path) -> None:
    cams = census.cameras.copy()
    cams["evidence"] = ["verified machine" if i % 3 == 0 else "volunteers"
                        for i in range(len(cams))]  # fmt: skip
    truth = camera_evidence(cams)
    assert truth is not None and truth["machine_only"] == 0
    assert truth["verified machine"] == (len(cams) + 2) // 3
    write_report(dataclasses.replace(census, cameras=cams), tmp_path / "r")
    page = _check_page_and_tables(tmp_path / "r", truth)
    assert "counted in the figures here" not in page


@pytest.mark.realdata
def test_audit_section_sets_them_apart_too(shared: Path, tmp_path: Path) -> None:
    from camcensus.audit import run_audit
    from test_audit import _baltimore

    result = run_audit(**{**_baltimore(shared), "permutations": 9, "reps": 50})
    cams = _machine_cameras(result.cameras, seed=4)
    truth = _truth(cams)
    write_report(dataclasses.replace(result, cameras=cams), tmp_path / "audit")
    page = _check_page_and_tables(tmp_path / "audit", truth)
    # Once in the audit's section, once in the inventory's.
    assert page.count(f"Human-confirmed cameras: {truth['human_confirmed']:,}") == 2
    results = json.loads((tmp_path / "audit" / "results.json").read_text(encoding="utf-8"))
    assert results["audit_camera_evidence"] == truth == results["camera_evidence"]
