"""Per-area measures of coverage, per census tract (Amnesty's ``analysis/prepdata.R``).

Definitions (DESIGN.md): *coverage(r)* is the union of discs of radius r around public
intersections (those with ``attached_street_median > 0``); a tract's ``eff_cameras`` is
area(coverage ∩ tract) / (π r²); ``eff_cameras_within_200m`` is the same with the tract buffered
by 200 m; ``cameras`` and ``cameras_within_200m`` sum ``attached_street_median`` of the points in
the tract / in the buffered tract. Discs and buffers are polygons with ``quad_segs`` segments per
quarter circle (30, R's sf default) so results equal Amnesty's own to ~1e-11 for
full-precision coordinates (the citywide file's coordinates are rounded to 5 decimals, which moves
coverage by up to 0.0075 effective cameras).

The measures take the ``footprints`` of a coverage model (:mod:`camcensus.coverage.footprints`)
and the ``cameras`` table (:mod:`camcensus.cameras`); :func:`add_coverage` builds both from
per-panorama counts.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from camcensus import settings
from camcensus._errors import ContractError, Ledger, OptionError
from camcensus._geo import locate_points, measurement_crs, metres_per_unit
from camcensus.cameras import cameras_from_counts
from camcensus.coverage.footprints import check_radius, footprint_union, footprints, unit_area

__all__ = [
    "COVERAGE_COLUMNS",
    "add_coverage",
    "add_coverage_measures",
    "covered_area",
    "public_cameras_from_counts",
    "public_points",
]

COVERAGE_COLUMNS = ("eff_cameras", "eff_cameras_within_200m", "cameras", "cameras_within_200m")


def public_points(
    gdf_intersections: gpd.GeoDataFrame, *, count_col: str = "attached_street_median"
) -> gpd.GeoDataFrame:
    """Return the intersections with at least one public camera."""
    if count_col not in gdf_intersections.columns:
        raise ContractError(
            f"column {count_col!r} is needed for coverage (public cameras) but the "
            "intersections have only " + ", ".join(map(str, gdf_intersections.columns))
        )
    return gdf_intersections.loc[gdf_intersections[count_col] > 0]


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


def add_coverage_measures(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_footprints: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    *,
    band_m: float | None = None,
    quad_segs: int | None = None,
    snap_m: float | None = None,
    coverage: shapely.Geometry | None = None,
    ledger: Ledger | None = None,
    workers: int | None = None,
) -> gpd.GeoDataFrame:
    """Add the four coverage columns of Amnesty's ``camera_count`` table from footprints.

    Parameters
    ----------
    gdf_tracts
        Tract polygons with ``GEOID``, in the CRS the footprints were drawn in (a metric or
        state-plane CRS; :func:`~camcensus._geo.measurement_crs`).
    gdf_footprints
        :func:`~camcensus.coverage.footprints.footprints` of the cameras that count.
    gdf_cameras
        The cameras themselves (points, any CRS): ``cameras`` counts them per tract.
    band_m, quad_segs, snap_m
        Tract buffer of the ``*_within_200m`` columns, its segments per quarter circle, and how
        far (m) a camera outside every tract may lie to be given to the nearest one (defaults:
        the settings ``band_m``, ``quad_segs``, ``snap_m``).
    coverage
        The footprints' union, if already computed.
    ledger
        Receives exclusions and notes.
    workers
        Threads for the geometry work (shapely releases the GIL); default: up to 2 cores.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``gdf_tracts`` with float ``eff_cameras``, ``eff_cameras_within_200m``
        (covered area / area of one footprint), ``cameras``, ``cameras_within_200m`` (cameras in
        the tract / in the buffered tract) and ``area_m2`` (tract land area).
    """
    ledger = ledger if ledger is not None else Ledger()
    band = settings.get_float("band_m") if band_m is None else float(band_m)
    if not np.isfinite(band) or band < 0:
        raise OptionError(f"band_m must be a distance of 0 m or more, not {band_m!r}")
    segs = settings.get_int("quad_segs") if quad_segs is None else int(quad_segs)
    snap = settings.get_float("snap_m") if snap_m is None else float(snap_m)
    crs = CRS.from_user_input(gdf_footprints.crs)
    tracts = gdf_tracts.to_crs(crs)
    mpu = metres_per_unit(crs)
    zones = np.asarray(tracts.geometry.values)
    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
        # The union of footprints and the buffering of tracts are independent: side by side.
        banded_job = pool.submit(shapely.buffer, zones, band / mpu, quad_segs=segs)
        if coverage is None:
            coverage = footprint_union(gdf_footprints)
        banded = banded_job.result()
        inner_job = pool.submit(covered_area, zones, coverage)
        band_area = covered_area(banded, coverage)
        inner_area = inner_job.result()
    disc_area = unit_area(gdf_footprints)
    out = gdf_tracts.copy()
    out["eff_cameras"] = inner_area / disc_area
    out["eff_cameras_within_200m"] = band_area / disc_area
    out["area_m2"] = shapely.area(zones) * mpu**2

    # Cameras at one point are located once, then counted with their multiplicity.
    pts_all = np.asarray(gdf_cameras.geometry.to_crs(crs).values)
    wkb = shapely.to_wkb(pts_all)
    uniq, inverse = np.unique(wkb, return_inverse=True)
    pgeom = shapely.from_wkb(uniq)
    weights = np.bincount(inverse.ravel(), minlength=len(uniq)).astype("float64")
    located = locate_points(pgeom, zones, snap=snap / mpu)
    owner = located.owner
    far = owner < 0
    _record_located(
        ledger,
        on_border=located.on_border,
        n_snapped=len(located.snapped),
        snapped_cameras=float(weights[located.snapped].sum()),
        max_snap_m=float(located.snap_distance.max() * mpu) if len(located.snapped) else 0.0,
        n_far=int(far.sum()),
        snap_m=snap,
    )
    has = ~far
    out["cameras"] = np.bincount(owner[has], weights=weights[has], minlength=len(zones))
    ib_pt, ib_tract = shapely.STRtree(banded).query(pgeom, predicate="intersects")
    out["cameras_within_200m"] = np.bincount(ib_tract, weights=weights[ib_pt], minlength=len(zones))
    return out


def add_coverage(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_intersections: gpd.GeoDataFrame,
    *,
    radius_m: float | None = None,
    band_m: float | None = None,
    quad_segs: int | None = None,
    count_col: str = "attached_street_median",
    snap_m: float | None = None,
    coverage: shapely.Geometry | None = None,
    ledger: Ledger | None = None,
    workers: int | None = None,
) -> gpd.GeoDataFrame:
    """Add the four coverage columns of Amnesty's ``camera_count`` table to the tracts.

    The counts become camera rows (:func:`~camcensus.cameras.cameras_from_counts`), the
    cameras disc footprints (:func:`~camcensus.coverage.footprints.footprints`), and the
    measures come from those (:func:`add_coverage_measures`).

    Parameters
    ----------
    gdf_tracts
        Tract polygons with ``GEOID``; measured in their own CRS if projected (NYC: EPSG:2908,
        as Amnesty), else in their UTM zone.
    gdf_intersections
        Panorama points with ``count_col``; any CRS.
    radius_m, band_m, quad_segs
        Disc radius, tract buffer for the ``*_within_200m`` columns, segments per quarter
        circle (defaults from :mod:`camcensus.settings`).
    count_col
        Count of public cameras per point.
    snap_m
        A public point in no tract goes to the nearest tract within this distance (noted in
        ``ledger``); farther ones are excluded from ``cameras`` and counted.
    coverage
        A precomputed union of the discs (:func:`~camcensus.coverage.footprint_union`) in the
        tracts' measuring CRS.
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
    r = check_radius(settings.get_float("camera_radius_m") if radius_m is None else radius_m)
    crs = measurement_crs(gdf_tracts)
    gdf_cameras = public_cameras_from_counts(gdf_intersections, count_col=count_col)
    gdf_footprints = footprints(gdf_cameras, "disc", radius_m=r, quad_segs=quad_segs, crs=crs)
    out = add_coverage_measures(
        gdf_tracts,
        gdf_footprints,
        gdf_cameras,
        band_m=band_m,
        quad_segs=quad_segs,
        snap_m=snap_m,
        coverage=coverage,
        ledger=ledger,
        workers=workers,
    )
    # Panoramas surveyed per tract (all of them, with or without cameras): the exposure of
    # per-intersection rates. Meaningful only when the input lists camera-free panoramas too.
    zones = np.asarray(gdf_tracts.to_crs(crs).geometry.values)
    all_owner = locate_points(
        np.asarray(gdf_intersections.to_crs(crs).geometry.values), zones
    ).owner
    out["panoramas"] = np.bincount(all_owner[all_owner >= 0], minlength=len(zones))
    return out


def public_cameras_from_counts(
    gdf_intersections: gpd.GeoDataFrame, *, count_col: str = "attached_street_median"
) -> gpd.GeoDataFrame:
    """Return the public cameras (``mount == "street"``) of per-panorama counts, one row each."""
    pts = public_points(gdf_intersections, count_col=count_col)
    counts = gpd.GeoDataFrame(
        {
            "PanoramaId": pts["PanoramaId"].astype(str).to_numpy()
            if "PanoramaId" in pts.columns
            else [f"row-{i + 1}" for i in range(len(pts))],
            "attached_street_median": np.ceil(pts[count_col].to_numpy(dtype="float64")),
        },
        geometry=pts.geometry.values,
        crs=pts.crs,
    )
    return cameras_from_counts(counts)


def _record_located(
    ledger: Ledger,
    *,
    on_border: int,
    n_snapped: int,
    snapped_cameras: float,
    max_snap_m: float,
    n_far: int,
    snap_m: float,
) -> None:
    """Note how camera points were given to tracts, and count those given to none (shared by
    the single-machine and the partitioned paths, so their ledgers read the same)."""
    if on_border:
        ledger.note(f"{on_border} camera point(s) on a tract border counted in one tract")
    if n_snapped:
        ledger.note(
            f"{n_snapped} camera point(s) ({snapped_cameras:g} cameras) lay outside every tract "
            "polygon (shoreline clipping) and were given to the nearest tract (at most "
            f"{max_snap_m:.1f} m away)"
        )
    ledger.exclude(
        "coverage",
        f"camera point farther than {snap_m:g} m from every tract (not counted in a tract)",
        n_far,
    )
