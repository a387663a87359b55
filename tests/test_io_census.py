"""Tract, borough and ACS readers: any OGR format and CRS, mislabelled CRS caught."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from camcensus import InputError, Ledger
from camcensus.io import census


def test_tracts_shapefile_state_plane(nyc_paths: dict[str, Path]) -> None:
    t = census.tracts_from_file(nyc_paths["tracts"])
    assert len(t) == 2_165
    assert t.crs.to_epsg() == 2908
    assert t["GEOID"].str.len().eq(11).all()
    assert set(t["borough"]) == {"Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"}


def test_tracts_geopackage_other_crs_borough_from_geoid(nyc_paths: dict[str, Path]) -> None:
    t = census.tracts_from_file(nyc_paths["tract_sf"], geoid="geoid", borough="no_such_column")
    assert t.crs.to_epsg() == 2263
    assert len(t) == 2_166
    assert (t.loc[t["GEOID"].str.startswith("36047"), "borough"] == "Brooklyn").all()


def test_tracts_in_degrees_are_read_and_kept(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    t = gpd.read_file(nyc_paths["tracts"]).head(20).to_crs(4326)
    p = tmp_path / "tracts.geojson"
    t.to_file(p)
    got = census.tracts_from_file(p)
    assert got.crs.to_epsg() == 4326 and len(got) == 20


def test_wrong_crs_label_is_caught(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    # Coordinates in degrees, declared as state-plane feet: areas would be silently wrong.
    t = gpd.read_file(nyc_paths["tracts"]).head(20).to_crs(4326)
    t = t.set_crs(2908, allow_override=True)
    p = tmp_path / "mislabelled.gpkg"
    t.to_file(p)
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    msg = str(exc.value)
    assert "mislabelled.gpkg" in msg and "EPSG:2908" in msg and "Fix:" in msg
    # The user can say what the CRS really is.
    fixed = census.tracts_from_file(p, crs="EPSG:4326")
    assert fixed.crs.to_epsg() == 4326


def test_missing_crs_and_missing_geoid(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    t = gpd.read_file(nyc_paths["tracts"]).head(5)
    t.to_file(tmp_path / "nocrs.shp")
    (tmp_path / "nocrs.prj").unlink()
    with pytest.raises(InputError, match="no CRS"):
        census.tracts_from_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputError, match="'TRACTID'"):
        census.tracts_from_file(nyc_paths["tracts"], geoid="TRACTID")


def test_boroughs(nyc_paths: dict[str, Path]) -> None:
    b = census.boroughs_from_file(nyc_paths["boroughs"])
    assert sorted(b["BoroName"]) == ["Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"]
    b2 = census.boroughs_from_file(nyc_paths["nybb"])
    assert b2.crs.to_epsg() == 2263 and len(b2) == 5


def test_census_table(nyc_paths: dict[str, Path]) -> None:
    ledger = Ledger()
    c = census.census_from_csv(nyc_paths["census"], ledger=ledger)
    assert len(c) == 2_165
    assert (c.index.str.len() == 11).all()
    assert int(c["med_income"].isna().sum()) == 70
    assert any("70 tracts" in n for n in ledger.notes)
    row = c.loc["36005000200"]
    assert row["nonwhite_fraction"] == pytest.approx((1371 + 3444) / (1371 + 3444 + 1919))
    assert (
        np.isnan(c["nonwhite_fraction"]).sum()
        == ((c["popn_black"] + c["popn_hispanic"] + c["popn_white"]) == 0).sum()
    )


def test_census_columns_configurable(tmp_path: Path) -> None:
    p = tmp_path / "acs.csv"
    p.write_text("tract,pop,w,b,h\n36047000100,1000,500,300,200\n")
    cols = census.CensusColumns(geoid="tract", popn="pop", white="w", black="b", hispanic="h")
    c = census.census_from_csv(p, columns=cols)
    assert c.loc["36047000100", "nonwhite_fraction"] == pytest.approx(0.5)
    with pytest.raises(InputError, match=r"'popn\.white'"):
        census.census_from_csv(p)


def test_non_numeric_population_names_row_and_column(tmp_path: Path) -> None:
    p = tmp_path / "acs.csv"
    p.write_text(
        "GEOID,popn,popn.white,popn.black,popn.hispanic\n"
        "36047000100,1000,500,300,200\n36047000200,n/a,1,1,1\n36047000300,10,-5,1,1\n"
    )
    with pytest.raises(InputError) as exc:
        census.census_from_csv(p)
    got = [(q.row, q.column, q.found) for q in exc.value.problems]
    assert got == [(2, "popn", "'n/a'"), (3, "popn.white", "'-5'")]
    assert "acs.csv" in str(exc.value)


def test_geoids_written_as_floats_are_read_as_digits(tmp_path: Path) -> None:
    p = tmp_path / "acs.csv"
    p.write_text(
        "GEOID,popn,popn.white,popn.black,popn.hispanic\n"
        "36047000100.0,1000,500,300,200\n36047000200,10,1,1,1\n"
    )
    ledger = Ledger()
    c = census.census_from_csv(p, ledger=ledger)
    assert list(c.index) == ["36047000100", "36047000200"]
    assert any("1 GEOIDs written as decimal numbers" in n for n in ledger.notes)
    sci = tmp_path / "sci.csv"
    sci.write_text("GEOID,popn,popn.white,popn.black,popn.hispanic\n3.6047E+10,1,1,1,1\n")
    with pytest.raises(InputError, match="digits were lost"):
        census.census_from_csv(sci)


def test_tracts_geoid_stored_as_float(tmp_path: Path) -> None:
    import shapely

    t = gpd.GeoDataFrame(
        {"GEOID": [36047000100.0, 36047000200.0]},
        geometry=[
            shapely.box(585_000, 4_500_000, 585_900, 4_500_900),
            shapely.box(586_000, 4_500_000, 586_900, 4_500_900),
        ],
        crs="EPSG:32618",
    )
    p = tmp_path / "t.gpkg"
    t.to_file(p)
    ledger = Ledger()
    got = census.tracts_from_file(p, ledger=ledger)
    assert got["GEOID"].tolist() == ["36047000100", "36047000200"]
    assert set(got["borough"]) == {"Brooklyn"}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (["36005000100"], ["36005000100.0"], "written as decimal numbers"),
        (["01001020100"], ["1001020100"], "leading zeros were lost"),
        (["36005000100"], ["1400000US36005000100"], "prefix '1400000US'"),
        (["36005000100"], ["3.60050001E+10"], "scientific notation"),
        (["36005000100"], ["24510010100"], "different states or counties"),
        (["36005000100"], ["36005000101"], "different census vintages"),
    ],
)
def test_geoid_mismatch_hint(left: list[str], right: list[str], expected: str) -> None:
    hint = census.geoid_mismatch_hint(left, right, "tracts.shp", "census.csv")
    assert expected in hint
    assert hint.startswith("0 of 1 GEOIDs of tracts.shp match one of 1 in census.csv.")


def test_tracts_without_census_are_classified() -> None:
    tracts = ["36047000100", "36047000200", "36047000300", "36005000100"]
    census_ids = ["36047000100", "36047000200.0", "36061000100"]
    got = census.tracts_without_census(tracts, census_ids)
    assert got.to_dict("list") == {
        "GEOID": ["36047000200", "36047000300", "36005000100"],
        "reason": [
            "GEOID written differently",
            "tract not in the census table",
            "county not in the census table",
        ],
    }
    ledger = Ledger()
    census.note_tracts_without_census(tracts, census_ids, ledger, census_file="census.csv")
    assert (
        "1 tract(s) have no row in census.csv (no population): county not in the census table."
        in ledger.notes
    )


def test_real_tracts_and_census_match(nyc_paths: dict[str, Path]) -> None:
    t = census.tracts_from_file(nyc_paths["tracts"])
    c = census.census_from_csv(nyc_paths["census"])
    assert len(census.tracts_without_census(t["GEOID"], c.index)) == 0
    # The same ids after a round trip through floats and int (lost nothing in NY: state 36).
    floats = [f"{float(g):.1f}" for g in c.index]
    assert "decimal numbers" in census.geoid_mismatch_hint(t["GEOID"], floats)


def test_group_above_tract_population_is_rejected_with_its_row(tmp_path: Path) -> None:
    p = tmp_path / "acs.csv"
    # Groups may sum above popn (Hispanic people are of any race), but none may exceed it.
    p.write_text(
        "GEOID,popn,popn.white,popn.black,popn.hispanic\n"
        "36047000100,1000,600,300,300\n36047000200,100,10,99999,5\n36047000300,10,1,1,11\n"
    )
    with pytest.raises(InputError) as exc:
        census.census_from_csv(p)
    got = [(q.row, q.column) for q in exc.value.problems]
    assert got == [(2, "popn.black"), (3, "popn.hispanic")]
    assert "more than the tract's popn 100" in exc.value.problems[0].found
