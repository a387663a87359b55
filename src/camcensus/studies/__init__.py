"""Studies: one module per investigation, with its definitions, defaults and published figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from camcensus.stats.disparity import StudyDesign

__all__ = ["STUDIES", "design_for"]

#: The studies camcensus can reproduce, by the name the command line takes.
STUDIES = ("generic", "nyc")


def design_for(name: str) -> StudyDesign:
    """Return the disparity-model design of study ``name`` (one of :data:`STUDIES`)."""
    from camcensus._errors import OptionError
    from camcensus.stats.disparity import GENERIC

    if name == "generic":
        return GENERIC
    if name == "nyc":
        from camcensus.studies.nyc import DESIGN

        return DESIGN
    raise OptionError(f"--study must be one of {', '.join(STUDIES)}, not {name!r}")
