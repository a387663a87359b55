"""`camcensus exposure route|areas` on tiny files whose answers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from typer.testing import CliRunner

from camcensus.cli import app

runner = CliRunner()
UTM = "EPSG:32618"
X0, Y0 = 585_000.0, 4_511_000.0
TO_WGS = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def latlon(x: float, y: float) -> str:
    lon, lat = TO_WGS.transform(X0 + x, Y0 + y)
    return f"{lat:.8f},{lon:.8f}"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    # A straight 400 m street with a side street; one panorama with 2 pole and 1 building
    # cameras at x = 200 (3 m off the street), one with a building camera at x = 350.
    streets = gpd.GeoDataFrame(
        {"name": ["Main", "Side"]},
        geometry=[
            shapely.LineString([(X0, Y0), (X0 + 200, Y0), (X0 + 400, Y0)]),
            shapely.LineString([(X0 + 200, Y0), (X0 + 200, Y0 + 300)]),
        ],
        crs=UTM,
    ).to_crs("EPSG:4326")
    streets_path = tmp_path / "streets.geojson"
    streets.to_file(streets_path, driver="GeoJSON")
    lon1, lat1 = TO_WGS.transform(X0 + 200, Y0 - 3)
    lon2, lat2 = TO_WGS.transform(X0 + 350, Y0 - 3)
    counts = pd.DataFrame(
        {
            "Long": [lon1, lon2],
            "Lat": [lat1, lat2],
            "n_cameras_median": [3, 1],
            "attached_street_median": [2, 0],
            "attached_building_median": [1, 1],
        }
    )
    counts_path = tmp_path / "counts.csv"
    counts.to_csv(counts_path, index=False)
    areas = gpd.GeoDataFrame(
        {"zone": ["west", "east"]},
        geometry=[
            shapely.box(X0 - 10, Y0 - 10, X0 + 100, Y0 + 10),
            shapely.box(X0 + 100, Y0 - 10, X0 + 410, Y0 + 10),
        ],
        crs=UTM,
    )
    areas_path = tmp_path / "areas.gpkg"
    areas.to_file(areas_path, driver="GPKG")
    return {"streets": streets_path, "counts": counts_path, "areas": areas_path}


def _route(files: dict[str, Path], out: Path, *extra: str) -> object:
    return runner.invoke(
        app,
        [
            "exposure",
            "route",
            "--cameras",
            str(files["counts"]),
            "--streets",
            str(files["streets"]),
            "--radius-m",
            "50",
            "--from",
            latlon(0, 0),
            "--to",
            latlon(400, 0),
            "--out",
            str(out),
            *extra,
        ],
    )


def test_route_writes_figures_and_geojson(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "all"
    result = _route(files, out)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads((out / "route.json").read_text())
    assert data["length_m"] == pytest.approx(400.0, abs=0.01)
    # Discs of 50 m, 3 m off the street: each covers 2·sqrt(50² − 3²) of it, apart.
    half = (50**2 - 3**2) ** 0.5
    assert data["bands"]["any"]["covered_m"] == pytest.approx(4 * half, abs=0.05)
    assert data["n_cameras"] == 4
    assert data["model"] == "disc"
    assert data["parameters"]["radius_m"] == 50.0
    fc = json.loads((out / "route.geojson").read_text())
    assert fc["type"] == "FeatureCollection"
    assert any(f["properties"]["role"] == "shortest" for f in fc["features"])

    public = tmp_path / "public"
    result = _route(files, public, "--public-only", "--least-watched", "--max-detour", "0.5")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads((public / "route.json").read_text())
    assert data["n_cameras"] == 2
    assert data["bands"]["any"]["covered_m"] == pytest.approx(2 * half, abs=0.05)
    assert data["least_watched"]["length_m"] == pytest.approx(400.0, abs=0.01)


def test_route_refuses_bad_points(files: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "exposure",
            "route",
            "--cameras",
            str(files["counts"]),
            "--streets",
            str(files["streets"]),
            "--from",
            "-73.99,40.75",
            "--to",
            latlon(400, 0),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    # Longitude first: a valid latitude, but far outside the network; the message says so.
    assert result.exit_code == 2
    assert "outside the street network" in result.output and "LAT,LON" in result.output
    result = _route(files, tmp_path / "z", "--via", "95,-73.99")
    assert result.exit_code == 2
    assert "--via '95,-73.99' is not LAT,LON" in result.output
    result = _route(files, tmp_path / "y", "--max-detour", "-1")
    assert result.exit_code == 2
    assert "--max-detour" in result.output
    assert not (tmp_path / "y").exists()


def test_areas_writes_csv_and_geojson(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "areas"
    result = runner.invoke(
        app,
        [
            "exposure",
            "areas",
            "--cameras",
            str(files["counts"]),
            "--streets",
            str(files["streets"]),
            "--areas",
            str(files["areas"]),
            "--id-column",
            "zone",
            "--radius-m",
            "50",
            "--public-only",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "areas.csv")
    west = table.set_index("zone").loc["west"]
    east = table.set_index("zone").loc["east"]
    assert west["street_m"] == pytest.approx(100.0, abs=0.01)
    assert west["covered_m"] == 0.0
    # East box: 300 m of Main plus the first 10 m of Side (which starts at x = 200).
    half = (50**2 - 3**2) ** 0.5
    assert east["street_m"] == pytest.approx(310.0, abs=0.01)
    assert east["covered_m"] == pytest.approx(2 * half + 10.0, abs=0.05)
    geo = json.loads((out / "areas.geojson").read_text())
    props = {f["properties"]["zone"]: f["properties"] for f in geo["features"]}
    assert props["east"]["share_any"] == pytest.approx(east["share_covered"])


def test_serve_needs_both_exposure_files(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["serve", "--exposure-cameras", str(files["counts"])])
    assert result.exit_code == 2
    assert "--exposure-cameras and --exposure-streets go together" in result.output


def test_cameras_from_a_geopackage_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    from camcensus.exposure import read_cameras

    cams = read_cameras(files["counts"])
    assert len(cams) == 4
    assert sorted(cams["mount"]) == ["building", "building", "street", "street"]
    path = tmp_path / "cameras.gpkg"
    cams.to_file(path, driver="GPKG")
    again = read_cameras(path, public_only=True)
    assert sorted(again["camera_id"]) == sorted(cams.loc[cams["mount"] == "street", "camera_id"])
