"""Errors and the exclusion ledger.

Every problem found in an input names the file, the row, the column, what was found, what was
expected and how to fix it; all problems of one input are collected and raised together.
Every record left out of a result is counted in a :class:`Ledger` with its stage and reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "ContractError",
    "CrsError",
    "Exclusion",
    "InputError",
    "Ledger",
    "OptionError",
    "Problem",
]

_MAX_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    ``row`` is the 1-based data row (the header is row 0), or ``None`` for a whole-file
    problem such as a missing column.
    """

    file: str
    row: int | None
    column: str | None
    found: str
    expected: str
    fix: str

    def __str__(self) -> str:
        where = Path(self.file).name if self.file else "<input>"
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: found {self.found}; expected {self.expected}. Fix: {self.fix}"


class InputError(ValueError):
    """Raised when an input cannot be used; carries every :class:`Problem` found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        lines = [str(p) for p in self.problems[:_MAX_SHOWN]]
        more = len(self.problems) - _MAX_SHOWN
        if more > 0:
            lines.append(f"... and {more} more problems of the same kinds")
        files = sorted({p.file for p in self.problems})
        head = f"{len(self.problems)} problem(s) in {', '.join(files) or 'input'}"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


class OptionError(ValueError):
    """Raised when an option (a CLI flag or a function's keyword) is out of its range or
    missing; the message names the option and a value that works."""


class CrsError(ValueError):
    """Raised when data has no CRS, or a distance or area would be measured in degrees."""


class ContractError(ValueError):
    """Raised when a table passed between stages lacks the columns, types or CRS its
    contract (DESIGN.md, "Data contracts") requires; the message lists every problem."""


@dataclass(frozen=True)
class Exclusion:
    """A count of records left out at one stage, for one reason."""

    stage: str
    reason: str
    count: int


@dataclass
class Ledger:
    """Collects every exclusion (and every note) made along the pipeline."""

    exclusions: list[Exclusion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Records kept in the results but flagged (e.g. a panorama in no borough polygon).
    flagged: list[Exclusion] = field(default_factory=list)

    def exclude(self, stage: str, reason: str, count: int) -> None:
        """Record that ``count`` records were left out at ``stage`` for ``reason``."""
        if count > 0:
            self.exclusions.append(Exclusion(stage, reason, int(count)))

    def flag(self, stage: str, reason: str, count: int, *, kept_as: str = "") -> None:
        """Record that ``count`` records at ``stage`` have a problem (``reason``) but are kept.

        They are not exclusions (:meth:`total` does not count them); a note says how many and
        how they were kept (``kept_as``), so the report shows it.
        """
        if count > 0:
            self.flagged.append(Exclusion(stage, reason, int(count)))
            how = f"; kept{', ' + kept_as if kept_as else ''}, not excluded"
            self.note(f"{stage}: {int(count):,} {reason}{how}.")

    def note(self, text: str) -> None:
        """Record a caveat that the report must show."""
        if text not in self.notes:
            self.notes.append(text)

    def total(self, stage: str | None = None) -> int:
        """Return the number of records excluded (at ``stage``, or overall)."""
        return sum(e.count for e in self.exclusions if stage is None or e.stage == stage)

    def records(self) -> list[dict[str, object]]:
        """Return the exclusions as a list of ``{stage, reason, count}`` dicts."""
        return [asdict(e) for e in self.exclusions]

    def __iter__(self) -> Iterator[Exclusion]:
        return iter(self.exclusions)
