"""Reading the inputs of the disparity stage: stops (records or tract counts), NTAs, race."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd

from camcensus._errors import InputError, Ledger, Problem
from camcensus.io import census as io_census
from camcensus.io import stops as io_stops
from camcensus.stats import spatial
from camcensus.stats import stops as stop_analyses

__all__ = ["StopsFormat", "cluster_from_ntas", "nonwhite_from_race_table", "read_stops"]

StopsFormat = Literal["records", "tract-counts", "auto"]

_NTA_COLUMNS = ("NTACode", "NTA2020", "nta_id", "ntacode", "nta2020")


_RECORD_COLUMNS = ("STOP_ID", "YEAR2", "STOP_LOCATION_X", "STOP_LOCATION_Y")


def _detect(path: Path) -> str:
    """Return the format of a stop file from its header: ``records`` (NYPD's columns, with
    ``STOP_LOCATION_X``) or ``tract-counts`` (``GEOID``); a file with neither is an error that
    names both sets of columns."""
    if path.suffix.lower() in {".xlsx", ".xls"}:
        return "records"
    if not path.is_file():
        return "tract-counts"  # the reader says what is wrong with the path
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        head = fh.readline()
    names = {c.strip().strip('"') for c in next(csv.reader([head]), [])}
    if "STOP_LOCATION_X" in names:
        return "records"
    if "GEOID" in names or not names - {""}:
        return "tract-counts"
    has = [c for c in _RECORD_COLUMNS if c in names]
    lacks = [c for c in _RECORD_COLUMNS if c not in names]
    found = "columns " + ", ".join(sorted(names)[:12])
    if has:
        found += f" (record columns {', '.join(has)} but not {', '.join(lacks)})"
    raise InputError(
        [
            Problem(
                str(path),
                None,
                None,
                found,
                "either stop records (columns " + ", ".join(_RECORD_COLUMNS) + ", as NYPD's "
                "sqf files) or stop counts per tract (GEOID with year and count, or GEOID with "
                "n_YYYY)",
                "add the missing columns (or rename them), or pass --stops-format to say which "
                "kind the file is",
            )
        ]
    )


def read_stops(
    paths: Sequence[str | Path],
    gdf_tracts: gpd.GeoDataFrame,
    *,
    fmt: StopsFormat = "auto",
    crs: str | None = None,
    ledger: Ledger | None = None,
    snap_m: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read stop inputs; return (long ``GEOID, year, count`` table, records with ``GEOID``).

    Record coordinates are in ``crs`` (default: the ``stops_crs`` setting; NYPD: EPSG:2908, NY
    Long Island state plane feet); a stop outside every tract goes to the nearest one within
    ``snap_m`` metres (default: the ``snap_m`` setting), farther ones are excluded and counted.

    Records are joined to ``gdf_tracts`` and counted; a year given both as records and as
    a count table is taken from the records (noted in ``ledger``).
    """
    if fmt not in ("auto", "records", "tract-counts"):
        raise ValueError(f"stops format must be records, tract-counts or auto, not {fmt!r}")
    ledger = ledger if ledger is not None else Ledger()
    if crs is not None:
        # Before any file is read: a wrong --stops-crs is the user's option, not the data's.
        stop_analyses.check_stops_crs(crs)
    tables, records = [], []
    for p in map(Path, paths):
        kind = _detect(p) if fmt == "auto" else fmt
        if kind == "records":
            recs = io_stops.stop_records_from_file(p, ledger=ledger)
            records.append(
                stop_analyses.stops_to_tracts(
                    recs, gdf_tracts, crs=crs, snap_m=snap_m, ledger=ledger, source=str(p)
                )
            )
        else:
            tables.append(io_stops.stop_counts_from_csv(p))
    rec = pd.concat(records, ignore_index=True) if records else None
    counts = pd.concat(tables, ignore_index=True) if tables else None
    if rec is not None:
        from_records = stop_analyses.stop_counts(rec)
        if counts is not None:
            both = sorted(set(counts["year"]) & set(from_records["year"]))
            if both:
                ledger.note(
                    f"Stops of {', '.join(map(str, both))} were given both as records and as "
                    "tract counts; the records' own tract assignment is used."
                )
            counts = pd.concat([counts.loc[~counts["year"].isin(both)], from_records])
        else:
            counts = from_records
    if counts is None:
        raise InputError(
            [
                Problem(
                    "", None, None, "no stop input", "a records or tract-count file", "pass --stops"
                )
            ]
        )
    return counts.reset_index(drop=True), rec


def cluster_from_ntas(
    gdf_tracts: gpd.GeoDataFrame, path: str | Path, *, column: str | None = None
) -> pd.Series:
    """Return each tract's NTA (index ``GEOID``) from NTA polygons."""
    ntas = io_census.read_vector(path)
    col = column or next((c for c in _NTA_COLUMNS if c in ntas.columns), None)
    if col is None:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "NTACode",
                    "no NTA code column",
                    "one of " + ", ".join(_NTA_COLUMNS),
                    "rename the NTA code column to NTACode (or pass column= to cluster_from_ntas)",
                )
            ]
        )
    codes = spatial.nta_of_tracts(gdf_tracts, ntas, col)
    return pd.Series(codes.to_numpy(), index=gdf_tracts["GEOID"].to_numpy())


def nonwhite_from_race_table(
    path: str | Path, columns: io_census.CensusColumns | None = None
) -> pd.DataFrame:
    """Read an alternative race table (default: nycgeo's ``tract_acs_data.csv``, non-Hispanic
    White and Black, Hispanic of any race) and return its ``nonwhite_fraction`` by GEOID."""
    cols = columns or io_census.CensusColumns(
        geoid="geoid",
        popn="pop_total_est",
        white="pop_white_est",
        black="pop_black_est",
        hispanic="pop_hisp_est",
        income="med_hhinc_est",
    )
    return io_census.census_from_csv(path, columns=cols)
