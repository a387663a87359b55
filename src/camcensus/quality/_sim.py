"""Volunteer error models the quality benchmarks and tests share (synthetic city only)."""

from __future__ import annotations

from camcensus.simulate import ErrorModel

__all__ = ["DEFAULT", "ERROR_MODELS", "MISS_PRONE", "OVER_COUNTING"]

DEFAULT = ErrorModel()
"""The synthetic city's default volunteers (miss 0.15, 0.04 look-alikes per panorama)."""

MISS_PRONE = ErrorModel(miss_mean=0.35, false_positive_rate=0.02)
"""Volunteers who miss a third of the cameras and rarely tag a look-alike."""

OVER_COUNTING = ErrorModel(miss_mean=0.10, false_positive_rate=0.30)
"""Volunteers who see most cameras but tag look-alikes (lamps, signal heads) as cameras."""

ERROR_MODELS = {"default": DEFAULT, "miss_prone": MISS_PRONE, "over_counting": OVER_COUNTING}
"""The error models by name, as the benchmarks report them."""
