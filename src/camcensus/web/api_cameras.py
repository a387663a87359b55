"""Public camera inventory routes: the cameras as GeoJSON, a page at a time, and the full dump.

- ``GET /api/cameras?bbox=&source=&type=&camera_type=&limit=&offset=``: stored cameras
  (:mod:`camcensus.db.cameras`) as a GeoJSON FeatureCollection ordered by ``camera_id``; ``type``
  is the surveillance type (``camera``, ``ALPR``, ``guard``, ``gunshot_detector`` ...),
  ``source`` and ``type`` take one value or a comma-separated list. Paged like ``/api/tags``
  (``limit`` at most 5,000, ``offset``; a full page carries ``Link: <...>; rel="next"``).
- ``GET /api/cameras/dump``: every camera in one GeoJSON file, the same bytes for the same
  data, with its SHA-256 (headers ``X-Checksum-SHA256`` and ``Repr-Digest``, and ``ETag``) and
  the date of the data (``Last-Modified``, the latest load; also in the file's ``date``).
- ``GET /api/cameras/dump/info``: the dump's checksum, date, size and camera count as JSON,
  to check a download against.

Reads take a read-only session and are rate-limited per client like the other public data.
Each camera carries its ``licence``: what it may be re-published under.
"""

from __future__ import annotations

import base64
import threading
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camcensus.db.cameras import CamerasDump, cameras_geojson, dump_cameras, query_cameras
from camcensus.web.api_auth import ERRORS
from camcensus.web.api_data import MAX_PAGE, BboxQ, LimitQ, OffsetQ, _bbox, _next_page
from camcensus.web.schemas import FeatureCollection
from camcensus.web.security import ReadSession, rate_limit

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["cameras"], responses=ERRORS)

_LIST = r"^[A-Za-z0-9_:.\- ]{1,64}(,[A-Za-z0-9_:.\- ]{1,64}){0,19}$"
SourceQ = Annotated[
    str | None,
    Query(pattern=_LIST, description="A source (osm, city-list, decode-counts ...) or a list"),
]
TypeQ = Annotated[
    str | None,
    Query(pattern=_LIST, description="A surveillance type (camera, ALPR ...) or a list"),
]
CameraTypeQ = Annotated[
    str | None,
    Query(pattern=_LIST, description="A camera type (dome, bullet, fixed, panning ...) or a list"),
]
_DUMP_LOCK = threading.Lock()


def _values(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


@router.get(
    "/cameras",
    response_model=FeatureCollection,
    summary="The camera inventory as GeoJSON (filter by box, source, type)",
)
def public_cameras(
    *,
    bbox: BboxQ = None,
    source: SourceQ = None,
    type: TypeQ = None,
    camera_type: CameraTypeQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
    request: Request,
    response: Response,
    db: ReadSession,
) -> dict[str, Any]:
    """Return the stored cameras matching every filter, ordered by id, ``limit`` at a time."""
    rate_limit(request, "data")
    rows = query_cameras(
        db,
        bbox=_bbox(bbox),
        source=_values(source),
        surveillance_type=_values(type),
        camera_type=_values(camera_type),
        limit=limit,
        offset=offset,
    )
    _next_page(request, response, len(rows), limit, offset)
    return cameras_geojson(rows)


def _dump(request: Request, db: Session) -> CamerasDump:
    """Return the dump, rebuilt only when the stored cameras changed (count or latest load)."""
    from camcensus.db.models import Camera

    key = tuple(db.execute(select(func.count(), func.max(Camera.loaded_at))).one())
    with _DUMP_LOCK:
        cached = getattr(request.app.state, "cameras_dump", None)
        if cached is not None and cached[0] == key:
            dump: CamerasDump = cached[1]
            return dump
        dump = dump_cameras(db)
        request.app.state.cameras_dump = (key, dump)
        return dump


@router.get(
    "/cameras/dump",
    summary="Every camera in one GeoJSON file, with its SHA-256 checksum and date",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def cameras_dump(request: Request, db: ReadSession) -> Response:
    """Return the full inventory as a GeoJSON download (checksum and date in the headers)."""
    rate_limit(request, "data")
    dump = _dump(request, db)
    digest = base64.b64encode(bytes.fromhex(dump.sha256)).decode()
    headers = {
        "Content-Disposition": f'attachment; filename="{dump.filename}"',
        "X-Checksum-SHA256": dump.sha256,
        "Repr-Digest": f"sha-256=:{digest}:",
        "ETag": f'"{dump.sha256}"',
        "X-Cameras": str(dump.cameras),
    }
    if dump.date is not None:
        headers["Last-Modified"] = format_datetime(dump.date, usegmt=True)
    return Response(dump.content, media_type="application/geo+json", headers=headers)


@router.get("/cameras/dump/info", summary="The dump's checksum, date, size and camera count")
def cameras_dump_info(request: Request, db: ReadSession) -> dict[str, Any]:
    """Return what to check a downloaded dump against."""
    rate_limit(request, "data")
    dump = _dump(request, db)
    return {
        "url": "/api/cameras/dump",
        "filename": dump.filename,
        "sha256": dump.sha256,
        "date": dump.date.isoformat() if dump.date is not None else None,
        "cameras": dump.cameras,
        "bytes": len(dump.content),
        "max_page": MAX_PAGE,
    }
