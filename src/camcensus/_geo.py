"""CRS preconditions: never measure a distance or an area in degrees."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

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
    "crs_fix",
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


def crs_fix(
    path: str,
    *,
    crs_option: str | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    declared: CRS | None = None,
) -> str:
    """Return the fix text for a file without a CRS, or with a CRS its coordinates do not fit.

    Names the command-line option ``crs_option`` (e.g. ``"--tracts-crs"``) when there is one,
    and Python's ``crs=``. When ``bounds`` tell what the coordinates are (degrees, or metres
    that look like UTM), the example is that CRS; it is never the ``declared`` one.
    """
    guessed = _crs_guess(bounds, declared)
    if guessed is None:
        guess = "EPSG:XXXX"
        what = "the CRS the coordinates are in"
        if declared is not None:
            what += f" (not {declared.to_string()}, which the file declares)"
    else:
        guess = guessed[0]
        what = f"the CRS the coordinates are in ({guessed[1]})"
    how = f"{crs_option} {guess} on the command line, or crs='{guess}' in Python"
    if crs_option is None:
        how = f"crs='{guess}' in Python"
    name = Path(path).name or "the file"
    return (
        f"pass {what}: {how}; or write the file again with it "
        f"(ogr2ogr -a_srs {guess} fixed.gpkg {name})"
    )


def _crs_guess(
    bounds: tuple[float, float, float, float] | None, declared: CRS | None
) -> tuple[str, str] | None:
    """Return (CRS, why) that the coordinates within ``bounds`` are likely in, or None."""
    if bounds is None or not np.all(np.isfinite(bounds)):
        return None
    xmin, ymin, xmax, ymax = bounds
    if max(abs(xmin), abs(xmax)) <= 180 and max(abs(ymin), abs(ymax)) <= 90:
        if declared is not None and declared.is_geographic:
            return None
        return "EPSG:4326", "they fit longitude/latitude in degrees, WGS84"
    # UTM eastings stay within about 166,000-834,000 m of the false easting 500,000.
    if xmin >= 100_000 and xmax <= 900_000 and ymin >= -10_000_000 and ymax <= 10_000_000:
        return (
            "EPSG:326NN",
            "they look like UTM metres: EPSG:326NN for UTM zone NN north, 327NN south; "
            "e.g. EPSG:32618 for New York",
        )
    return None


def check_crs_plausible(
    gdf: gpd.GeoDataFrame,
    path: str,
    *,
    margin_deg: float = 1.0,
    crs_option: str | None = None,
) -> None:
    """Raise if ``gdf``'s coordinates cannot be in its declared CRS.

    Catches the commonest mislabelling: coordinates in one CRS (say degrees) declared as another
    (say state-plane feet), which otherwise produces silently wrong areas. ``crs_option``
    names the command-line option that sets the CRS (e.g. ``"--tracts-crs"``), for the fix.
    """
    if gdf.crs is None or len(gdf) == 0:
        return
    crs = CRS.from_user_input(gdf.crs)
    xmin, ymin, xmax, ymax = (float(v) for v in gdf.total_bounds)
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
            with np.errstate(all="ignore"):
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
                    crs_fix(
                        path,
                        crs_option=crs_option,
                        bounds=(xmin, ymin, xmax, ymax),
                        declared=crs,
                    ),
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
    on_border = int((np.bincount(ip, minlength=len(points)) > 1).sum())
    return PointOwners(owner, on_border, snapped, distance)


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


def check_crs(value: str, option: str, *, example: str = "EPSG:2908") -> str:
    """Return ``value`` when pyproj knows it as a CRS; else raise
    :class:`~camcensus.OptionError` naming ``option`` and a CRS that works."""
    from pyproj.exceptions import CRSError

    from camcensus._errors import OptionError

    try:
        CRS.from_user_input(value)
    except CRSError as exc:
        raise OptionError(
            f"{option} {value!r} is not a CRS pyproj knows ({exc}). Fix: give an EPSG code, "
            f"e.g. {option} {example} (NY Long Island state plane, US feet) or EPSG:32618 "
            "(UTM 18N, metres)."
        ) from exc
    return value
