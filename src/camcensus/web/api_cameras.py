"""Public camera inventory routes: the cameras as GeoJSON, a page at a time, and the full dump.

- ``GET /api/cameras?bbox=&source=&type=&camera_type=&limit=&offset=``: stored cameras
  (:mod:`camcensus.db.cameras`) as a GeoJSON FeatureCollection ordered by ``camera_id``; ``type``
  is the surveillance type (``camera``, ``ALPR``, ``guard``, ``gunshot_detector`` ...),
  ``source`` and ``type`` take one value or a comma-separated list. Paged like ``/api/tags``
  (``limit`` at most 5,000, ``offset``; a full page carries ``Link: <...>; rel="next"``).
- ``GET /api/cameras/dump``: every camera in one GeoJSON file (written a page at a time under
  the media root's ``dumps/``, named by its checksum, rebuilt when the data change), the same
  bytes for the same data, with its SHA-256 (headers ``X-Checksum-SHA256``, ``Repr-Digest``
  and ``ETag``) and the date of the data (``Last-Modified``: the latest load; also the file's
  ``date``).
- ``GET /api/cameras/dump/info``: the dump's checksum, date, size and camera count as JSON,
  to check a download against.

Reads take a read-only session and are rate-limited per client like the other public data.
Each camera carries its ``licence``: what it may be re-published under.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import replace
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camcensus.db.cameras import CamerasDump, cameras_geojson, query_cameras, write_cameras_dump
from camcensus.web.api_auth import ERRORS
from camcensus.web.api_data import MAX_PAGE, BboxQ, LimitQ, OffsetQ, _bbox, _next_page
from camcensus.web.schemas import FeatureCollection
from camcensus.web.security import ReadSession, rate_limit

__all__ = ["router"]

logger = logging.getLogger(__name__)

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
    """Return the dump, a file under the media root rebuilt only when the stored cameras
    changed (their count or latest load)."""
    from camcensus.db.models import Camera

    key = tuple(db.execute(select(func.count(), func.max(Camera.loaded_at))).one())
    with _DUMP_LOCK:
        cached = getattr(request.app.state, "cameras_dump", None)
        if cached is not None and cached[0] == key and cached[1].path.exists():
            dump: CamerasDump = cached[1]
            return dump
        folder = Path(request.app.state.media_root) / "dumps"
        try:
            dump = write_cameras_dump(db, folder / "cameras.geojson.new")
            assert dump.path is not None
            # Named by its checksum: a file being served is never overwritten.
            final = folder / f"cameras-{dump.sha256}.geojson"
            os.replace(dump.path, final)
        except OSError as exc:
            # The media root is the operator's to fix; answer in the one error shape.
            logger.error("cannot write the cameras dump under %s: %s", folder, exc)
            raise HTTPException(
                503,
                detail={
                    "error": "The cameras dump cannot be written on this server just now.",
                    "errors": [
                        {
                            "field": "",
                            "message": "the server's media folder is not writable; "
                            "try again later or page the cameras with /api/cameras",
                        }
                    ],
                },
            ) from exc
        dump = replace(dump, path=final)
        if cached is not None and cached[1].path != final:
            cached[1].path.unlink(missing_ok=True)
        request.app.state.cameras_dump = (key, dump)
        return dump


@router.get(
    "/cameras/dump",
    summary="Every camera in one GeoJSON file, with its SHA-256 checksum and date",
    response_class=FileResponse,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def cameras_dump(request: Request, db: ReadSession) -> FileResponse:
    """Return the full inventory as a GeoJSON download (checksum and date in the headers)."""
    rate_limit(request, "data")
    dump = _dump(request, db)
    assert dump.path is not None
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
    return FileResponse(dump.path, media_type="application/geo+json", headers=headers)


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
        "bytes": dump.size,
        "max_page": MAX_PAGE,
    }
