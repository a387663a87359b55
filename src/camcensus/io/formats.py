"""Writers: SQLite (the embedded default store), GeoJSON, spreadsheet-safe CSV, checksums."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = [
    "json_safe",
    "read_csv",
    "sha256",
    "tables_from_sqlite",
    "to_geojson",
    "to_sqlite",
    "unquote_csv",
    "write_atomic",
    "write_csv",
]


def sha256(path: str | Path) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_sqlite(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Write frames to a SQLite database in WAL mode, replacing tables of the same name.

    GeoDataFrames are stored in WGS84 with the geometry as WKB in a ``geometry`` BLOB column
    and, for points, ``lon``/``lat`` columns (this Python cannot load SpatiaLite).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        for name, frame in tables.items():
            df = pd.DataFrame(frame)
            if isinstance(frame, gpd.GeoDataFrame):
                g = (
                    frame.to_crs("EPSG:4326").geometry.values
                    if frame.crs
                    else frame.geometry.values
                )
                df = pd.DataFrame(frame.drop(columns=frame.geometry.name))
                if len(g) and np.all(shapely.get_type_id(g) == 0):
                    df["lon"] = shapely.get_x(g)
                    df["lat"] = shapely.get_y(g)
                df["geometry"] = shapely.to_wkb(g)
            df.to_sql(name, con, if_exists="replace", index=not isinstance(df.index, pd.RangeIndex))
        con.commit()
    finally:
        con.close()
    return path


def tables_from_sqlite(path: str | Path, names: list[str]) -> dict[str, pd.DataFrame]:
    """Read tables back; a ``geometry`` BLOB column comes back as a WGS84 GeoDataFrame."""
    con = sqlite3.connect(Path(path))
    try:
        out: dict[str, pd.DataFrame] = {}
        for name in names:
            df = pd.read_sql(f'SELECT * FROM "{name}"', con)
            if "geometry" in df.columns:
                geom = shapely.from_wkb(df.pop("geometry").to_numpy())
                out[name] = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4326")
            else:
                out[name] = df
        return out
    finally:
        con.close()


def to_geojson(
    gdf: gpd.GeoDataFrame, *, precision: int = 5, properties: list[str] | None = None
) -> dict[str, Any]:
    """Return a compact GeoJSON FeatureCollection (WGS84, rounded coordinates) as a dict.

    Empty geometries are left out (a FeatureCollection cannot hold them).
    """
    g4326 = gdf.to_crs("EPSG:4326") if gdf.crs is not None else gdf
    geoms = shapely.set_precision(np.asarray(g4326.geometry.values), 10.0**-precision)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    props = properties if properties is not None else [c for c in gdf.columns if c != "geometry"]
    records = pd.DataFrame(g4326[props]).loc[keep].astype(object)
    records = records.where(pd.notna(records), None)
    texts = shapely.to_geojson(geoms[keep])
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(t),
            "properties": json_safe(r, digits=6),
        }
        for t, r in zip(texts, records.to_dict("records"), strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def json_safe(obj: Any, *, digits: int | None = None) -> Any:
    """Return ``obj`` with numpy / pandas scalars made plain; NaN, inf and NA become ``None``.

    Recurses into dicts, lists, tuples and numpy arrays; ``digits`` rounds floats (compact
    GeoJSON).
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v, digits=digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v, digits=digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), digits=digits)
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        if not np.isfinite(f):
            return None
        return round(f, digits) if digits is not None else f
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


# A text cell a spreadsheet would read as a formula: it starts (after any whitespace) with one of
# these, or with a tab / CR / LF (OWASP "CSV injection"); the fullwidth forms are included because
# some spreadsheets normalise them to their ASCII counterparts.
_FORMULA_START = re.compile(r"^\s*[=+\-@\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]")
# A plain identifier that merely begins with a minus (Street View panorama ids do): no function
# call, string, reference operator or DDE syntax is possible in it (see docs/csv-safety.md).
_PLAIN_ID = re.compile(r"-[A-Za-z0-9_-]*")
# A number written as text (a printed coefficient such as "-1.6062" or "-1.746e-06" in a column
# that also holds "< 2e-16"): a spreadsheet reads it as that number, nothing more.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_QUOTE = "'"


def _csv_cell(value: Any) -> Any:
    """Return ``value`` neutralised for spreadsheets (text only; see :func:`write_csv`)."""
    if not isinstance(value, str):
        return value
    if value.startswith(_QUOTE):
        return _QUOTE + value
    if (
        _FORMULA_START.match(value)
        and not _PLAIN_ID.fullmatch(value)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return _QUOTE + value
    return value


def _csv_uncell(value: Any) -> Any:
    """Undo :func:`_csv_cell`: remove the one leading quote that :func:`write_csv` added.

    A quote that the rule would not have added (``'tis`` in someone else's file) is kept.
    """
    if isinstance(value, str) and value.startswith(_QUOTE) and _csv_cell(value[1:]) == value:
        return value[1:]
    return value


# Cells that may need a quote (a fast first pass; _csv_cell decides).
_MAYBE = re.compile(r"^\s*[=+\-@'\uff1d\uff0b\uff0d\uff20]|^[\t\r\n]")


def _neutralise(col: pd.Series) -> pd.Series:
    """Return the text column with :func:`_csv_cell` applied where a cell may need it."""
    out = col.astype(object)
    maybe = out.astype(str).str.contains(_MAYBE, regex=True).to_numpy(dtype=bool)
    if maybe.any():
        out = out.copy()
        out[maybe] = [_csv_cell(v) for v in out[maybe]]
    return out


def _is_text_column(s: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(s.dtype)
        or pd.api.types.is_bool_dtype(s.dtype)
        or pd.api.types.is_datetime64_any_dtype(s.dtype)
        or pd.api.types.is_timedelta64_dtype(s.dtype)
    )


def write_csv(df: pd.DataFrame, path: str | Path, *, index: bool = False) -> Path:
    """Write ``df`` as UTF-8 CSV that a spreadsheet opens without running any cell.

    The rule (docs/csv-safety.md): a **text** cell gets one ``'`` put in front of it when it
    starts with ``'``, or when it starts, after any whitespace, with ``=``, ``+``, ``-``, ``@``
    (or their fullwidth forms), or with a tab, carriage return or line feed, unless the whole
    cell is a plain identifier ``-[A-Za-z0-9_-]*`` (a Street View panorama id such as
    ``-2xQ9_abcDEF`` stays as it is). Numbers, booleans and dates are never changed (a numeric
    column's -3.5 is written as ``-3.5``); header names follow the same rule as text cells.
    :func:`read_csv` (or :func:`unquote_csv`) removes the quote again, so every value
    round-trips.

    Parameters
    ----------
    df
        The table; geometry columns must have been dropped or turned into text.
    path
        Where to write (parent folders are created).
    index
        Write the index as the first column(s), under its name(s).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(df.reset_index() if index else df).copy()
    for col in frame.columns:
        if _is_text_column(frame[col]):
            frame[col] = _neutralise(frame[col])
    frame.columns = pd.Index([_csv_cell(str(c)) for c in frame.columns])
    # CRLF rows (RFC 4180): a cell holding a CR or LF is then always quoted.
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\r\n")
    return path


def unquote_csv(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the quotes :func:`write_csv` put before formula-like text removed.

    For readers that read camcensus CSVs with their own :func:`pandas.read_csv` call: text
    columns, column names and a text index are restored; other columns are left as they are.
    """
    df = df.copy()
    for col in df.columns:
        if _is_text_column(df[col]):
            # Keep the column's dtype (pandas' string dtype stays a string dtype).
            df[col] = df[col].astype(object).map(_csv_uncell).astype(df[col].dtype)
    df.columns = pd.Index([_csv_uncell(c) for c in df.columns])
    if _is_text_column(df.index.to_series()):
        df.index = pd.Index([_csv_uncell(v) for v in df.index], name=_csv_uncell(df.index.name))
    return df


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv`, its text exactly as it was before writing.

    ``kwargs`` go to :func:`pandas.read_csv` (e.g. ``dtype={"GEOID": str}``).
    """
    df: pd.DataFrame = pd.read_csv(path, **kwargs)
    return unquote_csv(df)


def read_csv_or_refuse(path: str | Path, *, expected: str, fix: str, **kwargs: Any) -> pd.DataFrame:
    """:func:`read_csv`, turning a file that is not a readable CSV (binary, bad quoting, empty,
    not UTF-8) into an :class:`~camcensus.InputError` naming the file, ``expected`` and ``fix``."""
    from camcensus._errors import InputError, Problem

    try:
        return read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(str(path), None, None, f"not a readable CSV ({exc})", expected, fix)]
        ) from exc


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file in its folder, replaced in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
