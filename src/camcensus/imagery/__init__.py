"""Imagery sources for the volunteer platform: folder, Panoramax, Mapillary, Google Street View
and synthetic panoramas, pinned in an :class:`ImageStore` and optionally blurred.

Every source returns a ``panoramas`` frame with :data:`PANORAMA_COLUMNS` (docs/platform.md) and
counts what it leaves out in a :class:`~camcensus._errors.Ledger`; see docs/imagery.md.
"""

from __future__ import annotations

from camcensus.imagery import (
    base,
    blur,
    folder,
    gsv,
    mapillary,
    panoramax,
    project,
    store,
    synthetic,
)
from camcensus.imagery.base import PANORAMA_COLUMNS, SOURCES, SourceError
from camcensus.imagery.blur import blur_faces_and_plates, detect_faces_and_plates
from camcensus.imagery.folder import panoramas_from_folder
from camcensus.imagery.gsv import gsv_fetcher, panoramas_from_gsv
from camcensus.imagery.mapillary import panoramas_from_mapillary
from camcensus.imagery.panoramax import panoramas_from_panoramax
from camcensus.imagery.project import (
    INTERSECTION_COLUMNS,
    MATCH_RADIUS_M,
    import_project_source,
    intersections_from_csv,
    match_intersections,
    panoramas_in_area,
)
from camcensus.imagery.store import ImagePathError, ImageStore
from camcensus.imagery.synthetic import panoramas_from_synthetic, synthetic_uri

__all__ = [
    "INTERSECTION_COLUMNS",
    "MATCH_RADIUS_M",
    "PANORAMA_COLUMNS",
    "SOURCES",
    "ImagePathError",
    "ImageStore",
    "SourceError",
    "base",
    "blur",
    "blur_faces_and_plates",
    "detect_faces_and_plates",
    "folder",
    "gsv",
    "gsv_fetcher",
    "import_project_source",
    "intersections_from_csv",
    "mapillary",
    "match_intersections",
    "panoramas_from_folder",
    "panoramas_from_gsv",
    "panoramas_from_mapillary",
    "panoramas_from_panoramax",
    "panoramas_from_synthetic",
    "panoramas_in_area",
    "panoramax",
    "project",
    "store",
    "synthetic",
    "synthetic_uri",
]
