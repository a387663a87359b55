"""OpenStreetMap readers: a hand-written OSM XML file whose every value is known, tag parsers,
and the real extracts in ../shared/data/osm_nyc (counts stated in SOURCES.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from camcensus._errors import InputError, Ledger
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
        ("surveillance nodes whose camera:direction cannot be read", 1)
    ]
    assert set(gdf["source"]) == {"osm"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("135", [(135.0, math.nan)]),
        ("SE", [(135.0, math.nan)]),
        ("nnw", [(337.5, math.nan)]),
        ("350-10", [(0.0, 20.0)]),
        ("90;270", [(90.0, math.nan), (270.0, math.nan)]),
        ("400", [(40.0, math.nan)]),
        ("up", []),
        ("", []),
        (None, []),
    ],
)
def test_parse_direction(text: str | None, expected: list[tuple[float, float]]) -> None:
    got = parse_direction(text)
    assert len(got) == len(expected)
    for (c, w), (ce, we) in zip(got, expected, strict=True):
        assert c == pytest.approx(ce)
        assert (math.isnan(w) and math.isnan(we)) or w == pytest.approx(we)


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
