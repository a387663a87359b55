"""Static figures of the report (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from camcensus._geo import borough_outlines

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = [
    "agreement_figure",
    "cameras_by_borough_figure",
    "coverage_map_figure",
    "per_intersection_figure",
    "plain_label",
    "surveillance_figure",
    "write_figures",
]

_COLORS = {
    "attached_street": "#b2182b",
    "attached_building": "#4d4d4d",
    "attached_unknown": "#bababa",
}
_LABELS = {
    "attached_street": "street light / signal / pole (public)",
    "attached_building": "building (mostly private)",
    "attached_unknown": "unknown",
}


# Room under an axes for its tick labels and x label (10 pt text), in inches.
_LEGEND_GAP_IN = 0.5


def write_figures(
    result: CensusResult, folder: Path, outlines: gpd.GeoDataFrame | None = None
) -> dict[str, Path]:
    """Write every figure the data allow into ``folder``; return their paths by name.

    ``outlines`` are borough polygons in ``result.measure_crs`` (computed if not given).
    """
    if outlines is None:
        outlines = borough_outlines(result.tracts.to_crs(result.measure_crs))
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name, path in (
        ("cameras_by_borough", cameras_by_borough_figure(result, folder)),
        ("coverage_map", coverage_map_figure(result, folder, outlines)),
        ("public_per_intersection", per_intersection_figure(result, folder)),
        ("agreement", agreement_figure(result, folder)),
        ("surveillance_distribution", surveillance_figure(result, folder)),
    ):
        if path is not None:
            out[name] = path
    return out


_MAX_LABEL = 40


def plain_label(text: object) -> str:
    """Return ``text`` for a matplotlib label, shown literally (``$`` starts no mathtext), on
    one line and at most 40 characters (the tables keep the whole text; a figure's layout
    would take minutes to fit a label of thousands)."""
    one = " ".join(str(text).split())
    if len(one) > _MAX_LABEL:
        one = one[: _MAX_LABEL - 1] + "…"
    return one.replace("$", r"\$")


def _style() -> None:
    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})


def _legend_below(ax: Axes, *, ncols: int = 3, fontsize: float = 8) -> None:
    """Put the axes' legend under the axes and their x label: it never covers data."""
    fig = ax.get_figure()
    assert fig is not None
    # Anchored a fixed distance (in inches) under the axes: below tick labels and x label.
    below = ax.transAxes + ScaledTranslation(0, -_LEGEND_GAP_IN, fig.dpi_scale_trans)
    ax.legend(
        frameon=False,
        fontsize=fontsize,
        ncols=ncols,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=below,
        borderaxespad=0.0,
    )


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Long labels can leave tight_layout nothing to do; "tight" saving still fits them.
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()
    # "tight" keeps legends placed outside the axes inside the picture.
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def cameras_by_borough_figure(result: CensusResult, folder: Path) -> Path | None:
    """Write the stacked bars of cameras by attachment and borough (``None``: no data)."""
    if "cameras_by_attachment" not in result.tables:
        return None
    _style()
    t = result.tables["cameras_by_attachment"]
    t = t.drop(index="Total") if "Total" in t.index else t
    cols = [c for c in _COLORS if c in t.columns]
    fig, ax = plt.subplots(figsize=(7, 4.0))
    left = np.zeros(len(t))
    for c in cols:
        ax.barh(
            [plain_label(i) for i in t.index], t[c], left=left, color=_COLORS[c], label=_LABELS[c]
        )
        left += t[c].to_numpy(dtype=float)
    ax.invert_yaxis()
    ax.set_xlabel("cameras (sum of per-category medians of 3 volunteers)")
    ax.set_title("Cameras by what they are attached to")
    _legend_below(ax)
    return _save(fig, folder / "cameras_by_borough.png")


def coverage_map_figure(
    result: CensusResult, folder: Path, outlines: gpd.GeoDataFrame
) -> Path | None:
    """Write the static tract map of coverage (``None``: no coverage columns)."""
    if "eff_cameras" not in result.tracts.columns:
        return None
    _style()
    tr = result.tracts.to_crs(result.measure_crs)
    col = "surveillance_level" if "surveillance_level" in tr.columns else "eff_cameras"
    fig, ax = plt.subplots(figsize=(7, 7))
    tr.plot(
        column=col,
        ax=ax,
        cmap="YlOrRd",
        scheme=None,
        legend=True,
        legend_kwds={"shrink": 0.6, "label": _axis_label(col, result.options.radius_m)},
        missing_kwds={"color": "#e8e8e8", "label": "no residents"},
        vmax=float(np.nanpercentile(tr[col].to_numpy(dtype=float), 98)) or None,
        linewidth=0,
    )
    outlines.boundary.plot(ax=ax, color="#333333", linewidth=0.6)
    ax.set_axis_off()
    ax.set_title("Public-camera coverage by census tract")
    return _save(fig, folder / "coverage_map.png")


def _axis_label(col: str, radius_m: float) -> str:
    return {
        "surveillance_level": "effective public cameras per 1,000 residents",
        "eff_cameras": f"effective public cameras (area covered / π·{radius_m:g}²)",
    }.get(col, col)


def per_intersection_figure(result: CensusResult, folder: Path) -> Path | None:
    """Write the bars of public cameras per intersection (``None``: not a complete census)."""
    if "cameras_per_intersection" not in result.tables:
        return None
    _style()
    t = result.tables["cameras_per_intersection"]
    col = "public_per_intersection" if "public_per_intersection" in t.columns else t.columns[0]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    colors = ["#2166ac" if i == "Total" else "#b2182b" for i in t.index]
    ax.bar([plain_label(i) for i in t.index], t[col], color=colors)
    ax.set_ylabel(col.replace("_", " "))
    ax.set_title("Public cameras per intersection (Total = pooled ratio)")
    ax.tick_params(axis="x", labelrotation=20)
    return _save(fig, folder / "public_per_intersection.png")


def agreement_figure(result: CensusResult, folder: Path) -> Path | None:
    """Write the volunteers' agreement per category (``None``: no agreement columns)."""
    cols = [c for c in result.panoramas.columns if str(c).endswith("_agreement")]
    if not cols:
        return None
    _style()
    classes = ["Unanimous", "2 vs 1", "All disagree"]
    shares = (
        pd.DataFrame(
            {
                c.removesuffix("_agreement"): result.panoramas[c].value_counts(normalize=True)
                for c in cols
            }
        )
        .reindex(classes)
        .fillna(0.0)
    )
    fig, ax = plt.subplots(figsize=(7, 3.4))
    left = np.zeros(shares.shape[1])
    for cls, color in zip(classes, ["#1a9850", "#fee08b", "#d73027"], strict=True):
        ax.barh(shares.columns, shares.loc[cls], left=left, color=color, label=cls)
        left += shares.loc[cls].to_numpy()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of panoramas")
    ax.set_title("Agreement between the 3 volunteers, per category")
    _legend_below(ax)
    return _save(fig, folder / "agreement.png")


def surveillance_figure(result: CensusResult, folder: Path) -> Path | None:
    """Write the histogram of surveillance levels (``None``: no census table)."""
    if "surveillance_level" not in result.tracts.columns:
        return None
    _style()
    s = result.tracts["surveillance_level"].dropna().to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    top = float(np.percentile(s, 99)) if len(s) else 1.0
    ax.hist(np.clip(s, 0, top), bins=40, color="#b2182b")
    ax.set_xlabel("effective public cameras per 1,000 residents (tracts > 250 residents)")
    ax.set_ylabel("tracts")
    ax.set_title("How surveillance is distributed across tracts")
    return _save(fig, folder / "surveillance_distribution.png")
