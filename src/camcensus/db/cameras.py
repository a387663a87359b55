"""The camera inventory in the platform database: load, replace, query, dump.

The ``cameras`` table holds the contract columns of :data:`camcensus.cameras.CAMERA_COLUMNS`
with the point as ``lon``/``lat`` in WGS84 (on PostGIS also a generated ``geom`` point with a
GiST index). Columns a source adds beyond the contract (``osm_tags``, ``direction_raw``,
``source_refs`` ...) are kept, as JSON text in ``extra``, and come back as columns, so a
GeoDataFrame loaded and read back is the same table.

- :func:`load_cameras` adds cameras (refusing ids already stored); with ``replace="sources"``
  it first deletes the stored cameras of the sources being loaded (re-importing OpenStreetMap
  replaces the OpenStreetMap cameras and nothing else), with ``replace="all"`` the whole table.
- :func:`query_cameras` selects by box, source, surveillance type and camera type, a page at a
  time; :func:`cameras_frame` returns the result as the contract GeoDataFrame and
  :func:`cameras_geojson` as GeoJSON.
- :func:`dump_cameras` is the full download: every camera as GeoJSON, byte for byte the same for
  the same data, with its SHA-256 checksum and the date of the data (the latest load);
  :func:`write_cameras_dump` writes it to a file a page at a time (national inventories).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Select, delete, func, insert, or_, select, text
from sqlalchemy.orm import Session

from camcensus._errors import Ledger
from camcensus.cameras import CAMERA_COLUMNS, validate_cameras
from camcensus.db.errors import Conflict, Invalid
from camcensus.db.models import Camera

__all__ = [
    "CamerasDump",
    "LoadResult",
    "cameras_frame",
    "cameras_geojson",
    "count_cameras",
    "dump_cameras",
    "load_cameras",
    "query_cameras",
    "write_cameras_dump",
]

# Contract columns stored as text / as numbers.
_TEXT = ("mount", "camera_type", "surveillance_type", "operator", "source", "source_ref", "tier",
         "support", "first_seen", "last_seen", "licence")  # fmt: skip
_FLOAT = ("position_sd_m", "direction_deg", "hfov_deg", "height_m")
# Rows per INSERT statement.
_CHUNK = 2_000
# Rows per page of the dump.
_DUMP_PAGE = 10_000


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_cameras` did: rows added, rows deleted first, rows left out (counted
    by reason in the ledger)."""

    loaded: int
    deleted: int
    excluded: int
    loaded_at: datetime


@dataclass(frozen=True)
class CamerasDump:
    """The full download: its SHA-256 (hex), size, the date of the data (the latest load, UTC),
    the number of cameras, and the GeoJSON itself (``content``, or the file at ``path``)."""

    sha256: str
    size: int
    date: datetime | None
    cameras: int
    content: bytes = b""
    path: Path | None = None

    @property
    def filename(self) -> str:
        """``cameras-YYYY-MM-DD.geojson`` (the date of the data)."""
        day = self.date.date().isoformat() if self.date is not None else "empty"
        return f"cameras-{day}.geojson"


def _plain(value: Any) -> Any:
    """Return ``value`` as a JSON-able Python value (NaN and NA become None)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, dict)):
        return value
    return str(value)


def _text(value: Any) -> str | None:
    v = _plain(value)
    return None if v is None else str(v)


def _float(value: Any) -> float | None:
    v = _plain(value)
    if v is None or v == "":
        return None
    return float(v)


def load_cameras(
    session: Session,
    gdf_cameras: gpd.GeoDataFrame,
    *,
    replace: Literal["none", "sources", "all"] = "none",
    now: datetime | None = None,
    ledger: Ledger | None = None,
) -> LoadResult:
    """Store a ``cameras`` table in the database (the caller commits).

    Parameters
    ----------
    session
        A write session.
    gdf_cameras
        The ``cameras`` contract table (:func:`camcensus.cameras.validate_cameras`), points in
        any CRS (stored in WGS84). Extra columns are kept (JSON text in ``extra``).
    replace
        ``"none"``: add the cameras; an id already stored is refused (409). ``"sources"``:
        first delete the stored cameras whose ``source`` is one of those loaded. ``"all"``:
        first empty the table.
    now
        The load time (default: now, UTC): ``loaded_at`` of every row, the dump's date.
    ledger
        Receives the rows left out, by reason (empty or non-finite points).

    Raises
    ------
    camcensus.ContractError
        The table breaks the ``cameras`` contract (every problem listed).
    camcensus.db.errors.Invalid
        A value the database would refuse (field of view out of range, empty source), naming
        the camera ids.
    camcensus.db.errors.Conflict
        ``replace="none"`` and some camera ids are already stored.
    """
    if replace not in ("none", "sources", "all"):
        raise Invalid(
            f"replace must be none, sources or all, not {replace!r}",
            [{"field": "replace", "message": f"found {replace!r}"}],
        )
    ledger = ledger if ledger is not None else Ledger()
    validate_cameras(gdf_cameras)
    loaded_at = (now or datetime.now(UTC)).astimezone(UTC)
    gdf = gdf_cameras.to_crs("EPSG:4326") if len(gdf_cameras) else gdf_cameras
    geoms = gdf.geometry
    empty = geoms.is_empty.to_numpy() | geoms.isna().to_numpy()
    lon = np.where(empty, np.nan, geoms.x.where(~empty).to_numpy(dtype="float64"))
    lat = np.where(empty, np.nan, geoms.y.where(~empty).to_numpy(dtype="float64"))
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    ledger.exclude("load cameras", "empty point or non-finite coordinates", int(bad.sum()))
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).loc[~bad]
    lon, lat = lon[~bad], lat[~bad]
    _check_values(frame)
    extra_cols = [c for c in frame.columns if c not in CAMERA_COLUMNS]

    rows: list[dict[str, Any]] = []
    records = frame.to_dict("records")
    for k, rec in enumerate(records):
        row: dict[str, Any] = {
            "camera_id": str(rec["camera_id"]),
            "lon": float(lon[k]),
            "lat": float(lat[k]),
            "loaded_at": loaded_at,
        }
        row |= {c: _text(rec[c]) for c in _TEXT}
        row |= {c: _float(rec[c]) for c in _FLOAT}
        extra = {c: _plain(rec[c]) for c in extra_cols}
        row["extra"] = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None
        rows.append(row)

    deleted = 0
    if replace == "all":
        deleted = int(session.execute(delete(Camera)).rowcount or 0)  # type: ignore[attr-defined]
    elif replace == "sources":
        sources = sorted({str(r["source"]) for r in rows})
        if sources:
            result = session.execute(delete(Camera).where(Camera.source.in_(sources)))
            deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    ids = [r["camera_id"] for r in rows]
    taken: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        taken += session.scalars(select(Camera.camera_id).where(Camera.camera_id.in_(chunk))).all()
    if taken:
        shown = ", ".join(sorted(taken)[:10]) + (" ..." if len(taken) > 10 else "")
        raise Conflict(
            f"{len(taken)} camera id(s) are already stored ({shown}). Fix: load with "
            "replace='sources' to replace those sources' cameras, or give new ids.",
            [{"field": "camera_id", "message": f"already stored: {shown}"}],
        )
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(Camera), rows[start : start + _CHUNK])
    return LoadResult(len(rows), deleted, int(bad.sum()), loaded_at)


def _check_values(frame: pd.DataFrame) -> None:
    """Raise :class:`Invalid` for values the table's CHECK constraints refuse, naming rows."""
    problems: list[dict[str, object]] = []

    def refuse(mask: np.ndarray, field: str, what: str) -> None:
        if mask.any():
            ids = frame["camera_id"].astype(str).to_numpy()[mask]
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            problems.append({"field": field, "message": f"{len(ids)} camera(s) {what}: {shown}"})

    hfov = pd.to_numeric(frame["hfov_deg"], errors="coerce").to_numpy(dtype="float64")
    refuse(np.isfinite(hfov) & ~((hfov > 0) & (hfov <= 360)), "hfov_deg", "outside (0, 360]")
    src = frame["source"]
    refuse((src.isna() | (src.astype(str).str.len() == 0)).to_numpy(), "source", "without one")
    if problems:
        raise Invalid(
            "Some cameras hold values the cameras table refuses; fix them and load again.",
            problems,
        )


def _postgis(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _filtered(
    query: Select[Any],
    *,
    bbox: Sequence[float] | None,
    source: Sequence[str] | str | None,
    surveillance_type: Sequence[str] | str | None,
    camera_type: Sequence[str] | str | None,
    postgis: bool = False,
) -> Select[Any]:
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        query = query.where(Camera.lat >= s, Camera.lat <= n)
        # A box whose west edge lies east of its east edge crosses the antimeridian.
        if w <= e:
            query = query.where(Camera.lon >= w, Camera.lon <= e)
            if postgis:
                # The GiST index finds the candidates (its boxes are rounded outwards to
                # single precision); the exact lon/lat conditions above decide.
                query = query.where(
                    text("cameras.geom && ST_MakeEnvelope(:bw, :bs, :be, :bn, 4326)").bindparams(
                        bw=w, bs=s, be=e, bn=n
                    )
                )
        else:
            query = query.where(or_(Camera.lon >= w, Camera.lon <= e))
    for column, wanted in (
        (Camera.source, source),
        (Camera.surveillance_type, surveillance_type),
        (Camera.camera_type, camera_type),
    ):
        if wanted is None:
            continue
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        query = query.where(column.in_(values))
    return query


def query_cameras(
    session: Session,
    *,
    bbox: Sequence[float] | None = None,
    source: Sequence[str] | str | None = None,
    surveillance_type: Sequence[str] | str | None = None,
    camera_type: Sequence[str] | str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Camera]:
    """Return the stored cameras matching every filter given, ordered by ``camera_id``.

    ``bbox`` is ``[west, south, east, north]`` in WGS84 degrees, edges included (``west >
    east`` crosses the antimeridian); ``source``, ``surveillance_type`` and ``camera_type``
    take one value or several (any of them).
    """
    query = _filtered(
        select(Camera),
        bbox=bbox,
        source=source,
        surveillance_type=surveillance_type,
        camera_type=camera_type,
        postgis=_postgis(session),
    ).order_by(Camera.camera_id)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return list(session.scalars(query))


def count_cameras(
    session: Session,
    *,
    bbox: Sequence[float] | None = None,
    source: Sequence[str] | str | None = None,
    surveillance_type: Sequence[str] | str | None = None,
    camera_type: Sequence[str] | str | None = None,
) -> int:
    """Return how many stored cameras match (the filters of :func:`query_cameras`)."""
    query = _filtered(
        select(func.count()).select_from(Camera),
        bbox=bbox,
        source=source,
        surveillance_type=surveillance_type,
        camera_type=camera_type,
        postgis=_postgis(session),
    )
    return int(session.scalar(query) or 0)


def _properties(cam: Camera) -> dict[str, Any]:
    props: dict[str, Any] = {"camera_id": cam.camera_id}
    for c in CAMERA_COLUMNS[1:]:
        props[c] = getattr(cam, c)
    if cam.extra:
        for key, value in json.loads(cam.extra).items():
            props.setdefault(key, value)
    return props


def cameras_frame(cameras: Sequence[Camera]) -> gpd.GeoDataFrame:
    """Return stored cameras as the ``cameras`` contract table (EPSG:4326, extra columns
    after the contract's)."""
    props = [_properties(c) for c in cameras]
    df = pd.DataFrame(props, columns=None if props else list(CAMERA_COLUMNS))
    for c in _FLOAT:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return gpd.GeoDataFrame(
        df,
        geometry=gpd.points_from_xy([c.lon for c in cameras], [c.lat for c in cameras]),
        crs="EPSG:4326",
    )


def cameras_geojson(cameras: Sequence[Camera]) -> dict[str, Any]:
    """Return stored cameras as a GeoJSON FeatureCollection (WGS84 points)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [cam.lon, cam.lat]},
                "properties": _properties(cam),
            }
            for cam in cameras
        ],
    }


def dump_cameras(session: Session) -> CamerasDump:
    """Return every stored camera as GeoJSON bytes with their SHA-256 and the data's date.

    The bytes depend only on the stored rows (ordered by ``camera_id``, keys sorted, no
    whitespace), so the same data always gives the same checksum.
    """
    buffer = io.BytesIO()
    dump = _write_dump(session, buffer)
    return replace(dump, content=buffer.getvalue())


def write_cameras_dump(session: Session, path: str | Path) -> CamerasDump:
    """Write :func:`dump_cameras`'s GeoJSON to ``path`` a page at a time (never the whole
    inventory in memory); return its checksum, size, date and count (``path`` set).

    The file is written beside ``path`` and renamed over it, so a reader never sees half a
    dump.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with tmp.open("wb") as fh:
            dump = _write_dump(session, fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return replace(dump, path=path)


def _write_dump(session: Session, fh: BinaryIO) -> CamerasDump:
    latest = session.scalar(select(func.max(Camera.loaded_at)))
    total = int(session.scalar(select(func.count()).select_from(Camera)) or 0)
    digest = hashlib.sha256()
    size = 0

    def put(data: bytes) -> None:
        nonlocal size
        fh.write(data)
        digest.update(data)
        size += len(data)

    date_text = json.dumps(latest.isoformat() if latest is not None else None)
    put(f'{{"type":"FeatureCollection","date":{date_text},"cameras":{total},"features":['.encode())
    n = 0
    last_id: str | None = None
    while True:
        # Keyset pages (by camera_id): every page costs the same however deep.
        query = select(Camera).order_by(Camera.camera_id).limit(_DUMP_PAGE)
        if last_id is not None:
            query = query.where(Camera.camera_id > last_id)
        page = list(session.scalars(query))
        if not page:
            break
        for cam in page:
            feature = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [cam.lon, cam.lat]},
                "properties": _properties(cam),
            }
            put((b"," if n else b"") + _compact(feature))
            n += 1
        last_id = page[-1].camera_id
        session.expunge_all()
    put(b"]}")
    if n != total:
        raise Conflict(
            f"the cameras changed while the dump was written ({total} counted, {n} written); "
            "dump again"
        )
    return CamerasDump(digest.hexdigest(), size, latest, n)


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
