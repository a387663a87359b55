"""Exact 2-D visibility polygons against building footprints (the ``occluded`` model).

What a camera at ground-plan position c can see within radius r is the set of points p with
|p - c| <= r whose segment c-p crosses no building. That set is star-shaped around c, and its
boundary is made of pieces of building walls, pieces of the circle and radial jumps at
building corners. The angular sweep here finds it exactly, for many cameras at once, in
vectorised numpy:

1. Only walls *facing* the camera can be the first thing a sight line meets (a ray entering a
   building crosses a wall whose outside faces the camera), so walls facing away are dropped.
2. The *critical angles* of a camera are the directions of the facing walls' corners, of the
   points where walls cross the outer circle, and 64 evenly spaced directions (so that a piece
   of the outer circle with no wall is drawn by chords lying outside radius r). Between two
   consecutive critical angles the nearest wall (or none) cannot change: a wall starts or ends
   only at a corner, and the walls of different buildings never cross (overlapping buildings
   are merged first).
3. One ray is cast just before and just after each critical angle (±1e-9 rad) and its nearest
   hit is found among the walls whose angular span contains it (a sorted search gives those
   spans' rays as contiguous ranges). Consecutive hits are joined by straight lines, which
   are exactly the wall between them, or a chord outside r.
4. The star-shaped polygon is intersected with the camera's disc or wedge, drawn as the other
   models draw them, so an unobstructed camera gets exactly the ``disc``/``fov`` polygon.

The result is exact up to the 1e-9 rad offsets (1e-7 m at 100 m). A camera inside a building
(a wall-mounted camera whose position falls on or inside the footprint) is moved to just
outside the nearest wall (:data:`WALL_OFFSET_M`) and counted. Building heights are not used:
every building hides what lies behind it at ground level, which undercounts what a camera
mounted above a low building sees (conservative).

Written for this project (no isovist library: CGAL's bindings are GPL).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from camcensus._errors import CrsError

__all__ = [
    "WALL_OFFSET_M",
    "Obstacles",
    "move_out_of_buildings",
    "obstacles_from_buildings",
    "visibility_polygons",
]

#: How far outside the nearest wall (m) a camera found on or inside a building is put.
WALL_OFFSET_M = 0.1
# Rays are cast this far (radians) either side of each critical angle.
_EPS_RAD = 1e-9
# Evenly spaced critical angles per camera: chords of the far circle stay outside radius r.
_N_UNIFORM = 64
# Walls are considered out to r * _FAR; r * _FAR * cos(pi / _N_UNIFORM) > r.
_FAR = 1.01
_TWO_PI = 2.0 * math.pi
# Angle keys are camera * _KEY + angle (angle < 2 pi < _KEY): one sorted array per chunk.
_KEY = 8.0


@dataclass(frozen=True)
class Obstacles:
    """Building footprints prepared for sight lines (see :func:`obstacles_from_buildings`).

    ``polygons`` are non-overlapping, oriented (exterior counter-clockwise, holes clockwise,
    so a building's inside is on the left of every wall); ``edges`` holds every wall as
    ``x1, y1, x2, y2`` rows, those of polygon i at ``edge_start[i]:edge_start[i] +
    edge_count[i]``; ``n_merged`` counts input polygons merged because they overlapped.
    """

    polygons: np.ndarray
    edges: np.ndarray
    edge_start: np.ndarray
    edge_count: np.ndarray
    tree: shapely.STRtree
    crs: CRS
    n_input: int
    n_merged: int


def obstacles_from_buildings(
    buildings: gpd.GeoDataFrame | gpd.GeoSeries, crs: CRS | str | int
) -> Obstacles:
    """Prepare building footprints (any CRS) as obstacles in the metric ``crs``.

    Invalid polygons are repaired (``make_valid``), multipolygons split, non-polygon parts
    ignored, and buildings whose interiors overlap merged (their walls would cross).
    """
    if buildings.crs is None:
        raise CrsError("the buildings have no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise CrsError(
            f"sight lines must be drawn in a metric CRS, not {target.to_string()}. Fix: pass "
            "crs=camcensus._geo.measurement_crs(gdf_cameras)."
        )
    geoms = np.asarray(buildings.to_crs(target).geometry.values)
    n_input = len(geoms)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    parts = shapely.get_parts(geoms)
    # make_valid may return collections: keep their polygonal parts only.
    while True:
        types = shapely.get_type_id(parts)
        multi = np.isin(types, (6, 7))  # MultiPolygon, GeometryCollection
        if not multi.any():
            break
        parts = np.concatenate([parts[~multi], shapely.get_parts(parts[multi])])
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    n_merged = 0
    if len(parts):
        tree = shapely.STRtree(parts)
        i, j = tree.query(parts, predicate="overlaps")
        involved = np.unique(np.concatenate([i, j]))
        if len(involved):
            merged = shapely.get_parts(shapely.union_all(parts[involved]))
            keep = np.ones(len(parts), dtype=bool)
            keep[involved] = False
            parts = np.concatenate([parts[keep], merged[shapely.get_type_id(merged) == 3]])
            n_merged = len(involved)
    parts = shapely.orient_polygons(parts, exterior_cw=False)
    rings = shapely.get_rings(parts, return_index=True)
    ring_geoms, ring_owner = rings
    coords, ring_of = shapely.get_coordinates(ring_geoms, return_index=True)
    # A wall joins consecutive vertices of one ring (rings are closed: last == first).
    same = ring_of[1:] == ring_of[:-1]
    edges = np.column_stack([coords[:-1][same], coords[1:][same]])
    edge_owner = ring_owner[ring_of[:-1][same]]
    edge_count = np.bincount(edge_owner, minlength=len(parts))
    edge_start = np.cumsum(edge_count) - edge_count
    return Obstacles(
        polygons=parts,
        edges=np.ascontiguousarray(edges, dtype="float64"),
        edge_start=edge_start,
        edge_count=edge_count,
        tree=shapely.STRtree(parts),
        crs=target,
        n_input=n_input,
        n_merged=n_merged,
    )


def move_out_of_buildings(
    xy: np.ndarray, obstacles: Obstacles, *, offset: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return camera positions moved out of buildings, and how far each moved (0 if not).

    A camera on or inside a footprint goes to the nearest point ``offset`` CRS units (default
    :data:`WALL_OFFSET_M`) outside it (a camera on a wall then sees the half-plane in front of
    the wall). Distances are in CRS units.
    """
    if offset is None:
        offset = WALL_OFFSET_M / float(obstacles.crs.axis_info[0].unit_conversion_factor)
    xy = np.array(xy, dtype="float64").reshape(-1, 2)
    moved = np.zeros(len(xy))
    if len(obstacles.polygons) == 0 or len(xy) == 0:
        return xy, moved
    pts = shapely.points(xy)
    ip, ipoly = obstacles.tree.query(pts, predicate="intersects")
    if len(ip) == 0:
        return xy, moved
    first = np.unique(ip, return_index=True)[1]
    ip, ipoly = ip[first], ipoly[first]
    # In a (rare) nest of touching buildings, one step may land in the neighbour: repeat.
    for _ in range(4):
        grown = shapely.boundary(shapely.buffer(obstacles.polygons[ipoly], offset))
        where = shapely.line_interpolate_point(grown, shapely.line_locate_point(grown, pts[ip]))
        new = shapely.get_coordinates(where)
        moved[ip] += np.hypot(*(new - xy[ip]).T)
        xy[ip] = new
        pts[ip] = where
        again, apoly = obstacles.tree.query(pts[ip], predicate="intersects")
        if len(again) == 0:
            break
        first = np.unique(again, return_index=True)[1]
        ip, ipoly = ip[again[first]], apoly[first]
    return xy, moved


def visibility_polygons(
    xy: np.ndarray,
    radius: float | np.ndarray,
    obstacles: Obstacles,
    *,
    clip: np.ndarray | None = None,
    chunk_size: int = 256,
    workers: int | None = None,
) -> np.ndarray:
    """Return each camera's visibility polygon out to a little beyond ``radius``.

    Parameters
    ----------
    xy
        Camera positions, shape (n, 2), in ``obstacles.crs``, outside every building
        (:func:`move_out_of_buildings`).
    radius
        How far each camera sees, in CRS units (a number or one per camera).
    obstacles
        :func:`obstacles_from_buildings`.
    clip
        Optional polygon per camera (its disc or wedge) to intersect the result with.
    chunk_size, workers
        Cameras per vectorised batch, and threads (default: up to 2 cores).

    Returns
    -------
    numpy.ndarray
        One star-shaped polygon per camera, reaching between ``radius`` and 1.01 × ``radius``
        where nothing blocks the view (intersect it with the camera's disc or wedge), or its
        intersection with ``clip``.
    """
    xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
    n = len(xy)
    r_far = np.broadcast_to(np.asarray(radius, dtype="float64"), (n,)) * _FAR
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    if len(obstacles.polygons):
        ip, ipoly = obstacles.tree.query(shapely.points(xy), predicate="dwithin", distance=r_far)
    else:
        ip = ipoly = np.zeros(0, dtype="int64")
    # Every wall of every building near a camera: (camera, wall) pairs, sorted by camera.
    cnt = obstacles.edge_count[ipoly]
    total = int(cnt.sum())
    pair_cam = np.repeat(ip, cnt)
    offsets = np.repeat(np.cumsum(cnt) - cnt, cnt)
    pair_edge = np.repeat(obstacles.edge_start[ipoly], cnt) + (np.arange(total) - offsets)
    bounds = np.arange(0, n + chunk_size, chunk_size)
    bounds[-1] = n
    bounds = np.unique(bounds)
    cuts = np.searchsorted(pair_cam, bounds)

    def one(k: int) -> None:
        lo, hi = bounds[k], bounds[k + 1]
        sel = slice(cuts[k], cuts[k + 1])
        vis = _sweep(xy[lo:hi], r_far[lo:hi], pair_cam[sel] - lo, obstacles.edges[pair_edge[sel]])
        out[lo:hi] = vis if clip is None else shapely.intersection(vis, clip[lo:hi])

    n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n_workers <= 1 or len(bounds) <= 2:
        for k in range(len(bounds) - 1):
            one(k)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(one, range(len(bounds) - 1)))
    return out


def _sweep(xy: np.ndarray, r_far: np.ndarray, cam: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Visibility polygons of one batch of cameras (``cam`` indexes ``xy`` for each wall)."""
    n = len(xy)
    p1 = edges[:, :2] - xy[cam]
    p2 = edges[:, 2:] - xy[cam]
    cross = p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0]
    d1 = np.hypot(p1[:, 0], p1[:, 1])
    d2 = np.hypot(p2[:, 0], p2[:, 1])
    e = p2 - p1
    elen2 = np.einsum("ij,ij->i", e, e)
    # Distance from the camera to the wall (closest point of the segment).
    t = np.clip(-np.einsum("ij,ij->i", p1, e) / np.where(elen2 > 0, elen2, 1.0), 0.0, 1.0)
    dseg = np.hypot(p1[:, 0] + t * e[:, 0], p1[:, 1] + t * e[:, 1])
    rf = r_far[cam]
    # Facing the camera: the camera on the outer (right) side of the wall, not on its line.
    facing = (cross < -1e-12 * d1 * d2) & (dseg < rf)
    cam, p1, p2, e, elen2, d1, d2, rf = (a[facing] for a in (cam, p1, p2, e, elen2, d1, d2, rf))
    a1 = np.mod(np.arctan2(p1[:, 1], p1[:, 0]), _TWO_PI)
    a2 = np.mod(np.arctan2(p2[:, 1], p2[:, 0]), _TWO_PI)

    # Where walls cross the far circle: |p1 + t e| = r_far with 0 < t < 1.
    b = np.einsum("ij,ij->i", p1, e)
    c = d1**2 - rf**2
    disc = b**2 - elen2 * c
    crossing_angles = []
    crossing_cams = []
    out_far = (np.maximum(d1, d2) > rf) & (disc > 0)
    if out_far.any():
        sq = np.sqrt(disc[out_far])
        for sign in (-1.0, 1.0):
            tt = (-b[out_far] + sign * sq) / elen2[out_far]
            ok = (tt > 0) & (tt < 1)
            px = p1[out_far, 0][ok] + tt[ok] * e[out_far, 0][ok]
            py = p1[out_far, 1][ok] + tt[ok] * e[out_far, 1][ok]
            crossing_angles.append(np.arctan2(py, px))
            crossing_cams.append(cam[out_far][ok])

    uniform = np.linspace(0.0, _TWO_PI, _N_UNIFORM, endpoint=False)
    base_angle = np.concatenate([np.tile(uniform, n), a1, a2, *crossing_angles])
    base_cam = np.concatenate([np.repeat(np.arange(n), _N_UNIFORM), cam, cam, *crossing_cams])
    ray_angle = np.mod(np.concatenate([base_angle - _EPS_RAD, base_angle + _EPS_RAD]), _TWO_PI)
    ray_cam = np.concatenate([base_cam, base_cam])
    key = ray_cam * _KEY + ray_angle
    order = np.argsort(key, kind="stable")
    key, ray_angle, ray_cam = key[order], ray_angle[order], ray_cam[order]

    # Each facing wall spans the angles from its end (a2) counter-clockwise to its start (a1);
    # a span across angle 0 is cut in two.
    wraps = a2 > a1
    piece_lo = np.concatenate([a2, np.zeros(int(wraps.sum()))])
    piece_hi = np.concatenate([np.where(wraps, _TWO_PI, a1), a1[wraps]])
    piece_wall = np.concatenate([np.arange(len(a1)), np.flatnonzero(wraps)])
    piece_cam = cam[piece_wall]
    first = np.searchsorted(key, piece_cam * _KEY + piece_lo, side="left")
    last = np.searchsorted(key, piece_cam * _KEY + piece_hi, side="right")
    count = last - first
    total = int(count.sum())
    pair_wall = np.repeat(piece_wall, count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    pair_ray = np.repeat(first, count) + within
    # Distance along the ray to the wall's line: s u = p1 + t e  =>  s = (p1 x e) / (u x e).
    ux = np.cos(ray_angle[pair_ray])
    uy = np.sin(ray_angle[pair_ray])
    ew = e[pair_wall]
    pw = p1[pair_wall]
    num = pw[:, 0] * ew[:, 1] - pw[:, 1] * ew[:, 0]
    den = ux * ew[:, 1] - uy * ew[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(den != 0, num / den, np.inf)
    s = np.where(s >= 0, s, 0.0)
    dist = r_far[ray_cam].copy()
    np.minimum.at(dist, pair_ray, s)

    x = xy[ray_cam, 0] + dist * np.cos(ray_angle)
    y = xy[ray_cam, 1] + dist * np.sin(ray_angle)
    rings = shapely.linearrings(np.column_stack([x, y]), indices=ray_cam)
    return np.asarray(shapely.polygons(rings))
