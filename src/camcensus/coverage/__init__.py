"""What cameras can see: coverage models (footprints) and per-area measures.

:mod:`camcensus.coverage.footprints` turns the ``cameras`` table into ``footprints`` under a
coverage model (``disc``, ``fov``, ``occluded``, ``pixel_density``);
:mod:`camcensus.coverage.visibility` computes exact line-of-sight polygons against buildings;
:mod:`camcensus.coverage.specs` holds the pixel-density ladders and camera specs;
:mod:`camcensus.coverage.measures` computes per-tract measures from footprints.
"""

from camcensus.coverage import footprints as footprint_models
from camcensus.coverage import measures, specs, visibility
from camcensus.coverage.footprints import (
    FOOTPRINT_COLUMNS,
    MODELS,
    check_radius,
    describe_footprints,
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
    "describe_footprints",
    "footprint_models",
    "footprint_union",
    "footprints",
    "measures",
    "public_cameras_from_counts",
    "public_points",
    "specs",
    "unit_area",
    "visibility",
]
