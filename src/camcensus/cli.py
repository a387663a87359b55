"""Command line: thin wrappers that parse arguments, call one library function and write."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from camcensus import settings
from camcensus._errors import InputError, Ledger

app = typer.Typer(
    help="Audit where surveillance cameras are, what they can see, and whom they watch.",
    no_args_is_help=True,
    add_completion=False,
)
reproduce_app = typer.Typer(help="Reproduce a published camera census.", no_args_is_help=True)
app.add_typer(reproduce_app, name="reproduce")
console = Console(stderr=True)

_DATA = "../shared/data"
# Defaults read once from the settings table (and the environment).
_RADIUS = float(settings.get("camera_radius_m"))
_BAND = float(settings.get("band_m"))
_PICK = str(settings.get("pick"))
_SEED = int(settings.get("seed"))

OutDir = Annotated[Path, typer.Option("--out", help="Folder to write the report into.")]
Radius = Annotated[
    float, typer.Option("--radius-m", help=settings.SETTINGS["camera_radius_m"].help)
]
Band = Annotated[float, typer.Option("--band-m", help=settings.SETTINGS["band_m"].help)]
Seed = Annotated[int, typer.Option("--seed", help=settings.SETTINGS["seed"].help)]
PickOpt = Annotated[str, typer.Option("--pick", help=settings.SETTINGS["pick"].help)]


@contextmanager
def _friendly_errors() -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        console.print(f"[bold red]Input problem[/]: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"Error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc


def _progress() -> tuple[Callable[[str], None], Any]:
    status = console.status("starting")

    def update(step: str) -> None:
        status.update(f"[bold]{step}[/]…")

    return update, status


def _options(radius_m: float, band_m: float, pick: str, seed: int) -> Any:
    from camcensus.pipeline import Options

    if pick not in ("random", "first"):
        raise typer.BadParameter("--pick must be 'random' or 'first'")
    return Options(
        radius_m=radius_m,
        band_m=band_m,
        pick=pick,  # type: ignore[arg-type]
        seed=seed,
        quad_segs=int(settings.get("quad_segs")),
        decoders=int(settings.get("decoders")),
        snap_m=float(settings.get("snap_m")),
        min_population=int(settings.get("min_population")),
    )


def _summary(result: Any, out: Path) -> None:
    n = result.numbers
    table = Table(title=result.title, show_header=False)
    for key in ("panoramas", "total_cameras", "public_cameras", "public_intersections"):
        if key in n:
            table.add_row(key.replace("_", " "), f"{n[key]:,}")
    if n.get("covered_land_share") is not None:
        table.add_row(
            "land within reach of public cameras", f"{100 * n['covered_land_share']:.1f}%"
        )
    table.add_row("records excluded", f"{result.ledger.total():,}")
    Console().print(table)
    Console().print(f"Report: {out / 'index.html'}")


@app.command(
    epilog="Example: camcensus demo --out out/demo",
)
def demo(
    out: OutDir = Path("out/demo"),
    seed: Seed = _SEED,
) -> None:
    """Simulate a seeded synthetic city, store it in SQLite and write the full report."""
    from camcensus.pipeline import Options, run_demo
    from camcensus.report import write_report

    update, status = _progress()
    with _friendly_errors(), status:
        result = run_demo(out, seed=seed, options=Options(seed=seed), progress=update)
        update("writing the report")
        write_report(result, out)
    _summary(result, out)


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
    stops_crs: Annotated[
        str, typer.Option(help="CRS of stop record coordinates (NYPD: EPSG:2908).")
    ] = "EPSG:2908",
    ntas: Annotated[
        Path | None, typer.Option(help="NTA polygons, for cluster-robust errors.")
    ] = None,
    race_table: Annotated[
        Path | None,
        typer.Option(help="Alternative race table (nycgeo tract_acs_data.csv, non-Hispanic)."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Surveillance level of a 'highly surveilled' tract.")
    ] = 0.2,
    permutations: Annotated[int, typer.Option(help="Moran's I permutations.")] = 999,
    sensitivity: Annotated[
        bool, typer.Option(help="Refit the models for camera radii 30-200 m.")
    ] = True,
    radius_m: Radius = _RADIUS,
    band_m: Band = _BAND,
    pick: PickOpt = _PICK,
    seed: Seed = _SEED,
) -> None:
    """Reproduce Amnesty's NYC camera census, per-tract coverage and (with --stops) the
    disparity models, and write the report."""
    from camcensus.pipeline import reproduce_nyc as run
    from camcensus.report import write_report

    update, status = _progress()
    with _friendly_errors(), status:
        result = run(
            tracts=tracts,
            intersections=intersections,
            raw_counts=raw_counts,
            raw_intersections=raw_intersections,
            panoramas=panoramas,
            census=census,
            boroughs=boroughs,
            reference=reference,
            stops=stops or [],
            stops_format=stops_format,  # type: ignore[arg-type]
            stops_crs=stops_crs,
            ntas=ntas,
            race_table=race_table,
            sensitivity=sensitivity,
            threshold=threshold,
            permutations=permutations,
            options=_options(radius_m, band_m, pick, seed),
            progress=update,
        )
        update("writing the report")
        write_report(result, out)
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
    pick: PickOpt = _PICK,
    seed: Seed = _SEED,
) -> None:
    """Aggregate volunteers' submissions into one row per panorama (Amnesty's layout)."""
    from camcensus.aggregate import aggregate_submissions
    from camcensus.io import census as io_census
    from camcensus.io import decode

    if pick not in ("random", "first"):
        raise typer.BadParameter("--pick must be 'random' or 'first'")
    ledger = Ledger()
    with _friendly_errors():
        gdf = aggregate_submissions(
            decode.submissions_from_csv(raw_counts, ledger=ledger),
            decode.raw_intersections_from_csv(raw_intersections),
            decode.panoramas_from_csv(panoramas) if panoramas else None,
            boroughs=io_census.boroughs_from_file(boroughs) if boroughs else None,
            decoders=int(settings.get("decoders")),
            pick=pick,  # type: ignore[arg-type]
            seed=seed,
            ledger=ledger,
        )
    table = gdf.drop(columns="geometry")
    table["Lat"], table["Long"] = gdf.geometry.y, gdf.geometry.x
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    Console().print(f"{len(table):,} panoramas written to {out}")
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
    radius_m: Radius = _RADIUS,
    band_m: Band = _BAND,
) -> None:
    """Compute effective and counted public cameras per tract (Amnesty's camera_count table)."""
    from camcensus.coverage import COVERAGE_COLUMNS, add_coverage
    from camcensus.io import census as io_census
    from camcensus.io import decode

    ledger = Ledger()
    with _friendly_errors():
        pan = decode.intersections_from_csv(intersections, ledger=ledger)
        tr = add_coverage(
            io_census.tracts_from_file(tracts),
            pan,
            radius_m=radius_m,
            band_m=band_m,
            quad_segs=int(settings.get("quad_segs")),
            snap_m=float(settings.get("snap_m")),
            ledger=ledger,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tr[["GEOID", "borough", *COVERAGE_COLUMNS]].to_csv(out, index=False)
    Console().print(f"{len(tr):,} tracts written to {out}")
    for note in ledger.notes:
        Console().print(f"note: {note}", markup=False)


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
    ntas: Annotated[Path | None, typer.Option(help="NTA polygons (cluster-robust SEs).")] = None,
    threshold: Annotated[float, typer.Option(help="Placement threshold.")] = 0.2,
    permutations: Annotated[int, typer.Option(help="Moran's I permutations.")] = 999,
    seed: Seed = _SEED,
) -> None:
    """Run the disparity models on any city's tract table and write models.json and tables."""
    from camcensus.stats.workflow import stats_from_files

    with _friendly_errors():
        result, ledger = stats_from_files(
            tract_table=tract_table,
            tracts=tracts,
            census=census,
            stops=stops or [],
            stops_format=stops_format,  # type: ignore[arg-type]
            ntas=ntas,
            threshold=threshold,
            permutations=permutations,
            seed=seed,
        )
    (out / "tables").mkdir(parents=True, exist_ok=True)
    result.coefficients().to_csv(out / "tables" / "model_coefficients.csv", index=False)
    result.survival.to_csv(out / "tables" / "survival.csv", index=False)
    for name, table in result.tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    doc = {
        "models": [m.to_dict() for m in result.models],
        "findings": result.findings,
        "exclusions": ledger.records(),
        "notes": ledger.notes,
    }
    (out / "models.json").write_text(json.dumps(doc, indent=2, default=str))
    for line in result.findings:
        Console().print("• " + line, markup=False)


@app.command("settings", epilog="Example: camcensus settings")
def show_settings() -> None:
    """List every setting with its default and the environment variable that overrides it."""
    typer.echo(settings.markdown_table())


def main() -> None:
    """Run the command line."""
    app()


if __name__ == "__main__":
    main()
