"""Shared fixtures: the real data in ../shared/data (read in place, never copied)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (seeds are pinned, CI is reproducible).
settings.register_profile("pinned", derandomize=True, deadline=None)
settings.load_profile("pinned")

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("CAMCENSUS_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not path.is_absolute():
        path = (ROOT / path).resolve()
    return path


SHARED = _shared_data()


@pytest.fixture(scope="session")
def shared() -> Path:
    """Return ../shared/data; fail loudly (never skip) when it is missing."""
    if not (SHARED / "SOURCES.md").exists():
        if os.environ.get("CAMCENSUS_ALLOW_MISSING_DATA") == "1":
            pytest.skip(f"shared data not found at {SHARED}")
        pytest.fail(
            f"The real test data is missing: expected {SHARED}/SOURCES.md. Put the shared data "
            "folder beside the repository (../shared/data) or set CAMCENSUS_SHARED_DATA."
        )
    return SHARED


@pytest.fixture(scope="session")
def nyc_paths(shared: Path) -> dict[str, Path]:
    """Paths of the NYC inputs."""
    return {
        "brooklyn": shared / "amnesty_decode" / "amnesty_international_cameras_brooklyn.csv",
        "citywide": shared / "amnesty_decode" / "counts_per_intersections_citywide_reduced.csv",
        "camera_count": shared / "amnesty_decode" / "camera_count.csv",
        "tracts": shared / "census" / "nyc_tracts_2019_shoreline" / "tracts.shp",
        "census": shared / "census" / "acs2019_tract" / "census.csv",
        "boroughs": shared / "boundaries" / "nyc_borough_boundary_water_query.json",
        "nybb": shared / "boundaries" / "nybb_24c" / "nybb.shp",
        "tract_sf": shared / "census" / "nycgeo" / "tract_sf.gpkg",
    }


@pytest.fixture(scope="session")
def citywide_result(nyc_paths: dict[str, Path]):  # type: ignore[no-untyped-def]
    """The whole citywide reproduction (computed once per session)."""
    from camcensus.pipeline import reproduce_nyc

    return reproduce_nyc(
        intersections=nyc_paths["citywide"],
        tracts=nyc_paths["tracts"],
        census=nyc_paths["census"],
        boroughs=nyc_paths["boroughs"],
        reference=nyc_paths["camera_count"],
    )


@pytest.fixture(scope="session")
def city():  # type: ignore[no-untyped-def]
    """The seeded synthetic city of the demo."""
    from camcensus.simulate import simulate_city

    return simulate_city(0)


CHROMIUM = "/usr/bin/chromium"


def offline_page(playwright: Any, blocked: list[str]) -> tuple[Any, Any]:
    """Launch Debian's Chromium (WebGL by SwiftShader) and open a page on which every request
    that leaves the file itself is aborted and recorded in ``blocked``; return both."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is required: make test installs it"
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--enable-unsafe-swiftshader",
        ],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1000})

    def _route(route: Any) -> None:
        url = route.request.url
        if not url.startswith(("file:", "data:", "blob:")):
            blocked.append(url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", _route)
    return browser, page


def small_census(folder: Path) -> Any:
    """A real result of the seeded synthetic city's census, its inputs written into ``folder``
    (no stop models: a few seconds)."""
    from camcensus.pipeline import reproduce_nyc
    from camcensus.simulate import simulate_city

    paths = simulate_city(0).write(folder)
    return reproduce_nyc(
        tracts=paths["tracts"],
        raw_counts=paths["raw_counts"],
        raw_intersections=paths["raw_intersections"],
        panoramas=paths["panoramas"],
        census=paths["census"],
        boroughs=paths["boroughs"],
    )


# --- PostgreSQL + PostGIS: one throwaway cluster per test session ------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_PG_FIX = (
    "run `make test` as root: it installs postgresql-15 and postgresql-15-postgis-3 "
    "(or `apt-get install postgresql-15-postgis-3`)"
)


def _pg_command(args: list[str]) -> list[str]:
    """Run a PostgreSQL server binary as user postgres when we are root (it refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` under uvicorn on a free loopback port (a background thread); yield its URL."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        lifespan="off", ws="none", http="h11",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def postgis_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start one throwaway PostgreSQL 15 + PostGIS cluster; yield the URL of a database with
    the ``postgis`` extension (``postgresql+psycopg://postgres@127.0.0.1:PORT/camcensus_test``).

    Fails loudly (never skips) when the server or PostGIS is not installed.
    """
    import shutil
    import subprocess
    import tempfile

    import psycopg

    for binary in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / binary).exists():
            pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN / binary} missing): {_PG_FIX}")
    if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
        pytest.fail(f"The PostGIS extension for PostgreSQL 15 is not installed: {_PG_FIX}")
    root = Path(tempfile.mkdtemp(prefix="camcensus-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    port = _free_port()

    def run(args: list[str]) -> None:
        done = subprocess.run(_pg_command(args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                f"\n{server_log}\nFix: {_PG_FIX}"
            )

    run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]
    )
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c max_connections=400 -c synchronous_commit=off"
    )
    run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE camcensus_test")
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=camcensus_test", autocommit=True
        ) as conn:
            try:
                conn.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                pytest.fail(f"CREATE EXTENSION postgis failed: {exc}. Fix: {_PG_FIX}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/camcensus_test"
    finally:
        subprocess.run(
            _pg_command([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgis_fresh_url(postgis_url: str) -> Any:
    """Yield the URL of a new, empty database (PostGIS enabled) of the session's cluster;
    dropped after the test."""
    import secrets

    import psycopg

    base, _, _ = postgis_url.rpartition("/")
    name = f"camcensus_{secrets.token_hex(6)}"
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(f"{admin.rpartition('/')[0]}/{name}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
