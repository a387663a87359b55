"""Command line: thin wrappers that parse arguments, call one library function and print.

Defaults are read from :mod:`camcensus.settings` (and so from ``CAMCENSUS_*``) when a command
runs, never frozen at import; the library functions write every file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from camcensus import settings
from camcensus._errors import InputError, OptionError

app = typer.Typer(
    help="Audit where surveillance cameras are, what they can see, and whom they watch.",
    no_args_is_help=True,
    add_completion=False,
)
reproduce_app = typer.Typer(help="Reproduce a published camera census.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")
export_app = typer.Typer(
    help="Export what volunteers tagged on the platform.", no_args_is_help=True
)
app.add_typer(export_app, name="export")
db_app = typer.Typer(help="Set up and migrate the platform's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
project_app = typer.Typer(help="Create the platform's projects.", no_args_is_help=True)
app.add_typer(project_app, name="project")
exposure_app = typer.Typer(
    help="How exposed a walk or an area is to what cameras can see.", no_args_is_help=True
)
app.add_typer(exposure_app, name="exposure")
console = Console(stderr=True)

_DATA = "../shared/data"


def _help(name: str) -> str:
    s = settings.SETTINGS[name]
    return f"{s.help} [default: setting {s.name} = {s.default}, env {s.env}]"


OutDir = Annotated[Path, typer.Option("--out", help="Folder to write the report into.")]
Force = Annotated[
    bool, typer.Option("--force", help="Replace an earlier camcensus report in --out.")
]
Radius = Annotated[
    float | None, typer.Option("--radius-m", help=_help("camera_radius_m"), show_default=False)
]
Band = Annotated[float | None, typer.Option("--band-m", help=_help("band_m"), show_default=False)]
Seed = Annotated[int | None, typer.Option("--seed", help=_help("seed"), show_default=False)]
PickOpt = Annotated[str | None, typer.Option("--pick", help=_help("pick"), show_default=False)]
ErrorsOpt = Annotated[
    str,
    typer.Option(
        "--errors",
        help="'raise': stop at bad rows and list them all; 'exclude': drop them and count them "
        "in the report's exclusions.",
    ),
]
TractsLayer = Annotated[
    str | None,
    typer.Option("--tracts-layer", help="Layer of a multi-layer tract file (e.g. GeoPackage)."),
]
TractsCrs = Annotated[
    str | None,
    typer.Option(
        "--tracts-crs",
        help="CRS of the tract file when it declares none or a wrong one (e.g. EPSG:2908).",
    ),
]
Threshold = Annotated[
    float | None, typer.Option("--threshold", help=_help("threshold"), show_default=False)
]
Permutations = Annotated[
    int | None, typer.Option("--permutations", help=_help("permutations"), show_default=False)
]
StopsCrs = Annotated[
    str | None, typer.Option("--stops-crs", help=_help("stops_crs"), show_default=False)
]
Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="DATABASE_URL",
        help="The platform's database URL: sqlite:///camcensus.db or "
        "postgresql+psycopg://user@host/db [default: $DATABASE_URL, else "
        "sqlite:///camcensus.db].",
        show_default=False,
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project", help="The project's name (default: every project).", show_default=False
    ),
]


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn every expected failure into a message and exit status 2 (never a traceback)."""
    from alembic.util import CommandError
    from pyogrio.errors import DataLayerError, DataSourceError
    from sqlalchemy.exc import SQLAlchemyError

    from camcensus.db.errors import PlatformError
    from camcensus.report import OutputError

    try:
        yield
    except InputError as exc:
        _fail("Input problem", exc)
    except OutputError as exc:
        _fail("Output problem", exc)
    except settings.SettingError as exc:
        _fail("Setting problem", exc)
    except PlatformError as exc:
        details = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors)
        _fail("Refused", RuntimeError(exc.message + (f" ({details})" if details else "")))
    except SQLAlchemyError as exc:
        _fail("Database problem", RuntimeError(_database_message(exc)))
    except CommandError as exc:
        _fail(
            "Database problem",
            RuntimeError(f"{exc}. Fix: camcensus db current shows the database's revision"),
        )
    except (DataSourceError, DataLayerError) as exc:
        _fail("File problem", RuntimeError(f"{exc}. Fix: check the file is a readable GIS file"))
    except (ValueError, OSError) as exc:
        _fail("Error", exc)


def _database_message(exc: BaseException) -> str:
    """Return the database driver's first line, and the fix when the schema is missing."""
    orig = getattr(exc, "orig", None)
    first = (str(orig) if orig is not None else str(exc)).strip().splitlines()
    text = first[0] if first else type(exc).__name__
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        text += ". Fix: create the platform's tables with camcensus db upgrade --database URL"
    return text


def _fail(kind: str, exc: BaseException) -> None:
    console.print(Text(f"{kind}: ", style="bold red") + Text(str(exc)), highlight=False)
    raise typer.Exit(2) from exc


def _progress() -> tuple[Callable[[str], None], Any]:
    status = console.status("starting")

    def update(step: str) -> None:
        status.update(Text(f"{step}…", style="bold"))

    return update, status


def _crs(value: str | None, option: str) -> str | None:
    """Check that ``value`` names a CRS pyproj knows (parsing, before any work)."""
    from camcensus._geo import check_crs

    return None if value is None else check_crs(value, option)


def _checked(name: str, value: Any, option: str) -> Any:
    if value is not None:
        settings.require(name, value, option)
    return value


def _errors(value: str) -> Any:
    if value not in ("raise", "exclude"):
        raise typer.BadParameter("--errors must be 'raise' or 'exclude'")
    return value


def _options(
    radius_m: float | None, band_m: float | None, pick: str | None, seed: int | None
) -> Any:
    from camcensus.pipeline import Options

    given: dict[str, Any] = {"radius_m": radius_m, "band_m": band_m, "pick": pick, "seed": seed}
    return Options(**{k: v for k, v in given.items() if v is not None})


def _console_text(value: object) -> str:
    """Return ``value`` on one line without control or direction-changing characters (a name
    from an input file must not reshape the terminal's table)."""
    import unicodedata

    text = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in str(value)
    )
    return " ".join(text.split())


def _summary(result: Any, out: Path) -> None:
    n = result.numbers
    table = Table(title=result.title, show_header=False)
    for key in ("panoramas", "total_cameras", "public_cameras", "public_intersections"):
        if key in n:
            table.add_row(key.replace("_", " "), f"{n[key]:,}")
    if n.get("covered_land_share") is not None:
        names = [_console_text(d)[:30] for d in n.get("study_area_districts", [])]
        area = ", ".join(names[:5]) + (" …" if len(names) > 5 else "") or "study area"
        table.add_row(
            f"land within reach of public cameras ({area})",
            f"{100 * n['covered_land_share']:.1f}%",
        )
    table.add_row("records excluded", f"{result.ledger.total():,}")
    Console().print(table)
    Console().print(f"Report: {out / 'index.html'}")


@app.command(epilog="Example: camcensus demo --out out/demo --force")
def demo(
    out: OutDir = Path("out/demo"),
    seed: Seed = None,
    force: Force = False,
    platform: Annotated[
        bool,
        typer.Option(
            "--platform/--no-platform",
            help="Collect the counts through the volunteer platform (real server on a loopback "
            "port, simulated volunteers tagging over HTTP, export); --no-platform draws them "
            "directly (faster).",
        ),
    ] = True,
) -> None:
    """Simulate a seeded synthetic city, collect its camera counts through the volunteer
    platform, and write the full report (its input files go beside the report, in
    <out>-inputs; the platform's export in <out>/export)."""
    from camcensus.pipeline import demo_report

    update, status = _progress()
    with _friendly_errors(), status:
        result = demo_report(out, seed=seed, force=force, platform=platform, progress=update)
    _summary(result, out)
    if platform:
        Console().print(f"Platform export (Amnesty's four CSVs): {out / 'export'}")
    Console().print(
        "Tag the synthetic city by hand: camcensus serve --demo, then open "
        "http://127.0.0.1:8000 in a browser"
    )


@reproduce_app.command(
    "nyc",
    epilog=(
        f"Example: camcensus reproduce nyc --intersections "
        f"{_DATA}/amnesty_decode/counts_per_intersections_citywide_reduced.csv --tracts "
        f"{_DATA}/census/nyc_tracts_2019_shoreline/tracts.shp --census "
        f"{_DATA}/census/acs2019_tract/census.csv --boroughs "
        f"{_DATA}/boundaries/nyc_borough_boundary_water_query.json --out out/nyc"
    ),
)
def reproduce_nyc(
    tracts: Annotated[Path, typer.Option(help="Tract polygons (any OGR format and CRS).")],
    out: OutDir = Path("out/nyc"),
    intersections: Annotated[
        Path | None,
        typer.Option(help="Aggregated counts_per_intersections.csv (any column subset)."),
    ] = None,
    raw_counts: Annotated[
        Path | None, typer.Option(help="Raw counts.csv (one row per submission).")
    ] = None,
    raw_intersections: Annotated[
        Path | None, typer.Option(help="Raw intersections.csv (IntersectionId -> PanoramaId).")
    ] = None,
    panoramas: Annotated[
        Path | None, typer.Option(help="panorama_url.csv (GoogleLat/GoogleLong).")
    ] = None,
    census: Annotated[Path | None, typer.Option(help="ACS tract table (census.csv).")] = None,
    boroughs: Annotated[
        Path | None, typer.Option(help="Borough polygons used to assign panoramas.")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="A per-tract table to compare with, e.g. Amnesty's camera_count.csv."),
    ] = None,
    stops: Annotated[
        list[Path] | None,
        typer.Option(help="Stop records (sqf-YYYY.xlsx/csv) or tract counts; repeatable."),
    ] = None,
    stops_format: Annotated[
        str, typer.Option(help="records, tract-counts or auto (by file content).")
    ] = "auto",
    stops_crs: StopsCrs = None,
    ntas: Annotated[
        Path | None, typer.Option(help="NTA polygons, for cluster-robust errors.")
    ] = None,
    race_table: Annotated[
        Path | None,
        typer.Option(help="Alternative race table (nycgeo tract_acs_data.csv, non-Hispanic)."),
    ] = None,
    threshold: Threshold = None,
    permutations: Permutations = None,
    sensitivity: Annotated[
        bool, typer.Option(help="Refit the models for camera radii 30-200 m.")
    ] = True,
    tracts_layer: TractsLayer = None,
    tracts_crs: TractsCrs = None,
    radius_m: Radius = None,
    band_m: Band = None,
    pick: PickOpt = None,
    seed: Seed = None,
    errors: ErrorsOpt = "raise",
    force: Force = False,
) -> None:
    """Reproduce Amnesty's NYC camera census, per-tract coverage and (with --stops) the
    disparity models, and write the report."""
    from camcensus.studies.nyc import reproduce_nyc_report

    update, status = _progress()
    with _friendly_errors(), status:
        result = reproduce_nyc_report(
            out,
            force=force,
            tracts=tracts,
            intersections=intersections,
            raw_counts=raw_counts,
            raw_intersections=raw_intersections,
            panoramas=panoramas,
            census=census,
            boroughs=boroughs,
            reference=reference,
            stops=stops or [],
            stops_format=stops_format,
            stops_crs=_crs(stops_crs, "--stops-crs"),
            ntas=ntas,
            race_table=race_table,
            sensitivity=sensitivity,
            threshold=threshold,
            permutations=permutations,
            tracts_layer=tracts_layer,
            tracts_crs=_crs(tracts_crs, "--tracts-crs"),
            options=_options(radius_m, band_m, pick, seed),
            errors=_errors(errors),
            progress=update,
        )
    _summary(result, out)


@app.command(
    epilog=(
        "Example: camcensus aggregate --raw-counts counts.csv --raw-intersections "
        "intersections.csv --panoramas panorama_url.csv --pick first "
        "--out counts_per_intersections.csv"
    ),
)
def aggregate(
    raw_counts: Annotated[Path, typer.Option(help="Raw counts.csv.")],
    raw_intersections: Annotated[Path, typer.Option(help="Raw intersections.csv.")],
    out: Annotated[Path, typer.Option(help="CSV to write, one row per panorama.")],
    panoramas: Annotated[Path | None, typer.Option(help="panorama_url.csv.")] = None,
    boroughs: Annotated[Path | None, typer.Option(help="Borough polygons.")] = None,
    pick: PickOpt = None,
    seed: Seed = None,
    errors: ErrorsOpt = "raise",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Aggregate volunteers' submissions into one row per panorama (Amnesty's layout)."""
    from camcensus.pipeline import aggregate_to_csv

    with _friendly_errors():
        n, ledger = aggregate_to_csv(
            raw_counts=raw_counts,
            raw_intersections=raw_intersections,
            panoramas=panoramas,
            boroughs=boroughs,
            out=out,
            options=_options(None, None, pick, seed),
            errors=_errors(errors),
            force=force,
        )
    Console().print(f"{n:,} panoramas written to {out}")
    Console().print_json(json.dumps({"exclusions": ledger.records(), "notes": ledger.notes}))


@app.command(
    epilog=(
        f"Example: camcensus coverage --intersections "
        f"{_DATA}/amnesty_decode/amnesty_international_cameras_brooklyn.csv --tracts "
        f"{_DATA}/census/nyc_tracts_2019_shoreline/tracts.shp --out tract_coverage.csv"
    ),
)
def coverage(
    intersections: Annotated[Path, typer.Option(help="Aggregated counts per panorama (CSV).")],
    tracts: Annotated[Path, typer.Option(help="Tract polygons (any OGR format and CRS).")],
    out: Annotated[Path, typer.Option(help="CSV to write, one row per tract.")],
    tracts_layer: TractsLayer = None,
    tracts_crs: TractsCrs = None,
    radius_m: Radius = None,
    band_m: Band = None,
    errors: ErrorsOpt = "raise",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Compute effective and counted public cameras per tract (Amnesty's camera_count table)."""
    from camcensus.pipeline import coverage_to_csv

    with _friendly_errors():
        n, ledger = coverage_to_csv(
            intersections=intersections,
            tracts=tracts,
            out=out,
            tracts_layer=tracts_layer,
            tracts_crs=_crs(tracts_crs, "--tracts-crs"),
            options=_options(radius_m, band_m, None, None),
            errors=_errors(errors),
            force=force,
        )
    Console().print(f"{n:,} tracts written to {out}")
    for e in ledger:
        Console().print(Text(f"excluded: {e.count:,} ({e.stage}: {e.reason})"))
    for note in ledger.notes:
        Console().print(Text(f"note: {note}"))


@app.command(
    "stats",
    epilog=(
        "Example: camcensus stats --tract-table out/nyc/tables/tract_coverage.csv --tracts "
        f"{_DATA}/census/nyc_tracts_2019_shoreline/tracts.shp --stops "
        f"{_DATA}/census/acs2019_tract/full_df.csv --out out/stats"
    ),
)
def stats_command(
    tract_table: Annotated[
        Path, typer.Option(help="Tract table with population, race and coverage columns.")
    ],
    tracts: Annotated[Path, typer.Option(help="Tract polygons (for the spatial checks).")],
    out: Annotated[Path, typer.Option(help="Folder for models.json and tables.")],
    census: Annotated[
        Path | None, typer.Option(help="ACS table to take population columns from.")
    ] = None,
    stops: Annotated[
        list[Path] | None, typer.Option(help="Stop records or tract counts; repeatable.")
    ] = None,
    stops_format: Annotated[str, typer.Option(help="records, tract-counts or auto.")] = "auto",
    stops_crs: StopsCrs = None,
    ntas: Annotated[Path | None, typer.Option(help="NTA polygons (cluster-robust SEs).")] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="A published per-tract coverage table (Amnesty's camera_count.csv) that "
            "explains, tract by tract, differences from the published models."
        ),
    ] = None,
    study: Annotated[
        str,
        typer.Option(
            help="'generic', or 'nyc' for Amnesty's choices (Queens 2019 sanity model, "
            "Manhattan left out of two analyses, printed models compared)."
        ),
    ] = "generic",
    threshold: Threshold = None,
    permutations: Permutations = None,
    min_population: Annotated[
        int | None,
        typer.Option("--min-population", help=_help("min_population"), show_default=False),
    ] = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Run the disparity models on any city's tract table and write models.json and tables."""
    from camcensus.pipeline import stats_to_folder
    from camcensus.studies import design_for

    with _friendly_errors():
        findings = stats_to_folder(
            out,
            force=force,
            tract_table=tract_table,
            tracts=tracts,
            census=census,
            stops=stops or [],
            stops_format=stops_format,
            stops_crs=_crs(stops_crs, "--stops-crs"),
            ntas=ntas,
            threshold=threshold,
            permutations=permutations,
            min_population=_checked("min_population", min_population, "--min-population"),
            reference=reference,
            design=design_for(study),
            seed=_checked("seed", seed, "--seed"),
        )
    for line in findings:
        Console().print(Text("• " + line))


@app.command("settings", epilog="Example: camcensus settings")
def show_settings() -> None:
    """List every setting with its default, the environment variable that overrides it and
    the value in effect now."""
    with _friendly_errors():
        typer.echo(settings.markdown_table(current=True))


def _check_database_url(url: str) -> None:
    """Refuse a URL of a database the platform does not run on (before any driver import)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme != "sqlite" and not scheme.startswith("postgres"):
        raise OptionError(
            f"--database {url.split('://', 1)[0]}://... is not a database the platform runs on; "
            "use sqlite:///path/to/camcensus.db or postgresql://user@host/db"
        )


def _existing_database(database: str | None) -> str | None:
    """Refuse a SQLite URL whose file does not exist (connecting would create an empty one)."""
    from camcensus._errors import Problem
    from camcensus.db.engine import DEFAULT_URL

    url = database or DEFAULT_URL
    _check_database_url(url)
    if url.startswith("sqlite:///") and ":memory:" not in url and "mode=memory" not in url:
        path = Path(url[len("sqlite:///") :].split("?")[0])
        if not path.is_file():
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        "no such database file",
                        "the platform's SQLite database",
                        "pass --database sqlite:///path/to/camcensus.db (or set DATABASE_URL), "
                        "or create it with camcensus db upgrade",
                    )
                ]
            )
    return database


@app.command(
    epilog="Example: camcensus serve --demo --port 8000",
)
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 8000,
    database: Database = None,
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="Folder of the panoramas' images [default: ./media].",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Add a synthetic city anyone can tag at once (project 'demo'); without "
            "--database it lives in a temporary folder.",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Addresses of the TLS proxy in front (comma-separated) whose "
            "X-Forwarded-For/-Proto are trusted [default: 127.0.0.1].",
            show_default=False,
        ),
    ] = None,
    blur: Annotated[
        bool,
        typer.Option(
            "--blur/--no-blur",
            help="Blur faces and licence plates in images pinned while serving (slow: "
            "blur imports beforehand; see docs/imagery.md for what it misses).",
        ),
    ] = False,
    gsv_key: Annotated[
        str | None,
        typer.Option(
            "--gsv-key",
            envvar="CAMCENSUS_GSV_KEY",
            help="Google Street View key: gsv: panoramas are fetched and pinned on first "
            "request [default: $CAMCENSUS_GSV_KEY].",
            show_default=False,
        ),
    ] = None,
    exposure_cameras: Annotated[
        Path | None,
        typer.Option(
            "--exposure-cameras",
            help="Cameras of the /exposure page: a Decode counts CSV, a cameras "
            "GeoPackage/GeoJSON or an OSM file (with --exposure-streets).",
            show_default=False,
        ),
    ] = None,
    exposure_streets: Annotated[
        Path | None,
        typer.Option(
            "--exposure-streets",
            help="Street network of the /exposure page: OSM .osm/.osm.pbf or GeoJSON lines.",
            show_default=False,
        ),
    ] = None,
    exposure_buildings: Annotated[
        Path | None,
        typer.Option(
            "--exposure-buildings",
            help="Buildings for the occluded and pixel_density models (OSM or polygons).",
            show_default=False,
        ),
    ] = None,
    exposure_model: Annotated[
        str, typer.Option("--exposure-model", help="Coverage model of the /exposure page.")
    ] = "disc",
    exposure_radius_m: Annotated[
        float | None,
        typer.Option("--exposure-radius-m", help=_help("camera_radius_m"), show_default=False),
    ] = None,
    exposure_public_only: Annotated[
        bool,
        typer.Option(
            "--exposure-public-only",
            help="Keep only cameras on street furniture (Amnesty's public cameras).",
        ),
    ] = False,
) -> None:
    """Run the volunteer platform (web pages and JSON API) until interrupted."""
    from camcensus.web import serve as serve_platform

    with _friendly_errors():
        exposure = None
        if (exposure_cameras is None) != (exposure_streets is None):
            raise OptionError(
                "--exposure-cameras and --exposure-streets go together: give both (or "
                "neither) to serve the /exposure page."
            )
        if exposure_cameras is not None and exposure_streets is not None:
            from camcensus.exposure import load_index

            exposure = load_index(
                cameras=exposure_cameras,
                streets=exposure_streets,
                buildings=exposure_buildings,
                model=exposure_model,
                radius_m=_checked("camera_radius_m", exposure_radius_m, "--exposure-radius-m"),
                public_only=exposure_public_only,
            )
        serve_platform(
            exposure=exposure,
            host=host,
            port=port,
            database=database,
            demo=demo,
            media=media,
            forwarded_allow_ips=forwarded_allow_ips,
            blur=blur,
            gsv_key=gsv_key,
        )


@export_app.command(
    "decode",
    epilog="Example: camcensus export decode --database sqlite:///camcensus.db --project demo "
    "--out out/export",
)
def export_decode_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the four CSV files into.")],
    database: Database = None,
    project: ProjectOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier export in --out.")
    ] = False,
) -> None:
    """Write Amnesty's raw export (counts.csv, intersections.csv, panorama_url.csv,
    cameras.csv) that camcensus aggregate and reproduce read unchanged."""
    from camcensus.db import connect
    from camcensus.db.export import export_decode

    with _friendly_errors():
        engine = connect(_existing_database(database))
        try:
            paths = export_decode(engine, project=project, out=out, force=force)
        finally:
            engine.dispose()
    Console().print(Text((paths["readme"]).read_text(encoding="utf-8")))
    Console().print(Text(f"Export: {out}"))


@export_app.command(
    "tags",
    epilog="Example: camcensus export tags --database sqlite:///camcensus.db --project demo "
    "--format geojson --out out/tags.geojson",
)
def export_tags_command(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    database: Database = None,
    project: ProjectOpt = None,
    format: Annotated[
        str,
        typer.Option(
            "--format", help="geojson, gpkg (GeoPackage) or csv (flat, one value per cell)."
        ),
    ] = "geojson",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out file.")] = False,
) -> None:
    """Write every tag (one click = one ray, at its panorama) as GeoJSON, GeoPackage or CSV."""
    from camcensus.db import connect
    from camcensus.db.export import TAG_FORMATS, export_tags

    fmt = next((f for f in TAG_FORMATS if f == format), None)
    if fmt is None:
        raise typer.BadParameter(f"--format must be one of {', '.join(TAG_FORMATS)}")
    with _friendly_errors():
        engine = connect(_existing_database(database))
        try:
            path = export_tags(engine, project=project, out=out, format=fmt, force=force)
        finally:
            engine.dispose()
    Console().print(Text(f"Tags: {path}"))


Revision = Annotated[str, typer.Option("--revision", help="Alembic revision to go to.")]


@app.command(
    "locate",
    epilog="Example: camcensus locate --database sqlite:///camcensus.db --project demo "
    "--out out/located",
)
def locate_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the cameras into.")],
    database: Database = None,
    project: ProjectOpt = None,
    cluster_deg: Annotated[
        float | None,
        typer.Option("--cluster-deg", help=_help("locate_cluster_deg"), show_default=False),
    ] = None,
    min_support: Annotated[
        int | None,
        typer.Option("--min-support", help=_help("locate_min_support"), show_default=False),
    ] = None,
    machine: Annotated[
        str | None,
        typer.Option("--machine", help=_help("locate_machine"), show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier run's files in --out.")
    ] = False,
) -> None:
    """Turn the volunteers' tags (rays) into cameras: cluster them per panorama, triangulate
    across panoramas, estimate range from pitch where one panorama sees a camera. The
    detector's tags never settle a camera alone: machine-only candidates go to
    machine_only.csv."""
    from camcensus.db import connect
    from camcensus.locate import MACHINE_MODES, write_located

    with _friendly_errors():
        machine = _checked("locate_machine", machine, "--machine")
        given = settings.get_str("locate_machine") if machine is None else machine
        mode = next(m for m in MACHINE_MODES if m == given)
        cluster_deg = _checked("locate_cluster_deg", cluster_deg, "--cluster-deg")
        min_support = _checked("locate_min_support", min_support, "--min-support")
        engine = connect(_existing_database(database))
        try:
            paths = write_located(
                engine,
                out,
                project=project,
                max_sep_deg=cluster_deg,
                min_support=min_support,
                machine=mode,
                force=force,
            )
        finally:
            engine.dispose()
    Console().print(Text(_located_summary(paths)))
    Console().print(Text(f"Files: {out}"))


def _located_summary(paths: dict[str, Path]) -> str:
    """Return the printed summary of `camcensus locate` (human-confirmed and machine-only
    cameras as separate numbers whenever the detector's tags were read)."""
    import geopandas as gpd
    import pandas as pd

    from camcensus.io.formats import read_csv

    cams = gpd.read_file(paths["cameras"], layer="cameras")
    summary = read_csv(paths["summary"])
    candidates = read_csv(paths["candidates"])
    machine_only = read_csv(paths["machine_only"])
    methods = cams["method"].value_counts() if "method" in cams.columns else pd.Series()
    lines = [f"Cameras located: {len(cams):,}"]
    lines += [f"  {method}: {int(n):,}" for method, n in methods.items()]
    if int(candidates["machine_tags"].sum()) > 0:
        evidence = cams["evidence"].value_counts()
        lines.append(
            f"Human-confirmed cameras: {len(cams):,} (volunteers "
            f"{int(evidence.get('volunteers', 0)):,}, volunteers and the detector "
            f"{int(evidence.get('volunteers+machine', 0)):,}, detector tags confirmed in the "
            f"verify task {int(evidence.get('verified machine', 0)):,})"
        )
        status = machine_only["verify_status"].astype(str).value_counts()
        lines.append(
            f"Machine-only candidates (not cameras; machine_only.csv): {len(machine_only):,} "
            f"(open {int(status.get('open', 0)):,}, rejected {int(status.get('rejected', 0)):,})"
        )
    for _, row in summary.iterrows():
        lines.append(
            f"{row['cameras']}: clustered {row['clustered']:g} vs median counts {row['median']:g}"
        )
    return "\n".join(lines)


@db_app.command("upgrade", epilog="Example: camcensus db upgrade --database sqlite:///camcensus.db")
def db_upgrade(database: Database = None, revision: Revision = "head") -> None:
    """Create the platform's tables, or bring them to the newest schema."""
    from camcensus.db import current, upgrade

    with _friendly_errors():
        _check_database_url(database or os.environ.get("DATABASE_URL") or "sqlite:///")
        upgrade(database, revision)
        Console().print(Text(f"Database at revision {current(database)}"))


@db_app.command(
    "downgrade", epilog="Example: camcensus db downgrade --database sqlite:///camcensus.db"
)
def db_downgrade(database: Database = None, revision: Revision = "base") -> None:
    """Take the schema back to --revision (base: drop every platform table and its data)."""
    from camcensus.db import current, downgrade

    with _friendly_errors():
        downgrade(_existing_database(database), revision)
        Console().print(Text(f"Database at revision {current(database)}"))


@db_app.command("current", epilog="Example: camcensus db current --database sqlite:///camcensus.db")
def db_current(database: Database = None) -> None:
    """Print the schema revision of the database (none: no platform tables yet)."""
    from camcensus.db import current

    with _friendly_errors():
        revision = current(_existing_database(database))
    typer.echo(revision or "none")


@db_app.command(
    "create-admin",
    epilog="Example: camcensus db create-admin --database sqlite:///camcensus.db "
    "--pseudonym admin-1",
)
def db_create_admin(
    pseudonym: Annotated[
        str, typer.Option("--pseudonym", help="The admin's pseudonym (3-40 characters).")
    ],
    database: Database = None,
) -> None:
    """Create an admin account and print its random password once."""
    import secrets

    from sqlalchemy.orm import Session

    from camcensus.db import connect
    from camcensus.db.accounts import create_volunteer

    password = secrets.token_urlsafe(18)
    with _friendly_errors():
        engine = connect(_existing_database(database))
        try:
            with Session(engine) as session, session.begin():
                admin = create_volunteer(
                    session, pseudonym=pseudonym, password=password, role="admin"
                )
                public_id = admin.public_id
        finally:
            engine.dispose()
    typer.echo(f"Admin {_console_text(pseudonym)} created (public id {public_id}).")
    typer.echo(f"Password (shown only now; store it safely): {password}")


def main() -> None:
    """Run the command line."""
    app()


# Commands defined in their own modules register themselves on `app` / `export_app`.
from camcensus import cli_audit, cli_cameras, cli_detect, cli_fetch, cli_quality  # noqa: E402, F401


def _lat_lon(value: str, option: str) -> tuple[float, float]:
    """Return (lon, lat) from ``LAT,LON`` text, or raise naming ``option``."""
    parts = value.replace(" ", "").split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        lat = lon = float("nan")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise OptionError(
            f"{option} {value!r} is not LAT,LON in degrees. Fix: e.g. {option} 40.7484,-73.9857 "
            "(latitude first, as map sites show it)."
        )
    return lon, lat


ExpCameras = Annotated[
    Path,
    typer.Option(
        "--cameras",
        help="Cameras: a Decode counts CSV (Amnesty's counts_per_intersections), a cameras "
        "GeoPackage/GeoJSON, or an OSM .osm/.osm.pbf (man_made=surveillance nodes).",
    ),
]
ExpStreets = Annotated[
    Path,
    typer.Option(
        "--streets",
        help="Street network: OSM .osm/.osm.pbf (walkable ways) or a GeoJSON/GeoPackage of "
        "centre lines; noded where lines share a vertex.",
    ),
]
ExpBuildings = Annotated[
    Path | None,
    typer.Option(
        "--buildings",
        help="Buildings (OSM or polygons) for the occluded and pixel_density models.",
        show_default=False,
    ),
]
ExpModel = Annotated[
    str, typer.Option("--model", help="Coverage model: disc, fov, occluded or pixel_density.")
]
ExpPublic = Annotated[
    bool,
    typer.Option(
        "--public-only",
        help="Keep only cameras on street furniture (pole cameras: Amnesty's public cameras).",
    ),
]
ExpOut = Annotated[Path, typer.Option("--out", help="Folder to write the results into.")]


@exposure_app.command(
    "route",
    epilog=(
        "Example: camcensus exposure route --cameras "
        f"{_DATA}/amnesty_decode/counts_per_intersections_citywide_reduced.csv --public-only "
        f"--streets {_DATA}/osm_nyc/manhattan_named_streets.geojson --model disc --radius-m 120 "
        "--from 40.7484,-73.9857 --to 40.7614,-73.9776 --least-watched --max-detour 0.25 "
        "--out out/route"
    ),
)
def exposure_route(
    cameras: ExpCameras,
    streets: ExpStreets,
    from_: Annotated[str, typer.Option("--from", help="Start, LAT,LON in degrees.")],
    to: Annotated[str, typer.Option("--to", help="End, LAT,LON in degrees.")],
    out: ExpOut,
    buildings: ExpBuildings = None,
    model: ExpModel = "disc",
    radius_m: Radius = None,
    via: Annotated[
        list[str] | None,
        typer.Option("--via", help="A point to pass through, LAT,LON (repeat, in order)."),
    ] = None,
    least_watched: Annotated[
        bool,
        typer.Option(
            "--least-watched", help="Also find the least-watched route within the detour cap."
        ),
    ] = False,
    max_detour: Annotated[
        float | None,
        typer.Option("--max-detour", help=_help("max_detour"), show_default=False),
    ] = None,
    walking_speed: Annotated[
        float | None,
        typer.Option("--walking-speed", help=_help("walking_speed_m_s"), show_default=False),
    ] = None,
    public_only: ExpPublic = False,
) -> None:
    """Measure how much of a walk lies inside what cameras can see (route.json, route.geojson)."""
    from camcensus.exposure import load_index, route_to_files

    with _friendly_errors():
        origin = _lat_lon(from_, "--from")
        destination = _lat_lon(to, "--to")
        via_points = [_lat_lon(v, "--via") for v in via or []]
        _checked("max_detour", max_detour, "--max-detour")
        _checked("walking_speed_m_s", walking_speed, "--walking-speed")
        index = load_index(
            cameras=cameras,
            streets=streets,
            buildings=buildings,
            model=model,
            radius_m=_checked("camera_radius_m", radius_m, "--radius-m"),
            public_only=public_only,
        )
        try:
            result = index.route(
                origin,
                destination,
                via=via_points,
                least_watched=least_watched,
                max_detour=max_detour,
                walking_speed_m_s=walking_speed,
            )
        except OptionError as exc:
            raise OptionError(
                f"{exc} (--from, --to and --via are LAT,LON: latitude first)"
            ) from exc
        paths = route_to_files(result, out)
    table = Table(title=f"Route exposure ({result.model})")
    table.add_column("band")
    table.add_column("covered", justify="right")
    table.add_column("share", justify="right")
    table.add_column("seconds", justify="right")
    for band, fig in result.bands.items():
        table.add_row(
            band,
            f"{fig['covered_m']:,.0f} m",
            f"{100 * fig['share_covered']:.1f}%",
            f"{fig['seconds_exposed']:,.0f}",
        )
    Console().print(table)
    Console().print(f"length {result.length_m:,.0f} m, {result.n_cameras:,} cameras see it")
    if result.least_watched is not None:
        lw = result.least_watched
        share = lw["bands"][result.routing_band]["share_covered"]
        Console().print(
            f"least watched: {lw['length_m']:,.0f} m (+{100 * lw['detour']:.1f}%), "
            f"{100 * share:.1f}% covered"
        )
    for note in index.network.ledger.notes:
        Console().print(Text(f"note: {note}"))
    Console().print(f"Written: {paths[0]}, {paths[1]}")


@exposure_app.command(
    "areas",
    epilog=(
        "Example: camcensus exposure areas --cameras "
        f"{_DATA}/amnesty_decode/counts_per_intersections_citywide_reduced.csv --public-only "
        f"--streets {_DATA}/osm_nyc/manhattan_named_streets.geojson --areas "
        f"{_DATA}/boundaries/nynta2020_24c/nynta2020.shp --id-column NTA2020 --out out/areas"
    ),
)
def exposure_areas(
    cameras: ExpCameras,
    streets: ExpStreets,
    areas: Annotated[
        Path, typer.Option("--areas", help="Area polygons (parks, tracts, districts; any CRS).")
    ],
    id_column: Annotated[str, typer.Option("--id-column", help="Column naming each area.")],
    out: ExpOut,
    buildings: ExpBuildings = None,
    model: ExpModel = "disc",
    radius_m: Radius = None,
    areas_layer: Annotated[
        str | None, typer.Option("--areas-layer", help="Layer of a multi-layer area file.")
    ] = None,
    public_only: ExpPublic = False,
) -> None:
    """Share of street length inside coverage per area and band (areas.csv, areas.geojson)."""
    import geopandas as gpd

    from camcensus.exposure import areas_to_files, load_index

    with _friendly_errors():
        index = load_index(
            cameras=cameras,
            streets=streets,
            buildings=buildings,
            model=model,
            radius_m=_checked("camera_radius_m", radius_m, "--radius-m"),
            public_only=public_only,
        )
        gdf_areas = gpd.read_file(areas, layer=areas_layer)
        gdf_areas.attrs["source"] = str(areas)
        table, csv, geo = areas_to_files(index, gdf_areas, id_column=id_column, out=out)
    Console().print(f"{table[id_column].nunique():,} areas written to {csv} and {geo}")


@project_app.command(
    "create",
    epilog="Example: camcensus project create --database sqlite:///camcensus.db --name my-city "
    "--title 'My city' --folder panoramas/ --intersections intersections.csv --media media",
)
def project_create(
    name: Annotated[str, typer.Option("--name", help="The project's name ([a-z0-9-], unique).")],
    title: Annotated[str, typer.Option("--title", help="The title volunteers see.")],
    database: Database = None,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--folder",
            help="Folder of equirectangular images with an index (CSV or GeoJSON of panorama "
            "id, lat, lon, heading, capture date, licence); see docs/imagery.md.",
            show_default=False,
        ),
    ] = None,
    panoramax: Annotated[
        str | None,
        typer.Option(
            "--panoramax",
            help="A Panoramax instance's URL (e.g. https://api.panoramax.xyz) to import from.",
            show_default=False,
        ),
    ] = None,
    bbox: Annotated[
        str | None,
        typer.Option(
            "--bbox", help="west,south,east,north (WGS84) for --panoramax.", show_default=False
        ),
    ] = None,
    intersections: Annotated[
        Path | None,
        typer.Option(
            "--intersections",
            help="Intersections CSV (id, lon, lat[, area]); each is matched to its nearest "
            "panorama.",
            show_default=False,
        ),
    ] = None,
    area: Annotated[
        Path | None,
        typer.Option(
            "--area", help="GeoJSON polygon: keep only what lies inside.", show_default=False
        ),
    ] = None,
    media: Annotated[
        Path, typer.Option("--media", help="The media root the server uses (--media of serve).")
    ] = Path("media"),
    k: Annotated[int, typer.Option("--k", min=1, max=20, help="Volunteers per panorama.")] = 3,
    licence: Annotated[
        str, typer.Option("--licence", help="Licence of the collected tags.")
    ] = "CC-BY-SA 4.0",
    image_licence: Annotated[
        str | None,
        typer.Option(
            "--image-licence",
            help="Licence of the folder's images whose index row leaves it empty.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a project from a folder of panoramas or a Panoramax bounding box."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from camcensus._errors import Ledger
    from camcensus.db import connect
    from camcensus.db.models import Project
    from camcensus.db.projects import create_project, project_progress
    from camcensus.imagery import import_project_source

    if (folder is None) == (panoramax is None):
        raise typer.BadParameter("give exactly one of --folder or --panoramax")
    if not re.fullmatch(r"[a-z0-9-]{1,64}", name):
        raise typer.BadParameter(
            f"--name {name!r}: use 1-64 lower-case letters, digits and '-' (it goes in URLs), "
            "e.g. my-city"
        )
    if not title.strip():
        raise typer.BadParameter("--title is empty; give the title volunteers see")
    box = None
    if bbox is not None:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            raise typer.BadParameter("--bbox must be four numbers: west,south,east,north") from None
    ledger = Ledger()
    with _friendly_errors():
        engine = connect(_existing_database(database))
        try:
            with Session(engine) as session:
                taken = session.scalar(select(Project.name).where(Project.name == name))
            if taken:
                raise OptionError(
                    f"--name {name!r} is taken by another project; choose another name "
                    "(camcensus export decode --project NAME exports an existing one)"
                )
            panoramas, crossings = import_project_source(
                source="folder" if folder is not None else "panoramax",
                media_root=media,
                folder=folder,
                panoramax_url=panoramax,
                bbox=box,
                intersections_csv=intersections,
                area_geojson=area.read_text(encoding="utf-8") if area is not None else None,
                licence=image_licence,
                ledger=ledger,
            )
            with Session(engine) as session, session.begin():
                create_project(
                    session,
                    name=name,
                    title=title,
                    panoramas=panoramas,
                    intersections=crossings,
                    k=k,
                    licence=licence,
                )
            with Session(engine) as session:
                progress = project_progress(session, name)
        finally:
            engine.dispose()
    typer.echo(
        f"Project {_console_text(name)}: {progress['panoramas']:,} panoramas, k = {k}; "
        f"{ledger.total():,} records left out."
    )
    for e in ledger:
        typer.echo(f"  left out at {e.stage}: {e.count:,} {_console_text(e.reason)}")
    for note in ledger.notes:
        typer.echo(f"  note: {_console_text(note)}")


if __name__ == "__main__":
    # Run as `python -m camcensus.cli`: the commands of other modules register on the imported
    # module's app, so run that one.
    from camcensus.cli import main as _main

    _main()
