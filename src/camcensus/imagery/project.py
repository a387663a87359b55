"""A project's imagery: panoramas from a source, cut to an area, matched to intersections.

:func:`import_project_source` is what ``POST /api/admin/projects`` calls: it imports the
panoramas of a folder or a Panoramax instance, keeps those inside an area polygon when one is
given, reads an intersections list (Amnesty's ``intersections.csv`` or any CSV with an id and
lon/lat) and matches each intersection to its nearest panorama within
:data:`MATCH_RADIUS_M` metres.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus.imagery.store import ImageStore

__all__ = [
    "INTERSECTION_COLUMNS",
    "MATCH_RADIUS_M",
    "import_project_source",
    "intersections_from_csv",
    "match_intersections",
    "panoramas_in_area",
]

#: Columns of the intersections frame (the ``intersections`` table of docs/platform.md).
INTERSECTION_COLUMNS: tuple[str, ...] = (
    "intersection_id",
    "lon",
    "lat",
    "panorama_id",
    "area",
    "traffic_signal",
)
#: Default largest distance (metres) between an intersection and the panorama it is matched to.
#: Street-level panoramas are taken every 5-15 m along a street, so an intersection with
#: imagery has one within about 10 m; 25 m leaves room for GPS error (5-10 m in city canyons)
#: without reaching the next block (NYC blocks are 80 m long and more).
MATCH_RADIUS_M = 25.0
_EARTH_RADIUS_M = 6_371_008.8

# Accepted spellings of each column (Amnesty's intersections.csv first).
_ALIASES: dict[str, tuple[str, ...]] = {
    "intersection_id": ("intersection_id", "IntersectionId", "id"),
    "lon": ("lon", "Long", "lng", "longitude", "Longitude"),
    "lat": ("lat", "Lat", "latitude", "Latitude"),
    "area": ("area", "Borough", "BoroName", "district"),
    "traffic_signal": ("traffic_signal", "TrafficSignal"),
}
_TRUE = {"true", "1", "yes", "y", "trafficlight", "traffic_signals", "traffic light"}
_FALSE = {"false", "0", "no", "n"}


def unit_vectors(lon: Any, lat: Any) -> np.ndarray:
    """Return unit vectors (x, y, z) on the sphere of WGS84 lon/lat degrees."""
    lo = np.radians(np.asarray(lon, dtype=float))
    la = np.radians(np.asarray(lat, dtype=float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def nearest(lon: Any, lat: Any, to_lon: Any, to_lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each point, the index of the nearest ``to`` point and the distance (metres).

    Great-circle distances on a sphere of the Earth's mean radius (a KD-tree on unit vectors:
    the chord is monotone in the arc, so the nearest chord is the nearest arc). With no ``to``
    points every index is -1 and every distance infinite.
    """
    from scipy.spatial import cKDTree

    a = unit_vectors(lon, lat).reshape(-1, 3)
    b = unit_vectors(to_lon, to_lat).reshape(-1, 3)
    if len(b) == 0 or len(a) == 0:
        return np.full(len(a), -1, dtype=np.int64), np.full(len(a), np.inf)
    chord, idx = cKDTree(b).query(a, k=1)
    arc = 2.0 * np.arcsin(np.clip(np.asarray(chord, dtype=float) / 2.0, 0.0, 1.0))
    return np.asarray(idx, dtype=np.int64), arc * _EARTH_RADIUS_M


def _problem(
    path: Path, row: int | None, column: str | None, found: str, exp: str, fix: str
) -> Problem:
    return Problem(str(path), row, column, found, exp, fix)


def intersections_from_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an intersections list: an id, lon and lat per row, optionally area and signal.

    Accepts Amnesty's ``intersections.csv`` (``IntersectionId``, ``Long``, ``Lat``,
    ``Borough``, ``TrafficSignal``) and plain ``intersection_id, lon, lat[, area,
    traffic_signal]``; other columns (such as Amnesty's Google ``PanoramaId``) are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INTERSECTION_COLUMNS`; ``panorama_id`` empty (see
        :func:`match_intersections`), ``traffic_signal`` true, false or ``None`` (unknown;
        Amnesty's empty ``TrafficSignal``).

    Raises
    ------
    InputError
        Every problem together: missing columns, empty or repeated ids, coordinates that are
        not WGS84 degrees, unreadable signal values.
    """
    from camcensus.io._validate import read_text_table

    path = Path(path)
    df = read_text_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    cols: dict[str, str] = {}
    problems: list[Problem] = []
    for name, aliases in _ALIASES.items():
        hit = next((a for a in aliases if a in df.columns), None)
        if hit is not None:
            cols[name] = hit
        elif name in ("intersection_id", "lon", "lat"):
            problems.append(
                _problem(
                    path,
                    None,
                    name,
                    "no such column",
                    f"one of the columns {', '.join(map(repr, aliases))}",
                    f"add a column {name!r} (columns found: {', '.join(map(str, df.columns))})",
                )
            )
    if problems:
        raise InputError(problems)
    ids = df[cols["intersection_id"]].astype(str).str.strip()
    lon = pd.to_numeric(df[cols["lon"]].str.strip(), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df[cols["lat"]].str.strip(), errors="coerce").to_numpy(float)
    first: dict[str, int] = {}
    signals: list[bool | None] = []
    for i in range(len(df)):
        row = i + 1
        iid = ids.iloc[i]
        if not iid or len(iid) > 200:
            problems.append(
                _problem(
                    path,
                    row,
                    cols["intersection_id"],
                    repr(iid[:40]),
                    "a text id of 1 to 200 characters",
                    "give every intersection an id",
                )
            )
        elif iid in first:
            problems.append(
                _problem(
                    path,
                    row,
                    cols["intersection_id"],
                    f"{iid!r} again (first on row {first[iid]})",
                    "each intersection once",
                    "remove the repeated row",
                )
            )
        else:
            first[iid] = row
        for name, values, top in (("lon", lon, 180.0), ("lat", lat, 90.0)):
            if not (math.isfinite(values[i]) and -top <= values[i] <= top):
                problems.append(
                    _problem(
                        path,
                        row,
                        cols[name],
                        repr(df[cols[name]].iloc[i])[:40],
                        f"WGS84 degrees in [-{top:g}, {top:g}]",
                        "store WGS84 longitude/latitude (a projected x/y or swapped lon/lat "
                        "gives this)",
                    )
                )
        sig: bool | None = None
        if "traffic_signal" in cols:
            text = str(df[cols["traffic_signal"]].iloc[i]).strip()
            if text.lower() in _TRUE:
                sig = True
            elif text.lower() in _FALSE:
                sig = False
            elif text not in ("", "NA", "None", "null", "nan"):
                problems.append(
                    _problem(
                        path,
                        row,
                        cols["traffic_signal"],
                        repr(text[:40]),
                        "true/false, 1/0, TrafficLight or an empty cell (unknown)",
                        "write whether a traffic signal stands at the intersection",
                    )
                )
        signals.append(sig)
    if problems:
        raise InputError(problems)
    area: list[str | None] = [None] * len(df)
    if "area" in cols:
        area = [str(v).strip() or None for v in df[cols["area"]]]
    return pd.DataFrame(
        {
            "intersection_id": ids.to_numpy(object),
            "lon": lon,
            "lat": lat,
            "panorama_id": pd.Series([None] * len(df), dtype=object),
            "area": pd.Series(area, dtype=object),
            "traffic_signal": pd.Series(signals, dtype=object),
        },
        columns=list(INTERSECTION_COLUMNS),
    )


def match_intersections(
    intersections: pd.DataFrame,
    panoramas: pd.DataFrame,
    *,
    radius_m: float = MATCH_RADIUS_M,
    ledger: Ledger | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match each intersection to its nearest panorama within ``radius_m`` metres.

    Returns
    -------
    tuple
        ``(panoramas, intersections)`` copies: each intersection's ``panorama_id`` is its
        nearest panorama's, or ``None`` when none lies within ``radius_m`` (kept and counted
        in ``ledger`` as flagged); each matched panorama's ``intersection_id`` is its nearest
        matched intersection's.
    """
    if not (isinstance(radius_m, int | float) and 0 < radius_m <= 1000):
        raise OptionError(f"radius_m={radius_m!r} must be in (0, 1000] metres, e.g. 25")
    inter = intersections.copy().reset_index(drop=True)
    pano = panoramas.copy().reset_index(drop=True)
    idx, dist = nearest(inter["lon"], inter["lat"], pano["lon"], pano["lat"])
    ok = dist <= radius_m
    inter["panorama_id"] = pd.Series(
        [str(pano["panorama_id"].iloc[j]) if k else None for j, k in zip(idx, ok, strict=True)],
        dtype=object,
    )
    if ledger is not None:
        ledger.flag(
            "match intersections",
            f"intersections with no panorama within {radius_m:g} m",
            int((~ok).sum()),
            kept_as="with an empty panorama_id",
        )
    best: dict[int, tuple[float, str]] = {}
    for j, d, k, iid in zip(idx, dist, ok, inter["intersection_id"], strict=True):
        if k and (int(j) not in best or d < best[int(j)][0]):
            best[int(j)] = (float(d), str(iid))
    ids = list(pano["intersection_id"])
    for j, (_, iid) in best.items():
        ids[j] = iid
    pano["intersection_id"] = pd.Series(ids, dtype=object)
    return pano, inter


def _area_shape(area_geojson: Mapping[str, Any] | str) -> Any:
    """Return the (multi)polygon of a GeoJSON geometry, Feature or FeatureCollection."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    def bad(found: str) -> OptionError:
        return OptionError(
            f"area_geojson {found}; expected a GeoJSON Polygon or MultiPolygon in WGS84 lon/lat "
            "(a geometry, a Feature or a FeatureCollection of them), e.g. {'type': 'Polygon', "
            "'coordinates': [[[2.18, 48.98], [2.19, 48.98], [2.19, 48.99], [2.18, 48.98]]]}"
        )

    doc: Any = area_geojson
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as err:
            raise bad(f"is not JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(doc, Mapping):
        raise bad(f"is a {type(doc).__name__}")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in doc.get("features") or [] if isinstance(f, Mapping)]
    elif kind == "Feature":
        geoms = [doc.get("geometry")]
    else:
        geoms = [doc]
    shapes = []
    for g in geoms:
        if not isinstance(g, Mapping) or g.get("type") not in ("Polygon", "MultiPolygon"):
            raise bad(f"holds a {g.get('type') if isinstance(g, Mapping) else g!r} geometry")
        try:
            s = shape(g)
        except (ValueError, TypeError, AttributeError, IndexError) as err:
            raise bad(f"has coordinates shapely cannot read ({err})") from None
        shapes.append(s)
    if not shapes:
        raise bad("holds no polygon")
    area = unary_union(shapes)
    w, s_, e, n = area.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s_ <= n <= 90) or area.area == 0:
        raise bad(f"has bounds {area.bounds} (empty, or not WGS84 degrees)")
    if not area.is_valid:
        area = area.buffer(0)
    return area


def panoramas_in_area(
    panoramas: pd.DataFrame,
    area_geojson: Mapping[str, Any] | str,
    *,
    ledger: Ledger | None = None,
    stage: str = "area",
) -> pd.DataFrame:
    """Return the rows of ``panoramas`` (or any frame with lon/lat) inside the area polygon.

    Points on the boundary count as inside. Rows outside are counted in ``ledger``.
    """
    import shapely

    area = _area_shape(area_geojson)
    pts = shapely.points(panoramas["lon"].to_numpy(float), panoramas["lat"].to_numpy(float))
    inside = np.asarray(shapely.covers(area, pts), dtype=bool)
    if ledger is not None:
        ledger.exclude(stage, "outside the area polygon", int((~inside).sum()))
    return panoramas.loc[inside].reset_index(drop=True)


def area_bbox(area_geojson: Mapping[str, Any] | str) -> tuple[float, float, float, float]:
    """Return ``(west, south, east, north)`` of an area polygon."""
    w, s, e, n = _area_shape(area_geojson).bounds
    return float(w), float(s), float(e), float(n)


def import_project_source(
    *,
    source: str,
    media_root: str | os.PathLike[str],
    folder: str | os.PathLike[str] | None = None,
    panoramax_url: str | None = None,
    bbox: Sequence[float] | None = None,
    intersections_csv: str | os.PathLike[str] | None = None,
    area_geojson: Mapping[str, Any] | str | None = None,
    store: ImageStore | None = None,
    radius_m: float = MATCH_RADIUS_M,
    licence: str | None = None,
    ledger: Ledger | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Import a project's panoramas and intersections (what ``POST /api/admin/projects`` does).

    Parameters
    ----------
    source
        ``"folder"`` (:func:`~camcensus.imagery.folder.panoramas_from_folder`) or
        ``"panoramax"`` (:func:`~camcensus.imagery.panoramax.panoramas_from_panoramax`).
    media_root
        The store's root; the images are pinned there (``image_uri`` relative to it).
    folder
        The folder of a ``folder`` source.
    panoramax_url, bbox
        The Panoramax instance (e.g. ``https://api.panoramax.xyz``) and the
        ``[west, south, east, north]`` box to import. Without ``bbox`` the pictures are found
        along the intersections list (or in the area polygon's bounds).
    intersections_csv
        An intersections list (:func:`intersections_from_csv`); each is matched to its
        nearest panorama within ``radius_m`` metres (:func:`match_intersections`), and only
        the matched panoramas are kept (the others are counted in ``ledger``).
    area_geojson
        A polygon (GeoJSON, WGS84): only panoramas (and intersections) inside it are kept.
    store
        The image store (default ``ImageStore(media_root)``; pass the app's to share its
        blur setting and locks).
    radius_m
        Largest intersection-to-panorama distance of a match (default :data:`MATCH_RADIUS_M`).
    licence
        Licence of folder images whose index row leaves it empty.
    ledger
        Collects every record left out and why.

    Returns
    -------
    tuple
        The panoramas (:data:`~camcensus.imagery.base.PANORAMA_COLUMNS`) and the
        intersections (:data:`INTERSECTION_COLUMNS`, or ``None`` without an intersections
        list).

    Raises
    ------
    OptionError
        For an unknown source or a missing folder, URL, bbox or bad area polygon.
    InputError
        For problems in the folder's index or images or in the intersections CSV.
    SourceError
        When the Panoramax instance cannot be used (unreachable, failing, not its format).
    """
    from camcensus.imagery.base import check_bbox

    ledger = ledger if ledger is not None else Ledger()
    store = store if store is not None else ImageStore(media_root)
    box = check_bbox(bbox)
    intersections = (
        intersections_from_csv(intersections_csv) if intersections_csv is not None else None
    )
    if area_geojson is not None:
        _area_shape(area_geojson)  # refuse a bad polygon before any import
        if intersections is not None:
            intersections = panoramas_in_area(
                intersections, area_geojson, ledger=ledger, stage="area (intersections)"
            )
    if source == "folder":
        if folder is None:
            raise OptionError("source='folder' needs folder=<the folder of panoramas>")
        from camcensus.imagery.folder import panoramas_from_folder

        panoramas = panoramas_from_folder(folder, store=store, licence=licence, ledger=ledger)
    elif source == "panoramax":
        if not panoramax_url:
            raise OptionError(
                "source='panoramax' needs panoramax_url=<the instance>, e.g. "
                "'https://api.panoramax.xyz'"
            )
        from camcensus.imagery.panoramax import panoramas_from_panoramax

        if box is None and intersections is None and area_geojson is not None:
            box = area_bbox(area_geojson)
        if box is None and intersections is None:
            raise OptionError(
                "source='panoramax' needs bbox=[west, south, east, north], an intersections "
                "list or an area polygon to know where to look"
            )
        panoramas = panoramas_from_panoramax(
            panoramax_url,
            store=store,
            bbox=box,
            intersections=intersections if box is None else None,
            radius_m=radius_m,
            ledger=ledger,
        )
    else:
        raise OptionError(
            f"source={source!r} cannot create a project here; use 'folder' or 'panoramax'"
        )
    if area_geojson is not None:
        panoramas = panoramas_in_area(panoramas, area_geojson, ledger=ledger)
    if panoramas.empty:
        left = "; ".join(f"{e.count} {e.reason}" for e in ledger.exclusions) or "none found"
        where = str(folder) if source == "folder" else str(panoramax_url)
        raise InputError(
            [
                Problem(
                    where,
                    None,
                    None,
                    f"no usable panorama (left out: {left})",
                    "at least one full 360° equirectangular panorama",
                    "widen the bbox or area, or check the source holds 360° pictures",
                )
            ]
        )
    if intersections is not None:
        panoramas, intersections = match_intersections(
            intersections, panoramas, radius_m=radius_m, ledger=ledger
        )
        # With a list, the tasks are its intersections: a panorama matched to none would be
        # tagged for nothing and would add an intersection the list does not have.
        unmatched = panoramas["intersection_id"].isna()
        ledger.exclude(
            "match intersections",
            "panoramas that are no listed intersection's nearest within "
            f"{radius_m:g} m (not made tasks)",
            int(unmatched.sum()),
        )
        panoramas = panoramas[~unmatched].reset_index(drop=True)
    return panoramas, intersections
