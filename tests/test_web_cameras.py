"""GET /api/cameras (GeoJSON, filters, pages, rate limit, error shape) and the dump with its
checksum and date: through TestClient on SQLite, and through the real server (uvicorn) on
PostGIS."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from camcensus.db import connect, upgrade
from camcensus.db.cameras import load_cameras
from camcensus.web import WebSettings, create_app
from conftest import serve_in_thread
from test_db_cameras import NOW, synthetic_cameras
from test_web_api import assert_error_shape, make_app

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork; the pinned httpx works the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def _load(engine: Engine, cams: gpd.GeoDataFrame) -> None:
    with Session(engine) as s, s.begin():
        load_cameras(s, cams, now=NOW)


@pytest.fixture
def cams(city: Any) -> gpd.GeoDataFrame:
    return synthetic_cameras(city)


@pytest.fixture
def app(tmp_path: Path, cams: gpd.GeoDataFrame) -> Iterator[FastAPI]:
    application = make_app(tmp_path, data_burst=10_000)
    _load(application.state.engine, cams)
    yield application
    application.state.engine.dispose()


def _ids(body: dict[str, Any]) -> list[str]:
    return [f["properties"]["camera_id"] for f in body["features"]]


def _all_pages(client: Any, url: str) -> list[str]:
    """Follow the Link: rel="next" headers; return every camera id in order."""
    ids: list[str] = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        ids += _ids(r.json())
        link = r.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else ""
    return ids


def test_filters_match_brute_force(app: FastAPI, cams: gpd.GeoDataFrame) -> None:
    client = TestClient(app)
    x, y = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    box = [float(np.quantile(x, 0.1)), float(np.quantile(y, 0.2)), float(np.quantile(x, 0.7)),
           float(np.quantile(y, 0.95))]  # fmt: skip
    in_box = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    bbox = ",".join(repr(v) for v in box)
    cases = {
        "": np.ones(len(cams), dtype=bool),
        f"bbox={bbox}": in_box,
        "source=osm": (cams["source"] == "osm").to_numpy(),
        "type=ALPR": (cams["surveillance_type"] == "ALPR").to_numpy(),
        f"bbox={bbox}&source=osm,city-list&type=camera&camera_type=dome": in_box
        & (cams["surveillance_type"] == "camera").to_numpy()
        & (cams["camera_type"] == "dome").to_numpy(),
    }
    for query, mask in cases.items():
        assert mask.sum() > 0, query
        got = _all_pages(client, f"/api/cameras?limit=250&{query}")
        assert got == sorted(cams.loc[mask, "camera_id"]), query


def test_geojson_features_carry_the_contract(app: FastAPI, cams: gpd.GeoDataFrame) -> None:
    client = TestClient(app)
    body = client.get("/api/cameras?limit=5000").json()
    assert body["type"] == "FeatureCollection"
    back = gpd.GeoDataFrame.from_features(body["features"], crs="EPSG:4326")
    want = cams.set_index("camera_id").loc[back["camera_id"]]
    np.testing.assert_array_equal(back.geometry.x.to_numpy(), want.geometry.x.to_numpy())
    np.testing.assert_array_equal(back.geometry.y.to_numpy(), want.geometry.y.to_numpy())
    assert back["licence"].eq("CC0").all()
    assert back["osm_tags"].tolist() == want["osm_tags"].tolist()
    np.testing.assert_array_equal(
        back["direction_deg"].to_numpy(dtype=float), want["direction_deg"].to_numpy(dtype=float)
    )


def test_paging_link_header(app: FastAPI, cams: gpd.GeoDataFrame) -> None:
    client = TestClient(app)
    r = client.get("/api/cameras?source=osm&limit=7&offset=14")
    assert r.status_code == 200
    assert _ids(r.json()) == sorted(cams.loc[cams["source"] == "osm", "camera_id"])[14:21]
    assert r.headers["link"] == '</api/cameras?source=osm&limit=7&offset=21>; rel="next"'
    last = client.get("/api/cameras?limit=5000")
    assert "link" not in last.headers


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=10,0,5,1", "bbox"),
        ("bbox=0,-100,1,1", "bbox"),
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("source=%3Cscript%3E", "source"),
        ("type=" + "x" * 65, "type"),
    ],
)
def test_bad_queries_answer_422_in_the_error_shape(app: FastAPI, query: str, field: str) -> None:
    body = assert_error_shape(TestClient(app).get(f"/api/cameras?{query}"), 422)
    assert any(field in e["field"] for e in body["errors"]), body


def test_reads_are_rate_limited(tmp_path: Path, cams: gpd.GeoDataFrame) -> None:
    app = make_app(tmp_path, data_burst=3, data_per_minute=0.5)
    try:
        _load(app.state.engine, cams.iloc[:10])
        client = TestClient(app)
        urls = ["/api/cameras", "/api/cameras/dump", "/api/cameras/dump/info"]
        assert [client.get(u).status_code for u in urls] == [200, 200, 200]
        r = client.get("/api/cameras")
        assert_error_shape(r, 429)
        assert int(r.headers["retry-after"]) >= 1
    finally:
        app.state.engine.dispose()


def _check_dump(body: bytes, headers: Any, n: int, info: dict[str, Any]) -> None:
    sha = hashlib.sha256(body).hexdigest()
    assert headers["x-checksum-sha256"] == sha == info["sha256"]
    assert headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha)).decode()}:"
    assert headers["etag"] == f'"{sha}"'
    assert parsedate_to_datetime(headers["last-modified"]) == NOW
    assert headers["content-type"].startswith("application/geo+json")
    assert 'filename="cameras-2026-12-01.geojson"' in headers["content-disposition"]
    data = json.loads(body)
    assert data["date"] == info["date"] == NOW.isoformat()
    assert len(data["features"]) == data["cameras"] == info["cameras"] == n
    assert info["bytes"] == len(body)


def test_dump_with_checksum_and_date(app: FastAPI, cams: gpd.GeoDataFrame) -> None:
    client = TestClient(app)
    r = client.get("/api/cameras/dump")
    assert r.status_code == 200
    info = client.get("/api/cameras/dump/info").json()
    _check_dump(r.content, r.headers, len(cams), info)
    ids = [f["properties"]["camera_id"] for f in json.loads(r.content)["features"]]
    assert ids == sorted(cams["camera_id"])
    # The same data gives the same bytes; new data a new dump.
    assert client.get("/api/cameras/dump").content == r.content
    extra = cams.iloc[:1].copy()
    extra["camera_id"] = "zz-new"
    _load(app.state.engine, extra)
    again = client.get("/api/cameras/dump")
    assert json.loads(again.content)["cameras"] == len(cams) + 1
    assert again.headers["x-checksum-sha256"] != r.headers["x-checksum-sha256"]
    # Dumps are files named by their checksum; the old one is gone.
    dumps = sorted(p.name for p in (app.state.media_root / "dumps").iterdir())
    assert dumps == [f"cameras-{again.headers['x-checksum-sha256']}.geojson"]


# --------------------------------------------------------------------------- real server, PostGIS


@pytest.fixture
def postgis_site(postgis_fresh_url: str, cams: gpd.GeoDataFrame, tmp_path: Path) -> Iterator[str]:
    engine = connect(postgis_fresh_url)
    upgrade(engine)
    _load(engine, cams)
    app = create_app(engine, media_root=tmp_path, settings=WebSettings(rate_limits=False))
    try:
        with serve_in_thread(app) as url:
            yield url
    finally:
        engine.dispose()


def _get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return int(r.status), r.headers, r.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.headers, err.read()


@pytest.mark.postgis
def test_real_server_on_postgis(postgis_site: str, cams: gpd.GeoDataFrame) -> None:
    x, y = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    box = [float(np.quantile(x, 0.3)), float(np.quantile(y, 0.3)), float(np.quantile(x, 0.8)),
           float(np.quantile(y, 0.6))]  # fmt: skip
    mask = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    mask &= (cams["source"] == "city-list").to_numpy()
    bbox = ",".join(repr(v) for v in box)
    status, _, body = _get(f"{postgis_site}/api/cameras?bbox={bbox}&source=city-list&limit=5000")
    assert status == 200
    assert _ids(json.loads(body)) == sorted(cams.loc[mask, "camera_id"])
    status, headers, dump = _get(f"{postgis_site}/api/cameras/dump")
    assert status == 200
    _, _, info = _get(f"{postgis_site}/api/cameras/dump/info")
    _check_dump(dump, {k.lower(): v for k, v in headers.items()}, len(cams), json.loads(info))
    status, _, err = _get(f"{postgis_site}/api/cameras?bbox=0,0,1")
    assert status == 422 and json.loads(err)["ok"] is False
