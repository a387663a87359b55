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
