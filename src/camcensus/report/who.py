"""The "Who is watched" part of the report: model tables and figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from camcensus.io.formats import json_safe
from camcensus.report.figures import _legend_below, _save, plain_label
from camcensus.report.sections import (
    Block,
    Bullets,
    Figure,
    ReportContext,
    Section,
    Table,
    Text,
)

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = ["interval_method", "who_figures", "who_results", "who_section", "who_tables"]

_YEAR_COLOURS = {2019: "#2166ac", 2020: "#b2182b"}


def who_tables(result: CensusResult) -> dict[str, pd.DataFrame]:
    """Return every table of the disparity stage, by file name (without ``.csv``)."""
    d = result.disparity
    if d is None:
        return {}
    out = {"model_coefficients": d.coefficients(), "survival": d.survival}
    out.update(d.tables)
    for k, v in result.sensitivity.items():
        out[f"sensitivity_{k}"] = v
    return out


def who_results(result: CensusResult) -> dict[str, Any]:
    """Return the JSON-ready ``models`` list and ``who_is_watched`` block."""
    d = result.disparity
    if d is None:
        return {"models": [], "who_is_watched": None}

    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json_safe(df.to_dict("records"))
        return out

    return {
        "models": [m.to_dict() for m in d.models],
        "who_is_watched": {
            "findings": d.findings,
            "survival": records(d.survival),
            "tables": {k: records(v) for k, v in d.tables.items()},
            "sensitivity": {k: records(v) for k, v in result.sensitivity.items()},
        },
    }


def _legend_below_figure(fig: MplFigure, ax: Axes) -> None:
    """One legend for the whole figure, under the axes (it never covers data)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            frameon=False,
            ncols=max(1, len(labels)),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
        )


def who_figures(result: CensusResult, folder: Path) -> dict[str, Path]:
    """Write the disparity figures; return their paths by name."""
    d = result.disparity
    if d is None:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    bins = d.tables.get("stops_by_surveillance_bins")
    if bins is not None and len(bins):
        fig, ax = plt.subplots(figsize=(7, 3.6))
        x = np.arange(len(bins))
        ax.errorbar(
            x,
            bins["rate_per_1000"],
            yerr=[bins["rate_per_1000"] - bins["ci_low"], bins["ci_high"] - bins["rate_per_1000"]],
            fmt="o",
            color="#b2182b",
            capsize=3,
        )
        ax.set_xticks(x, [plain_label(b) for b in bins["bin"]], rotation=30)
        ax.set_xlabel("effective public cameras within 200 m per 1,000 residents")
        ax.set_ylabel("stops per 1,000 residents")
        ax.set_title("Stops by surveillance level (95% intervals)")
        out["stops_by_surveillance_bins"] = _save(fig, folder / "stops_by_surveillance_bins.png")
    coefs = d.coefficients()
    base = coefs.loc[coefs["model"] == "stops_baseline"] if "model" in coefs.columns else coefs
    if len(base):
        terms = ["surv", "nonwhite_fraction"]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        boroughs = sorted(base["borough"].unique())
        for ax, term in zip(axes, terms, strict=True):
            t = base.loc[base["term"] == term]
            for j, year in enumerate(sorted(int(y) for y in t["year"].unique())):
                g = t.loc[t["year"] == year]
                ys = np.array([boroughs.index(b) for b in g["borough"]]) + (j - 0.5) * 0.25
                ax.errorbar(
                    g["estimate"],
                    ys,
                    xerr=[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]],
                    fmt="o",
                    color=_YEAR_COLOURS.get(year, "#444"),
                    label=str(year),
                    capsize=2,
                )
            ax.axvline(0, color="#888", lw=0.8)
            ax.set_yticks(range(len(boroughs)), [plain_label(b) for b in boroughs])
            ax.set_title(plain_label(term))
            ax.set_xlabel("log rate ratio (95% CI)")
        _legend_below_figure(fig, axes[0])
        fig.suptitle("Stops ~ surveillance + non-white fraction, Poisson, per borough and year")
        out["stop_model_coefficients"] = _save(fig, folder / "stop_model_coefficients.png")
    radius = result.sensitivity.get("radius")
    if radius is not None and len(radius) and {"model", "term"} <= set(radius.columns):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        surv = radius.loc[(radius["model"] == "stops_baseline") & (radius["term"] == "surv")]
        for b, g in surv.groupby("borough"):
            axes[0].plot(g["radius_m"], g["estimate"], marker="o", label=plain_label(b))
            axes[0].fill_between(g["radius_m"], g["ci_low"], g["ci_high"], alpha=0.12)
        axes[0].set_title("stops: surv coefficient")
        place = radius.loc[radius["model"] == "placement_logit"]
        for term_key, g in place.groupby("term"):
            term = str(term_key)
            axes[1].plot(
                g["radius_m"],
                g["estimate"],
                marker="o",
                label=plain_label(term.removeprefix("borough[").split("]")[0]),
            )
        axes[1].set_title("placement: borough × non-white fraction")
        for ax in axes:
            ax.axhline(0, color="#888", lw=0.8)
            ax.set_xlabel("camera radius (m)")
        for ax in axes:
            _legend_below(ax, ncols=2, fontsize=7)
        fig.suptitle("Sensitivity of the coefficients to the assumed camera range")
        out["sensitivity_radius"] = _save(fig, folder / "sensitivity_radius.png")
    return out


_TITLES = {
    "published_vs_ours": "Our numbers next to the published ones",
    "stops_by_surveillance_bins": "Stops per 1,000 residents by surveillance level",
    "innocence_by_race_and_surveillance": "Found innocent (no arrest, summons or weapon)",
    "black_share_by_surveillance": "Black share of people stopped vs of residents",
    "crime_correlations": "Suspected crime: correlation of stop rate with surveillance",
}
# Columns shown first (in this order) when present; every other column follows.
_FIRST = {
    "published_vs_ours": ["model", "term", "quantity", "published", "ours", "difference",
                          "matches_printed_digits", "cause"],
    "stops_by_surveillance_bins": ["bin", "rate_per_1000", "ci_low", "ci_high", "tracts"],
    "innocence_by_race_and_surveillance": ["race", "surveillance", "estimate", "ci_low",
                                           "ci_high", "n"],
    "black_share_by_surveillance": ["surveillance", "stopped_black_share", "ci_low", "ci_high",
                                    "resident_black_share"],
    "crime_correlations": ["crime", "stops", "estimate", "ci_low", "ci_high", "p_value"],
}  # fmt: skip
_LABELS = {
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p_value": "p",
    "rate_per_1000": "per 1,000 residents",
    "matches_printed_digits": "matches the printed digits",
    "failed_checks": "checks failed",
    "failed_checks_words": "checks failed",
    "wald_ci_low": "Wald 95% low",
    "wald_ci_high": "Wald 95% high",
    "significant_wald": "significant (Wald)",
    "interval": "interval",
}


def _readable_title(key: str) -> str:
    return _TITLES.get(key) or key.replace("_", " ").capitalize()


def _ordered(key: str, t: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in ("year", "definition", *_FIRST.get(key, [])) if c in t.columns]
    return t[[*dict.fromkeys(first), *[c for c in t.columns if c not in first]]]


def interval_method(result: CensusResult) -> str | None:
    """Return how the verdicts' intervals were computed, when the stage says so."""
    d = result.disparity
    if d is None:
        return None
    method = getattr(d, "interval_method", None)
    if method:
        return str(method)
    if "interval_method" in d.survival.columns:
        methods = sorted({str(m) for m in d.survival["interval_method"].dropna()})
        return "; ".join(methods) or None
    return None


def who_section(ctx: ReportContext) -> Section | None:
    """The "Who is watched" section: findings, verdicts, every disparity table, figures."""
    result = ctx.result
    d = result.disparity
    if d is None:
        return None
    method = interval_method(result)
    blocks: list[Block] = [
        Text(
            'Each sentence below is written from the models\' numbers; "survives" means the '
            "direction and the 95% significance of the finding hold with overdispersion-aware "
            "models (quasi-Poisson, negative binomial), with standard errors that allow for "
            "spatial dependence (clustered by neighbourhood, Conley at 1 and 2 km) and in "
            "spatial error and lag regressions."
        ),
        Text(
            f"Intervals and verdicts: {method}."
            if method
            else "Intervals and verdicts: the method is not recorded by the models' stage.",
            style="small",
        ),
        Bullets(tuple(d.findings)),
    ]
    surv = d.survival
    # The interval method is stated once above (the CSV keeps it on every row).
    cols = ["model", "borough", "year", "term", "estimate", "ci_low", "ci_high",
            "wald_ci_low", "wald_ci_high", "significant", "significant_wald", "survives",
            "failed_checks_words"]  # fmt: skip
    if "failed_checks_words" not in surv.columns:
        cols[-1] = "failed_checks"
    shown = surv[[c for c in cols if c in surv.columns]]
    blocks.append(
        Table(
            "survival",
            "Does each conclusion survive the checks?",
            shown,
            labels=_LABELS,
            total=False,
            csv=False,
        )
    )
    for key, t in d.tables.items():
        if t is not None and len(t):
            blocks.append(
                Table(
                    f"who_{key}",
                    _readable_title(key),
                    _ordered(key, t),
                    labels=_LABELS,
                    total=False,
                    csv=False,
                )
            )
    # Every table of the stage as CSV (names as before: model_coefficients.csv, survival.csv...).
    for name, t in who_tables(result).items():
        blocks.append(Table(name, _readable_title(name), t, html=False))
    if ctx.figures is not None:
        for name, path in who_figures(result, ctx.figures).items():
            blocks.append(Figure(name, path, name.replace("_", " ")))
    results = who_results(result)
    if results["who_is_watched"] is not None:
        results["who_is_watched"]["interval_method"] = method
    return Section("who", "Who is watched", 30, tuple(blocks), results=results)
