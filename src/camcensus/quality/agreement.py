"""Agreement between volunteers: Krippendorff's alpha, with bootstrap intervals, by group.

Amnesty computed Krippendorff's alpha on the Decoders' counts and left it out of the report for
lack of experience interpreting it (methodology note, section 1.6.1). This module computes it
(written here: the PyPI ``krippendorff`` package is GPL-3) with the coincidence-matrix
formulation of Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", for the
nominal, ordinal, interval and ratio metrics, and says in plain words what a value means.

Alpha compares the disagreement observed between answers to the same unit (panorama) with the
disagreement expected by chance between any two answers: ``alpha = 1 - D_o / D_e``. It is 1 for
perfect agreement, 0 when volunteers agree no more than chance, and negative when they
disagree systematically. Alpha does not say who is right: volunteers who all miss the same
cameras agree perfectly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.io.decode import CATEGORIES

__all__ = [
    "ALPHA_LEVELS",
    "ATTACHMENT_CLASSES",
    "AlphaData",
    "alpha_table",
    "attachment_class",
    "interpret_alpha",
    "krippendorff_alpha",
    "reliability_data",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
#: The metrics (levels of measurement) :func:`krippendorff_alpha` knows.
ALPHA_LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
#: Labels of :func:`attachment_class` (one per answer).
ATTACHMENT_CLASSES: tuple[str, ...] = ("none", "street", "building", "unknown", "mixed")
#: Krippendorff's conventions (2004, p. 241): rely on variables with alpha >= 0.800, draw only
#: tentative conclusions from 0.667 <= alpha < 0.800, discard below.
RELIABLE = 0.8
TENTATIVE = 2 / 3
_COUNT_COLUMNS = CATEGORIES
_ATTACH = ("attached_street", "attached_building", "attached_unknown")


@dataclass(frozen=True)
class AlphaData:
    """Pairable values of a reliability data set, one row per unit.

    ``values`` are the distinct values (sorted); ``counts[u, c]`` is how many answers to unit
    ``u`` have value ``values[c]``. Only units with at least 2 answers are kept;
    ``n_skipped`` counts the units left out because they had fewer.
    """

    values: np.ndarray
    counts: np.ndarray
    n_skipped: int


def _check_level(level: str) -> None:
    if level not in ALPHA_LEVELS:
        raise OptionError(f"level={level!r}: expected one of {', '.join(ALPHA_LEVELS)}.")


def reliability_data(data: np.ndarray | Sequence[Sequence[float]]) -> AlphaData:
    """Turn a units × raters array (NaN = no answer) into per-unit value counts.

    Parameters
    ----------
    data
        One row per unit (panorama), one column per rater; ``NaN`` where a rater gave no value.
        Values are numbers (codes for nominal data).

    Returns
    -------
    AlphaData
        Units with fewer than 2 values are left out and counted in ``n_skipped``.
    """
    arr = np.asarray(data, dtype="float64")
    if arr.ndim != 2:
        raise OptionError(
            f"data has {arr.ndim} dimension(s); expected a 2-D units × raters array "
            "(NaN for a missing answer)."
        )
    if np.isinf(arr).any():
        raise OptionError("data holds infinite values; expected finite numbers or NaN.")
    present = ~np.isnan(arr)
    m = present.sum(axis=1)
    keep = m >= 2
    values = np.unique(arr[present & keep[:, None]])
    sub = arr[keep]
    counts = np.zeros((len(sub), len(values)), dtype="float64")
    rows, cols = np.nonzero(~np.isnan(sub))
    np.add.at(counts, (rows, np.searchsorted(values, sub[rows, cols])), 1.0)
    return AlphaData(values=values, counts=counts, n_skipped=int((~keep).sum()))


def _delta(level: str, values: np.ndarray, marginals: np.ndarray) -> np.ndarray:
    """Return the squared difference function delta²(c, k) of Krippendorff (2011)."""
    c, k = values[:, None], values[None, :]
    if level == "nominal":
        return np.asarray(c != k, dtype="float64")
    if level == "interval":
        return np.asarray((c - k) ** 2, dtype="float64")
    if level == "ratio":
        total = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(total == 0, 0.0, ((c - k) / np.where(total == 0, 1.0, total)) ** 2)
        return np.asarray(d, dtype="float64")
    # Ordinal: (sum of n_g for g from c to k, minus half of n_c and n_k) squared.
    cum = np.concatenate([[0.0], np.cumsum(marginals)])
    i = np.arange(len(values))
    lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
    between = cum[hi + 1] - cum[lo] - (marginals[lo] + marginals[hi]) / 2
    return np.asarray(between**2, dtype="float64")


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Return each unit's contribution to the coincidence matrix, flattened (units × V²)."""
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    v = counts.shape[1]
    idx = np.arange(v)
    outer[:, idx, idx] -= counts
    out: np.ndarray = (outer / (m - 1)[:, None, None]).reshape(len(counts), v * v)
    return out


def _alpha_from_coincidence(o: np.ndarray, level: str, values: np.ndarray) -> float:
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    delta = _delta(level, values, n_c)
    expected = float(n_c @ delta @ n_c)
    if expected <= 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * float((o * delta).sum()) / expected)


def krippendorff_alpha(
    data: np.ndarray | Sequence[Sequence[float]],
    level: str = "nominal",
    *,
    ledger: Ledger | None = None,
) -> float:
    """Return Krippendorff's alpha of a units × raters array.

    Parameters
    ----------
    data
        One row per unit, one column per rater, ``NaN`` for a missing answer (Krippendorff's
        reliability data matrix, transposed).
    level
        ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"`` (the difference functions of
        Krippendorff 2011, section C).
    ledger
        Receives the number of units skipped because they had fewer than 2 values.

    Returns
    -------
    float
        ``1 - D_o / D_e`` from the coincidence matrix; ``NaN`` when there is no pairable
        value or no variation at all (``D_e = 0``: alpha is undefined).

    Examples
    --------
    >>> round(krippendorff_alpha([[1, 1], [2, 2], [3, 2]], "interval"), 3)
    0.706
    """
    _check_level(level)
    rd = reliability_data(data)
    if ledger is not None:
        ledger.exclude("agreement", "units with fewer than 2 answers (not pairable)", rd.n_skipped)
    return _alpha_of(rd, level)


def _alpha_of(rd: AlphaData, level: str) -> float:
    if len(rd.counts) == 0:
        return float("nan")
    v = len(rd.values)
    o = _unit_coincidences(rd.counts).sum(axis=0).reshape(v, v)
    return _alpha_from_coincidence(o, level, rd.values)


def _bootstrap_alpha(
    rd: AlphaData, level: str, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Alpha of ``n_boot`` resamples of the units (with replacement)."""
    u, v = rd.counts.shape
    per_unit = _unit_coincidences(rd.counts)
    weights = rng.multinomial(u, np.full(u, 1.0 / u), size=n_boot).astype("float64")
    o_all = (weights @ per_unit).reshape(n_boot, v, v)
    if level != "ordinal":
        delta = _delta(level, rd.values, np.zeros(v))
        n_c = o_all.sum(axis=2)
        n = n_c.sum(axis=1)
        expected = np.einsum("bi,ij,bj->b", n_c, delta, n_c)
        observed = (o_all * delta).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(expected > 0, 1.0 - (n - 1.0) * observed / expected, np.nan)
        return np.asarray(out, dtype="float64")
    return np.array([_alpha_from_coincidence(o, level, rd.values) for o in o_all])


def attachment_class(submissions: pd.DataFrame) -> pd.Series:
    """Return the attachment class of each answer, a nominal value for agreement.

    The count data say how many cameras a volunteer put on poles (``attached_street``), on
    buildings and unknown, not which camera went where, so a per-camera attachment agreement
    cannot be computed. Each answer gets instead its majority class: ``"none"`` (no camera),
    ``"street"``, ``"building"`` or ``"unknown"`` (the class with most cameras) or ``"mixed"``
    (a tie between the top classes).

    Parameters
    ----------
    submissions
        One row per answer with ``attached_street``, ``attached_building``,
        ``attached_unknown``.

    Returns
    -------
    pandas.Series
        Labels from :data:`ATTACHMENT_CLASSES`, index of ``submissions``.
    """
    missing = [c for c in _ATTACH if c not in submissions.columns]
    if missing:
        raise ContractError(
            f"submissions lack column(s) {', '.join(missing)}; the attachment class needs "
            f"{', '.join(_ATTACH)} (one row per volunteer answer)."
        )
    a = submissions[list(_ATTACH)].to_numpy(dtype="float64")
    top = a.max(axis=1)
    n_top = (a == top[:, None]).sum(axis=1)
    label = np.array(["street", "building", "unknown"], dtype=object)[a.argmax(axis=1)]
    label = np.where(n_top > 1, "mixed", label)
    label = np.where(top <= 0, "none", label)
    return pd.Series(label, index=submissions.index, name="attachment")


def interpret_alpha(value: float) -> str:
    """Say in plain words what an alpha value means (Krippendorff's conventions).

    Examples
    --------
    >>> interpret_alpha(0.85)[:8]
    'reliable'
    """
    if value is None or not np.isfinite(value):
        return (
            "undefined: the answers show no variation (or too few panoramas had two answers), "
            "so agreement cannot be told apart from chance"
        )
    if value >= RELIABLE:
        return (
            f"reliable (alpha {value:.2f} >= 0.80): volunteers who look at the same panorama "
            "mostly give the same answer, far more than chance would; the counts can be relied on "
            "as far as agreement goes (agreement is not accuracy: all can miss the same camera)"
        )
    if value >= TENTATIVE:
        return (
            f"tentative (0.67 <= alpha {value:.2f} < 0.80): volunteers agree more than chance "
            "but disagree often enough that conclusions from these counts should be drawn "
            "only tentatively"
        )
    if value > 0:
        return (
            f"not reliable (alpha {value:.2f} < 0.67): volunteers disagree too often for single "
            "answers to be trusted; only aggregates over many panoramas (with their "
            "intervals) should be used"
        )
    return (
        f"no agreement beyond chance (alpha {value:.2f} <= 0): the answers to the same "
        "panorama are no more alike than answers to different panoramas"
    )


def _wide(submissions: pd.DataFrame, column: str, unit: str) -> np.ndarray:
    """Return a units × answers array of ``column`` (NaN for no answer)."""
    df = submissions[[unit, column]]
    slot = df.groupby(unit, sort=True).cumcount().to_numpy()
    units, pos = np.unique(df[unit].to_numpy(), return_inverse=True)
    arr = np.full((len(units), int(slot.max()) + 1 if len(slot) else 1), np.nan)
    arr[pos, slot] = df[column].to_numpy(dtype="float64")
    return arr


def alpha_table(
    submissions: pd.DataFrame,
    *,
    by: str | pd.Series | None = None,
    category: str | Sequence[str] = ("n_cameras", "attached_street", "attached_building"),
    level: str | None = None,
    attachment: bool = True,
    unit: str = "PanoramaId",
    rater: str = "DecoderId",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Return Krippendorff's alpha per category (and group) with bootstrap intervals.

    Parameters
    ----------
    submissions
        One row per volunteer answer: ``unit`` (``PanoramaId``), ``rater`` (``DecoderId``) and
        the count columns.
    by
        Group column of ``submissions`` (e.g. ``Borough``), or a Series mapping each unit id to
        its group; every group gets its rows, and ``"all"`` is always given. A unit whose answers
        fall in several groups is counted once in each.
    category
        Count columns to measure.
    level
        Metric for the counts; default ``"interval"`` (the size of the disagreement matters:
        3 vs 4 cameras is closer than 0 vs 4). ``"ratio"`` weighs a difference by the size of
        the counts.
    attachment
        Add a row ``attachment`` (nominal alpha on :func:`attachment_class`).
    n_boot, ci, seed
        Percentile bootstrap over units (panoramas resampled with replacement; the volunteers
        within a panorama are kept), seeded.
    ledger
        Receives the exclusions (duplicate answers, units with one answer).

    Returns
    -------
    pandas.DataFrame
        ``group, category, level, alpha, ci_low, ci_high, n_units, n_answers, n_skipped,
        interpretation``; ``n_skipped`` counts units with fewer than 2 answers (not pairable).
    """
    ledger = ledger if ledger is not None else Ledger()
    cats = [category] if isinstance(category, str) else list(category)
    count_level = "interval" if level is None else level
    _check_level(count_level)
    if n_boot < 0:
        raise OptionError(f"n_boot={n_boot}: expected 0 (no interval) or a positive number.")
    if not 0 < ci < 1:
        raise OptionError(f"ci={ci}: expected a level between 0 and 1, e.g. 0.95.")
    needed = [unit, rater, *cats] + (list(_ATTACH) if attachment else [])
    if isinstance(by, str):
        needed.append(by)
    missing = sorted({c for c in needed if c not in submissions.columns})
    if missing:
        raise ContractError(
            f"submissions lack column(s) {', '.join(missing)}; expected one row per answer with "
            f"{unit}, {rater} and the count columns ({', '.join(_COUNT_COLUMNS)})."
        )
    dup = submissions.duplicated([unit, rater], keep="first")
    ledger.exclude(
        "agreement", f"second answers of the same volunteer to the same {unit}", int(dup.sum())
    )
    df = submissions[~dup.to_numpy()].copy()
    jobs: list[tuple[str, str, str]] = [(c, c, count_level) for c in cats]
    if attachment:
        labels = attachment_class(df)
        df["_attachment_code"] = labels.map(
            {lab: i for i, lab in enumerate(ATTACHMENT_CLASSES)}
        ).astype("float64")
        jobs.append(("attachment", "_attachment_code", "nominal"))
    if by is None:
        groups: list[tuple[str, pd.DataFrame]] = [("all", df)]
    else:
        key = df[by] if isinstance(by, str) else df[unit].map(by)
        no_group = int(key.isna().sum())
        ledger.flag("agreement", "answers with no group (kept in 'all' only)", no_group)
        groups = [("all", df)] + [
            (str(g), part) for g, part in df.groupby(key.to_numpy(), sort=True, dropna=True)
        ]
    rng = np.random.default_rng(seed)
    rows = []
    for group, part in groups:
        for name, column, lev in jobs:
            arr = _wide(part, column, unit)
            rd = reliability_data(arr)
            if group == "all":
                ledger.exclude(
                    "agreement",
                    f"{unit}s with fewer than 2 answers ({name}; not pairable)",
                    rd.n_skipped,
                )
            alpha = _alpha_of(rd, lev)
            low = high = float("nan")
            if n_boot > 0 and len(rd.counts) > 0:
                boots = _bootstrap_alpha(rd, lev, n_boot, rng)
                boots = boots[np.isfinite(boots)]
                if len(boots):
                    low, high = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
            rows.append(
                {
                    "group": group,
                    "category": name,
                    "level": lev,
                    "alpha": alpha,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "n_units": len(rd.counts),
                    "n_answers": int(rd.counts.sum()),
                    "n_skipped": rd.n_skipped,
                    "interpretation": interpret_alpha(alpha),
                }
            )
    return pd.DataFrame(rows)
