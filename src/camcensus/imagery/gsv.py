"""Google Street View source (optional; the user's own API key).

Panoramas are found with the Street View Static API's free metadata request
(``GET .../maps/api/streetview/metadata?location=lat,lng&radius=r&source=outdoor&key=...``,
answering ``{"status": "OK", "pano_id", "location": {"lat", "lng"}, "date": "YYYY-MM",
"copyright"}``), one per intersection. Nothing is downloaded at import: each panorama's
``image_uri`` is ``gsv:<pano_id>`` and the :class:`~camcensus.imagery.store.ImageStore` pins
it on first request through :func:`gsv_fetcher`, so all k volunteers see the same image.

The Static API serves only perspective views (at most 640×640), so the fetcher asks for 20
views (every 60° of heading at pitch 0 and ±50°, plus straight up and down, 90° wide) and
projects them onto one equirectangular image whose centre column looks true north
(``heading_deg`` 0).

Positions tagged in these panoramas are ``republishable = False``: Google's Maps Platform
terms forbid creating content from Street View, and OpenStreetMap refuses data derived from
it (docs/imagery.md).
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from camcensus._errors import Ledger, OptionError, Problem
from camcensus.imagery.base import (
    SourceError,
    captured_from,
    get_with_retries,
    json_from,
    new_panorama_id,
    panoramas_frame,
)
from camcensus.imagery.store import Fetcher

if TYPE_CHECKING:
    import httpx

__all__ = ["GSV_API", "GSV_LICENCE", "VIEWS", "gsv_fetcher", "panoramas_from_gsv"]

GSV_API = "https://maps.googleapis.com"
GSV_LICENCE = "© Google (Street View Static API terms; not for OpenStreetMap)"
#: ``(heading_deg, pitch_deg)`` of the perspective views a panorama is built from (fov 90°).
VIEWS: tuple[tuple[float, float], ...] = (
    *((float(h), 0.0) for h in range(0, 360, 60)),
    *((float(h), 50.0) for h in range(30, 390, 60)),
    *((float(h), -50.0) for h in range(30, 390, 60)),
    (0.0, 90.0),
    (0.0, -90.0),
)
_SERVICE = "the Google Street View Static API"
_FIX = (
    "check the API key (Street View Static API enabled, billing set up) and the network; try "
    "again later, or raise retries= and timeout_s="
)
_STAGE = "import gsv"
_FOV = 90.0


def _denied(url: str, status: str, message: str) -> SourceError:
    return SourceError(
        [
            Problem(
                url,
                None,
                None,
                f"status {status}" + (f" ({message[:200]})" if message else ""),
                "status OK or ZERO_RESULTS",
                _FIX,
            )
        ]
    )


def panoramas_from_gsv(
    key: str,
    *,
    points: pd.DataFrame,
    radius_m: float = 25.0,
    api_url: str = GSV_API,
    width: int = 2560,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Find the nearest outdoor Street View panorama of each point (metadata only, no images).

    Parameters
    ----------
    key
        The user's Google Maps Platform key (sent as the ``key`` parameter; never shown in an
        error message).
    points
        ``lon``, ``lat`` (and ``intersection_id``) of the places to look at.
    radius_m
        Search radius of each metadata request (metres).
    api_url
        The API root (tests point it at a local server).
    width
        Width of the equirectangular image the fetcher will compose (2:1); 2560 matches the
        resolution of 640-pixel, 90° views.
    timeout_s, retries, backoff_s, ledger
        As :func:`~camcensus.imagery.panoramax.panoramas_from_panoramax`.

    Returns
    -------
    pandas.DataFrame
        :data:`~camcensus.imagery.base.PANORAMA_COLUMNS` with ``source`` ``gsv``,
        ``image_uri`` ``gsv:<pano_id>`` (pinned on first request), ``heading_deg`` 0,
        ``republishable`` false.

    Raises
    ------
    SourceError
        When the API keeps failing or answers REQUEST_DENIED, OVER_QUERY_LIMIT,
        INVALID_REQUEST or UNKNOWN_ERROR.
    """
    import httpx

    if not isinstance(key, str) or not key.strip():
        raise OptionError("key is empty; give a Google Maps Platform API key")
    if not (0 < float(radius_m) <= 1000):
        raise OptionError(f"radius_m={radius_m!r} must be in (0, 1000] metres, e.g. 25")
    if not (isinstance(width, int) and 256 <= width <= 8192 and width % 2 == 0):
        raise OptionError(f"width={width!r} must be an even integer in 256..8192, e.g. 2560")
    ledger = ledger if ledger is not None else Ledger()
    reasons: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    url = f"{api_url.rstrip('/')}/maps/api/streetview/metadata"
    ids = (
        points["intersection_id"]
        if "intersection_id" in points.columns
        else pd.Series([None] * len(points))
    )
    with httpx.Client(timeout=httpx.Timeout(timeout_s)) as http:
        for iid, lon, lat in zip(ids, points["lon"], points["lat"], strict=True):
            params = {
                "location": f"{float(lat):.7f},{float(lon):.7f}",
                "radius": f"{float(radius_m):g}",
                "source": "outdoor",
                "key": key.strip(),
            }
            response = get_with_retries(
                http, url, params=params, retries=retries, backoff_s=backoff_s,
                service=_SERVICE, fix=_FIX,
            )  # fmt: skip
            doc = json_from(response, service=_SERVICE, expected="Street View metadata JSON")
            shown = f"{url}?location={params['location']}&radius={params['radius']}&key=***"
            if not isinstance(doc, Mapping):
                raise _denied(shown, "missing", "the answer is not a JSON object")
            status = str(doc.get("status", ""))
            if status in ("ZERO_RESULTS", "NOT_FOUND"):
                reasons[f"no outdoor panorama within {float(radius_m):g} m"] += 1
                continue
            if status != "OK":
                raise _denied(shown, status or "missing", str(doc.get("error_message") or ""))
            pano_id = doc.get("pano_id")
            loc = doc.get("location")
            try:
                plat, plon = float(loc["lat"]), float(loc["lng"])  # type: ignore[index]
            except (TypeError, KeyError, ValueError):
                reasons["metadata without a location"] += 1
                continue
            if not isinstance(pano_id, str) or not pano_id or not math.isfinite(plat + plon):
                reasons["metadata without a pano_id"] += 1
                continue
            if pano_id in seen:
                reasons["panorama already found for another point"] += 1
                continue
            seen.add(pano_id)
            try:
                captured = captured_from(doc.get("date"))
            except ValueError:
                captured = None
            rows.append(
                {
                    "panorama_id": new_panorama_id(),
                    "lon": plon,
                    "lat": plat,
                    "heading_deg": 0.0,
                    "captured": captured,
                    "source": "gsv",
                    "source_ref": pano_id,
                    "image_uri": f"gsv:{pano_id}",
                    "width_px": width,
                    "height_px": width // 2,
                    "licence": GSV_LICENCE,
                    "republishable": False,
                    "intersection_id": None if iid is None else str(iid),
                }
            )
    for why, count in sorted(reasons.items()):
        ledger.exclude(_STAGE, why, count)
    return panoramas_frame(rows)


def gsv_fetcher(
    key: str,
    *,
    api_url: str = GSV_API,
    width: int = 2560,
    view_px: int = 640,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    client: httpx.Client | None = None,
) -> Fetcher:
    """Return a fetcher for ``gsv:<pano_id>`` uris: an equirectangular JPEG from 20 views.

    Register it with ``ImageStore(root, fetchers={"gsv": gsv_fetcher(key)})``; the store calls
    it once per panorama and keeps the result.

    Parameters
    ----------
    key
        The user's API key (a query parameter; never in an error message).
    width
        Width of the composed equirectangular image (height ``width / 2``).
    view_px
        Side of each requested view (the API's largest is 640).
    """
    if not isinstance(key, str) or not key.strip():
        raise OptionError("key is empty; give a Google Maps Platform API key")
    if not (isinstance(view_px, int) and 16 <= view_px <= 640):
        raise OptionError(f"view_px={view_px!r} must be an integer in 16..640")
    url = f"{api_url.rstrip('/')}/maps/api/streetview"
    secret = key.strip()

    def fetch(pano_id: str) -> bytes:
        import httpx
        from PIL import Image, UnidentifiedImageError

        from camcensus.imagery._sphere import View, perspective_to_equirect

        http = client or httpx.Client(timeout=httpx.Timeout(timeout_s))
        views = []
        try:
            for heading, pitch in VIEWS:
                params = {
                    "pano": pano_id,
                    "size": f"{view_px}x{view_px}",
                    "heading": f"{heading:g}",
                    "pitch": f"{pitch:g}",
                    "fov": f"{_FOV:g}",
                    "return_error_code": "true",
                    "key": secret,
                }
                response = get_with_retries(
                    http, url, params=params, retries=retries, backoff_s=backoff_s,
                    service=_SERVICE, fix=_FIX,
                )  # fmt: skip
                try:
                    with Image.open(io.BytesIO(response.content)) as im:
                        rgb = np.asarray(im.convert("RGB"))
                except (UnidentifiedImageError, OSError) as err:
                    raise _denied(
                        f"{url}?pano={pano_id}&heading={heading:g}&pitch={pitch:g}&key=***",
                        "no image",
                        f"the answer is not an image ({type(err).__name__})",
                    ) from None
                views.append(View(rgb, heading, pitch, _FOV))
        finally:
            if client is None:
                http.close()
        image, _ = perspective_to_equirect(views, width=width, height=width // 2)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=92)
        return buf.getvalue()

    return fetch
