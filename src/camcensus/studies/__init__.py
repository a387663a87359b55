"""Studies: one module per investigation, with its definitions, defaults and published figures."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GENERIC", "STUDIES", "StudyDesign", "design_for"]


@dataclass(frozen=True)
class StudyDesign:
    """The choices an investigation makes that the generic models leave open.

    The generic design fits the models on every district and year given; a study module
    (e.g. :mod:`camcensus.studies.nyc`) names its sanity model, the districts it leaves out of
    some analyses and whether its printed numbers are compared.

    Parameters
    ----------
    name
        Shown with the results.
    sanity
        ``(district, year)`` of the baseline model's sanity check (quadratic surveillance term
        and the Black share of residents); Amnesty: Queens 2019.
    interaction_year
        Year of the weighted ``stoprate ~ nwfC * surv`` model (default: the first stop year).
    exclude_districts
        Districts left out of the interaction model and of "stopped while Black" (Amnesty:
        Manhattan, a transport hub whose residents are not its occupants).
    compare_published
        Add the ``published_vs_ours`` table (Amnesty's printed models).
    """

    name: str = "generic"
    sanity: tuple[str, int] | None = None
    interaction_year: int | None = None
    exclude_districts: tuple[str, ...] = ()
    compare_published: bool = False


#: The design of a city without an investigation to reproduce.
GENERIC = StudyDesign()

#: The studies camcensus can reproduce, by the name the command line takes.
STUDIES = ("generic", "nyc")


def design_for(name: str) -> StudyDesign:
    """Return the disparity-model design of study ``name`` (one of :data:`STUDIES`)."""
    from camcensus._errors import OptionError

    if name == "generic":
        return GENERIC
    if name == "nyc":
        from camcensus.studies.nyc import DESIGN

        return DESIGN
    raise OptionError(f"--study must be one of {', '.join(STUDIES)}, not {name!r}")
