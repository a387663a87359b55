"""The methodology's models: statsmodels against hand-rolled references, R semantics."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats as sps

from camcensus import Ledger
from camcensus.stats import disparity, models
from camcensus.stats._result import Estimate, ModelResult


def _irls(X: np.ndarray, y: np.ndarray, offset: np.ndarray, family: str) -> np.ndarray:
    """Iteratively reweighted least squares, written out (the reference)."""
    beta = np.zeros(X.shape[1])
    for _ in range(100):
        eta = X @ beta + offset
        if family == "poisson":
            mu = np.exp(eta)
            w, z = mu, eta - offset + (y - mu) / mu
        else:
            mu = 1 / (1 + np.exp(-eta))
            w = mu * (1 - mu)
            z = eta - offset + (y - mu) / w
        new = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * z))
        if np.max(np.abs(new - beta)) < 1e-12:
            return new
        beta = new
    return beta


@pytest.fixture
def tracts() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    boroughs = rng.choice(["A", "B", "C"], n)
    nwf = rng.uniform(0, 1, n)
    popn = rng.integers(100, 6000, n).astype(float)
    eff200 = rng.gamma(2, 1.0, n) * popn / 1000
    eff = eff200 * rng.uniform(0.1, 0.5, n)
    surv = eff200 / popn * 1000
    mu19 = popn / 1000 * np.exp(0.2 * surv + 1.0 * nwf)
    return pd.DataFrame(
        {
            "GEOID": [f"{i:011d}" for i in range(n)],
            "borough": boroughs,
            "popn": popn,
            "popn_black": np.round(popn * nwf * 0.6),
            "popn_hispanic": np.round(popn * nwf * 0.4),
            "popn_white": np.round(popn * (1 - nwf)),
            "med_income": np.where(rng.random(n) < 0.05, np.nan, rng.normal(60000, 15000, n)),
            "nonwhite_fraction": nwf,
            "eff_cameras": eff,
            "eff_cameras_within_200m": eff200,
            "cameras": rng.poisson(2, n),
            "panoramas": rng.integers(5, 30, n),
        }
    ), pd.DataFrame(
        {
            "GEOID": np.tile([f"{i:011d}" for i in range(n)], 2),
            "year": np.repeat([2019, 2020], n),
            "count": np.concatenate([rng.poisson(mu19), rng.poisson(mu19 * 0.7)]).astype(float),
        }
    )


def test_model_table_excludes_and_counts(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    ledger = Ledger()
    df = models.model_table(t, stops, ledger=ledger)
    small = int((t["popn"] <= 250).sum())
    assert len(df) == len(t) - small
    assert {e.reason: e.count for e in ledger}["tract population at most 250"] == small
    np.testing.assert_allclose(df["surv"], df["eff_cameras_within_200m"] / df["popn"] * 1000)
    assert (
        df["stops_2019"].sum()
        == stops.loc[(stops["year"] == 2019) & stops["GEOID"].isin(df["GEOID"]), "count"].sum()
    )


def test_poisson_baseline_matches_irls_and_r_aic(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    df = models.model_table(t, stops)
    res = models.stops_baseline(df, years=[2019], boroughs=["A"])[0]
    d = df.loc[df["borough"] == "A"]
    X = np.column_stack([np.ones(len(d)), d["surv"], d["nonwhite_fraction"]])
    y = d["stops_2019"].to_numpy()
    off = np.log(d["popn"].to_numpy())
    beta = _irls(X, y, off, "poisson")
    np.testing.assert_allclose([c.estimate for c in res.coefficients], beta, rtol=1e-7, atol=1e-9)
    mu = np.exp(X @ beta + off)
    # R: aic = -2 * sum(dpois(y, mu, log = TRUE)) + 2 * rank; deviance = 2 sum(y log(y/mu) - (y-mu))
    aic = -2 * sps.poisson.logpmf(y, mu).sum() + 2 * 3
    dev = 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - (y - mu))
    assert res.aic == pytest.approx(aic, rel=1e-8)
    assert res.deviance == pytest.approx(dev, rel=1e-8)
    info = np.linalg.inv(X.T @ (X * mu[:, None]))
    np.testing.assert_allclose(
        [c.std_error for c in res.coefficients], np.sqrt(np.diag(info)), rtol=1e-6
    )
    c = res.coef("surv")
    # Profile likelihood (R's confint on a glm): refitting with surv fixed at either end of the
    # interval (an offset) raises the deviance by exactly qnorm(0.975)^2.
    assert c.method == "profile" and res.interval.startswith("profile likelihood")
    for end in (c.ci_low, c.ci_high):
        beta_end = _irls(X[:, [0, 2]], y, off + X[:, 1] * end, "poisson")
        mu_end = np.exp(X[:, [0, 2]] @ beta_end + off + X[:, 1] * end)
        dev_end = 2 * np.sum(
            np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu_end), 0) - (y - mu_end)
        )
        assert dev_end - dev == pytest.approx(1.959963984540054**2, abs=1e-7)
    wald = c.estimate - 1.959963984540054 * c.std_error
    assert c.ci_low != pytest.approx(wald, abs=1e-6)
    assert res.to_dict()["coefficients"][1]["term"] == "surv"


def test_placement_logit_matches_irls(tracts) -> None:  # type: ignore[no-untyped-def]
    t, _ = tracts
    df = models.model_table(t)
    res = models.placement_logit(df, threshold=0.2)
    assert res.formula.startswith("I(surv > 0.2) ~ 0 + borough + borough:nonwhite_fraction")
    y = (df["surv_place"] > 0.2).astype(float).to_numpy()
    cols, names = [], []
    for b in sorted(df["borough"].unique()):
        cols.append((df["borough"] == b).astype(float).to_numpy())
        names.append(f"borough[{b}]")
    for b in sorted(df["borough"].unique()):
        cols.append(
            (df["borough"] == b).astype(float).to_numpy() * df["nonwhite_fraction"].to_numpy()
        )
        names.append(f"borough[{b}]:nonwhite_fraction")
    beta = _irls(np.column_stack(cols), y, np.zeros(len(y)), "binomial")
    for name, b in zip(names, beta, strict=True):
        assert res.coef(name).estimate == pytest.approx(b, rel=1e-6, abs=1e-8)
    ledger = Ledger()
    inc = models.placement_logit(df, income=True, ledger=ledger)
    assert inc.n == int(df["med_income"].notna().sum())
    assert ledger.total() == int(df["med_income"].isna().sum())


def test_bins_follow_r_cut_semantics(tracts) -> None:  # type: ignore[no-untyped-def]
    assert models.bin_labels(models.SURVEILLANCE_BREAKS)[:3] == [
        "[0,0.25]",
        "(0.25,0.5]",
        "(0.5,0.75]",
    ]
    assert models.bin_labels(models.SURVEILLANCE_BREAKS)[-1] == "(3,Inf]"
    t, stops = tracts
    df = models.model_table(t, stops)
    df.loc[df.index[:3], "surv"] = [0.0, 0.25, 0.2500001]
    res = models.stops_by_surveillance_bins(df)
    rates = pd.DataFrame(res.extras["rates"]).set_index("bin")
    assert rates["tracts"].sum() == len(df)
    # R's cut(include.lowest = TRUE, right = TRUE): 0 and 0.25 in the first bin, 0.2500001 not.
    assert rates.loc["[0,0.25]", "tracts"] == int((df["surv"] <= 0.25).sum())
    between = (df["surv"] > 0.25) & (df["surv"] <= 0.5)
    assert rates.loc["(0.25,0.5]", "tracts"] == int(between.sum())
    # Without covariates the Poisson MLE of each bin is its pooled rate.
    for _label, r in rates.iterrows():
        assert r["rate_per_1000"] == pytest.approx(r["stops"] / r["residents"] * 1000, rel=1e-8)
        assert r["ci_low"] < r["rate_per_1000"] < r["ci_high"]


def test_interaction_lm_uses_equal_width_bins(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    df = models.model_table(t, stops)
    # R's cut(x, 2) on the whole table (all tracts, small ones too), then the subset.
    everything = pd.concat([t["nonwhite_fraction"], pd.Series([0.0, 1.0])])
    res = models.stops_interaction_lm(df, exclude=["C"], nonwhite_all=everything)
    d = df.loc[df["borough"] != "C"]
    mid = 0.5
    assert res.extras["nwfC_breaks"] == pytest.approx([-0.001, 0.5, 1.001])
    assert [c.term for c in res.coefficients][1] == "nwfC[T.(0.5,1]]"
    high = (d["nonwhite_fraction"] > mid).astype(float).to_numpy()
    X = np.column_stack([np.ones(len(d)), high, d["surv"], high * d["surv"]])
    y = d["stops_2019"].to_numpy() / d["popn"].to_numpy() * 1000
    w = d["popn"].to_numpy()
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * y))
    np.testing.assert_allclose([c.estimate for c in res.coefficients], beta, rtol=1e-8)
    assert res.family == "lm" and {c.method for c in res.coefficients} == {"t"}


def test_overdispersion_detected_and_variants(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    rng = np.random.default_rng(3)
    over = stops.copy()
    over["count"] = rng.negative_binomial(2, 2 / (2 + np.maximum(stops["count"], 0.5) * 3)).astype(
        float
    )
    variants = models.stops_overdispersion_variants(models.model_table(t, over), years=[2019])
    quasi = [v for v in variants if v.name == "stops_baseline_quasipoisson"]
    nb = [v for v in variants if v.name == "stops_baseline_negbin"]
    assert len(quasi) == len(nb) == 3
    assert all(q.extras["dispersion_test"]["p_value"] < 0.01 for q in quasi)
    assert all(n.extras["alpha"]["estimate"] > 0.1 for n in nb)
    # Poisson data: no overdispersion found.
    plain = models.stops_overdispersion_variants(models.model_table(t, stops), years=[2019])
    pv = [v.extras["dispersion_test"]["p_value"] for v in plain if v.name.endswith("quasipoisson")]
    assert np.median(pv) > 0.05
    # Quasi-Poisson: the Poisson estimates, standard errors scaled by sqrt(dispersion).
    base = models.stops_baseline(models.model_table(t, over), years=[2019])
    for b, q in zip(base, quasi, strict=True):
        scale = np.sqrt(q.extras["dispersion"])
        assert q.coef("surv").estimate == pytest.approx(b.coef("surv").estimate)
        assert q.coef("surv").std_error == pytest.approx(b.coef("surv").std_error * scale, rel=1e-6)


def _est(term: str, est: float, lo: float, hi: float, method: str = "profile") -> Estimate:
    return Estimate(term, est, (hi - lo) / 3.92, lo, hi, 0.01, 100, method)


def test_unconverged_negbin_fails_its_check_and_findings_use_words() -> None:
    group = {"borough": "A", "year": 2019}
    base = ModelResult(
        "stops_baseline",
        "f",
        "poisson",
        100,
        (_est("surv", 0.2, 0.1, 0.3), _est("nonwhite_fraction", 1.0, 0.5, 1.5)),
        group=group,
        interval="profile likelihood (R confint on a glm, MASS)",
    )
    nb = ModelResult(
        "stops_baseline_negbin",
        "f",
        "negative_binomial",
        100,
        (_est("surv", 0.2, 0.1, 0.3, "wald"), _est("nonwhite_fraction", 1.0, 0.5, 1.5, "wald")),
        group=group,
        extras={"converged": False},
    )
    cl = ModelResult(
        "stops_baseline_cluster_nta",
        "f",
        "poisson",
        100,
        (_est("surv", 0.2, -0.1, 0.5, "cluster(NTA)"), _est("nonwhite_fraction", 1.0, 0.5, 1.5)),
        group=group,
    )
    conley = ModelResult(
        "stops_baseline_conley_1000m",
        "f",
        "poisson",
        100,
        (_est("surv", 0.2, 0.1, 0.3), _est("nonwhite_fraction", 1.0, 0.5, 1.5)),
        group=group,
    )
    survival = disparity.survival_table([base, nb, cl, conley])
    surv = survival.set_index("term").loc["surv"]
    assert not surv["survives"]
    assert not surv["stops_baseline_negbin"]
    assert "stops_baseline_negbin (did not converge)" in surv["failed_checks"]
    assert surv["failed_checks_words"] == (
        "a negative binomial model (allowing overdispersion) (did not converge); "
        "standard errors clustered by neighbourhood (NTA)"
    )
    assert surv["interval"].startswith("profile likelihood")
    # Converged, the same check passes.
    nb_ok = ModelResult(**{**nb.__dict__, "extras": {"converged": True}})
    ok = disparity.survival_table([base, nb_ok, conley]).set_index("term").loc["surv"]
    assert ok["survives"] and ok["checks_run"] == 2
    findings = disparity.write_findings([base], survival, {}, threshold=0.2)
    text = " ".join(findings)
    assert "standard errors clustered by neighbourhood (NTA)" in text
    assert "stops_baseline_cluster_nta" not in text
    assert disparity.check_words("placement_logit_conley_2000m") == (
        "spatially correlated errors within 2 km (Conley)"
    )


def test_quasipoisson_uses_t_and_profile(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    variants = models.stops_overdispersion_variants(models.model_table(t, stops), years=[2019])
    q = next(v for v in variants if v.name == "stops_baseline_quasipoisson")
    c = q.coef("surv")
    df = q.extras["df_resid"]
    assert q.extras["statistic"] == "t"
    assert c.p_value == pytest.approx(2 * sps.t.sf(abs(c.estimate / c.std_error), df))
    assert c.method == "profile" and q.aic is None


def test_borough_year_without_stops_is_skipped() -> None:
    rng = np.random.default_rng(5)
    xs, ys = np.meshgrid(np.arange(12), np.arange(12))
    boxes = shapely.box(
        xs.ravel() * 500, ys.ravel() * 500, xs.ravel() * 500 + 500, ys.ravel() * 500 + 500
    )
    n = len(boxes)
    popn = rng.integers(800, 5000, n).astype(float)
    nwf = rng.uniform(0, 1, n)
    borough = np.where(xs.ravel() < 6, "A", "B")
    gdf = gpd.GeoDataFrame(
        {
            "GEOID": [f"{i:04d}" for i in range(n)],
            "borough": borough,
            "popn": popn,
            "popn_black": np.round(popn * nwf / 2),
            "popn_hispanic": np.round(popn * nwf / 2),
            "popn_white": np.round(popn * (1 - nwf)),
            "nonwhite_fraction": nwf,
            "med_income": rng.normal(60000, 10000, n),
            "eff_cameras": rng.gamma(2, 0.2, n) * popn / 1000,
            "eff_cameras_within_200m": rng.gamma(2, 0.5, n) * popn / 1000,
        },
        geometry=boxes,
        crs=32618,
    )
    counts = rng.poisson(popn / 1000 * 3).astype(float)
    counts[borough == "B"] = 0
    stops = pd.DataFrame({"GEOID": gdf["GEOID"], "year": 2020, "count": counts})
    ledger = Ledger()
    res = disparity.run_disparity(gdf, stops, permutations=19, ledger=ledger)
    skipped = [m for m in res.models if m.name == "stops_baseline_skipped"]
    assert [m.group for m in skipped] == [{"borough": "B", "year": 2020}]
    assert "no stops recorded in B in 2020" in skipped[0].extras["reason"]
    assert any("B 2020: no stops recorded" in note for note in ledger.notes)
    fitted = {(m.name, m.group.get("borough")) for m in res.models}
    assert ("stops_baseline", "A") in fitted and ("stops_baseline", "B") not in fitted
    assert ("stops_spatial_error", "B") not in fitted
    assert "published_vs_ours" not in res.tables  # not NYC
    # The generic design: no sanity model, the interaction model on every district.
    names = {m.name for m in res.models}
    assert "stops_sanity_queens_2019" not in names
    lm = next(m for m in res.models if m.name == "stops_interaction_lm")
    assert lm.group["excluded"] == [] and lm.n == int((gdf["popn"] > 250).sum())
    # A study's design: its sanity model and the districts it leaves out.
    design = disparity.StudyDesign(sanity=("A", 2020), exclude_districts=("B",))
    res2 = disparity.run_disparity(gdf, stops, permutations=19, design=design)
    sanity = next(m for m in res2.models if m.name == "stops_sanity_queens_2019")
    assert sanity.group == {"borough": "A", "year": 2020}
    lm2 = next(m for m in res2.models if m.name == "stops_interaction_lm")
    assert lm2.group["excluded"] == ["B"] and lm2.n == int((borough == "A").sum())


def test_race_sensitivity_leaves_out_small_tracts(tracts) -> None:  # type: ignore[no-untyped-def]
    t, stops = tracts
    alt = t.set_index("GEOID")[["nonwhite_fraction"]] * 0.9
    default = disparity.race_sensitivity(t, alt, stops, year=2019)
    strict = disparity.race_sensitivity(t, alt, stops, year=2019, min_population=3000)
    n_default = default.loc[default["model"] == "placement_logit", "n"].iloc[0]
    n_strict = strict.loc[strict["model"] == "placement_logit", "n"].iloc[0]
    assert n_default == int((t["popn"] > 250).sum())
    assert n_strict == int((t["popn"] > 3000).sum())


def test_record_findings_name_exclusions_and_unestimable_p_values() -> None:
    from camcensus.stats._result import Estimate, ModelResult

    nan = float("nan")
    lpm = ModelResult(
        "innocence_lpm",
        "innocent ~ 0 + bwh + bwh:surv",
        "gaussian",
        10,
        (Estimate("bwh[WHITE]:surv", 0.01, nan, nan, nan, nan, 10, "t"),),
        group={"year": 2020, "definition": "Amnesty methodology p.47"},
    )
    swb = ModelResult(
        "stopped_while_black_lm",
        "lm",
        "gaussian",
        10,
        (Estimate("a:b", 0.1, 0.1, -0.1, 0.3, 0.31, 10, "t"),),
        group={"year": 2020, "definition": "Amnesty methodology p.48", "excluded": []},
    )
    text = " ".join(disparity._record_findings([lpm, swb], {}))
    assert "p = nan" not in text and "p-value not estimable" in text
    assert "Manhattan" not in text  # the generic design leaves no district out


def test_printed_five_crime_share_only_for_the_study_that_printed_it() -> None:
    share = pd.DataFrame([{"year": 2020, "definition": "Amnesty methodology p.46", "share": 0.69}])
    generic = disparity._record_findings([], {"five_crime_share": share})
    nyc = disparity._record_findings([], {"five_crime_share": share}, compare_published=True)
    assert "Amnesty printed" not in generic[0]
    assert "Amnesty printed 70.8% for 2019" in nyc[0]
