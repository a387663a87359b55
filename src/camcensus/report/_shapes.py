"""Shapes shared by the map and the figures, computed once per report."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def borough_outlines(tracts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one polygon per ``borough`` of ``tracts`` (same CRS).

    Tracts normally tile their borough, so the fast coverage union is tried first; if the
    tiling has overlaps and the result is invalid, the full union is used.
    """
    names, geoms = [], []
    for name, group in tracts.groupby("borough", sort=True):
        parts = np.asarray(group.geometry.values)
        merged = shapely.coverage_union_all(parts)
        if not shapely.is_valid(merged):
            merged = shapely.union_all(parts)
        names.append(name)
        geoms.append(merged)
    return gpd.GeoDataFrame({"borough": names}, geometry=geoms, crs=tracts.crs)
