"""Creating projects (camcensus.db.projects.create_project): every problem of the tables is
reported at once, naming the table, row and column; stored values are the given ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from camcensus.db import connect, session_factory, upgrade
from camcensus.db import projects as db_projects
from camcensus.db.errors import Conflict, Invalid
from camcensus.db.models import Intersection, Panorama, Project

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = connect(f"sqlite:///{tmp_path / 'projects.sqlite'}")
    upgrade(eng)
    yield eng
    eng.dispose()


def frame(n: int = 3, **columns: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "panorama_id": [f"p{i}" for i in range(n)],
        "lon": [2.35 + 0.01 * i for i in range(n)],
        "lat": [48.85] * n,
        "heading_deg": [0.0, 90.5, 359.9][:n],
        "source": "panoramax",
        "image_uri": [f"img/{i}.jpg" for i in range(n)],
        "width_px": 8192,
        "height_px": 4096,
        "licence": "CC-BY-SA-4.0",
    }
    base.update(columns)
    return pd.DataFrame(base)


def create(engine: Engine, panoramas: pd.DataFrame, **kw: object) -> Project:
    kw.setdefault("name", "paris")
    kw.setdefault("title", "Paris")
    kw.setdefault("licence", "ODbL-1.0")
    with session_factory(engine).begin() as session:
        return db_projects.create_project(session, panoramas=panoramas, now=T0, **kw)  # type: ignore[arg-type]


def test_create_project_stores_every_value(engine: Engine) -> None:
    panoramas = frame(
        captured=["2021-05", "2022-01-31", None],
        source_ref=["abc", None, "x"],
        republishable=["yes", "false", None],
        intersection_id=["i0", None, "i2"],
        gold=[0, "", "TRUE"],
    )
    intersections = pd.DataFrame(
        {
            "intersection_id": ["i0", "i1", "i2"],
            "lon": [2.35, 2.36, 2.37],
            "lat": [48.85, 48.86, 48.87],
            "panorama_id": ["p0", None, "p2"],
            "area": ["4e", None, "5e"],
            "traffic_signal": [True, None, "no"],
        }
    )
    project = create(engine, panoramas, intersections=intersections, k=5, gold_every=7)
    assert (project.k, project.gold_every, project.task_timeout_s) == (5, 7, 900)
    with session_factory(engine)() as session:
        rows = {p.panorama_id: p for p in session.scalars(select(Panorama))}
        inter = {i.intersection_id: i for i in session.scalars(select(Intersection))}
    assert [rows[p].captured for p in ("p0", "p1", "p2")] == ["2021-05", "2022-01-31", None]
    assert [rows[p].republishable for p in ("p0", "p1", "p2")] == [True, False, True]
    assert [rows[p].gold for p in ("p0", "p1", "p2")] == [False, False, True]
    assert [rows[p].heading_deg for p in ("p0", "p1", "p2")] == [0.0, 90.5, 359.9]
    assert rows["p1"].source_ref is None and rows["p0"].intersection_id == "i0"
    assert {p.n_done for p in rows.values()} == {0} and rows["p0"].created_at == T0
    assert rows["p0"].shuffle_key == db_projects.shuffle_key("p0")
    assert [inter[i].traffic_signal for i in ("i0", "i1", "i2")] == [True, None, False]
    assert (inter["i1"].panorama_id, inter["i2"].area) == (None, "5e")


def test_gsv_defaults_to_not_republishable(engine: Engine) -> None:
    create(engine, frame(2, source="gsv"))
    with session_factory(engine)() as session:
        assert set(session.scalars(select(Panorama.republishable))) == {False}


def test_every_problem_is_reported_at_once(engine: Engine) -> None:
    panoramas = frame(
        4,
        panorama_id=["a", "b", "a", None],
        lon=[0.0, 181.0, 0.0, 0.0],
        heading_deg=[0.0, 360.0, 1.0, 2.0],
        source=["folder", "gsv", "flickr", "folder"],
        width_px=[100, 100.5, 100, 0],
        captured=["2021-05", "May 2021", None, "2021"],
        republishable=[True, "true", "maybe", None],
    )
    with pytest.raises(Invalid) as err:
        create(engine, panoramas, name="Bad Name", k=0)
    messages = [(e["field"], str(e["message"])) for e in err.value.errors]
    fields = [f for f, _ in messages]
    assert fields == [
        "create_project.name",
        "create_project.k",
        "panoramas.panorama_id",
        "panoramas.panorama_id",
        "panoramas.lon",
        "panoramas.heading_deg",
        "panoramas.width_px",
        "panoramas.width_px",
        "panoramas.source",
        "panoramas.captured",
        "panoramas.captured",
        "panoramas.republishable",
        "panoramas.republishable",
    ]
    text = "\n".join(m for _, m in messages)
    # Row numbers are 1-based rows of the table; the found value and the fix are named.
    assert "row 4" in text and "'flickr'" in text and "'maybe'" in text
    assert "set republishable to false for source gsv" in text
    with session_factory(engine)() as session:
        assert session.scalars(select(Project)).all() == []


def test_missing_columns_and_bad_intersections(engine: Engine) -> None:
    with pytest.raises(Invalid) as err:
        create(engine, frame().drop(columns=["licence", "lat"]))
    assert [e["field"] for e in err.value.errors] == ["panoramas.lat", "panoramas.licence"]
    inter = pd.DataFrame(
        {
            "intersection_id": ["i0", "i0"],
            "lon": [0.0, 0.0],
            "lat": [0.0, 95.0],
            "panorama_id": ["p0", "nope"],
            "traffic_signal": ["yes", "sometimes"],
        }
    )
    with pytest.raises(Invalid) as err:
        create(engine, frame(), intersections=inter)
    assert [e["field"] for e in err.value.errors] == [
        "intersections.intersection_id",
        "intersections.lat",
        "intersections.traffic_signal",
        "intersections.panorama_id",
    ]


def test_taken_names_and_panorama_ids(engine: Engine) -> None:
    create(engine, frame())
    with pytest.raises(Conflict):
        create(engine, frame(panorama_id=["q0", "q1", "q2"]))
    with pytest.raises(Conflict) as err:
        create(engine, frame(), name="other")
    assert err.value.errors[0]["field"] == "panoramas.panorama_id"
