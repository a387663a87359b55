"""One result shape for every statistic (STYLE.md §9)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from camcensus.io.formats import json_safe

__all__ = ["Estimate", "ModelResult", "coefficient_table"]


@dataclass(frozen=True)
class Estimate:
    """One estimated quantity with its uncertainty.

    ``method`` says how ``std_error``, the interval and ``p_value`` were obtained
    (e.g. ``"profile"`` (profile likelihood, R's ``confint`` on a glm), ``"wald"``, ``"t"``
    (R's ``confint`` on an lm), ``"cluster(NTA)"``, ``"conley(1000 m)"``, ``"permutation(999)"``).
    """

    term: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    method: str


@dataclass(frozen=True)
class ModelResult:
    """A fitted model: what was fitted, on how many rows, and its coefficients.

    ``interval`` says in words how the coefficients' intervals were obtained (e.g. "profile
    likelihood (R confint on a glm, MASS)"); each coefficient's ``method`` says it too.
    """

    name: str
    formula: str
    family: str
    n: int
    coefficients: tuple[Estimate, ...]
    deviance: float | None = None
    aic: float | None = None
    group: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    interval: str = "Wald (R confint.default)"

    def coef(self, term: str) -> Estimate:
        """Return the estimate of ``term``."""
        for c in self.coefficients:
            if c.term == term:
                return c
        raise KeyError(
            f"{self.name} has no term {term!r}; it has {[c.term for c in self.coefficients]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``coefficients`` as a list of dicts)."""
        d = asdict(self)
        out: dict[str, Any] = json_safe(d)
        return out


def coefficient_table(results: list[ModelResult]) -> pd.DataFrame:
    """Return a tidy table: one row per model × term, with the model's group columns."""
    rows = []
    for r in results:
        for c in r.coefficients:
            rows.append({"model": r.name, **r.group, **asdict(c), "family": r.family})
    return pd.DataFrame(rows)
