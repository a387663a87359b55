"""Coverage models: what each camera can see, as polygons (DESIGN.md, ``footprints`` table).

A model turns the ``cameras`` table into ``footprints``: one row per camera (and per band, for
models with bands), with the polygon it covers in a metric or state-plane CRS. Per-area
measures (tracts, districts, routes) are computed from footprints
(:mod:`camcensus.coverage.measures`), never inside a model.

Models (:data:`MODELS`):

- ``disc``: Amnesty's: a disc of radius r around the camera, drawn with ``quad_segs`` segments
  per quarter circle as R's sf does, so results equal Amnesty's R output.
- ``fov``: a wedge of radius r centred on ``direction_deg`` (true-north bearing) and
  ``hfov_deg`` wide; a camera without a direction, or with a field of view of 360° or more,
  gets the disc. With a direction but no width, the width is the default of its camera type
  (:data:`DEFAULT_HFOV_DEG`: domes and PTZ see all round).
- ``occluded``: the ``fov`` wedge (or disc) clipped by line of sight against building
  footprints (:mod:`camcensus.coverage.visibility`, an exact 2-D visibility polygon).
- ``pixel_density``: range bands where the camera puts at least a given number of pixels on
  each metre of a target on the ground (:mod:`camcensus.coverage.specs`: IEC 62676-4 DORI, the
  2025 ladder, face recognition with a vertical incidence limit), drawn as the ``fov`` shape
  and, with buildings, clipped by line of sight.

Directions are true-north bearings; they are turned into grid bearings of the drawing CRS
(which differ by the meridian convergence, about 0.7° in UTM 18N at New York).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Geod, Transformer

from camcensus import settings
from camcensus._errors import CrsError, Ledger, OptionError
from camcensus._geo import measurement_crs, metres_per_unit
from camcensus.coverage import specs as _specs
from camcensus.coverage.visibility import (
    Obstacles,
    move_out_of_buildings,
    obstacles_from_buildings,
    visibility_polygons,
)

__all__ = [
    "DEFAULT_HFOV_DEG",
    "FOOTPRINT_COLUMNS",
    "MODELS",
    "describe_footprints",
    "footprint_union",
    "footprints",
    "unit_area",
]

#: Columns of the ``footprints`` contract table (plus a polygon geometry).
FOOTPRINT_COLUMNS = ("camera_id", "model", "band", "parameters")
#: Coverage models.
MODELS = ("disc", "fov", "occluded", "pixel_density")
#: Horizontal field of view (degrees) by camera type, for a camera with a direction but no
#: ``hfov_deg``. Domes and PTZ ("panning") turn, so they see all round (360); fixed and
#: bullet cameras, and cameras of unknown type that were given a direction, get the wide
#: field of view of the default bullet in the spec table (``bullet_1080p``: 101°).
DEFAULT_HFOV_DEG = {
    "dome": 360.0,
    "panning": 360.0,
    "bullet": 101.0,
    "fixed": 101.0,
    "unknown": 101.0,
}
_ZOOMS = ("tele", "wide")


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
    buildings: gpd.GeoDataFrame | Obstacles | None = None,
    specs: pd.DataFrame | str | Path | None = None,
    bands: list[str] | tuple[str, ...] | None = None,
    zoom: str = "tele",
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Return what each camera can see under coverage ``model``.

    Parameters
    ----------
    gdf_cameras
        The ``cameras`` table. ``disc`` needs ``camera_id`` and point geometry with a CRS;
        ``fov`` and ``occluded`` also read ``direction_deg``, ``hfov_deg`` and
        ``camera_type``; ``pixel_density`` also ``height_m``, ``mount`` and an optional
        ``spec_id`` (a row of the spec table). Missing columns count as unknown.
    model
        One of :data:`MODELS`.
    radius_m, quad_segs
        Range in metres of ``disc``, ``fov`` and ``occluded`` and segments per quarter circle
        (defaults: settings ``camera_radius_m`` and ``quad_segs``).
    crs
        The metric or state-plane CRS to draw in (default: the cameras' own if projected,
        else their UTM zone). Measure areas in the same CRS.
    buildings
        Building footprints (polygons, any CRS) or prepared
        :class:`~camcensus.coverage.visibility.Obstacles`: needed by ``occluded``; with
        ``pixel_density`` the bands are clipped by line of sight too.
    specs
        ``pixel_density``: a spec table (path or DataFrame,
        :func:`~camcensus.coverage.specs.read_specs`); default: the shipped table.
    bands
        ``pixel_density``: band names (:data:`camcensus.coverage.specs.BANDS`); default all.
    zoom
        ``pixel_density``: ``"tele"`` (what a zoom camera can capture zoomed in: the reach
        Amnesty's "up to 200 m" describes) or ``"wide"`` (the camera's own ``hfov_deg`` if
        known, else the widest field of view).
    ledger
        Receives notes (cameras moved out of buildings, unusable directions).

    Returns
    -------
    geopandas.GeoDataFrame
        ``camera_id``, ``model``, ``band``, ``parameters`` (JSON text, per row) and polygon
        geometry in ``crs``: one row per camera (band ``"any"``), same order; for
        ``pixel_density`` one row per camera and band, ``"any"`` (the farthest band
        requested) first, then the bands from the farthest to the nearest.
    """
    if model not in MODELS:
        raise OptionError(f"unknown coverage model {model!r}; available: {', '.join(MODELS)}.")
    if gdf_cameras.crs is None:
        raise CrsError("the cameras have no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    if zoom not in _ZOOMS:
        raise OptionError(f"zoom must be one of {', '.join(_ZOOMS)}, not {zoom!r}")
    if model == "occluded" and buildings is None:
        raise OptionError(
            "the occluded model needs building footprints. Fix: pass buildings= (a GeoDataFrame "
            "of polygons, e.g. camcensus.io.osm.read_osm_buildings(path)) or --buildings PATH."
        )
    ledger = ledger if ledger is not None else Ledger()
    r = check_radius(settings.get_float("camera_radius_m") if radius_m is None else radius_m)
    segs = settings.get_int("quad_segs") if quad_segs is None else int(quad_segs)
    target = CRS.from_user_input(crs) if crs is not None else measurement_crs(gdf_cameras)
    mpu = metres_per_unit(target)
    pts = np.asarray(gdf_cameras.geometry.to_crs(target).values)
    ids = gdf_cameras["camera_id"].to_numpy()
    if model == "disc":
        # Cameras at one point share one disc: buffer each distinct point once.
        wkb = shapely.to_wkb(pts)
        uniq, inverse = np.unique(wkb, return_inverse=True)
        discs = shapely.buffer(shapely.from_wkb(uniq), r / mpu, quad_segs=segs)
        params = json.dumps({"radius_m": r, "quad_segs": segs})
        return gpd.GeoDataFrame(
            {"camera_id": ids, "model": model, "band": "any", "parameters": params},
            geometry=discs[inverse.ravel()] if len(pts) else [],
            crs=target,
        )
    xy = shapely.get_coordinates(pts).reshape(-1, 2) if len(pts) else np.zeros((0, 2))
    view = _view_angles(gdf_cameras, target, ledger)
    obstacles: Obstacles | None = None
    moved = np.zeros(len(xy))
    if buildings is not None:
        obstacles = (
            buildings
            if isinstance(buildings, Obstacles)
            else obstacles_from_buildings(buildings, target)
        )
        if obstacles.crs != target:
            raise CrsError(
                f"the prepared obstacles are in {obstacles.crs.to_string()}, the footprints "
                f"are drawn in {target.to_string()}. Fix: prepare them with crs={target}."
            )
        xy, moved = move_out_of_buildings(xy, obstacles)
        if (moved > 0).any():
            ledger.note(
                f"{int((moved > 0).sum())} camera(s) on or inside a building footprint were "
                f"moved just outside its nearest wall (at most {moved.max() * mpu:.1f} m)"
            )
    if model == "pixel_density":
        return _pixel_density(
            gdf_cameras, ids, xy, view, target, segs, obstacles, moved, specs, bands, zoom
        )
    shapes = _view_shapes(xy, np.full(len(xy), r / mpu), view, segs)
    base: dict[str, object] = {"radius_m": r, "quad_segs": segs}
    if obstacles is not None:
        shapes = visibility_polygons(xy, r / mpu, obstacles, clip=shapes)
        base |= {"buildings": len(obstacles.polygons), "buildings_merged": obstacles.n_merged}
    row_params = [
        json.dumps(base | view.describe(k) | ({"moved_m": round(float(moved[k]) * mpu, 3)}
                                            if moved[k] > 0 else {}))
        for k in range(len(xy))
    ]  # fmt: skip
    return gpd.GeoDataFrame(
        {"camera_id": ids, "model": model, "band": "any", "parameters": row_params},
        geometry=shapes if len(xy) else [],
        crs=target,
    )


class _View:
    """Per camera: grid angle of the centre (radians, counter-clockwise from +x; NaN when all
    round), field of view (degrees) and where each came from."""

    def __init__(self, angle: np.ndarray, hfov: np.ndarray, bearing: np.ndarray,
                 source: np.ndarray, camera_hfov: np.ndarray) -> None:  # fmt: skip
        self.angle = angle
        self.hfov = hfov
        self.bearing = bearing
        self.source = source
        self.camera_hfov = camera_hfov

    def describe(self, k: int) -> dict[str, object]:
        if not np.isfinite(self.angle[k]):
            return {"view": str(self.source[k])}
        return {
            "direction_deg": round(float(self.bearing[k]), 3),
            "hfov_deg": round(float(self.hfov[k]), 3),
            "view": str(self.source[k]),
        }


def _column(gdf: gpd.GeoDataFrame, name: str, fill: object) -> np.ndarray:
    if name not in gdf.columns:
        return np.full(len(gdf), fill, dtype=object if isinstance(fill, str) else "float64")
    if isinstance(fill, str):
        return np.asarray(gdf[name].fillna(fill).astype(str).to_numpy())
    return np.asarray(pd.to_numeric(gdf[name], errors="coerce"), dtype="float64")


def _view_angles(gdf_cameras: gpd.GeoDataFrame, target: CRS, ledger: Ledger) -> _View:
    """Return where each camera looks (see :class:`_View`)."""
    n = len(gdf_cameras)
    bearing = _column(gdf_cameras, "direction_deg", math.nan)
    hfov = _column(gdf_cameras, "hfov_deg", math.nan)
    ctype = _column(gdf_cameras, "camera_type", "unknown")
    bad_hfov = np.isfinite(hfov) & ~((hfov > 0) & (hfov <= 360))
    if bad_hfov.any():
        ledger.note(
            f"{int(bad_hfov.sum())} camera(s) have an hfov_deg outside (0, 360]: the default "
            "of their camera type was used"
        )
        hfov = np.where(bad_hfov, math.nan, hfov)
    known = np.isfinite(bearing)
    type_hfov = np.array(
        [DEFAULT_HFOV_DEG.get(t, DEFAULT_HFOV_DEG["unknown"]) for t in ctype], dtype="float64"
    )
    used = np.where(np.isfinite(hfov), hfov, type_hfov)
    source = np.where(
        ~known, "all-round (no direction)",
        np.where(np.isfinite(hfov), "camera direction and hfov", "camera direction, type hfov"),
    ).astype(object)  # fmt: skip
    wide = known & (used >= 360)
    source[wide] = "all-round (hfov 360)"
    directed = known & ~wide
    angle = np.full(n, math.nan)
    if directed.any():
        ll = gdf_cameras.geometry.to_crs("EPSG:4326")
        lon = ll.x.to_numpy()[directed]
        lat = ll.y.to_numpy()[directed]
        b = np.mod(bearing[directed], 360.0)
        lon2, lat2, _ = Geod(ellps="WGS84").fwd(lon, lat, b, np.full(len(b), 10.0))
        to_xy = Transformer.from_crs("EPSG:4326", target, always_xy=True)
        x1, y1 = to_xy.transform(lon, lat)
        x2, y2 = to_xy.transform(lon2, lat2)
        angle[directed] = np.arctan2(np.asarray(y2) - y1, np.asarray(x2) - x1)
    return _View(angle, used, np.mod(bearing, 360.0), source, hfov)


def _view_shapes(xy: np.ndarray, radius: np.ndarray, view: _View, segs: int) -> np.ndarray:
    """Return each camera's disc (all round) or wedge, ``radius`` in CRS units."""
    n = len(xy)
    shapes = np.empty(n, dtype=object)
    round_ = ~np.isfinite(view.angle)
    if round_.any():
        shapes[round_] = shapely.buffer(shapely.points(xy[round_]), radius[round_], quad_segs=segs)
    k = np.flatnonzero(~round_)
    if len(k):
        half = np.radians(view.hfov[k]) / 2
        nseg = np.maximum(1, np.ceil(view.hfov[k] / 90.0 * segs)).astype(int)
        npts = nseg + 2  # apex, arc points
        owner = np.repeat(np.arange(len(k)), npts)
        pos = np.arange(int(npts.sum())) - np.repeat(np.cumsum(npts) - npts, npts)
        frac = (pos - 1) / nseg[owner]
        theta = view.angle[k][owner] - half[owner] + 2 * half[owner] * frac
        rad = np.where(pos == 0, 0.0, radius[k][owner])
        coords = np.column_stack(
            [xy[k][owner, 0] + rad * np.cos(theta), xy[k][owner, 1] + rad * np.sin(theta)]
        )
        shapes[k] = shapely.polygons(shapely.linearrings(coords, indices=owner))
    return shapes


def _pixel_density(
    gdf_cameras: gpd.GeoDataFrame,
    ids: np.ndarray,
    xy: np.ndarray,
    view: _View,
    target: CRS,
    segs: int,
    obstacles: Obstacles | None,
    moved: np.ndarray,
    specs: pd.DataFrame | str | Path | None,
    bands: list[str] | tuple[str, ...] | None,
    zoom: str,
) -> gpd.GeoDataFrame:
    """The ``pixel_density`` model (see :func:`footprints`)."""
    mpu = metres_per_unit(target)
    table = _specs.default_specs() if specs is None else _specs.read_specs(specs)
    thresholds = _specs.band_thresholds(bands)
    faces = _specs.face_bands(thresholds)
    # Farthest band first ("any" is the farthest requested).
    names = sorted(thresholds, key=lambda b: (thresholds[b], b))
    n = len(xy)
    ctype = _column(gdf_cameras, "camera_type", "unknown")
    spec_ids = _column(gdf_cameras, "spec_id", "") if "spec_id" in gdf_cameras.columns else None
    rows = _specs.spec_rows(ctype, spec_ids, table)
    h_px = table["h_pixels"].to_numpy(dtype="float64")[rows]
    # A zoom lens zoomed in reaches farthest; a fixed lens (or zoom="wide") sees with the
    # camera's own field of view when known, else the spec's widest.
    tele = table["hfov_tele_deg"].to_numpy(dtype="float64")[rows]
    wide = table["hfov_wide_deg"].to_numpy(dtype="float64")[rows]
    own = np.where(np.isfinite(view.camera_hfov), view.camera_hfov, wide)
    reach_hfov = np.where((zoom == "tele") & (tele < wide), tele, own)
    # A directed camera without its own field of view is drawn with its spec's.
    directed = np.isfinite(view.angle) & ~np.isfinite(view.camera_hfov)
    if directed.any():
        view = _View(view.angle, np.where(directed, wide, view.hfov), view.bearing,
                     np.where(directed, "camera direction, spec hfov", view.source),
                     view.camera_hfov)  # fmt: skip
    mount = _column(gdf_cameras, "mount", "unknown")
    height = _column(gdf_cameras, "height_m", math.nan)
    height_source = np.where(np.isfinite(height), "camera", "mount default")
    height = np.where(
        np.isfinite(height),
        height,
        [_specs.DEFAULT_HEIGHT_M.get(m, _specs.DEFAULT_HEIGHT_M["unknown"]) for m in mount]
        if n else np.zeros(0),
    )  # fmt: skip
    max_dep = settings.get_float("max_depression_deg")
    inner_m = height / math.tan(math.radians(max_dep)) if max_dep > 0 else np.full(n, np.inf)
    tan_half = np.tan(np.radians(reach_hfov) / 2)
    ground = {b: _specs.ground_radius(h_px / (2 * thresholds[b] * tan_half), height) for b in names}
    reach = ground[names[0]]
    vis = None
    if obstacles is not None and n:
        vis = visibility_polygons(xy, np.maximum(reach, 1e-3) / mpu, obstacles)
    geoms: dict[str, np.ndarray] = {}
    for b in names:
        radius = ground[b] / mpu
        shape = _view_shapes(xy, np.maximum(radius, 1e-9), view, segs)
        if b in faces:
            hole = shapely.buffer(shapely.points(xy), inner_m / mpu, quad_segs=segs)
            shape = shapely.difference(shape, hole)
        if vis is not None:
            shape = shapely.intersection(vis, shape)
        shape = np.where(radius > 0, shape, shapely.Polygon())
        geoms[b] = shape
    out_bands = ["any", *names]
    common = {"zoom": zoom, "quad_segs": segs, "max_depression_deg": max_dep}
    if obstacles is not None:
        common |= {"buildings": len(obstacles.polygons), "buildings_merged": obstacles.n_merged}
    spec_id = table["spec_id"].to_numpy()[rows]
    per_cam = [
        common
        | view.describe(k)
        | {
            "spec_id": str(spec_id[k]),
            "h_pixels": float(h_px[k]),
            "reach_hfov_deg": float(reach_hfov[k]),
            "height_m": float(height[k]),
            "height_source": str(height_source[k]),
        }
        | ({"moved_m": round(float(moved[k]) * mpu, 3)} if moved[k] > 0 else {})
        for k in range(n)
    ]
    records = []
    geometry = []
    for k in range(n):
        for b in out_bands:
            band = names[0] if b == "any" else b
            p = per_cam[k] | {
                "px_per_m": thresholds[band],
                "ground_m": round(float(ground[band][k]), 3),
            }
            if band in faces:
                p["min_ground_m"] = round(float(inner_m[k]), 3)
            if b == "any":
                p["farthest_band"] = band
            records.append((ids[k], b, json.dumps(p)))
            geometry.append(geoms[band][k])
    frame = pd.DataFrame(records, columns=["camera_id", "band", "parameters"])
    frame.insert(1, "model", "pixel_density")
    return gpd.GeoDataFrame(frame, geometry=geometry if records else [], crs=target)


def describe_footprints(gdf_footprints: gpd.GeoDataFrame) -> str:
    """Return one sentence saying which model, parameters and specs produced the footprints."""
    if len(gdf_footprints) == 0:
        return "No footprints (no cameras)."
    models = sorted(set(gdf_footprints["model"]))
    if len(models) > 1:
        return " ".join(
            describe_footprints(gdf_footprints.loc[gdf_footprints["model"] == m]) for m in models
        )
    model = models[0]
    params = [json.loads(str(p)) for p in gdf_footprints["parameters"]]
    n_cam = gdf_footprints["camera_id"].nunique()
    first = params[0]
    if model == "disc":
        return (
            f"disc model: {first['radius_m']:g} m discs ({first['quad_segs']} segments per "
            f"quarter circle) around {n_cam:,} cameras."
        )
    views = pd.Series([p.get("view", "") for p in params]).value_counts()
    view_text = ", ".join(f"{v:,} {k}" for k, v in views.items())
    occl = ""
    if "buildings" in first:
        moved = sum(1 for p in params if "moved_m" in p)
        occl = (
            f"; clipped by line of sight against {first['buildings']:,} building footprints "
            f"(exact 2-D visibility polygons, building heights not used"
            + (f"; {moved:,} camera(s) moved out of buildings" if moved else "")
            + ")"
        )
    if model in ("fov", "occluded"):
        return (
            f"{model} model: {first['radius_m']:g} m wedges or discs around {n_cam:,} cameras "
            f"({view_text}; type defaults: "
            + ", ".join(f"{t} {v:g}°" for t, v in DEFAULT_HFOV_DEG.items())
            + f"){occl}."
        )
    spec_text = ", ".join(
        sorted({f"{p['spec_id']} ({p['h_pixels']:g} px, HFOV {p['reach_hfov_deg']:g}°)"
                for p in params})
    )  # fmt: skip
    band_list = [b for b in dict.fromkeys(gdf_footprints["band"]) if b != "any"]
    return (
        f"pixel_density model: bands {', '.join(band_list)} on the slant distance to the ground "
        f"(PPM = N_h / (2 d tan(HFOV/2)), {first['zoom']} zoom) for {n_cam:,} cameras with "
        f"specs {spec_text}; faces not captured from steeper than "
        f"{first['max_depression_deg']:g}° down{occl}."
    )


def unit_area(gdf_footprints: gpd.GeoDataFrame) -> float:
    """Return the area of one whole disc (π r²), in squared CRS units: the divisor that turns
    covered area into "effective cameras".

    Defined for the ``disc``, ``fov`` and ``occluded`` models (r is their ``radius_m``), so a
    wedge or an occluded view counts as the share of a disc it covers.
    """
    models = set(gdf_footprints["model"]) if len(gdf_footprints) else {"disc"}
    if not models <= {"disc", "fov", "occluded"} or len(models) > 1:
        raise OptionError(
            f"effective cameras are defined for one of the disc, fov and occluded models, not "
            f"{sorted(models)}. Fix: measure pixel-density bands as covered area or length."
        )
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
