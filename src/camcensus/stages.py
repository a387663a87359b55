"""The stages of a camera census. Each takes contract tables (DESIGN.md) and returns contract
tables or a frozen result; :mod:`camcensus.pipeline` chains them.

counts (one row per panorama) -> :func:`counts_stage` (districts, summary tables)
-> :func:`cameras_stage` (the camera inventory) -> :func:`coverage_stage` (footprints, per-tract
measures) -> :func:`population_stage` (census join, surveillance levels)
-> :func:`headline_numbers` (over the study area the input covers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from camcensus._errors import InputError, Ledger, Problem
from camcensus._geo import borough_outlines, locate_points, measurement_crs, metres_per_unit
from camcensus.aggregate import add_totals, assign_boroughs, has_zero_rows, summary_tables
from camcensus.cameras import cameras_from_counts, public_cameras
from camcensus.coverage import (
    COVERAGE_COLUMNS,
    add_coverage_measures,
    check_radius,
    footprint_union,
    footprints,
)
from camcensus.io import census as io_census
from camcensus.io import decode

__all__ = [
    "CountsResult",
    "CoverageResult",
    "cameras_coverage_stage",
    "cameras_stage",
    "complete_tracts",
    "counts_stage",
    "coverage_stage",
    "headline_numbers",
    "population_stage",
    "study_area",
]

#: The district column of the counts table (Decode's name; boroughs in NYC).
DISTRICT = "BoroName"


@dataclass(frozen=True)
class CountsResult:
    """The counts with their district and totals, the summary tables, and outputs skipped."""

    counts: gpd.GeoDataFrame
    tables: dict[str, pd.DataFrame]
    skipped: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class CoverageResult:
    """What the cameras can see: the inventory, footprints, their union and per-tract measures."""

    tracts: gpd.GeoDataFrame
    cameras: gpd.GeoDataFrame
    footprints: gpd.GeoDataFrame
    union: shapely.Geometry
    measure_crs: CRS
    skipped: tuple[dict[str, str], ...] = field(default=())


def counts_stage(
    gdf_counts: gpd.GeoDataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    gdf_districts: gpd.GeoDataFrame | None = None,
    ledger: Ledger | None = None,
) -> CountsResult:
    """Give each panorama its district and compute the census summary tables.

    Parameters
    ----------
    gdf_counts
        The ``counts`` table (one row per panorama; :func:`camcensus.io.decode.
        intersections_from_csv` or :func:`camcensus.aggregate.aggregate_submissions`).
    gdf_tracts
        Tracts with ``borough`` (their district): used when the counts carry no district and
        no district polygons are given.
    gdf_districts
        District polygons with ``BoroName``; when given, every panorama's district is
        (re)assigned from them.
    """
    ledger = ledger if ledger is not None else Ledger()
    if len(gdf_counts) == 0:
        raise InputError(
            [
                Problem(
                    str(gdf_counts.attrs.get("source", "counts")),
                    None,
                    None,
                    "no panorama rows",
                    "at least one panorama with its counts",
                    "check that the file holds data rows, not only a header",
                )
            ]
        )
    pan = gdf_counts.copy()
    if gdf_districts is not None:
        pan = assign_boroughs(pan, gdf_districts, ledger=ledger, stage="assign borough")
    elif DISTRICT not in pan.columns:
        by_tract = borough_outlines(gdf_tracts).rename(columns={"borough": DISTRICT})
        pan = assign_boroughs(pan, by_tract, ledger=ledger, stage="assign borough (from tracts)")
        ledger.note("No borough polygons given: each panorama's borough is that of its tract.")
    pan = add_totals(pan)
    tables = summary_tables(pan, ledger=ledger)
    skipped: list[dict[str, str]] = []
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
    return CountsResult(pan, tables, tuple(skipped))


def cameras_stage(gdf_counts: gpd.GeoDataFrame, *, licence: str = "") -> gpd.GeoDataFrame:
    """Return the camera inventory of the counts (n cameras = n rows at the panorama point)."""
    return cameras_from_counts(gdf_counts, licence=licence)


def coverage_stage(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    gdf_counts: gpd.GeoDataFrame,
    *,
    radius_m: float,
    band_m: float,
    quad_segs: int,
    snap_m: float,
    model: str = "disc",
    ledger: Ledger | None = None,
) -> CoverageResult:
    """Draw the public cameras' footprints and measure them per tract.

    Public cameras are those on street furniture (``mount == "street"``), Amnesty's stand-in
    for police and city ownership. ``gdf_counts`` gives ``panoramas`` (points surveyed per
    tract). Raises :class:`~camcensus.InputError` when no public camera falls near any tract
    (swapped coordinates, tracts of another city).
    """
    ledger = ledger if ledger is not None else Ledger()
    check_radius(radius_m)
    mcrs = measurement_crs(gdf_tracts)
    if "attached_street_median" not in gdf_counts.columns:
        return CoverageResult(
            gdf_tracts.copy(),
            gdf_cameras,
            footprints(gdf_cameras.iloc[:0], model, radius_m=radius_m, crs=mcrs),
            shapely.Polygon(),
            mcrs,
            (
                {
                    "output": "public-camera coverage per tract, coverage map",
                    "reason": "the input has no attached_street_median column",
                },
            ),
        )
    public = public_cameras(gdf_cameras)
    tracts, fps, union = _measure(
        gdf_tracts,
        public,
        mcrs,
        model=model,
        radius_m=radius_m,
        band_m=band_m,
        quad_segs=quad_segs,
        snap_m=snap_m,
        ledger=ledger,
    )
    reached = tracts["cameras"].sum() + tracts["eff_cameras_within_200m"].sum()
    if len(public) and reached == 0:
        raise InputError([_nowhere_problem(gdf_counts, gdf_tracts)])
    zones = np.asarray(gdf_tracts.to_crs(mcrs).geometry.values)
    owner = locate_points(np.asarray(gdf_counts.to_crs(mcrs).geometry.values), zones).owner
    tracts["panoramas"] = np.bincount(owner[owner >= 0], minlength=len(zones))
    return CoverageResult(tracts, gdf_cameras, fps, union, mcrs)


def _measure(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    mcrs: CRS,
    *,
    model: str,
    radius_m: float,
    band_m: float,
    quad_segs: int,
    snap_m: float,
    ledger: Ledger,
    **footprint_options: Any,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, shapely.Geometry]:
    """Draw the footprints of ``gdf_cameras`` and measure them per tract; return the tracts
    with the coverage columns, the footprints and their union."""
    fps = footprints(
        gdf_cameras, model, radius_m=radius_m, quad_segs=quad_segs, crs=mcrs, **footprint_options
    )
    union = footprint_union(fps)
    local = Ledger()
    tracts = add_coverage_measures(
        gdf_tracts,
        fps,
        gdf_cameras,
        band_m=band_m,
        quad_segs=quad_segs,
        snap_m=snap_m,
        coverage=union,
        ledger=local,
    )
    for e in local:
        ledger.exclude(e.stage, e.reason, e.count)
    for n in local.notes:
        ledger.note(n)
    return tracts, fps, union


def cameras_coverage_stage(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    *,
    radius_m: float,
    band_m: float,
    quad_segs: int,
    snap_m: float,
    model: str = "disc",
    ledger: Ledger | None = None,
    **footprint_options: Any,
) -> CoverageResult:
    """Draw every camera's footprint and measure them per tract (an inventory without counts).

    The counts-free twin of :func:`coverage_stage` for inventories (city lists, OpenStreetMap):
    every camera given counts, whatever its mount. ``footprint_options`` go to
    :func:`~camcensus.coverage.footprints` (``buildings``, ``specs``, ``bands``...). Raises
    :class:`~camcensus.InputError` when no camera falls near any tract.
    """
    ledger = ledger if ledger is not None else Ledger()
    check_radius(radius_m)
    mcrs = measurement_crs(gdf_tracts)
    tracts, fps, union = _measure(
        gdf_tracts,
        gdf_cameras,
        mcrs,
        model=model,
        radius_m=radius_m,
        band_m=band_m,
        quad_segs=quad_segs,
        snap_m=snap_m,
        ledger=ledger,
        **footprint_options,
    )
    reached = tracts["cameras"].sum() + tracts["eff_cameras_within_200m"].sum()
    if len(gdf_cameras) and reached == 0:
        raise InputError([_nowhere_problem(gdf_cameras, gdf_tracts)])
    return CoverageResult(tracts, gdf_cameras, fps, union, mcrs)


def _nowhere_problem(gdf_counts: gpd.GeoDataFrame, gdf_tracts: gpd.GeoDataFrame) -> Problem:
    """Explain why no camera lies near any tract: swapped coordinates, or another place."""
    pts = gdf_counts.to_crs("EPSG:4326").geometry
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    bounds = gdf_tracts.to_crs("EPSG:4326").total_bounds
    swapped_inside = np.mean(
        (y >= bounds[0]) & (y <= bounds[2]) & (x >= bounds[1]) & (x <= bounds[3])
    )
    lat, lon = float(np.median(y)), float(np.median(x))
    if swapped_inside > 0.5:
        why = "are Lat and Long swapped? With them exchanged the points fall on the tracts"
    elif lat < -60:
        why = "all points fall in the Southern Ocean: are Lat and Long swapped?"
    else:
        centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
        geod = Transformer.from_crs("EPSG:4326", "EPSG:4978", always_xy=True)
        a = np.array(geod.transform(lon, lat, 0.0))
        b = np.array(geod.transform(centre[0], centre[1], 0.0))
        km = float(np.linalg.norm(a - b)) / 1000
        why = (
            f"the points lie about {km:,.0f} km from the tracts: are the tracts those of the "
            "same city, and the coordinates WGS84 degrees?"
        )
    return Problem(
        str(gdf_counts.attrs.get("source", "counts")),
        None,
        "Long/Lat",
        f"no public camera within reach of any tract (median point {lat:.4f}, {lon:.4f})",
        "panorama points on or near the tract polygons",
        why,
    )


def population_stage(
    gdf_tracts: gpd.GeoDataFrame,
    census: pd.DataFrame,
    *,
    min_population: int,
    ledger: Ledger | None = None,
    tracts_file: str = "tracts",
    census_file: str = "census table",
) -> gpd.GeoDataFrame:
    """Join the census table to the tracts and add surveillance levels per 1,000 residents.

    Tracts without a census row and tracts with at most ``min_population`` residents get no
    rate; each is counted with its own reason. A join that matches no GEOID at all is an
    :class:`~camcensus.InputError` naming both files and the likely cause.
    """
    ledger = ledger if ledger is not None else Ledger()
    cols = [
        c
        for c in (
            "popn",
            "popn_white",
            "popn_black",
            "popn_hispanic",
            "med_income",
            "nonwhite_fraction",
        )
        if c in census.columns
    ]
    ids = set(map(str, census.index))
    tract_ids = gdf_tracts["GEOID"].astype(str)
    matched = tract_ids.isin(ids)
    if len(gdf_tracts) and len(census) and not matched.any():
        hint = io_census.geoid_mismatch_hint(
            tract_ids, census.index, Path(tracts_file).name, Path(census_file).name
        )
        problem = Problem(
            census_file,
            None,
            "GEOID",
            f"no GEOID in common with {Path(tracts_file).name}",
            "the census table's GEOIDs to match the tract polygons' GEOIDs",
            hint,
        )
        raise InputError([problem])
    joined = gdf_tracts.merge(census[cols], left_on="GEOID", right_index=True, how="left")
    no_row = ~matched.to_numpy()
    if no_row.any():
        io_census.note_tracts_without_census(
            tract_ids, census.index, ledger, census_file=Path(census_file).name
        )
    ledger.exclude(
        "surveillance level",
        "tract has no row in the census table: no population, no rate",
        int(no_row.sum()),
    )
    not_in_tracts = len(ids - set(tract_ids))
    if not_in_tracts:
        ledger.note(f"{not_in_tracts} census row(s) match no tract polygon (ignored)")
    small = (joined["popn"].fillna(0) <= min_population) & ~no_row
    ledger.exclude(
        "surveillance level",
        f"tract population at most {min_population} (parks, airports): no rate",
        int(small.sum()),
    )
    denom = joined["popn"].where(~small & ~no_row)
    if "eff_cameras" in joined.columns:
        joined["surveillance_level"] = joined["eff_cameras"] / denom * 1000
        joined["surveillance_level_200m"] = joined["eff_cameras_within_200m"] / denom * 1000
    return joined


def study_area(gdf_tracts: gpd.GeoDataFrame, gdf_counts: gpd.GeoDataFrame) -> np.ndarray:
    """Return, per tract, whether it lies in a district (``borough``) the counts cover.

    A Brooklyn-only input covers the Brooklyn tracts; its land, residents and comparisons are
    those of Brooklyn, never the city's.
    """
    outlines = borough_outlines(gdf_tracts)
    # A panorama's own district (Decode's BoroName) counts first, when the tracts know that
    # name; the polygons place the panoramas without one (or with a name the tracts lack).
    known = set(outlines["borough"])
    named = (
        gdf_counts[DISTRICT].isin(known).to_numpy()
        if DISTRICT in gdf_counts.columns
        else np.zeros(len(gdf_counts), dtype=bool)
    )
    present = set(gdf_counts.loc[named, DISTRICT]) if named.any() else set()
    pts = np.asarray(gdf_counts.loc[~named].geometry.to_crs(outlines.crs).values)
    owner = locate_points(pts, np.asarray(outlines.geometry.values)).owner
    present |= set(outlines["borough"].to_numpy()[np.unique(owner[owner >= 0])])
    inside: np.ndarray = gdf_tracts["borough"].isin(present).to_numpy(dtype=bool)
    return inside


def complete_tracts(
    gdf_tracts: gpd.GeoDataFrame, in_area: np.ndarray, *, reach_m: float
) -> np.ndarray:
    """Return, per tract, whether every camera that could reach it (within ``reach_m``) lies in
    the study area, so that its coverage is fully known from the input."""
    crs = measurement_crs(gdf_tracts)
    geoms = np.asarray(gdf_tracts.to_crs(crs).geometry.values)
    outside = geoms[~in_area]
    if len(outside) == 0:
        return in_area.copy()
    reach = shapely.buffer(geoms, reach_m / metres_per_unit(crs))
    it, _ = shapely.STRtree(outside).query(reach, predicate="intersects")
    touches = np.zeros(len(geoms), dtype=bool)
    touches[it] = True
    out: np.ndarray = in_area & ~touches
    return out


def headline_numbers(
    counts: CountsResult,
    coverage: CoverageResult,
    tracts: gpd.GeoDataFrame,
    *,
    in_area: np.ndarray,
    radius_m: float,
) -> dict[str, Any]:
    """Return the headline figures; land and residents are those of the study area."""
    pan, tables, mcrs, cov = counts.counts, counts.tables, coverage.measure_crs, coverage.union
    n: dict[str, Any] = {"panoramas": len(pan), "total_cameras": int(pan["total_cameras"].sum())}
    for a in (*decode.ATTACHMENTS, *decode.POLE_TYPES):
        if f"{a}_median" in pan.columns:
            n[a] = int(pan[f"{a}_median"].sum())
    n["cameras_in_inventory"] = len(coverage.cameras)
    districts = pan[DISTRICT].fillna("(no borough)") if DISTRICT in pan.columns else None
    if "attached_street_median" in pan.columns:
        n["public_cameras"] = n["attached_street"]
        n["public_intersections"] = int((pan["attached_street_median"] > 0).sum())
        if districts is not None:
            street = pan["attached_street_median"]
            n["public_cameras_by_borough"] = {
                str(k): int(v) for k, v in street.groupby(districts).sum().items()
            }
            n["public_intersections_by_borough"] = {
                str(k): int(v) for k, v in (street > 0).groupby(districts).sum().items()
            }
    if "type_dome_median" in pan.columns:
        n["public_dome_intersections"] = int((pan["type_dome_median"] > 0).sum())
    area = tracts.loc[in_area]
    n["study_area_districts"] = sorted(map(str, area["borough"].dropna().unique()))
    n["tracts_in_study_area"] = int(in_area.sum())
    if "eff_cameras" in tracts.columns:
        mpu = metres_per_unit(mcrs)
        n["coverage_km2"] = float(shapely.area(cov)) * mpu**2 / 1e6
        land = float(area["area_m2"].sum())
        n["land_km2"] = land / 1e6
        covered = float((area["eff_cameras"] * np.pi * radius_m**2).sum())
        n["covered_land_km2"] = covered / 1e6
        n["covered_land_share"] = covered / land if land > 0 else None
        for c in COVERAGE_COLUMNS:
            n[f"sum_{c}"] = float(tracts[c].sum())
        n["tracts"] = len(tracts)
        n["tracts_with_coverage"] = int((tracts["eff_cameras"] > 0).sum())
    if "popn" in tracts.columns and "eff_cameras" in tracts.columns:
        pop = area["popn"].fillna(0)
        n["residents"] = float(pop.sum())
        n["residents_in_tracts_with_public_camera"] = float(pop[area["cameras"] > 0].sum())
    if "cameras_per_intersection" in tables:
        t = tables["cameras_per_intersection"]
        n["cameras_per_intersection_pooled"] = float(t["cameras_per_intersection"].loc["Total"])
        n["cameras_per_intersection_sum_of_borough_ratios"] = float(
            t.drop(index="Total")["cameras_per_intersection"].sum()
        )
    return n
