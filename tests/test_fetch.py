"""camcensus.fetch against a real HTTP server on loopback that answers as each public source.

The server replays responses in the sources' real formats, built from real answers kept in
``../shared/data/api_fixtures`` (Census API array-of-arrays, Overpass ``elements``, Panoramax
STAC search) and real published files (Baltimore's 2019 cartographic boundary tracts, New
Orleans' ACS 2019–23 B19013 with the API's jam values, NYPD's sqf-2020.xlsx). It injects
failures on purpose: timeouts, 5xx, 429 with Retry-After, bodies cut short, HTML error pages.
No test touches the network.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import httpx
import pandas as pd
import pytest

from camcensus._errors import OptionError
from camcensus.fetch import (
    JAM_VALUES,
    Fetcher,
    FetchError,
    OfflineError,
    base_url,
    fetch_acs,
    fetch_osm,
    fetch_panoramax,
    fetch_sqf,
    fetch_tracts,
    overpass_query,
    state_fips,
)

ACS_ALBANY = "api_fixtures/census/acs2022_acs5_tract_NY_albany_036001_raw.json"
OVERPASS = "api_fixtures/overpass/switzerland_surveillance_elements.json"
PANORAMAX = "api_fixtures/panoramax/search_1picture.json"
SQF_2020_SHA256 = "eff379260b10e92a2db838891c177f41888aa5ef13a37dd9b7ff908e0509cef7"


@dataclass
class Reply:
    """One answer: status, headers, body; or a failure (``delay_s`` before answering,
    ``cut_at`` bytes sent of a longer declared body, ``no_length``: no Content-Length)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    cut_at: int | None = None
    no_length: bool = False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]


Route = Callable[[Request], Reply]


class Loopback:
    """A threaded HTTP server on 127.0.0.1 (random port). ``routes[path]`` answers a request;
    ``script[path]`` holds replies served first, one per request, before the route."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.script: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                form: dict[str, list[str]] = {}
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    form = parse_qs(self.rfile.read(length).decode("utf-8"))
                req = Request(method, parts.path, parse_qs(parts.query), form)
                outer.requests.append(req)
                queued = outer.script.get(parts.path)
                if queued:
                    reply = queued.pop(0)
                elif parts.path in outer.routes:
                    reply = outer.routes[parts.path](req)
                else:
                    reply = Reply(404, b"<html><title>404 Not Found</title></html>")
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if reply.no_length:
                        self.send_header("Connection", "close")
                    else:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    body = reply.body if reply.cut_at is None else reply.body[: reply.cut_at]
                    self.wfile.write(body)
                    self.wfile.flush()
                    if reply.cut_at is not None or reply.no_length:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Loopback]:
    srv = Loopback()
    yield srv
    srv.close()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def fetcher(tmp_path: Path, waits: list[float]) -> Iterator[Fetcher]:
    """A fetcher with a fresh cache whose waits are recorded, not slept."""
    with Fetcher(
        cache_dir=tmp_path / "cache", retries=3, backoff_s=0.5, timeout_s=2.0, sleep=waits.append
    ) as f:
        yield f


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


# -- a Census Data API answering from a table ---------------------------------------------------


def census_route(table: list[list[str]], *, key: str | None = None) -> Route:
    """Answer ``get=NAME,V1,...&for=tract:*&in=state:SS county:CCC`` from ``table``
    (header row first, as the API serves it), with the API's own error texts."""
    header = table[0]

    def route(req: Request) -> Reply:
        if key is not None and req.query.get("key", [""])[0] != key:
            return Reply(302, headers={"Location": "/data/invalid_key.html"})
        wanted = req.query.get("get", [""])[0].split(",")
        for name in wanted:
            if name not in header:
                return Reply(400, f"error: error: unknown variable '{name}'".encode())
        where = dict(p.split(":") for p in req.query.get("in", [""])[0].split(" ") if p)
        cols = [*wanted, "state", "county", "tract"]
        idx = [header.index(c) for c in cols]
        rows = [
            [r[i] for i in idx]
            for r in table[1:]
            if r[header.index("state")] == where.get("state")
            and ("county" not in where or r[header.index("county")] == where["county"])
        ]
        if not rows:
            return Reply(204)
        return Reply(200, _json([cols, *rows]), {"Content-Type": "application/json"})

    return route


def albany(shared: Path) -> list[list[str]]:
    doc: list[list[str]] = json.loads((shared / ACS_ALBANY).read_text())
    return doc


def orleans_2023(shared: Path) -> list[list[str]]:
    """The API's answer for Orleans B19013 (2019–23), rebuilt from the CSV a user saved from it
    (``get=NAME,B19013_001E&for=tract:*&in=state:22 county:071``); 9 jam values kept."""
    path = shared / "other_cities/new_orleans/acs2023_B19013.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = [["NAME", "B19013_001E", "state", "county", "tract"]]
    for r in rows:
        g = r["GEOID"]
        table.append([r["Tract Name"], r["Median Household Income"], g[:2], g[2:5], g[5:]])
    return table


# -- ACS -------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_acs_values_parsed_exactly(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    table = albany(shared)
    server.routes["/data/2022/acs/acs5"] = census_route(table)
    variables = ["B01003_001E", "B19013_001E", "B23025_005E", "B23025_003E"]
    res = fetch_acs(
        tmp_path / "albany.csv",
        state="NY",
        county="001",
        year=2022,
        variables=variables,
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )
    req = server.requests[0]
    assert req.query["get"] == ["NAME," + ",".join(variables)]
    assert req.query["for"] == ["tract:*"]
    assert req.query["in"] == ["state:36 county:001"]
    out = pd.read_csv(res.path, dtype={"GEOID": str, "tract": str, "county": str, "state": str})
    assert len(out) == res.rows == len(table) - 1 == 85
    served = {r[5] + r[6] + r[7]: r for r in table[1:]}
    assert set(out["GEOID"]) == set(served)
    for _, row in out.iterrows():
        src = served[row["GEOID"]]
        assert row["NAME"] == src[0]
        for j, var in enumerate(variables, start=1):
            if int(src[j]) in JAM_VALUES:
                assert pd.isna(row[var])
            else:
                assert row[var] == int(src[j]), (row["GEOID"], var)
    assert list(out.columns[:2]) == ["GEOID", "NAME"]
    assert res.stats.requests == 1 and res.stats.retries == 0 and res.stats.cache_hits == 0
    prov = json.loads(res.provenance_path.read_text())
    assert prov["sha256"] == hashlib.sha256(res.path.read_bytes()).hexdigest() == res.sha256
    assert prov["rows"] == 85 and "public domain" in prov["terms"]


@pytest.mark.realdata
def test_acs_jam_values_made_missing_and_counted(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    table = orleans_2023(shared)
    jammed = {r[2] + r[3] + r[4] for r in table[1:] if r[1] == "-666666666"}
    assert len(jammed) == 9  # as SOURCES.md says of the saved answer
    server.routes["/data/2023/acs/acs5"] = census_route(table)
    res = fetch_acs(
        tmp_path / "orleans.csv",
        state="22",
        county="22071",
        year=2023,
        variables="B19013_001",
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )
    out = pd.read_csv(res.path, dtype={"GEOID": str})
    assert len(out) == 184
    assert set(out.loc[out["B19013_001E"].isna(), "GEOID"]) == jammed
    assert (out["B19013_001E"].dropna() > 0).all()
    assert res.summary["jam_values"] == {"B19013_001E": {"-666666666": 9}}
    assert res.summary["values_made_missing"] == 9
    flagged = [e for e in res.ledger.flagged if "-666666666" in e.reason]
    assert [(e.stage, e.count) for e in flagged] == [("fetch acs", 9)]
    assert "too few sample observations" in flagged[0].reason
    expected = {r[2] + r[3] + r[4]: float(r[1]) for r in table[1:] if r[1] != "-666666666"}
    got = dict(zip(out["GEOID"], out["B19013_001E"], strict=True))
    assert all(got[g] == v for g, v in expected.items())


def test_acs_every_jam_code_and_null(server: Loopback, fetcher: Fetcher, tmp_path: Path) -> None:
    codes = sorted(JAM_VALUES)
    table: list[list[Any]] = [["NAME", "B19013_001E", "B19013_001M", "state", "county", "tract"]]
    for i, code in enumerate(codes):
        table.append([f"Tract {i}", str(code), str(code), "24", "510", f"{i:06d}"])
    table.append(["Tract null", None, "12", "24", "510", "999999"])
    table.append(["Tract ok", "51234", "2001", "24", "510", "999998"])
    server.routes["/data/2018/acs/acs5"] = census_route(table)
    res = fetch_acs(
        tmp_path / "jam.csv",
        state="MD",
        county="510",
        year=2018,
        variables=["B19013_001E", "B19013_001M"],
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )
    out = pd.read_csv(res.path, dtype={"GEOID": str})
    assert out["B19013_001E"].notna().sum() == 1
    assert out["B19013_001M"].notna().sum() == 2
    assert res.summary["jam_values"]["B19013_001E"] == {
        **{str(c): 1 for c in codes},
        "null": 1,
    }
    assert res.summary["values_made_missing"] == 2 * len(codes) + 1
    assert sum(e.count for e in res.ledger.flagged) == 2 * len(codes) + 1


def test_acs_more_than_50_variables_split_and_merged(
    server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    names = [f"B01001_{i:03d}E" for i in range(1, 61)]
    header = ["NAME", *names, "state", "county", "tract"]
    table = [header] + [
        [f"Tract {t}", *[str(1000 * t + i) for i in range(1, 61)], "36", "061", f"{t:06d}"]
        for t in range(1, 6)
    ]
    server.routes["/data/2019/acs/acs5"] = census_route(table)
    res = fetch_acs(
        tmp_path / "wide.csv",
        state=36,
        county=61,
        year=2019,
        variables=names,
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )
    assert len(server.requests) == 2
    sent = [r.query["get"][0].split(",") for r in server.requests]
    assert [len(s) for s in sent] == [50, 12]  # NAME + 49, NAME + 11
    out = pd.read_csv(res.path, dtype={"GEOID": str})
    assert list(out.columns) == ["GEOID", "NAME", *names, "state", "county", "tract"]
    for t in range(1, 6):
        row = out[out["GEOID"] == f"36061{t:06d}"].iloc[0]
        assert [int(row[n]) for n in names] == [1000 * t + i for i in range(1, 61)]


@pytest.mark.realdata
def test_acs_cache_hit_then_checksum_failure(
    shared: Path, server: Loopback, tmp_path: Path, waits: list[float]
) -> None:
    server.routes["/data/2022/acs/acs5"] = census_route(albany(shared))
    cache = tmp_path / "cache"
    kw: dict[str, Any] = {
        "state": "36",
        "county": "001",
        "year": 2022,
        "variables": "B19013_001E",
        "census_url": f"{server.url}/data",
    }
    with Fetcher(cache_dir=cache, sleep=waits.append) as f1:
        first = fetch_acs(tmp_path / "a.csv", fetcher=f1, **kw)
    with Fetcher(cache_dir=cache, sleep=waits.append) as f2:
        second = fetch_acs(tmp_path / "b.csv", fetcher=f2, **kw)
    assert len(server.requests) == 1
    assert (first.stats.cache_hits, second.stats.cache_hits) == (0, 1)
    assert second.stats.requests == 0 and second.from_cache and not first.from_cache
    assert first.sha256 == second.sha256
    manifest = json.loads((cache / "manifest.json").read_text())["entries"]
    (entry,) = manifest.values()
    cached = cache / entry["file"]
    assert entry["sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert entry["bytes"] == cached.stat().st_size
    # A damaged copy fails its checksum and is downloaded again.
    cached.write_bytes(cached.read_bytes().replace(b"Albany", b"Albanx"))
    with Fetcher(cache_dir=cache, sleep=waits.append) as f3:
        third = fetch_acs(tmp_path / "c.csv", fetcher=f3, **kw)
    assert len(server.requests) == 2
    assert third.stats.cache_corrupt == 1 and third.stats.cache_hits == 0
    assert third.sha256 == first.sha256
    assert any("failed its sha256 check" in n for n in third.ledger.notes)
    # --refresh downloads even a good copy.
    with Fetcher(cache_dir=cache, refresh=True, sleep=waits.append) as f4:
        fetch_acs(tmp_path / "d.csv", fetcher=f4, **kw)
    assert len(server.requests) == 3


@pytest.mark.realdata
def test_acs_key_is_sent_but_never_stored_or_shown(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    secret = "s3cr3t-census-key-0123456789"
    server.routes["/data/2022/acs/acs5"] = census_route(albany(shared), key=secret)
    server.routes["/data/invalid_key.html"] = lambda req: Reply(
        200, b"<html><head><title>Invalid Key</title></head><body>Invalid Key</body></html>"
    )
    res = fetch_acs(
        tmp_path / "k.csv",
        state="36",
        county="001",
        year=2022,
        variables="B01003_001E",
        key=secret,
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )
    assert server.requests[0].query["key"] == [secret]
    assert res.rows == 85
    for path in [fetcher.cache_dir / "manifest.json", res.provenance_path, res.path]:
        assert secret not in path.read_text()
    assert "key=***" in res.sources[0]["url"]
    with pytest.raises(FetchError) as err:
        fetch_acs(
            tmp_path / "bad.csv",
            state="36",
            county="001",
            year=2022,
            variables="B19013_001E",  # not cached yet (a cached answer needs no key)
            key="wrong-key",
            census_url=f"{server.url}/data",
            fetcher=fetcher,
        )
    text = str(err.value)
    assert "Invalid Key" in text and "wrong-key" not in text and "key=***" in text
    assert fetcher.stats.retries == 0  # an invalid key is not retried


@pytest.mark.realdata
def test_acs_unknown_variable_names_the_api_message(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    server.routes["/data/2022/acs/acs5"] = census_route(albany(shared))
    with pytest.raises(FetchError) as err:
        fetch_acs(
            tmp_path / "x.csv",
            state="36",
            county="001",
            year=2022,
            variables="B99999_001E",
            census_url=f"{server.url}/data",
            fetcher=fetcher,
        )
    text = str(err.value)
    assert "HTTP 400" in text and "unknown variable 'B99999_001E'" in text
    assert "variables.html" in text
    assert len(server.requests) == 1 and not (tmp_path / "x.csv").exists()


def test_acs_options_checked_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="state='ZZ'"):
        fetch_acs(tmp_path / "x.csv", state="ZZ", year=2020, variables="B01003_001E")
    with pytest.raises(OptionError, match="not an ACS variable"):
        fetch_acs(tmp_path / "x.csv", state="MD", year=2020, variables="population")
    with pytest.raises(OptionError, match="county"):
        fetch_acs(tmp_path / "x.csv", state="MD", county="51x", year=2020, variables="B01003_001")
    with pytest.raises(OptionError, match="year"):
        fetch_acs(tmp_path / "x.csv", state="MD", year=1990, variables="B01003_001")
    with pytest.raises(OptionError, match=r"\.csv"):
        fetch_acs(tmp_path / "x.json", state="MD", year=2020, variables="B01003_001")
    assert state_fips("la") == "22" and state_fips(6) == "06"


# -- retries, backoff, Retry-After, timeouts, truncation, offline -------------------------------

_OK = _json([["NAME", "B01003_001E", "state", "county", "tract"], ["T", "5", "24", "510", "0001"]])


def _acs(server: Loopback, fetcher: Fetcher, tmp_path: Path) -> Any:
    return fetch_acs(
        tmp_path / "r.csv",
        state="24",
        county="510",
        year=2018,
        variables="B01003_001E",
        census_url=f"{server.url}/data",
        fetcher=fetcher,
    )


PATH = "/data/2018/acs/acs5"


def test_retries_5xx_with_exponential_backoff(
    server: Loopback, fetcher: Fetcher, tmp_path: Path, waits: list[float]
) -> None:
    server.script[PATH] = [Reply(503, b"busy"), Reply(502, b"bad gateway"), Reply(200, _OK)]
    res = _acs(server, fetcher, tmp_path)
    assert res.rows == 1 and server.hits(PATH) == 3
    assert res.stats.requests == 3 and res.stats.retries == 2
    assert waits == [0.5, 1.0]
    assert res.stats.failures == {"HTTP 503": 1, "HTTP 502": 1}


def test_429_retry_after_seconds_and_http_date(
    server: Loopback, fetcher: Fetcher, tmp_path: Path, waits: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    server.script[PATH] = [
        Reply(429, b"slow down", {"Retry-After": "7"}),
        Reply(429, b"slow down", {"Retry-After": when}),
        Reply(200, _OK),
    ]
    res = _acs(server, fetcher, tmp_path)
    assert res.stats.retries == 2 and res.stats.failures == {"HTTP 429": 2}
    assert waits[0] == 7.0
    assert 35.0 <= waits[1] <= 40.0


def test_retry_after_too_long_is_an_error_saying_when(
    server: Loopback, fetcher: Fetcher, tmp_path: Path, waits: list[float]
) -> None:
    server.script[PATH] = [Reply(429, b"quota", {"Retry-After": "3600"})]
    with pytest.raises(FetchError) as err:
        _acs(server, fetcher, tmp_path)
    text = str(err.value)
    assert "Retry-After" in text and "3,600 s" in text and "try again in 60 min" in text
    assert waits == [] and server.hits(PATH) == 1


def test_5xx_on_every_try_fails_naming_url_and_tries(
    server: Loopback, fetcher: Fetcher, tmp_path: Path, waits: list[float]
) -> None:
    server.routes[PATH] = lambda req: Reply(500, b"There was an error while running your query.")
    with pytest.raises(FetchError) as err:
        _acs(server, fetcher, tmp_path)
    text = str(err.value)
    assert "HTTP 500 (There was an error while running your query.)" in text
    assert "on each of 4 tries" in text and f"{server.url}/data/2018/acs/acs5?get=" in text
    assert server.hits(PATH) == 4 and waits == [0.5, 1.0, 2.0]
    assert not isinstance(err.value, OfflineError)


def test_timeout_is_retried(server: Loopback, tmp_path: Path, waits: list[float]) -> None:
    server.script[PATH] = [Reply(200, _OK, delay_s=1.5), Reply(200, _OK)]
    with Fetcher(
        cache_dir=tmp_path / "c", retries=2, backoff_s=0.1, timeout_s=0.3, sleep=waits.append
    ) as f:
        res = _acs(server, f, tmp_path)
    assert res.rows == 1 and res.stats.retries == 1
    assert res.stats.failures == {"timeout": 1}


def test_timeout_on_every_try(server: Loopback, tmp_path: Path, waits: list[float]) -> None:
    server.routes[PATH] = lambda req: Reply(200, _OK, delay_s=1.0)
    with (
        Fetcher(
            cache_dir=tmp_path / "c", retries=1, backoff_s=0.1, timeout_s=0.2, sleep=waits.append
        ) as f,
        pytest.raises(FetchError, match=r"no answer within the timeout \(0.2 s\) on each of 2"),
    ):
        _acs(server, f, tmp_path)


def test_truncated_body_with_content_length_is_retried(
    server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    server.script[PATH] = [Reply(200, _OK, cut_at=20), Reply(200, _OK)]
    res = _acs(server, fetcher, tmp_path)
    assert res.rows == 1 and res.stats.retries == 1
    assert res.stats.failures == {"truncated body": 1}


def test_cut_json_without_content_length_is_retried_then_fails(
    server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    server.script[PATH] = [Reply(200, _OK[:25], no_length=True), Reply(200, _OK)]
    res = _acs(server, fetcher, tmp_path)
    assert res.stats.failures == {"cut or transient body": 1} and res.rows == 1
    server.routes[PATH] = lambda req: Reply(200, _OK[:25], no_length=True)
    with pytest.raises(FetchError, match="JSON cut short or damaged"):
        fetch_acs(
            tmp_path / "r2.csv",
            state="24",
            county="510",
            year=2018,
            variables="B01003_001M",
            census_url=f"{server.url}/data",
            fetcher=fetcher,
        )
    # Nothing cut was cached: only the good answer is in the manifest.
    assert len(fetcher.manifest()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_offline_connection_refused(tmp_path: Path, waits: list[float]) -> None:
    port = _free_port()
    with (
        Fetcher(cache_dir=tmp_path / "c", retries=2, backoff_s=0.1, sleep=waits.append) as f,
        pytest.raises(OfflineError) as err,
    ):
        fetch_acs(
            tmp_path / "x.csv",
            state="24",
            year=2018,
            variables="B01003_001E",
            census_url=f"http://127.0.0.1:{port}/data",
            fetcher=f,
        )
    text = str(err.value)
    assert f"no connection to 127.0.0.1:{port} on any of 3 tries" in text
    assert "check the internet connection" in text and str(tmp_path / "c") in text
    assert f.stats.failures == {"connection error": 3}


def test_offline_no_dns_fails_at_once(tmp_path: Path, waits: list[float]) -> None:
    def no_dns(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    client = httpx.Client(transport=httpx.MockTransport(no_dns))
    with (
        Fetcher(cache_dir=tmp_path / "c", retries=4, client=client, sleep=waits.append) as f,
        pytest.raises(OfflineError) as err,
    ):
        fetch_osm(tmp_path / "o.json", bbox=[6.1, 46.1, 6.2, 46.2], fetcher=f)
    text = str(err.value)
    assert "no network: the name 'overpass-api.de' could not be resolved" in text
    assert "../shared/data" in text
    assert f.stats.requests == 1 and waits == []
    client.close()


def test_base_urls_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert base_url("census_api") == "https://api.census.gov/data"
    monkeypatch.setenv("CAMCENSUS_CENSUS_API_URL", "http://127.0.0.1:9/data/")
    assert base_url("census_api") == "http://127.0.0.1:9/data"
    assert base_url("census_api", "http://other/x") == "http://other/x"
    monkeypatch.setenv("CAMCENSUS_OVERPASS_URL", "ftp://nope")
    with pytest.raises(OptionError, match="CAMCENSUS_OVERPASS_URL"):
        base_url("overpass")


@pytest.mark.realdata
def test_environment_url_is_used(
    shared: Path,
    server: Loopback,
    fetcher: Fetcher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.routes["/data/2022/acs/acs5"] = census_route(albany(shared))
    monkeypatch.setenv("CAMCENSUS_CENSUS_API_URL", f"{server.url}/data")
    res = fetch_acs(
        tmp_path / "e.csv", state="36", county="1", year=2022, variables="B01003_001E",
        fetcher=fetcher,
    )  # fmt: skip
    assert res.rows == 85 and len(server.requests) == 1


# -- OpenStreetMap (Overpass, Nominatim) -------------------------------------------------------


def overpass_answer(shared: Path, *, remark: str | None = None) -> bytes:
    """The Swiss ``elements`` inside the envelope Overpass serves, plus one way with a centre."""
    elements = json.loads((shared / OVERPASS).read_text())
    elements.append(
        {
            "type": "way",
            "id": 4242,
            "center": {"lat": 46.2, "lon": 6.15},
            "nodes": [1, 2, 3, 1],
            "tags": {"man_made": "surveillance", "camera:direction": "270-90"},
        }
    )
    doc: dict[str, Any] = {
        "version": 0.6,
        "generator": "Overpass API 0.7.62.1 084b4234",
        "osm3s": {
            "timestamp_osm_base": "2024-05-01T12:00:00Z",
            "copyright": "The data included in this document is from www.openstreetmap.org. "
            "The data is made available under ODbL.",
        },
        "elements": elements,
    }
    if remark:
        doc["remark"] = remark
    return _json(doc)


@pytest.mark.realdata
def test_osm_bbox(shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path) -> None:
    body = overpass_answer(shared)
    server.routes["/api/interpreter"] = lambda req: Reply(200, body)
    res = fetch_osm(
        tmp_path / "ch.json",
        bbox=[5.9, 45.8, 10.5, 47.9],
        overpass_url=f"{server.url}/api/interpreter",
        fetcher=fetcher,
    )
    (req,) = server.requests
    assert req.method == "POST"
    assert req.form["data"] == [overpass_query(bbox=(5.9, 45.8, 10.5, 47.9))]
    assert "(45.8000000,5.9000000,47.9000000,10.5000000)" in req.form["data"][0]
    assert res.path.read_bytes() == body  # written as served
    elements = json.loads(body)["elements"]
    directed = sum(
        1 for e in elements if "camera:direction" in e["tags"] or "direction" in e["tags"]
    )
    assert res.rows == 2145
    assert res.summary["nodes"] == 2144 and res.summary["ways"] == 1
    assert res.summary["with_direction"] == directed >= 498
    assert res.summary["osm_timestamp"] == "2024-05-01T12:00:00Z"
    assert "ODbL" in res.terms


@pytest.mark.realdata
def test_osm_runtime_error_remark_is_retried_never_written(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    partial = overpass_answer(
        shared, remark='runtime error: Query timed out in "query" at line 3 after 181 seconds.'
    )
    server.routes["/api/interpreter"] = lambda req: Reply(200, partial)
    with pytest.raises(FetchError) as err:
        fetch_osm(
            tmp_path / "ch.json",
            bbox=[5.9, 45.8, 10.5, 47.9],
            overpass_url=f"{server.url}/api/interpreter",
            fetcher=fetcher,
        )
    assert "an incomplete answer (remark: 'runtime error: Query timed out" in str(err.value)
    assert "smaller --bbox" in str(err.value)
    assert server.hits("/api/interpreter") == 4 and not (tmp_path / "ch.json").exists()
    assert fetcher.manifest() == {}


@pytest.mark.realdata
def test_osm_place_uses_the_boundary_area(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    # Nominatim /search?format=jsonv2 answers a list of places like this one.
    geneva = [
        {
            "place_id": 103553224,
            "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
            "osm_type": "relation",
            "osm_id": 1685488,
            "lat": "46.2017559",
            "lon": "6.1466014",
            "category": "boundary",
            "type": "administrative",
            "place_rank": 16,
            "importance": 0.75,
            "addresstype": "city",
            "name": "Genève",
            "display_name": "Genève, Genève, Schweiz/Suisse/Svizzera/Svizra",
            "boundingbox": ["46.1777724", "46.2311688", "6.1102411", "6.1758527"],
        }
    ]
    server.routes["/search"] = lambda req: Reply(200, _json(geneva))
    body = overpass_answer(shared)
    server.routes["/api/interpreter"] = lambda req: Reply(200, body)
    res = fetch_osm(
        tmp_path / "ge.json",
        place="Geneva, Switzerland",
        overpass_url=f"{server.url}/api/interpreter",
        nominatim_url=server.url,
        fetcher=fetcher,
    )
    search, interp = server.requests
    assert search.query == {"q": ["Geneva, Switzerland"], "format": ["jsonv2"], "limit": ["1"]}
    assert "area(id:3601685488)->.a;" in interp.form["data"][0]
    assert "(area.a)" in interp.form["data"][0]
    assert res.summary["place"]["area_id"] == 3601685488
    assert res.summary["place"]["bbox"] == [6.1102411, 46.1777724, 6.1758527, 46.2311688]
    assert len(res.sources) == 2
    server.routes["/search"] = lambda req: Reply(200, b"[]")
    with pytest.raises(OptionError, match="not found by Nominatim"):
        fetch_osm(
            tmp_path / "x.json", place="Nowhere at all", nominatim_url=server.url,
            overpass_url=f"{server.url}/api/interpreter", fetcher=fetcher,
        )  # fmt: skip


def test_osm_options(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="exactly one"):
        fetch_osm(tmp_path / "o.json")
    with pytest.raises(OptionError, match="100 square degrees"):
        fetch_osm(tmp_path / "o.json", bbox=[-20, -20, 20, 20])
    with pytest.raises(OptionError, match="west < east"):
        fetch_osm(tmp_path / "o.json", bbox=[7, 46, 6, 47])


# -- tracts ----------------------------------------------------------------------------------


def baltimore_zip(shared: Path) -> bytes:
    """Baltimore's tracts of ``cb_2019_24_tract_500k`` zipped as the Census Bureau serves it."""
    folder = shared / "other_cities/baltimore/tracts_cb2019"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            zf.write(folder / f"tracts_cb2019.{ext}", f"cb_2019_24_tract_500k.{ext}")
    return buf.getvalue()


@pytest.mark.realdata
def test_tracts_county_written_in_wgs84(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    body = baltimore_zip(shared)
    route = "/geo/tiger/GENZ2019/shp/cb_2019_24_tract_500k.zip"
    server.script[route] = [Reply(200, body, cut_at=len(body) // 2)]
    server.routes[route] = lambda req: Reply(200, body, {"Content-Type": "application/zip"})
    res = fetch_tracts(
        tmp_path / "balt.geojson",
        state="MD",
        county="510",
        year=2019,
        tiger_url=f"{server.url}/geo/tiger",
        fetcher=fetcher,
    )
    truth = gpd.read_file(shared / "other_cities/baltimore/tracts_cb2019/tracts_cb2019.shp")
    got = gpd.read_file(res.path)
    assert res.rows == len(got) == len(truth) == 200
    assert sorted(got["GEOID"]) == sorted(truth["GEOID"])
    assert got.crs.to_epsg() == 4326 and res.summary["source_crs"] == "EPSG:4269"
    assert res.stats.failures == {"truncated body": 1} and res.stats.retries == 1
    t = truth.set_index("GEOID").to_crs("EPSG:4326")
    g = got.set_index("GEOID")
    assert abs(g.loc[t.index, "ALAND"].astype(float) - t["ALAND"].astype(float)).max() == 0
    assert g.geometry.loc[t.index].geom_equals_exact(t.geometry, tolerance=1e-7).all()
    with pytest.raises(OptionError, match=r"county='005' has no tracts.*510"):
        fetch_tracts(
            tmp_path / "x.gpkg", state="24", county="005", year=2019,
            tiger_url=f"{server.url}/geo/tiger", fetcher=fetcher,
        )  # fmt: skip
    assert fetcher.stats.cache_hits == 1  # the second call read the cached zip


def test_tracts_missing_year_is_a_404_with_the_fix(
    server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as err:
        fetch_tracts(
            tmp_path / "t.gpkg", state="22", county="071", year=2020, kind="tiger",
            tiger_url=f"{server.url}/geo/tiger", fetcher=fetcher,
        )  # fmt: skip
    text = str(err.value)
    assert "HTTP 404 (404 Not Found)" in text and "tl_2020_22_tract.zip" in text
    assert "check --year" in text and len(server.requests) == 1


def test_tracts_html_instead_of_zip_is_not_retried(
    server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    route = "/geo/tiger/GENZ2018/shp/cb_2018_22_tract_500k.zip"
    server.routes[route] = lambda req: Reply(200, b"<!DOCTYPE html><html>maintenance</html>")
    with pytest.raises(FetchError, match="an HTML page instead of a zip file"):
        fetch_tracts(
            tmp_path / "t.geojson", state="LA", year=2018,
            tiger_url=f"{server.url}/geo/tiger", fetcher=fetcher,
        )  # fmt: skip
    assert server.hits(route) == 1


# -- NYPD SQF --------------------------------------------------------------------------------


@pytest.mark.realdata
def test_sqf_xlsx_as_published(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    body = (shared / "sqf/sqf-2020.xlsx").read_bytes()
    route = "/assets/nypd/downloads/excel/analysis_and_planning/stop-question-frisk/sqf-2020.xlsx"
    server.script[route] = [Reply(503, b"<html><title>Service Unavailable</title></html>")]
    server.routes[route] = lambda req: Reply(200, body)
    res = fetch_sqf(
        tmp_path, year=2020, nypd_url=f"{server.url}/assets/nypd/downloads", fetcher=fetcher
    )
    assert res.path == tmp_path / "sqf-2020.xlsx"
    assert res.sha256 == SQF_2020_SHA256 == res.sources[0]["sha256"]
    assert res.rows == 9544  # stops, as SOURCES.md counts them
    assert res.stats.retries == 1 and res.stats.failures == {"HTTP 503": 1}
    with pytest.raises(OptionError, match=r"sqf-2020.xlsx"):
        fetch_sqf(tmp_path / "sqf.csv", year=2020, nypd_url=server.url, fetcher=fetcher)


def test_sqf_csv_years_and_missing_file(server: Loopback, fetcher: Fetcher, tmp_path: Path) -> None:
    base = f"{server.url}/nypd"
    csv_body = b"year,pct,ser_num\n2016,1,1\n2016,5,2\n2016,9,3\n"
    server.routes["/nypd/excel/analysis_and_planning/stop-question-frisk/sqf-2016.csv"] = (
        lambda req: Reply(200, csv_body)
    )
    res = fetch_sqf(tmp_path / "s16.csv", year=2016, nypd_url=base, fetcher=fetcher)
    assert res.rows == 3 and res.path.read_bytes() == csv_body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("2011.csv", "year,pct\n2011,1\n2011,2\n")
    server.routes["/nypd/zip/analysis_and_planning/stop-question-frisk/sqf-2011-csv.zip"] = (
        lambda req: Reply(200, buf.getvalue())
    )
    res = fetch_sqf(tmp_path, year=2011, nypd_url=base, fetcher=fetcher)
    assert res.path.name == "sqf-2011-csv.zip" and res.rows == 2
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_sqf(tmp_path, year=2024, nypd_url=base, fetcher=fetcher)


# -- Panoramax -------------------------------------------------------------------------------


@pytest.mark.realdata
def test_panoramax_pages_followed_and_duplicates_counted(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    page1 = json.loads((shared / PANORAMAX).read_text())
    item = page1["features"][0]
    other = json.loads(json.dumps(item))
    other["id"] = "00000000-0000-4000-8000-000000000002"
    other["properties"]["pers:interior_orientation"] = {"field_of_view": 70}
    page1["links"] = [
        *page1.get("links", []),
        {"rel": "next", "href": f"{server.url}/api/search?bbox=1,2,3,4&page=2"},
    ]
    page2 = {"type": "FeatureCollection", "features": [item, other], "links": []}

    def search(req: Request) -> Reply:
        return Reply(200, _json(page2 if req.query.get("page") == ["2"] else page1))

    server.routes["/api/search"] = search
    server.script["/api/search"] = [Reply(504, b"gateway timeout")]
    res = fetch_panoramax(
        tmp_path / "p.geojson",
        bbox=[2.18, 48.98, 2.19, 48.99],
        panoramax_url=f"{server.url}/api",
        fetcher=fetcher,
    )
    first = server.requests[0]
    assert first.query["bbox"] == ["2.1800000,48.9800000,2.1900000,48.9900000"]
    assert first.query["limit"] == ["100"]
    assert server.requests[-1].query == {"bbox": ["1,2,3,4"], "page": ["2"]}
    doc = json.loads(res.path.read_text())
    assert [f["id"] for f in doc["features"]] == [item["id"], other["id"]]
    assert res.summary["pages"] == 2 and res.summary["pictures_360"] == 1
    assert res.summary["found_twice"] == 1 and res.ledger.total("fetch panoramax") == 1
    assert res.stats.failures == {"HTTP 504": 1}
    page1["links"][-1]["href"] = "https://elsewhere.example/api/search?page=2"
    with pytest.raises(FetchError, match="next page on another server"):
        fetch_panoramax(
            tmp_path / "q.geojson", bbox=[2.0, 48.0, 2.1, 48.1],
            panoramax_url=server.url, fetcher=fetcher,
        )  # fmt: skip


def test_progress_bars_do_not_break_a_download(server: Loopback, tmp_path: Path) -> None:
    server.routes[PATH] = lambda req: Reply(200, _OK)
    with Fetcher(cache_dir=tmp_path / "c", progress=True) as f:
        res = _acs(server, f, tmp_path)
    assert res.rows == 1 and res.stats.bytes_downloaded == len(_OK)


@pytest.mark.realdata
def test_osm_output_reads_as_cameras(
    shared: Path, server: Loopback, fetcher: Fetcher, tmp_path: Path
) -> None:
    from camcensus._errors import Ledger
    from camcensus.io.osm import read_osm_cameras

    body = overpass_answer(shared)
    server.routes["/api/interpreter"] = lambda req: Reply(200, body)
    res = fetch_osm(
        tmp_path / "ch.json",
        bbox=[5.9, 45.8, 10.5, 47.9],
        overpass_url=f"{server.url}/api/interpreter",
        fetcher=fetcher,
    )
    ledger = Ledger()
    cameras = read_osm_cameras(res.path, ledger=ledger)
    # One row per element, more where a ';' list gives one pole several directions.
    assert len(cameras) >= res.rows == 2145 and ledger.total() == 0
