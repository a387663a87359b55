"""Migration 0004: ``projects.adaptive_rule`` accepts ``stop_posterior``; up and down on SQLite
and PostgreSQL + PostGIS keep the projects' rules and every row that refers to a project."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from camcensus.db import connect, current, downgrade, upgrade
from camcensus.db.models import ADAPTIVE_RULES

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _add_project(engine: Engine, name: str, rule: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (name, title, k, task_timeout_s, gold_every, licence, "
                "created_at, status, adaptive_rule) VALUES (:name, 'P', 3, 900, 20, 'CC0', "
                ":now, 'open', :rule)"
            ),
            {"name": name, "now": NOW, "rule": rule},
        )
        conn.execute(
            text(
                "INSERT INTO panoramas (panorama_id, project_id, lon, lat, heading_deg, source, "
                "image_uri, width_px, height_px, licence, created_at, k_target) VALUES "
                "(:pano, (SELECT project_id FROM projects WHERE name = :name), 1.5, 2.5, 10, "
                "'folder', 'a.jpg', 4096, 2048, 'CC0', :now, 2)"
            ),
            {"pano": f"pano-{name}", "name": name, "now": NOW},
        )


def _rules(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, adaptive_rule FROM projects ORDER BY name"))
        return {str(n): str(r) for n, r in rows}


def _panoramas(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT panorama_id, k_target FROM panoramas ORDER BY 1"))
        return [(str(p), int(k)) for p, k in rows]


def _refused(engine: Engine, rule: str) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE projects SET adaptive_rule = :r"), {"r": rule})
    except IntegrityError:
        return True
    return False


def _up_down(engine: Engine) -> None:
    upgrade(engine, "0003_quality")
    _add_project(engine, "a", "both")
    _add_project(engine, "b", "fixed")
    assert _refused(engine, "stop_posterior")

    upgrade(engine, "0004_adaptive_rules")
    assert current(engine) == "0004_adaptive_rules"
    # The rules and the panoramas that refer to the projects are kept (no cascade).
    assert _rules(engine) == {"a": "both", "b": "fixed"}
    assert _panoramas(engine) == [("pano-a", 2), ("pano-b", 2)]
    checks = {c["name"] for c in inspect(engine).get_check_constraints("projects")}
    assert "ck_projects_adaptive_rule" in checks
    with engine.begin() as conn:
        conn.execute(text("UPDATE projects SET adaptive_rule = 'stop_posterior' WHERE name = 'a'"))
        conn.execute(
            text(
                "INSERT INTO projects (name, title, k, task_timeout_s, gold_every, licence, "
                "created_at, status) VALUES ('c', 'P', 3, 900, 20, 'CC0', :now, 'open')"
            ),
            {"now": NOW},
        )
    assert _rules(engine) == {"a": "stop_posterior", "b": "fixed", "c": "fixed"}
    assert _refused(engine, "sometimes")
    for rule in ADAPTIVE_RULES:
        assert not _refused(engine, rule)
    with engine.begin() as conn:
        conn.execute(text("UPDATE projects SET adaptive_rule = 'stop_posterior' WHERE name = 'a'"))
        conn.execute(text("UPDATE projects SET adaptive_rule = 'both' WHERE name = 'b'"))

    downgrade(engine, "0003_quality")
    assert current(engine) == "0003_quality"
    assert _rules(engine) == {"a": "fixed", "b": "both", "c": "fixed"}
    assert _panoramas(engine) == [("pano-a", 2), ("pano-b", 2)]
    assert _refused(engine, "stop_posterior")

    upgrade(engine, "0004_adaptive_rules")
    assert _rules(engine) == {"a": "fixed", "b": "both", "c": "fixed"}
    assert not _refused(engine, "stop_posterior")


def test_0004_sqlite_up_down(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'a.sqlite'}")
    try:
        _up_down(engine)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    finally:
        engine.dispose()


@pytest.mark.slow
def test_0004_postgis_up_down(postgis_fresh_url: str) -> None:
    engine = connect(postgis_fresh_url)
    try:
        _up_down(engine)
    finally:
        engine.dispose()
