"""camcensus audit: ACS reading, income interpolation, tract vintage, the border tie-break,
records with failed geocodes, rates by race composition, and Baltimore / New Orleans end to
end (real data in ../shared/data/other_cities, read in place)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from camcensus._errors import InputError, Ledger
from camcensus.audit import assign_tracts, audit_report, records_from_points, run_audit
from camcensus.io.census import (
    B19001_BRACKETS,
    acs_from_file,
    check_tract_vintage,
    median_from_brackets,
)
from camcensus.stats.rates import race_composition, rate_ratio, rates_by_group

# --- the median from income brackets -------------------------------------------------------


def _brute_median(counts: np.ndarray) -> float:
    """Spread each bracket's households evenly over [L, U) and take the middle one: the
    median the linear interpolation approximates (exact for uniform brackets)."""
    bounds = [*B19001_BRACKETS, B19001_BRACKETS[-1] + 50_000]
    values = []
    for k, n in enumerate(counts):
        lo, hi = bounds[k], bounds[k + 1]
        values += list(lo + (np.arange(n) + 0.5) / n * (hi - lo)) if n else []
    return float(np.median(values))


def test_median_from_brackets_closed_forms() -> None:
    c = np.zeros((4, 16))
    c[0, 0], c[0, 1] = 10, 10  # N/2 = 10 reached at the end of the first bracket
    c[1, 2] = 8  # all in 15,000-19,999: the middle of the bracket
    c[2, 15], c[2, 0] = 5, 1  # the median in the open top bracket
    med, top = median_from_brackets(c)
    assert med[0] == 10_000
    assert med[1] == 17_500
    assert med[2] == 200_000 and top.tolist() == [False, False, True, False]
    assert np.isnan(med[3])  # no households


@pytest.mark.parametrize("seed", range(5))
def test_median_from_brackets_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 400, size=15)
    counts = np.append(counts, 0)  # keep the median out of the open bracket
    med, _ = median_from_brackets(counts[None, :])
    assert med[0] == pytest.approx(_brute_median(counts), abs=250)


# --- ACS tables --------------------------------------------------------------------------


@pytest.mark.realdata
def test_baltimore_acs_long_and_wide_agree(shared: Path) -> None:
    d = shared / "other_cities" / "baltimore"
    ledger = Ledger()
    long = acs_from_file(d / "acs2018_B02001_B03002_B19001_long.csv", ledger=ledger)
    wide = acs_from_file(d / "acs2018_wide.csv")
    assert long.race == wide.race == "non-hispanic"
    cols = ["popn", "popn_white", "popn_black", "popn_hispanic"]
    pd.testing.assert_frame_equal(long.table[cols], wide.table.loc[long.table.index, cols])
    assert long.table["popn"].sum() == 614_700
    # No B19013 in the file: the median comes from B19001, and the report says so.
    assert long.income == "B19001 brackets, interpolated" and wide.income == "none"
    assert any("interpolated from the 16 household-income brackets" in n for n in ledger.notes)
    # Tract 101 by hand: 1,398 households, half = 699; 637 below $100,000, 169 in
    # 100,000-124,999: 100,000 + (699 - 637) / 169 * 25,000.
    assert long.table.loc["24510010100", "med_income"] == pytest.approx(100_000 + 62 / 169 * 25_000)
    alone = acs_from_file(d / "acs2018_wide.csv", race="alone")
    assert alone.columns["white"] == "white_alone_B02001_002"
    assert (alone.table["popn_white"] >= wide.table["popn_white"]).all()


@pytest.mark.realdata
def test_new_orleans_shares_become_counts(shared: Path) -> None:
    ledger = Ledger()
    acs = acs_from_file(
        shared / "other_cities" / "new_orleans" / "acs2020_tract.csv", race="alone", ledger=ledger
    )
    assert acs.shares
    raw = pd.read_csv(
        shared / "other_cities" / "new_orleans" / "acs2020_tract.csv", dtype={"GEOID": str}
    )
    row = raw.set_index("GEOID").loc["22071000200"]
    assert acs.table.loc["22071000200", "popn_black"] == pytest.approx(row["black"] * row["pop"])
    assert acs.income == "column median_household_income"
    assert acs.table["med_income"].isna().sum() == 10
    assert "as declared with --race alone" in acs.race_label


def test_jam_values_become_missing(tmp_path: Path) -> None:
    p = tmp_path / "acs.csv"
    p.write_text(
        "GEOID,B01003_001E,B02001_002E,B02001_003E,B03003_003E,B19013_001E\n"
        "22071000100,100,50,40,10,-666666666\n22071000200,200,20,170,10,45000\n"
    )
    ledger = Ledger()
    acs = acs_from_file(p, ledger=ledger)
    assert acs.race == "alone" and acs.income == "B19013"
    assert acs.table["med_income"].isna().tolist() == [True, False]
    assert acs.table.loc["22071000200", "med_income"] == 45_000
    assert any("jam values" in n for n in ledger.notes)
    assert acs.table.loc["22071000100", "nonwhite_fraction"] == pytest.approx(50 / 100)


@pytest.mark.realdata
def test_tract_vintage_mismatch_detected(shared: Path) -> None:
    d = shared / "other_cities" / "new_orleans"
    acs = acs_from_file(d / "acs2020_tract.csv", race="alone").table.index
    old = gpd.read_file(d / "tracts_cb2018.geojson")["GEOID"]
    new = gpd.read_file(d / "tracts_tiger2020.geojson")["geoid"]
    check = check_tract_vintage(old, acs)
    assert (check.tracts, check.matched, check.mismatch) == (177, 167, True)
    assert len(check.tracts_without_acs) == 10 and len(check.acs_without_tract) == 17
    assert "tract-vintage mismatch" in check.message("a", "b")
    check2020 = check_tract_vintage(new, acs)
    assert (check2020.matched, check2020.mismatch) == (184, False)


# --- the border tie-break ----------------------------------------------------------------


def _grid() -> gpd.GeoDataFrame:
    boxes = [shapely.box(x, y, x + 1, y + 1) for y in (0, 1) for x in (0, 1)]
    return gpd.GeoDataFrame({"GEOID": ["40", "30", "20", "10"]}, geometry=boxes, crs="EPSG:32618")


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_border_points_go_to_the_smallest_geoid(order: list[int]) -> None:
    tracts = _grid().iloc[order]
    pts = gpd.GeoSeries(
        [
            shapely.Point(0.5, 0.5),  # inside "40"
            shapely.Point(1.0, 0.5),  # on the border of "40" and "30"
            shapely.Point(1.0, 1.0),  # the corner of all four
            shapely.Point(0.5, 1.0),  # border of "40" and "20"
            shapely.Point(5.0, 5.0),  # nowhere
        ],
        crs="EPSG:32618",
    )
    geoid, touches = assign_tracts(pts, tracts)
    assert geoid.iloc[:4].tolist() == ["40", "30", "10", "20"]
    assert pd.isna(geoid.iloc[4])
    assert touches.tolist() == [1, 2, 4, 2, 0]


@pytest.mark.realdata
def test_baltimore_border_cameras(shared: Path) -> None:
    d = shared / "other_cities" / "baltimore"
    tracts = gpd.read_file(d / "tracts_cb2018.geojson")[["GEOID", "geometry"]]
    cams = pd.read_csv(d / "CCTV_Locations.csv")
    pts = gpd.GeoSeries(gpd.points_from_xy(cams["Longitude"], cams["Latitude"]), crs="EPSG:4326")
    geoid, touches = assign_tracts(pts, tracts)
    assert (touches == 1).sum() == 599
    assert (touches == 2).sum() == 8 and (touches >= 3).sum() == 7
    # Each border camera goes to the smallest GEOID of the tracts it touches.
    tree = shapely.STRtree(tracts.geometry.values)
    for i in np.flatnonzero(touches >= 2):
        hit = tree.query(pts.values[i], predicate="intersects")
        assert geoid.iloc[i] == min(tracts["GEOID"].iloc[hit])
    shuffled, _ = assign_tracts(pts, tracts.sample(frac=1, random_state=3))
    assert shuffled.tolist() == geoid.tolist()


# --- records -----------------------------------------------------------------------------


@pytest.mark.realdata
def test_baltimore_arrests_failed_geocodes_excluded(shared: Path) -> None:
    d = shared / "other_cities" / "baltimore"
    tracts = gpd.read_file(d / "tracts_cb2018.geojson")[["GEOID", "geometry"]]
    ledger = Ledger()
    counts, summary = records_from_points(
        d / "bpd_arrests_2017-12_to_2018-02-11.csv", tracts, ledger=ledger
    )
    raw = pd.read_csv(d / "bpd_arrests_2017-12_to_2018-02-11.csv")
    assert summary["rows"] == len(raw) == 4847
    assert summary["failed_geocode"] == 293
    assert summary["repeated_ids"] == 6
    reasons = {e.reason: e.count for e in ledger}
    assert reasons["failed geocode: a whole-degree point (39, -77)"] == 293
    # Every row is accounted for: located + each exclusion.
    left_out = sum(e.count for e in ledger)
    assert summary["located"] + left_out == 4847
    assert counts["count"].sum() == summary["located"]
    assert set(counts["year"]) == {2017}


# --- rates -------------------------------------------------------------------------------


def _toy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "popn": [1000, 3000, 2000, 2000, 500],
            "popn_black": [900, 2500, 100, 300, 200],
            "popn_white": [50, 300, 1800, 1500, 200],
            "popn_hispanic": [50, 200, 100, 200, 100],
            "cameras": [4, 2, 1, 0, 3],
        }
    )


def test_race_composition_and_rates_closed_form() -> None:
    t = _toy()
    t["g"] = race_composition(t)
    assert t["g"].tolist() == [
        "majority Black",
        "majority Black",
        "majority White",
        "majority White",
        "no majority",
    ]
    r = rates_by_group(t, "g", reps=500, seed=1).set_index("group")
    assert r.loc["majority Black", "estimate"] == pytest.approx(6 / 4000 * 1000)
    assert r.loc["majority White", "estimate"] == pytest.approx(1 / 4000 * 1000)
    assert r["count"].sum() == t["cameras"].sum()
    for g in r.index:
        assert r.loc[g, "ci_low"] <= r.loc[g, "estimate"] <= r.loc[g, "ci_high"]
    again = rates_by_group(t, "g", reps=500, seed=1)
    assert again["ci_low"].tolist() == rates_by_group(t, "g", reps=500, seed=1)["ci_low"].tolist()
    ratio = rate_ratio(t, "g", "majority Black", "majority White", reps=500, seed=1)
    assert ratio.estimate == pytest.approx(6.0)


# --- end to end --------------------------------------------------------------------------


def _baltimore(shared: Path) -> dict[str, Any]:
    d = shared / "other_cities" / "baltimore"
    return {
        "cameras": [d / "CCTV_Locations.csv"],
        "source_format": "baltimore-citiwatch",
        "tracts": d / "tracts_cb2018.geojson",
        "acs": d / "acs2018_B02001_B03002_B19001_long.csv",
        "stops": d / "bpd_arrests_2017-12_to_2018-02-11.csv",
        "city": "Baltimore",
        "permutations": 99,
        "reps": 500,
    }


@pytest.fixture(scope="module")
def baltimore_report(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "baltimore"
    audit_report(out, **_baltimore(shared))
    return out


@pytest.mark.realdata
def test_baltimore_audit_end_to_end(baltimore_report: Path) -> None:
    r = json.loads((baltimore_report / "results.json").read_text())
    a = r["audit"]
    assert r["numbers"]["audited_cameras"] == 614
    assert a["boundary"]["on_boundary"] == 15
    assert a["median_income_source"] == "B19001 brackets, interpolated"
    assert not a["vintage"]["mismatch"]
    rates = pd.DataFrame(a["rates_per_1000"]).set_index("group")
    # Every camera is in a rated tract (the one tract of <= 250 residents has none).
    assert rates["count"].sum() == 614
    assert rates["residents"].sum() == pytest.approx(614_700 - 0)
    assert rates.loc["majority Black", "estimate"] == pytest.approx(471 / 395_266 * 1000)
    coef = a["placement_model"]["coefficients"][-1]
    assert coef["term"].endswith(":nonwhite_fraction")
    assert coef["ci_low"] < coef["estimate"] < coef["ci_high"]
    assert a["records"]["failed_geocode"] == 293
    html = (baltimore_report / "index.html").read_text(encoding="utf-8")
    assert "interpolated from the 16 household-income brackets" in html
    assert "smallest GEOID" in html
    assert "chose to publish" in html
    assert 'data-name="audit_rates"' in html
    # The NYC wording stays out of an audit.
    assert "Street View panoramas" not in html
    tables = pd.read_csv(baltimore_report / "tables" / "audit_rates.csv")
    assert set(tables["group"]) == {"majority Black", "majority White", "no majority"}


@pytest.mark.realdata
def test_new_orleans_audit_both_vintages(shared: Path) -> None:
    d = shared / "other_cities" / "new_orleans"
    common: dict[str, Any] = {
        "cameras": [d / "new_orleans_cameras_3_11_2022.csv"],
        "source_format": "new-orleans-rtcc",
        "acs": d / "acs2020_tract.csv",
        "race": "alone",
        "city": "New Orleans",
        "permutations": 99,
        "reps": 300,
    }
    old = run_audit(tracts=d / "tracts_cb2018.geojson", **common)
    new = run_audit(tracts=d / "tracts_tiger2020.geojson", **common)
    assert old.audit.vintage.mismatch and not new.audit.vintage.mismatch
    assert any("tract-vintage mismatch" in n for n in old.ledger.notes)
    assert new.numbers["audited_cameras"] == 432 == old.numbers["audited_cameras"]
    assert new.audit.rates["count"].sum() + new.audit.excluded_from_rates["cameras"] == 432
    assert new.audit.income == "column median_household_income"


@pytest.mark.realdata
def test_safecam_far_points_not_audited(shared: Path) -> None:
    d = shared / "other_cities" / "new_orleans"
    result = run_audit(
        cameras=[d / "safecam_nopd.csv"],
        source_format="new-orleans-safecam",
        tracts=d / "tracts_tiger2020.geojson",
        acs=d / "acs2020_tract.csv",
        race="alone",
        permutations=19,
        reps=100,
    )
    # 63 SafeCam points (the 432 RTCC rows of the same file are another list); the 16
    # geocoded 500-2,270 km away are left out by the list reader and counted.
    assert result.numbers["audited_cameras"] == 63 - 16
    far = [e for e in result.ledger if "km" in e.reason]
    assert sum(e.count for e in far) == 16
    assert result.audit.rates["count"].sum() + result.audit.excluded_from_rates["cameras"] == 47


@pytest.mark.realdata
def test_cli_audit(shared: Path, tmp_path: Path) -> None:
    from camcensus.cli import app

    d = shared / "other_cities" / "baltimore"
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app,
        [
            "audit",
            "--cameras", str(d / "CCTV_Locations.csv"),
            "--source-format", "baltimore-citiwatch",
            "--tracts", str(d / "tracts_cb2019" / "tracts_cb2019.shp"),
            "--acs", str(d / "acs2018_wide.csv"),
            "--race", "alone",
            "--city", "Baltimore",
            "--permutations", "19",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "per 1,000 residents, majority Black tracts" in res.output
    a = json.loads((out / "results.json").read_text())["audit"]
    assert a["race_definition"] == "alone" and a["median_income_source"] == "none"
    bad = CliRunner().invoke(
        app,
        ["audit", "--cameras", str(d / "CCTV_Locations.csv"), "--tracts", "x.geojson",
         "--acs", "y.csv", "--model", "cone", "--out", str(tmp_path / "r2")],
    )  # fmt: skip
    assert bad.exit_code != 0


@pytest.mark.realdata
def test_districts_group_the_models(shared: Path, tmp_path: Path) -> None:
    d = shared / "other_cities" / "baltimore"
    tracts = gpd.read_file(d / "tracts_cb2018.geojson")
    minx, miny, maxx, maxy = tracts.total_bounds
    mid = float(np.median(tracts.representative_point().x))
    halves = gpd.GeoDataFrame(
        {"name": ["West", "East"]},
        geometry=[
            shapely.box(minx - 1, miny - 1, mid, maxy + 1),
            shapely.box(mid, miny - 1, maxx + 1, maxy + 1),
        ],
        crs=tracts.crs,
    )
    path = tmp_path / "districts.geojson"
    halves.to_file(path, driver="GeoJSON")
    result = run_audit(districts=path, **{**_baltimore(shared), "stops": None})
    assert set(result.tracts["borough"]) == {"West", "East"}
    # Tracts clearly on one side (a point on the tract's surface 0.005 degrees or more from
    # the dividing line) are in that district.
    x = result.tracts.geometry.representative_point().x.to_numpy()
    clear = np.abs(x - mid) > 0.005
    expected = np.where(x < mid, "West", "East")
    assert (result.tracts["borough"].to_numpy()[clear] == expected[clear]).all()
    assert result.cameras is not None and result.disparity is not None
    assert set(result.cameras["district"]) <= {"West", "East"}
    terms = {
        c.term
        for m in result.disparity.models
        if m.name == "placement_logit"
        for c in m.coefficients
    }
    assert {"borough[West]:nonwhite_fraction", "borough[East]:nonwhite_fraction"} <= terms
    # The headline placement model stays citywide.
    assert result.audit.placement.coefficients[-1].term == "borough[Baltimore]:nonwhite_fraction"


@pytest.mark.realdata
def test_machine_only_cameras_are_counted_not_audited(shared: Path, tmp_path: Path) -> None:
    from camcensus.audit import read_cameras
    from camcensus.io.camera_files import write_cameras
    from camcensus.report import write_report

    spec = _baltimore(shared)
    cams = read_cameras(spec["cameras"], source_format=spec["source_format"])
    # Every 7th camera machine only, every 11th (from the 4th) unconfirmed, every 5th
    # otherwise confirmed by volunteers in verify.
    cams["evidence"] = [
        "machine only" if i % 7 == 0
        else "unconfirmed" if i % 11 == 3
        else "verified machine" if i % 5 == 0
        else "volunteers"
        for i in range(len(cams))
    ]  # fmt: skip
    n_machine = (len(cams) + 6) // 7
    n_unconfirmed = sum(1 for i in range(len(cams)) if i % 11 == 3 and i % 7 != 0)
    n_left = n_machine + n_unconfirmed
    path = tmp_path / "cameras.csv"
    write_cameras(cams, path)
    args = {**spec, "cameras": [path], "source_format": "auto", "stops": None}
    result = run_audit(**{**args, "permutations": 9, "reps": 50})
    assert result.numbers["cameras_read"] == 614
    assert result.numbers["audited_cameras"] == 614 - n_left == len(result.cameras)
    left = [(e.reason.split(" (")[0], e.count) for e in result.ledger if e.stage == "audit cameras"]
    assert sorted(left) == [("machine only", n_machine), ("unconfirmed", n_unconfirmed)]
    assert result.audit.rates["count"].sum() + result.audit.excluded_from_rates["cameras"] == (
        614 - n_left
    )
    assert set(result.cameras["evidence"]) == {"volunteers", "verified machine"}
    ev = result.audit.camera_evidence
    assert ev is not None and ev["cameras"] == 614 and ev["machine_only"] == n_machine
    assert ev["human_confirmed"] == 614 - n_left and ev["unconfirmed"] == n_unconfirmed
    write_report(result, tmp_path / "r")
    page = " ".join((tmp_path / "r" / "index.html").read_text(encoding="utf-8").split())
    assert f"the machine-only rows and the {n_unconfirmed} unconfirmed ones" in page
    assert "left out of every figure here" in page
    assert (
        json.loads((tmp_path / "r" / "results.json").read_text())["audit"]["camera_evidence"] == ev
    )
    # Nothing confirmed: refused with the file, the column and the fix.
    cams["evidence"] = ["machine only" if i % 2 else "unconfirmed" for i in range(len(cams))]
    write_cameras(cams, path)
    refused = r"evidence.*machine only \(307.*unconfirmed \(307.*verify"
    with pytest.raises(InputError, match=refused):
        run_audit(**{**args, "permutations": 9, "reps": 50})
