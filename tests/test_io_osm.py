"""OpenStreetMap readers: a hand-written OSM XML file whose every value is known, tag parsers,
and the real extracts in ../shared/data/osm_nyc (counts stated in SOURCES.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from geopandas.testing import assert_geodataframe_equal

from camcensus._errors import InputError, Ledger, OptionError
from camcensus.cameras import validate_cameras
from camcensus.io.osm import (
    LEVEL_HEIGHT_M,
    parse_direction,
    parse_height_m,
    parse_other_tags,
    read_osm_buildings,
    read_osm_cameras,
    read_osm_streets,
)

_NODES = {
    1: (40.7500, -73.9900),
    2: (40.7500, -73.9890),
    3: (40.7500, -73.9880),
    4: (40.7510, -73.9890),
    5: (40.7490, -73.9890),
    6: (40.7520, -73.9900),
    7: (40.7520, -73.9895),
    8: (40.7525, -73.9895),
    9: (40.7525, -73.9900),
    10: (40.7530, -73.9900),
    11: (40.7530, -73.9895),
    12: (40.7535, -73.9895),
    13: (40.7535, -73.9900),
}


def _tags(tags: dict[str, str]) -> str:
    return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())


def _way(wid: int, nodes: list[int], tags: dict[str, str]) -> str:
    refs = "".join(f'<nd ref="{n}"/>' for n in nodes)
    return f'<way id="{wid}" version="1">{refs}{_tags(tags)}</way>'


def _camera(nid: int, lat: float, lon: float, tags: dict[str, str]) -> str:
    tags = {"man_made": "surveillance", **tags}
    return f'<node id="{nid}" version="1" lat="{lat}" lon="{lon}">{_tags(tags)}</node>'


@pytest.fixture(scope="module")
def osm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nodes = "".join(
        f'<node id="{i}" version="1" lat="{lat}" lon="{lon}"/>' for i, (lat, lon) in _NODES.items()
    )
    ways = [
        _way(100, [1, 2, 3], {"highway": "footway", "footway": "sidewalk"}),
        _way(101, [4, 2, 5], {"highway": "residential", "name": "Test Street"}),
        _way(102, [1, 4], {"highway": "motorway"}),
        _way(103, [3, 5], {"highway": "service", "access": "private"}),
        _way(104, [3, 4], {"highway": "proposed"}),
        _way(105, [5, 1], {"highway": "service", "access": "private", "foot": "yes"}),
        _way(200, [6, 7, 8, 9, 6], {"building": "yes", "height": "40 ft"}),
        _way(201, [10, 11, 12, 13, 10], {"building": "office", "building:levels": "4"}),
    ]
    cameras = [
        _camera(900, 40.7501, -73.9891, {"camera:direction": "90-180", "camera:mount": "pole"}),
        _camera(901, 40.7502, -73.9892, {"camera:direction": "N;SSE", "camera:type": "dome"}),
        _camera(902, 40.7503, -73.9893, {"direction": "somewhere", "camera:mount": "wall"}),
        _camera(903, 40.7504, -73.9894, {"surveillance:type": "ALPR", "height": "5"}),
    ]
    text = (
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\" generator=\"test\">"
        + nodes
        + "".join(cameras)
        + "".join(ways)
        + "</osm>\n"
    )
    path = tmp_path_factory.mktemp("osm") / "tiny.osm"
    path.write_text(text, encoding="utf-8")
    return path


def test_streets_keep_walkable_ways_and_count_the_rest(osm_file: Path) -> None:
    ledger = Ledger()
    gdf = read_osm_streets(osm_file, ledger=ledger)
    assert sorted(gdf["osm_id"]) == ["100", "101", "105"]
    assert gdf.crs.to_epsg() == 4326
    assert set(gdf.geom_type) == {"LineString"}
    assert gdf.loc[gdf["osm_id"] == "101", "name"].item() == "Test Street"
    reasons = {e.reason: e.count for e in ledger.exclusions}
    assert sum(reasons.values()) == 3  # motorway, private service, proposed
    everything = read_osm_streets(osm_file, walk=False)
    assert sorted(everything["osm_id"]) == ["100", "101", "102", "103", "105"]


def test_buildings_heights_from_height_or_levels(osm_file: Path) -> None:
    gdf = read_osm_buildings(osm_file)
    assert list(gdf["osm_id"]) == ["way/200", "way/201"]
    assert gdf["height_m"].tolist() == pytest.approx([40 * 0.3048, 4 * LEVEL_HEIGHT_M])
    assert gdf["height_source"].tolist() == ["height", "levels"]
    assert set(gdf.geom_type) == {"Polygon"}


def test_cameras_directions_ranges_and_unreadable(osm_file: Path) -> None:
    ledger = Ledger()
    gdf = read_osm_cameras(osm_file, ledger=ledger)
    validate_cameras(gdf)
    by_id = gdf.set_index("camera_id")
    assert list(gdf["camera_id"]) == [
        "node/900",
        "node/901#1",
        "node/901#2",
        "node/902",
        "node/903",
    ]
    assert by_id.loc["node/900", "direction_deg"] == 135.0
    assert by_id.loc["node/900", "hfov_deg"] == 90.0
    assert by_id.loc["node/900", "mount"] == "street"
    assert by_id.loc["node/901#1", "direction_deg"] == 0.0
    assert by_id.loc["node/901#2", "direction_deg"] == 157.5
    assert by_id.loc["node/901#1", "camera_type"] == "dome"
    assert math.isnan(by_id.loc["node/902", "direction_deg"])
    assert by_id.loc["node/902", "direction_raw"] == "somewhere"
    assert by_id.loc["node/902", "mount"] == "building"
    assert by_id.loc["node/903", "surveillance_type"] == "ALPR"
    assert by_id.loc["node/903", "height_m"] == 5.0
    assert [(f.reason, f.count) for f in ledger.flagged] == [
        ("surveillance nodes whose camera:direction cannot be read", 1),
        ("surveillance elements without surveillance:type", 3),
    ]
    assert set(gdf["source"]) == {"osm"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("135", [(135.0, None)]),
        ("SE", [(135.0, None)]),
        ("nnw", [(337.5, None)]),
        ("350-10", [(0.0, 20.0)]),
        ("90;270", [(90.0, None), (270.0, None)]),
        ("400", []),  # more than a turn: a typo, never guessed
        ("up", []),
        ("", []),
        (None, []),
    ],
)
def test_parse_direction(text: str | None, expected: list[tuple[float, float | None]]) -> None:
    assert parse_direction(text) == expected


def test_parse_height_and_other_tags() -> None:
    assert parse_height_m("12") == 12.0
    assert parse_height_m("12.5 m") == 12.5
    assert parse_height_m("10'") == pytest.approx(3.048)
    assert parse_height_m("3,5") == 3.5
    assert math.isnan(parse_height_m("tall"))
    assert parse_other_tags('"a"=>"1","b:c"=>"x \\"y\\""') == {"a": "1", "b:c": 'x "y"'}
    assert parse_other_tags(None) == {}


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_osm_streets(tmp_path / "nope.osm")


@pytest.mark.realdata
def test_real_extracts(shared: Path) -> None:
    pbf = shared / "osm_nyc" / "manhattan_14th_to_50th_2025-01.osm.pbf"
    cams = read_osm_cameras(pbf)
    assert len(cams["source_ref"].unique()) == 120  # SOURCES.md: 120 surveillance nodes
    validate_cameras(cams)
    ledger = Ledger()
    buildings = read_osm_buildings(pbf, ledger=ledger)
    # SOURCES.md: 7,989 buildings, 7,391 with height (a few relations are counted apart).
    assert 7_900 <= len(buildings) + ledger.total() <= 8_100
    assert (buildings["height_source"] == "height").sum() >= 7_391
    xml = shared / "osm_nyc" / "midtown_2012-06.osm"
    streets = read_osm_streets(xml, walk=False)
    assert 100 <= len(streets) <= 152  # SOURCES.md: 152 highway ways (some cut at the edge)
    assert np.isfinite(streets.total_bounds).all()
    old = read_osm_buildings(xml)
    assert 550 <= len(old) <= 593


# --- the camera inventory from every OSM format ---------------------------------------------


def test_overpass_json_with_and_without_envelope(tmp_path: Path) -> None:
    elements = [
        {"type": "node", "id": 1, "lat": 47.1, "lon": 8.1, "version": 3,
         "tags": {"man_made": "surveillance", "surveillance:type": "alpr",
                  "camera:direction": "270-90", "operator": "Police", "check_date": "2024-05-01",
                  "surveillance:zone": "traffic", "manufacturer": "Flock Safety"}},
        {"type": "way", "id": 2, "center": {"lat": 47.2, "lon": 8.2},
         "tags": {"man_made": "surveillance", "camera:direction": "0-360"}},
        {"type": "way", "id": 3, "tags": {"man_made": "surveillance"}},  # no position
        {"type": "relation", "id": 4, "bounds": {"minlat": 47.0, "minlon": 8.0,
                                                "maxlat": 47.2, "maxlon": 8.4},
         "tags": {"man_made": "surveillance", "camera:height": "4 m"}},
        {"type": "node", "id": 5, "lat": 47.3, "lon": 8.3, "tags": {"amenity": "bench"}},
        {"type": "node", "id": 6, "lat": 47.3, "lon": 8.3},
    ]  # fmt: skip
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(elements), encoding="utf-8")
    envelope = tmp_path / "response.json"
    envelope.write_text(json.dumps({"version": 0.6, "elements": elements}), encoding="utf-8")
    ledger = Ledger()
    gdf = read_osm_cameras(bare, ledger=ledger)
    assert_geodataframe_equal(gdf, read_osm_cameras(envelope))
    validate_cameras(gdf)
    assert list(gdf["camera_id"]) == ["node/1", "way/2", "relation/4"]
    first = gdf.iloc[0]
    assert (first["direction_deg"], first["hfov_deg"]) == (0.0, 180.0)
    assert first["surveillance_type"] == "ALPR"
    assert (first["operator"], first["manufacturer"]) == ("Police", "Flock Safety")
    assert (first["surveillance_zone"], first["last_seen"]) == ("traffic", "2024-05-01")
    assert first["osm_version"] == 3
    assert math.isnan(gdf["direction_deg"].iloc[1]) and gdf["hfov_deg"].iloc[1] == 360.0
    assert (gdf.geometry.x.iloc[2], gdf.geometry.y.iloc[2]) == pytest.approx((8.2, 47.1))
    assert gdf["height_m"].iloc[2] == 4.0
    assert json.loads(gdf["osm_tags"].iloc[0])["check_date"] == "2024-05-01"
    excluded = {e.reason: e.count for e in ledger.exclusions}
    assert excluded == {
        "tagged elements that are not man_made=surveillance": 1,
        "surveillance ways or relations without a position (no 'center')": 1,
    }


def test_xml_ways_and_osmchange(tmp_path: Path) -> None:
    xml = tmp_path / "a.osm"
    xml.write_text(
        "<osm version='0.6'>"
        "<node id='1' lat='1.0' lon='2.0'/><node id='2' lat='1.2' lon='2.4'/>"
        + _camera(3, 1.5, 2.5, {"camera:direction": "N;E-W"})
        + _way(10, [1, 2, 99], {"man_made": "surveillance"})  # node 99 cut at the edge
        + "</osm>",
        encoding="utf-8",
    )
    gdf = read_osm_cameras(xml)
    assert list(gdf["camera_id"]) == ["node/3#1", "node/3#2", "way/10"]
    assert list(gdf["hfov_deg"].fillna(-1)) == [-1, 180.0, -1]
    assert (gdf.geometry.x.iloc[2], gdf.geometry.y.iloc[2]) == pytest.approx((2.2, 1.1))
    osc = tmp_path / "a.osc"
    osc.write_text(
        "<osmChange version='0.6'><create>"
        + _camera(-1, 1.0, 2.0, {"direction": "SE"})
        + "</create><delete>"
        + _camera(7, 1.0, 2.0, {})
        + "</delete></osmChange>",
        encoding="utf-8",
    )
    ledger = Ledger()
    got = read_osm_cameras(osc, ledger=ledger)
    assert list(got["camera_id"]) == ["node/-1"] and got["direction_deg"].item() == 135.0
    assert ledger.total() == 1


def test_unknown_source_format(osm_file: Path) -> None:
    with pytest.raises(OptionError, match="not an OSM format"):
        read_osm_cameras(osm_file, source_format="shapefile")


@pytest.mark.realdata
def test_swiss_overpass_sample(shared: Path) -> None:
    path = shared / "api_fixtures" / "overpass" / "switzerland_surveillance_elements.json"
    ledger = Ledger()
    gdf = read_osm_cameras(path, ledger=ledger)
    validate_cameras(gdf)
    # SOURCES.md: 2,144 nodes; one node lists 3 directions (90;160;270): 2 extra rows.
    assert gdf["osm_id"].nunique() == 2_144 and len(gdf) == 2_146
    flagged = {f.reason: f.count for f in ledger.flagged}
    assert flagged["surveillance nodes whose camera:direction cannot be read"] == 1
    assert flagged["surveillance elements without surveillance:type"] == 2_144 - 1_834
    nodes = gdf.drop_duplicates("osm_id")
    # SOURCES.md: 738 surveillance:zone, 1,415 camera:mount, 1,494 camera:type (6 of them
    # values the contract has no class for, e.g. "static").
    assert nodes["surveillance_zone"].notna().sum() == 738
    assert nodes["camera_mount"].notna().sum() == 1_415
    assert nodes["camera_type"].value_counts().to_dict() == {
        "fixed": 804, "unknown": 656, "dome": 624, "panning": 60
    }  # fmt: skip
    assert nodes["surveillance_type"].value_counts().to_dict() == {
        "camera": 2_136, "webcam": 4, "ALPR": 2, "guard": 2
    }  # fmt: skip
    # 529 nodes carry a direction (497 camera:direction + 33 direction - 1 with both); one
    # is unreadable ("180, 270"); one lists three: 528 - 1 + 3 = 530 rows with a direction.
    assert gdf["direction_deg"].notna().sum() == 530
    assert gdf["hfov_deg"].notna().sum() == 1  # the one range, 190-100
    assert gdf.loc[gdf["hfov_deg"].notna(), "hfov_deg"].item() == 270.0
