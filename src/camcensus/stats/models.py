"""The investigation's disparity models (Amnesty's methodology note, section 2; R ``glm``).

All models run on tracts with more than ``min_population`` residents. Coefficients are on the
link scale (log for Poisson, logit for binomial) as R reports them, with ``summary``'s standard
errors and p-values (z for binomial and Poisson, t for quasi-Poisson, gaussian and lm); intervals
are profile-likelihood intervals, as R's ``confint`` gives on a glm (MASS), and t intervals on an
lm. Spatial-check variants (cluster, Conley) are Wald by nature and labelled so.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as sps

from camcensus._errors import Ledger
from camcensus.stats._result import Estimate, ModelResult
from camcensus.stats._warn import attach, recording
from camcensus.stats.profile import Family, glm_from_formula, lm_from_formula

__all__ = [
    "PLACEMENT_FORMULA",
    "STOPS_FORMULA",
    "SURVEILLANCE_BREAKS",
    "borough_year",
    "dispersion_test",
    "model_table",
    "placement_data",
    "placement_logit",
    "placement_poisson",
    "placement_rate",
    "stops_baseline",
    "stops_by_surveillance_bins",
    "stops_glm",
    "stops_interaction_lm",
    "stops_overdispersion_variants",
    "stops_sanity_queens",
]

#: Bin breaks of surveillance level (effective cameras within 200 m per 1,000 residents).
SURVEILLANCE_BREAKS = (0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, np.inf)
_Z = float(sps.norm.ppf(0.975))

#: The baseline stop model (patsy), fitted per borough × year with offset log(popn).
STOPS_FORMULA = "numstops ~ surv + nonwhite_fraction"
#: The placement model (patsy); ``high`` is surv_place above the threshold.
PLACEMENT_FORMULA = "high ~ 0 + C(borough) + C(borough):nonwhite_fraction"


def borough_year(df: pd.DataFrame, borough: str, year: int) -> pd.DataFrame:
    """Return one borough's tracts with ``numstops`` = the stops of ``year``."""
    d = df.loc[df["borough"] == borough].reset_index(drop=True)
    d["numstops"] = d[f"stops_{year}"]
    return d


def stops_glm(d: pd.DataFrame) -> Any:
    """Return the (unfitted) Poisson baseline model of a :func:`borough_year` table; fit it
    once per covariance type wanted (``.fit()``, ``.fit(cov_type="cluster", ...)``)."""
    return smf.glm(STOPS_FORMULA, d, family=sm.families.Poisson(), offset=np.log(d["popn"]))


def placement_data(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Return the tracts with ``high`` = 1 where ``surv_place`` exceeds ``threshold``."""
    return df.assign(high=(df["surv_place"] > threshold).astype(float))


def model_table(
    tracts: pd.DataFrame,
    stops: pd.DataFrame | None = None,
    *,
    min_population: int = 250,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Return the tract table the models use.

    Parameters
    ----------
    tracts
        One row per tract: ``GEOID``, ``borough``, ``popn``, ``popn_black``, ``popn_white``,
        ``popn_hispanic``, ``nonwhite_fraction``, ``eff_cameras``, ``eff_cameras_within_200m``
        (and ``med_income``, geometry, ``nta`` when available).
    stops
        Long table ``GEOID, year, count``; adds ``stops_<year>`` (0 for tracts without stops).
    min_population
        Tracts with at most this population are left out (counted in ``ledger``).

    Returns
    -------
    pandas.DataFrame
        The kept tracts with ``surv`` (eff_cameras_within_200m per 1,000 residents: stop
        questions), ``surv_place`` (eff_cameras per 1,000 residents: placement questions),
        ``black_share`` and the stop columns.
    """
    ledger = ledger if ledger is not None else Ledger()
    df = tracts.copy()
    popn = pd.to_numeric(df["popn"], errors="coerce")
    drop = pd.Series(False, index=df.index)
    # Disjoint reasons, each counted on its own.
    for reason, mask in (
        ("tract population missing", popn.isna()),
        ("tract population negative", popn < 0),
        ("tract population not finite", np.isinf(popn)),
        (f"tract population at most {min_population}", popn.between(0, min_population)),
    ):
        ledger.exclude("models", reason, int(mask.sum()))
        drop |= mask
    df = df.loc[~drop]
    no_coverage = df["eff_cameras"].isna() | df["eff_cameras_within_200m"].isna()
    ledger.exclude(
        "models",
        "no camera coverage (eff_cameras or eff_cameras_within_200m missing)",
        int(no_coverage.sum()),
    )
    df = df.loc[~no_coverage]
    no_nwf = df["nonwhite_fraction"].isna()
    ledger.exclude(
        "models", "no Black, Hispanic or White residents (no non-white fraction)", int(no_nwf.sum())
    )
    df = df.loc[~no_nwf].copy()
    df["surv"] = df["eff_cameras_within_200m"] / df["popn"] * 1000
    df["surv_place"] = df["eff_cameras"] / df["popn"] * 1000
    df["black_share"] = df["popn_black"] / df["popn"]
    if stops is not None:
        wide = stops.pivot_table(index="GEOID", columns="year", values="count", aggfunc="sum")
        unknown = set(wide.index) - set(tracts["GEOID"])
        if unknown:
            n = int(stops.loc[stops["GEOID"].isin(unknown), "count"].sum())
            ledger.exclude("models", "stops in a tract not in the tract table", n)
        for year in wide.columns:
            df[f"stops_{int(year)}"] = df["GEOID"].map(wide[year]).fillna(0.0).to_numpy()
    return df.reset_index(drop=True)


def _estimates(
    fit: object, n: int, method: str, names: Sequence[str] | None = None
) -> tuple[Estimate, ...]:
    params = pd.Series(fit.params)  # type: ignore[attr-defined]
    bse = pd.Series(fit.bse)  # type: ignore[attr-defined]
    pvals = pd.Series(fit.pvalues)  # type: ignore[attr-defined]
    out = []
    for i, term in enumerate(params.index):
        est, se = float(params.iloc[i]), float(bse.iloc[i])
        label = names[i] if names is not None else str(term)
        out.append(
            Estimate(label, est, se, est - _Z * se, est + _Z * se, float(pvals.iloc[i]), n, method)
        )
    return tuple(out)


def _clean_term(term: str) -> str:
    return (
        term.replace("C(borough)[", "borough[")
        .replace("C(bin)[", "bin[")
        .replace("C(nwfC)[", "nwfC[")
    )


def _glm(
    formula: str,
    df: pd.DataFrame,
    family: Family,
    *,
    name: str,
    r_formula: str,
    offset: np.ndarray | None = None,
    group: dict[str, object] | None = None,
    interval: str = "profile",
) -> ModelResult:
    """Fit as R's ``glm`` (:mod:`camcensus.stats.profile`); fitting problems (separation,
    no convergence) are recorded with the model: a reader of the report must see them next to
    the coefficients they spoil."""
    with recording() as caught:
        fit = glm_from_formula(formula, df, family=family, offset=offset)
        res = fit.to_result(name=name, formula=r_formula, interval=interval, group=group)
    return attach(res, caught)


def r_cut_breaks(x: pd.Series | np.ndarray, k: int = 2) -> tuple[list[float], list[str]]:
    """Return the breaks and labels of R's ``cut(x, k)``: ``k`` equal-width intervals over the
    range of ``x`` (missing values ignored), the outer breaks moved out by range/1000, labels
    ``(a,b]`` formatted with 3 significant digits (more when needed to tell them apart)."""
    v = np.asarray(x, dtype=float)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    dx = hi - lo
    breaks = list(np.linspace(lo, hi, k + 1))
    breaks[0], breaks[-1] = lo - dx / 1000, hi + dx / 1000
    for digits in range(3, 13):
        shown = [f"{b:.{digits}g}" for b in breaks]
        if len(set(shown)) == len(shown):
            break
    labels = [f"({a},{b}]" for a, b in itertools.pairwise(shown)]
    return breaks, labels


def bin_labels(breaks: Sequence[float]) -> list[str]:
    """Return R's ``cut(..., include.lowest = TRUE)`` labels, e.g. ``[0,0.25]``, ``(0.25,0.5]``."""

    def fmt(v: float) -> str:
        return "Inf" if np.isinf(v) else f"{v:g}"

    labels = [f"({fmt(a)},{fmt(b)}]" for a, b in itertools.pairwise(breaks)]
    labels[0] = "[" + labels[0][1:]
    return labels


def stops_by_surveillance_bins(df: pd.DataFrame, *, year: int = 2019) -> ModelResult:
    """Stops per 1,000 residents by surveillance bin (methodology note §2, non-parametric).

    Poisson ``numstops ~ 0 + bin`` with offset log(popn/1000); bins of ``surv`` cut at
    :data:`SURVEILLANCE_BREAKS`, lowest bin closed. ``extras["rates"]`` holds exp(coefficient)
    per bin with its 95% profile-likelihood interval, tracts, stops and residents (Amnesty's
    plot drew estimate ± 1.96 standard errors: ``wald_low``/``wald_high``).
    """
    col = f"stops_{year}"
    d = df.copy()
    labels = bin_labels(SURVEILLANCE_BREAKS)
    binned = pd.cut(
        d["surv"], list(SURVEILLANCE_BREAKS), right=True, include_lowest=True, labels=labels
    )
    d["bin"] = binned.astype(str)
    d["numstops"] = d[col]
    order = list(labels)
    res = _glm(
        "numstops ~ 0 + C(bin)",
        d,
        "poisson",
        name="stops_by_surveillance_bins",
        r_formula="numstops ~ 0 + bin, offset = log(popn/1000), family = poisson",
        offset=np.log(d["popn"].to_numpy() / 1000),
        group={"year": year},
    )
    rates = []
    for c in res.coefficients:
        label = c.term.removeprefix("bin[").removesuffix("]")
        sel = d["bin"] == label
        rates.append(
            {
                "bin": label,
                "rate_per_1000": float(np.exp(c.estimate)),
                "ci_low": float(np.exp(c.ci_low)),
                "ci_high": float(np.exp(c.ci_high)),
                "interval": c.method,
                "wald_low": float(np.exp(c.estimate - 1.96 * c.std_error)),
                "wald_high": float(np.exp(c.estimate + 1.96 * c.std_error)),
                "tracts": int(sel.sum()),
                "stops": float(d.loc[sel, "numstops"].sum()),
                "residents": float(d.loc[sel, "popn"].sum()),
            }
        )
    rates.sort(key=lambda r: order.index(r["bin"]) if r["bin"] in order else 99)
    res.extras["rates"] = rates
    return res


def stops_baseline(
    df: pd.DataFrame,
    *,
    years: Sequence[int] = (2019, 2020),
    boroughs: Sequence[str] | None = None,
    skip: Sequence[tuple[str, int]] = (),
) -> list[ModelResult]:
    """Poisson ``numstops ~ surv + nonwhite_fraction``, offset log(popn), per borough × year
    (methodology note p.36, ``fit0``); borough-years in ``skip`` (no stops) are left out."""
    out = []
    for year in years:
        for b in boroughs or sorted(df["borough"].unique()):
            if (b, year) in skip:
                continue
            d = borough_year(df, b, year)
            out.append(
                _glm(
                    STOPS_FORMULA,
                    d,
                    "poisson",
                    name="stops_baseline",
                    r_formula="numstops ~ surv + nonwhite_fraction, offset = log(popn), "
                    "family = poisson",
                    offset=np.log(d["popn"].to_numpy()),
                    group={"borough": b, "year": year},
                )
            )
    return out


def stops_sanity_queens(
    df: pd.DataFrame, *, year: int = 2019, borough: str = "Queens"
) -> ModelResult:
    """The baseline model's sanity check (Amnesty p.36: Queens 2019): a quadratic surveillance
    term and the Black share of residents added."""
    d = borough_year(df, borough, year)
    return _glm(
        "numstops ~ surv + nonwhite_fraction + I(surv ** 2) + black_share",
        d,
        "poisson",
        name="stops_sanity_queens_2019",
        r_formula="numstops ~ surv + I(surv^2) + nonwhite_fraction + I(popn.black/popn), "
        "offset = log(popn), family = poisson",
        offset=np.log(d["popn"].to_numpy()),
        group={"borough": borough, "year": year},
    )


def stops_interaction_lm(
    df: pd.DataFrame,
    *,
    year: int = 2019,
    exclude: Sequence[str] = (),
    nonwhite_all: pd.Series | np.ndarray | None = None,
) -> ModelResult:
    """Population-weighted linear ``stoprate ~ nwfC * surv`` (methodology note p.37).

    nwfC = the non-white fraction cut into 2 equal-width bins as R's ``cut(x, 2)`` does on the
    whole table: pass every tract's non-white fraction as ``nonwhite_all`` (Amnesty cut all
    tracts, before leaving out small ones and Manhattan); without it, ``df``'s tracts (before
    ``exclude``) set the range. stoprate = stops per 1,000 residents.
    """
    breaks, labels = r_cut_breaks(df["nonwhite_fraction"] if nonwhite_all is None else nonwhite_all)
    d = df.loc[~df["borough"].isin(exclude)].copy()
    d["stoprate"] = d[f"stops_{year}"] / d["popn"] * 1000
    d["nwfC"] = pd.cut(d["nonwhite_fraction"], breaks, labels=labels, right=True)
    with recording() as caught:
        fit = lm_from_formula("stoprate ~ nwfC * surv", d, weights=d["popn"].to_numpy(dtype=float))
        res = fit.to_result(
            name="stops_interaction_lm",
            formula="stoprate ~ nwfC * surv, weights = popn",
            group={"year": year, "excluded": list(exclude)},
            extras={"nwfC_breaks": breaks},
        )
    return attach(res, caught)


def placement_logit(
    df: pd.DataFrame,
    *,
    threshold: float = 0.2,
    income: bool = False,
    black_hispanic: bool = False,
    ledger: Ledger | None = None,
    interval: str = "profile",
) -> ModelResult:
    """Logistic ``I(surv_place > threshold) ~ 0 + borough + borough:nonwhite_fraction``
    (methodology note p.39, ``fit``).

    The methodology note's text says 0.18, its code 0.2: the default follows the code.
    With ``income=True`` adds ``med_income`` (per dollar, as R; p.40 ``fit2``); tracts without
    it are excluded and counted. With ``black_hispanic=True`` adds
    ``I((popn.black - popn.hispanic)/popn)`` (p.40-41 ``fit3``), as ``black_minus_hispanic``.
    """
    d = placement_data(df, threshold)
    formula = PLACEMENT_FORMULA
    r_formula = f"I(surv > {threshold:g}) ~ 0 + borough + borough:nonwhite_fraction"
    name = "placement_logit"
    if income:
        missing = d["med_income"].isna()
        if ledger is not None:
            ledger.exclude(
                "models", "no median income (placement model with income)", int(missing.sum())
            )
        d = d.loc[~missing]
        formula += " + med_income"
        r_formula += " + med.income"
        name = "placement_logit_income"
    if black_hispanic:
        d = d.assign(black_minus_hispanic=(d["popn_black"] - d["popn_hispanic"]) / d["popn"])
        formula += " + black_minus_hispanic"
        r_formula += " + I((popn.black - popn.hispanic)/popn)"
        name = "placement_logit_black_hispanic" if not income else name + "_black_hispanic"
    res = _glm(
        formula,
        d,
        "binomial",
        name=name,
        r_formula=r_formula + ", family = binomial",
        group={"threshold": threshold},
        interval=interval,
    )
    if income:
        res.extras["n_deleted"] = int(missing.sum())
    return res


def placement_poisson(
    df: pd.DataFrame, *, count: str = "cameras", exposure: str = "panoramas"
) -> ModelResult:
    """Poisson ``cameras ~ nonwhite_fraction`` with offset log(panoramas surveyed): the log-rate
    of public cameras per intersection against the non-white share (beyond the investigation;
    its coefficient is the placement effect the synthetic city is built with)."""
    d = df.loc[df[exposure] > 0].copy()
    d["y"] = d[count]
    return _glm(
        "y ~ nonwhite_fraction",
        d,
        "poisson",
        name="placement_poisson",
        r_formula=f"{count} ~ nonwhite_fraction, offset = log({exposure}), family = poisson",
        offset=np.log(d[exposure].to_numpy(dtype=float)),
    )


def placement_rate(
    df: pd.DataFrame,
    *,
    count: str = "cameras",
    exposure: str = "popn",
    family: Family = "quasipoisson",
) -> ModelResult:
    """Quasi-Poisson ``cameras ~ nonwhite_fraction`` with offset log(residents): the log-rate
    of listed cameras per resident against the non-white share (``camcensus audit``; beyond
    the investigation). Quasi-Poisson because cameras cluster: the dispersion is estimated,
    and the standard errors and intervals widen with it."""
    d = df.loc[df[exposure] > 0].copy()
    d["y"] = d[count]
    return _glm(
        "y ~ nonwhite_fraction",
        d,
        family,
        name="placement_rate",
        r_formula=f"{count} ~ nonwhite_fraction, offset = log({exposure}), family = {family}",
        offset=np.log(d[exposure].to_numpy(dtype=float)),
    )


def dispersion_test(y: np.ndarray, mu: np.ndarray) -> Estimate:
    """Cameron & Trivedi (1990) test of Poisson equidispersion against Var = mu + alpha·mu².

    Regresses ((y − mu)² − y) / mu on mu without intercept; ``estimate`` is alpha, the p-value
    one-sided (alpha > 0).
    """
    y, mu = np.asarray(y, float), np.asarray(mu, float)
    aux = ((y - mu) ** 2 - y) / mu
    fit = sm.OLS(aux, mu[:, None]).fit()
    alpha, se = float(fit.params[0]), float(fit.bse[0])
    p = float(sps.t.sf(alpha / se, df=len(y) - 1)) if se > 0 else float("nan")
    return Estimate(
        "alpha", alpha, se, alpha - _Z * se, alpha + _Z * se, p, len(y), "cameron-trivedi"
    )


def stops_overdispersion_variants(
    df: pd.DataFrame,
    *,
    years: Sequence[int] = (2019, 2020),
    skip: Sequence[tuple[str, int]] = (),
) -> list[ModelResult]:
    """Quasi-Poisson and negative-binomial (NB2) versions of :func:`stops_baseline`, each with
    the Cameron–Trivedi dispersion test of its Poisson fit in ``extras``."""
    out = []
    for year in years:
        for b in sorted(df["borough"].unique()):
            if (b, year) in skip:
                continue
            d = borough_year(df, b, year)
            off = np.log(d["popn"].to_numpy())
            with recording() as caught:
                pois = stops_glm(d).fit()
                test = dispersion_test(d["numstops"].to_numpy(), np.asarray(pois.fittedvalues))
            quasi = _glm(
                STOPS_FORMULA,
                d,
                "quasipoisson",
                name="stops_baseline_quasipoisson",
                r_formula="numstops ~ surv + nonwhite_fraction, offset = log(popn), "
                "family = quasipoisson",
                offset=off,
                group={"borough": b, "year": year},
            )
            quasi.extras["dispersion_test"] = test.__dict__
            attach(quasi, [f"Poisson fit of the dispersion test: {c}" for c in caught])
            out.append(quasi)
            out.append(_negbin(d, off, group={"borough": b, "year": year}, test=test))
    return out


def _negbin(
    d: pd.DataFrame, offset: np.ndarray, *, group: dict[str, object], test: Estimate
) -> ModelResult:
    X = sm.add_constant(d[["surv", "nonwhite_fraction"]].to_numpy(dtype=float), has_constant="add")
    model = sm.NegativeBinomial(
        d["numstops"].to_numpy(dtype=float), X, offset=offset, loglike_method="nb2"
    )
    # Warnings are kept with the model: a fit that did not converge fails its check.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(disp=0, maxiter=200, method="bfgs")
    problems = sorted(
        {
            f"{w.category.__name__}: {w.message}"
            for w in caught
            if not issubclass(w.category, DeprecationWarning | FutureWarning)
        }
    )
    converged = bool(fit.mle_retvals.get("converged", True)) and np.all(np.isfinite(fit.bse))
    if not converged:
        problems.append("negative binomial fit did not converge")
    names = ["Intercept", "surv", "nonwhite_fraction", "alpha"]
    ests = _estimates(fit, int(fit.nobs), "wald", names)
    return ModelResult(
        name="stops_baseline_negbin",
        formula="numstops ~ surv + nonwhite_fraction, offset = log(popn), "
        "family = negative.binomial",
        family="negative_binomial",
        n=int(fit.nobs),
        coefficients=ests[:3],
        deviance=None,
        aic=float(fit.aic),
        group=group,
        extras={
            "alpha": ests[3].__dict__,
            "converged": bool(converged),
            "fit_warnings": problems,
            "dispersion_test": test.__dict__,
        },
    )
