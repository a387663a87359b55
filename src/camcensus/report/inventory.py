"""The report section of the camera inventory: one row per camera, whatever its source.

Where the detector took part (a ``cameras`` table with an ``evidence`` column from
:mod:`camcensus.locate`, or rows of source ``detector``), the section gives human-confirmed
and machine-only cameras as separate numbers: a machine tag alone never settles a camera.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from camcensus.report.sections import Block, ReportContext, Section, Table, Text

__all__ = ["camera_evidence", "evidence_text", "inventory_section", "machine_only_rows"]

# camcensus.locate.EVIDENCE_CLASSES' human-confirmed classes and their wording.
_HUMAN = {
    "volunteers": "seen by volunteers",
    "volunteers+machine": "seen by volunteers and the detector",
    "verified machine": "detector tags volunteers confirmed in the verify task",
}
_MACHINE_SOURCES = ("detector",)


def _text_column(gdf_cameras: Any, name: str) -> pd.Series:
    if name in gdf_cameras.columns:
        column: pd.Series = gdf_cameras[name].astype("string").fillna("")
        return column
    return pd.Series("", index=gdf_cameras.index, dtype="string")


def machine_only_rows(gdf_cameras: Any) -> pd.Series:
    """Return which rows of a cameras table are machine-only (boolean, the table's index).

    A row is machine-only when its ``evidence`` is ``machine only``, or, without an
    ``evidence`` value, when its ``source`` is ``detector`` or its ``tier`` starts with
    ``machine-only``.
    """
    evidence = _text_column(gdf_cameras, "evidence")
    source = _text_column(gdf_cameras, "source")
    tier = _text_column(gdf_cameras, "tier")
    machine = (evidence == "machine only") | (
        (evidence == "")
        & (source.isin(list(_MACHINE_SOURCES)) | tier.str.lower().str.startswith("machine-only"))
    )
    return machine.astype(bool)


def camera_evidence(gdf_cameras: Any) -> dict[str, int] | None:
    """Count a cameras table's human-confirmed and machine-only rows.

    A row is *machine-only* by :func:`machine_only_rows`; *unconfirmed* when its ``evidence``
    is ``unconfirmed`` (volunteers below the support rule); every other row is
    human-confirmed.

    Returns
    -------
    dict or None
        ``cameras``, ``human_confirmed``, ``machine_only``, ``unconfirmed`` and the
        human-confirmed rows by evidence (``volunteers``, ``volunteers+machine``,
        ``verified machine``); None when the table holds no trace of the detector (no machine
        evidence, no detector rows).
    """
    if gdf_cameras is None or len(gdf_cameras) == 0:
        return None
    evidence = _text_column(gdf_cameras, "evidence")
    unconfirmed = evidence == "unconfirmed"
    machine_only = machine_only_rows(gdf_cameras)
    traced = evidence.isin(["volunteers+machine", "verified machine"]) | machine_only
    if not bool(traced.any()):
        return None
    counts = {
        "cameras": len(gdf_cameras),
        "human_confirmed": int((~machine_only & ~unconfirmed).sum()),
        "machine_only": int(machine_only.sum()),
        "unconfirmed": int(unconfirmed.sum()),
    }
    for cls in _HUMAN:
        counts[cls] = int((evidence == cls).sum())
    return counts


def evidence_text(counts: dict[str, int], *, machine_excluded: bool = False) -> Text:
    """Return the sentence that sets human-confirmed beside machine-only cameras.

    ``machine_excluded``: the figures beside it already leave the machine-only rows out (the
    audit does); otherwise a note says they are counted in them.
    """
    parts = ", ".join(f"{counts[c]:,} {what}" for c, what in _HUMAN.items() if counts.get(c))
    text = (
        f"Human-confirmed cameras: {counts['human_confirmed']:,}"
        + (f" ({parts})" if parts else "")
        + f". Machine-only cameras (the detector's tags no human confirmed): "
        f"{counts['machine_only']:,}. A machine tag alone never settles a camera (Project "
        "Sidewalk's rule for its AI validator)"
    )
    if counts["machine_only"] and machine_excluded:
        also = (
            f" and the {counts['unconfirmed']:,} unconfirmed ones (volunteers below the support "
            "rule)"
            if counts.get("unconfirmed")
            else ""
        )
        return Text(
            text + f"; the machine-only rows{also} are left out of every figure here and "
            "counted with their reason in the exclusions.",
            lead="Human and machine.",
        )
    if counts["machine_only"]:
        return Text(
            text + "; the machine-only rows of this table are counted in the figures here: "
            "leave them out (camcensus locate writes them to machine_only.csv, never to "
            "cameras.gpkg) for a census of confirmed cameras.",
            lead="Human and machine.",
            style="note",
        )
    return Text(text + ".", lead="Human and machine.")


def inventory_section(ctx: ReportContext) -> Section | None:
    """Summarise the ``cameras`` table by source, mount and type; store it whole."""
    gdf = ctx.result.cameras
    if gdf is None or len(gdf) == 0:
        return None
    keys = ["source", "mount", "camera_type"]
    summary = (
        pd.DataFrame(gdf[[*keys, "tier", "licence", "position_sd_m"]])
        .groupby(keys, sort=True, dropna=False)
        .agg(
            cameras=("tier", "size"),
            tier=("tier", "first"),
            position_sd_m=("position_sd_m", "median"),
            licence=("licence", "first"),
        )
        .reset_index()
    )
    pts = gdf.geometry.to_crs("EPSG:4326")
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    table["lon"], table["lat"] = pts.x.round(7), pts.y.round(7)
    sd = float(pd.to_numeric(gdf["position_sd_m"], errors="coerce").median())
    if ctx.result.audit is not None:
        text = Text(
            f"Every source ends in one inventory with a row per camera ({len(gdf):,} here), "
            "with its source, reference in the source, provenance tier and licence (what the "
            "positions may be re-published under)."
        )
    else:
        text = Text(
            f"Every source ends in one inventory with a row per camera ({len(gdf):,} here). A "
            "volunteers' count of n cameras at an intersection becomes n cameras at the "
            "panorama's point, their direction unknown and their position uncertain by about "
            f"{sd:g} m; the licence column says what the positions may be re-published under."
        )
    blocks: list[Block] = [text]
    results: dict[str, Any] = {"camera_inventory": summary.to_dict("records")}
    evidence = camera_evidence(gdf)
    if evidence is not None:
        blocks.append(evidence_text(evidence))
        results["camera_evidence"] = evidence
    blocks += [
        Table("camera_inventory", "Cameras by source, mount and type", summary),
        Table("cameras", "Cameras", table, html=False),
    ]
    return Section(
        "inventory",
        "The camera inventory",
        25,
        tuple(blocks),
        results=results,
        database={"cameras": gdf},
    )
