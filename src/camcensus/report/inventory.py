"""The report section of the camera inventory: one row per camera, whatever its source."""

from __future__ import annotations

import pandas as pd

from camcensus.report.sections import ReportContext, Section, Table, Text

__all__ = ["inventory_section"]


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
    return Section(
        "inventory",
        "The camera inventory",
        25,
        (
            text,
            Table("camera_inventory", "Cameras by source, mount and type", summary),
            Table("cameras", "Cameras", table, html=False),
        ),
        results={"camera_inventory": summary.to_dict("records")},
        database={"cameras": gdf},
    )
