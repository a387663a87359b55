"""Published versus ours: every number Amnesty's methodology note printed for its models,
beside ours, to every printed digit, with the cause of each difference in words.

The printed numbers live in :data:`camcensus.published.PRINTED_MODELS`; our models are
:class:`~camcensus.stats._result.ModelResult` objects whose term names map to R's printed ones
through :func:`r_term`. A number "matches" when ours, rounded as R printed it (same decimals,
or same significant digits in e-notation; ``< 2e-16`` as an inequality), reads the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from camcensus import published
from camcensus._errors import Ledger
from camcensus.stats._result import ModelResult

__all__ = ["compare", "coverage_crossings", "matches_printed", "r_term"]

_PLAIN = {
    "Intercept": "(Intercept)",
    "med_income": "med.income",
    "black_minus_hispanic": "I((popn.black - popn.hispanic)/popn)",
    "I(surv ** 2)": "I(surv^2)",
    "black_share": "I(popn.black/popn)",
    "resident_black_share": "I(popn.black/popn)",
}
_FACTORS = {"high": "I(surv > SURV_THRESHOLD)", "bin": "survF"}
_LEVEL = re.compile(r"^(?P<factor>[A-Za-z_][\w.]*)\[(?:T\.)?(?P<level>.*)\]$")

#: Quantities of a model other than its coefficients, in the order they are compared.
_MODEL_QUANTITIES = (
    "null_deviance",
    "df_null",
    "deviance",
    "df_resid",
    "aic",
    "dispersion",
    "n_deleted",
    "sigma",
    "r_squared",
    "adj_r_squared",
    "f_statistic",
)
_COEF_QUANTITIES = ("estimate", "std_error", "statistic", "p_value")


def r_term(term: str) -> str:
    """Return R's printed name of our term, e.g. ``borough[Bronx]:nonwhite_fraction`` ->
    ``boroughBronx:nonwhite_fraction``, ``nwfC[T.(0.5,1]]`` -> ``nwfC(0.5,1]``."""
    parts = []
    for part in _split_interaction(term):
        if part in _PLAIN:
            parts.append(_PLAIN[part])
            continue
        m = _LEVEL.match(part)
        if m:
            factor = _FACTORS.get(m["factor"], m["factor"])
            parts.append(f"{factor}{m['level']}")
        else:
            parts.append(part)
    return ":".join(parts)


def _split_interaction(term: str) -> list[str]:
    """Split an interaction into its parts (no level or name here holds a colon)."""
    return term.split(":")


def matches_printed(printed: str, value: float | None) -> bool:
    """Whether ``value`` rounded as ``printed`` was printed reads the same.

    ``"2.15e-05"``: 3 significant digits in e-notation; ``"0.00321"``: 5 decimals;
    ``"< 2e-16"``: an inequality.
    """
    if value is None or not np.isfinite(value):
        return False
    text = printed.replace(" ", "")
    if text.startswith("<"):
        return bool(value < float(text[1:]))
    if "e" in text.lower():
        mantissa = text.lower().split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return float(f"{value:.{decimals}e}") == float(text)
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(f"{value:.{decimals}f}") == float(text)


def _ours_quantity(m: ModelResult, quantity: str) -> float | None:
    lm = m.extras.get("lm") or {}
    value: Any
    if quantity == "deviance":
        value = m.deviance
    elif quantity == "aic":
        value = m.aic
    elif quantity in ("sigma", "r_squared", "adj_r_squared", "f_statistic"):
        value = lm.get(quantity)
    else:
        value = m.extras.get(quantity)
    return None if value is None else float(value)


def _find(models: Sequence[ModelResult], name: str, year: int | None) -> ModelResult | None:
    found = [m for m in models if m.name == name]
    if year is not None:
        same = [m for m in found if m.group.get("year") in (year, None)]
        found = same or found
    return found[0] if found else None


def coverage_crossings(
    tracts: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    threshold: float,
    min_population: int = 250,
) -> dict[str, Any]:
    """Compare our placement surveillance level with the one from a reference coverage table
    (Amnesty's ``camera_count.csv``): the largest difference in effective cameras per 1,000
    residents and the tracts on the other side of ``threshold``."""
    ref = reference[["GEOID", "eff_cameras"]].astype({"GEOID": str})
    t = tracts.loc[tracts["popn"] > min_population, ["GEOID", "popn", "eff_cameras"]].astype(
        {"GEOID": str}
    )
    m = t.merge(ref, on="GEOID", suffixes=("", "_ref"))
    ours = m["eff_cameras"] / m["popn"] * 1000
    theirs = m["eff_cameras_ref"] / m["popn"] * 1000
    cross = m.loc[(ours > threshold) != (theirs > threshold), "GEOID"].tolist()
    return {
        "tracts": len(m),
        "max_abs_diff": float((ours - theirs).abs().max()) if len(m) else float("nan"),
        "crossing": cross,
        "threshold": threshold,
    }


def _cause(
    key: str,
    spec: dict[str, Any],
    m: ModelResult,
    rows: list[dict[str, Any]],
    *,
    coverage: dict[str, Any] | None,
    ours_year: int | None,
    stop_null: dict[str, Any] | None = None,
) -> str:
    """Say, from the numbers, why a printed model is not reproduced."""
    if all(r["matches_printed_digits"] for r in rows):
        return ""
    causes = []
    family = spec["family"]
    if key in ("fit1", "lm_nwfC_surv"):
        null = next((r for r in rows if r["quantity"] == "null_deviance"), None)
        if null is None and stop_null is not None:
            null = stop_null
        if null is not None and not null["matches_printed_digits"]:
            causes.append(
                "2019 stop counts come from a third-party tract join (full_df.csv, n_2019): "
                f"the Queens fit1 null deviance (stop counts and population only) is "
                f"{null['ours']:,.1f} vs {float(null['published']):,.1f} published"
            )
        elif null is not None:
            causes.append(
                "the null deviance (stop counts and population only) reproduces, so the "
                "difference lies in the covariates"
            )
        if key == "lm_nwfC_surv":
            breaks = m.extras.get("nwfC_breaks")
            if breaks is not None:
                causes.append(
                    f"nwfC cut at {breaks[1]:.4f} (R's cut(x, 2) over all tracts)"
                    if len(breaks) == 3
                    else ""
                )
    if key in ("fit", "fit2", "fit3") and coverage is not None:
        if coverage["max_abs_diff"] > 1e-9:
            cross = coverage["crossing"]
            where = (
                f" and put {len(cross)} tract(s) ({', '.join(cross[:6])}"
                f"{', …' if len(cross) > 6 else ''}) on the other side of the "
                f"{coverage['threshold']:g} threshold"
                if cross
                else f" but put no tract on the other side of the {coverage['threshold']:g} "
                "threshold"
            )
            causes.append(
                "coverage computed here differs from Amnesty's camera_count table by up to "
                f"{coverage['max_abs_diff']:.4f} effective cameras per 1,000 residents{where}"
            )
    elif key in ("fit", "fit2", "fit3"):
        causes.append(
            "coverage computed here, not Amnesty's camera_count table (no reference table was "
            "given to compare tract by tract)"
        )
    if family in ("gaussian", "lm") and key not in ("lm_nwfC_surv",) and ours_year != 2019:
        causes.append(
            f"not comparable: 2019 stop records unavailable, ours are {ours_year} records"
        )
    n_rows = [r for r in rows if r["quantity"] == "df_resid"]
    if n_rows and not n_rows[0]["matches_printed_digits"]:
        causes.append(
            f"{n_rows[0]['ours']:.0f} residual degrees of freedom vs {n_rows[0]['published']}"
        )
    return "; ".join(c for c in causes if c) or "differences in the inputs"


def compare(
    models: Sequence[ModelResult],
    *,
    tracts: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    records: pd.DataFrame | None = None,
    ledger: Ledger | None = None,
    threshold: float = 0.2,
) -> pd.DataFrame:
    """Return every printed number of Amnesty's models beside ours.

    Columns: ``model`` (Amnesty's name, e.g. ``fit``), ``page``, ``ours_model``, ``term`` (R's
    printed name; empty for model-level quantities), ``quantity`` (estimate, std_error,
    statistic, p_value, null_deviance, df_null, deviance, df_resid, aic, dispersion,
    n_deleted, sigma, r_squared, adj_r_squared, f_statistic), ``published`` (as printed),
    ``ours``, ``difference``, ``matches_printed_digits``, ``year_published``, ``year_ours``,
    ``comparable`` (same year of data) and ``cause`` (why the model's numbers differ, in
    words, from the data). ``tracts`` (our tract table) and ``reference`` (Amnesty's
    ``camera_count``) let the cause of placement differences be computed tract by tract.
    """
    coverage = (
        coverage_crossings(tracts, reference, threshold=threshold)
        if tracts is not None and reference is not None
        else None
    )
    rows: list[dict[str, Any]] = []
    stop_null: dict[str, Any] | None = None
    for key, spec in published.PRINTED_MODELS.items():
        m = _find(models, str(spec["ours"]), int(spec["year"]))  # type: ignore[call-overload]
        if m is None:
            continue
        ours_year = m.group.get("year")
        ours_year = int(ours_year) if ours_year is not None else 2019
        comparable = ours_year == spec["year"]
        by_r = {r_term(c.term): c for c in m.coefficients}
        model_rows: list[dict[str, Any]] = []
        coefs: dict[str, tuple[str, str, str, str]] = spec["coefficients"]  # type: ignore[assignment]
        for term, printed in coefs.items():
            c = by_r.get(term)
            values = (
                (None, None, None, None)
                if c is None
                else (
                    c.estimate,
                    c.std_error,
                    c.estimate / c.std_error if c.std_error else None,
                    c.p_value,
                )
            )
            for quantity, pub, ours in zip(_COEF_QUANTITIES, printed, values, strict=True):
                model_rows.append(_row(key, spec, m, term, quantity, pub, ours, comparable))
        for quantity in _MODEL_QUANTITIES:
            if quantity in spec:
                ours_q = _ours_quantity(m, quantity)
                model_rows.append(
                    _row(key, spec, m, "", quantity, str(spec[quantity]), ours_q, comparable)
                )
        cause = _cause(
            key, spec, m, model_rows, coverage=coverage, ours_year=ours_year, stop_null=stop_null
        )
        if key == "fit1":
            # The null deviance of fit1 depends on the stop counts and population alone: it
            # tells whether the stop counts are Amnesty's (used for the lm's cause too).
            stop_null = next(r for r in model_rows if r["quantity"] == "null_deviance")
        for r in model_rows:
            r["year_ours"] = ours_year
            r["cause"] = "" if r["matches_printed_digits"] else cause
        rows += model_rows
    if records is not None and len(records):
        rows += _record_rows(records)
    if ledger is not None and rows:
        k = sum(r["matches_printed_digits"] for r in rows if r["comparable"])
        n = sum(1 for r in rows if r["comparable"])
        ledger.note(
            f"Published vs ours: {k} of {n} numbers Amnesty printed for its models (2019 data) "
            "are reproduced to every printed digit; models on other years are listed as not "
            "comparable."
        )
    columns = [
        "model",
        "page",
        "ours_model",
        "term",
        "quantity",
        "published",
        "ours",
        "difference",
        "matches_printed_digits",
        "year_published",
        "year_ours",
        "comparable",
        "cause",
    ]
    return pd.DataFrame(rows, columns=columns)


def _record_rows(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The five-crime share (p.46) and the innocence tabulation (p.47) beside ours, per year of
    records; a year other than 2019 is labelled not comparable."""
    from camcensus.stats import stops as stop_analyses

    out: list[dict[str, Any]] = []
    for year in sorted(int(y) for y in records["year"].unique()):
        comparable = year == 2019
        cause = (
            ""
            if comparable
            else f"not comparable: 2019 stop records unavailable, ours are {year} records"
        )
        share = stop_analyses.five_crime_share(records, year=year)
        items: list[tuple[str, str, str, str, str, float]] = [
            (
                "five_crime_share",
                "46",
                "",
                "share",
                published.FIVE_CRIME_SHARE_2019,
                float(share["share"]),  # type: ignore[arg-type]
            )
        ]
        tab = {
            str(r["suspect_race_description"]): r
            for r in stop_analyses.innocence_by_race(records, year=year).to_dict("records")
        }
        for race, (n, k, pct) in published.INNOCENCE_BY_RACE_2019.items():
            if race not in tab:
                continue
            r = tab[race]
            for quantity, pub, ours in (
                ("n", n, float(r["n"])),
                ("n_innocent", k, float(r["n_innocent"])),
                ("percent_innocent", pct, float(r["percent_innocent"])),
            ):
                items.append(("innocence_by_race", "47", race, quantity, pub, ours))
        for model, page, term, quantity, pub, ours in items:
            match = comparable and matches_printed(pub, ours)
            out.append(
                {
                    "model": model,
                    "page": f"p.{page}",
                    "ours_model": model,
                    "term": term,
                    "quantity": quantity,
                    "published": pub,
                    "ours": ours,
                    "difference": ours - float(pub),
                    "matches_printed_digits": bool(match),
                    "year_published": 2019,
                    "year_ours": year,
                    "comparable": comparable,
                    "cause": "" if match else cause or "differences in the stop records",
                }
            )
    return out


def _row(
    key: str,
    spec: dict[str, Any],
    m: ModelResult,
    term: str,
    quantity: str,
    published_text: str,
    ours: float | None,
    comparable: bool,
) -> dict[str, Any]:
    text = published_text.replace(" ", "")
    pub_value = float(text.lstrip("<"))
    match = matches_printed(published_text, ours) and comparable
    return {
        "model": key,
        "page": f"p.{spec['page']}",
        "ours_model": m.name,
        "term": term,
        "quantity": quantity,
        "published": published_text,
        "ours": ours,
        "difference": None if ours is None else ours - pub_value,
        "matches_printed_digits": bool(match),
        "year_published": spec["year"],
        "comparable": comparable,
    }
