"""What cameras can see: coverage models (footprints) and per-area measures.

:mod:`camcensus.coverage.footprints` turns the ``cameras`` table into ``footprints`` under a
coverage model; :mod:`camcensus.coverage.measures` computes per-tract measures from them.
"""

from camcensus.coverage import footprints as footprint_models
from camcensus.coverage import measures
from camcensus.coverage.footprints import (
    FOOTPRINT_COLUMNS,
    MODELS,
    check_radius,
    footprint_union,
    footprints,
    unit_area,
)
from camcensus.coverage.measures import (
    COVERAGE_COLUMNS,
    add_coverage,
    add_coverage_measures,
    covered_area,
    public_cameras_from_counts,
    public_points,
)

__all__ = [
    "COVERAGE_COLUMNS",
    "FOOTPRINT_COLUMNS",
    "MODELS",
    "add_coverage",
    "add_coverage_measures",
    "check_radius",
    "covered_area",
    "footprint_models",
    "footprint_union",
    "footprints",
    "measures",
    "public_cameras_from_counts",
    "public_points",
    "unit_area",
]
