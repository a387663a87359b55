"""Volunteer skill from gold panoramas, and the skill-weighted consensus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from camcensus._errors import ContractError
from camcensus.quality.latent import posterior_n
from camcensus.quality.skill import skill_from_gold, weighted_consensus


def test_skill_from_gold_by_hand() -> None:
    answers = pd.DataFrame(
        {
            "PanoramaId": ["g1", "g2", "g1", "g2", "g9"],
            "DecoderId": ["a", "a", "b", "b", "b"],
            "attached_street": [2, 0, 1, 2, 5],
        }
    )
    truth = pd.DataFrame({"PanoramaId": ["g1", "g2"], "attached_street": [1, 2]})
    sk = skill_from_gold(answers, truth).set_index("DecoderId")
    # a: g1 says 2 of 1 (found 1, extra 1); g2 says 0 of 2 (missed 2).
    assert sk.loc["a", ["n_gold", "found", "missed", "extra"]].tolist() == [2, 1, 2, 1]
    assert sk.loc["a", "detection"] == pytest.approx(1 / 3)
    assert sk.loc["a", "false_rate"] == pytest.approx(0.5)
    lo, hi = stats.beta.ppf([0.025, 0.975], 1.5, 2.5)
    assert sk.loc["a", "detection_low"] == pytest.approx(lo)
    assert sk.loc["a", "detection_high"] == pytest.approx(hi)
    # Garwood interval for 1 extra tag in 2 panoramas.
    assert sk.loc["a", "false_rate_low"] == pytest.approx(stats.chi2.ppf(0.025, 2) / 2 / 2)
    assert sk.loc["a", "false_rate_high"] == pytest.approx(stats.chi2.ppf(0.975, 4) / 2 / 2)
    # b: perfect on both gold panoramas (its answer on g9, not gold, is left out and counted).
    assert sk.loc["b", ["found", "missed", "extra"]].tolist() == [3, 0, 0]
    assert sk.loc["b", "detection"] == 1.0 and sk.loc["b", "detection_high"] == 1.0
    assert sk.loc["b", "false_rate_low"] == 0.0
    ledger = sk.attrs["ledger"]
    assert ledger.total() == 1
    # Shrunk toward the pool (4 found of 6 cameras, 1 extra in 4 answers).
    assert sk.loc["a", "detection_shrunk"] == pytest.approx((1 + 10 * 4 / 6) / (3 + 10))
    assert sk.loc["b", "false_rate_shrunk"] == pytest.approx((0 + 10 * 1 / 4) / (2 + 10))


def test_skill_from_gold_uses_tag_matches_when_given() -> None:
    answers = pd.DataFrame(
        {
            "PanoramaId": ["g1"],
            "DecoderId": ["a"],
            "attached_street": [1],
            "found": [0],
            "missed": [1],
            "extra": [1],
        }
    )
    truth = pd.DataFrame({"PanoramaId": ["g1"], "attached_street": [1]})
    sk = skill_from_gold(answers, truth)
    # The count (1 of 1) looks perfect; the tag matches show a miss and a false tag.
    assert sk.loc[0, "detection"] == 0.0 and sk.loc[0, "false_rate"] == 1.0


def test_weighted_consensus_matches_enumeration() -> None:
    sub = pd.DataFrame(
        {
            "PanoramaId": ["p"] * 3 + ["q"] * 3,
            "DecoderId": ["good", "bad", "mid"] * 2,
            "attached_street": [0, 2, 1, 1, 1, 1],
        }
    )
    skills = pd.DataFrame(
        {
            "DecoderId": ["good", "bad", "mid"],
            "detection": [0.95, 0.6, 0.8],
            "false_rate": [0.01, 1.5, 0.1],
        }
    )
    out = weighted_consensus(sub, skills, em_iter=30).set_index("PanoramaId")
    prior = out.attrs["prior"]
    ps, fs = np.array([0.95, 0.6, 0.8]), np.array([0.01, 1.5, 0.1])
    for pid, ys in (("p", [0, 2, 1]), ("q", [1, 1, 1])):
        post = posterior_n(np.array(ys), ps, fs, prior)
        assert out.loc[pid, "consensus"] == post.argmax()
        assert out.loc[pid, "posterior_mean"] == pytest.approx(post @ np.arange(len(post)))
    assert out.loc["p", "median"] == 1 and out.loc["q", "median"] == 1
    assert out.loc["q", "consensus"] == 1


def test_unknown_volunteer_gets_the_pool_and_is_counted() -> None:
    sub = pd.DataFrame(
        {"PanoramaId": ["p", "p"], "DecoderId": ["a", "new"], "attached_street": [1, 1]}
    )
    skills = pd.DataFrame({"DecoderId": ["a"], "detection": [0.9], "false_rate": [0.05]})
    out = weighted_consensus(sub, skills)
    assert out.attrs["ledger"].flagged[0].count == 1
    assert out.loc[0, "consensus"] == 1
    with pytest.raises(ContractError, match="detection"):
        weighted_consensus(sub, pd.DataFrame({"DecoderId": ["a"]}))


def test_consensus_beats_median_with_known_skills() -> None:
    # Volunteers with known, very different skills: weighting by skill lowers the error.
    rng = np.random.default_rng(0)
    n_pano, n_vol = 1500, 12
    p = np.r_[np.full(6, 0.95), np.full(6, 0.5)]
    f = np.r_[np.full(6, 0.02), np.full(6, 0.6)]
    n_true = rng.poisson(0.5, n_pano)
    rows = []
    for i in range(n_pano):
        for j in rng.choice(n_vol, 3, replace=False):
            rows.append((f"P{i}", f"V{j}", rng.binomial(n_true[i], p[j]) + rng.poisson(f[j])))
    sub = pd.DataFrame(rows, columns=["PanoramaId", "DecoderId", "attached_street"])
    skills = pd.DataFrame(
        {"DecoderId": [f"V{j}" for j in range(n_vol)], "detection": p, "false_rate": f}
    )
    out = weighted_consensus(sub, skills)
    truth = pd.Series(n_true, index=[f"P{i}" for i in range(n_pano)])[out["PanoramaId"]]
    err_med = np.abs(out["median"].to_numpy() - truth.to_numpy()).mean()
    err_con = np.abs(out["consensus"].to_numpy() - truth.to_numpy()).mean()
    assert err_con < 0.8 * err_med
