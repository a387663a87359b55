"""What public cameras can see, per census tract (Amnesty's ``analysis/prepdata.R``).

Definitions (DESIGN.md): *coverage(r)* is the union of discs of radius r around public
intersections (those with ``attached_street_median > 0``); a tract's ``eff_cameras`` is
area(coverage ∩ tract) / (π r²); ``eff_cameras_within_200m`` is the same with the tract buffered
by 200 m; ``cameras`` and ``cameras_within_200m`` sum ``attached_street_median`` of the points in
the tract / in the buffered tract. Discs and buffers are polygons with ``quad_segs`` segments per
quarter circle (30, R's sf default) so results compare with Amnesty's to ~1e-11.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from camcensus._errors import Ledger
from camcensus._geo import locate_points, measurement_crs, metres_per_unit

__all__ = ["COVERAGE_COLUMNS", "add_coverage", "coverage_union", "covered_area", "public_points"]

COVERAGE_COLUMNS = ("eff_cameras", "eff_cameras_within_200m", "cameras", "cameras_within_200m")


def public_points(
    gdf_intersections: gpd.GeoDataFrame, *, count_col: str = "attached_street_median"
) -> gpd.GeoDataFrame:
    """Return the intersections with at least one public camera."""
    if count_col not in gdf_intersections.columns:
        raise ValueError(
            f"column {count_col!r} is needed for coverage (public cameras) but the "
            "intersections have only " + ", ".join(map(str, gdf_intersections.columns))
        )
    return gdf_intersections.loc[gdf_intersections[count_col] > 0]


def coverage_union(
    points: gpd.GeoDataFrame | gpd.GeoSeries, *, radius_m: float = 120.0, quad_segs: int = 30
) -> shapely.Geometry:
    """Return the union of discs of ``radius_m`` around ``points`` (in their projected CRS)."""
    crs = CRS.from_user_input(points.crs)
    r = radius_m / metres_per_unit(crs)
    geoms = points.geometry.values if isinstance(points, gpd.GeoDataFrame) else points.values
    if len(geoms) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(np.asarray(geoms), r, quad_segs=quad_segs))


def covered_area(zones: np.ndarray, coverage: shapely.Geometry) -> np.ndarray:
    """Return area(zone ∩ coverage) for each zone, in squared CRS units.

    Instead of intersecting every zone with the whole coverage multipolygon (which costs a
    pass over all its vertices per zone), the coverage is split into its parts, indexed, and
    each zone is intersected only with the parts whose boxes it meets. The parts are disjoint,
    so the areas add.
    """
    zones = np.asarray(zones)
    parts = shapely.get_parts(coverage)
    parts = parts[~shapely.is_empty(parts)]
    if len(parts) == 0 or len(zones) == 0:
        return np.zeros(len(zones))
    tree = shapely.STRtree(parts)
    iz, ip = tree.query(zones, predicate="intersects")
    areas = shapely.area(shapely.intersection(zones[iz], parts[ip]))
    return np.bincount(iz, weights=areas, minlength=len(zones))


def add_coverage(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_intersections: gpd.GeoDataFrame,
    *,
    radius_m: float = 120.0,
    band_m: float = 200.0,
    quad_segs: int = 30,
    count_col: str = "attached_street_median",
    snap_m: float = 100.0,
    coverage: shapely.Geometry | None = None,
    ledger: Ledger | None = None,
    workers: int | None = None,
) -> gpd.GeoDataFrame:
    """Add the four coverage columns of Amnesty's ``camera_count`` table to the tracts.

    Parameters
    ----------
    gdf_tracts
        Tract polygons with ``GEOID``; measured in their own CRS if projected (NYC: EPSG:2908,
        as Amnesty), else in their UTM zone.
    gdf_intersections
        Panorama points with ``count_col``; any CRS.
    radius_m, band_m, quad_segs
        Disc radius, tract buffer for the ``*_within_200m`` columns, segments per quarter circle.
    count_col
        Count of public cameras per point.
    snap_m
        A public point in no tract goes to the nearest tract within this distance (noted in
        ``ledger``); farther ones are excluded from ``cameras`` and counted.
    coverage
        A precomputed :func:`coverage_union` in the tracts' measuring CRS.
    ledger
        Receives exclusions and notes.
    workers
        Threads for the geometry work (shapely releases the GIL); default: up to 2 cores.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``gdf_tracts`` (same index and CRS) with float ``eff_cameras``,
        ``eff_cameras_within_200m`` and ``cameras``, ``cameras_within_200m`` (sums of
        ``count_col``), ``area_m2`` (tract land area) and ``panoramas`` (panorama points in the
        tract, with or without cameras).
    """
    ledger = ledger if ledger is not None else Ledger()
    crs = measurement_crs(gdf_tracts)
    tracts = gdf_tracts.to_crs(crs)
    mpu = metres_per_unit(crs)
    pts = public_points(gdf_intersections, count_col=count_col).to_crs(crs)
    disc_area = np.pi * (radius_m / mpu) ** 2
    zones = np.asarray(tracts.geometry.values)
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        # The union of discs and the buffering of tracts are independent: run them side by side.
        banded_job = pool.submit(shapely.buffer, zones, band_m / mpu, quad_segs=quad_segs)
        if coverage is None:
            coverage = coverage_union(pts, radius_m=radius_m, quad_segs=quad_segs)
        banded = banded_job.result()
        inner_job = pool.submit(covered_area, zones, coverage)
        band_area = covered_area(banded, coverage)
        inner_area = inner_job.result()
    out = gdf_tracts.copy()
    out["eff_cameras"] = inner_area / disc_area
    out["eff_cameras_within_200m"] = band_area / disc_area
    out["area_m2"] = shapely.area(zones) * mpu**2

    # Panoramas surveyed per tract (all of them, with or without cameras): the exposure of
    # per-intersection rates. Meaningful only when the input lists camera-free panoramas too.
    all_owner = locate_points(
        np.asarray(gdf_intersections.to_crs(crs).geometry.values), zones
    ).owner
    out["panoramas"] = np.bincount(all_owner[all_owner >= 0], minlength=len(zones))

    weights = pts[count_col].to_numpy(dtype="float64")
    pgeom = np.asarray(pts.geometry.values)
    located = locate_points(pgeom, zones, snap=snap_m / mpu)
    owner = located.owner
    if located.on_border:
        ledger.note(
            f"{located.on_border} public intersection(s) on a tract border counted in one tract"
        )
    if len(located.snapped):
        ledger.note(
            f"{len(located.snapped)} public intersection(s) ({weights[located.snapped].sum():g} "
            f"cameras) lay outside every tract polygon (shoreline clipping) and were given to "
            f"the nearest tract (at most {located.snap_distance.max() * mpu:.1f} m away)"
        )
    ledger.exclude(
        "coverage",
        f"public intersection farther than {snap_m:g} m from every tract",
        int((owner < 0).sum()),
    )
    has = owner >= 0
    out["cameras"] = np.bincount(owner[has], weights=weights[has], minlength=len(zones))
    ib_pt, ib_tract = shapely.STRtree(banded).query(pgeom, predicate="intersects")
    out["cameras_within_200m"] = np.bincount(ib_tract, weights=weights[ib_pt], minlength=len(zones))
    return out
