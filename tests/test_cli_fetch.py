"""``camcensus fetch ...`` against the loopback server of tests/test_fetch.py (no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from camcensus.cli import app
from test_fetch import (
    Loopback,
    Reply,
    _free_port,
    albany,
    baltimore_zip,
    census_route,
    overpass_answer,
)

runner = CliRunner()


@pytest.fixture
def server() -> Iterator[Loopback]:
    srv = Loopback()
    yield srv
    srv.close()


def test_every_fetch_command_has_help_with_an_example() -> None:
    for name in ("osm", "tracts", "acs", "sqf", "panoramax"):
        res = runner.invoke(app, ["fetch", name, "--help"])
        assert res.exit_code == 0, res.output
        assert f"camcensus fetch {name}" in res.output


@pytest.mark.realdata
def test_fetch_acs_prints_counts_and_uses_the_cache(
    shared: Path, server: Loopback, tmp_path: Path
) -> None:
    server.routes["/data/2022/acs/acs5"] = census_route(albany(shared))
    server.script["/data/2022/acs/acs5"] = [Reply(503, b"busy", {"Retry-After": "0"})]
    args = [
        "fetch", "acs", "--state", "NY", "--county", "001", "--year", "2022",
        "--variables", "B01003_001E,B19013_001E", "--out", str(tmp_path / "a.csv"),
        "--census-url", f"{server.url}/data", "--cache-dir", str(tmp_path / "cache"),
        "--backoff-s", "0",
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "85" in res.output and "2 (1 retries, 0 cache hits)" in res.output
    assert "HTTP 503: 1" in res.output and "public domain" in res.output
    out = pd.read_csv(tmp_path / "a.csv", dtype={"GEOID": str})
    assert len(out) == 85 and out["GEOID"].str.len().eq(11).all()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "0 (0 retries, 1 cache hits)" in res.output
    assert server.hits("/data/2022/acs/acs5") == 2


def test_fetch_offline_says_so(tmp_path: Path) -> None:
    port = _free_port()
    res = runner.invoke(
        app,
        [
            "fetch", "sqf", "--year", "2020", "--out", str(tmp_path),
            "--nypd-url", f"http://127.0.0.1:{port}", "--retries", "1", "--backoff-s", "0",
            "--cache-dir", str(tmp_path / "cache"),
        ],
    )  # fmt: skip
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "Offline:" in text and f"no connection to 127.0.0.1:{port} on any of 2 tries" in text
    assert "Traceback" not in res.output


def test_fetch_bad_options_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["fetch", "acs", "--state", "XX", "--year", "2020", "--variables", "B01003_001E",
              "--out", str(tmp_path / "x.csv")],
    )  # fmt: skip
    assert res.exit_code == 2 and "state='XX'" in " ".join(res.output.split())
    res = runner.invoke(app, ["fetch", "osm", "--bbox", "a,b,c,d", "--out", "x.json"])
    assert res.exit_code == 2


@pytest.mark.realdata
def test_fetch_osm_tracts_panoramax(shared: Path, server: Loopback, tmp_path: Path) -> None:
    body = overpass_answer(shared)
    server.routes["/api/interpreter"] = lambda req: Reply(200, body)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    res = runner.invoke(
        app,
        ["fetch", "osm", "--bbox", "5.9,45.8,10.5,47.9", "--out", str(tmp_path / "o.json"),
         "--overpass-url", f"{server.url}/api/interpreter", *cache],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.json").read_bytes() == body and "2,145" in res.output
    prov = json.loads((tmp_path / "o.json.fetch.json").read_text())
    assert prov["summary"]["nodes"] == 2144 and "ODbL" in prov["terms"]

    zipped = baltimore_zip(shared)
    server.routes["/t/GENZ2019/shp/cb_2019_24_tract_500k.zip"] = lambda req: Reply(200, zipped)
    res = runner.invoke(
        app,
        ["fetch", "tracts", "--state", "24", "--county", "510", "--year", "2019",
         "--out", str(tmp_path / "t.gpkg"), "--tiger-url", f"{server.url}/t", *cache],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "200" in res.output
    tracts = gpd.read_file(tmp_path / "t.gpkg", layer="tracts")
    assert len(tracts) == 200 and tracts.crs.to_epsg() == 4326

    page = json.loads((shared / "api_fixtures/panoramax/search_1picture.json").read_text())
    page["links"] = []
    server.routes["/api/search"] = lambda req: Reply(200, json.dumps(page).encode())
    res = runner.invoke(
        app,
        ["fetch", "panoramax", "--bbox", "2.18,48.98,2.19,48.99", "--out",
         str(tmp_path / "p.geojson"), "--panoramax-url", server.url, *cache],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "p.geojson").read_text())["features"]) == 1
