"""The OSM direction grammar: a table of real tag values (Switzerland's Overpass sample and the
Manhattan extracts in ../shared/data) with their (centre, width) worked out by hand, every form
of the OSM wiki, and property tests that a range and its re-export agree."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camcensus.io.directions import (
    COMPASS_POINTS,
    Direction,
    compass_degrees,
    format_direction,
    format_directions,
    parse_direction,
)
from camcensus.io.osm import parse_other_tags

# Real values of camera:direction / direction, copied from the data (Swiss sample: 122
# distinct values; Manhattan: 15). Expected (centre, width) by hand.
REAL = [
    ("360", [(0.0, None)]),  # 47 Swiss nodes: 360 is north
    ("270", [(270.0, None)]),
    ("0", [(0.0, None)]),
    ("-140", [(220.0, None)]),  # a negative bearing counts anticlockwise
    ("-27", [(333.0, None)]),
    ("-2", [(358.0, None)]),
    ("NW", [(315.0, None)]),
    ("E", [(90.0, None)]),
    ("SW", [(225.0, None)]),
    ("south", [(180.0, None)]),
    ("north", [(0.0, None)]),
    ("190-100", [(325.0, 270.0)]),  # clockwise from 190 through north to 100
    ("90;160;270", [(90.0, None), (160.0, None), (270.0, None)]),
    ("180, 270", []),  # a comma is no separator in OSM: kept raw, never guessed
    ("295", [(295.0, None)]),  # Manhattan, direction=295
    ("26", [(26.0, None)]),
    ("346", [(346.0, None)]),
]

# Every form the OSM wiki (Key:direction, Key:camera:direction) gives.
WIKI = [
    ("45", [(45.0, None)]),
    ("22.5", [(22.5, None)]),
    ("90°", [(90.0, None)]),
    ("NNE", [(22.5, None)]),
    ("wsw", [(247.5, None)]),
    ("90-180", [(135.0, 90.0)]),
    ("270-90", [(0.0, 180.0)]),  # wraps through north
    ("315-45", [(0.0, 90.0)]),
    ("E-W", [(180.0, 180.0)]),  # clockwise from east: faces south
    ("W-E", [(0.0, 180.0)]),
    ("NE-SE", [(90.0, 90.0)]),
    ("0-360", [(None, 360.0)]),  # all-round
    ("0-359", [(None, 360.0)]),
    ("10 - 20", [(15.0, 10.0)]),
    ("N;S", [(0.0, None), (180.0, None)]),
    ("90-180;270", [(135.0, 90.0), (270.0, None)]),
    ("90;", [(90.0, None)]),
]

UNREADABLE = ["", " ", "up", "400", "-400", "90-90", "12,5", "NNNE", "90-400", "forward", "N-"]


@pytest.mark.parametrize(("text", "expected"), REAL + WIKI)
def test_table_of_values(text: str, expected: list[tuple[float | None, float | None]]) -> None:
    got = parse_direction(text)
    assert got == expected
    assert all(isinstance(d, Direction) for d in got)


@pytest.mark.parametrize("text", UNREADABLE)
def test_unreadable_values_are_not_guessed(text: str) -> None:
    assert parse_direction(text) == []


def test_missing_values() -> None:
    assert parse_direction(None) == []
    assert parse_direction(math.nan) == []
    assert parse_direction(135) == []  # tags are text


def test_compass_points_are_22_5_degrees_apart() -> None:
    assert [compass_degrees(p) for p in COMPASS_POINTS] == [22.5 * k for k in range(16)]
    assert math.isnan(compass_degrees("X"))


@pytest.mark.realdata
def test_every_real_value_reads_as_the_table_says(shared: Path) -> None:
    """Read every distinct value in the Swiss sample and check the counts of what was read;
    the hand table above covers every non-numeric and multi-valued form among them."""
    path = shared / "api_fixtures" / "overpass" / "switzerland_surveillance_elements.json"
    elements = json.loads(path.read_text(encoding="utf-8"))
    values = Counter(
        e["tags"].get("camera:direction", e["tags"].get("direction"))
        for e in elements
        if "camera:direction" in e["tags"] or "direction" in e["tags"]
    )
    assert sum(values.values()) == 497 + 33 - sum(
        1 for e in elements if {"camera:direction", "direction"} <= set(e["tags"])
    )
    unreadable = [v for v in values if not parse_direction(v)]
    assert unreadable == ["180, 270"]
    table = dict(REAL)
    for value in values:
        if not value.lstrip("-").isdigit():
            assert value in table, f"{value!r} is missing from the table"
        else:  # plain integers: the bearing, mod 360
            assert parse_direction(value) == [(float(int(value) % 360), None)]


@pytest.mark.realdata
def test_manhattan_values(shared: Path) -> None:
    import pyogrio

    values = set()
    for name in ("manhattan_14th_to_50th_2025-01.osm.pbf", "lower_manhattan_2024-05.osm.pbf"):
        gdf = pyogrio.read_dataframe(
            shared / "osm_nyc" / name, layer="points", where="man_made = 'surveillance'"
        )
        for other in gdf["other_tags"]:
            tags = parse_other_tags(other)
            raw = tags.get("camera:direction", tags.get("direction"))
            if raw is not None:
                values.add(raw)
    assert len(values) == 15
    for value in values:
        assert parse_direction(value) == [(float(value), None)]


# --- properties ----------------------------------------------------------------------------

_bearing = st.integers(min_value=0, max_value=359)


@given(a=_bearing, b=_bearing)
def test_an_integer_range_re_exports_as_itself(a: int, b: int) -> None:
    text = f"{a}-{b}"
    got = parse_direction(text)
    if a == b:
        assert got == []
        return
    (d,) = got
    if (b - a) % 360 >= 359:
        assert d == (None, 360.0)
        assert format_direction(*d) == "0-360"
    else:
        assert d.width_deg == (b - a) % 360
        assert format_direction(*d) == text


@given(
    centre=st.floats(min_value=0.0, max_value=359.999, allow_nan=False),
    width=st.floats(min_value=0.01, max_value=358.99, allow_nan=False),
)
def test_a_range_and_its_re_export_agree(centre: float, width: float) -> None:
    (d,) = parse_direction(format_direction(centre, width))
    assert d.width_deg == pytest.approx(width, abs=2e-6)
    assert d.centre_deg is not None
    gap = (d.centre_deg - centre + 180.0) % 360.0 - 180.0
    assert gap == pytest.approx(0.0, abs=2e-6)


@given(st.lists(st.tuples(_bearing, st.none() | st.integers(1, 358)), min_size=1, max_size=4))
def test_lists_re_export_as_lists(items: list[tuple[int, int | None]]) -> None:
    directions = [(float(c), None if w is None else float(w)) for c, w in items]
    text = format_directions(directions)
    got = parse_direction(text)
    assert len(got) == len(items) == text.count(";") + 1
    for (c, w), d in zip(directions, got, strict=True):
        assert d.width_deg == w
        assert d.centre_deg is not None
        assert (d.centre_deg - c + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=1e-9)


def test_format_all_round_and_single() -> None:
    assert format_direction(None, 360.0) == "0-360"
    assert format_direction(90.0, 360.0) == "0-360"
    assert format_direction(135.0) == "135"
    assert format_direction(0.0, 20.0) == "350-10"
    with pytest.raises(ValueError, match="centre or a width"):
        format_direction(None, None)
