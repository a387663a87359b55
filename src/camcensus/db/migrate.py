"""Create, upgrade and downgrade the platform schema with its Alembic history.

The Alembic configuration is built in code (``script_location`` is the ``migrations`` folder
shipped inside the package), so users need no ``alembic.ini``:
``camcensus.db.upgrade("sqlite:///camcensus.db")`` is the whole set-up.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

__all__ = ["MIGRATIONS", "current", "downgrade", "upgrade"]

#: The Alembic scripts folder shipped in the package.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _engine(url_or_engine: str | Engine | None) -> tuple[Engine, bool]:
    """Return the engine and whether this module made it (and must dispose of it)."""
    if isinstance(url_or_engine, Engine):
        return url_or_engine, False
    from camcensus.db.engine import connect

    return connect(url_or_engine), True


def _run(url_or_engine: str | Engine | None, step: str, revision: str) -> None:
    engine, owned = _engine(url_or_engine)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            if step == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
                if MigrationContext.configure(connection).get_current_revision() is None:
                    # Down to base (by name or by a relative step such as "-1"): leave no
                    # table behind, not even Alembic's bookkeeping.
                    connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        if owned:
            engine.dispose()


def upgrade(url_or_engine: str | Engine | None = None, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (default: the newest) in one transaction.

    Parameters
    ----------
    url_or_engine
        An engine from :func:`camcensus.db.connect`, or a URL (default ``$DATABASE_URL``, else
        ``sqlite:///camcensus.db``).
    revision
        An Alembic revision id, ``head`` or a relative step such as ``+1``.
    """
    _run(url_or_engine, "upgrade", revision)


def downgrade(url_or_engine: str | Engine | None = None, revision: str = "base") -> None:
    """Downgrade the schema to ``revision`` (default ``base``: no platform table is left)."""
    _run(url_or_engine, "downgrade", revision)


def current(url_or_engine: str | Engine | None = None) -> str | None:
    """Return the database's current revision id, or None when it has no platform schema."""
    engine, owned = _engine(url_or_engine)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if owned:
            engine.dispose()
