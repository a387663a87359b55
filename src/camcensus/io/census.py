"""Readers for census geography (tracts, boroughs) and ACS tract tables."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus._geo import check_crs_plausible, crs_fix
from camcensus.io._validate import Col, missing_columns, parse_columns
from camcensus.io._validate import read_text_table as _read

__all__ = [
    "B19001_BRACKETS",
    "NYC_COUNTIES",
    "RACE_DEFINITIONS",
    "AcsTable",
    "CensusColumns",
    "RaceDefinition",
    "VintageCheck",
    "acs_from_file",
    "boroughs_from_file",
    "census_from_csv",
    "check_tract_vintage",
    "geoid_mismatch_hint",
    "median_from_brackets",
    "note_tracts_without_census",
    "read_vector",
    "tracts_from_file",
    "tracts_without_census",
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
    path: str | Path,
    layer: str | None = None,
    crs: str | None = None,
    *,
    layer_option: str | None = None,
    crs_option: str | None = None,
) -> gpd.GeoDataFrame:
    """Read any OGR vector file, failing clearly if it is missing, unreadable or has no CRS.

    A file with several layers holding geometries (a GeoPackage, a folder of shapefiles) needs
    ``layer``; without it the :class:`InputError` lists the layers. ``layer_option`` and
    ``crs_option`` name the command-line options that set the layer and the CRS (e.g.
    ``"--tracts-layer"``, ``"--tracts-crs"``), for the fix texts.
    A file with one geometry layer beside attribute-only tables reads that layer.
    A table without geometries (a CSV, say) and a file with no features are errors too.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "an existing file", "check the path")]
        )
    with _quiet_ogr():
        layer = _pick_layer(path, layer, layer_option)
        try:
            read = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
        except Exception as exc:
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        f"a file GDAL/OGR cannot read ({type(exc).__name__}: {exc})",
                        "a vector file (GeoPackage, shapefile, GeoJSON, ...)",
                        "check that the file is complete (a shapefile needs its .shx and .dbf "
                        "beside the .shp) and is a vector format",
                    )
                ]
            ) from exc
    if not isinstance(read, gpd.GeoDataFrame) or read.active_geometry_name is None:
        columns = ", ".join(repr(str(c)) for c in list(read.columns)[:6])
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "geometry",
                    "no geometry column: a table, not a vector file"
                    + (f" (columns {columns})" if columns else ""),
                    "a vector file of polygons (GeoPackage, shapefile, GeoJSON, ...)",
                    "give the polygon file here (e.g. tracts.gpkg or boroughs.shp); a CSV "
                    "table belongs to another option",
                )
            ]
        )
    gdf = read
    if len(gdf) == 0:
        where = f" in layer {layer!r}" if layer else ""
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"0 features{where}",
                    "at least one polygon",
                    "check that the export finished and wrote its features"
                    + (
                        f", or choose the layer holding them ({layer_option})"
                        if layer_option
                        else ""
                    ),
                )
            ]
        )
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
                    crs_fix(
                        str(path),
                        crs_option=crs_option,
                        bounds=tuple(float(v) for v in gdf.total_bounds),  # type: ignore[arg-type]
                    ),
                )
            ]
        )
    check_crs_plausible(gdf, str(path), crs_option=crs_option)
    return gdf


@contextmanager
def _quiet_ogr() -> Iterator[None]:
    """Silence GDAL's warning about a file without its usual extension: the file is read
    all the same (by its content), so the warning says nothing the user must act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non conformant file extension.*")
        yield


def _pick_layer(path: Path, layer: str | None, layer_option: str | None) -> str | None:
    """Return the layer to read, or raise listing the layers when the choice is ambiguous."""
    try:
        listed = pyogrio.list_layers(path)
    except Exception:
        # Not a readable vector source: gpd.read_file reports it.
        return layer
    names = [str(row[0]) for row in listed]
    spatial = [str(row[0]) for row in listed if row[1] is not None]
    if layer is not None and layer in names:
        return layer
    if layer is None and len(spatial) <= 1:
        return spatial[0] if spatial and len(names) > 1 else None
    choices = spatial or names
    how = f"layer={choices[0]!r} in Python"
    if layer_option:
        how += f", or {layer_option} {choices[0]} on the command line"
    found = (
        f"{len(choices)} layers with geometries and no layer chosen"
        if layer is None
        else f"no layer {layer!r}"
    )
    raise InputError(
        [
            Problem(
                str(path),
                None,
                None,
                found,
                "one of the layers " + ", ".join(repr(n) for n in choices),
                f"name the layer to read: {how}",
            )
        ]
    )


def _area_m2(geoms: np.ndarray, crs: object) -> np.ndarray:
    """Return the areas of ``geoms`` (in ``crs``) in square metres, measured in local UTM."""
    series = gpd.GeoSeries(geoms, crs=crs)
    bounds = series.total_bounds
    if not np.all(np.isfinite(bounds)):
        return np.zeros(len(series))
    return np.asarray(series.to_crs(series.estimate_utm_crs()).area, dtype="float64")


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Return the polygonal parts of a repaired geometry (lines and points of a collapsed
    ring are dropped) as a Polygon or MultiPolygon, or an empty Polygon."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    if not parts:
        return shapely.Polygon()
    merged = shapely.union_all(parts)
    return merged


def _check_polygons(
    gdf: gpd.GeoDataFrame,
    path: Path,
    id_col: str,
    *,
    ledger: Ledger | None = None,
    stage: str = "read tracts",
) -> gpd.GeoDataFrame:
    """Exclude empty geometries, reject non-polygons, repair invalid polygons; count each."""
    geoms = np.asarray(gdf.geometry.values)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kinds = shapely.get_type_id(geoms)
    bad = ~np.isin(kinds, [3, 6]) & ~empty  # Polygon, MultiPolygon
    if bad.any():
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                "geometry",
                f"a {geoms[i].geom_type} for {id_col} {gdf[id_col].iloc[i]!r}",
                "a Polygon or MultiPolygon",
                "drop or repair that feature (e.g. in QGIS or with ogr2ogr -nlt MULTIPOLYGON)",
            )
            for i in np.flatnonzero(bad)[:20]
        )
    out = gdf.copy()
    invalid = ~empty & ~shapely.is_valid(geoms)
    n_invalid = int(invalid.sum())
    if n_invalid:
        before = geoms[invalid]
        repaired = np.array([_polygonal(g) for g in shapely.make_valid(before)], dtype=object)
        change = float(np.sum(_area_m2(repaired, gdf.crs) - _area_m2(before, gdf.crs)))
        new = geoms.copy()
        new[invalid] = repaired
        out = out.set_geometry(gpd.GeoSeries(new, index=out.index, crs=gdf.crs))
        empty = empty | shapely.is_empty(new)
        out.attrs["repaired_geometries"] = n_invalid
        out.attrs["repaired_area_change_m2"] = change
        if ledger is not None:
            ledger.note(
                f"{path.name}: {n_invalid:,} invalid polygon(s) repaired (shapely.make_valid, "
                f"polygonal parts kept); area changed by {change:,.0f} m²."
            )
    n_empty = int(empty.sum())
    if n_empty == len(out):
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "geometry",
                    f"no feature with a polygon: all {n_empty:,} have an empty or no geometry",
                    "at least one polygon",
                    "export the polygons again with their geometries",
                )
            ]
        )
    if n_empty:
        out = out.loc[~empty]
        if ledger is not None:
            ledger.exclude(stage, f"feature with empty or no geometry ({path.name})", n_empty)
        out.attrs["empty_geometries"] = n_empty
    return out.reset_index(drop=True)


def tracts_from_file(
    path: str | Path,
    *,
    geoid: str = "GEOID",
    borough: str = "borough",
    layer: str | None = None,
    crs: str | None = None,
    ledger: Ledger | None = None,
    default_borough: str | None = None,
) -> gpd.GeoDataFrame:
    """Read census tract polygons from any OGR format and CRS.

    Parameters
    ----------
    path
        Vector file, e.g. ``tracts.shp`` (EPSG:2908) or ``tract_sf.gpkg`` (EPSG:2263).
    geoid
        Column holding the 11-digit tract GEOID (read as text; leading zeros kept; a GEOID
        stored as a float, ``36005000100.0``, is written back as digits, counted in a note).
    borough
        Column holding the borough (or county) name. When absent and every GEOID is in one of
        New York City's five counties, the borough is derived from the GEOID.
    layer
        Layer to read from a multi-layer file (required when it has several; the error lists
        them).
    crs
        CRS to assume when the file declares none (or declares a wrong one).
    ledger
        Receives the features without geometry (excluded) and the invalid polygons repaired
        (a note with the area changed).
    default_borough
        District of every tract when the file has no ``borough`` column and the tracts are
        not New York City's (``camcensus audit`` gives the city's name); without it such a
        file is an error.

    Returns
    -------
    geopandas.GeoDataFrame
        Index RangeIndex; columns ``GEOID`` (str), ``borough`` (str), ``geometry``
        ((Multi)Polygon) in the file's CRS. Invalid polygons are repaired (counted in
        ``attrs["repaired_geometries"]``, area change in ``attrs["repaired_area_change_m2"]``);
        empty or null geometries are excluded (``attrs["empty_geometries"]``).
    """
    path = Path(path)
    gdf = read_vector(path, layer, crs, layer_option="--tracts-layer", crs_option="--tracts-crs")
    cols = {c.lower(): c for c in gdf.columns}
    if geoid not in gdf.columns and geoid.lower() in cols:
        geoid = cols[geoid.lower()]
    if geoid not in gdf.columns:
        raise InputError(
            missing_columns(pd.DataFrame(columns=gdf.columns), path, [geoid], why="tract id")
        )
    _raise_missing_values(
        gdf[geoid], path, geoid, "a tract GEOID (11 digits)", "fill in the tract's GEOID"
    )
    ids, n_float = _normalize_geoids(gdf[geoid])
    _raise_mangled_geoids(ids, path, geoid)
    if n_float and ledger is not None:
        ledger.note(
            f"{path.name}: {n_float:,} GEOIDs stored as decimal numbers (e.g. "
            "'36005000100.0') were read as digits."
        )
    out = gpd.GeoDataFrame({"GEOID": ids}, geometry=gdf.geometry, crs=gdf.crs)
    if borough not in gdf.columns and borough.lower() in cols:
        borough = cols[borough.lower()]
    if borough in gdf.columns:
        _raise_missing_values(
            gdf[borough], path, borough, "the borough of the tract", "fill in the borough name"
        )
        out["borough"] = gdf[borough].astype(str).str.strip()
    else:
        county = out["GEOID"].str[:5]
        if county.isin(list(NYC_COUNTIES)).all():
            out["borough"] = county.map(NYC_COUNTIES)
        elif default_borough is not None:
            out["borough"] = default_borough
        else:
            raise InputError(
                missing_columns(
                    pd.DataFrame(columns=gdf.columns), path, [borough], why="borough of each tract"
                )
            )
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
    out = _check_polygons(
        out[["GEOID", "borough", "geometry"]], path, "GEOID", ledger=ledger, stage="read tracts"
    )
    out.attrs["source"] = str(path)
    return out


def boroughs_from_file(
    path: str | Path,
    *,
    name: str = "BoroName",
    layer: str | None = None,
    crs: str | None = None,
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Read borough (or district) polygons; returns ``BoroName`` and ``geometry``.

    Pieces with the same name are dissolved into one feature; empty geometries are excluded
    and invalid polygons repaired first, both counted in ``ledger``.
    """
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
    _raise_missing_values(gdf[name], path, name, "a borough name", "fill in the borough's name")
    out = gpd.GeoDataFrame(
        {"BoroName": gdf[name].astype(str).str.strip()}, geometry=gdf.geometry, crs=gdf.crs
    )
    out = _check_polygons(out, path, "BoroName", ledger=ledger, stage="read boroughs")
    out = out.dissolve("BoroName", as_index=False)
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

    Every population cell must be a number >= 0 and every GEOID text of digits; all problems are
    raised together as one :class:`InputError` with their rows. A group (White, Black,
    Hispanic) larger than the tract's population is a problem of its row too (a shifted column
    or a typo; rejected, not flagged, because it would corrupt ``nonwhite_fraction``).
    A GEOID written as a float (``36005000100.0``, as pandas or a spreadsheet writes an id read
    as a number) is read as its digits and counted in a note; one in scientific notation
    (digits lost) is a problem.
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
    cols += [Col(names[k], "amount") for k in ("popn", "white", "black", "hispanic")]
    has_income = names["income"] in df.columns
    if has_income:
        cols.append(Col(names["income"], "float", nullable=True))
    parsed = parse_columns(df, path, cols)
    ids, n_float = _normalize_geoids(parsed[names["geoid"]])
    _raise_mangled_geoids(ids, path, names["geoid"])
    if n_float and ledger is not None:
        ledger.note(
            f"{path.name}: {n_float:,} GEOIDs written as decimal numbers (e.g. "
            "'36005000100.0') were read as digits."
        )
    out = pd.DataFrame(
        {
            "GEOID": ids,
            "popn": parsed[names["popn"]].astype(float),
            "popn_white": parsed[names["white"]].astype(float),
            "popn_black": parsed[names["black"]].astype(float),
            "popn_hispanic": parsed[names["hispanic"]].astype(float),
            "med_income": parsed[names["income"]].astype(float) if has_income else np.nan,
        }
    )
    _raise_groups_above_total(out, path, names)
    dup = out["GEOID"].duplicated()
    if dup.any():
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                names["geoid"],
                f"GEOID {out['GEOID'].iloc[i]!r} a second time",
                "one row per tract",
                "keep one estimate per tract (long-format tables must be pivoted first)",
            )
            for i in np.flatnonzero(dup.to_numpy())[:20]
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


def _raise_groups_above_total(out: pd.DataFrame, path: Path, names: dict[str, str]) -> None:
    """Raise naming every row where a group (White, Black, Hispanic) outnumbers the tract.

    Each group is a part of the tract's population (their sum may exceed it: Hispanic people
    are of any race), so a group above the total is a shifted column or a typo, and would
    put the tract's non-white fraction out of kilter.
    """
    problems: list[Problem] = []
    for key, col in (
        ("white", "popn_white"),
        ("black", "popn_black"),
        ("hispanic", "popn_hispanic"),
    ):
        above = np.flatnonzero((out[col] > out["popn"]).to_numpy())
        for i in above[:5]:
            problems.append(
                Problem(
                    str(path),
                    int(i) + 1,
                    names[key],
                    f"{out[col].iloc[i]:g}, more than the tract's {names['popn']} "
                    f"{out['popn'].iloc[i]:g}",
                    f"at most {names['popn']} (a group is part of the tract's population)",
                    "check that the columns are not shifted or swapped and take the estimates "
                    "again from the ACS table",
                )
            )
        if len(above) > 5:
            problems.append(
                Problem(
                    str(path),
                    None,
                    names[key],
                    f"{len(above) - 5} more rows above {names['popn']} (rows "
                    f"{', '.join(str(int(i) + 1) for i in above[5:10])}, ...)",
                    f"at most {names['popn']}",
                    "check that the columns are not shifted or swapped",
                )
            )
    if problems:
        raise InputError(problems)


_FLOAT_ID = r"\d+\.0*"
_SCIENTIFIC_ID = r"[+-]?\d(\.\d+)?[eE][+-]?\d+"
_API_PREFIX = "1400000US"


def _raise_missing_values(
    values: pd.Series, path: Path, column: str, expected: str, fix: str
) -> None:
    """Raise naming the features whose ``column`` is null or blank (each would otherwise be a
    row without an id, or be dropped silently by a later group-by)."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    missing = np.flatnonzero(text.isin(["", "nan", "None"]).to_numpy())
    if len(missing):
        more = f" ({len(missing):,} features in all)" if len(missing) > 20 else ""
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                column,
                "an empty cell" + (more if n == 0 else ""),
                expected,
                f"{fix} (feature {int(i) + 1}), or delete the feature if it is not one",
            )
            for n, i in enumerate(missing[:20])
        )


def _normalize_geoids(values: pd.Series) -> tuple[pd.Series, int]:
    """Return the GEOIDs as stripped text, float formatting (``'36005000100.0'``) undone, and
    how many were so written."""
    ids = values.astype(str).str.strip()
    is_float = ids.str.fullmatch(_FLOAT_ID).fillna(False).to_numpy(dtype=bool)
    if is_float.any():
        ids = ids.where(~is_float, ids.str.split(".").str[0])
    return ids.reset_index(drop=True), int(is_float.sum())


def _raise_mangled_geoids(ids: pd.Series, path: Path, column: str) -> None:
    """Raise when GEOIDs are in scientific notation (a spreadsheet dropped their digits)."""
    sci = ids.str.fullmatch(_SCIENTIFIC_ID).fillna(False).to_numpy(dtype=bool)
    if sci.any():
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                column,
                repr(ids.iloc[i]),
                "a GEOID written as digits (11 for a tract, e.g. '36005000100')",
                "the digits were lost when the GEOID was stored as a number: format the column "
                "as text in the spreadsheet, or take the table again from its source",
            )
            for i in np.flatnonzero(sci)[:5]
        )


def _geoid_variants(ids: pd.Series) -> pd.Series:
    """Return ids with the usual corruptions undone: float formatting, the Census API
    ``1400000US`` prefix, lost leading zeros (padded to 11 digits)."""
    out, _ = _normalize_geoids(ids)
    out = out.str.removeprefix(_API_PREFIX)
    digits = out.str.fullmatch(r"\d{1,10}").fillna(False)
    return out.where(~digits, out.str.zfill(11))


def geoid_mismatch_hint(
    left_ids: Iterable[object],
    right_ids: Iterable[object],
    left_file: str = "the tracts",
    right_file: str = "the census table",
) -> str:
    """Explain why the GEOIDs of two tables do not match, and how to fix it.

    Call it when a join on GEOID matches no (or few) rows. It recognises GEOIDs written as
    floats (``'36005000100.0'``), lost leading zeros (``'1001020100'`` for ``'01001020100'``),
    scientific notation, the Census API prefix ``1400000US``, different states or counties,
    and different census vintages (same counties, other tract codes).
    """
    left = pd.Series([str(v).strip() for v in left_ids], dtype=object)
    right = pd.Series([str(v).strip() for v in right_ids], dtype=object)
    n_match = len(set(left) & set(right))
    head = (
        f"{n_match:,} of {left.nunique():,} GEOIDs of {left_file} match one of "
        f"{right.nunique():,} in {right_file}."
    )
    if left.empty or right.empty:
        empty = left_file if left.empty else right_file
        return f"{head} {empty} has no GEOIDs. Fix: check that the file holds the tract rows."
    reasons: list[str] = []
    for ids, name in ((left, left_file), (right, right_file)):
        ex = ids.iloc[0]
        if ids.str.fullmatch(_SCIENTIFIC_ID).any():
            reasons.append(
                f"{name} has GEOIDs in scientific notation (e.g. {ex!r}): their digits are lost; "
                "take the table again with the GEOID column formatted as text"
            )
        elif ids.str.fullmatch(_FLOAT_ID).any():
            reasons.append(
                f"{name} has GEOIDs written as decimal numbers (e.g. {ex!r}); write them as "
                "text digits (read the column as text: dtype=str)"
            )
        if ids.str.startswith(_API_PREFIX).any():
            reasons.append(
                f"{name} has Census API GEO_IDs with the prefix {_API_PREFIX!r} (e.g. {ex!r}); "
                "remove the prefix"
            )
        lengths = ids.str.len()
        if ids.str.fullmatch(r"\d+").all() and (lengths < 11).any():
            reasons.append(
                f"{name} has GEOIDs shorter than 11 digits (e.g. {ex!r}): leading zeros were "
                "lost when they were read as numbers; pad them to 11 digits (str.zfill(11)) "
                "or read the column as text"
            )
    fixed_match = len(set(_geoid_variants(left)) & set(_geoid_variants(right)))
    if not reasons:
        lc = set(_geoid_variants(left).str[:5])
        rc = set(_geoid_variants(right).str[:5])
        if not lc & rc:
            reasons.append(
                f"the files cover different states or counties: {left_file} has "
                f"{_some(lc)}, {right_file} has {_some(rc)} (state+county FIPS); use a table "
                "for the same place"
            )
        else:
            reasons.append(
                "the files share counties but not tract codes: they are probably of different "
                "census vintages (tracts are redrawn every 10 years: 2010 tracts serve ACS "
                "2010-2019, 2020 tracts ACS 2020 on); use tracts and a table of the same vintage"
            )
    elif fixed_match > n_match:
        reasons.append(f"{fixed_match:,} GEOIDs match once these are corrected")
    return f"{head} Likely cause: " + "; ".join(reasons) + "."


def _some(values: set[str], k: int = 5) -> str:
    items = sorted(values)
    more = f" and {len(items) - k} more" if len(items) > k else ""
    return ", ".join(items[:k]) + more


def tracts_without_census(
    tract_ids: Iterable[object], census_ids: Iterable[object]
) -> pd.DataFrame:
    """Classify the tracts that have no row in the census table.

    Returns one row per such tract (in input order), columns ``GEOID`` and ``reason``, one of:
    ``"GEOID written differently"`` (it would match once float formatting, a Census API prefix
    or lost leading zeros are corrected: see :func:`geoid_mismatch_hint`), ``"county not in
    the census table"`` (the table covers other counties), ``"tract not in the census table"``
    (same county: a tract of another census vintage, or one the table leaves out).
    """
    tracts = pd.Series([str(v).strip() for v in tract_ids], dtype=object)
    census = pd.Series([str(v).strip() for v in census_ids], dtype=object)
    missing = tracts.loc[~tracts.isin(set(census))].reset_index(drop=True)
    fixed_census = set(_geoid_variants(census))
    fixed = _geoid_variants(missing)
    counties = {g[:5] for g in fixed_census}
    reason = np.where(
        fixed.isin(fixed_census),
        "GEOID written differently",
        np.where(
            fixed.str[:5].isin(counties),
            "tract not in the census table",
            "county not in the census table",
        ),
    )
    return pd.DataFrame({"GEOID": missing.astype(str), "reason": reason})


def note_tracts_without_census(
    tract_ids: Iterable[object],
    census_ids: Iterable[object],
    ledger: Ledger,
    *,
    census_file: str = "the census table",
) -> pd.DataFrame:
    """Write one ledger note per reason of :func:`tracts_without_census`; return its table."""
    table = tracts_without_census(tract_ids, census_ids)
    for reason, n in table["reason"].value_counts(sort=False).items():
        ledger.note(f"{int(n):,} tract(s) have no row in {census_file} (no population): {reason}.")
    return table


# --- ACS tables of any city (``camcensus audit``) -------------------------------------------

#: Lower bounds (dollars) of the 16 household-income brackets of ACS table B19001
#: (B19001_002 ... B19001_017); the last bracket, $200,000 or more, is open.
B19001_BRACKETS = (
    0, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000,
    50_000, 60_000, 75_000, 100_000, 125_000, 150_000, 200_000,
)  # fmt: skip
B19001_VARIABLES = tuple(f"B19001_{i:03d}" for i in range(2, 18))
_ACS_CODE = re.compile(r"(B\d{5}[A-Z]?_\d{3})E?(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class RaceDefinition:
    """Which ACS counts stand for the White, Black and Hispanic residents of a tract.

    Each role lists candidate ACS variables (or column names) in order of preference; the
    first one present in the table is used. ``nonwhite_fraction`` is always (Black +
    Hispanic) / (Black + Hispanic + White) of the counts chosen.
    """

    name: str
    label: str
    white: tuple[str, ...]
    black: tuple[str, ...]
    hispanic: tuple[str, ...]


#: The race definitions ``camcensus audit --race`` accepts. ``non-hispanic`` (the default
#: when the table has B03002) counts each resident once; ``alone`` is Amnesty's NYC choice
#: (B02001 White alone includes Hispanic Whites, who then count as White and Hispanic).
RACE_DEFINITIONS = {
    "non-hispanic": RaceDefinition(
        "non-hispanic",
        "non-Hispanic White (B03002_003), non-Hispanic Black (B03002_004), Hispanic or Latino "
        "of any race (B03002_012)",
        ("B03002_003",),
        ("B03002_004",),
        ("B03002_012", "B03003_003"),
    ),
    "alone": RaceDefinition(
        "alone",
        "White alone (B02001_002, includes Hispanic Whites), Black alone (B02001_003), "
        "Hispanic or Latino of any race (B03002_012 / B03003_003)",
        ("B02001_002",),
        ("B02001_003",),
        ("B03002_012", "B03003_003"),
    ),
}
_POPULATION = ("B01003_001", "B02001_001", "B03002_001")
_INCOME = ("B19013_001",)
# Plain column names accepted per role when a table carries no ACS variable codes.
_ALIASES = {
    "geoid": ("GEOID", "geoid", "GEO_ID", "tract_geoid"),
    "popn": ("popn", "pop", "population", "total_pop", "total_population", "pop_total"),
    "white": ("popn.white", "popn_white", "white", "pop_white"),
    "black": ("popn.black", "popn_black", "black", "pop_black"),
    "hispanic": ("popn.hispanic", "popn_hispanic", "hispanic", "hisplat", "latino", "pop_hisp"),
    "income": (
        "med.income",
        "med_income",
        "median_household_income",
        "med_hhinc",
        "Median Household Income",
    ),
}
#: Census Data API "jam values" (annotations written in the estimate's place), e.g.
#: -666666666 = too few sample cases; all are negative.
JAM_VALUE_MAX = -99_999_999


def median_from_brackets(
    counts: np.ndarray, lower: Sequence[float] = B19001_BRACKETS
) -> tuple[np.ndarray, np.ndarray]:
    """Return the median of grouped counts by linear interpolation within the median's bracket.

    The standard interpolation for a median from a frequency table (the Census Bureau's for
    household income, e.g. *ACS Accuracy of the Data*, "Medians"): with N households, the
    median lies in the first bracket whose cumulative count reaches N/2; if that bracket runs
    from L to U and holds f households, with C in the brackets below,
    median = L + (N/2 − C) / f · (U − L). Brackets are [L, U): B19001's "$10,000 to $14,999"
    is [10,000, 15,000).

    Parameters
    ----------
    counts
        Array (tracts × brackets) of households per bracket, brackets in ``lower`` order.
    lower
        Lower bound of each bracket; the last bracket is open above.

    Returns
    -------
    tuple of numpy.ndarray
        The medians (NaN where a row has no households) and, per row, whether the median
        falls in the open top bracket (then the median is reported as its lower bound, e.g.
        $200,000, a value "or more").
    """
    f = np.asarray(counts, dtype=float)
    bounds = np.asarray(lower, dtype=float)
    if f.ndim != 2 or f.shape[1] != len(bounds):
        raise ValueError(f"counts must be (rows, {len(bounds)}) brackets, not {f.shape}")
    total = f.sum(axis=1)
    half = total / 2
    cum = np.cumsum(f, axis=1)
    k = np.argmax(cum >= half[:, None] - 1e-9 * np.maximum(total, 1)[:, None], axis=1)
    rows = np.arange(len(f))
    below = cum[rows, k] - f[rows, k]
    width = np.append(np.diff(bounds), np.nan)[k]
    top = k == len(bounds) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        med = bounds[k] + np.where(top, 0.0, (half - below) / f[rows, k] * width)
    med = np.where(total > 0, med, np.nan)
    return med, top & (total > 0)


@dataclass(frozen=True)
class AcsTable:
    """An ACS tract table read for the audit, and how each column was made.

    ``table`` is indexed by ``GEOID`` with ``popn``, ``popn_white``, ``popn_black``,
    ``popn_hispanic``, ``med_income`` and ``nonwhite_fraction`` (as
    :func:`census_from_csv`); ``columns`` says which input column gave each; ``income``
    says where the median income comes from (``"B19013"``, ``"B19001 brackets,
    interpolated"`` or ``"none"``).
    """

    table: pd.DataFrame
    race: str
    race_label: str
    columns: dict[str, str]
    income: str
    shares: bool = False


def _acs_code(name: str) -> str | None:
    m = _ACS_CODE.search(str(name))
    return m.group(1).upper() if m else None


def _long_to_wide(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Pivot a long ACS table (``GEOID, variable, estimate``, as tidycensus writes) to one
    row per tract with one column per variable."""
    cols = {c.lower(): c for c in df.columns}
    gid = next(cols[a.lower()] for a in _ALIASES["geoid"] if a.lower() in cols)
    est = pd.to_numeric(df[cols["estimate"]], errors="coerce")
    long = pd.DataFrame({"GEOID": df[gid].astype(str), "variable": df[cols["variable"]], "v": est})
    dup = long.duplicated(["GEOID", "variable"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            [
                Problem(
                    str(path),
                    i + 1,
                    cols["variable"],
                    f"variable {long['variable'].iloc[i]!r} of tract {long['GEOID'].iloc[i]} "
                    "a second time",
                    "one estimate per tract and variable",
                    "keep one ACS release per file",
                )
            ]
        )
    wide = long.pivot(index="GEOID", columns="variable", values="v")
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def acs_from_file(
    path: str | Path,
    *,
    race: str = "auto",
    columns: dict[str, str] | None = None,
    ledger: Ledger | None = None,
) -> AcsTable:
    """Read an ACS tract table of any city: wide or long, ACS codes or plain names, counts or
    shares.

    Parameters
    ----------
    path
        CSV: one row per tract with columns named by ACS variable (``B03002_003``,
        ``B03002_003E``, ``nh_white_alone_B03002_003``...) or by plain names (``pop``,
        ``white``, ``black``, ``hisplat``...); or long (``GEOID, variable, estimate``).
    race
        ``"non-hispanic"``, ``"alone"`` (:data:`RACE_DEFINITIONS`) or ``"auto"``
        (non-Hispanic when the table has B03002, else race alone, else plain names).
    columns
        Role -> column, overriding the detection; roles ``geoid``, ``popn``, ``white``,
        ``black``, ``hispanic``, ``income``.
    ledger
        Receives notes: shares turned into counts, income jam values, interpolated medians.

    Median household income is B19013 when present; otherwise, with the 16 brackets of B19001,
    it is interpolated (:func:`median_from_brackets`) and the result says so. Negative
    incomes (Census API jam values such as −666666666) become missing and are counted.
    Group columns whose values are all within [0, 1] while the population is not are read as
    shares of the population and multiplied by it (noted).
    """
    path = Path(path)
    ledger = ledger if ledger is not None else Ledger()
    columns = dict(columns or {})
    bad_roles = set(columns) - set(_ALIASES)
    if bad_roles:
        raise OptionError(
            f"--acs-column roles {sorted(bad_roles)} are unknown; use {sorted(_ALIASES)}"
        )
    if race not in (*RACE_DEFINITIONS, "auto"):
        raise OptionError(
            f"--race must be one of auto, {', '.join(RACE_DEFINITIONS)}, not {race!r}"
        )
    df = _read(path)
    lower = {c.lower() for c in df.columns}
    if {"variable", "estimate"} <= lower:
        df = _long_to_wide(df, path)
    by_code: dict[str, str] = {}
    for c in df.columns:
        code = _acs_code(c)
        if code is not None and code not in by_code:
            by_code[code] = c
    lowered = {c.lower(): c for c in df.columns}

    def find(role: str, codes: Sequence[str] = ()) -> str | None:
        if role in columns:
            return columns[role]
        for code in codes:
            if code in by_code:
                return by_code[code]
        for alias in _ALIASES[role]:
            if alias.lower() in lowered:
                return lowered[alias.lower()]
        return None

    if race == "auto":
        race = next(
            (
                name
                for name, d in RACE_DEFINITIONS.items()
                if d.white[0] in by_code and d.black[0] in by_code
            ),
            "as-given",
        )
    definition = RACE_DEFINITIONS.get(race)
    found = {
        "geoid": find("geoid"),
        "popn": find("popn", _POPULATION),
        "white": find("white", definition.white if definition else ()),
        "black": find("black", definition.black if definition else ()),
        "hispanic": find("hispanic", definition.hispanic if definition else ()),
    }
    absent = [r for r, c in found.items() if c is None or c not in df.columns]
    if absent:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "no column for " + ", ".join(absent),
                    "GEOID, total population and White, Black and Hispanic residents (ACS "
                    "codes such as B03002_003, or names such as pop, white, black, hisplat)",
                    "name the columns with --acs-column ROLE=COLUMN (roles: "
                    + ", ".join(_ALIASES)
                    + ")",
                )
            ]
        )
    cols = [Col(str(found["geoid"]), "str")]
    cols.append(Col(str(found["popn"]), "amount"))
    # A group cell may be empty in a tract without residents (shares of zero are undefined).
    cols += [Col(str(found[k]), "amount", nullable=True) for k in ("white", "black", "hispanic")]
    parsed = parse_columns(df, path, cols)
    empty = [
        Problem(
            str(path),
            int(i) + 1,
            str(found[k]),
            "an empty cell in a tract with residents",
            "a number >= 0",
            "fill in the count (or share) of the tract",
        )
        for k in ("white", "black", "hispanic")
        for i in np.flatnonzero(
            parsed[str(found[k])].isna().to_numpy() & (parsed[str(found["popn"])] > 0).to_numpy()
        )[:5]
    ]
    if empty:
        raise InputError(empty)
    for k in ("white", "black", "hispanic"):
        parsed[str(found[k])] = parsed[str(found[k])].fillna(0.0)
    ids, _ = _normalize_geoids(parsed[str(found["geoid"])])
    ids = ids.str.replace(_API_PREFIX, "", regex=False)
    _raise_mangled_geoids(ids, path, str(found["geoid"]))
    popn = parsed[str(found["popn"])].astype(float).to_numpy()
    groups = {
        k: parsed[str(found[k])].astype(float).to_numpy() for k in ("white", "black", "hispanic")
    }
    shares = (
        all(np.nanmax(v, initial=0) <= 1.0 for v in groups.values())
        and np.nanmax(popn, initial=0) > 1.0
    )
    if shares:
        groups = {k: v * popn for k, v in groups.items()}
        ledger.note(
            f"{path.name}: the columns {found['white']}, {found['black']}, {found['hispanic']} "
            "hold shares of the population (all within 0-1); they were multiplied by "
            f"{found['popn']} to give residents."
        )
    out = pd.DataFrame(
        {
            "GEOID": ids.to_numpy(),
            "popn": popn,
            "popn_white": groups["white"],
            "popn_black": groups["black"],
            "popn_hispanic": groups["hispanic"],
        }
    )
    names = {"white": str(found["white"]), "black": str(found["black"]),
             "hispanic": str(found["hispanic"]), "popn": str(found["popn"])}  # fmt: skip
    if not shares:
        _raise_groups_above_total(out, path, names)
    income_col = find("income", _INCOME)
    brackets = [by_code.get(v) for v in B19001_VARIABLES]
    if income_col is not None and income_col in df.columns:
        inc = pd.to_numeric(df[income_col], errors="coerce").to_numpy(dtype=float)
        jam = inc <= JAM_VALUE_MAX
        if jam.any():
            ledger.note(
                f"{path.name}: {int(jam.sum())} median incomes are Census jam values "
                f"(e.g. {inc[jam][0]:.0f}, too few sample cases): read as missing."
            )
        out["med_income"] = np.where(jam | (inc < 0), np.nan, inc)
        income = "B19013" if _acs_code(income_col) == "B19013_001" else f"column {income_col}"
    elif all(b is not None for b in brackets):
        f = np.column_stack(
            [pd.to_numeric(df[b], errors="coerce").to_numpy(float) for b in brackets]
        )
        med, top = median_from_brackets(np.nan_to_num(f))
        out["med_income"] = med
        income = "B19001 brackets, interpolated"
        ledger.note(
            f"{path.name} has no median household income (B19013): it was interpolated from "
            "the 16 household-income brackets of B19001 (linear within the median's bracket); "
            f"{int(top.sum())} tract(s) have a median in the open top bracket and are given "
            f"its lower bound, $200,000; {int(np.isnan(med).sum())} tract(s) have no "
            "households and no median."
        )
    else:
        out["med_income"] = np.nan
        income = "none"
        ledger.note(f"{path.name} has no median household income (neither B19013 nor B19001).")
    dup = out["GEOID"].duplicated()
    if dup.any():
        raise InputError(
            Problem(
                str(path),
                int(i) + 1,
                str(found["geoid"]),
                f"GEOID {out['GEOID'].iloc[i]!r} a second time",
                "one row per tract",
                "keep one estimate per tract",
            )
            for i in np.flatnonzero(dup.to_numpy())[:20]
        )
    denom = out["popn_black"] + out["popn_hispanic"] + out["popn_white"]
    out["nonwhite_fraction"] = (out["popn_black"] + out["popn_hispanic"]) / denom.where(denom > 0)
    out = out.set_index("GEOID")
    out.attrs["source"] = str(path)
    from_codes = definition is not None and all(
        _acs_code(str(found[k])) in getattr(definition, k) for k in ("white", "black", "hispanic")
    )
    given = f"the columns {found['white']}, {found['black']}, {found['hispanic']}"
    if definition is not None and from_codes:
        label = definition.label
    elif definition is not None:
        label = f"{definition.label}: read from {given}, as declared with --race {race}"
    else:
        label = f"as given by {given} (declare their definition with --race)"
    used = {k: str(v) for k, v in found.items()}
    used["income"] = (
        income_col
        if income_col is not None
        else ("B19001_002..017" if income.startswith("B19001") else "")
    )
    return AcsTable(out, race, label, used, income, bool(shares))


@dataclass(frozen=True)
class VintageCheck:
    """How the tract polygons and the ACS table match, and whether their vintages differ."""

    tracts: int
    acs_rows: int
    matched: int
    tracts_without_acs: tuple[str, ...]
    acs_without_tract: tuple[str, ...]

    @property
    def mismatch(self) -> bool:
        """Whether both sides hold tracts the other lacks in the same counties: the tract
        definitions differ (2010 vs 2020 tracts, say)."""
        counties = {g[:5] for g in self.acs_without_tract}
        return bool(counties & {g[:5] for g in self.tracts_without_acs})

    def message(self, tracts_file: str, acs_file: str) -> str:
        """Say what matched, and (with a mismatch) why and how to fix it."""
        text = (
            f"{self.matched:,} of the {self.tracts:,} tracts in {tracts_file} have a row in "
            f"{acs_file} ({self.acs_rows:,} rows)"
        )
        if not self.mismatch:
            return text + "."
        return (
            text + f": a tract-vintage mismatch. {len(self.tracts_without_acs):,} tract(s) "
            f"(e.g. {_some(set(self.tracts_without_acs), 3)}) have no ACS row and "
            f"{len(self.acs_without_tract):,} ACS row(s) (e.g. "
            f"{_some(set(self.acs_without_tract), 3)}) have no polygon in the same counties: "
            "the two files use different tract definitions (ACS 5-year tables ending in 2020 "
            "or later use the 2020 tracts; earlier ones the 2010 tracts). The unmatched tracts "
            "have no population here and are left out of every rate and model. Fix: use the "
            "tract polygons of the ACS table's vintage."
        )


def check_tract_vintage(tract_ids: Iterable[object], acs_ids: Iterable[object]) -> VintageCheck:
    """Compare the GEOIDs of tract polygons and of an ACS table (see :class:`VintageCheck`)."""
    t = [str(v) for v in tract_ids]
    a = [str(v) for v in acs_ids]
    ts, as_ = set(t), set(a)
    return VintageCheck(
        tracts=len(t),
        acs_rows=len(a),
        matched=len(ts & as_),
        tracts_without_acs=tuple(sorted(ts - as_)),
        acs_without_tract=tuple(sorted(as_ - ts)),
    )
