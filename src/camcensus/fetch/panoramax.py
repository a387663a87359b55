"""Panoramax street-level pictures (metadata) in a bounding box, through the STAC search API.

``GET {instance}/api/search?bbox=w,s,e,n&limit=n`` answers a GeoJSON FeatureCollection of STAC
items, paged by ``links`` with ``rel: next`` (followed on the same server only). The items of
every page are written as one FeatureCollection (paging links dropped, an item met twice kept
once and counted). Images are not downloaded here: ``camcensus project create --panoramax``
pins each 360° picture for tagging.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from camcensus._errors import Ledger, OptionError
from camcensus.fetch._common import FetchResult, fetcher_for, finish, out_path
from camcensus.fetch._http import InvalidBodyError, base_url, problem
from camcensus.imagery.base import check_bbox
from camcensus.io.formats import write_atomic

if TYPE_CHECKING:
    from camcensus.fetch._http import Download, Fetcher

__all__ = ["fetch_panoramax"]

_TERMS = (
    "Panoramax pictures carry their own licence (usually CC BY-SA 4.0 or etalab-2.0, in each "
    "item's properties.license); metadata from the instance's STAC API. Instances ask for "
    "reasonable use; api.panoramax.xyz is the federated meta-catalogue."
)
_SERVICE = "the Panoramax API"
_EXPECTED = "a GeoJSON FeatureCollection of STAC items (Panoramax /api/search)"


def _instance(url: str | None) -> str:
    base = base_url("panoramax", url)
    return base[: -len("/api")] if base.endswith("/api") else base


def _validator(path: Path) -> None:
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidBodyError(
            f"JSON cut short or damaged ({type(err).__name__})", retry=True
        ) from None
    if (
        not isinstance(doc, Mapping)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise InvalidBodyError(f"JSON that is not a FeatureCollection ({str(doc)[:60]!r})")


def _is_360(item: Any) -> bool:
    props = item.get("properties") if isinstance(item, Mapping) else None
    orientation = props.get("pers:interior_orientation") if isinstance(props, Mapping) else None
    fov = orientation.get("field_of_view") if isinstance(orientation, Mapping) else None
    try:
        return float(fov) == 360.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fetch_panoramax(
    out: str | Path,
    *,
    bbox: tuple[float, ...] | list[float],
    page_size: int = 100,
    max_items: int = 10_000,
    panoramax_url: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """Download the STAC items (picture metadata) of a Panoramax instance in ``bbox``.

    Parameters
    ----------
    out
        The GeoJSON FeatureCollection written (``.geojson`` or ``.json``).
    bbox
        ``[west, south, east, north]`` in WGS84 degrees.
    page_size, max_items
        Items per page (``limit``), and the most items read in all.
    panoramax_url
        The instance (default ``https://api.panoramax.xyz``, or ``CAMCENSUS_PANORAMAX_URL``).
    fetcher
        The :class:`~camcensus.fetch.Fetcher` to use.

    Returns
    -------
    FetchResult
        ``rows`` items written; ``summary`` counts pages, 360° pictures and items found twice.
    """
    path = out_path(out, (".geojson", ".json"))
    box = check_bbox(bbox)
    if box is None:
        raise OptionError("bbox is required: west,south,east,north, e.g. 2.18,48.98,2.19,48.99")
    for name, value, low, high in (
        ("page_size", page_size, 1, 10_000),
        ("max_items", max_items, 1, 1_000_000),
    ):
        if not (isinstance(value, int) and low <= value <= high):
            raise OptionError(f"{name}={value!r} must be an integer in {low}..{high}")
    base = _instance(panoramax_url)
    ledger = Ledger()
    downloads: list[Download] = []
    items: list[Any] = []
    seen: set[str] = set()
    twice = 0
    url = f"{base}/api/search"
    params: dict[str, str] = {
        "bbox": ",".join(f"{v:.7f}" for v in box),
        "limit": str(page_size),
    }
    visited: set[str] = set()
    with fetcher_for(fetcher) as http:
        while url and len(items) < max_items:
            key = url + repr(sorted(params.items()))
            if key in visited:
                break  # a page linking to itself must not loop forever
            visited.add(key)
            download = http.get(
                url,
                params=params,
                service=_SERVICE,
                expected=_EXPECTED,
                fix="check --panoramax-url (e.g. https://api.panoramax.xyz) and try again later",
                validate=_validator,
                label=f"Panoramax page {len(downloads) + 1}",
                suffix=".json",
            )
            downloads.append(download)
            doc = json.loads(download.path.read_bytes())
            for item in doc["features"]:
                item_id = item.get("id") if isinstance(item, Mapping) else None
                if isinstance(item_id, str) and item_id in seen:
                    twice += 1
                    continue
                if isinstance(item_id, str):
                    seen.add(item_id)
                items.append(item)
            nxt = None
            for link in doc.get("links") or []:
                if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
                    nxt = urljoin(download.url, str(link["href"]))
                    break
            if nxt is None:
                break
            parts, origin = urlsplit(nxt), urlsplit(base)
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                raise problem(
                    download.url,
                    f"a next page on another server ({parts.netloc!r})",
                    f"next pages on {origin.netloc!r}",
                    "check --panoramax-url; camcensus does not follow paging links elsewhere",
                )
            url = f"{parts.scheme}://{parts.netloc}{parts.path}"
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
        cut = max(0, len(items) - max_items)
        items = items[:max_items]
        ledger.exclude("fetch panoramax", "item found twice (paging overlap)", twice)
        if cut:
            ledger.note(f"fetch panoramax: stopped at max_items={max_items:,} ({cut:,} more read)")
        collection = {"type": "FeatureCollection", "features": items}
        write_atomic(
            path,
            lambda tmp: tmp.write_text(json.dumps(collection, ensure_ascii=False), "utf-8"),
        )
        return finish(
            "panoramax",
            path,
            downloads,
            http,
            ledger,
            rows=len(items),
            summary={
                "instance": base,
                "bbox": list(box),
                "pages": len(downloads),
                "items": len(items),
                "pictures_360": sum(1 for i in items if _is_360(i)),
                "found_twice": twice,
            },
            terms=_TERMS,
        )
