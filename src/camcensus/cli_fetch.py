"""Command line: downloads from the original public sources (``camcensus fetch ...``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from camcensus.cli import _console_text, _fail, _friendly_errors, app

fetch_app = typer.Typer(
    help="Download data from the original public sources (needs internet).",
    no_args_is_help=True,
)
app.add_typer(fetch_app, name="fetch")

Out = Annotated[Path, typer.Option("--out", help="The file to write.")]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Download cache with its sha256 manifest [default: $CAMCENSUS_CACHE_DIR, else "
        "~/.cache/camcensus].",
        show_default=False,
    ),
]
Refresh = Annotated[
    bool, typer.Option("--refresh", help="Download again even when a verified copy is cached.")
]
Retries = Annotated[
    int,
    typer.Option("--retries", help="Tries after a failed one (timeout, 429, 5xx, cut body)."),
]
Timeout = Annotated[float, typer.Option("--timeout-s", help="Each request's timeout (seconds).")]
Backoff = Annotated[
    float,
    typer.Option("--backoff-s", help="Wait before the first retry, doubled each time (seconds)."),
]
StateOpt = Annotated[str, typer.Option("--state", help="State FIPS code or USPS code (24, MD).")]
CountyOpt = Annotated[
    str | None,
    typer.Option("--county", help="County FIPS code (510); all counties when left out."),
]
YearOpt = Annotated[int, typer.Option("--year", help="The data's year (vintage).")]


def _bbox(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.replace(" ", "").split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not west,south,east,north in degrees, e.g. 6.10,46.18,6.18,46.23"
        ) from None


def _run(call: Callable[[Any], Any], cache_dir: Path | None, **fetcher: Any) -> None:
    """Run ``call(fetcher)`` with progress bars; print what was written and how."""
    from rich.console import Console
    from rich.table import Table

    from camcensus.fetch import Fetcher, FetchError, OfflineError

    with _friendly_errors():
        try:
            with Fetcher(cache_dir=cache_dir, progress=True, **fetcher) as http:
                result = call(http)
        except OfflineError as exc:
            _fail("Offline", exc)
            return
        except FetchError as exc:
            _fail("Fetch problem", exc)
            return
    s = result.stats
    table = Table(title=f"camcensus fetch {result.source}", show_header=False)
    table.add_row("written", str(result.path))
    table.add_row("rows", f"{result.rows:,}")
    table.add_row("sha256", result.sha256)
    table.add_row(
        "requests", f"{s.requests:,} ({s.retries:,} retries, {s.cache_hits:,} cache hits)"
    )
    if s.failures:
        table.add_row("failed tries", ", ".join(f"{k}: {v}" for k, v in sorted(s.failures.items())))
    for key, value in result.summary.items():
        if key in ("query", "jam_values", "variables") or isinstance(value, dict | list):
            continue
        table.add_row(key.replace("_", " "), _console_text(value))
    Console().print(table)
    for e in [*result.ledger.exclusions, *result.ledger.flagged]:
        typer.echo(f"  {e.count:,} × {_console_text(e.reason)}")
    for note in result.ledger.notes:
        if not note.startswith("fetch acs:"):
            typer.echo(f"  note: {_console_text(note)}")
    typer.echo(f"Provenance: {result.provenance_path}")
    typer.echo(f"Terms: {result.terms}")


@fetch_app.command(
    "osm",
    epilog="Example: camcensus fetch osm --bbox 6.10,46.18,6.18,46.23 --out geneva.json (or "
    "--place 'Baltimore, Maryland' instead of --bbox)",
)
def fetch_osm_command(
    out: Out,
    bbox: Annotated[
        str | None, typer.Option("--bbox", help="west,south,east,north (WGS84 degrees).")
    ] = None,
    place: Annotated[
        str | None, typer.Option("--place", help="A place name Nominatim resolves.")
    ] = None,
    overpass_url: Annotated[
        str | None,
        typer.Option("--overpass-url", help="Overpass server [env CAMCENSUS_OVERPASS_URL]."),
    ] = None,
    nominatim_url: Annotated[
        str | None,
        typer.Option("--nominatim-url", help="Nominatim server [env CAMCENSUS_NOMINATIM_URL]."),
    ] = None,
    cache_dir: CacheDir = None,
    refresh: Refresh = False,
    retries: Retries = 4,
    timeout_s: Timeout = 200.0,
    backoff_s: Backoff = 2.0,
) -> None:
    """Download OpenStreetMap's surveillance cameras (man_made=surveillance) as Overpass JSON."""
    from camcensus.fetch import fetch_osm

    box = _bbox(bbox)
    _run(
        lambda http: fetch_osm(
            out,
            bbox=box,
            place=place,
            overpass_url=overpass_url,
            nominatim_url=nominatim_url,
            fetcher=http,
        ),
        cache_dir,
        refresh=refresh,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )


@fetch_app.command(
    "tracts",
    epilog="Example: camcensus fetch tracts --state MD --county 510 --year 2019 "
    "--out baltimore_tracts.geojson",
)
def fetch_tracts_command(
    out: Out,
    state: StateOpt,
    year: YearOpt,
    county: CountyOpt = None,
    kind: Annotated[
        str,
        typer.Option("--kind", help="cb (cartographic boundary, 1:500k) or tiger (TIGER/Line)."),
    ] = "cb",
    tiger_url: Annotated[
        str | None,
        typer.Option("--tiger-url", help="Base of the files [env CAMCENSUS_TIGER_URL]."),
    ] = None,
    cache_dir: CacheDir = None,
    refresh: Refresh = False,
    retries: Retries = 4,
    timeout_s: Timeout = 120.0,
    backoff_s: Backoff = 2.0,
) -> None:
    """Download a county's census tracts (Census cartographic boundary or TIGER/Line files)."""
    from camcensus.fetch import fetch_tracts

    _run(
        lambda http: fetch_tracts(
            out,
            state=state,
            county=county,
            year=year,
            kind=kind,
            tiger_url=tiger_url,
            fetcher=http,
        ),
        cache_dir,
        refresh=refresh,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )


@fetch_app.command(
    "acs",
    epilog="Example: camcensus fetch acs --state LA --county 071 --year 2023 "
    "--variables B01003_001E,B19013_001E --out orleans_acs.csv",
)
def fetch_acs_command(
    out: Out,
    state: StateOpt,
    year: YearOpt,
    variables: Annotated[
        str,
        typer.Option(
            "--variables",
            help="Comma-separated ACS variables: B19013_001E, B19013_001M, B02001_002, "
            "group(B19001).",
        ),
    ],
    county: CountyOpt = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            envvar="CENSUS_API_KEY",
            help="Census API key (optional; never cached or shown) [env CENSUS_API_KEY].",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="The ACS dataset.")] = "acs/acs5",
    census_url: Annotated[
        str | None,
        typer.Option("--census-url", help="Census Data API base [env CAMCENSUS_CENSUS_API_URL]."),
    ] = None,
    cache_dir: CacheDir = None,
    refresh: Refresh = False,
    retries: Retries = 4,
    timeout_s: Timeout = 60.0,
    backoff_s: Backoff = 2.0,
) -> None:
    """Download ACS tract estimates (Census Data API); jam values become empty and counted."""
    from camcensus.fetch import fetch_acs

    _run(
        lambda http: fetch_acs(
            out,
            state=state,
            county=county,
            year=year,
            variables=variables,
            key=key,
            dataset=dataset,
            census_url=census_url,
            fetcher=http,
        ),
        cache_dir,
        refresh=refresh,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )


@fetch_app.command(
    "sqf", epilog="Example: camcensus fetch sqf --year 2019 --out data/sqf-2019.xlsx"
)
def fetch_sqf_command(
    out: Out,
    year: YearOpt,
    nypd_url: Annotated[
        str | None,
        typer.Option("--nypd-url", help="Base of NYPD downloads [env CAMCENSUS_NYPD_URL]."),
    ] = None,
    cache_dir: CacheDir = None,
    refresh: Refresh = False,
    retries: Retries = 4,
    timeout_s: Timeout = 120.0,
    backoff_s: Backoff = 2.0,
) -> None:
    """Download the NYPD's Stop, Question and Frisk file of a year (as published)."""
    from camcensus.fetch import fetch_sqf

    _run(
        lambda http: fetch_sqf(out, year=year, nypd_url=nypd_url, fetcher=http),
        cache_dir,
        refresh=refresh,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )


@fetch_app.command(
    "panoramax",
    epilog="Example: camcensus fetch panoramax --bbox 2.18,48.98,2.19,48.99 --out pictures.geojson",
)
def fetch_panoramax_command(
    out: Out,
    bbox: Annotated[str, typer.Option("--bbox", help="west,south,east,north (WGS84 degrees).")],
    max_items: Annotated[int, typer.Option("--max-items", help="Most items read.")] = 10_000,
    panoramax_url: Annotated[
        str | None,
        typer.Option("--panoramax-url", help="The instance [env CAMCENSUS_PANORAMAX_URL]."),
    ] = None,
    cache_dir: CacheDir = None,
    refresh: Refresh = False,
    retries: Retries = 4,
    timeout_s: Timeout = 60.0,
    backoff_s: Backoff = 2.0,
) -> None:
    """Download the picture metadata (STAC items) of a Panoramax instance in a box."""
    from camcensus.fetch import fetch_panoramax

    box = _bbox(bbox)
    assert box is not None
    _run(
        lambda http: fetch_panoramax(
            out, bbox=box, max_items=max_items, panoramax_url=panoramax_url, fetcher=http
        ),
        cache_dir,
        refresh=refresh,
        retries=retries,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )
