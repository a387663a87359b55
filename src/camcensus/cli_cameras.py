"""Command line: camera inventories (``camcensus cameras ...``, ``camcensus export cameras``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported.
"""

from __future__ import annotations

import typer

from camcensus.cli import app

cameras_app = typer.Typer(
    help="Camera inventories: import from OpenStreetMap, city lists and files.",
    no_args_is_help=True,
)
app.add_typer(cameras_app, name="cameras")
