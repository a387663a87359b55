"""Per-volunteer skill, from gold panoramas or from the latent-count model, and a
skill-weighted consensus to set beside the median.

A volunteer's skill is two numbers, as in the latent model (:mod:`camcensus.quality.latent`):
the *detection rate* (share of the true cameras found) and the *false tags per panorama*
(look-alikes and cameras of other categories counted in this one). From gold panoramas (known
truth) they come from found / missed / extra counts; from the latent model, from its posterior.

The skill-weighted consensus of a panorama is the most probable true count given each
volunteer's answer and skill (Dawid and Skene 1979, for counts): ``P(N | answers) ∝ π(N) ×
Π_j P(y_j | N, p_j, f_j)`` with ``y_j = Binomial(N, p_j) + Poisson(f_j)`` and the prior ``π``
estimated from all panoramas (empirical Bayes, EM on the prior's probabilities).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.quality.latent import LatentFit, _answer_loglik

__all__ = ["skill_from_gold", "skill_from_latent", "weighted_consensus"]

_SHRINK = 10.0  # pseudo-observations of the pool in the shrunk estimates


def _need(df: pd.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ContractError(f"{what} lacks column(s) {', '.join(missing)}")


def skill_from_gold(
    gold_answers: pd.DataFrame,
    gold_truth: pd.DataFrame,
    *,
    category: str = "attached_street",
    level: float = 0.95,
) -> pd.DataFrame:
    """Return each volunteer's detection rate and false tags per panorama on gold panoramas.

    Parameters
    ----------
    gold_answers
        One row per volunteer answer on a gold panorama: ``PanoramaId``, ``DecoderId`` and
        ``category`` (a count). When the answers carry tag-level ``found``, ``missed`` and
        ``extra`` columns (the platform matches each tag to the gold cameras), those are used;
        otherwise they come from counts: ``found = min(y, N)``, ``missed = max(N - y, 0)``,
        ``extra = max(y - N, 0)`` (a miss offset by a false tag is then invisible).
    gold_truth
        ``PanoramaId`` and the true ``category`` count of each gold panorama.
    category
        Count column.
    level
        Level of the intervals: Jeffreys (Beta(found + 1/2, missed + 1/2)) for the detection
        rate, exact Poisson (Garwood) for the false tags per panorama.

    Returns
    -------
    pandas.DataFrame
        One row per volunteer, sorted by ``DecoderId``: ``n_gold``, ``found``, ``missed``,
        ``extra``, ``detection`` (found / (found + missed); NaN with no gold camera),
        ``detection_low``, ``detection_high``, ``false_rate`` (extra / n_gold),
        ``false_rate_low``, ``false_rate_high``, and ``detection_shrunk`` /
        ``false_rate_shrunk`` (pulled toward the pool by 10 pseudo-observations: use these to
        weight volunteers with few gold tasks). ``attrs["ledger"]`` counts answers left out.
    """
    if not 0 < level < 1:
        raise OptionError(f"level = {level}: use a level in (0, 1), e.g. 0.95")
    _need(gold_answers, ["PanoramaId", "DecoderId"], "gold_answers")
    _need(gold_truth, ["PanoramaId", category], "gold_truth")
    ledger = Ledger()
    truth = gold_truth.drop_duplicates("PanoramaId").set_index("PanoramaId")[category]
    ans = gold_answers.copy()
    mapped = pd.to_numeric(ans["PanoramaId"].map(truth), errors="coerce")
    unknown = mapped.isna()
    ledger.exclude("skill", "answer on a panorama with no gold truth", int(unknown.sum()))
    ans, n_true = ans.loc[~unknown], mapped[~unknown].to_numpy(float)
    if {"found", "missed", "extra"} <= set(ans.columns):
        found = ans["found"].to_numpy(float)
        missed = ans["missed"].to_numpy(float)
        extra = ans["extra"].to_numpy(float)
    else:
        _need(ans, [category], "gold_answers")
        y = pd.to_numeric(ans[category], errors="coerce").to_numpy(float)
        bad = np.isnan(y)
        ledger.exclude("skill", f"answer with no {category} count", int(bad.sum()))
        ans, y, n_true = ans.loc[~bad], y[~bad], n_true[~bad]
        found = np.minimum(y, n_true)
        missed = np.maximum(n_true - y, 0)
        extra = np.maximum(y - n_true, 0)
    tab = (
        pd.DataFrame(
            {
                "DecoderId": ans["DecoderId"].astype(str).to_numpy(),
                "n_gold": 1,
                "found": found,
                "missed": missed,
                "extra": extra,
            }
        )
        .groupby("DecoderId", sort=True)
        .sum()
        .reset_index()
    )
    alpha = (1 - level) / 2
    fo, mi, ex, ng = (tab[c].to_numpy(float) for c in ("found", "missed", "extra", "n_gold"))
    seen = fo + mi
    with np.errstate(invalid="ignore", divide="ignore"):
        tab["detection"] = np.where(seen > 0, fo / seen, np.nan)
    tab["detection_low"] = np.where(seen > 0, stats.beta.ppf(alpha, fo + 0.5, mi + 0.5), np.nan)
    tab["detection_high"] = np.where(
        seen > 0, stats.beta.ppf(1 - alpha, fo + 0.5, mi + 0.5), np.nan
    )
    tab.loc[fo == 0, "detection_low"] = 0.0
    tab.loc[mi == 0, "detection_high"] = 1.0
    tab["false_rate"] = ex / ng
    tab["false_rate_low"] = np.where(ex > 0, stats.gamma.ppf(alpha, ex) / ng, 0.0)
    tab["false_rate_high"] = stats.gamma.ppf(1 - alpha, ex + 1) / ng
    pool_p = fo.sum() / max(seen.sum(), 1.0)
    pool_f = ex.sum() / max(ng.sum(), 1.0)
    tab["detection_shrunk"] = (fo + _SHRINK * pool_p) / (seen + _SHRINK)
    tab["false_rate_shrunk"] = (ex + _SHRINK * pool_f) / (ng + _SHRINK)
    tab["n_gold"] = tab["n_gold"].astype(int)
    tab.attrs["ledger"] = ledger
    return tab


def skill_from_latent(fit: LatentFit) -> pd.DataFrame:
    """Return each volunteer's skill from the latent model's posterior.

    Columns: ``DecoderId``, ``n_tasks``, ``detection`` (posterior mean), ``detection_low``,
    ``detection_high`` (95%), ``false_rate``, ``false_rate_low``, ``false_rate_high``
    (already pooled: volunteers with few tasks are shrunk by the model's hierarchy).
    """
    cols = [
        "DecoderId",
        "n_tasks",
        "detection",
        "detection_low",
        "detection_high",
        "false_rate",
        "false_rate_low",
        "false_rate_high",
    ]
    return fit.volunteers[cols].copy()


def weighted_consensus(
    submissions: pd.DataFrame,
    skills: pd.DataFrame,
    *,
    category: str = "attached_street",
    n_max: int | None = None,
    em_iter: int = 50,
) -> pd.DataFrame:
    """Return each panorama's skill-weighted consensus count beside the median.

    Parameters
    ----------
    submissions
        One row per answer: ``PanoramaId``, ``DecoderId``, ``category``.
    skills
        ``DecoderId`` with ``detection`` and ``false_rate`` (``detection_shrunk`` and
        ``false_rate_shrunk`` are used when present: :func:`skill_from_gold` or
        :func:`skill_from_latent`). Volunteers missing from it get the pool's median skill
        (counted in ``attrs["ledger"]``).
    category
        Count column.
    n_max
        Largest count considered (default ``max(2 * largest answer + 4, 8)``).
    em_iter
        EM iterations of the prior's probabilities (empirical Bayes).

    Returns
    -------
    pandas.DataFrame
        One row per panorama sorted by ``PanoramaId``: ``n_answers``, ``median``,
        ``consensus`` (most probable count), ``posterior_mean``.
    """
    _need(submissions, ["PanoramaId", "DecoderId", category], "submissions")
    _need(skills, ["DecoderId"], "skills")
    det_col = "detection_shrunk" if "detection_shrunk" in skills.columns else "detection"
    fr_col = "false_rate_shrunk" if "false_rate_shrunk" in skills.columns else "false_rate"
    _need(skills, [det_col, fr_col], "skills")
    ledger = Ledger()
    sub = submissions[["PanoramaId", "DecoderId", category]].copy()
    bad = pd.to_numeric(sub[category], errors="coerce").isna()
    ledger.exclude("consensus", f"answer with no {category} count", int(bad.sum()))
    sub = sub.loc[~bad].sort_values("PanoramaId", kind="stable")
    sk = skills.assign(DecoderId=skills["DecoderId"].astype(str)).set_index("DecoderId")
    p_pool = float(np.nanmedian(sk[det_col])) if len(sk) else 0.8
    f_pool = float(np.nanmedian(sk[fr_col])) if len(sk) else 0.05
    vid = sub["DecoderId"].astype(str)
    p = pd.to_numeric(vid.map(sk[det_col]), errors="coerce")
    f = pd.to_numeric(vid.map(sk[fr_col]), errors="coerce")
    ledger.flag(
        "consensus",
        "answers by a volunteer with no skill estimate",
        int(p.isna().sum()),
        kept_as="with the pool's median skill",
    )
    p_arr = np.clip(p.fillna(p_pool).to_numpy(float), 0.01, 0.99)
    f_arr = np.maximum(f.fillna(f_pool).to_numpy(float), 1e-3)
    y = pd.to_numeric(sub[category]).to_numpy().astype(int)
    codes, ids = pd.factorize(sub["PanoramaId"], sort=True)
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
    n_max = int(max(2 * y.max() + 4, 8)) if n_max is None else n_max
    if n_max < y.max():
        raise OptionError(f"n_max = {n_max} is below the largest answer {y.max()}")
    loglik = np.add.reduceat(_answer_loglik(y, p_arr, f_arr, n_max), starts, axis=0)
    prior = np.full(n_max + 1, 1.0 / (n_max + 1))
    post = np.zeros_like(loglik)
    for k in range(max(em_iter, 1) + 1):
        lp = loglik + np.log(np.maximum(prior, 1e-300))[None, :]
        w = np.exp(lp - lp.max(axis=1, keepdims=True))
        post = w / w.sum(axis=1, keepdims=True)
        if k < max(em_iter, 1):
            prior = post.mean(axis=0)
    grid = np.arange(n_max + 1)
    med = sub.groupby("PanoramaId", sort=True)[category].median().to_numpy(float)
    out = pd.DataFrame(
        {
            "PanoramaId": np.asarray(ids),
            "n_answers": np.bincount(codes),
            "median": med,
            "consensus": post.argmax(axis=1),
            "posterior_mean": post @ grid,
        }
    )
    out.attrs["ledger"] = ledger
    out.attrs["prior"] = prior
    return out
