"""Coverage models: what each camera can see, as polygons (DESIGN.md, ``footprints`` table).

A model turns the ``cameras`` table into ``footprints``: one row per camera (and per band, for
models with bands), with the polygon it covers in a metric or state-plane CRS. Per-area
measures (tracts, districts, routes) are computed from footprints
(:mod:`camcensus.coverage.measures`), never inside a model.

Models available now: ``disc`` (Amnesty's: a disc of radius r around the camera, drawn with
``quad_segs`` segments per quarter circle as R's sf does, so results equal Amnesty's R output).
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from camcensus import settings
from camcensus._errors import CrsError, OptionError
from camcensus._geo import measurement_crs, metres_per_unit

__all__ = ["FOOTPRINT_COLUMNS", "MODELS", "footprint_union", "footprints", "unit_area"]

#: Columns of the ``footprints`` contract table (plus a polygon geometry).
FOOTPRINT_COLUMNS = ("camera_id", "model", "band", "parameters")
#: Coverage models implemented. Fields of view, occlusion and pixel density need camera
#: directions and building footprints (the exposure work) and are not available yet.
MODELS = ("disc",)


def check_radius(radius_m: float, name: str = "radius_m") -> float:
    """Return ``radius_m`` as a float if it is a distance a camera can reach, else raise."""
    try:
        r = float(radius_m)
    except (TypeError, ValueError):
        r = math.nan
    wrong = settings.problem("camera_radius_m", r)
    if wrong:
        raise OptionError(
            f"{name} {radius_m!r} is {wrong}: it must be {settings.allowed('camera_radius_m')} "
            "metres. Fix: pass e.g. --radius-m 120 (Amnesty's camera range)."
        )
    return r


def footprints(
    gdf_cameras: gpd.GeoDataFrame,
    model: str = "disc",
    *,
    radius_m: float | None = None,
    quad_segs: int | None = None,
    crs: CRS | str | int | None = None,
) -> gpd.GeoDataFrame:
    """Return what each camera can see under coverage ``model``.

    Parameters
    ----------
    gdf_cameras
        The ``cameras`` table (``camera_id`` and point geometry with a CRS are what ``disc``
        needs).
    model
        One of :data:`MODELS`.
    radius_m, quad_segs
        Disc radius in metres and segments per quarter circle (defaults: settings
        ``camera_radius_m`` and ``quad_segs``).
    crs
        The metric or state-plane CRS to draw in (default: the cameras' own if projected,
        else their UTM zone). Measure areas in the same CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per camera, same order: ``camera_id``, ``model``, ``band`` (``"any"``),
        ``parameters`` (JSON text), polygon geometry in ``crs``.
    """
    if model not in MODELS:
        raise OptionError(
            f"unknown coverage model {model!r}; available: {', '.join(MODELS)}. The fov, "
            "occluded and pixel_density models need camera directions and building footprints."
        )
    if gdf_cameras.crs is None:
        raise CrsError("the cameras have no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    r = check_radius(settings.get_float("camera_radius_m") if radius_m is None else radius_m)
    segs = settings.get_int("quad_segs") if quad_segs is None else int(quad_segs)
    target = CRS.from_user_input(crs) if crs is not None else measurement_crs(gdf_cameras)
    pts = np.asarray(gdf_cameras.geometry.to_crs(target).values)
    # Cameras at one point share one disc: buffer each distinct point once.
    wkb = shapely.to_wkb(pts)
    uniq, inverse = np.unique(wkb, return_inverse=True)
    discs = shapely.buffer(shapely.from_wkb(uniq), r / metres_per_unit(target), quad_segs=segs)
    params = json.dumps({"radius_m": r, "quad_segs": segs})
    return gpd.GeoDataFrame(
        {
            "camera_id": gdf_cameras["camera_id"].to_numpy(),
            "model": model,
            "band": "any",
            "parameters": params,
        },
        geometry=discs[inverse.ravel()] if len(pts) else [],
        crs=target,
    )


def unit_area(gdf_footprints: gpd.GeoDataFrame) -> float:
    """Return the area of one whole footprint (π r² for discs), in squared CRS units: the
    divisor that turns covered area into "effective cameras"."""
    models = set(gdf_footprints["model"]) if len(gdf_footprints) else {"disc"}
    if models != {"disc"}:
        raise OptionError(f"effective cameras are defined for the disc model, not {models}")
    if len(gdf_footprints):
        r = json.loads(str(gdf_footprints["parameters"].iloc[0]))["radius_m"]
    else:
        r = settings.get_float("camera_radius_m")
    return float(np.pi * (r / metres_per_unit(CRS.from_user_input(gdf_footprints.crs))) ** 2)


def footprint_union(gdf_footprints: gpd.GeoDataFrame) -> shapely.Geometry:
    """Return the union of the footprints (a polygon shared by several cameras merged once)."""
    geoms = np.asarray(gdf_footprints.geometry.values)
    if len(geoms) == 0:
        return shapely.Polygon()
    # Cameras at one point share one polygon object (see footprints): the same object once.
    _, first = np.unique(np.fromiter(map(id, geoms), dtype=np.int64, count=len(geoms)),
                         return_index=True)  # fmt: skip
    return shapely.union_all(geoms[np.sort(first)])
