"""Numbers Amnesty International published for Decode Surveillance NYC, to compare against.

Source: ``aggregate_counts_over_intersections.ipynb`` in amnesty-crisis-evidence-lab/
decode-surveillance-nyc (the "Finding summaries" of the methodology note), and the
``camera_count`` table of its ``analysis/prepdata.R``.
"""

from __future__ import annotations

__all__ = ["AMNESTY_NYC", "CAMERA_COUNT_TABLE_SUMS"]

BOROUGHS = ("Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island")

#: Per-borough figures of the published census (medians of 3 decoders per panorama).
AMNESTY_NYC: dict[str, dict[str, float]] = {
    "panoramas": {
        "Bronx": 6257,
        "Brooklyn": 10384,
        "Manhattan": 3934,
        "Queens": 16344,
        "Staten Island": 6474,
    },
    "attached_street": {
        "Bronx": 456,
        "Brooklyn": 871,
        "Manhattan": 724,
        "Queens": 1088,
        "Staten Island": 178,
    },
    "attached_building": {
        "Bronx": 3275,
        "Brooklyn": 8330,
        "Manhattan": 3213,
        "Queens": 6459,
        "Staten Island": 852,
    },
    "attached_unknown": {
        "Bronx": 6,
        "Brooklyn": 31,
        "Manhattan": 11,
        "Queens": 33,
        "Staten Island": 5,
    },
    "total": {
        "Bronx": 3737,
        "Brooklyn": 9232,
        "Manhattan": 3948,
        "Queens": 7580,
        "Staten Island": 1035,
    },
}

#: The published "Total" of cameras per intersection: the *sum* of the five boroughs' ratios.
PUBLISHED_TOTAL_CAMERAS_PER_INTERSECTION = 3.1135188970648806
#: The same for public cameras per intersection.
PUBLISHED_TOTAL_PUBLIC_PER_INTERSECTION = 0.43485739004243457

#: Sums of the ``cameras`` column of Amnesty's per-tract ``camera_count`` table (prepdata.R);
#: 180 more than the 3,317 public cameras, because panorama_url.csv, merged on PanoramaId,
#: lists some panoramas more than once.
CAMERA_COUNT_TABLE_SUMS: dict[str, float] = {
    "Bronx": 491,
    "Brooklyn": 892,
    "Manhattan": 756,
    "Queens": 1175,
    "Staten Island": 183,
    "Total": 3497,
}
