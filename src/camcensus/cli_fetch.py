"""Command line: downloads from the original public sources (``camcensus fetch ...``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported.
"""

from __future__ import annotations

import typer

from camcensus.cli import app

fetch_app = typer.Typer(
    help="Download data from the original public sources (needs internet).",
    no_args_is_help=True,
)
app.add_typer(fetch_app, name="fetch")
