"""The public exposure routes: how much of a walk the cameras see, and the least-watched route.

The app holds one :class:`camcensus.exposure.ExposureIndex` (``create_app(exposure=...)``;
``camcensus serve --exposure-cameras ... --exposure-streets ...`` or ``--demo``) built at
start-up, so each query only snaps, routes and sums. Every route here is thin: it parses the
request, calls one method of the index and returns what the library returns
(:meth:`~camcensus.exposure.RouteResult.to_dict`, :meth:`~camcensus.exposure.RouteResult.
to_geojson`). Points are ``LAT,LON`` in WGS84 degrees, as in the CLI; points outside the
network's bounds (with a margin of :data:`BOUNDS_MARGIN_M`) are refused before any routing.
A server without an index answers 404 in the one error shape. Reads are rate-limited like the
other public data routes.

The page ``GET /exposure`` (offline MapLibre map, ``static/js/exposure.js``) is here too, so
the exposure feature is one module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from camcensus._errors import ContractError, CrsError, InputError, OptionError
from camcensus.web.api_auth import ERRORS
from camcensus.web.security import OptionalVolunteer, rate_limit

if TYPE_CHECKING:
    from camcensus.exposure import ExposureIndex

__all__ = [
    "BOUNDS_MARGIN_M",
    "MAX_DETOUR",
    "MAX_STREET_FEATURES",
    "MAX_VIA",
    "NO_INDEX",
    "exposure_index",
    "page_router",
    "parse_point",
    "router",
]

#: Points farther than this outside the network's bounding box are refused (metres).
BOUNDS_MARGIN_M = 500.0
#: The most via points one route may have.
MAX_VIA = 8
#: The largest detour cap a visitor may ask for (1.0: twice the shortest length).
MAX_DETOUR = 3.0
#: The most street features ``/api/exposure/streets`` returns (the map's base layer).
MAX_STREET_FEATURES = 50_000
#: What a server without an exposure index answers.
NO_INDEX = (
    "This server has no exposure index. Start it with camcensus serve --exposure-cameras PATH "
    "--exposure-streets PATH (or camcensus serve --demo)."
)
_METRES_PER_DEG_LAT = 111_320.0
_DECIMAL = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

router = APIRouter(prefix="/api/exposure", tags=["exposure"], responses=ERRORS)
page_router = APIRouter(include_in_schema=False)

PointQ = Annotated[
    str, Query(max_length=100, description="LAT,LON in WGS84 degrees, e.g. 40.7484,-73.9857")
]


def _refuse(status: int, error: str, field: str, message: str) -> HTTPException:
    return HTTPException(
        status, detail={"error": error, "errors": [{"field": field, "message": message}]}
    )


def exposure_index(request: Request) -> ExposureIndex:
    """Return the app's exposure index; 404 in the one error shape when it has none."""
    index: ExposureIndex | None = getattr(request.app.state, "exposure", None)
    if index is None:
        raise HTTPException(404, detail={"error": NO_INDEX, "errors": []})
    return index


def parse_point(text: str, field: str) -> tuple[float, float]:
    """Return ``(lon, lat)`` from ``"LAT,LON"``; 422 naming ``field`` when it is not a point.

    Parameters
    ----------
    text
        The query value, ``LAT,LON`` in WGS84 degrees.
    field
        The parameter's name in the error (``from``, ``to``, ``via[0]``...).
    """
    parts = text.split(",")
    shown = text if len(text) <= 40 else text[:40] + "…"
    if len(parts) != 2:
        raise _refuse(
            422,
            "A point is not LAT,LON.",
            field,
            f"found {shown!r}; expected two numbers LAT,LON in degrees, e.g. 40.7484,-73.9857",
        )
    try:
        # Plain decimals only: float() would also take "1_0" (10) and "infinity".
        if not all(_DECIMAL.match(p.strip()) for p in parts):
            raise ValueError(text)
        lat, lon = (float(p.strip()) for p in parts)
    except ValueError:
        raise _refuse(
            422,
            "A point is not LAT,LON.",
            field,
            f"found {shown!r}; expected two numbers LAT,LON in degrees, e.g. 40.7484,-73.9857",
        ) from None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        raise _refuse(
            422,
            "A point is not on the Earth.",
            field,
            f"found latitude {lat} and longitude {lon}; expected latitude in [-90, 90] and "
            "longitude in [-180, 180] (LAT first)",
        )
    return lon, lat


def _check_inside(index: ExposureIndex, point: tuple[float, float], field: str) -> None:
    """Refuse (422) a point farther than :data:`BOUNDS_MARGIN_M` outside the network's box."""
    west, south, east, north = (float(v) for v in index.bounds)
    lon, lat = point
    dlat = BOUNDS_MARGIN_M / _METRES_PER_DEG_LAT
    cos = max(math.cos(math.radians(max(abs(south), abs(north)))), 0.01)
    dlon = dlat / cos
    if west - dlon <= lon <= east + dlon and south - dlat <= lat <= north + dlat:
        return
    raise _refuse(
        422,
        "A point is outside the street network of this map.",
        field,
        f"found {lat:.6f},{lon:.6f}; the network covers latitude {south:.5f} to {north:.5f} and "
        f"longitude {west:.5f} to {east:.5f} (points may lie up to {BOUNDS_MARGIN_M:.0f} m "
        "outside); pick a point on the map",
    )


def _library_error(exc: ValueError) -> HTTPException:
    """A library refusal (snapping failed, no route, bad option) as a 422 in the one shape."""
    if isinstance(exc, InputError):
        items = [{"field": p.column or "", "message": str(p)} for p in exc.problems[:20]]
    else:
        items = [{"field": "", "message": str(exc)}]
    return HTTPException(422, detail={"error": "No route could be computed.", "errors": items})


def _info(index: ExposureIndex) -> dict[str, Any]:
    """The map's bounds, coverage model, its parameters and bands, and the camera count."""
    return {
        "bounds": [float(v) for v in index.bounds],
        "model": index.model,
        "parameters": index.parameters,
        "bands": list(index.bands),
        "routing_band": index.routing_band,
        "n_cameras": int(index.n_cameras),
        "max_via": MAX_VIA,
        "max_detour": MAX_DETOUR,
        "margin_m": BOUNDS_MARGIN_M,
    }


def _cached_json(request: Request, key: str, make: Callable[[], Any]) -> Response:
    """Answer JSON that depends only on the (immutable) index, serialised once per app."""
    cache: dict[str, bytes] = request.app.state.exposure_cache
    if key not in cache:
        cache[key] = json.dumps(make(), separators=(",", ":"), allow_nan=False).encode()
    return Response(cache[key], media_type="application/json")


@router.get(
    "/info",
    summary="The exposure map: bounds, coverage model, parameters, cameras",
    response_class=JSONResponse,
)
def exposure_info(request: Request) -> Response:
    """Return the network's bounds (west, south, east, north), the model and the camera count."""
    rate_limit(request, "data")
    index = exposure_index(request)
    return _cached_json(request, "info", lambda: _info(index))


@router.get(
    "/cameras", summary="The cameras of the exposure map as GeoJSON", response_class=JSONResponse
)
def exposure_cameras(request: Request) -> Response:
    """Return the cameras (Points, WGS84) the index counts."""
    rate_limit(request, "data")
    index = exposure_index(request)
    return _cached_json(request, "cameras", index.cameras_geojson)


@router.get(
    "/streets",
    summary="The street network of the exposure map as GeoJSON",
    response_class=JSONResponse,
)
def exposure_streets(request: Request) -> Response:
    """Return the street network (LineStrings, WGS84), at most MAX_STREET_FEATURES edges."""
    rate_limit(request, "data")
    index = exposure_index(request)
    return _cached_json(request, "streets", lambda: index.streets_geojson(MAX_STREET_FEATURES))


@router.get(
    "/route", summary="Exposure of the shortest walk between two points (and the least-watched one)"
)
def exposure_route(
    request: Request,
    origin: Annotated[str, Query(alias="from", max_length=100, description="LAT,LON")],
    destination: Annotated[str, Query(alias="to", max_length=100, description="LAT,LON")],
    via: Annotated[list[str] | None, Query(description="LAT,LON; repeat for several")] = None,
    least_watched: Annotated[
        bool, Query(description="Also find the least-watched route under the detour cap")
    ] = False,
    max_detour: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=MAX_DETOUR,
            description="Longest detour of the least-watched route, as a share of the "
            "shortest length (0.25: at most 25% longer; default: setting max_detour)",
        ),
    ] = None,
) -> dict[str, Any]:
    """Return ``{"figures": RouteResult.to_dict(), "geojson": RouteResult.to_geojson()}``."""
    rate_limit(request, "data")
    index = exposure_index(request)
    vias = via or []
    if len(vias) > MAX_VIA:
        raise _refuse(
            422,
            "Too many via points.",
            "via",
            f"found {len(vias)}; at most {MAX_VIA} via points per route",
        )
    points = [("from", origin), ("to", destination)] + [
        (f"via[{i}]", v[:200]) for i, v in enumerate(vias)
    ]
    parsed = {field: parse_point(text, field) for field, text in points}
    for field, point in parsed.items():
        _check_inside(index, point, field)
    try:
        result = index.route(
            parsed["from"],
            parsed["to"],
            via=tuple(parsed[f"via[{i}]"] for i in range(len(vias))),
            least_watched=least_watched,
            max_detour=max_detour,
        )
    except (InputError, OptionError, CrsError, ContractError) as exc:
        raise _library_error(exc) from exc
    return {"figures": result.to_dict(), "geojson": result.to_geojson()}


@page_router.get("/exposure", response_class=HTMLResponse)
def exposure_page(request: Request, me: OptionalVolunteer) -> Response:
    """Show the exposure map: click two points, see how much of the walk is watched."""
    from camcensus.web.pages import _message, _render

    if getattr(request.app.state, "exposure", None) is None:
        return _message(request, me, "No exposure map", NO_INDEX, 404)
    return _render(request, "exposure.html", me)
