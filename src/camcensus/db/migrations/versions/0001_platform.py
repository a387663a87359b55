"""The platform schema: projects, panoramas, submissions, tags, accounts, tasks, reviews.

Hand-written (drafted once from the models, then fixed): a migration is a frozen snapshot and
never imports the models. On PostgreSQL it also enables PostGIS and adds a generated
``geom geometry(Point, 4326)`` column to ``panoramas`` with a GiST index; the downgrade drops
every table and index this revision made (the PostGIS extension stays: other schemas of the
database may use it).

Revision ID: 0001_platform
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_platform"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    "projects",
    "volunteers",
    "invitations",
    "panoramas",
    "web_sessions",
    "assignments",
    "comments",
    "intersections",
    "reviews",
    "submissions",
    "tags",
    "validations",
)


def upgrade() -> None:
    """Create every platform table, its constraints and indexes."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "projects",
        sa.Column("project_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("k", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("task_timeout_s", sa.Integer(), server_default=sa.text("900"), nullable=False),
        sa.Column("gold_every", sa.Integer(), server_default=sa.text("20"), nullable=False),
        sa.Column("licence", sa.String(length=200), nullable=False),
        sa.Column("area_geojson", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_projects_status")),
        sa.CheckConstraint("gold_every >= 1", name=op.f("ck_projects_gold_every")),
        sa.CheckConstraint("k >= 1 AND k <= 50", name=op.f("ck_projects_k")),
        sa.CheckConstraint(
            "length(name) >= 1 AND length(name) <= 64", name=op.f("ck_projects_name")
        ),
        sa.CheckConstraint("task_timeout_s >= 1", name=op.f("ck_projects_task_timeout_s")),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "volunteers",
        sa.Column("volunteer_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tutorial_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('volunteer', 'expert', 'admin')", name=op.f("ck_volunteers_role")
        ),
        sa.CheckConstraint(
            "length(pseudonym) >= 3 AND length(pseudonym) <= 40",
            name=op.f("ck_volunteers_pseudonym"),
        ),
        sa.PrimaryKeyConstraint("volunteer_id", name=op.f("pk_volunteers")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_volunteers_pseudonym")),
        sa.UniqueConstraint("public_id", name=op.f("uq_volunteers_public_id")),
    )
    # Pseudonyms are unique regardless of case, even under concurrent sign-ups.
    op.create_index(
        "ix_volunteers_pseudonym_lower", "volunteers", [sa.text("lower(pseudonym)")], unique=True
    )
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_by", sa.Integer(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('volunteer', 'expert', 'admin')", name=op.f("ck_invitations_role")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_invitations_created_by_volunteers"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_invitations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["volunteers.volunteer_id"], name=op.f("fk_invitations_used_by_volunteers")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_invitations")),
    )
    op.create_table(
        "panoramas",
        sa.Column("panorama_id", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("heading_deg", sa.Float(), nullable=False),
        sa.Column("captured", sa.String(length=10), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=500), nullable=True),
        sa.Column("image_uri", sa.String(length=1000), nullable=False),
        sa.Column("width_px", sa.Integer(), nullable=False),
        sa.Column("height_px", sa.Integer(), nullable=False),
        sa.Column("licence", sa.String(length=200), nullable=False),
        sa.Column("republishable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("intersection_id", sa.String(length=200), nullable=True),
        sa.Column("gold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("gold_answer", sa.Text(), nullable=True),
        sa.Column("n_done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_live", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_problem", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("shuffle_key", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('folder', 'panoramax', 'mapillary', 'gsv', 'synthetic')",
            name=op.f("ck_panoramas_source"),
        ),
        sa.CheckConstraint(
            "captured IS NULL OR length(captured) = 7 OR length(captured) = 10",
            name=op.f("ck_panoramas_captured"),
        ),
        sa.CheckConstraint(
            "heading_deg >= 0 AND heading_deg < 360", name=op.f("ck_panoramas_heading_deg")
        ),
        sa.CheckConstraint("lat >= -90 AND lat <= 90", name=op.f("ck_panoramas_lat")),
        sa.CheckConstraint("lon >= -180 AND lon <= 180", name=op.f("ck_panoramas_lon")),
        sa.CheckConstraint("n_done >= 0 AND n_done <= n_live", name=op.f("ck_panoramas_n_done")),
        sa.CheckConstraint("n_live >= 0", name=op.f("ck_panoramas_n_live")),
        sa.CheckConstraint("n_problem >= 0", name=op.f("ck_panoramas_n_problem")),
        sa.CheckConstraint("width_px > 0 AND height_px > 0", name=op.f("ck_panoramas_size")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_panoramas_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("panorama_id", name=op.f("pk_panoramas")),
    )
    op.create_index(
        op.f("ix_panoramas_project_id_gold_n_live_shuffle_key"),
        "panoramas",
        ["project_id", "gold", "n_live", "shuffle_key"],
        unique=False,
    )
    op.create_index(
        op.f("ix_panoramas_project_id_lon_lat"),
        "panoramas",
        ["project_id", "lon", "lat"],
        unique=False,
    )
    if postgres:
        op.execute(
            "ALTER TABLE panoramas ADD COLUMN geom geometry(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED"
        )
        op.execute("CREATE INDEX ix_panoramas_geom ON panoramas USING gist (geom)")
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_web_sessions_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(
        op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_web_sessions_volunteer_id"), "web_sessions", ["volunteer_id"], unique=False
    )
    op.create_table(
        "assignments",
        sa.Column("assignment_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("panorama_id", sa.String(length=200), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "(kind = 'tag' AND slot IS NOT NULL AND slot >= 1) OR (kind <> 'tag' AND slot IS NULL)",
            name=op.f("ck_assignments_slot"),
        ),
        sa.CheckConstraint("kind IN ('tag', 'gold', 'review')", name=op.f("ck_assignments_kind")),
        sa.CheckConstraint(
            "status IN ('open', 'submitted', 'reported', 'expired', 'abandoned')",
            name=op.f("ck_assignments_status"),
        ),
        sa.ForeignKeyConstraint(
            ["panorama_id"],
            ["panoramas.panorama_id"],
            name=op.f("fk_assignments_panorama_id_panoramas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_assignments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_assignments_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", name=op.f("pk_assignments")),
        sa.UniqueConstraint(
            "panorama_id", "volunteer_id", name=op.f("uq_assignments_panorama_id_volunteer_id")
        ),
    )
    op.create_index(
        op.f("ix_assignments_project_id_status_expires_at"),
        "assignments",
        ["project_id", "status", "expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_assignments_volunteer_id_project_id_issued_at"),
        "assignments",
        ["volunteer_id", "project_id", "issued_at"],
        unique=False,
    )
    op.create_index(
        "uq_assignments_live_slot",
        "assignments",
        ["panorama_id", "slot"],
        unique=True,
        sqlite_where=sa.text("status IN ('open', 'submitted')"),
        postgresql_where=sa.text("status IN ('open', 'submitted')"),
    )
    op.create_table(
        "comments",
        sa.Column("comment_id", sa.String(length=64), nullable=False),
        sa.Column("panorama_id", sa.String(length=200), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(body) >= 1 AND length(body) <= 2000", name=op.f("ck_comments_body")
        ),
        sa.ForeignKeyConstraint(
            ["panorama_id"],
            ["panoramas.panorama_id"],
            name=op.f("fk_comments_panorama_id_panoramas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_comments_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("comment_id", name=op.f("pk_comments")),
    )
    op.create_index(
        op.f("ix_comments_panorama_id_created_at"),
        "comments",
        ["panorama_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "intersections",
        sa.Column("intersection_id", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("panorama_id", sa.String(length=200), nullable=True),
        sa.Column("area", sa.String(length=200), nullable=True),
        sa.Column("traffic_signal", sa.Boolean(), nullable=True),
        sa.CheckConstraint(
            "lon >= -180 AND lon <= 180 AND lat >= -90 AND lat <= 90",
            name=op.f("ck_intersections_lonlat"),
        ),
        sa.ForeignKeyConstraint(
            ["panorama_id"],
            ["panoramas.panorama_id"],
            name=op.f("fk_intersections_panorama_id_panoramas"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_intersections_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("intersection_id", name=op.f("pk_intersections")),
    )
    op.create_index(
        op.f("ix_intersections_panorama_id"), "intersections", ["panorama_id"], unique=False
    )
    op.create_index(
        op.f("ix_intersections_project_id"), "intersections", ["project_id"], unique=False
    )
    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("panorama_id", sa.String(length=200), nullable=False),
        sa.Column("inclusion_prob", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_reviews_status")),
        sa.CheckConstraint(
            "inclusion_prob IS NULL OR (inclusion_prob > 0 AND inclusion_prob <= 1)",
            name=op.f("ck_reviews_inclusion_prob"),
        ),
        sa.ForeignKeyConstraint(
            ["panorama_id"],
            ["panoramas.panorama_id"],
            name=op.f("fk_reviews_panorama_id_panoramas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_reviews_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_reviews")),
    )
    op.create_index(op.f("ix_reviews_panorama_id"), "reviews", ["panorama_id"], unique=False)
    op.create_index(
        op.f("ix_reviews_project_id_status"), "reviews", ["project_id", "status"], unique=False
    )
    op.create_index(
        "uq_reviews_open_panorama",
        "reviews",
        ["panorama_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "submissions",
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("panorama_id", sa.String(length=200), nullable=False),
        sa.Column("decoder_id", sa.String(length=200), nullable=False),
        sa.Column("assignment_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("no_camera", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=True),
        sa.Column("problem_note", sa.String(length=500), nullable=True),
        sa.Column("gold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("client_build", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "kind IN ('volunteer', 'expert', 'model', 'tutorial')", name=op.f("ck_submissions_kind")
        ),
        sa.CheckConstraint(
            "problem IS NULL OR problem IN ('no_image', 'wrong_place', 'indoor', 'other')",
            name=op.f("ck_submissions_problem"),
        ),
        sa.CheckConstraint(
            "problem_note IS NULL OR length(problem_note) <= 500",
            name=op.f("ck_submissions_problem_note"),
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.assignment_id"],
            name=op.f("fk_submissions_assignment_id_assignments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["panorama_id"],
            ["panoramas.panorama_id"],
            name=op.f("fk_submissions_panorama_id_panoramas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("assignment_id", name=op.f("uq_submissions_assignment_id")),
    )
    op.create_index(op.f("ix_submissions_decoder_id"), "submissions", ["decoder_id"], unique=False)
    op.create_index(
        op.f("ix_submissions_panorama_id"), "submissions", ["panorama_id"], unique=False
    )
    op.create_table(
        "tags",
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("heading_deg", sa.Float(), nullable=False),
        sa.Column("pitch_deg", sa.Float(), nullable=False),
        sa.Column("fov_deg", sa.Float(), nullable=False),
        sa.Column("attachment", sa.String(length=16), nullable=False),
        sa.Column("camera_type", sa.String(length=16), nullable=False),
        sa.Column("machine", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("client_tag_id", sa.String(length=100), nullable=True),
        sa.Column("replaces_tag_id", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("current", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "attachment IN ('street', 'building', 'unknown')", name=op.f("ck_tags_attachment")
        ),
        sa.CheckConstraint(
            "camera_type IN ('dome', 'bullet', 'unknown')", name=op.f("ck_tags_camera_type")
        ),
        sa.CheckConstraint("fov_deg > 0 AND fov_deg <= 180", name=op.f("ck_tags_fov_deg")),
        sa.CheckConstraint(
            "heading_deg >= 0 AND heading_deg < 360", name=op.f("ck_tags_heading_deg")
        ),
        sa.CheckConstraint("pitch_deg >= -90 AND pitch_deg <= 90", name=op.f("ck_tags_pitch_deg")),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.submission_id"],
            name=op.f("fk_tags_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tag_id", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_submission_id"), "tags", ["submission_id"], unique=False)
    op.create_table(
        "validations",
        sa.Column("validation_id", sa.String(length=64), nullable=False),
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("volunteer_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "answer IN ('agree', 'disagree', 'unsure')", name=op.f("ck_validations_answer")
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.tag_id"], name=op.f("fk_validations_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.volunteer_id"],
            name=op.f("fk_validations_volunteer_id_volunteers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("validation_id", name=op.f("pk_validations")),
        sa.UniqueConstraint(
            "tag_id", "volunteer_id", name=op.f("uq_validations_tag_id_volunteer_id")
        ),
    )
    op.create_index(
        op.f("ix_validations_volunteer_id"), "validations", ["volunteer_id"], unique=False
    )


def downgrade() -> None:
    """Drop every table this revision created (their indexes go with them)."""
    for table in reversed(_TABLES):
        op.drop_table(table)
