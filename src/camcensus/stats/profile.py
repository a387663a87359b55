"""Generalised linear models as R fits them, with R's profile-likelihood intervals.

:func:`fit_glm` follows R's ``glm.fit`` (iteratively reweighted least squares, canonical links,
R's starting values, null deviance, AIC and dispersion as ``glm``/``summary.glm`` report them);
:func:`fit_lm` follows ``lm`` with prior weights. :meth:`GlmFit.profile_interval` gives the
interval R's ``confint()`` gives on a glm (R 4.2: ``MASS:::confint.glm`` -> ``profile.glm``):
the signed root of the deviance change, divided by the dispersion for families that estimate
it, refitted with the parameter held fixed (an offset), equals ``qnorm(0.975)``. MASS
interpolates a spline through ten profile points per side; here the root is found to machine
precision, so the two agree to the accuracy of MASS's spline (about 1e-5).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import patsy  # type: ignore[import-untyped]
from scipy import optimize
from scipy import special as spf
from scipy import stats as sps

from camcensus.stats._result import Estimate, ModelResult

__all__ = [
    "INTERVAL_METHODS",
    "Family",
    "GlmFit",
    "fit_glm",
    "fit_lm",
    "glm_from_formula",
    "lm_from_formula",
]

Family = Literal["binomial", "poisson", "quasipoisson", "gaussian"]

#: What each interval method means, in words (``ModelResult.interval``).
INTERVAL_METHODS = {
    "profile": "profile likelihood (R confint on a glm, MASS)",
    "wald": "Wald (R confint.default)",
    "t": "t distribution (R confint on an lm)",
}

_EPS_R = 1e-8  # glm.control()$epsilon
_MAXIT_R = 25  # glm.control()$maxit
_EPS_MU = 10 * float(np.finfo(float).eps)  # binomial()'s 'numerically 0 or 1'


def _linkinv(family: str, eta: np.ndarray) -> np.ndarray:
    if family == "binomial":
        out: np.ndarray = spf.expit(eta)
        return out
    if family in ("poisson", "quasipoisson"):
        return np.asarray(np.exp(eta), dtype=float)
    return eta


def _variance(family: str, mu: np.ndarray) -> np.ndarray:
    if family == "binomial":
        return np.asarray(mu * (1 - mu), dtype=float)
    if family in ("poisson", "quasipoisson"):
        return mu
    return np.asarray(np.ones_like(mu), dtype=float)


def _dev_resids(family: str, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    if family == "binomial":
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(y > 0, y * np.log(y / mu), 0.0)
            b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
        out: np.ndarray = 2 * w * (a + b)
        return out
    if family in ("poisson", "quasipoisson"):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(y > 0, y * np.log(y / mu), 0.0)
        return np.asarray(2 * w * (a - (y - mu)), dtype=float)
    return np.asarray(w * (y - mu) ** 2, dtype=float)


def _mustart(family: str, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    if family == "binomial":
        out: np.ndarray = (w * y + 0.5) / (w + 1)
        return out
    if family in ("poisson", "quasipoisson"):
        return y + 0.1
    return y.astype(float)


def _linkfun(family: str, mu: np.ndarray) -> np.ndarray:
    if family == "binomial":
        out: np.ndarray = spf.logit(mu)
        return out
    if family in ("poisson", "quasipoisson"):
        return np.asarray(np.log(mu), dtype=float)
    return mu


def _wls(X: np.ndarray, z: np.ndarray, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Weighted least squares by the normal equations on equilibrated columns (small p: much
    faster than a QR per iteration, and as accurate once columns are scaled)."""
    Xs = X / scale
    A = Xs.T @ (Xs * w[:, None])
    b = Xs.T @ (w * z)
    try:
        sol = np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(A, b, rcond=None)[0]
    out: np.ndarray = sol / scale
    return out


@dataclass(frozen=True)
class _Irls:
    beta: np.ndarray
    eta: np.ndarray
    deviance: float
    iterations: int
    converged: bool  # by R's rule (|Δdev|/(|dev|+0.1) < 1e-8 within 25 iterations)
    weights: np.ndarray  # working weights of the last iteration (R's fit$weights)


def _irls(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    w: np.ndarray,
    family: str,
    eta_start: np.ndarray | None = None,
    *,
    tight: bool = False,
) -> _Irls:
    """Fit by IRLS (canonical link) as R's ``glm.fit``: stop when the relative change of the
    deviance is below 1e-8 (at most 25 iterations), so coefficients, standard errors (from the
    last iteration's working weights) and deviance are R's. ``tight`` iterates on to full
    precision (for the profile's root finding)."""
    p = X.shape[1]
    eta = _linkfun(family, _mustart(family, y, w)) if eta_start is None else eta_start.copy()
    mu = _linkinv(family, eta)
    dev = float(np.sum(_dev_resids(family, y, mu, w)))
    beta = np.zeros(p)
    if p == 0:
        eta = offset.copy()
        dev = float(np.sum(_dev_resids(family, y, _linkinv(family, eta), w)))
        return _Irls(beta, eta, dev, 0, True, w * _variance(family, _linkinv(family, eta)))
    converged_r = False
    scale = np.sqrt(np.sum(X**2, axis=0))
    scale[scale == 0] = 1.0
    it = 0
    wz = w * _variance(family, mu)
    for it in range(1, 101 if tight else _MAXIT_R + 1):
        var = _variance(family, mu)
        # Canonical link: d mu / d eta equals the variance function.
        wz = w * var
        good = wz > 0
        z = eta - offset + (y - mu) / np.where(good, var, 1.0)
        beta_new = _wls(X, z, np.where(good, wz, 0.0), scale)
        eta_new = X @ beta_new + offset
        mu_new = _linkinv(family, eta_new)
        dev_new = float(np.sum(_dev_resids(family, y, mu_new, w)))
        halvings = 0
        while not math.isfinite(dev_new) and halvings < 30:
            beta_new = (beta_new + beta) / 2
            eta_new = X @ beta_new + offset
            mu_new = _linkinv(family, eta_new)
            dev_new = float(np.sum(_dev_resids(family, y, mu_new, w)))
            halvings += 1
        if tight and not math.isfinite(dev_new):
            # R's glm.fit gives up here ("cannot correct step size"); iterating on from a
            # fit without a finite deviance only repeats the halvings.
            beta, eta, dev = beta_new, eta_new, dev_new
            break
        change = abs(dev_new - dev) / (abs(dev_new) + 0.1)
        step = float(np.max(np.abs(beta_new - beta)))
        beta, eta, mu, dev = beta_new, eta_new, mu_new, dev_new
        if it <= _MAXIT_R and change < _EPS_R:
            converged_r = True
            if not tight:
                break
        if tight and (
            change < 1e-15 or (it > 3 and step < 1e-13 * max(1.0, float(np.max(np.abs(beta)))))
        ):
            break
        if tight and it > _MAXIT_R and not converged_r:
            break
    return _Irls(beta, eta, dev, it, converged_r, np.where(wz > 0, wz, 0.0))


@dataclass(frozen=True)
class GlmFit:
    """A fitted GLM (or weighted lm) with everything R's ``summary`` prints.

    ``X`` is the model matrix (columns ``names``); ``dispersion`` is 1 for binomial and Poisson,
    the Pearson chi-squared over the residual degrees of freedom otherwise (``summary.glm``).
    """

    names: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    weights: np.ndarray
    family: str
    beta: np.ndarray
    cov_unscaled: np.ndarray
    deviance: float
    null_deviance: float
    df_resid: int
    df_null: int
    dispersion: float
    aic: float | None
    converged: bool
    iterations: int
    problems: tuple[str, ...] = ()
    is_lm: bool = False
    n_deleted: int = 0
    #: Deviance at full convergence (the profile's reference; R's ``deviance`` to ~1e-9).
    deviance_opt: float = float("nan")
    lm_summary: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Return the number of rows fitted."""
        return len(self.y)

    @property
    def std_errors(self) -> np.ndarray:
        """Return the standard errors ``summary`` prints."""
        out: np.ndarray = np.sqrt(np.clip(np.diag(self.cov_unscaled), 0, None) * self.dispersion)
        return out

    @property
    def uses_t(self) -> bool:
        """Whether ``summary`` gives t statistics (estimated dispersion) rather than z."""
        return self.is_lm or self.family in ("gaussian", "quasipoisson")

    def statistics(self) -> np.ndarray:
        """Return the z (or t) values ``summary`` prints."""
        se = self.std_errors
        with np.errstate(divide="ignore", invalid="ignore"):
            out: np.ndarray = self.beta / se
        return out

    def p_values(self) -> np.ndarray:
        """Return ``summary``'s p-values: normal for binomial/Poisson, t(df_resid) otherwise."""
        stat = np.abs(self.statistics())
        if self.uses_t:
            out: np.ndarray = 2 * sps.t.sf(stat, self.df_resid)
            return out
        return np.asarray(2 * sps.norm.sf(stat))

    def profile_deviance(self, j: int, value: float, eta_start: np.ndarray | None = None) -> _Irls:
        """Return the fit with coefficient ``j`` held at ``value`` (the others refitted)."""
        keep = [k for k in range(self.X.shape[1]) if k != j]
        return _irls(
            self.X[:, keep],
            self.y,
            self.offset + self.X[:, j] * value,
            self.weights,
            "poisson" if self.family == "quasipoisson" else self.family,
            eta_start=eta_start,
            tight=True,
        )

    def profile_interval(self, j: int, level: float = 0.95) -> tuple[float, float]:
        """Return the profile-likelihood interval of coefficient ``j`` as R's ``confint``.

        Root of ``(D(b) − D̂) / dispersion = qnorm((1 + level) / 2)²`` on each side of the
        estimate, where ``D(b)`` is the deviance with the coefficient fixed at ``b``. For an lm
        the t interval (``confint.lm``) is returned. A side whose profile never reaches the
        cut-off is infinite where the deviance keeps rising towards it (a monotone likelihood,
        e.g. separation) and NaN otherwise (R's MASS: ``NA`` with a warning);
        :meth:`profile_interval_notes` says why.
        """
        lo, hi, _ = self.profile_interval_notes(j, level)
        return lo, hi

    def profile_interval_notes(self, j: int, level: float = 0.95) -> tuple[float, float, list[str]]:
        """Return :meth:`profile_interval` and, for each bound not established, why."""
        bhat, se = float(self.beta[j]), float(self.std_errors[j])
        if self.is_lm:
            q = float(sps.t.ppf((1 + level) / 2, self.df_resid))
            return bhat - q * se, bhat + q * se, []
        pct = f"{100 * level:g}%"
        if not (math.isfinite(se) and se > 0 and math.isfinite(bhat)):
            return (
                float("nan"),
                float("nan"),
                [
                    f"{self.names[j]}: profile not computed (estimate {bhat:g}, standard error "
                    f"{se:g}); both {pct} bounds are NaN (not established)"
                ],
            )
        cut = float(sps.norm.ppf((1 + level) / 2)) ** 2
        eta_hat = self.X @ self.beta + self.offset
        # Each refit starts from the previous one's linear predictor (as profile.glm does).
        state = {"eta": eta_hat}

        def g(b: float) -> float:
            with np.errstate(all="ignore"):
                fit = self.profile_deviance(j, b, eta_start=state["eta"])
            if math.isfinite(fit.deviance):
                state["eta"] = fit.eta
            return (fit.deviance - self.deviance_opt) / self.dispersion - cut

        bounds: list[float] = []
        notes: list[str] = []
        for sign, side in ((-1.0, "lower"), (1.0, "upper")):
            state["eta"] = eta_hat
            value, why = _profile_side(g, bhat, se * math.sqrt(cut), sign)
            bounds.append(value)
            if why:
                notes.append(
                    f"{self.names[j]}: profile does not reach the {pct} cut-off "
                    f"({cut:.3f}) {'below' if sign < 0 else 'above'} the estimate {bhat:g}: "
                    f"{why}; {side} bound {value:g}"
                    + (" (not established)" if math.isnan(value) else "")
                )
        return bounds[0], bounds[1], notes

    def estimates(self, *, interval: str = "profile", level: float = 0.95) -> tuple[Estimate, ...]:
        """Return one :class:`Estimate` per coefficient, with ``interval``'s interval."""
        return self._estimates_notes(interval=interval, level=level)[0]

    def _estimates_notes(
        self, *, interval: str = "profile", level: float = 0.95
    ) -> tuple[tuple[Estimate, ...], list[str]]:
        se = self.std_errors
        pv = self.p_values()
        method = "t" if self.is_lm else interval
        q = float(sps.norm.ppf((1 + level) / 2))
        out = []
        notes: list[str] = []
        for j, term in enumerate(self.names):
            b = float(self.beta[j])
            if method in ("profile", "t"):
                lo, hi, why = self.profile_interval_notes(j, level)
                notes += why
            else:
                lo, hi = b - q * float(se[j]), b + q * float(se[j])
            out.append(Estimate(term, b, float(se[j]), lo, hi, float(pv[j]), self.n, method))
        return tuple(out), notes

    def to_result(
        self,
        *,
        name: str,
        formula: str,
        interval: str = "profile",
        group: dict[str, object] | None = None,
        extras: dict[str, object] | None = None,
    ) -> ModelResult:
        """Return the :class:`ModelResult` (coefficients with ``interval``'s intervals)."""
        method = "t" if self.is_lm else interval
        family = "lm" if self.is_lm else self.family
        coefficients, interval_notes = self._estimates_notes(interval=interval)
        return ModelResult(
            name=name,
            formula=formula,
            family=family,
            n=self.n,
            coefficients=coefficients,
            deviance=self.deviance,
            aic=self.aic,
            group=dict(group or {}),
            extras={
                "null_deviance": self.null_deviance,
                "df_null": self.df_null,
                "df_resid": float(self.df_resid),
                "dispersion": self.dispersion,
                "statistic": "t" if self.uses_t else "z",
                "converged": self.converged,
                "iterations": self.iterations,
                "n_deleted": self.n_deleted,
                "fit_warnings": list(self.problems),
                "perfect_separation": any("separation" in p for p in self.problems),
                "interval_warnings": interval_notes,
                **({"lm": self.lm_summary} if self.is_lm else {}),
                **(extras or {}),
            },
            interval=INTERVAL_METHODS[method],
        )


_MAX_DOUBLINGS = 12


def _profile_side(
    g: Callable[[float], float], bhat: float, step0: float, sign: float
) -> tuple[float, str]:
    """Return one bound of a profile interval (root of ``g`` on one side of ``bhat``) and, when
    it is not established, why (empty when the root was found).

    ``g`` is the profile deviance change minus the cut-off (negative at the estimate). The
    search doubles its step up to 12 times; a refit whose deviance is not finite is halved back
    towards the last finite one. A profile that stays below the cut-off while rising gives an
    infinite bound, one that stops rising or cannot be refitted a NaN bound (MASS: NA).
    """
    g0 = g(bhat)
    if not math.isfinite(g0):
        return float("nan"), "the refit at the estimate has no finite deviance"
    prev_b = bhat
    step = step0
    values = [g0]
    for _ in range(_MAX_DOUBLINGS):
        b = bhat + sign * (abs(prev_b - bhat) + step)
        gb = g(b)
        halvings = 0
        while not math.isfinite(gb) and halvings < 60:
            b = (b + prev_b) / 2
            gb = g(b)
            halvings += 1
        if not math.isfinite(gb):
            return float("nan"), f"the refit at {b:g} has no finite deviance"
        if gb > 0:
            a, c = sorted((prev_b, b))
            try:
                root = optimize.brentq(g, a, c, xtol=1e-12 * max(1.0, abs(bhat)), rtol=1e-14)
            except (ValueError, RuntimeError) as exc:
                return float("nan"), f"root finding between {a:g} and {c:g} failed ({exc})"
            return float(root), ""
        values.append(gb)
        prev_b = b
        step *= 2
    rise = values[-1] - values[0]
    monotone = all(v2 >= v1 - 1e-9 for v1, v2 in itertools.pairwise(values))
    if monotone and rise > 0:
        return sign * math.inf, (
            f"the deviance rises by only {rise:.3g} out to {prev_b:g} and keeps rising "
            "(monotone likelihood, e.g. separation)"
        )
    shape = "is flat" if abs(rise) <= 1e-9 and monotone else "is not monotone"
    return float("nan"), f"the profile {shape} out to {prev_b:g} (deviance change {rise:.3g})"


def _aic(family: str, y: np.ndarray, mu: np.ndarray, w: np.ndarray, dev: float, p: int) -> float:
    if family == "binomial":
        # np.where evaluates both branches: log(0) of a fitted 0 or 1 is in the branch not taken.
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.where(y > 0, y * np.log(mu), 0.0) + np.where(
                y < 1, (1 - y) * np.log(1 - mu), 0.0
            )
        return float(-2 * np.sum(w * ll) + 2 * p)
    if family == "poisson":
        return float(-2 * np.sum(sps.poisson.logpmf(y, mu) * w) + 2 * p)
    if family == "gaussian":
        nobs = len(y)
        if nobs == 0:
            return float("nan")
        # A perfect fit (deviance 0, e.g. as many rows as coefficients): R's AIC is -Inf.
        log_dev = math.log(dev / nobs * 2 * math.pi) if dev > 0 else -math.inf
        gauss = nobs * (log_dev + 1) + 2 - np.sum(np.log(w))
        return float(gauss + 2 * p)
    return float("nan")


def fit_glm(
    X: np.ndarray,
    y: np.ndarray,
    *,
    family: Family,
    names: Sequence[str],
    offset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    intercept: bool | None = None,
    n_deleted: int = 0,
) -> GlmFit:
    """Fit a GLM as R's ``glm`` (canonical link) and return everything ``summary`` prints."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    fam = "poisson" if family == "quasipoisson" else family
    fit = _irls(X, y, off, w, fam)
    problems = []
    if not fit.converged:
        problems.append("glm.fit: algorithm did not converge")
    mu = _linkinv(fam, fit.eta)
    opt = _irls(X, y, off, w, fam, eta_start=fit.eta, tight=True) if p else fit
    if fam == "binomial" and np.any((mu < _EPS_MU) | (mu > 1 - _EPS_MU)):
        problems.append(
            "glm.fit: fitted probabilities numerically 0 or 1 occurred (perfect separation)"
        )
    # As summary.glm: the last iteration's working weights for the covariance and dispersion,
    # working residuals at the final fit.
    wz = fit.weights
    rank = int(np.linalg.matrix_rank(X * np.sqrt(wz)[:, None])) if p else 0
    if rank < p:
        problems.append(f"rank deficient: {p - rank} coefficient(s) not estimable")
    cov = np.linalg.pinv(X.T @ (X * wz[:, None])) if p else np.zeros((0, 0))
    has_intercept = (
        bool(np.any(np.all(X == 1.0, axis=0))) if intercept is None and p else bool(intercept)
    )
    if has_intercept and np.any(off != 0):
        null_dev = _irls(np.ones((n, 1)), y, off, w, fam).deviance
    elif has_intercept:
        mu0 = np.full(n, np.sum(w * y) / np.sum(w))
        null_dev = float(np.sum(_dev_resids(fam, y, mu0, w)))
    else:
        null_dev = float(np.sum(_dev_resids(fam, y, _linkinv(fam, off), w)))
    df_resid = n - rank
    if family in ("binomial", "poisson"):
        dispersion = 1.0
    else:
        working = (y - mu) / _variance(fam, mu)
        dispersion = float(np.sum(wz * working**2)) / df_resid if df_resid > 0 else np.nan
    aic = None if family == "quasipoisson" else _aic(fam, y, mu, w, fit.deviance, rank)
    return GlmFit(
        names=tuple(names),
        X=X,
        y=y,
        offset=off,
        weights=w,
        family=family,
        beta=fit.beta,
        cov_unscaled=cov,
        deviance=fit.deviance,
        null_deviance=null_dev,
        df_resid=df_resid,
        df_null=n - int(has_intercept),
        dispersion=dispersion,
        aic=aic,
        converged=fit.converged,
        iterations=fit.iterations,
        problems=tuple(problems),
        n_deleted=n_deleted,
        deviance_opt=min(opt.deviance, fit.deviance),
    )


def _ratio(a: float, b: float) -> float:
    """Return a / b, NaN where b is 0 (R's 0/0 and x/0 in summary.lm are NaN or Inf; NaN here)."""
    return a / b if b else float("nan")


def fit_lm(
    X: np.ndarray,
    y: np.ndarray,
    *,
    names: Sequence[str],
    weights: np.ndarray | None = None,
    n_deleted: int = 0,
) -> GlmFit:
    """Fit a (weighted) linear model as R's ``lm``; ``lm_summary`` holds what ``summary.lm``
    prints below the coefficients (residual standard error, R², F)."""
    fit = fit_glm(X, y, family="gaussian", names=names, weights=weights, n_deleted=n_deleted)
    w = fit.weights
    resid = fit.y - fit.X @ fit.beta
    rss = float(np.sum(w * resid**2))
    p = fit.n - fit.df_resid
    has_intercept = fit.df_null == fit.n - 1
    fitted = fit.X @ fit.beta
    centre = float(np.sum(w * fitted) / np.sum(w)) if has_intercept else 0.0
    mss = float(np.sum(w * (fitted - centre) ** 2))
    df_int = 1 if has_intercept else 0
    df1, df2 = p - df_int, fit.df_resid
    # Without residual degrees of freedom (as many rows as coefficients) R prints NaN.
    r2 = _ratio(mss, mss + rss)
    adj = 1 - (1 - r2) * _ratio(fit.n - df_int, df2)
    f = _ratio(_ratio(mss, df1), _ratio(rss, df2)) if df1 > 0 else float("nan")
    summary = {
        "sigma": math.sqrt(_ratio(rss, df2)),
        "df": float(df2),
        "r_squared": r2,
        "adj_r_squared": adj,
        "f_statistic": f,
        "f_df1": float(df1),
        "f_p_value": float(sps.f.sf(f, df1, df2)) if df1 > 0 and df2 > 0 else np.nan,
    }
    return GlmFit(
        **{
            **fit.__dict__,
            "is_lm": True,
            "lm_summary": summary,
        }
    )


def _design(formula: str, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Return y, X, clean term names and the rows dropped for missing values (R's na.omit)."""
    y, X = patsy.dmatrices(formula, data, return_type="dataframe", NA_action="drop")
    names = [_clean_term(str(t)) for t in X.columns]
    dropped = len(data) - len(X)
    return (
        np.asarray(y.iloc[:, -1], dtype=float),
        np.asarray(X, dtype=float),
        names,
        dropped,
    )


def _clean_term(term: str) -> str:
    return (
        term.replace("C(borough)[", "borough[")
        .replace("C(bin)[", "bin[")
        .replace("C(nwfC)[", "nwfC[")
        .replace("C(bwh)[", "bwh[")
    )


def glm_from_formula(
    formula: str,
    data: pd.DataFrame,
    *,
    family: Family,
    offset: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> GlmFit:
    """Fit :func:`fit_glm` on a patsy formula; rows with a missing value are dropped (counted
    in ``n_deleted``, as R's "observations deleted due to missingness")."""
    y, X, names, dropped = _design(formula, data)
    if dropped and (offset is not None or weights is not None):
        raise ValueError("drop rows with missing values before passing an offset or weights")
    return fit_glm(
        X, y, family=family, names=names, offset=offset, weights=weights, n_deleted=dropped
    )


def lm_from_formula(
    formula: str, data: pd.DataFrame, *, weights: np.ndarray | None = None
) -> GlmFit:
    """Fit :func:`fit_lm` on a patsy formula (rows with a missing value dropped and counted)."""
    y, X, names, dropped = _design(formula, data)
    if dropped and weights is not None:
        raise ValueError("drop rows with missing values before passing weights")
    return fit_lm(X, y, names=names, weights=weights, n_deleted=dropped)
