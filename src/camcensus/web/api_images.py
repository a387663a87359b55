"""Image routes: a panorama (downscaled for phones), its viewer tiles, the tutorial panorama.

A panorama is found by its id in the database; the stored ``image_uri`` is resolved by
:class:`camcensus.imagery.store.ImageStore` inside the media root, so no part of a request ever
becomes a file path. Images are served only to logged-in volunteers (some sources' licences do
not allow re-publishing them).
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from sqlalchemy.orm import Session

from camcensus.imagery.base import SourceError
from camcensus.web.api_auth import ERRORS
from camcensus.web.security import (
    CurrentVolunteer,
    ReadSession,
)

__all__ = ["TUTORIAL_ID", "image_store", "router", "tutorial_meta", "tutorial_truth"]

router = APIRouter(prefix="/api", tags=["images"], responses=ERRORS)

PanoramaId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Width = Literal["1024", "2048", "4096", "full"]
WidthQ = Annotated[Width, Query(description="Largest width in pixels, or 'full'")]
#: The tutorial panorama's id (it is not stored in any project).
TUTORIAL_ID = "tutorial"
_JPEG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG image"}
}
_CACHE = "private, max-age=86400"
_store_lock = threading.Lock()
_TUTORIAL_WIDTH = 4096
_log = logging.getLogger("camcensus.web")


def image_store(request: Request) -> Any:
    """Return the app's image store (made on first use from the app's settings).

    ``WebSettings.blur`` blurs faces and plates of what the store fetches; with
    ``WebSettings.gsv_key`` a ``gsv:<pano_id>`` panorama is fetched from Street View on its
    first request and pinned under the media root, so every volunteer sees the same image.
    """
    with _store_lock:
        store = request.app.state.image_store
        if store is None:
            from camcensus.imagery.store import Fetcher, ImageStore

            settings = request.app.state.settings
            fetchers: dict[str, Fetcher] = {}
            if settings.gsv_key:
                from camcensus.imagery.gsv import GSV_API, gsv_fetcher

                fetchers["gsv"] = gsv_fetcher(
                    settings.gsv_key, api_url=settings.gsv_api_url or GSV_API
                )
            store = ImageStore(request.app.state.media_root, blur=settings.blur, fetchers=fetchers)
            request.app.state.image_store = store
    return store


def _not_found(panorama_id: str) -> HTTPException:
    return HTTPException(
        404,
        detail={
            "error": "No image is stored for this panorama.",
            "errors": [{"field": "panorama_id", "message": f"no image for {panorama_id!r}"}],
        },
    )


def _fetch_failed(panorama_id: str) -> HTTPException:
    # The provider's answer stays in the server log; it may name the request's address.
    return HTTPException(
        502,
        detail={
            "error": "The imagery provider did not deliver this panorama; try again later.",
            "errors": [{"field": "panorama_id", "message": f"fetching {panorama_id!r} failed"}],
        },
    )


def _image_uri(db: Session, panorama_id: str) -> str:
    from camcensus.db.models import Panorama

    panorama = db.get(Panorama, panorama_id)
    if panorama is None or not panorama.image_uri:
        raise _not_found(panorama_id)
    return str(panorama.image_uri)


@router.get(
    "/panoramas/{panorama_id}/image",
    response_class=Response,
    responses=_JPEG,
    summary="The panorama as a JPEG (w: 1024, 2048, 4096 or full)",
)
def panorama_image(
    *,
    request: Request,
    panorama_id: PanoramaId,
    w: WidthQ = "4096",
    identity: CurrentVolunteer,
    db: ReadSession,
) -> Response:
    """Return the pinned image of a panorama, downscaled to at most ``w`` pixels wide."""
    uri = _image_uri(db, panorama_id)
    db.close()
    try:
        data = image_store(request).image_bytes(uri, max_width=None if w == "full" else int(w))
    except SourceError as exc:
        _log.warning("fetching the image of %s failed: %s", panorama_id, exc)
        raise _fetch_failed(panorama_id) from exc
    except (FileNotFoundError, PermissionError, ValueError, LookupError) as exc:
        raise _not_found(panorama_id) from exc
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": _CACHE})


@router.get(
    "/panoramas/{panorama_id}/tiles/{col}_{row}.jpg",
    response_class=Response,
    responses=_JPEG,
    summary="One tile of the panorama for the viewer (a cols x rows grid over width w)",
)
def panorama_tile(
    *,
    request: Request,
    panorama_id: PanoramaId,
    col: Annotated[int, Path(ge=0, le=63)],
    row: Annotated[int, Path(ge=0, le=63)],
    cols: Annotated[int, Query(ge=1, le=64, description="Tile columns")] = 16,
    rows: Annotated[int, Query(ge=1, le=64, description="Tile rows")] = 8,
    w: WidthQ = "4096",
    identity: CurrentVolunteer,
    db: ReadSession,
) -> Response:
    """Return one tile of the panorama cut into ``cols`` x ``rows`` at width ``w``."""
    from camcensus._errors import OptionError

    uri = _image_uri(db, panorama_id)
    db.close()
    try:
        data = image_store(request).tile_bytes(
            uri,
            cols=cols,
            rows=rows,
            col=col,
            row=row,
            width=None if w == "full" else int(w),
        )
    except SourceError as exc:
        _log.warning("fetching the image of %s failed: %s", panorama_id, exc)
        raise _fetch_failed(panorama_id) from exc
    except OptionError as exc:
        raise HTTPException(
            422,
            detail={
                "error": "This tile is not in the grid.",
                "errors": [{"field": "col", "message": str(exc)}],
            },
        ) from exc
    except (FileNotFoundError, PermissionError, ValueError, LookupError) as exc:
        raise _not_found(panorama_id) from exc
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": _CACHE})


@lru_cache(maxsize=1)
def _tutorial() -> tuple[Any, list[dict[str, Any]]]:
    from camcensus.simulate.scene import objects_in_view, tutorial_scene

    scene = tutorial_scene()
    view = objects_in_view(scene)
    cams = view[(view["kind"] == "camera") & view["visible"]]
    truth = [
        {
            "heading_deg": float(r["heading_deg"]),
            "pitch_deg": float(r["pitch_deg"]),
            "attachment": str(r["attachment"]),
            "camera_type": str(r["camera_type"]),
        }
        for r in cams.to_dict("records")
    ]
    return scene, truth


def tutorial_truth() -> tuple[Any, list[dict[str, Any]]]:
    """Return the tutorial scene and its visible cameras (heading, pitch, attachment, type)."""
    return _tutorial()


def tutorial_meta() -> dict[str, Any]:
    """Return the tutorial panorama's heading and size."""
    scene, _ = _tutorial()
    return {
        "heading_deg": float(scene.heading_deg),
        "width_px": _TUTORIAL_WIDTH,
        "height_px": _TUTORIAL_WIDTH // 2,
    }


@lru_cache(maxsize=4)
def _tutorial_jpeg(width: int) -> bytes:
    from camcensus.simulate.render import render_panorama, to_jpeg

    scene, _ = _tutorial()
    return to_jpeg(render_panorama(scene, width=width, height=width // 2).image)


@router.get(
    "/tutorial/image",
    response_class=Response,
    responses=_JPEG,
    summary="The tutorial panorama as a JPEG",
)
def tutorial_image(
    *,
    w: WidthQ = "4096",
) -> Response:
    """Return the tutorial's synthetic panorama (rendered once, then cached)."""
    data = _tutorial_jpeg(_TUTORIAL_WIDTH if w == "full" else min(int(w), _TUTORIAL_WIDTH))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": _CACHE})
