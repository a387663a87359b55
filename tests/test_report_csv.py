"""io.formats.write_csv: spreadsheet formulas neutralised, numbers and identifiers intact."""

from __future__ import annotations

import csv
import re
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from camcensus.io.formats import read_csv, write_csv

HOSTILE = {
    "=1+1": "'=1+1",
    '=HYPERLINK("http://evil.example","x")': '\'=HYPERLINK("http://evil.example","x")',
    "+1+1": "'+1+1",
    "-1+1": "'-1+1",
    "-1.5+1": "'-1.5+1",
    "-1e5*A1": "'-1e5*A1",
    "@SUM(A1)": "'@SUM(A1)",
    " =1+1": "' =1+1",
    "\t=1": "'\t=1",
    "\r=1": "'\r=1",
    "\uff1d1+1": "'\uff1d1+1",
    "-cmd|'/C calc'!A0": "'-cmd|'/C calc'!A0",
    "'=1+1": "''=1+1",
    "'plain": "''plain",
}
KEPT = [
    "Brooklyn",
    "-2xQ9_abcDEF",
    "-A1",
    "-",
    "a=b",
    "36047000100",
    "O'Brien",
    # Numbers written as text (printed coefficients beside "< 2e-16") are not formulas.
    "-1.6062",
    "-1.746e-06",
    "+3",
    "-.5",
]


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_formula_cells_neutralised(tmp_path: Path) -> None:
    texts = [*HOSTILE, *KEPT]
    df = pd.DataFrame({"name": texts, "value": [-3.5] * len(texts)})
    rows = _cells(write_csv(df, tmp_path / "t.csv"))
    assert rows[0] == ["name", "value"]
    written = [r[0] for r in rows[1:]]
    assert written == [*HOSTILE.values(), *KEPT]
    # Numbers stay numbers: a numeric column's -3.5 is written as -3.5.
    assert {r[1] for r in rows[1:]} == {"-3.5"}


def test_numbers_and_ids_round_trip(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "PanoramaId": ["-2xQ9_abcDEF", "Ab-cd_EF", "=evil"],
            "count": [-3, 0, 7],
            "share": [-3.5, 0.25, float("nan")],
            "public": [True, False, True],
        }
    )
    path = write_csv(df, tmp_path / "ids.csv")
    assert "-2xQ9_abcDEF,-3,-3.5,True" in path.read_text(encoding="utf-8")
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    # Plain pandas gets the identifiers and the numbers unchanged too.
    plain = pd.read_csv(path)
    assert plain["PanoramaId"].tolist()[:2] == ["-2xQ9_abcDEF", "Ab-cd_EF"]
    assert plain["share"].tolist()[:2] == [-3.5, 0.25]


def test_index_and_header_written_safely(tmp_path: Path) -> None:
    df = pd.DataFrame({"=x": [1, 2]}, index=pd.Index(["=1+1", "Total"], name="borough"))
    rows = _cells(write_csv(df, tmp_path / "i.csv", index=True))
    assert rows == [["borough", "'=x"], ["'=1+1", "1"], ["Total", "2"]]
    back = read_csv(tmp_path / "i.csv", index_col="borough")
    assert back.index.tolist() == ["=1+1", "Total"] and back.columns.tolist() == ["=x"]


@given(
    st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
        min_size=1,
        max_size=8,
    )
)
def test_text_round_trips(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        df = pd.DataFrame({"text": texts, "n": range(len(texts))})
        path = write_csv(df, Path(d) / "p.csv")
        back = read_csv(path, dtype={"text": str}, keep_default_na=False)
        assert back["text"].tolist() == texts
        # No cell a spreadsheet would run is left.
        for row in _cells(path)[1:]:
            assert not re.match(r"^\s*[=+@\uff1d\uff0b\uff20]|^[\t\r\n]", row[0]), row[0]
            assert not row[0].startswith("-") or re.fullmatch(r"-[A-Za-z0-9_-]*", row[0])


def test_reader_keeps_quotes_it_did_not_add(tmp_path: Path) -> None:
    path = tmp_path / "theirs.csv"
    path.write_text("name,n\n'tis,1\n'=1+1,2\n''x,3\n", encoding="utf-8")
    assert read_csv(path)["name"].tolist() == ["'tis", "=1+1", "'x"]
