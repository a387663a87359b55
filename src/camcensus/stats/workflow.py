"""The disparity stage: from a tract table with coverage and census columns (and stop files) to
every model, check and sensitivity analysis. Behind ``reproduce nyc --stops`` and ``stats``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import InputError, Ledger, Problem
from camcensus.io import census as io_census
from camcensus.io._validate import missing_columns, read_text_table
from camcensus.stats import disparity
from camcensus.stats import inputs as stats_inputs
from camcensus.stats.disparity import GENERIC, DisparityResult, StudyDesign
from camcensus.stats.inputs import StopsFormat

__all__ = ["disparity_stage", "stats_from_files"]


def _noop(_: str) -> None:
    return None


def disparity_stage(
    gdf_tract_table: gpd.GeoDataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    stops: Sequence[str | Path],
    stops_format: StopsFormat = "auto",
    stops_crs: str | None = None,
    ntas: str | Path | None = None,
    race_table: str | Path | None = None,
    coverage_at_radius: Callable[[float], gpd.GeoDataFrame] | None = None,
    threshold: float | str | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    min_population: int | None = None,
    ledger: Ledger | None = None,
    rate_model: bool = False,
    progress: Callable[[str], None] = _noop,
    reference: str | Path | pd.DataFrame | None = None,
    design: StudyDesign = GENERIC,
) -> tuple[DisparityResult, dict[str, pd.DataFrame]]:
    """Run the disparity models on a tract table; return them and the sensitivity tables.

    Parameters
    ----------
    gdf_tract_table
        Tracts with coverage and census columns (the census stage's ``tracts``).
    gdf_tracts
        The tract polygons (stop records are joined to them).
    coverage_at_radius
        Returns the tract table recomputed at another camera radius (radius sensitivity);
        ``None`` skips it.
    reference
        Amnesty's per-tract coverage (``camera_count.csv``), to explain tract by tract why the
        placement models differ from the printed ones.

    ``stops_crs``, ``threshold``, ``permutations`` and ``min_population`` default to their
    settings.
    """
    ledger = ledger if ledger is not None else Ledger()
    min_population = int(
        settings.get("min_population") if min_population is None else min_population
    )
    counts, records = (
        stats_inputs.read_stops(stops, gdf_tracts, fmt=stops_format, crs=stops_crs, ledger=ledger)
        if stops
        else (None, None)
    )
    cluster = stats_inputs.cluster_from_ntas(gdf_tracts, ntas) if ntas else None
    result = disparity.run_disparity(
        gdf_tract_table,
        counts,
        records=records,
        threshold=threshold,
        min_population=min_population,
        cluster=cluster,
        permutations=permutations,
        seed=seed,
        ledger=ledger,
        rate_model=rate_model,
        reference=_reference(reference),
        design=design,
    )
    sensitivity: dict[str, pd.DataFrame] = {}
    if counts is None:
        return result, sensitivity
    year = int(counts["year"].min())
    used = next(float(m.group["threshold"]) for m in result.models if m.name == "placement_logit")
    if coverage_at_radius is not None:
        progress("sensitivity to the camera radius")
        sensitivity["radius"] = disparity.radius_sensitivity(
            coverage_at_radius, counts, threshold=used, year=year, min_population=min_population
        )
    if race_table:
        alt = stats_inputs.nonwhite_from_race_table(race_table)
        sensitivity["race"] = disparity.race_sensitivity(
            gdf_tract_table, alt, counts, threshold=used, year=year, min_population=min_population
        )
    return result, sensitivity


def _reference(reference: str | Path | pd.DataFrame | None) -> pd.DataFrame | None:
    """Read a reference coverage table (``GEOID``, ``eff_cameras``) when given as a path."""
    if reference is None or isinstance(reference, pd.DataFrame):
        return reference
    ref = pd.read_csv(reference, dtype={"GEOID": str})
    problems = missing_columns(
        ref, Path(reference), ["GEOID", "eff_cameras"], why="the reference coverage table"
    )
    if problems:
        raise InputError(problems)
    return ref


def stats_from_files(
    *,
    tract_table: str | Path,
    tracts: str | Path,
    census: str | Path | None = None,
    stops: Sequence[str | Path] = (),
    stops_format: StopsFormat = "auto",
    stops_crs: str | None = None,
    ntas: str | Path | None = None,
    threshold: float | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    min_population: int | None = None,
    reference: str | Path | None = None,
    design: StudyDesign = GENERIC,
) -> tuple[DisparityResult, Ledger]:
    """Run the disparity models on any city's tract table (e.g. a report's tract_coverage.csv).

    ``tract_table`` needs ``GEOID``, ``borough``, ``popn``, ``popn_white``, ``popn_black``,
    ``popn_hispanic``, ``nonwhite_fraction`` (or the three counts), ``eff_cameras``,
    ``eff_cameras_within_200m`` (and ``med_income`` for the income model); ``tracts`` gives
    the polygons for the spatial checks. With ``census`` (an ACS table) the population columns
    are taken from it, so a bare coverage table such as Amnesty's ``camera_count.csv`` works.
    Stop-record coordinates are in ``stops_crs`` (default: the ``stops_crs`` setting);
    ``threshold``, ``permutations`` and ``min_population`` default to their settings.
    ``reference`` (Amnesty's ``camera_count.csv``) explains placement differences tract by
    tract in the ``published_vs_ours`` table. ``design`` holds a study's choices
    (:data:`camcensus.studies.nyc.DESIGN` for Amnesty's).
    """
    ledger = Ledger()
    table = _read_tract_table(Path(tract_table))
    if census is not None:
        acs = io_census.census_from_csv(census, ledger=ledger)
        table = table.drop(columns=[c for c in acs.columns if c in table.columns]).merge(
            acs, left_on="GEOID", right_index=True, how="left"
        )
    needed = ["GEOID", *_COUNTS, *_COVERAGE]
    problems = missing_columns(table, Path(tract_table), needed, why="the disparity models")
    if problems:
        raise InputError(problems)
    problems = _table_problems(table, Path(tract_table), population=census is None)
    if problems:
        raise InputError(problems)
    if "nonwhite_fraction" not in table.columns:
        denom = table["popn_black"] + table["popn_hispanic"] + table["popn_white"]
        table["nonwhite_fraction"] = (table["popn_black"] + table["popn_hispanic"]) / denom.where(
            denom > 0
        )
    if "med_income" not in table.columns:
        table["med_income"] = np.nan
    gdf = io_census.tracts_from_file(tracts)
    geo = gdf.set_index("GEOID")
    blank = table["GEOID"].fillna("").str.strip() == ""
    ledger.exclude("models", "tract with a blank GEOID in the table", int(blank.sum()))
    table = table.loc[~blank]
    missing = ~table["GEOID"].isin(geo.index)
    ledger.exclude("models", "tract in the table but not in the polygons", int(missing.sum()))
    if missing.all():
        raise InputError(
            [
                Problem(
                    str(tract_table),
                    None,
                    "GEOID",
                    f"no tract left for the models: none of the table's {len(table):,} GEOIDs "
                    f"(e.g. {', '.join(map(repr, table['GEOID'].head(3)))}) is a GEOID of "
                    f"{Path(tracts).name} (e.g. {', '.join(map(repr, geo.index[:3]))})",
                    "the GEOIDs of the tract polygons",
                    "pass the tract polygons the table was made from (--tracts), or write the "
                    "GEOIDs as the polygons do (11 digits, as text)",
                )
            ]
        )
    table = table.loc[~missing].copy()
    if "borough" not in table.columns:
        table["borough"] = table["GEOID"].map(geo["borough"])
    elif "borough" in geo.columns:
        no_borough = table["borough"].fillna("").str.strip() == ""
        if no_borough.any():
            table.loc[no_borough, "borough"] = table.loc[no_borough, "GEOID"].map(geo["borough"])
            ledger.flag(
                "models",
                "tract(s) with a blank borough in the table",
                int(no_borough.sum()),
                kept_as="borough taken from the tract polygons",
            )
    g = gpd.GeoDataFrame(table, geometry=geo.loc[table["GEOID"]].geometry.values, crs=geo.crs)
    result, _ = disparity_stage(
        g,
        gdf,
        stops=stops,
        stops_format=stops_format,
        stops_crs=stops_crs,
        ntas=ntas,
        threshold=threshold,
        permutations=permutations,
        seed=seed,
        min_population=min_population,
        ledger=ledger,
        reference=reference,
        design=design,
    )
    return result, ledger


_COUNTS = ("popn", "popn_white", "popn_black", "popn_hispanic")
_COVERAGE = ("eff_cameras", "eff_cameras_within_200m")
_MAX_ROWS_SHOWN = 5


def _table_problems(table: pd.DataFrame, path: Path, *, population: bool) -> list[Problem]:
    """Return every problem of a tract table's values, with its rows (1-based data rows).

    A GEOID given twice, an infinite number, a negative count or coverage, a non-white
    fraction outside [0, 1], and (with ``population``: the counts come from this table) a
    group larger than the population. Blank cells are no problem here: the models exclude
    and count those tracts.
    """
    problems: list[Problem] = []

    def add(mask: pd.Series, column: str, found: str, expected: str, fix: str) -> None:
        rows = np.flatnonzero(mask.to_numpy())
        for i in rows[:_MAX_ROWS_SHOWN]:
            value = table[column].iloc[i]
            problems.append(
                Problem(str(path), int(i) + 1, column, found.format(v=value), expected, fix)
            )
        if len(rows) > _MAX_ROWS_SHOWN:
            problems.append(
                Problem(
                    str(path),
                    None,
                    column,
                    f"{len(rows) - _MAX_ROWS_SHOWN:,} more rows like these",
                    expected,
                    fix,
                )
            )

    geoid = table["GEOID"].fillna("").str.strip()
    dup = geoid.duplicated(keep=False) & (geoid != "")
    if dup.any():
        first = {g: int(i) + 1 for i, g in reversed(list(enumerate(geoid))) if g}
        rows = np.flatnonzero(dup.to_numpy())
        for i in rows[: 2 * _MAX_ROWS_SHOWN]:
            others = [int(k) + 1 for k in rows if geoid.iloc[k] == geoid.iloc[i] and k != i]
            problems.append(
                Problem(
                    str(path),
                    int(i) + 1,
                    "GEOID",
                    f"GEOID {geoid.iloc[i]!r} again (also in row(s) "
                    f"{', '.join(map(str, others))}; first in row {first[geoid.iloc[i]]})",
                    "each tract once",
                    "delete the repeated rows (or merge them into one row per tract)",
                )
            )
    columns = [c for c in (*_COUNTS, *_COVERAGE) if c in table.columns]
    if not population:
        columns = [c for c in columns if c not in _COUNTS]
    for col in columns:
        values = pd.to_numeric(table[col], errors="coerce")
        add(
            np.isinf(values),
            col,
            "{v}",
            "a finite number",
            "write the tract's number (or leave the cell blank to leave the tract out)",
        )
        add(
            values < 0,
            col,
            "{v}",
            "a number of at least 0",
            "write the tract's number (or leave the cell blank to leave the tract out)",
        )
    if "nonwhite_fraction" in table.columns:
        nwf = pd.to_numeric(table["nonwhite_fraction"], errors="coerce")
        add(
            ~nwf.between(0, 1) & nwf.notna(),
            "nonwhite_fraction",
            "{v}",
            "a fraction from 0 to 1",
            "write (popn_black + popn_hispanic) / (popn_black + popn_hispanic + popn_white)",
        )
    if population:
        popn = pd.to_numeric(table["popn"], errors="coerce")
        for col in ("popn_white", "popn_black", "popn_hispanic"):
            group = pd.to_numeric(table[col], errors="coerce")
            # A tract without residents is left out by the models: its groups do not matter.
            add(
                (group > popn) & (popn > 0) & np.isfinite(popn),
                col,
                "{v}, more than the tract's population (popn)",
                "at most popn",
                f"check the tract's {col} and popn (columns swapped, or counts of another "
                "year or geography)",
            )
    return problems


_TEXT_COLUMNS = ("GEOID", "borough", "BoroName", "NAME", "NAMELSAD")
_NA = ("", "NA", "NaN", "nan", "null")


def _read_tract_table(path: Path) -> pd.DataFrame:
    """Read a tract table: text columns kept, every other column that holds only numbers (and
    blanks) made numeric; a required numeric column with text in it is an error with rows."""
    raw = read_text_table(path)
    out = raw.copy()
    problems: list[Problem] = []
    for col in raw.columns:
        if col in _TEXT_COLUMNS:
            continue
        text = raw[col].str.strip()
        blank = text.isin(_NA)
        num = pd.to_numeric(text.where(~blank), errors="coerce")
        bad = num.isna() & ~blank
        if not bad.any():
            out[col] = num
        elif col in _NUMERIC_NEEDED:
            for i in np.flatnonzero(bad.to_numpy())[:5]:
                problems.append(
                    Problem(
                        str(path),
                        int(i) + 1,
                        col,
                        repr(raw[col].iloc[i]),
                        "a number",
                        "write the number (or leave the cell blank)",
                    )
                )
    if problems:
        raise InputError(problems)
    return out


_NUMERIC_NEEDED = (*_COUNTS, *_COVERAGE, "med_income", "nonwhite_fraction")
