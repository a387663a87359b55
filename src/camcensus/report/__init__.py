"""The report: ``results.json``, ``tables/*.csv``, ``figures/*.png`` and an ``index.html`` that
opens with no network (MapLibre GL JS and all data are inlined)."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from camcensus._geo import borough_outlines
from camcensus.io.formats import json_safe, sha256, to_sqlite
from camcensus.report.figures import write_figures
from camcensus.report.html import write_html
from camcensus.report.who import who_figures, who_results, who_tables

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

__all__ = ["results_dict", "write_report"]

_TRACT_COLUMNS = [
    "GEOID",
    "borough",
    "eff_cameras",
    "eff_cameras_within_200m",
    "cameras",
    "cameras_within_200m",
    "area_m2",
    "popn",
    "popn_white",
    "popn_black",
    "popn_hispanic",
    "med_income",
    "nonwhite_fraction",
    "surveillance_level",
    "surveillance_level_200m",
]


def _table_records(df: pd.DataFrame, index_name: str = "group") -> list[dict[str, Any]]:
    t = df.copy()
    t.index.name = index_name
    return [json_safe(r) for r in t.reset_index().to_dict("records")]


def results_dict(result: CensusResult) -> dict[str, Any]:
    """Return every number the report shows, with exclusions, notes and input checksums."""
    inputs = []
    for role, path in result.inputs.items():
        p = Path(path)
        if p.exists():
            inputs.append(
                {"role": role, "path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)}
            )
            for side in sorted(p.parent.glob(p.stem + ".*")):
                if side != p and side.suffix.lower() in {".shx", ".dbf", ".prj", ".cpg"}:
                    inputs.append(
                        {
                            "role": role,
                            "path": str(side),
                            "bytes": side.stat().st_size,
                            "sha256": sha256(side),
                        }
                    )
    try:
        version = metadata.version("camcensus")
    except metadata.PackageNotFoundError:
        version = "unknown"
    out: dict[str, Any] = json_safe(
        {
            "title": result.title,
            "generated_by": f"camcensus {version}",
            "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "settings": asdict(result.options),
            "measure_crs": result.measure_crs.to_string(),
            "inputs": inputs,
            "numbers": result.numbers,
            "tables": {k: _table_records(v, "borough") for k, v in result.tables.items()},
            "comparison_with_published": (
                result.comparison.to_dict("records") if result.comparison is not None else None
            ),
            "reference_table": result.reference,
            "exclusions": result.ledger.records(),
            "notes": result.ledger.notes,
            "skipped_outputs": result.skipped,
            "timings_s": result.timings,
        }
    )
    return out


def write_report(result: CensusResult, out: str | Path) -> dict[str, Path]:
    """Write the whole report into ``out``; return the written paths by name."""
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    tr = result.tracts
    tract_cols = [c for c in _TRACT_COLUMNS if c in tr.columns]
    tract_table = pd.DataFrame(tr[tract_cols])
    paths["tract_coverage"] = out / "tables" / "tract_coverage.csv"
    tract_table.to_csv(paths["tract_coverage"], index=False)
    names = {
        "cameras_by_attachment": "camera_counts",
        "pole_camera_types": "pole_camera_types",
        "intersections": "intersections_by_borough",
        "cameras_per_intersection": "cameras_per_intersection",
    }
    for key, name in names.items():
        if key in result.tables:
            p = out / "tables" / f"{name}.csv"
            result.tables[key].rename_axis("borough").to_csv(p)
            paths[name] = p
    pan = result.panoramas
    pan_table = pd.DataFrame(pan.drop(columns="geometry"))
    pts = pan.geometry.to_crs("EPSG:4326")
    pan_table["lon"], pan_table["lat"] = pts.x.round(7), pts.y.round(7)
    paths["panoramas"] = out / "tables" / "panoramas.csv"
    pan_table.to_csv(paths["panoramas"], index=False)
    if result.comparison is not None:
        paths["comparison"] = out / "tables" / "comparison_with_published.csv"
        result.comparison.to_csv(paths["comparison"], index=False)
    paths["exclusions"] = out / "tables" / "exclusions.csv"
    pd.DataFrame(result.ledger.records(), columns=["stage", "reason", "count"]).to_csv(
        paths["exclusions"], index=False
    )
    outlines = borough_outlines(result.tracts.to_crs(result.measure_crs))
    figures = write_figures(result, out / "figures", outlines)
    figures.update(who_figures(result, out / "figures"))
    for name, table in who_tables(result).items():
        p = out / "tables" / f"{name}.csv"
        table.to_csv(p, index=False)
        paths[name] = p
    paths.update({f"figure_{k}": v for k, v in figures.items()})
    results = results_dict(result)
    results.update(who_results(result))
    results["figures"] = {k: str(v.relative_to(out)) for k, v in figures.items()}
    results["tables_written"] = sorted(str(p.relative_to(out)) for p in paths.values())
    paths["results"] = out / "results.json"
    paths["results"].write_text(json.dumps(results, indent=2, allow_nan=False))
    paths["database"] = to_sqlite(
        {
            "panoramas": pan,
            "tract_coverage": tract_table,
            "exclusions": pd.DataFrame(
                result.ledger.records(), columns=["stage", "reason", "count"]
            ),
        },
        out / "camcensus.sqlite",
    )
    paths["html"] = write_html(result, results, figures, out / "index.html", outlines)
    return paths
