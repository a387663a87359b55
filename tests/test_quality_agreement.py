"""Krippendorff's alpha against the published worked example and a brute-force reference."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.quality.agreement import (
    alpha_table,
    attachment_class,
    interpret_alpha,
    krippendorff_alpha,
    reliability_data,
)

_N = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: 4 observers
# (A-D) x 12 units with missing values, here one row per unit (the same table as the example
# of irr::kripp.alpha, "the C data from Krippendorff").
KRIPPENDORFF_2011 = np.array(
    [
        [1, 1, _N, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [_N, 5, 5, 5],
        [_N, _N, 1, 1],
        [_N, _N, 3, _N],
    ]
)


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_published_worked_example(level: str, published: float) -> None:
    ledger = Ledger()
    alpha = krippendorff_alpha(KRIPPENDORFF_2011, level, ledger=ledger)
    assert alpha == pytest.approx(published, abs=5e-4)
    # Unit 12 has one value: not pairable, counted.
    assert ledger.total() == 1


def test_nominal_closed_form() -> None:
    # Nominal alpha = 1 - (n - 1) * sum_{c != k} o_ck / (n^2 - sum_c n_c^2), counted by hand:
    # 40 pairable values, n_c = (9, 13, 10, 5, 3) for values 1..5; the mismatches are in
    # unit 2 (3 vs 1: 6 ordered pairs / 3), unit 6 (all differ: 12 / 3), unit 8 (6 / 3): 8.
    n_c = np.array([9, 13, 10, 5, 3])
    expected = 1 - 39 * 8 / (40**2 - (n_c**2).sum())
    assert krippendorff_alpha(KRIPPENDORFF_2011, "nominal") == pytest.approx(expected, abs=1e-12)


def _brute_force(data: np.ndarray, level: str) -> float:
    """Alpha from every ordered pair of values, within units and across all values."""
    units = [row[~np.isnan(row)] for row in data]
    units = [u for u in units if len(u) >= 2]
    pooled = np.concatenate(units)
    values = np.unique(pooled)
    n_g = {v: float((pooled == v).sum()) for v in values}

    def delta(c: float, k: float) -> float:
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        if level == "ratio":
            return 0.0 if c + k == 0 else ((c - k) / (c + k)) ** 2
        lo, hi = min(c, k), max(c, k)
        between = sum(n_g[g] for g in values if lo <= g <= hi)
        return (between - (n_g[c] + n_g[k]) / 2) ** 2

    n = len(pooled)
    observed = 0.0
    for u in units:
        for i, j in itertools.permutations(range(len(u)), 2):
            observed += delta(u[i], u[j]) / (len(u) - 1)
    expected = 0.0
    for i, j in itertools.permutations(range(n), 2):
        expected += delta(pooled[i], pooled[j])
    return 1 - (n - 1) * observed / expected


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_brute_force_on_random_data(level: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.poisson(1.5, 25)
    data = (truth[:, None] + rng.integers(-1, 2, (25, 4))).clip(0).astype(float)
    data[rng.random(data.shape) < 0.25] = np.nan
    assert krippendorff_alpha(data, level) == pytest.approx(_brute_force(data, level), abs=1e-10)


def test_perfect_agreement_and_chance() -> None:
    data = np.repeat(np.arange(6, dtype=float)[:, None], 3, axis=1)
    assert krippendorff_alpha(data, "interval") == pytest.approx(1.0)
    # Raters answering independently of the unit: alpha near 0.
    rng = np.random.default_rng(0)
    noise = rng.poisson(2.0, (4000, 3)).astype(float)
    assert abs(krippendorff_alpha(noise, "interval")) < 0.03
    # No variation at all: undefined.
    assert np.isnan(krippendorff_alpha(np.zeros((5, 3)), "nominal"))


def test_reliability_data_counts_skipped_units() -> None:
    rd = reliability_data(np.array([[1, _N, _N], [_N, _N, _N], [2, 2, 3]]))
    assert rd.n_skipped == 2
    assert rd.values.tolist() == [2.0, 3.0]
    assert rd.counts.tolist() == [[2.0, 1.0]]


def test_bad_options() -> None:
    with pytest.raises(OptionError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, "circular")
    with pytest.raises(OptionError, match="2-D"):
        krippendorff_alpha(np.array([1.0, 2.0]))


def test_attachment_class() -> None:
    sub = pd.DataFrame(
        {
            "attached_street": [0, 2, 1, 0, 1],
            "attached_building": [0, 1, 1, 3, 0],
            "attached_unknown": [0, 0, 0, 0, 0],
        }
    )
    assert attachment_class(sub).tolist() == ["none", "street", "mixed", "building", "street"]
    with pytest.raises(ContractError, match="attached_unknown"):
        attachment_class(sub.drop(columns="attached_unknown"))


def _long(data: np.ndarray, groups: list[str]) -> pd.DataFrame:
    rows = []
    for u, row in enumerate(data):
        for r, v in enumerate(row):
            if not np.isnan(v):
                rows.append(
                    {
                        "PanoramaId": f"p{u}",
                        "DecoderId": f"d{r}",
                        "n_cameras": v,
                        "attached_street": v,
                        "attached_building": 0,
                        "attached_unknown": 0,
                        "Borough": groups[u],
                    }
                )
    return pd.DataFrame(rows)


def test_alpha_table_matches_array_and_groups() -> None:
    groups = ["A"] * 6 + ["B"] * 6
    sub = _long(KRIPPENDORFF_2011, groups)
    # A repeated answer of the same volunteer is dropped and counted.
    sub = pd.concat([sub, sub.iloc[[0]]], ignore_index=True)
    ledger = Ledger()
    table = alpha_table(sub, by="Borough", category="n_cameras", n_boot=200, seed=3, ledger=ledger)
    assert set(table["group"]) == {"all", "A", "B"}
    whole = table[(table.group == "all") & (table.category == "n_cameras")].iloc[0]
    assert whole["alpha"] == pytest.approx(0.849, abs=5e-4)
    assert whole["n_units"] == 11
    assert whole["n_skipped"] == 1
    assert whole["ci_low"] <= whole["alpha"] <= whole["ci_high"]
    part = table[(table.group == "A") & (table.category == "n_cameras")].iloc[0]
    assert part["alpha"] == pytest.approx(
        krippendorff_alpha(KRIPPENDORFF_2011[:6], "interval"), abs=1e-12
    )
    reasons = {e.reason: e.count for e in ledger}
    assert reasons["second answers of the same volunteer to the same PanoramaId"] == 1
    # Seeded: the same seed gives the same intervals.
    again = alpha_table(sub, by="Borough", category="n_cameras", n_boot=200, seed=3)
    pd.testing.assert_frame_equal(table, again)


def test_alpha_table_missing_column() -> None:
    sub = _long(KRIPPENDORFF_2011, ["A"] * 12).drop(columns="DecoderId")
    with pytest.raises(ContractError, match="DecoderId"):
        alpha_table(sub, n_boot=0)


def test_interpret_alpha() -> None:
    assert interpret_alpha(0.85).startswith("reliable")
    assert interpret_alpha(0.7).startswith("tentative")
    assert interpret_alpha(0.5).startswith("not reliable")
    assert interpret_alpha(-0.1).startswith("no agreement")
    assert interpret_alpha(float("nan")).startswith("undefined")


def test_synthetic_city_alpha_orders_error_models() -> None:
    # Fewer misses and look-alikes -> higher agreement on the count.
    from camcensus.quality._sim import DEFAULT, MISS_PRONE
    from camcensus.simulate import simulate_city

    out = {}
    for name, errors in (("default", DEFAULT), ("miss_prone", MISS_PRONE)):
        city = simulate_city(0, errors=errors)
        sub = city.submissions.merge(
            city.intersections[["IntersectionId", "PanoramaId"]], on="IntersectionId"
        )
        table = alpha_table(sub, category="n_cameras", attachment=False, n_boot=0)
        out[name] = float(table["alpha"].iloc[0])
    assert 0 < out["miss_prone"] < out["default"] < 1


def test_alpha_table_groups_from_series_and_options() -> None:
    sub = _long(KRIPPENDORFF_2011, ["A"] * 12).drop(columns="Borough")
    groups = pd.Series({f"p{u}": ("X" if u < 6 else "Y") for u in range(12)})
    table = alpha_table(sub, by=groups, category="n_cameras", attachment=False, n_boot=0)
    assert list(table["group"]) == ["all", "X", "Y"]
    assert table["ci_low"].isna().all()
    y = table.set_index("group").loc["Y", "alpha"]
    assert y == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011[6:], "interval"), abs=1e-12)
    with pytest.raises(OptionError, match="ci"):
        alpha_table(sub, ci=1.5)
    with pytest.raises(OptionError, match="level"):
        alpha_table(sub, level="circular")
