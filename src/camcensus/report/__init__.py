"""The report: ``results.json``, ``tables/*.csv``, ``figures/*.png``, ``camcensus.sqlite`` and an
``index.html`` that opens with no network (MapLibre GL JS and all data are inlined).

The report is assembled from sections (:mod:`camcensus.report.sections`) that the stages
contribute; :func:`write_report` writes them all into a new folder and renames it into place.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from camcensus._version import package_version
from camcensus.io.formats import json_safe, sha256, to_sqlite, write_csv
from camcensus.report._atomic import OutputError, check_output, replace_folder
from camcensus.report.html import write_html
from camcensus.report.sections import (
    Figure,
    ReportContext,
    Section,
    Table,
    build_sections,
    register_section,
)

if TYPE_CHECKING:
    from camcensus.pipeline import CensusResult

#: Folders a report may carry besides its own files (see :func:`write_report`).
ATTACHMENTS = frozenset({"export"})

__all__ = [
    "OutputError",
    "Section",
    "check_output",
    "input_records",
    "register_section",
    "replace_folder",
    "results_dict",
    "write_report",
]

_SIDECARS = {".shx", ".dbf", ".prj", ".cpg"}


def input_records(result: CensusResult) -> list[dict[str, Any]]:
    """Return every input file (and shapefile sidecar) with its role, size and sha256."""
    records: list[dict[str, Any]] = []
    for role, path in result.inputs.items():
        p = Path(path)
        if not p.exists():
            continue
        files = [p] + [
            side
            for side in sorted(p.parent.glob(p.stem + ".*"))
            if side != p and side.suffix.lower() in _SIDECARS
        ]
        for f in files:
            records.append(
                {"role": role, "path": str(f), "bytes": f.stat().st_size, "sha256": sha256(f)}
            )
    return records


def _results(result: CensusResult, sections: list[Section]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": result.title,
        "generated_by": f"camcensus {package_version()}",
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "timings_s": result.timings,
        "sections": [{"id": s.id, "title": s.title} for s in sections],
    }
    for s in sections:
        for key, value in s.results.items():
            if key in out:
                raise ValueError(f"results.json key {key!r} is given twice (section {s.id})")
            out[key] = value
    safe: dict[str, Any] = json_safe(out)
    return safe


def results_dict(
    result: CensusResult, *, inputs: list[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Return every number the report shows, with exclusions, notes and input checksums.

    ``inputs`` are :func:`input_records` when already computed (they are, by default).
    """
    records = tuple(inputs) if inputs is not None else tuple(input_records(result))
    return _results(result, build_sections(ReportContext(result, None, records)))


def write_report(
    result: CensusResult,
    out: str | Path,
    *,
    force: bool = False,
    attachments: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """Write the whole report into the folder ``out``; return the written paths by name.

    The inputs' checksums are taken first; the report is then written into a new folder beside
    ``out`` and renamed into place only when complete, so ``out`` never holds a mix of an old
    and a new report (an error or an interruption leaves the old one as it was).

    Parameters
    ----------
    result
        :func:`camcensus.pipeline.run_census` / ``reproduce_nyc`` / ``run_demo``'s result.
    out
        The report folder: new, empty, or (with ``force``) an earlier camcensus report.
    force
        Replace an earlier camcensus report in ``out``.
    attachments
        Folders copied into the report under the given name (only ``export``: the platform's
        export the census was computed from), written with the rest of the report.

    Raises
    ------
    OutputError
        ``out`` is a file, holds (or is) an input, holds files a report does not write, or
        already holds a report and ``force`` is false.
    """
    out = Path(out)
    check_output(out, list(result.inputs.values()), force=force)
    inputs = tuple(input_records(result))
    with replace_folder(out) as tmp:
        ctx = ReportContext(result, tmp / "figures", inputs)
        sections = build_sections(ctx)
        written: dict[str, Path] = {}
        database: dict[str, pd.DataFrame] = {}
        for s in sections:
            for block in s.blocks:
                if isinstance(block, Table) and block.csv:
                    written[block.name] = write_csv(
                        block.data(), tmp / "tables" / f"{block.name}.csv"
                    )
                elif isinstance(block, Figure):
                    written[f"figure_{block.name}"] = block.path
            database.update(s.database)
        results = _results(result, sections)
        results["figures"] = {
            b.name: str(b.path.relative_to(tmp))
            for s in sections
            for b in s.blocks
            if isinstance(b, Figure)
        }
        results["tables_written"] = sorted(
            str(p.relative_to(tmp)) for k, p in written.items() if not k.startswith("figure_")
        )
        written["results"] = tmp / "results.json"
        written["results"].write_text(
            json.dumps(results, indent=2, allow_nan=False), encoding="utf-8"
        )
        written["database"] = to_sqlite(database, tmp / "camcensus.sqlite")
        written["html"] = write_html(result, sections, results, tmp / "index.html", ctx)
        for name, source in (attachments or {}).items():
            if name not in ATTACHMENTS:
                raise ValueError(f"a report can attach only {sorted(ATTACHMENTS)}, not {name!r}")
            written[name] = Path(shutil.copytree(source, tmp / name))
    return {k: out / p.relative_to(tmp) for k, p in written.items()}
