"""Quality: adaptive redundancy per panorama and the three-expert review with a meta-expert.

- ``panoramas.k_target``: how many counted answers this panorama needs (NULL = the project's
  ``k``); the project's adaptive rule sets it after each counted submission.
- ``projects.adaptive_rule``: ``fixed`` (default), ``stop_unanimous_zero``, ``stop_unanimous``,
  ``extend_disagreement`` or ``both`` (:mod:`camcensus.quality.adaptive`).
- ``reviews``: status ``awaiting_meta`` (the experts disagree; a meta-expert gives the
  reference), the plan's ``stratum``, ``experts_needed`` (3, as Amnesty's review) and
  ``decided_at``; the partial unique index allows one unfinished (``open`` or
  ``awaiting_meta``) review per panorama.
- ``review_answers``: one row per expert answer (role ``expert``: the counts of their
  submission's tags) and the meta-expert's decision (role ``meta``); one answer per person
  per review, at most one meta answer per review.

Hand-written (a migration is a frozen snapshot and never imports the models). New columns of
``panoramas`` and ``projects`` are added with ``ALTER TABLE ... ADD COLUMN`` and an inline
CHECK on both databases: rebuilding those tables on SQLite (batch mode) would fire the
``ON DELETE CASCADE`` of every table that refers to them. ``reviews`` (referred to only by
``review_answers``, created after) is rebuilt in batch mode on SQLite to change its status
CHECK.

Revision ID: 0003_quality
Revises: 0002_cameras
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_quality"
down_revision: str | None = "0002_cameras"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = (
    "n_cameras",
    "attached_street",
    "attached_building",
    "attached_unknown",
    "type_dome",
    "type_bullet",
    "type_unknown",
)


def _open_index(statuses: str) -> None:
    where = sa.text(f"status IN ({statuses})")
    op.create_index(
        "uq_reviews_open_panorama",
        "reviews",
        ["panorama_id"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


def upgrade() -> None:
    """Add the adaptive-redundancy columns, the review statuses and ``review_answers``."""
    op.execute(
        "ALTER TABLE panoramas ADD COLUMN k_target INTEGER "
        "CONSTRAINT ck_panoramas_k_target CHECK (k_target IS NULL OR k_target >= 1)"
    )
    op.execute(
        "ALTER TABLE projects ADD COLUMN adaptive_rule VARCHAR(32) DEFAULT 'fixed' NOT NULL "
        "CONSTRAINT ck_projects_adaptive_rule CHECK (adaptive_rule IN "
        "('fixed', 'stop_unanimous_zero', 'stop_unanimous', 'extend_disagreement', 'both'))"
    )
    op.drop_index("uq_reviews_open_panorama", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint(op.f("ck_reviews_status"), type_="check")
        batch.add_column(sa.Column("stratum", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("experts_needed", sa.Integer(), server_default=sa.text("3"), nullable=False)
        )
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            op.f("ck_reviews_status"), "status IN ('open', 'awaiting_meta', 'done')"
        )
        batch.create_check_constraint(op.f("ck_reviews_experts_needed"), "experts_needed >= 1")
    _open_index("'open', 'awaiting_meta'")
    # Reviews answered before this revision had one expert, whose answer is their reference.
    op.execute("UPDATE reviews SET experts_needed = 1 WHERE status = 'done'")
    op.create_table(
        "review_answers",
        sa.Column("answer_id", sa.String(length=64), nullable=False),
        sa.Column("review_id", sa.String(length=64), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in _COUNTS),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('expert', 'meta')", name=op.f("ck_review_answers_role")),
        sa.CheckConstraint(
            " AND ".join(f"{c} >= 0" for c in _COUNTS), name=op.f("ck_review_answers_counts")
        ),
        sa.CheckConstraint(
            "note IS NULL OR length(note) <= 500", name=op.f("ck_review_answers_note")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.review_id"],
            name=op.f("fk_review_answers_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_review_answers_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.submission_id"],
            name=op.f("fk_review_answers_submission_id_submissions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("answer_id", name=op.f("pk_review_answers")),
        sa.UniqueConstraint(
            "review_id", "volunteer_id", name=op.f("uq_review_answers_review_id_volunteer_id")
        ),
        sa.UniqueConstraint("submission_id", name=op.f("uq_review_answers_submission_id")),
    )
    op.create_index(
        op.f("ix_review_answers_volunteer_id"), "review_answers", ["volunteer_id"], unique=False
    )
    meta = sa.text("role = 'meta'")
    op.create_index(
        "uq_review_answers_meta",
        "review_answers",
        ["review_id"],
        unique=True,
        sqlite_where=meta,
        postgresql_where=meta,
    )


def downgrade() -> None:
    """Drop ``review_answers`` and the new columns; unfinished reviews become ``open``."""
    op.drop_table("review_answers")
    op.execute("UPDATE reviews SET status = 'open' WHERE status = 'awaiting_meta'")
    op.drop_index("uq_reviews_open_panorama", table_name="reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint(op.f("ck_reviews_experts_needed"), type_="check")
        batch.drop_constraint(op.f("ck_reviews_status"), type_="check")
        batch.drop_column("decided_at")
        batch.drop_column("experts_needed")
        batch.drop_column("stratum")
        batch.create_check_constraint(op.f("ck_reviews_status"), "status IN ('open', 'done')")
    _open_index("'open'")
    # Column CHECKs go with their column on both databases (SQLite 3.35+ drops such a column
    # in place).
    op.execute("ALTER TABLE projects DROP COLUMN adaptive_rule")
    op.execute("ALTER TABLE panoramas DROP COLUMN k_target")
