"""The disparity stage on the NYC data, end to end, and on the synthetic city's ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from camcensus.aggregate import aggregate_submissions
from camcensus.cli import app
from camcensus.coverage import add_coverage
from camcensus.pipeline import reproduce_nyc
from camcensus.report import write_report
from camcensus.simulate import simulate_city
from camcensus.stats import models

REQUIRED_MODELS = {
    "stops_by_surveillance_bins",
    "stops_baseline",
    "stops_sanity_queens_2019",
    "stops_interaction_lm",
    "placement_logit",
    "placement_logit_income",
    "stops_baseline_quasipoisson",
    "stops_baseline_negbin",
    "stops_baseline_residual_moran",
    "stops_baseline_cluster_nta",
    "stops_baseline_conley_1000m",
    "stops_baseline_conley_2000m",
    "stops_spatial_error",
    "stops_spatial_lag",
    "placement_logit_residual_moran",
}


@pytest.fixture(scope="module")
def nyc_stats(nyc_paths: dict[str, Path], shared: Path):  # type: ignore[no-untyped-def]
    return reproduce_nyc(
        intersections=nyc_paths["citywide"],
        tracts=nyc_paths["tracts"],
        census=nyc_paths["census"],
        boroughs=nyc_paths["boroughs"],
        stops=[shared / "census/acs2019_tract/full_df.csv", shared / "sqf/sqf-2020.xlsx"],
        ntas=shared / "boundaries/nynta2010_24c/nynta2010.shp",
        race_table=shared / "census/nycgeo/tract_acs_data.csv",
        permutations=199,
    )


@pytest.mark.slow
def test_nyc_models_in_results_json(nyc_stats, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_report(nyc_stats, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    names = {m["name"] for m in results["models"]}
    assert names >= REQUIRED_MODELS
    for m in results["models"]:
        assert {"formula", "family", "n", "deviance", "aic", "coefficients"} <= set(m)
        for c in m["coefficients"]:
            assert set(c) >= {"term", "estimate", "std_error", "p_value", "ci_low", "ci_high"}
    baseline = [m for m in results["models"] if m["name"] == "stops_baseline"]
    assert {(m["group"]["borough"], m["group"]["year"]) for m in baseline} == {
        (b, y)
        for b in ("Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island")
        for y in (2019, 2020)
    }
    who = results["who_is_watched"]
    assert len(who["findings"]) >= 20
    assert (tmp_path / "tables" / "model_coefficients.csv").exists()
    assert (tmp_path / "figures" / "stop_model_coefficients.png").exists()
    html = (tmp_path / "index.html").read_text()
    assert "Who is watched" in html


@pytest.mark.slow
def test_nyc_headline_directions(nyc_stats) -> None:  # type: ignore[no-untyped-def]
    d = nyc_stats.disparity
    # The investigation's finding: more stops where there is more surveillance, in every borough.
    for m in d.models:
        if m.name == "stops_baseline":
            assert m.coef("surv").ci_low > 0, m.group
            assert m.n > 100
    # The bins model: the most surveilled tracts have several times the stop rate of the least.
    rates = d.tables["stops_by_surveillance_bins"]
    assert rates["rate_per_1000"].iloc[-1] > 3 * rates["rate_per_1000"].iloc[0]
    # Every modelled tract (2,165 less the 63 of at most 250 residents) is in one bin, and the
    # bins hold every 2019 stop of those tracts.
    assert rates["tracts"].sum() == 2_165 - 63
    assert 13_000 < rates["stops"].sum() <= 13_459
    # Amnesty's conclusion for placement: Bronx, Brooklyn and Queens positive, Manhattan not.
    place = next(m for m in d.models if m.name == "placement_logit")
    for b in ("Bronx", "Brooklyn", "Queens"):
        assert place.coef(f"borough[{b}]:nonwhite_fraction").estimate > 0
    assert place.coef("borough[Manhattan]:nonwhite_fraction").estimate < 0
    # Exclusions are counted: 63 tracts of at most 250 residents, 4 bad stops.
    excl = {(e.stage, e.reason): e.count for e in nyc_stats.ledger}
    assert excl[("models", "tract population at most 250")] == 63
    assert excl[("stops", "known-bad 2020 geocoding (prepdata.R's list)")] == 4
    radius = nyc_stats.sensitivity["radius"]
    assert sorted(radius["radius_m"].unique()) == [30, 60, 90, 120, 150, 200]
    race = nyc_stats.sensitivity["race"]
    assert set(race["definition"]) == {"White alone (ACS B02001)", "non-Hispanic"}


@pytest.mark.slow
def test_stats_command_on_a_tract_table(tmp_path: Path, nyc_stats, nyc_paths, shared) -> None:  # type: ignore[no-untyped-def]
    table = tmp_path / "tract_coverage.csv"
    nyc_stats.tracts.drop(columns="geometry").to_csv(table, index=False)
    result = CliRunner().invoke(
        app,
        [
            "stats",
            "--tract-table",
            str(table),
            "--tracts",
            str(nyc_paths["tracts"]),
            "--stops",
            str(shared / "census/acs2019_tract/full_df.csv"),
            "--permutations",
            "99",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "models.json").read_text())
    ours = {(m["name"], json.dumps(m["group"], sort_keys=True)): m for m in doc["models"]}
    ref = next(m for m in nyc_stats.disparity.models if m.name == "stops_baseline")
    got = ours[("stops_baseline", json.dumps(ref.group, sort_keys=True))]
    assert got["coefficients"][1]["estimate"] == pytest.approx(ref.coefficients[1].estimate)


@pytest.mark.slow
def test_placement_effect_recovered_on_synthetic_cities() -> None:
    # The synthetic city's public cameras rise with the non-white share by a known log-rate;
    # the 95% interval of the placement rate model should cover it in about 95% of cities.
    hits, estimates = 0, []
    seeds = range(12)
    for seed in seeds:
        city = simulate_city(seed)
        pan = aggregate_submissions(
            city.submissions, city.intersections, city.panoramas, boroughs=city.boroughs, seed=seed
        )
        tr = add_coverage(city.tracts, pan)
        c = city.census.set_index("GEOID").loc[tr["GEOID"]]
        nwf = (c["popn.black"] + c["popn.hispanic"]) / (
            c["popn.black"] + c["popn.hispanic"] + c["popn.white"]
        )
        tr["nonwhite_fraction"] = nwf.to_numpy()
        est = models.placement_poisson(tr).coef("nonwhite_fraction")
        estimates.append(est.estimate)
        hits += est.ci_low <= city.params["beta_nonwhite"] <= est.ci_high
    assert hits >= 10
    assert abs(np.mean(estimates) - 1.2) < 0.3


@pytest.mark.slow
def test_stats_on_amnesty_coverage_table(tmp_path: Path, nyc_paths, shared, nyc_stats) -> None:  # type: ignore[no-untyped-def]
    # Amnesty's own per-tract table plus the ACS table: the models run on their coverage, and
    # agree with ours (computed from the reduced citywide file) to the rounding of coordinates.
    result = CliRunner().invoke(
        app,
        ["stats", "--tract-table", str(nyc_paths["camera_count"]), "--census",
         str(nyc_paths["census"]), "--tracts", str(nyc_paths["tracts"]), "--stops",
         str(shared / "census/acs2019_tract/full_df.csv"), "--permutations", "99",
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "models.json").read_text())
    theirs = next(m for m in doc["models"] if m["name"] == "placement_logit")
    ours = next(m for m in nyc_stats.disparity.models if m.name == "placement_logit")
    assert theirs["n"] == ours.n == 2_102
    for c in theirs["coefficients"]:
        assert c["estimate"] == pytest.approx(ours.coef(c["term"]).estimate, abs=0.1)
