"""Amnesty International's Decode Surveillance NYC: its definitions, defaults and published
figures, and the comparison of a run with them.

Everything NYC-specific lives here (borough vocabulary, the published census, Amnesty's
per-tract table, the licence of its data); the stages speak of districts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus import published
from camcensus._errors import InputError, Ledger, Problem
from camcensus.coverage import COVERAGE_COLUMNS
from camcensus.pipeline import CensusResult, run_from_files
from camcensus.stages import complete_tracts
from camcensus.studies import StudyDesign

__all__ = [
    "BOROUGHS",
    "DESIGN",
    "LICENCE",
    "compare_published",
    "compare_reference_table",
    "reproduce_nyc",
    "reproduce_nyc_report",
]

BOROUGHS = published.BOROUGHS
#: Terms of Amnesty's Decode data: positions read off Google Street View.
LICENCE = (
    "CC BY-NC-ND 4.0 (Amnesty International, Decode Surveillance NYC); positions read off "
    "Google Street View imagery: not for OpenStreetMap"
)


#: Amnesty's choices in the disparity models (methodology note, section 2): the baseline
#: model was developed on Queens 2019 (p.36); the interaction model (p.37) and "stopped while
#: Black" (p.48) leave Manhattan out, a transport hub whose occupants are not its residents.
DESIGN = StudyDesign(
    name="Decode Surveillance NYC (Amnesty International, 2022)",
    sanity=("Queens", 2019),
    interaction_year=2019,
    exclude_districts=("Manhattan",),
    compare_published=True,
)


def reproduce_nyc(
    *,
    reference: str | Path | None = None,
    title: str = "Decode Surveillance NYC, reproduced",
    **kwargs: Any,
) -> CensusResult:
    """Reproduce Amnesty's NYC camera census, per-tract coverage and (with ``stops``) the
    disparity models from its files, and compare them with the published figures.

    Takes the arguments of :func:`camcensus.pipeline.run_from_files`, plus ``reference``: a
    per-tract table to compare coverage with, such as Amnesty's ``camera_count.csv``.
    """
    result = run_from_files(
        title=title, licence=LICENCE, design=DESIGN, model_reference=reference, **kwargs
    )
    comparison = None
    pan = result.panoramas
    present = set(pan["BoroName"].dropna()) if "BoroName" in pan.columns else set()
    if present and present <= set(BOROUGHS):
        comparison = compare_published(result.tables, present=present)
        _note_published(result, present)
    ref = None
    inputs = dict(result.inputs)
    if reference is not None:
        reach = result.options.band_m + result.options.radius_m
        complete = complete_tracts(result.tracts, np.asarray(result.study_area), reach_m=reach)
        ref = compare_reference_table(result.tracts, reference, complete=complete)
        inputs["reference"] = str(reference)
    return result.replace(comparison=comparison, reference=ref, inputs=inputs)


def reproduce_nyc_report(out: str | Path, *, force: bool = False, **kwargs: Any) -> CensusResult:
    """Run :func:`reproduce_nyc` and write its report into ``out`` (checked before any work:
    ``out`` must not hold an input; an earlier report is replaced only with ``force``)."""
    from camcensus.report import check_output, write_report

    given = [kwargs.get(k) for k in _FILE_ARGS] + list(kwargs.get("stops") or [])
    check_output(Path(out), [p for p in given if p is not None], force=force)
    result = reproduce_nyc(**kwargs)
    write_report(result, out, force=force)
    return result


_FILE_ARGS = (
    "tracts",
    "intersections",
    "raw_counts",
    "raw_intersections",
    "panoramas",
    "census",
    "boroughs",
    "reference",
    "ntas",
    "race_table",
)


def compare_published(tables: dict[str, pd.DataFrame], *, present: set[str]) -> pd.DataFrame:
    """Return ours beside Amnesty's published per-borough figures (boroughs in ``present``)."""
    rows = []
    att = tables.get("cameras_by_attachment")
    inter = tables.get("intersections")
    for metric, ours_table, col in (
        ("panoramas", inter, "panoramas"),
        ("attached_street", att, "attached_street"),
        ("attached_building", att, "attached_building"),
        ("attached_unknown", att, "attached_unknown"),
        ("total", att, "total"),
    ):
        if ours_table is None or col not in ours_table.columns:
            continue
        if metric == "panoramas" and "cameras_per_intersection" not in tables:
            continue
        for b in BOROUGHS:
            if b not in present:
                continue
            ours = float(ours_table[col].loc[b]) if b in ours_table.index else 0.0
            pub = float(published.AMNESTY_NYC[metric][b])
            rows.append(
                {"borough": b, "metric": metric, "published": pub, "ours": ours, "diff": ours - pub}
            )
    return pd.DataFrame(rows)


def _note_published(result: CensusResult, present: set[str]) -> None:
    ledger: Ledger = result.ledger
    if present == set(BOROUGHS):
        ledger.note(
            "Amnesty's published table of cameras per intersection gives a 'Total' of "
            f"{published.PUBLISHED_TOTAL_CAMERAS_PER_INTERSECTION:.2f} (and "
            f"{published.PUBLISHED_TOTAL_PUBLIC_PER_INTERSECTION:.2f} public): the sum of the "
            "five boroughs' ratios, not a ratio. This report gives the pooled ratio (all "
            "cameras / all intersections) in its Total row."
        )
        ours = result.numbers.get("public_cameras")
        if ours is not None:
            ledger.note(
                "Amnesty's per-tract camera_count table (prepdata.R) has a 'cameras' column "
                f"summing to {published.CAMERA_COUNT_TABLE_SUMS['Total']:,.0f} public cameras "
                f"while the intersections here hold {ours:,}: merging panorama_url.csv on "
                "PanoramaId duplicated some panoramas. This report counts each panorama once "
                "(its effective-camera columns are unaffected)."
            )
    else:
        ledger.note(
            "The input covers only " + ", ".join(sorted(present)) + ": published figures are "
            "compared for these boroughs alone, and nothing here is a citywide figure."
        )


def compare_reference_table(
    tracts: pd.DataFrame, path: str | Path, *, complete: np.ndarray | None = None
) -> dict[str, Any]:
    """Compare our per-tract coverage with a table such as Amnesty's ``camera_count.csv``.

    Only tracts whose coverage the input fully determines (``complete``: every camera within
    reach lies in the study area) are compared; the others are counted.
    """
    from camcensus.io._validate import missing_columns
    from camcensus.io._validate import read_text_table as _read

    p = Path(path)
    ref = _read(p)
    problems = missing_columns(ref, p, ["GEOID"], why="joins the reference table to the tracts")
    if problems:
        raise InputError(problems)
    cols = [c for c in COVERAGE_COLUMNS if c in ref.columns]
    if not cols:
        raise InputError(
            [
                Problem(
                    str(p),
                    None,
                    None,
                    "none of the columns " + ", ".join(COVERAGE_COLUMNS),
                    "at least one coverage column to compare",
                    "pass a per-tract coverage table such as Amnesty's camera_count.csv",
                )
            ]
        )
    ref = ref[["GEOID", *cols]].copy()
    ref["GEOID"] = ref["GEOID"].astype(str)
    for c in cols:
        ref[c] = pd.to_numeric(ref[c], errors="coerce")
    ours = pd.DataFrame(tracts[["GEOID", *COVERAGE_COLUMNS]]).copy()
    ours["GEOID"] = ours["GEOID"].astype(str)
    mask = np.ones(len(ours), dtype=bool) if complete is None else np.asarray(complete)
    m = ours.loc[mask].merge(ref, on="GEOID", suffixes=("", "_ref"))
    out: dict[str, Any] = {
        "path": str(path),
        "tracts_matched": len(m),
        "tracts_left_out_incomplete": int((~mask).sum()),
    }
    for c in cols:
        d = (m[c] - m[f"{c}_ref"]).abs()
        out[c] = {
            "max_abs_diff": float(d.max()) if len(d) else None,
            "sum_ours": float(m[c].sum()),
            "sum_reference": float(m[f"{c}_ref"].sum()),
        }
    return out
