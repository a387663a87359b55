"""Warnings of a fit kept with the model, not printed (STYLE.md §10: say what happened, where)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from camcensus.stats._result import ModelResult

__all__ = ["attach", "recording"]

# Deprecations speak to the developer, not the reader of a report: passed on unchanged.
_PASS_ON = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Record the warnings raised inside the block (numpy's floating-point warnings too).

    Yields a list filled on exit with one ``"Category: message"`` line per distinct warning, in
    the order first seen; deprecation warnings are re-issued to the caller's filters instead.
    """
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield lines
    for w in caught:
        if issubclass(w.category, _PASS_ON):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        line = f"{w.category.__name__}: {w.message}"
        if line not in lines:
            lines.append(line)


def attach(result: ModelResult, lines: list[str]) -> ModelResult:
    """Add ``lines`` to ``result.extras["fit_warnings"]`` (kept once each); return ``result``."""
    kept = list(result.extras.get("fit_warnings", []))
    kept += [line for line in lines if line not in kept]
    result.extras["fit_warnings"] = kept
    return result
