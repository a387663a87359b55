"""Mapillary source: 360° images through the Graph API, with the user's own client token.

``GET https://graph.mapillary.com/images?bbox=w,s,e,n&is_pano=true&fields=...&limit=n`` answers
``{"data": [{"id", "geometry", "computed_geometry", "captured_at", "compass_angle",
"computed_compass_angle", "is_pano", "camera_type", "thumb_original_url", "width",
"height"}, ...], "paging": {"next": ...}}``. The token goes in the ``Authorization: OAuth``
header, never in a URL, so it can never appear in an error message or a log; a ``next`` link
that carries an ``access_token`` has it removed before it is followed.

Only panoramas (``is_pano``) whose original is a 2:1 equirectangular image are kept; each is
downloaded once (``thumb_original_url`` links expire) and pinned in the store. Positions and
headings prefer Mapillary's structure-from-motion values (``computed_*``). Mapillary images
are CC BY-SA 4.0; Mapillary lets OpenStreetMap contributors derive map data from them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from camcensus._errors import Ledger, OptionError, Problem
from camcensus.imagery.base import (
    SourceError,
    captured_from,
    check_bbox,
    equirect_problem,
    get_with_retries,
    image_size,
    json_from,
    new_panorama_id,
    panoramas_frame,
)
from camcensus.imagery.store import ImageStore

if TYPE_CHECKING:
    pass

__all__ = ["MAPILLARY_API", "MAPILLARY_LICENCE", "panoramas_from_mapillary"]

MAPILLARY_API = "https://graph.mapillary.com"
MAPILLARY_LICENCE = "CC-BY-SA-4.0 (Mapillary)"
_FIELDS = (
    "id,geometry,computed_geometry,captured_at,compass_angle,computed_compass_angle,is_pano,"
    "camera_type,thumb_original_url,width,height"
)
_SERVICE = "the Mapillary Graph API"
_FIX = (
    "check the client token (MLY|..., from mapillary.com/dashboard/developers) and the network; "
    "try again later, or raise retries= and timeout_s="
)
_STAGE = "import mapillary"
_SECRET = frozenset({"access_token", "token", "key"})


def _strip_secrets(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _SECRET]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _point(image: Mapping[str, Any]) -> tuple[float, float] | None:
    for key in ("computed_geometry", "geometry"):
        geom = image.get(key)
        coords = geom.get("coordinates") if isinstance(geom, Mapping) else None
        try:
            lon, lat = float(coords[0]), float(coords[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90:
            return lon, lat
    return None


def _heading(image: Mapping[str, Any]) -> float | None:
    for key in ("computed_compass_angle", "compass_angle"):
        try:
            value = float(image[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            return value % 360.0
    return None


def panoramas_from_mapillary(
    token: str,
    *,
    store: ImageStore,
    bbox: tuple[float, ...] | list[float],
    api_url: str = MAPILLARY_API,
    page_size: int = 500,
    max_pictures: int = 10_000,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Import the 360° Mapillary images in ``bbox`` with the user's client token.

    Parameters
    ----------
    token
        A Mapillary client access token (``MLY|...``); sent only in the ``Authorization``
        header.
    store
        Where each image is pinned.
    bbox
        ``[west, south, east, north]`` in WGS84 degrees (Mapillary refuses boxes over about
        0.01 square degrees: split a city into tiles).
    api_url
        The Graph API root (tests point it at a local server).
    page_size, max_pictures, timeout_s, retries, backoff_s, ledger
        As :func:`~camcensus.imagery.panoramax.panoramas_from_panoramax`.

    Returns
    -------
    pandas.DataFrame
        :data:`~camcensus.imagery.base.PANORAMA_COLUMNS`, ``source`` ``mapillary``,
        ``source_ref`` the image id, licence :data:`MAPILLARY_LICENCE`, republishable.

    Raises
    ------
    SourceError
        When the API keeps failing or refuses the token (401/403); the token is never shown.
    """
    import httpx

    if not isinstance(token, str) or not token.strip():
        raise OptionError("token is empty; give a Mapillary client token (MLY|...)")
    box = check_bbox(bbox)
    assert box is not None
    if not (isinstance(page_size, int) and 1 <= page_size <= 2000):
        raise OptionError(f"page_size={page_size!r} must be an integer in 1..2000")
    ledger = ledger if ledger is not None else Ledger()
    reasons: Counter[str] = Counter()
    headers = {"Authorization": f"OAuth {token.strip()}"}
    kw: dict[str, Any] = {
        "retries": retries,
        "backoff_s": backoff_s,
        "service": _SERVICE,
        "fix": _FIX,
    }
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True) as http:
        url: str | None = f"{api_url.rstrip('/')}/images"
        params: dict[str, str] | None = {
            "bbox": ",".join(f"{v:.7f}" for v in box),
            "is_pano": "true",
            "fields": _FIELDS,
            "limit": str(page_size),
        }
        images: list[Any] = []
        visited: set[str] = set()
        while url and len(images) < max_pictures and url not in visited:
            visited.add(url)
            response = get_with_retries(http, url, params=params, headers=headers, **kw)
            doc = json_from(response, service=_SERVICE, expected="a JSON object with 'data'")
            data = doc.get("data") if isinstance(doc, Mapping) else None
            if not isinstance(data, list):
                raise SourceError(
                    [
                        Problem(
                            _strip_secrets(str(response.request.url)),
                            None,
                            None,
                            f"JSON without a 'data' list ({str(doc)[:60]!r})",
                            "the Graph API's {'data': [...]} answer",
                            "check api_url points at https://graph.mapillary.com",
                        )
                    ]
                )
            images.extend(data)
            paging = doc.get("paging")
            nxt = paging.get("next") if isinstance(paging, Mapping) else None
            url = _strip_secrets(str(nxt)) if isinstance(nxt, str) and nxt else None
            params = None
        for image in images[:max_pictures]:
            if not isinstance(image, Mapping) or not isinstance(image.get("id"), str | int):
                reasons["malformed image record"] += 1
                continue
            image_id = str(image["id"])
            if image_id in seen:
                reasons["found twice"] += 1
                continue
            if image.get("is_pano") is not True:
                reasons["not a panorama (is_pano false)"] += 1
                continue
            if image.get("camera_type") not in (None, "spherical", "equirectangular"):
                reasons[f"not equirectangular (camera_type {image.get('camera_type')})"] += 1
                continue
            point, heading = _point(image), _heading(image)
            href = image.get("thumb_original_url")
            if point is None:
                reasons["no position"] += 1
                continue
            if heading is None:
                reasons["no compass angle"] += 1
                continue
            if not isinstance(href, str) or urlsplit(href).scheme not in ("http", "https"):
                reasons["no original image URL"] += 1
                continue
            try:
                captured = captured_from(image.get("captured_at"))
            except (ValueError, OverflowError, OSError):
                captured = None
            try:
                picture = get_with_retries(http, href, **kw)
                width, height, fmt = image_size(picture.content)
            except SourceError:
                reasons["image could not be downloaded"] += 1
                continue
            except ValueError:
                reasons["image is not a readable image"] += 1
                continue
            if fmt not in ("JPEG", "PNG") or equirect_problem(width, height, file=href, row=None):
                reasons["image is not a 2:1 equirectangular JPEG or PNG"] += 1
                continue
            seen.add(image_id)
            uri = store.put(image_id, picture.content, suffix=".png" if fmt == "PNG" else ".jpg")
            rows.append(
                {
                    "panorama_id": new_panorama_id(),
                    "lon": point[0],
                    "lat": point[1],
                    "heading_deg": heading,
                    "captured": captured,
                    "source": "mapillary",
                    "source_ref": image_id,
                    "image_uri": uri,
                    "width_px": width,
                    "height_px": height,
                    "licence": MAPILLARY_LICENCE,
                    "republishable": True,
                    "intersection_id": None,
                }
            )
    for why, count in sorted(reasons.items()):
        ledger.exclude(_STAGE, why, count)
    return panoramas_frame(rows)
