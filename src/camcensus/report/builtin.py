"""The built-in report sections: headline numbers, coverage map, census, notes, method."""

from __future__ import annotations

from typing import Any

import pandas as pd

from camcensus.aggregate import has_zero_rows
from camcensus.coverage import describe_footprints
from camcensus.io.formats import json_safe
from camcensus.report.audit_section import audit_section
from camcensus.report.figures import (
    agreement_figure,
    cameras_by_borough_figure,
    coverage_map_figure,
    per_intersection_figure,
    surveillance_figure,
)
from camcensus.report.inventory import inventory_section
from camcensus.report.sections import (
    Block,
    Cards,
    Figure,
    Heading,
    MapView,
    ReportContext,
    Section,
    Table,
    Text,
    register_section,
)
from camcensus.report.who import who_section

__all__: list[str] = []

_TRACT_COLUMNS = [
    "GEOID",
    "borough",
    "eff_cameras",
    "eff_cameras_within_200m",
    "cameras",
    "cameras_within_200m",
    "area_m2",
    "popn",
    "popn_white",
    "popn_black",
    "popn_hispanic",
    "med_income",
    "nonwhite_fraction",
    "surveillance_level",
    "surveillance_level_200m",
]

_CENSUS_LABELS = {
    "attached_street": "street light / signal / pole",
    "attached_building": "building",
    "attached_unknown": "unknown",
    "pct_public": "% public",
    "type_dome": "dome",
    "type_bullet": "bullet",
    "type_unknown": "unknown type",
    "panoramas": "intersections (panoramas) surveyed",
    "with_camera": "with ≥1 camera",
    "with_public": "with ≥1 public camera",
    "with_public_dome": "with ≥1 public dome",
    "listed_with_camera": "intersections listed (each with ≥1 camera)",
}


def _records(df: pd.DataFrame, index_name: str) -> list[dict[str, Any]]:
    t = df.copy()
    t.index.name = index_name
    return [json_safe(r) for r in t.reset_index().to_dict("records")]


def _complete_census(ctx: ReportContext) -> bool:
    """Whether the input lists every intersection surveyed (some with no camera)."""
    return has_zero_rows(ctx.result.panoramas)


def _census_tables(ctx: ReportContext) -> dict[str, pd.DataFrame]:
    """Return the census tables as shown: without a complete census, no "panoramas" column."""
    tables = dict(ctx.result.tables)
    inter = tables.get("intersections")
    if inter is not None and not _complete_census(ctx):
        # Every listed intersection has a camera: "panoramas" and "with_camera" would read as a
        # census of all intersections with 100% camera presence. Show one honest column.
        t = inter.drop(columns=[c for c in ("panoramas", "with_camera") if c in inter.columns])
        t.insert(0, "listed_with_camera", inter["panoramas"])
        tables["intersections"] = t
    return tables


@register_section
def summary_section(ctx: ReportContext) -> Section:
    """Headline numbers (untitled, at the top)."""
    result = ctx.result
    numbers = result.numbers
    if result.audit is not None:
        return _audit_summary(ctx)
    complete = _complete_census(ctx)
    cards = []
    for key, label in (
        (
            "panoramas",
            "intersections (panoramas) in the input"
            if complete
            else "intersections listed, each with at least one camera",
        ),
        ("total_cameras", "cameras counted"),
        ("public_cameras", "public cameras (on street lights, signals, poles)"),
        ("public_intersections", "intersections with a public camera"),
        ("public_dome_intersections", "intersections with a public dome camera"),
        (
            "covered_land_share",
            f"of the land within {result.options.radius_m:g} m of a public camera",
        ),
    ):
        v = numbers.get(key)
        if v is not None:
            text = f"{100 * v:.1f}%" if key.endswith("share") else f"{int(v):,}"
            cards.append((text, label))
    return Section("summary", "", 0, (Cards(tuple(cards)),), results={"numbers": numbers})


def _audit_summary(ctx: ReportContext) -> Section:
    """Headline numbers of an audit of a camera inventory."""
    result = ctx.result
    n = result.numbers
    cards = [
        (f"{n['audited_cameras']:,}", "listed cameras in the city's tracts"),
        (f"{n['tracts_with_camera']:,} of {n['tracts']:,}", "tracts with a listed camera"),
    ]
    if n.get("cameras_per_1000_residents") is not None:
        cards.append((f"{n['cameras_per_1000_residents']:.2f}", "cameras per 1,000 residents"))
    if n.get("covered_land_share") is not None:
        cards.append(
            (
                f"{100 * n['covered_land_share']:.1f}%",
                f"of the land within {result.options.radius_m:g} m of a listed camera",
            )
        )
    return Section("summary", "", 0, (Cards(tuple(cards)),), results={"numbers": n})


@register_section
def coverage_section(ctx: ReportContext) -> Section:
    """The interactive map, the coverage figures and the per-tract table."""
    result = ctx.result
    r = f"{result.options.radius_m:g}"
    intro = (
        "Each census tract is shaded by the measure chosen on the map. The shaded area is what "
        f"the listed cameras can plausibly see under the coverage model ({r} m reach); red "
        "dots are camera locations, larger for more cameras at one point. Hover over a tract "
        "or a dot for its numbers."
    )
    blocks: list[Block] = [
        Text(
            intro
            if result.audit is not None
            else "Each census tract is shaded by the measure chosen on the map. A shaded disc of "
            f"{r} m around every intersection with a public camera (on a street light, traffic "
            "signal or pole) shows what those cameras can plausibly see; red dots are "
            "intersections with public cameras, larger for more cameras (intersections with "
            "only building cameras can be switched on). Hover over a tract or a dot for its "
            "numbers."
        ),
        MapView(),
    ]
    if result.footprints is not None:
        blocks.append(
            Text(
                "Every coverage figure in this report (covered land, effective cameras) comes "
                "from the " + describe_footprints(result.footprints)
            )
        )
    if ctx.figures is not None:
        for name, path in (
            ("coverage_map", coverage_map_figure(result, ctx.figures, ctx.outlines)),
            ("surveillance_distribution", surveillance_figure(result, ctx.figures)),
        ):
            if path is not None:
                blocks.append(Figure(name, path, name.replace("_", " ")))
    tr = result.tracts
    tract_table = pd.DataFrame(tr[[c for c in _TRACT_COLUMNS if c in tr.columns]])
    blocks.append(Table("tract_coverage", "Coverage per tract", tract_table, html=False))
    return Section("coverage", "Map", 10, tuple(blocks), database={"tract_coverage": tract_table})


@register_section
def census_section(ctx: ReportContext) -> Section | None:
    """The camera census tables (by borough), the comparison with published figures."""
    result = ctx.result
    if result.audit is not None:
        return None
    tables = _census_tables(ctx)
    complete = _complete_census(ctx)
    titles = {
        "cameras_by_attachment": (
            "camera_counts",
            "Cameras by attachment (public = street light, signal or pole)",
        ),
        "pole_camera_types": ("pole_camera_types", "Types of pole-mounted (public) cameras"),
        "intersections": (
            "intersections_by_borough",
            "Intersections (panoramas) with cameras"
            if complete
            else "Intersections listed with cameras (the input lists no intersection without "
            "one, so the number surveyed is unknown)",
        ),
        "cameras_per_intersection": (
            "cameras_per_intersection",
            "Cameras per intersection (Total = pooled ratio)",
        ),
    }
    blocks: list[Block] = []
    for key, (name, title) in titles.items():
        if key in tables:
            blocks.append(Table(name, title, tables[key], index="borough", labels=_CENSUS_LABELS))
    comparison = result.comparison
    if comparison is not None:
        blocks.append(
            Table(
                "comparison_with_published",
                "Compared with Amnesty's published figures",
                comparison,
                total=False,
                html=bool(len(comparison)),
            )
        )
    pan = result.panoramas
    pan_table = pd.DataFrame(pan.drop(columns=pan.geometry.name))
    pts = pan.geometry.to_crs("EPSG:4326")
    pan_table["lon"], pan_table["lat"] = pts.x.round(7), pts.y.round(7)
    blocks.append(Table("panoramas", "Intersections (panoramas)", pan_table, html=False))
    if ctx.figures is not None:
        for name, path in (
            ("cameras_by_borough", cameras_by_borough_figure(result, ctx.figures)),
            ("public_per_intersection", per_intersection_figure(result, ctx.figures)),
            ("agreement", agreement_figure(result, ctx.figures)),
        ):
            if path is not None:
                blocks.append(Figure(name, path, name.replace("_", " ")))
    results = {
        "tables": {k: _records(v, "borough") for k, v in tables.items()},
        "comparison_with_published": (
            json_safe(comparison.to_dict("records")) if comparison is not None else None
        ),
        "reference_table": result.reference,
    }
    return Section(
        "census", "The census", 20, tuple(blocks), results=results, database={"panoramas": pan}
    )


register_section(who_section)
register_section(inventory_section)
register_section(audit_section)


@register_section
def notes_section(ctx: ReportContext) -> Section:
    """Caveats, outputs skipped and every exclusion, with its reason and count."""
    result = ctx.result
    blocks: list[Block] = [Text(n, style="note") for n in result.ledger.notes]
    if result.skipped:
        skipped = pd.DataFrame(result.skipped, columns=["output", "reason"])
        blocks.append(
            Table(
                "skipped_outputs",
                "Outputs skipped",
                skipped,
                labels={"reason": "why"},
                total=False,
                csv=False,
            )
        )
    exclusions = pd.DataFrame(result.ledger.records(), columns=["stage", "reason", "count"])
    title = "Records left out, and why"
    if len(exclusions):
        blocks.append(Table("exclusions", title, exclusions, total=False))
    else:
        blocks += [Heading(title), Text("None.")]
        blocks.append(Table("exclusions", title, exclusions, html=False))
    results = {
        "exclusions": result.ledger.records(),
        "notes": list(result.ledger.notes),
        "skipped_outputs": result.skipped,
    }
    return Section(
        "notes",
        "What to keep in mind",
        40,
        tuple(blocks),
        results=results,
        database={"exclusions": exclusions},
    )


@register_section
def method_section(ctx: ReportContext) -> Section:
    """How the numbers were made, the settings and the inputs with their checksums."""
    from dataclasses import asdict

    result = ctx.result
    o = result.options
    r = f"{o.radius_m:g}"
    inputs = pd.DataFrame(
        [
            {
                "role": i["role"],
                "file": i["path"],
                "bytes": i["bytes"],
                "sha256": str(i["sha256"])[:16] + "…",
            }
            for i in ctx.inputs
        ],
        columns=["role", "file", "bytes", "sha256"],
    )
    counting = Text(
        "The cameras are those of the inventory given (an official list, OpenStreetMap or a "
        "camera file): every camera counts, whatever its mount. A camera exactly on the border "
        "of several tracts is counted in the tract with the smallest GEOID; a camera far from "
        "every tract is left out and counted.",
        lead="Cameras.",
    )
    blocks: list[Block] = [
        counting
        if result.audit is not None
        else Text(
            "Three volunteers counted the cameras in the same Street View panorama of each "
            "intersection; the count of each category is the median of their three counts, and "
            "totals are the sum of the per-category medians (never the median of sums), which "
            "favours undercounts. Cameras on street lights, traffic signals or poles stand in "
            "for public (police / transport) cameras.",
            lead="Counting.",
        ),
        Text(
            f"Around every listed camera the coverage model draws its footprint ({r} m reach, "
            f"{o.quad_segs} segments per quarter circle); a tract's effective cameras is the "
            "area of the tract inside the union of the footprints divided by the area of one "
            f"disc, π·{r}². Distances and areas are measured in "
            f"{result.measure_crs.to_string()}.",
            lead="Coverage.",
        )
        if result.audit is not None
        else Text(
            f"Around every intersection with a public camera a disc of {r} m is drawn "
            f"({o.quad_segs} segments per quarter circle); a tract's effective cameras is the "
            f"area of the tract inside the union of those discs divided by the area of one "
            f"disc, π·{r}². The surveillance level is effective cameras per 1,000 residents. "
            f"Distances and areas are measured in {result.measure_crs.to_string()}.",
            lead="Coverage.",
        ),
        Table("inputs", "Inputs", inputs, total=False, csv=False),
        Text(
            "Every number on this page is in results.json; tables are in tables/ (text cells "
            "that a spreadsheet would run as a formula start with a ' — see the camcensus "
            "documentation, csv-safety). This report measures what cameras can capture; it "
            "identifies no one.",
            style="small",
        ),
    ]
    results = {
        "settings": asdict(o),
        "measure_crs": result.measure_crs.to_string(),
        "inputs": [dict(i) for i in ctx.inputs],
    }
    return Section("method", "Method", 50, tuple(blocks), results=results)
