"""The platform's storage: one SQLAlchemy schema and Alembic history on SQLite or PostgreSQL.

``connect`` opens the database (``$DATABASE_URL``, else ``sqlite:///camcensus.db``);
``upgrade`` / ``downgrade`` run the migrations shipped in the package. The library functions
live in the submodules: :mod:`~camcensus.db.projects`, :mod:`~camcensus.db.tasks`,
:mod:`~camcensus.db.accounts`, :mod:`~camcensus.db.export`; they take a
``sqlalchemy.orm.Session`` first and raise :mod:`~camcensus.db.errors` on refusal.
"""

from __future__ import annotations

from camcensus.db import engine, errors, migrate, models
from camcensus.db.engine import connect, session_factory
from camcensus.db.migrate import current, downgrade, upgrade

__all__ = [
    "connect",
    "current",
    "downgrade",
    "engine",
    "errors",
    "migrate",
    "models",
    "session_factory",
    "upgrade",
]
