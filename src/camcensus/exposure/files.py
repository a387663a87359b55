"""Writers of the exposure results: route.json + route.geojson, areas.csv + areas.geojson."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from camcensus._errors import InputError, OptionError, Problem
from camcensus.exposure.areas import area_exposure
from camcensus.exposure.routes import ExposureIndex, RouteResult

__all__ = ["areas_to_files", "route_to_files"]


def route_to_files(result: RouteResult, out: str | Path) -> tuple[Path, Path]:
    """Write ``out/route.json`` (the figures, :meth:`RouteResult.to_dict`) and
    ``out/route.geojson`` (:meth:`RouteResult.to_geojson`); return both paths."""
    folder = _out_folder(out)
    figures = folder / "route.json"
    geo = folder / "route.geojson"
    _write_texts(
        {
            figures: json.dumps(_clean(result.to_dict()), indent=2) + "\n",
            geo: json.dumps(_clean(result.to_geojson())) + "\n",
        }
    )
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
    folder = _out_folder(out)
    _check_polygons(areas)
    table = area_exposure(index, None, areas, id_column=id_column)
    csv = folder / "areas.csv"
    geo = folder / "areas.geojson"
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
    _write_texts({csv: table.to_csv(index=False), geo: gdf.to_json(drop_id=True)})
    return table, csv, geo


def _out_folder(out: str | Path) -> Path:
    """Return the output folder, created; refuse a path that is a file (an input, often)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise OptionError(
            f"--out {folder} is a file; the results are a folder of files. "
            "Fix: give a folder name for --out (it is created)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_polygons(areas: gpd.GeoDataFrame) -> None:
    """Refuse areas that are not polygons (they hold no street length)."""
    types = areas.geometry.geom_type
    # Missing geometries are area_exposure's to count; only wrong kinds are refused here.
    bad = types.notna() & ~types.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        first = int(bad.to_numpy().nonzero()[0][0])
        found = sorted({str(t) for t in types[bad].unique()})
        raise InputError(
            [
                Problem(
                    str(areas.attrs.get("source", "")),
                    first + 1,
                    "geometry",
                    f"{int(bad.sum()):,} areas that are not polygons ({', '.join(found)})",
                    "Polygon or MultiPolygon areas",
                    "pass polygons for --areas (parks, tracts, districts)",
                )
            ]
        )


def _write_texts(files: dict[Path, str]) -> None:
    """Write every file beside its target, then rename all: a failure leaves no partial set."""
    for path in files:
        if path.is_dir():
            raise OptionError(
                f"{path} is a folder; it is where a result file goes. Fix: remove it or give "
                "another --out folder."
            )
    tmps = {path: path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") for path in files}
    try:
        for path, text in files.items():
            tmps[path].write_text(text, encoding="utf-8")
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


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
