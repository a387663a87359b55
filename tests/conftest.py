"""Shared fixtures: the real data in ../shared/data (read in place, never copied)."""

from __future__ import annotations

import os
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
