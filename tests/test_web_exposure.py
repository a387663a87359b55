"""The web exposure page and its API (``/exposure``, ``/api/exposure/...``).

A 5 × 3 street grid 100 m apart (UTM 18N) with a 60 m disc camera at the middle crossing of
the bottom and the top row: the straight walk along the bottom row (400 m) passes one camera
whose disc covers 120 m of it (30%), and the walk along the middle row (600 m, 50% longer) is
seen by no camera: closed forms the API and the page must show. The bottom-row camera's id is
hostile markup (``<img src=x onerror=...>``); it must reach the page as text. The browser test
drives Debian's Chromium (WebGL by SwiftShader) against the real app under uvicorn.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from camcensus.web import WebSettings, create_app
from camcensus.web.api_exposure import BOUNDS_MARGIN_M, MAX_VIA
from conftest import serve_in_thread

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork; the pinned httpx works the same for these tests.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

CRS = "EPSG:32618"
X0, Y0 = 500_000.0, 4_400_000.0
BLOCK_M = 100.0
NX, NY = 5, 3
RADIUS_M = 60.0
HOSTILE = "<img src=x onerror=alert(1)>"
#: Where the browser test's screenshot goes (looked at by the author, not asserted).
SCREENSHOT = Path("/work/tmp/exposure.png")
ERROR_KEYS = {"ok", "error", "errors", "status"}


def _xy(i: int, j: int) -> tuple[float, float]:
    return X0 + i * BLOCK_M, Y0 + j * BLOCK_M


def _lonlat(i: int, j: int) -> tuple[float, float]:
    """WGS84 (lon, lat) of crossing (i, j)."""
    p = gpd.GeoSeries([shapely.Point(_xy(i, j))], crs=CRS).to_crs("EPSG:4326").iloc[0]
    return float(p.x), float(p.y)


def _q(i: int, j: int) -> str:
    """The API's LAT,LON of crossing (i, j) (shortest round-trip text: the same floats)."""
    lon, lat = _lonlat(i, j)
    return f"{lat!r},{lon!r}"


def _cameras() -> gpd.GeoDataFrame:
    """Two pole cameras (``cameras`` contract) at crossings (2, 0) and (2, 2), in EPSG:4326."""
    from camcensus.cameras import cameras_from_counts

    counts = gpd.GeoDataFrame(
        {
            "PanoramaId": [HOSTILE, "top"],
            "attached_street_median": [1, 1],
            "type_dome_median": [1, 0],
            "type_bullet_median": [0, 1],
        },
        geometry=[shapely.Point(_xy(2, 0)), shapely.Point(_xy(2, 2))],
        crs=CRS,
    )
    cameras = cameras_from_counts(counts, licence="test")
    cameras["camera_id"] = [HOSTILE, "top/street/1"]
    return cameras.to_crs("EPSG:4326")


def _streets() -> gpd.GeoDataFrame:
    lines = []
    for i in range(NX):
        for j in range(NY):
            if i + 1 < NX:
                lines.append(shapely.LineString([_xy(i, j), _xy(i + 1, j)]))
            if j + 1 < NY:
                lines.append(shapely.LineString([_xy(i, j), _xy(i, j + 1)]))
    return gpd.GeoDataFrame(
        {"osm_id": [str(k) for k in range(len(lines))], "highway": "footway", "name": ""},
        geometry=lines,
        crs=CRS,
    )


@pytest.fixture(scope="module")
def index() -> Any:
    from camcensus.coverage import footprints
    from camcensus.exposure import ExposureIndex, network_from_lines

    cameras = _cameras()
    network = network_from_lines(_streets(), crs=CRS)
    gdf_footprints = footprints(cameras, "disc", radius_m=RADIUS_M, crs=CRS)
    return ExposureIndex(network, gdf_footprints, cameras)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from camcensus.db import connect, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('exposure') / 'platform.sqlite'}"
    upgrade(url)
    eng = connect(url)
    yield eng
    eng.dispose()


def _client(engine: Engine, index: Any, tmp: Path, **settings: Any) -> TestClient:
    app = create_app(
        engine,
        media_root=tmp,
        settings=WebSettings(**{"rate_limits": False, **settings}),
        exposure=index,
    )
    return TestClient(app)


@pytest.fixture
def client(engine: Engine, index: Any, tmp_path: Path) -> TestClient:
    return _client(engine, index, tmp_path)


@pytest.fixture(scope="module")
def exposure_client(
    engine: Engine, index: Any, tmp_path_factory: pytest.TempPathFactory
) -> TestClient:
    """One client for the property tests (hypothesis reruns a test, not its fixtures)."""
    return _client(engine, index, tmp_path_factory.mktemp("media"))


def _plain(value: Any) -> Any:
    """``value`` as the JSON answer carries it."""
    return json.loads(json.dumps(value))


def _route(client: TestClient, **params: Any) -> Any:
    response = client.get("/api/exposure/route", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


# --- the API -----------------------------------------------------------------------------------


def test_route_figures_are_the_librarys(client: TestClient, index: Any) -> None:
    got = _route(client, **{"from": _q(0, 0), "to": _q(4, 0)})
    want = index.route(_lonlat(0, 0), _lonlat(4, 0))
    assert got["figures"] == _plain(want.to_dict())
    assert got["geojson"] == _plain(want.to_geojson())
    # Closed forms: 400 m straight, the 60 m disc at the middle crossing covers 120 m of it.
    figures = got["figures"]
    assert figures["length_m"] == pytest.approx(400.0, abs=1e-6)
    assert figures["bands"]["any"]["covered_m"] == pytest.approx(2 * RADIUS_M, abs=1e-6)
    assert figures["bands"]["any"]["share_covered"] == pytest.approx(0.3, abs=1e-9)
    speed = figures["walking_speed_m_s"]
    assert figures["bands"]["any"]["seconds_exposed"] == pytest.approx(120.0 / speed)
    assert figures["cameras"] == [HOSTILE]
    assert figures["least_watched"] is None


def test_least_watched_route_and_via_points(client: TestClient, index: Any) -> None:
    got = _route(
        client, **{"from": _q(0, 0), "to": _q(4, 0), "least_watched": "1", "max_detour": "1"}
    )
    want = index.route(_lonlat(0, 0), _lonlat(4, 0), least_watched=True, max_detour=1.0)
    assert got["figures"] == _plain(want.to_dict())
    assert got["geojson"] == _plain(want.to_geojson())
    least = got["figures"]["least_watched"]
    # Along the middle row: 600 m, 50% longer, 100 m from both cameras (outside their discs).
    assert least["length_m"] == pytest.approx(600.0, abs=1e-6)
    assert least["detour"] == pytest.approx(0.5, abs=1e-9)
    assert least["bands"]["any"]["covered_m"] == pytest.approx(0.0, abs=1e-6)
    roles = {f["properties"]["role"] for f in got["geojson"]["features"]}
    assert {"shortest", "least_watched", "covered", "camera"} <= roles

    # A via point at the top-left crossing: 0,0 -> 0,2 -> 4,0 is 200 + 600 m.
    via = client.get(
        "/api/exposure/route", params=[("from", _q(0, 0)), ("to", _q(4, 0)), ("via", _q(0, 2))]
    )
    assert via.status_code == 200, via.text
    want_via = index.route(_lonlat(0, 0), _lonlat(4, 0), via=(_lonlat(0, 2),))
    assert via.json()["figures"] == _plain(want_via.to_dict())
    assert via.json()["figures"]["length_m"] == pytest.approx(800.0, abs=1e-6)


def test_info_cameras_streets(client: TestClient, index: Any) -> None:
    info = client.get("/api/exposure/info").json()
    assert info["bounds"] == pytest.approx([float(v) for v in index.bounds])
    west, south, east, north = info["bounds"]
    (lon0, lat0), (lon1, lat1) = _lonlat(0, 0), _lonlat(NX - 1, NY - 1)
    assert [west, south, east, north] == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-6)
    assert info["model"] == "disc"
    assert info["parameters"]["radius_m"] == RADIUS_M
    assert info["n_cameras"] == 2
    assert info["bands"] == ["any"]
    cameras = client.get("/api/exposure/cameras").json()
    assert cameras == _plain(index.cameras_geojson())
    assert sorted(f["properties"]["camera_id"] for f in cameras["features"]) == sorted(
        [HOSTILE, "top/street/1"]
    )
    streets = client.get("/api/exposure/streets").json()
    assert streets["type"] == "FeatureCollection"
    # Every block of the grid, whatever the pieces: (NX - 1) * NY + NX * (NY - 1) blocks.
    lines = [shapely.geometry.shape(f["geometry"]) for f in streets["features"]]
    total = float(gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(CRS).length.sum())
    # Coordinates are rounded to 1e-6 degrees (about 0.1 m).
    assert total == pytest.approx(((NX - 1) * NY + NX * (NY - 1)) * BLOCK_M, abs=0.1 * len(lines))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "north of here", "to": "TO"}, "from"),
        ({"from": "FROM", "to": "40.7"}, "to"),
        ({"from": "FROM", "to": "1,2,3"}, "to"),
        ({"from": "nan,0", "to": "TO"}, "from"),
        ({"from": "FROM", "to": "inf,-73"}, "to"),
        ({"from": "-73.99,40.75", "to": "TO"}, "from"),  # LON,LAT: latitude -73.99 is fine
        ({"from": "95,0", "to": "TO"}, "from"),
        ({"from": "FROM", "to": "0,200"}, "to"),
        ({"from": "FROM"}, "to"),
        ({"from": "FROM", "to": "TO", "max_detour": "-1"}, "max_detour"),
        ({"from": "FROM", "to": "TO", "max_detour": "99"}, "max_detour"),
        ({"from": "FROM", "to": "TO", "least_watched": "perhaps"}, "least_watched"),
        ({"from": "x" * 500, "to": "TO"}, "from"),
    ],
)
def test_bad_points_are_422_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    fill = {"FROM": _q(0, 0), "TO": _q(4, 0)}
    query = {k: fill.get(v, v) for k, v in params.items()}
    body = _assert_error(client.get("/api/exposure/route", params=query), 422, field)
    # The message says what was found and what is expected.
    assert any(e["message"] for e in body["errors"] if e["field"] == field)


def test_bad_via_is_named_by_its_position(client: TestClient) -> None:
    params = [("from", _q(0, 0)), ("to", _q(4, 0)), ("via", _q(1, 1)), ("via", "oops")]
    _assert_error(client.get("/api/exposure/route", params=params), 422, "via[1]")
    many = [("from", _q(0, 0)), ("to", _q(4, 0))] + [("via", _q(1, 1))] * (MAX_VIA + 1)
    _assert_error(client.get("/api/exposure/route", params=many), 422, "via")


def test_points_far_outside_are_refused(client: TestClient) -> None:
    lon, lat = _lonlat(0, 0)
    body = _assert_error(
        client.get("/api/exposure/route", params={"from": "0,0", "to": _q(4, 0)}), 422, "from"
    )
    assert "outside" in body["error"]
    assert "pick a point on the map" in body["errors"][0]["message"]
    # Just inside the margin is routed (snapped); just beyond it is refused.
    dlat = BOUNDS_MARGIN_M / 111_320.0
    near = f"{lat - 0.5 * dlat:.9f},{lon:.9f}"
    far = f"{lat - 1.5 * dlat:.9f},{lon:.9f}"
    inside = client.get("/api/exposure/route", params={"from": near, "to": _q(4, 0)})
    assert inside.status_code == 200, inside.text
    assert inside.json()["figures"]["snapped"]["origin"]["distance_m"] == pytest.approx(
        0.5 * BOUNDS_MARGIN_M, rel=0.01
    )
    _assert_error(
        client.get("/api/exposure/route", params={"from": _q(0, 0), "to": _q(4, 0), "via": far}),
        422,
        "via[0]",
    )
    _assert_error(
        client.get("/api/exposure/route", params={"from": _q(0, 0), "to": far}), 422, "to"
    )


def test_no_index_is_404_in_the_error_shape(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, None, tmp_path)
    for path in ("/api/exposure/info", "/api/exposure/cameras", "/api/exposure/streets"):
        body = _assert_error(client.get(path), 404)
        assert "camcensus serve" in body["error"]
    _assert_error(
        client.get("/api/exposure/route", params={"from": "40.7,-73.9", "to": "40.8,-73.9"}), 404
    )
    page = client.get("/exposure")
    assert page.status_code == 404
    assert "no exposure index" in page.text
    # No link to a page that is not there.
    assert 'href="/exposure"' not in client.get("/guide").text


def test_page_is_served_under_the_csp(client: TestClient) -> None:
    page = client.get("/exposure")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert 'href="/exposure"' in html  # the nav link
    assert "/static/js/exposure.js" in html
    # No inline script or style: every <script> has a src, no style attribute anywhere.
    assert html.count("<script") == html.count('<script type="module" src=')
    assert "style=" not in html
    # The camera ids never travel in the HTML (only as JSON, shown as text nodes).
    assert HOSTILE not in html and "onerror" not in html
    js = client.get("/static/js/exposure.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in js


def test_hostile_camera_id_stays_data(client: TestClient) -> None:
    response = client.get("/api/exposure/route", params={"from": _q(0, 0), "to": _q(4, 0)})
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["figures"]["cameras"] == [HOSTILE]
    assert response.headers.get("x-content-type-options") == "nosniff"


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(
    origin=st.one_of(
        st.text(max_size=40),
        st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)).map(
            lambda t: f"{t[0]},{t[1]}"
        ),
    ),
    detour=st.one_of(st.none(), st.text(max_size=8), st.floats(-1, 5).map(str)),
)
def test_no_input_causes_a_server_error(
    exposure_client: TestClient, origin: str, detour: str | None
) -> None:
    params = {"from": origin, "to": _q(4, 0), "least_watched": "1"}
    if detour is not None:
        params["max_detour"] = detour
    response = exposure_client.get("/api/exposure/route", params=params)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        _assert_error(response, 422)


@settings(max_examples=40, derandomize=True, database=None, deadline=None)
@given(
    u=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    detour=st.floats(0, 1),
)
def test_shares_are_within_0_and_1(
    exposure_client: TestClient,
    index: Any,
    u: tuple[float, float, float, float],
    detour: float,
) -> None:
    west, south, east, north = index.bounds
    a = (south + u[0] * (north - south), west + u[1] * (east - west))
    b = (south + u[2] * (north - south), west + u[3] * (east - west))
    figures = _route(
        exposure_client,
        **{"from": f"{a[0]!r},{a[1]!r}", "to": f"{b[0]!r},{b[1]!r}", "least_watched": "1",
           "max_detour": repr(detour)},
    )["figures"]  # fmt: skip
    for f in (figures, figures["least_watched"]):
        share = f["bands"]["any"]["share_covered"]
        assert 0.0 <= share <= 1.0
        assert f["bands"]["any"]["covered_m"] <= f["length_m"] + 1e-9
    least = figures["least_watched"]
    assert least["bands"]["any"]["covered_m"] <= figures["bands"]["any"]["covered_m"] + 1e-9
    assert least["length_m"] <= figures["length_m"] * (1 + detour) + 1e-6


def test_routes_are_rate_limited(engine: Engine, index: Any, tmp_path: Path) -> None:
    client = _client(engine, index, tmp_path, rate_limits=True, data_burst=2, data_per_minute=0.1)
    params = {"from": _q(0, 0), "to": _q(4, 0)}
    assert client.get("/api/exposure/route", params=params).status_code == 200
    assert client.get("/api/exposure/info").status_code == 200
    body = _assert_error(client.get("/api/exposure/route", params=params), 429)
    assert body["errors"][0]["field"] == "data"


def test_demo_exposure_index() -> None:
    from camcensus.platform_demo import demo_cameras, demo_exposure, demo_streets
    from camcensus.simulate import simulate_city

    city = simulate_city(0, nx=8, ny=8)
    streets = demo_streets(city)
    assert len(streets) == 2 * 8 * 7
    assert streets.length.to_numpy() == pytest.approx(100.0)
    cameras = demo_cameras(city)
    assert len(cameras) == int(city.truth["attached_street"].sum())
    assert set(cameras["mount"]) <= {"street"}
    index = demo_exposure(city)
    west, south, east, north = index.bounds
    a = ((west + east) / 2 - 0.6 * (east - west) / 2, south + 0.1 * (north - south))
    b = ((west + east) / 2 + 0.6 * (east - west) / 2, north - 0.1 * (north - south))
    result = index.route(a, b, least_watched=True).to_dict()
    assert 0.0 <= result["bands"]["any"]["share_covered"] <= 1.0
    assert result["length_m"] > 0
    # Manhattan distance on the grid bounds the walk from below.
    pa = gpd.GeoSeries(gpd.points_from_xy(*zip(a, b, strict=True)), crs="EPSG:4326").to_crs(
        city.crs
    )
    manhattan = abs(pa.x[1] - pa.x[0]) + abs(pa.y[1] - pa.y[0])
    assert result["length_m"] >= manhattan - 2 * 50.0 * math.sqrt(2)


def test_serve_demo_passes_the_demo_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from camcensus.web import app as web_app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.setdefault("app", app))
    monkeypatch.setattr(
        "camcensus.platform_demo.demo_exposure", lambda: seen.setdefault("index", object())
    )
    web_app.serve(demo=True, database=f"sqlite:///{tmp_path / 'demo.sqlite'}", media=tmp_path)
    assert seen["app"].state.exposure is seen["index"]


# --- the page in Chromium ----------------------------------------------------------------------

_INIT_SCRIPT = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def site(engine: Engine, index: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port (a background thread)."""
    app = create_app(
        engine,
        media_root=tmp_path_factory.mktemp("media"),
        settings=WebSettings(rate_limits=False),
        exposure=index,
    )
    with serve_in_thread(app) as url:
        yield url


def _percent(share: float) -> float:
    return round(share * 100, 1)


def _shown_percent(text: str) -> float:
    assert text.endswith("%"), text
    return float(text[:-1])


@pytest.mark.browser
@pytest.mark.slow
def test_page_in_chromium(site: str) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    from conftest import offline_page

    problems: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser, page = offline_page(pw, [])
        try:
            page.add_init_script(script=_INIT_SCRIPT)
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.unroute("**/*")

            def _route(route: Any) -> None:
                if route.request.url.startswith((site + "/", "data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", _route)
            page.goto(site + "/exposure")
            page.wait_for_selector("body[data-map-ready='1']", state="attached", timeout=60_000)
            page.select_option("#max-detour", "1")

            def click(i: int, j: int) -> None:
                x, y = page.evaluate(
                    """([lon, lat]) => {
                        const map = window.camcensus.exposureMap;
                        const p = map.project([lon, lat]);
                        const box = map.getCanvas().getBoundingClientRect();
                        return [box.left + p.x, box.top + p.y];
                    }""",
                    list(_lonlat(i, j)),
                )
                page.mouse.click(x, y)

            click(0, 0)
            page.wait_for_selector("#hint:has-text('ends')")
            click(4, 0)
            page.wait_for_selector(
                "body[data-route-status='done']", state="attached", timeout=60_000
            )
            url = page.eval_on_selector("body", "b => b.dataset.routeUrl")
            assert url.startswith("/api/exposure/route?") and "least_watched=1" in url
            figures = httpx.get(site + url, timeout=30).json()["figures"]

            # The page shows the API's figures.
            shown = _shown_percent(page.inner_text("#share"))
            assert shown == pytest.approx(
                _percent(figures["bands"]["any"]["share_covered"]), abs=0.051
            )
            least = figures["least_watched"]
            assert least is not None
            assert _shown_percent(page.inner_text("#least-share")) == pytest.approx(
                _percent(least["bands"]["any"]["share_covered"]), abs=0.051
            )
            assert _shown_percent(page.inner_text("#least-detour")) == pytest.approx(
                _percent(least["detour"]), abs=0.051
            )
            assert page.inner_text("#n-cameras") == str(figures["n_cameras"])
            # ... which are the closed forms: clicks land within a few metres of the crossings.
            assert figures["length_m"] == pytest.approx(400.0, abs=10.0)
            assert figures["bands"]["any"]["covered_m"] == pytest.approx(120.0, abs=1e-6)
            assert least["length_m"] == pytest.approx(600.0, abs=10.0)
            assert least["bands"]["any"]["covered_m"] == pytest.approx(0.0, abs=1e-6)
            # The hostile camera id is shown as text, never parsed as markup.
            assert page.inner_text("#cameras") == HOSTILE
            assert page.query_selector("#cameras img") is None
            assert page.query_selector("main img") is None
            # The trade-off curve has a row per point the API gave (the shortest walk first).
            rows = page.query_selector_all("#tradeoff tr")
            assert len(rows) == len(figures["tradeoff"])
            assert figures["tradeoff"][0]["penalty"] == 0
            shown_rows = [r.inner_text().split("\t") for r in rows]
            assert [_shown_percent(r[3]) for r in shown_rows] == pytest.approx(
                [_percent(t["share_covered"]) for t in figures["tradeoff"]], abs=0.051
            )
            page.wait_for_timeout(500)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # A stop on the way: the top-left crossing, then on to the end (200 + 600 m).
            page.check("#add-via")
            page.uncheck("#least-watched")
            page.wait_for_selector("body[data-route-status='done']", state="attached")
            click(0, 2)
            page.wait_for_selector("body[data-route-url*='via=']", state="attached")
            page.wait_for_selector("body[data-route-status='done']", state="attached")
            url = page.eval_on_selector("body", "b => b.dataset.routeUrl")
            figures = httpx.get(site + url, timeout=30).json()["figures"]
            assert figures["length_m"] == pytest.approx(800.0, abs=10.0)
            assert page.inner_text("#length") == f"{round(figures['length_m'])} m"
            assert page.is_hidden("#least-section")
            assert problems == [], "\n".join(problems)

            # A point outside the network's box: the page says why, in words (the browser
            # logs the refused request itself).
            page.click("#clear")
            page.evaluate("() => window.camcensus.exposureMap.setZoom(9)")
            page.wait_for_timeout(300)
            left, top, height = page.evaluate(
                """() => {
                    const box = window.camcensus.exposureMap.getCanvas().getBoundingClientRect();
                    return [box.left, box.top, box.height];
                }"""
            )
            page.mouse.click(left + 30, top + height / 2)
            page.wait_for_selector("#hint:has-text('ends')")
            page.mouse.click(left + 90, top + height / 2 + 20)
            page.wait_for_selector(
                "body[data-route-status='error']", state="attached", timeout=30_000
            )
            assert "outside the street network" in page.inner_text("#hint")
        finally:
            browser.close()
    assert outside == []
    refused = "Failed to load resource: the server responded with a status of 422"
    assert [p for p in problems if refused not in p] == [], "\n".join(problems)
