"""Download data from the original public sources: OpenStreetMap (Overpass), Census tracts and
ACS tables, NYPD stops, Panoramax pictures.

Every fetcher writes one output file plus ``<file>.fetch.json`` (the URLs without secrets,
the sha256 of each download and of the output, the dates, the counts and the source's terms),
and returns a :class:`FetchResult`. Downloads go through a :class:`Fetcher`: a cache with a
sha256 manifest, retries with exponential backoff (``Retry-After`` honoured), progress bars,
and an :class:`OfflineError` saying so when there is no network. Base URLs can be overridden
per call or with ``CAMCENSUS_*_URL`` variables (:data:`BASE_URLS`). See docs/fetch.md.
"""

from __future__ import annotations

from camcensus.fetch._common import FetchResult
from camcensus.fetch._http import (
    BASE_URLS,
    Fetcher,
    FetchError,
    FetchStats,
    OfflineError,
    base_url,
    default_cache_dir,
)
from camcensus.fetch.census import JAM_VALUES, STATES, fetch_acs, fetch_tracts, state_fips
from camcensus.fetch.osm import fetch_osm, overpass_query
from camcensus.fetch.panoramax import fetch_panoramax
from camcensus.fetch.sqf import fetch_sqf, sqf_url

__all__ = [
    "BASE_URLS",
    "JAM_VALUES",
    "STATES",
    "FetchError",
    "FetchResult",
    "FetchStats",
    "Fetcher",
    "OfflineError",
    "base_url",
    "default_cache_dir",
    "fetch_acs",
    "fetch_osm",
    "fetch_panoramax",
    "fetch_sqf",
    "fetch_tracts",
    "overpass_query",
    "sqf_url",
    "state_fips",
]
