"""Occluded footprints: camcensus's vectorised sweep against a straightforward per-camera loop.

Scene: a synthetic city of rectangular buildings in blocks (80 m x 200 m blocks, 20 m streets,
20 buildings per block with small random gaps and sizes) and cameras at random points along
the streets, 120 m range, all round.

Baseline (what most analysts would write): for each camera, take the buildings within range
(STRtree), draw the shadow of every wall (the quadrilateral between the wall and its
projection away from the camera), union the shadows and subtract them from the camera's disc.
camcensus (:mod:`camcensus.coverage.visibility`) sweeps all cameras at once over the walls
facing them. Both run here, in the same process, on the same scene; their areas are compared
and the ratio of speeds is what counts. The baseline runs on a sample of the cameras.

Usage: python benchmarks/bench_footprints.py [--full] [--workers N]
    default: 20,000 buildings, 4,000 cameras; --full: 100,000 buildings, 25,000 cameras
"""

from __future__ import annotations

import argparse
import os
import time

import geopandas as gpd
import numpy as np
import shapely

from camcensus.coverage import footprints
from camcensus.coverage.visibility import obstacles_from_buildings, visibility_polygons

CRS = "EPSG:32618"
RADIUS = 120.0


def city(n_buildings: int, n_cameras: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return building polygons and camera points (x, y) of the synthetic city."""
    rng = np.random.default_rng(seed)
    n_blocks = -(-n_buildings // 20)
    nx = int(np.ceil(np.sqrt(n_blocks * 2.2)))
    ny = -(-n_blocks // nx)
    bi, bj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    k, m = np.meshgrid(np.arange(2), np.arange(10), indexing="ij")
    x0 = (bi.ravel()[:, None] * 100.0 + k.ravel()[None, :] * 40.0).ravel()
    y0 = (bj.ravel()[:, None] * 220.0 + m.ravel()[None, :] * 20.0).ravel()
    x0, y0 = x0[:n_buildings], y0[:n_buildings]
    x0 = x0 + rng.uniform(0, 2, len(x0))
    y0 = y0 + rng.uniform(0, 2, len(y0))
    w = 38 - rng.uniform(0, 5, len(x0))
    h = 18 - rng.uniform(0, 4, len(x0))
    boxes = shapely.box(x0, y0, x0 + w, y0 + h)
    # Cameras along the north-south streets (x = block edge - 10 m, +-8 m) and the
    # east-west ones (y = block edge - 10 m).
    ns = rng.random(n_cameras) < 0.6
    cx = np.where(
        ns,
        rng.integers(0, nx, n_cameras) * 100.0 - 10 + rng.uniform(-8, 8, n_cameras),
        rng.uniform(0, nx * 100.0, n_cameras),
    )
    cy = np.where(
        ns,
        rng.uniform(0, ny * 220.0, n_cameras),
        rng.integers(0, ny, n_cameras) * 220.0 - 10 + rng.uniform(-8, 8, n_cameras),
    )
    return boxes, np.column_stack([cx, cy])


def baseline(xy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per-camera loop: disc minus the union of every nearby wall's shadow."""
    tree = shapely.STRtree(boxes)
    out = []
    for x, y in xy:
        c = shapely.Point(x, y)
        disc = shapely.buffer(c, RADIUS, quad_segs=30)
        near = boxes[tree.query(c, predicate="dwithin", distance=RADIUS)]
        if len(near) == 0:
            out.append(disc)
            continue
        coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(near), return_index=True)
        same = ring[1:] == ring[:-1]
        p1 = coords[:-1][same] - (x, y)
        p2 = coords[1:][same] - (x, y)
        d1 = np.hypot(*p1.T)
        d2 = np.hypot(*p2.T)
        cosang = np.clip(np.einsum("ij,ij->i", p1, p2) / (d1 * d2), -1, 1)
        far = np.minimum(RADIUS * 2 / np.maximum(np.cos(np.arccos(cosang) / 2), 1e-3), 1e6)
        f1 = p1 / d1[:, None] * far[:, None]
        f2 = p2 / d2[:, None] * far[:, None]
        offset = np.array([x, y])
        quads = shapely.polygons(np.stack([p1, p2, f2, f1, p1], axis=1) + offset)
        out.append(shapely.difference(disc, shapely.union_all(quads)))
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100,000 buildings, 25,000 cameras")
    parser.add_argument("--buildings", type=int, default=None)
    parser.add_argument("--cameras", type=int, default=None)
    parser.add_argument("--baseline-sample", type=int, default=300)
    args = parser.parse_args()
    n_b = args.buildings or (100_000 if args.full else 20_000)
    n_c = args.cameras or (25_000 if args.full else 4_000)
    boxes, xy = city(n_b, n_c)
    gdf_b = gpd.GeoDataFrame(geometry=boxes, crs=CRS)
    gdf_c = gpd.GeoDataFrame(
        {"camera_id": [f"c{i}" for i in range(n_c)]}, geometry=shapely.points(xy), crs=CRS
    )
    print(f"scene: {n_b:,} buildings, {n_c:,} cameras, {RADIUS:g} m range; cpus {os.cpu_count()}")

    t0 = time.perf_counter()
    obstacles = obstacles_from_buildings(gdf_b, CRS)
    t_prep = time.perf_counter() - t0
    # One thread: the per-core rate of the model's work (sweep + clip to the disc).
    sample = min(n_c, 4_000)
    discs = shapely.buffer(shapely.points(xy[:sample]), RADIUS, quad_segs=30)
    t0 = time.perf_counter()
    visibility_polygons(xy[:sample], RADIUS, obstacles, clip=discs, workers=1)
    t_one = time.perf_counter() - t0
    # All cameras, from the building GeoDataFrame: the footprints() call a user makes.
    t0 = time.perf_counter()
    fps = footprints(gdf_c, "occluded", buildings=gdf_b)
    t_all = time.perf_counter() - t0

    k = min(args.baseline_sample, n_c)
    t0 = time.perf_counter()
    base = baseline(xy[:k], boxes)
    t_base = time.perf_counter() - t0
    ours = fps.area.to_numpy()[:k]
    ref = shapely.area(base)
    rel = np.abs(ours - ref) / ref

    rate_base = k / t_base
    print(f"obstacle preparation       {t_prep:8.2f} s ({len(obstacles.edges):,} walls)")
    print(
        f"camcensus, 1 thread        {sample / t_one:8.0f} cameras/s"
        f"   (visibility_polygons + clip, {sample:,} cameras)"
    )
    print(
        f"footprints(model='occluded') for all {n_c:,} cameras: {t_all:.2f} s wall, incl. "
        f"preparing the buildings ({n_c / t_all:,.0f} cameras/s, up to 2 threads)"
    )
    print(f"baseline per-camera loop   {rate_base:8.0f} cameras/s ({k} cameras)")
    print(f"speed-up per core          {sample / t_one / rate_base:8.1f}x")
    print(
        f"areas vs baseline: median rel. diff {np.median(rel):.2e}, max {rel.max():.2e}; "
        f"visible share of the disc {np.mean(ours / (np.pi * RADIUS**2)):.3f}"
    )


if __name__ == "__main__":
    main()
