"""Ratio of decoders' to reference totals (camcensus.quality.ratio) against hand arithmetic,
brute-force enumeration and R."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus._errors import ContractError, OptionError
from camcensus.quality.ratio import latent_predictions, ratio_estimates, ratio_table, review_sample

# Stratum A: N = 10, n = 2 (w = 5): (x, y) = (1, 1), (0, 2)
# Stratum B: N = 4,  n = 2 (w = 2): (x, y) = (2, 2), (2, 3)
HAND = pd.DataFrame(
    {
        "stratum": ["A", "A", "B", "B"],
        "stratum_size": [10, 10, 4, 4],
        "weight": [5.0, 5.0, 2.0, 2.0],
        "decoders": [1, 0, 2, 2],
        "reference": [1, 2, 2, 3],
    }
)


def test_ht_ratio_and_linearization_by_hand() -> None:
    (lin,) = ratio_estimates(HAND, methods=["linearization"])
    # X = 5*1 + 5*0 + 2*2 + 2*2 = 13; Y = 5*(1+2) + 2*(2+3) = 25; R = 0.52
    assert lin.estimate == pytest.approx(0.52)
    # e = x - R y: A: 0.48, -1.04 (s2 = 2 * 0.76^2 = 1.1552); B: 0.96, 0.44 (s2 = 2 * 0.26^2)
    # V = [10^2 (1 - 2/10) 1.1552 / 2 + 4^2 (1 - 2/4) 0.1352 / 2] / 25^2 = 46.7488 / 625
    assert lin.std_error**2 == pytest.approx(46.7488 / 625, rel=1e-12)
    # t quantile with n - H = 2 degrees of freedom: 4.302652729749464
    assert lin.high == pytest.approx(0.52 + 4.302652729749464 * np.sqrt(46.7488 / 625))
    assert lin.low == 0.0  # clipped
    assert lin.details["df"] == 2


def test_linearization_against_enumeration() -> None:
    # Population: stratum A (N=5, n=2), stratum B (N=4, n=3); every sample enumerated.
    xa, ya = np.array([0, 1, 0, 2, 1.0]), np.array([1, 1, 0, 3, 2.0])
    xb, yb = np.array([1, 2, 1, 0.0]), np.array([1, 3, 2, 1.0])
    big_x, big_y = xa.sum() + xb.sum(), ya.sum() + yb.sum()
    r_pop = big_x / big_y
    ea, eb = xa - r_pop * ya, xb - r_pop * yb
    # Linearised variance with population quantities (Cochran 6.11 + stratified SRS variance)
    v_lin = (
        5**2 * (1 - 2 / 5) * ea.var(ddof=1) / 2 + 4**2 * (1 - 3 / 4) * eb.var(ddof=1) / 3
    ) / big_y**2
    ht_e, r_hat, v_hat = [], [], []
    for sa in itertools.combinations(range(5), 2):
        for sb in itertools.combinations(range(4), 3):
            sa_, sb_ = list(sa), list(sb)
            ht_e.append((5 / 2 * ea[sa_].sum() + 4 / 3 * eb[sb_].sum()) / big_y)
            sample = pd.DataFrame(
                {
                    "stratum": ["A"] * 2 + ["B"] * 3,
                    "stratum_size": [5] * 2 + [4] * 3,
                    "weight": [2.5] * 2 + [4 / 3] * 3,
                    "decoders": np.r_[xa[sa_], xb[sb_]],
                    "reference": np.r_[ya[sa_], yb[sb_]],
                }
            )
            (est,) = ratio_estimates(sample, methods=["linearization"], variance_floor="none")
            r_hat.append(est.estimate)
            v_hat.append(est.std_error**2)
    assert len(ht_e) == 10 * 4
    # The linearised statistic's exact design variance equals the formula (to rounding) ...
    assert np.var(ht_e) == pytest.approx(v_lin, rel=1e-12)
    assert np.mean(ht_e) == pytest.approx(0.0, abs=1e-12)
    # ... and approximates the ratio's exact mean squared error (a first-order approximation)
    mse = np.mean((np.array(r_hat) - r_pop) ** 2)
    assert mse == pytest.approx(v_lin, rel=0.35)
    assert np.mean(v_hat) == pytest.approx(mse, rel=0.35)


def test_linearization_against_r(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    sizes = {"a": 40, "b": 25, "c": 12}
    n_h = {"a": 8, "b": 6, "c": 5}
    rows = []
    for h, k in n_h.items():
        for _ in range(k):
            y = int(rng.poisson(1.2))
            rows.append((h, sizes[h], sizes[h] / k, max(y - int(rng.integers(0, 2)), 0), y))
    sample = pd.DataFrame(
        rows, columns=["stratum", "stratum_size", "weight", "decoders", "reference"]
    )
    (lin,) = ratio_estimates(sample, methods=["linearization"], variance_floor="none")
    data = "\\n".join(",".join(map(str, r)) for r in rows)
    script = f"""
d <- read.table(text = "{data}", sep = ",", col.names = c("h", "N", "w", "x", "y"))
d$h <- trimws(d$h)
R <- sum(d$w * d$x) / sum(d$w * d$y)
e <- d$x - R * d$y
v <- 0
for (h in unique(d$h)) {{
  k <- d$h == h; n <- sum(k); N <- d$N[k][1]
  v <- v + N^2 * (1 - n / N) * var(e[k]) / n
}}
v <- v / sum(d$w * d$y)^2
cat(sprintf("%.17g %.17g %.17g", R, sqrt(v), qt(0.975, nrow(d) - length(unique(d$h)))))
"""
    (tmp_path / "lin.R").write_text(script)
    out = subprocess.run(
        ["Rscript", str(tmp_path / "lin.R")], capture_output=True, text=True, check=True
    ).stdout.split()
    r_est, r_se, r_t = map(float, out)
    assert lin.estimate == pytest.approx(r_est, rel=1e-12)
    assert lin.std_error == pytest.approx(r_se, rel=1e-10)
    assert lin.high == pytest.approx(r_est + r_t * r_se, rel=1e-10)


def test_weighted_bootstrap_against_enumeration() -> None:
    # Two reviewed panoramas, weights 3 and 1: a resample of 2 draws A with probability 3/4.
    # AA (9/16): ratio (1+1)/(1+1) = 1; AB or BA (6/16): (1+0)/(1+2) = 1/3; BB (1/16): 0/4 = 0
    sample = pd.DataFrame(
        {"stratum": ["A", "B"], "weight": [3.0, 1.0], "decoders": [1, 0], "reference": [1, 2]}
    )
    (boot,) = ratio_estimates(sample, methods=["bootstrap"], n_boot=40_000, seed=1)
    assert boot.estimate == pytest.approx((3 * 1 + 0) / (3 * 1 + 1 * 2))  # HT: 3/5
    # 2.5th percentile: P(0) = 1/16 > 2.5% -> 0; 97.5th: P(1) = 9/16 -> 1
    assert (boot.low, boot.high) == (0.0, 1.0)
    assert boot.details["median"] == 1.0  # P(ratio < 1) = 7/16 < 1/2
    # Frequencies of the resample ratios, re-drawn the same way
    rng = np.random.default_rng(1)
    idx = rng.choice(2, size=(40_000, 2), replace=True, p=[0.75, 0.25])
    r = np.array([1.0, 0])[idx].sum(1) / np.array([1.0, 2])[idx].sum(1)
    for value, prob in ((1.0, 9 / 16), (1 / 3, 6 / 16), (0.0, 1 / 16)):
        assert np.mean(np.isclose(r, value)) == pytest.approx(prob, abs=0.01)


def test_bootstrap_infinite_and_undefined_ratios_are_counted() -> None:
    sample = pd.DataFrame(
        {"stratum": ["A", "B"], "weight": [1.0, 1.0], "decoders": [1, 0], "reference": [0, 1]}
    )
    # resamples: AA (1/4) -> 1/0 = inf; AB (1/2) -> 1; BB (1/4) -> 0
    (boot,) = ratio_estimates(sample, methods=["bootstrap"], n_boot=4000, seed=2)
    assert boot.high == np.inf and boot.low == 0.0
    assert boot.details["infinite"] == pytest.approx(1000, rel=0.1)
    zero = sample.assign(decoders=[0, 0])
    (b0,) = ratio_estimates(zero, methods=["bootstrap"], n_boot=4000, seed=2)
    assert b0.details["undefined"] == pytest.approx(1000, rel=0.1)  # AA: 0/0


def test_bayes_census_is_exact_and_seeded() -> None:
    census = HAND.assign(stratum_size=[2, 2, 2, 2], weight=1.0)
    (b,) = ratio_estimates(census, methods=["bayes"], n_boot=500, seed=0)
    # every stratum reviewed in full: X = 1 + 0 + 2 + 2 = 5, Y = 1 + 2 + 2 + 3 = 8
    assert b.low == pytest.approx(5 / 8) and b.high == pytest.approx(5 / 8)
    a1 = ratio_estimates(HAND, methods=["bayes", "bootstrap"], n_boot=500, seed=3)
    a2 = ratio_estimates(HAND, methods=["bayes", "bootstrap"], n_boot=500, seed=3)
    assert a1 == a2
    assert a1[0].low < 0.52 < a1[0].high


def test_review_sample_reweights_non_response() -> None:
    plan = pd.DataFrame(
        {
            "PanoramaId": ["a", "b", "c", "d"],
            "stratum": ["S", "S", "T", "T"],
            "stratum_size": [10, 10, 6, 6],
            "weight": [5.0, 5.0, 3.0, 3.0],
            "attached_street_median": [0, 1, 2, 2],
        }
    )
    reviews = pd.DataFrame({"PanoramaId": ["a", "b", "c", "z"], "attached_street": [1, 1, 2, 0]})
    s = review_sample(plan, reviews)
    assert s["PanoramaId"].tolist() == ["a", "b", "c"]
    assert s["weight"].tolist() == [5.0, 5.0, 6.0]  # T: 6 panoramas / 1 review received
    assert s.attrs["excluded"] == {
        "planned but not reviewed (or no decoders' value)": 1,
        "reviewed but not in the plan": 1,
    }


def test_model_assisted_by_hand() -> None:
    # HAND with predictions mu = (1, 1, 2, 2); sum of the predictions over the population M = 30.
    s = HAND.assign(prediction=[1.0, 1.0, 2.0, 2.0])
    (ma,) = ratio_estimates(
        s, methods=["model_assisted"], population_prediction=30.0, variance_floor="none"
    )
    # e = y - mu: A (0, 1), B (0, 1); Y = 30 + 5*1 + 2*1 = 37; X = sum w x = 13
    r = 13 / 37
    assert ma.estimate == pytest.approx(r, rel=1e-14)
    assert ma.details["reference_total"] == pytest.approx(37.0)
    # x is not constant within A, so z = x - R e: A (1, -R), B (2, 2 - R)
    # s2_A = (1 + R)^2 / 2, s2_B = R^2 / 2;
    # V(R) = [100 (1 - 2/10) s2_A / 2 + 16 (1 - 2/4) s2_B / 2] / 37^2
    var = (100 * 0.8 * (1 + r) ** 2 / 2 / 2 + 16 * 0.5 * r**2 / 2 / 2) / 37**2
    assert ma.std_error**2 == pytest.approx(var, rel=1e-12)
    t = 4.302652729749464  # t quantile, 2 degrees of freedom
    cv = np.sqrt(var) / r
    assert ma.low == pytest.approx(r / (1 + t * cv), rel=1e-12)
    assert ma.high == (r / (1 - t * cv) if t * cv < 1 else np.inf)
    # A known decoders' total (population_x): the decoders' part drops out, z = -R e
    (known,) = ratio_estimates(
        s,
        methods=["model_assisted"],
        population_prediction=30.0,
        population_x={"A": 5.0, "B": 8.0},
        variance_floor="none",
    )
    # s2_A = R^2 / 2, s2_B = R^2 / 2
    var_k = (100 * 0.8 * r**2 / 2 / 2 + 16 * 0.5 * r**2 / 2 / 2) / 37**2
    assert known.estimate == pytest.approx(r) and known.std_error**2 == pytest.approx(var_k)


def test_model_assisted_perfect_and_zero_predictions() -> None:
    # Amnesty-like strata: the decoders' value is constant within a stratum (X is exact).
    s = HAND.assign(decoders=[1, 1, 2, 2])
    # Perfect predictions: every residual is 0 and the population total of the predictions is
    # the true total, so the variance is 0 and the interval is the point.
    perfect = s.assign(prediction=s["reference"].astype(float))
    (p,) = ratio_estimates(
        perfect, methods=["model_assisted"], population_prediction=40.0, variance_floor="none"
    )
    x_total = 5 * 1 * 2 + 2 * 2 * 2  # 18
    assert p.estimate == pytest.approx(x_total / 40.0)
    assert p.std_error == 0.0 and p.low == p.high == pytest.approx(x_total / 40.0)
    # Predictions 0: the difference estimator is the Horvitz-Thompson total, and the ratio and
    # its variance are those of the linearised combined ratio.
    zero = HAND.assign(prediction=0.0)
    ma, lin = ratio_estimates(
        zero, methods=["model_assisted", "linearization"], population_prediction=0.0
    )
    assert lin.details["floored_strata"] == ma.details["floored_strata"]
    assert ma.details["reference_total"] == pytest.approx(25.0)  # 5 (1 + 2) + 2 (2 + 3)
    assert ma.estimate == pytest.approx(lin.estimate, rel=1e-14)
    assert ma.std_error == pytest.approx(lin.std_error, rel=1e-12)


def test_model_assisted_ratio_slope_and_floor() -> None:
    s = HAND.assign(prediction=[2.0, 2.0, 4.0, 4.0], prediction_sd=[0.0, 0.0, 3.0, 3.0])
    (ma,) = ratio_estimates(
        s,
        methods=["model_assisted"],
        population_prediction=60.0,
        assisted="ratio",
        variance_floor="none",
    )
    # b = sum w y / sum w mu = 25 / (5*4 + 2*8) = 25/36; Y = b M (the residuals sum to 0)
    b = 25 / 36
    assert ma.details["slope"] == pytest.approx(b)
    assert ma.details["reference_total"] == pytest.approx(b * 60.0)
    # Stratum B's reviews all agree with the decoders (x = y = 2): its variance is floored at
    # the predictions' (R b 3)^2; stratum A has a disagreement and keeps its own.
    agree = s.assign(reference=[1, 2, 2, 2])
    bare, fl = (
        ratio_estimates(
            agree,
            methods=["model_assisted"],
            population_prediction=60.0,
            assisted="ratio",
            variance_floor=f,
        )[0]
        for f in ("none", "model")
    )
    b2 = (5 * 3 + 2 * 4) / 36  # 23/36
    r = fl.estimate
    assert r == pytest.approx(13 / (b2 * 60.0))
    e_a = np.array([1 - b2 * 2, 2 - b2 * 2])
    # in B the residuals 2 - b2 * 4 are constant: s2 = 0, so the model floor applies
    z_a = np.array([1, 0]) - r * e_a  # x is not constant in A: z = x - R e
    var_a = 100 * 0.8 * np.var(z_a, ddof=1) / 2
    var_b = 16 * 0.5 * (r * b2 * 3) ** 2 / 2
    assert bare.std_error**2 == pytest.approx(var_a / (b2 * 60) ** 2, rel=1e-10)
    assert fl.std_error**2 == pytest.approx((var_a + var_b) / (b2 * 60) ** 2, rel=1e-10)
    assert fl.details["floored_strata"] == 1


def test_model_assisted_needs_predictions() -> None:
    with pytest.raises(ContractError, match="prediction"):
        ratio_estimates(HAND, methods=["model_assisted"], population_prediction=1.0)
    with pytest.raises(OptionError, match="population_prediction"):
        ratio_estimates(HAND.assign(prediction=1.0), methods=["model_assisted"])


def test_ratio_table_with_predictions() -> None:
    plan = pd.DataFrame(
        {
            "PanoramaId": ["a", "b", "d", "e"],
            "stratum": ["S", "S", "T", "T"],
            "stratum_size": [3, 3, 2, 2],
            "weight": [1.5, 1.5, 1.0, 1.0],
            "attached_street_median": [0, 0, 1, 1],
        }
    )
    reviews = pd.DataFrame({"PanoramaId": list("abde"), "attached_street": [0, 1, 1, 2]})
    mu = pd.Series([0.2, 0.5, 0.3, 1.2, 1.1, 7.0], index=list("abcdez"))
    strata = pd.Series(["S", "S", "S", "T", "S", "median3+"], index=list("abcdez"))
    # population: S = a, b, c, e (4 != 3) -> refused
    with pytest.raises(ContractError, match="stratum sizes"):
        ratio_table(
            plan,
            reviews,
            categories=["attached_street"],
            predictions={"attached_street": mu},
            strata=strata,
        )
    strata = pd.Series(["S", "S", "S", "T", "T", "median3+"], index=list("abcdez"))
    t = ratio_table(
        plan,
        reviews,
        categories=["attached_street"],
        methods=["linearization"],
        predictions={"attached_street": mu},
        strata=strata,
        assisted="difference",
    )
    assert t["method"].tolist() == ["linearization", "model_assisted"]
    # M = 0.2 + 0.5 + 0.3 + 1.2 + 1.1 = 3.3; Y = 3.3 + 1.5 (0 - 0.2 + 1 - 0.5) + (1 - 1.2 + 2 - 1.1)
    y = 3.3 + 1.5 * 0.3 + 0.7
    assert t["estimate"].iloc[1] == pytest.approx((1.0 + 1.0) / y)
    # The default, assisted="ratio": b = sum w y / sum w mu, Y = b M
    t2 = ratio_table(
        plan,
        reviews,
        categories=["attached_street"],
        methods=["model_assisted"],
        predictions={"attached_street": mu},
        strata=strata,
    )
    b = (1.5 * (0 + 1) + (1 + 2)) / (1.5 * (0.2 + 0.5) + (1.2 + 1.1))
    assert t2["estimate"].iloc[0] == pytest.approx(2.0 / (b * 3.3))
    # Without strata= the 6 predictions do not match the design's 5 panoramas
    with pytest.raises(ContractError, match="predictions cover"):
        ratio_table(
            plan, reviews, categories=["attached_street"], predictions={"attached_street": mu}
        )


@pytest.mark.slow
def test_latent_predictions_leave_own_out() -> None:
    from camcensus.quality._sim import synthetic_study
    from camcensus.quality.latent import fit_latent, posterior_n

    st = synthetic_study(3)
    fit = fit_latent(st.submissions, reference=st.reviews, draws=60, burn_in=20, seed=1)
    pred = latent_predictions(st.submissions, reference=st.reviews, fit=fit)
    p = pred.set_index("PanoramaId")
    f = fit.panoramas.set_index("PanoramaId")
    unrev = ~f["reviewed"]
    # Panoramas not reviewed: the fit's posterior means as they are.
    assert np.allclose(p.loc[unrev[unrev].index, "prediction"], f.loc[unrev, "posterior_mean"])
    # Reviewed ones: not the reference (the fit fixes N there), but the posterior given the
    # panorama's answers at the fit's volunteer rates and prior of N.
    rev = f.index[f["reviewed"]]
    assert pred["reviewed"].sum() == len(rev) == len(st.reviews)
    assert (p.loc[rev, "prediction_sd"] > 0).mean() > 0.5
    pid = rev[0]
    ans = st.submissions[st.submissions["PanoramaId"] == pid]
    vol = fit.volunteers.set_index("DecoderId").loc[ans["DecoderId"]]
    grid = np.arange(fit.diagnostics["n_max"] + 1)
    shape, mean = fit.pool["n_prior_shape"], fit.pool["n_prior_mean"]
    from scipy import stats

    prior = stats.nbinom.pmf(grid, shape, shape / (shape + mean))
    post = posterior_n(
        ans["attached_street"].to_numpy(),
        vol["detection"].to_numpy(),
        vol["false_rate"].to_numpy(),
        prior,
    )
    assert p.at[pid, "prediction"] == pytest.approx(float(post @ grid), rel=1e-12)
    with pytest.raises(OptionError, match="reference"):
        latent_predictions(st.submissions, how="crossfit")


def test_jeffreys_variance_floor_by_hand() -> None:
    # Stratum A (N = 100, n = 4): every review agrees with the decoders (0 = 0): s2 = 0.
    # Stratum B (N = 10, n = 2): (x, y) = (1, 1), (1, 2).
    s = pd.DataFrame(
        {
            "stratum": ["A"] * 4 + ["B"] * 2,
            "stratum_size": [100] * 4 + [10] * 2,
            "weight": [25.0] * 4 + [5.0] * 2,
            "decoders": [0, 0, 0, 0, 1, 1],
            "reference": [0, 0, 0, 0, 1, 2],
        }
    )
    bare, floored = (
        ratio_estimates(s, methods=["linearization"], variance_floor=f)[0]
        for f in ("none", "jeffreys")
    )
    r = 10 / 15  # X = 5 + 5, Y = 5 * 3
    # B: e = (1 - R, 1 - 2R), s2 = R^2 / 2; its floor: k = 1 of 2, p = 1.5 / 3, R^2 / 4 < s2
    v_b = 10**2 * (1 - 2 / 10) * (r**2 / 2) / 2
    assert bare.std_error**2 == pytest.approx(v_b / 15**2, rel=1e-12)
    # A: k = 0 of 4, p = 0.5 / 5 = 0.1, floor R^2 0.09
    v_a = 100**2 * (1 - 4 / 100) * r**2 * 0.09 / 4
    assert floored.std_error**2 == pytest.approx((v_a + v_b) / 15**2, rel=1e-12)
    assert floored.details["floored_strata"] == 1
    with pytest.raises(OptionError, match="variance_floor"):
        ratio_estimates(s, methods=["linearization"], variance_floor="yes")  # type: ignore[arg-type]
