"""Command line: camera inventories (``camcensus cameras ...``, ``camcensus export cameras``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported. Each command
reads with :func:`camcensus.io.camera_files.read_cameras_files` and writes with
:func:`camcensus.io.camera_files.write_cameras`; nothing is ever uploaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from camcensus._errors import Ledger, OptionError
from camcensus.cli import Database, _existing_database, _friendly_errors, app, export_app

cameras_app = typer.Typer(
    help="Camera inventories: import from OpenStreetMap, city lists and files.",
    no_args_is_help=True,
)
app.add_typer(cameras_app, name="cameras")

_FORMATS = ("geojson", "gpkg", "parquet", "csv", "osm", "osc")
_EXTENSION = {"geojson": ".geojson", "gpkg": ".gpkg", "parquet": ".parquet", "csv": ".csv"}

SourceFormat = Annotated[
    str,
    typer.Option(
        "--source-format",
        help="auto (from the name and first bytes), overpass, osm, osc, pbf, decode-counts, "
        "gpkg, geojson, parquet, csv, or a city list format (camcensus.io.citylists).",
    ),
]


def _print_ledger(ledger: Ledger) -> None:
    out = Console(stderr=True)
    for e in ledger.exclusions:
        out.print(Text(f"  left out: {e.count:,} {e.reason} ({e.stage})"), highlight=False)
    for f in ledger.flagged:
        out.print(Text(f"  flagged, kept: {f.count:,} {f.reason} ({f.stage})"), highlight=False)


def _import_and_write(paths: list[Path], source_format: str, out: Path, format: str | None) -> None:
    from camcensus.io.camera_files import read_cameras_files, write_cameras

    ledger = Ledger()
    with _friendly_errors():
        gdf = read_cameras_files(paths, source_format=source_format, ledger=ledger)
        result = write_cameras(gdf, out, format=format, ledger=ledger, inputs=paths)
    Console().print(
        Text(f"Wrote {result.written:,} of {len(gdf):,} cameras to {result.path} ({result.format})")
    )
    for camera_id, reason in result.refused[:20]:
        Console(stderr=True).print(Text(f"  refused {camera_id}: {reason}"), highlight=False)
    if len(result.refused) > 20:
        Console(stderr=True).print(Text(f"  ... and {len(result.refused) - 20:,} more refused"))
    _print_ledger(ledger)


@cameras_app.command(
    "import",
    epilog="Example: camcensus cameras import switzerland.json --out cameras.gpkg",
)
def cameras_import(
    paths: Annotated[list[Path], typer.Argument(help="Camera files to read (one or more).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File to write; its extension gives the format (.gpkg .geojson .parquet "
            ".csv .osm .osc).",
        ),
    ],
    source_format: SourceFormat = "auto",
) -> None:
    """Read camera inventories (OpenStreetMap, city lists, Decode counts, camera files) into
    one ``cameras`` table and write it; every record left out is counted."""
    _import_and_write(paths, source_format, out, None)


@cameras_app.command(
    "merge",
    epilog="Example: camcensus cameras merge dot.json osm.json linknyc.csv --out merged.gpkg",
)
def cameras_merge(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Camera files, one source each; the first wins on attributes."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="File for the merged cameras (.gpkg .geojson ...).")
    ],
    distance_m: Annotated[
        float,
        typer.Option("--distance-m", help="Cameras of two sources closer than this may be one."),
    ] = 25.0,
    direction_tolerance_deg: Annotated[
        float,
        typer.Option(
            "--direction-tolerance-deg",
            help="Largest difference between two known directions of one camera.",
        ),
    ] = 45.0,
    source_format: SourceFormat = "auto",
) -> None:
    """Merge inventories of several sources into one, keeping both references of every match;
    writes the matches, conflicts and a per-source-pair summary beside --out."""
    from camcensus.merge import merge_files

    ledger = Ledger()
    with _friendly_errors():
        if not (math.isfinite(distance_m) and distance_m > 0):
            raise OptionError(
                f"--distance-m {distance_m} must be a distance above 0 in metres. "
                "Fix: e.g. --distance-m 25."
            )
        if not (0 <= direction_tolerance_deg <= 180):
            raise OptionError(
                f"--direction-tolerance-deg {direction_tolerance_deg} must be from 0 to 180 "
                "degrees. Fix: e.g. --direction-tolerance-deg 45."
            )
        result, files = merge_files(
            paths,
            out,
            distance_m=distance_m,
            direction_tolerance_deg=direction_tolerance_deg,
            source_format=source_format,
            ledger=ledger,
        )
    summary = result.summary
    lines = [f"{len(result.cameras):,} merged cameras from {len(paths)} sources"]
    for row in summary.itertuples(index=False):
        lines.append(
            f"  {row.source_a} x {row.source_b}: {row.matched:,} matched, {row.only_a:,} only "
            f"in the first, {row.only_b:,} only in the second, {row.conflicts:,} conflicts"
        )
    lines.append("Written: " + ", ".join(str(p) for p in files.values()))
    Console().print(Text("\n".join(lines)))
    _print_ledger(ledger)


@cameras_app.command(
    "load",
    epilog="Example: camcensus cameras load cameras.gpkg --database sqlite:///camcensus.db "
    "--replace sources",
)
def cameras_load(
    paths: Annotated[list[Path], typer.Argument(help="Camera files to store (one or more).")],
    database: Database = None,
    replace: Annotated[
        str,
        typer.Option(
            "--replace",
            help="none (add; an id already stored is refused), sources (first delete the "
            "stored cameras of the sources loaded) or all (first empty the table).",
        ),
    ] = "none",
    source_format: SourceFormat = "auto",
) -> None:
    """Store camera inventories in the platform's database, where the web app serves them
    (/api/cameras, /api/cameras/dump)."""
    from sqlalchemy.orm import Session

    from camcensus.db import connect
    from camcensus.db.cameras import load_cameras
    from camcensus.io.camera_files import read_cameras_files

    ledger = Ledger()
    with _friendly_errors():
        if replace not in ("none", "sources", "all"):
            raise OptionError(f"--replace {replace!r}: use none, sources or all")
        gdf = read_cameras_files(paths, source_format=source_format, ledger=ledger)
        engine = connect(_existing_database(database))
        try:
            with Session(engine) as session, session.begin():
                result = load_cameras(session, gdf, replace=replace, ledger=ledger)  # type: ignore[arg-type]
        finally:
            engine.dispose()
    Console().print(
        Text(
            f"Stored {result.loaded:,} cameras (deleted first: {result.deleted:,}; left out: "
            f"{result.excluded:,})"
        )
    )
    _print_ledger(ledger)


@export_app.command(
    "cameras",
    epilog="Example: camcensus export cameras --cameras cameras.gpkg --format osm --out review.osm",
)
def export_cameras_command(
    cameras: Annotated[
        list[Path], typer.Option("--cameras", help="Camera file(s) to export (repeatable).")
    ],
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="geojson, gpkg, parquet (GeoParquet), csv (flat), osm (OSM XML for review in "
            "JOSM) or osc (osmChange); osm/osc refuse cameras whose licence forbids "
            "OpenStreetMap. Never uploaded.",
        ),
    ] = "geojson",
    source_format: SourceFormat = "auto",
) -> None:
    """Write a camera inventory in another format (files only; a database source comes with
    the platform's cameras table)."""
    if format not in _FORMATS:
        with _friendly_errors():
            raise OptionError(f"--format {format!r} is unknown; use one of {', '.join(_FORMATS)}")
    _import_and_write(cameras, source_format, out, format)
