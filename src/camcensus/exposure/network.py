"""Street networks for routing: lines noded at shared vertices, in a metric CRS.

A :class:`StreetNetwork` holds the edges (line pieces between nodes, with ``length_m`` and
geometry) and a symmetric ``scipy.sparse`` CSR matrix over the nodes for Dijkstra. Nodes are
made where lines share a vertex (OpenStreetMap ways share the node at an intersection) and at
line ends; lines that cross without a shared vertex (bridges, tunnels) are not joined.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from pyproj import CRS
from scipy import sparse
from scipy.sparse import csgraph

from camcensus._errors import CrsError, InputError, Ledger, Problem
from camcensus._geo import measurement_crs, metres_per_unit

__all__ = ["StreetNetwork", "network_from_lines", "read_streets"]

# Vertices are matched after rounding to this many CRS units' decimals (1 mm in metres).
_DECIMALS = 3
_OSM_SUFFIXES = (".osm", ".pbf")


@dataclass(frozen=True, eq=False)
class StreetNetwork:
    """A walkable street network in a metric CRS.

    Attributes
    ----------
    crs
        The projected CRS of ``edges`` and ``node_xy``.
    edges
        GeoDataFrame, RangeIndex = edge id: ``u``, ``v`` (node ids), ``length_m``, the line's
        attributes (``osm_id``, ``highway``, ``name`` where the input has them), ``line``
        (row of the input line the piece comes from); LineString geometry in ``crs``, drawn
        from ``u`` to ``v``.
    node_xy
        (n_nodes, 2) coordinates in ``crs``.
    graph
        Symmetric CSR matrix (n_nodes × n_nodes) whose entry (a, b) is an edge between a and
        b; ``entry_edge[k]`` is the edge id of stored entry k, so any per-edge cost vector
        ``c`` gives a routing matrix with data ``c[entry_edge]``. Loops are left out (they
        never shorten a route) and parallel edges are split at their midpoint, so each entry
        is one edge.
    component
        Connected-component label per node; ``main_component`` the largest one, where points
        are snapped so that every pair of points has a route.
    """

    crs: CRS
    edges: gpd.GeoDataFrame
    node_xy: np.ndarray
    graph: sparse.csr_matrix
    entry_edge: np.ndarray
    component: np.ndarray
    main_component: int
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_xy)

    def routing_matrix(self, edge_cost: np.ndarray) -> sparse.csr_matrix:
        """Return :attr:`graph` with each edge weighted by ``edge_cost`` (one value per edge)."""
        data = np.maximum(np.asarray(edge_cost, dtype="float64")[self.entry_edge], 1e-9)
        return sparse.csr_matrix(
            (data, self.graph.indices, self.graph.indptr), shape=self.graph.shape
        )


def read_streets(
    path: str | Path,
    *,
    crs: CRS | str | int | None = None,
    walk: bool = True,
    layer: str | None = None,
) -> StreetNetwork:
    """Read a street network from OSM XML/PBF or a file of LineStrings (GeoJSON, GeoPackage).

    Parameters
    ----------
    path
        ``.osm``/``.osm.pbf`` (read with :func:`camcensus.io.osm.read_osm_streets`) or any
        vector file GDAL reads with (Multi)LineString geometry and a CRS.
    crs
        Metric CRS to build the network in (default: the lines' UTM zone).
    walk
        OSM files only: keep what people walk along (see ``read_osm_streets``).
    layer
        Layer of a multi-layer file.
    """
    path = Path(path)
    ledger = Ledger()
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "a street file", "check the path")]
        )
    if path.name.lower().endswith(_OSM_SUFFIXES):
        from camcensus.io.osm import read_osm_streets

        gdf = read_osm_streets(path, walk=walk, ledger=ledger)
    else:
        import pyogrio

        try:
            gdf = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
        except Exception as exc:  # GDAL's own error types
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        f"a file GDAL cannot read ({exc})",
                        "GeoJSON, GeoPackage or another vector file of LineStrings",
                        "check the file, or pass --streets an OSM .osm/.osm.pbf extract",
                    )
                ]
            ) from exc
        if gdf.crs is None:
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        "geometry",
                        "no CRS",
                        "a declared CRS",
                        "write the file again with one (ogr2ogr -a_srs EPSG:4326 ...)",
                    )
                ]
            )
    gdf.attrs["source"] = str(path)
    return network_from_lines(gdf, crs=crs, ledger=ledger)


def network_from_lines(
    gdf_lines: gpd.GeoDataFrame,
    *,
    crs: CRS | str | int | None = None,
    ledger: Ledger | None = None,
) -> StreetNetwork:
    """Node ``gdf_lines`` at shared vertices and line ends and return the network.

    Parameters
    ----------
    gdf_lines
        (Multi)LineStrings with a CRS; ``osm_id``, ``highway``, ``name`` are carried to the
        edges when present. Other geometry types and empty geometries are left out and
        counted in ``ledger``.
    crs
        Metric CRS of the network (default: ``gdf_lines``' own if projected, else UTM).
    ledger
        Receives exclusions (kept on the network as ``network.ledger``).
    """
    ledger = ledger if ledger is not None else Ledger()
    if gdf_lines.crs is None:
        raise CrsError("the street lines have no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    target = CRS.from_user_input(crs) if crs is not None else measurement_crs(gdf_lines)
    unit = metres_per_unit(target)
    gdf = gdf_lines.to_crs(target)
    geoms = np.asarray(gdf.geometry.values)
    kind = shapely.get_type_id(geoms)
    ok = np.isin(kind, [1, 5]) & ~shapely.is_empty(geoms)
    ledger.exclude("street network", "features that are not LineStrings", int((~ok).sum()))
    parts, line_of_part = shapely.get_parts(geoms[ok], return_index=True)
    line_of_part = np.flatnonzero(ok)[line_of_part]
    coords, part_of = shapely.get_coordinates(parts, return_index=True)
    # Drop repeated consecutive vertices (zero-length segments).
    rounded = np.round(coords, _DECIMALS)
    same = np.zeros(len(coords), dtype=bool)
    same[1:] = (part_of[1:] == part_of[:-1]) & np.all(rounded[1:] == rounded[:-1], axis=1)
    coords, rounded, part_of = coords[~same], rounded[~same], part_of[~same]
    n_per = np.bincount(part_of, minlength=len(parts))
    short = n_per < 2
    ledger.exclude("street network", "lines shorter than one segment", int(short.sum()))
    keep = ~short[part_of]
    coords, rounded, part_of = coords[keep], rounded[keep], part_of[keep]
    if len(coords) == 0:
        raise InputError(
            [
                Problem(
                    str(gdf_lines.attrs.get("source", "")),
                    None,
                    "geometry",
                    "no usable line",
                    "street centre lines (LineStrings)",
                    "pass a street file, e.g. an OSM extract",
                )
            ]
        )
    _, vertex, count = np.unique(rounded, axis=0, return_inverse=True, return_counts=True)
    vertex = vertex.ravel()
    start = np.ones(len(coords), dtype=bool)
    start[1:] = part_of[1:] != part_of[:-1]
    end = np.ones(len(coords), dtype=bool)
    end[:-1] = part_of[1:] != part_of[:-1]
    is_node = start | end | (count[vertex] > 1)
    interior = is_node & ~start & ~end
    # Edge id of the edge starting at each vertex: nodes so far minus one per earlier part
    # (a part with k nodes has k - 1 edges).
    part_rank = np.cumsum(start) - 1
    edge_start = np.cumsum(is_node) - 1 - part_rank
    # An interior node is written twice: it closes one edge and starts the next; a part's
    # last vertex closes its last edge.
    rep = np.where(interior, 2, 1)
    pos = np.cumsum(rep) - rep
    coords2 = np.repeat(coords, rep, axis=0)
    vert2 = np.repeat(vertex, rep)
    eid = np.repeat(edge_start, rep)
    closes = np.zeros(len(coords2), dtype=bool)
    closes[pos[interior | end]] = True
    eid = eid - closes.astype(np.int64)
    edge_geoms = shapely.linestrings(coords2, indices=eid)
    n_edges = len(edge_geoms)
    first_vertex = np.full(n_edges, -1)
    last_vertex = np.full(n_edges, -1)
    first_vertex[eid[::-1]] = vert2[::-1]
    last_vertex[eid] = vert2
    edge_part = np.zeros(n_edges, dtype=np.int64)
    edge_part[eid] = np.repeat(part_of, rep)
    # Node ids: the distinct vertices that are nodes, numbered 0..n-1.
    node_vertices = np.unique(np.concatenate([first_vertex, last_vertex]))
    u = np.searchsorted(node_vertices, first_vertex)
    v = np.searchsorted(node_vertices, last_vertex)
    first_coord = shapely.get_point(edge_geoms, 0)
    node_xy = np.zeros((len(node_vertices), 2))
    node_xy[u] = shapely.get_coordinates(first_coord)
    node_xy[v] = shapely.get_coordinates(shapely.get_point(edge_geoms, -1))
    lines = gdf.iloc[line_of_part[edge_part]]
    attrs = {c: lines[c].to_numpy() for c in ("osm_id", "highway", "name") if c in gdf.columns}
    edges = pd.DataFrame({"u": u, "v": v, **attrs, "line": line_of_part[edge_part]})
    edges, edge_geoms, node_xy = _split_parallel(edges, edge_geoms, node_xy)
    length_m = shapely.length(edge_geoms) * unit
    edges["length_m"] = length_m
    gdf_edges = gpd.GeoDataFrame(edges, geometry=edge_geoms, crs=target)
    u_arr = gdf_edges["u"].to_numpy()
    v_arr = gdf_edges["v"].to_numpy()
    routable = np.flatnonzero(u_arr != v_arr)
    n_nodes = len(node_xy)
    rows = np.concatenate([u_arr[routable], v_arr[routable]])
    cols = np.concatenate([v_arr[routable], u_arr[routable]])
    ids = np.concatenate([routable, routable])
    order2 = np.lexsort((cols, rows))
    rows, cols, ids = rows[order2], cols[order2], ids[order2]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    indptr = np.cumsum(indptr)
    graph = sparse.csr_matrix(
        (np.ones(len(ids)), cols.astype(np.int32), indptr.astype(np.int32)),
        shape=(n_nodes, n_nodes),
    )
    n_comp, labels = csgraph.connected_components(graph, directed=False)
    main = int(np.argmax(np.bincount(labels))) if n_comp else 0
    outside = int((labels[u_arr] != main).sum())
    if outside:
        ledger.note(
            f"street network: {outside:,} of {len(gdf_edges):,} edges lie outside the largest "
            f"connected part ({n_comp:,} parts); route points snap to the largest part only."
        )
    return StreetNetwork(
        crs=target,
        edges=gdf_edges,
        node_xy=node_xy,
        graph=graph,
        entry_edge=ids,
        component=labels,
        main_component=main,
        ledger=ledger,
    )


def _split_parallel(
    edges: pd.DataFrame, geoms: np.ndarray, node_xy: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Cut loops in thirds and every edge repeating an earlier edge's node pair in halves, so
    that one CSR entry is one edge and no edge is closed (a closed line has two positions for
    its end point)."""
    u = edges["u"].to_numpy()
    v = edges["v"].to_numpy()
    loops = np.flatnonzero(u == v)
    a, b = np.minimum(u, v), np.maximum(u, v)
    dup = pd.DataFrame({"a": a, "b": b}).duplicated().to_numpy() & (u != v)
    halves = np.flatnonzero(dup)
    if len(loops) == 0 and len(halves) == 0:
        return edges.reset_index(drop=True), geoms, node_xy
    edges = edges.copy()
    geoms = geoms.copy()
    new_rows: list[pd.Series] = []
    new_geoms: list[shapely.Geometry] = []
    new_xy: list[np.ndarray] = []
    n = len(node_xy)
    v_col = v.copy()
    for idx, parts in ((loops, 3), (halves, 2)):
        for k in idx:
            length = geoms[k].length
            cuts = [length * i / parts for i in range(parts + 1)]
            pieces = [
                shapely.ops.substring(geoms[k], c0, c1) for c0, c1 in itertools.pairwise(cuts)
            ]
            mids = list(range(n, n + parts - 1))
            n += parts - 1
            new_xy.extend(shapely.get_coordinates(p)[-1] for p in pieces[:-1])
            ends = [int(u[k]), *mids, int(v[k])]
            geoms[k] = pieces[0]
            v_col[k] = ends[1]
            for j in range(1, parts):
                row = edges.iloc[int(k)].copy()
                row["u"], row["v"] = ends[j], ends[j + 1]
                new_rows.append(row)
                new_geoms.append(pieces[j])
    edges["v"] = v_col
    edges = pd.concat([edges, pd.DataFrame(new_rows)], ignore_index=True)
    edges["u"] = edges["u"].astype(np.int64)
    edges["v"] = edges["v"].astype(np.int64)
    xy = np.vstack([node_xy, np.asarray(new_xy).reshape(-1, 2)])
    return edges, np.concatenate([geoms, np.asarray(new_geoms, dtype=object)]), xy


def check_metric(crs: CRS) -> None:
    """Raise :class:`~camcensus.CrsError` if ``crs`` is geographic."""
    metres_per_unit(crs)
