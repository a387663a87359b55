"""Cameras per 1,000 residents by tract race composition, with tract-bootstrap intervals.

The closing figure of ``camcensus audit``: tracts are grouped by the majority of their
residents (:func:`race_composition`), and each group's rate is the group's cameras over its
residents (a ratio of sums, so that a tract of 300 people does not weigh as much as one of
6,000). Cameras cluster in space, so a Poisson interval on the count would be far too narrow;
the interval resamples whole tracts within each group (a stratified percentile bootstrap,
Efron & Tibshirani 1993, ch. 13), which keeps each tract's cameras together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from camcensus.stats._result import Estimate

__all__ = ["GROUPS", "race_composition", "rate_ratio", "rates_by_group"]

#: Tract groups by race composition, in the order reports show them.
GROUPS = ("majority Black", "majority White", "majority Hispanic", "no majority")


def race_composition(tracts: pd.DataFrame, *, majority: float = 0.5) -> pd.Series:
    """Return each tract's group: the race (Black, White, Hispanic) of more than ``majority``
    of its residents (``popn_black / popn`` ...), else ``"no majority"``; NaN without residents.
    """
    popn = pd.to_numeric(tracts["popn"], errors="coerce")
    out = pd.Series("no majority", index=tracts.index, dtype=object)
    for col, label in (
        ("popn_hispanic", "majority Hispanic"),
        ("popn_white", "majority White"),
        ("popn_black", "majority Black"),
    ):
        share = tracts[col] / popn.where(popn > 0)
        out[share > majority] = label
    return out.where(popn > 0)


def _boot(count: np.ndarray, pop: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``reps`` bootstrap ratios Σcount/Σpop, resampling the rows."""
    n = len(count)
    idx = rng.integers(0, n, size=(reps, n))
    c, p = count[idx].sum(axis=1), pop[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = c / p
    return out


def rates_by_group(
    tracts: pd.DataFrame,
    group: str,
    *,
    count: str = "cameras",
    population: str = "popn",
    per: float = 1000.0,
    groups: Sequence[str] | None = None,
    reps: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Return the rate ``count`` per ``per`` residents in each group, with its interval.

    Parameters
    ----------
    tracts
        One row per tract with ``group``, ``count`` and ``population`` columns.
    group
        Column naming each tract's group (rows with NaN are left out).
    groups
        Groups to report, in order (default: :data:`GROUPS` present, then any others).
    reps, seed, level
        Bootstrap replicates, their seed, and the interval's coverage.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``group``, ``tracts``, ``residents``, ``count`` (the group's
        cameras), then the :class:`~camcensus.stats._result.Estimate` fields (``estimate``:
        the rate per ``per`` residents; ``std_error``: the bootstrap standard deviation;
        ``ci_low``, ``ci_high``: percentile interval; ``p_value``: NaN), plus ``share_of_count``
        and ``share_of_residents``.
    """
    rng = np.random.default_rng(seed)
    d = tracts.loc[tracts[group].notna()]
    present = list(dict.fromkeys(d[group]))
    order = [g for g in (groups or GROUPS) if g in present]
    order += [g for g in sorted(map(str, present)) if g not in order and groups is None]
    total_count = float(d[count].sum())
    total_pop = float(d[population].sum())
    alpha = (1 - level) / 2
    rows = []
    for g in order:
        sub = d.loc[d[group] == g]
        c = sub[count].to_numpy(dtype=float)
        p = sub[population].to_numpy(dtype=float)
        est = c.sum() / p.sum() * per if p.sum() > 0 else float("nan")
        boot = _boot(c, p, reps, rng) * per
        lo, hi = np.nanquantile(boot, [alpha, 1 - alpha]) if len(c) else (np.nan, np.nan)
        e = Estimate(
            term=str(g),
            estimate=float(est),
            std_error=float(np.nanstd(boot, ddof=1)) if len(c) > 1 else float("nan"),
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=float("nan"),
            n=len(c),
            method=f"tract bootstrap ({reps}, percentile, seed {seed})",
        )
        rows.append(
            {
                "group": str(g),
                "tracts": len(c),
                "residents": float(p.sum()),
                "count": float(c.sum()),
                **{k: getattr(e, k) for k in ("estimate", "std_error", "ci_low", "ci_high")},
                "p_value": e.p_value,
                "method": e.method,
                "share_of_count": float(c.sum()) / total_count if total_count else float("nan"),
                "share_of_residents": float(p.sum()) / total_pop if total_pop else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def rate_ratio(
    tracts: pd.DataFrame,
    group: str,
    numerator: str,
    denominator: str,
    *,
    count: str = "cameras",
    population: str = "popn",
    reps: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """Return the ratio of two groups' rates (e.g. majority-Black over majority-White tracts)
    with a stratified tract-bootstrap percentile interval and a two-sided bootstrap p-value
    for a ratio of 1 (twice the share of replicates on the other side of 1)."""
    rng = np.random.default_rng(seed)
    parts = []
    for g in (numerator, denominator):
        sub = tracts.loc[tracts[group] == g]
        parts.append((sub[count].to_numpy(dtype=float), sub[population].to_numpy(dtype=float)))
    term = f"{numerator} / {denominator}"
    method = f"tract bootstrap ({reps}, percentile, seed {seed})"
    if any(len(c) == 0 or p.sum() == 0 for c, p in parts):
        nan = float("nan")
        return Estimate(term, nan, nan, nan, nan, nan, 0, method)
    (c1, p1), (c2, p2) = parts
    est = (c1.sum() / p1.sum()) / (c2.sum() / p2.sum()) if c2.sum() > 0 else float("inf")
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = _boot(c1, p1, reps, rng) / _boot(c2, p2, reps, rng)
    alpha = (1 - level) / 2
    finite = boot[np.isfinite(boot)]
    # Order statistics, not np.quantile: a replicate without any camera in the denominator
    # group gives an infinite ratio, which an interpolated quantile cannot take.
    srt = np.sort(boot[~np.isnan(boot)])
    lo = srt[int(np.floor(alpha * (len(srt) - 1)))] if len(srt) else np.nan
    hi = srt[int(np.ceil((1 - alpha) * (len(srt) - 1)))] if len(srt) else np.nan
    above = float(np.mean(boot > 1)) if len(boot) else float("nan")
    p = min(1.0, 2 * min(above, 1 - above))
    sd = float(np.std(np.log(finite[finite > 0]), ddof=1)) if (finite > 0).sum() > 1 else np.nan
    return Estimate(
        term, float(est), sd, float(lo), float(hi), p, len(c1) + len(c2), method + "; se of log"
    )
