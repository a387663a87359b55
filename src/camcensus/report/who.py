"""The "Who is watched" part of the report: model tables and figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from camcensus.io.formats import json_safe
from camcensus.report.figures import _save

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = ["who_figures", "who_results", "who_tables"]

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
        ax.set_xticks(x, bins["bin"], rotation=30)
        ax.set_xlabel("effective public cameras within 200 m per 1,000 residents")
        ax.set_ylabel("stops per 1,000 residents")
        ax.set_title("Stops by surveillance level (95% intervals)")
        out["stops_by_surveillance_bins"] = _save(fig, folder / "stops_by_surveillance_bins.png")
    coefs = d.coefficients()
    base = coefs.loc[coefs["model"] == "stops_baseline"]
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
            ax.set_yticks(range(len(boroughs)), boroughs)
            ax.set_title(term)
            ax.set_xlabel("log rate ratio (95% CI)")
        axes[0].legend(frameon=False)
        fig.suptitle("Stops ~ surveillance + non-white fraction, Poisson, per borough and year")
        out["stop_model_coefficients"] = _save(fig, folder / "stop_model_coefficients.png")
    radius = result.sensitivity.get("radius")
    if radius is not None and len(radius):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        surv = radius.loc[(radius["model"] == "stops_baseline") & (radius["term"] == "surv")]
        for b, g in surv.groupby("borough"):
            axes[0].plot(g["radius_m"], g["estimate"], marker="o", label=b)
            axes[0].fill_between(g["radius_m"], g["ci_low"], g["ci_high"], alpha=0.12)
        axes[0].set_title("stops: surv coefficient")
        place = radius.loc[radius["model"] == "placement_logit"]
        for term_key, g in place.groupby("term"):
            term = str(term_key)
            axes[1].plot(
                g["radius_m"],
                g["estimate"],
                marker="o",
                label=term.removeprefix("borough[").split("]")[0],
            )
        axes[1].set_title("placement: borough × non-white fraction")
        for ax in axes:
            ax.axhline(0, color="#888", lw=0.8)
            ax.set_xlabel("camera radius (m)")
        axes[0].legend(frameon=False, fontsize=7)
        axes[1].legend(frameon=False, fontsize=7)
        fig.suptitle("Sensitivity of the coefficients to the assumed camera range")
        out["sensitivity_radius"] = _save(fig, folder / "sensitivity_radius.png")
    return out
