"""Spatial checks of the disparity models (beyond the investigation).

Neighbouring tracts share police precincts, commercial strips and camera programmes, so their
residuals are not independent and the models' standard errors are too small. Here: Moran's I
of the residuals on queen contiguity (seeded permutation inference), cluster-robust standard
errors by neighbourhood (NTA), Conley (1999) spatial-HAC standard errors at several distances,
and spatial error / lag regressions (spreg) as robustness checks.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats as sps

from camcensus import settings
from camcensus._errors import OptionError
from camcensus._geo import locate_points, measurement_crs, metres_per_unit
from camcensus.stats import models
from camcensus.stats._result import Estimate, ModelResult
from camcensus.stats._warn import attach, recording

__all__ = [
    "MAX_PERMUTATIONS",
    "check_permutations",
    "conley_covariance",
    "moran_permutation",
    "nta_of_tracts",
    "queen_weights",
    "stops_spatial_checks",
]

_Z = float(sps.norm.ppf(0.975))


def queen_weights(gdf: gpd.GeoDataFrame) -> tuple[object, int]:
    """Return row-standardised queen-contiguity weights (libpysal) and the number of islands."""
    from libpysal.weights import Queen

    # libpysal prints (not warns) about islands: keep the console clean, count them instead.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(gdf.reset_index(drop=True), use_index=False)
        w.transform = "r"
    return w, len(w.islands)


#: Most permutations of a Moran test (the ``permutations`` setting's range).
#: The most permutations a Moran test may take (the range of the ``permutations`` setting).
MAX_PERMUTATIONS = int(settings.SETTINGS["permutations"].high or 99_999)


def check_permutations(permutations: object) -> int:
    """Return ``permutations`` when it is a whole number from 1 to 99,999; else raise
    :class:`~camcensus.OptionError` naming ``--permutations``."""
    whole = isinstance(permutations, int | np.integer) and not isinstance(permutations, bool)
    n = int(permutations) if whole else 0  # type: ignore[call-overload]
    if not 1 <= n <= MAX_PERMUTATIONS:
        raise OptionError(
            f"--permutations {permutations!r} is not a whole number from 1 to "
            f"{MAX_PERMUTATIONS:,}: a Moran test needs at least one permutation, and more than "
            f"{MAX_PERMUTATIONS:,} only costs time. Fix: --permutations 999 (the default)."
        )
    return n


def moran_permutation(
    values: np.ndarray, w: object, *, permutations: int = 999, seed: int = 0
) -> Estimate:
    """Moran's I of ``values`` with a seeded permutation test.

    The statistic is esda's; the permutation inference is done here with
    ``numpy.random.default_rng(seed)`` so it is reproducible. ``std_error`` is the standard
    deviation of the permutation distribution, ``ci_low``/``ci_high`` its middle 95%, and
    ``p_value`` the folded pseudo p-value (as esda's ``p_sim``). Islands (tracts with no
    neighbour) contribute nothing.
    """
    import esda

    check_permutations(permutations)
    z = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observed = float(esda.Moran(z, w, permutations=0).I)
    sparse = w.sparse  # type: ignore[attr-defined]
    zc = z - z.mean()
    s0 = float(sparse.sum())
    n = len(z)

    def stat(v: np.ndarray) -> float:
        return float(n / s0 * (v @ (sparse @ v)) / (v @ v))

    rng = np.random.default_rng(seed)
    sims = np.array([stat(rng.permutation(zc)) for _ in range(permutations)])
    expected = -1.0 / (n - 1)
    if observed >= expected:
        larger = int(np.sum(sims >= observed))
    else:
        larger = int(np.sum(sims <= observed))
    p = (larger + 1) / (permutations + 1)
    lo, hi = np.quantile(sims, [0.025, 0.975])
    return Estimate(
        "moran_I",
        observed,
        float(sims.std()),
        float(lo),
        float(hi),
        float(p),
        n,
        f"permutation({permutations}, seed={seed})",
    )


def conley_covariance(
    X: np.ndarray, resid: np.ndarray, weights: np.ndarray, xy: np.ndarray, cutoff: float
) -> np.ndarray:
    """Conley (1999) spatial-HAC covariance of a canonical-link GLM's coefficients.

    ``resid`` are response residuals (y − mu), ``weights`` the variance function at mu
    (mu for Poisson, p(1−p) for logit), ``xy`` coordinates in metres. Scores of tracts within
    ``cutoff`` metres are correlated with a Bartlett kernel 1 − d/cutoff.
    """
    scores = X * resid[:, None]
    # pinv, as the models' own covariance: a rank-deficient design (a district of one tract)
    # gives meaningless errors for its terms, not a crash.
    bread = np.linalg.pinv(X.T @ (X * weights[:, None]))
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    k = np.clip(1.0 - d / cutoff, 0.0, None)
    meat = scores.T @ k @ scores
    out: np.ndarray = bread @ meat @ bread
    return out


def nta_of_tracts(
    gdf_tracts: gpd.GeoDataFrame, gdf_ntas: gpd.GeoDataFrame, column: str
) -> pd.Series:
    """Return the NTA (``column`` of ``gdf_ntas``) holding each tract's representative point."""
    pts = gdf_tracts.geometry.representative_point().to_crs(gdf_ntas.crs)
    owner = locate_points(np.asarray(pts.values), np.asarray(gdf_ntas.geometry.values)).owner
    codes = np.full(len(owner), None, dtype=object)
    codes[owner >= 0] = gdf_ntas[column].to_numpy()[owner[owner >= 0]]
    return pd.Series(codes, index=gdf_tracts.index, dtype=object)


def _coords_m(gdf: gpd.GeoDataFrame) -> np.ndarray:
    crs = measurement_crs(gdf)
    pts = gdf.to_crs(crs).geometry.representative_point()
    return np.column_stack([pts.x, pts.y]) * metres_per_unit(crs)


def _from_cov(params: pd.Series, cov: np.ndarray, n: int, method: str) -> tuple[Estimate, ...]:
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    out = []
    for i, term in enumerate(params.index):
        est = float(params.iloc[i])
        z = est / se[i] if se[i] > 0 else np.nan
        p = float(2 * sps.norm.sf(abs(z))) if np.isfinite(z) else float("nan")
        out.append(
            Estimate(str(term), est, float(se[i]), est - _Z * se[i], est + _Z * se[i], p, n, method)
        )
    return tuple(out)


def stops_spatial_checks(
    df: pd.DataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    years: Sequence[int] = (2019, 2020),
    cluster: str | None = "nta",
    distances_m: Sequence[float] = (1000.0, 2000.0),
    permutations: int = 999,
    seed: int = 0,
    skip: Sequence[tuple[str, int]] = (),
) -> list[ModelResult]:
    """Spatial checks of the baseline stop model, per borough × year (not those in ``skip``).

    Returns, per borough and year: ``stops_baseline_residual_moran`` (Moran's I of the Poisson
    deviance residuals), ``stops_baseline_cluster_nta`` (cluster-robust by ``df[cluster]``),
    ``stops_baseline_conley_<d>m`` for each distance, and ``stops_spatial_error`` /
    ``stops_spatial_lag`` (spreg GM estimators) of log(stops per 1,000 + 0.5) on the same terms.
    ``gdf_tracts`` gives the geometry of ``df``'s tracts (matched on ``GEOID``).
    """
    import spreg

    geo = gdf_tracts.set_index("GEOID")
    out: list[ModelResult] = []
    stops = models.STOPS_FORMULA
    for b in sorted(df["borough"].unique()):
        # Weights and coordinates depend on the borough's tracts only: once for all years.
        tracts_b = df.loc[df["borough"] == b, "GEOID"]
        g = gpd.GeoDataFrame(geometry=geo.loc[tracts_b].geometry.values, crs=geo.crs)
        w, islands = queen_weights(g)
        xy = _coords_m(g)
        for year in years:
            if (b, year) in skip:
                continue
            d = models.borough_year(df, b, year)
            group = {"borough": b, "year": year}
            first = len(out)
            with recording() as caught:
                model = models.stops_glm(d)
                fit = model.fit()
                n = int(fit.nobs)
                moran = moran_permutation(
                    np.asarray(fit.resid_deviance), w, permutations=permutations, seed=seed
                )
                out.append(
                    ModelResult(
                        "stops_baseline_residual_moran",
                        f"Moran's I of deviance residuals of {stops}",
                        "diagnostic",
                        moran.n,
                        (moran,),
                        group=group,
                        extras={
                            "weights": "queen contiguity, row-standardised",
                            "islands": islands,
                        },
                    )
                )
                if cluster is not None and cluster in d.columns and d[cluster].notna().all():
                    codes = pd.factorize(d[cluster])[0]
                    cl = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
                    out.append(
                        ModelResult(
                            "stops_baseline_cluster_nta",
                            f"{stops}, offset = log(popn); SE clustered by NTA",
                            "poisson",
                            n,
                            _from_cov(cl.params, np.asarray(cl.cov_params()), n, "cluster(NTA)"),
                            deviance=float(cl.deviance),
                            aic=float(cl.aic),
                            group=group,
                            extras={"clusters": int(codes.max() + 1)},
                        )
                    )
                X = np.asarray(fit.model.exog)
                mu = np.asarray(fit.fittedvalues)
                for dist in distances_m:
                    cov = conley_covariance(X, d["numstops"].to_numpy() - mu, mu, xy, dist)
                    out.append(
                        ModelResult(
                            f"stops_baseline_conley_{dist:g}m",
                            f"{stops}; Conley SE, Bartlett kernel {dist:g} m",
                            "poisson",
                            n,
                            _from_cov(fit.params, cov, n, f"conley({dist:g} m)"),
                            deviance=float(fit.deviance),
                            aic=float(fit.aic),
                            group=group,
                        )
                    )
                y = np.log(d["numstops"].to_numpy() / d["popn"].to_numpy() * 1000 + 0.5)[:, None]
                xs = d[["surv", "nonwhite_fraction"]].to_numpy(dtype=float)
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    fitted = {
                        "stops_spatial_error": spreg.GM_Error(y, xs, w=w),
                        "stops_spatial_lag": spreg.GM_Lag(y, xs, w=w),
                    }
                for label, sp in fitted.items():
                    betas = np.asarray(sp.betas).ravel()
                    params = pd.Series(betas[:3], index=["Intercept", "surv", "nonwhite_fraction"])
                    kind = "spatial error" if label.endswith("error") else "spatial lag"
                    out.append(
                        ModelResult(
                            label,
                            f"log(stops per 1,000 + 0.5) ~ surv + nonwhite_fraction, {kind} (GM)",
                            "gaussian",
                            n,
                            _from_cov(params, np.asarray(sp.vm)[:3, :3], n, "spreg GM"),
                            group=group,
                            extras={"spatial_parameter": float(betas[-1]), "islands": islands},
                        )
                    )
            for res in out[first:]:
                attach(res, caught)
    return out
