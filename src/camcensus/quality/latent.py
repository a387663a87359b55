"""A latent-count model of the volunteers' errors, with an interval on the corrected total.

Model (one category at a time, e.g. ``attached_street``), for panorama ``i`` and volunteer ``j``::

    N_i      ~ NegativeBinomial(mean m, shape r)          true cameras of the category
    y_ij     = s_ij + e_ij
    s_ij     ~ Binomial(N_i, p_j)                         cameras the volunteer found (and
                                                          labelled in this category)
    e_ij     ~ Poisson(f_j + g x_i)                       extra tags: look-alikes (f_j) and
                                                          cameras of the other attachments
                                                          mislabelled into this one (leak-in:
                                                          x_i = the panorama's mean count of
                                                          the other attachments)
    p_j      ~ Beta(mu_p * kappa_p, (1 - mu_p) * kappa_p) pooled: few tasks shrink to the pool
    f_j      ~ Gamma(shape a_f, rate a_f / mu_f)

This is Dawid and Skene's (1979) per-annotator error model written for counts: each volunteer
has a detection probability and a rate of false tags. From volunteers alone the scale between
``N`` and ``p`` is not identified (with Poisson ``N``, first and second moments give
``m p_j + f_j`` and ``m p_j p_k``); the expert reviews (reference counts on a sample of
panoramas) identify it: on a reviewed panorama ``N_i`` is fixed at the reference. A sample
drawn on the volunteers' answers (Amnesty's 8 strata of median x agreement, methodology
section 1.4.2) is ignorable for this likelihood, since the selection depends only on observed
answers: the design weights are not needed here.

The leak-in term matters: in the synthetic city a seen camera gets a wrong attachment with
probability 0.08, so building cameras (0.6 per panorama) leak into the street count at a rate
comparable to the look-alikes, and the leak is shared by the volunteers of one panorama (the
same building cameras), which a per-volunteer Poisson rate alone would read as a pole camera.

The fit runs EM for point estimates (maximum likelihood of ``p_j``, ``f_j`` and the prior of
``N``), then a Gibbs sampler with data augmentation (``N_i`` enumerated on ``0..n_max``; the
split of ``y_ij`` into ``s_ij`` and ``e_ij``; conjugate Beta and Gamma draws; the pool and the
prior of ``N`` drawn on grids). The posterior of ``sum_i N_i`` carries both the per-panorama
uncertainty and the parameters' uncertainty: this is the interval on the total that the
methodology (section 1.6.1) could not get by resampling 3 decoders with replacement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import gammaln

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.io.decode import CATEGORIES

__all__ = [
    "LatentFit",
    "TotalInterval",
    "corrected_total",
    "fit_latent",
    "posterior_n",
    "split_probabilities",
]

_CATEGORIES = CATEGORIES
_TINY = 1e-300
# Grids of the pooled priors' hyperparameters (drawn from their grid posteriors).
_MU_P = np.linspace(0.005, 0.995, 199)
_KAPPA_P = np.geomspace(1.0, 1000.0, 30)
_LOG_STEP_F = 0.02
_MU_F = np.exp(np.arange(np.log(1e-3), np.log(5.0), _LOG_STEP_F))
_SHAPE_F = np.geomspace(0.2, 500.0, 25)
_LOG_STEP_N = 0.02
_MEAN_N = np.exp(np.arange(np.log(2e-3), np.log(30.0), _LOG_STEP_N))
_SHAPE_N = np.geomspace(0.05, 200.0, 30)


@dataclass(frozen=True)
class TotalInterval:
    """An estimate of a total with an equal-tailed interval.

    Unpacks as ``estimate, low, high`` (``est, lo, hi = fit.total``).

    Attributes
    ----------
    estimate
        Posterior mean of the total.
    low, high
        Equal-tailed ``level`` posterior interval.
    level
        Interval level, e.g. 0.95.
    std_error
        Posterior standard deviation.
    method
        How it was computed.
    """

    estimate: float
    low: float
    high: float
    level: float
    std_error: float
    method: str

    def __iter__(self) -> Iterator[float]:
        return iter((self.estimate, self.low, self.high))


@dataclass
class LatentFit:
    """The fitted latent-count model of one category.

    Attributes
    ----------
    category
        The count column modelled.
    total
        The corrected total over all panoramas (posterior mean and interval).
    sum_of_medians
        The conservative total: the sum over panoramas of the volunteers' median (the headline
        that Amnesty published; it stays the headline unless a user asks otherwise).
    panoramas
        One row per panorama: ``PanoramaId``, ``n_answers``, ``median``, ``reviewed``,
        ``reference`` (NaN if not reviewed), ``posterior_mean``, ``posterior_sd``,
        ``p_zero`` (posterior probability of no camera).
    volunteers
        One row per volunteer: ``DecoderId``, ``n_tasks``, ``n_reviewed``, ``detection`` and
        ``detection_sd``, ``detection_low``/``detection_high`` (95%), ``false_rate`` and
        ``false_rate_sd``, ``false_rate_low``/``false_rate_high``, ``detection_em``,
        ``false_rate_em`` (EM point estimates).
    pool
        Posterior means of the pooled hyperparameters and of the prior of ``N``.
    total_draws
        Posterior draws of the total.
    diagnostics
        Draws, burn-in, effective sample size of the total, EM iterations, ``n_max``.
    ledger
        Answers left out, with reasons.
    """

    category: str
    total: TotalInterval
    sum_of_medians: float
    panoramas: pd.DataFrame
    volunteers: pd.DataFrame
    pool: dict[str, float]
    total_draws: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)


_LOGFACT = gammaln(np.arange(4097) + 1.0)


def _logfact(n: np.ndarray) -> np.ndarray:
    """``log n!`` (a table lookup for integers up to 4096)."""
    arr = np.asarray(n)
    if arr.dtype.kind in "iu" and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 4096)):
        looked: np.ndarray = _LOGFACT[arr]
        return looked
    out: np.ndarray = gammaln(np.asarray(n, dtype=float) + 1.0)
    return out


def split_probabilities(y: int, n: int, p: float, f: float) -> np.ndarray:
    """Return ``P(s | y, N)`` for ``s = 0..y``: how many of ``y`` tags are true detections.

    ``s ~ Binomial(N, p)`` and ``y - s ~ Poisson(f)``; entries with ``s > N`` are 0.

    Parameters
    ----------
    y
        The volunteer's count.
    n
        The true count ``N``.
    p, f
        The volunteer's detection probability and false-tag rate.
    """
    s = np.arange(y + 1)
    ok = s <= n
    with np.errstate(divide="ignore"):
        logw = _logfact(np.array(n)) - _logfact(np.minimum(s, n)) - _logfact(np.maximum(n - s, 0))
        logw = logw + s * np.log(p) + (n - s) * np.log1p(-p)
        logw = logw + (y - s) * np.log(max(f, _TINY)) - _logfact(y - s)
    logw = np.where(ok, logw, -np.inf)
    if not np.isfinite(logw).any():
        return np.zeros(y + 1)
    w = np.exp(logw - logw.max())
    out: np.ndarray = w / w.sum()
    return out


def posterior_n(ys: np.ndarray, ps: np.ndarray, fs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Return the posterior of ``N`` for one panorama on ``0..len(prior) - 1``.

    Parameters
    ----------
    ys, ps, fs
        Each volunteer's count, detection probability and false-tag rate.
    prior
        Prior probabilities of ``N = 0, 1, ...``.
    """
    lik = _answer_loglik(
        np.asarray(ys, int), np.asarray(ps, float), np.asarray(fs, float), len(prior) - 1
    )
    with np.errstate(divide="ignore"):
        logpost = np.log(np.asarray(prior, float)) + lik.sum(axis=0)
    w = np.exp(logpost - logpost.max())
    out: np.ndarray = w / w.sum()
    return out


def _answer_loglik(y: np.ndarray, p: np.ndarray, f: np.ndarray, n_max: int) -> np.ndarray:
    """``log P(y_a | N, p_a, f_a)`` for every answer ``a`` and ``N = 0..n_max`` (A x n_max+1)."""
    n = np.arange(n_max + 1)
    out = np.empty((len(y), n_max + 1))
    logp, log1p = np.log(np.clip(p, _TINY, 1.0)), np.log(np.clip(1.0 - p, _TINY, 1.0))
    logf = np.log(np.maximum(f, _TINY))
    lfn = _logfact(n)
    zero = y == 0
    if zero.any() and not zero.all():
        # No tag: (1 - p)^N exp(-f), in closed form; the sum over splits only for the rest.
        out[zero] = n[None, :] * log1p[zero, None] - f[zero, None]
        rest = np.flatnonzero(~zero)
        out[rest] = _answer_loglik(y[rest], p[rest], f[rest], n_max)
        return out
    y_top = int(y.max()) if len(y) else 0
    if len(y) * (n_max + 1) * (y_top + 1) <= 2_000_000:
        # All answers at once, in probabilities: sum over s of Bin(s; N, p) Pois(y - s; f).
        s = np.arange(y_top + 1)
        valid = (s[None, None, :] <= n[None, :, None]) & (s[None, None, :] <= y[:, None, None])
        lc = lfn[:, None] - _logfact(s)[None, :] - _logfact(np.maximum(n[:, None] - s[None, :], 0))
        ys = np.maximum(y[:, None] - s[None, :], 0)
        pois_log = ys * logf[:, None] - _logfact(ys)  # (A, S), without exp(-f)
        term = (
            lc[None, :, :] + s[None, None, :] * (logp - log1p)[:, None, None] + pois_log[:, None, :]
        )
        term = np.where(valid, term, -np.inf)
        mx = term.max(axis=2, keepdims=True)
        with np.errstate(divide="ignore"):
            tot = np.log(np.exp(term - mx).sum(axis=2)) + mx[:, :, 0]
        out[:] = tot + n[None, :] * log1p[:, None] - f[:, None]
        return out
    for v in np.unique(y):
        rows = np.flatnonzero(y == v)
        s = np.arange(v + 1)
        # logC(N, s) + s log p + (N - s) log(1-p) + (v - s) log f - f - log (v - s)!
        valid = s[None, :] <= n[:, None]  # (N, S)
        lc = lfn[:, None] - _logfact(s)[None, :] - _logfact(np.maximum(n[:, None] - s[None, :], 0))
        lc = np.where(valid, lc, -np.inf)
        term = (
            lc[None, :, :]
            + s[None, None, :] * logp[rows, None, None]
            + (n[None, :, None] - s[None, None, :]) * log1p[rows, None, None]
            + (v - s[None, None, :]) * logf[rows, None, None]
            - f[rows, None, None]
            - _logfact(v - s)[None, None, :]
        )
        term = np.where(valid[None, :, :], term, -np.inf)
        mx = term.max(axis=2, keepdims=True)
        mx = np.where(np.isfinite(mx), mx, 0.0)
        with np.errstate(divide="ignore"):
            out[rows] = np.log(np.exp(term - mx).sum(axis=2)) + mx[:, :, 0]
    return out


def _nb_logpmf(k: np.ndarray, mean: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Negative binomial log-pmf, broadcasting ``k`` against ``mean`` and ``shape``."""
    q = shape / (shape + mean)
    out: np.ndarray = (
        gammaln(k + shape) - gammaln(shape) - _logfact(k) + shape * np.log(q) + k * np.log1p(-q)
    )
    return out


def _grid_draw(logpost: np.ndarray, rng: np.random.Generator) -> tuple[int, ...]:
    """Draw one cell of a grid with probabilities proportional to ``exp(logpost)``."""
    cum = np.cumsum(np.exp(logpost - logpost.max()).ravel())
    k = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cum.size - 1)
    return tuple(int(x) for x in np.unravel_index(k, logpost.shape))


def _row_draw(logpost: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one column per row with probabilities proportional to ``exp(logpost)``."""
    cum = np.cumsum(np.exp(logpost - logpost.max(axis=1, keepdims=True)), axis=1)
    u = rng.random(len(cum)) * cum[:, -1]
    out: np.ndarray = (cum < u[:, None]).sum(axis=1)
    return out


def _ess(x: np.ndarray) -> float:
    """Effective sample size by Geyer's initial positive sequence."""
    x = np.asarray(x, float)
    n = len(x)
    if n < 4 or x.std() == 0:
        return float(n)
    xc = x - x.mean()
    f = np.fft.rfft(xc, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (xc @ xc)
    s = 0.0
    for k in range(1, n - 1, 2):
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        s += pair
    return float(n / (1 + 2 * s))


@dataclass
class _Data:
    pano_ids: np.ndarray
    vol_ids: np.ndarray
    a_pano: np.ndarray  # answers sorted by panorama
    a_vol: np.ndarray
    y: np.ndarray
    starts: np.ndarray  # reduceat offsets of each panorama's answers
    fixed: np.ndarray  # reference count, -1 when not reviewed
    n_max: int
    pair_vol: np.ndarray  # distinct (volunteer, count, leak covariate) triples
    pair_y: np.ndarray
    pair_x: np.ndarray
    pair_of: np.ndarray  # each answer's triple
    incidence: sparse.csr_matrix  # panoramas x triples: how many answers of each
    x: np.ndarray  # per panorama: leak covariate (mean count of the other attachments)


_LEAK_AUTO = {
    "attached_street": ("attached_building", "attached_unknown"),
    "attached_building": ("attached_street", "attached_unknown"),
    "attached_unknown": ("attached_street", "attached_building"),
}


def _prepare(
    submissions: pd.DataFrame,
    category: str,
    reference: pd.DataFrame | None,
    n_max: int | None,
    ledger: Ledger,
    leak_from: tuple[str, ...] = (),
) -> _Data:
    need = ["PanoramaId", "DecoderId", category, *leak_from]
    missing = [c for c in need if c not in submissions.columns]
    if missing:
        raise ContractError(
            f"submissions lack column(s) {', '.join(missing)}; expected one row per volunteer "
            "answer with PanoramaId, DecoderId and the count columns (quality.inputs.read_counts "
            "returns them from a raw counts.csv)"
        )
    sub = submissions[need].copy()
    bad = sub[category].isna() | (pd.to_numeric(sub[category], errors="coerce") < 0)
    ledger.exclude("latent", f"answer with a missing or negative {category}", int(bad.sum()))
    sub = sub.loc[~bad]
    before = len(sub)
    sub = sub.drop_duplicates(["PanoramaId", "DecoderId"], keep="first")
    ledger.exclude(
        "latent",
        "second answer of a volunteer on the same panorama (first kept)",
        before - len(sub),
    )
    if sub.empty:
        raise ContractError("submissions hold no usable answer: nothing to fit")
    pano_codes, pano_ids = pd.factorize(sub["PanoramaId"], sort=True)
    vol_codes, vol_ids = pd.factorize(sub["DecoderId"].astype(str), sort=True)
    y = pd.to_numeric(sub[category]).to_numpy().astype(int)
    other = np.zeros(len(sub))
    for col in leak_from:
        other += pd.to_numeric(sub[col], errors="coerce").fillna(0).to_numpy(float)
    x = np.bincount(pano_codes, weights=other) / np.bincount(pano_codes)
    order = np.argsort(pano_codes, kind="stable")
    a_pano, a_vol, y = pano_codes[order], vol_codes[order], y[order]
    starts = np.flatnonzero(np.r_[True, np.diff(a_pano) != 0])
    fixed = np.full(len(pano_ids), -1, dtype=int)
    if reference is not None:
        if "PanoramaId" not in reference.columns or category not in reference.columns:
            raise ContractError(
                f"reference lacks PanoramaId or {category}; expected the expert reviews "
                "(quality.design.read_reviews) with the reference count per category"
            )
        ref = reference[["PanoramaId", category]].dropna()
        ledger.exclude("latent", f"review with no reference {category}", len(reference) - len(ref))
        ref = ref.drop_duplicates("PanoramaId", keep="first")
        pos = pd.Index(pano_ids).get_indexer(ref["PanoramaId"])
        ledger.exclude("latent", "review of a panorama no volunteer answered", int((pos < 0).sum()))
        vals = pd.to_numeric(ref[category]).to_numpy()
        if (vals < 0).any() or (vals != np.round(vals)).any():
            raise ContractError(f"reference {category} holds a negative or fractional count")
        fixed[pos[pos >= 0]] = vals[pos >= 0].astype(int)
    if n_max is None:
        n_max = int(max(2 * y.max() + 4, 8, fixed.max() + 2))
    if n_max < max(y.max(), fixed.max()):
        raise OptionError(f"n_max = {n_max} is below the largest count; use n_max >= {y.max()}")
    ny = int(y.max()) + 1
    # The covariate is a mean of a few small counts: few distinct values.
    x_code, x_vals = pd.factorize(np.round(x[a_pano], 9), sort=True)
    key = (x_code.astype(np.int64) * len(np.unique(a_vol)) + a_vol) * ny + y
    keys, first, pair_of = np.unique(key, return_index=True, return_inverse=True)
    pairs = a_vol[first] * ny + y[first]
    return _Data(
        np.asarray(pano_ids),
        np.asarray(vol_ids),
        a_pano,
        a_vol,
        y,
        starts,
        fixed,
        n_max,
        pairs // ny,
        pairs % ny,
        np.asarray(x_vals, dtype=float)[x_code[first]],
        pair_of,
        sparse.csr_matrix((np.ones(len(y)), (a_pano, pair_of)), shape=(len(pano_ids), len(keys))),
        x,
    )


def _rates(d: _Data, f: np.ndarray, g: float) -> np.ndarray:
    """Each answer's rate of extra tags: the volunteer's own plus the leak-in term."""
    out: np.ndarray = f[d.a_vol] + g * d.x[d.a_pano]
    return out


def _posterior_matrix(
    d: _Data, p: np.ndarray, f: np.ndarray, log_prior: np.ndarray, g: float = 0.0
) -> np.ndarray:
    """Log joint of ``N_i = 0..n_max`` and the panorama's answers; reviewed ones fixed.

    The likelihood is computed once per distinct (volunteer, count, leak covariate) and
    gathered.
    """
    pv = d.pair_vol
    lik = _answer_loglik(d.pair_y, p[pv], f[pv] + g * d.pair_x, d.n_max)
    logpost: np.ndarray = np.asarray(d.incidence @ lik) + log_prior[None, :]
    rev = np.flatnonzero(d.fixed >= 0)
    if len(rev):
        keep = logpost[rev, d.fixed[rev]].copy()
        logpost[rev] = -np.inf
        logpost[rev, d.fixed[rev]] = keep
    return logpost


def _log_evidence(logpost: np.ndarray) -> float:
    mx = logpost.max(axis=1)
    return float((np.log(np.exp(logpost - mx[:, None]).sum(axis=1)) + mx).sum())


def _split_table(
    d: _Data, n_of_answer: np.ndarray, p: np.ndarray, rate: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Unnormalised ``P(s | y, N)`` for answers ``rows`` on ``s = 0..max y`` (A x S);
    ``rate`` is every answer's rate of extra tags."""
    s = np.arange(d.y.max() + 1)[None, :]
    y, n = d.y[rows, None], n_of_answer[:, None]
    pa, fa = p[d.a_vol[rows]][:, None], rate[rows][:, None]
    valid = (s <= y) & (s <= n)
    lw = (
        -_logfact(np.where(valid, s, 0))
        - _logfact(np.where(valid, n - s, 0))
        + s * np.log(np.clip(pa, _TINY, 1))
        - s * np.log(np.clip(1 - pa, _TINY, 1))
        + (y - s) * np.log(np.maximum(fa, _TINY))
        - _logfact(np.where(valid, y - s, 0))
    )
    lw = np.where(valid, lw, -np.inf)
    lw = lw - lw.max(axis=1, keepdims=True)
    out: np.ndarray = np.exp(lw)
    return out


def _em(
    d: _Data, n_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, int, float]:
    """EM for maximum-likelihood ``p_j``, ``f_j``, the leak-in ``g`` and the NB prior of N."""
    nv = len(d.vol_ids)
    counts_v = np.bincount(d.a_vol, minlength=nv)
    ybar = d.y.mean()
    p = np.full(nv, 0.7)
    f = np.full(nv, max(0.05 * ybar, 1e-3))
    mean_n, shape_n = max(ybar / 0.7, 1e-3), 1.0
    grid = np.arange(d.n_max + 1)
    prev = -np.inf
    done = 0
    post = np.zeros((len(d.pano_ids), d.n_max + 1))
    leak = bool((d.x > 0).any())
    g = 0.01 if leak else 0.0
    x_a = d.x[d.a_pano]
    for it in range(1, n_iter + 1):
        done = it
        log_prior = _nb_logpmf(grid, np.array(mean_n), np.array(shape_n))
        logpost = _posterior_matrix(d, p, f, log_prior, g)
        rate = _rates(d, f, g)
        mx = logpost.max(axis=1, keepdims=True)
        w = np.exp(logpost - mx)
        z = w.sum(axis=1, keepdims=True)
        post = w / z
        # Log-likelihood of the unreviewed panoramas (the reviewed ones are fixed).
        ll = float((np.log(z[:, 0]) + mx[:, 0]).sum())
        # E[s_a] = sum_N P(N) E[s | y, N]: per answer, over the N values.
        post_a = post[d.a_pano]
        es = np.zeros(len(d.y))
        s_grid = np.arange(d.y.max() + 1)
        for n_val in range(d.n_max + 1):
            wa = post_a[:, n_val]
            act = wa > 1e-12
            if not act.any():
                continue
            rows = np.flatnonzero(act & (d.y > 0))
            tab = _split_table(d, np.full(len(rows), n_val), p, rate, rows)
            tab = tab / tab.sum(axis=1, keepdims=True)
            es[rows] += wa[rows] * (tab @ s_grid)
        en = post @ grid
        tot_s = np.bincount(d.a_vol, weights=es, minlength=nv)
        tot_n = np.bincount(d.a_vol, weights=en[d.a_pano], minlength=nv)
        # Extra tags split between the volunteer's own rate and the leak-in term.
        share = np.where(rate > 0, g * x_a / np.maximum(rate, _TINY), 0.0)
        e_leak = (d.y - es) * share
        tot_e = np.bincount(d.a_vol, weights=d.y - es - e_leak, minlength=nv)
        p = np.clip(tot_s / np.maximum(tot_n, _TINY), 1e-4, 1 - 1e-4)
        f = np.maximum(tot_e / np.maximum(counts_v, 1), 1e-6)
        if leak:
            g = max(float(e_leak.sum() / x_a.sum()), 1e-6)
        # NB prior by moments of the expected N distribution (a moment M-step).
        hist = post.sum(axis=0)
        m1 = float(hist @ grid / hist.sum())
        v1 = float(hist @ (grid - m1) ** 2 / hist.sum())
        mean_n = max(m1, 1e-3)
        shape_n = float(np.clip(m1**2 / max(v1 - m1, 1e-6), 0.05, 200.0))
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    return p, f, mean_n, shape_n, post, done, g


def fit_latent(
    submissions: pd.DataFrame,
    *,
    category: str = "attached_street",
    reference: pd.DataFrame | None = None,
    draws: int = 1000,
    burn_in: int = 300,
    level: float = 0.95,
    n_max: int | None = None,
    em_iter: int = 200,
    leak_from: str | tuple[str, ...] | None = "auto",
    seed: int = 0,
) -> LatentFit:
    """Fit the latent-count model and return the corrected total with its interval.

    Parameters
    ----------
    submissions
        One row per volunteer answer: ``PanoramaId``, ``DecoderId`` and ``category``. A second
        answer of a volunteer on one panorama is dropped (first kept) and counted.
    category
        Count column to model (``attached_street``: Amnesty's public cameras).
    reference
        Expert reviews: ``PanoramaId`` and the reference ``category`` count; on these
        panoramas ``N`` is fixed. Without reviews the scale between the true counts and the
        detection rates rests on the prior alone (and the interval is not to be trusted).
    draws, burn_in
        Gibbs draws kept and discarded.
    level
        Level of the interval on the total.
    n_max
        Largest true count per panorama (default ``max(2 * largest count + 4, 8)``).
    em_iter
        Largest number of EM iterations (the EM fit starts the sampler).
    leak_from
        Count columns whose cameras can be mislabelled into ``category``: the extra tags of
        an answer get a leak-in rate ``g x_i``, ``x_i`` the panorama's mean count of these
        columns over its answers (a camera on a building seen as on a pole by every volunteer
        of a panorama with many building cameras is not a pole camera). ``"auto"``: the other
        two attachment columns for an attachment category, none otherwise; ``None``: none.
    seed
        Seed of the sampler.

    Returns
    -------
    LatentFit

    Raises
    ------
    ContractError
        A column is missing, or no answer is usable.
    OptionError
        ``category``, ``draws``, ``level`` or ``n_max`` out of range.
    """
    if category not in _CATEGORIES:
        raise OptionError(f"category {category!r} is not one of {', '.join(_CATEGORIES)}")
    if draws < 10 or burn_in < 0:
        raise OptionError(f"draws = {draws}, burn_in = {burn_in}: use draws >= 10, burn_in >= 0")
    if not 0 < level < 1:
        raise OptionError(f"level = {level}: use a level in (0, 1), e.g. 0.95")
    if leak_from == "auto":
        leak_cols = tuple(c for c in _LEAK_AUTO.get(category, ()) if c in submissions.columns)
    elif leak_from is None:
        leak_cols = ()
    else:
        leak_cols = (leak_from,) if isinstance(leak_from, str) else tuple(leak_from)
    if category in leak_cols:
        raise OptionError(f"leak_from names {category!r}, the category modelled itself")
    ledger = Ledger()
    d = _prepare(submissions, category, reference, n_max, ledger, leak_cols)
    if reference is None or (d.fixed < 0).all():
        ledger.note(
            "latent model fitted without expert reviews: the scale of the detection rates "
            "rests on the prior, so the corrected total's interval is not validated"
        )
    rng = np.random.default_rng(seed)
    nv, npano = len(d.vol_ids), len(d.pano_ids)
    grid = np.arange(d.n_max + 1)
    counts_v = np.bincount(d.a_vol, minlength=nv)
    p_em, f_em, mean_n, shape_n, post_em, em_it, g_em = _em(d, em_iter, 1e-8)
    g = g_em
    x_a = d.x[d.a_pano]
    sum_x = float(x_a.sum())
    g_draws = np.zeros(draws)

    # Gibbs sampler, started at the EM fit.
    p, f = p_em.copy(), f_em.copy()
    i_mu = int(np.argmin(abs(_MU_P - np.mean(p))))
    i_mn = int(np.argmin(abs(np.log(_MEAN_N / mean_n))))
    i_sn = int(np.argmin(abs(np.log(_SHAPE_N / shape_n))))
    i_mf = int(np.argmin(abs(np.log(_MU_F / max(float(np.mean(f)), 1e-4)))))
    kappa_p, mu_f, shape_f = 20.0, float(_MU_F[i_mf]), 2.0
    # The scale move: all logit p_j shift by delta, the pool mean and the prior mean of N
    # follow by whole grid steps (an odd function of delta: a symmetric proposal).
    pbar = float(np.clip(np.mean(p), 0.05, 0.95))
    c_mu = pbar * (1 - pbar) / (_MU_P[1] - _MU_P[0])
    c_mn = -(1 - pbar) / _LOG_STEP_N
    step, accepted = 0.05, 0
    step_f, accepted_f = 0.05, 0
    n_keep = draws
    totals = np.empty(n_keep)
    sum_n = np.zeros(npano)
    sum_n2 = np.zeros(npano)
    sum_zero = np.zeros(npano)
    p_draws = np.empty((n_keep, nv))
    f_draws = np.empty((n_keep, nv))
    hyper = np.empty((n_keep, 6))
    pos_rows = np.flatnonzero(d.y > 0)

    # Tables of the grid posteriors that do not change between iterations.
    am = _MU_P[:, None] * _KAPPA_P[None, :]
    bm = (1 - _MU_P[:, None]) * _KAPPA_P[None, :]
    lbeta_grid = nv * (gammaln(_KAPPA_P)[None, :] - gammaln(am) - gammaln(bm))
    sh, mf = _SHAPE_F[None, :], _MU_F[:, None]
    lgamma_grid = nv * (sh * np.log(sh / mf) - gammaln(sh))
    nb_grid = _nb_logpmf(grid[None, None, :], _MEAN_N[:, None, None], _SHAPE_N[None, :, None])

    def beta_pool(pp: np.ndarray, mu: float) -> float:
        a, b = mu * kappa_p, (1 - mu) * kappa_p
        lb = gammaln(kappa_p) - gammaln(a) - gammaln(b)
        return float((lb + a * np.log(pp) + b * np.log1p(-pp)).sum())

    for it in range(burn_in + draws):
        log_prior = nb_grid[i_mn, i_sn]
        logpost = _posterior_matrix(d, p, f, log_prior, g)
        # Scale move on (logit p, pool mean, prior mean of N), N integrated out.
        delta = rng.normal(0.0, step)
        j_mu, j_mn = i_mu + int(np.round(c_mu * delta)), i_mn + int(np.round(c_mn * delta))
        if 0 <= j_mu < len(_MU_P) and 0 <= j_mn < len(_MEAN_N):
            p_new = np.clip(1 / (1 + np.exp(-(np.log(p / (1 - p)) + delta))), 1e-6, 1 - 1e-6)
            prior_new = nb_grid[j_mn, i_sn]
            logpost_new = _posterior_matrix(d, p_new, f, prior_new, g)
            log_ratio = (
                _log_evidence(logpost_new)
                + beta_pool(p_new, float(_MU_P[j_mu]))
                - _log_evidence(logpost)
                - beta_pool(p, float(_MU_P[i_mu]))
            )
            if np.log(rng.random()) < log_ratio:
                p, i_mu, i_mn, logpost = p_new, j_mu, j_mn, logpost_new
                accepted += 1
        # Scale move on (f, pool mean of f) by whole grid steps: the pool's density of
        # f / mu_f is unchanged, and in log f the Jacobian cancels the rest.
        k_f = int(np.round(rng.normal(0.0, step_f) / _LOG_STEP_F))
        if k_f != 0 and 0 <= i_mf + k_f < len(_MU_F):
            f_new = f * np.exp(k_f * _LOG_STEP_F)
            logpost_new = _posterior_matrix(d, p, f_new, nb_grid[i_mn, i_sn], g)
            if np.log(rng.random()) < _log_evidence(logpost_new) - _log_evidence(logpost):
                f, i_mf, logpost = f_new, i_mf + k_f, logpost_new
                mu_f = float(_MU_F[i_mf])
                accepted_f += 1
        if it < burn_in and (it + 1) % 25 == 0:
            step *= float(np.exp(accepted / 25 - 0.3))
            step_f *= float(np.exp(accepted_f / 25 - 0.3))
            accepted = accepted_f = 0
        n_i = _row_draw(logpost, rng)
        n_a = n_i[d.a_pano]
        # Split each answer into true detections and extra tags.
        s_a = np.zeros(len(d.y), dtype=int)
        rate = _rates(d, f, g)
        if len(pos_rows):
            tab = _split_table(d, n_a[pos_rows], p, rate, pos_rows)
            cum = np.cumsum(tab, axis=1)
            u = rng.random(len(pos_rows)) * cum[:, -1]
            s_a[pos_rows] = (cum < u[:, None]).sum(axis=1)
        tot_s = np.bincount(d.a_vol, weights=s_a, minlength=nv)
        tot_n = np.bincount(d.a_vol, weights=n_a, minlength=nv)
        e_a = d.y - s_a
        if sum_x > 0:
            # Extra tags: the volunteer's own (Poisson f_j) or leaked in (Poisson g x_i).
            e_leak = rng.binomial(e_a, np.clip(g * x_a / np.maximum(rate, _TINY), 0, 1))
            g = float(rng.gamma(1.0 + e_leak.sum(), 1.0 / (1.0 + sum_x)))
            e_a = e_a - e_leak
        tot_e = np.bincount(d.a_vol, weights=e_a, minlength=nv)
        mu_p = float(_MU_P[i_mu])
        a_p, b_p = mu_p * kappa_p, (1 - mu_p) * kappa_p
        p = np.clip(rng.beta(a_p + tot_s, b_p + tot_n - tot_s), 1e-6, 1 - 1e-6)
        f = np.maximum(rng.gamma(shape_f + tot_e, 1.0 / (shape_f / mu_f + counts_v)), 1e-8)
        # Pool of detection rates: grid posterior of (mu_p, kappa_p), flat in mu, log kappa.
        slp, sl1p = np.log(p).sum(), np.log1p(-p).sum()
        lp = lbeta_grid + (am - 1) * slp + (bm - 1) * sl1p
        i_mu, ib = _grid_draw(lp, rng)
        kappa_p = float(_KAPPA_P[ib])
        # Pool of false-tag rates: Gamma(shape, shape / mean), log-flat in both.
        slf, sf = np.log(f).sum(), f.sum()
        lf = lgamma_grid + (sh - 1) * slf - sh / mf * sf
        i_mf, ib = _grid_draw(lf, rng)
        mu_f, shape_f = float(_MU_F[i_mf]), float(_SHAPE_F[ib])
        # Prior of N: negative binomial (mean, shape) on a grid, log-flat in both.
        hist = np.bincount(n_i, minlength=d.n_max + 1)
        nz = np.flatnonzero(hist)
        ln = nb_grid[:, :, nz] @ hist[nz].astype(float)
        i_mn, i_sn = _grid_draw(ln, rng)
        mean_n, shape_n = float(_MEAN_N[i_mn]), float(_SHAPE_N[i_sn])
        k = it - burn_in
        if k >= 0:
            totals[k] = n_i.sum()
            sum_n += n_i
            sum_n2 += n_i.astype(float) ** 2
            sum_zero += n_i == 0
            p_draws[k], f_draws[k] = p, f
            g_draws[k] = g
            hyper[k] = (_MU_P[i_mu], kappa_p, mu_f, shape_f, mean_n, shape_n)

    alpha = (1 - level) / 2
    lo, hi = np.quantile(totals, [alpha, 1 - alpha])
    total = TotalInterval(
        estimate=float(totals.mean()),
        low=float(lo),
        high=float(hi),
        level=level,
        std_error=float(totals.std(ddof=1)),
        method="latent-count model (Gibbs posterior of the total)",
    )
    sub_y = pd.DataFrame({"i": d.a_pano, "y": d.y})
    med = sub_y.groupby("i")["y"].median().to_numpy()
    n_ans = np.bincount(d.a_pano, minlength=npano)
    mean_i = sum_n / n_keep
    panoramas = pd.DataFrame(
        {
            "PanoramaId": d.pano_ids,
            "n_answers": n_ans,
            "median": med,
            "reviewed": d.fixed >= 0,
            "reference": np.where(d.fixed >= 0, d.fixed, np.nan),
            "posterior_mean": mean_i,
            "posterior_sd": np.sqrt(np.maximum(sum_n2 / n_keep - mean_i**2, 0.0)),
            "p_zero": sum_zero / n_keep,
        }
    )
    rev_tasks = np.bincount(d.a_vol, weights=(d.fixed[d.a_pano] >= 0), minlength=nv)
    volunteers = pd.DataFrame(
        {
            "DecoderId": d.vol_ids,
            "n_tasks": counts_v,
            "n_reviewed": rev_tasks.astype(int),
            "detection": p_draws.mean(axis=0),
            "detection_sd": p_draws.std(axis=0, ddof=1),
            "detection_low": np.quantile(p_draws, 0.025, axis=0),
            "detection_high": np.quantile(p_draws, 0.975, axis=0),
            "false_rate": f_draws.mean(axis=0),
            "false_rate_sd": f_draws.std(axis=0, ddof=1),
            "false_rate_low": np.quantile(f_draws, 0.025, axis=0),
            "false_rate_high": np.quantile(f_draws, 0.975, axis=0),
            "detection_em": p_em,
            "false_rate_em": f_em,
        }
    )
    names = ("detection_mean", "detection_concentration", "false_rate_mean", "false_rate_shape")
    pool = {n: float(hyper[:, k].mean()) for k, n in enumerate(names)}
    pool["n_prior_mean"] = float(hyper[:, 4].mean())
    pool["n_prior_shape"] = float(hyper[:, 5].mean())
    pool["em_total"] = float((post_em @ grid).sum())
    pool["leak_in"] = float(g_draws.mean())
    pool["leak_in_em"] = g_em
    diagnostics: dict[str, Any] = {
        "draws": draws,
        "burn_in": burn_in,
        "ess_total": _ess(totals),
        "scale_step": step,
        "ess_hyper": [round(_ess(hyper[:, k]), 1) for k in range(6)],
        "ess_mean_p": _ess(p_draws.mean(axis=1)),
        "ess_mean_f": _ess(f_draws.mean(axis=1)),
        "em_iterations": em_it,
        "n_max": d.n_max,
        "n_reviewed": int((d.fixed >= 0).sum()),
        "n_panoramas": npano,
        "n_volunteers": nv,
        "n_answers": len(d.y),
        "leak_from": list(leak_cols),
        "at_n_max": float((sum_n / n_keep > d.n_max - 0.5).mean()),
    }
    return LatentFit(
        category=category,
        total=total,
        sum_of_medians=float(med.sum()),
        panoramas=panoramas,
        volunteers=volunteers,
        pool=pool,
        total_draws=totals,
        diagnostics=diagnostics,
        ledger=ledger,
    )


def corrected_total(fit: LatentFit) -> pd.DataFrame:
    """Return the corrected total beside the conservative sum of medians (one row each).

    Columns ``total``, ``estimate``, ``low``, ``high``, ``level``, ``method``; the sum of
    medians has no interval (NaN), as Amnesty published it.
    """
    t = fit.total
    return pd.DataFrame(
        [
            {
                "total": "sum of medians (conservative, headline)",
                "estimate": fit.sum_of_medians,
                "low": np.nan,
                "high": np.nan,
                "level": np.nan,
                "method": "sum over panoramas of the volunteers' median",
            },
            {
                "total": "corrected total",
                "estimate": t.estimate,
                "low": t.low,
                "high": t.high,
                "level": t.level,
                "method": t.method,
            },
        ]
    )
