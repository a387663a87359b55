"""Command line: the audit of any city (``camcensus audit``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported.
"""

from __future__ import annotations

from camcensus.cli import app as app
