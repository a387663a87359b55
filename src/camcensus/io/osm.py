"""Minimal OpenStreetMap readers: streets, buildings and surveillance nodes from a local file.

Reads OSM XML (``.osm``) and PBF (``.osm.pbf``) through GDAL's OSM driver (pyogrio), with its
default layer layout: ``lines`` for ways, ``multipolygons`` for areas, ``points`` for tagged
nodes; tags without a column of their own sit in ``other_tags`` (hstore text), parsed here.
Everything is returned in EPSG:4326. A later issue extends :func:`read_osm_cameras` to every
OSM camera tag; these readers take what the exposure and coverage work needs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from camcensus._errors import InputError, Ledger, Problem

__all__ = [
    "LEVEL_HEIGHT_M",
    "NOT_WALKABLE",
    "compass_degrees",
    "parse_direction",
    "parse_height_m",
    "parse_other_tags",
    "read_osm_buildings",
    "read_osm_cameras",
    "read_osm_streets",
]

#: Height of one storey (m) when a building has ``building:levels`` but no ``height``: the
#: 3 m per level that OSM's Simple 3D Buildings schema and osmbuildings use.
LEVEL_HEIGHT_M = 3.0
#: ``highway`` values nobody walks along (motorways, unbuilt roads); dropped by
#: ``read_osm_streets(walk=True)``, counted in the ledger.
NOT_WALKABLE = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "construction",
    "proposed",
    "abandoned",
    "raceway",
    "bus_guideway",
    "busway",
    "platform",
    "elevator",
)
_NOT_A_WAY = ("construction", "proposed", "abandoned", "razed", "platform")
_COMPASS = [
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
]  # 22.5° apart, clockwise from north
_TAG = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(m|ft|'|)\s*$")
_STREET_MOUNTS = ("pole", "street_lamp", "street_light", "traffic_signals", "traffic_light")
_BUILDING_MOUNTS = ("wall", "building", "ceiling", "roof", "facade")
_CAMERA_TYPES = {"dome": "dome", "fixed": "fixed", "panning": "panning", "bullet": "bullet"}


def parse_other_tags(text: object) -> dict[str, str]:
    """Return the tags of GDAL's ``other_tags`` hstore text (``"k"=>"v","k2"=>"v2"``)."""
    if not isinstance(text, str) or not text:
        return {}
    return {
        k.replace('\\"', '"').replace("\\\\", "\\"): v.replace('\\"', '"').replace("\\\\", "\\")
        for k, v in _TAG.findall(text)
    }


def parse_height_m(value: object) -> float:
    """Return a height tag in metres (``12``, ``12 m``, ``40 ft``, ``40'``), NaN if unreadable."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    match = _NUMBER.match(str(value).replace(",", "."))
    if not match:
        return math.nan
    number = float(match.group(1))
    unit = match.group(2)
    return number * 0.3048 if unit in ("ft", "'") else number


def compass_degrees(value: str) -> float:
    """Return the bearing of a compass point (``N``, ``NNE`` ... ``NNW``), NaN if it is none."""
    key = value.strip().upper()
    return _COMPASS.index(key) * 22.5 if key in _COMPASS else math.nan


def parse_direction(value: object) -> list[tuple[float, float]]:
    """Return the (centre, width) of each direction in a ``camera:direction`` value.

    Degrees (``135``), compass points (``SE``) and ranges (``90-180``: centre 135, width 90,
    clockwise from the first) are read; several directions are ``;``-separated. Width is NaN
    when the tag gives none. An empty list means nothing was readable.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    out = []
    for part in str(value).split(";"):
        part = part.strip()
        if not part:
            continue
        bounds = re.fullmatch(r"\s*([^-]+?)\s*-\s*([^-]+?)\s*", part)
        if bounds:
            a, b = (_one_direction(x) for x in bounds.groups())
            if math.isnan(a) or math.isnan(b):
                return []
            width = (b - a) % 360.0
            out.append(((a + width / 2.0) % 360.0, width))
            continue
        centre = _one_direction(part)
        if math.isnan(centre):
            return []
        out.append((centre, math.nan))
    return out


def _one_direction(text: str) -> float:
    try:
        return float(text) % 360.0
    except ValueError:
        return compass_degrees(text)


def _read_layer(
    path: str | Path, layer: str, where: str, ledger: Ledger | None, stage: str
) -> gpd.GeoDataFrame:
    """Read one layer of the OSM driver; features without a buildable geometry (ways cut at
    an extract's edge) are left out and counted."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "no such file",
                    "an OSM XML or PBF file",
                    "check the path",
                )
            ]
        )
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, where=where, on_invalid="ignore")
    except Exception as exc:  # GDAL raises its own error types for unreadable files
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a file GDAL's OSM driver cannot read ({exc})",
                    "OpenStreetMap XML (.osm) or PBF (.osm.pbf)",
                    "export the area again, e.g. with osmium extract or the OSM website's Export",
                )
            ]
        ) from exc
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    empty = (gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()
    if ledger is not None:
        ledger.exclude(
            stage,
            "features without a buildable geometry (cut at the extract's edge)",
            int(empty.sum()),
        )
    return gdf.loc[~empty].reset_index(drop=True)


def read_osm_streets(
    path: str | Path, *, walk: bool = True, ledger: Ledger | None = None
) -> gpd.GeoDataFrame:
    """Read the street and path centre lines of an OSM file.

    Parameters
    ----------
    path
        OSM XML or PBF.
    walk
        Keep only what people walk along: drop :data:`NOT_WALKABLE` highways, ``foot=no`` and
        ``access=private|no`` without a ``foot`` permission (each counted in ``ledger``).
        ``walk=False`` keeps every highway way except unbuilt ones.
    ledger
        Receives the count of ways left out, per reason.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per way, RangeIndex: ``osm_id`` (str), ``highway``, ``name``; LineString
        geometry in EPSG:4326. Ways are not split at intersections (see
        :func:`camcensus.exposure.network_from_lines`).
    """
    gdf = _read_layer(path, "lines", "highway IS NOT NULL", ledger, "read OSM streets")
    tags = [parse_other_tags(t) for t in gdf["other_tags"]] if len(gdf) else []
    highway = gdf["highway"].astype(str).to_numpy()
    drop = np.isin(highway, _NOT_A_WAY)
    reasons = {"unbuilt or disused highway (construction, proposed, abandoned)": drop.copy()}
    if walk:
        motor = np.isin(highway, NOT_WALKABLE) & ~drop
        foot = np.array([t.get("foot", "") for t in tags], dtype=object)
        access = np.array([t.get("access", "") for t in tags], dtype=object)
        no_foot = (foot == "no") | (
            np.isin(access, ["private", "no"]) & ~np.isin(foot, ["yes", "designated", "permissive"])
        )
        no_foot &= ~drop & ~motor
        reasons["highway nobody walks along (motorway, trunk, bus way...)"] = motor
        reasons["foot=no or private access"] = no_foot
        drop = drop | motor | no_foot
    if ledger is not None:
        for reason, mask in reasons.items():
            ledger.exclude("read OSM streets", reason, int(mask.sum()))
    keep = ~drop
    out = gpd.GeoDataFrame(
        {
            "osm_id": gdf["osm_id"].astype(str).to_numpy()[keep],
            "highway": highway[keep],
            "name": gdf["name"].to_numpy()[keep],
        },
        geometry=np.asarray(gdf.geometry.values)[keep],
        crs=gdf.crs,
    )
    return out.reset_index(drop=True)


def read_osm_buildings(path: str | Path, *, ledger: Ledger | None = None) -> gpd.GeoDataFrame:
    """Read the building footprints of an OSM file.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building (way or multipolygon relation), RangeIndex: ``osm_id`` (str,
        ``way/N`` or ``relation/N``), ``building`` (the tag's value), ``height_m`` (the
        ``height`` tag in metres, else ``building:levels`` × :data:`LEVEL_HEIGHT_M`, else NaN),
        ``height_source`` (``height`` | ``levels`` | ``none``); (Multi)Polygon geometry in
        EPSG:4326. Buildings whose height tag cannot be read keep NaN and are counted in
        ``ledger`` as flagged.
    """
    gdf = _read_layer(path, "multipolygons", "building IS NOT NULL", ledger, "read OSM buildings")
    tags = [parse_other_tags(t) for t in gdf["other_tags"]] if len(gdf) else []
    height = np.array([parse_height_m(t.get("height")) for t in tags], dtype="float64")
    levels = np.array([parse_height_m(t.get("building:levels")) for t in tags], dtype="float64")
    source = np.where(np.isfinite(height), "height", "none").astype(object)
    from_levels = ~np.isfinite(height) & np.isfinite(levels)
    height[from_levels] = levels[from_levels] * LEVEL_HEIGHT_M
    source[from_levels] = "levels"
    unreadable = sum(
        1
        for t, h in zip(tags, height, strict=True)
        if not math.isfinite(h) and ("height" in t or "building:levels" in t)
    )
    if ledger is not None:
        ledger.flag(
            "read OSM buildings",
            "buildings whose height or building:levels tag is unreadable",
            unreadable,
            kept_as="without a height",
        )
    way = gdf["osm_way_id"].to_numpy() if "osm_way_id" in gdf.columns else np.full(len(gdf), None)
    rel = gdf["osm_id"].to_numpy()
    ids = [
        f"way/{w}" if isinstance(w, str) and w else f"relation/{r}"
        for w, r in zip(way, rel, strict=True)
    ]
    geoms = np.asarray(gdf.geometry.values)
    single = shapely.get_num_geometries(geoms) == 1
    geoms[single] = shapely.get_geometry(geoms[single], 0)
    return gpd.GeoDataFrame(
        {
            "osm_id": ids,
            "building": gdf["building"].astype(str).to_numpy(),
            "height_m": height,
            "height_source": source,
        },
        geometry=geoms,
        crs=gdf.crs,
    )


def read_osm_cameras(path: str | Path, *, ledger: Ledger | None = None) -> gpd.GeoDataFrame:
    """Read ``man_made=surveillance`` nodes of an OSM file as the ``cameras`` table.

    ``camera:direction`` (else ``direction``) gives ``direction_deg``: degrees, compass points
    or ranges (a range also gives ``hfov_deg``). A node with several ``;``-separated directions
    becomes one row per direction (``camera_id`` ``node/N#1``, ``node/N#2``...), so a
    field-of-view model sees each. A direction that cannot be read keeps ``direction_deg``
    NaN (all-round), its raw text in ``direction_raw``, and is counted in ``ledger``.
    ``camera:mount`` pole/street_lamp/traffic_signals → ``mount`` ``street``,
    wall/building/ceiling → ``building``; ``camera:type`` → ``camera_type``;
    ``surveillance:type`` → ``surveillance_type``; ``height`` → ``height_m``.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`camcensus.cameras.CAMERA_COLUMNS` plus ``direction_raw``, ``surveillance``
        (public/outdoor/indoor as tagged); points in EPSG:4326; ``source`` ``osm``,
        ``tier`` ``community-mapped``, ``licence`` ODbL.
    """
    from camcensus.cameras import CAMERA_COLUMNS

    gdf = _read_layer(path, "points", "man_made = 'surveillance'", ledger, "read OSM cameras")
    rows: list[dict[str, object]] = []
    geoms = []
    unreadable = 0
    for osm_id, other, geom in zip(
        gdf["osm_id"].astype(str), gdf["other_tags"], gdf.geometry.values, strict=True
    ):
        tags = parse_other_tags(other)
        raw = tags.get("camera:direction", tags.get("direction"))
        directions = parse_direction(raw)
        if raw is not None and not directions:
            unreadable += 1
        mount_tag = tags.get("camera:mount", "").lower()
        mount = (
            "street"
            if mount_tag in _STREET_MOUNTS
            else "building"
            if mount_tag in _BUILDING_MOUNTS
            else "unknown"
        )
        base = {
            "position_sd_m": np.nan,
            "mount": mount,
            "camera_type": _CAMERA_TYPES.get(tags.get("camera:type", "").lower(), "unknown"),
            "surveillance_type": tags.get("surveillance:type", "camera"),
            "height_m": parse_height_m(tags.get("height")),
            "operator": tags.get("operator"),
            "source": "osm",
            "source_ref": f"node/{osm_id}",
            "tier": "community-mapped",
            "support": None,
            "first_seen": None,
            "last_seen": None,
            "licence": "ODbL 1.0 (© OpenStreetMap contributors)",
            "direction_raw": raw,
            "surveillance": tags.get("surveillance"),
        }
        for k, (centre, width) in enumerate(directions or [(math.nan, math.nan)]):
            suffix = f"#{k + 1}" if len(directions) > 1 else ""
            rows.append(
                {
                    **base,
                    "camera_id": f"node/{osm_id}{suffix}",
                    "direction_deg": centre,
                    "hfov_deg": width if math.isfinite(width) and width > 0 else math.nan,
                }
            )
            geoms.append(geom)
    if ledger is not None:
        ledger.flag(
            "read OSM cameras",
            "surveillance nodes whose camera:direction cannot be read",
            unreadable,
            kept_as="as all-round, raw text in direction_raw",
        )
    columns = [*CAMERA_COLUMNS, "direction_raw", "surveillance"]
    df = pd.DataFrame(rows, columns=columns)
    for col in ("direction_deg", "hfov_deg", "height_m", "position_sd_m"):
        df[col] = df[col].astype("float64")
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")
