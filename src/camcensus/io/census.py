"""Readers for census geography (tracts, boroughs) and ACS tract tables."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from camcensus._errors import InputError, Ledger, Problem
from camcensus._geo import check_crs_plausible, crs_fix
from camcensus.io._validate import Col, missing_columns, parse_columns
from camcensus.io._validate import read_text_table as _read

__all__ = [
    "NYC_COUNTIES",
    "CensusColumns",
    "boroughs_from_file",
    "census_from_csv",
    "geoid_mismatch_hint",
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
