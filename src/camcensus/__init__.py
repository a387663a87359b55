"""camcensus: audit where surveillance cameras are, what they can see, and whom they watch."""

from camcensus import aggregate, coverage, io, pipeline, settings, simulate
from camcensus._errors import Exclusion, InputError, Ledger, Problem

__all__ = [
    "Exclusion",
    "InputError",
    "Ledger",
    "Problem",
    "aggregate",
    "coverage",
    "io",
    "pipeline",
    "settings",
    "simulate",
]
