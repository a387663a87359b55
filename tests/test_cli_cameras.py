"""CLI: ``camcensus cameras import`` and ``camcensus export cameras`` call the library and print
what was written, refused and left out."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from typer.testing import CliRunner

from camcensus.cameras import CAMERA_COLUMNS
from camcensus.cli import app
from camcensus.io.camera_files import read_cameras_file, write_cameras

runner = CliRunner()

ELEMENTS = [
    {"type": "node", "id": 1, "lat": 47.1, "lon": 8.1,
     "tags": {"man_made": "surveillance", "camera:direction": "N;S"}},
    {"type": "node", "id": 2, "lat": 47.2, "lon": 8.2,
     "tags": {"man_made": "surveillance", "camera:direction": "sideways"}},
]  # fmt: skip


@pytest.fixture
def overpass(tmp_path: Path) -> Path:
    path = tmp_path / "overpass.json"
    path.write_text(json.dumps({"elements": ELEMENTS}), encoding="utf-8")
    return path


def test_import_then_export_every_format(overpass: Path, tmp_path: Path) -> None:
    out = tmp_path / "cams.gpkg"
    res = runner.invoke(app, ["cameras", "import", str(overpass), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Wrote 3 of 3 cameras" in res.output
    assert "camera:direction cannot be read" in res.output
    gdf = read_cameras_file(out)
    for fmt, ext in (("geojson", ".geojson"), ("parquet", ".parquet"), ("csv", ".csv")):
        target = tmp_path / f"x{ext}"
        args = ["export", "cameras", "--cameras", str(out), "--format", fmt, "--out", str(target)]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert_geodataframe_equal(read_cameras_file(target), gdf)
    target = tmp_path / "x.osm"
    res = runner.invoke(
        app, ["export", "cameras", "--cameras", str(out), "--format", "osm", "--out", str(target)]
    )
    assert res.exit_code == 0, res.output
    assert target.read_text(encoding="utf-8").count("<node ") == 2


def test_osc_refusals_are_printed(overpass: Path, tmp_path: Path) -> None:
    target = tmp_path / "x.osc"
    res = runner.invoke(
        app,
        ["export", "cameras", "--cameras", str(overpass), "--format", "osc", "--out", str(target)],
    )
    assert res.exit_code == 0, res.output
    assert "Wrote 0 of 3 cameras" in res.output
    assert "already in OpenStreetMap" in res.output


def test_bad_format_and_missing_file(overpass: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["export", "cameras", "--cameras", str(overpass), "--format", "kml", "--out", "x"]
    )
    assert res.exit_code == 2 and "--format 'kml' is unknown" in res.output
    res = runner.invoke(app, ["cameras", "import", str(tmp_path / "no.json"), "--out", "x.csv"])
    assert res.exit_code == 2 and "no such file" in res.output


@pytest.mark.realdata
def test_import_real_sources_together(shared: Path, tmp_path: Path) -> None:
    swiss = shared / "api_fixtures" / "overpass" / "switzerland_surveillance_elements.json"
    pbf = shared / "osm_nyc" / "lower_manhattan_2024-05.osm.pbf"
    out = tmp_path / "all.parquet"
    res = runner.invoke(app, ["cameras", "import", str(swiss), str(pbf), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(read_cameras_file(out)) == 2_146 + 38  # SOURCES.md: 38 surveillance nodes


def test_import_never_writes_over_its_input(tmp_path: Path) -> None:
    src = tmp_path / "cams.geojson"
    gdf = gpd.GeoDataFrame(
        {c: [None] for c in CAMERA_COLUMNS}
        | {"camera_id": ["a"], "mount": ["street"], "source": ["osm"], "licence": ["ODbL"]},
        geometry=gpd.points_from_xy([-73.98], [40.75]),
        crs="EPSG:4326",
    )
    write_cameras(gdf, src)
    before = src.read_bytes()
    result = CliRunner().invoke(app, ["cameras", "import", str(src), "--out", str(src)])
    assert result.exit_code == 2 and "never overwrites its input" in result.output
    assert src.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cams.geojson"]  # no temporary file left


@pytest.mark.realdata
def test_merge_command_on_nyc_lists(shared: Path, tmp_path: Path) -> None:
    dot = shared / "nyc_dot_cameras" / "scanmap_2021" / "ny.json"
    osm = shared / "line_of_sight_nyc" / "cctv.json"
    link = shared / "linknyc" / "LinkNYC_Kiosk_Locations_20250426.csv"
    out = tmp_path / "merged.gpkg"
    args = ["cameras", "merge", str(dot), str(osm), str(link), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "merged.summary.csv")
    got = {(r.source_a, r.source_b): (r.matched, r.conflicts) for r in summary.itertuples()}
    assert got[("ny.json", "cctv.json")] == (18, 0)
    assert got[("cctv.json", "LinkNYC_Kiosk_Locations_20250426.csv")] == (10, 6)
    merged = read_cameras_file(out)
    # 723 DOT + 638 OSM + 2,218 kiosks, less one camera per matched pair.
    assert len(merged) == 723 + 638 + 2_218 - int(summary["matched"].sum())


@pytest.mark.realdata
def test_load_stores_an_inventory_in_the_database(shared: Path, tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from camcensus.db import connect, upgrade
    from camcensus.db.cameras import count_cameras

    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    upgrade(url)
    src = shared / "other_cities" / "baltimore" / "CCTV_Locations.csv"
    load = ["cameras", "load", str(src), "--database", url]
    result = CliRunner().invoke(app, load)
    assert result.exit_code == 0, result.output
    assert "Stored 614 cameras" in result.output
    again = CliRunner().invoke(app, load)
    assert again.exit_code == 2 and "Traceback" not in again.output
    replaced = CliRunner().invoke(app, [*load, "--replace", "sources"])
    assert "Stored 614 cameras (deleted first: 614" in replaced.output
    engine = connect(url)
    try:
        with Session(engine) as session:
            assert count_cameras(session) == 614
            assert count_cameras(session, source="city-list") == 614
    finally:
        engine.dispose()
