"""The Panoramax importer against a real HTTP server on loopback that answers as the STAC API.

The server's items are built from a real ``/api/search`` answer (``api_fixtures/panoramax``)
with ids, positions, orientations and asset URLs changed; it pages with ``rel: next`` links,
and can fail on purpose (500s, 429, sleeping past the client's timeout, malformed JSON).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from PIL import Image

from camcensus._errors import InputError, Ledger, OptionError
from camcensus.imagery import (
    PANORAMA_COLUMNS,
    ImageStore,
    SourceError,
    import_project_source,
    panoramas_from_panoramax,
)
from camcensus.imagery.panoramax import _exclusion

App = Callable[[str, dict[str, list[str]]], tuple[int, dict[str, str], bytes]]
FIXTURE = Path("api_fixtures/panoramax/search_1picture.json")


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 (random port) whose answers a test chooses."""

    def __init__(
        self, app: Callable[[str, dict[str, list[str]]], tuple[int, dict[str, str], bytes]]
    ):
        self.app = app
        self.requests: list[str] = []
        self.delay_s: dict[str, float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                outer.requests.append(self.path)
                delay = outer.delay_s.get(parts.path, 0.0)
                if delay:
                    time.sleep(delay)
                status, headers, body = outer.app(parts.path, parse_qs(parts.query))
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

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


class Panoramax:
    """The API's answers: ``/api/search`` (bbox, limit, page), pictures, collections."""

    def __init__(self, template: dict[str, Any]):
        self.template = template
        self.items: list[dict[str, Any]] = []
        self.images: dict[str, bytes] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self.fail: dict[str, list[int]] = {}  # path -> statuses to answer first, in order
        self.raw: dict[str, bytes] = {}  # path -> body answered as is
        self.next_host: str | None = None
        self.server: FakeServer | None = None

    def add(
        self,
        item_id: str,
        lon: float,
        lat: float,
        *,
        fov: float | None = 360,
        azimuth: float | None = 90.0,
        size: tuple[int, int] = (64, 32),
        licence: str | None = "CC-BY-SA-4.0",
        collection: str = "seq-1",
    ) -> None:
        assert self.server is not None
        item = copy.deepcopy(self.template)
        item["id"] = item_id
        item["geometry"]["coordinates"] = [lon, lat]
        item["bbox"] = [lon, lat, lon, lat]
        item["collection"] = collection
        props = item["properties"]
        props["datetime"] = "2024-06-01T10:00:00+00:00"
        if azimuth is None:
            props.pop("view:azimuth")
        else:
            props["view:azimuth"] = azimuth
        if fov is None:
            props["pers:interior_orientation"].pop("field_of_view")
        else:
            props["pers:interior_orientation"]["field_of_view"] = fov
        if licence is None:
            props["license"] = "proprietary"
        else:
            props["license"] = licence
        base = f"{self.server.url}/api/pictures/{item_id}"
        for key, asset in item["assets"].items():
            asset["href"] = (
                f"{base}/{key.replace('_webp', '')}.{'webp' if 'webp' in key else 'jpg'}"
            )
        item["links"] = [ln for ln in item["links"] if ln["rel"] not in ("next", "prev")]
        self.items.append(item)
        shade = int(hashlib.sha256(item_id.encode()).hexdigest()[:2], 16)
        self.images[item_id] = jpeg(size[0], size[1], (shade, 255 - shade, 128))

    def __call__(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if self.fail.get(path):
            status = self.fail[path].pop(0)
            headers = {"Retry-After": "0"} if status == 429 else {}
            return status, headers, b'{"message": "boom"}'
        if path in self.raw:
            return 200, {"Content-Type": "application/json"}, self.raw[path]
        if path == "/api/search":
            w, s, e, n = (float(v) for v in query["bbox"][0].split(","))
            limit = int(query.get("limit", ["10"])[0])
            page = int(query.get("page", ["0"])[0])
            inside = [
                it
                for it in self.items
                if w <= it["geometry"]["coordinates"][0] <= e
                and s <= it["geometry"]["coordinates"][1] <= n
            ]
            chunk = inside[page * limit : (page + 1) * limit]
            links: list[dict[str, Any]] = [{"rel": "root", "href": f"{self.host()}/api"}]
            if (page + 1) * limit < len(inside):
                links.append(
                    {
                        "rel": "next",
                        "type": "application/geo+json",
                        "href": f"{self.next_host or self.host()}/api/search?"
                        f"bbox={query['bbox'][0]}&limit={limit}&page={page + 1}",
                    }
                )
            doc = {"type": "FeatureCollection", "features": chunk, "links": links}
            return 200, {"Content-Type": "application/geo+json"}, json.dumps(doc).encode()
        if path.startswith("/api/pictures/"):
            item_id = path.split("/")[3]
            if item_id in self.images and path.endswith("/hd.jpg"):
                return 200, {"Content-Type": "image/jpeg"}, self.images[item_id]
            return 404, {}, b"{}"
        if path.startswith("/api/collections/"):
            cid = path.split("/")[3]
            if cid in self.collections:
                return (
                    200,
                    {"Content-Type": "application/json"},
                    json.dumps(self.collections[cid]).encode(),
                )
        return 404, {"Content-Type": "application/json"}, b'{"message": "not found"}'

    def host(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def requests(self) -> list[str]:
        assert self.server is not None
        return self.server.requests


@pytest.fixture(scope="module")
def template(shared: Path) -> dict[str, Any]:
    doc = json.loads((shared / FIXTURE).read_text())
    return dict(doc["features"][0])


@pytest.fixture
def api(template: dict[str, Any]) -> Iterator[Panoramax]:
    app = Panoramax(template)
    with FakeServer(app) as server:
        app.server = server
        yield app


def _import(api: Panoramax, store: ImageStore, **kw: Any) -> tuple[pd.DataFrame, Ledger]:
    ledger = Ledger()
    kw.setdefault("bbox", [2.0, 48.0, 3.0, 49.0])
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    df = panoramas_from_panoramax(api.host(), store=store, ledger=ledger, **kw)
    return df, ledger


def _reasons(ledger: Ledger) -> dict[str, int]:
    return {e.reason: e.count for e in ledger.exclusions}


@pytest.mark.realdata
def test_real_search_answer_parses(template: dict[str, Any]) -> None:
    picture, why = _exclusion(template)
    assert why == ""
    assert picture is not None
    assert picture.item_id == "0005086d-65eb-4a90-9764-86b3661aaa77"
    assert (picture.lon, picture.lat) == (2.1822941, 48.9810589)
    assert picture.heading_deg == 0.0
    assert picture.captured == "2022-05-03"
    assert picture.href.endswith("/0005086d-65eb-4a90-9764-86b3661aaa77/hd.jpg")
    # "proprietary" and no licence link: the collection's licence is looked up later.
    assert picture.licence is None
    assert picture.collection == "bb129602-5ac1-4512-bf67-9ec1fa23033f"


def test_bbox_paging_keeps_only_360(api: Panoramax, tmp_path: Path) -> None:
    for i in range(5):
        api.add(f"p{i}", 2.18 + i * 1e-4, 48.98, azimuth=30.0 * i)
    api.add("flat", 2.1801, 48.9801, fov=70)
    api.add("nofov", 2.1802, 48.9802, fov=None)
    api.add("noaz", 2.1803, 48.9803, azimuth=None)
    api.add("outside", 5.0, 45.0)
    store = ImageStore(tmp_path / "media")
    df, ledger = _import(api, store, page_size=3)
    assert list(df.columns) == list(PANORAMA_COLUMNS)
    assert sorted(df["source_ref"]) == [f"p{i}" for i in range(5)]
    searches = [r for r in api.requests if r.startswith("/api/search")]
    assert len(searches) == 3  # 8 items in the box, 3 per page
    assert _reasons(ledger) == {
        "not a 360° picture (a flat or partial picture)": 1,
        "not a 360° picture (field of view unknown)": 1,
        "no heading (view:azimuth)": 1,
    }
    row = df.set_index("source_ref").loc["p3"]
    assert row["heading_deg"] == 90.0
    assert row["captured"] == "2024-06-01"
    assert row["licence"] == "CC-BY-SA-4.0"
    assert (row["width_px"], row["height_px"]) == (64, 32)
    assert row["source"] == "panoramax" and bool(row["republishable"])
    # The pinned image is exactly the served one, content-addressed.
    pinned = store.path(str(row["image_uri"])).read_bytes()
    assert pinned == api.images["p3"]
    assert hashlib.sha256(pinned).hexdigest() in str(row["image_uri"])
    assert df["panorama_id"].is_unique and df["panorama_id"].str.len().min() >= 12


def test_500_then_success_is_retried(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98)
    api.fail["/api/search"] = [500, 503]
    api.fail["/api/pictures/a/hd.jpg"] = [502]
    df, _ = _import(api, ImageStore(tmp_path), retries=3)
    assert list(df["source_ref"]) == ["a"]
    assert sum(r.startswith("/api/search") for r in api.requests) == 3
    assert sum(r.startswith("/api/pictures/a/hd.jpg") for r in api.requests) == 2


def test_429_with_retry_after_is_retried(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98)
    api.fail["/api/search"] = [429]
    df, _ = _import(api, ImageStore(tmp_path), retries=1)
    assert len(df) == 1


def test_persistent_500_raises_a_clear_error(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98)
    api.fail["/api/search"] = [500] * 10
    with pytest.raises(SourceError) as err:
        _import(api, ImageStore(tmp_path), retries=2)
    text = str(err.value)
    assert "HTTP 500 on each of 3 tries" in text
    assert f"{api.host()}/api/search" in text
    assert "Fix:" in text
    assert sum(r.startswith("/api/search") for r in api.requests) == 3


def test_timeout_raises_after_retries(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98)
    assert api.server is not None
    api.server.delay_s["/api/search"] = 1.0
    with pytest.raises(SourceError) as err:
        _import(api, ImageStore(tmp_path), retries=1, timeout_s=0.2)
    assert "no answer within the timeout (0.2 s) on each of 2 tries" in str(err.value)
    assert sum(r.startswith("/api/search") for r in api.requests) == 2


def test_malformed_json_raises(api: Panoramax, tmp_path: Path) -> None:
    api.raw["/api/search"] = b'{"type": "FeatureCollection", "features": [ {"id": '
    with pytest.raises(SourceError, match="not JSON"):
        _import(api, ImageStore(tmp_path))


def test_json_that_is_not_a_feature_collection_raises(api: Panoramax, tmp_path: Path) -> None:
    api.raw["/api/search"] = b'{"message": "Welcome to nginx"}'
    with pytest.raises(SourceError, match="not a FeatureCollection"):
        _import(api, ImageStore(tmp_path))


def test_4xx_is_not_retried(api: Panoramax, tmp_path: Path) -> None:
    api.fail["/api/search"] = [400]
    with pytest.raises(SourceError, match="HTTP 400"):
        _import(api, ImageStore(tmp_path), retries=3)
    assert len(api.requests) == 1


def test_bad_images_are_counted(api: Panoramax, tmp_path: Path) -> None:
    api.add("ok", 2.18, 48.98)
    api.add("wide", 2.1801, 48.98, size=(90, 30))
    api.add("gone", 2.1802, 48.98)
    api.images["gone"] = b""  # answered 200 with no image
    api.fail["/api/pictures/ok/hd.jpg"] = []
    api.add("broken", 2.1803, 48.98)
    api.fail["/api/pictures/broken/hd.jpg"] = [500] * 5
    df, ledger = _import(api, ImageStore(tmp_path), retries=1)
    assert list(df["source_ref"]) == ["ok"]
    assert _reasons(ledger) == {
        "image is not 2:1 equirectangular": 1,
        "image asset is not a readable image": 1,
        "image could not be downloaded": 1,
    }


def test_collection_licence_fallback(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98, licence=None, collection="c1")
    api.add("b", 2.1801, 48.98, licence=None, collection="c1")
    api.add("c", 2.1802, 48.98, licence=None, collection="c2")
    api.collections["c1"] = {"type": "Collection", "id": "c1", "license": "etalab-2.0"}
    df, _ = _import(api, ImageStore(tmp_path))
    lic = dict(zip(df["source_ref"], df["licence"], strict=True))
    assert lic["a"] == lic["b"] == "etalab-2.0"
    assert lic["c"].startswith("unknown")
    assert sum(r == "/api/collections/c1" for r in api.requests) == 1  # cached


def test_next_link_to_another_server_is_refused(api: Panoramax, tmp_path: Path) -> None:
    for i in range(3):
        api.add(f"p{i}", 2.18 + i * 1e-4, 48.98)
    api.next_host = "http://198.51.100.7:9"
    with pytest.raises(SourceError, match="next page on another server"):
        _import(api, ImageStore(tmp_path), page_size=2)


def test_along_intersections_nearest_within_radius(api: Panoramax, tmp_path: Path) -> None:
    # 1e-4 degrees of latitude is 11.1 m.
    api.add("near", 2.18, 48.9801)  # 11 m from i1
    api.add("nearer", 2.18, 48.98005)  # 5.6 m from i1
    api.add("far", 2.19, 48.9806)  # 67 m from i2
    api.add("flat", 2.19, 48.98, fov=180)  # on i2, but not 360°
    inter = pd.DataFrame(
        {"intersection_id": ["i1", "i2"], "lon": [2.18, 2.19], "lat": [48.98, 48.98]}
    )
    df, ledger = _import(api, ImageStore(tmp_path), bbox=None, intersections=inter, radius_m=25)
    assert list(df["source_ref"]) == ["nearer"]
    assert list(df["intersection_id"]) == ["i1"]
    reasons = _reasons(ledger)
    assert reasons["intersection with no 360° picture within 25 m"] == 1
    assert reasons["not a 360° picture (a flat or partial picture)"] == 1


def test_options_are_checked(api: Panoramax, tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(OptionError, match="exactly one"):
        panoramas_from_panoramax(api.host(), store=store)
    with pytest.raises(OptionError, match="not an http"):
        panoramas_from_panoramax("ftp://x", store=store, bbox=[0, 0, 1, 1])
    with pytest.raises(OptionError, match="bbox"):
        panoramas_from_panoramax(api.host(), store=store, bbox=[3, 0, 1, 1])


def test_import_project_source_panoramax(api: Panoramax, tmp_path: Path) -> None:
    api.add("a", 2.18, 48.98)
    api.add("b", 2.1850, 48.98)
    api.add("c", 2.1900, 48.98)
    csv = tmp_path / "intersections.csv"
    csv.write_text(
        "IntersectionId,Long,Lat,Borough,TrafficSignal\n"
        "x1,2.18005,48.98,North,TrafficLight\n"
        "x2,2.18502,48.98001,North,\n"
        "x3,2.1870,48.98,South,\n"
    )
    area = {
        "type": "Polygon",
        "coordinates": [
            [[2.179, 48.97], [2.187, 48.97], [2.187, 48.99], [2.179, 48.99], [2.179, 48.97]]
        ],
    }
    ledger = Ledger()
    pano, inter = import_project_source(
        source="panoramax",
        media_root=tmp_path / "media",
        panoramax_url=api.host() + "/api/",
        bbox=(2.17, 48.97, 2.2, 48.99),
        intersections_csv=csv,
        area_geojson=area,
        ledger=ledger,
    )
    assert inter is not None
    assert sorted(pano["source_ref"]) == ["a", "b"]  # c is outside the area
    by_ref = pano.set_index("source_ref")
    assert dict(zip(inter["intersection_id"], inter["panorama_id"], strict=True)) == {
        "x1": by_ref.loc["a", "panorama_id"],
        "x2": by_ref.loc["b", "panorama_id"],
        "x3": None,  # 110 m from b, 220 m from c
    }
    assert by_ref.loc["a", "intersection_id"] == "x1"
    assert list(inter["traffic_signal"]) == [True, None, None]
    assert list(inter["area"]) == ["North", "North", "South"]
    assert ledger.total() == 1  # c outside the area
    assert any("within 25 m" in note for note in ledger.notes)
    for uri in pano["image_uri"]:
        assert (tmp_path / "media" / uri).is_file()


def test_import_with_nothing_usable_says_why(api: Panoramax, tmp_path: Path) -> None:
    api.add("flat", 2.18, 48.98, fov=70)
    with pytest.raises(InputError, match=r"no usable panorama \(left out: 1 not a 360° picture"):
        import_project_source(
            source="panoramax",
            media_root=tmp_path,
            panoramax_url=api.host(),
            bbox=(2.17, 48.97, 2.2, 48.99),
        )


def test_answers_are_read_within_a_byte_limit() -> None:
    """A body over the limit is refused (declared or streamed); gzip bodies decode once."""
    import gzip

    import httpx

    from camcensus.imagery.base import get_with_retries, json_from

    doc = {"type": "FeatureCollection", "features": [], "note": "x" * 5000}
    packed = gzip.compress(json.dumps(doc).encode())

    def app(path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if path == "/big":
            return 200, {"Content-Type": "application/json"}, b"[" + b"0," * 4000 + b"0]"
        return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, packed

    kw: dict[str, Any] = {"retries": 0, "backoff_s": 0.0, "service": "a test", "fix": "none"}
    with FakeServer(app) as server, httpx.Client(timeout=5) as client:
        with pytest.raises(SourceError, match="larger than 1,000 bytes"):
            get_with_retries(client, f"{server.url}/big", max_bytes=1000, **kw)
        # Decoded (5 kB) past a limit the compressed body (under 1 kB) is within.
        with pytest.raises(SourceError, match="more than 1,000 bytes streamed"):
            get_with_retries(client, f"{server.url}/gz", max_bytes=1000, **kw)
        response = get_with_retries(client, f"{server.url}/gz", **kw)
        assert json_from(response, service="a test", expected="JSON") == doc
