"""Any city without an investigation to reproduce (``camcensus audit``).

The generic design fits every model on the districts given (the whole city when none are) and
compares nothing with published figures; only its name changes with the city.
"""

from __future__ import annotations

from camcensus.studies import StudyDesign

__all__ = ["design_for_city"]


def design_for_city(city: str) -> StudyDesign:
    """Return the generic disparity-model design, named after ``city``."""
    return StudyDesign(name=f"camcensus audit of {city}")
