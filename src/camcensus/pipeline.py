"""The main job: from camera counts, tracts and census to the census of cameras and coverage.

Library functions behind ``camcensus demo`` and ``camcensus reproduce nyc``; the CLI only parses
arguments and calls them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from camcensus import published
from camcensus._errors import Ledger
from camcensus._geo import borough_outlines, measurement_crs
from camcensus.aggregate import (
    Pick,
    add_totals,
    aggregate_submissions,
    assign_boroughs,
    has_zero_rows,
    summary_tables,
)
from camcensus.coverage import COVERAGE_COLUMNS, add_coverage, coverage_union, public_points
from camcensus.io import census as io_census
from camcensus.io import decode

if TYPE_CHECKING:
    from camcensus.stats.disparity import DisparityResult
    from camcensus.stats.inputs import StopsFormat

__all__ = ["CensusResult", "Options", "reproduce_nyc", "run_census", "run_demo"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """Settings of one run (defaults: :mod:`camcensus.settings`)."""

    radius_m: float = 120.0
    band_m: float = 200.0
    quad_segs: int = 30
    decoders: int = 3
    pick: Pick = "random"
    seed: int = 0
    snap_m: float = 100.0
    min_population: int = 250


@dataclass
class CensusResult:
    """Everything the report shows, with the ledger of what was left out and why."""

    title: str
    panoramas: gpd.GeoDataFrame
    tracts: gpd.GeoDataFrame
    coverage: shapely.Geometry
    measure_crs: CRS
    tables: dict[str, pd.DataFrame]
    numbers: dict[str, Any]
    ledger: Ledger
    options: Options
    skipped: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    comparison: pd.DataFrame | None = None
    reference: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    disparity: DisparityResult | None = None
    sensitivity: dict[str, pd.DataFrame] = field(default_factory=dict)


def _noop(_: str) -> None:
    return None


def run_census(
    panoramas: gpd.GeoDataFrame,
    tracts: gpd.GeoDataFrame,
    *,
    census: pd.DataFrame | None = None,
    boroughs: gpd.GeoDataFrame | None = None,
    options: Options | None = None,
    ledger: Ledger | None = None,
    title: str = "Camera census",
    progress: Progress = _noop,
) -> CensusResult:
    """Compute the census tables and per-tract coverage from one-row-per-panorama counts.

    Parameters
    ----------
    panoramas
        Aggregated counts (:func:`camcensus.io.decode.intersections_from_csv` or
        :func:`camcensus.aggregate.aggregate_submissions`), any CRS.
    tracts
        :func:`camcensus.io.census.tracts_from_file`.
    census
        :func:`camcensus.io.census.census_from_csv`; adds population and surveillance levels.
    boroughs
        Borough polygons; when given, every panorama's borough is (re)assigned from them.
    options
        Radius, buffer, seeds; see :class:`Options`.
    ledger
        Receives every exclusion and note.
    """
    options = options or Options()
    ledger = ledger if ledger is not None else Ledger()
    timings: dict[str, float] = {}
    skipped: list[dict[str, str]] = []
    t0 = time.perf_counter()

    pan = panoramas.copy()
    if boroughs is not None:
        pan = assign_boroughs(pan, boroughs, ledger=ledger, stage="assign borough")
    elif "BoroName" not in pan.columns:
        by_tract = borough_outlines(tracts).rename(columns={"borough": "BoroName"})
        pan = assign_boroughs(pan, by_tract, ledger=ledger, stage="assign borough (from tracts)")
        ledger.note("No borough polygons given: each panorama's borough is that of its tract.")
    pan = add_totals(pan)
    tables = summary_tables(pan)
    missing_att = [a for a in decode.ATTACHMENTS if f"{a}_median" not in pan.columns]
    if missing_att:
        ledger.note(
            "The input has no " + ", ".join(f"{a}_median" for a in missing_att) + " column: "
            "total cameras are the sum of the attachment columns present and undercount by "
            "those cameras."
        )
    if not any(f"{p}_median" in pan.columns for p in decode.POLE_TYPES):
        skipped.append(
            {
                "output": "pole camera types (dome / bullet), intersections with a public dome",
                "reason": "the input has no type_dome_median / type_bullet_median columns",
            }
        )
    if not has_zero_rows(pan):
        skipped.append(
            {
                "output": "cameras per intersection; share of intersections with a camera",
                "reason": "the input lists only intersections with at least one camera, so the "
                "number of intersections surveyed is unknown",
            }
        )
    if not any(f"{c}_agreement" in pan.columns for c in decode.CATEGORIES):
        skipped.append({"output": "agreement between decoders", "reason": "no *_agreement columns"})
    timings["aggregate_tables"] = time.perf_counter() - t0

    progress("coverage")
    t1 = time.perf_counter()
    mcrs = measurement_crs(tracts)
    if "attached_street_median" in pan.columns:
        pts = public_points(pan).to_crs(mcrs)
        cov = coverage_union(pts, radius_m=options.radius_m, quad_segs=options.quad_segs)
        tr = add_coverage(
            tracts,
            pan,
            radius_m=options.radius_m,
            band_m=options.band_m,
            quad_segs=options.quad_segs,
            snap_m=options.snap_m,
            coverage=cov,
            ledger=ledger,
        )
    else:
        cov = shapely.Polygon()
        tr = tracts.copy()
        skipped.append(
            {
                "output": "public-camera coverage per tract, coverage map",
                "reason": "the input has no attached_street_median column",
            }
        )
    timings["coverage"] = time.perf_counter() - t1

    if census is not None:
        tr = _join_census(tr, census, options=options, ledger=ledger)
    else:
        skipped.append(
            {"output": "surveillance level per 1,000 residents", "reason": "no census table"}
        )

    numbers = _headline_numbers(pan, tr, cov, mcrs, tables, radius_m=options.radius_m)
    comparison = None
    if "BoroName" in pan.columns and set(pan["BoroName"].dropna()) <= set(published.BOROUGHS):
        comparison = _compare_published(tables, present=set(pan["BoroName"].dropna()))
        _note_published(tables, ledger)
    timings["total"] = time.perf_counter() - t0
    return CensusResult(
        title=title,
        panoramas=pan,
        tracts=tr,
        coverage=cov,
        measure_crs=mcrs,
        tables=tables,
        numbers=numbers,
        ledger=ledger,
        options=options,
        skipped=skipped,
        comparison=comparison,
        timings=timings,
    )


def _join_census(
    tr: gpd.GeoDataFrame, census: pd.DataFrame, *, options: Options, ledger: Ledger
) -> gpd.GeoDataFrame:
    cols = ["popn", "popn_white", "popn_black", "popn_hispanic", "med_income", "nonwhite_fraction"]
    joined = tr.merge(census[cols], left_on="GEOID", right_index=True, how="left")
    no_row = int(joined["popn"].isna().sum())
    if no_row:
        ledger.note(f"{no_row} tract(s) have no row in the census table (no population)")
    not_in_tracts = len(set(census.index) - set(tr["GEOID"]))
    if not_in_tracts:
        ledger.note(f"{not_in_tracts} census row(s) match no tract polygon (ignored)")
    small = joined["popn"].fillna(0) <= options.min_population
    ledger.exclude(
        "surveillance level",
        f"tract population at most {options.min_population} (parks, airports): no rate",
        int(small.sum()),
    )
    denom = joined["popn"].where(~small)
    if "eff_cameras" in joined.columns:
        joined["surveillance_level"] = joined["eff_cameras"] / denom * 1000
        joined["surveillance_level_200m"] = joined["eff_cameras_within_200m"] / denom * 1000
    return joined


def _headline_numbers(
    pan: gpd.GeoDataFrame,
    tr: gpd.GeoDataFrame,
    cov: shapely.Geometry,
    mcrs: CRS,
    tables: dict[str, pd.DataFrame],
    *,
    radius_m: float,
) -> dict[str, Any]:
    n: dict[str, Any] = {"panoramas": len(pan), "total_cameras": int(pan["total_cameras"].sum())}
    for a in (*decode.ATTACHMENTS, *decode.POLE_TYPES):
        if f"{a}_median" in pan.columns:
            n[a] = int(pan[f"{a}_median"].sum())
    if "attached_street_median" in pan.columns:
        n["public_cameras"] = n["attached_street"]
        n["public_intersections"] = int((pan["attached_street_median"] > 0).sum())
        n["public_cameras_by_borough"] = {
            str(k): int(v)
            for k, v in pan.groupby("BoroName")["attached_street_median"].sum().items()
        }
        n["public_intersections_by_borough"] = {
            str(k): int(v)
            for k, v in pan.groupby("BoroName")["attached_street_median"]
            .apply(lambda s: (s > 0).sum())
            .items()
        }
    if "type_dome_median" in pan.columns:
        n["public_dome_intersections"] = int((pan["type_dome_median"] > 0).sum())
    if "eff_cameras" in tr.columns:
        mpu = float(mcrs.axis_info[0].unit_conversion_factor)
        n["coverage_km2"] = float(shapely.area(cov)) * mpu**2 / 1e6
        land = float(tr["area_m2"].sum())
        n["land_km2"] = land / 1e6
        covered = float((tr["eff_cameras"] * np.pi * radius_m**2).sum())
        n["covered_land_km2"] = covered / 1e6
        n["covered_land_share"] = covered / land if land > 0 else None
        for c in COVERAGE_COLUMNS:
            n[f"sum_{c}"] = float(tr[c].sum())
        n["tracts"] = len(tr)
        n["tracts_with_coverage"] = int((tr["eff_cameras"] > 0).sum())
    if "popn" in tr.columns and "eff_cameras" in tr.columns:
        pop = tr["popn"].fillna(0)
        n["residents"] = float(pop.sum())
        n["residents_in_tracts_with_public_camera"] = float(pop[tr["cameras"] > 0].sum())
    if "cameras_per_intersection" in tables:
        t = tables["cameras_per_intersection"]
        n["cameras_per_intersection_pooled"] = float(t["cameras_per_intersection"].loc["Total"])
        n["cameras_per_intersection_sum_of_borough_ratios"] = float(
            t.drop(index="Total")["cameras_per_intersection"].sum()
        )
    return n


def _compare_published(tables: dict[str, pd.DataFrame], *, present: set[str]) -> pd.DataFrame:
    rows = []
    att = tables.get("cameras_by_attachment")
    inter = tables.get("intersections")
    for metric, ours_table, col in (
        ("panoramas", inter, "panoramas"),
        ("attached_street", att, "attached_street"),
        ("attached_building", att, "attached_building"),
        ("attached_unknown", att, "attached_unknown"),
        ("total", att, "total"),
    ):
        if ours_table is None or col not in ours_table.columns:
            continue
        if metric == "panoramas" and "cameras_per_intersection" not in tables:
            continue
        for b in published.BOROUGHS:
            if b not in present:
                continue
            ours = float(ours_table[col].loc[b]) if b in ours_table.index else 0.0
            pub = float(published.AMNESTY_NYC[metric][b])
            rows.append(
                {"borough": b, "metric": metric, "published": pub, "ours": ours, "diff": ours - pub}
            )
    return pd.DataFrame(rows)


def _note_published(tables: dict[str, pd.DataFrame], ledger: Ledger) -> None:
    ledger.note(
        "Amnesty's published table of cameras per intersection gives a 'Total' of "
        f"{published.PUBLISHED_TOTAL_CAMERAS_PER_INTERSECTION:.2f} (and "
        f"{published.PUBLISHED_TOTAL_PUBLIC_PER_INTERSECTION:.2f} public): the sum of the five "
        "boroughs' ratios, not a ratio. This report gives the pooled ratio (all cameras / all "
        "intersections) in its Total row."
    )
    ledger.note(
        "Amnesty's per-tract camera_count table (prepdata.R) has a 'cameras' column summing to "
        f"{published.CAMERA_COUNT_TABLE_SUMS['Total']:,.0f} public cameras while the intersections"
        " hold 3,317: merging panorama_url.csv on PanoramaId duplicated some panoramas. This "
        "report counts each panorama once (its effective-camera columns are unaffected)."
    )


def compare_reference_table(tr: gpd.GeoDataFrame, path: str | Path) -> dict[str, Any]:
    """Compare our per-tract coverage with a table such as Amnesty's ``camera_count.csv``."""
    ref = pd.read_csv(path, dtype={"GEOID": str})
    m = tr[["GEOID", *COVERAGE_COLUMNS]].merge(ref, on="GEOID", suffixes=("", "_ref"))
    out: dict[str, Any] = {"path": str(path), "tracts_matched": len(m)}
    for c in COVERAGE_COLUMNS:
        if f"{c}_ref" in m.columns:
            d = (m[c] - m[f"{c}_ref"]).abs()
            out[c] = {
                "max_abs_diff": float(d.max()),
                "sum_ours": float(m[c].sum()),
                "sum_reference": float(m[f"{c}_ref"].sum()),
            }
    return out


def reproduce_nyc(
    *,
    tracts: str | Path,
    intersections: str | Path | None = None,
    raw_counts: str | Path | None = None,
    raw_intersections: str | Path | None = None,
    panoramas: str | Path | None = None,
    census: str | Path | None = None,
    boroughs: str | Path | None = None,
    reference: str | Path | None = None,
    stops: Sequence[str | Path] = (),
    stops_format: StopsFormat = "auto",
    stops_crs: str = "EPSG:2908",
    ntas: str | Path | None = None,
    race_table: str | Path | None = None,
    sensitivity: bool = True,
    threshold: float | str = 0.2,
    permutations: int = 999,
    options: Options | None = None,
    title: str = "Decode Surveillance NYC, reproduced",
    progress: Progress = _noop,
) -> CensusResult:
    """Reproduce Amnesty's NYC camera census and per-tract coverage from its files.

    Give either the aggregated ``intersections`` file (``counts_per_intersections.csv`` or any
    column subset) or the raw export (``raw_counts`` = counts.csv and ``raw_intersections`` =
    intersections.csv, with ``panoramas`` = panorama_url.csv), plus the tracts, and optionally
    the ACS table, the borough polygons and a reference per-tract table to compare with.

    With ``stops`` (records and/or tract-count files) and the census, the disparity models
    run too (:func:`camcensus.stats.disparity.run_disparity`), with NTA clusters from ``ntas``,
    a radius sensitivity (``sensitivity``) and a race-definition sensitivity (``race_table``).
    """
    options = options or Options()
    ledger = Ledger()
    inputs: dict[str, str] = {}
    progress("reading inputs")
    gdf_boroughs = io_census.boroughs_from_file(boroughs) if boroughs else None
    if intersections is not None:
        pan = decode.intersections_from_csv(intersections, ledger=ledger)
        inputs["intersections"] = str(intersections)
    elif raw_counts is not None and raw_intersections is not None:
        subs = decode.submissions_from_csv(raw_counts, ledger=ledger)
        inter = decode.raw_intersections_from_csv(raw_intersections)
        pans = decode.panoramas_from_csv(panoramas) if panoramas else None
        progress("aggregating submissions")
        pan = aggregate_submissions(
            subs,
            inter,
            pans,
            boroughs=gdf_boroughs,
            decoders=options.decoders,
            pick=options.pick,
            seed=options.seed,
            ledger=ledger,
        )
        inputs["raw_counts"] = str(raw_counts)
        inputs["raw_intersections"] = str(raw_intersections)
        if panoramas:
            inputs["panoramas"] = str(panoramas)
    else:
        raise ValueError(
            "give --intersections (aggregated counts) or both --raw-counts and "
            "--raw-intersections (raw export)"
        )
    gdf_tracts = io_census.tracts_from_file(tracts)
    inputs["tracts"] = str(tracts)
    table = io_census.census_from_csv(census, ledger=ledger) if census else None
    if census:
        inputs["census"] = str(census)
    if boroughs:
        inputs["boroughs"] = str(boroughs)
    result = run_census(
        pan,
        gdf_tracts,
        census=table,
        boroughs=gdf_boroughs,
        options=options,
        ledger=ledger,
        title=title,
        progress=progress,
    )
    if reference is not None:
        result.reference = compare_reference_table(result.tracts, reference)
        inputs["reference"] = str(reference)
    if stops:
        if table is None:
            raise ValueError("the disparity models need the census table: pass --census")
        progress("disparity models")
        for i, p in enumerate(stops):
            inputs[f"stops_{i + 1}"] = str(p)
        if ntas:
            inputs["ntas"] = str(ntas)
        if race_table:
            inputs["race_table"] = str(race_table)
        _add_disparity(
            result,
            pan,
            gdf_tracts,
            table,
            stops=stops,
            stops_format=stops_format,
            stops_crs=stops_crs,
            ntas=ntas,
            race_table=race_table,
            sensitivity=sensitivity,
            threshold=threshold,
            permutations=permutations,
            progress=progress,
        )
    result.inputs = inputs
    return result


def _add_disparity(
    result: CensusResult,
    pan: gpd.GeoDataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    census: pd.DataFrame,
    *,
    stops: Sequence[str | Path],
    stops_format: StopsFormat,
    stops_crs: str,
    ntas: str | Path | None,
    race_table: str | Path | None,
    sensitivity: bool,
    threshold: float | str,
    permutations: int,
    progress: Progress,
) -> None:
    from camcensus.stats import workflow

    t0 = time.perf_counter()
    o = result.options

    def at_radius(r: float) -> gpd.GeoDataFrame:
        cov = add_coverage(
            gdf_tracts,
            pan,
            radius_m=r,
            band_m=o.band_m,
            quad_segs=o.quad_segs,
            snap_m=o.snap_m,
        )
        return _join_census(cov, census, options=o, ledger=Ledger())

    result.disparity, result.sensitivity = workflow.disparity_stage(
        result.tracts,
        gdf_tracts,
        stops=stops,
        stops_format=stops_format,
        stops_crs=stops_crs,
        ntas=ntas,
        race_table=race_table,
        coverage_at_radius=at_radius
        if sensitivity and "attached_street_median" in pan.columns
        else None,
        threshold=threshold,
        permutations=permutations,
        seed=o.seed,
        min_population=o.min_population,
        ledger=result.ledger,
        rate_model=has_zero_rows(pan),
        progress=progress,
    )
    result.timings["disparity"] = time.perf_counter() - t0


def run_demo(
    folder: str | Path, *, seed: int = 0, options: Options | None = None, progress: Progress = _noop
) -> CensusResult:
    """Simulate a seeded synthetic city, write it as a user's files, and run the census on it."""
    from camcensus.simulate import simulate_city

    progress("simulating a synthetic city")
    city = simulate_city(seed)
    paths = city.write(Path(folder) / "inputs")
    options = options or Options(seed=seed)
    result = reproduce_nyc(
        tracts=paths["tracts"],
        raw_counts=paths["raw_counts"],
        raw_intersections=paths["raw_intersections"],
        panoramas=paths["panoramas"],
        census=paths["census"],
        boroughs=paths["boroughs"],
        stops=[paths["stops"]],
        stops_format="records",
        stops_crs=city.crs,
        permutations=199,
        threshold="median",
        options=options,
        title=f"Synthetic city (seed {seed})",
        progress=progress,
    )
    truth = city.truth
    result.numbers["truth"] = {
        "public_cameras": int(truth["attached_street"].sum()),
        "building_cameras": int(truth["attached_building"].sum()),
        "beta_nonwhite": city.params["beta_nonwhite"],
    }
    result.ledger.note(
        "Synthetic city: counts are simulated. The true number of public cameras is "
        f"{int(truth['attached_street'].sum())}; the volunteers' medians find "
        f"{result.numbers.get('public_cameras', 0)}."
    )
    return result
