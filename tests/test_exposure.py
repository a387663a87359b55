"""Exposure: network noding, routes, least-watched routes and area roll-ups, checked against
brute force (networkx, every simple path) and shapely's own intersections."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer

from camcensus._errors import ContractError, OptionError
from camcensus.coverage import footprints
from camcensus.exposure import (
    ExposureIndex,
    area_exposure,
    load_index,
    network_from_lines,
    read_streets,
    route_to_files,
)

UTM = "EPSG:32618"
TO_WGS = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
X0, Y0 = 585_000.0, 4_511_000.0  # Manhattan, in UTM 18N metres


def ll(x: float, y: float) -> tuple[float, float]:
    """(lon, lat) of local metres (x, y) east/north of (X0, Y0)."""
    lon, lat = TO_WGS.transform(X0 + x, Y0 + y)
    return float(lon), float(lat)


def lines_gdf(
    lines: list[list[tuple[float, float]]], names: list[str] | None = None
) -> gpd.GeoDataFrame:
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in line]) for line in lines]
    return gpd.GeoDataFrame(
        {"name": names or [f"l{i}" for i in range(len(lines))]}, geometry=geoms, crs=UTM
    )


def cameras_gdf(points: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    from camcensus.cameras import CAMERA_COLUMNS

    n = len(points)
    df = pd.DataFrame({c: [None] * n for c in CAMERA_COLUMNS})
    df["camera_id"] = [f"c{i}" for i in range(n)]
    df["mount"] = "street"
    for c in ("direction_deg", "hfov_deg", "height_m", "position_sd_m"):
        df[c] = np.nan
    geoms = [shapely.Point(X0 + x, Y0 + y) for x, y in points]
    return gpd.GeoDataFrame(df, geometry=geoms, crs=UTM)


def grid_lines(n: int, step: float, *, seed: int) -> list[list[tuple[float, float]]]:
    """Rows and columns of an n×n grid with jittered vertices, as long lines that share
    vertices at crossings (like OSM ways)."""
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n) * step, np.arange(n) * step), axis=-1)
    xy = xy + rng.uniform(-step * 0.2, step * 0.2, size=xy.shape)
    rows = [[tuple(p) for p in xy[i, :, :]] for i in range(n)]
    cols = [[tuple(p) for p in xy[:, j, :]] for j in range(n)]
    return rows + cols


# -- the network --------------------------------------------------------------------------


def test_noding_splits_lines_at_shared_vertices_only() -> None:
    # a and b cross at a shared vertex (50, 0); c crosses a at (75, 0) without one (a bridge).
    gdf = lines_gdf(
        [
            [(0, 0), (50, 0), (100, 0)],
            [(50, -50), (50, 0), (50, 50)],
            [(75, -20), (75, 20)],
            [(100, 0), (100, 30), (130, 30), (130, 0), (100, 0)],  # loop
        ]
    )
    net = network_from_lines(gdf)
    edges = net.edges
    assert len(edges) == 8  # a: 2, b: 2, c: 1 (not split), the loop cut in thirds: 3
    assert net.n_nodes == 9
    assert edges["length_m"].sum() == pytest.approx(100 + 100 + 40 + 120)
    assert sorted(edges.groupby("name").size().to_dict().items()) == [
        ("l0", 2),
        ("l1", 2),
        ("l2", 1),
        ("l3", 3),
    ]
    # The crossing node joins four edges; the bridge's ends touch nothing.
    degree = np.bincount(np.concatenate([edges["u"], edges["v"]]), minlength=net.n_nodes)
    assert sorted(degree.tolist()) == [1, 1, 1, 1, 1, 2, 2, 3, 4]
    # Every edge's geometry runs from its u node to its v node.
    for row in edges.itertuples():
        first = shapely.get_coordinates(row.geometry)[0]
        last = shapely.get_coordinates(row.geometry)[-1]
        assert np.allclose(first, net.node_xy[row.u])
        assert np.allclose(last, net.node_xy[row.v])


def test_parallel_edges_are_split_so_the_shorter_one_routes() -> None:
    gdf = lines_gdf([[(0, 0), (100, 0)], [(0, 0), (0, 50), (100, 50), (100, 0)]])
    net = network_from_lines(gdf)
    assert len(net.edges) == 3  # the longer parallel edge split at its midpoint
    idx = ExposureIndex(net, footprints(cameras_gdf([]), radius_m=10))
    r = idx.route(ll(-1, 0), ll(101, 0))
    assert r.length_m == pytest.approx(100.0)


def test_network_refuses_data_without_crs() -> None:
    gdf = lines_gdf([[(0, 0), (1, 0)]]).set_crs(None, allow_override=True)
    with pytest.raises(ValueError, match="no CRS"):
        network_from_lines(gdf)


def test_read_streets_geojson_round_trip(tmp_path: Path) -> None:
    gdf = lines_gdf(grid_lines(4, 80.0, seed=1)).to_crs("EPSG:4326")
    path = tmp_path / "streets.geojson"
    gdf.to_file(path, driver="GeoJSON")
    net = read_streets(path)
    assert len(net.edges) == 2 * 4 * 3
    total = gdf.to_crs(net.crs).length.sum()
    assert net.edges["length_m"].sum() == pytest.approx(total, rel=1e-9)


# -- shortest routes against networkx -----------------------------------------------------


@pytest.fixture(scope="module")
def grid_index() -> ExposureIndex:
    net = network_from_lines(lines_gdf(grid_lines(8, 100.0, seed=7)))
    rng = np.random.default_rng(3)
    cams = cameras_gdf([tuple(p) for p in rng.uniform(0, 700, size=(12, 2))])
    return ExposureIndex(net, footprints(cams, radius_m=60), cams)


def _nx_graph(idx: ExposureIndex, weight: np.ndarray) -> nx.Graph:
    g = nx.Graph()
    e = idx.network.edges
    for k, (u, v) in enumerate(zip(e["u"], e["v"], strict=True)):
        if u == v:
            continue
        if not g.has_edge(u, v) or g[u][v]["w"] > weight[k]:
            g.add_edge(int(u), int(v), w=float(weight[k]))
    return g


def _with_point(g: nx.Graph, idx: ExposureIndex, name: str, point: tuple[float, float]) -> None:
    """Add ``name`` joined to the two ends of the edge nearest ``point`` (brute force)."""
    x, y = TO_UTM.transform(*point)
    pt = shapely.Point(x, y)
    geoms = np.asarray(idx.network.edges.geometry.values)
    d = shapely.distance(geoms, pt)
    main = idx.network.component[idx.network.edges["u"]] == idx.network.main_component
    d[~main] = np.inf
    k = int(np.argmin(d))
    s = float(shapely.line_locate_point(geoms[k], pt))
    length = float(geoms[k].length)
    g.add_edge(name, int(idx.network.edges["u"][k]), w=s)
    g.add_edge(name, ("v", name), w=length - s)
    g.add_edge(("v", name), int(idx.network.edges["v"][k]), w=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_shortest_route_length_equals_networkx(grid_index: ExposureIndex, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = (ll(*p) for p in rng.uniform(0, 700, size=(2, 2)))
    r = grid_index.route(a, b)
    g = _nx_graph(grid_index, grid_index.network.edges["length_m"].to_numpy())
    _with_point(g, grid_index, "o", a)
    _with_point(g, grid_index, "d", b)
    expected = nx.shortest_path_length(g, "o", "d", weight="w")
    assert r.length_m == pytest.approx(expected, abs=1e-6)
    # The drawn route is as long as the figure says.
    line = shapely.transform(r.geometry, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))
    assert line.length == pytest.approx(r.length_m, rel=1e-6)


def test_covered_length_equals_shapely_intersection(grid_index: ExposureIndex) -> None:
    rng = np.random.default_rng(11)
    union = shapely.union_all(np.asarray(footprints(_cams(grid_index), radius_m=60).geometry))
    for _ in range(5):
        a, b = (ll(*p) for p in rng.uniform(0, 700, size=(2, 2)))
        r = grid_index.route(a, b)
        line = shapely.transform(r.geometry, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))
        expected = shapely.intersection(line, union).length
        fig = r.bands["any"]
        assert fig["covered_m"] == pytest.approx(expected, abs=1e-3)
        assert fig["share_covered"] == pytest.approx(expected / line.length, abs=1e-6)
        assert fig["seconds_exposed"] == pytest.approx(fig["covered_m"] / 1.4)
        assert sum(s["length_m"] for s in r.segments) == pytest.approx(r.length_m)
        assert sum(s["covered_m"]["any"] for s in r.segments) == pytest.approx(fig["covered_m"])


def _cams(idx: ExposureIndex) -> gpd.GeoDataFrame:
    assert idx._cameras is not None
    return idx._cameras


def test_every_edge_covered_length_equals_shapely(grid_index: ExposureIndex) -> None:
    union = shapely.union_all(np.asarray(footprints(_cams(grid_index), radius_m=60).geometry))
    edges = np.asarray(grid_index.network.edges.geometry.values)
    expected = shapely.length(shapely.intersection(edges, union))
    assert np.allclose(grid_index.edge_covered_m(), expected, atol=1e-6)


def test_cameras_that_see_the_route_are_those_whose_disc_meets_it(
    grid_index: ExposureIndex,
) -> None:
    r = grid_index.route(ll(10, 10), ll(690, 650))
    line = shapely.transform(r.geometry, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))
    fps = footprints(_cams(grid_index), radius_m=60)
    pieces = shapely.intersection(np.asarray(fps.geometry.values), line)
    seen = sorted(fps["camera_id"][shapely.length(pieces) > 1e-9])
    assert list(r.cameras) == seen
    assert r.n_cameras == r.bands["any"]["n_cameras"] == len(seen)


def test_via_points_add_up(grid_index: ExposureIndex) -> None:
    a, v, b = ll(20, 30), ll(600, 90), ll(300, 650)
    whole = grid_index.route(a, b, via=[v])
    first, second = grid_index.route(a, v), grid_index.route(v, b)
    assert whole.length_m == pytest.approx(first.length_m + second.length_m)
    assert whole.bands["any"]["covered_m"] == pytest.approx(
        first.bands["any"]["covered_m"] + second.bands["any"]["covered_m"]
    )
    assert set(whole.snapped) == {"origin", "via_1", "destination"}


def test_same_edge_route_runs_along_the_edge() -> None:
    net = network_from_lines(lines_gdf([[(0, 0), (100, 0)], [(100, 0), (100, 100)]]))
    idx = ExposureIndex(net, footprints(cameras_gdf([(50, 30)]), radius_m=40))
    r = idx.route(ll(10, 2), ll(80, -2))
    assert r.length_m == pytest.approx(70.0, abs=1e-6)
    # The disc (radius 40 at (50, 30)) meets y=0 on x in 50 ± sqrt(40²-30²).
    half = math.sqrt(40**2 - 30**2)
    assert r.bands["any"]["covered_m"] == pytest.approx(2 * half, rel=2e-3)
    assert r.snapped["origin"]["distance_m"] == pytest.approx(2.0, abs=1e-6)


def test_points_outside_the_network_are_refused(grid_index: ExposureIndex) -> None:
    with pytest.raises(OptionError, match="outside the street network"):
        grid_index.route((0.0, 0.0), ll(10, 10))
    with pytest.raises(OptionError, match="longitude, latitude"):
        grid_index.route((float("nan"), 1.0), ll(10, 10))


def test_footprints_without_crs_break_the_contract(grid_index: ExposureIndex) -> None:
    fps = footprints(_cams(grid_index), radius_m=60).set_crs(None, allow_override=True)
    with pytest.raises(ContractError, match="no CRS"):
        ExposureIndex(grid_index.network, fps)


# -- least-watched routes against every simple path ---------------------------------------


def test_least_watched_takes_the_uncovered_street_within_the_cap() -> None:
    # Two ways from (0, 0) to (200, 0): straight along y=0 past a camera, or 10% longer
    # around an uncovered block (y = 10).
    gdf = lines_gdf(
        [
            [(0, 0), (200, 0)],
            [(0, 0), (0, 10), (200, 10), (200, 0)],
        ]
    )
    net = network_from_lines(gdf)
    cams = cameras_gdf([(100, -5)])
    idx = ExposureIndex(net, footprints(cams, radius_m=12), cams)
    r = idx.route(ll(0, 0), ll(200, 0), least_watched=True, max_detour=0.25)
    assert r.length_m == pytest.approx(200.0)
    assert r.least_watched is not None
    assert r.least_watched["length_m"] == pytest.approx(220.0)
    assert r.least_watched["detour"] == pytest.approx(0.10)
    assert r.least_watched["bands"]["any"]["covered_m"] < r.bands["any"]["covered_m"]
    tight = idx.route(ll(0, 0), ll(200, 0), least_watched=True, max_detour=0.05)
    assert tight.least_watched is not None
    assert tight.least_watched["length_m"] == pytest.approx(200.0)
    curve = r.tradeoff
    assert [c["length_m"] for c in curve] == sorted(c["length_m"] for c in curve)
    assert all(a["covered_m"] > b["covered_m"] for a, b in itertools.pairwise(curve))


def test_of_equally_short_walks_the_shortest_is_the_least_watched() -> None:
    # A 100 m square from (0, 0) to (100, 100): two walks of 200 m, a camera beside one.
    gdf = lines_gdf(
        [
            [(0, 0), (100, 0), (100, 100)],
            [(0, 0), (0, 100), (100, 100)],
        ]
    )
    net = network_from_lines(gdf)
    for camera, unwatched_corner in (((50, -5), (0, 100)), ((-5, 50), (100, 0))):
        cams = cameras_gdf([camera])
        idx = ExposureIndex(net, footprints(cams, radius_m=20), cams)
        r = idx.route(ll(0, 0), ll(100, 100))
        assert r.length_m == pytest.approx(200.0, abs=1e-6)
        assert r.bands["any"]["covered_m"] == 0.0
        line = r.to_geojson()["features"][0]["geometry"]["coordinates"]
        corner = ll(*unwatched_corner)
        assert any(abs(x - corner[0]) < 1e-6 and abs(y - corner[1]) < 1e-6 for x, y in line), (
            "the walk does not pass the unwatched corner"
        )


def _all_paths(idx: ExposureIndex, a: int, b: int) -> list[tuple[float, float]]:
    """(length, covered) of every simple path between nodes a and b."""
    e = idx.network.edges
    length = e["length_m"].to_numpy()
    covered = idx.edge_covered_m()
    g = nx.Graph()
    for k, (u, v) in enumerate(zip(e["u"], e["v"], strict=True)):
        if u != v:
            g.add_edge(int(u), int(v), k=k)
    out = []
    for path in nx.all_simple_paths(g, a, b, cutoff=12):
        ks = [g[x][y]["k"] for x, y in itertools.pairwise(path)]
        out.append((float(length[ks].sum()), float(covered[ks].sum())))
    return out


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_penalty_sweep_finds_each_penalty_optimum_and_respects_the_cap(seed: int) -> None:
    net = network_from_lines(lines_gdf(grid_lines(4, 100.0, seed=seed)))
    rng = np.random.default_rng(seed)
    cams = cameras_gdf([tuple(p) for p in rng.uniform(0, 300, size=(4, 2))])
    idx = ExposureIndex(net, footprints(cams, radius_m=70), cams)
    a, b = 0, int(np.argmax(net.node_xy.sum(axis=1)))
    pa = ll(*(net.node_xy[a] - [X0, Y0]))
    pb = ll(*(net.node_xy[b] - [X0, Y0]))
    r = idx.route(pa, pb, least_watched=True, max_detour=0.3)
    paths = _all_paths(idx, a, b)
    shortest = min(p[0] for p in paths)
    assert r.length_m == pytest.approx(shortest, abs=1e-6)
    for point in r.tradeoff:
        # Each reported route is optimal for its penalty among all simple paths ...
        best = min(p[0] + point["penalty"] * p[1] for p in paths)
        got = point["length_m"] + point["penalty"] * point["covered_m"]
        assert got == pytest.approx(best, abs=1e-6)
        # ... and no path is both shorter and less covered (Pareto).
        assert not any(
            p[0] < point["length_m"] - 1e-6 and p[1] < point["covered_m"] - 1e-6 for p in paths
        )
    lw = r.least_watched
    assert lw is not None
    assert lw["length_m"] <= shortest * 1.3 + 1e-6
    # Nothing on the lower convex hull within the cap is less covered than the answer.
    hull = [min(paths, key=lambda q: q[0] + lam * q[1]) for lam in np.geomspace(0.01, 100, 60)]
    within = [p for p in hull if p[0] <= shortest * 1.3 + 1e-6]
    hull_best = min(within, key=lambda p: p[1])
    assert lw["bands"]["any"]["covered_m"] <= hull_best[1] + 1e-6


# -- given lines and areas --------------------------------------------------------------


def test_route_line_equals_shapely(grid_index: ExposureIndex) -> None:
    pts = [(5.0, 5.0), (300.0, 420.0), (650.0, 100.0)]
    line_utm = shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])
    line = shapely.LineString([ll(x, y) for x, y in pts])
    r = grid_index.route_line(line)
    union = shapely.union_all(np.asarray(footprints(_cams(grid_index), radius_m=60).geometry))
    # The WGS84 line is straight in degrees, not in UTM: compare on the reprojected vertices.
    back = shapely.transform(line, lambda xy: np.column_stack(TO_UTM.transform(*xy.T)))
    assert back.length == pytest.approx(line_utm.length, rel=1e-6)
    assert r.length_m == pytest.approx(back.length, rel=1e-9)
    assert r.bands["any"]["covered_m"] == pytest.approx(
        shapely.intersection(back, union).length, abs=1e-3
    )
    assert len(r.segments) == 2


def test_area_exposure_equals_shapely(grid_index: ExposureIndex) -> None:
    areas = gpd.GeoDataFrame(
        {"area": ["sw", "ne", "empty"]},
        geometry=[
            shapely.box(X0 - 50, Y0 - 50, X0 + 330, Y0 + 310),
            shapely.Point(X0 + 500, Y0 + 500).buffer(180),
            shapely.box(X0 + 5000, Y0, X0 + 5100, Y0 + 100),
        ],
        crs=UTM,
    )
    table = area_exposure(grid_index, None, areas, id_column="area")
    edges = shapely.union_all(np.asarray(grid_index.network.edges.geometry.values))
    union = shapely.union_all(np.asarray(footprints(_cams(grid_index), radius_m=60).geometry))
    for row in table.itertuples():
        poly = areas.geometry[areas["area"] == row.area].iloc[0]
        street = shapely.intersection(edges, poly).length
        covered = shapely.intersection(shapely.intersection(edges, poly), union).length
        assert row.street_m == pytest.approx(street, abs=1e-3)
        assert row.covered_m == pytest.approx(covered, abs=1e-3)
    assert table.loc[table["area"] == "empty", "share_covered"].item() == 0.0
    assert list(table.columns) == [
        "area",
        "model",
        "band",
        "street_m",
        "covered_m",
        "share_covered",
    ]
    with pytest.raises(ValueError, match="no column 'nope'"):
        area_exposure(grid_index, None, areas, id_column="nope")


@given(
    st.lists(st.tuples(st.floats(0, 300), st.floats(0, 300)), min_size=0, max_size=6),
    st.floats(5, 150),
)
def test_share_covered_is_within_0_and_1(points: list[tuple[float, float]], radius: float) -> None:
    net = network_from_lines(lines_gdf(grid_lines(3, 150.0, seed=2)))
    cams = cameras_gdf(points)
    idx = ExposureIndex(net, footprints(cams, radius_m=radius), cams)
    r = idx.route(ll(0, 0), ll(300, 300), least_watched=True)
    for fig in r.bands.values():
        assert 0.0 <= fig["share_covered"] <= 1.0 + 1e-12
        assert 0.0 <= fig["covered_m"] <= r.length_m + 1e-9
    assert r.least_watched is not None
    assert r.least_watched["bands"]["any"]["covered_m"] <= r.bands["any"]["covered_m"] + 1e-9


def test_results_are_json_and_geojson(tmp_path: Path, grid_index: ExposureIndex) -> None:
    r = grid_index.route(ll(10, 10), ll(690, 650), least_watched=True)
    figures, geo = route_to_files(r, tmp_path)
    data = json.loads(figures.read_text())
    assert data["bands"]["any"]["covered_m"] == pytest.approx(r.bands["any"]["covered_m"])
    assert data["n_cameras"] == len(data["cameras"])
    fc = json.loads(geo.read_text())
    roles = {f["properties"]["role"] for f in fc["features"]}
    assert {"shortest", "camera"} <= roles
    assert roles <= {"shortest", "least_watched", "covered", "camera"}
    cams = [f for f in fc["features"] if f["properties"]["role"] == "camera"]
    assert sorted(f["properties"]["camera_id"] for f in cams) == sorted(
        set(data["cameras"]) | set(data["least_watched"]["cameras"])
    )
    assert grid_index.streets_geojson(max_features=10)["features"].__len__() == 10
    assert len(grid_index.cameras_geojson()["features"]) == grid_index.n_cameras


# -- real data ----------------------------------------------------------------------------

#: The Empire State Building's Fifth Avenue entrance (350 Fifth Ave, between W 33rd and W 34th
#: St) and MoMA's entrance (11 West 53rd St, between Fifth and Sixth Ave).
EMPIRE_STATE = (-73.98479, 40.74811)
MOMA = (-73.97762, 40.76143)
#: Waypoint pinning the walk to Fifth Avenue up to 53rd St: the corner of Fifth Ave and W 53rd
#: St (where the two named streets of the network meet).
FIFTH_AVE_WAYPOINTS = ((-73.97584, 40.76041),)


@pytest.mark.realdata
@pytest.mark.parametrize(("public_only", "expected_share"), [(True, 0.8219), (False, 0.9156)])
def test_empire_state_to_moma_along_fifth_avenue(
    shared: Path, public_only: bool, expected_share: float
) -> None:
    idx = load_index(
        cameras=shared / "amnesty_decode" / "counts_per_intersections_citywide_reduced.csv",
        streets=shared / "osm_nyc" / "manhattan_named_streets.geojson",
        radius_m=120,
        public_only=public_only,
    )
    r = idx.route(EMPIRE_STATE, MOMA, via=FIFTH_AVE_WAYPOINTS)
    fifth = sum(s["length_m"] for s in r.segments if s["name"] == "5th Avenue")
    assert fifth / r.length_m > 0.85  # the walk is along Fifth Avenue
    assert r.length_m == pytest.approx(1747.3, abs=1.0)
    assert r.bands["any"]["share_covered"] == pytest.approx(expected_share, abs=0.005)
    # Amnesty's site said 80% of this walk is filmed (public cameras, 120 m discs).
    if public_only:
        assert abs(r.bands["any"]["share_covered"] - 0.80) < 0.06


def test_loops_and_large_footprints_are_measured_exactly() -> None:
    # A closed footway loop (its start is its end) and a self-crossing line, under a star
    # footprint of 4,000 vertices (cut into pieces before intersecting).
    gdf = lines_gdf(
        [
            [(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)],
            [(0, 0), (-80, 0)],
            [(-80, 0), (-40, 60), (-40, -60), (-10, 30)],
        ]
    )
    net = network_from_lines(gdf)
    assert (net.edges["u"] != net.edges["v"]).all()
    k = np.arange(4000)
    radius = np.where(k % 2 == 0, 90.0, 60.0)
    angle = 2 * np.pi * k / len(k)
    star = shapely.Polygon(
        np.column_stack([X0 + 10 + radius * np.cos(angle), Y0 + 20 + radius * np.sin(angle)])
    )
    fps = gpd.GeoDataFrame(
        {"camera_id": ["star"], "model": ["disc"], "band": ["any"], "parameters": ["{}"]},
        geometry=[star],
        crs=UTM,
    )
    idx = ExposureIndex(net, fps)
    edges = np.asarray(net.edges.geometry.values)
    expected = shapely.length(shapely.intersection(edges, star))
    assert np.allclose(idx.edge_covered_m(), expected, atol=1e-6)
    assert idx.edge_covered_m().sum() > 100
