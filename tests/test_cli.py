"""The command line: each command calls the library, writes, and fails clearly."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from camcensus.cli import app
from camcensus.simulate import simulate_city

runner = CliRunner()


def _commands() -> list[list[str]]:
    """Every command of the app, taken from the app itself (groups walked)."""
    root = typer.main.get_command(app)
    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(root, [])
    return out


def _option_names() -> set[str]:
    names: set[str] = set()

    def walk(cmd: Any) -> None:
        for p in cmd.params:
            names.update(o for o in p.opts if o.startswith("--"))
            names.update(o for o in getattr(p, "secondary_opts", []) if o.startswith("--"))
        if hasattr(cmd, "commands"):
            for sub in cmd.commands.values():
                walk(sub)

    walk(typer.main.get_command(app))
    return names


def test_the_command_list_comes_from_the_app() -> None:
    cmds = {" ".join(c) for c in _commands()}
    assert {"demo", "reproduce nyc", "aggregate", "coverage", "stats", "settings"} <= cmds


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: " ".join(c))
def test_every_command_has_an_example(cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: camcensus " + " ".join(cmd) in re.sub(r"\s+", " ", result.output)


def test_fix_hints_name_only_options_that_exist() -> None:
    # Every "--option" a message of the package mentions is an option of the command line.
    src = Path(__file__).resolve().parents[1] / "src" / "camcensus"
    mentioned: dict[str, str] = {}
    for py in src.rglob("*.py"):
        for m in re.finditer(r"(?<![\w-])--([a-z][a-z0-9]+(?:-[a-z0-9]+)*)", py.read_text()):
            mentioned.setdefault("--" + m.group(1), py.name)
    known = _option_names() | {"--help"}
    unknown = {k: v for k, v in mentioned.items() if k not in known}
    assert not unknown, f"messages name options the CLI does not have: {unknown}"


def test_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["numbers"]["truth"]["public_cameras"] > results["numbers"]["public_cameras"]
    con = sqlite3.connect(out / "camcensus.sqlite")
    n = con.execute("SELECT COUNT(*) FROM tract_coverage").fetchone()[0]
    con.close()
    assert n == results["numbers"]["tracts"]
    assert (out / "index.html").stat().st_size > 100_000
    # The inputs go beside the report, never into it; a second run needs --force.
    assert (tmp_path / "demo-inputs" / "census.csv").exists()
    # The counts came through the platform: its export (Amnesty's four CSVs) is in the report
    # and is exactly what the census read; the way to tag by hand is printed.
    export = out / "export"
    read = tmp_path / "demo-inputs" / "platform" / "export"
    for name in ("counts.csv", "intersections.csv", "panorama_url.csv", "cameras.csv"):
        assert (export / name).read_bytes() == (read / name).read_bytes(), name
    exported = pd.read_csv(export / "panorama_url.csv")
    assert len(exported) == results["numbers"]["panoramas"]
    assert "camcensus serve --demo" in " ".join(result.output.split())
    again = runner.invoke(app, ["demo", "--out", str(out), "--no-platform"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(app, ["demo", "--out", str(out), "--force", "--no-platform"])
    assert forced.exit_code == 0, forced.output
    assert not (out / "export").exists()


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


def _aggregate_args(paths: dict[str, Path], out: Path) -> list[str]:
    return [
        "aggregate",
        "--raw-counts",
        str(paths["raw_counts"]),
        "--raw-intersections",
        str(paths["raw_intersections"]),
        "--panoramas",
        str(paths["panoramas"]),
        "--out",
        str(out),
    ]


def test_aggregate_and_coverage_commands(tmp_path: Path) -> None:
    city = simulate_city(2, nx=20, ny=20)
    paths = city.write(tmp_path / "in")
    out = tmp_path / "agg.csv"
    result = runner.invoke(app, [*_aggregate_args(paths, out), "--pick", "first"])
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
        app,
        ["reproduce", "nyc", "--tracts", str(nyc_paths["tracts"]), "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2
    assert "--intersections" in result.output
    assert "[bold" not in result.output and "Traceback" not in result.output


def _readme_blocks() -> list[tuple[str, str]]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    blocks = _readme_blocks()
    assert blocks[0][1].split() == ["make", "demo", "make", "test"]


@pytest.mark.slow
@pytest.mark.realdata
def test_every_readme_command_runs(
    tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run every command of the README, in order, as a user would after `make demo`."""
    monkeypatch.chdir(tmp_path)
    # `make demo` = camcensus demo --out out/demo --force
    assert runner.invoke(app, ["demo", "--out", "out/demo", "--force"]).exit_code == 0
    commands: list[list[str]] = []
    python_blocks: list[str] = []
    for lang, body in _readme_blocks()[1:]:
        if lang == "python":
            python_blocks.append(body)
            continue
        text = body.replace("\\\n", " ").replace("../shared/data", str(shared))
        commands += [ln.split() for ln in text.splitlines() if ln.startswith("camcensus ")]
    assert len(commands) >= 7
    for words in commands:
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, " ".join(words) + "\n" + result.output
        if "--out" in words:
            out = Path(words[words.index("--out") + 1])
            assert out.exists(), " ".join(words)
    assert Path("out/nyc-disparity/results.json").exists()
    assert json.loads(Path("out/stats-amnesty/models.json").read_text())["models"]
    for body in python_blocks:
        scope: dict[str, object] = {}
        exec(compile(body, "README.md", "exec"), scope)
        assert (scope["gdf_tracts"]["eff_cameras"] >= 0).all()  # type: ignore[index]


def test_out_pointing_to_a_file_or_an_input_is_refused(tmp_path: Path) -> None:
    city = simulate_city(2, nx=12, ny=12)
    paths = city.write(tmp_path / "in")
    a_file = tmp_path / "report.txt"
    a_file.write_text("mine")
    common = ["reproduce", "nyc", "--raw-counts", str(paths["raw_counts"])]
    common += ["--raw-intersections", str(paths["raw_intersections"])]
    common += ["--panoramas", str(paths["panoramas"]), "--tracts", str(paths["tracts"])]
    result = runner.invoke(app, [*common, "--out", str(a_file)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert a_file.read_text() == "mine"
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "in")])
    assert result.exit_code == 2
    assert paths["raw_counts"].exists()
    # A CSV output never overwrites its input.
    before = paths["raw_counts"].read_bytes()
    result = runner.invoke(app, _aggregate_args(paths, paths["raw_counts"]))
    assert result.exit_code == 2
    assert paths["raw_counts"].read_bytes() == before


def test_directory_given_as_a_file_and_bad_options(tmp_path: Path) -> None:
    city = simulate_city(2, nx=12, ny=12)
    paths = city.write(tmp_path / "in")
    cases = [
        ["coverage", "--intersections", str(tmp_path), "--tracts", str(paths["tracts"])],
        ["coverage", "--intersections", str(paths["raw_counts"]), "--tracts", str(tmp_path)],
    ]
    for words in cases:
        result = runner.invoke(app, [*words, "--out", str(tmp_path / "x.csv")])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    agg = tmp_path / "agg.csv"
    assert runner.invoke(app, _aggregate_args(paths, agg)).exit_code == 0
    for radius in ("0", "-5", "nan"):
        result = runner.invoke(
            app,
            [
                "coverage",
                "--intersections",
                str(agg),
                "--tracts",
                str(paths["tracts"]),
                "--radius-m",
                radius,
                "--out",
                str(tmp_path / "c.csv"),
            ],
        )
        assert result.exit_code == 2, (radius, result.output)
        assert "radius" in result.output and "Traceback" not in result.output


def test_hostile_options_are_refused_before_any_work(tmp_path: Path) -> None:
    city = simulate_city(2, nx=12, ny=12)
    paths = city.write(tmp_path / "in")
    agg = tmp_path / "agg.csv"
    assert runner.invoke(app, _aggregate_args(paths, agg)).exit_code == 0
    cov = ["coverage", "--intersections", str(agg), "--tracts", str(paths["tracts"])]
    cases = [
        ([*cov, "--tracts-crs", "EPSG:99999"], "--tracts-crs"),
        ([*cov, "--tracts-crs", "garbage"], "--tracts-crs"),
        ([*cov, "--radius-m", "1e12"], "radius"),
        ([*cov, "--band-m", "-5"], "--band-m"),
        (["aggregate", *_aggregate_args(paths, tmp_path / "a2.csv")[1:], "--seed", "-5"], "--seed"),
        (["aggregate", *_aggregate_args(paths, tmp_path / "a3.csv")[1:], "--pick", "x"], "--pick"),
    ]
    for words, needle in cases:
        result = runner.invoke(app, [*words, "--out", str(tmp_path / "x.csv")])
        assert result.exit_code == 2, (words, result.output)
        assert needle in result.output and "Traceback" not in result.output
    # An existing output file is replaced only with --force.
    result = runner.invoke(app, [*cov, "--out", str(agg)])
    assert result.exit_code == 2 and "input file" in result.output
    target = tmp_path / "cov.csv"
    target.write_text("mine")
    assert runner.invoke(app, [*cov, "--out", str(target)]).exit_code == 2
    assert target.read_text() == "mine"
    assert runner.invoke(app, [*cov, "--out", str(target), "--force"]).exit_code == 0


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("CAMCENSUS_DECODERS", "0"),
        ("CAMCENSUS_QUAD_SEGS", "0"),
        ("CAMCENSUS_SNAP_M", "-1"),
        ("CAMCENSUS_PICK", "x"),
        ("CAMCENSUS_PERMUTATIONS", "-1"),
        ("CAMCENSUS_SEED", "99999999999999999999999"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 2
    assert env in result.output and "Traceback" not in result.output


def test_inputs_that_would_be_ignored_are_refused(tmp_path: Path) -> None:
    city = simulate_city(2, nx=12, ny=12)
    paths = city.write(tmp_path / "in")
    agg = tmp_path / "agg.csv"
    assert runner.invoke(app, _aggregate_args(paths, agg)).exit_code == 0
    base = ["reproduce", "nyc", "--tracts", str(paths["tracts"]), "--out", str(tmp_path / "r")]
    cases = [
        (
            [*base, "--intersections", str(agg), "--raw-counts", str(paths["raw_counts"])],
            "not both",
        ),
        ([*base, "--intersections", str(agg), "--race-table", str(paths["census"])], "--stops"),
        (
            [
                *base,
                "--intersections",
                str(agg),
                "--census",
                str(paths["census"]),
                "--stops",
                str(paths["stops"]),
                "--stops",
                str(paths["stops"]),
            ],
            "twice",
        ),
    ]
    for words, needle in cases:
        result = runner.invoke(app, words)
        assert result.exit_code == 2, (words, result.output)
        assert needle in result.output


def test_demo_never_overwrites_a_users_files(tmp_path: Path) -> None:
    (tmp_path / "d-inputs").mkdir()
    (tmp_path / "d-inputs" / "counts.csv").write_text("MY OWN DATA")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--no-platform"])
    assert result.exit_code == 2 and "--force" in result.output
    assert (tmp_path / "d-inputs" / "counts.csv").read_text() == "MY OWN DATA"
    (tmp_path / "d-inputs" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--force", "--no-platform"])
    assert result.exit_code == 2 and "notes.txt" in result.output


def test_console_text_keeps_names_on_one_line() -> None:
    from camcensus.cli import _console_text

    assert _console_text("East\nside\u202e\u200f\tX") == "East side X"
    assert _console_text("Brooklyn") == "Brooklyn"
