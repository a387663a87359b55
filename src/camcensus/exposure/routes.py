"""Route exposure: how much of a walk lies inside camera footprints, and the least-watched route.

:class:`ExposureIndex` precomputes, once, the covered intervals of every street edge per
coverage band (footprints ∩ edge, as metres along the edge) and which cameras see each edge,
so a query is a Dijkstra search on a ``scipy.sparse`` matrix plus sums over the route's edges.

The least-watched route minimises ``length + penalty × covered length`` for a sweep of
penalties (a Lagrangian relaxation of "least covered length within a length budget"). Each
penalty gives a route on the lower convex hull of the (length, covered) trade-off; the
routes not dominated by another (shorter *and* less covered) are the Pareto set reported as
the trade-off curve, and the least-covered one within the detour cap is the answer. Routes
inside the hull's dents are not found by a penalty sweep (a known limit of the method;
an exact constrained shortest path is NP-hard in general).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.sparse import csgraph

from camcensus import settings
from camcensus._errors import ContractError, OptionError
from camcensus._geo import metres_per_unit
from camcensus.exposure._cover import Intervals, merged, raw_intervals
from camcensus.exposure.network import StreetNetwork

__all__ = ["MAX_CURVE_DETOUR", "MAX_SNAP_M", "PENALTIES", "ExposureIndex", "RouteResult"]

#: Penalties (extra metres per covered metre) swept for the least-watched route; 0 is the
#: shortest route. Between the last penalty within the detour cap and the first beyond it,
#: :data:`_REFINE` bisection steps look for a route closer to the cap.
PENALTIES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0)
_REFINE = 3
#: Penalty of the "shortest" route: among walks of equal length (a street grid has many) it
#: takes the least watched one, and it can be longer than the true shortest by at most this
#: fraction of its covered length (a micrometre per kilometre).
_TIE = 1e-9
#: The sweep stops at the first route more than this fraction longer than the shortest (5×
#: its length: the top of the 1.5–5× range of the Jyväskylä CCTV-aware routing study).
MAX_CURVE_DETOUR = 4.0

#: A route point farther than this from the street network's largest connected part is
#: refused rather than moved (a walk from somewhere else is not the walk asked about).
MAX_SNAP_M = 250.0

Point = tuple[float, float]


@dataclass(frozen=True)
class _Snap:
    edge: int
    pos_m: float  # metres from the edge's u end
    distance_m: float
    xy: tuple[float, float]


@dataclass(frozen=True)
class _Piece:
    edge: int
    lo: float
    hi: float
    forward: bool


@dataclass(frozen=True)
class _Path:
    pieces: tuple[_Piece, ...]
    length_m: float
    covered_m: float  # in the routing band


@dataclass(frozen=True)
class RouteResult:
    """Exposure of one route (and of its least-watched alternative, when asked for).

    ``bands`` maps each coverage band to ``{covered_m, share_covered, seconds_exposed,
    n_cameras}``; ``cameras`` lists the distinct cameras whose footprint (any band) meets
    the route; ``segments`` one dict per street piece walked; ``snapped`` how far each given
    point was from the network; ``least_watched`` the same figures for the chosen
    least-watched route plus ``detour`` (fraction longer than the shortest) and ``penalty``,
    or None; ``tradeoff`` the Pareto set of the penalty sweep.
    """

    model: str
    parameters: dict[str, Any]
    length_m: float
    bands: dict[str, dict[str, float]]
    cameras: tuple[str, ...]
    walking_speed_m_s: float
    segments: tuple[dict[str, Any], ...]
    snapped: dict[str, dict[str, float]]
    least_watched: dict[str, Any] | None
    tradeoff: tuple[dict[str, float], ...]
    routing_band: str
    geometry: shapely.LineString = field(repr=False)
    least_watched_geometry: shapely.LineString | None = field(repr=False)
    covered_geometry: dict[str, shapely.Geometry] = field(repr=False)
    least_watched_covered: dict[str, shapely.Geometry] = field(repr=False)
    camera_points: tuple[tuple[str, float, float], ...] = field(repr=False)

    @property
    def n_cameras(self) -> int:
        """Number of distinct cameras that see the route."""
        return len(self.cameras)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-able data (no geometry; see :meth:`to_geojson`)."""
        return {
            "model": self.model,
            "parameters": self.parameters,
            "routing_band": self.routing_band,
            "length_m": self.length_m,
            "bands": self.bands,
            "cameras": list(self.cameras),
            "n_cameras": self.n_cameras,
            "walking_speed_m_s": self.walking_speed_m_s,
            "segments": list(self.segments),
            "snapped": self.snapped,
            "least_watched": self.least_watched,
            "tradeoff": list(self.tradeoff),
        }

    def to_geojson(self) -> dict[str, Any]:
        """Return the route, its covered stretches, the least-watched route and the cameras
        as a GeoJSON FeatureCollection in WGS84 (``properties.role``: ``shortest``,
        ``least_watched``, ``covered``, ``camera``)."""
        band = self.routing_band
        features: list[dict[str, Any]] = [
            _feature(
                self.geometry,
                {
                    "role": "shortest",
                    "length_m": self.length_m,
                    "share_covered": self.bands[band]["share_covered"] if band else 0.0,
                },
            )
        ]
        if self.least_watched_geometry is not None and self.least_watched is not None:
            lw = self.least_watched
            features.append(
                _feature(
                    self.least_watched_geometry,
                    {
                        "role": "least_watched",
                        "length_m": lw["length_m"],
                        "share_covered": lw["bands"][band]["share_covered"] if band else 0.0,
                        "detour": lw["detour"],
                    },
                )
            )
        for route, covered in (
            ("shortest", self.covered_geometry),
            ("least_watched", self.least_watched_covered),
        ):
            for b, geom in covered.items():
                if not geom.is_empty:
                    features.append(_feature(geom, {"role": "covered", "route": route, "band": b}))
        for camera_id, lon, lat in self.camera_points:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": {"role": "camera", "camera_id": camera_id},
                }
            )
        return {"type": "FeatureCollection", "features": features}


def _feature(geom: shapely.Geometry, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        # 7 decimals of a degree: about 1 cm.
        "geometry": json.loads(shapely.to_geojson(shapely.transform(geom, _round7))),
        "properties": props,
    }


class ExposureIndex:
    """Street network + footprints, precomputed for fast route queries.

    Parameters
    ----------
    network
        The street network (:func:`camcensus.exposure.read_streets`).
    footprints
        The ``footprints`` table of one coverage model (any CRS; reprojected to the
        network's). Its bands keep their order of first appearance; the first (``any`` for
        every model) is the routing band the least-watched route avoids.
    cameras
        The ``cameras`` table, for the camera points shown on maps (optional).
    """

    def __init__(
        self,
        network: StreetNetwork,
        footprints: gpd.GeoDataFrame,
        cameras: gpd.GeoDataFrame | None = None,
    ) -> None:
        missing = [c for c in ("camera_id", "model", "band") if c not in footprints.columns]
        if missing or footprints.crs is None:
            raise ContractError(
                "the footprints table breaks its contract: "
                + "; ".join(
                    ([f"missing columns {', '.join(missing)}"] if missing else [])
                    + (["no CRS"] if footprints.crs is None else [])
                )
            )
        models = sorted(set(footprints["model"].astype(str)))
        if len(models) > 1:
            raise OptionError(
                f"footprints of several models {models}: build one index per model "
                "(filter with gdf[gdf.model == 'disc'])."
            )
        self.network = network
        self.model = models[0] if models else "disc"
        params = footprints["parameters"].iloc[0] if len(footprints) else "{}"
        self.parameters: dict[str, Any] = json.loads(str(params)) if params else {}
        self._unit = metres_per_unit(network.crs)
        fps = footprints.to_crs(network.crs) if CRS(footprints.crs) != network.crs else footprints
        self.bands: tuple[str, ...] = tuple(dict.fromkeys(fps["band"].astype(str))) or ("any",)
        self.routing_band = self.bands[0]
        edge_geoms = np.asarray(network.edges.geometry.values)
        self._edge_geoms = edge_geoms
        self._edge_len = network.edges["length_m"].to_numpy(dtype="float64")
        self._u = network.edges["u"].to_numpy()
        self._v = network.edges["v"].to_numpy()
        self._camera_ids = np.asarray(sorted(set(fps["camera_id"].astype(str))), dtype=object)
        cam_pos = {c: i for i, c in enumerate(self._camera_ids)}
        self._raw: dict[str, Intervals] = {}
        self._merged: dict[str, Intervals] = {}
        self._owner_cameras: dict[str, list[np.ndarray]] = {}
        self._band_polys: dict[str, np.ndarray] = {}
        self._edge_covered: dict[str, np.ndarray] = {}
        for band in self.bands:
            sub = fps.loc[fps["band"].astype(str) == band]
            geoms = np.asarray(sub.geometry.values)
            # Cameras sharing one polygon (one panorama's n cameras) are intersected once.
            key = shapely.to_wkb(geoms) if len(geoms) else np.zeros(0, dtype=object)
            uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            polys = geoms[first]
            cams = np.array([cam_pos[c] for c in sub["camera_id"].astype(str)], dtype=np.int64)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            splits = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
            self._owner_cameras[band] = np.split(cams[order], splits) if len(uniq) else []
            self._band_polys[band] = polys
            raw = raw_intervals(edge_geoms, polys, self._unit)
            self._raw[band] = raw
            self._merged[band] = merged(raw)
            self._edge_covered[band] = np.minimum(self._merged[band].total(), self._edge_len)
        self._poly_trees = {b: shapely.STRtree(p) for b, p in self._band_polys.items()}
        main = np.flatnonzero(network.component[self._u] == network.main_component)
        self._snap_edges = main
        self._snap_tree = shapely.STRtree(edge_geoms[main])
        self._to_metric = Transformer.from_crs("EPSG:4326", network.crs, always_xy=True)
        self._to_wgs = Transformer.from_crs(network.crs, "EPSG:4326", always_xy=True)
        self._cameras = cameras
        self._camera_xy = self._camera_lonlat(cameras, fps)
        self._streets_cache: dict[int | None, dict[str, Any]] = {}
        xmin, ymin, xmax, ymax = shapely.total_bounds(edge_geoms)
        xs, ys = self._to_wgs.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
        self._bounds = (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
        edges = network.edges
        self._edge_text = {
            col: edges[col].to_numpy() if col in edges.columns else np.full(len(edges), None)
            for col in ("name", "highway", "osm_id")
        }

    # -- properties and map layers -------------------------------------------------------

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the network in WGS84 degrees."""
        return self._bounds

    @property
    def n_cameras(self) -> int:
        """Number of cameras with a footprint in the index."""
        return len(self._camera_ids)

    def edge_covered_m(self, band: str | None = None) -> np.ndarray:
        """Return the covered length (m) of every network edge in ``band`` (default: the
        routing band)."""
        return self._edge_covered[band or self.routing_band].copy()

    def streets_geojson(self, max_features: int | None = None) -> dict[str, Any]:
        """Return the network's edges as a WGS84 FeatureCollection with ``share_covered``
        (routing band) per edge; with ``max_features``, the longest edges only."""
        if max_features in self._streets_cache:
            return self._streets_cache[max_features]
        edges = self.network.edges
        idx = np.arange(len(edges))
        if max_features is not None and len(idx) > max_features:
            idx = np.sort(np.argsort(-self._edge_len, kind="stable")[:max_features])
        geoms = shapely.transform(
            self._edge_geoms[idx], lambda xy: np.column_stack(self._to_wgs.transform(*xy.T))
        )
        share = self._edge_covered[self.routing_band][idx] / np.maximum(self._edge_len[idx], 1e-9)
        names = edges["name"].to_numpy()[idx] if "name" in edges.columns else [None] * len(idx)
        features = [
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": np.round(shapely.get_coordinates(g), 6).tolist(),
                },
                "properties": {
                    "edge": int(i),
                    "name": None if not isinstance(n, str) else n,
                    "share_covered": round(float(s), 4),
                },
            }
            for i, g, n, s in zip(idx, geoms, names, share, strict=True)
        ]
        out = {"type": "FeatureCollection", "features": features}
        self._streets_cache[max_features] = out
        return out

    def cameras_geojson(self) -> dict[str, Any]:
        """Return the cameras of the index as a WGS84 FeatureCollection of points."""
        features = []
        extra = {}
        if self._cameras is not None:
            cams = self._cameras.set_index(self._cameras["camera_id"].astype(str))
            for col in ("mount", "camera_type", "direction_deg", "source"):
                if col in cams.columns:
                    extra[col] = cams[col].to_dict()
        for cid, (lon, lat) in self._camera_xy.items():
            props: dict[str, Any] = {"camera_id": cid}
            for col, values in extra.items():
                value = values.get(cid)
                if isinstance(value, float) and not math.isfinite(value):
                    value = None
                props[col] = value
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": props,
                }
            )
        return {"type": "FeatureCollection", "features": features}

    # -- queries ------------------------------------------------------------------------

    def route(
        self,
        origin: Point,
        destination: Point,
        *,
        via: Sequence[Point] = (),
        least_watched: bool = False,
        max_detour: float | None = None,
        walking_speed_m_s: float | None = None,
    ) -> RouteResult:
        """Return the exposure of the shortest walk from ``origin`` to ``destination``.

        Parameters
        ----------
        origin, destination, via
            (lon, lat) in WGS84 degrees; each is snapped to the nearest street of the
            network's largest connected part (``snapped`` says how far it was). ``via`` points
            are visited in order.
        least_watched
            Also find the least-watched route within the detour cap (see module notes).
        max_detour
            Largest fraction the least-watched route may be longer than the shortest
            (default: setting ``max_detour``).
        walking_speed_m_s
            Turns covered metres into seconds exposed (default: setting
            ``walking_speed_m_s``).
        """
        speed = self._speed(walking_speed_m_s)
        cap = settings.get_float("max_detour") if max_detour is None else float(max_detour)
        settings.require("max_detour", cap, "max_detour")
        points = [origin, *via, destination]
        snaps = [
            self._snap(p, name) for p, name in zip(points, _point_names(len(via)), strict=True)
        ]
        shortest = self._route_legs(snaps, _TIE)
        lw_path: _Path | None = None
        tradeoff: list[dict[str, float]] = []
        chosen_penalty = 0.0
        if least_watched:
            lw_path, chosen_penalty, tradeoff = self._least_watched(snaps, shortest, cap)
        figures = self._figures(shortest, speed)
        lw: dict[str, Any] | None = None
        lw_geom = None
        lw_cov: dict[str, shapely.Geometry] = {}
        if lw_path is not None:
            lw_fig = self._figures(lw_path, speed)
            lw = {
                "length_m": lw_fig["length_m"],
                "bands": lw_fig["bands"],
                "cameras": list(lw_fig["cameras"]),
                "n_cameras": len(lw_fig["cameras"]),
                "detour": _detour(lw_path.length_m, shortest.length_m),
                "penalty": chosen_penalty,
                "max_detour": cap,
                "segments": list(lw_fig["segments"]),
            }
            lw_geom = self._line_wgs(lw_path)
            lw_cov = self._covered_wgs(lw_path)
        names = _point_names(len(via))
        snapped = {
            name: {"distance_m": s.distance_m, "lon": ll[0], "lat": ll[1]}
            for name, s in zip(names, snaps, strict=True)
            for ll in [self._to_wgs.transform(*s.xy)]
        }
        cams = set(figures["cameras"]) | (set(lw["cameras"]) if lw else set())
        return RouteResult(
            model=self.model,
            parameters=self.parameters,
            length_m=figures["length_m"],
            bands=figures["bands"],
            cameras=tuple(figures["cameras"]),
            walking_speed_m_s=speed,
            segments=tuple(figures["segments"]),
            snapped=snapped,
            least_watched=lw,
            tradeoff=tuple(tradeoff),
            routing_band=self.routing_band,
            geometry=self._line_wgs(shortest),
            least_watched_geometry=lw_geom,
            covered_geometry=self._covered_wgs(shortest),
            least_watched_covered=lw_cov,
            camera_points=tuple(
                (c, *self._camera_xy[c]) for c in sorted(cams) if c in self._camera_xy
            ),
        )

    def route_line(
        self, line_wgs84: shapely.LineString, *, walking_speed_m_s: float | None = None
    ) -> RouteResult:
        """Return the exposure of a given walk (a WGS84 LineString, not snapped to the
        network); ``segments`` are the line's straight segments."""
        speed = self._speed(walking_speed_m_s)
        line = shapely.transform(
            line_wgs84, lambda xy: np.column_stack(self._to_metric.transform(*xy.T))
        )
        length = float(shapely.length(line)) * self._unit
        coords = shapely.get_coordinates(line)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]) * self._unit
        bands: dict[str, dict[str, float]] = {}
        covered_geom: dict[str, shapely.Geometry] = {}
        seg_cov = np.zeros((len(self.bands), max(len(coords) - 1, 0)))
        all_cams: set[str] = set()
        seg_cams: list[set[str]] = [set() for _ in range(max(len(coords) - 1, 0))]
        for k, band in enumerate(self.bands):
            raw = raw_intervals(np.array([line]), self._band_polys[band], self._unit)
            mer = merged(raw)
            cov = float(min(mer.total()[0], length)) if len(mer.ptr) > 1 else 0.0
            cams: set[str] = set()
            for a, b, owner in raw.pieces(0, 0.0, length):
                ids = self._camera_ids[self._owner_cameras[band][owner]]
                cams.update(ids)
                for j in range(len(cum) - 1):
                    if min(b, cum[j + 1]) > max(a, cum[j]):
                        seg_cams[j].update(ids)
            for j in range(len(cum) - 1):
                seg_cov[k, j] = mer.between(0, cum[j], cum[j + 1])
            all_cams |= cams
            bands[band] = _band_figures(cov, length, speed, len(cams))
            pieces = [
                shapely.ops.substring(line, a / self._unit, b / self._unit)
                for a, b, _ in mer.pieces(0, 0.0, length)
            ]
            covered_geom[band] = (
                self._wgs(shapely.multilinestrings(pieces))
                if pieces
                else (shapely.MultiLineString())
            )
        segments = tuple(
            {
                "index": j,
                "length_m": float(cum[j + 1] - cum[j]),
                "covered_m": {b: float(seg_cov[k, j]) for k, b in enumerate(self.bands)},
                "cameras": sorted(seg_cams[j]),
            }
            for j in range(len(cum) - 1)
        )
        return RouteResult(
            model=self.model,
            parameters=self.parameters,
            length_m=length,
            bands=bands,
            cameras=tuple(sorted(all_cams)),
            walking_speed_m_s=speed,
            segments=segments,
            snapped={},
            least_watched=None,
            tradeoff=(),
            routing_band=self.routing_band,
            geometry=line_wgs84,
            least_watched_geometry=None,
            covered_geometry=covered_geom,
            least_watched_covered={},
            camera_points=tuple(
                (c, *self._camera_xy[c]) for c in sorted(all_cams) if c in self._camera_xy
            ),
        )

    # -- internals ----------------------------------------------------------------------

    def _speed(self, walking_speed_m_s: float | None) -> float:
        if walking_speed_m_s is None:
            return settings.get_float("walking_speed_m_s")
        settings.require("walking_speed_m_s", walking_speed_m_s, "walking_speed_m_s")
        return float(walking_speed_m_s)

    def _camera_lonlat(
        self, cameras: gpd.GeoDataFrame | None, fps: gpd.GeoDataFrame
    ) -> dict[str, tuple[float, float]]:
        if cameras is not None and len(cameras):
            pts = cameras.to_crs("EPSG:4326")
            xy = shapely.get_coordinates(np.asarray(pts.geometry.values))
            ids = pts["camera_id"].astype(str).to_numpy()
        else:
            # Without the cameras table, a footprint's centroid stands for its camera.
            first = fps.drop_duplicates("camera_id")
            cen = shapely.centroid(np.asarray(first.geometry.values))
            lon, lat = self._to_wgs.transform(*shapely.get_coordinates(cen).T)
            xy = np.column_stack([lon, lat])
            ids = first["camera_id"].astype(str).to_numpy()
        keep = set(self._camera_ids)
        return {
            c: (round(float(x), 7), round(float(y), 7))
            for c, (x, y) in zip(ids, xy, strict=True)
            if c in keep
        }

    def _snap(self, point: Point, name: str) -> _Snap:
        lon, lat = (float(point[0]), float(point[1]))
        if not (
            math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
        ):
            raise OptionError(
                f"{name} point ({point[0]!r}, {point[1]!r}) is not a (longitude, latitude) in "
                "degrees. Fix: give e.g. (-73.9857, 40.7484)."
            )
        west, south, east, north = self.bounds
        if not (west - 0.01 <= lon <= east + 0.01 and south - 0.01 <= lat <= north + 0.01):
            raise OptionError(
                f"{name} point (lon {lon:.5f}, lat {lat:.5f}) is outside the street network "
                f"(lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}). Fix: pick a point "
                "inside it, or load a network that covers it."
            )
        x, y = self._to_metric.transform(lon, lat)
        pt = shapely.Point(x, y)
        hit = self._snap_tree.query_nearest(pt, all_matches=False)
        edge = int(self._snap_edges[int(np.asarray(hit).ravel()[0])])
        geom = self._edge_geoms[edge]
        pos = float(shapely.line_locate_point(geom, pt))
        on = shapely.line_interpolate_point(geom, pos)
        dist = float(shapely.distance(pt, on)) * self._unit
        if dist > MAX_SNAP_M:
            raise OptionError(
                f"{name} point (lon {lon:.5f}, lat {lat:.5f}) is {dist:,.0f} m from the nearest "
                f"street of the network's largest connected part (at most {MAX_SNAP_M:g} m). "
                "Fix: pick a point on or near a street of the network."
            )
        pos_m = min(max(pos * self._unit, 0.0), float(self._edge_len[edge]))
        return _Snap(edge, pos_m, dist, (float(on.x), float(on.y)))

    def _cost(self, penalty: float) -> np.ndarray:
        cost: np.ndarray = self._edge_len + penalty * self._edge_covered[self.routing_band]
        return cost

    def _partial_cost(self, edge: int, lo: float, hi: float, penalty: float) -> float:
        covered = self._merged[self.routing_band].between(edge, lo, hi) if penalty else 0.0
        return (hi - lo) + penalty * covered

    def _route_legs(self, snaps: list[_Snap], penalty: float) -> _Path:
        cost = self._cost(penalty)
        matrix = self.network.routing_matrix(cost)
        pieces: list[_Piece] = []
        for a, b in itertools.pairwise(snaps):
            pieces.extend(self._leg(matrix, a, b, penalty))
        length = sum(p.hi - p.lo for p in pieces)
        covered = sum(self._merged[self.routing_band].between(p.edge, p.lo, p.hi) for p in pieces)
        return _Path(tuple(pieces), float(length), float(covered))

    def _leg(self, matrix: sparse.csr_matrix, a: _Snap, b: _Snap, penalty: float) -> list[_Piece]:
        n = self.network.n_nodes
        la, lb = float(self._edge_len[a.edge]), float(self._edge_len[b.edge])
        ua, va = int(self._u[a.edge]), int(self._v[a.edge])
        ub, vb = int(self._u[b.edge]), int(self._v[b.edge])
        to_u = self._partial_cost(a.edge, 0.0, a.pos_m, penalty)
        to_v = self._partial_cost(a.edge, a.pos_m, la, penalty)
        from_u = self._partial_cost(b.edge, 0.0, b.pos_m, penalty)
        from_v = self._partial_cost(b.edge, b.pos_m, lb, penalty)
        # The origin is an extra node n joined to its edge's two ends.
        if ua == va:
            cols, data = [ua], [min(to_u, to_v)]
        else:
            cols, data = sorted([ua, va]), [to_u, to_v] if ua < va else [to_v, to_u]
        indptr = np.concatenate([matrix.indptr, [matrix.indptr[-1] + len(cols)]])
        aug = sparse.csr_matrix(
            (
                np.concatenate([matrix.data, np.maximum(data, 1e-9)]),
                np.concatenate([matrix.indices, cols]),
                indptr,
            ),
            shape=(n + 1, n + 1),
        )
        direct = math.inf
        if a.edge == b.edge:
            lo, hi = sorted((a.pos_m, b.pos_m))
            direct = self._partial_cost(a.edge, lo, hi, penalty)
        ax, ay = a.xy
        bx, by = b.xy
        crow = math.hypot(ax - bx, ay - by) * self._unit
        limit = 1.6 * crow + la + lb + 200.0
        while True:
            dist, pred = csgraph.dijkstra(
                aug, directed=True, indices=n, return_predecessors=True, limit=limit
            )
            best_u = dist[ub] + from_u
            best_v = dist[vb] + from_v
            best = min(best_u, best_v, direct)
            if best <= limit or math.isinf(limit):
                break
            limit = best if math.isfinite(best) else math.inf
        if direct <= min(best_u, best_v):
            lo, hi = sorted((a.pos_m, b.pos_m))
            return [_Piece(a.edge, lo, hi, b.pos_m >= a.pos_m)]
        end_node = ub if best_u <= best_v else vb
        nodes = [end_node]
        while nodes[-1] != n:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()  # n, first node, ..., end_node
        first = nodes[1]
        pieces = [
            _Piece(a.edge, 0.0, a.pos_m, False)
            if first == ua
            else _Piece(a.edge, a.pos_m, la, True)
        ]
        pieces.extend(self._edges_between(nodes[1:]))
        pieces.append(
            _Piece(b.edge, 0.0, b.pos_m, True)
            if end_node == ub
            else _Piece(b.edge, b.pos_m, lb, False)
        )
        return [p for p in pieces if p.hi - p.lo > 1e-9]

    def _edges_between(self, nodes: list[int]) -> list[_Piece]:
        graph = self.network.graph
        out = []
        for x, y in itertools.pairwise(nodes):
            row = graph.indices[graph.indptr[x] : graph.indptr[x + 1]]
            k = graph.indptr[x] + int(np.searchsorted(row, y))
            edge = int(self.network.entry_edge[k])
            out.append(_Piece(edge, 0.0, float(self._edge_len[edge]), int(self._u[edge]) == x))
        return out

    def _least_watched(
        self, snaps: list[_Snap], shortest: _Path, cap: float
    ) -> tuple[_Path, float, list[dict[str, float]]]:
        budget = shortest.length_m * (1.0 + cap) + 1e-6
        found: dict[float, _Path] = {0.0: shortest}
        for penalty in PENALTIES[1:]:
            if shortest.covered_m <= 0:
                break
            found[penalty] = self._route_legs(snaps, penalty)
            # Larger penalties give routes at least as long: past the end of the curve, stop.
            longest = shortest.length_m * (1.0 + MAX_CURVE_DETOUR)
            if found[penalty].covered_m <= 0 or found[penalty].length_m > longest:
                break
        feasible = [p for p, r in found.items() if r.length_m <= budget]
        over = [p for p, r in found.items() if r.length_m > budget]
        lo = max(feasible)
        higher = [p for p in over if p > lo]
        if higher:
            hi = min(higher)
            for _ in range(_REFINE):
                mid = math.sqrt(lo * hi) if lo > 0 else hi / 2.0
                found[mid] = self._route_legs(snaps, mid)
                if found[mid].length_m <= budget:
                    lo = mid
                else:
                    hi = mid
        candidates = [
            (r.covered_m, r.length_m, p) for p, r in found.items() if r.length_m <= budget
        ]
        _, _, best = min(candidates)
        pareto = _pareto(found)
        curve = [
            {
                "penalty": p,
                "length_m": r.length_m,
                "covered_m": r.covered_m,
                "share_covered": r.covered_m / r.length_m if r.length_m > 0 else 0.0,
                "detour": _detour(r.length_m, shortest.length_m),
                "within_cap": r.length_m <= budget,
            }
            for p, r in pareto
        ]
        return found[best], best, curve

    def _figures(self, path: _Path, speed: float) -> dict[str, Any]:
        length = path.length_m
        bands: dict[str, dict[str, float]] = {}
        cams_all: set[str] = set()
        seg_cov: list[dict[str, float]] = [{} for _ in path.pieces]
        seg_cams: list[set[str]] = [set() for _ in path.pieces]
        for band in self.bands:
            covered = 0.0
            cams: set[str] = set()
            for j, p in enumerate(path.pieces):
                c = self._merged[band].between(p.edge, p.lo, p.hi)
                seg_cov[j][band] = c
                covered += c
                for _, _, owner in self._raw[band].pieces(p.edge, p.lo, p.hi):
                    ids = self._camera_ids[self._owner_cameras[band][owner]]
                    cams.update(ids)
                    seg_cams[j].update(ids)
            cams_all |= cams
            bands[band] = _band_figures(min(covered, length), length, speed, len(cams))
        text = self._edge_text
        segments = []
        for j, p in enumerate(path.pieces):
            segments.append(
                {
                    "edge": p.edge,
                    "name": _text(text["name"][p.edge]),
                    "highway": _text(text["highway"][p.edge]),
                    "osm_id": _text(text["osm_id"][p.edge]),
                    "length_m": p.hi - p.lo,
                    "covered_m": seg_cov[j],
                    "cameras": sorted(seg_cams[j]),
                }
            )
        return {
            "length_m": length,
            "bands": bands,
            "cameras": sorted(cams_all),
            "segments": segments,
        }

    def _piece_geom(self, p: _Piece) -> shapely.LineString:
        geom = self._edge_geoms[p.edge]
        if p.lo <= 0 and p.hi >= self._edge_len[p.edge]:
            part = geom
        else:
            part = shapely.ops.substring(geom, p.lo / self._unit, p.hi / self._unit)
        return part if p.forward else shapely.reverse(part)

    def _line_wgs(self, path: _Path) -> shapely.LineString:
        coords = [shapely.get_coordinates(self._piece_geom(p)) for p in path.pieces]
        xy = np.concatenate(coords) if coords else np.zeros((0, 2))
        if len(xy) >= 2:
            keep = np.ones(len(xy), dtype=bool)
            keep[1:] = np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)
            xy = xy[keep]
        if len(xy) < 2:
            xy = np.vstack([xy, xy]) if len(xy) else np.zeros((2, 2))
        return self._wgs(shapely.LineString(xy))

    def _covered_wgs(self, path: _Path) -> dict[str, shapely.Geometry]:
        out: dict[str, shapely.Geometry] = {}
        for band in self.bands:
            parts = []
            for p in path.pieces:
                for a, b, _ in self._merged[band].pieces(p.edge, p.lo, p.hi):
                    parts.append(
                        shapely.ops.substring(
                            self._edge_geoms[p.edge], a / self._unit, b / self._unit
                        )
                    )
            lines = [g for g in parts if g.geom_type == "LineString" and not g.is_empty]
            out[band] = (
                self._wgs(shapely.MultiLineString(lines)) if lines else shapely.MultiLineString()
            )
        return out

    def _wgs(self, geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda xy: np.column_stack(self._to_wgs.transform(*xy.T)))


def _round7(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, 7)


def _band_figures(covered: float, length: float, speed: float, n_cameras: int) -> dict[str, float]:
    return {
        "covered_m": covered,
        "share_covered": covered / length if length > 0 else 0.0,
        "seconds_exposed": covered / speed,
        "n_cameras": n_cameras,
    }


def _detour(length: float, shortest: float) -> float:
    return length / shortest - 1.0 if shortest > 0 else 0.0


def _pareto(found: dict[float, _Path]) -> list[tuple[float, _Path]]:
    """Return the (penalty, route) pairs no other route beats on both length and covered
    length, shortest first (one per distinct route)."""
    items = sorted(found.items(), key=lambda kv: (kv[1].length_m, kv[1].covered_m, kv[0]))
    out: list[tuple[float, _Path]] = []
    best_cov = math.inf
    for p, r in items:
        if r.covered_m < best_cov - 1e-6:
            out.append((p, r))
            best_cov = r.covered_m
    return out


def _point_names(n_via: int) -> list[str]:
    return ["origin", *[f"via_{i + 1}" for i in range(n_via)], "destination"]


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
