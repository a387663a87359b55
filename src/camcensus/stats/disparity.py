"""Who is watched: runs every disparity model and check, and says which conclusions survive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus._errors import Ledger
from camcensus.stats import models, spatial
from camcensus.stats import stops as stop_analyses
from camcensus.stats._result import ModelResult, coefficient_table

__all__ = ["DisparityResult", "race_sensitivity", "radius_sensitivity", "run_disparity"]

#: Radii (m) of the sensitivity analysis.
RADII = (30.0, 60.0, 90.0, 120.0, 150.0, 200.0)


@dataclass
class DisparityResult:
    """Every model, the robustness verdicts, plain-language findings and tables."""

    models: list[ModelResult]
    survival: pd.DataFrame
    findings: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def coefficients(self) -> pd.DataFrame:
        """Return the tidy coefficient table of every model."""
        return coefficient_table(self.models)


def run_disparity(
    tracts: gpd.GeoDataFrame,
    stop_counts: pd.DataFrame | None,
    *,
    records: pd.DataFrame | None = None,
    years: Sequence[int] | None = None,
    threshold: float | str = 0.2,
    min_population: int = 250,
    cluster: pd.Series | None = None,
    distances_m: Sequence[float] = (1000.0, 2000.0),
    permutations: int = 999,
    seed: int = 0,
    ledger: Ledger | None = None,
    rate_model: bool = False,
) -> DisparityResult:
    """Run the investigation's models and the checks beyond it on a tract table.

    Parameters
    ----------
    tracts
        Tracts with coverage and census columns (``run_census``'s ``tracts``) and geometry.
    stop_counts
        Long ``GEOID, year, count`` table; without it only the placement models run.
    records
        Stop records with ``GEOID`` (:func:`camcensus.stats.stops.stops_to_tracts`), for the
        record-level analyses.
    years
        Years of the stop models (default: those in ``stop_counts``; the bins model uses the
        first).
    threshold
        Surveillance level (effective cameras per 1,000 residents) that makes a tract "highly
        surveilled" in the placement model (Amnesty's code: 0.2; its text: 0.18), or
        ``"median"`` for the median tract (for cities whose camera density differs from NYC's).
    cluster
        Cluster of each tract (index = ``GEOID``), e.g. its NTA, for cluster-robust errors.
    distances_m, permutations, seed
        Conley distances, Moran permutations and their seed.
    rate_model
        Also fit :func:`~camcensus.stats.models.placement_poisson` (public cameras per surveyed
        intersection); only meaningful when the counts list camera-free intersections too.
    """
    ledger = ledger if ledger is not None else Ledger()
    table = models.model_table(tracts, stop_counts, min_population=min_population, ledger=ledger)
    if cluster is not None:
        table["nta"] = table["GEOID"].map(cluster)
    if threshold == "median":
        threshold = float(np.round(table["surv_place"].median(), 2))
        ledger.note(
            f"Placement model threshold: the median tract's surveillance level, {threshold:g} "
            "effective cameras per 1,000 residents."
        )
    threshold = float(threshold)
    if threshold == 0.2:
        ledger.note(
            "Placement model: a tract is 'highly surveilled' above 0.2 effective cameras per "
            "1,000 residents, as in Amnesty's code (its methodology note's text says 0.18)."
        )
    out: list[ModelResult] = []
    tables: dict[str, pd.DataFrame] = {}
    placement = models.placement_logit(table, threshold=threshold)
    placement_income = models.placement_logit(
        table, threshold=threshold, income=True, ledger=ledger
    )
    if stop_counts is not None:
        yrs = sorted(int(y) for y in stop_counts["year"].unique()) if years is None else list(years)
        bins = models.stops_by_surveillance_bins(table, year=yrs[0])
        tables["stops_by_surveillance_bins"] = pd.DataFrame(bins.extras["rates"])
        out.append(bins)
        out += models.stops_baseline(table, years=yrs)
        if "Queens" in set(table["borough"]) and 2019 in yrs:
            out.append(models.stops_sanity_queens(table))
        if 2019 in yrs:
            out.append(models.stops_interaction_lm(table))
    out += [placement, placement_income]
    if rate_model and "panoramas" in table.columns:
        out.append(models.placement_poisson(table))
    if stop_counts is not None:
        out += models.stops_overdispersion_variants(table, years=yrs)
        out += spatial.stops_spatial_checks(
            table,
            tracts,
            years=yrs,
            cluster="nta" if cluster is not None else None,
            distances_m=distances_m,
            permutations=permutations,
            seed=seed,
        )
    out += _placement_spatial(
        table, tracts, placement, cluster is not None, distances_m, permutations, seed
    )
    if records is not None and stop_counts is not None:
        tables.update(_record_tables(records, table))
    survival = survival_table(out)
    findings = write_findings(out, survival, tables, threshold=threshold)
    return DisparityResult(models=out, survival=survival, findings=findings, tables=tables)


def _placement_spatial(
    table: pd.DataFrame,
    tracts: gpd.GeoDataFrame,
    placement: ModelResult,
    has_cluster: bool,
    distances_m: Sequence[float],
    permutations: int,
    seed: int,
) -> list[ModelResult]:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    d = models.placement_data(table, float(placement.group["threshold"]))
    model = smf.glm(models.PLACEMENT_FORMULA, d, family=sm.families.Binomial())
    fit = model.fit()
    geo = tracts.set_index("GEOID")
    g = gpd.GeoDataFrame(d[["GEOID"]], geometry=geo.loc[d["GEOID"]].geometry.values, crs=geo.crs)
    w, islands = spatial.queen_weights(g)
    moran = spatial.moran_permutation(
        np.asarray(fit.resid_deviance), w, permutations=permutations, seed=seed
    )
    res = [
        ModelResult(
            "placement_logit_residual_moran",
            "Moran's I of deviance residuals of " + placement.formula,
            "diagnostic",
            moran.n,
            (moran,),
            group={"threshold": placement.group["threshold"]},
            extras={"islands": islands},
        )
    ]
    names = [models._clean_term(t) for t in fit.params.index]
    params = pd.Series(np.asarray(fit.params), index=names)
    n = int(fit.nobs)
    if has_cluster and d["nta"].notna().all():
        codes = pd.factorize(d["nta"])[0]
        cl = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
        res.append(
            ModelResult(
                "placement_logit_cluster_nta",
                placement.formula + "; SE clustered by NTA",
                "binomial",
                n,
                spatial._from_cov(params, np.asarray(cl.cov_params()), n, "cluster(NTA)"),
                group=placement.group,
            )
        )
    X = np.asarray(fit.model.exog)
    p = np.asarray(fit.fittedvalues)
    xy = spatial._coords_m(g)
    for dist in distances_m:
        cov = spatial.conley_covariance(X, d["high"].to_numpy() - p, p * (1 - p), xy, dist)
        res.append(
            ModelResult(
                f"placement_logit_conley_{dist:g}m",
                placement.formula + f"; Conley SE {dist:g} m",
                "binomial",
                n,
                spatial._from_cov(params, cov, n, f"conley({dist:g} m)"),
                group=placement.group,
            )
        )
    return res


def _record_tables(records: pd.DataFrame, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    surv = table.set_index("GEOID")["surv"]
    return {
        "innocence_by_race_and_surveillance": stop_analyses.innocence_by_race_and_surveillance(
            records, surv
        ),
        "black_share_by_surveillance": stop_analyses.black_share_by_surveillance(records, table),
        "crime_correlations": stop_analyses.crime_correlations(records, table),
    }


_CHECKS_STOPS = (
    "stops_baseline_quasipoisson",
    "stops_baseline_negbin",
    "stops_baseline_cluster_nta",
    "stops_baseline_conley_1000m",
    "stops_baseline_conley_2000m",
    "stops_spatial_error",
    "stops_spatial_lag",
)
_CHECKS_PLACEMENT = (
    "placement_logit_income",
    "placement_logit_cluster_nta",
    "placement_logit_conley_1000m",
    "placement_logit_conley_2000m",
)


def _key(r: ModelResult) -> tuple[object, ...]:
    return (r.group.get("borough"), r.group.get("year"))


def survival_table(results: list[ModelResult]) -> pd.DataFrame:
    """For each headline coefficient, whether its sign and 95% significance survive each check.

    Headlines: ``surv`` and ``nonwhite_fraction`` of every baseline stop model, and each
    ``borough[..]:nonwhite_fraction`` of the placement model. A conclusion survives when every
    check that ran keeps the sign with a 95% interval excluding zero.
    """
    by_name: dict[str, dict[tuple[object, ...], ModelResult]] = {}
    for r in results:
        by_name.setdefault(r.name, {})[_key(r)] = r
    rows = []
    for base_name, terms, checks in (
        ("stops_baseline", ("surv", "nonwhite_fraction"), _CHECKS_STOPS),
        ("placement_logit", None, _CHECKS_PLACEMENT),
    ):
        for key, base in by_name.get(base_name, {}).items():
            tlist = terms or tuple(
                c.term for c in base.coefficients if c.term.endswith(":nonwhite_fraction")
            )
            separated = bool(base.extras.get("perfect_separation"))
            for term in tlist:
                c = base.coef(term)
                sign = np.sign(c.estimate)
                significant = (c.ci_low > 0 or c.ci_high < 0) and not separated
                row: dict[str, object] = {
                    "model": base_name,
                    "borough": key[0]
                    if key[0] is not None
                    else term.split("]")[0].removeprefix("borough["),
                    "year": key[1],
                    "term": term,
                    "estimate": c.estimate,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "significant": bool(significant),
                }
                failed = []
                ran = 0
                for check in checks:
                    other = by_name.get(check, {}).get(
                        key if base_name == "stops_baseline" else (None, None)
                    )
                    if other is None:
                        continue
                    try:
                        oc = other.coef(term)
                    except KeyError:
                        continue
                    ran += 1
                    ok = np.sign(oc.estimate) == sign and (oc.ci_low > 0 or oc.ci_high < 0)
                    row[check] = bool(ok)
                    if not ok:
                        failed.append(check)
                if separated:
                    failed = ["perfect separation (not estimable)"]
                elif not significant:
                    # Nothing to survive: the base model already finds no clear difference.
                    failed = ["not significant in the base model"]
                row["checks_run"] = ran
                row["survives"] = bool(significant and not failed and ran > 0)
                row["failed_checks"] = ", ".join(failed)
                rows.append(row)
    return pd.DataFrame(rows)


def _pct(x: float) -> str:
    return f"{100 * (np.exp(x) - 1):+.0f}%"


def write_findings(
    results: list[ModelResult],
    survival: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    *,
    threshold: float,
) -> list[str]:
    """Return the findings in plain words, each generated from the numbers."""
    out: list[str] = []
    bins = tables.get("stops_by_surveillance_bins")
    if bins is not None and len(bins) >= 2:
        lo, hi = bins.iloc[0], bins.iloc[-1]
        out.append(
            f"Where surveillance is lowest ({lo['bin']} effective cameras within 200 m per 1,000 "
            f"residents) there were {lo['rate_per_1000']:.1f} stops per 1,000 residents "
            f"(95% CI {lo['ci_low']:.1f}–{lo['ci_high']:.1f}); where it is highest ({hi['bin']}) "
            f"{hi['rate_per_1000']:.1f} ({hi['ci_low']:.1f}–{hi['ci_high']:.1f})."
        )
    for row in survival.to_dict("records"):
        if str(row["failed_checks"]).startswith("perfect separation"):
            out.append(
                f"{row['borough']}: the placement model cannot be estimated (perfect separation: "
                f"at the threshold of {threshold:g} almost every tract is on one side)."
            )
            continue
        if not row["significant"]:
            verdict = "but the 95% interval includes no difference"
        elif row["survives"]:
            verdict = "and it survives every spatial and overdispersion check"
        else:
            verdict = f"but it does not survive these checks: {row['failed_checks']}"
        where = row["borough"] if pd.isna(row["year"]) else f"{row['borough']} {int(row['year'])}"
        if row["model"] == "stops_baseline" and row["term"] == "surv":
            out.append(
                f"{where}: each additional effective camera per 1,000 "
                f"residents goes with {_pct(row['estimate'])} stops (95% CI "
                f"{_pct(row['ci_low'])} to {_pct(row['ci_high'])}), at equal non-white share, "
                f"{verdict}."
            )
        elif row["model"] == "stops_baseline":
            out.append(
                f"{where}: at equal surveillance, a tract 10 points more "
                f"non-white has {_pct(0.1 * row['estimate'])} stops (95% CI "
                f"{_pct(0.1 * row['ci_low'])} to {_pct(0.1 * row['ci_high'])}), {verdict}."
            )
        else:
            odds = np.exp(0.1 * np.array([row["estimate"], row["ci_low"], row["ci_high"]]))
            out.append(
                f"{row['borough']}: a tract 10 points more non-white has {odds[0]:.2f} times the "
                f"odds of being highly surveilled (more than {threshold:g} effective cameras per "
                f"1,000 residents; 95% CI {odds[1]:.2f}–{odds[2]:.2f}), {verdict}."
            )
    inn = tables.get("innocence_by_race_and_surveillance")
    if inn is not None and len(inn):
        black = {
            str(r["surveillance"]): r for r in inn.loc[inn["race"] == "Black"].to_dict("records")
        }
        if {"high", "low"} <= set(black):
            high, low = black["high"], black["low"]
            out.append(
                f"Black people stopped in highly surveilled tracts were found innocent (no arrest, "
                f"summons or weapon) {100 * high['estimate']:.0f}% of the time "
                f"(95% CI {100 * high['ci_low']:.0f}–{100 * high['ci_high']:.0f}%), against "
                f"{100 * low['estimate']:.0f}% in less surveilled tracts."
            )
    share = tables.get("black_share_by_surveillance")
    if share is not None and len(share):
        h = share.set_index("surveillance").loc["high"]
        out.append(
            f"In highly surveilled tracts {100 * h['stopped_black_share']:.0f}% of the people "
            f"stopped were Black (95% CI {100 * h['ci_low']:.0f}–{100 * h['ci_high']:.0f}%), "
            f"while {100 * h['resident_black_share']:.0f}% of their residents are."
        )
    return out


def radius_sensitivity(
    coverage_for_radius: Callable[[float], gpd.GeoDataFrame],
    stop_counts: pd.DataFrame | None,
    *,
    radii: Sequence[float] = RADII,
    threshold: float = 0.2,
    year: int = 2019,
    min_population: int = 250,
) -> pd.DataFrame:
    """Refit the baseline stop model and the placement model for each camera radius.

    ``coverage_for_radius(r)`` returns the tract table with coverage recomputed at radius r.
    Returns a tidy table: radius, model, borough, term, estimate, ci_low, ci_high.
    """
    rows: list[dict[str, object]] = []
    for r in radii:
        table = models.model_table(
            coverage_for_radius(r), stop_counts, min_population=min_population
        )
        rows += _headline_rows(table, stop_counts, threshold, year, radius_m=r)
    return pd.DataFrame(rows)


def _headline_rows(
    table: pd.DataFrame,
    stop_counts: pd.DataFrame | None,
    threshold: float,
    year: int,
    **label: object,
) -> list[dict[str, object]]:
    """Fit the placement and baseline stop models; return their headline coefficients."""
    fitted = [models.placement_logit(table, threshold=threshold)]
    if stop_counts is not None:
        fitted += models.stops_baseline(table, years=[year])
    rows: list[dict[str, object]] = []
    for res in fitted:
        for c in res.coefficients:
            if c.term in {"surv", "nonwhite_fraction"} or c.term.endswith(":nonwhite_fraction"):
                rows.append(
                    {
                        **label,
                        "model": res.name,
                        "borough": res.group.get("borough"),
                        "term": c.term,
                        "estimate": c.estimate,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "n": c.n,
                    }
                )
    return rows


def race_sensitivity(
    tracts: pd.DataFrame,
    alternative: pd.DataFrame,
    stop_counts: pd.DataFrame | None,
    *,
    threshold: float = 0.2,
    year: int = 2019,
    label: str = "non-Hispanic",
) -> pd.DataFrame:
    """Refit with another race definition: ``alternative`` (indexed by GEOID, with
    ``nonwhite_fraction``) replaces the tracts' non-white fraction. Returns both fits' headline
    coefficients side by side (``definition`` column)."""
    rows: list[dict[str, object]] = []
    alt = tracts.copy()
    alt["nonwhite_fraction"] = alt["GEOID"].map(alternative["nonwhite_fraction"])
    for name, t in (("White alone (ACS B02001)", tracts), (label, alt)):
        table = models.model_table(t, stop_counts)
        rows += _headline_rows(table, stop_counts, threshold, year, definition=name)
    return pd.DataFrame(rows)
