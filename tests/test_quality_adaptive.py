"""Adaptive redundancy: the platform's pure rule, the simulation and the Brooklyn savings."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.aggregate import agreement_class
from camcensus.quality._sim import DEFAULT, OVER_COUNTING
from camcensus.quality.adaptive import (
    DETECTOR_FALSE_TAGS,
    DETECTOR_RECALL,
    RULES,
    CountModel,
    adaptive_target,
    count_likelihood,
    draw_answers,
    fit_count_model,
    margin_needed,
    run_rule,
    savings_on_agreements,
    simulate_adaptive,
    stop_cost,
)
from camcensus.simulate import simulate_city

_ATTACH_COLS = ("attached_street", "attached_building", "attached_unknown")
#: A small model for the posterior rule's hand-computed cases.
HALF = CountModel(prior=np.array([0.5, 0.5]), detection=0.5, false_rate=0.0)


@pytest.mark.parametrize(
    ("answers", "rule", "expected"),
    [
        ([], "fixed", 3),
        ([0, 0], "fixed", 3),
        ([0, 0], "stop_unanimous_zero", 2),
        ([0], "stop_unanimous_zero", 3),
        ([0, 1], "stop_unanimous_zero", 3),
        ([2, 2], "stop_unanimous_zero", 3),
        ([2, 2], "stop_unanimous", 2),
        ([0, 1, 2], "stop_unanimous_zero", 3),
        ([0, 1, 2], "extend_disagreement", 4),
        ([0, 1, 2, 1], "extend_disagreement", 4),
        ([0, 1, 2, 3], "extend_disagreement", 5),
        ([0, 1, 2, 3, 4], "extend_disagreement", 5),
        ([0, 1], "extend_disagreement", 3),
        ([0, 0], "both", 2),
        ([3, 1, 0], "both", 4),
        # Never fewer than the answers already given.
        ([0, 0, 0, 0], "stop_unanimous_zero", 4),
        ([(0, 0, 0), (0, 0, 0)], "stop_unanimous_zero", 2),
        ([(1, 0, 0), (0, 1, 0)], "stop_unanimous", 3),
        ([(1, 1, 0), (1, 1, 0)], "stop_unanimous", 2),
        ([0], "stop_agree_or_low", 3),
        ([0, 1], "stop_agree_or_low", 2),
        ([1, 0], "stop_agree_or_low", 2),
        ([0, 2], "stop_agree_or_low", 3),
        ([2, 2], "stop_agree_or_low", 2),
        ([3, 1, 2], "stop_agree_or_low", 3),
        ([(1, 0, 0), (0, 0, 0)], "stop_agree_or_low", 2),
        ([(1, 0, 0), (0, 1, 0)], "stop_agree_or_low", 2),
        ([(1, 1, 0), (1, 0, 0)], "stop_agree_or_low", 3),
    ],
)
def test_adaptive_target_rules(answers: list[int], rule: str, expected: int) -> None:
    assert adaptive_target(answers, k=3, rule=rule, k_max=5) == expected


@given(
    answers=st.lists(st.integers(0, 4), max_size=7),
    rule=st.sampled_from(RULES),
    k=st.integers(1, 4),
    extra=st.integers(0, 3),
)
def test_adaptive_target_bounds_and_order_free(
    answers: list[int], rule: str, k: int, extra: int
) -> None:
    k_max = k + extra
    model = CountModel(prior=np.array([0.4, 0.3, 0.2, 0.1]), detection=0.8, false_rate=0.2)
    target = adaptive_target(answers, k=k, rule=rule, k_max=k_max, model=model)
    assert target >= len(answers)
    assert target <= max(k_max, len(answers))
    if rule == "fixed":
        assert target == max(k, len(answers))
    if rule == "stop_posterior":
        assert target <= max(k, len(answers))
    reverse = adaptive_target(answers[::-1], k=k, rule=rule, k_max=k_max, model=model)
    assert reverse == target


def test_adaptive_target_bad_options() -> None:
    with pytest.raises(OptionError, match="rule"):
        adaptive_target([0], rule="stop_early")
    with pytest.raises(OptionError, match="k_max"):
        adaptive_target([0], k=3, k_max=2)
    with pytest.raises(OptionError, match="non-negative"):
        adaptive_target([0, -1])
    with pytest.raises(OptionError, match="non-negative"):
        adaptive_target([0.5])  # type: ignore[arg-type]


def _margin_brute(agree: int, disagree: int, margin: int, cap: int) -> int:
    """Fewest further validations after which some sequence settles the label."""
    for extra in range(cap + 1):
        for seq in itertools.product((0, 1), repeat=extra):
            a, d = agree + sum(seq), disagree + extra - sum(seq)
            if abs(a - d) >= margin or a + d >= cap:
                return extra
    return cap


@pytest.mark.parametrize("margin", [1, 2, 3])
def test_margin_needed_brute_force(margin: int) -> None:
    for agree in range(6):
        for disagree in range(6):
            assert margin_needed(agree, disagree, margin=margin, cap=5) == _margin_brute(
                agree, disagree, margin, 5
            )
    assert margin_needed(0, 0) == 2
    assert margin_needed(2, 0) == 0
    with pytest.raises(OptionError):
        margin_needed(-1, 0)


def test_draw_answers_expected_counts() -> None:
    # Closed form of the mean answer per class under the error model.
    truth = np.tile([[2, 1, 0]], (20000, 1))
    pool = draw_answers(truth, DEFAULT, n_answers=3, seed=4)
    e = DEFAULT
    seen = 1 - e.miss_mean
    p, q = e.p_attach_correct, (1 - e.p_attach_correct) / 2
    expected = np.array(
        [
            2 * seen * p + 1 * seen * q + 0.2 * e.false_positive_rate,
            1 * seen * p + 2 * seen * q + 0.7 * e.false_positive_rate,
            3 * seen * q + 0.1 * e.false_positive_rate,
        ]
    )
    # The volunteer pool (80 miss rates) is one draw: allow for its sampling error.
    np.testing.assert_allclose(pool.answers.mean(axis=(0, 1)), expected, atol=0.04)
    again = draw_answers(truth[:50], DEFAULT, n_answers=3, seed=4)
    np.testing.assert_array_equal(
        again.answers, draw_answers(truth[:50], DEFAULT, n_answers=3, seed=4).answers
    )


def test_stopping_on_two_agreeing_answers_keeps_every_median() -> None:
    # The median of {v, v, x} is v: with k = 3, a rule that stops on 2 equal answers (every
    # category) gives the same per-category medians as 3 answers.
    truth = np.random.default_rng(0).poisson(1.0, (3000, 3))
    pool = draw_answers(truth, OVER_COUNTING, n_answers=5, seed=1)
    for rule in ("stop_unanimous_zero", "stop_unanimous"):
        used = run_rule(pool.answers, rule=rule, k=3, k_max=5)
        assert set(np.unique(used)) <= {2, 3}
        assert (used == 2).any()
        for n in (2, 3):
            rows = used == n
            np.testing.assert_array_equal(
                np.median(pool.answers[rows, :n], axis=1),
                np.median(pool.answers[rows, :3], axis=1),
            )


def test_simulate_adaptive_small_city() -> None:
    out = simulate_adaptive(5, DEFAULT, nx=15, ny=15, decide_on="categories")
    assert list(out["rule"]) == list(RULES)
    fixed = out.set_index("rule").loc["fixed"]
    assert fixed["tasks"] == 3 * fixed["panoramas"]
    assert fixed["tasks_saved_pct"] == 0
    by = out.set_index("rule")
    for rule in ("stop_unanimous_zero", "stop_unanimous"):
        assert by.loc[rule, "total_estimate"] == fixed["total_estimate"]
        assert by.loc[rule, "tasks"] < fixed["tasks"]
    assert by.loc["extend_disagreement", "tasks"] >= fixed["tasks"]
    assert (out["total_true"] == fixed["total_true"]).all()
    pd.testing.assert_frame_equal(
        out, simulate_adaptive(5, DEFAULT, nx=15, ny=15, decide_on="categories")
    )


def test_savings_on_agreements_hand_example() -> None:
    counts = pd.DataFrame(
        {
            "n_cameras_median": [0, 0, 0, 1, 2, 3, np.nan, 1],
            "n_cameras_agreement": [
                "Unanimous",
                "2 vs 1",
                "2 vs 1",
                "Unanimous",
                "2 vs 1",
                "All disagree",
                "Unanimous",
                "Two",
            ],
        }
    )
    ledger = Ledger()
    out = savings_on_agreements(counts, ledger=ledger).set_index("rule")
    assert ledger.total() == 2
    assert out.loc["fixed", "tasks_fixed"] == 18
    assert out.loc["stop_unanimous_zero", "tasks_saved"] == pytest.approx(1 + 2 / 3)
    assert out.loc["stop_unanimous", "tasks_saved"] == pytest.approx(2 + 3 / 3)
    assert out.loc["extend_disagreement", "tasks_added_min"] == 1
    assert out.loc["extend_disagreement", "tasks_added_max"] == 2
    assert out.loc["both", "net_saved_pct_max"] == pytest.approx(100 * (5 / 3 - 1) / 18)
    # Unanimous x2 + "2 vs 1" x3 / 3; at most + 2/3 for each "2 vs 1" of median 0 or 1.
    assert out.loc["stop_agree_or_low", "tasks_saved"] == pytest.approx(3)
    assert out.loc["stop_agree_or_low", "tasks_saved_max"] == pytest.approx(3 + 4 / 3)
    saved = out[["tasks_saved", "tasks_saved_max"]].to_numpy(dtype=float)
    assert saved[list(out.index).index("stop_unanimous")].tolist() == [3.0, 3.0]
    with pytest.raises(ContractError, match="n_cameras_agreement"):
        savings_on_agreements(counts.drop(columns="n_cameras_agreement"))


@pytest.mark.realdata
def test_savings_on_brooklyn(nyc_paths: dict[str, Path]) -> None:
    counts = pd.read_csv(nyc_paths["brooklyn"])
    out = savings_on_agreements(counts).set_index("rule")
    assert out.loc["fixed", "panoramas"] == 10377
    # 2,742 unanimous zeros save one task each, 2,973 "2 vs 1" zeros one task 1/3 of the time.
    assert out.loc["stop_unanimous_zero", "unanimous_zero"] == 2742
    assert out.loc["stop_unanimous_zero", "two_vs_one_zero"] == 2973
    assert out.loc["stop_unanimous_zero", "net_saved_pct_max"] == pytest.approx(
        100 * (2742 + 2973 / 3) / (3 * 10377)
    )


def test_simulate_adaptive_options() -> None:
    with pytest.raises(OptionError, match="decide_on"):
        simulate_adaptive(0, DEFAULT, nx=5, ny=5, decide_on="street")
    with pytest.raises(OptionError, match="rule"):
        simulate_adaptive(0, DEFAULT, nx=5, ny=5, rules=("fixed", "stop_early"))


def test_savings_on_agreements_brackets_every_answer_order() -> None:
    # Brute force: explicit answer triples in each of their 6 orders, run through the rule as
    # the platform does; the agreement file's range must hold the exact saving.
    triples = [(0, 0, 1), (0, 0, 3), (1, 1, 0), (1, 1, 2), (0, 1, 2), (0, 1, 5), (2, 3, 4)]
    triples += [(2, 2, 2), (0, 0, 0), (2, 2, 5)]
    arr = np.array(triples)
    counts = pd.DataFrame(
        {
            "n_cameras_median": np.median(arr, axis=1),
            "n_cameras_agreement": agreement_class(arr),
        }
    )
    for rule in ("stop_unanimous_zero", "stop_unanimous", "stop_agree_or_low"):
        orders = np.array([[*p, 0, 0] for t in triples for p in itertools.permutations(t)])
        used = run_rule(orders, rule=rule, k=3, k_max=5)
        exact = float((3 - used).sum()) / 6
        row = savings_on_agreements(counts, rules=(rule,)).iloc[0]
        assert row["tasks_saved"] - 1e-9 <= exact <= row["tasks_saved_max"] + 1e-9
    # For stop_agree_or_low on these triples: 1 (0,0,1) + 1/3 (0,0,3) + 1 (1,1,0) + 1/3 (1,1,2)
    # + 1/3 (0,1,2) + 1/3 (0,1,5) + 0 + 1 + 1 + 1/3.
    assert exact == pytest.approx(4 + 5 / 3)


def test_stop_agree_or_low_on_the_synthetic_city() -> None:
    out = simulate_adaptive(3, DEFAULT, nx=15, ny=15, decide_on="n_cameras").set_index("rule")
    tasks = out["tasks"].astype(int)
    assert tasks["stop_agree_or_low"] < tasks["stop_unanimous"]
    assert tasks["stop_agree_or_low"] >= 2 * int(out["panoramas"].iloc[0])


def test_count_likelihood_closed_form() -> None:
    lik = count_likelihood(0.5, 0.2, 30, 3)
    e = np.exp(-0.2)
    # One answer of 1 on one camera: seen and no look-alike, or missed and one look-alike.
    assert lik[1, 1] == pytest.approx(0.5 * e + 0.5 * 0.2 * e)
    assert lik[0, 0] == pytest.approx(e)
    assert lik[0, 3] == pytest.approx(0.125 * e)
    np.testing.assert_allclose(lik.sum(axis=0), 1.0)
    # No look-alikes: a binomial.
    np.testing.assert_allclose(count_likelihood(0.5, 0.0, 2, 2)[:, 2], [0.25, 0.5, 0.25])


def test_fit_count_model_recovers_known_parameters() -> None:
    rng = np.random.default_rng(3)
    prior = np.array([0.5, 0.3, 0.15, 0.05])
    truth = rng.choice(4, 4000, p=prior)
    answers = rng.binomial(truth[:, None], 0.8, (4000, 3)) + rng.poisson(0.1, (4000, 3))
    fit = fit_count_model(answers, t_max=5)
    assert fit.detection == pytest.approx(0.8, abs=0.03)
    assert fit.false_rate == pytest.approx(0.1, abs=0.02)
    np.testing.assert_allclose(fit.prior[:4], prior, atol=0.03)
    # Gold rows (true count known, one or two answers, the rest missing) are fitted with them
    # and stay out of the prior, even when they are all panoramas of 3 cameras.
    gold_answers = np.full((500, 3), -1)
    gold_answers[:, :2] = rng.binomial(3, 0.8, (500, 2)) + rng.poisson(0.1, (500, 2))
    both = fit_count_model(
        np.vstack([answers, gold_answers]),
        truth=np.concatenate([np.full(4000, -1), np.full(500, 3)]),
        t_max=5,
    )
    np.testing.assert_allclose(both.prior[:4], prior, atol=0.03)
    assert both.detection == pytest.approx(0.8, abs=0.02)
    with pytest.raises(OptionError, match="whole"):
        fit_count_model(np.array([[0.5, 1.0]]))
    with pytest.raises(OptionError, match="truth"):
        fit_count_model(answers[:2], truth=np.array([1, 2]))


def test_fit_count_model_fits_the_detectors_rates() -> None:
    # Volunteers: Bin(T, 0.8) + Pois(0.1); the detector: Bin(T, 0.6) + Pois(0.7), on the pilot
    # (3 answers) and on gold panoramas of known count (2 answers); one pilot row in ten was
    # not run through the detector (tags -1).
    rng = np.random.default_rng(11)
    prior = np.array([0.5, 0.3, 0.15, 0.05])
    truth = rng.choice(4, 10000, p=prior)
    answers = rng.binomial(truth[:, None], 0.8, (10000, 3)) + rng.poisson(0.1, (10000, 3))
    tags = rng.binomial(truth, 0.6) + rng.poisson(0.7, 10000)
    tags[::10] = -1
    gold_t = rng.choice(4, 1000, p=prior)
    gold_answers = np.full((1000, 3), -1)
    gold_answers[:, :2] = rng.binomial(gold_t[:, None], 0.8, (1000, 2)) + rng.poisson(
        0.1, (1000, 2)
    )
    gold_tags = rng.binomial(gold_t, 0.6) + rng.poisson(0.7, 1000)
    fit = fit_count_model(
        np.vstack([answers, gold_answers]),
        truth=np.concatenate([np.full(10000, -1), gold_t]),
        machine_tags=np.concatenate([tags, gold_tags]),
        t_max=5,
    )
    assert fit.detector_recall == pytest.approx(0.6, abs=0.04)
    assert fit.detector_false_rate == pytest.approx(0.7, abs=0.05)
    assert fit.detection == pytest.approx(0.8, abs=0.03)
    assert fit.false_rate == pytest.approx(0.1, abs=0.02)
    np.testing.assert_allclose(fit.prior[:4], prior, atol=0.03)
    # Without machine tags the model has no detector rates; stop_cost falls back to the
    # documented constants.
    plain = fit_count_model(answers, t_max=5)
    assert plain.detector_recall is None and plain.detector_false_rate is None
    with pytest.raises(OptionError, match=r"machine_tags\[2\]: found 0.5"):
        fit_count_model(answers[:3], machine_tags=np.array([1.0, 0.0, 0.5]), t_max=5)
    with pytest.raises(OptionError, match="one per panorama"):
        fit_count_model(answers[:3], machine_tags=np.array([1, 0]), t_max=5)
    with pytest.raises(OptionError, match=r"detector_recall=0\.5, detector_false_rate=None"):
        CountModel(prior=prior, detection=0.8, false_rate=0.1, detector_recall=0.5)
    for recall, false_rate in ((0.0, 0.5), (1.2, 0.5), (0.5, -0.1)):
        with pytest.raises(OptionError, match=f"detector_recall={recall}, "):
            CountModel(
                prior=prior,
                detection=0.8,
                false_rate=0.1,
                detector_recall=recall,
                detector_false_rate=false_rate,
            )
    with pytest.raises(OptionError, match="machine_tags=-1: expected a count >= 0"):
        stop_cost([0], fit, machine_tags=-1)


def test_refit_after_stop_posterior_needs_the_panoramas_it_ended_early() -> None:
    # The platform refits the count model while stop_posterior runs (db.adaptive): the answers
    # the rule did not ask for are missing at random given the answers seen, so EM on every
    # panorama recovers the model, while the panoramas with >= 2 answers alone do not.
    prior = np.array([0.55, 0.3, 0.1, 0.05])
    true = CountModel(prior=prior, detection=0.85, false_rate=0.05)
    rng = np.random.default_rng(0)
    t = rng.choice(4, 4000, p=prior)
    answers = rng.binomial(t[:, None], 0.85, (4000, 5)) + rng.poisson(0.05, (4000, 5))
    used = run_rule(answers, rule="stop_posterior", model=true, tolerance=0.05)
    assert (used == 1).sum() > 100
    seen = np.where(np.arange(5)[None, :] < used[:, None], answers, -1)[:, :3]
    every = fit_count_model(seen, t_max=6)
    np.testing.assert_allclose(every.prior[:4], prior, atol=0.015)
    assert every.detection == pytest.approx(0.85, abs=0.02)
    assert every.false_rate == pytest.approx(0.05, abs=0.01)
    two_or_more = fit_count_model(seen[used >= 2], t_max=6)
    assert two_or_more.prior[3] < 0.03


def _stop_cost_brute(answers: list[int], model: CountModel, k: int, tags: int | None) -> float:
    """The same expectation, by explicit loops over the true count and every future answer."""
    t_max = len(model.prior) - 1
    lik = count_likelihood(model.detection, model.false_rate, 25, t_max)
    rates = (model.detector_recall, model.detector_false_rate)
    if None in rates:
        rates = (DETECTOR_RECALL, DETECTOR_FALSE_TAGS)
    det = count_likelihood(float(rates[0] or 0), float(rates[1] or 0), 25, t_max)
    weight = {}
    for t in range(t_max + 1):
        w = model.prior[t] * np.prod([lik[a, t] for a in answers])
        weight[t] = w * (det[tags, t] if tags is not None else 1.0)
    z = sum(weight.values())
    now = sum(w * abs(np.median(answers) - t) for t, w in weight.items()) / z
    full = 0.0
    for t, w in weight.items():
        for future in itertools.product(range(25), repeat=k - len(answers)):
            p = np.prod([lik[a, t] for a in future])
            full += w * p * abs(np.median(answers + list(future)) - t)
    return float(now - full / z)


def test_stop_cost_hand_computed_and_brute_force() -> None:
    # HALF: T = 0 or 1 equally likely, each camera seen with 1/2, no look-alikes. After one 0,
    # P(T = 1) = 1/3; stopping errs by 1/3; the median of 3 errs only when T = 1 and one of the
    # two next answers is 0 (3/4): 1/3 * 3/4 = 1/4. Cost 1/3 - 1/4 = 1/12.
    assert stop_cost([0], HALF) == pytest.approx(1 / 12)
    # After a 1, T = 1 for sure: stopping is exact, the median of 3 errs 1/4 of the time.
    assert stop_cost([1], HALF) == pytest.approx(-0.25)
    # After 0 and 1, T = 1; the median of 3 is the third answer: E|0.5 - 1| = E|a3 - 1| = 1/2.
    assert stop_cost([0, 1], HALF) == pytest.approx(0.0, abs=1e-12)
    model = CountModel(prior=np.array([0.45, 0.3, 0.15, 0.1]), detection=0.7, false_rate=0.3)
    # stop_cost sums future answers up to 9 here (t_max + 6), the loops up to 24: the tail
    # left out is below 1e-8.
    for answers, tags in (([0], None), ([2], None), ([0, 3], None), ([0], 0), ([1], 3)):
        assert stop_cost(answers, model, machine_tags=tags) == pytest.approx(
            _stop_cost_brute(answers, model, 3, tags), abs=1e-8
        )
    assert stop_cost([1], model, k=4) == pytest.approx(
        _stop_cost_brute([1], model, 4, None), abs=1e-8
    )
    # A model with the detector's own fitted rates uses them, not the constants.
    fitted = CountModel(
        prior=model.prior,
        detection=0.7,
        false_rate=0.3,
        detector_recall=0.4,
        detector_false_rate=1.2,
    )
    for answers, tags in (([0], 0), ([1], 3), ([0], 2)):
        assert stop_cost(answers, fitted, machine_tags=tags) == pytest.approx(
            _stop_cost_brute(answers, fitted, 3, tags), abs=1e-8
        )
    assert stop_cost([0], fitted, machine_tags=2) != pytest.approx(
        stop_cost([0], model, machine_tags=2), abs=1e-3
    )
    # A machine tag count of 0 makes a camera less likely: stopping on a 0 costs less.
    assert stop_cost([0], model, machine_tags=0) < stop_cost([0], model)
    with pytest.raises(OptionError, match="k - 1"):
        stop_cost([0, 0, 0], model)
    with pytest.raises(OptionError, match="impossible"):
        stop_cost([0, 3], HALF)


def test_stop_posterior_rule_hand_cases() -> None:
    assert adaptive_target([0], rule="stop_posterior", model=HALF, tolerance=0.1) == 1
    assert adaptive_target([0], rule="stop_posterior", model=HALF, tolerance=0.05) == 3
    assert adaptive_target([1], rule="stop_posterior", model=HALF, tolerance=-0.2) == 1
    assert adaptive_target([1], rule="stop_posterior", model=HALF, tolerance=-0.3) == 3
    assert adaptive_target([0, 1], rule="stop_posterior", model=HALF, tolerance=-0.01) == 3
    # Two equal answers end it whatever the model says; categories must all agree.
    assert adaptive_target([0, 0], rule="stop_posterior", model=HALF, tolerance=-9) == 2
    two = [(1, 0, 0), (0, 1, 0)]
    assert adaptive_target(two, rule="stop_posterior", model=HALF, tolerance=-0.01) == 3
    assert adaptive_target([0, 1, 1], rule="stop_posterior", model=HALF) == 3
    # No model yet (the pilot is being collected): k answers, as "fixed".
    assert adaptive_target([0, 0], rule="stop_posterior") == 3
    with pytest.raises(OptionError, match="stop_posterior"):
        savings_on_agreements(
            pd.DataFrame({"n_cameras_median": [0], "n_cameras_agreement": ["Unanimous"]}),
            rules=("stop_posterior",),
        )


def test_run_rule_with_machine_tags_matches_the_rule() -> None:
    model = CountModel(prior=np.array([0.45, 0.3, 0.15, 0.1]), detection=0.7, false_rate=0.3)
    rng = np.random.default_rng(2)
    answers = rng.poisson(0.8, (300, 5))
    tags = rng.poisson(1.0, 300)
    used = run_rule(answers, rule="stop_posterior", model=model, tolerance=0.05, machine_tags=tags)
    for row, tag, n in zip(answers, tags, used, strict=True):
        # The platform's loop by hand: ask until the target is reached.
        m = 1
        while m < adaptive_target(
            list(row[:m]), rule="stop_posterior", model=model, tolerance=0.05, machine_tags=tag
        ):
            m += 1
        assert n == m
    assert {1, 2, 3} <= set(np.unique(used).tolist())
    with pytest.raises(OptionError, match="machine_tags"):
        run_rule(answers, rule="stop_posterior", model=model, machine_tags=tags[:5])


def test_simulate_adaptive_posterior_counts_pilot_and_gold() -> None:
    out = simulate_adaptive(
        7,
        OVER_COUNTING,
        nx=15,
        ny=15,
        rules=("fixed", "stop_posterior"),
        pilot=40,
        gold=10,
        tolerances=(0.0, 0.05),
        detector=True,
    )
    assert list(out["rule"]) == ["fixed"] + ["stop_posterior", "stop_posterior+detector"] * 2
    n = int(out["panoramas"].iloc[0])
    post = out[out.rule != "fixed"]
    # Pilot panoramas get 3 answers, the others at least 1; the 2 answers of each of the 10
    # gold panoramas are counted.
    assert (post["tasks"] >= 3 * 40 + (n - 40) + 20).all()
    assert (post["tasks"] <= 3 * n + 20).all()
    assert (post["tasks_saved_pct"] == 100 * (1 - post["tasks"] / (3 * n))).all()
    looser = post[post.tolerance == 0.05].set_index("rule")["tasks"]
    tighter = post[post.tolerance == 0.0].set_index("rule")["tasks"]
    assert (looser <= tighter).all()
    fixed = out.iloc[0]
    assert fixed["panorama_mae_pct_fixed"] == pytest.approx(fixed["panorama_mae_pct"])
    assert fixed["panorama_mae_pct"] == pytest.approx(
        100 * fixed["panorama_mae"] * n / fixed["total_true"]
    )


def test_simulate_adaptive_real_machine_tags_and_answer_seed() -> None:
    small = {"nx": 12, "ny": 12, "rules": ("fixed", "stop_posterior"), "pilot": 30, "gold": 10}
    truth = simulate_city(4, nx=12, ny=12).truth[list(_ATTACH_COLS)].to_numpy()
    n = len(truth)
    # Tags that are exactly the truth: the detector is perfect, so its fitted recall is ~1,
    # it has no false tags, and stop_posterior stops no later than without them.
    exact = simulate_adaptive(4, truth=truth, machine_tags=truth.sum(axis=1), **small)
    assert list(exact["rule"]) == ["fixed", "stop_posterior", "stop_posterior+detector"]
    by_rule = exact.set_index("rule")
    assert by_rule.loc["stop_posterior+detector", "tasks"] <= by_rule.loc["stop_posterior", "tasks"]
    # answer_seed changes the answers on the same city; the default is the city's seed.
    same = simulate_adaptive(4, truth=truth, answer_seed=4, **small)
    other = simulate_adaptive(4, truth=truth, answer_seed=5, **small)
    base = simulate_adaptive(4, truth=truth, **small)
    pd.testing.assert_frame_equal(same, base)
    assert (other["total_true"] == base["total_true"]).all()
    assert not np.array_equal(other["total_estimate"], base["total_estimate"])
    with pytest.raises(OptionError, match=f"found {n - 1} values .0 negative.; expected one"):
        simulate_adaptive(4, truth=truth, machine_tags=np.zeros(n - 1), **small)
    with pytest.raises(OptionError, match="1 negative"):
        simulate_adaptive(4, truth=truth, machine_tags=np.r_[np.zeros(n - 1), -1], **small)


@pytest.mark.parametrize(
    ("value", "shown"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf"), (1.5, "1.5")]
)
def test_fit_count_model_refuses_non_counts_with_the_entry(value: float, shown: str) -> None:
    answers = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    answers[1, 2] = value
    with pytest.raises(OptionError, match=rf"answers\[1, 2\]: found {shown} \(1 such entries\)"):
        fit_count_model(answers, t_max=5)
    good = np.array([[1, 1, 0], [2, 2, 2], [0, 0, 0]])
    with pytest.raises(OptionError, match=r"truth: found shape \(2,\), largest 1; expected one"):
        fit_count_model(good, truth=np.array([1, 0]), t_max=5)
