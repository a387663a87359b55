"""Amnesty's printed models, reproduced from its own tract table to every printed digit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus import published
from camcensus.stats import models, published_models
from camcensus.stats.workflow import stats_from_files
from camcensus.studies.nyc import DESIGN

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def amnesty_run(nyc_paths: dict[str, Path], shared: Path):  # type: ignore[no-untyped-def]
    # The `camcensus stats` path on Amnesty's own per-tract coverage (camera_count.csv), its
    # census table and the third-party 2019/2020 tract stop counts.
    return stats_from_files(
        tract_table=nyc_paths["camera_count"],
        tracts=nyc_paths["tracts"],
        census=nyc_paths["census"],
        stops=[shared / "census/acs2019_tract/full_df.csv"],
        permutations=19,
        design=DESIGN,
    )


def test_matches_printed_semantics() -> None:
    assert published_models.matches_printed("-1.6062", -1.60624071)
    assert not published_models.matches_printed("-1.6062", -1.60615)
    assert published_models.matches_printed("2.15e-05", 2.14859e-05)
    assert not published_models.matches_printed("2.15e-05", 2.144e-05)
    assert published_models.matches_printed("-1.504e+00", -1.504319)
    assert published_models.matches_printed("< 2e-16", 1e-20)
    assert not published_models.matches_printed("<2e-16", 3e-16)
    assert published_models.matches_printed("2914.0", 2913.991)
    assert not published_models.matches_printed("0.62", 0.6251)
    assert not published_models.matches_printed("0.62", None)


def test_r_term_names() -> None:
    r = published_models.r_term
    assert r("borough[Staten Island]:nonwhite_fraction") == "boroughStaten Island:nonwhite_fraction"
    assert r("Intercept") == "(Intercept)"
    assert r("med_income") == "med.income"
    assert r("black_minus_hispanic") == "I((popn.black - popn.hispanic)/popn)"
    assert r("nwfC[T.(0.5,1]]:surv") == "nwfC(0.5,1]:surv"
    assert r("resident_black_share:high[T.TRUE]") == (
        "I(popn.black/popn):I(surv > SURV_THRESHOLD)TRUE"
    )
    assert r("bwh[HISPANIC]:surv") == "bwhHISPANIC:surv"
    assert r("I(surv ** 2)") == "I(surv^2)"


def test_r_cut_two_bins() -> None:
    # R: cut(c(0, 0.2, 1), 2) -> breaks -0.001, 0.5, 1.001; levels "(-0.001,0.5]" "(0.5,1]".
    breaks, labels = models.r_cut_breaks(pd.Series([0.0, 0.2, np.nan, 1.0]))
    assert breaks == pytest.approx([-0.001, 0.5, 1.001])
    assert labels == ["(-0.001,0.5]", "(0.5,1]"]
    # Labels get more digits until they differ (R's formatC loop).
    _, labels = models.r_cut_breaks([1.0, 1.0004])
    assert len(set(labels)) == 2


@pytest.mark.slow
def test_placement_models_reproduce_every_printed_digit(amnesty_run) -> None:  # type: ignore[no-untyped-def]
    result, ledger = amnesty_run
    assert any("Published vs ours" in n for n in ledger.notes)
    table = result.tables["published_vs_ours"]
    for name in ("fit", "fit2", "fit3"):
        rows = table.loc[table["model"] == name]
        spec = published.PRINTED_MODELS[name]
        n_coef = len(spec["coefficients"])  # type: ignore[arg-type]
        # 4 printed numbers per coefficient; null and residual deviance with their df; AIC.
        assert len(rows) == 4 * n_coef + 5 + (name == "fit2"), name
        bad = rows.loc[~rows["matches_printed_digits"], ["term", "quantity", "published", "ours"]]
        assert bad.empty, f"{name} differs from the printed numbers:\n{bad}"
        assert (rows["cause"] == "").all()
    place = next(m for m in result.models if m.name == "placement_logit")
    assert place.n == 2_102
    # The text's p-values (p.38) are the model's, rounded.
    for borough, p in published.PLACEMENT_TEXT_P_VALUES.items():
        got = place.coef(f"borough[{borough}]:nonwhite_fraction").p_value
        assert published_models.matches_printed(p, got), borough
    # 11 tracts without median income left out of fit2, as R's "11 observations deleted".
    fit2 = next(m for m in result.models if m.name == "placement_logit_income")
    assert fit2.extras["n_deleted"] == 11 and fit2.n == 2_091


@pytest.mark.slow
def test_stop_models_from_third_party_counts(amnesty_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = amnesty_run
    table = result.tables["published_vs_ours"].set_index(["model", "term", "quantity"])
    # The tract set of Amnesty's Queens sanity model and its lm is reproduced exactly ...
    assert table.loc[("fit1", "", "df_null"), "matches_printed_digits"]
    assert table.loc[("fit1", "", "df_resid"), "matches_printed_digits"]
    assert table.loc[("lm_nwfC_surv", "", "df_resid"), "matches_printed_digits"]
    assert table.loc[("lm_nwfC_surv", "", "r_squared"), "matches_printed_digits"]
    # ... but the 2019 stop counts (built by a third party) are not Amnesty's: the null
    # deviance, which depends on the stop counts and population only, differs.
    null = table.loc[("fit1", "", "null_deviance")]
    assert null["ours"] == pytest.approx(2340.894, abs=0.01)
    assert not null["matches_printed_digits"]
    assert "2,340.9 vs 2,267.1" in null["cause"]
    assert "2,340.9 vs 2,267.1" in table.loc[("lm_nwfC_surv", "surv", "estimate"), "cause"]
    # Every printed term has a value of ours (term names map to R's).
    assert table["ours"].notna().loc[["fit1", "lm_nwfC_surv"]].all()
    # The finding says how much was reproduced and why not the rest.
    assert any("fit1" in f and "third-party" in f for f in result.findings)


@pytest.mark.slow
def test_full_df_surv_and_stop_rate_reproduced(amnesty_run, shared: Path, nyc_paths) -> None:  # type: ignore[no-untyped-def]
    ref = pd.read_csv(
        shared / "census/acs2019_tract/full_df.csv",
        dtype={"GEOID": str},
        usecols=["GEOID", "surv", "stop_rate", "n_stops"],
    ).set_index("GEOID")
    tracts = pd.read_csv(nyc_paths["camera_count"], dtype={"GEOID": str})
    acs = pd.read_csv(nyc_paths["census"], dtype={"GEOID": str}).rename(
        columns={
            "popn.black": "popn_black",
            "popn.white": "popn_white",
            "popn.hispanic": "popn_hispanic",
        }
    )
    t = tracts.merge(acs, on="GEOID")
    denom = t["popn_black"] + t["popn_hispanic"] + t["popn_white"]
    t["nonwhite_fraction"] = (t["popn_black"] + t["popn_hispanic"]) / denom.where(denom > 0)
    counts = ref["n_stops"].rename("count").dropna().reset_index().assign(year=2019)
    table = models.model_table(t.assign(borough="x"), counts).set_index("GEOID")
    # surv = effective cameras within 200 m per 1,000 residents, tracts of more than 250.
    r = ref.loc[table.index]
    np.testing.assert_allclose(table["surv"], r["surv"], rtol=1e-12)
    assert ref["surv"].notna().sum() == len(table) == 2_102
    # stop_rate = stops (2019 and 2020) per 1,000 residents, where any stop was recorded.
    has = r["stop_rate"].notna()
    np.testing.assert_allclose(
        table.loc[has, "stops_2019"] / table.loc[has, "popn"] * 1000, r.loc[has, "stop_rate"]
    )


@pytest.mark.slow
def test_placement_on_our_coverage_names_its_causes(citywide_result, nyc_paths) -> None:  # type: ignore[no-untyped-def]
    from camcensus.stats.disparity import run_disparity

    reference = pd.read_csv(nyc_paths["camera_count"], dtype={"GEOID": str})
    res = run_disparity(
        citywide_result.tracts, None, permutations=19, reference=reference, design=DESIGN
    )
    table = res.tables["published_vs_ours"]
    fit = table.loc[table["model"] == "fit"]
    assert len(fit) == 45
    missed = fit.loc[~fit["matches_printed_digits"]]
    # Our coverage comes from the reduced citywide file (coordinates rounded to 5 decimals):
    # some numbers differ, and the cause names the tracts that cross the threshold.
    crossing = published_models.coverage_crossings(citywide_result.tracts, reference, threshold=0.2)
    assert 0 < crossing["max_abs_diff"] < 0.05
    if len(missed):
        cause = missed["cause"].iloc[0]
        assert f"{crossing['max_abs_diff']:.4f}" in cause
        for geoid in crossing["crossing"][:6]:
            assert geoid in cause


@pytest.mark.slow
def test_bronx_verdict_rests_on_the_profile_interval(amnesty_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = amnesty_run
    assert result.interval_method.startswith("profile likelihood")
    s = result.survival.set_index(["model", "borough"]).loc[("placement_logit", "Bronx")]
    # R: confint(fit) (MASS) gives [0.0265, 2.6682]; confint.default [-0.0168, 2.6101].
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.02647, 2.66823), abs=1e-3)
    assert (s["wald_ci_low"], s["wald_ci_high"]) == pytest.approx((-0.01684, 2.61007), abs=1e-4)
    assert s["significant"] and not s["significant_wald"]
    assert s["interval"].startswith("profile likelihood")
    bronx = next(f for f in result.findings if f.startswith("Bronx:"))
    assert "profile-likelihood CI" in bronx and "Wald interval" in bronx
    # Checks are named in words, never by internal id.
    assert "placement_logit" not in " ".join(result.findings)
