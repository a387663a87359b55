"""Adaptive redundancy: ``projects.adaptive_rule`` may be ``stop_posterior``.

``stop_posterior`` (:mod:`camcensus.quality.adaptive`) ends a panorama when a count model
fitted on the project's pilot and gold answers expects no more error from stopping than a
tolerance. The CHECK of ``projects.adaptive_rule`` (an inline column CHECK, 0003) is widened.

Hand-written (a migration is a frozen snapshot and never imports the models). As in 0003, the
``projects`` table is not rebuilt (on SQLite a rebuild would fire the ``ON DELETE CASCADE`` of
every table that refers to it): the column is dropped and added again with the new CHECK, its
values kept in a temporary table, the same statements on both databases (SQLite 3.35+ drops a
column with its own CHECK in place).

Downgrade: projects on ``stop_posterior`` go back to ``fixed`` (k answers per panorama).

Revision ID: 0004_adaptive_rules
Revises: 0003_quality
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_adaptive_rules"
down_revision: str | None = "0003_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RULES_0003 = ("fixed", "stop_unanimous_zero", "stop_unanimous", "extend_disagreement", "both")
_RULES_0004 = (*_RULES_0003, "stop_posterior")


def _recreate(rules: tuple[str, ...]) -> None:
    """Drop ``projects.adaptive_rule`` and add it again with a CHECK on ``rules``, same values."""
    allowed = ", ".join(f"'{r}'" for r in rules)
    op.execute(
        "CREATE TEMPORARY TABLE adaptive_rule_0004 AS SELECT project_id, adaptive_rule "
        "FROM projects"
    )
    op.execute("ALTER TABLE projects DROP COLUMN adaptive_rule")
    op.execute(
        "ALTER TABLE projects ADD COLUMN adaptive_rule VARCHAR(32) DEFAULT 'fixed' NOT NULL "
        f"CONSTRAINT ck_projects_adaptive_rule CHECK (adaptive_rule IN ({allowed}))"
    )
    op.execute(
        "UPDATE projects SET adaptive_rule = (SELECT t.adaptive_rule FROM adaptive_rule_0004 t "
        "WHERE t.project_id = projects.project_id)"
    )
    op.execute("DROP TABLE adaptive_rule_0004")


def upgrade() -> None:
    """Allow ``stop_posterior`` as a project's adaptive rule."""
    _recreate(_RULES_0004)


def downgrade() -> None:
    """Projects on ``stop_posterior`` go back to ``fixed``; the 0003 CHECK returns."""
    op.execute("UPDATE projects SET adaptive_rule = 'fixed' WHERE adaptive_rule = 'stop_posterior'")
    _recreate(_RULES_0003)
