"""Coverage and per-tract measures at national scale, partitioned with dask-geopandas.

The single-machine path (:func:`coverage_measures_single`: :func:`~camcensus.coverage.
footprints` of every camera, their union, then :func:`~camcensus.coverage.
add_coverage_measures`) holds the whole union of a million footprints in one process. Here the
tracts are split into spatially compact partitions (dask-geopandas, Hilbert order) and each
partition is measured on its own against the footprints of the cameras that can reach it: a
camera farther than its range from the partition's (buffered) tracts cannot change any of
their areas. Partitions run on a dask cluster: a local one by default, or a real one given by
its scheduler address.

Discs (``model="disc"``) are exact circles by default (``discs="circles"``): the covered area
of each tract, and of the band around it, comes from the arcs of the circles and the tracts'
rings by Green's theorem (:mod:`camcensus.coverage._union_arcs`), without building the union
of the discs, which cost two thirds of the time at national size. ``discs="polygons"`` draws
them as GEOS polygons of ``quad_segs`` segments per quarter circle, as R's sf and Amnesty did
(:func:`~camcensus.coverage.add_coverage_measures`). A polygon is inscribed in its circle, so
the circles cover a little more: per tract, 0 ≤ eff_cameras(circles) − eff_cameras(polygons)
≤ δ·k, with k the discs reaching the tract and δ = 1 − n·sin(2π/n)/(2π), n = 4·quad_segs
(δ = 4.57e-4 at quad_segs 30). Measured on the synthetic country of
``benchmarks/bench_scale.py`` (50,000 cameras, 4,211 tracts): relative to the polygons'
eff_cameras of tracts above 0.5, median 4.2e-4, largest 7.3e-4; camera counts are equal.

Results equal the single-machine path's with the same ``discs``: the camera counts exactly (the
same tie-break: a point on a shared border goes to the tract that comes first in the input, a
point in no tract to the nearest within ``snap_m``), the covered areas to floating-point
rounding (a partition sees fewer discs, so sums run in another order: relative differences of
about 1e-12).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from camcensus import settings
from camcensus._errors import Ledger, OptionError
from camcensus._geo import measurement_crs, metres_per_unit
from camcensus.coverage._union_arcs import disc_union_areas
from camcensus.coverage.footprints import check_radius, footprints, unit_area
from camcensus.coverage.measures import _record_located, add_coverage_measures, covered_area

__all__ = [
    "DISC_SHAPES",
    "SCALE_MODELS",
    "coverage_measures",
    "coverage_measures_single",
]

#: Coverage models whose per-tract measures can be partitioned (those with a fixed range).
SCALE_MODELS = ("disc", "fov", "occluded")
#: How ``model="disc"`` draws a disc: exact circles (arcs) or sf/GEOS polygons.
DISC_SHAPES = ("circles", "polygons")
# Columns of the cameras table the footprint models read.
_FOOTPRINT_INPUTS = ("camera_id", "direction_deg", "hfov_deg", "camera_type", "height_m", "mount")
# Tracts per partition when npartitions is not given.
_TRACTS_PER_PARTITION = 2_000
# How long to wait for a scheduler given by its address.
_CONNECT_TIMEOUT = "10s"


def coverage_measures_single(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    *,
    model: str = "disc",
    radius_m: float | None = None,
    band_m: float | None = None,
    quad_segs: int | None = None,
    snap_m: float | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    ledger: Ledger | None = None,
    discs: str = "circles",
) -> gpd.GeoDataFrame:
    """Measure coverage per tract in one process (the reference :func:`coverage_measures` equals).

    The cameras' footprints are drawn in the tracts' measuring CRS
    (:func:`~camcensus._geo.measurement_crs`) and measured with
    :func:`~camcensus.coverage.add_coverage_measures`, as :func:`camcensus.stages.
    coverage_stage` does. With ``model="disc"`` and ``discs="circles"`` (the default) the
    covered areas are those of exact circles (:func:`~camcensus.coverage._union_arcs.
    disc_union_areas`, all tracts at once); ``discs="polygons"`` gives the polygonal discs of
    ``quad_segs`` segments per quarter circle (Amnesty's R/sf figures).
    """
    _check_discs(discs)
    mcrs = measurement_crs(gdf_tracts)
    fps = footprints(
        gdf_cameras.iloc[:0] if _circles(model, discs) else gdf_cameras,
        model, radius_m=radius_m, quad_segs=quad_segs, crs=mcrs, buildings=buildings,
    )  # fmt: skip
    if not _circles(model, discs):
        return add_coverage_measures(
            gdf_tracts,
            fps,
            gdf_cameras,
            band_m=band_m,
            quad_segs=quad_segs,
            snap_m=snap_m,
            ledger=ledger,
        )
    # Measure the counts (and an empty coverage) as the polygon path does, then the areas of
    # the exact circles.
    out = add_coverage_measures(
        gdf_tracts,
        fps,
        gdf_cameras,
        band_m=band_m,
        quad_segs=quad_segs,
        snap_m=snap_m,
        coverage=shapely.Polygon(),
        ledger=ledger,
    )
    r = check_radius(settings.get_float("camera_radius_m") if radius_m is None else radius_m)
    mpu = metres_per_unit(mcrs)
    band = settings.get_float("band_m") if band_m is None else float(band_m)
    segs = settings.get_int("quad_segs") if quad_segs is None else int(quad_segs)
    zones = np.asarray(gdf_tracts.to_crs(mcrs).geometry.values)
    banded = shapely.buffer(zones, band / mpu, quad_segs=segs)
    xy = shapely.get_coordinates(np.asarray(gdf_cameras.geometry.to_crs(mcrs).values))
    areas = disc_union_areas(np.concatenate([zones, banded]), xy[:, 0], xy[:, 1], r / mpu)
    disc_area = math.pi * (r / mpu) ** 2
    out["eff_cameras"] = areas[: len(zones)] / disc_area
    out["eff_cameras_within_200m"] = areas[len(zones) :] / disc_area
    return out


def _check_discs(discs: str) -> None:
    if discs not in DISC_SHAPES:
        raise OptionError(
            f"discs must be one of {', '.join(DISC_SHAPES)}, not {discs!r}: 'circles' measures "
            "exact circles (fast at national size), 'polygons' the sf/GEOS polygons of "
            "quad_segs segments per quarter circle (Amnesty's figures)."
        )


def _circles(model: str, discs: str) -> bool:
    """Whether the covered areas come from exact circles (the disc model only)."""
    return model == "disc" and discs == "circles"


@dataclass(frozen=True)
class _Params:
    model: str
    radius_m: float
    quad_segs: int
    band: float  # CRS units
    reach: float  # CRS units: how far a footprint reaches from its camera
    snap: float  # CRS units
    snap_m: float
    circles: bool  # exact circles (arcs) instead of footprint polygons
    crs: CRS  # measuring CRS
    camera_crs: CRS


@dataclass(frozen=True)
class _Cameras:
    """What every partition needs of the cameras (plain arrays: cheap to ship to workers)."""

    columns: pd.DataFrame  # the footprint inputs, one row per camera
    lon: np.ndarray  # coordinates in the cameras' own CRS (rebuilt bit for bit)
    lat: np.ndarray
    x: np.ndarray  # coordinates in the measuring CRS
    y: np.ndarray
    ux: np.ndarray  # distinct camera points in the measuring CRS
    uy: np.ndarray
    weight: np.ndarray  # cameras at each distinct point


def coverage_measures(
    gdf_tracts: gpd.GeoDataFrame,
    gdf_cameras: gpd.GeoDataFrame,
    *,
    model: str = "disc",
    radius_m: float | None = None,
    band_m: float | None = None,
    quad_segs: int | None = None,
    snap_m: float | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    npartitions: int | None = None,
    ledger: Ledger | None = None,
    discs: str = "circles",
) -> gpd.GeoDataFrame:
    """Measure coverage per tract on a dask cluster, partitioned by tracts.

    Parameters
    ----------
    gdf_tracts
        Tract polygons (any CRS; measured in :func:`~camcensus._geo.measurement_crs`: their own
        if projected, else their UTM zone).
    gdf_cameras
        The ``cameras`` table (points, any CRS) of the cameras that count (e.g.
        :func:`~camcensus.cameras.public_cameras`).
    model
        One of :data:`SCALE_MODELS` (``pixel_density`` has no effective-camera measure).
    radius_m, band_m, quad_segs, snap_m
        As :func:`~camcensus.coverage.add_coverage_measures` (defaults from the settings).
    buildings
        Building footprints, for ``occluded``.
    scheduler
        Where the partitions run: ``None`` starts a local cluster of ``workers`` processes
        (dask.distributed ``LocalCluster``) and closes it afterwards; a scheduler address
        (``"tcp://host:8786"``) or a ``distributed.Client`` uses that cluster; ``"threads"``,
        ``"processes"`` or ``"synchronous"`` use dask's local schedulers without distributed.
    workers
        Processes of the local cluster (default: up to 2 cores).
    npartitions
        Tract partitions (default: one per 2,000 tracts, at least two per worker).
    ledger
        Receives exclusions and notes, worded as the single-machine path's.
    discs
        ``model="disc"`` only: ``"circles"`` (exact circles, measured from their arcs) or
        ``"polygons"`` (polygons of ``quad_segs`` segments per quarter circle, as R's sf;
        slower). The circles' ``eff_cameras`` exceed the polygons' by at most 4.57e-4 per disc
        reaching the tract at quad_segs 30 (module docstring).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``gdf_tracts`` (same index, order and CRS) with ``eff_cameras``,
        ``eff_cameras_within_200m``, ``cameras``, ``cameras_within_200m`` and ``area_m2``, equal
        to :func:`coverage_measures_single`'s.
    """
    from dask.base import compute
    from dask.delayed import delayed

    ledger = ledger if ledger is not None else Ledger()
    _check_discs(discs)
    if model not in SCALE_MODELS:
        raise OptionError(
            f"the partitioned coverage supports the models {', '.join(SCALE_MODELS)}, not "
            f"{model!r}: effective cameras are defined only for footprints of a fixed range. "
            "Fix: pass model='disc', 'fov' or 'occluded'."
        )
    r = check_radius(settings.get_float("camera_radius_m") if radius_m is None else radius_m)
    band = settings.get_float("band_m") if band_m is None else float(band_m)
    if not np.isfinite(band) or band < 0:
        raise OptionError(f"band_m must be a distance of 0 m or more, not {band_m!r}")
    segs = settings.get_int("quad_segs") if quad_segs is None else int(quad_segs)
    snap = settings.get_float("snap_m") if snap_m is None else float(snap_m)
    mcrs = measurement_crs(gdf_tracts)
    mpu = metres_per_unit(mcrs)
    camera_crs = CRS.from_user_input(gdf_cameras.crs) if gdf_cameras.crs is not None else None
    if camera_crs is None:
        # footprints() raises the documented CrsError.
        footprints(gdf_cameras, model, radius_m=r, crs=mcrs)
        raise AssertionError("unreachable")
    params = _Params(
        model, r, segs, band / mpu, r / mpu, snap / mpu, snap, _circles(model, discs), mcrs,
        camera_crs,
    )  # fmt: skip
    n_workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
    n_parts = npartitions or max(2 * n_workers, math.ceil(len(gdf_tracts) / _TRACTS_PER_PARTITION))
    n_parts = max(1, min(n_parts, len(gdf_tracts)))
    disc_area = unit_area(
        footprints(
            gdf_cameras.iloc[:1], model, radius_m=r, quad_segs=segs, crs=mcrs, buildings=buildings
        )
    )

    cams = _camera_arrays(gdf_cameras, mcrs, with_columns=not params.circles)
    bld = None if buildings is None else buildings.to_crs(mcrs)
    tracts_m = gpd.GeoDataFrame(
        {"_pos": np.arange(len(gdf_tracts))},
        geometry=np.asarray(gdf_tracts.to_crs(mcrs).geometry.values),
        crs=mcrs,
    )
    results: list[dict[str, np.ndarray]] = []
    if len(tracts_m):
        parts = _spatial_partitions(tracts_m, n_parts)
        with _dask_scheduler(scheduler, n_workers) as (client, local_scheduler):
            if client is not None:
                # Cameras (and buildings) go to every worker once; each partition to one.
                cams_f = client.scatter(cams, broadcast=True, hash=False)
                bld_f = None if bld is None else client.scatter(bld, broadcast=True, hash=False)
                part_fs = client.scatter(parts, hash=False)
                futures = [
                    client.submit(_measure_partition, part_f, cams_f, bld_f, params, pure=False)
                    for part_f in part_fs
                ]
                results = list(client.gather(futures))
            else:
                token = uuid.uuid4().hex
                cams_d = delayed(cams, name=f"camcensus-cameras-{token}")
                bld_d = None if bld is None else delayed(bld, name=f"camcensus-bld-{token}")
                measure = delayed(_measure_partition, pure=True)
                tasks = [
                    measure(delayed(part, name=f"camcensus-tracts-{token}-{k}"), cams_d, bld_d,
                            params)
                    for k, part in enumerate(parts)
                ]  # fmt: skip
                results = list(compute(*tasks, scheduler=local_scheduler))  # type: ignore[no-untyped-call]
    return _combine(gdf_tracts, results, cams, params, disc_area, mpu, ledger)


def _spatial_partitions(tracts_m: gpd.GeoDataFrame, n_parts: int) -> list[gpd.GeoDataFrame]:
    """Split the tracts into ``n_parts`` spatially compact partitions of equal size, as plain
    GeoDataFrames: sorted by dask-geopandas' Hilbert distance of their box centres (the order
    its ``spatial_shuffle`` sorts by; the shuffle itself, through dask's set_index, cost 10 s
    at 85,000 tracts, the sort 0.3 s)."""
    import dask_geopandas  # type: ignore[import-untyped]

    if n_parts <= 1:
        return [tracts_m] if len(tracts_m) else []
    empty = np.asarray(shapely.is_empty(tracts_m.geometry.values) | tracts_m.geometry.isna())
    key = np.zeros(len(tracts_m), dtype=np.int64)
    if (~empty).any():
        solid = tracts_m.loc[~empty]
        key[~empty] = (
            dask_geopandas.from_geopandas(solid, npartitions=1)
            .hilbert_distance()
            .compute(scheduler="synchronous")
            .to_numpy()
        )
    order = np.argsort(key, kind="stable")
    return [tracts_m.iloc[chunk] for chunk in np.array_split(order, n_parts) if len(chunk)]


@contextmanager
def _dask_scheduler(scheduler: Any, n_workers: int) -> Iterator[tuple[Any, str | None]]:
    """Yield ``(client, None)`` for a distributed cluster, ``(None, name)`` for a local one."""
    if isinstance(scheduler, str) and scheduler in ("threads", "processes", "synchronous"):
        yield None, scheduler
        return
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler, None
        return
    if scheduler is None:
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=40,
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client, None
        return
    if not isinstance(scheduler, str):
        raise OptionError(
            f"scheduler must be None (a local cluster), a scheduler address, a distributed "
            f"Client or one of threads, processes, synchronous, not {type(scheduler).__name__}"
        )
    try:
        client = Client(scheduler, timeout=_CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise OptionError(
            f"no dask scheduler answers at {scheduler!r} ({exc}). Fix: start one "
            "(`dask scheduler` and `dask worker ADDRESS`) or pass scheduler=None for a local "
            "cluster."
        ) from exc
    with client:
        yield client, None


def _camera_arrays(
    gdf_cameras: gpd.GeoDataFrame, mcrs: CRS, *, with_columns: bool = True
) -> _Cameras:
    pts = np.asarray(gdf_cameras.geometry.values)
    lonlat = shapely.get_coordinates(pts).reshape(-1, 2) if len(pts) else np.zeros((0, 2))
    # The transformer geopandas' to_crs applies, on the coordinates (no point objects built).
    tx, ty = Transformer.from_crs(gdf_cameras.crs, mcrs, always_xy=True).transform(
        lonlat[:, 0], lonlat[:, 1]
    )
    xy = np.column_stack([np.asarray(tx, dtype="float64"), np.asarray(ty, dtype="float64")])
    # Cameras at one point are located once, then counted with their multiplicity (the single
    # path groups equal WKB, i.e. equal coordinates; sorting the coordinates is 5 times faster).
    uxy, inverse = np.unique(xy, axis=0, return_inverse=True)
    weight = np.bincount(inverse.ravel(), minlength=len(uxy)).astype("float64")
    # Exact circles need only the points: the footprint inputs are not shipped to the workers.
    cols = [c for c in (*_FOOTPRINT_INPUTS, "spec_id") if c in gdf_cameras.columns]
    return _Cameras(
        pd.DataFrame(gdf_cameras[cols] if with_columns else gdf_cameras.iloc[:0, :0]).reset_index(
            drop=True
        ),
        lonlat[:, 0].copy(),
        lonlat[:, 1].copy(),
        xy[:, 0].copy(),
        xy[:, 1].copy(),
        uxy[:, 0].copy(),
        uxy[:, 1].copy(),
        weight,
    )


def _in_box(x: np.ndarray, y: np.ndarray, box: np.ndarray, pad: float) -> np.ndarray:
    out: np.ndarray = (
        (x >= box[0] - pad) & (x <= box[2] + pad) & (y >= box[1] - pad) & (y <= box[3] + pad)
    )
    return out


def _measure_partition(
    part: gpd.GeoDataFrame,
    cams: _Cameras,
    buildings: gpd.GeoDataFrame | None,
    p: _Params,
) -> dict[str, np.ndarray]:
    """Measure one partition of tracts against the cameras that can reach it."""
    zones = np.asarray(part.geometry.values)
    pos = part["_pos"].to_numpy(dtype="int64")
    empty_i = np.zeros(0, dtype="int64")
    out: dict[str, np.ndarray] = {"pos": pos}
    if len(zones) == 0:
        z = np.zeros(0)
        return out | {"inner": z, "band": z, "within": z, "area": z, "hit_pt": empty_i,
                      "hit_tract": empty_i, "near_pt": empty_i, "near_tract": empty_i,
                      "near_dist": z}  # fmt: skip
    banded = shapely.buffer(zones, p.band, quad_segs=p.quad_segs)
    box = shapely.total_bounds(banded)
    # A footprint reaches at most its range from its camera (a little more for rounding).
    pad = p.reach * (1 + 1e-9) + 1e-6
    if p.circles:
        # Circles beyond 2 r of the box cannot hide an arc of one that reaches it.
        on = np.flatnonzero(_in_box(cams.ux, cams.uy, box, 2 * pad))
        areas = disc_union_areas(np.concatenate([zones, banded]), cams.ux[on], cams.uy[on],
                                 p.reach)  # fmt: skip
        out["inner"], out["band"] = areas[: len(zones)], areas[len(zones) :]
    else:
        _polygon_areas(out, zones, banded, box, pad, cams, buildings, p)
    out["area"] = shapely.area(zones)
    _locate_in_partition(out, zones, banded, box, pos, cams, p)
    return out


def _polygon_areas(
    out: dict[str, np.ndarray],
    zones: np.ndarray,
    banded: np.ndarray,
    box: np.ndarray,
    pad: float,
    cams: _Cameras,
    buildings: gpd.GeoDataFrame | None,
    p: _Params,
) -> None:
    """Covered areas from the footprint polygons of the cameras that reach the partition."""
    near = np.flatnonzero(_in_box(cams.x, cams.y, box, pad))
    sub = gpd.GeoDataFrame(
        cams.columns.iloc[near].reset_index(drop=True),
        geometry=gpd.points_from_xy(cams.lon[near], cams.lat[near]),
        crs=p.camera_crs,
    )
    bsub = None
    if buildings is not None:
        bbox = _in_box_geoms(buildings, box, 2 * pad)
        bsub = buildings.loc[bbox]
    fps = footprints(
        sub, p.model, radius_m=p.radius_m, quad_segs=p.quad_segs, crs=p.crs, buildings=bsub
    )
    geoms = np.asarray(fps.geometry.values)
    if len(geoms):
        _, first = np.unique(
            np.fromiter(map(id, geoms), dtype=np.int64, count=len(geoms)), return_index=True
        )
        union = shapely.union_all(geoms[np.sort(first)])
    else:
        union = shapely.Polygon()
    out["inner"] = covered_area(zones, union)
    out["band"] = covered_area(banded, union)


def _locate_in_partition(
    out: dict[str, np.ndarray],
    zones: np.ndarray,
    banded: np.ndarray,
    box: np.ndarray,
    pos: np.ndarray,
    cams: _Cameras,
    p: _Params,
) -> None:
    """Camera points in (or snapped to, or within the band of) the partition's tracts."""
    empty_i = np.zeros(0, dtype="int64")
    # Distinct camera points that may lie in, or snap to, one of these tracts.
    cand = np.flatnonzero(_in_box(cams.ux, cams.uy, box, max(p.snap, 0.0) + 1e-6))
    pgeom = shapely.points(cams.ux[cand], cams.uy[cand])
    tree = shapely.STRtree(zones)
    ip, iz = tree.query(pgeom, predicate="intersects")
    out["hit_pt"] = cand[ip]
    out["hit_tract"] = pos[iz]
    outside = np.setdiff1d(np.arange(len(cand)), ip)
    if len(outside) and p.snap >= 0:
        n_pt, n_z = tree.query_nearest(
            pgeom[outside], max_distance=None if math.isinf(p.snap) else p.snap,
            all_matches=False,
        )  # fmt: skip
        out["near_pt"] = cand[outside[n_pt]]
        out["near_tract"] = pos[n_z]
        out["near_dist"] = shapely.distance(pgeom[outside[n_pt]], zones[n_z])
    else:
        out |= {"near_pt": empty_i, "near_tract": empty_i, "near_dist": np.zeros(0)}
    ib_pt, ib_z = shapely.STRtree(banded).query(pgeom, predicate="intersects")
    out["within"] = np.bincount(ib_z, weights=cams.weight[cand[ib_pt]], minlength=len(zones))


def _in_box_geoms(gdf: gpd.GeoDataFrame, box: np.ndarray, pad: float) -> np.ndarray:
    b = gdf.geometry.bounds.to_numpy()
    out: np.ndarray = (
        (b[:, 2] >= box[0] - pad)
        & (b[:, 0] <= box[2] + pad)
        & (b[:, 3] >= box[1] - pad)
        & (b[:, 1] <= box[3] + pad)
    )
    return out


def _cat(results: list[dict[str, np.ndarray]], key: str, dtype: str) -> np.ndarray:
    if not results:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(res[key], dtype=dtype) for res in results])


def _combine(
    gdf_tracts: gpd.GeoDataFrame,
    results: list[dict[str, np.ndarray]],
    cams: _Cameras,
    p: _Params,
    disc_area: float,
    mpu: float,
    ledger: Ledger,
) -> gpd.GeoDataFrame:
    """Put the partitions' measures back in the tracts' order and locate each camera point."""
    n = len(gdf_tracts)
    pos = _cat(results, "pos", "int64")
    inner, band, area, within = (np.zeros(n) for _ in range(4))
    inner[pos] = _cat(results, "inner", "float64")
    band[pos] = _cat(results, "band", "float64")
    area[pos] = _cat(results, "area", "float64")
    within[pos] = _cat(results, "within", "float64")

    # Each point goes to the first tract (input order) it lies in, over all partitions.
    n_pts = len(cams.ux)
    hit_pt, hit_tract = _cat(results, "hit_pt", "int64"), _cat(results, "hit_tract", "int64")
    owner = np.full(n_pts, n, dtype="int64")
    np.minimum.at(owner, hit_pt, hit_tract)
    # Points touching more than one tract (counted once, in the first), as locate_points says.
    on_border = int((np.bincount(hit_pt, minlength=n_pts) > 1).sum())
    # A point in no tract goes to the nearest tract within snap_m (any partition's nearest).
    near_pt, near_tract = _cat(results, "near_pt", "int64"), _cat(results, "near_tract", "int64")
    near_dist = _cat(results, "near_dist", "float64")
    keep = owner[near_pt] == n
    near_pt, near_tract, near_dist = near_pt[keep], near_tract[keep], near_dist[keep]
    order = np.lexsort((near_tract, near_dist, near_pt))
    near_pt, near_tract, near_dist = near_pt[order], near_tract[order], near_dist[order]
    first = np.ones(len(near_pt), dtype=bool)
    first[1:] = near_pt[1:] != near_pt[:-1]
    snapped, snapped_to, snap_dist = near_pt[first], near_tract[first], near_dist[first]
    owner[snapped] = snapped_to
    owner[owner == n] = -1

    far = owner < 0
    _record_located(
        ledger,
        on_border=on_border,
        n_snapped=len(snapped),
        snapped_cameras=float(cams.weight[snapped].sum()),
        max_snap_m=float(snap_dist.max() * mpu) if len(snapped) else 0.0,
        n_far=int(far.sum()),
        snap_m=p.snap_m,
    )
    has = ~far
    out = gdf_tracts.copy()
    out["eff_cameras"] = inner / disc_area
    out["eff_cameras_within_200m"] = band / disc_area
    out["area_m2"] = area * mpu**2
    out["cameras"] = np.bincount(owner[has], weights=cams.weight[has], minlength=n)
    out["cameras_within_200m"] = within
    return out
