"""Route queries on a single-borough-sized walking graph: camcensus against networkx and a
plain scipy Dijkstra, in the same process, on the same graph and the same queries.

The graph is a jittered street grid (default 120 × 120 ≈ 14k nodes; ``--full``: 390 × 390 ≈
152k nodes, the size of our-space's Manhattan walking graph) with 80 m blocks, and cameras
(default 500, ``--full`` 4,422 as our-space's) with 120 m discs. Queries join random pairs of
points at most ``--max-km`` apart (default 3 km: a walk), so the figures are those of a
walk, not of a cross-borough trip.

Baselines: networkx ``shortest_path_length`` (bidirectional Dijkstra on a ``nx.Graph``) and
scipy ``csgraph.dijkstra`` from one node without a limit (what a first implementation does).
Reported: median and 90th percentile of the shortest-route query (snapping, search, figures
per band, cameras, segments) and of the least-watched query (penalty sweep, ``max_detour``
0.25), after start-up (building the index, timed separately).

Usage: python benchmarks/bench_routes.py [--full] [--queries 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse import csgraph

from camcensus.cameras import CAMERA_COLUMNS
from camcensus.coverage import footprints
from camcensus.exposure import ExposureIndex, network_from_lines

UTM = "EPSG:32618"
X0, Y0 = 580_000.0, 4_500_000.0
ORIGIN = np.array([X0, Y0])


def grid(n: int, step: float, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n) * step, np.arange(n) * step), axis=-1)
    xy = xy + rng.uniform(-step * 0.15, step * 0.15, size=xy.shape) + ORIGIN
    lines = [shapely.LineString(xy[i]) for i in range(n)]
    lines += [shapely.LineString(xy[:, j]) for j in range(n)]
    return gpd.GeoDataFrame({"name": [f"s{i}" for i in range(len(lines))]}, geometry=lines, crs=UTM)


def cameras(n: int, extent: float, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed + 1)
    df = pd.DataFrame({c: [None] * n for c in CAMERA_COLUMNS})
    df["camera_id"] = [f"c{i}" for i in range(n)]
    df["mount"] = "street"
    pts = rng.uniform(0, extent, size=(n, 2)) + ORIGIN
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(pts[:, 0], pts[:, 1]), crs=UTM)


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, (time.perf_counter() - t) * 1000


def summary(ms: list[float]) -> str:
    q = np.percentile(ms, [50, 90])
    return f"median {q[0]:8.1f} ms   p90 {q[1]:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="152k nodes, 4,422 cameras")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--max-km", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, n_cams = (390, 4422) if args.full else (120, 500)
    step = 80.0
    extent = (n - 1) * step

    t0 = time.perf_counter()
    net = network_from_lines(grid(n, step, args.seed))
    t_net = time.perf_counter() - t0
    cams = cameras(n_cams, extent, args.seed)
    t0 = time.perf_counter()
    fps = footprints(cams, radius_m=120)
    index = ExposureIndex(net, fps, cams)
    t_index = time.perf_counter() - t0
    print(
        f"graph: {net.n_nodes:,} nodes, {len(net.edges):,} edges; {n_cams:,} cameras "
        f"(120 m discs). Start-up: network {t_net:.1f} s, index {t_index:.1f} s"
    )

    rng = np.random.default_rng(args.seed + 2)
    to_wgs = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    pairs = []
    while len(pairs) < args.queries:
        a = rng.uniform(0, extent, 2)
        if args.max_km > 0:
            b = a + rng.uniform(-1, 1, 2) * args.max_km * 1000 / np.sqrt(2)
        else:  # any two points of the graph (cross-borough trips)
            b = rng.uniform(0, extent, 2)
        if np.all((b >= 0) & (b <= extent)):
            pairs.append((a + ORIGIN, b + ORIGIN))
    ll = [(to_wgs.transform(*a), to_wgs.transform(*b)) for a, b in pairs]

    # Baselines work node to node: the nodes nearest the query points.
    def nearest(p: np.ndarray) -> int:
        return int(np.argmin(np.hypot(*(net.node_xy - p).T)))

    node_pairs = [(nearest(a), nearest(b)) for a, b in pairs]
    g = nx.Graph()
    e = net.edges
    for u, v, w in zip(e["u"], e["v"], e["length_m"], strict=True):
        g.add_edge(int(u), int(v), weight=float(w))
    matrix = net.routing_matrix(e["length_m"].to_numpy())

    ms_nx, ms_sp, ms_route, ms_lw = [], [], [], []
    agree = 0
    index.route(*ll[0])  # warm caches (first call compiles nothing, but touches memory)
    for (a, b), (na, nb) in zip(ll, node_pairs, strict=True):
        d_nx, t = timed(nx.shortest_path_length, g, na, nb, weight="weight")
        ms_nx.append(t)
        dist, t = timed(csgraph.dijkstra, matrix, directed=True, indices=na)
        ms_sp.append(t)
        agree += abs(dist[nb] - d_nx) < 1e-6
        _, t = timed(index.route, a, b)
        ms_route.append(t)
        _, t = timed(index.route, a, b, least_watched=True, max_detour=0.25)
        ms_lw.append(t)
    print(
        f"{len(ll)} queries, walks up to {args.max_km:g} km; scipy and networkx agree on "
        f"{agree}/{len(ll)} node-to-node lengths"
    )
    print(f"networkx shortest_path_length      {summary(ms_nx)}")
    print(f"scipy dijkstra (one source, full)  {summary(ms_sp)}")
    print(
        f"camcensus route (shortest)         {summary(ms_route)}   "
        f"x{statistics.median(ms_nx) / statistics.median(ms_route):.1f} vs networkx"
    )
    print(
        f"camcensus route (least watched)    {summary(ms_lw)}   "
        f"x{statistics.median(ms_nx) / statistics.median(ms_lw):.1f} vs networkx"
    )
    print("targets (issue 8): shortest < 50 ms median, least-watched < 200 ms on ~150k nodes")


if __name__ == "__main__":
    main()
