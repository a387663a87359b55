"""Writers of the exposure results: route.json + route.geojson, areas.csv + areas.geojson."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from camcensus.exposure.areas import area_exposure
from camcensus.exposure.routes import ExposureIndex, RouteResult

__all__ = ["areas_to_files", "route_to_files"]


def route_to_files(result: RouteResult, out: str | Path) -> tuple[Path, Path]:
    """Write ``out/route.json`` (the figures, :meth:`RouteResult.to_dict`) and
    ``out/route.geojson`` (:meth:`RouteResult.to_geojson`); return both paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    figures = folder / "route.json"
    geo = folder / "route.geojson"
    figures.write_text(json.dumps(_clean(result.to_dict()), indent=2) + "\n", encoding="utf-8")
    geo.write_text(json.dumps(_clean(result.to_geojson())) + "\n", encoding="utf-8")
    return figures, geo


def areas_to_files(
    index: ExposureIndex,
    areas: gpd.GeoDataFrame,
    *,
    id_column: str,
    out: str | Path,
) -> tuple[pd.DataFrame, Path, Path]:
    """Compute :func:`~camcensus.exposure.area_exposure` and write ``out/areas.csv`` (one row
    per area and band) and ``out/areas.geojson`` (the areas in WGS84 with
    ``street_m`` and ``share_<band>`` / ``covered_m_<band>`` per band)."""
    table = area_exposure(index, None, areas, id_column=id_column)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "areas.csv"
    geo = folder / "areas.geojson"
    table.to_csv(csv, index=False)
    wide = table.pivot_table(
        index=id_column, columns="band", values=["covered_m", "share_covered"], sort=False
    )
    prefix = {"share_covered": "share", "covered_m": "covered_m"}
    wide.columns = [f"{prefix[str(col[0])]}_{col[1]}" for col in wide.columns]
    street = table.drop_duplicates(id_column).set_index(id_column)["street_m"]
    gdf = areas[[id_column, "geometry"]].to_crs("EPSG:4326").copy()
    gdf["street_m"] = gdf[id_column].map(street).to_numpy()
    for col in wide.columns:
        gdf[col] = gdf[id_column].map(wide[col]).to_numpy()
    gdf["model"] = index.model
    geo.write_text(gdf.to_json(drop_id=True), encoding="utf-8")
    return table, csv, geo


def _clean(value: Any) -> Any:
    """Return ``value`` with NaN/inf as None and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
