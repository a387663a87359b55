"""Panoramax source: open, federated street-level pictures through the STAC API (no key).

Pictures are searched with ``GET {instance}/api/search?bbox=w,s,e,n&limit=n`` (a GeoJSON
FeatureCollection of STAC items, paged by ``links`` of ``rel: next``), either in a bounding box
or around each intersection of a list (the nearest picture within a radius). Only full 360°
equirectangular pictures are kept (``properties["pers:interior_orientation"].field_of_view ==
360``, not cropped, and 2:1 once downloaded); every other item is counted with its reason.

Each kept picture's ``assets.hd`` (else ``assets.sd``) is downloaded once and pinned in the
:class:`~camcensus.imagery.store.ImageStore`, so all volunteers see the same pixels even if the
picture is later blurred again, moved or deleted on the instance. The heading of the image
centre is ``properties["view:azimuth"]``; the capture date ``properties.datetime``; the licence
``properties.license`` (else the item's ``rel: license`` link, else the collection's
``license``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import pandas as pd

from camcensus._errors import Ledger, OptionError
from camcensus.imagery.base import (
    SourceError,
    captured_from,
    check_bbox,
    get_with_retries,
    image_size,
    json_from,
    new_panorama_id,
    panoramas_frame,
)
from camcensus.imagery.store import ImageStore

if TYPE_CHECKING:
    import httpx

__all__ = ["panoramas_from_panoramax", "search_pictures"]

_SERVICE = "the Panoramax API"
_STAGE = "import panoramax"
_FIX = (
    "check the instance URL (e.g. https://api.panoramax.xyz) and that it is up; try again later, "
    "or raise retries= and timeout_s="
)
_EXPECTED = "a GeoJSON FeatureCollection of STAC items (Panoramax /api/search)"
_MAX_IMAGE_BYTES = 80 * 1024 * 1024
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class _Picture:
    """A usable 360° picture found by a search."""

    item_id: str
    lon: float
    lat: float
    heading_deg: float
    captured: str | None
    href: str
    licence: str | None
    collection: str | None


def _base(url: str) -> str:
    """The instance's root (``https://host[/prefix]``) without a trailing ``/api``."""
    if not isinstance(url, str) or not url.strip():
        raise OptionError(
            "panoramax_url is empty; give the instance, e.g. https://api.panoramax.xyz"
        )
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError(
            f"panoramax_url={url[:80]!r} is not an http(s) URL; give the instance, e.g. "
            "https://api.panoramax.xyz"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _exclusion(item: Any) -> tuple[_Picture | None, str]:
    """Return the picture of a STAC item, or ``None`` and why it is left out."""
    if not isinstance(item, Mapping):
        return None, "malformed item (not a JSON object)"
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        return None, "malformed item (no id)"
    geom = item.get("geometry")
    coords = geom.get("coordinates") if isinstance(geom, Mapping) else None
    try:
        lon, lat = float(coords[0]), float(coords[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError):
        return None, "malformed item (no Point geometry)"
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        return None, "malformed item (coordinates outside WGS84 ranges)"
    props = item.get("properties")
    props = props if isinstance(props, Mapping) else {}
    orientation = props.get("pers:interior_orientation")
    orientation = orientation if isinstance(orientation, Mapping) else {}
    fov = orientation.get("field_of_view")
    if fov is None:
        return None, "not a 360° picture (field of view unknown)"
    try:
        fov_value = float(fov)
    except (TypeError, ValueError):
        return None, "not a 360° picture (field of view unknown)"
    if fov_value != 360:
        return None, "not a 360° picture (a flat or partial picture)"
    visible = orientation.get("visible_area")
    if isinstance(visible, list) and any(v not in (0, "0", None) for v in visible):
        return None, "a cropped 360° picture (visible_area)"
    azimuth = props.get("view:azimuth")
    try:
        heading = float(azimuth) % 360.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, "no heading (view:azimuth)"
    if not math.isfinite(heading):
        return None, "no heading (view:azimuth)"
    try:
        captured = captured_from(props.get("datetime"))
    except ValueError:
        captured = None
    assets = item.get("assets")
    assets = assets if isinstance(assets, Mapping) else {}
    href = None
    for key in ("hd", "sd"):
        asset = assets.get(key)
        if isinstance(asset, Mapping) and isinstance(asset.get("href"), str):
            href = str(asset["href"])
            break
    if href is None or urlsplit(href).scheme not in ("http", "https"):
        return None, "no hd or sd image asset"
    licence = props.get("license")
    if not isinstance(licence, str) or not licence or licence in ("proprietary", "other"):
        links = item.get("links")
        licence = None
        for link in links if isinstance(links, list) else []:
            if isinstance(link, Mapping) and link.get("rel") == "license":
                licence = str(link.get("title") or link.get("href") or "") or None
                break
    collection = item.get("collection")
    return (
        _Picture(
            item_id,
            lon,
            lat,
            heading,
            captured,
            href,
            licence,
            collection if isinstance(collection, str) else None,
        ),
        "",
    )


def _page(client: httpx.Client, url: str, params: Mapping[str, str] | None, **kw: Any) -> Any:
    response = get_with_retries(client, url, params=params, service=_SERVICE, fix=_FIX, **kw)
    doc = json_from(response, service=_SERVICE, expected=_EXPECTED)
    if (
        not isinstance(doc, Mapping)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        from camcensus._errors import Problem

        raise SourceError(
            [
                Problem(
                    str(response.request.url),
                    None,
                    None,
                    f"JSON that is not a FeatureCollection ({str(doc)[:60]!r})",
                    _EXPECTED,
                    "check that the URL is a Panoramax instance (its /api/search answers GeoJSON)",
                )
            ]
        )
    return doc


def search_pictures(
    client: httpx.Client,
    base: str,
    bbox: tuple[float, ...],
    *,
    page_size: int,
    max_items: int,
    retries: int,
    backoff_s: float,
) -> list[Any]:
    """Return the STAC items of ``{base}/api/search`` in ``bbox``, following ``next`` links."""
    params: dict[str, str] | None = {
        "bbox": ",".join(f"{v:.7f}" for v in bbox),
        "limit": str(page_size),
    }
    url = f"{base}/api/search"
    seen_urls: set[str] = set()
    items: list[Any] = []
    while url and len(items) < max_items:
        key = url + repr(sorted((params or {}).items()))
        if key in seen_urls:
            break  # a server that links a page to itself must not loop forever
        seen_urls.add(key)
        doc = _page(client, url, params, retries=retries, backoff_s=backoff_s)
        items.extend(doc["features"])
        nxt = None
        for link in doc.get("links") or []:
            if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
                nxt = urljoin(url, str(link["href"]))
                break
        if nxt is not None and not _same_origin(nxt, base):
            from camcensus._errors import Problem

            raise SourceError(
                [
                    Problem(
                        url,
                        None,
                        None,
                        f"a next page on another server ({urlsplit(nxt).netloc!r})",
                        f"next pages on {urlsplit(base).netloc!r}",
                        "check the instance URL; camcensus does not follow paging links to "
                        "other servers",
                    )
                ]
            )
        url, params = (nxt or ""), None
    return items[:max_items]


def _collection_licence(
    client: httpx.Client, base: str, collection: str, cache: dict[str, str | None], **kw: Any
) -> str | None:
    if collection not in cache:
        licence = None
        try:
            response = get_with_retries(
                client,
                f"{base}/api/collections/{collection}",
                service=_SERVICE,
                fix=_FIX,
                **kw,
            )
            doc = json_from(response, service=_SERVICE, expected="a STAC collection")
            value = doc.get("license") if isinstance(doc, Mapping) else None
            if isinstance(value, str) and value and value not in ("proprietary", "other"):
                licence = value
        except SourceError:
            licence = None
        cache[collection] = licence
    return cache[collection]


def _around(lon: float, lat: float, radius_m: float) -> tuple[float, ...]:
    dlat = math.degrees(radius_m / _EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return (
        max(-180.0, lon - dlon),
        max(-90.0, lat - dlat),
        min(180.0, lon + dlon),
        min(90.0, lat + dlat),
    )


def panoramas_from_panoramax(
    url: str,
    *,
    store: ImageStore,
    bbox: tuple[float, ...] | list[float] | None = None,
    intersections: pd.DataFrame | None = None,
    radius_m: float = 25.0,
    page_size: int = 100,
    max_pictures: int = 10_000,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    ledger: Ledger | None = None,
    client: httpx.Client | None = None,
) -> pd.DataFrame:
    """Import the 360° pictures of a Panoramax instance in a box or around intersections.

    Parameters
    ----------
    url
        The instance (``https://api.panoramax.xyz``, ``https://panoramax.ign.fr``; a trailing
        ``/api`` is accepted).
    store
        Where each picture's image is pinned.
    bbox
        ``[west, south, east, north]`` (WGS84 degrees): every 360° picture in it.
    intersections
        Instead of ``bbox``: a frame with ``lon``/``lat`` (and ``intersection_id``); the
        nearest 360° picture within ``radius_m`` of each is imported once.
    radius_m
        Search radius around each intersection (metres).
    page_size, max_pictures
        Items per search page, and the most items read in all.
    timeout_s, retries, backoff_s
        Each request's timeout; retries after a timeout, connection error, 429 or 5xx, waiting
        ``backoff_s`` then doubling.
    ledger
        Counts every item left out (stage ``import panoramax``) with its reason: not 360°,
        cropped, no heading, no image asset, malformed, image not 2:1 or not downloadable,
        outside the radius, found twice.
    client
        An ``httpx.Client`` to use (its own timeout applies); default a new one.

    Returns
    -------
    pandas.DataFrame
        :data:`~camcensus.imagery.base.PANORAMA_COLUMNS`, ``source`` ``panoramax``,
        ``source_ref`` the item id, ``intersection_id`` the intersection searched for (around
        intersections).

    Raises
    ------
    SourceError
        When a search keeps failing (timeouts, 5xx, 429 after every retry), answers 4xx or
        something that is not a FeatureCollection (the URL is named, the fix given).
    """
    import httpx

    base = _base(url)
    box = check_bbox(bbox)
    if (box is None) == (intersections is None):
        raise OptionError("give exactly one of bbox=[west, south, east, north] or intersections=")
    for name, value, low, high in (
        ("page_size", page_size, 1, 10_000),
        ("max_pictures", max_pictures, 1, 1_000_000),
        ("retries", retries, 0, 20),
    ):
        if not (isinstance(value, int) and low <= value <= high):
            raise OptionError(f"{name}={value!r} must be an integer in {low}..{high}")
    if not (0 < float(radius_m) <= 1000):
        raise OptionError(f"radius_m={radius_m!r} must be in (0, 1000] metres, e.g. 25")
    ledger = ledger if ledger is not None else Ledger()
    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(timeout_s), follow_redirects=True, headers={"User-Agent": "camcensus"}
    )
    kw: dict[str, Any] = {"retries": retries, "backoff_s": backoff_s}
    reasons: Counter[str] = Counter()
    chosen: list[tuple[_Picture, str | None]] = []
    try:
        if box is not None:
            items = search_pictures(
                http, base, box, page_size=page_size, max_items=max_pictures, **kw
            )
            seen: set[str] = set()
            for item in items:
                picture, why = _exclusion(item)
                if picture is None:
                    reasons[why] += 1
                elif picture.item_id in seen:
                    reasons["found twice (paging overlap)"] += 1
                else:
                    seen.add(picture.item_id)
                    chosen.append((picture, None))
        else:
            assert intersections is not None
            chosen_ids: set[str] = set()
            ids = (
                intersections["intersection_id"]
                if "intersection_id" in intersections.columns
                else pd.Series([None] * len(intersections))
            )
            for iid, lon, lat in zip(ids, intersections["lon"], intersections["lat"], strict=True):
                items = search_pictures(
                    http,
                    base,
                    _around(float(lon), float(lat), radius_m),
                    page_size=page_size,
                    max_items=page_size,
                    **kw,
                )
                best: tuple[float, _Picture] | None = None
                for item in items:
                    picture, why = _exclusion(item)
                    if picture is None:
                        reasons[why] += 1
                        continue
                    d = _distance_m(float(lon), float(lat), picture.lon, picture.lat)
                    if d <= radius_m and (best is None or d < best[0]):
                        best = (d, picture)
                if best is None:
                    reasons[f"intersection with no 360° picture within {radius_m:g} m"] += 1
                elif best[1].item_id in chosen_ids:
                    reasons["picture already chosen for another intersection"] += 1
                else:
                    chosen_ids.add(best[1].item_id)
                    chosen.append((best[1], None if iid is None else str(iid)))
        rows = _download(http, base, chosen, store, reasons, kw)
    finally:
        if own:
            http.close()
    for why, count in sorted(reasons.items()):
        ledger.exclude(_STAGE, why, count)
    return panoramas_frame(rows)


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _download(
    http: httpx.Client,
    base: str,
    chosen: list[tuple[_Picture, str | None]],
    store: ImageStore,
    reasons: Counter[str],
    kw: dict[str, Any],
) -> list[dict[str, Any]]:
    from camcensus.imagery.base import equirect_problem

    licences: dict[str, str | None] = {}
    rows = []
    for picture, iid in chosen:
        try:
            response = get_with_retries(http, picture.href, service=_SERVICE, fix=_FIX, **kw)
        except SourceError:
            reasons["image could not be downloaded"] += 1
            continue
        data = response.content
        if len(data) > _MAX_IMAGE_BYTES:
            reasons["image over 80 MB"] += 1
            continue
        try:
            width, height, fmt = image_size(data)
        except ValueError:
            reasons["image asset is not a readable image"] += 1
            continue
        if fmt not in ("JPEG", "PNG"):
            reasons[f"image asset is {fmt or 'unknown'}, not JPEG or PNG"] += 1
            continue
        if equirect_problem(width, height, file=picture.href, row=None) is not None:
            reasons["image is not 2:1 equirectangular"] += 1
            continue
        uri = store.put(picture.item_id, data, suffix=".png" if fmt == "PNG" else ".jpg")
        licence = picture.licence
        if licence is None and picture.collection is not None:
            licence = _collection_licence(http, base, picture.collection, licences, **kw)
        rows.append(
            {
                "panorama_id": new_panorama_id(),
                "lon": picture.lon,
                "lat": picture.lat,
                "heading_deg": picture.heading_deg,
                "captured": picture.captured,
                "source": "panoramax",
                "source_ref": picture.item_id,
                "image_uri": uri,
                "width_px": width,
                "height_px": height,
                "licence": licence or "unknown (see the Panoramax instance's terms)",
                "republishable": True,
                "intersection_id": iid,
            }
        )
    return rows
