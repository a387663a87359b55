"""The camera inventory: the ``cameras`` contract table (DESIGN.md), every source's cameras.

Hand-written (a migration is a frozen snapshot and never imports the models). On PostgreSQL it
also adds a generated ``geom geometry(Point, 4326)`` column with a GiST index, as 0001 does for
``panoramas``; the downgrade drops the table and its indexes.

Revision ID: 0002_cameras
Revises: 0001_platform
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_cameras"
down_revision: str | None = "0001_platform"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``cameras`` (and, on PostGIS, its generated point with a GiST index)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "cameras",
        sa.Column("camera_id", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("position_sd_m", sa.Float(), nullable=True),
        sa.Column("mount", sa.String(length=16), nullable=True),
        sa.Column("camera_type", sa.String(length=32), nullable=True),
        sa.Column("surveillance_type", sa.String(length=64), nullable=True),
        sa.Column("direction_deg", sa.Float(), nullable=True),
        sa.Column("hfov_deg", sa.Float(), nullable=True),
        sa.Column("height_m", sa.Float(), nullable=True),
        sa.Column("operator", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=500), nullable=True),
        sa.Column("tier", sa.String(length=200), nullable=True),
        sa.Column("support", sa.String(length=500), nullable=True),
        sa.Column("first_seen", sa.String(length=32), nullable=True),
        sa.Column("last_seen", sa.String(length=32), nullable=True),
        sa.Column("licence", sa.String(length=200), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lon >= -180 AND lon <= 180", name=op.f("ck_cameras_lon")),
        sa.CheckConstraint("lat >= -90 AND lat <= 90", name=op.f("ck_cameras_lat")),
        sa.CheckConstraint(
            "mount IN ('street', 'building', 'unknown')", name=op.f("ck_cameras_mount")
        ),
        sa.CheckConstraint(
            "direction_deg >= 0 AND direction_deg < 360", name=op.f("ck_cameras_direction_deg")
        ),
        sa.CheckConstraint("hfov_deg > 0 AND hfov_deg <= 360", name=op.f("ck_cameras_hfov_deg")),
        sa.CheckConstraint("length(source) >= 1", name=op.f("ck_cameras_source")),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_cameras")),
    )
    op.create_index(op.f("ix_cameras_lon_lat"), "cameras", ["lon", "lat"], unique=False)
    op.create_index(op.f("ix_cameras_source"), "cameras", ["source"], unique=False)
    op.create_index(
        op.f("ix_cameras_surveillance_type"), "cameras", ["surveillance_type"], unique=False
    )
    if postgres:
        op.execute(
            "ALTER TABLE cameras ADD COLUMN geom geometry(Point, 4326) "
            "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED"
        )
        op.execute("CREATE INDEX ix_cameras_geom ON cameras USING gist (geom)")


def downgrade() -> None:
    """Drop ``cameras`` (its indexes go with it)."""
    op.drop_table("cameras")
