"""Command line: the audit of any city (``camcensus audit``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported. The command
parses its options and calls :func:`camcensus.audit.audit_report`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from camcensus._errors import OptionError
from camcensus.cli import (
    Band,
    Force,
    OutDir,
    Radius,
    Seed,
    _friendly_errors,
    _options,
    _progress,
)
from camcensus.cli import app as app

__all__ = ["app", "audit"]

_EXAMPLE = (
    "Example: camcensus audit --cameras CCTV_Locations.csv --source-format "
    "baltimore-citiwatch --tracts tracts_cb2018.geojson --acs acs2018_long.csv --city "
    "Baltimore --out out/baltimore"
)


def _acs_columns(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        role, sep, column = v.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise OptionError(f"--acs-column takes ROLE=COLUMN (e.g. white=nhw), not {v!r}")
        out[role.strip()] = column.strip()
    return out


@app.command(epilog=_EXAMPLE)
def audit(
    cameras: Annotated[
        list[Path],
        typer.Option(
            "--cameras",
            help="Camera file (repeat for several): a city list, OpenStreetMap, a camera file.",
        ),
    ],
    tracts: Annotated[Path, typer.Option(help="Census tract polygons (any OGR format).")],
    acs: Annotated[
        Path,
        typer.Option(
            help="ACS tract table: wide or long (GEOID, variable, estimate), ACS codes or "
            "plain names, counts or shares."
        ),
    ],
    out: OutDir = Path("out/audit"),
    source_format: Annotated[
        str,
        typer.Option(
            "--source-format",
            help="Format of the camera files: auto, a city list (baltimore-citiwatch, "
            "new-orleans-rtcc, ...), overpass, osm, csv... (camcensus cameras import --help).",
        ),
    ] = "auto",
    mapping: Annotated[
        Path | None,
        typer.Option(help="Column-mapping file (TOML) of a city list camcensus does not know."),
    ] = None,
    districts: Annotated[
        Path | None,
        typer.Option(help="District polygons: models and tables are grouped by district."),
    ] = None,
    district_column: Annotated[
        str | None, typer.Option(help="Name column of --districts (default: district/name).")
    ] = None,
    stops: Annotated[
        Path | None,
        typer.Option(
            help="Stop or arrest records with Latitude/Longitude (failed geocodes at a "
            "whole-degree point are left out and counted)."
        ),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Coverage model: disc, fov, occluded (needs --buildings), pixel_density."
        ),
    ] = "disc",
    buildings: Annotated[
        Path | None, typer.Option(help="Building footprints for --model occluded.")
    ] = None,
    race: Annotated[
        str,
        typer.Option(
            help="Race definition: auto, non-hispanic (B03002), alone (B02001, Amnesty's NYC)."
        ),
    ] = "auto",
    acs_column: Annotated[
        list[str] | None,
        typer.Option(
            "--acs-column",
            help="ROLE=COLUMN naming an ACS column (roles: geoid, popn, white, black, "
            "hispanic, income); repeat.",
        ),
    ] = None,
    city: Annotated[
        str | None, typer.Option(help="City name for the report (default: the tracts' folder).")
    ] = None,
    threshold: Annotated[
        str,
        typer.Option(
            help="Placement model: effective cameras per 1,000 residents above which a tract "
            "is highly surveilled, or 'median'."
        ),
    ] = "median",
    permutations: Annotated[
        int | None, typer.Option(help="Permutations of the Moran's I tests.")
    ] = None,
    radius_m: Radius = None,
    band_m: Band = None,
    seed: Seed = None,
    force: Force = False,
) -> None:
    """Audit any city's cameras: coverage per tract, cameras per 1,000 residents by tract race
    composition, the placement model and disparity statistics, and the offline report."""
    from camcensus.audit import audit_report

    update, status = _progress()
    with _friendly_errors(), status:
        thr: float | str = threshold
        if threshold.strip().lower() != "median":
            try:
                thr = float(threshold)
            except ValueError:
                raise OptionError(
                    f"--threshold must be a number or 'median', not {threshold!r}"
                ) from None
            if not (math.isfinite(thr) and thr >= 0):
                raise OptionError(
                    f"--threshold {threshold!r} must be a number of cameras per 1,000 "
                    "residents, 0 or more, or 'median'. Fix: e.g. --threshold 2.5"
                )
        if permutations is not None and permutations < 0:
            raise OptionError(
                f"--permutations {permutations} must be 0 or more. Fix: e.g. --permutations 999"
            )
        result = audit_report(
            out,
            force=force,
            cameras=cameras,
            tracts=tracts,
            acs=acs,
            districts=districts,
            district_column=district_column,
            stops=stops,
            model=model,
            buildings=buildings,
            race=race,
            acs_columns=_acs_columns(acs_column or []),
            city=city,
            source_format=source_format,
            mapping=mapping,
            threshold=thr,
            permutations=permutations,
            options=_options(radius_m, band_m, None, seed),
            progress=update,
        )
    a = result.audit
    table = Table(title=result.title, show_header=False)
    n = result.numbers
    table.add_row("listed cameras in the tracts", f"{n['audited_cameras']:,}")
    for r in a.rates.to_dict("records"):
        table.add_row(
            f"per 1,000 residents, {r['group']} tracts",
            f"{r['estimate']:.2f} ({r['ci_low']:.2f}–{r['ci_high']:.2f})",
        )
    c = a.placement.coefficients[-1]
    table.add_row(
        "placement model, non-white share",
        f"{c.estimate:.2f} ({c.ci_low:.2f} to {c.ci_high:.2f})",
    )
    table.add_row("records excluded", f"{result.ledger.total():,}")
    Console().print(table)
    Console().print(Text(f"Report: {out / 'index.html'}"))
