"""Hostile inputs to the camera, exposure and audit commands and the exposure/camera routes.

Every refusal is exit status 2 with a message naming the file, row, column or option and the
fix (never a traceback), or a 4xx/503 in the web app's one error shape (never a 500); nothing
is written over an input and no partial output is left behind.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from camcensus.cli import app
from test_cli_exposure import files, latlon  # noqa: F401
from test_web_api import assert_error_shape
from test_web_exposure import _client, _q, engine, index  # noqa: F401

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

runner = CliRunner()

ELEMENTS = [
    {"type": "node", "id": 1, "lat": 47.1, "lon": 8.1,
     "tags": {"man_made": "surveillance", "surveillance:type": "camera"}},
]  # fmt: skip


def _refused(result: Any, *needles: str) -> str:
    """Assert exit status 2 without a traceback and every needle in the message."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture
def camera_csv(tmp_path: Path) -> Path:
    """A flat camera CSV written by camcensus (every column of the contract)."""
    overpass = tmp_path / "overpass.json"
    overpass.write_text(json.dumps({"elements": ELEMENTS}), encoding="utf-8")
    out = tmp_path / "cams.csv"
    res = runner.invoke(app, ["cameras", "import", str(overpass), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


# --- camera files -------------------------------------------------------------------------

_FEATURE = {"type": "Feature", "properties": {"camera_id": "x"}}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"type":"FeatureCollection","features":[{"type":"Feat', "invalid JSON"),
        ('[{"type": "Feature"}]', "JSON list"),
        ('{"type": "FeatureCollection", "features": [1]}', "row 1"),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [{**_FEATURE, "geometry": {"type": "Point"}}],
                }
            ),
            "row 1, column 'geometry'",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {**_FEATURE, "geometry": {"type": "Point", "coordinates": ["a", "b"]}}
                    ],
                }
            ),
            "row 1, column 'lon/lat'",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {**_FEATURE, "geometry": {"type": "Point", "coordinates": [8, 47]}}
                    ],
                }
            ),
            "missing columns",
        ),
    ],
)
def test_broken_geojson_camera_file(tmp_path: Path, text: str, needle: str) -> None:
    src = tmp_path / "cams.geojson"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "out.gpkg"
    res = runner.invoke(app, ["cameras", "import", str(src), "--out", str(out)])
    _refused(res, "cams.geojson", needle, "Fix:")
    assert not out.exists()


def test_flat_csv_without_lat_column(tmp_path: Path) -> None:
    src = tmp_path / "cams.csv"
    src.write_text("camera_id,lon\nx,8\n", encoding="utf-8")
    res = runner.invoke(
        app,
        [
            "cameras",
            "import",
            str(src),
            "--source-format",
            "csv",
            "--out",
            str(tmp_path / "o.gpkg"),
        ],
    )
    _refused(res, "cams.csv", "column 'lat'", "Fix:")


@pytest.mark.parametrize(
    ("lon", "lat", "needle"),
    [("35.68", "139.76", "swapped"), ("1e308", "47", "[-180, 180]")],
)
def test_flat_csv_coordinates_out_of_range(
    camera_csv: Path, tmp_path: Path, lon: str, lat: str, needle: str
) -> None:
    lines = camera_csv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("lon")], row[header.index("lat")] = lon, lat
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], ",".join(row)]) + "\n", encoding="utf-8")
    out = tmp_path / "o.geojson"
    res = runner.invoke(app, ["cameras", "import", str(bad), "--out", str(out)])
    _refused(res, "bad.csv", "row 1", "column 'lon/lat'", needle)
    assert not out.exists()


def test_folder_named_like_a_camera_file(tmp_path: Path) -> None:
    folder = tmp_path / "cams.json"
    folder.mkdir()
    res = runner.invoke(app, ["cameras", "import", str(folder), "--out", str(tmp_path / "o.gpkg")])
    _refused(res, "cams.json", "a folder")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    src = tmp_path / "cams.parquet"
    src.write_text("not parquet", encoding="utf-8")
    res = runner.invoke(app, ["cameras", "import", str(src), "--out", str(tmp_path / "o.gpkg")])
    _refused(res, "cams.parquet", "GeoParquet", "Fix:")


def test_out_is_a_folder_with_a_camera_extension(camera_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out.json"
    folder.mkdir()
    res = runner.invoke(app, ["cameras", "import", str(camera_csv), "--out", str(folder)])
    _refused(res, "is a folder", "--out")


def test_export_format_and_extension_disagree(camera_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "review.osm"
    res = runner.invoke(
        app,
        ["export", "cameras", "--cameras", str(camera_csv), "--format", "csv", "--out", str(out)],
    )
    _refused(res, "--format csv", "review.csv")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--distance-m", "-5"), ("--distance-m", "0"), ("--distance-m", "nan"),
     ("--direction-tolerance-deg", "-1")],
)  # fmt: skip
def test_merge_options_are_named(camera_csv: Path, tmp_path: Path, option: str, value: str) -> None:
    res = runner.invoke(
        app,
        ["cameras", "merge", str(camera_csv), str(camera_csv), option, value,
         "--out", str(tmp_path / "m.gpkg")],
    )  # fmt: skip
    _refused(res, option, "Fix:")


# --- exposure -----------------------------------------------------------------------------


def _route(files: dict[str, Path], out: Path, cameras: Path | None = None) -> Any:  # noqa: F811
    return runner.invoke(
        app,
        ["exposure", "route", "--cameras", str(cameras or files["counts"]),
         "--streets", str(files["streets"]), "--from", latlon(0, 0), "--to", latlon(400, 0),
         "--out", str(out)],
    )  # fmt: skip


def test_route_out_is_an_input_file(files: dict[str, Path]) -> None:  # noqa: F811
    before = files["counts"].read_bytes()
    _refused(_route(files, files["counts"]), "--out", "is a file", "Fix:")
    assert files["counts"].read_bytes() == before


def test_route_leaves_no_partial_output(files: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    (out / "route.geojson").mkdir(parents=True)
    _refused(_route(files, out), "route.geojson", "is a folder")
    assert sorted(p.name for p in out.iterdir()) == ["route.geojson"]


def test_route_cameras_folder(files: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "cams.gpkg"
    folder.mkdir()
    _refused(_route(files, tmp_path / "out", cameras=folder), "cams.gpkg", "a folder")


def test_route_cameras_file_without_the_contract(files: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "points.geojson"
    src.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"id": 1},
                 "geometry": {"type": "Point", "coordinates": [-73.99, 40.746]}}]}
        ),
        encoding="utf-8",
    )  # fmt: skip
    _refused(_route(files, tmp_path / "out", cameras=src), "points.geojson", "camera_id", "Fix:")


def test_areas_that_are_points(files: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "points.geojson"
    src.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"zone": "a"},
                 "geometry": {"type": "Point", "coordinates": [-73.99, 40.746]}}]}
        ),
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["exposure", "areas", "--cameras", str(files["counts"]), "--streets",
         str(files["streets"]), "--areas", str(src), "--id-column", "zone", "--out", str(out)],
    )  # fmt: skip
    _refused(res, "points.geojson", "not polygons", "Fix:")
    assert not (out / "areas.csv").exists()


def test_areas_out_is_an_input_file(files: dict[str, Path]) -> None:  # noqa: F811
    before = files["areas"].read_bytes()
    res = runner.invoke(
        app,
        ["exposure", "areas", "--cameras", str(files["counts"]), "--streets",
         str(files["streets"]), "--areas", str(files["areas"]), "--id-column", "zone",
         "--out", str(files["areas"])],
    )  # fmt: skip
    _refused(res, "--out", "is a file")
    assert files["areas"].read_bytes() == before


# --- audit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--threshold", "nan"), ("--threshold", "-1"), ("--threshold", "inf"),
     ("--permutations", "-5")],
)  # fmt: skip
def test_audit_options_are_checked_first(tmp_path: Path, option: str, value: str) -> None:
    missing = tmp_path / "missing"
    res = runner.invoke(
        app,
        ["audit", "--cameras", str(missing / "c.csv"), "--tracts", str(missing / "t.gpkg"),
         "--acs", str(missing / "a.csv"), "--out", str(tmp_path / "out"), option, value],
    )  # fmt: skip
    _refused(res, option, "Fix:")


# --- web ----------------------------------------------------------------------------------


def test_route_point_with_underscores(engine: Engine, index: Any, tmp_path: Path) -> None:  # noqa: F811
    client = _client(engine, index, tmp_path)
    lat, lon = _q(0, 0).split(",")
    hostile = f"{lat[:4]}_{lat[4:]},{lon}"
    r = client.get("/api/exposure/route", params={"from": hostile, "to": _q(4, 0)})
    body = assert_error_shape(r, 422)
    assert body["errors"][0]["field"] == "from"
    assert "two numbers" in body["errors"][0]["message"]


def test_dump_when_media_root_is_not_a_folder(engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    from camcensus.web import WebSettings, create_app

    media = tmp_path / "media"
    media.write_text("a file, not a folder", encoding="utf-8")
    app_ = create_app(engine, media_root=media, settings=WebSettings(rate_limits=False))
    client = TestClient(app_, raise_server_exceptions=False)
    for url in ("/api/cameras/dump", "/api/cameras/dump/info"):
        body = assert_error_shape(client.get(url), 503)
        assert "/api/cameras" in body["errors"][0]["message"]


def test_json_array_that_is_no_known_list(tmp_path: Path) -> None:
    src = tmp_path / "cams.json"
    src.write_text("[1, 2, 3]", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    res = runner.invoke(app, ["cameras", "import", str(src), "--out", str(out)])
    _refused(res, "cams.json", "cannot be told", "--source-format")
    assert not out.exists()


def test_locate_options_out_of_range_are_messages(tmp_path: Path) -> None:
    for option in (["--cluster-deg", "-1"], ["--min-support", "0"]):
        result = CliRunner().invoke(app, ["locate", *option, "--out", str(tmp_path / "o")])
        _refused(result, option[0])
    assert not (tmp_path / "o").exists()


def test_a_json_array_of_non_osm_records_is_not_overpass(tmp_path: Path) -> None:
    src = tmp_path / "list.json"
    src.write_text(json.dumps([{"id": 1, "latitude": 40.7, "longitude": -73.9}]))
    args = ["cameras", "import", str(src), "--source-format", "overpass"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o.gpkg")])
    _refused(result, "not OSM nodes, ways or relations", "--source-format")
    assert not (tmp_path / "o.gpkg").exists()


def test_a_route_point_far_from_every_street_is_refused() -> None:
    from camcensus._errors import OptionError
    from camcensus.coverage import footprints
    from camcensus.exposure import ExposureIndex, network_from_lines
    from test_exposure import cameras_gdf, lines_gdf, ll

    # A long street, and a short one 600 m away that is not joined to it.
    net = network_from_lines(lines_gdf([[(0, 0), (2000, 0)], [(0, 600), (50, 600)]]))
    cams = cameras_gdf([(100, 5)])
    idx = ExposureIndex(net, footprints(cams, radius_m=20), cams)
    assert idx.route(ll(10, 200), ll(1500, 0)).snapped["origin"]["distance_m"] == pytest.approx(
        200.0, abs=0.5
    )
    with pytest.raises(OptionError, match="600 m from the nearest street"):
        idx.route(ll(25, 600), ll(1500, 0))  # on the small street, 600 m from the main one
