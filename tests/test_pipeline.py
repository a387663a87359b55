"""The whole census against Amnesty's published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from camcensus import published
from camcensus.pipeline import reproduce_nyc, run_demo


def test_citywide_reduced_file_published_figures(citywide_result) -> None:  # type: ignore[no-untyped-def]
    n = citywide_result.numbers
    assert n["public_cameras"] == 3_317
    assert n["public_intersections"] == 2_442
    assert n["public_cameras_by_borough"] == published.AMNESTY_NYC["attached_street"]
    att = citywide_result.tables["cameras_by_attachment"]
    # Street + building per borough of the reduced file (SOURCES.md, point-in-polygon with
    # Amnesty's borough polygons): the published totals exceed them by the 86 cameras
    # "attached to unknown", a column this file lacks.
    assert att["total"].drop("Total").to_dict() == {
        "Bronx": 3_731,
        "Brooklyn": 9_195,
        "Manhattan": 3_937,
        "Queens": 7_553,
        "Staten Island": 1_030,
    }
    unknown = sum(published.AMNESTY_NYC["attached_unknown"].values())
    assert sum(published.AMNESTY_NYC["total"].values()) - att.loc["Total", "total"] == unknown
    inter = citywide_result.tables["intersections"]
    assert inter["with_camera"].drop("Total").tolist() == [2_085, 4_666, 2_019, 4_594, 733]
    # The reduced file has no zero-camera rows: per-intersection ratios are skipped, and said so.
    assert "cameras_per_intersection" not in citywide_result.tables
    assert any("cameras per intersection" in s["output"] for s in citywide_result.skipped)
    assert n["sum_cameras"] == 3_317
    ref = citywide_result.reference
    assert ref["cameras"]["sum_reference"] == 3_497
    assert ref["eff_cameras"]["max_abs_diff"] < 0.02
    assert any("3,497" in note for note in citywide_result.ledger.notes)


def test_brooklyn_published_figures(nyc_paths: dict[str, Path]) -> None:
    r = reproduce_nyc(intersections=nyc_paths["brooklyn"], tracts=nyc_paths["tracts"])
    t = r.tables
    ours = t["cameras_by_attachment"].loc["Brooklyn"]
    pub = {k: published.AMNESTY_NYC[k]["Brooklyn"] for k in published.AMNESTY_NYC}
    # The subset lacks 7 of Amnesty's 10,384 Brooklyn panoramas (clipped by the capstone's
    # Brooklyn boundary); they held 2 public and 14 building cameras, so every count here is
    # the published one or slightly lower, never higher.
    assert t["intersections"].loc["Brooklyn", "panoramas"] == pub["panoramas"] - 7
    diffs = {
        "attached_street": pub["attached_street"] - ours["attached_street"],
        "attached_building": pub["attached_building"] - ours["attached_building"],
        "attached_unknown": pub["attached_unknown"] - ours["attached_unknown"],
        "total": pub["total"] - ours["total"],
    }
    assert diffs == {
        "attached_street": 2,
        "attached_building": 14,
        "attached_unknown": 0,
        "total": 16,
    }
    cpi = t["cameras_per_intersection"].loc["Brooklyn"]
    assert cpi["cameras_per_intersection"] == pytest.approx(0.889060, abs=2e-3)
    assert cpi["public_per_intersection"] == pytest.approx(0.083879, abs=5e-4)
    # Brooklyn rows only: a comparison row exists for Brooklyn alone.
    assert set(r.comparison["borough"]) == {"Brooklyn"}


def test_missing_attached_street_skips_coverage(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    p = tmp_path / "only_totals.csv"
    p.write_text("Long,Lat,n_cameras_median\n-73.95,40.65,2\n-73.96,40.66,0\n")
    r = reproduce_nyc(intersections=p, tracts=nyc_paths["tracts"])
    assert "eff_cameras" not in r.tracts.columns
    skipped = {s["output"] for s in r.skipped}
    assert any("coverage" in s for s in skipped)
    assert any("pole camera types" in s for s in skipped)


def test_demo_compares_with_truth(tmp_path: Path) -> None:
    r = run_demo(tmp_path, seed=0, platform=False)
    truth = r.numbers["truth"]["public_cameras"]
    assert 0.7 * truth < r.numbers["public_cameras"] < truth
    assert r.ledger.total("aggregate") > 0
    assert r.inputs["raw_counts"].endswith("counts.csv")


def test_covered_land_follows_the_radius(nyc_paths: dict[str, Path]) -> None:
    from camcensus.pipeline import Options

    r = reproduce_nyc(
        intersections=nyc_paths["citywide"],
        tracts=nyc_paths["tracts"],
        options=Options(radius_m=60),
    )
    land = r.tracts.to_crs(r.measure_crs).geometry.union_all()
    mpu = r.measure_crs.axis_info[0].unit_conversion_factor
    direct = land.intersection(r.coverage).area * mpu**2 / 1e6
    assert r.numbers["covered_land_km2"] == pytest.approx(direct, rel=1e-6)


@pytest.mark.realdata
def test_brooklyn_run_says_nothing_citywide(nyc_paths: dict[str, Path]) -> None:
    r = reproduce_nyc(
        intersections=nyc_paths["brooklyn"],
        tracts=nyc_paths["tracts"],
        census=nyc_paths["census"],
        reference=nyc_paths["camera_count"],
    )
    n = r.numbers
    bk = r.tracts.loc[r.tracts["borough"] == "Brooklyn"]
    assert n["study_area_districts"] == ["Brooklyn"]
    assert n["tracts_in_study_area"] == len(bk)
    assert n["land_km2"] == pytest.approx(bk["area_m2"].sum() / 1e6)
    assert n["residents"] == pytest.approx(bk["popn"].fillna(0).sum())
    assert not any("3,317" in note or "3,497" in note for note in r.ledger.notes)
    assert any("only Brooklyn" in note for note in r.ledger.notes)
    # The reference comparison covers only the tracts whose every camera within reach
    # (200 m + 120 m) is in the input: there, full-precision coordinates give Amnesty's values.
    ref = r.reference
    assert ref is not None
    assert 650 < ref["tracts_matched"] < len(bk)
    assert ref["tracts_left_out_incomplete"] == len(r.tracts) - ref["tracts_matched"]
    assert ref["eff_cameras"]["max_abs_diff"] < 1e-9
    assert ref["eff_cameras_within_200m"]["max_abs_diff"] < 1e-9


@pytest.mark.realdata
def test_camera_inventory_and_footprints(citywide_result) -> None:  # type: ignore[no-untyped-def]
    from camcensus.cameras import validate_cameras

    cams = citywide_result.cameras
    validate_cameras(cams)
    assert len(cams) == citywide_result.numbers["total_cameras"]
    street = cams.loc[cams["mount"] == "street"]
    assert len(street) == 3_317
    assert street["source"].eq("decode-counts").all()
    assert street["direction_deg"].isna().all()
    assert (street["position_sd_m"] > 0).all()
    assert "CC BY-NC-ND" in street["licence"].iloc[0]
    fps = citywide_result.footprints
    assert len(fps) == 3_317 and fps.crs is not None and fps.crs.is_projected
    assert set(fps["camera_id"]) == set(street["camera_id"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("40.65,-73.95,1\n40.66,-73.96,2\n", "swapped"),  # Long,Lat given the other way round
        ("-73.95,-40.65,1\n-73.96,-40.66,2\n", "km from the tracts"),  # another hemisphere
        ("-76.95,40.65,1\n-76.96,40.66,2\n", "km from the tracts"),  # 250 km west
    ],
)
def test_a_run_that_excludes_every_record_fails_with_the_cause(
    tmp_path: Path, nyc_paths: dict[str, Path], rows: str, expected: str
) -> None:
    from camcensus import InputError

    p = _write(tmp_path / "c.csv", "Long,Lat,attached_street_median\n" + rows)
    with pytest.raises(InputError, match=expected):
        reproduce_nyc(intersections=p, tracts=nyc_paths["tracts"])


def test_header_only_counts_fail(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    from camcensus import InputError

    p = _write(tmp_path / "c.csv", "Long,Lat,attached_street_median\n")
    with pytest.raises(InputError, match=r"c\.csv"):
        reproduce_nyc(intersections=p, tracts=nyc_paths["tracts"])


def test_census_join_errors_and_reasons(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    import pandas as pd

    from camcensus import InputError

    counts = _write(tmp_path / "c.csv", "Long,Lat,attached_street_median\n-73.95,40.65,1\n")
    acs = pd.read_csv(nyc_paths["census"], dtype={"GEOID": str})
    # GEOIDs without their state prefix: nothing matches, and the error names both files.
    bad = acs.assign(GEOID=acs["GEOID"].str[2:])
    bad.to_csv(tmp_path / "acs_bad.csv", index=False)
    with pytest.raises(InputError) as info:
        reproduce_nyc(
            intersections=counts, tracts=nyc_paths["tracts"], census=tmp_path / "acs_bad.csv"
        )
    text = str(info.value)
    assert "acs_bad.csv" in text and "tracts.shp" in text and "11 digits" in text
    # A census table missing some tracts: those get their own reason, not "population <= 250".
    acs.iloc[10:].to_csv(tmp_path / "acs_part.csv", index=False)
    r = reproduce_nyc(
        intersections=counts, tracts=nyc_paths["tracts"], census=tmp_path / "acs_part.csv"
    )
    reasons = {e.reason: e.count for e in r.ledger}
    assert reasons["tract has no row in the census table: no population, no rate"] == 10
    small = [v for k, v in reasons.items() if "population at most" in k]
    assert small and small[0] == int((acs.iloc[10:]["popn"] <= 250).sum())


def test_reference_table_without_geoid_is_a_clear_error(
    tmp_path: Path, nyc_paths: dict[str, Path]
) -> None:
    from camcensus import InputError

    counts = _write(tmp_path / "c.csv", "Long,Lat,attached_street_median\n-73.95,40.65,1\n")
    ref = _write(tmp_path / "ref.csv", "tract,eff_cameras\n36047000100,0.5\n")
    with pytest.raises(InputError, match="GEOID"):
        reproduce_nyc(intersections=counts, tracts=nyc_paths["tracts"], reference=ref)


def test_cli_csv_outputs_are_spreadsheet_safe(tmp_path: Path) -> None:
    import geopandas as gpd
    import pandas as pd

    from camcensus.io.formats import read_csv
    from camcensus.pipeline import coverage_to_csv
    from camcensus.simulate import simulate_city

    paths = simulate_city(3, nx=10, ny=10).write(tmp_path / "in")
    gdf = gpd.read_file(paths["tracts"])
    gdf.loc[0, "borough"] = '=HYPERLINK("http://x","y")'
    gdf.to_file(tmp_path / "hostile.gpkg")
    counts = tmp_path / "c.csv"
    lon, lat = gdf.to_crs(4326).geometry.iloc[0].representative_point().coords[0]
    counts.write_text(f"Long,Lat,attached_street_median\n{lon},{lat},2\n")
    out = tmp_path / "cov.csv"
    coverage_to_csv(intersections=counts, tracts=tmp_path / "hostile.gpkg", out=out)
    raw = pd.read_csv(out, dtype=str)
    assert raw.loc[0, "borough"].startswith("'=")  # neutralised for spreadsheets
    back = read_csv(out, dtype={"GEOID": str})
    assert back.loc[0, "borough"] == gdf.loc[0, "borough"]  # and round-trips
    assert back["cameras"].sum() == 2
