"""camcensus: audit where surveillance cameras are, what they can see, and whom they watch."""

from camcensus import (
    aggregate,
    cameras,
    coverage,
    exposure,
    io,
    locate,
    merge,
    pipeline,
    settings,
    simulate,
    stages,
)
from camcensus._errors import (
    ContractError,
    CrsError,
    Exclusion,
    InputError,
    Ledger,
    OptionError,
    Problem,
)

__all__ = [
    "ContractError",
    "CrsError",
    "Exclusion",
    "InputError",
    "Ledger",
    "OptionError",
    "Problem",
    "aggregate",
    "cameras",
    "coverage",
    "exposure",
    "io",
    "locate",
    "merge",
    "pipeline",
    "settings",
    "simulate",
    "stages",
]
