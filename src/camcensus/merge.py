"""Provenance and de-duplication: merge camera inventories from several sources.

Two cameras of different sources are the same camera when they lie within ``distance_m`` of
each other and their attributes are compatible (surveillance type, camera type, mount,
direction). Pairs within the distance whose attributes disagree are *conflicts*: reported,
never merged. Cameras of the same source are never merged with each other (a list that puts
two cameras on one pole means two cameras).

Rule (deterministic, order-free within a distance tie only by ids): all compatible
cross-source pairs within ``distance_m`` are taken closest first; a pair joins its two
groups unless the groups already hold a camera of a common source, so a merged camera holds
at most one camera per source. Every merged camera keeps every member's reference
(``source_refs``), its sources and licences.

Distances are chord lengths between points on the WGS84 ellipsoid in earth-centred
coordinates (EPSG:4978, metres): valid everywhere on Earth (a national merge spans many UTM
zones) and within 1e-9 m of the geodesic at these distances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.cameras import CAMERA_COLUMNS, validate_cameras

__all__ = [
    "DEFAULT_DIRECTION_TOLERANCE_DEG",
    "DEFAULT_MATCH_DISTANCE_M",
    "INCOMPATIBLE_CAMERA_TYPES",
    "MergeResult",
    "incompatibility",
    "merge_files",
    "merge_sources",
]

#: Cameras of two sources farther apart than this are different cameras. Of the 22
#: OpenStreetMap surveillance nodes of NYC whose operator is the DOT (line_of_sight_nyc/
#: cctv.json), 11 lie 0.8-21.4 m from a camera of the DOT's own list and the next is 71 m
#: away: 25 m takes the first group and leaves the second.
DEFAULT_MATCH_DISTANCE_M = 25.0
#: Two known directions more than this far apart (degrees) are different cameras.
DEFAULT_DIRECTION_TOLERANCE_DEG = 45.0
#: Camera types that cannot be one camera: a bullet is fixed and never a dome; a fixed camera
#: does not pan. (A dome may be fixed or a PTZ, so dome is compatible with fixed and panning.)
INCOMPATIBLE_CAMERA_TYPES = frozenset(
    {
        frozenset({"bullet", "dome"}),
        frozenset({"bullet", "panning"}),
        frozenset({"fixed", "panning"}),
    }
)
_UNKNOWN = frozenset({"", "unknown", "none", "nan", "<na>"})
_ALL_ROUND_DEG = 359.0
_MERGE_COLUMNS = ("sources", "source_refs", "camera_ids", "licences", "n_sources", "merge_group")


@dataclass(frozen=True)
class MergeResult:
    """The merged inventory and how it was made.

    Attributes
    ----------
    cameras
        One row per merged camera: :data:`~camcensus.cameras.CAMERA_COLUMNS` taken from the
        member of the highest-priority source (the first of ``frames``), missing values
        filled from the others in priority order; ``first_seen``/``last_seen`` the earliest
        and latest of the members; ``licence`` every member's licence joined with "; " (all
        terms apply). Plus ``sources``, ``source_refs``, ``camera_ids``, ``licences`` (";"-
        joined, priority order), ``n_sources`` and ``merge_group``. Points in EPSG:4326.
    matches
        The joined pairs: ``source_a``, ``camera_id_a``, ``source_b``, ``camera_id_b``,
        ``distance_m``, ``merge_group`` (a group of k cameras has k - 1 joined pairs).
    conflicts
        Cross-source pairs within the distance whose attributes disagree: the columns of
        ``matches`` (without ``merge_group``) plus ``reason``.
    singletons
        The rows of ``cameras`` that only one source has.
    summary
        One row per source pair (in ``frames`` order): ``source_a``, ``source_b``, ``n_a``,
        ``n_b``, ``matched`` (merged cameras holding both), ``only_a``, ``only_b``,
        ``conflicts`` (incompatible pairs within the distance), ``unjoined`` (compatible
        pairs within the distance left apart because a group already had a camera of that
        source).
    distance_m, direction_tolerance_deg
        The parameters used.
    """

    cameras: gpd.GeoDataFrame
    matches: pd.DataFrame
    conflicts: pd.DataFrame
    singletons: gpd.GeoDataFrame
    summary: pd.DataFrame
    distance_m: float
    direction_tolerance_deg: float


def incompatibility(
    a: Mapping[str, object],
    b: Mapping[str, object],
    *,
    direction_tolerance_deg: float = DEFAULT_DIRECTION_TOLERANCE_DEG,
) -> str:
    """Return why cameras ``a`` and ``b`` cannot be one camera ("" when they can).

    Unknown values (missing, ``unknown``) are compatible with anything. Known values must
    agree: ``surveillance_type`` equal (case-insensitive); ``camera_type`` not one of
    :data:`INCOMPATIBLE_CAMERA_TYPES`; ``mount`` equal; directions (both known, neither
    all-round) at most ``direction_tolerance_deg`` apart.
    """
    reasons = []
    for col in ("surveillance_type", "mount"):
        x, y = _norm(a.get(col)), _norm(b.get(col))
        if x and y and x != y:
            reasons.append(f"{col} {x} vs {y}")
    x, y = _norm(a.get("camera_type")), _norm(b.get("camera_type"))
    if x and y and frozenset({x, y}) in INCOMPATIBLE_CAMERA_TYPES:
        reasons.append(f"camera_type {x} vs {y}")
    da, db = _direction(a), _direction(b)
    if np.isfinite(da) and np.isfinite(db):
        gap = abs((da - db + 180.0) % 360.0 - 180.0)
        if gap > direction_tolerance_deg:
            reasons.append(
                f"direction {da:g}° vs {db:g}° ({gap:g}° apart > {direction_tolerance_deg:g}°)"
            )
    return "; ".join(reasons)


def merge_sources(
    frames: Mapping[str, gpd.GeoDataFrame],
    *,
    distance_m: float = DEFAULT_MATCH_DISTANCE_M,
    direction_tolerance_deg: float = DEFAULT_DIRECTION_TOLERANCE_DEG,
) -> MergeResult:
    """Merge camera inventories of several sources into one, keeping every reference.

    Parameters
    ----------
    frames
        Source name -> ``cameras`` table (any CRS; ``camera_id`` unique within each).
        The order is the priority: the first source's position and attributes win.
    distance_m
        Largest distance (metres) between two cameras of one merged camera.
    direction_tolerance_deg
        Largest difference between two known directions of one merged camera.

    Returns
    -------
    MergeResult

    Raises
    ------
    ContractError
        When a frame breaks the ``cameras`` contract.
    OptionError
        When ``distance_m`` or ``direction_tolerance_deg`` is out of range, or fewer than one
        frame is given.
    """
    if not frames:
        raise OptionError("merge_sources needs at least one frame. Fix: pass {name: cameras}.")
    if not (distance_m > 0):
        raise OptionError(f"distance_m must be > 0 (got {distance_m}). Fix: e.g. distance_m=25.")
    if not (0 <= direction_tolerance_deg <= 180):
        raise OptionError(
            f"direction_tolerance_deg must be in [0, 180] (got {direction_tolerance_deg})."
        )
    names = list(frames)
    parts = []
    for k, name in enumerate(names):
        gdf = frames[name]
        try:
            validate_cameras(gdf)
        except ContractError as exc:
            raise ContractError(f"source {name!r}: {exc}") from None
        part = pd.DataFrame(gdf[list(CAMERA_COLUMNS)]).reset_index(drop=True)
        part.insert(0, "_source", name)
        part.insert(1, "_priority", k)
        pts = gdf.geometry.to_crs("EPSG:4326")
        part["_lon"] = pts.x.to_numpy()
        part["_lat"] = pts.y.to_numpy()
        parts.append(part)
    members = pd.concat(parts, ignore_index=True)
    n = len(members)
    src = members["_priority"].to_numpy(dtype="int64")

    pairs, dist = _candidate_pairs(members, distance_m, src)
    reasons = np.array(
        [
            incompatibility(
                _attrs(members, i),
                _attrs(members, j),
                direction_tolerance_deg=direction_tolerance_deg,
            )
            for i, j in pairs
        ],
        dtype=object,
    )
    ok = reasons == ""
    # Closest first; ties by the members' order, so the result does not depend on the
    # neighbour search.
    order = np.lexsort((pairs[:, 1], pairs[:, 0], dist))
    order = order[ok[order]]
    parent = np.arange(n)
    has = [1 << int(s) for s in src]
    joined: list[tuple[int, int, float]] = []
    unjoined: list[tuple[int, int]] = []
    for p in order:
        i, j = int(pairs[p, 0]), int(pairs[p, 1])
        ri, rj = _find(parent, i), _find(parent, j)
        if ri == rj:
            continue
        if has[ri] & has[rj]:
            unjoined.append((i, j))
            continue
        parent[rj] = ri
        has[ri] |= has[rj]
        joined.append((i, j, float(dist[p])))
    roots = np.array([_find(parent, i) for i in range(n)])
    # Groups numbered by their highest-priority member's position in the input.
    first_member = pd.Series(np.arange(n)).groupby(roots).min()
    group_of_root = pd.Series(np.arange(len(first_member)), index=first_member.sort_values().index)
    group = group_of_root.loc[roots].to_numpy()
    members["_group"] = group

    cameras = _merged_cameras(members)
    matches = pd.DataFrame(
        {
            "source_a": [members["_source"].iat[i] for i, _, _ in joined],
            "camera_id_a": [members["camera_id"].iat[i] for i, _, _ in joined],
            "source_b": [members["_source"].iat[j] for _, j, _ in joined],
            "camera_id_b": [members["camera_id"].iat[j] for _, j, _ in joined],
            "distance_m": [d for _, _, d in joined],
            "merge_group": [int(group[i]) for i, _, _ in joined],
        }
    )
    bad = np.flatnonzero(~ok)
    conflicts = pd.DataFrame(
        {
            "source_a": members["_source"].to_numpy()[pairs[bad, 0]],
            "camera_id_a": members["camera_id"].to_numpy()[pairs[bad, 0]],
            "source_b": members["_source"].to_numpy()[pairs[bad, 1]],
            "camera_id_b": members["camera_id"].to_numpy()[pairs[bad, 1]],
            "distance_m": dist[bad],
            "reason": reasons[bad],
        }
    ).sort_values(["distance_m", "camera_id_a", "camera_id_b"], ignore_index=True)
    summary = _summary(names, members, pairs, ok, unjoined, src)
    singletons = cameras.loc[cameras["n_sources"] == 1].reset_index(drop=True)
    return MergeResult(
        cameras=cameras,
        matches=matches,
        conflicts=conflicts,
        singletons=singletons,
        summary=summary,
        distance_m=float(distance_m),
        direction_tolerance_deg=float(direction_tolerance_deg),
    )


def _candidate_pairs(
    members: pd.DataFrame, distance_m: float, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-source pairs (i < j) within ``distance_m``, with their distances in metres."""
    if len(members) < 2:
        return np.zeros((0, 2), dtype="int64"), np.zeros(0)
    tr = Transformer.from_crs("EPSG:4326", "EPSG:4978", always_xy=True)
    x, y, z = tr.transform(
        members["_lon"].to_numpy(), members["_lat"].to_numpy(), np.zeros(len(members))
    )
    xyz = np.column_stack([x, y, z])
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(r=distance_m, output_type="ndarray").astype("int64")
    pairs = pairs[src[pairs[:, 0]] != src[pairs[:, 1]]]
    pairs.sort(axis=1)
    dist = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    return pairs, dist


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = int(parent[root])
    while parent[i] != root:
        parent[i], i = root, int(parent[i])
    return root


def _norm(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip().lower()
    return "" if text in _UNKNOWN else text


def _direction(row: Mapping[str, object]) -> float:
    d = row.get("direction_deg")
    w = row.get("hfov_deg")
    d = float(d) if isinstance(d, int | float) else np.nan
    w = float(w) if isinstance(w, int | float) else np.nan
    if np.isfinite(w) and w >= _ALL_ROUND_DEG:
        return np.nan
    return d


def _attrs(members: pd.DataFrame, i: int) -> dict[str, object]:
    return {
        col: members[col].iat[i]
        for col in ("surveillance_type", "camera_type", "mount", "direction_deg", "hfov_deg")
    }


def _merged_cameras(members: pd.DataFrame) -> gpd.GeoDataFrame:
    if members.empty:
        empty = pd.DataFrame({c: [] for c in (*CAMERA_COLUMNS, *_MERGE_COLUMNS)})
        return gpd.GeoDataFrame(empty, geometry=gpd.points_from_xy([], []), crs="EPSG:4326")
    members = members.sort_values(["_group", "_priority"], kind="stable")
    by = members.groupby("_group", sort=True)
    out = by.first()  # first non-null per column, in priority order
    primary = by.nth(0).set_index("_group")
    for col in ("mount", "camera_type", "surveillance_type"):
        known = members[col].where(members[col].map(_norm) != "")
        filled = known.groupby(members["_group"]).first()
        out[col] = filled.fillna(primary[col])
    for col in ("camera_id", "source", "source_ref", "tier", "position_sd_m", "_lon", "_lat"):
        out[col] = primary[col]
    seen = members[["first_seen", "last_seen"]].astype("string")
    out["first_seen"] = seen["first_seen"].groupby(members["_group"]).min()
    out["last_seen"] = seen["last_seen"].groupby(members["_group"]).max()

    def joined(col: str, sep: str = ";") -> pd.Series:
        return by[col].agg(lambda s: sep.join(dict.fromkeys(str(v) for v in s)))

    out["sources"] = joined("_source")
    out["source_refs"] = joined("source_ref")
    out["camera_ids"] = joined("camera_id")
    out["licences"] = joined("licence")
    out["licence"] = joined("licence", "; ")
    out["n_sources"] = by.size()
    out["merge_group"] = out.index.to_numpy()
    df = pd.DataFrame(out[[*CAMERA_COLUMNS, *_MERGE_COLUMNS]]).reset_index(drop=True)
    for col in ("first_seen", "last_seen"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    geoms = gpd.points_from_xy(out["_lon"].to_numpy(), out["_lat"].to_numpy())
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def _summary(
    names: list[str],
    members: pd.DataFrame,
    pairs: np.ndarray,
    ok: np.ndarray,
    unjoined: list[tuple[int, int]],
    src: np.ndarray,
) -> pd.DataFrame:
    k = len(names)
    n_of = np.bincount(src, minlength=k)
    group = members["_group"].to_numpy()
    # Which sources each merged camera holds.
    holds = np.zeros((int(group.max()) + 1 if len(group) else 0, k), dtype=bool)
    holds[group, src] = True
    bad = np.zeros((k, k), dtype="int64")
    np.add.at(bad, (src[pairs[~ok, 0]], src[pairs[~ok, 1]]), 1)
    left = np.zeros((k, k), dtype="int64")
    for i, j in unjoined:
        left[src[i], src[j]] += 1
    rows = []
    for a in range(k):
        for b in range(a + 1, k):
            matched = int((holds[:, a] & holds[:, b]).sum())
            rows.append(
                {
                    "source_a": names[a],
                    "source_b": names[b],
                    "n_a": int(n_of[a]),
                    "n_b": int(n_of[b]),
                    "matched": matched,
                    "only_a": int(n_of[a]) - matched,
                    "only_b": int(n_of[b]) - matched,
                    "conflicts": int(bad[a, b] + bad[b, a]),
                    "unjoined": int(left[a, b] + left[b, a]),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "source_a",
            "source_b",
            "n_a",
            "n_b",
            "matched",
            "only_a",
            "only_b",
            "conflicts",
            "unjoined",
        ],
    )


def merge_files(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    distance_m: float = DEFAULT_MATCH_DISTANCE_M,
    direction_tolerance_deg: float = DEFAULT_DIRECTION_TOLERANCE_DEG,
    source_format: str = "auto",
    ledger: Ledger | None = None,
) -> tuple[MergeResult, dict[str, Path]]:
    """Merge camera files (one source each, named by file name, first = highest priority).

    Writes the merged ``cameras`` to ``out`` (format from its extension, see
    :func:`camcensus.io.camera_files.write_cameras`) and, beside it, ``<stem>.summary.csv``
    (one row per source pair), ``<stem>.matches.csv`` and ``<stem>.conflicts.csv``.
    """
    from camcensus.io.camera_files import read_cameras_file, write_cameras
    from camcensus.io.formats import write_csv

    out = Path(out)
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise OptionError(
            "two camera files share a file name; the name is the source's name in the merge. "
            "Fix: rename one of them."
        )
    frames = {
        name: read_cameras_file(p, source_format=source_format, ledger=ledger)
        for name, p in zip(names, paths, strict=True)
    }
    result = merge_sources(
        frames, distance_m=distance_m, direction_tolerance_deg=direction_tolerance_deg
    )
    written = write_cameras(result.cameras, out, ledger=ledger, inputs=paths)
    tables = {"summary": result.summary, "matches": result.matches, "conflicts": result.conflicts}
    files = {"cameras": written.path}
    for key, frame in tables.items():
        target = out.with_name(f"{out.stem}.{key}.csv")
        if any(Path(p).resolve() == target.resolve() for p in paths):
            raise OptionError(f"{target} is an input file. Fix: choose another --out name.")
        write_csv(frame, target)
        files[key] = target
    return result, files
