"""The offline HTML report: one self-contained file (MapLibre GL JS, data and figures inline)."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from jinja2 import Environment, PackageLoader, select_autoescape

from camcensus._geo import borough_outlines
from camcensus.io.formats import to_geojson

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = ["maplibre_assets", "write_html"]

_WHO_FIGURES = {"stops_by_surveillance_bins", "stop_model_coefficients", "sensitivity_radius"}

# Colour ramp (ColorBrewer YlOrRd, 6 classes) for the tract choropleth.
_RAMP = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]


def maplibre_assets() -> tuple[str, str]:
    """Return MapLibre GL JS and its CSS, as shipped inside the ``maplibre`` Python package."""
    # Locate the package without importing it (its __init__ logs about optional frameworks).
    spec = importlib.util.find_spec("maplibre")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'maplibre' package is not installed; pip install camcensus again")
    base = Path(next(iter(spec.submodule_search_locations))) / "srcjs"
    js = (base / "maplibre-gl.js").read_text(encoding="utf-8")
    css = (base / "maplibre-gl.css").read_text(encoding="utf-8")
    return js, css


def _script_safe(text: str) -> str:
    return text.replace("</", "<\\/")


def _breaks(values: pd.Series) -> list[float]:
    """Return 5 class breaks (6 classes) from quantiles of the positive values."""
    v = values.dropna().to_numpy(dtype=float)
    v = v[v > 0]
    if len(v) == 0:
        return [1, 2, 3, 4, 5]
    qs = np.quantile(v, [0.2, 0.4, 0.6, 0.8, 0.95])
    out: list[float] = []
    for q in qs:
        q = float(f"{q:.2g}")
        out.append(q if not out or q > out[-1] else out[-1] * 1.01 + 1e-9)
    return out


_VARIABLES = {
    "surveillance_level": (
        "Surveillance level",
        "effective public cameras per 1,000 residents (tracts with more than 250 residents)",
    ),
    "eff_cameras": (
        "Effective public cameras",
        "area of the tract within {r} m of a public-camera intersection ÷ area of one {r} m disc",
    ),
    "eff_cameras_within_200m": (
        "Effective cameras within 200 m",
        "as above, counting the area within 200 m around the tract too",
    ),
    "cameras": ("Public cameras", "public cameras counted at intersections inside the tract"),
}


def _map_data(result: CensusResult, outlines: gpd.GeoDataFrame) -> dict[str, Any]:
    tr = result.tracts.to_crs(result.measure_crs)
    mpu = float(result.measure_crs.axis_info[0].unit_conversion_factor)
    tr = tr.assign(
        geometry=shapely.simplify(tr.geometry.values, 4.0 / mpu, preserve_topology=False)
    )
    short = {
        "GEOID": "id",
        "borough": "borough",
        "eff_cameras": "eff_cameras",
        "eff_cameras_within_200m": "eff_cameras_within_200m",
        "cameras": "cameras",
        "cameras_within_200m": "cameras_within_200m",
        "popn": "popn",
        "nonwhite_fraction": "nonwhite_fraction",
        "surveillance_level": "surveillance_level",
    }
    props = [c for c in short if c in tr.columns]
    tracts_json = to_geojson(tr[[*props, "geometry"]], properties=props)
    variables = []
    for col, (label, help_text) in _VARIABLES.items():
        if col in tr.columns:
            variables.append(
                {
                    "col": col,
                    "label": label,
                    "help": help_text.format(r=f"{result.options.radius_m:g}"),
                    "breaks": _breaks(tr[col]),
                }
            )
    pan = result.panoramas
    total = pan["total_cameras"] if "total_cameras" in pan.columns else pd.Series(0, pan.index)
    with_cam = pan.loc[total > 0]
    keep = [
        c
        for c in (
            "PanoramaId",
            "total_cameras",
            "attached_street_median",
            "attached_building_median",
            "type_dome_median",
            "ImageDate",
            "BoroName",
        )
        if c in with_cam.columns
    ]
    points_json = to_geojson(with_cam[[*keep, "geometry"]], properties=keep, precision=6)
    boroughs = outlines.to_crs(result.measure_crs)
    boroughs = boroughs.assign(
        geometry=shapely.simplify(boroughs.geometry.values, 10.0 / mpu, preserve_topology=True)
    )
    boroughs_json = to_geojson(boroughs[["borough", "geometry"]], properties=["borough"])
    cov = gpd.GeoDataFrame(
        {"name": ["coverage"]}, geometry=[result.coverage], crs=result.measure_crs
    )
    cov = cov.assign(
        geometry=shapely.simplify(cov.geometry.values, 1.0 / mpu, preserve_topology=False)
    )
    coverage_json = to_geojson(cov, properties=["name"]) if not result.coverage.is_empty else None
    bounds = result.tracts.to_crs("EPSG:4326").total_bounds.tolist()
    return {
        "tracts": tracts_json,
        "points": points_json,
        "boroughs": boroughs_json,
        "coverage": coverage_json,
        "variables": variables,
        "ramp": _RAMP,
        "bounds": bounds,
        "radius_m": result.options.radius_m,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        f = float(v)
        if np.isnan(f):
            return "–"
        if f.is_integer() and abs(f) >= 1:
            return f"{int(f):,}"
        return f"{f:,.3f}"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    return str(v)


def _html_table(df: pd.DataFrame, index_label: str = "") -> dict[str, Any]:
    t = df.copy()
    return {
        "columns": [index_label, *[str(c).replace("_", " ") for c in t.columns]],
        "rows": [
            [str(i), *[_fmt(v) for v in row]] for i, row in zip(t.index, t.to_numpy(), strict=True)
        ],
    }


def write_html(
    result: CensusResult,
    results: dict[str, Any],
    figures: dict[str, Path],
    path: Path,
    outlines: gpd.GeoDataFrame | None = None,
) -> Path:
    """Render ``index.html`` into ``path`` (``outlines``: borough polygons, computed if absent)."""
    if outlines is None:
        outlines = borough_outlines(result.tracts.to_crs(result.measure_crs))
    env = Environment(
        loader=PackageLoader("camcensus.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    js, css = maplibre_assets()
    data = _map_data(result, outlines)
    tables = {
        "cameras_by_attachment": "Cameras by attachment (public = street light, signal or pole)",
        "pole_camera_types": "Types of pole-mounted (public) cameras",
        "intersections": "Intersections (panoramas) with cameras",
        "cameras_per_intersection": "Cameras per intersection (Total = pooled ratio)",
    }
    html_tables = [
        {"title": title, **_html_table(result.tables[key], "borough")}
        for key, title in tables.items()
        if key in result.tables
    ]
    if result.comparison is not None and len(result.comparison):
        html_tables.append(
            {
                "title": "Compared with Amnesty's published figures",
                **_html_table(result.comparison.set_index("borough"), "borough"),
            }
        )
    figs = [
        {
            "name": name,
            "src": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode(),
        }
        for name, p in figures.items()
    ]
    numbers = result.numbers
    cards = []
    for key, label in (
        ("panoramas", "intersections (panoramas) in the input"),
        ("total_cameras", "cameras counted"),
        ("public_cameras", "public cameras (on street lights, signals, poles)"),
        ("public_intersections", "intersections with a public camera"),
        ("public_dome_intersections", "intersections with a public dome camera"),
        (
            "covered_land_share",
            f"of the land within {result.options.radius_m:g} m of a public camera",
        ),
    ):
        if key in numbers and numbers[key] is not None:
            v = numbers[key]
            text = f"{100 * v:.1f}%" if key.endswith("share") else f"{int(v):,}"
            cards.append({"value": text, "label": label})
    who = None
    if result.disparity is not None:
        surv = result.disparity.survival
        cols = ["model", "borough", "year", "term", "estimate", "ci_low", "ci_high", "survives",
                "failed_checks"]  # fmt: skip
        shown = surv[[c for c in cols if c in surv.columns]].copy()
        if "year" in shown.columns:
            shown["year"] = shown["year"].map(lambda y: "" if pd.isna(y) else str(int(y)))
        titles = {
            "stops_by_surveillance_bins": "Stops per 1,000 residents by surveillance level",
            "innocence_by_race_and_surveillance": "Found innocent (no arrest, summons or weapon)",
            "black_share_by_surveillance": "Black share of people stopped vs of residents",
            "crime_correlations": "Suspected crime: correlation of stop rate with surveillance",
        }
        keep = {
            "stops_by_surveillance_bins": ["bin", "rate_per_1000", "ci_low", "ci_high", "tracts"],
            "innocence_by_race_and_surveillance": ["race", "surveillance", "estimate", "ci_low",
                                                   "ci_high", "n"],
            "black_share_by_surveillance": ["surveillance", "stopped_black_share", "ci_low",
                                            "ci_high", "resident_black_share"],
            "crime_correlations": ["crime", "stops", "estimate", "ci_low", "ci_high", "p_value"],
        }  # fmt: skip
        who_tables = []
        for key, title in titles.items():
            t = result.disparity.tables.get(key)
            if t is not None and len(t):
                cols = [c for c in keep[key] if c in t.columns]
                who_tables.append(
                    {"title": title, **_html_table(t[cols].set_index(cols[0]), cols[0])}
                )
        who = {
            "tables": who_tables,
            "findings": result.disparity.findings,
            "survival": _html_table(shown.set_index("model"), "model"),
            "figures": [f for f in figs if f["name"] in _WHO_FIGURES],
        }
        figs = [f for f in figs if f["name"] not in _WHO_FIGURES]
    template = env.get_template("index.html.j2")
    html = template.render(
        title=result.title,
        who=who,
        results=results,
        cards=cards,
        tables=html_tables,
        figures=figs,
        notes=result.ledger.notes,
        exclusions=result.ledger.records(),
        skipped=result.skipped,
        options=result.options,
        maplibre_js=_script_safe(js),
        maplibre_css=css,
        data_json=_script_safe(json.dumps(data, allow_nan=False, separators=(",", ":"))),
    )
    path.write_text(html, encoding="utf-8")
    return path
