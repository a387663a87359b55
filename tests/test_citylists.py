"""City camera lists: real counts from ../shared/data, and user mapping files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from camcensus._errors import InputError, Ledger, OptionError
from camcensus.cameras import CAMERA_COLUMNS, validate_cameras
from camcensus.io.citylists import (
    CITY_FORMATS,
    city_format_from_file,
    load_city_list,
    read_city_list,
    sniff_city_formats,
)

FAR = "geocoded farther than 100 km from the list's median point"
OTHER_SAFECAM = "row of another list in the same file (set is not safecam)"

# (format, path under shared data, rows read, {reason: excluded}, cameras produced)
REAL = [
    ("baltimore-citiwatch", "other_cities/baltimore/CCTV_Locations.csv", 614, {}, 614),
    (
        "new-orleans-rtcc",
        "other_cities/new_orleans/new_orleans_cameras_3_11_2022.csv",
        432,
        {},
        432,
    ),
    (
        "new-orleans-rtcc",
        "other_cities/new_orleans/safecam_nopd.csv",
        495,
        {"row of another list in the same file (set is not cameras/rtcc)": 63},
        432,
    ),
    (
        "new-orleans-safecam",
        "other_cities/new_orleans/safecam_nopd.csv",
        495,
        {OTHER_SAFECAM: 432, FAR: 16},
        47,
    ),
    (
        "nyc-dot-cameras",
        "nyc_dot_cameras/scanmap_ny_cams.json",
        724,
        {"duplicate id (column 'id'; the first row is kept)": 1},
        723,
    ),
    ("nyc-dot-cameras", "nyc_dot_cameras/scanmap_2021/ny.json", 724, None, 723),
    ("nyc-dot-cameras-markers", "nyc_dot_cameras/pig_observer_cameras_2020-06.json", 723, {}, 723),
    (
        "linknyc",
        "linknyc/LinkNYC_Kiosk_Locations_20250426.csv",
        2235,
        {
            "kiosk removed (Installation Status: Removed Pending Reinstall)": 13,
            "payphone, not a Link kiosk (no camera)": 4,
        },
        2218,
    ),
    # 635 OSM elements; 3 carry two ";"-separated directions -> 638 cameras.
    ("line-of-sight-osm-cctv", "line_of_sight_nyc/cctv.json", 635, {}, 638),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("fmt", "rel", "n_read", "excluded", "n_cameras"), REAL)
def test_real_lists_counts(
    shared: Path,
    fmt: str,
    rel: str,
    n_read: int,
    excluded: dict[str, int] | None,
    n_cameras: int,
) -> None:
    result = load_city_list(shared / rel, fmt)
    validate_cameras(result.cameras)
    assert result.rows_read == n_read
    assert len(result.cameras) == n_cameras
    if excluded is not None:
        assert result.excluded_by_reason() == excluded
    # Every row read is either a camera (possibly several directions) or excluded.
    kept_rows = n_read - len(result.excluded)
    assert kept_rows <= n_cameras
    assert result.cameras.crs.to_epsg() == 4326
    assert list(result.cameras.columns[: len(CAMERA_COLUMNS)]) == list(CAMERA_COLUMNS)
    assert (result.cameras["city_list"] == fmt).all()
    assert result.cameras["source_ref"].str.startswith(fmt + ":").all()


@pytest.mark.realdata
def test_safecam_far_away_points_with_distances(shared: Path) -> None:
    path = shared / "other_cities/new_orleans/safecam_nopd.csv"
    ledger = Ledger()
    gdf = read_city_list(path, "new-orleans-safecam", ledger=ledger)
    assert len(gdf) == 47
    result = load_city_list(path, "new-orleans-safecam")
    far = result.excluded[result.excluded["reason"] == FAR]
    assert len(far) == 16
    # Distances recomputed from the raw file (geodesic, WGS84) to the median of the 63 points.
    raw = pd.read_csv(path)
    safecam = raw[raw["set"] == "safecam"]
    lon0, lat0 = safecam["longitude"].median(), safecam["latitude"].median()
    assert result.median_point == pytest.approx((lon0, lat0))
    _, _, dist = Geod(ellps="WGS84").inv(
        np.full(len(safecam), lon0),
        np.full(len(safecam), lat0),
        safecam["longitude"].to_numpy(),
        safecam["latitude"].to_numpy(),
    )
    expected_far = np.sort(dist[dist > 100_000] / 1000)
    np.testing.assert_allclose(np.sort(far["distance_km"].to_numpy()), expected_far, rtol=1e-9)
    assert far["distance_km"].min() == pytest.approx(446.3, abs=0.1)
    assert far["distance_km"].max() == pytest.approx(8196.2, abs=0.1)
    # The nearest kept SafeCam point is 12.3 km away: the rule has a wide margin either side.
    assert dist[dist <= 100_000].max() / 1000 == pytest.approx(12.3, abs=0.1)
    # Row numbers point at the file's data rows (header = row 0).
    rows = far["row"].to_numpy() - 1
    np.testing.assert_allclose(raw.loc[rows, "latitude"].to_numpy(), far["lat"].to_numpy())
    assert ledger.total() == 16 + 432
    assert any("16 rows geocoded far" in note and "8,196 km" in note for note in ledger.notes)


@pytest.mark.realdata
def test_baltimore_columns(shared: Path) -> None:
    gdf = read_city_list(
        shared / "other_cities/baltimore/CCTV_Locations.csv", "baltimore-citiwatch"
    )
    first = gdf.iloc[0]
    assert first["camera_id"] == "baltimore-citiwatch:277"
    assert first["operator"] == "BPD - North Ave West"
    assert first["first_seen"] == "2014-10-22"
    assert first.geometry.x == pytest.approx(-76.640704)
    assert first.geometry.y == pytest.approx(39.310861)
    assert (gdf["source"] == "city-list").all()
    assert (gdf["tier"] == "official list").all()
    # 24 cameras share a position with another (several cameras on one pole): all kept.
    assert gdf.geometry.to_wkb().duplicated().sum() == 24


@pytest.mark.realdata
def test_nyc_dot_variants_agree(shared: Path) -> None:
    scan = read_city_list(shared / "nyc_dot_cameras/scanmap_ny_cams.json", "nyc-dot-cameras")
    marks = read_city_list(
        shared / "nyc_dot_cameras/pig_observer_cameras_2020-06.json", "nyc-dot-cameras-markers"
    )
    ids_a = {r.split(":", 1)[1] for r in scan["source_ref"]}
    ids_b = {r.split(":", 1)[1] for r in marks["source_ref"]}
    assert ids_a == ids_b
    assert len(ids_a) == 723


@pytest.mark.realdata
def test_osm_cctv_directions(shared: Path) -> None:
    result = load_city_list(shared / "line_of_sight_nyc/cctv.json", "line-of-sight-osm-cctv")
    gdf = result.cameras
    assert (gdf["source"] == "osm").all()
    # 21 "0-360" values are all-round: no centre, 360° wide.
    assert int((gdf["hfov_deg"] == 360).sum()) == 21
    assert gdf["camera_id"].is_unique
    assert sum(result.flagged.values()) == 1
    assert gdf["mount"].value_counts().to_dict() == {"unknown": 324, "building": 235, "street": 79}


@pytest.mark.realdata
def test_sniff(shared: Path) -> None:
    assert sniff_city_formats(shared / "other_cities/baltimore/CCTV_Locations.csv") == [
        "baltimore-citiwatch"
    ]
    both = shared / "other_cities/new_orleans/safecam_nopd.csv"
    assert set(sniff_city_formats(both)) == {"new-orleans-rtcc", "new-orleans-safecam"}
    with pytest.raises(OptionError, match="--source-format"):
        read_city_list(both)
    gdf = read_city_list(shared / "linknyc/LinkNYC_Kiosk_Locations_20250426.csv", "auto")
    assert len(gdf) == 2218


def test_known_formats_load() -> None:
    assert {
        "baltimore-citiwatch",
        "new-orleans-rtcc",
        "new-orleans-safecam",
        "nyc-dot-cameras",
        "nyc-dot-cameras-markers",
        "linknyc",
    } <= set(CITY_FORMATS)
    for fmt in CITY_FORMATS.values():
        assert fmt.licence
        assert fmt.max_km_from_median == 100.0


MAPPING = """
[list]
title = "Springfield cameras"
file_format = "csv"
licence = "CC0"
snapshot = "2024-01-31"

[columns]
id = "Cam"
lon = "X"
lat = "Y"
camera_type = "Kind"
direction = "Facing"
name = "Where"

[constants]
mount = "street"
operator = "Springfield PD"

[values.camera_type]
PTZ = "panning"
Fixed = "fixed"

[[exclude]]
column = "Status"
values = ["retired"]
reason = "camera retired"
"""

CSV = """Cam,X,Y,Kind,Facing,Where,Status
a1,-89.65,39.78,PTZ,,Main St,live
a2,-89.651,39.781,Fixed,90-180,Elm St,live
a3,,39.78,Fixed,N,no coords,live
a4,-89.652,39.782,Laser,N;S,two ways,live
a5,-89.653,39.783,Fixed,sideways,odd,live
a1,-89.654,39.784,PTZ,,dup id,live
a6,-89.655,39.785,Fixed,,old,retired
a7,2.35,48.85,Fixed,,Paris?,live
"""


def _user_list(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "springfield.toml"
    mapping.write_text(MAPPING)
    data = tmp_path / "springfield.csv"
    data.write_text(CSV)
    return data, mapping


def test_user_mapping(tmp_path: Path) -> None:
    data, mapping = _user_list(tmp_path)
    ledger = Ledger()
    result = load_city_list(data, mapping=mapping)
    gdf = read_city_list(data, mapping=mapping, ledger=ledger)
    validate_cameras(gdf)
    assert result.rows_read == 8
    assert result.excluded_by_reason() == {
        "no coordinates (empty or not a number)": 1,
        "duplicate id (column 'Cam'; the first row is kept)": 1,
        "camera retired": 1,
        FAR: 1,
    }
    assert result.excluded["row"].tolist() == [3, 6, 7, 8]
    # a4 has two directions: two cameras.
    assert gdf["camera_id"].tolist() == [
        "springfield:a1",
        "springfield:a2",
        "springfield:a4#1",
        "springfield:a4#2",
        "springfield:a5",
    ]
    assert gdf["camera_type"].tolist() == ["panning", "fixed", "unknown", "unknown", "fixed"]
    assert gdf["direction_deg"].tolist()[1:4] == [135.0, 0.0, 180.0]
    assert gdf["hfov_deg"].iloc[1] == 90.0
    assert np.isnan(gdf["direction_deg"].iloc[4])
    assert gdf["direction_raw"].iloc[4] == "sideways"
    assert (gdf["operator"] == "Springfield PD").all()
    assert (gdf["last_seen"] == "2024-01-31").all()
    assert (gdf["licence"] == "CC0").all()
    assert gdf["name"].tolist()[0] == "Main St"
    assert result.flagged == {
        "camera_type values the mapping does not map (kept as unknown)": 1,
        "directions that cannot be read (kept as all-round, raw text in direction_raw)": 1,
    }
    assert ledger.total() == 4
    assert sum(f.count for f in ledger.flagged) == 2


def test_projected_crs_and_geojson(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[list]\nfile_format = "geojson"\nlicence = "x"\ncrs = "EPSG:32618"\n[columns]\nid = "n"\n'
    )
    data = tmp_path / "cams.geojson"
    feats = [
        {
            "type": "Feature",
            "properties": {"n": k},
            "geometry": {"type": "Point", "coordinates": [583000.0 + k, 4507000.0]},
        }
        for k in range(3)
    ] + [{"type": "Feature", "properties": {"n": 9}, "geometry": None}]
    data.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    result = load_city_list(data, mapping=mapping)
    assert len(result.cameras) == 3
    assert result.excluded_by_reason() == {"no coordinates (empty or not a number)": 1}
    assert result.cameras.geometry.x.iloc[0] == pytest.approx(-74.0, abs=0.05)
    assert result.cameras.geometry.y.iloc[0] == pytest.approx(40.71, abs=0.05)


def test_bad_mapping_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[list]\nfile_format = "xlsx"\n[columns]\nid = "a"\n[constants]\nmount = "pole"\n'
        '[[keep]]\ncolumn = "s"\n'
    )
    with pytest.raises(InputError) as info:
        city_format_from_file(bad)
    text = str(info.value)
    for needle in ("file_format", "licence", "[columns] lon", "[columns] lat", "mount", "[[keep]]"):
        assert needle in text
    assert len(info.value.problems) == 6


def test_missing_columns_and_unknown_format(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="Longitude"):
        load_city_list(data, "baltimore-citiwatch")
    with pytest.raises(OptionError, match="unknown city list format"):
        load_city_list(data, "gotham")
    with pytest.raises(OptionError, match="cannot tell"):
        load_city_list(data)
