"""OpenStreetMap surveillance objects through the Overpass API (and Nominatim for a place name).

The query asks for every ``man_made=surveillance`` node and way in a bounding box, or inside the
boundary a place name resolves to, with ``out center`` so ways carry a centre point::

    [out:json][timeout:180];
    (node["man_made"="surveillance"](S,W,N,E); way["man_made"="surveillance"](S,W,N,E););
    out center;

It is POSTed to ``https://overpass-api.de/api/interpreter`` (form field ``data``). The answer,
an Overpass JSON document (``version``, ``osm3s``, ``elements``), is written as served: read it
with ``camcensus cameras import``. An answer whose ``remark`` reports a runtime error (the
server's time or memory limit) is incomplete and is never written.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camcensus._errors import Ledger, OptionError
from camcensus.fetch._common import FetchResult, copy_atomic, fetcher_for, finish, out_path
from camcensus.fetch._http import InvalidBodyError, base_url, problem
from camcensus.imagery.base import check_bbox

if TYPE_CHECKING:
    from camcensus.fetch._http import Download, Fetcher

__all__ = ["fetch_osm", "overpass_query"]

_TERMS = (
    "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright): "
    "attribute, and share derived databases alike. Overpass API (overpass-api.de) usage "
    "policy: at most about 10,000 queries or 1 GB a day, two slots at a time per IP. Nominatim "
    "usage policy: at most 1 request a second, an identifying User-Agent, results cached."
)
_SERVICE = "the Overpass API"
_FIX = (
    "try again later (public Overpass servers are shared), use a smaller --bbox or another "
    "server with --overpass-url (e.g. https://overpass.kumi.systems/api/interpreter)"
)
# Overpass ids of areas: a relation's area is 3600000000 + its id, a way's 2400000000 + id.
_AREA_OFFSET = {"relation": 3_600_000_000, "way": 2_400_000_000}


def overpass_query(
    *, bbox: tuple[float, ...] | None = None, area_id: int | None = None, timeout_s: int = 180
) -> str:
    """Return the Overpass QL query for surveillance nodes and ways in ``bbox`` or an area."""
    if (bbox is None) == (area_id is None):
        raise OptionError("give exactly one of bbox or area_id")
    if bbox is not None:
        w, s, e, n = bbox
        where = f"({s:.7f},{w:.7f},{n:.7f},{e:.7f})"
        head = ""
    else:
        where = "(area.a)"
        head = f"area(id:{area_id})->.a;\n"
    return (
        f"[out:json][timeout:{int(timeout_s)}];\n{head}(\n"
        f'  node["man_made"="surveillance"]{where};\n'
        f'  way["man_made"="surveillance"]{where};\n'
        ");\nout center;\n"
    )


def _overpass_validator(path: Path) -> None:
    data = path.read_bytes()
    if data.lstrip().startswith(b"<"):
        raise InvalidBodyError("an XML or HTML page instead of Overpass JSON", retry=True)
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidBodyError(
            f"JSON cut short or damaged ({type(err).__name__})", retry=True
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
        raise InvalidBodyError(f"JSON without an 'elements' list ({str(doc)[:60]!r})")
    remark = doc.get("remark")
    if isinstance(remark, str) and ("runtime error" in remark or "timed out" in remark):
        raise InvalidBodyError(f"an incomplete answer (remark: {remark[:120]!r})", retry=True)


def _nominatim_validator(path: Path) -> None:
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidBodyError(
            f"JSON cut short or damaged ({type(err).__name__})", retry=True
        ) from None
    if not isinstance(doc, list):
        raise InvalidBodyError(f"JSON that is not a list of places ({str(doc)[:60]!r})")


def _place(
    http: Fetcher, place: str, nominatim_url: str | None
) -> tuple[Download, dict[str, Any], tuple[float, ...], int | None]:
    """Resolve ``place`` with Nominatim: the answer, the first hit, its bbox and area id."""
    base = base_url("nominatim", nominatim_url)
    download = http.get(
        f"{base}/search",
        params={"q": place, "format": "jsonv2", "limit": "1"},
        service="Nominatim",
        expected="a JSON list of places (Nominatim /search, format=jsonv2)",
        fix="check the place name, or give --bbox west,south,east,north instead",
        validate=_nominatim_validator,
        label=f"place {place[:40]}",
        suffix=".json",
    )
    hits = json.loads(download.path.read_bytes())
    if not hits:
        raise OptionError(
            f"place={place!r} was not found by Nominatim; try a fuller name (e.g. "
            "'Baltimore, Maryland, USA') or give --bbox west,south,east,north"
        )
    hit = hits[0]
    try:
        s, n, w, e = (float(v) for v in hit["boundingbox"])
    except (KeyError, TypeError, ValueError):
        raise problem(
            download.url,
            f"a place without a boundingbox ({str(hit)[:80]!r})",
            "Nominatim's boundingbox [south, north, west, east]",
            "give --bbox west,south,east,north instead",
        ) from None
    box = check_bbox([w, s, e, n], option="the place's bounding box")
    assert box is not None
    area = None
    offset = _AREA_OFFSET.get(str(hit.get("osm_type")))
    if offset is not None and str(hit.get("osm_id", "")).isdigit():
        area = offset + int(hit["osm_id"])
    return download, hit, box, area


def fetch_osm(
    out: str | Path,
    *,
    bbox: tuple[float, ...] | list[float] | None = None,
    place: str | None = None,
    query_timeout_s: int = 180,
    overpass_url: str | None = None,
    nominatim_url: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """Download OpenStreetMap's surveillance nodes and ways in a box or a named place.

    Parameters
    ----------
    out
        The Overpass JSON written (``.json``), as served (read it with
        :func:`camcensus.io.osm.read_osm_cameras` or ``camcensus cameras import``).
    bbox
        ``[west, south, east, north]`` in WGS84 degrees.
    place
        Instead of ``bbox``: a name Nominatim resolves (``"Geneva, Switzerland"``); when it is
        a boundary (a relation or closed way) the query covers that area, else its bounding box.
    query_timeout_s
        The Overpass query's own time limit (``[timeout:...]``), 1–3600 s.
    overpass_url, nominatim_url
        Servers instead of the public ones (or ``CAMCENSUS_OVERPASS_URL``,
        ``CAMCENSUS_NOMINATIM_URL``).
    fetcher
        The :class:`~camcensus.fetch.Fetcher` to use.

    Returns
    -------
    FetchResult
        ``rows`` OSM elements; ``summary`` counts nodes, ways, ways without a centre and
        elements with ``camera:direction`` or ``direction``.
    """
    path = out_path(out, (".json",))
    box = check_bbox(bbox)
    if (box is None) == (place is None or not str(place).strip()):
        raise OptionError("give exactly one of --bbox west,south,east,north or --place NAME")
    if box is not None and (box[2] - box[0]) * (box[3] - box[1]) > 100.0:
        raise OptionError(
            f"bbox {list(box)} covers more than 100 square degrees; public Overpass servers "
            "refuse or time out on such queries: split it, or use a planet extract"
        )
    if not (isinstance(query_timeout_s, int) and 1 <= query_timeout_s <= 3600):
        raise OptionError(f"query_timeout_s={query_timeout_s!r} must be an integer in 1..3600")
    ledger = Ledger()
    downloads = []
    summary: dict[str, Any] = {}
    with fetcher_for(fetcher) as http:
        area = None
        if place is not None and box is None:
            nominatim, hit, box, area = _place(http, str(place).strip(), nominatim_url)
            downloads.append(nominatim)
            summary["place"] = {
                "query": place,
                "display_name": hit.get("display_name"),
                "osm_type": hit.get("osm_type"),
                "osm_id": hit.get("osm_id"),
                "bbox": list(box),
                "area_id": area,
            }
        query = overpass_query(
            bbox=None if area is not None else box, area_id=area, timeout_s=query_timeout_s
        )
        download = http.get(
            base_url("overpass", overpass_url),
            data=query,
            service=_SERVICE,
            expected="Overpass JSON with an 'elements' list",
            fix=_FIX,
            validate=_overpass_validator,
            label="OSM surveillance",
            suffix=".json",
        )
        downloads.append(download)
        doc = json.loads(download.path.read_bytes())
        elements = doc["elements"]
        kinds = Counter(str(e.get("type")) for e in elements if isinstance(e, dict))
        no_centre = sum(
            1
            for e in elements
            if isinstance(e, dict) and e.get("type") == "way" and "center" not in e
        )
        directed = sum(
            1
            for e in elements
            if isinstance(e, dict)
            and isinstance(e.get("tags"), dict)
            and ("camera:direction" in e["tags"] or "direction" in e["tags"])
        )
        copy_atomic(download.path, path)
        summary.update(
            {
                "query": query,
                "bbox": list(box) if box is not None else None,
                "elements": len(elements),
                "nodes": kinds.get("node", 0),
                "ways": kinds.get("way", 0),
                "ways_without_center": no_centre,
                "with_direction": directed,
                "osm_timestamp": (doc.get("osm3s") or {}).get("timestamp_osm_base"),
            }
        )
        if box is not None and not all(math.isfinite(v) for v in box):  # pragma: no cover
            raise OptionError("bbox must be finite")
        return finish(
            "osm", path, downloads, http, ledger, rows=len(elements), summary=summary,
            terms=_TERMS,
        )  # fmt: skip
