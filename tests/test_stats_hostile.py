"""Hostile inputs of the stats stage: degenerate models, bad options, bad tract tables and stop
files. Each test failed before its fix (a crash, a traceback, a wrong reason or a silent use)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from camcensus._errors import InputError, Ledger, OptionError
from camcensus.aggregate import aggregate_submissions
from camcensus.coverage import add_coverage
from camcensus.io import stops as io_stops
from camcensus.simulate import simulate_city
from camcensus.stats import disparity, models, spatial, workflow
from camcensus.stats import inputs as stats_inputs
from camcensus.stats._result import Estimate, ModelResult
from camcensus.stats.profile import fit_lm, glm_from_formula

# --- 1. Profile intervals that do not reach the cut-off ------------------------------------


def _separated() -> pd.DataFrame:
    x = np.linspace(-1, 1, 20)
    return pd.DataFrame({"x": x, "y": (x > 0).astype(float)})


def test_profile_interval_under_separation_is_not_established() -> None:
    fit = glm_from_formula("y ~ x", _separated(), family="binomial")
    res = fit.to_result(name="sep", formula="y ~ x")
    c = res.coef("x")
    assert math.isnan(c.ci_low) or math.isinf(c.ci_low) or math.isnan(c.ci_high)
    notes = res.extras["interval_warnings"]
    assert any("profile does not reach the 95% cut-off" in n for n in notes)


def test_profile_interval_when_every_outcome_is_one() -> None:
    # The demo's placement model at 0.2: every tract is "high" (brentq used to get no sign
    # change: "f(a) and f(b) must have different signs").
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": np.repeat(["a", "b"], 10), "x": rng.uniform(0, 1, 20), "y": np.ones(20)})
    fit = glm_from_formula("y ~ 0 + C(g) + C(g):x", d, family="binomial")
    res = fit.to_result(name="all_one", formula="y ~ 0 + g + g:x")
    assert res.extras["interval_warnings"]
    for c in res.coefficients:
        assert not (c.ci_low <= c.ci_high and math.isfinite(c.ci_low + c.ci_high))


def test_nan_bound_is_not_established_in_the_verdict() -> None:
    term = "borough[A]:nonwhite_fraction"
    base = ModelResult(
        "placement_logit",
        "f",
        "binomial",
        10,
        (Estimate(term, 2.0, 0.5, float("nan"), -1.0, 0.01, 10, "profile"),),
        group={"threshold": 0.2},
    )
    row = disparity.survival_table([base]).iloc[0]
    assert not row["significant"]
    assert not row["survives"]
    assert row["failed_checks"].startswith("interval not established")
    findings = disparity.write_findings([base], disparity.survival_table([base]), {}, threshold=0.2)
    assert "not established" in findings[0]


@pytest.fixture(scope="module")
def demo_table() -> gpd.GeoDataFrame:
    """The demo's tract table (simulate_city(0)), as ``camcensus demo`` writes it."""
    city = simulate_city(0)
    pan = aggregate_submissions(
        city.submissions, city.intersections, city.panoramas, boroughs=city.boroughs, seed=0
    )
    tr = add_coverage(city.tracts, pan)
    c = city.census.set_index("GEOID").loc[tr["GEOID"]]
    for ours, theirs in (
        ("popn", "popn"),
        ("popn_white", "popn.white"),
        ("popn_black", "popn.black"),
        ("popn_hispanic", "popn.hispanic"),
        ("med_income", "med.income"),
    ):
        tr[ours] = c[theirs].to_numpy(dtype=float)
    tr["nonwhite_fraction"] = (tr["popn_black"] + tr["popn_hispanic"]) / (
        tr["popn_black"] + tr["popn_hispanic"] + tr["popn_white"]
    )
    return tr


def test_demo_at_default_threshold_runs_and_keeps_warnings(demo_table: gpd.GeoDataFrame) -> None:
    # pytest turns any printed warning into an error: the fit's warnings must be kept, not shown.
    ledger = Ledger()
    res = disparity.run_disparity(
        demo_table, None, threshold=0.2, permutations=9, seed=0, ledger=ledger
    )
    place = next(m for m in res.models if m.name == "placement_logit")
    assert any("does not reach the 95% cut-off" in n for n in place.extras["interval_warnings"])
    assert set(res.survival["failed_checks"]) == {disparity.NOT_ESTABLISHED}
    moran = next(m for m in res.models if m.name == "placement_logit_residual_moran")
    assert any("PerfectSeparation" in w for w in moran.extras["fit_warnings"])


def test_warnings_of_a_fit_are_recorded_not_printed() -> None:
    d = _separated()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = models._glm("y ~ x", d, "binomial", name="sep", r_formula="y ~ x")
    assert isinstance(res.extras["fit_warnings"], list)


# --- 3, 4. Options -------------------------------------------------------------------------


@pytest.mark.parametrize("permutations", [0, -1, 99_999_999_999, 2.5])
def test_permutations_out_of_range(demo_table: gpd.GeoDataFrame, permutations: object) -> None:
    with pytest.raises(OptionError, match="--permutations"):
        disparity.run_disparity(demo_table, None, permutations=permutations)  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="--permutations 999"):
        spatial.moran_permutation(np.zeros(3), None, permutations=permutations)  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), -1.0, "high"])
def test_threshold_must_be_finite_and_not_negative(
    demo_table: gpd.GeoDataFrame, threshold: object
) -> None:
    with pytest.raises(OptionError, match=r"--threshold .*0\.2"):
        disparity.run_disparity(demo_table, None, threshold=threshold)  # type: ignore[arg-type]


# --- 2, 6. Stop inputs ---------------------------------------------------------------------


def _square_tracts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"GEOID": ["99001000001"], "borough": ["A"]},
        geometry=[shapely.box(500000, 4400000, 500500, 4400500)],
        crs="EPSG:32618",
    )


_RECORDS = (
    "STOP_ID,YEAR2,STOP_LOCATION_X,STOP_LOCATION_Y,SUSPECT_RACE_DESCRIPTION,"
    "SUSPECT_ARRESTED_FLAG,SUMMONS_ISSUED_FLAG,WEAPON_FOUND_FLAG\n"
    "1,2019,500100,4400100,BLACK,Y,N,N\n"
    "2,2019,500200,4400200,WHITE,maybe,N,N\n"
    "3,2019,500300,4400300,WHITE,N,(null),N\n"
)


@pytest.mark.parametrize("crs", ["EPSG:99999", "garbage"])
def test_unknown_stops_crs_names_the_option(tmp_path: Path, crs: str) -> None:
    p = tmp_path / "stops.csv"
    p.write_text(_RECORDS.replace("maybe", "N"))
    with pytest.raises(OptionError, match="--stops-crs"):
        stats_inputs.read_stops([p], _square_tracts(), crs=crs)


def test_flag_other_than_y_or_n_is_an_error_with_its_row(tmp_path: Path) -> None:
    p = tmp_path / "stops.csv"
    p.write_text(_RECORDS)
    with pytest.raises(InputError, match="row 2, column 'SUSPECT_ARRESTED_FLAG'") as err:
        io_stops.stop_records_from_file(p)
    assert "'maybe'" in str(err.value)


def test_blank_or_null_flag_is_read_as_no_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "stops.csv"
    p.write_text(_RECORDS.replace("maybe", "N"))
    ledger = Ledger()
    recs = io_stops.stop_records_from_file(p, ledger=ledger)
    assert list(recs["summons_issued_flag"]) == [False, False, False]
    assert [f.count for f in ledger.flagged] == [1]


def test_stop_file_with_neither_kind_of_columns_names_both(tmp_path: Path) -> None:
    p = tmp_path / "stops.csv"
    p.write_text("STOP_ID,YEAR2,STOP_LOCATION_Y\n1,2019,4400100\n")
    with pytest.raises(InputError) as err:
        stats_inputs.read_stops([p], _square_tracts(), crs="EPSG:32618")
    text = str(err.value)
    assert "STOP_LOCATION_X" in text and "GEOID" in text and "n_YYYY" in text


# --- 5. Tract tables -----------------------------------------------------------------------


def _table(tmp_path: Path, demo_table: gpd.GeoDataFrame, edit: object = None) -> Path:
    t = pd.DataFrame(demo_table.drop(columns="geometry"))
    if callable(edit):
        edited = edit(t)
        t = edited if edited is not None else t
    p = tmp_path / "tract_coverage.csv"
    t.to_csv(p, index=False)
    return p


@pytest.fixture(scope="module")
def demo_polygons(tmp_path_factory: pytest.TempPathFactory, demo_table: gpd.GeoDataFrame) -> Path:
    p = tmp_path_factory.mktemp("poly") / "tracts.gpkg"
    demo_table[["GEOID", "borough", "geometry"]].to_file(p)
    return p


def _run(table: Path, polygons: Path) -> tuple[disparity.DisparityResult, Ledger]:
    return workflow.stats_from_files(
        tract_table=table, tracts=polygons, threshold=1.0, permutations=9, seed=0
    )


def test_repeated_geoid_names_the_rows(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    def dup(t: pd.DataFrame) -> None:
        t.loc[3, "GEOID"] = t.loc[0, "GEOID"]

    with pytest.raises(InputError, match=r"row 4, column 'GEOID'.*row\(s\) 1"):
        _run(_table(tmp_path, demo_table, dup), demo_polygons)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("popn", float("inf"), r"row 2, column 'popn'.*a finite number"),
        ("eff_cameras", -1.0, r"row 2, column 'eff_cameras'.*at least 0"),
        ("popn_black", 999_999.0, r"row 2, column 'popn_black'.*more than the tract's population"),
    ],
)
def test_impossible_values_name_their_rows(
    tmp_path: Path,
    demo_table: gpd.GeoDataFrame,
    demo_polygons: Path,
    column: str,
    value: float,
    expected: str,
) -> None:
    def edit(t: pd.DataFrame) -> None:
        t.loc[1, column] = value

    with pytest.raises(InputError, match=expected):
        _run(_table(tmp_path, demo_table, edit), demo_polygons)


def test_no_geoid_in_the_polygons_says_no_tract_is_left(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    def edit(t: pd.DataFrame) -> None:
        t["GEOID"] = "0" + t["GEOID"].str[1:]

    with pytest.raises(InputError, match="no tract left for the models"):
        _run(_table(tmp_path, demo_table, edit), demo_polygons)


def test_every_population_zero_says_no_tract_is_left(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    def edit(t: pd.DataFrame) -> None:
        t["popn"] = 0.0

    with pytest.raises(InputError, match=r"no tract left for the models.*at most 250"):
        _run(_table(tmp_path, demo_table, edit), demo_polygons)


def test_missing_values_are_excluded_with_their_own_reasons(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    def edit(t: pd.DataFrame) -> None:
        t.loc[1, "popn"] = np.nan
        t.loc[2, "eff_cameras"] = np.nan

    _, ledger = _run(_table(tmp_path, demo_table, edit), demo_polygons)
    reasons = {e.reason: e.count for e in ledger.exclusions}
    assert reasons["tract population missing"] == 1
    assert reasons["no camera coverage (eff_cameras or eff_cameras_within_200m missing)"] == 1
    small = int((demo_table["popn"] <= 250).sum())
    assert reasons.get("tract population at most 250", 0) == small


def test_negative_population_has_its_own_reason(demo_table: gpd.GeoDataFrame) -> None:
    t = pd.DataFrame(demo_table.drop(columns="geometry"))
    t.loc[0, "popn"] = -5.0
    ledger = Ledger()
    models.model_table(t, ledger=ledger)
    reasons = {e.reason: e.count for e in ledger.exclusions}
    assert reasons["tract population negative"] == 1
    assert reasons.get("tract population at most 250", 0) == int((t["popn"].between(0, 250)).sum())


def test_three_row_table_runs(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    def edit(t: pd.DataFrame) -> pd.DataFrame:
        return t.iloc[:3]

    res, _ = _run(_table(tmp_path, demo_table, edit), demo_polygons)
    assert any(m.name == "placement_logit" for m in res.models)


# --- Tiny fits: as many rows as coefficients, a year of one stop record --------------------


def test_lm_without_residual_degrees_of_freedom() -> None:
    # Used to raise ZeroDivisionError (summary.lm) and "math domain error" (gaussian AIC).
    X = np.column_stack([np.ones(2), [0.0, 1.0]])
    fit = fit_lm(X, np.array([1.0, 3.0]), names=["Intercept", "x"])
    assert fit.aic == -math.inf
    assert math.isnan(fit.lm_summary["sigma"])
    assert fit.to_result(name="tiny", formula="y ~ x").coef("x").estimate == pytest.approx(2.0)


def test_a_year_with_one_stop_record_is_skipped_and_noted(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    city = simulate_city(0)
    paths = city.write(tmp_path / "city")
    stops = tmp_path / "stops.csv"
    text = paths["stops"].read_text()
    header, first = text.splitlines()[:2]
    fields = first.split(",")
    fields[header.split(",").index("YEAR2")] = "3019"
    stops.write_text(text.rstrip("\n") + "\n" + ",".join(fields) + "\n")
    res, ledger = workflow.stats_from_files(
        tract_table=_table(tmp_path, demo_table),
        tracts=demo_polygons,
        stops=[stops],
        stops_crs=city.crs,
        threshold=1.0,
        permutations=9,
        seed=0,
    )
    assert any("Stop records of 3019: only 1" in n for n in ledger.notes)
    assert all(m.group.get("year") != 3019 for m in res.models if m.name == "innocence_lpm")


def test_a_district_of_one_tract_runs(
    tmp_path: Path, demo_table: gpd.GeoDataFrame, demo_polygons: Path
) -> None:
    # Its two placement terms cannot both be estimated from one tract: the Conley covariance
    # used to raise "Singular matrix".
    def edit(t: pd.DataFrame) -> None:
        t.loc[3, "borough"] = "Lonely"

    res, _ = _run(_table(tmp_path, demo_table, edit), demo_polygons)
    place = next(m for m in res.models if m.name == "placement_logit")
    lonely = place.coef("borough[Lonely]:nonwhite_fraction")
    assert not (np.isfinite(lonely.ci_low) and np.isfinite(lonely.ci_high))
