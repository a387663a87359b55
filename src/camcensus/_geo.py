"""CRS preconditions: never measure a distance or an area in degrees."""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from camcensus._errors import CrsError, InputError, Problem

__all__ = [
    "PointOwners",
    "borough_outlines",
    "check_crs_plausible",
    "locate_points",
    "measurement_crs",
    "metres_per_unit",
]


def metres_per_unit(crs: CRS) -> float:
    """Return how many metres one unit of the projected ``crs`` measures."""
    if not crs.is_projected:
        raise CrsError(
            f"{crs.to_string()} is geographic (degrees): distances and areas cannot be measured "
            "in it. Fix: reproject with gdf.to_crs(camcensus._geo.measurement_crs(gdf))."
        )
    return float(crs.axis_info[0].unit_conversion_factor)


def measurement_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """Return a metric or state-plane CRS to measure ``gdf`` in.

    A projected CRS is kept as it is (NYC data in EPSG:2908/2263 stays in US feet, as Amnesty's
    analysis did); a geographic one is replaced by its UTM zone.
    """
    if gdf.crs is None:
        raise CrsError("the data has no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    crs = CRS.from_user_input(gdf.crs)
    if crs.is_projected:
        return crs
    return CRS.from_user_input(gdf.estimate_utm_crs())


def check_crs_plausible(gdf: gpd.GeoDataFrame, path: str, *, margin_deg: float = 1.0) -> None:
    """Raise if ``gdf``'s coordinates cannot be in its declared CRS.

    Catches the commonest mislabelling: coordinates in one CRS (say degrees) declared as another
    (say state-plane feet), which otherwise produces silently wrong areas.
    """
    if gdf.crs is None or len(gdf) == 0:
        return
    crs = CRS.from_user_input(gdf.crs)
    xmin, ymin, xmax, ymax = gdf.total_bounds
    if not np.all(np.isfinite([xmin, ymin, xmax, ymax])):
        return
    problem = None
    if crs.is_geographic:
        if abs(xmin) > 180 or abs(xmax) > 180 or abs(ymin) > 90 or abs(ymax) > 90:
            problem = (
                f"coordinates up to ({xmax:.0f}, {ymax:.0f}), too large for degrees in "
                f"{crs.to_string()}"
            )
    else:
        aou = crs.area_of_use
        if aou is not None:
            to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
            lon, lat = to_ll.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
            ok = (
                np.all(np.isfinite(lon))
                and min(lon) >= aou.west - margin_deg
                and max(lon) <= aou.east + margin_deg
                and min(lat) >= aou.south - margin_deg
                and max(lat) <= aou.north + margin_deg
            )
            if not ok:
                problem = (
                    f"bounds ({xmin:.4g}, {ymin:.4g}, {xmax:.4g}, {ymax:.4g}) that lie outside "
                    f"the area where {crs.to_string()} ({crs.name}) is used"
                )
    if problem:
        raise InputError(
            [
                Problem(
                    path,
                    None,
                    "geometry",
                    problem,
                    "coordinates in the CRS the file declares",
                    "write the file again with its true CRS (e.g. ogr2ogr -a_srs EPSG:4326), or "
                    "pass the true CRS explicitly (crs=... / --tracts-crs)",
                )
            ]
        )


@dataclass(frozen=True)
class PointOwners:
    """Which polygon each point belongs to (see :func:`locate_points`)."""

    owner: np.ndarray  # polygon index per point, -1 where none
    on_border: int  # points inside more than one polygon (given to the lowest index)
    snapped: np.ndarray  # indices of points outside every polygon given to the nearest one
    snap_distance: np.ndarray  # their distances, in CRS units


def locate_points(
    points: np.ndarray, polygons: np.ndarray, *, snap: float | None = None
) -> PointOwners:
    """Give each point the first polygon it intersects (one vectorised STRtree query).

    A point on a shared border goes to the lower index, so it is counted once. With ``snap``,
    a point in no polygon goes to the nearest one within ``snap`` CRS units (``math.inf``:
    any distance); the rest keep -1.
    """
    tree = shapely.STRtree(polygons)
    ip, ipoly = tree.query(points, predicate="intersects")
    first = pd.Series(ipoly).groupby(ip).min()
    owner = np.full(len(points), -1)
    owner[first.index.to_numpy()] = first.to_numpy()
    snapped = np.zeros(0, dtype=int)
    distance = np.zeros(0)
    outside = np.flatnonzero(owner < 0)
    if snap is not None and len(outside):
        near_pt, near_poly = tree.query_nearest(
            points[outside], max_distance=None if math.isinf(snap) else snap, all_matches=False
        )
        snapped = outside[near_pt]
        owner[snapped] = near_poly
        distance = shapely.distance(points[snapped], polygons[near_poly])
    return PointOwners(owner, len(ip) - len(first), snapped, distance)


def borough_outlines(tracts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one polygon per ``borough`` of ``tracts`` (same CRS).

    Tracts normally tile their borough, so the fast coverage union is tried first; if the
    tiling has overlaps and the result is invalid, the full union is used.
    """
    names, geoms = [], []
    for name, group in tracts.groupby("borough", sort=True):
        parts = np.asarray(group.geometry.values)
        merged = shapely.coverage_union_all(parts)
        if not shapely.is_valid(merged):
            merged = shapely.union_all(parts)
        names.append(name)
        geoms.append(merged)
    return gpd.GeoDataFrame({"borough": names}, geometry=geoms, crs=tracts.crs)
