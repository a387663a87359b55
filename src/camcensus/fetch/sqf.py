"""NYPD Stop, Question and Frisk data, one file a year, from nyc.gov.

The NYPD publishes each year's stops at
``https://www.nyc.gov/assets/nypd/downloads/{path}`` (listed on
https://www.nyc.gov/site/nypd/stats/reports-analysis/stopfrisk.page):
2003–2014 ``zip/analysis_and_planning/stop-question-frisk/sqf-{year}-csv.zip``,
2015–2016 ``excel/analysis_and_planning/stop-question-frisk/sqf-{year}.csv``,
from 2017 ``excel/analysis_and_planning/stop-question-frisk/sqf-{year}.xlsx``.
The file is written as served (the format of ``camcensus.io.stops.stop_records_from_file``).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from camcensus._errors import Ledger, OptionError
from camcensus.fetch._common import FetchResult, copy_atomic, fetcher_for, finish
from camcensus.fetch._http import InvalidBodyError, base_url

if TYPE_CHECKING:
    from camcensus.fetch._http import Fetcher

__all__ = ["fetch_sqf", "sqf_url"]

_TERMS = (
    "NYPD Stop, Question and Frisk data, published by the City of New York; NYC Open Data "
    "terms of use (https://www.nyc.gov/home/terms-of-use.page): free to use, no endorsement "
    "implied. Records describe individual stops: do not try to identify people."
)
_FOLDER = "analysis_and_planning/stop-question-frisk"


def sqf_url(year: int, *, nypd_url: str | None = None) -> str:
    """Return the URL of the NYPD's SQF file for ``year``."""
    base = base_url("nypd", nypd_url)
    if year <= 2014:
        return f"{base}/zip/{_FOLDER}/sqf-{year}-csv.zip"
    if year <= 2016:
        return f"{base}/excel/{_FOLDER}/sqf-{year}.csv"
    return f"{base}/excel/{_FOLDER}/sqf-{year}.xlsx"


def _validator(kind: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        head = path.read_bytes()[:512]
        if head.lstrip()[:1] == b"<":
            raise InvalidBodyError("an HTML page (the NYPD site's 'page not found'?)")
        if kind in (".xlsx", ".zip"):
            if not zipfile.is_zipfile(path):
                raise InvalidBodyError(
                    f"a file that is not a complete {kind} (zip) archive (cut short?)", retry=True
                )
            try:
                with zipfile.ZipFile(path) as zf:
                    bad = zf.testzip()
                    names = zf.namelist()
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise InvalidBodyError(f"a damaged {kind} archive ({err})", retry=True) from None
            if bad is not None:
                raise InvalidBodyError(f"an archive whose member {bad!r} fails its CRC", retry=True)
            if kind == ".xlsx" and "xl/workbook.xml" not in names:
                raise InvalidBodyError("a zip archive that is not an Excel workbook")
        elif b"," not in head:
            raise InvalidBodyError("a file that is not CSV text")

    return check


def _count_rows(path: Path, kind: str) -> int:
    """Return the number of data rows (stops): of the first sheet, or CSV lines past the header."""
    if kind == ".xlsx":
        # Count <row> elements of the first sheet's XML, streamed (no spreadsheet parse).
        with zipfile.ZipFile(path) as zf:
            sheets = sorted(
                n for n in zf.namelist() if re.match(r"xl/worksheets/sheet\d+\.xml$", n)
            )
            if not sheets:
                return 0
            rows, tail = 0, b""
            with zf.open("xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in sheets
                         else sheets[0]) as fh:  # fmt: skip
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    data = tail + chunk
                    rows += len(re.findall(rb"<row[ >]", data))
                    tail = data[-4:]
                    rows -= len(re.findall(rb"<row[ >]", tail))
            return max(0, rows - 1)
    if kind == ".zip":
        with zipfile.ZipFile(path) as zf:
            member = next(n for n in zf.namelist() if n.lower().endswith(".csv"))
            with zf.open(member) as fh:
                lines = sum(1 for line in io.TextIOWrapper(fh, "latin-1") if line.strip())
            return max(0, lines - 1)
    with path.open("rb") as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def fetch_sqf(
    out: str | Path,
    *,
    year: int,
    nypd_url: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """Download the NYPD's Stop, Question and Frisk file for ``year`` (2003 on).

    Parameters
    ----------
    out
        The file written; its suffix must be the served file's (``.xlsx`` from 2017, ``.csv``
        2015–2016, ``.zip`` before), or a folder to write it in under its own name.
    year
        The calendar year of the stops.
    nypd_url
        Base URL instead of ``https://www.nyc.gov/assets/nypd/downloads`` (or
        ``CAMCENSUS_NYPD_URL``).
    fetcher
        The :class:`~camcensus.fetch.Fetcher` to use.

    Returns
    -------
    FetchResult
        ``rows`` stops (data rows of the first sheet or CSV).
    """
    if not (isinstance(year, int) and 2003 <= year <= date.today().year):
        raise OptionError(f"year={year!r} must be in 2003..{date.today().year} (NYPD SQF files)")
    url = sqf_url(year, nypd_url=nypd_url)
    served = url.rsplit("/", 1)[-1]
    kind = ".zip" if served.endswith(".zip") else Path(served).suffix
    path = Path(out)
    if path.is_dir() or not path.suffix:
        path = path / served
    if not path.name.lower().endswith(kind):
        raise OptionError(
            f"out={str(out)!r}: the {year} file is {served}; name the output *{kind} or give a "
            "folder"
        )
    with fetcher_for(fetcher) as http:
        download = http.get(
            url,
            service="nyc.gov (NYPD)",
            expected=f"the NYPD's {served}",
            fix="check --year (the latest year appears months after it ends) and the page "
            "https://www.nyc.gov/site/nypd/stats/reports-analysis/stopfrisk.page for a moved file",
            validate=_validator(kind),
            label=f"SQF {year}",
            suffix=kind,
        )
        copy_atomic(download.path, path)
        rows = _count_rows(path, kind)
        return finish(
            "sqf",
            path,
            [download],
            http,
            Ledger(),
            rows=rows,
            summary={"year": year, "file": served, "stops": rows},
            terms=_TERMS,
        )
