"""Column-by-column parsing that collects every problem instead of stopping at the first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from camcensus._errors import InputError, Ledger, Problem

Kind = Literal["str", "count", "float", "lat", "lon", "agreement", "month"]
Errors = Literal["raise", "exclude"]

AGREEMENT_CLASSES = ("Unanimous", "2 vs 1", "All disagree")
_NA = {"", "NA", "NaN", "nan", "None", "null"}
# Problems listed per column before the rest are summarised.
_PER_COLUMN = 5


@dataclass(frozen=True)
class Col:
    """Expected column: its name, value kind, and whether an empty cell is allowed."""

    name: str
    kind: Kind
    nullable: bool = False


def read_text_table(path: str | Path, *, sep: str = ",") -> pd.DataFrame:
    """Read a delimited file with every cell as text, failing clearly if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "an existing file", "check the path")]
        )
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a file that cannot be parsed as CSV ({exc})",
                    "a comma-separated file with a header row",
                    "export the table again as UTF-8 CSV",
                )
            ]
        ) from exc
    return df


def missing_columns(
    df: pd.DataFrame, path: str | Path, required: Sequence[str], *, why: str
) -> list[Problem]:
    """Return a problem for each required column that the table lacks."""
    have = set(df.columns)
    out = []
    for name in required:
        if name not in have:
            close = [c for c in df.columns if c.lower() == name.lower()]
            hint = f"rename column {close[0]!r} to {name!r}" if close else f"add column {name!r}"
            out.append(
                Problem(str(path), None, name, "no such column", f"column {name!r} ({why})", hint)
            )
    return out


def parse_columns(
    df: pd.DataFrame,
    path: str | Path,
    cols: Sequence[Col],
    *,
    errors: Errors = "raise",
    ledger: Ledger | None = None,
    stage: str = "read",
) -> pd.DataFrame:
    """Parse the text columns ``cols`` of ``df`` into typed columns.

    Every bad cell becomes a :class:`Problem`; with ``errors="raise"`` they are raised together,
    with ``errors="exclude"`` the rows holding them are dropped and counted in ``ledger``.
    Columns not in ``cols`` are passed through unchanged.
    """
    out = df.copy()
    bad_rows = np.zeros(len(df), dtype=bool)
    problems: list[Problem] = []
    for col in cols:
        if col.name not in df.columns:
            continue
        text = df[col.name].astype(str).str.strip()
        is_na = text.isin(_NA).to_numpy()
        values, ok, expected, fix = _parse(text, col.kind)
        bad = ~ok & ~is_na
        if not col.nullable:
            bad |= is_na
        if bad.any():
            bad_rows |= bad
            idx = np.flatnonzero(bad)
            for i in idx[:_PER_COLUMN]:
                found = repr(df[col.name].iloc[i]) if not is_na[i] else "an empty cell"
                problems.append(Problem(str(path), int(i) + 1, col.name, found, expected, fix))
            if len(idx) > _PER_COLUMN:
                problems.append(
                    Problem(
                        str(path),
                        None,
                        col.name,
                        f"{len(idx) - _PER_COLUMN} more bad cells (rows "
                        f"{', '.join(str(int(i) + 1) for i in idx[_PER_COLUMN : _PER_COLUMN + 5])}"
                        ", ...)",
                        expected,
                        fix,
                    )
                )
        out[col.name] = values
    if problems:
        if errors == "raise":
            raise InputError(problems)
        n_bad = int(bad_rows.sum())
        if ledger is not None:
            cols_bad = sorted({p.column for p in problems if p.column})
            ledger.exclude(stage, f"unparseable value in {', '.join(cols_bad)} ({path})", n_bad)
        out = out.loc[~bad_rows]
    return out


def _parse(text: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray, str, str]:
    """Parse ``text`` as ``kind``; return values, ok-mask, expectation and fix."""
    if kind == "str":
        return text.where(~text.isin(_NA), None), np.ones(len(text), bool), "text", ""
    if kind in {"count", "float", "lat", "lon"}:
        num = pd.to_numeric(text.where(~text.isin(_NA)), errors="coerce").astype("float64")
        ok = np.isfinite(num.to_numpy())
        if kind == "count":
            arr = num.to_numpy()
            ok &= (arr >= 0) & (np.where(ok, arr, 0) * 2 == np.round(np.where(ok, arr, 0) * 2))
            return (
                num,
                ok,
                "a non-negative count (whole, or ending in .5: a median of an even number)",
                "write a whole number >= 0",
            )
        if kind == "lat":
            ok &= np.abs(num.to_numpy()) <= 90
            return (
                num,
                ok,
                "a latitude in degrees within [-90, 90] (WGS84)",
                "check the coordinate; if latitude and longitude are swapped, swap the columns",
            )
        if kind == "lon":
            ok &= np.abs(num.to_numpy()) <= 180
            return (
                num,
                ok,
                "a longitude in degrees within [-180, 180] (WGS84)",
                "check the coordinate; projected (feet/metre) values must be converted to WGS84",
            )
        return num, ok, "a number", "write a decimal number with '.' as decimal separator"
    if kind == "agreement":
        ok = text.isin(AGREEMENT_CLASSES).to_numpy()
        return (
            text.where(~text.isin(_NA), None),
            ok,
            "one of " + ", ".join(repr(a) for a in AGREEMENT_CLASSES),
            "recompute agreement with camcensus.aggregate.agreement_class",
        )
    # month "YYYY-MM"
    ok = text.str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])").fillna(False).to_numpy(dtype=bool)
    return (
        text.where(~text.isin(_NA), None),
        ok,
        "a month written YYYY-MM",
        "write the Street View image month as e.g. 2019-08",
    )


def as_counts(s: pd.Series) -> pd.Series:
    """Return a parsed count column as int64 when every value is whole, else float64."""
    arr = s.to_numpy(dtype="float64")
    if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return pd.Series(arr.astype("int64"), index=s.index, name=s.name)
    return s.astype("float64")
