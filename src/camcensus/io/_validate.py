"""Column-by-column parsing that collects every problem instead of stopping at the first."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import InputError, Ledger, Problem
from camcensus.io.formats import unquote_csv

Kind = Literal[
    "str", "count", "whole", "median", "amount", "float", "lat", "lon", "agreement", "month"
]
Errors = Literal["raise", "exclude"]

AGREEMENT_CLASSES = ("Unanimous", "2 vs 1", "All disagree")
#: Appended to the fix of a problem that ``errors="exclude"`` would drop and count.
EXCLUDE_HINT = "or pass --errors exclude (errors='exclude' in Python) to drop and count these rows"
_NA = {"", "NA", "NaN", "nan", "None", "null"}
# Problems listed per column before the rest are summarised.
_PER_COLUMN = 5
# Whole numbers beyond this are not exact in float64 (2**53) and may not fit int64.
_EXACT_INT = 2**53
# First bytes of binary formats users save by mistake instead of CSV.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook (OLE2 binary)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"SQLite format 3", "an SQLite database (a GeoPackage?)"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)
_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


@dataclass(frozen=True)
class Col:
    """Expected column: its name, value kind, whether an empty cell is allowed, and a bound.

    Kinds: ``whole`` (a non-negative whole number, e.g. one volunteer's count), ``median``
    (a non-negative median of whole counts: whole, or ending in .5 for an even number of
    values), ``amount`` (a non-negative number), ``count`` (as ``median``; kept for older
    readers), ``float``, ``lat``, ``lon``, ``agreement``, ``month`` and ``str``.
    ``upper``: values above it are problems too; ``upper_why`` says where the bound comes from.
    ``fix``: the fix for a bad or empty cell, instead of the kind's own.
    """

    name: str
    kind: Kind
    nullable: bool = False
    upper: float | None = None
    upper_why: str = ""
    fix: str = ""


def camera_count_bound() -> int:
    """Return the largest plausible camera count at one panorama (setting
    ``max_cameras_per_panorama``)."""
    return int(settings.get("max_cameras_per_panorama"))


def camera_count_why() -> str:
    """Return where :func:`camera_count_bound` comes from, for error messages."""
    env = settings.SETTINGS["max_cameras_per_panorama"].env
    return f"setting max_cameras_per_panorama; if such counts are real, raise it with {env}=..."


def _problem(path: Path, found: str, expected: str, fix: str) -> InputError:
    return InputError([Problem(str(path), None, None, found, expected, fix)])


def read_text_table(path: str | Path, *, sep: str = ",", allow_empty: bool = False) -> pd.DataFrame:
    """Read a delimited UTF-8 file with every cell as text, failing clearly if it cannot be read.

    Raises :class:`InputError` naming the file and the fix for: a missing path, a folder, a file
    that cannot be opened, an empty (0-byte or blank) file, a binary file (spreadsheet, archive,
    database, UTF-16 text), bytes that are not UTF-8 (with the row), rows with more fields than
    the header, a file separated by another character than ``sep``, and a column name given
    twice (pandas would silently rename the second ``name.1``). A file with a header row and no
    data rows is an error too, unless ``allow_empty`` (then it reads as zero rows).
    A UTF-8 byte-order mark is accepted.
    """
    path = Path(path)
    if not path.exists():
        raise _problem(path, "no such file", "an existing file", "check the path")
    if path.is_dir():
        raise _problem(
            path,
            "a folder, not a file",
            "the path of a CSV file",
            "give the path of the CSV file inside that folder",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _problem(
            path,
            f"a file that cannot be opened ({type(exc).__name__}: {exc.strerror or exc})",
            "a readable file",
            "check the file's permissions",
        ) from exc
    if not raw.strip():
        raise _problem(
            path,
            "an empty file" + (" (0 bytes)" if not raw else " (only blank lines)"),
            "a comma-separated file with a header row",
            "export the table again; the file holds no header and no rows",
        )
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise _problem(
                path,
                what,
                "a comma-separated text file (CSV, UTF-8)",
                "open it in its program and save or export it as 'CSV UTF-8'",
            )
    if b"\x00" in raw[:65536]:
        raise _problem(
            path,
            "a binary file (it contains NUL bytes)",
            "a comma-separated text file (CSV, UTF-8)",
            "give the CSV file itself, or export the data as 'CSV UTF-8'",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start)
        bad = raw[exc.start : exc.start + 4]
        raise InputError(
            [
                Problem(
                    str(path),
                    line if line > 0 else None,
                    None,
                    f"bytes that are not UTF-8 ({bad!r} at byte {exc.start})",
                    "text encoded as UTF-8",
                    "save the file again as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet, or "
                    f"iconv -f latin1 -t utf-8 {path.name} > utf8.csv)",
                )
            ]
        ) from exc
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    except csv.Error:
        header = []
    if len(header) <= 1:
        first = header[0] if header else ""
        used = [name for s, name in _SEPARATORS.items() if s != sep and s in first]
        if used:
            raise InputError(
                [
                    Problem(
                        str(path),
                        0,
                        None,
                        f"a header with one column {first[:60]!r}: the file is separated by "
                        f"{used[0]}, not by {sep!r}",
                        f"values separated by {sep!r}",
                        f"export the table again with {sep!r} as the separator",
                    )
                ]
            )
    repeated = [
        (name, n) for name, n in Counter(h.strip() for h in header).items() if n > 1 and name
    ]
    if repeated:
        raise InputError(
            Problem(
                str(path),
                0,
                name,
                f"column {name!r} {n} times (columns "
                f"{', '.join(str(i + 1) for i, h in enumerate(header) if h.strip() == name)})",
                "each column name once",
                f"rename or delete the repeated {name!r} columns (a reader would silently take "
                "one of them)",
            )
            for name, n in repeated
        )
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise _problem(
            path,
            f"a file that cannot be parsed as CSV ({str(exc).strip()})",
            f"a table separated by {sep!r} with a header row and the same number of fields in "
            "every row",
            "check quoting and separators on that line, or export the table again as CSV UTF-8",
        ) from exc
    if len(df) == 0 and not allow_empty:
        raise _problem(
            path,
            "a header row but no data rows",
            "at least one data row",
            "check that the export finished; the file holds no records",
        )
    # A camcensus CSV (spreadsheet-safe: formula-like text behind one quote) reads back as
    # it was before writing; other files are unchanged by this.
    return unquote_csv(df)


def missing_columns(
    df: pd.DataFrame, path: str | Path, required: Sequence[str], *, why: str
) -> list[Problem]:
    """Return a problem for each required column that the table lacks."""
    have = set(df.columns)
    out = []
    for name in required:
        if name not in have:
            close = [c for c in df.columns if str(c).strip().lower() == name.lower()]
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
    can_exclude: bool = False,
) -> pd.DataFrame:
    """Parse the text columns ``cols`` of ``df`` into typed columns.

    Every bad cell becomes a :class:`Problem`; with ``errors="raise"`` they are raised together,
    with ``errors="exclude"`` the rows holding them are dropped and counted in ``ledger``.
    ``can_exclude`` (the caller offers ``errors="exclude"``) adds that option to each fix.
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
        if col.fix:
            fix = col.fix
        elif col.kind == "str":
            fix = f"fill in the {col.name} of that row, or delete the row"
        bad = ~ok & ~is_na
        if not col.nullable:
            bad |= is_na
        checks = [(bad, expected, fix)]
        if col.upper is not None:
            num = np.where(ok, pd.to_numeric(values, errors="coerce"), np.nan)
            above = ok & ~is_na & (np.nan_to_num(num, nan=-np.inf) > col.upper)
            checks.append(
                (
                    above,
                    f"at most {col.upper:g}" + (f" ({col.upper_why})" if col.upper_why else ""),
                    "check the value (a typo, or a number a spreadsheet mangled)",
                )
            )
        for mask, exp, fx in checks:
            if not mask.any():
                continue
            if can_exclude and errors == "raise":
                fx = f"{fx}; {EXCLUDE_HINT}"
            bad_rows |= mask
            idx = np.flatnonzero(mask)
            for i in idx[:_PER_COLUMN]:
                found = _found(df[col.name].iloc[i], text.iloc[i], col.kind)
                problems.append(Problem(str(path), int(i) + 1, col.name, found, exp, fx))
            if len(idx) > _PER_COLUMN:
                problems.append(
                    Problem(
                        str(path),
                        None,
                        col.name,
                        f"{len(idx) - _PER_COLUMN} more bad cells (rows "
                        f"{', '.join(str(int(i) + 1) for i in idx[_PER_COLUMN : _PER_COLUMN + 5])}"
                        ", ...)",
                        exp,
                        fx,
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


_NUMERIC_KINDS = {"count", "whole", "median", "amount", "float", "lat", "lon"}


def _found(raw: object, stripped: str, kind: Kind) -> str:
    """Describe a bad cell: its text, and what a missing-value marker such as 'nan' means."""
    if stripped == "":
        return "an empty cell" if str(raw) == "" else f"{raw!r} (only blanks: an empty cell)"
    if stripped in _NA:
        if stripped.lower() == "nan" and kind in _NUMERIC_KINDS:
            return f"{stripped!r} (not a number)"
        return f"{stripped!r} (a missing-value marker)"
    return repr(raw)


def _parse(text: pd.Series, kind: Kind) -> tuple[pd.Series, np.ndarray, str, str]:
    """Parse ``text`` as ``kind``; return values, ok-mask, expectation and fix."""
    if kind == "str":
        return (
            text.where(~text.isin(_NA), None),
            np.ones(len(text), bool),
            "text (not empty)",
            "fill in the value, or delete the row",
        )
    if kind in _NUMERIC_KINDS:
        num = pd.to_numeric(text.where(~text.isin(_NA)), errors="coerce").astype("float64")
        arr = num.to_numpy()
        ok = np.isfinite(arr)
        finite = np.where(ok, arr, 0.0)
        # 1e308 * 2 overflows to inf, which passes as "whole": the bound check (``upper``)
        # rejects such values, so numpy's overflow warning says nothing.
        with np.errstate(over="ignore", invalid="ignore"):
            return _parse_number(num, ok, finite, kind)
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


def _parse_number(
    num: pd.Series, ok: np.ndarray, finite: np.ndarray, kind: Kind
) -> tuple[pd.Series, np.ndarray, str, str]:
    """Narrow ``ok`` to the finite numbers valid for the numeric ``kind``; return values,
    ok-mask, expectation and fix."""
    if kind == "whole":
        ok &= (finite >= 0) & (finite == np.round(finite))
        return num, ok, "a whole number >= 0", "write a whole number >= 0"
    if kind in {"count", "median"}:
        ok &= (finite >= 0) & (finite * 2 == np.round(finite * 2))
        return (
            num,
            ok,
            "a non-negative count (whole, or ending in .5: a median of an even number)",
            "write a whole number >= 0",
        )
    if kind == "amount":
        ok &= finite >= 0
        return num, ok, "a number >= 0", "write a number >= 0 with '.' as decimal separator"
    if kind == "lat":
        ok &= np.abs(finite) <= 90
        return (
            num,
            ok,
            "a latitude in degrees within [-90, 90] (WGS84)",
            "check the coordinate; if latitude and longitude are swapped, swap the columns",
        )
    if kind == "lon":
        ok &= np.abs(finite) <= 180
        return (
            num,
            ok,
            "a longitude in degrees within [-180, 180] (WGS84)",
            "check the coordinate; projected (feet/metre) values must be converted to WGS84",
        )
    return num, ok, "a number", "write a decimal number with '.' as decimal separator"


def as_counts(s: pd.Series) -> pd.Series:
    """Return a parsed count column as int64 when every value is whole and exactly storable
    (below 2**53), else float64 (never an overflowed integer)."""
    arr = s.to_numpy(dtype="float64")
    if (
        np.all(np.isfinite(arr))
        and np.all(np.abs(arr) < _EXACT_INT)
        and np.all(arr == np.round(arr))
    ):
        return pd.Series(arr.astype("int64"), index=s.index, name=s.name)
    return s.astype("float64")
