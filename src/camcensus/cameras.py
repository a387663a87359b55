"""The camera inventory: one row per camera, whatever the source (DESIGN.md, "Data contracts").

Every source ends here: Amnesty's per-panorama counts (a count of n cameras becomes n rows at
the panorama point, with the position uncertainty stated and the direction unknown), and later
volunteers' tags, OpenStreetMap, city lists and the detector. Coverage models take this table.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import ContractError, CrsError

__all__ = [
    "CAMERA_COLUMNS",
    "MOUNTS",
    "MOUNT_HEIGHT_PRIORS",
    "cameras_from_counts",
    "public_cameras",
    "validate_cameras",
]

#: Columns of the ``cameras`` contract table (geometry: points, stored in EPSG:4326).
CAMERA_COLUMNS = (
    "camera_id",
    "position_sd_m",
    "mount",
    "camera_type",
    "surveillance_type",
    "direction_deg",
    "hfov_deg",
    "height_m",
    "operator",
    "source",
    "source_ref",
    "tier",
    "support",
    "first_seen",
    "last_seen",
    "licence",
)
#: What a camera is attached to: ``street`` (street light, traffic signal, pole: public
#: ownership), ``building``, ``unknown``.
MOUNTS = ("street", "building", "unknown")
#: Mounting height above the ground (m) by mount class: (median, robust standard deviation
#: = interquartile range / 1.349), for cameras whose ``height_m`` is unknown. Source: the
#: ``height`` tags of OpenStreetMap ``man_made=surveillance`` nodes of Switzerland (Overpass
#: sample, 2,144 nodes, ODbL; ../shared/data/api_fixtures/overpass/): ``camera:mount=pole``
#: 127 nodes, median 5.0 m, IQR 4.0-6.0 m; ``camera:mount=wall`` 104 nodes, median 3.0 m,
#: IQR 2.5-4.0 m; all 334 tagged heights, median 3.5 m, IQR 3.0-5.0 m (``unknown``). Used by
#: :mod:`camcensus.locate` (range from pitch) and the pixel-density coverage model
#: (docs/locate.md).
MOUNT_HEIGHT_PRIORS: dict[str, tuple[float, float]] = {
    "street": (5.0, 1.48),
    "building": (3.0, 1.11),
    "unknown": (3.5, 1.48),
}
_CAMERA_TYPES = ("dome", "bullet", "fixed", "panning", "unknown")

# Amnesty's per-panorama median columns -> mount of the cameras they count.
_MOUNT_OF = {
    "attached_street_median": "street",
    "attached_building_median": "building",
    "attached_unknown_median": "unknown",
}


def cameras_from_counts(
    gdf_counts: gpd.GeoDataFrame,
    *,
    position_sd_m: float | None = None,
    licence: str = "",
    tier: str | None = None,
) -> gpd.GeoDataFrame:
    """Turn per-panorama counts into camera rows at the panorama point.

    Parameters
    ----------
    gdf_counts
        The ``counts`` table (one row per panorama: ``PanoramaId``, ``attached_*_median``,
        optionally ``type_dome_median``/``type_bullet_median`` for pole cameras and
        ``ImageDate``), point geometry with a CRS.
    position_sd_m
        Stated uncertainty of each camera's position around the panorama point (default:
        setting ``counts_position_sd_m``).
    licence
        What the positions may be re-published under (Amnesty's data: CC BY-NC-ND 4.0;
        positions read off Google imagery may not enter OpenStreetMap).
    tier
        Provenance; default "seen in imagery by k volunteers (median)".

    Returns
    -------
    geopandas.GeoDataFrame
        One row per camera in :data:`CAMERA_COLUMNS` order plus geometry (same CRS as the
        counts), RangeIndex; ``camera_id`` is ``<PanoramaId>/<mount>/<n>``. Street cameras of a
        panorama are typed ``dome`` then ``bullet`` by the panorama's medians, the rest
        ``unknown``. ``direction_deg`` is null (all-round / unknown).
    """
    if gdf_counts.crs is None:
        raise CrsError("the counts have no CRS. Fix: set it with gdf.set_crs('EPSG:4326').")
    sd = settings.get_float("counts_position_sd_m") if position_sd_m is None else position_sd_m
    present = [c for c in _MOUNT_OF if c in gdf_counts.columns]
    ids = gdf_counts["PanoramaId"].astype(str).to_numpy()
    geoms = np.asarray(gdf_counts.geometry.values)
    frames = []
    for col in present:
        n = np.clip(np.nan_to_num(gdf_counts[col].to_numpy(dtype="float64")), 0, None)
        n = np.floor(n).astype("int64")
        if n.sum() == 0:
            continue
        row = np.repeat(np.arange(len(n)), n)
        # Position of each camera among its panorama's cameras of this mount: 0, 1, ...
        rank = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
        mount = _MOUNT_OF[col]
        ctype = np.full(len(row), "unknown", dtype=object)
        if mount == "street":
            dome = _per_row(gdf_counts, "type_dome_median")[row]
            bullet = _per_row(gdf_counts, "type_bullet_median")[row]
            ctype[rank < dome] = "dome"
            ctype[(rank >= dome) & (rank < dome + bullet)] = "bullet"
        frame = pd.DataFrame(
            {
                "camera_id": [f"{ids[r]}/{mount}/{k + 1}" for r, k in zip(row, rank, strict=True)],
                "mount": mount,
                "camera_type": ctype,
                "source_ref": ids[row],
                "_row": row,
            }
        )
        frames.append(frame)
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.DataFrame(
            {"camera_id": [], "mount": [], "camera_type": [], "source_ref": [], "_row": []}
        ).astype({"_row": "int64"})
    rows = df.pop("_row").to_numpy(dtype="int64")
    dates = (
        gdf_counts["ImageDate"].astype("string").to_numpy()[rows]
        if "ImageDate" in gdf_counts.columns
        else None
    )
    out = pd.DataFrame(
        {
            "camera_id": df["camera_id"].astype(str),
            "position_sd_m": sd,
            "mount": df["mount"].astype(str),
            "camera_type": df["camera_type"].astype(str),
            "surveillance_type": "camera",
            "direction_deg": np.nan,
            "hfov_deg": np.nan,
            "height_m": np.nan,
            "operator": None,
            "source": "decode-counts",
            "source_ref": df["source_ref"].astype(str),
            "tier": tier or "seen in imagery by k volunteers (median)",
            "support": "median of the volunteers' counts",
            "first_seen": dates,
            "last_seen": dates,
            "licence": licence,
        }
    )
    return gpd.GeoDataFrame(out, geometry=geoms[rows], crs=gdf_counts.crs)


def _per_row(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    if col not in gdf.columns:
        return np.zeros(len(gdf), dtype="int64")
    out: np.ndarray = np.floor(np.nan_to_num(gdf[col].to_numpy(dtype="float64"))).astype("int64")
    return out


def public_cameras(gdf_cameras: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return the cameras on street furniture (``mount == "street"``): Amnesty's public cameras."""
    return gdf_cameras.loc[gdf_cameras["mount"] == "street"]


def validate_cameras(gdf_cameras: gpd.GeoDataFrame) -> None:
    """Raise :class:`~camcensus.ContractError` listing every way ``gdf_cameras`` breaks the
    ``cameras`` contract."""
    problems = []
    if not isinstance(gdf_cameras, gpd.GeoDataFrame):
        raise ContractError("cameras must be a GeoDataFrame (one point per camera)")
    missing = [c for c in CAMERA_COLUMNS if c not in gdf_cameras.columns]
    if missing:
        problems.append("missing columns " + ", ".join(missing))
    if gdf_cameras.crs is None:
        problems.append("no CRS (set it with gdf.set_crs('EPSG:4326'))")
    if len(gdf_cameras) and not (gdf_cameras.geom_type == "Point").all():
        problems.append("geometry must be points")
    if "mount" in gdf_cameras.columns:
        bad = sorted(set(gdf_cameras["mount"].dropna()) - set(MOUNTS))
        if bad:
            problems.append(f"mount values {bad} (expected one of {list(MOUNTS)})")
    if "camera_id" in gdf_cameras.columns and gdf_cameras["camera_id"].duplicated().any():
        problems.append("camera_id is not unique")
    if "direction_deg" in gdf_cameras.columns:
        d = gdf_cameras["direction_deg"].to_numpy(dtype="float64")
        if np.any(np.isfinite(d) & ((d < 0) | (d >= 360))):
            problems.append("direction_deg outside [0, 360)")
    if problems:
        raise ContractError("the cameras table breaks its contract: " + "; ".join(problems))
