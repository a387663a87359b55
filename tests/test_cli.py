"""The command line: each command calls the library, writes, and fails clearly."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from camcensus.cli import app
from camcensus.simulate import simulate_city

runner = CliRunner()

COMMANDS = [["demo"], ["reproduce", "nyc"], ["aggregate"], ["coverage"], ["settings"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_an_example(cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: camcensus " + " ".join(cmd) in re.sub(r"\s+", " ", result.output)


def test_demo(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["numbers"]["truth"]["public_cameras"] > results["numbers"]["public_cameras"]
    con = sqlite3.connect(tmp_path / "camcensus.sqlite")
    n = con.execute("SELECT COUNT(*) FROM tract_coverage").fetchone()[0]
    con.close()
    assert n == results["numbers"]["tracts"]
    assert (tmp_path / "index.html").stat().st_size > 100_000


def test_reproduce_nyc_citywide(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    args = [
        "reproduce",
        "nyc",
        "--intersections",
        str(nyc_paths["citywide"]),
        "--tracts",
        str(nyc_paths["tracts"]),
        "--census",
        str(nyc_paths["census"]),
        "--boroughs",
        str(nyc_paths["boroughs"]),
        "--out",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    numbers = json.loads((tmp_path / "results.json").read_text())["numbers"]
    assert numbers["public_cameras"] == 3_317
    assert numbers["public_intersections"] == 2_442


def test_aggregate_and_coverage_commands(tmp_path: Path) -> None:
    city = simulate_city(2, nx=20, ny=20)
    paths = city.write(tmp_path / "in")
    out = tmp_path / "agg.csv"
    result = runner.invoke(
        app,
        [
            "aggregate",
            "--raw-counts",
            str(paths["raw_counts"]),
            "--raw-intersections",
            str(paths["raw_intersections"]),
            "--panoramas",
            str(paths["panoramas"]),
            "--pick",
            "first",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    agg = pd.read_csv(out)
    assert {"PanoramaId", "attached_street_median", "Lat", "Long"} <= set(agg.columns)
    assert "fewer than 3 decoders" in result.output
    cov = tmp_path / "cov.csv"
    result = runner.invoke(
        app,
        [
            "coverage",
            "--intersections",
            str(out),
            "--tracts",
            str(paths["tracts"]),
            "--out",
            str(cov),
        ],
    )
    assert result.exit_code == 0, result.output
    t = pd.read_csv(cov)
    assert len(t) == len(city.tracts)
    assert t["cameras"].sum() == agg["attached_street_median"].sum()


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, nyc_paths: dict[str, Path]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Long,Lat,attached_street_median\n-73.9,forty,1\n")
    result = runner.invoke(
        app,
        [
            "coverage",
            "--intersections",
            str(bad),
            "--tracts",
            str(nyc_paths["tracts"]),
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code == 2
    text = re.sub(r"\s+", " ", result.output)
    assert "bad.csv, row 1, column 'Lat'" in text and "Traceback" not in text
    result = runner.invoke(
        app, ["reproduce", "nyc", "--tracts", str(nyc_paths["tracts"]), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--intersections" in result.output


def test_readme_starts_with_the_two_commands() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", readme, flags=re.S)
    assert blocks[0].split() == ["make", "demo", "make", "test"]
    # Every camcensus command the README shows parses (checked by --help on its subcommand).
    lines = [ln for b in blocks for ln in b.splitlines() if ln.startswith("camcensus ")]
    assert len(lines) >= 5
    for line in lines:
        words = [w for w in line.split()[1:] if not w.startswith("-")][:2]
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, line
