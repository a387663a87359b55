"""Who is watched: runs every disparity model and check, and says which conclusions survive."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus.stats import models, spatial
from camcensus.stats import stops as stop_analyses
from camcensus.stats._result import ModelResult, coefficient_table
from camcensus.stats._warn import attach, recording
from camcensus.stats.profile import INTERVAL_METHODS
from camcensus.studies import GENERIC, StudyDesign

__all__ = [
    "CHECK_WORDS",
    "GENERIC",
    "DisparityResult",
    "StudyDesign",
    "race_sensitivity",
    "radius_sensitivity",
    "run_disparity",
    "survival_table",
    "write_findings",
]

#: Radii (m) of the sensitivity analysis.
RADII = (30.0, 60.0, 90.0, 120.0, 150.0, 200.0)


@dataclass
class DisparityResult:
    """Every model, the robustness verdicts, plain-language findings and tables."""

    models: list[ModelResult]
    survival: pd.DataFrame
    findings: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: How the base models' intervals (and the survival verdicts) were obtained.
    interval_method: str = INTERVAL_METHODS["profile"]

    def coefficients(self) -> pd.DataFrame:
        """Return the tidy coefficient table of every model."""
        return coefficient_table(self.models)


def run_disparity(
    tracts: gpd.GeoDataFrame,
    stop_counts: pd.DataFrame | None,
    *,
    records: pd.DataFrame | None = None,
    years: Sequence[int] | None = None,
    threshold: float | str | None = None,
    min_population: int | None = None,
    cluster: pd.Series | None = None,
    distances_m: Sequence[float] = (1000.0, 2000.0),
    permutations: int | None = None,
    seed: int | None = None,
    ledger: Ledger | None = None,
    rate_model: bool = False,
    reference: pd.DataFrame | None = None,
    design: StudyDesign = GENERIC,
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

    reference
        Amnesty's per-tract coverage (``camera_count.csv``: ``GEOID``, ``eff_cameras``), to
        explain tract by tract why the placement models differ from the printed ones (table
        ``published_vs_ours``, made when ``design.compare_published``).
    design
        The study's choices (:class:`StudyDesign`): its sanity model, districts left out of
        some analyses, and whether its printed numbers are compared.

    ``threshold``, ``min_population`` and ``permutations`` default to their settings.
    Intervals of the base models are profile-likelihood intervals (R's ``confint``); the
    verdicts of :func:`survival_table` use them.
    """
    ledger = ledger if ledger is not None else Ledger()
    threshold = _check_threshold(settings.get("threshold") if threshold is None else threshold)
    min_population = int(
        settings.get("min_population") if min_population is None else min_population
    )
    permutations = spatial.check_permutations(
        settings.get("permutations") if permutations is None else permutations
    )
    seed = settings.get_int("seed") if seed is None else seed
    # Warnings a model does not keep itself are noted, never printed to the console.
    with recording() as caught:
        result = _run_disparity(
            tracts,
            stop_counts,
            records=records,
            years=years,
            threshold=threshold,
            min_population=min_population,
            cluster=cluster,
            distances_m=distances_m,
            permutations=permutations,
            seed=seed,
            ledger=ledger,
            rate_model=rate_model,
            reference=reference,
            design=design,
        )
    for line in caught:
        ledger.note(f"Warning while fitting the models: {line}")
    return result


def _nothing_left(tracts: pd.DataFrame, ledger: Ledger, min_population: int) -> ValueError:
    """Return the error saying that no tract is left for the models, and why."""
    why = "; ".join(f"{e.count:,} {e.reason}" for e in ledger.exclusions if e.stage == "models")
    popn = pd.to_numeric(tracts["popn"], errors="coerce")
    if len(tracts) and bool((popn > 0).any()) and not bool((popn > min_population).any()):
        return OptionError(
            f"--min-population {min_population:,} leaves no tract for the models: the largest "
            f"tract has {popn.max():,.0f} residents. Fix: a smaller --min-population, e.g. "
            f"{max(0, int(popn.quantile(0.1))):,}."
        )
    return InputError(
        [
            Problem(
                "",
                None,
                "popn",
                f"no tract left for the models out of {len(tracts):,} ({why or 'no tracts given'})",
                f"tracts with more than {min_population:,} residents, camera coverage and "
                "Black, Hispanic or White residents",
                "check the tract table's popn, eff_cameras and population columns (a table "
                "of another city or year, or columns left empty?)",
            )
        ]
    )


def _check_threshold(threshold: float | int | str) -> float | str:
    """Return the placement threshold (a number from 0 to 1,000, or ``"median"``); else raise
    :class:`~camcensus.OptionError` naming ``--threshold``."""
    if isinstance(threshold, str) and threshold.strip().lower() == "median":
        return "median"
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    low = settings.SETTINGS["threshold"].low or 0.0
    high = settings.SETTINGS["threshold"].high or 1_000.0
    if not (math.isfinite(value) and low <= value <= high):
        raise OptionError(
            f"--threshold {threshold!r} is not a number from 0 to 1,000 (effective cameras per "
            "1,000 residents above which a tract is 'highly surveilled'; a negative threshold "
            "makes every tract high, NaN none). Fix: --threshold 0.2 (Amnesty's code), or "
            "'median' (the median tract) in the library."
        )
    return value


def _run_disparity(
    tracts: gpd.GeoDataFrame,
    stop_counts: pd.DataFrame | None,
    *,
    records: pd.DataFrame | None,
    years: Sequence[int] | None,
    threshold: float | str,
    min_population: int,
    cluster: pd.Series | None,
    distances_m: Sequence[float],
    permutations: int,
    seed: int,
    ledger: Ledger,
    rate_model: bool,
    reference: pd.DataFrame | None,
    design: StudyDesign,
) -> DisparityResult:
    table = models.model_table(tracts, stop_counts, min_population=min_population, ledger=ledger)
    if table.empty:
        raise _nothing_left(tracts, ledger, min_population)
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
    placement_bh = models.placement_logit(table, threshold=threshold, black_hispanic=True)
    skipped: list[tuple[str, int]] = []
    if stop_counts is not None:
        yrs = sorted(int(y) for y in stop_counts["year"].unique()) if years is None else list(years)
        skipped = _empty_borough_years(table, yrs, ledger)
        out += [_skipped_result(b, y) for b, y in skipped]
        bins = models.stops_by_surveillance_bins(table, year=yrs[0])
        tables["stops_by_surveillance_bins"] = pd.DataFrame(bins.extras["rates"]).assign(
            year=yrs[0], definition="Amnesty p.33"
        )
        out.append(bins)
        out += models.stops_baseline(table, years=yrs, skip=skipped)
        if (
            design.sanity is not None
            and design.sanity[0] in set(table["borough"])
            and design.sanity[1] in yrs
            and design.sanity not in skipped
        ):
            out.append(
                models.stops_sanity_queens(table, borough=design.sanity[0], year=design.sanity[1])
            )
        year_lm = yrs[0] if design.interaction_year is None else design.interaction_year
        if year_lm in yrs:
            out.append(
                models.stops_interaction_lm(
                    table,
                    year=year_lm,
                    exclude=design.exclude_districts,
                    nonwhite_all=tracts["nonwhite_fraction"],
                )
            )
    out += [placement, placement_income, placement_bh]
    if rate_model and "panoramas" in table.columns:
        out.append(models.placement_poisson(table))
    if stop_counts is not None:
        out += models.stops_overdispersion_variants(table, years=yrs, skip=skipped)
        out += spatial.stops_spatial_checks(
            table,
            tracts,
            years=yrs,
            skip=skipped,
            cluster="nta" if cluster is not None else None,
            distances_m=distances_m,
            permutations=permutations,
            seed=seed,
        )
    out += _placement_spatial(
        table, tracts, placement, cluster is not None, distances_m, permutations, seed
    )
    if records is not None and stop_counts is not None:
        record_models, record_tables = _record_analyses(
            records,
            tracts,
            table,
            threshold=threshold,
            min_population=min_population,
            exclude=design.exclude_districts,
            ledger=ledger,
        )
        out += record_models
        tables.update(record_tables)
        if 2019 not in set(records["year"]):
            ledger.note(
                "Stop records of 2019 are not available here (only tract counts of 2019): "
                "Amnesty's record-level analyses (innocence, 'stopped while Black', crimes) "
                "are run on the years given as records, "
                + ", ".join(str(int(y)) for y in sorted(records["year"].unique()))
                + ", and are not comparable with the 2019 numbers Amnesty printed."
            )
    if design.compare_published:
        from camcensus.stats import published_models

        tables["published_vs_ours"] = published_models.compare(
            out,
            tracts=tracts,
            reference=reference,
            records=records,
            ledger=ledger,
            threshold=threshold,
        )
    survival = survival_table(out)
    findings = write_findings(
        out, survival, tables, threshold=threshold, compare_published=design.compare_published
    )
    return DisparityResult(
        models=out,
        survival=survival,
        findings=findings,
        tables=tables,
        interval_method=INTERVAL_METHODS["profile"],
    )


def _setting_int(name: str, value: int | None) -> int:
    return int(settings.get(name) if value is None else value)


def _empty_borough_years(
    table: pd.DataFrame, years: Sequence[int], ledger: Ledger
) -> list[tuple[str, int]]:
    """Return the (borough, year) pairs without a single stop; note each in ``ledger``."""
    out = []
    for year in years:
        col = f"stops_{year}"
        if col not in table.columns:
            continue
        for b, total in table.groupby("borough")[col].sum().items():
            if total <= 0:
                out.append((str(b), int(year)))
                ledger.note(
                    f"{b} {year}: no stops recorded in its tracts; its stop models are skipped."
                )
    return out


def _skipped_result(borough: str, year: int) -> ModelResult:
    return ModelResult(
        "stops_baseline_skipped",
        models.STOPS_FORMULA,
        "poisson",
        0,
        (),
        group={"borough": borough, "year": year},
        extras={"reason": f"no stops recorded in {borough} in {year}"},
    )


def _placement_spatial(
    table: pd.DataFrame,
    tracts: gpd.GeoDataFrame,
    placement: ModelResult,
    has_cluster: bool,
    distances_m: Sequence[float],
    permutations: int,
    seed: int,
) -> list[ModelResult]:
    """Moran's I of the placement model's residuals, its cluster and Conley variants; warnings
    of the fits (e.g. statsmodels' PerfectSeparationWarning) are kept with each result."""
    with recording() as caught:
        res = _placement_spatial_fits(
            table, tracts, placement, has_cluster, distances_m, permutations, seed
        )
    return [attach(r, caught) for r in res]


def _placement_spatial_fits(
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


#: Fewest stop records of one year for the record-level analyses (fewer: the year is skipped).
MIN_RECORDS = 30


def _record_analyses(
    records: pd.DataFrame,
    tracts: pd.DataFrame,
    table: pd.DataFrame,
    *,
    threshold: float,
    min_population: int,
    exclude: tuple[str, ...] = (),
    ledger: Ledger | None = None,
) -> tuple[list[ModelResult], dict[str, pd.DataFrame]]:
    """Amnesty's record-level analyses (p.44-49) per year of records, and our extras; a year
    with fewer than :data:`MIN_RECORDS` records is skipped (noted in ``ledger``)."""
    fitted: list[ModelResult] = []
    slopes, shares, by_race = [], [], []
    extras: dict[str, list[pd.DataFrame]] = {
        "innocence_by_race_and_surveillance": [],
        "black_share_by_surveillance": [],
        "crime_correlations": [],
    }
    per_year = records["year"].value_counts()
    for year in sorted(int(y) for y in per_year.index):
        if per_year[year] < MIN_RECORDS:
            if ledger is not None:
                ledger.note(
                    f"Stop records of {year}: only {int(per_year[year]):,}; the record-level "
                    f"analyses need at least {MIN_RECORDS} and are skipped for that year (a "
                    "typing error in YEAR2?)."
                )
            continue
        fitted.append(
            stop_analyses.innocence_lpm(records, tracts, year=year, min_population=min_population)
        )
        fitted.append(
            stop_analyses.innocence_lpm(
                records,
                tracts,
                year=year,
                crimes=("ASSAULT", "ROBBERY"),
                min_population=min_population,
            )
        )
        fitted.append(
            stop_analyses.stopped_while_black(
                records,
                tracts,
                year=year,
                threshold=threshold,
                min_population=min_population,
                exclude=exclude,
            )
        )
        slopes.append(
            stop_analyses.crime_slopes(records, tracts, year=year, min_population=min_population)
        )
        shares.append(pd.DataFrame([stop_analyses.five_crime_share(records, year=year)]))
        by_race.append(stop_analyses.innocence_by_race(records, year=year))
        rec = records.loc[records["year"] == year]
        surv = table.set_index("GEOID")["surv"]
        for name, t in (
            (
                "innocence_by_race_and_surveillance",
                stop_analyses.innocence_by_race_and_surveillance(rec, surv),
            ),
            ("black_share_by_surveillance", stop_analyses.black_share_by_surveillance(rec, table)),
            ("crime_correlations", stop_analyses.crime_correlations(rec, table)),
        ):
            extras[name].append(t.assign(year=year, definition=stop_analyses.EXTRA))
    tables = {
        "crime_slopes": slopes,
        "five_crime_share": shares,
        "innocence_by_race": by_race,
        **extras,
    }
    out = {k: pd.concat(v, ignore_index=True) for k, v in tables.items() if v}
    lpm_rows = []
    for m in fitted:
        for c in m.coefficients:
            lpm_rows.append(
                {
                    "year": m.group["year"],
                    "model": m.name,
                    "term": c.term,
                    "estimate": c.estimate,
                    "std_error": c.std_error,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "p_value": c.p_value,
                    "n": c.n,
                    "method": c.method,
                    "definition": m.group["definition"],
                }
            )
    out["record_models"] = pd.DataFrame(lpm_rows)
    return fitted, out


# Conley checks (one per distance) are added by name in survival_table.
_CHECKS_STOPS = (
    "stops_baseline_quasipoisson",
    "stops_baseline_negbin",
    "stops_baseline_cluster_nta",
    "stops_spatial_error",
    "stops_spatial_lag",
)
_CHECKS_PLACEMENT = (
    "placement_logit_income",
    "placement_logit_cluster_nta",
)


#: Each check in words for the public (the survival table keeps the internal id too).
CHECK_WORDS = {
    "stops_baseline_quasipoisson": "quasi-Poisson standard errors (allowing overdispersion)",
    "stops_baseline_negbin": "a negative binomial model (allowing overdispersion)",
    "stops_baseline_cluster_nta": "standard errors clustered by neighbourhood (NTA)",
    "stops_spatial_error": "a spatial error regression",
    "stops_spatial_lag": "a spatial lag regression",
    "placement_logit_income": "adding median household income",
    "placement_logit_cluster_nta": "standard errors clustered by neighbourhood (NTA)",
}


def check_words(check: str) -> str:
    """Return the check ``check`` (an internal model name) in words."""
    if check in CHECK_WORDS:
        return CHECK_WORDS[check]
    if "_conley_" in check:
        metres = float(check.rsplit("_conley_", 1)[1].removesuffix("m"))
        dist = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
        return f"spatially correlated errors within {dist} (Conley)"
    return check.replace("_", " ")


def _key(r: ModelResult) -> tuple[object, ...]:
    return (r.group.get("borough"), r.group.get("year"))


def _excludes_zero(lo: float, hi: float) -> bool:
    # A NaN bound (profile not reaching the cut-off, R: NA) establishes nothing.
    if not _established(lo, hi):
        return False
    return bool(lo > 0 or hi < 0)


def _established(lo: float, hi: float) -> bool:
    return not (pd.isna(lo) or pd.isna(hi))


#: The verdict of a conclusion whose base interval has a NaN bound.
NOT_ESTABLISHED = "interval not established (profile likelihood does not reach the 95% cut-off)"


def survival_table(results: list[ModelResult]) -> pd.DataFrame:
    """For each headline coefficient, whether its sign and 95% significance survive each check.

    Headlines: ``surv`` and ``nonwhite_fraction`` of every baseline stop model, and each
    ``borough[..]:nonwhite_fraction`` of the placement model. A conclusion is significant when
    the base model's 95% interval (profile likelihood, as R's ``confint``; column
    ``interval``) excludes zero; the Wald interval is shown beside it (``wald_ci_low``,
    ``wald_ci_high``, ``significant_wald``). It survives when every check that ran keeps the
    sign with a 95% interval excluding zero; a check whose model did not converge fails.
    ``failed_checks`` lists the internal ids, ``failed_checks_words`` the same in words.
    """
    by_name: dict[str, dict[tuple[object, ...], ModelResult]] = {}
    for r in results:
        by_name.setdefault(r.name, {})[_key(r)] = r
    checks_stops = _CHECKS_STOPS + tuple(
        sorted(n for n in by_name if n.startswith("stops_baseline_conley_"))
    )
    checks_place = _CHECKS_PLACEMENT + tuple(
        sorted(n for n in by_name if n.startswith("placement_logit_conley_"))
    )
    rows = []
    for base_name, terms, checks in (
        ("stops_baseline", ("surv", "nonwhite_fraction"), checks_stops),
        ("placement_logit", None, checks_place),
    ):
        for key, base in by_name.get(base_name, {}).items():
            tlist = terms or tuple(
                c.term for c in base.coefficients if c.term.endswith(":nonwhite_fraction")
            )
            separated = bool(base.extras.get("perfect_separation"))
            for term in tlist:
                c = base.coef(term)
                sign = np.sign(c.estimate)
                significant = _excludes_zero(c.ci_low, c.ci_high) and not separated
                wald = (c.estimate - _Z * c.std_error, c.estimate + _Z * c.std_error)
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
                    "interval": base.interval,
                    "significant": bool(significant),
                    "wald_ci_low": wald[0],
                    "wald_ci_high": wald[1],
                    "significant_wald": _excludes_zero(*wald) and not separated,
                    "p_value": c.p_value,
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
                    converged = other.extras.get("converged") is not False
                    ok = (
                        converged
                        and np.sign(oc.estimate) == sign
                        and _excludes_zero(oc.ci_low, oc.ci_high)
                    )
                    row[check] = bool(ok)
                    if not ok:
                        failed.append(check if converged else f"{check} (did not converge)")
                if separated:
                    failed = ["perfect separation (not estimable)"]
                elif not _established(c.ci_low, c.ci_high):
                    failed = [NOT_ESTABLISHED]
                elif not significant:
                    # Nothing to survive: the base model already finds no clear difference.
                    failed = ["not significant in the base model"]
                row["checks_run"] = ran
                row["survives"] = bool(significant and not failed and ran > 0)
                row["failed_checks"] = ", ".join(failed)
                row["failed_checks_words"] = "; ".join(_failed_words(f) for f in failed)
                rows.append(row)
    return pd.DataFrame(rows)


def _failed_words(failed: str) -> str:
    if failed.endswith(" (did not converge)"):
        return check_words(failed.removesuffix(" (did not converge)")) + " (did not converge)"
    if failed.startswith(("perfect separation", "not significant", "interval not established")):
        return failed
    return check_words(failed)


_Z = 1.959963984540054


def _pct(x: float) -> str:
    return f"{100 * (np.exp(x) - 1):+.0f}%"


def _interval_words(row: dict[Any, Any]) -> tuple[str, str]:
    """Return the interval's name ("95% profile-likelihood CI") and, when the Wald interval
    would have decided otherwise, a remark saying so."""
    name = str(row.get("interval", ""))
    short = "profile-likelihood" if name.startswith("profile") else name.split(" (")[0]
    label = f"95% {short} CI"
    if bool(row.get("significant")) == bool(row.get("significant_wald", row.get("significant"))):
        return label, ""
    lo, hi = float(row["wald_ci_low"]), float(row["wald_ci_high"])
    other = "would exclude" if row.get("significant_wald") else "would include"
    return label, (
        f"; the Wald interval, {lo:.3f} to {hi:.3f} on the model's scale, {other} no difference"
    )


def write_findings(
    results: list[ModelResult],
    survival: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    *,
    threshold: float,
    compare_published: bool = False,
) -> list[str]:
    """Return the findings in plain words, each generated from the numbers.

    Each names the interval it rests on (profile likelihood for the base models) and the
    checks a conclusion does not survive in words; record-level findings name their year and
    whether they follow Amnesty's definition or are a camcensus extra.
    """
    out: list[str] = []
    bins = tables.get("stops_by_surveillance_bins")
    if bins is not None and len(bins) >= 2:
        lo, hi = bins.iloc[0], bins.iloc[-1]
        year = f" in {int(bins['year'].iloc[0])}" if "year" in bins.columns else ""
        out.append(
            f"Where surveillance is lowest ({lo['bin']} effective cameras within 200 m per 1,000 "
            f"residents) there were {lo['rate_per_1000']:.1f} stops per 1,000 residents{year} "
            f"(95% profile-likelihood CI {lo['ci_low']:.1f}–{lo['ci_high']:.1f}); where it is "
            f"highest ({hi['bin']}) {hi['rate_per_1000']:.1f} ({hi['ci_low']:.1f}–"
            f"{hi['ci_high']:.1f})."
        )
    for row in survival.to_dict("records"):
        if str(row["failed_checks"]).startswith("perfect separation"):
            out.append(
                f"{row['borough']}: the placement model cannot be estimated (perfect separation: "
                f"at the threshold of {threshold:g} almost every tract is on one side)."
            )
            continue
        if str(row["failed_checks"]).startswith("interval not established"):
            where = (
                row["borough"] if pd.isna(row["year"]) else f"{row['borough']} {int(row['year'])}"
            )
            out.append(
                f"{where}: the {row['model']} coefficient of {row['term']} is "
                f"{row['estimate']:.3g}, but its 95% profile-likelihood interval is not "
                "established (the profile likelihood does not reach the cut-off on at least one "
                "side; R's confint gives NA), so no conclusion is drawn."
            )
            continue
        if not row["significant"]:
            verdict = "but the 95% interval includes no difference"
        elif row["survives"]:
            verdict = "and it survives every spatial and overdispersion check"
        else:
            verdict = (
                "but it does not survive these checks: "
                f"{row.get('failed_checks_words') or row['failed_checks']}"
            )
        ci, remark = _interval_words(row)
        where = row["borough"] if pd.isna(row["year"]) else f"{row['borough']} {int(row['year'])}"
        if row["model"] == "stops_baseline" and row["term"] == "surv":
            out.append(
                f"{where}: each additional effective camera per 1,000 "
                f"residents goes with {_pct(row['estimate'])} stops ({ci} "
                f"{_pct(row['ci_low'])} to {_pct(row['ci_high'])}{remark}), at equal non-white "
                f"share, {verdict}."
            )
        elif row["model"] == "stops_baseline":
            out.append(
                f"{where}: at equal surveillance, a tract 10 points more "
                f"non-white has {_pct(0.1 * row['estimate'])} stops ({ci} "
                f"{_pct(0.1 * row['ci_low'])} to {_pct(0.1 * row['ci_high'])}{remark}), {verdict}."
            )
        else:
            odds = np.exp(0.1 * np.array([row["estimate"], row["ci_low"], row["ci_high"]]))
            out.append(
                f"{row['borough']}: a tract 10 points more non-white has {odds[0]:.2f} times the "
                f"odds of being highly surveilled (more than {threshold:g} effective cameras per "
                f"1,000 residents; {ci} {odds[1]:.2f}–{odds[2]:.2f}{remark}), {verdict}."
            )
    out += _record_findings(results, tables, compare_published=compare_published)
    pvo = tables.get("published_vs_ours")
    if pvo is not None and len(pvo):
        comparable = pvo.loc[pvo["comparable"]]
        for model, g in comparable.groupby("model", sort=False):
            k, n = int(g["matches_printed_digits"].sum()), len(g)
            causes = sorted({str(c) for c in g["cause"] if c})
            why = f" ({'; '.join(causes)})" if k < n and causes else ""
            out.append(
                f"Amnesty's printed model {model}: {k} of {n} printed numbers reproduced to "
                f"every printed digit{why}."
            )
    return out


def _p_words(p: float) -> str:
    """Return ``p = 0.12``, or say that the p-value could not be estimated."""
    return f"p = {p:.2f}" if np.isfinite(p) else "p-value not estimable"


def _record_findings(
    results: list[ModelResult],
    tables: dict[str, pd.DataFrame],
    *,
    compare_published: bool = False,
) -> list[str]:
    out: list[str] = []
    for m in results:
        if m.name == "innocence_lpm":
            slopes = [c for c in m.coefficients if c.term.endswith(":surv")]
            parts = [
                f"{c.term.split('[')[1].split(']')[0].lower()} {100 * c.estimate:+.1f} points "
                f"({_p_words(c.p_value)})"
                for c in slopes
            ]
            out.append(
                f"{m.group['year']} stop records ({m.group['definition']}: linear probability "
                "model of being found innocent): per effective camera per 1,000 residents, the "
                f"chance of being found innocent changes by {', '.join(parts)}."
            )
        elif m.name == "stopped_while_black_lm":
            inter = next((c for c in m.coefficients if ":" in c.term), None)
            if inter is not None:
                excluded = list(m.group.get("excluded") or [])
                where = f", outside {' and '.join(map(str, excluded))}" if excluded else ""
                out.append(
                    f"{m.group['year']} stop records ({m.group['definition']}: 'stopped while "
                    f"Black'{where}): in highly surveilled tracts the share of people "
                    "stopped who are Black follows the Black share of residents with a slope "
                    f"{inter.estimate:+.3f} different from other tracts (95% CI "
                    f"{inter.ci_low:+.3f} to {inter.ci_high:+.3f}, {_p_words(inter.p_value)})."
                )
    share = tables.get("five_crime_share")
    if share is not None:
        for r in share.to_dict("records"):
            printed = " (Amnesty printed 70.8% for 2019)" if compare_published else ""
            out.append(
                f"{r['year']} stop records ({r['definition']}): {100 * r['share']:.1f}% of stops "
                f"were for CPW, assault, robbery, petit or grand larceny{printed}."
            )
    inn = tables.get("innocence_by_race_and_surveillance")
    if inn is not None and len(inn):
        for year, g in inn.groupby("year"):
            black = {
                str(r["surveillance"]): r for r in g.loc[g["race"] == "Black"].to_dict("records")
            }
            if {"high", "low"} <= set(black):
                high, low = black["high"], black["low"]
                out.append(
                    f"{year} stop records (camcensus extra, tracts split at the median "
                    "surveillance level): Black people stopped in highly surveilled tracts were "
                    f"found innocent (no arrest, summons or weapon) {100 * high['estimate']:.0f}% "
                    f"of the time (95% Wilson CI {100 * high['ci_low']:.0f}–"
                    f"{100 * high['ci_high']:.0f}%), against {100 * low['estimate']:.0f}% in less "
                    "surveilled tracts."
                )
    share_b = tables.get("black_share_by_surveillance")
    if share_b is not None and len(share_b):
        for year, g in share_b.groupby("year"):
            h = g.set_index("surveillance").loc["high"]
            out.append(
                f"{year} stop records (camcensus extra, median split): in highly surveilled "
                f"tracts {100 * h['stopped_black_share']:.0f}% of the people stopped were Black "
                f"(95% Wilson CI {100 * h['ci_low']:.0f}–{100 * h['ci_high']:.0f}%), while "
                f"{100 * h['resident_black_share']:.0f}% of their residents are."
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
    min_population: int | None = None,
) -> pd.DataFrame:
    """Refit with another race definition: ``alternative`` (indexed by GEOID, with
    ``nonwhite_fraction``) replaces the tracts' non-white fraction. Returns both fits' headline
    coefficients side by side (``definition`` column). Tracts of at most ``min_population``
    residents (default: the setting) are left out, as in every model."""
    min_population = int(
        settings.get("min_population") if min_population is None else min_population
    )
    rows: list[dict[str, object]] = []
    alt = tracts.copy()
    alt["nonwhite_fraction"] = alt["GEOID"].map(alternative["nonwhite_fraction"])
    for name, t in (("White alone (ACS B02001)", tracts), (label, alt)):
        table = models.model_table(t, stop_counts, min_population=min_population)
        rows += _headline_rows(table, stop_counts, threshold, year, definition=name)
    return pd.DataFrame(rows)
