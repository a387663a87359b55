"""Camera files: every format round-trips (import → export → import identical), the OSM formats
write correct tags and refuse, with the reason, cameras whose licence forbids OpenStreetMap."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from camcensus._errors import InputError, Ledger, OptionError
from camcensus.cameras import CAMERA_COLUMNS
from camcensus.io.camera_files import (
    CAMERA_FILE_FORMATS,
    canonical_cameras,
    osm_licence_problem,
    read_cameras_file,
    read_cameras_files,
    write_cameras,
)
from camcensus.io.osm import cameras_from_osm_elements

AMNESTY = "CC BY-NC-ND 4.0 (Amnesty International, Decode Surveillance NYC)"


def _osm() -> gpd.GeoDataFrame:
    elements = [
        {"type": "node", "id": 11, "lat": 47.1234567, "lon": 8.7654321, "version": 4,
         "tags": {"man_made": "surveillance", "camera:direction": "90;160;270",
                  "surveillance:type": "camera", "camera:mount": "pole", "name": "Café \"X\""}},
        {"type": "node", "id": 12, "lat": 47.2, "lon": 8.6,
         "tags": {"man_made": "surveillance", "direction": "E-W", "height": "40 ft"}},
        {"type": "node", "id": 13, "lat": 47.3, "lon": 8.5,
         "tags": {"man_made": "surveillance", "camera:direction": "up", "note": "a;b=c"}},
        {"type": "way", "id": 14, "lat": 47.4, "lon": 8.4,
         "tags": {"man_made": "surveillance"}},
    ]  # fmt: skip
    return cameras_from_osm_elements(elements)


def _other() -> gpd.GeoDataFrame:
    df = pd.DataFrame(
        {
            "camera_id": ["bk/1", "city/7", "city/8", "city/9"],
            "position_sd_m": [15.0, np.nan, 2.5, np.nan],
            "mount": ["street", "street", "building", "unknown"],
            "camera_type": ["dome", "bullet", "unknown", "panning"],
            "surveillance_type": ["camera", "ALPR", "camera", "camera"],
            "direction_deg": [np.nan, 45.0, 300.0, np.nan],
            "hfov_deg": [np.nan, 60.0, np.nan, 360.0],
            "height_m": [np.nan, 5.5, np.nan, 3.0],
            "operator": [None, "City DOT", None, "=cmd"],
            "source": ["decode-counts", "city-list", "city-list", "city-list"],
            "source_ref": ["pano1", "7", "8", "9"],
            "tier": ["seen", "official list", "official list", "official list"],
            "support": [None, None, None, None],
            "first_seen": ["2021-05", None, None, None],
            "last_seen": ["2021-05", None, None, None],
            "licence": [AMNESTY, "CC0 1.0", "Google Street View derived", None],
            "extra_count": [1.0, 2.0, 3.5, np.nan],
        }
    )
    xy = gpd.points_from_xy([-73.95, -76.61, -76.62, -76.63], [40.65, 39.29, 39.30, 39.31])
    return gpd.GeoDataFrame(df, geometry=xy, crs="EPSG:4326")


def _mixed() -> gpd.GeoDataFrame:
    both = pd.concat([_osm(), _other()], ignore_index=True)
    return canonical_cameras(gpd.GeoDataFrame(both, crs="EPSG:4326"))


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".parquet", ".csv"])
def test_round_trip_is_identical(tmp_path: Path, ext: str) -> None:
    gdf = _mixed()
    result = write_cameras(gdf, tmp_path / f"cams{ext}")
    assert (result.written, result.refused) == (len(gdf), ())
    back = read_cameras_file(result.path)
    assert_geodataframe_equal(back, gdf)
    again = write_cameras(back, tmp_path / f"again{ext}")
    assert_geodataframe_equal(read_cameras_file(again.path), gdf)


def test_flat_csv_has_one_value_per_cell(tmp_path: Path) -> None:
    path = write_cameras(_mixed(), tmp_path / "c.csv").path
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(raw.columns[:3]) == ["camera_id", "lon", "lat"]
    assert "osm_tags" not in raw.columns and "tag:camera:direction" in raw.columns
    assert raw.loc[0, "tag:camera:direction"] == "90;160;270"
    assert raw.loc[raw["camera_id"] == "city/9", "operator"].item() == "'=cmd"  # no formula
    assert not raw.map(lambda v: v.startswith(("{", "["))).to_numpy().any()


def test_osm_export_tags_and_refusals(tmp_path: Path) -> None:
    ledger = Ledger()
    result = write_cameras(_mixed(), tmp_path / "review.osm", ledger=ledger)
    refused = dict(result.refused)
    assert set(refused) == {"way/14", "bk/1", "city/8", "city/9"}
    assert "forbids commercial use" in refused["bk/1"]
    assert "Google" in refused["city/8"]
    assert "no licence" in refused["city/9"]
    assert "way or relation" in refused["way/14"]
    assert result.written == len(_mixed()) - 4
    assert ledger.total("export cameras") == 4
    root = ElementTree.parse(result.path).getroot()
    nodes = {n.get("id"): n for n in root.iter("node")}
    assert set(nodes) == {"11", "12", "13", "-1"}
    tags = {i: {t.get("k"): t.get("v") for t in n.iter("tag")} for i, n in nodes.items()}
    assert tags["11"]["camera:direction"] == "90;160;270"  # three rows, one node again
    assert nodes["11"].get("version") == "4" and nodes["12"].get("version") is None
    assert tags["12"]["direction"] == "E-W"  # the original text, not 90-270
    assert tags["13"]["camera:direction"] == "up" and tags["13"]["note"] == "a;b=c"
    assert tags["-1"] == {
        "man_made": "surveillance",
        "surveillance:type": "ALPR",
        "camera:type": "fixed",
        "camera:direction": "15-75",
        "height": "5.5",
        "operator": "City DOT",
    }
    # Re-import: the OSM cameras come back identical.
    back = read_cameras_file(result.path)
    osm = _osm().iloc[:-1].reset_index(drop=True)  # the way was refused
    assert_geodataframe_equal(back.iloc[:5].reset_index(drop=True), osm)


def test_osm_export_rewrites_a_changed_direction(tmp_path: Path) -> None:
    gdf = _osm().iloc[:3].copy()
    gdf.loc[1, "direction_deg"] = 200.0  # the second of node 11's three directions
    root = ElementTree.parse(write_cameras(gdf, tmp_path / "c.osm").path).getroot()
    node = next(n for n in root.iter("node") if n.get("id") == "11")
    tags = {t.get("k"): t.get("v") for t in node.iter("tag")}
    assert tags["camera:direction"] == "90;200;270"


def test_osmchange_creates_only_new_cameras(tmp_path: Path) -> None:
    result = write_cameras(_mixed(), tmp_path / "new.osc")
    root = ElementTree.parse(result.path).getroot()
    assert root.tag == "osmChange"
    created = [n.get("id") for n in root.find("create").iter("node")]  # type: ignore[union-attr]
    assert created == ["-1"]
    reasons = dict(result.refused)
    assert reasons["node/11#1"].startswith("already in OpenStreetMap")
    back = read_cameras_file(result.path)
    assert list(back["camera_id"]) == ["node/-1"]
    assert (back["direction_deg"].item(), back["hfov_deg"].item()) == (45.0, 60.0)


def test_licence_rules() -> None:
    assert osm_licence_problem("ODbL 1.0 (© OpenStreetMap contributors)") is None
    assert osm_licence_problem("CC0 1.0") is None
    assert osm_licence_problem("Public domain (US government work)") is None
    for text in ("CC BY-NC 4.0", "CC BY-ND 4.0", "CC BY-NC-ND 4.0", "noncommercial only"):
        assert osm_licence_problem(text) is not None
    assert osm_licence_problem(None) is not None and osm_licence_problem("  ") is not None


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="extensions"):
        write_cameras(_mixed(), tmp_path / "c.shp")
    with pytest.raises(InputError, match="no such file"):
        read_cameras_file(tmp_path / "none.gpkg")
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="source-format"):
        read_cameras_file(odd)
    with pytest.raises(OptionError, match="unknown"):
        read_cameras_file(odd, source_format="nonsense")
    path = write_cameras(_mixed(), tmp_path / "c.geojson").path
    with pytest.raises(InputError, match="camera_id"):
        read_cameras_files([path, path])
    assert set(CAMERA_FILE_FORMATS.values()) == {"gpkg", "geojson", "parquet", "csv", "osm", "osc"}


_text = st.none() | st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
)
_Row = tuple[str | None, float | None, float | None, float, float]
_num = st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@hsettings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(_text, _num, _num, st.floats(-180, 180), st.floats(-90, 90)),
        min_size=1,
        max_size=6,
    ),
    ext=st.sampled_from([".geojson", ".csv", ".parquet"]),
)
def test_round_trip_property(
    tmp_path: Path,
    rows: list[tuple[str | None, float | None, float | None, float, float]],
    ext: str,
) -> None:
    n = len(rows)
    df = pd.DataFrame({c: [None] * n for c in CAMERA_COLUMNS})
    df["camera_id"] = [f"c{i}" for i in range(n)]
    df["mount"] = "unknown"
    df["operator"] = [r[0] for r in rows]
    df["height_m"] = [np.nan if r[1] is None else r[1] for r in rows]
    df["direction_deg"] = [np.nan if r[2] is None else abs(r[2]) % 360.0 for r in rows]
    xy = gpd.points_from_xy([r[3] for r in rows], [r[4] for r in rows])
    gdf = canonical_cameras(gpd.GeoDataFrame(df, geometry=xy, crs="EPSG:4326"))
    path = write_cameras(gdf, tmp_path / f"p{ext}").path
    assert_geodataframe_equal(read_cameras_file(path), gdf)


@pytest.mark.realdata
def test_swiss_sample_round_trips_through_every_format(shared: Path, tmp_path: Path) -> None:
    src = shared / "api_fixtures" / "overpass" / "switzerland_surveillance_elements.json"
    gdf = read_cameras_file(src)
    assert len(gdf) == 2_146
    for ext in (".gpkg", ".geojson", ".parquet", ".csv", ".osm"):
        result = write_cameras(gdf, tmp_path / f"ch{ext}")
        assert result.refused == ()
        assert_geodataframe_equal(read_cameras_file(result.path), gdf)
    osm = (tmp_path / "ch.osm").read_text(encoding="utf-8")
    assert osm.count("<node ") == 2_144  # the three-direction node is one node again


@pytest.mark.realdata
def test_decode_counts_are_refused_for_osm(shared: Path, tmp_path: Path) -> None:
    src = shared / "amnesty_decode" / "amnesty_international_cameras_brooklyn.csv"
    gdf = read_cameras_file(src)
    result = write_cameras(gdf, tmp_path / "bk.osm")
    assert result.written == 0 and len(result.refused) == len(gdf) > 1_000
    assert all("forbids commercial use" in r for _, r in result.refused)
    json.dumps(result.refused[:3])


@pytest.mark.realdata
def test_city_lists_are_recognised_by_their_columns(shared: Path) -> None:
    baltimore = read_cameras_file(shared / "other_cities" / "baltimore" / "CCTV_Locations.csv")
    assert len(baltimore) == 614 and (baltimore["source"] == "city-list").all()
    dot = read_cameras_file(shared / "nyc_dot_cameras" / "scanmap_2021" / "ny.json")
    assert len(dot) == 723  # 724 rows, one duplicate id left out
    # New Orleans' RTCC and SafeCam share one file: the reader asks which one is meant.
    orleans = shared / "other_cities" / "new_orleans" / "new_orleans_cameras_3_11_2022.csv"
    with pytest.raises(InputError, match="new-orleans-rtcc or new-orleans-safecam"):
        read_cameras_file(orleans)
    assert len(read_cameras_file(orleans, source_format="new-orleans-rtcc")) == 432
