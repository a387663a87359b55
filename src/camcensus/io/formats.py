"""Writers: SQLite (the embedded default store), GeoJSON, checksums."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["json_safe", "sha256", "tables_from_sqlite", "to_geojson", "to_sqlite"]


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

    Recurses into dicts, lists and tuples; ``digits`` rounds floats (compact GeoJSON).
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v, digits=digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v, digits=digits) for v in obj]
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
