"""The platform's Alembic history: up, down and up again on SQLite and PostgreSQL + PostGIS,
and the migration agrees with the models (an empty autogenerate diff)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from camcensus.db import connect, current, downgrade, upgrade
from camcensus.db.models import Base

HEAD = "0004_adaptive_rules"
PLATFORM_TABLES = {
    "projects",
    "panoramas",
    "intersections",
    "volunteers",
    "web_sessions",
    "invitations",
    "assignments",
    "submissions",
    "tags",
    "validations",
    "reviews",
    "comments",
    "cameras",
    "review_answers",
}
# Tables PostGIS itself keeps in the public schema (the extension outlives the downgrade).
POSTGIS_TABLES = {"spatial_ref_sys"}


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _diff(engine: Engine) -> list[Any]:
    """Alembic's autogenerate diff between the database and the models."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        # What only PostGIS has: its own table, and the generated point with its GiST index.
        if kind == "table" and name in POSTGIS_TABLES:
            return False
        return not (
            kind in ("column", "index") and name in ("geom", "ix_panoramas_geom", "ix_cameras_geom")
        )

    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite cannot reflect the expression index on lower(pseudonym); checked by name below.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        # Without GeoAlchemy2, SQLAlchemy reflects PostGIS's geometry as NullType.
        warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'")
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include,
            },
        )
        return list(compare_metadata(context, Base.metadata))


def _indexes(engine: Engine, table: str) -> set[str]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index")
        warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'")
        return {str(ix["name"]) for ix in inspect(engine).get_indexes(table)}


def _add_panorama(engine: Engine, lon: float, lat: float) -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (name, title, k, task_timeout_s, gold_every, licence, "
                "created_at, status) VALUES ('p', 'P', 3, 900, 20, 'CC0', :now, 'open')"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO panoramas (panorama_id, project_id, lon, lat, heading_deg, source, "
                "image_uri, width_px, height_px, licence, created_at) VALUES ('pano-a', "
                "(SELECT project_id FROM projects WHERE name = 'p'), :lon, :lat, 10, 'folder', "
                "'a.jpg', 4096, 2048, 'CC0', :now)"
            ),
            {"lon": lon, "lat": lat, "now": now},
        )


def _round_trip(engine: Engine) -> None:
    """Upgrade, check, downgrade to base, check that nothing is left, upgrade again."""
    assert current(engine) is None
    upgrade(engine)
    assert current(engine) == HEAD
    assert _tables(engine) >= PLATFORM_TABLES
    assert _tables(engine) - PLATFORM_TABLES - POSTGIS_TABLES == {"alembic_version"}
    assert _diff(engine) == []
    assert "uq_assignments_live_slot" in _indexes(engine, "assignments")
    assert "uq_reviews_open_panorama" in _indexes(engine, "reviews")
    # Upgrading an up-to-date database changes nothing.
    upgrade(engine)
    assert current(engine) == HEAD

    downgrade(engine)
    assert current(engine) is None
    assert _tables(engine) - POSTGIS_TABLES == set()

    upgrade(engine, "head")
    assert current(engine) == HEAD
    assert _diff(engine) == []


def test_sqlite_up_down_up(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        _round_trip(engine)
        with engine.connect() as conn:
            names = set(
                conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars()
            )
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        assert "ix_volunteers_pseudonym_lower" in names
        assert mode == "wal"
        _add_panorama(engine, -73.5, 40.25)
        # The database itself refuses values out of range (CHECK constraints of the migration).
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE panoramas SET heading_deg = 360"))
    finally:
        engine.dispose()


def test_sqlite_url_string_and_relative_revisions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.sqlite'}"
    assert current(url) is None
    upgrade(url, "+1")
    assert current(url) == "0001_platform"
    upgrade(url, "+1")
    assert current(url) == "0002_cameras"
    upgrade(url, "+1")
    assert current(url) == "0003_quality"
    upgrade(url, "+1")
    assert current(url) == HEAD
    downgrade(url, "-4")
    assert current(url) is None
    engine = connect(url)
    try:
        assert _tables(engine) == set()
    finally:
        engine.dispose()


def test_live_slot_index_refuses_over_assignment(tmp_path: Path) -> None:
    """The partial unique index: one live assignment per (panorama, slot); dead ones don't
    count."""
    engine = connect(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        upgrade(engine)
        _add_panorama(engine, 0.0, 0.0)
        now = datetime(2025, 1, 2, tzinfo=UTC)
        with engine.begin() as conn:
            for vid in (1, 2, 3):
                conn.execute(
                    text(
                        "INSERT INTO volunteers (volunteer_id, public_id, pseudonym, "
                        "password_hash, role, created_at) VALUES (:v, :p, :n, 'x', 'volunteer', "
                        ":now)"
                    ),
                    {"v": vid, "p": f"pub{vid}", "n": f"vol{vid}", "now": now},
                )
        insert = text(
            "INSERT INTO assignments (assignment_id, project_id, panorama_id, volunteer_id, kind, "
            "slot, issued_at, expires_at, status) VALUES (:a, 1, 'pano-a', :v, 'tag', 1, :now, "
            ":now, :status)"
        )
        with engine.begin() as conn:
            conn.execute(insert, {"a": "a1", "v": 1, "now": now, "status": "expired"})
            conn.execute(insert, {"a": "a2", "v": 2, "now": now, "status": "open"})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"a": "a3", "v": 3, "now": now, "status": "submitted"})
        # Nobody sees a panorama twice, whatever the status.
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"a": "a4", "v": 1, "now": now, "status": "abandoned"})
    finally:
        engine.dispose()


@pytest.mark.postgis
def test_postgis_up_down_up(postgis_fresh_url: str) -> None:
    engine = connect(postgis_fresh_url)
    try:
        _round_trip(engine)
        names = _indexes(engine, "panoramas")
        assert "ix_panoramas_geom" in names
        assert "ix_volunteers_pseudonym_lower" in _indexes(engine, "volunteers")
        _add_panorama(engine, -73.5, 40.25)
        with engine.connect() as conn:
            column = conn.execute(
                text(
                    "SELECT type, srid, coord_dimension FROM geometry_columns "
                    "WHERE f_table_name = 'panoramas' AND f_geometry_column = 'geom'"
                )
            ).one()
            method = conn.execute(
                text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_panoramas_geom'"
                )
            ).scalar()
            generated = conn.execute(
                text(
                    "SELECT is_generated FROM information_schema.columns "
                    "WHERE table_name = 'panoramas' AND column_name = 'geom'"
                )
            ).scalar()
            point = conn.execute(
                text("SELECT ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM panoramas")
            ).one()
            conn.execute(text("UPDATE panoramas SET lon = 2.5, lat = -1.75"))
            moved = conn.execute(text("SELECT ST_AsText(geom) FROM panoramas")).scalar()
            inside = conn.execute(
                text(
                    "SELECT count(*) FROM panoramas WHERE geom && "
                    "ST_MakeEnvelope(2, -2, 3, -1, 4326)"
                )
            ).scalar()
            conn.rollback()
        assert tuple(column) == ("POINT", 4326, 2)
        assert method == "gist"
        assert generated == "ALWAYS"
        assert tuple(point) == (-73.5, 40.25, 4326)
        assert moved == "POINT(2.5 -1.75)"
        assert inside == 1
        # Times come back timezone-aware UTC.
        with engine.connect() as conn:
            created = conn.execute(text("SELECT created_at FROM panoramas")).scalar()
        assert created == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

        downgrade(engine)
        assert current(engine) is None
        assert _tables(engine) - POSTGIS_TABLES == set()
        with engine.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'S') "
                    "AND c.relname NOT LIKE 'spatial_ref_sys%'"
                )
            ).scalar()
        assert left == 0
    finally:
        engine.dispose()


def test_quality_columns_and_checks(tmp_path: Path) -> None:
    """0003: k_target and adaptive_rule are checked by the database; a review row made before
    0003 survives the upgrade with the new defaults; one unfinished review per panorama."""
    engine = connect(f"sqlite:///{tmp_path / 'q.sqlite'}")
    try:
        upgrade(engine, "0002_cameras")
        _add_panorama(engine, 0.0, 0.0)
        now = datetime(2025, 1, 2, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reviews (review_id, project_id, panorama_id, inclusion_prob, "
                    "status, created_at) VALUES ('r1', 1, 'pano-a', 0.5, 'open', :now)"
                ),
                {"now": now},
            )
        upgrade(engine)
        with engine.connect() as conn:
            rule = conn.execute(text("SELECT adaptive_rule FROM projects")).scalar()
            k_target = conn.execute(text("SELECT k_target FROM panoramas")).scalar()
            review = conn.execute(
                text("SELECT status, inclusion_prob, experts_needed, stratum FROM reviews")
            ).one()
        assert rule == "fixed"
        assert k_target is None
        assert tuple(review) == ("open", 0.5, 3, None)
        with engine.begin() as conn:
            conn.execute(text("UPDATE panoramas SET k_target = 5"))
            conn.execute(text("UPDATE projects SET adaptive_rule = 'both'"))
            conn.execute(text("UPDATE reviews SET status = 'awaiting_meta'"))
        for bad in (
            "UPDATE panoramas SET k_target = 0",
            "UPDATE projects SET adaptive_rule = 'sometimes'",
            "UPDATE reviews SET status = 'maybe'",
            # A second unfinished review of the same panorama.
            "INSERT INTO reviews (review_id, project_id, panorama_id, status, created_at) "
            "VALUES ('r2', 1, 'pano-a', 'open', '2025-01-02 00:00:00')",
        ):
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(text(bad))
        downgrade(engine, "0002_cameras")
        with engine.connect() as conn:
            status = conn.execute(text("SELECT status FROM reviews")).scalar()
        columns = {c["name"] for c in inspect(engine).get_columns("panoramas")}
        assert status == "open"
        assert "k_target" not in columns
    finally:
        engine.dispose()
