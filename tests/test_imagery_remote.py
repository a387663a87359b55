"""Mapillary and Google Street View sources against local HTTP servers answering in each
service's real response format (never the real network); keys and tokens never leak."""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from camcensus._errors import Ledger
from camcensus.imagery import PANORAMA_COLUMNS, ImageStore, SourceError
from camcensus.imagery.gsv import GSV_LICENCE, VIEWS, gsv_fetcher, panoramas_from_gsv
from camcensus.imagery.mapillary import MAPILLARY_LICENCE, panoramas_from_mapillary

TOKEN = "MLY|4242|sekrit-token-value"
KEY = "AIzaSy-very-secret-key"
Answer = tuple[int, dict[str, str], bytes]
App = Callable[[str, dict[str, list[str]], dict[str, str]], Answer]


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 (random port) whose answers a test chooses."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers))
                status, extra, body = outer.app(parts.path, parse_qs(parts.query), headers)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _json(doc: object, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()


# ---------------------------------------------------------------------------------- Mapillary
class Mapillary:
    """Graph API ``/images`` (paged with ``paging.next``) and the images' CDN URLs."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.images: dict[str, bytes] = {}
        self.status: int | None = None
        self.url = ""

    def add(self, image_id: str, lon: float, lat: float, **fields: Any) -> None:
        record = {
            "id": image_id,
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "computed_geometry": {"type": "Point", "coordinates": [lon + 1e-6, lat]},
            "captured_at": 1_650_000_000_000,  # 2022-04-15 UTC, epoch milliseconds
            "compass_angle": 10.0,
            "computed_compass_angle": 12.5,
            "is_pano": True,
            "camera_type": "spherical",
            "thumb_original_url": f"{self.url}/cdn/{image_id}.jpg?stp=dst-jpg&oh=00_signed",
            "width": 64,
            "height": 32,
        }
        record.update(fields)
        self.records.append(record)
        shade = (len(self.records) * 37) % 256
        self.images[image_id] = _jpeg(np.full((32, 64, 3), shade, dtype=np.uint8))

    def __call__(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        if path == "/images":
            if headers.get("authorization") != f"OAuth {TOKEN}":
                return _json({"error": {"message": "Invalid OAuth access token", "code": 190}}, 401)
            if self.status:
                return _json({"error": {"message": "boom"}}, self.status)
            after = int(query.get("after", ["0"])[0])
            limit = int(query["limit"][0]) if "limit" in query else 2
            chunk = self.records[after : after + limit]
            doc: dict[str, Any] = {"data": chunk}
            if after + limit < len(self.records):
                # Graph API next links repeat the token in the URL; it must be dropped.
                doc["paging"] = {
                    "cursors": {"after": str(after + limit)},
                    "next": f"{self.url}/images?access_token={TOKEN}&limit={limit}"
                    f"&after={after + limit}",
                }
            return _json(doc)
        if path.startswith("/cdn/"):
            image_id = path.split("/")[-1].removesuffix(".jpg")
            return 200, {"Content-Type": "image/jpeg"}, self.images[image_id]
        return _json({"error": "not found"}, 404)


@pytest.fixture
def mapillary() -> Iterator[tuple[Mapillary, FakeServer]]:
    app = Mapillary()
    with FakeServer(app) as server:
        app.url = server.url
        yield app, server


def test_mapillary_import(mapillary: tuple[Mapillary, FakeServer], tmp_path: Path) -> None:
    app, server = mapillary
    app.add("1001", 2.18, 48.98)
    app.add("1002", 2.181, 48.98, is_pano=False)
    app.add("1003", 2.182, 48.98, camera_type="perspective")
    app.add("1004", 2.183, 48.98)
    app.images["1004"] = _jpeg(np.zeros((30, 90, 3), dtype=np.uint8))
    app.add("1005", 2.184, 48.98, computed_compass_angle=None, compass_angle=370.0)
    ledger = Ledger()
    store = ImageStore(tmp_path)
    df = panoramas_from_mapillary(
        TOKEN, store=store, bbox=[2.17, 48.97, 2.19, 48.99], api_url=server.url,
        page_size=2, backoff_s=0.01, ledger=ledger,
    )  # fmt: skip
    assert list(df.columns) == list(PANORAMA_COLUMNS)
    assert list(df["source_ref"]) == ["1001", "1005"]
    first = df.iloc[0]
    assert first["lon"] == pytest.approx(2.18 + 1e-6)  # computed_geometry wins
    assert first["heading_deg"] == 12.5  # computed_compass_angle wins
    assert first["captured"] == "2022-04-15"
    assert first["licence"] == MAPILLARY_LICENCE and bool(first["republishable"])
    assert df.iloc[1]["heading_deg"] == pytest.approx(10.0)  # 370 mod 360
    assert store.path(first["image_uri"]).read_bytes() == app.images["1001"]
    assert {e.reason: e.count for e in ledger.exclusions} == {
        "image is not a 2:1 equirectangular JPEG or PNG": 1,
        "not a panorama (is_pano false)": 1,
        "not equirectangular (camera_type perspective)": 1,
    }
    pages = [(p, h) for p, h in server.requests if p.startswith("/images")]
    assert len(pages) == 3
    for path, headers in pages:
        assert TOKEN not in path and "access_token" not in path
        assert headers["authorization"] == f"OAuth {TOKEN}"


def test_mapillary_bad_token_never_shown(
    mapillary: tuple[Mapillary, FakeServer], tmp_path: Path
) -> None:
    _, server = mapillary
    with pytest.raises(SourceError) as err:
        panoramas_from_mapillary(
            "MLY|wrong-token", store=ImageStore(tmp_path), bbox=[2.17, 48.97, 2.19, 48.99],
            api_url=server.url, backoff_s=0.01,
        )  # fmt: skip
    assert "HTTP 401" in str(err.value) and "wrong-token" not in str(err.value)


def test_mapillary_persistent_500(mapillary: tuple[Mapillary, FakeServer], tmp_path: Path) -> None:
    app, server = mapillary
    app.status = 500
    with pytest.raises(SourceError) as err:
        panoramas_from_mapillary(
            TOKEN, store=ImageStore(tmp_path), bbox=[2.17, 48.97, 2.19, 48.99],
            api_url=server.url, retries=2, backoff_s=0.01,
        )  # fmt: skip
    assert "HTTP 500 on each of 3 tries" in str(err.value)
    assert "sekrit" not in str(err.value)


# ---------------------------------------------------------------------------------- Street View
def _source_pano(width: int = 256) -> np.ndarray:
    """A smooth, everywhere-different equirectangular test image (hue by heading, value by
    pitch), so a wrong heading or pitch convention shows as a large error."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(width // 2) + 0.5) / (width // 2)
    r = 127.5 + 127.5 * np.cos(2 * np.pi * u)[None, :] * np.ones_like(v)[:, None]
    g = 127.5 + 127.5 * np.sin(2 * np.pi * u)[None, :] * np.ones_like(v)[:, None]
    b = 255 * v[:, None] * np.ones_like(u)[None, :]
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def _render_view(
    pano: np.ndarray, heading: float, pitch: float, fov: float, size: int
) -> np.ndarray:
    """What Street View serves: a pinhole view (heading clockwise from north, pitch up)."""
    height, width = pano.shape[:2]
    f = (size / 2) / math.tan(math.radians(fov) / 2)
    c = np.arange(size) + 0.5 - size / 2
    x, y = np.meshgrid(c / f, -c / f)
    h, p = math.radians(heading), math.radians(pitch)
    fwd = np.array([math.cos(p) * math.sin(h), math.cos(p) * math.cos(h), math.sin(p)])
    right = np.array([math.cos(h), -math.sin(h), 0.0])
    up = np.cross(right, fwd)
    d = fwd + x[..., None] * right + y[..., None] * up
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    yaw = np.degrees(np.arctan2(d[..., 0], d[..., 1]))  # the source's centre looks north
    elev = np.degrees(np.arcsin(np.clip(d[..., 2], -1, 1)))
    col = np.floor((yaw + 180) / 360 * width).astype(int) % width
    row = np.clip(np.floor((90 - elev) / 180 * height).astype(int), 0, height - 1)
    return pano[row, col]


class StreetView:
    """``/maps/api/streetview/metadata`` and ``/maps/api/streetview`` (views of one pano)."""

    def __init__(self) -> None:
        self.panos: dict[str, tuple[float, float]] = {}  # pano_id -> (lat, lng)
        self.source = _source_pano()
        self.denied = False

    def __call__(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        if query.get("key") != [KEY] or self.denied:
            return _json(
                {
                    "error_message": "The provided API key is invalid.",
                    "status": "REQUEST_DENIED",
                }
            )
        if path == "/maps/api/streetview/metadata":
            lat, lng = (float(v) for v in query["location"][0].split(","))
            radius = float(query["radius"][0])
            assert query["source"] == ["outdoor"]
            best = None
            for pid, (plat, plng) in self.panos.items():
                d = 111_195 * math.hypot(plat - lat, (plng - lng) * math.cos(math.radians(lat)))
                if d <= radius and (best is None or d < best[0]):
                    best = (d, pid, plat, plng)
            if best is None:
                return _json({"status": "ZERO_RESULTS"})
            return _json(
                {
                    "copyright": "© Google",
                    "date": "2019-05",
                    "location": {"lat": best[2], "lng": best[3]},
                    "pano_id": best[1],
                    "status": "OK",
                }
            )
        if path == "/maps/api/streetview":
            if query["pano"][0] not in self.panos:
                return 404, {}, b""  # return_error_code=true
            size = int(query["size"][0].split("x")[0])
            view = _render_view(
                self.source,
                float(query["heading"][0]),
                float(query["pitch"][0]),
                float(query["fov"][0]),
                size,
            )
            return 200, {"Content-Type": "image/jpeg"}, _jpeg(view, quality=95)
        return 404, {}, b""


@pytest.fixture
def streetview() -> Iterator[tuple[StreetView, FakeServer]]:
    app = StreetView()
    with FakeServer(app) as server:
        yield app, server


def test_gsv_metadata_import(streetview: tuple[StreetView, FakeServer]) -> None:
    app, server = streetview
    app.panos = {"PANO_A": (40.7300, -73.9900), "PANO_B": (40.7400, -73.9800)}
    points = pd.DataFrame(
        {
            "intersection_id": ["i1", "i2", "i3", "i4"],
            "lon": [-73.99001, -73.99002, -73.98, -73.97],
            "lat": [40.7300, 40.7300, 40.74005, 40.75],
        }
    )
    ledger = Ledger()
    df = panoramas_from_gsv(
        KEY, points=points, api_url=server.url, backoff_s=0.01, ledger=ledger, width=512
    )
    assert list(df["source_ref"]) == ["PANO_A", "PANO_B"]
    assert list(df["image_uri"]) == ["gsv:PANO_A", "gsv:PANO_B"]
    assert list(df["intersection_id"]) == ["i1", "i3"]
    assert (~df["republishable"]).all() and (df["licence"] == GSV_LICENCE).all()
    assert (df["heading_deg"] == 0).all() and (df["captured"] == "2019-05").all()
    assert (df["width_px"] == 512).all() and (df["height_px"] == 256).all()
    assert {e.reason: e.count for e in ledger.exclusions} == {
        "no outdoor panorama within 25 m": 1,
        "panorama already found for another point": 1,
    }


def test_gsv_denied_key_never_shown(streetview: tuple[StreetView, FakeServer]) -> None:
    app, server = streetview
    app.denied = True
    points = pd.DataFrame({"lon": [-73.99], "lat": [40.73]})
    with pytest.raises(SourceError) as err:
        panoramas_from_gsv(KEY, points=points, api_url=server.url, backoff_s=0.01)
    text = str(err.value)
    assert "REQUEST_DENIED" in text and "key=***" in text
    assert KEY not in text


def test_gsv_fetcher_pins_an_equirectangular_image_once(
    streetview: tuple[StreetView, FakeServer], tmp_path: Path
) -> None:
    app, server = streetview
    app.panos = {"PANO_A": (40.73, -73.99)}
    fetch = gsv_fetcher(KEY, api_url=server.url, width=256, view_px=96, backoff_s=0.01)
    store = ImageStore(tmp_path, fetchers={"gsv": fetch})
    data = store.image_bytes("gsv:PANO_A")
    assert store.image_bytes("gsv:PANO_A") == data
    views = [p for p, _ in server.requests if urlsplit(p).path == "/maps/api/streetview"]
    assert len(views) == len(VIEWS) == 20  # fetched once, 20 views
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (256, 128)
        got = np.asarray(im.convert("RGB")).astype(float)
    # The composed panorama is the source again (north at the centre column): a heading or
    # pitch convention error would give errors of ~100 grey levels.
    err = np.abs(got - app.source.astype(float))
    assert np.median(err) < 6.0
    assert err.mean() < 10.0
    with pytest.raises(SourceError) as failed:
        store.image_bytes("gsv:UNKNOWN")
    assert "HTTP 404" in str(failed.value) and KEY not in str(failed.value)
