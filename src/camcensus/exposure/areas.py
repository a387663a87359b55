"""Area roll-ups: street length, and the share of it inside coverage, per polygon.

Legislators ask by district: for each area (park, square, tract, NTA, council district,
precinct) the length of street network inside it and the length of that inside the
footprints, per coverage band. Both are measured on the network's edges as intervals of
distance along each edge, so a street on an area's border is split exactly.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus._errors import ContractError, InputError, Problem
from camcensus.exposure._cover import raw_intervals
from camcensus.exposure.network import StreetNetwork
from camcensus.exposure.routes import ExposureIndex

__all__ = ["AREA_COLUMNS", "area_exposure"]

#: Columns of :func:`area_exposure`'s result after the id column.
AREA_COLUMNS = ("model", "band", "street_m", "covered_m", "share_covered")


def area_exposure(
    index_or_network: ExposureIndex | StreetNetwork,
    footprints: gpd.GeoDataFrame | None,
    areas: gpd.GeoDataFrame,
    *,
    id_column: str,
) -> pd.DataFrame:
    """Return street length and covered street length per area, model and band.

    Parameters
    ----------
    index_or_network
        An :class:`ExposureIndex` (its footprints are used when ``footprints`` is None) or a
        :class:`StreetNetwork`.
    footprints
        The ``footprints`` table of one model (any CRS), or None to use the index's.
    areas
        Polygons with a CRS and a unique ``id_column``.
    id_column
        Column naming each area.

    Returns
    -------
    pandas.DataFrame
        One row per (area, band), areas in input order then bands in the footprints' order:
        ``id_column``, ``model``, ``band``, ``street_m`` (network length inside the area),
        ``covered_m`` (of it, inside the band's footprints), ``share_covered`` (0 when the area
        holds no street).
    """
    if isinstance(index_or_network, ExposureIndex) and footprints is None:
        index = index_or_network
    else:
        if footprints is None:
            raise ContractError("area_exposure needs footprints when given a StreetNetwork")
        network = (
            index_or_network.network
            if isinstance(index_or_network, ExposureIndex)
            else index_or_network
        )
        index = ExposureIndex(network, footprints)
    source = str(areas.attrs.get("source", ""))
    if id_column not in areas.columns:
        raise InputError(
            [
                Problem(
                    source,
                    None,
                    id_column,
                    f"no column {id_column!r} (columns: {', '.join(map(str, areas.columns))})",
                    "a column naming each area",
                    "pass --id-column with one of the columns listed",
                )
            ]
        )
    if areas.crs is None:
        raise InputError(
            [
                Problem(
                    source,
                    None,
                    "geometry",
                    "no CRS",
                    "a declared CRS",
                    "set it (gdf.set_crs('EPSG:4326')) or write the file again with one",
                )
            ]
        )
    network = index.network
    polys = np.asarray(areas.to_crs(network.crs).geometry.values)
    inside = raw_intervals(np.asarray(network.edges.geometry.values), polys, index._unit)
    n_edges = len(inside.ptr) - 1
    edge = np.repeat(np.arange(n_edges), np.diff(inside.ptr))
    street = np.bincount(inside.owner, weights=inside.end - inside.start, minlength=len(polys))
    ids = areas[id_column].to_numpy()
    rows = []
    for band in index.bands:
        mer = index._merged[band]
        covered = np.zeros(len(polys))
        for e, a, b, owner in zip(edge, inside.start, inside.end, inside.owner, strict=True):
            covered[owner] += mer.between(int(e), float(a), float(b))
        for i in range(len(polys)):
            rows.append(
                {
                    id_column: ids[i],
                    "model": index.model,
                    "band": band,
                    "street_m": float(street[i]),
                    "covered_m": float(min(covered[i], street[i])),
                    "share_covered": float(covered[i] / street[i]) if street[i] > 0 else 0.0,
                }
            )
    out = pd.DataFrame(rows, columns=[id_column, *AREA_COLUMNS])
    order = {b: k for k, b in enumerate(index.bands)}
    out["_a"] = np.tile(np.arange(len(polys)), len(index.bands))
    out["_b"] = out["band"].map(order)
    out = out.sort_values(["_a", "_b"], kind="stable").drop(columns=["_a", "_b"])
    return out.reset_index(drop=True)
