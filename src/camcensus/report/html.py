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
from jinja2 import Environment, PackageLoader

from camcensus.io.formats import to_geojson
from camcensus.report.sections import (
    Bullets,
    Cards,
    Figure,
    Heading,
    MapView,
    ReportContext,
    Section,
    Table,
    Text,
)

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = ["maplibre_assets", "write_html", "write_sections_page"]

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


_PLAIN_COLUMNS = {"year", "GEOID", "geoid", "borocode", "BoroCode"}


def _plain_column(col: str) -> bool:
    """Columns of codes or years: shown without thousands separators."""
    c = str(col)
    return c in _PLAIN_COLUMNS or c.endswith(("_id", "Id", "ID"))


def _fmt(v: Any, *, plain: bool = False) -> str:
    if v is None or v is pd.NA or v is pd.NaT:
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        f = float(v)
        if np.isnan(f):
            return "–"
        if plain and f.is_integer():
            return str(int(f))
        if f.is_integer() and abs(f) >= 1:
            return f"{int(f):,}"
        if 0 < abs(f) < 0.001:
            return f"{f:.1e}"  # a small p-value is not 0.000
        return f"{f:,.3f}"
    if isinstance(v, int | np.integer):
        return str(int(v)) if plain else f"{int(v):,}"
    return str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _html_table(table: Table) -> dict[str, Any]:
    """Return a table as plain strings for the template (which escapes them)."""
    t = table.data()
    labels = dict(table.labels)
    plain = [_plain_column(c) for c in t.columns]
    return {
        "name": table.name,
        "title": table.title,
        "caption": table.caption,
        "total": table.has_total,
        "columns": [labels.get(str(c), str(c).replace("_", " ")) for c in t.columns],
        # Each cell: its text and whether it is a number (numbers align right, text left).
        "rows": [
            [(_fmt(v, plain=pl), _is_number(v)) for v, pl in zip(row, plain, strict=True)]
            for row in t.itertuples(index=False, name=None)
        ],
    }


def _json_for_script(obj: Any) -> str:
    """Return JSON that is safe inside an inline ``<script>`` (no ``<``, ``>``, ``&``, U+2028/9).

    JSON can hold these characters only inside strings, where the ``\\uXXXX`` escapes mean the
    same, so the data are unchanged while ``</script>`` or ``<!--`` in a value cannot end or
    alter the script element.
    """
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    for ch in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _script_safe(text: str) -> str:
    """Return trusted JavaScript (the MapLibre bundle) safe to inline in a ``<script>``."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _style_safe(text: str) -> str:
    """Return trusted CSS safe to inline in a ``<style>`` element."""
    return text.replace("</", "<\\/")


def _img_src(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _blocks(section: Section) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in section.blocks:
        if isinstance(b, Text):
            out.append({"kind": "text", "text": b.text, "lead": b.lead, "style": b.style})
        elif isinstance(b, Heading):
            out.append({"kind": "heading", "text": b.text})
        elif isinstance(b, Bullets):
            out.append({"kind": "bullets", "items": list(b.items)})
        elif isinstance(b, Cards):
            out.append({"kind": "cards", "items": [{"value": v, "label": lb} for v, lb in b.items]})
        elif isinstance(b, Table):
            if b.html:
                out.append({"kind": "table", **_html_table(b)})
        elif isinstance(b, Figure):
            out.append({"kind": "figure", "name": b.name, "alt": b.alt, "src": _img_src(b.path)})
        elif isinstance(b, MapView):
            out.append({"kind": "map"})
    # Consecutive figures share one row of images.
    merged: list[dict[str, Any]] = []
    for item in out:
        if item["kind"] == "figure":
            if merged and merged[-1]["kind"] == "figures":
                merged[-1]["items"].append(item)
            else:
                merged.append({"kind": "figures", "items": [item]})
        else:
            merged.append(item)
    return merged


#: The page's fixed words for a volunteers' census (Decode counts) and for an audit of a
#: camera inventory (``camcensus audit``).
_CENSUS_WORDS: dict[str, Any] = {
    "audit": False,
    "intro": "Where public surveillance cameras are and how much of each census tract they can "
    "see.",
    "source": "counts are what volunteers could see in Street View panoramas, which favours "
    "undercounts.",
    "coverage": "public-camera coverage",
    "points": "intersections with public cameras",
    "other": "intersections with only other cameras",
    "outlines": "borough outlines",
    "point": "Intersection",
    "tract_cameras": "public cameras",
}
_AUDIT_WORDS: dict[str, Any] = {
    "audit": True,
    "intro": "Where the listed surveillance cameras are, how much of each census tract they can "
    "see, and whom they watch.",
    "source": "cameras are those of the inventory given (an official list covers only the "
    "cameras a city chose to publish).",
    "coverage": "camera coverage",
    "points": "listed cameras",
    "other": "",
    "outlines": "district outlines",
    "point": "Camera location",
    "tract_cameras": "cameras",
}


def write_html(
    result: CensusResult,
    sections: list[Section],
    results: dict[str, Any],
    path: Path,
    ctx: ReportContext,
) -> Path:
    """Render the sections into ``index.html`` at ``path`` (one self-contained file)."""
    has_map = any(isinstance(b, MapView) for s in sections for b in s.blocks)
    js, css = maplibre_assets() if has_map else ("", "")
    data = _map_data(result, ctx.outlines) if has_map else None
    words = _AUDIT_WORDS if result.audit is not None else _CENSUS_WORDS
    html = _render(
        words=words,
        words_json=_json_for_script(words),
        title=result.title,
        results=results,
        sections=[{"id": s.id, "title": s.title, "blocks": _blocks(s)} for s in sections],
        options=result.options,
        has_map=has_map,
        maplibre_js=_script_safe(js),
        maplibre_css=_style_safe(css),
        data_json=_json_for_script(data) if data is not None else "null",
    )
    path.write_text(html, encoding="utf-8")
    return path


def _render(**values: Any) -> str:
    env = Environment(loader=PackageLoader("camcensus.report", "templates"), autoescape=True)
    return env.get_template("index.html.j2").render(**values)


def write_sections_page(
    title: str,
    sections: list[Section],
    results: dict[str, Any],
    path: Path,
    *,
    intro: str,
    source: str,
) -> Path:
    """Render sections without a map or a census (``camcensus quality estimate``'s page).

    ``results`` needs ``generated_by``; every text reaches the page escaped, as in
    :func:`write_html`.
    """
    if any(isinstance(b, MapView) for s in sections for b in s.blocks):
        raise ValueError("a sections page has no map; use write_html for a census report")
    words = {"audit": False, "intro": intro, "source": source}
    html = _render(
        words=words,
        words_json=_json_for_script(words),
        title=title,
        results=results,
        sections=[{"id": s.id, "title": s.title, "blocks": _blocks(s)} for s in sections],
        options={},
        has_map=False,
        maplibre_js="",
        maplibre_css="",
        data_json="null",
    )
    path.write_text(html, encoding="utf-8")
    return path
