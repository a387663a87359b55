"""City camera lists (official inventories) read into the ``cameras`` table.

Each known list has a column-mapping file, ``camcensus/io/citylists/<name>.toml`` (parsed with
:mod:`tomllib`), that says which column holds what; a user adds another city's list by writing
such a file and passing it as ``mapping`` (CLI ``--mapping FILE``), without code. The format is
documented in docs/citylists.md.

Every row read ends in the table or in the excluded table with its reason: rows without usable
coordinates, rows of another list in the same file, duplicate ids, rows excluded by the
mapping's own rules, and rows geocoded farther than ``max_km_from_median`` from the list's
median point (New Orleans SafeCam: 16 addresses geocoded to other states and countries).
"""

from __future__ import annotations

import importlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS, Geod, Transformer

from camcensus._errors import InputError, Ledger, OptionError, Problem

__all__ = [
    "CITY_FORMATS",
    "DEFAULT_MAX_KM_FROM_MEDIAN",
    "CityFormat",
    "CityList",
    "city_format_from_file",
    "load_city_list",
    "read_city_list",
    "sniff_city_formats",
]

#: Rows farther than this from the list's median point (geodesic on WGS84) are excluded as
#: mis-geocoded, unless a mapping sets its own ``max_km_from_median``. A city list spans at
#: most ~50 km (NYC's LinkNYC kiosks: 25 km from their median point); 100 km leaves room for
#: a metropolitan list and still catches an address geocoded to another state (the nearest of
#: New Orleans SafeCam's strays is 446 km away).
DEFAULT_MAX_KM_FROM_MEDIAN = 100.0
#: Columns of the contract a mapping may fill from a source column (besides ``id``, ``lon``,
#: ``lat`` and ``direction``); any other key of ``[columns]`` becomes an extra column.
_CONTRACT_FROM_COLUMN = (
    "operator",
    "mount",
    "camera_type",
    "surveillance_type",
    "height_m",
    "hfov_deg",
    "position_sd_m",
    "first_seen",
    "last_seen",
)
_SPECIAL = ("id", "lon", "lat", "direction")
_VOCABULARY = {
    "mount": ("street", "building", "unknown"),
    "camera_type": ("dome", "bullet", "fixed", "panning", "unknown"),
}
_FLOATS = ("height_m", "hfov_deg", "position_sd_m")
_FILE_FORMATS = ("csv", "json", "geojson")
_MAPPING_DIR = Path(__file__).with_name("citylists")
_STAGE = "read city list"
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class RowRule:
    """Keep (``keep=True``) or exclude the rows whose ``column`` is in ``values``."""

    column: str
    values: tuple[str, ...]
    reason: str
    keep: bool


@dataclass(frozen=True)
class CityFormat:
    """A column-mapping file: how one city list's columns become the ``cameras`` table."""

    name: str
    title: str
    file_format: str
    columns: Mapping[str, str]
    constants: Mapping[str, Any]
    values: Mapping[str, Mapping[str, str]]
    rules: tuple[RowRule, ...]
    licence: str
    tier: str = "official list"
    source: str = "city-list"
    crs: str = "EPSG:4326"
    records: str = ""
    url: str = ""
    snapshot: str | None = None
    date_format: str | None = None
    max_km_from_median: float | None = DEFAULT_MAX_KM_FROM_MEDIAN
    path: str = ""


@dataclass(frozen=True)
class CityList:
    """What :func:`load_city_list` read: the cameras, and every row left out with its reason.

    ``excluded`` has one row per excluded source row: ``row`` (1-based data row, the header
    is row 0; for JSON the 1-based position in the records list), ``reason``, ``detail``,
    ``lon``, ``lat``, ``distance_km`` (to the list's median point, for far-away rows).
    """

    name: str
    cameras: gpd.GeoDataFrame
    excluded: pd.DataFrame
    rows_read: int
    median_point: tuple[float, float] | None
    flagged: Mapping[str, int] = field(default_factory=dict)

    def excluded_by_reason(self) -> dict[str, int]:
        """Return the number of excluded rows per reason."""
        counts = self.excluded["reason"].value_counts(sort=False)
        return {str(k): int(v) for k, v in counts.items()}


def city_format_from_file(path: str | Path, *, name: str | None = None) -> CityFormat:
    """Read a column-mapping TOML file (docs/citylists.md) into a :class:`CityFormat`.

    Raises
    ------
    InputError
        Naming every problem of the file (missing ``[list]`` keys, ``lon``/``lat`` columns,
        unknown file formats, malformed ``[[keep]]``/``[[exclude]]`` rules, values outside
        the contract's vocabulary).
    """
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            [Problem(where, None, None, "no such file", "a TOML mapping file", "check the path")]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            [Problem(where, None, None, f"invalid TOML ({exc})", "TOML", "fix the syntax")]
        ) from None
    problems: list[Problem] = []
    head = data.get("list", {})
    columns = {str(k): str(v) for k, v in data.get("columns", {}).items()}
    constants = dict(data.get("constants", {}))
    values = {
        str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.get("values", {}).items()
    }
    file_format = str(head.get("file_format", "csv")).lower()
    if file_format not in _FILE_FORMATS:
        problems.append(
            Problem(
                where,
                None,
                "[list] file_format",
                repr(file_format),
                " | ".join(_FILE_FORMATS),
                "set file_format to the file's format",
            )
        )
    if "licence" not in head:
        problems.append(
            Problem(
                where,
                None,
                "[list] licence",
                "nothing",
                "the list's licence or terms",
                'add licence = "..." (what may be re-published where)',
            )
        )
    if file_format != "geojson":
        for key in ("lon", "lat"):
            if key not in columns:
                problems.append(
                    Problem(
                        where,
                        None,
                        f"[columns] {key}",
                        "nothing",
                        "the column holding " + ("longitude" if key == "lon" else "latitude"),
                        f'add {key} = "<column name>" under [columns]',
                    )
                )
    for col, allowed in _VOCABULARY.items():
        bad = []
        if col in constants and str(constants[col]) not in allowed:
            bad.append(str(constants[col]))
        bad += [v for v in values.get(col, {}).values() if v not in allowed]
        if bad:
            problems.append(
                Problem(
                    where,
                    None,
                    col,
                    ", ".join(repr(b) for b in bad),
                    " | ".join(allowed),
                    f"map {col} only to the contract's values",
                )
            )
    rules: list[RowRule] = []
    for kind in ("keep", "exclude"):
        for k, rule in enumerate(data.get(kind, [])):
            if not {"column", "values", "reason"} <= set(rule):
                problems.append(
                    Problem(
                        where,
                        None,
                        f"[[{kind}]] #{k + 1}",
                        str(sorted(rule)),
                        "keys column, values, reason",
                        "give all three keys",
                    )
                )
                continue
            rules.append(
                RowRule(
                    str(rule["column"]),
                    tuple(str(v) for v in rule["values"]),
                    str(rule["reason"]),
                    keep=kind == "keep",
                )
            )
    max_km = head.get("max_km_from_median", DEFAULT_MAX_KM_FROM_MEDIAN)
    if max_km is not False and (not isinstance(max_km, int | float) or max_km <= 0):
        problems.append(
            Problem(
                where,
                None,
                "[list] max_km_from_median",
                repr(max_km),
                "a positive number of km, or false",
                "set e.g. max_km_from_median = 100.0",
            )
        )
    if problems:
        raise InputError(problems)
    return CityFormat(
        name=name or str(head.get("name", path.stem)),
        title=str(head.get("title", path.stem)),
        file_format=file_format,
        columns=columns,
        constants=constants,
        values=values,
        rules=tuple(rules),
        licence=str(head["licence"]),
        tier=str(head.get("tier", "official list")),
        source=str(head.get("source", "city-list")),
        crs=str(head.get("crs", "EPSG:4326")),
        records=str(head.get("records", "")),
        url=str(head.get("url", "")),
        snapshot=str(head["snapshot"]) if "snapshot" in head else None,
        date_format=str(head["date_format"]) if "date_format" in head else None,
        max_km_from_median=None if max_km is False else float(max_km),
        path=where,
    )


def _known_formats() -> dict[str, CityFormat]:
    return {
        p.stem: city_format_from_file(p, name=p.stem) for p in sorted(_MAPPING_DIR.glob("*.toml"))
    }


#: The known city lists, by name: one mapping file each in ``camcensus/io/citylists/``.
CITY_FORMATS: dict[str, CityFormat] = _known_formats()


def read_city_list(
    path: str | Path,
    source_format: str | None = None,
    *,
    mapping: str | Path | CityFormat | None = None,
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Read a city's camera list as the ``cameras`` table.

    Parameters
    ----------
    path
        The list (CSV, JSON or GeoJSON, as its mapping says).
    source_format
        A name of :data:`CITY_FORMATS` (``baltimore-citiwatch``, ``new-orleans-rtcc``,
        ``new-orleans-safecam``, ``nyc-dot-cameras``, ``nyc-dot-cameras-markers``, ``linknyc``,
        ``line-of-sight-osm-cctv``); ``None`` or ``"auto"`` when ``mapping`` is given or the
        file's columns fit exactly one known list.
    mapping
        A column-mapping TOML file (docs/citylists.md) or a :class:`CityFormat`, for a list
        not in :data:`CITY_FORMATS`.
    ledger
        Receives one exclusion per reason (with counts) and a note listing far-away rows with
        their distances; flagged values (unreadable dates, values outside the vocabulary) are
        recorded as flags.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`camcensus.cameras.CAMERA_COLUMNS` plus ``city_list`` (the format name) and the
        mapping's extra columns; points in EPSG:4326, RangeIndex. ``source`` is
        ``city-list`` (or the mapping's), ``source_ref`` ``<list name>:<id>`` (or
        ``<list name>:row<N>`` when the list has no id column), ``camera_id`` equal to
        ``source_ref`` (with ``#k`` for the k-th of several directions).
    """
    result = load_city_list(path, source_format, mapping=mapping)
    if ledger is not None:
        _to_ledger(result, ledger)
    return result.cameras


def load_city_list(
    path: str | Path,
    source_format: str | None = None,
    *,
    mapping: str | Path | CityFormat | None = None,
) -> CityList:
    """Read a city list and return the cameras with every excluded row and its reason.

    See :func:`read_city_list` for the parameters.
    """
    fmt = _resolve_format(path, source_format, mapping)
    where = str(path)
    raw = _read_records(Path(path), fmt)
    rows_read = len(raw)
    missing = [
        c
        for c in {*fmt.columns.values(), *(r.column for r in fmt.rules)}
        if c not in raw.columns and not (fmt.file_format == "geojson" and c in ("lon", "lat"))
    ]
    if missing:
        raise InputError(
            [
                Problem(
                    where,
                    None,
                    c,
                    "no such column",
                    f"the columns of the {fmt.name} list ({fmt.path or 'mapping'})",
                    f"check --source-format (is this a {fmt.name} file?) or the mapping's "
                    "column names; "
                    f"the file has {', '.join(map(str, raw.columns[:12]))}",
                )
                for c in sorted(missing)
            ]
        )
    excluded: list[dict[str, Any]] = []
    alive = np.ones(rows_read, dtype=bool)

    def drop(mask: np.ndarray, reason: str, detail: list[str] | None = None) -> None:
        idx = np.flatnonzero(mask & alive)
        for j, i in enumerate(idx):
            excluded.append(
                {
                    "row": int(i) + 1,
                    "reason": reason,
                    "detail": detail[j] if detail else "",
                    "lon": lon[i],
                    "lat": lat[i],
                    "distance_km": math.nan,
                }
            )
        alive[idx] = False

    # Coordinates first, so that every excluded row shows where it was.
    lon, lat = _coordinates(raw, fmt)
    drop(~(np.isfinite(lon) & np.isfinite(lat)), "no coordinates (empty or not a number)")
    if _is_geographic(fmt.crs):
        bad = (np.abs(lat) > 90) | (np.abs(lon) > 180) | ((lon == 0) & (lat == 0))
        drop(bad, "coordinates out of range or at (0, 0)")
    for rule in fmt.rules:
        text = raw[rule.column].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        hit = np.isin(text, list(rule.values))
        drop(~hit if rule.keep else hit, rule.reason)
    if "id" in fmt.columns:
        ids = raw[fmt.columns["id"]].astype("string").str.strip().to_numpy(dtype=object)
        empty = np.array([v is pd.NA or v == "" for v in ids])
        drop(empty, "no id")
        seen: set[str] = set()
        dup = np.zeros(rows_read, dtype=bool)
        for i in np.flatnonzero(alive):
            if ids[i] in seen:
                dup[i] = True
            seen.add(ids[i])
        drop(dup, f"duplicate id (column {fmt.columns['id']!r}; the first row is kept)")
        refs = np.array([f"{fmt.name}:{v}" for v in ids], dtype=object)
    else:
        refs = np.array([f"{fmt.name}:row{i + 1}" for i in range(rows_read)], dtype=object)
    if not _is_geographic(fmt.crs) and alive.any():
        tr = Transformer.from_crs(CRS.from_user_input(fmt.crs), "EPSG:4326", always_xy=True)
        lon = lon.copy()
        lat = lat.copy()
        lon[alive], lat[alive] = tr.transform(lon[alive], lat[alive])
    median_point: tuple[float, float] | None = None
    if alive.any():
        median_point = (float(np.median(lon[alive])), float(np.median(lat[alive])))
    if fmt.max_km_from_median is not None and median_point is not None:
        idx = np.flatnonzero(alive)
        _, _, dist = _GEOD.inv(
            np.full(len(idx), median_point[0]),
            np.full(len(idx), median_point[1]),
            lon[idx],
            lat[idx],
        )
        dist_km = np.asarray(dist) / 1000.0
        far = dist_km > fmt.max_km_from_median
        start = len(excluded)
        far_mask = np.zeros(rows_read, dtype=bool)
        far_mask[idx[far]] = True
        drop(
            far_mask,
            f"geocoded farther than {fmt.max_km_from_median:g} km from the list's median point",
            [
                f"{d:,.0f} km from ({median_point[1]:.4f}, {median_point[0]:.4f})"
                for d in dist_km[far]
            ],
        )
        for rec, d in zip(excluded[start:], dist_km[far], strict=True):
            rec["distance_km"] = float(d)
    flagged: dict[str, int] = {}
    cameras = _build_cameras(raw, fmt, alive, lon, lat, refs, flagged, where)
    df_excluded = (
        pd.DataFrame(excluded, columns=["row", "reason", "detail", "lon", "lat", "distance_km"])
        .sort_values("row", kind="stable")
        .reset_index(drop=True)
    )
    return CityList(fmt.name, cameras, df_excluded, rows_read, median_point, flagged)


def sniff_city_formats(path: str | Path) -> list[str]:
    """Return the names of the known lists whose columns a file has (empty if none).

    Two lists can share columns (New Orleans RTCC and SafeCam are rows of one file): then
    more than one name comes back and the caller must ask for ``source_format``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    out = []
    for name, fmt in CITY_FORMATS.items():
        if (fmt.file_format == "csv") != (suffix in (".csv", ".txt")):
            continue
        try:
            raw = _read_records(path, fmt, nrows=5)
        except (InputError, ValueError, KeyError, OSError):
            continue
        needed = {*fmt.columns.values(), *(r.column for r in fmt.rules)}
        if needed <= set(map(str, raw.columns)):
            out.append(name)
    return out


def _resolve_format(
    path: str | Path, source_format: str | None, mapping: str | Path | CityFormat | None
) -> CityFormat:
    if mapping is not None:
        if isinstance(mapping, CityFormat):
            return mapping
        return city_format_from_file(mapping)
    if source_format in (None, "auto"):
        names = sniff_city_formats(path)
        if len(names) == 1:
            return CITY_FORMATS[names[0]]
        found = f"the columns of {', '.join(names)}" if names else "no known list's columns"
        raise OptionError(
            f"{Path(path).name}: cannot tell which city list this is ({found}). Fix: pass "
            f"--source-format with one of {', '.join(CITY_FORMATS)}, or --mapping FILE "
            "(docs/citylists.md)."
        )
    assert source_format is not None
    if source_format not in CITY_FORMATS:
        raise OptionError(
            f"unknown city list format {source_format!r}. Fix: use one of "
            f"{', '.join(CITY_FORMATS)}, or describe the list in a mapping file and pass "
            "--mapping FILE (docs/citylists.md)."
        )
    return CITY_FORMATS[source_format]


def _read_records(path: Path, fmt: CityFormat, *, nrows: int | None = None) -> pd.DataFrame:
    where = str(path)
    if not path.exists():
        raise InputError(
            [Problem(where, None, None, "no such file", f"a {fmt.name} list", "check the path")]
        )
    if fmt.file_format == "csv":
        try:
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, nrows=nrows, encoding="utf-8-sig"
            )
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(
                [
                    Problem(
                        where,
                        None,
                        None,
                        f"unreadable CSV ({exc})",
                        "a CSV file with a header",
                        "check the file's format and encoding (UTF-8)",
                    )
                ]
            ) from None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(where, None, None, f"invalid JSON ({exc})", "JSON", "check the file")]
        ) from None
    if fmt.file_format == "geojson":
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, list):
            raise InputError(
                [
                    Problem(
                        where,
                        None,
                        "features",
                        "no features list",
                        "a GeoJSON FeatureCollection",
                        "export the list as GeoJSON",
                    )
                ]
            )
        records = []
        for feat in features[:nrows]:
            props = dict(feat.get("properties") or {})
            geom = feat.get("geometry") or {}
            coords = geom.get("coordinates") if geom.get("type") == "Point" else None
            props.setdefault("lon", coords[0] if coords else None)
            props.setdefault("lat", coords[1] if coords else None)
            records.append(props)
        return pd.DataFrame(records, dtype=object)
    for key in [k for k in fmt.records.split(".") if k]:
        if not isinstance(data, dict) or key not in data:
            raise InputError(
                [
                    Problem(
                        where,
                        None,
                        fmt.records,
                        f"no key {key!r}",
                        f"the records list at {fmt.records!r}",
                        "check the mapping's records key",
                    )
                ]
            )
        data = data[key]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(
            [
                Problem(
                    where,
                    None,
                    None,
                    "not a list of objects",
                    "a JSON array of records" + (f" at {fmt.records!r}" if fmt.records else ""),
                    'set records = "<key>" in the mapping\'s [list] if the array is nested',
                )
            ]
        )
    return pd.DataFrame(data[:nrows], dtype=object)


def _coordinates(raw: pd.DataFrame, fmt: CityFormat) -> tuple[np.ndarray, np.ndarray]:
    lon_col = fmt.columns.get("lon", "lon")
    lat_col = fmt.columns.get("lat", "lat")
    lon = pd.to_numeric(raw[lon_col].astype("string").str.strip(), errors="coerce")
    lat = pd.to_numeric(raw[lat_col].astype("string").str.strip(), errors="coerce")
    return lon.to_numpy(dtype="float64", na_value=np.nan), lat.to_numpy(
        dtype="float64", na_value=np.nan
    )


def _is_geographic(crs: str) -> bool:
    return bool(CRS.from_user_input(crs).is_geographic)


def _parse_directions(value: object) -> list[tuple[float, float]]:
    """Return (centre, width) pairs; width NaN when none. Uses the direction grammar of
    :mod:`camcensus.io.directions` when present, else :func:`camcensus.io.osm.parse_direction`."""
    if (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    ):
        return []
    try:
        parse = importlib.import_module("camcensus.io.directions").parse_direction
    except (ImportError, AttributeError):
        parse = importlib.import_module("camcensus.io.osm").parse_direction
    out = []
    for centre, width in parse(str(value)):
        # An all-round range has no centre (direction NaN, width 360).
        out.append(
            (
                math.nan if centre is None else float(centre),
                math.nan if width is None else float(width),
            )
        )
    return out


def _build_cameras(
    raw: pd.DataFrame,
    fmt: CityFormat,
    alive: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    refs: np.ndarray,
    flagged: dict[str, int],
    where: str,
) -> gpd.GeoDataFrame:
    from camcensus.cameras import CAMERA_COLUMNS

    keep = np.flatnonzero(alive)
    n = len(keep)
    sub = raw.iloc[keep].reset_index(drop=True)
    out: dict[str, Any] = {
        "camera_id": refs[keep],
        "position_sd_m": np.full(n, np.nan),
        "mount": "unknown",
        "camera_type": "unknown",
        "surveillance_type": "camera",
        "direction_deg": np.full(n, np.nan),
        "hfov_deg": np.full(n, np.nan),
        "height_m": np.full(n, np.nan),
        "operator": None,
        "source": fmt.source,
        "source_ref": refs[keep],
        "tier": fmt.tier,
        "support": f"listed in {fmt.title}",
        "first_seen": fmt.snapshot,
        "last_seen": fmt.snapshot,
        "licence": fmt.licence,
    }
    for col, value in fmt.constants.items():
        out[col] = value
    for col in _CONTRACT_FROM_COLUMN:
        if col not in fmt.columns:
            continue
        text = sub[fmt.columns[col]].astype("string").str.strip()
        if col in fmt.values:
            table = fmt.values[col]
            mapped = text.fillna("").map(lambda v, t=table: t.get(v))
            unmapped = mapped.isna() & text.fillna("").ne("")
            _flag(
                flagged,
                f"{col} values the mapping does not map (kept as unknown)",
                int(unmapped.sum()),
            )
            text = mapped.fillna(fmt.constants.get(col, "unknown"))
        if col in _VOCABULARY:
            low = text.fillna("").str.lower()
            ok = low.isin(_VOCABULARY[col])
            _flag(
                flagged,
                f"{col} values outside {'/'.join(_VOCABULARY[col])} (kept as unknown)",
                int((~ok & low.ne("")).sum()),
            )
            out[col] = low.where(ok, "unknown").to_numpy(dtype=object)
        elif col in _FLOATS:
            out[col] = pd.to_numeric(text, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
        elif col in ("first_seen", "last_seen"):
            dates = [_iso_date(v, fmt.date_format) for v in text.fillna("")]
            _flag(
                flagged,
                f"{col} dates that cannot be read (kept empty)",
                sum(1 for v, d in zip(text.fillna(""), dates, strict=True) if v and d is None),
            )
            out[col] = np.array(dates, dtype=object)
        else:
            default = fmt.constants.get(col)
            out[col] = np.array(
                [default if pd.isna(v) or not v else str(v) for v in text], dtype=object
            )
    extras = {k: v for k, v in fmt.columns.items() if k not in _SPECIAL + _CONTRACT_FROM_COLUMN}
    df = pd.DataFrame({c: out[c] for c in CAMERA_COLUMNS} if n else {c: [] for c in CAMERA_COLUMNS})
    df["city_list"] = fmt.name
    for key, col in extras.items():
        df[key] = sub[col].to_numpy(dtype=object)
    for col in ("position_sd_m", "direction_deg", "hfov_deg", "height_m"):
        df[col] = df[col].astype("float64")
    geoms = gpd.points_from_xy(lon[keep], lat[keep])
    if "direction" in fmt.columns:
        df, geoms = _explode_directions(df, geoms, sub[fmt.columns["direction"]], flagged)
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def _explode_directions(
    df: pd.DataFrame, geoms: Any, raw_dir: pd.Series, flagged: dict[str, int]
) -> tuple[pd.DataFrame, Any]:
    """One row per direction (``;`` lists); unreadable text kept raw in ``direction_raw``."""
    rows: list[tuple[int, int, float, float, str | None]] = []
    take: list[int] = []
    unreadable = 0
    for i, value in enumerate(raw_dir.to_numpy(dtype=object)):
        text = (
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
        dirs = _parse_directions(text)
        if text.strip() and not dirs:
            unreadable += 1
        for k, (centre, width) in enumerate(dirs or [(math.nan, math.nan)]):
            take.append(i)
            rows.append((k, len(dirs), centre, width, text or None))
    _flag(
        flagged,
        "directions that cannot be read (kept as all-round, raw text in direction_raw)",
        unreadable,
    )
    out = df.iloc[take].reset_index(drop=True)
    ks = np.array([r[0] for r in rows], dtype="int64")
    nd = np.array([r[1] for r in rows], dtype="int64")
    out["direction_deg"] = np.array([r[2] for r in rows], dtype="float64")
    widths = np.array([r[3] for r in rows], dtype="float64")
    out["hfov_deg"] = np.where(np.isfinite(widths) & (widths > 0), widths, out["hfov_deg"])
    out["direction_raw"] = np.array([r[4] for r in rows], dtype=object)
    suffix = np.where(nd > 1, np.char.add("#", (ks + 1).astype(str)), "")
    out["camera_id"] = out["camera_id"].astype(str).to_numpy() + suffix.astype(object)
    return out, np.asarray(geoms)[take]


def _iso_date(text: str, date_format: str | None) -> str | None:
    if not text:
        return None
    try:
        if date_format:
            return datetime.strptime(text, date_format).date().isoformat()
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        return None


def _flag(flagged: dict[str, int], reason: str, count: int) -> None:
    if count > 0:
        flagged[reason] = flagged.get(reason, 0) + int(count)


def _to_ledger(result: CityList, ledger: Ledger) -> None:
    stage = f"{_STAGE} {result.name}"
    for reason, count in result.excluded_by_reason().items():
        ledger.exclude(stage, reason, count)
    far = result.excluded.dropna(subset=["distance_km"])
    if len(far):
        listed = ", ".join(
            f"row {r} ({d:,.0f} km)" for r, d in zip(far["row"], far["distance_km"], strict=True)
        )
        ledger.note(
            f"{stage}: {len(far)} rows geocoded far from the list's median point excluded "
            f"({far['distance_km'].min():,.0f}-{far['distance_km'].max():,.0f} km): {listed}."
        )
    for reason, count in result.flagged.items():
        ledger.flag(stage, reason, count)
