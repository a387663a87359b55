"""National-scale coverage: the partitioned dask path against the single-process path.

Synthetic country: tracts are the Voronoi cells of clustered seeds (dense cities, sparse
countryside) over a square of land, cameras cluster in the same cities. Both are stored in
WGS84 and measured in the square's UTM zone, as a real run is. The dask path
(:func:`camcensus.scale.coverage_measures`, a local cluster of ``--workers`` processes) runs at
the requested size; the single-process path (:func:`camcensus.scale.coverage_measures_single`)
runs on the same data at the default size (and the two results are compared), and at a ladder
of smaller sizes of the same density for its scaling. Time and peak memory (resident set of
this process and all its children, sampled every 50 ms) are printed for each run, with the CPU
seconds (the figure a shared machine inflates least).

Discs are exact circles by default (``--discs circles``: covered areas from the circles' arcs,
:mod:`camcensus.coverage._union_arcs`); ``--discs polygons`` measures the sf/GEOS polygons
(Amnesty's figures; the path before the circles). Without ``--full`` the polygon path also runs
on the same data as the baseline: time ratio and the largest difference are printed.

Usage:
    python benchmarks/bench_scale.py            # 50,000 cameras x 4,250 tracts (a minute)
    python benchmarks/bench_scale.py --full     # the issue's 1,000,000 cameras x 85,000 tracts
    python benchmarks/bench_scale.py --full --single-full   # also the single path at full size
    python benchmarks/bench_scale.py --full --discs polygons  # the polygon path (minutes)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import psutil  # type: ignore[import-untyped]
import shapely

from camcensus.scale import coverage_measures, coverage_measures_single

FULL_CAMERAS = 1_000_000
FULL_TRACTS = 85_000
UTM = "EPSG:32614"  # UTM 14N: the square sits around 98 W, 38 N
# Land area per tract (km^2): the square's side follows from the number of tracts.
KM2_PER_TRACT = 4.0


def camera_density(cams: gpd.GeoDataFrame) -> tuple[float, float]:
    """Return the median and 99th percentile of cameras per km^2 over occupied 1 km cells."""
    xy = shapely.get_coordinates(cams.to_crs(UTM).geometry.values)
    _, counts = np.unique(np.floor(xy / 1000.0).astype(np.int64), axis=0, return_counts=True)
    return float(np.median(counts)), float(np.quantile(counts, 0.99))


def synthetic_country(
    n_cameras: int, n_tracts: int, *, seed: int = 0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return (tracts, cameras) in WGS84; density fixed, so the square grows with n_tracts."""
    rng = np.random.default_rng(seed)
    side = math.sqrt(n_tracts * KM2_PER_TRACT) * 1000.0
    x0, y0 = 500_000.0 - side / 2, 4_200_000.0 - side / 2
    n_cities = max(3, round(n_tracts / 2_000))
    cities = rng.uniform(0.1, 0.9, (n_cities, 2)) * side + (x0, y0)
    # City radii (standard deviation of the Gaussian, m): with 90% of the cameras in the
    # cities, their cores hold ~20-40 cameras per km^2 at full size (New York: ~32 per km^2,
    # Decode's 25,500 cameras over 780 km^2).
    sizes = rng.uniform(5_000, 25_000, n_cities)

    def clustered(n: int, share_city: float) -> np.ndarray:
        n_city = int(n * share_city)
        which = rng.integers(0, n_cities, n_city)
        pts = cities[which] + rng.normal(0, 1, (n_city, 2)) * sizes[which, None]
        rest = rng.uniform(0, 1, (n - n_city, 2)) * side + (x0, y0)
        xy = np.vstack([pts, rest])
        return np.clip(xy, (x0 + 1, y0 + 1), (x0 + side - 1, y0 + side - 1))

    seeds = clustered(n_tracts, 0.7)
    land = shapely.box(x0, y0, x0 + side, y0 + side)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=land))
    cells = shapely.intersection(cells, land)
    cells = cells[~shapely.is_empty(cells)]
    tracts = gpd.GeoDataFrame(
        {"GEOID": [f"T{i:06d}" for i in range(len(cells))]}, geometry=cells, crs=UTM
    ).to_crs("EPSG:4326")
    cxy = clustered(n_cameras, 0.9)
    cams = gpd.GeoDataFrame(
        {"camera_id": [f"C{i:07d}" for i in range(n_cameras)], "mount": "street"},
        geometry=gpd.points_from_xy(cxy[:, 0], cxy[:, 1]),
        crs=UTM,
    ).to_crs("EPSG:4326")
    return tracts, cams


class PeakMemory:
    """Peak resident memory (bytes) of this process and its children while in the block, and
    the CPU seconds they used (children sampled while alive: the load-independent figure on a
    shared machine)."""

    def __init__(self) -> None:
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._cpu0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu.values()) - self._cpu0

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        t = me.cpu_times()
        self._cpu[me.pid] = t.user + t.system
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
                t = child.cpu_times()
                self._cpu[child.pid] = t.user + t.system
        return int(total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self.peak = self._sample()
        self._cpu0 = sum(self._cpu.values())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


CPU: list[float] = []  # CPU seconds of each timed() call, in order


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Return (result, seconds, peak GiB); the CPU seconds go to :data:`CPU`."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
    CPU.append(mem.cpu_s)
    return out, dt, mem.peak / 2**30


def _relative_excess(circ: gpd.GeoDataFrame, poly: gpd.GeoDataFrame) -> tuple[float, float]:
    """Median and largest (circles - polygons) / polygons of eff_cameras over tracts > 0.5."""
    c, p = circ["eff_cameras"].to_numpy(), poly["eff_cameras"].to_numpy()
    keep = p > 0.5
    rel = (c[keep] - p[keep]) / p[keep]
    return (float(np.median(rel)), float(rel.max())) if len(rel) else (0.0, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="1,000,000 cameras x 85,000 tracts")
    ap.add_argument("--cameras", type=int, default=None)
    ap.add_argument("--tracts", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="a dask scheduler address (default: local)")
    ap.add_argument("--single-full", action="store_true", help="single path at full size too")
    ap.add_argument(
        "--quad-segs",
        type=int,
        default=None,
        help="disc segments per quarter circle (default: the setting, 30 as R's sf; fewer is "
        "faster and draws smaller discs: 8 loses 0.6%% of the disc area)",
    )
    ap.add_argument("--discs", choices=("circles", "polygons"), default="circles")
    args = ap.parse_args()
    scale = 1.0 if args.full else 0.05
    n_cams = args.cameras or int(FULL_CAMERAS * scale)
    n_tracts = args.tracts or int(FULL_TRACTS * scale)

    t0 = time.perf_counter()
    tracts, cams = synthetic_country(n_cams, n_tracts)
    print(f"synthetic country: {len(cams):,} cameras x {len(tracts):,} tracts "
          f"({time.perf_counter() - t0:.1f} s to build); {os.cpu_count()} cores here, "
          f"{args.workers} dask workers")  # fmt: skip
    med, p99 = camera_density(cams)
    print(f"cameras per km^2 over occupied 1 km cells: median {med:.0f}, 99th percentile "
          f"{p99:.0f}; {1 / KM2_PER_TRACT:.2f} tracts per km^2")  # fmt: skip

    got, t_dask, m_dask = timed(
        lambda: coverage_measures(
            tracts, cams, scheduler=args.scheduler, workers=args.workers,
            quad_segs=args.quad_segs, discs=args.discs,
        )
    )  # fmt: skip
    print(f"dask-geopandas path ({args.discs}): {t_dask:7.1f} s, peak memory {m_dask:5.2f} GiB, "
          f"{CPU[-1]:.0f} CPU s (target: under 120 s at full size); load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  covered tracts: {(got['eff_cameras'] > 0).sum():,}; cameras counted: "
          f"{got['cameras'].sum():,.0f}")  # fmt: skip

    cpu_dask = CPU[-1]
    if not args.full and args.discs == "circles":
        # The baseline: the same path with polygon discs (as before the circles).
        poly, t_poly, m_poly = timed(
            lambda: coverage_measures(
                tracts, cams, scheduler=args.scheduler, workers=args.workers,
                quad_segs=args.quad_segs, discs="polygons",
            )
        )  # fmt: skip
        rel = _relative_excess(got, poly)
        print(f"dask path (polygons, the baseline): {t_poly:7.1f} s, peak memory {m_poly:5.2f} "
              f"GiB, {CPU[-1]:.0f} CPU s; circles / polygons: time {t_dask / t_poly:.2f}, CPU "
              f"{cpu_dask / CPU[-1]:.2f}; circles - polygons, relative to the polygons' "
              f"eff_cameras (tracts with more than 0.5): median {rel[0]:.1e}, max {rel[1]:.1e}; "
              f"counts equal: {bool((got['cameras'] == poly['cameras']).all())}")  # fmt: skip

    # The single path on the same data when it is small enough (or asked for), and its scaling.
    if not args.full or args.single_full:
        ref, t_one, m_one = timed(
            lambda: coverage_measures_single(
                tracts, cams, quad_segs=args.quad_segs, discs=args.discs
            )
        )
        d = float(np.max(np.abs(ref["eff_cameras"].to_numpy() - got["eff_cameras"].to_numpy())))
        same = bool((ref["cameras"].to_numpy() == got["cameras"].to_numpy()).all())
        print(f"single-process path: {t_one:7.1f} s, peak memory {m_one:5.2f} GiB, "
              f"{CPU[-1]:.0f} CPU s; "
              f"dask / single time {t_dask / t_one:.2f}; max |diff| eff_cameras {d:.2e}, "
              f"camera counts equal: {same}")  # fmt: skip
    print("single-process path at the same density, smaller sizes (its scaling):")
    print(f"  {'cameras':>10} {'tracts':>8} {'seconds':>8} {'CPU s':>8} {'peak GiB':>9}")
    for frac in (1 / 64, 1 / 32, 1 / 16, 1 / 8) if args.full else (1 / 8, 1 / 4, 1 / 2):
        t_s, c_s = synthetic_country(int(n_cams * frac), int(n_tracts * frac), seed=1)
        _, t_one, m_one = timed(
            functools.partial(
                coverage_measures_single, t_s, c_s, quad_segs=args.quad_segs, discs=args.discs
            )
        )
        print(f"  {len(c_s):>10,} {len(t_s):>8,} {t_one:8.1f} {CPU[-1]:8.1f} {m_one:9.2f}")


if __name__ == "__main__":
    main()
