"""Readers for stop-question-frisk data: raw records (NYPD xlsx/csv) or per-tract counts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from camcensus._errors import InputError, Ledger, Problem
from camcensus.io._validate import Col, missing_columns, parse_columns
from camcensus.io._validate import read_text_table as _read

__all__ = ["KNOWN_BAD_2020", "stop_counts_from_csv", "stop_records_from_file"]

#: Stops of the 2020 file whose geocoding is nonsense (Amnesty's prepdata.R drops them).
KNOWN_BAD_2020 = ("2020.4986", "2020.5566", "2020.8826", "2020.8875")

_RECORD_COLUMNS = ["STOP_ID", "YEAR2", "STOP_LOCATION_X", "STOP_LOCATION_Y"]
_KEEP = [
    "SUSPECT_RACE_DESCRIPTION",
    "SUSPECTED_CRIME_DESCRIPTION",
    "SUSPECT_ARRESTED_FLAG",
    "SUMMONS_ISSUED_FLAG",
    "WEAPON_FOUND_FLAG",
    "STOP_LOCATION_BORO_NAME",
]


def stop_records_from_file(path: str | Path, *, ledger: Ledger | None = None) -> pd.DataFrame:
    """Read NYPD stop records (the yearly ``sqf-YYYY.xlsx`` or a CSV with the same columns).

    Returns one row per stop with ``stop_id`` (``"<year>.<STOP_ID>"``, as prepdata.R), ``year``,
    ``x``/``y`` (NY State Plane Long Island, US feet, EPSG:2908), and the suspect's race, the
    suspected crime and the arrest / summons / weapon flags as booleans when present. The four
    known-bad 2020 records are excluded and counted in ``ledger``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "an existing file", "check the path")]
        )
    df = _read_excel(path) if path.suffix.lower() in {".xlsx", ".xls"} else _read(path)
    df = df.rename(columns={"STOP_ID_ANONY": "STOP_ID"})
    problems = missing_columns(df, path, _RECORD_COLUMNS, why="where and when the stop was")
    if problems:
        raise InputError(problems)
    cols = [Col("STOP_ID", "str"), Col("YEAR2", "whole")]
    cols += [Col("STOP_LOCATION_X", "float", nullable=True)]
    cols += [Col("STOP_LOCATION_Y", "float", nullable=True)]
    parsed = parse_columns(df, path, cols)
    year = parsed["YEAR2"].astype("int64")
    out = pd.DataFrame(
        {
            "stop_id": year.astype(str) + "." + parsed["STOP_ID"].astype(str).str.strip(),
            "year": year,
            "x": parsed["STOP_LOCATION_X"].astype(float),
            "y": parsed["STOP_LOCATION_Y"].astype(float),
        }
    )
    flag_problems: list[Problem] = []
    for c in _KEEP:
        if c in parsed.columns:
            v = parsed[c].astype(str).str.strip()
            if c.endswith("_FLAG"):
                out[c.lower()] = _flag(v, path, c, flag_problems, ledger)
            else:
                out[c.lower()] = v.str.upper()
    if flag_problems:
        raise InputError(flag_problems)
    bad = out["stop_id"].isin(KNOWN_BAD_2020)
    if ledger is not None:
        ledger.exclude("stops", "known-bad 2020 geocoding (prepdata.R's list)", int(bad.sum()))
    out = out.loc[~bad]
    no_xy = out["x"].isna() | out["y"].isna()
    if ledger is not None:
        ledger.exclude("stops", "stop without coordinates", int(no_xy.sum()))
    out = out.loc[~no_xy]
    dup = out["stop_id"].duplicated()
    if dup.any():
        raise InputError(
            [
                Problem(
                    str(path),
                    int(np.flatnonzero(dup.to_numpy())[0]) + 1,
                    "STOP_ID",
                    "a STOP_ID listed twice in one year",
                    "one row per stop",
                    "remove the duplicated rows",
                )
            ]
        )
    out = out.reset_index(drop=True)
    out.attrs["source"] = str(path)
    return out


#: Values NYPD writes for a flag that is not set (Amnesty's R: ``== "Y"`` is FALSE for them).
_FLAG_MISSING = ("", "(NULL)", "NULL", "NA")
_FLAG_ROWS_SHOWN = 5


def _flag(
    values: pd.Series, path: Path, column: str, problems: list[Problem], ledger: Ledger | None
) -> pd.Series:
    """Return a Y/N flag column as booleans; any other value is a problem with its row, and a
    blank or "(null)" is read as N and counted in ``ledger``."""
    upper = values.str.upper()
    missing = upper.isin(_FLAG_MISSING)
    bad = ~(upper.isin(("Y", "N")) | missing)
    rows = np.flatnonzero(bad.to_numpy())
    for i in rows[:_FLAG_ROWS_SHOWN]:
        problems.append(
            Problem(
                str(path),
                int(i) + 1,
                column,
                repr(values.iloc[i]),
                "Y or N (blank or (null) for not recorded)",
                f"write Y or N in {column}; the analyses count a stop as an arrest, summons or "
                "weapon found only where the flag is Y",
            )
        )
    if len(rows) > _FLAG_ROWS_SHOWN:
        problems.append(
            Problem(
                str(path),
                None,
                column,
                f"{len(rows) - _FLAG_ROWS_SHOWN:,} more values other than Y or N",
                "Y or N",
                f"write Y or N in {column}",
            )
        )
    if ledger is not None:
        ledger.flag(
            "stops",
            f"stop(s) with {column} blank or (null)",
            int(missing.sum()),
            kept_as='read as N, as Amnesty\'s R (== "Y")',
        )
    return upper.eq("Y")


def _read_excel(path: Path) -> pd.DataFrame:
    """Read a spreadsheet as text; a damaged or fake one is an :class:`InputError`."""
    head = path.read_bytes()[:8]
    is_zip = head.startswith(b"PK\x03\x04")
    is_ole = head.startswith(b"\xd0\xcf\x11\xe0")
    if not (is_zip or is_ole):
        what = "text" if head[:1].isascii() and head.strip() else "not a spreadsheet"
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a file that is {what} (it does not start like an Excel workbook)",
                    "an Excel workbook (.xlsx) as NYPD publishes it, or a CSV named .csv",
                    "download the file again, or rename a CSV export to .csv",
                )
            ]
        )
    try:
        return pd.read_excel(path, dtype=str).fillna("")
    except Exception as exc:  # openpyxl/zipfile raise many kinds for a damaged workbook
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a damaged workbook ({type(exc).__name__}: {str(exc)[:120]})",
                    "a complete Excel workbook (.xlsx)",
                    "download the file again (it may be cut short), or export it as CSV",
                )
            ]
        ) from exc


def stop_counts_from_csv(path: str | Path) -> pd.DataFrame:
    """Read stops per tract, long (``GEOID, year, count``) or wide (``GEOID, n_2019, n_2020``).

    Returns a long DataFrame ``GEOID`` (str), ``year`` (int), ``count`` (float; a tract missing
    from a year of a wide table, an empty cell, counts 0 stops there).
    """
    path = Path(path)
    df = _read(path)
    problems = missing_columns(df, path, ["GEOID"], why="tract of the counts")
    if problems:
        raise InputError(problems)
    wide = [c for c in df.columns if re.fullmatch(r"n_(\d{4})", c)]
    if {"year", "count"} <= set(df.columns):
        parsed = parse_columns(df, path, [Col("year", "whole"), Col("count", "count")])
        out = pd.DataFrame(
            {
                "GEOID": parsed["GEOID"].str.strip(),
                "year": parsed["year"].astype("int64"),
                "count": parsed["count"].astype(float),
            }
        )
    elif wide:
        parsed = parse_columns(df, path, [Col(c, "count", nullable=True) for c in wide])
        out = parsed[["GEOID", *wide]].melt(id_vars="GEOID", var_name="year", value_name="count")
        out["year"] = out["year"].str[2:].astype("int64")
        out["count"] = out["count"].astype(float).fillna(0.0)
        out["GEOID"] = out["GEOID"].str.strip()
    else:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "year",
                    "neither year/count columns nor n_YYYY columns",
                    "a long table GEOID, year, count or a wide one GEOID, n_2019, n_2020",
                    "rename the columns",
                )
            ]
        )
    if out.duplicated(["GEOID", "year"]).any():
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "GEOID",
                    "a tract listed twice for one year",
                    "one count per tract and year",
                    "sum the rows of each tract and year",
                )
            ]
        )
    out.attrs["source"] = str(path)
    return out.reset_index(drop=True)
