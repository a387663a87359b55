"""OpenStreetMap readers: streets, buildings and the surveillance inventory from a local file.

Streets and buildings are read from OSM XML (``.osm``) and PBF (``.osm.pbf``) through GDAL's
OSM driver (pyogrio), with its default layer layout: ``lines`` for ways, ``multipolygons`` for
areas, ``points`` for tagged nodes; tags without a column of their own sit in ``other_tags``
(hstore text), parsed here. Cameras (:func:`read_osm_cameras`) are read from Overpass JSON,
OSM XML, osmChange and PBF with every surveillance tag mapped to the ``cameras`` table and
every original tag kept (``osm_tags``), so an import, export and import again is lossless.
Everything is returned in EPSG:4326. The direction grammar is :mod:`camcensus.io.directions`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus.io.directions import Direction, compass_degrees, parse_direction

__all__ = [
    "LEVEL_HEIGHT_M",
    "NOT_WALKABLE",
    "OSM_COLUMNS",
    "OSM_FORMATS",
    "OSM_LICENCE",
    "SURVEILLANCE_TYPES",
    "cameras_from_osm_elements",
    "compass_degrees",
    "osm_format",
    "osm_tags_from_text",
    "osm_tags_text",
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


# --- surveillance cameras --------------------------------------------------------------------

#: Licence of every camera read from OpenStreetMap.
OSM_LICENCE = "ODbL 1.0 (© OpenStreetMap contributors)"
#: Columns :func:`read_osm_cameras` adds to :data:`camcensus.cameras.CAMERA_COLUMNS`.
OSM_COLUMNS = (
    "direction_raw",
    "surveillance",
    "surveillance_zone",
    "camera_mount",
    "manufacturer",
    "osm_id",
    "osm_version",
    "osm_tags",
)
#: ``surveillance:type`` values and how they are written in ``surveillance_type``.
SURVEILLANCE_TYPES = {
    "camera": "camera",
    "alpr": "ALPR",
    "guard": "guard",
    "gunshot_detector": "gunshot_detector",
}
#: ``--source-format`` values read by :func:`read_osm_cameras`.
OSM_FORMATS = ("overpass", "osm", "osc", "pbf")
_DIRECTION_KEYS = ("camera:direction", "direction")
_GDAL_TAG_COLUMNS = ("name", "barrier", "highway", "ref", "address", "is_in", "place", "man_made")
_UNREADABLE = "surveillance nodes whose camera:direction cannot be read"


def osm_tags_text(tags: dict[str, str]) -> str:
    """Return an element's tags as the canonical ``osm_tags`` text (JSON, keys sorted)."""
    return json.dumps(dict(sorted(tags.items())), ensure_ascii=False, separators=(",", ":"))


def osm_tags_from_text(text: object) -> dict[str, str]:
    """Return the tags held in an ``osm_tags`` cell (empty when the cell is missing)."""
    if not isinstance(text, str) or not text:
        return {}
    tags = json.loads(text)
    if not isinstance(tags, dict):
        raise ValueError(f"osm_tags must hold a JSON object, found {text[:60]!r}")
    return {str(k): str(v) for k, v in tags.items()}


def _missing(path: Path) -> InputError:
    return InputError(
        [
            Problem(
                str(path),
                None,
                None,
                "no such file",
                "an Overpass JSON, OSM XML, osmChange or PBF file",
                "check the path",
            )
        ]
    )


def osm_format(path: str | Path) -> str:
    """Return which OSM format a file is in (one of :data:`OSM_FORMATS`), from its name and,
    for ``.json``/``.xml``, its first bytes."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".pbf"):
        return "pbf"
    if name.endswith(".osc"):
        return "osc"
    if name.endswith(".osm"):
        return "osm"
    if not path.exists():
        raise _missing(path)
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return "overpass"
    if b"<osmChange" in head:
        return "osc"
    if b"<osm" in head:
        return "osm"
    raise InputError(
        [
            Problem(
                str(path),
                None,
                None,
                "a file that is neither Overpass JSON nor OSM XML",
                "an Overpass JSON response (or its elements list), OSM XML, osmChange or PBF",
                "pass source_format (--source-format) if the name hides the format",
            )
        ]
    )


def _elements_from_overpass(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            [Problem(str(path), None, None, f"invalid JSON ({exc})", "Overpass JSON", _REFETCH)]
        ) from exc
    elements = data.get("elements") if isinstance(data, dict) else data
    if not isinstance(elements, list):
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "JSON without an 'elements' list",
                    "an Overpass response ({'elements': [...]}) or its elements list",
                    _REFETCH,
                )
            ]
        )
    is_osm = [
        isinstance(e, dict) and e.get("type") in ("node", "way", "relation") for e in elements
    ]
    osm_like = [e for e, ok in zip(elements, is_osm, strict=True) if ok]
    if len(osm_like) < len(elements):
        bad = is_osm.index(False)
        raise InputError(
            [
                Problem(
                    str(path),
                    bad + 1,
                    "type",
                    f"{len(elements) - len(osm_like):,} of {len(elements):,} elements that are "
                    "not OSM nodes, ways or relations (first: element "
                    f"{bad + 1})",
                    "Overpass elements, each with type node, way or relation",
                    "check the file is an Overpass response; for a city's camera list pass "
                    "--source-format with its format (camcensus.io.citylists)",
                )
            ]
        )
    out = []
    for e in osm_like:
        lat, lon = e.get("lat"), e.get("lon")
        if lat is None:
            centre = e.get("center")
            bounds = e.get("bounds")
            geometry = e.get("geometry")
            if isinstance(centre, dict):
                lat, lon = centre.get("lat"), centre.get("lon")
            elif isinstance(bounds, dict):
                lat = (bounds["minlat"] + bounds["maxlat"]) / 2.0
                lon = (bounds["minlon"] + bounds["maxlon"]) / 2.0
            elif isinstance(geometry, list) and geometry:
                lats = [g["lat"] for g in geometry if isinstance(g, dict) and "lat" in g]
                lons = [g["lon"] for g in geometry if isinstance(g, dict) and "lon" in g]
                if lats:
                    lat = (min(lats) + max(lats)) / 2.0
                    lon = (min(lons) + max(lons)) / 2.0
        out.append(
            {
                "type": str(e.get("type", "node")),
                "id": int(e.get("id", 0)),
                "lat": lat,
                "lon": lon,
                "version": e.get("version"),
                "tags": {str(k): str(v) for k, v in (e.get("tags") or {}).items()},
            }
        )
    return out


_REFETCH = "download the area again (camcensus fetch osm, or Overpass with 'out center')"


def _elements_from_xml(path: Path, ledger: Ledger | None) -> list[dict[str, Any]]:
    """Read the nodes, ways and relations of OSM XML or osmChange (create and modify blocks;
    deletions are counted and left out). A way's position is the centre of its nodes' bounding
    box, as Overpass' ``out center`` gives it."""
    coords: dict[int, tuple[float, float]] = {}
    out: list[dict[str, Any]] = []
    deleted = 0
    block = ""
    try:
        for event, el in ElementTree.iterparse(path, events=("start", "end")):
            if event == "start":
                if el.tag in ("create", "modify", "delete"):
                    block = el.tag
                continue
            if el.tag in ("create", "modify", "delete"):
                block = ""
                el.clear()
                continue
            if el.tag not in ("node", "way", "relation"):
                continue
            tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
            eid = int(el.get("id", "0"))
            version = el.get("version")
            lat: float | None = None
            lon: float | None = None
            if el.tag == "node" and el.get("lat") is not None:
                lat, lon = float(el.get("lat", "nan")), float(el.get("lon", "nan"))
                coords[eid] = (lat, lon)
            elif el.tag == "way":
                # Nodes of a way cut at the extract's edge are missing: use those present.
                got = [coords.get(int(n.get("ref", "0"))) for n in el.iter("nd")]
                pts = [p for p in got if p is not None]
                if pts:
                    lats, lons = [p[0] for p in pts], [p[1] for p in pts]
                    lat, lon = (min(lats) + max(lats)) / 2.0, (min(lons) + max(lons)) / 2.0
            if block == "delete":
                deleted += tags.get("man_made") == "surveillance" or el.tag == "node"
            elif tags:
                out.append(
                    {
                        "type": el.tag,
                        "id": eid,
                        "lat": lat,
                        "lon": lon,
                        "version": int(version) if version else None,
                        "tags": tags,
                    }
                )
            el.clear()
    except ElementTree.ParseError as exc:
        raise InputError(
            [Problem(str(path), None, None, f"invalid XML ({exc})", "OSM XML", _REFETCH)]
        ) from exc
    if ledger is not None:
        ledger.exclude("read OSM cameras", "elements deleted by the osmChange", deleted)
    return out


def _elements_from_pbf(path: Path, ledger: Ledger | None) -> list[dict[str, Any]]:
    """Read surveillance elements of a PBF through GDAL's OSM driver (all tags: its columns
    plus ``other_tags``); a way's position is the centre of its bounding box."""
    out: list[dict[str, Any]] = []
    where = "man_made = 'surveillance'"
    for layer, kind in (("points", "node"), ("lines", "way"), ("multipolygons", "area")):
        gdf = _read_layer(path, layer, where, ledger, "read OSM cameras")
        if not len(gdf):
            continue
        cols = [c for c in _GDAL_TAG_COLUMNS if c in gdf.columns]
        bounds = shapely.bounds(np.asarray(gdf.geometry.values))
        way_ids = gdf["osm_way_id"] if "osm_way_id" in gdf.columns else None
        for i in range(len(gdf)):
            tags = {c: str(gdf[c].iat[i]) for c in cols if isinstance(gdf[c].iat[i], str)}
            tags.update(parse_other_tags(gdf["other_tags"].iat[i]))
            if kind == "area":
                way = way_ids.iat[i] if way_ids is not None else None
                etype, eid = ("way", way) if isinstance(way, str) and way else ("relation", None)
                eid = eid or gdf["osm_id"].iat[i]
            else:
                etype, eid = kind, gdf["osm_id"].iat[i]
            minx, miny, maxx, maxy = bounds[i]
            out.append(
                {
                    "type": etype,
                    "id": int(eid),
                    "lat": (miny + maxy) / 2.0,
                    "lon": (minx + maxx) / 2.0,
                    "version": None,
                    "tags": tags,
                }
            )
    return out


def read_osm_cameras(
    path: str | Path, *, source_format: str = "auto", ledger: Ledger | None = None
) -> gpd.GeoDataFrame:
    """Read the ``man_made=surveillance`` elements of an OpenStreetMap file as ``cameras``.

    Parameters
    ----------
    path
        Overpass JSON (the response, or its bare ``elements`` list; nodes, and ways or
        relations with ``center``, ``bounds`` or ``geometry``), OSM XML (``.osm``), osmChange
        (``.osc``: created and modified elements) or PBF (``.osm.pbf``).
    source_format
        ``auto`` (from the name and first bytes) or one of :data:`OSM_FORMATS`.
    ledger
        Receives the counts of elements left out (no position, not surveillance, deleted) and
        of directions kept raw.

    Returns
    -------
    geopandas.GeoDataFrame
        See :func:`cameras_from_osm_elements`.
    """
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    fmt = osm_format(path) if source_format == "auto" else source_format
    if fmt == "overpass":
        elements = _elements_from_overpass(path)
    elif fmt in ("osm", "osc"):
        elements = _elements_from_xml(path, ledger)
    elif fmt == "pbf":
        elements = _elements_from_pbf(path, ledger)
    else:
        raise OptionError(
            f"source_format {source_format!r} is not an OSM format; use auto or one of "
            f"{', '.join(OSM_FORMATS)}"
        )
    return cameras_from_osm_elements(elements, file=str(path), ledger=ledger)


def _mount(tag: str) -> str:
    tag = tag.lower()
    if tag in _STREET_MOUNTS:
        return "street"
    return "building" if tag in _BUILDING_MOUNTS else "unknown"


def cameras_from_osm_elements(
    elements: list[dict[str, Any]], *, file: str = "", ledger: Ledger | None = None
) -> gpd.GeoDataFrame:
    """Turn OSM elements (``type``, ``id``, ``lat``, ``lon``, ``version``, ``tags``) into the
    ``cameras`` table.

    Only ``man_made=surveillance`` elements are kept (other tagged elements are counted);
    one without a position (a way downloaded without ``center``) is left out and counted.
    Tags map as follows: ``camera:direction`` (else ``direction``) → ``direction_deg`` and, for
    a range, ``hfov_deg`` by :func:`camcensus.io.directions.parse_direction`; a ``;`` list
    becomes one row per direction (``camera_id`` ``node/N#1``, ``node/N#2``...); all-round
    (``0-360``) is ``direction_deg`` NaN with ``hfov_deg`` 360; an unreadable value leaves
    ``direction_deg`` NaN, is kept in ``direction_raw`` and counted in ``ledger`` as flagged.
    ``surveillance:type`` → ``surveillance_type`` (camera, ALPR, guard, gunshot_detector;
    other values as tagged; missing: ``camera``, counted as flagged), ``camera:type`` →
    ``camera_type`` (fixed, dome, panning), ``camera:mount`` → ``mount`` (pole, street_lamp,
    traffic_signals: ``street``; wall, building, ceiling: ``building``) and verbatim in
    ``camera_mount``, ``height`` (else ``camera:height``) → ``height_m``, ``operator``,
    ``manufacturer``, ``surveillance`` (public/outdoor/indoor), ``surveillance:zone`` →
    ``surveillance_zone``, ``check_date`` (else ``survey:date``) → ``last_seen``.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`camcensus.cameras.CAMERA_COLUMNS` then :data:`OSM_COLUMNS`; points in
        EPSG:4326, RangeIndex. ``source`` ``osm``, ``source_ref`` and ``osm_id`` the element
        (``node/N``), ``tier`` ``community-mapped``, ``licence`` :data:`OSM_LICENCE`;
        ``osm_tags`` every original tag (:func:`osm_tags_text`), so nothing is lost.
    """
    from camcensus.cameras import CAMERA_COLUMNS

    rows: list[dict[str, object]] = []
    lons: list[float] = []
    lats: list[float] = []
    unreadable = no_position = not_surveillance = untyped = 0
    for e in elements:
        tags: dict[str, str] = e["tags"]
        if tags.get("man_made") != "surveillance":
            not_surveillance += bool(tags)
            continue
        lat, lon = e.get("lat"), e.get("lon")
        if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
            no_position += 1
            continue
        osm_id = f"{e['type']}/{e['id']}"
        raw = next((tags[k] for k in _DIRECTION_KEYS if k in tags), None)
        directions = parse_direction(raw)
        if raw is not None and not directions:
            unreadable += 1
        stype = tags.get("surveillance:type")
        untyped += stype is None
        version = e.get("version")
        base = {
            "position_sd_m": np.nan,
            "mount": _mount(tags.get("camera:mount", "")),
            "camera_type": _CAMERA_TYPES.get(tags.get("camera:type", "").lower(), "unknown"),
            "surveillance_type": SURVEILLANCE_TYPES.get((stype or "camera").lower(), stype),
            "height_m": parse_height_m(tags.get("height", tags.get("camera:height"))),
            "operator": tags.get("operator"),
            "source": "osm",
            "source_ref": osm_id,
            "tier": "community-mapped",
            "support": None,
            "first_seen": None,
            "last_seen": tags.get("check_date", tags.get("survey:date")),
            "licence": OSM_LICENCE,
            "direction_raw": raw,
            "surveillance": tags.get("surveillance"),
            "surveillance_zone": tags.get("surveillance:zone"),
            "camera_mount": tags.get("camera:mount"),
            "manufacturer": tags.get("manufacturer"),
            "osm_id": osm_id,
            "osm_version": int(version) if version is not None else None,
            "osm_tags": osm_tags_text(tags),
        }
        for k, d in enumerate(directions or [Direction(math.nan, None)]):
            suffix = f"#{k + 1}" if len(directions) > 1 else ""
            rows.append(
                {
                    **base,
                    "camera_id": f"{osm_id}{suffix}",
                    "direction_deg": math.nan if d.centre_deg is None else d.centre_deg,
                    "hfov_deg": math.nan if d.width_deg is None else d.width_deg,
                }
            )
            lons.append(float(lon))
            lats.append(float(lat))
    if ledger is not None:
        stage = "read OSM cameras"
        ledger.exclude(
            stage, "tagged elements that are not man_made=surveillance", not_surveillance
        )
        ledger.exclude(
            stage, "surveillance ways or relations without a position (no 'center')", no_position
        )
        ledger.flag(
            stage, _UNREADABLE, unreadable, kept_as="as all-round, raw text in direction_raw"
        )
        ledger.flag(
            stage,
            "surveillance elements without surveillance:type",
            untyped,
            kept_as="as surveillance_type 'camera'",
        )
    df = pd.DataFrame(rows, columns=[*CAMERA_COLUMNS, *OSM_COLUMNS])
    for col in ("direction_deg", "hfov_deg", "height_m", "position_sd_m"):
        df[col] = df[col].astype("float64")
    df["osm_version"] = df["osm_version"].astype("Int64")
    from camcensus.io.camera_files import canonical_cameras

    return canonical_cameras(
        gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lons, lats), crs="EPSG:4326")
    )
