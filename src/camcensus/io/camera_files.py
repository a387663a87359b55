"""Camera inventory files: read any source into the ``cameras`` table, write it in any format.

:func:`read_cameras_file` reads OpenStreetMap (Overpass JSON, OSM XML, osmChange, PBF), the
city lists of :mod:`camcensus.io.citylists`, Amnesty's Decode counts CSV and camera files
written by :func:`write_cameras` (GeoPackage, GeoJSON, GeoParquet, flat CSV).
:func:`write_cameras` writes ``.gpkg``, ``.geojson``, ``.parquet``, ``.csv``, ``.osm`` (OSM
XML for review in JOSM) and ``.osc`` (osmChange); nothing is ever uploaded anywhere. The OSM
formats refuse, with the reason per camera, cameras whose licence forbids OpenStreetMap.
Every format round-trips: :func:`read_cameras_file` of a written file returns the same frame
(:func:`canonical_cameras` fixes column order and types on every read).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus._errors import ContractError, InputError, Ledger, OptionError, Problem
from camcensus.cameras import CAMERA_COLUMNS, validate_cameras
from camcensus.io.directions import format_direction, parse_direction
from camcensus.io.formats import read_csv, write_csv
from camcensus.io.osm import (
    OSM_FORMATS,
    osm_format,
    osm_tags_from_text,
    osm_tags_text,
    read_osm_cameras,
)

__all__ = [
    "CAMERA_FILE_FORMATS",
    "CameraExport",
    "canonical_cameras",
    "osm_licence_problem",
    "read_cameras_file",
    "read_cameras_files",
    "write_cameras",
]

#: Formats :func:`write_cameras` writes, by file extension.
CAMERA_FILE_FORMATS = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".parquet": "parquet",
    ".csv": "csv",
    ".osm": "osm",
    ".osc": "osc",
}
_FLOAT_COLUMNS = ("position_sd_m", "direction_deg", "hfov_deg", "height_m")
_INT_COLUMNS = ("osm_version",)
_TAG_PREFIX = "tag:"
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-?(inf|nan)$")
_STAGE = "export cameras"
_AMNESTY_LICENCE = "CC BY-NC-ND 4.0 (Amnesty International, Decode Surveillance NYC)"


@dataclass(frozen=True)
class CameraExport:
    """What :func:`write_cameras` wrote: the file, its format, how many cameras went in, and
    every camera refused with its reason (OSM formats only)."""

    path: Path
    format: str
    written: int
    refused: tuple[tuple[str, str], ...] = ()


def canonical_cameras(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``gdf`` in the canonical layout every reader returns.

    Columns: :data:`camcensus.cameras.CAMERA_COLUMNS` first, then the others in their order,
    ``osm_tags`` last, then ``geometry``; the measured columns float64, ``osm_version``
    Int64, text columns object with ``None`` for missing; points in EPSG:4326; RangeIndex.
    """
    gdf = gdf.to_crs("EPSG:4326") if gdf.crs is not None else gdf.set_crs("EPSG:4326")
    geom = gdf.geometry.name
    rest = [c for c in gdf.columns if c not in CAMERA_COLUMNS and c not in (geom, "osm_tags")]
    cols = [c for c in CAMERA_COLUMNS if c in gdf.columns] + rest
    cols += ["osm_tags"] if "osm_tags" in gdf.columns else []
    data: dict[str, Any] = {}
    for col in cols:
        s = gdf[col]
        if col in _FLOAT_COLUMNS:
            data[col] = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        elif col in _INT_COLUMNS:
            data[col] = pd.array(pd.to_numeric(s, errors="coerce"), dtype="Int64")
        elif pd.api.types.is_bool_dtype(s) or (
            pd.api.types.is_numeric_dtype(s) and col not in CAMERA_COLUMNS
        ):
            data[col] = s.to_numpy()
        else:
            values = s.astype(object).to_numpy()
            data[col] = [None if _is_missing(v) else str(v) for v in values]
    text = [c for c in cols if isinstance(data[c], list)]
    frame = pd.DataFrame({c: data[c] for c in cols if c not in text}, index=pd.RangeIndex(len(gdf)))
    for col in text:
        # Text is object with None for missing, whatever pandas would infer.
        frame[col] = pd.Series(data[col], dtype=object, index=frame.index)
    frame = frame[cols]
    return gpd.GeoDataFrame(frame, geometry=np.asarray(gdf.geometry.values), crs="EPSG:4326")


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


# --- reading -----------------------------------------------------------------------------


def _city_formats() -> tuple[str, ...]:
    try:
        from camcensus.io.citylists import CITY_FORMATS
    except ImportError:
        return ()
    return tuple(CITY_FORMATS)


def _city_format(path: Path) -> str | None:
    """The one known city list whose columns the file has; None if none; an error naming
    the candidates when several fit (New Orleans' RTCC and SafeCam share one file)."""
    try:
        from camcensus.io.citylists import sniff_city_formats
    except ImportError:
        return None
    names = sniff_city_formats(path)
    if len(names) > 1:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "a city list whose columns fit several known lists: " + ", ".join(names),
                    "one list",
                    "pass --source-format with the one you mean (" + " or ".join(names) + ")",
                )
            ]
        )
    return names[0] if names else None


def _sniff(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".pbf", ".osm", ".osc", ".xml")):
        return osm_format(path)
    if name.endswith(".gpkg"):
        return "gpkg"
    if name.endswith((".parquet", ".geoparquet")):
        return "parquet"
    if name.endswith((".json", ".geojson")):
        with path.open("rb") as fh:
            head = fh.read(4096)
        if b'"FeatureCollection"' in head or b'"Feature"' in head:
            return "geojson"
        if re.search(rb'"elements"|"type"\s*:\s*"(node|way|relation)"', head):
            return "overpass"
        city = _city_format(path)
        if city:
            return city
        # A JSON array is a city list or nothing known; Overpass JSON is an object.
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            return "overpass"
    if name.endswith(".csv"):
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            header = fh.readline()
        fields = {f.strip().strip('"') for f in header.split(",")}
        if {"camera_id", "lon", "lat"} <= fields:
            return "csv"
        if "attached_street_median" in fields:
            return "decode-counts"
        city = _city_format(path)
        if city:
            return city
    raise InputError(
        [
            Problem(
                str(path),
                None,
                None,
                "a file whose format cannot be told from its name and first line",
                "a camera file (.gpkg .geojson .parquet .csv with camera_id, lon, lat), OSM "
                "(.json Overpass, .osm, .osc, .osm.pbf) or Amnesty's Decode counts CSV",
                "pass --source-format (auto, "
                + ", ".join((*OSM_FORMATS, "decode-counts", *_city_formats()))
                + ")",
            )
        ]
    )


def read_cameras_file(
    path: str | Path,
    *,
    source_format: str = "auto",
    ledger: Ledger | None = None,
    mapping: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Read one camera inventory file as the ``cameras`` table.

    Parameters
    ----------
    path
        The file.
    source_format
        ``auto`` (from the extension and the first bytes or header line), an OSM format
        (``overpass``, ``osm``, ``osc``, ``pbf``), a city list of
        :data:`camcensus.io.citylists.CITY_FORMATS` (e.g. ``baltimore-citiwatch``),
        ``decode-counts`` (Amnesty's per-intersection counts CSV), or a camera file written
        by :func:`write_cameras` (``gpkg``, ``geojson``, ``parquet``, ``csv``).
    ledger
        Receives every record left out or flagged, with its reason.
    mapping
        A column-mapping file for a city list (:func:`camcensus.io.citylists.read_city_list`).

    Returns
    -------
    geopandas.GeoDataFrame
        The ``cameras`` contract (checked) in :func:`canonical_cameras` layout.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "a camera file", "check the path")]
        )
    if path.is_dir():
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "a folder",
                    "a camera file",
                    "give the path of a file inside it",
                )
            ]
        )
    fmt = _sniff(path) if source_format == "auto" else source_format
    if fmt in OSM_FORMATS:
        gdf = read_osm_cameras(path, source_format=fmt, ledger=ledger)
    elif fmt == "decode-counts":
        from camcensus.cameras import cameras_from_counts
        from camcensus.io.decode import intersections_from_csv

        counts = intersections_from_csv(path, ledger=ledger)
        gdf = cameras_from_counts(counts, licence=_AMNESTY_LICENCE)
    elif fmt == "gpkg":
        gdf = gpd.read_file(path)
    elif fmt == "parquet":
        try:
            gdf = gpd.read_parquet(path)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        f"a file GeoParquet cannot read ({first[:200]})",
                        "a GeoParquet file of the cameras table",
                        "write it again (camcensus cameras import ... --out cameras.parquet), "
                        "or pass --source-format with the file's real format",
                    )
                ]
            ) from exc
    elif fmt == "geojson":
        gdf = _read_geojson(path)
    elif fmt == "csv":
        gdf = _read_flat_csv(path)
    elif fmt in _city_formats() or mapping is not None:
        from camcensus.io import citylists

        reader: Any = citylists.read_city_list
        gdf = reader(path, fmt, mapping=mapping, ledger=ledger)
    else:
        known = (*OSM_FORMATS, "decode-counts", "gpkg", "geojson", "parquet", "csv")
        raise OptionError(
            f"--source-format {source_format!r} is unknown; use auto or one of "
            + ", ".join((*known, *_city_formats()))
        )
    gdf = canonical_cameras(gdf)
    try:
        validate_cameras(gdf)
    except ContractError as exc:
        # A camera file (gpkg, geojson, parquet, csv) must hold the whole table; name the file.
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    str(exc).removeprefix("the cameras table breaks its contract: "),
                    "the cameras table (a file written by camcensus cameras import)",
                    "write the file with camcensus cameras import, or pass --source-format "
                    "with the source it comes from (e.g. overpass, a city list)",
                )
            ]
        ) from exc
    return gdf


def _coordinate_problems(path: Path, row: int, lon: float, lat: float) -> list[Problem]:
    """Problems of one point given as WGS84 degrees (missing, not finite, out of range)."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        found = f"lon {lon!r}, lat {lat!r}"
        return [Problem(str(path), row, "lon/lat", found, "WGS84 degrees", "fix the row")]
    if -180 <= lon <= 180 and -90 <= lat <= 90:
        return []
    fix = "fix the row; coordinates must be WGS84 longitude and latitude"
    if abs(lat) > 90 and abs(lon) <= 90:
        fix = "lon and lat look swapped: put the longitude in lon and the latitude in lat"
    return [
        Problem(
            str(path),
            row,
            "lon/lat",
            f"lon {lon!r}, lat {lat!r}",
            "lon in [-180, 180] and lat in [-90, 90] (WGS84 degrees)",
            fix,
        )
    ]


def _number_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _read_geojson(path: Path) -> gpd.GeoDataFrame:
    def whole_file(found: str) -> InputError:
        return InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    found,
                    "a GeoJSON FeatureCollection of Points",
                    "write the file again (camcensus cameras import ... --out cameras.geojson)",
                )
            ]
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise whole_file(f"bytes that are not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise whole_file(f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise whole_file(f"a JSON {type(data).__name__}, not an object")
    features = data.get("features", []) if data.get("type") == "FeatureCollection" else [data]
    if not isinstance(features, list):
        raise whole_file("'features' that is not a list")
    rows, xs, ys, problems = [], [], [], []
    for i, f in enumerate(features, start=1):
        if not isinstance(f, dict):
            problems.append(
                Problem(str(path), i, None, f"a JSON {type(f).__name__}", "a Feature", "fix it")
            )
            continue
        geom = f.get("geometry") or {}
        geom_type = geom.get("type") if isinstance(geom, dict) else None
        if geom_type != "Point":
            problems.append(
                Problem(str(path), i, "geometry", repr(geom_type), "a Point", "one point")
            )
            continue
        coords = geom.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            problems.append(
                Problem(
                    str(path),
                    i,
                    "geometry",
                    f"coordinates {str(coords)[:40]}",
                    "[lon, lat] in WGS84 degrees",
                    "fix the feature",
                )
            )
            continue
        lon, lat = _number_or_nan(coords[0]), _number_or_nan(coords[1])
        found = _coordinate_problems(path, i, lon, lat)
        if found:
            problems.extend(found)
            continue
        props = f.get("properties")
        xs.append(lon)
        ys.append(lat)
        rows.append(props if isinstance(props, dict) else {})
    if problems:
        raise InputError(problems)
    return gpd.GeoDataFrame(
        pd.DataFrame(rows), geometry=gpd.points_from_xy(xs, ys), crs="EPSG:4326"
    )


def _read_flat_csv(path: Path) -> gpd.GeoDataFrame:
    df = read_csv(path, dtype=str, keep_default_na=False)
    tag_cols = [c for c in df.columns if c.startswith(_TAG_PREFIX)]
    problems = [
        Problem(
            str(path),
            None,
            col,
            "no such column (columns: " + ", ".join(map(str, df.columns[:12])) + ")",
            f"column {col!r} (flat camera CSV: camera_id, lon, lat, ...)",
            f"add column {col!r}, or pass --source-format with the file's real format",
        )
        for col in ("camera_id", "lon", "lat")
        if col not in df.columns
    ]
    if problems:
        raise InputError(problems)
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype="float64")
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype="float64")
    for i in range(len(df)):
        found = _coordinate_problems(path, i + 1, float(lon[i]), float(lat[i]))
        if found and not math.isfinite(lon[i] + lat[i]):
            text = f"lon {df['lon'].iloc[i]!r}, lat {df['lat'].iloc[i]!r} (no number)"
            found = [dataclasses.replace(found[0], found=text)]
        problems.extend(found)
    if problems:
        raise InputError(problems)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        if col in ("lon", "lat") or col in tag_cols:
            continue
        s = df[col].astype(object).where(df[col] != "", None)
        if col not in CAMERA_COLUMNS and col not in _INT_COLUMNS and _all_numbers(s):
            out[col] = pd.to_numeric(s).astype("float64")
        else:
            out[col] = s
    if tag_cols:
        keys = [c[len(_TAG_PREFIX) :] for c in tag_cols]
        values = df[tag_cols].to_numpy(dtype=object)
        out["osm_tags"] = [
            osm_tags_text({k: v for k, v in zip(keys, row, strict=True) if v != ""}) or None
            if any(v != "" for v in row)
            else None
            for row in values
        ]
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _all_numbers(s: pd.Series) -> bool:
    present = [v for v in s if v is not None]
    return bool(present) and all(_NUMBER.match(str(v)) for v in present)


# --- writing -----------------------------------------------------------------------------


def osm_licence_problem(licence: object) -> str | None:
    """Return why a camera with this ``licence`` may not go into OpenStreetMap, else ``None``.

    OpenStreetMap takes only data compatible with ODbL: a licence that is missing, forbids
    commercial use (``NC``) or derived works (``ND``), or positions read off Google imagery
    (Google's terms forbid building map data from it) are refused.
    """
    if _is_missing(licence) or not str(licence).strip():
        return "no licence stated (OpenStreetMap takes only data compatible with ODbL)"
    text = str(licence)
    upper = text.upper()
    if re.search(r"\bNC\b|NONCOMMERCIAL|NON-COMMERCIAL", upper):
        return f"licence {text!r} forbids commercial use (ODbL allows it)"
    if re.search(r"\bND\b|NODERIV|NO-DERIV", upper):
        return f"licence {text!r} forbids derived works (OpenStreetMap is one)"
    if "GOOGLE" in upper:
        return "position derived from Google imagery (Google's terms forbid OSM use)"
    if "NOT FOR OPENSTREETMAP" in upper or "NO OSM" in upper:
        return f"licence {text!r} says the data may not enter OpenStreetMap"
    return None


def write_cameras(
    gdf_cameras: gpd.GeoDataFrame,
    path: str | Path,
    *,
    format: str | None = None,
    ledger: Ledger | None = None,
    inputs: Iterable[str | Path] = (),
) -> CameraExport:
    """Write the ``cameras`` table to a file, all at once; nothing is uploaded anywhere.

    Parameters
    ----------
    gdf_cameras
        The ``cameras`` table (any CRS; written in EPSG:4326).
    path
        Where to write (parent folders are created; an existing file is replaced).
    format
        ``gpkg``, ``geojson``, ``parquet`` (GeoParquet), ``csv`` (flat: ``lon``, ``lat``, one
        value per cell, ``osm_tags`` split into ``tag:<key>`` columns), ``osm`` (OSM XML for
        review in JOSM: new cameras as nodes with negative ids, cameras read from OSM with
        their own id, version and every original tag; a camera split by a ``;`` direction list
        is one node again) or ``osc`` (osmChange ``create`` of the new cameras only). Default:
        from the extension (:data:`CAMERA_FILE_FORMATS`).
    ledger
        Receives the count of cameras refused per reason (OSM formats).
    inputs
        The files the cameras were read from: writing over one of them is refused.

    Returns
    -------
    CameraExport
        The file, format, number of cameras written and each refused camera with its reason:
        OSM formats refuse licences that forbid OpenStreetMap (:func:`osm_licence_problem`),
        OSM ways and relations (edit those in JOSM), and, in ``osc``, cameras already in OSM.
    """
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"{path} is a folder. Fix: give a file name for --out.")
    by_extension = CAMERA_FILE_FORMATS.get(path.suffix.lower())
    fmt = format or by_extension or ""
    if format and by_extension and format != by_extension:
        raise OptionError(
            f"--format {format} but {path.name!r} has the extension of {by_extension}; a file "
            f"would not read back as what it holds. Fix: name the file "
            f"{path.stem}{_extension(format)} or pass --format {by_extension}."
        )
    if fmt not in CAMERA_FILE_FORMATS.values():
        raise OptionError(
            f"cannot tell the format of {path.name!r}; use one of the extensions "
            + ", ".join(CAMERA_FILE_FORMATS)
            + " or pass format (--format)"
        )
    for inp in inputs:
        if Path(inp).resolve() == path.resolve():
            raise OptionError(
                f"{path} is one of the input files; an export never overwrites its input. "
                "Fix: choose another --out file."
            )
    validate_cameras(gdf_cameras)
    gdf = canonical_cameras(gdf_cameras)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise OptionError(f"{path} is a folder. Fix: give a file name for --out.")
    # Written beside the target, then renamed over it: a failure leaves the old file whole.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        written, refused = len(gdf), list[tuple[str, str]]()
        if fmt in ("osm", "osc"):
            written, refused = _write_osm(gdf, tmp, change=fmt == "osc")
        elif fmt == "gpkg":
            gdf.to_file(tmp, driver="GPKG", layer="cameras")
        elif fmt == "parquet":
            gdf.to_parquet(tmp, index=False)
        elif fmt == "geojson":
            _write_geojson(gdf, tmp)
        else:
            _write_flat_csv(gdf, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if refused and ledger is not None:
        reasons: dict[str, int] = {}
        for _, reason in refused:
            key = re.sub(r"'[^']*'", "'…'", reason)
            reasons[key] = reasons.get(key, 0) + 1
        for reason, n in reasons.items():
            ledger.exclude(_STAGE, reason, n)
    return CameraExport(path, fmt, written, tuple(refused))


def _extension(fmt: str) -> str:
    return next(ext for ext, f in CAMERA_FILE_FORMATS.items() if f == fmt)


def _json_value(value: object) -> object:
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    xs, ys = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    records = gdf[cols].astype(object).to_numpy()
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {c: _json_value(v) for c, v in zip(cols, row, strict=True)},
        }
        for x, y, row in zip(xs, ys, records, strict=True)
    ]
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")


def _write_flat_csv(gdf: gpd.GeoDataFrame, path: Path) -> None:
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    df.insert(1, "lon", gdf.geometry.x.to_numpy())
    df.insert(2, "lat", gdf.geometry.y.to_numpy())
    if "osm_tags" in df.columns:
        tags = [osm_tags_from_text(t) for t in df.pop("osm_tags")]
        keys = sorted({k for t in tags for k in t})
        for k in keys:
            df[_TAG_PREFIX + k] = [t.get(k, "") for t in tags]
    write_csv(df, path)


# --- OSM XML and osmChange ---------------------------------------------------------------


def _number(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _new_tags(row: dict[str, Any]) -> dict[str, str]:
    """Tags of a camera that is not in OSM yet, from its columns (nothing guessed: a column
    that is unknown gives no tag)."""
    tags = {"man_made": "surveillance"}
    stype = row.get("surveillance_type")
    tags["surveillance:type"] = stype if isinstance(stype, str) and stype else "camera"
    for col, key in (("surveillance", "surveillance"), ("surveillance_zone", "surveillance:zone")):
        if isinstance(row.get(col), str):
            tags[key] = row[col]
    ctype = row.get("camera_type")
    if ctype in ("dome", "fixed", "panning"):
        tags["camera:type"] = ctype
    elif ctype == "bullet":
        tags["camera:type"] = "fixed"  # a bullet camera does not pan
    if isinstance(row.get("camera_mount"), str):
        tags["camera:mount"] = row["camera_mount"]
    centre, width = row.get("direction_deg"), row.get("hfov_deg")
    if centre is not None and math.isfinite(centre):
        tags["camera:direction"] = format_direction(centre, _finite(width))
    elif width is not None and math.isfinite(width) and width >= 359.0:
        tags["camera:direction"] = "0-360"
    if row.get("height_m") is not None and math.isfinite(row["height_m"]):
        tags["height"] = _number(row["height_m"])
    for col in ("operator", "manufacturer"):
        if isinstance(row.get(col), str) and row[col]:
            tags[col] = row[col]
    return tags


def _finite(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _same_directions(raw: str | None, rows: list[dict[str, Any]]) -> bool:
    parsed = parse_direction(raw)
    if raw is not None and not parsed:
        return all(_finite(r.get("direction_deg")) is None for r in rows)
    if not parsed:
        return all(
            _finite(r.get("direction_deg")) is None and _finite(r.get("hfov_deg")) is None
            for r in rows
        )
    if len(parsed) != len(rows):
        return False
    for d, r in zip(parsed, rows, strict=True):
        for a, b in ((d.centre_deg, r.get("direction_deg")), (d.width_deg, r.get("hfov_deg"))):
            fa, fb = _finite(a), _finite(b)
            if (fa is None) != (fb is None) or (fa is not None and abs(fa - (fb or 0.0)) > 1e-9):
                return False
    return True


def _existing_tags(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The original tags of an OSM element; its direction rewritten only if the rows' changed."""
    tags = osm_tags_from_text(rows[0].get("osm_tags"))
    key = (
        "camera:direction" if "camera:direction" in tags or "direction" not in tags else "direction"
    )
    if not _same_directions(tags.get(key), rows):
        parts = [
            (_finite(r.get("direction_deg")), _finite(r.get("hfov_deg")))
            for r in rows
            if _finite(r.get("direction_deg")) is not None or _finite(r.get("hfov_deg"))
        ]
        if parts:
            tags[key] = ";".join(format_direction(c, w) for c, w in parts)
        else:
            tags.pop(key, None)
    return tags


def _node_xml(eid: int, lat: float, lon: float, version: object, tags: dict[str, str]) -> str:
    attrs = f'id="{eid}"'
    if not _is_missing(version):
        attrs += f' version="{int(str(version))}"'
    attrs += f' lat="{float(lat)!r}" lon="{float(lon)!r}"'
    body = "".join(f"\n    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
    return f"  <node {attrs}>{body}\n  </node>" if body else f"  <node {attrs}/>"


def _write_osm(
    gdf: gpd.GeoDataFrame, path: Path, *, change: bool
) -> tuple[int, list[tuple[str, str]]]:
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in frame.to_dict("records")
    ]
    xs, ys = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    refused: list[tuple[str, str]] = []
    groups: dict[str, list[int]] = {}
    new: list[int] = []
    for i, row in enumerate(records):
        problem = osm_licence_problem(row.get("licence"))
        osm_id = row.get("osm_id")
        if problem is None and isinstance(osm_id, str) and osm_id:
            if not osm_id.startswith("node/"):
                problem = "an OpenStreetMap way or relation: edit it in JOSM (nodes only)"
            elif change and not osm_id.startswith("node/-"):
                problem = "already in OpenStreetMap (see osm_id): nothing to create"
        if problem is not None:
            refused.append((str(row["camera_id"]), problem))
        elif isinstance(osm_id, str) and osm_id:
            groups.setdefault(osm_id, []).append(i)
        else:
            new.append(i)
    nodes: list[tuple[int, str]] = []
    next_id = -1
    for osm_id, idx in groups.items():
        eid = int(osm_id.split("/")[1])
        rows = [records[i] for i in idx]
        tags = _existing_tags(rows)
        nodes.append(
            (eid, _node_xml(eid, ys[idx[0]], xs[idx[0]], rows[0].get("osm_version"), tags))
        )
        next_id = min(next_id, eid - 1)
    for i in new:
        nodes.append((next_id, _node_xml(next_id, ys[i], xs[i], None, _new_tags(records[i]))))
        next_id -= 1
    body = "\n".join(text for _, text in nodes)
    if change:
        text = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            '<osmChange version="0.6" generator="camcensus">\n<create>\n'
            + body
            + ("\n" if body else "")
            + "</create>\n</osmChange>\n"
        )
    else:
        text = (
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            '<osm version="0.6" generator="camcensus">\n'
            + body
            + ("\n" if body else "")
            + "</osm>\n"
        )
    path.write_text(text, encoding="utf-8")
    return len(records) - len(refused), refused


def read_cameras_files(
    paths: Iterable[str | Path], *, source_format: str = "auto", ledger: Ledger | None = None
) -> gpd.GeoDataFrame:
    """Read several camera files into one ``cameras`` table (a ``camera_id`` seen twice is an
    error: the same file twice, or two sources to merge with :mod:`camcensus.merge`)."""
    paths = list(paths)
    frames = [read_cameras_file(p, source_format=source_format, ledger=ledger) for p in paths]
    if not frames:
        raise OptionError("give at least one camera file")
    gdf = canonical_cameras(gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326"))
    dup = gdf["camera_id"][gdf["camera_id"].duplicated()].unique()
    if len(dup):
        raise InputError(
            [
                Problem(
                    ", ".join(str(p) for p in paths),
                    None,
                    "camera_id",
                    f"{len(dup)} camera_id values in more than one file (e.g. {dup[0]!r})",
                    "each camera once",
                    "import each file once; merge overlapping sources with camcensus.merge",
                )
            ]
        )
    return gdf
