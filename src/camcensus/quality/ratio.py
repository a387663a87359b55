"""Ratio of the decoders' total to the experts' total, from a stratified review sample.

The quantity is Amnesty's check (methodology note, section 1.4.2, "Comparison of reference to
decoders using weighted bootstrap"): ``R = sum of the decoders' medians / sum of the reference
counts`` over the panoramas of the design's strata. A ratio below 1 says the decoders undercount.

Methods (each returns a :class:`RatioEstimate`; the point estimate is always the weighted,
Horvitz-Thompson ratio ``R = sum(w x) / sum(w y)``):

``"bootstrap"`` -- Amnesty's weighted bootstrap, as the note describes it ("bootstrapping the
    intersections, using a weighted bootstrap taking into account the importance sampling
    weights"): each of ``n_boot`` resamples draws ``n`` reviewed panoramas *with replacement*,
    panorama ``i`` with probability ``w_i / sum(w)``; the resample's ratio is the unweighted
    ``sum(x*) / sum(y*)`` (the weights are spent in the selection); the interval is the
    ``(1 - level)/2`` and ``(1 + level)/2`` percentiles (linear interpolation) of the resample
    ratios. A resample with ``sum(y*) = 0`` has ratio ``+inf`` (kept) or, when ``sum(x*) = 0``
    too, no ratio (left out, counted in ``details["undefined"]``). This resampling ignores the
    strata (a resample does not keep ``n_h`` per stratum) and so measures a different, larger
    variability than the design's.
``"linearization"`` -- the design-based variance of the combined ratio estimator under
    stratified simple random sampling without replacement (Taylor linearisation; Cochran 1977,
    *Sampling Techniques*, 6.11; Sarndal, Swensson & Wretman 1992, 5.6):
    ``V = (1 / Y^2) sum_h N_h^2 (1 - n_h / N_h) s_eh^2 / n_h`` with ``e_i = x_i - R y_i``,
    ``s_eh^2`` the sample variance (``ddof = 1``) of ``e`` in stratum ``h`` and ``Y`` the
    weighted total of ``y``; interval ``R +- t_{n - H} sqrt(V)`` (clipped at 0), ``H`` the
    number of strata. A stratum with a single review contributes 0 unless it is the whole
    stratum (counted in ``details["single_review_strata"]``). By default a stratum none of
    whose reviews differs from the decoders' value has ``s_eh^2`` at least ``R^2 p (1 - p)``,
    ``p = (1/2) / (n_h + 1)`` the Jeffreys posterior mean of the share of such differences
    (``variance_floor``; counted in ``details["floored_strata"]``): a stratum of rare misses
    whose reviews saw none would otherwise claim no variance.
``"bayes"`` -- a Bayesian ratio: in each stratum the reference counts of the panoramas not
    reviewed are Poisson with mean ``lambda_h``, Jeffreys prior ``Gamma(1/2, 0)``, so
    ``lambda_h | data ~ Gamma(1/2 + sum y, n_h)``; each draw adds the reviewed counts and a
    Poisson draw of the ``N_h - n_h`` others (finite-population posterior predictive). The
    decoders' stratum total is taken as known, ``X_h`` (``population_x``) or else ``N_h`` times
    the stratum's mean ``x`` (exact when the strata are the decoders' median, as Amnesty's).
    Interval: equal-tailed posterior quantiles.
``"model_assisted"`` -- a model-assisted (GREG) estimator of the reference total (Sarndal,
    Swensson & Wretman 1992, 6.5-6.7): every panorama of the design's population has a
    prediction ``mu_i`` of its reference count (from the latent-count model of the volunteers'
    answers, :func:`latent_predictions`), and ``Y = M + sum_s w_i (y_i - b mu_i)`` with ``M =
    b sum_U mu_i`` (``population_prediction``) and ``b = 1`` (``assisted="difference"``) or
    ``b = sum_s w y / sum_s w mu`` (``assisted="ratio"``: the predictions' scale is taken from
    the sample). The point estimate of this method is ``R = X / Y`` with ``X`` the decoders'
    total (``population_x`` when given, else ``sum w x``). Its variance is the stratified
    variance of the linearised residuals ``z_i = x_i - R (y_i - b mu_i)`` (as for
    ``"linearization"``); the interval ``[R / (1 + t cv), R / (1 - t cv)]`` (``cv = se / R``)
    is the inverse of the symmetric interval on ``Y`` (exact when ``X`` is known, as in
    Amnesty's strata where ``x`` is constant within a stratum; ``high = inf`` when ``t cv >=
    1``). A stratum's residual variance is floored (``variance_floor``) as for
    ``"linearization"``, or at the predictions' variance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from camcensus._errors import ContractError, OptionError
from camcensus.io.decode import CATEGORIES
from camcensus.quality.latent import LatentFit

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "RatioEstimate",
    "decoders_summary",
    "latent_predictions",
    "ratio_estimates",
    "ratio_table",
    "review_sample",
]

METHODS: tuple[str, ...] = ("bootstrap", "linearization", "bayes", "model_assisted")
"""Every method :func:`ratio_estimates` knows."""

DEFAULT_METHODS: tuple[str, ...] = ("bootstrap", "linearization", "bayes")
"""Methods run by default (``model_assisted`` needs predictions)."""


@dataclass(frozen=True)
class RatioEstimate:
    """One interval on the ratio of the decoders' total to the reference total."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int
    std_error: float = float("nan")
    details: dict[str, object] = field(default_factory=dict)


def decoders_summary(
    submissions: pd.DataFrame, how: Literal["median", "mean"] = "median"
) -> pd.DataFrame:
    """Return each panorama's median (or mean) of the volunteers' counts.

    Parameters
    ----------
    submissions
        One row per volunteer answer: ``PanoramaId`` and count columns (``attached_street``,
        ...). Every answer of a panorama is used (pick Amnesty's 3 first if that is wanted).
    how
        ``"median"`` (Amnesty's count) or ``"mean"`` (Amnesty's check, section 1.4.2).

    Returns
    -------
    pandas.DataFrame
        ``PanoramaId`` and ``<category>_<how>`` for each count category present.
    """
    if how not in ("median", "mean"):
        raise OptionError(f"how={how!r} is not 'median' or 'mean'")
    if "PanoramaId" not in submissions.columns:
        raise ContractError("submissions lack 'PanoramaId'; map IntersectionId to PanoramaId first")
    cols = [c for c in CATEGORIES if c in submissions.columns]
    if not cols:
        raise ContractError(f"submissions have none of the count columns {list(CATEGORIES)}")
    grouped = submissions.groupby(submissions["PanoramaId"].astype(str))[cols]
    out = grouped.median() if how == "median" else grouped.mean()
    out.columns = [f"{c}_{how}" for c in cols]
    return out.reset_index()


def review_sample(
    plan: pd.DataFrame,
    reviews: pd.DataFrame,
    *,
    category: str = "attached_street",
    decoders: pd.Series | None = None,
) -> pd.DataFrame:
    """Join a plan and its reviews into the sample :func:`ratio_estimates` takes.

    Parameters
    ----------
    plan
        From :func:`camcensus.quality.design.plan_review` or ``read_plan``.
    reviews
        ``PanoramaId`` and the reference count ``category``.
    category
        Count category compared.
    decoders
        The decoders' value per panorama (a Series indexed by ``PanoramaId``), e.g. the mean
        from :func:`decoders_summary`; by default the plan's ``<category>_median``.

    Returns
    -------
    pandas.DataFrame
        ``PanoramaId, stratum, stratum_size, weight, decoders, reference``. Panoramas of the
        plan without a review are left out and the weights of their stratum become
        ``N_h / (reviews received in h)`` (non-response within strata); reviews of panoramas
        not in the plan are left out. Both are counted in ``attrs["excluded"]``.
    """
    for col in ("PanoramaId", "stratum", "weight"):
        if col not in plan.columns:
            raise ContractError(f"the plan lacks {col!r}; make it with plan_review()")
    if category not in reviews.columns:
        raise ContractError(
            f"the reviews lack the reference count {category!r}; columns: {list(reviews.columns)}"
        )
    p = plan.copy()
    p["PanoramaId"] = p["PanoramaId"].astype(str)
    if "stratum_size" not in p.columns:
        p["stratum_size"] = p.groupby("stratum")["weight"].transform("sum").round()
    if decoders is not None:
        p["decoders"] = p["PanoramaId"].map(decoders.set_axis(decoders.index.astype(str)))
    else:
        med = f"{category}_median"
        if med not in p.columns:
            raise ContractError(f"the plan lacks {med!r}; pass decoders= (a Series by PanoramaId)")
        p["decoders"] = pd.to_numeric(p[med], errors="coerce")
    ref = pd.Series(
        pd.to_numeric(reviews[category], errors="coerce").to_numpy(),
        index=reviews["PanoramaId"].astype(str),
    )
    p["reference"] = p["PanoramaId"].map(ref)
    excluded: dict[str, int] = {}
    missing = p["reference"].isna() | p["decoders"].isna()
    if missing.any():
        excluded["planned but not reviewed (or no decoders' value)"] = int(missing.sum())
    extra = ~ref.index.isin(p["PanoramaId"])
    if extra.any():
        excluded["reviewed but not in the plan"] = int(extra.sum())
    s = p.loc[~missing, ["PanoramaId", "stratum", "stratum_size", "decoders", "reference"]].copy()
    s["weight"] = s["stratum_size"] / s.groupby("stratum")["PanoramaId"].transform("size")
    s = s[["PanoramaId", "stratum", "stratum_size", "weight", "decoders", "reference"]]
    s = s.reset_index(drop=True)
    s.attrs["excluded"] = excluded
    s.attrs["category"] = category
    return s


def _columns(sample: pd.DataFrame, x: str, y: str, strata: str, weight: str) -> list[str]:
    missing = [c for c in (x, y, strata, weight) if c not in sample.columns]
    if missing:
        raise ContractError(
            f"the sample lacks columns {missing}; it needs the decoders' value ({x!r}), the "
            f"reference ({y!r}), the stratum ({strata!r}) and the weight ({weight!r}) "
            "(review_sample() makes it)"
        )
    return missing


def _bootstrap(
    xv: np.ndarray, yv: np.ndarray, w: np.ndarray, level: float, n_boot: int, seed: int
) -> tuple[float, float, dict[str, object]]:
    rng = np.random.default_rng(seed)
    n = len(xv)
    p = w / w.sum()
    idx = rng.choice(n, size=(n_boot, n), replace=True, p=p)
    sx, sy = xv[idx].sum(axis=1), yv[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = sx / sy
    undefined = int(np.isnan(r).sum())
    r = np.sort(r[~np.isnan(r)])
    if len(r) == 0:
        return float("nan"), float("nan"), {"undefined": undefined, "infinite": 0}
    q = np.array([(1 - level) / 2, (1 + level) / 2])
    # Linear interpolation between order statistics; between two +inf it is +inf.
    pos = q * (len(r) - 1)
    lo_i, hi_i = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    out = []
    for k in range(2):
        a, b = r[lo_i[k]], r[hi_i[k]]
        out.append(
            float(
                a if a == b or (np.isinf(b) and np.isinf(a)) else a + (b - a) * (pos[k] - lo_i[k])
            )
        )
    return (
        out[0],
        out[1],
        {
            "undefined": undefined,
            "infinite": int(np.isinf(r).sum()),
            "median": float(np.median(r)),
            "n_boot": int(n_boot),
        },
    )


def _jeffreys_floor(xv: np.ndarray, yv: np.ndarray, m: np.ndarray, ratio: float) -> float:
    """Smallest residual variance a stratum's reviews may claim (see ``variance_floor``)."""
    k = int((yv[m] != xv[m]).sum())
    rate = (k + 0.5) / (int(m.sum()) + 1.0)
    return ratio**2 * rate * (1.0 - rate)


def _stratified_variance(
    z: np.ndarray,
    h: np.ndarray,
    size: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    floor: Callable[[np.ndarray], float] | None,
) -> tuple[float, np.ndarray, int, int]:
    """``sum_h N_h^2 (1 - n_h/N_h) s2_h / n_h`` of the residual ``z`` (without replacement).

    A stratum where no review differs from the decoders' value (``x == y``) gets at least
    ``floor(mask)`` as its ``s2_h`` when ``floor`` is given. Returns the variance, the stratum
    labels, the strata with a single review (no ``s2``; left out) and the floored strata.
    """
    var = 0.0
    single, floored = 0, 0
    labels = pd.unique(h)
    for lab in labels:
        m = h == lab
        n_h = int(m.sum())
        big_n = float(size[m][0])
        if n_h < 2:
            if n_h < big_n:
                single += 1
            continue
        s2 = float(np.var(z[m], ddof=1))
        if floor is not None and n_h < big_n and not (yv[m] != xv[m]).any():
            low = floor(m)
            if low > s2:
                s2, floored = low, floored + 1
        var += big_n**2 * (1 - n_h / big_n) * s2 / n_h
    return var, labels, single, floored


def _linearization(
    xv: np.ndarray,
    yv: np.ndarray,
    w: np.ndarray,
    h: np.ndarray,
    size: np.ndarray,
    ratio: float,
    level: float,
    floor: str = "none",
) -> tuple[float, float, float, dict[str, object]]:
    e = xv - ratio * yv
    big_y = float((w * yv).sum())
    var, labels, single, floored = _stratified_variance(
        e,
        h,
        size,
        xv,
        yv,
        None if floor == "none" else (lambda m: _jeffreys_floor(xv, yv, m, ratio)),
    )
    var /= big_y**2
    se = float(np.sqrt(var))
    df = max(len(xv) - len(labels), 1)
    t = float(sps.t.ppf((1 + level) / 2, df))
    return (
        se,
        max(ratio - t * se, 0.0),
        ratio + t * se,
        {
            "df": df,
            "single_review_strata": single,
            "floored_strata": floored,
            "strata": len(labels),
        },
    )


def _bayes(
    xv: np.ndarray,
    yv: np.ndarray,
    h: np.ndarray,
    size: np.ndarray,
    level: float,
    draws: int,
    seed: int,
    population_x: Mapping[str, float] | None,
) -> tuple[float, float, dict[str, object]]:
    rng = np.random.default_rng(seed)
    big_x = 0.0
    y_draws = np.zeros(draws)
    for lab in pd.unique(h):
        m = h == lab
        n_h = int(m.sum())
        big_n = float(size[m][0])
        if population_x is not None and str(lab) in population_x:
            big_x += float(population_x[str(lab)])
        else:
            big_x += big_n * float(xv[m].mean())
        sum_y = float(yv[m].sum())
        rest = big_n - n_h
        lam = rng.gamma(0.5 + sum_y, 1.0 / n_h, size=draws)
        y_draws += sum_y + (rng.poisson(lam * rest) if rest > 0 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = big_x / y_draws
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return (
        float(lo),
        float(hi),
        {
            "posterior_median": float(np.median(r)),
            "draws": int(draws),
            "decoders_total": big_x,
            "prior": "Jeffreys Gamma(1/2, 0) on each stratum's Poisson mean of the reference",
        },
    )


def _model_assisted(
    xv: np.ndarray,
    yv: np.ndarray,
    mu: np.ndarray,
    sd_mu: np.ndarray | None,
    floor_kind: str,
    w: np.ndarray,
    h: np.ndarray,
    size: np.ndarray,
    big_x: float,
    x_known: bool,
    m_total: float,
    assisted: str,
    level: float,
) -> tuple[float, float, float, float, dict[str, object]]:
    """GREG ratio ``X / Y``: estimate, standard error, low, high and details."""
    if assisted == "difference":
        b = 1.0
    else:
        wmu = float((w * mu).sum())
        b = float((w * yv).sum()) / wmu if wmu > 0 else 1.0
    e = yv - b * mu
    big_y = b * m_total + float((w * e).sum())
    if big_y <= 0:
        nan = float("nan")
        return nan, nan, nan, nan, {"reason": "the model-assisted reference total is <= 0"}
    ratio = big_x / big_y
    # Linearised residual of the ratio; the decoders' part drops out when X is known.
    z = -ratio * e if x_known else xv - ratio * e

    def model_floor(m: np.ndarray) -> float:
        if floor_kind == "model" and sd_mu is not None:
            return float(np.mean((ratio * b * sd_mu[m]) ** 2))
        return _jeffreys_floor(xv, yv, m, ratio)

    var, labels, single, floored = _stratified_variance(
        z, h, size, xv, yv, None if floor_kind == "none" else model_floor
    )
    se = float(np.sqrt(var)) / big_y
    df = max(len(xv) - len(labels), 1)
    t = float(sps.t.ppf((1 + level) / 2, df))
    cv = se / ratio if ratio > 0 else float("inf")
    low = ratio / (1 + t * cv)
    high = ratio / (1 - t * cv) if t * cv < 1 else float("inf")
    return (
        ratio,
        se,
        low,
        high,
        {
            "df": df,
            "single_review_strata": single,
            "floored_strata": floored,
            "strata": len(labels),
            "assisted": assisted,
            "slope": b,
            "reference_total": big_y,
            "decoders_total": big_x,
            "prediction_total": m_total,
        },
    )


def ratio_estimates(
    sample: pd.DataFrame,
    *,
    x: str = "decoders",
    y: str = "reference",
    strata: str = "stratum",
    weight: str = "weight",
    stratum_size: str = "stratum_size",
    methods: Sequence[str] = DEFAULT_METHODS,
    level: float = 0.95,
    n_boot: int = 2000,
    population_x: Mapping[str, float] | None = None,
    prediction: str = "prediction",
    prediction_sd: str = "prediction_sd",
    population_prediction: float | None = None,
    assisted: Literal["difference", "ratio"] = "difference",
    variance_floor: Literal["jeffreys", "model", "none"] = "jeffreys",
    seed: int = 0,
) -> list[RatioEstimate]:
    """Return the weighted ratio ``sum(w x) / sum(w y)`` with one interval per method.

    Parameters
    ----------
    sample
        One row per reviewed panorama: the decoders' value ``x`` (median, or mean for Amnesty's
        check), the reference ``y``, the ``stratum``, the ``weight`` (``N_h / n_h``) and,
        optionally, ``stratum_size`` (``N_h``; else the sum of the stratum's weights).
    methods
        Any of ``"bootstrap"`` (Amnesty's weighted bootstrap), ``"linearization"`` and
        ``"bayes"`` (see the module's docstring for exactly what each computes).
    level
        Confidence (credibility) level of the intervals.
    n_boot
        Resamples of the bootstrap and posterior draws of the Bayesian ratio.
    population_x
        Known decoders' total per stratum (the Bayesian and model-assisted ratios'
        numerator); optional.
    prediction, prediction_sd
        Columns of the sample with each reviewed panorama's prediction of its reference count
        (and the prediction's sd) for ``"model_assisted"``; the prediction must not use the
        panorama's own review (see :func:`latent_predictions`).
    population_prediction
        Sum of the predictions over every panorama of the design's strata (``M``); needed by
        ``"model_assisted"``.
    assisted
        ``"difference"`` (the predictions as they are) or ``"ratio"`` (their scale fitted on
        the sample) for ``"model_assisted"``.
    variance_floor
        Smallest residual variance a stratum of ``"linearization"`` and ``"model_assisted"``
        may claim when none of its reviews differs from the decoders' value (a stratum of rare
        misses whose reviews saw none would otherwise claim a variance of 0; a stratum
        reviewed in full has none). ``"jeffreys"`` (default): ``R^2 p (1 - p)`` with ``p = (1/2)
        / (n_h + 1)`` the Jeffreys posterior mean of the share of reviews where the reference
        differs (none of ``n_h``): conservative when that share is well below ``1 / n_h``.
        ``"model"`` (``"model_assisted"`` with ``prediction_sd``): the predictions' mean
        variance ``(R b sd_i)^2`` over the stratum's reviews (else Jeffreys); it uses every
        volunteer answer, and was the better floor on the synthetic city
        (``benchmarks/bench_quality_ratio.py``). ``"none"``: the sample variance as it is.
    seed
        Seed of the bootstrap and of the posterior draws.
    """
    _columns(sample, x, y, strata, weight)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise OptionError(f"methods {unknown} unknown; choose among {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise OptionError(f"level={level}: pass a level in (0, 1), e.g. 0.95")
    if variance_floor not in ("jeffreys", "model", "none"):
        raise OptionError(f"variance_floor={variance_floor!r} is not 'jeffreys', 'model' or 'none'")
    if assisted not in ("difference", "ratio"):
        raise OptionError(f"assisted={assisted!r} is not 'difference' or 'ratio'")
    if "model_assisted" in methods:
        if prediction not in sample.columns:
            raise ContractError(
                f"method 'model_assisted' needs the sample's {prediction!r} column (each "
                "reviewed panorama's predicted reference count, not using its own review); "
                "pass predictions= to ratio_table() or add the column (latent_predictions())"
            )
        if population_prediction is None or not np.isfinite(population_prediction):
            raise OptionError(
                "method 'model_assisted' needs population_prediction=, the sum of the "
                "predictions over every panorama of the design's strata"
            )
    if len(sample) == 0:
        raise OptionError("the sample is empty: no reviewed panorama to compare")
    xv = pd.to_numeric(sample[x], errors="coerce").to_numpy(dtype="float64")
    yv = pd.to_numeric(sample[y], errors="coerce").to_numpy(dtype="float64")
    w = pd.to_numeric(sample[weight], errors="coerce").to_numpy(dtype="float64")
    bad = ~(np.isfinite(xv) & np.isfinite(yv) & np.isfinite(w) & (w > 0))
    if bad.any():
        raise ContractError(
            f"{int(bad.sum())} sample rows have a missing or non-numeric {x!r}, {y!r} or "
            f"{weight!r} (first at row {int(np.flatnonzero(bad)[0])}); review_sample() leaves "
            "unreviewed panoramas out"
        )
    h = sample[strata].astype(str).to_numpy()
    if stratum_size in sample.columns:
        size = pd.to_numeric(sample[stratum_size], errors="coerce").to_numpy(dtype="float64")
    else:
        size = pd.Series(w).groupby(h).transform("sum").round().to_numpy(dtype="float64")
    big_y = float((w * yv).sum())
    ratio = float((w * xv).sum() / big_y) if big_y > 0 else float("inf")
    n = len(sample)
    out: list[RatioEstimate] = []
    for method in methods:
        if method == "bootstrap":
            lo, hi, det = _bootstrap(xv, yv, w, level, n_boot, seed)
            out.append(RatioEstimate(ratio, lo, hi, level, method, n, details=det))
        elif method == "linearization":
            if big_y <= 0:
                out.append(
                    RatioEstimate(
                        ratio,
                        float("nan"),
                        float("nan"),
                        level,
                        method,
                        n,
                        details={"reason": "no reference camera in the sample"},
                    )
                )
                continue
            se, lo, hi, det = _linearization(xv, yv, w, h, size, ratio, level, variance_floor)
            out.append(RatioEstimate(ratio, lo, hi, level, method, n, std_error=se, details=det))
        elif method == "bayes":
            lo, hi, det = _bayes(xv, yv, h, size, level, n_boot, seed, population_x)
            out.append(RatioEstimate(ratio, lo, hi, level, method, n, details=det))
        else:
            mu = pd.to_numeric(sample[prediction], errors="coerce").to_numpy(dtype="float64")
            if not np.isfinite(mu).all():
                raise ContractError(
                    f"{int((~np.isfinite(mu)).sum())} sample rows have no {prediction!r}; every "
                    "reviewed panorama needs a prediction"
                )
            sd_mu = None
            if variance_floor == "model" and prediction_sd in sample.columns:
                sd_mu = pd.to_numeric(sample[prediction_sd], errors="coerce").to_numpy(
                    dtype="float64"
                )
                sd_mu = np.where(np.isfinite(sd_mu), sd_mu, 0.0)
            x_known = population_x is not None or _constant_within(xv, h)
            big_x = (
                float(sum(population_x.values()))
                if population_x is not None
                else float((w * xv).sum())
            )
            est, se, lo, hi, det = _model_assisted(
                xv,
                yv,
                mu,
                sd_mu,
                variance_floor,
                w,
                h,
                size,
                big_x,
                x_known,
                float(population_prediction),  # type: ignore[arg-type]
                assisted,
                level,
            )
            out.append(RatioEstimate(est, lo, hi, level, method, n, std_error=se, details=det))
    return out


def _constant_within(xv: np.ndarray, h: np.ndarray) -> bool:
    """Whether ``x`` is the same for every review of a stratum (then ``sum w x`` is exact)."""
    spread = pd.Series(xv).groupby(h).agg(lambda v: float(v.max() - v.min()))
    return bool((spread == 0).all())


def latent_predictions(
    submissions: pd.DataFrame,
    *,
    category: str = "attached_street",
    reference: pd.DataFrame | None = None,
    how: Literal["leave_own_out", "crossfit", "no_reference"] = "leave_own_out",
    folds: int = 2,
    draws: int = 300,
    burn_in: int = 100,
    seed: int = 0,
    fit: LatentFit | None = None,
) -> pd.DataFrame:
    """Return every panorama's prediction of its reference count from the volunteers' answers.

    The predictions come from the latent-count model
    (:func:`camcensus.quality.latent.fit_latent`) and feed the ``"model_assisted"`` ratio. A
    reviewed panorama's prediction must not use its own review: the model fixes ``N_i`` at the
    reference there, and its residual would be 0, so the variance would be understated.

    Parameters
    ----------
    submissions
        One row per volunteer answer: ``PanoramaId``, ``DecoderId`` and ``category``.
    category
        Count column.
    reference
        Expert reviews (``PanoramaId`` and ``category``).
    how
        ``"leave_own_out"``: one fit with every review; a reviewed panorama's prediction is
        the posterior mean of ``N_i`` given its answers alone, with the fit's volunteer rates
        and prior of ``N`` (its review enters only through the shared parameters, 1 of ``n``).
        ``"crossfit"``: ``folds`` fits, each leaving one fold of the reviews out and predicting
        it; the other panoramas get the mean of the fits. ``"no_reference"``: one fit without
        reviews (the scale then rests on the prior: use ``assisted="ratio"``).
    folds
        Number of folds of ``"crossfit"``.
    draws, burn_in, seed
        Passed to ``fit_latent``.
    fit
        A fit with ``reference`` already made (``"leave_own_out"`` only): reused, not refitted.

    Returns
    -------
    pandas.DataFrame
        ``PanoramaId``, ``prediction``, ``prediction_sd``, ``reviewed``.
    """
    from camcensus.quality.latent import fit_latent

    if how not in ("leave_own_out", "crossfit", "no_reference"):
        raise OptionError(f"how={how!r} is not 'leave_own_out', 'crossfit' or 'no_reference'")
    if how != "no_reference" and (reference is None or len(reference) == 0):
        raise OptionError(f"how={how!r} needs reference= (the expert reviews)")

    def one(ref: pd.DataFrame | None) -> LatentFit:
        return fit_latent(
            submissions, category=category, reference=ref, draws=draws, burn_in=burn_in, seed=seed
        )

    if how == "no_reference":
        f0 = one(None)
        out = f0.panoramas[["PanoramaId", "posterior_mean", "posterior_sd"]].copy()
        out.columns = pd.Index(["PanoramaId", "prediction", "prediction_sd"])
        out["reviewed"] = False
        return out.reset_index(drop=True)
    assert reference is not None
    ref = reference.assign(PanoramaId=reference["PanoramaId"].astype(str))
    if how == "crossfit":
        if folds < 2:
            raise OptionError(f"folds={folds}: use at least 2 folds")
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(len(ref)) % folds
        preds, sds = [], []
        held: dict[str, tuple[float, float]] = {}
        for k in range(folds):
            fk = one(ref[fold_of != k])
            pk = fk.panoramas.set_index(fk.panoramas["PanoramaId"].astype(str))
            for pid in ref.loc[fold_of == k, "PanoramaId"]:
                if pid in pk.index:
                    row = pk.loc[pid]
                    held[pid] = (float(row["posterior_mean"]), float(row["posterior_sd"]))
            preds.append(pk["posterior_mean"])
            sds.append(pk["posterior_sd"] ** 2)
        mean = pd.concat(preds, axis=1).mean(axis=1)
        sd = np.sqrt(pd.concat(sds, axis=1).mean(axis=1))
        for pid, (m, v) in held.items():
            mean[pid], sd[pid] = m, v
        return pd.DataFrame(
            {
                "PanoramaId": mean.index.to_numpy(),
                "prediction": mean.to_numpy(),
                "prediction_sd": sd.to_numpy(),
                "reviewed": mean.index.isin(list(held)),
            }
        )
    f1 = fit if fit is not None else one(ref)
    pano = f1.panoramas.assign(PanoramaId=f1.panoramas["PanoramaId"].astype(str))
    out = pd.DataFrame(
        {
            "PanoramaId": pano["PanoramaId"].to_numpy(),
            "prediction": pano["posterior_mean"].to_numpy(dtype="float64"),
            "prediction_sd": pano["posterior_sd"].to_numpy(dtype="float64"),
            "reviewed": pano["reviewed"].to_numpy(dtype=bool),
        }
    )
    rev = np.flatnonzero(out["reviewed"].to_numpy())
    if len(rev):
        out.iloc[rev, 1:3] = _own_out(submissions, category, f1, out["PanoramaId"].iloc[rev])
    return out


def _own_out(
    submissions: pd.DataFrame, category: str, fit: LatentFit, ids: pd.Series
) -> np.ndarray:
    """Posterior mean and sd of ``N_i`` from the answers alone, at the fit's parameters."""
    from camcensus.quality.latent import posterior_n

    sub = submissions.assign(PanoramaId=submissions["PanoramaId"].astype(str))
    sub = sub[sub["PanoramaId"].isin(set(ids))].drop_duplicates(["PanoramaId", "DecoderId"])
    vol = fit.volunteers.set_index(fit.volunteers["DecoderId"].astype(str))
    n_max = int(fit.diagnostics.get("n_max", 10))
    grid = np.arange(n_max + 1)
    shape = float(fit.pool["n_prior_shape"])
    prior = sps.nbinom.pmf(grid, shape, shape / (shape + float(fit.pool["n_prior_mean"])))
    out = np.zeros((len(ids), 2))
    groups = dict(tuple(sub.groupby("PanoramaId")))
    for k, pid in enumerate(ids):
        g = groups[pid]
        dec = g["DecoderId"].astype(str)
        ys = np.minimum(pd.to_numeric(g[category]).to_numpy(dtype="int64"), 4096)
        post = posterior_n(
            ys,
            vol["detection"].reindex(dec.to_numpy()).to_numpy(dtype="float64"),
            vol["false_rate"].reindex(dec.to_numpy()).to_numpy(dtype="float64"),
            prior,
        )
        m = float(post @ grid)
        v = float(post @ grid**2) - m * m
        out[k] = m, float(np.sqrt(max(v, 0.0)))
    return out


def ratio_table(
    plan: pd.DataFrame,
    reviews: pd.DataFrame,
    *,
    submissions: pd.DataFrame | None = None,
    categories: Iterable[str] = ("attached_street", "attached_building"),
    methods: Sequence[str] = DEFAULT_METHODS,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    predictions: Mapping[str, pd.Series] | None = None,
    prediction_sd: Mapping[str, pd.Series] | None = None,
    strata: pd.Series | None = None,
    assisted: Literal["difference", "ratio"] = "ratio",
    variance_floor: Literal["jeffreys", "model", "none"] | None = None,
) -> pd.DataFrame:
    """Return every category's ratio (sum of medians, and of means when ``submissions`` is
    given: Amnesty's check) by every method, one row each.

    Parameters
    ----------
    predictions
        ``{category: Series of predicted reference counts by PanoramaId}`` over the design's
        population (e.g. :func:`latent_predictions`); adds the ``"model_assisted"`` method
        for those categories.
    prediction_sd
        The predictions' sd, same shape (the model-assisted variance floor).
    strata
        Stratum label by ``PanoramaId`` of the population: the predictions are summed over
        the panoramas of the plan's strata only. Without it, the predictions must cover
        exactly the design's population (as many panoramas as the plan's stratum sizes).
    assisted
        The model-assisted form (:func:`ratio_estimates`); ``"ratio"`` by default, which
        takes the predictions' scale from the sample.
    variance_floor
        As in :func:`ratio_estimates`; by default ``"model"`` for a category with
        ``prediction_sd`` and ``"jeffreys"`` otherwise.

    Returns
    -------
    pandas.DataFrame
        Columns ``category, decoders ("median"|"mean"), method, estimate, low, high, level,
        n, std_error``.
    """
    means = (
        decoders_summary(submissions, "mean").set_index("PanoramaId")
        if (submissions is not None)
        else None
    )
    rows = []
    for cat in categories:
        if cat not in reviews.columns:
            continue
        kinds: list[tuple[str, pd.Series | None]] = [("median", None)]
        if means is not None and f"{cat}_mean" in means.columns:
            kinds.append(("mean", means[f"{cat}_mean"]))
        has_sd = prediction_sd is not None and cat in prediction_sd
        extra: dict[str, object] = {
            "assisted": assisted,
            "variance_floor": variance_floor or ("model" if has_sd else "jeffreys"),
        }
        cat_methods = list(methods)
        if predictions is not None and cat in predictions:
            mu = predictions[cat].set_axis(predictions[cat].index.astype(str))
            extra["population_prediction"] = _population_total(plan, mu, strata, cat)
            if "model_assisted" not in cat_methods:
                cat_methods.append("model_assisted")
        else:
            cat_methods = [m for m in cat_methods if m != "model_assisted"]
        for how, dec in kinds:
            sample = review_sample(plan, reviews, category=cat, decoders=dec)
            if "population_prediction" in extra:
                sample["prediction"] = sample["PanoramaId"].map(mu)
                if has_sd:
                    assert prediction_sd is not None
                    sd = prediction_sd[cat]
                    sample["prediction_sd"] = sample["PanoramaId"].map(
                        sd.set_axis(sd.index.astype(str))
                    )
            for r in ratio_estimates(
                sample,
                methods=cat_methods,
                level=level,
                n_boot=n_boot,
                seed=seed,
                **extra,  # type: ignore[arg-type]
            ):
                rows.append(
                    {
                        "category": cat,
                        "decoders": how,
                        "method": r.method,
                        "estimate": r.estimate,
                        "low": r.low,
                        "high": r.high,
                        "level": r.level,
                        "n": r.n,
                        "std_error": r.std_error,
                    }
                )
    return pd.DataFrame(rows)


def _population_total(
    plan: pd.DataFrame, mu: pd.Series, strata: pd.Series | None, category: str
) -> float:
    """Sum of the predictions over the plan's strata, checked against the plan's sizes."""
    sizes = plan.attrs.get("strata") or {
        str(h): {"N": int(g["stratum_size"].iloc[0])}
        for h, g in plan.groupby("stratum", sort=False)
        if "stratum_size" in plan.columns
    }
    big_n = int(sum(int(v["N"]) for v in sizes.values()))
    if strata is not None:
        labels = strata.set_axis(strata.index.astype(str)).astype(str)
        labels = labels[labels.isin([str(h) for h in sizes])]
        found = labels.value_counts()
        wrong = {
            str(h): (int(found.get(str(h), 0)), int(v["N"]))
            for h, v in sizes.items()
            if int(found.get(str(h), 0)) != int(v["N"])
        }
        if wrong:
            raise ContractError(
                "the population's strata do not match the plan's stratum sizes "
                f"({{stratum: (found, planned)}} = {wrong}): pass the strata the plan was "
                "drawn on"
            )
        mu = mu.reindex(labels.index)
    if mu.isna().any() or (big_n and len(mu) != big_n):
        raise ContractError(
            f"the {category!r} predictions cover {int(mu.notna().sum())} panoramas of the "
            f"design, whose strata hold {big_n}: pass one prediction per panorama of the "
            "design's strata (or strata= to pick them out of a larger population)"
        )
    return float(mu.sum())
