"""Exposure: how much of a walk, a park or a district lies inside what cameras can see.

:mod:`~camcensus.exposure.network` builds the street network (OSM or GeoJSON lines noded at
shared vertices); :mod:`~camcensus.exposure.routes` answers route queries (shortest and
least-watched) on an :class:`ExposureIndex`; :mod:`~camcensus.exposure.areas` rolls covered
street length up to areas (parks, tracts, council districts).
"""

from camcensus.exposure import areas, files, inputs, network, routes
from camcensus.exposure.areas import AREA_COLUMNS, area_exposure
from camcensus.exposure.files import areas_to_files, route_to_files
from camcensus.exposure.inputs import load_index, read_buildings, read_cameras
from camcensus.exposure.network import StreetNetwork, network_from_lines, read_streets
from camcensus.exposure.routes import PENALTIES, ExposureIndex, RouteResult

__all__ = [
    "AREA_COLUMNS",
    "PENALTIES",
    "ExposureIndex",
    "RouteResult",
    "StreetNetwork",
    "area_exposure",
    "areas",
    "areas_to_files",
    "files",
    "inputs",
    "load_index",
    "network",
    "network_from_lines",
    "read_buildings",
    "read_cameras",
    "read_streets",
    "route_to_files",
    "routes",
]
