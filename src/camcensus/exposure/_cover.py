"""Covered stretches of lines, as intervals of distance along each line.

Intersecting a line with a footprint gives pieces; each piece is kept as an interval
[a, b] of metres along the line. Merging the intervals of one line gives its covered length
exactly (overlapping footprints counted once), and any sub-stretch [lo, hi] of the line (a
route starting mid-edge) is covered by the intervals clipped to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

#: Largest number of vertices of a footprint piece (see :func:`subdivide`).
MAX_VERTICES = 256


@dataclass(frozen=True)
class Intervals:
    """Covered intervals of ``n`` lines: those of line i are ``start[ptr[i]:ptr[i+1]]`` ..
    ``end[...]`` (metres along the line, sorted); ``owner`` is the footprint each interval
    comes from (-1 once merged)."""

    ptr: np.ndarray
    start: np.ndarray
    end: np.ndarray
    owner: np.ndarray

    def total(self) -> np.ndarray:
        """Return the summed interval length per line (covered length, for merged ones)."""
        n = len(self.ptr) - 1
        line = np.repeat(np.arange(n), np.diff(self.ptr))
        return np.bincount(line, weights=self.end - self.start, minlength=n)

    def between(self, line: int, lo: float, hi: float) -> float:
        """Return the length of line ``line``'s intervals inside [lo, hi] (merged ones only)."""
        a, b = self.ptr[line], self.ptr[line + 1]
        if a == b or hi <= lo:
            return 0.0
        s = np.clip(self.start[a:b], lo, hi)
        e = np.clip(self.end[a:b], lo, hi)
        return float(np.sum(e - s))

    def pieces(self, line: int, lo: float, hi: float) -> list[tuple[float, float, int]]:
        """Return (a, b, owner) of line ``line``'s intervals overlapping [lo, hi], clipped."""
        a, b = self.ptr[line], self.ptr[line + 1]
        out = []
        for s, e, o in zip(self.start[a:b], self.end[a:b], self.owner[a:b], strict=True):
            s2, e2 = max(s, lo), min(e, hi)
            if e2 > s2:
                out.append((float(s2), float(e2), int(o)))
        return out


def raw_intervals(lines: np.ndarray, polygons: np.ndarray, unit: float) -> Intervals:
    """Return the intervals of each line inside each polygon (one per piece, not merged).

    ``lines`` and ``polygons`` are shapely arrays in one projected CRS of ``unit`` metres
    per CRS unit; positions are in metres.
    """
    n = len(lines)
    if len(polygons) == 0 or n == 0:
        return _pack(n, np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0, int))
    # Visibility polygons can hold tens of thousands of vertices: cut them into small pieces
    # first, so that each line meets a few small polygons (pieces of one footprint touch
    # without overlapping, and their intervals merge back).
    polygons, piece_owner = subdivide(polygons)
    tree = shapely.STRtree(polygons)
    li, pi = tree.query(lines, predicate="intersects")
    inter = shapely.intersection(lines[li], polygons[pi])
    parts, which = shapely.get_parts(inter, return_index=True)
    is_line = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, which = parts[is_line], which[is_line]
    # A piece is a stretch of its line: its midpoint, located on the line, and its length give
    # the interval (an end point may be ambiguous where a line crosses itself).
    owner_line = lines[li[which]]
    half = shapely.length(parts) / 2.0
    mid = shapely.line_interpolate_point(parts, half)
    centre = shapely.line_locate_point(owner_line, mid)
    total = shapely.length(owner_line)
    lo = np.clip(centre - half, 0.0, total) * unit
    hi = np.clip(centre + half, 0.0, total) * unit
    return _pack(n, li[which], lo, hi, piece_owner[pi[which]])


def subdivide(
    polygons: np.ndarray, max_vertices: int = MAX_VERTICES
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``polygons`` cut in halves along their longer side until each piece has at most
    ``max_vertices`` vertices (as PostGIS's ST_Subdivide), and the input index of each piece."""
    done_g, done_o = [], []
    geoms = np.asarray(polygons)
    owner = np.arange(len(geoms))
    for _ in range(40):
        if len(geoms) == 0:
            break
        small = shapely.get_num_coordinates(geoms) <= max_vertices
        bounds = shapely.bounds(geoms)
        tiny = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) < 1e-3
        keep = small | tiny
        done_g.append(geoms[keep])
        done_o.append(owner[keep])
        geoms, owner, b = geoms[~keep], owner[~keep], bounds[~keep]
        if len(geoms) == 0:
            break
        wide = (b[:, 2] - b[:, 0]) >= (b[:, 3] - b[:, 1])
        mid_x = np.where(wide, (b[:, 0] + b[:, 2]) / 2, b[:, 2])
        mid_y = np.where(wide, b[:, 3], (b[:, 1] + b[:, 3]) / 2)
        first = _clip(geoms, b[:, 0], b[:, 1], mid_x, mid_y)
        lo_x = np.where(wide, mid_x, b[:, 0])
        lo_y = np.where(wide, b[:, 1], mid_y)
        second = _clip(geoms, lo_x, lo_y, b[:, 2], b[:, 3])
        geoms = np.concatenate([first, second])
        owner = np.concatenate([owner, owner])
        ok = ~shapely.is_empty(geoms)
        geoms, owner = geoms[ok], owner[ok]
    if len(geoms):
        done_g.append(geoms)
        done_o.append(owner)
    if not done_g:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    pieces = np.concatenate(done_g)
    # Clipping can leave a piece invalid (a ring touching itself); repair the few that are.
    bad = ~shapely.is_valid(pieces)
    pieces[bad] = shapely.make_valid(pieces[bad])
    return pieces, np.concatenate(done_o).astype(np.int64)


def _clip(
    geoms: np.ndarray, xmin: np.ndarray, ymin: np.ndarray, xmax: np.ndarray, ymax: np.ndarray
) -> np.ndarray:
    """Return each geometry clipped to its rectangle (GEOS's fast rectangle clip)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        out[i] = shapely.clip_by_rect(g, xmin[i], ymin[i], xmax[i], ymax[i])
    return out


def merged(raw: Intervals) -> Intervals:
    """Return ``raw`` with the overlapping intervals of each line merged (owner -1)."""
    n = len(raw.ptr) - 1
    line = np.repeat(np.arange(n), np.diff(raw.ptr))
    if len(line) == 0:
        return raw
    df = pd.DataFrame({"line": line, "a": raw.start, "b": raw.end})
    df = df.sort_values(["line", "a"], kind="stable")
    reach = df.groupby("line", sort=False)["b"].cummax().to_numpy()
    lines_s = df["line"].to_numpy()
    a = df["a"].to_numpy()
    new = np.ones(len(df), dtype=bool)
    new[1:] = (lines_s[1:] != lines_s[:-1]) | (a[1:] > reach[:-1])
    group = np.cumsum(new) - 1
    start = a[new]
    end = np.zeros(int(group[-1]) + 1)
    np.maximum.at(end, group, reach)
    return _pack(n, lines_s[new], start, end, np.full(len(start), -1))


def _pack(
    n: int, line: np.ndarray, start: np.ndarray, end: np.ndarray, owner: np.ndarray
) -> Intervals:
    order = np.lexsort((start, line))
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, line + 1, 1)
    return Intervals(
        np.cumsum(ptr), start[order].astype(float), end[order].astype(float), owner[order]
    )
