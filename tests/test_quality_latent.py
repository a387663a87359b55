"""The latent-count model: hand-checkable pieces, recovery of known volunteers, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from camcensus._errors import ContractError, OptionError
from camcensus.quality._sim import MISS_PRONE, synthetic_study
from camcensus.quality.latent import (
    LatentFit,
    corrected_total,
    fit_latent,
    posterior_n,
    split_probabilities,
)


def _brute_lik(y: int, n: int, p: float, f: float) -> float:
    return float(sum(stats.binom.pmf(s, n, p) * stats.poisson.pmf(y - s, f) for s in range(y + 1)))


def test_split_probabilities_by_hand() -> None:
    # y = 2, N = 1, p = 1/2, f = 1: s = 0 has weight 1/2 * e^-1 / 2!, s = 1 has 1/2 * e^-1 / 1!.
    np.testing.assert_allclose(split_probabilities(2, 1, 0.5, 1.0), [1 / 3, 2 / 3, 0.0])
    # With N >= y, each s weighs Bin(s; N, p) Pois(y - s; f).
    w = np.array([stats.binom.pmf(s, 4, 0.3) * stats.poisson.pmf(3 - s, 0.2) for s in range(4)])
    np.testing.assert_allclose(split_probabilities(3, 4, 0.3, 0.2), w / w.sum(), rtol=1e-12)


def test_posterior_of_n_by_enumeration() -> None:
    ys, ps, fs = np.array([1, 0, 3]), np.array([0.8, 0.6, 0.7]), np.array([0.05, 0.3, 0.5])
    prior = stats.nbinom.pmf(np.arange(15), 2.0, 2.0 / (2.0 + 0.6))
    brute = np.array(
        [
            prior[n] * np.prod([_brute_lik(y, n, p, f) for y, p, f in zip(ys, ps, fs, strict=True)])
            for n in range(15)
        ]
    )
    np.testing.assert_allclose(posterior_n(ys, ps, fs, prior), brute / brute.sum(), rtol=1e-10)


def _simulated_volunteers(
    seed: int, n_pano: int = 2400, n_vol: int = 16, n_review: int = 300
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Volunteers with known detection and false-tag rates, ~450 tasks each."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.45, 0.95, n_vol)
    f = rng.uniform(0.01, 0.3, n_vol)
    n_true = rng.negative_binomial(2.0, 2.0 / (2.0 + 1.0), n_pano)
    rows = []
    for i in range(n_pano):
        for j in rng.choice(n_vol, 3, replace=False):
            rows.append(
                (f"P{i:05d}", f"V{j:02d}", rng.binomial(n_true[i], p[j]) + rng.poisson(f[j]))
            )
    sub = pd.DataFrame(rows, columns=["PanoramaId", "DecoderId", "attached_street"])
    rev = rng.choice(n_pano, n_review, replace=False)
    ref = pd.DataFrame({"PanoramaId": [f"P{i:05d}" for i in rev], "attached_street": n_true[rev]})
    return sub, ref, p, f, n_true


@pytest.mark.slow
def test_recovers_known_volunteer_rates() -> None:
    sub, ref, p, f, n_true = _simulated_volunteers(3, n_pano=3200, n_vol=16, n_review=400)
    fit = fit_latent(sub, reference=ref, draws=300, burn_in=100, seed=1)
    vol = fit.volunteers.sort_values("DecoderId")
    # ~600 tasks and ~600 true cameras per volunteer: posterior sd of p_j about 0.03.
    for col, true in (("detection", p), ("false_rate", f)):
        for est in (vol[col], vol[f"{col}_em"]):
            err = np.abs(est.to_numpy() - true)
            assert err.mean() < 0.04, (col, err)
            assert err.max() < 0.11, (col, err)
    inside_p = (vol["detection_low"] <= p) & (p <= vol["detection_high"])
    inside_f = (vol["false_rate_low"] <= f) & (f <= vol["false_rate_high"])
    assert inside_p.mean() >= 0.75 and inside_f.mean() >= 0.75
    _est, lo, hi = fit.total
    assert lo <= n_true.sum() <= hi
    # Reviewed panoramas are fixed at their reference.
    pano = fit.panoramas.set_index("PanoramaId")
    rv = pano[pano["reviewed"]]
    np.testing.assert_array_equal(rv["posterior_mean"], rv["reference"])
    assert (rv["posterior_sd"] == 0).all()
    assert len(rv) == len(ref)


def test_reproducible_with_seed_and_fields() -> None:
    sub, ref, *_ = _simulated_volunteers(5, n_pano=300, n_vol=8, n_review=40)
    a = fit_latent(sub, reference=ref, draws=40, burn_in=10, seed=7)
    b = fit_latent(sub, reference=ref, draws=40, burn_in=10, seed=7)
    c = fit_latent(sub, reference=ref, draws=40, burn_in=10, seed=8)
    assert isinstance(a, LatentFit)
    np.testing.assert_array_equal(a.total_draws, b.total_draws)
    assert not np.array_equal(a.total_draws, c.total_draws)
    pd.testing.assert_frame_equal(a.volunteers, b.volunteers)
    assert a.total.low <= a.total.estimate <= a.total.high
    med = sub.groupby("PanoramaId")["attached_street"].median().sum()
    assert a.sum_of_medians == pytest.approx(med)
    table = corrected_total(a)
    assert list(table["estimate"]) == [a.sum_of_medians, a.total.estimate]
    assert set(a.volunteers.columns) >= {"DecoderId", "n_tasks", "detection", "false_rate"}


def test_duplicate_answers_and_unknown_reviews_are_counted() -> None:
    sub = pd.DataFrame(
        {
            "PanoramaId": ["a", "a", "a", "b", "b", "b"],
            "DecoderId": ["x", "x", "y", "x", "y", "z"],
            "attached_street": [1, 2, 1, 0, 0, 1],
        }
    )
    ref = pd.DataFrame({"PanoramaId": ["a", "zz"], "attached_street": [1, 3]})
    fit = fit_latent(sub, reference=ref, draws=20, burn_in=5)
    reasons = {e.reason: e.count for e in fit.ledger}
    assert reasons["second answer of a volunteer on the same panorama (first kept)"] == 1
    assert reasons["review of a panorama no volunteer answered"] == 1
    assert fit.diagnostics["n_answers"] == 5


def test_errors_name_the_problem() -> None:
    sub = pd.DataFrame({"PanoramaId": ["a"], "DecoderId": ["x"], "attached_street": [1]})
    with pytest.raises(ContractError, match="attached_building"):
        fit_latent(sub, category="attached_building")
    with pytest.raises(OptionError, match="category"):
        fit_latent(sub, category="cameras")
    with pytest.raises(OptionError, match="level"):
        fit_latent(sub, level=95)
    with pytest.raises(ContractError, match="reference"):
        fit_latent(sub, reference=pd.DataFrame({"PanoramaId": ["a"]}))


@pytest.mark.slow
def test_synthetic_city_interval_sanity() -> None:
    # One seed only (the 200-seed coverage is benchmarks/bench_quality_intervals.py).
    study = synthetic_study(11, MISS_PRONE)
    assert len(study.plan) == 104
    assert set(study.reviews["PanoramaId"]) == set(study.plan["PanoramaId"])
    fit = fit_latent(study.submissions, reference=study.reviews, draws=300, burn_in=100, seed=0)
    true = study.truth["attached_street"].sum()
    est, lo, hi = fit.total
    # Miss-prone volunteers: the medians undercount; the model corrects it.
    assert fit.sum_of_medians < true
    assert lo <= true <= hi
    assert abs(est - true) < abs(fit.sum_of_medians - true)


def _leaky_answers(seed: int, g: float) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Volunteers' answers drawn from the model itself: street tags Binomial(N, p_j) plus
    Poisson(f_j + g x_i), x_i the panorama's mean building count over its answers."""
    rng = np.random.default_rng(seed)
    n_pano, n_vol = 2500, 15
    p, f = rng.uniform(0.6, 0.95, n_vol), rng.uniform(0.01, 0.05, n_vol)
    n_street, n_build = rng.poisson(0.3, n_pano), rng.poisson(1.5, n_pano)
    vols = np.array([rng.choice(n_vol, 3, replace=False) for _ in range(n_pano)])
    build = rng.binomial(n_build[:, None], p[vols])
    x = build.mean(axis=1)
    street = rng.binomial(n_street[:, None], p[vols]) + rng.poisson(f[vols] + g * x[:, None])
    ids = np.repeat([f"P{i:05d}" for i in range(n_pano)], 3)
    sub = pd.DataFrame(
        {
            "PanoramaId": ids,
            "DecoderId": [f"V{j:02d}" for j in vols.ravel()],
            "attached_street": street.ravel(),
            "attached_building": build.ravel(),
        }
    )
    rev = rng.choice(n_pano, 150, replace=False)
    ref = pd.DataFrame({"PanoramaId": [f"P{i:05d}" for i in rev], "attached_street": n_street[rev]})
    return sub, ref, int(n_street.sum())


@pytest.mark.slow
def test_leak_in_from_building_cameras_is_recovered() -> None:
    """Building cameras tagged as street at g = 0.08 per camera of the mean building count:
    the leak-in term finds g and the total stays within its interval; without the term the
    leaked tags are counted as street cameras. (On answers drawn this way, seeds 0-19 at the
    default draws gave standardised errors of mean 0.09, sd 1.15, 19 of 20 within 1.96.)"""
    sub, ref, true = _leaky_answers(6, 0.08)
    fit = fit_latent(sub, reference=ref, draws=300, burn_in=100, seed=0)
    assert fit.diagnostics["leak_from"] == ["attached_building"]
    assert fit.pool["leak_in"] == pytest.approx(0.08, rel=0.2)
    assert abs(fit.total.estimate - true) < 2 * fit.total.std_error
    blind = fit_latent(sub, reference=ref, draws=300, burn_in=100, seed=0, leak_from=None)
    assert blind.pool["leak_in"] == 0.0
    assert blind.total.estimate - fit.total.estimate > 2 * fit.total.std_error
