"""Readers for census geography (tracts, boroughs) and ACS tract tables."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from camcensus._errors import InputError, Ledger, Problem
from camcensus._geo import check_crs_plausible
from camcensus.io._validate import Col, missing_columns, parse_columns
from camcensus.io._validate import read_text_table as _read

__all__ = [
    "NYC_COUNTIES",
    "CensusColumns",
    "boroughs_from_file",
    "census_from_csv",
    "read_vector",
    "tracts_from_file",
]

#: County FIPS (state 36) of the five boroughs of New York City.
NYC_COUNTIES = {
    "36005": "Bronx",
    "36047": "Brooklyn",
    "36061": "Manhattan",
    "36081": "Queens",
    "36085": "Staten Island",
}


def read_vector(
    path: str | Path, layer: str | None = None, crs: str | None = None
) -> gpd.GeoDataFrame:
    """Read any OGR vector file, failing clearly if it is missing, unreadable or has no CRS."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "an existing file", "check the path")]
        )
    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a file GDAL/OGR cannot read ({type(exc).__name__}: {exc})",
                    "a vector file (GeoPackage, shapefile, GeoJSON, ...)",
                    "check the file, or name the layer with layer=...",
                )
            ]
        ) from exc
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    if gdf.crs is None:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "geometry",
                    "no CRS (a shapefile without .prj?)",
                    "a declared CRS",
                    "pass the CRS explicitly (crs='EPSG:2908' / --tracts-crs EPSG:2908)",
                )
            ]
        )
    check_crs_plausible(gdf, str(path))
    return gdf


def _check_polygons(gdf: gpd.GeoDataFrame, path: Path, id_col: str) -> gpd.GeoDataFrame:
    kinds = shapely.get_type_id(gdf.geometry.values)
    bad = ~np.isin(kinds, [3, 6])  # Polygon, MultiPolygon
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                "geometry",
                f"{gdf.geometry.iloc[i].geom_type if gdf.geometry.iloc[i] else 'no geometry'}"
                f" for {id_col} {gdf[id_col].iloc[i]!r}",
                "a Polygon or MultiPolygon",
                "drop or repair that feature",
            )
            for i in rows
        )
    invalid = ~shapely.is_valid(gdf.geometry.values)
    if invalid.any():
        gdf = gdf.copy()
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry.values[invalid])
        gdf.attrs["repaired_geometries"] = int(invalid.sum())
    return gdf


def tracts_from_file(
    path: str | Path,
    *,
    geoid: str = "GEOID",
    borough: str = "borough",
    layer: str | None = None,
    crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Read census tract polygons from any OGR format and CRS.

    Parameters
    ----------
    path
        Vector file, e.g. ``tracts.shp`` (EPSG:2908) or ``tract_sf.gpkg`` (EPSG:2263).
    geoid
        Column holding the 11-digit tract GEOID (read as text; leading zeros kept).
    borough
        Column holding the borough (or county) name. When absent and every GEOID is in one of
        New York City's five counties, the borough is derived from the GEOID.
    layer
        Layer to read from a multi-layer file.
    crs
        CRS to assume when the file declares none (or declares a wrong one).

    Returns
    -------
    geopandas.GeoDataFrame
        Index RangeIndex; columns ``GEOID`` (str), ``borough`` (str), ``geometry``
        ((Multi)Polygon) in the file's CRS. Invalid rings are repaired (counted in
        ``attrs["repaired_geometries"]``).
    """
    path = Path(path)
    gdf = read_vector(path, layer, crs)
    cols = {c.lower(): c for c in gdf.columns}
    if geoid not in gdf.columns and geoid.lower() in cols:
        geoid = cols[geoid.lower()]
    if geoid not in gdf.columns:
        raise InputError(
            missing_columns(pd.DataFrame(columns=gdf.columns), path, [geoid], why="tract id")
        )
    out = gpd.GeoDataFrame(
        {"GEOID": gdf[geoid].astype(str).str.strip()}, geometry=gdf.geometry, crs=gdf.crs
    )
    if borough not in gdf.columns and borough.lower() in cols:
        borough = cols[borough.lower()]
    if borough in gdf.columns:
        out["borough"] = gdf[borough].astype(str)
    else:
        county = out["GEOID"].str[:5]
        if not county.isin(list(NYC_COUNTIES)).all():
            raise InputError(
                missing_columns(
                    pd.DataFrame(columns=gdf.columns), path, [borough], why="borough of each tract"
                )
            )
        out["borough"] = county.map(NYC_COUNTIES)
    dup = out["GEOID"].duplicated()
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:5]
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                geoid,
                f"GEOID {out['GEOID'].iloc[i]!r} a second time",
                "one feature per tract",
                "dissolve the pieces of that tract into one MultiPolygon",
            )
            for i in rows
        )
    out = _check_polygons(out[["GEOID", "borough", "geometry"]], path, "GEOID")
    out.attrs["source"] = str(path)
    return out


def boroughs_from_file(
    path: str | Path, *, name: str = "BoroName", layer: str | None = None, crs: str | None = None
) -> gpd.GeoDataFrame:
    """Read borough (or district) polygons; returns ``BoroName`` and ``geometry``."""
    path = Path(path)
    gdf = read_vector(path, layer, crs)
    for alt in (name, "boro_name", "borough_name", "borough", "name"):
        matches = [c for c in gdf.columns if c.lower() == alt.lower()]
        if matches:
            name = matches[0]
            break
    if name not in gdf.columns:
        raise InputError(
            missing_columns(pd.DataFrame(columns=gdf.columns), path, [name], why="borough name")
        )
    out = gpd.GeoDataFrame(
        {"BoroName": gdf[name].astype(str)}, geometry=gdf.geometry, crs=gdf.crs
    ).dissolve("BoroName", as_index=False)
    out = _check_polygons(out, path, "BoroName")
    out.attrs["source"] = str(path)
    return out


@dataclass(frozen=True)
class CensusColumns:
    """Column names of an ACS tract table (defaults: ``census/acs2019_tract/census.csv``)."""

    geoid: str = "GEOID"
    popn: str = "popn"
    white: str = "popn.white"
    black: str = "popn.black"
    hispanic: str = "popn.hispanic"
    income: str = "med.income"


def census_from_csv(
    path: str | Path, *, columns: CensusColumns | None = None, ledger: Ledger | None = None
) -> pd.DataFrame:
    """Read an ACS tract table.

    Returns a DataFrame indexed by ``GEOID`` (str) with float columns ``popn``, ``popn_white``,
    ``popn_black``, ``popn_hispanic``, ``med_income`` (NaN where the ACS gives none, counted in
    ``ledger`` as a note) plus ``nonwhite_fraction`` = (Black + Hispanic) / (Black + Hispanic +
    White), the investigation's definition, NaN where that denominator is 0.
    """
    path = Path(path)
    c = columns or CensusColumns()
    df = _read(path)
    names = {f.name: getattr(c, f.name) for f in fields(c)}
    required = [names[k] for k in ("geoid", "popn", "white", "black", "hispanic")]
    problems = missing_columns(df, path, required, why="ACS tract estimate")
    if problems:
        raise InputError(problems)
    cols = [Col(names["geoid"], "str")]
    cols += [Col(names[k], "float") for k in ("popn", "white", "black", "hispanic")]
    has_income = names["income"] in df.columns
    if has_income:
        cols.append(Col(names["income"], "float", nullable=True))
    parsed = parse_columns(df, path, cols)
    out = pd.DataFrame(
        {
            "GEOID": parsed[names["geoid"]].astype(str).str.strip(),
            "popn": parsed[names["popn"]].astype(float),
            "popn_white": parsed[names["white"]].astype(float),
            "popn_black": parsed[names["black"]].astype(float),
            "popn_hispanic": parsed[names["hispanic"]].astype(float),
            "med_income": parsed[names["income"]].astype(float) if has_income else np.nan,
        }
    )
    dup = out["GEOID"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            [
                Problem(
                    str(path),
                    i + 1,
                    names["geoid"],
                    f"GEOID {out['GEOID'].iloc[i]!r} a second time",
                    "one row per tract",
                    "keep one estimate per tract (long-format tables must be pivoted first)",
                )
            ]
        )
    denom = out["popn_black"] + out["popn_hispanic"] + out["popn_white"]
    out["nonwhite_fraction"] = (out["popn_black"] + out["popn_hispanic"]) / denom.where(denom > 0)
    if ledger is not None and has_income:
        n_na = int(out["med_income"].isna().sum())
        if n_na:
            ledger.note(f"{n_na} tracts have no ACS median income (models using it exclude them)")
    out = out.set_index("GEOID")
    out.attrs["source"] = str(path)
    return out
