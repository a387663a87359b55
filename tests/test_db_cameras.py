"""The ``cameras`` table: its migration (up/down/up on SQLite and PostGIS, models in step), and
load / replace / query / dump against brute-force references, on both databases."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camcensus import ContractError, Ledger
from camcensus.cameras import CAMERA_COLUMNS, cameras_from_counts
from camcensus.db import connect, current, downgrade, upgrade
from camcensus.db.cameras import (
    cameras_frame,
    count_cameras,
    dump_cameras,
    load_cameras,
    query_cameras,
    write_cameras_dump,
)
from camcensus.db.errors import Conflict, Invalid
from camcensus.db.models import Base

HEAD = "0004_adaptive_rules"
# What only PostGIS has: its own table, and the generated points with their GiST indexes.
_POSTGIS_ONLY = {"geom", "ix_panoramas_geom", "ix_cameras_geom"}
NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def _diff(engine: Engine) -> list[Any]:
    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        if kind == "table" and name == "spatial_ref_sys":
            return False
        return not (kind in ("column", "index") and name in _POSTGIS_ONLY)

    with engine.connect() as connection, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index")
        warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'")
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True, "include_object": include},
        )
        return list(compare_metadata(context, Base.metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _round_trip(engine: Engine) -> None:
    upgrade(engine)
    assert current(engine) == HEAD
    assert "cameras" in _tables(engine)
    assert _diff(engine) == []
    downgrade(engine, "0001_platform")
    assert current(engine) == "0001_platform"
    assert "cameras" not in _tables(engine) and "panoramas" in _tables(engine)
    upgrade(engine)
    assert current(engine) == HEAD
    assert _diff(engine) == []


def test_migration_up_down_up_sqlite(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        _round_trip(engine)
        # The database itself refuses out-of-range values.
        insert = text(
            "INSERT INTO cameras (camera_id, lon, lat, source, mount, direction_deg, loaded_at) "
            "VALUES (:i, 1, 2, 'osm', :m, :d, '2026-01-01 00:00:00')"
        )
        with engine.begin() as conn:
            conn.execute(insert, {"i": "ok", "m": "street", "d": 359.5})
        for bad in ({"i": "b1", "m": "roof", "d": 1.0}, {"i": "b2", "m": None, "d": 360.0}):
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(insert, bad)
        downgrade(engine)
        assert _tables(engine) == set()
    finally:
        engine.dispose()


@pytest.mark.postgis
def test_migration_up_down_up_postgis(postgis_fresh_url: str) -> None:
    engine = connect(postgis_fresh_url)
    try:
        _round_trip(engine)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'")
            names = {str(ix["name"]) for ix in inspect(engine).get_indexes("cameras")}
        assert "ix_cameras_geom" in names
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cameras (camera_id, lon, lat, source, loaded_at) "
                    "VALUES ('a', -76.6, 39.3, 'osm', now())"
                )
            )
            kind = conn.execute(
                text(
                    "SELECT type, srid FROM geometry_columns WHERE f_table_name = 'cameras' "
                    "AND f_geometry_column = 'geom'"
                )
            ).one()
            method = conn.execute(
                text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_cameras_geom'"
                )
            ).scalar()
            inside = conn.execute(
                text(
                    "SELECT count(*) FROM cameras WHERE geom && "
                    "ST_MakeEnvelope(-77, 39, -76, 40, 4326)"
                )
            ).scalar()
        assert tuple(kind) == ("POINT", 4326)
        assert method == "gist"
        assert inside == 1
        downgrade(engine, "0001_platform")
        assert "cameras" not in _tables(engine)
        upgrade(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- load and query
def synthetic_cameras(city: Any) -> gpd.GeoDataFrame:
    """The synthetic city's true cameras as the contract table, with two sources, types,
    directions and an extra column (OSM-style tags as JSON text)."""
    truth = city.truth.rename(
        columns={c: f"{c}_median" for c in ("attached_street", "attached_building",
                                            "attached_unknown", "type_dome", "type_bullet")}
    )  # fmt: skip
    cams = cameras_from_counts(truth, licence="CC0").to_crs("EPSG:4326")
    rng = np.random.default_rng(3)
    n = len(cams)
    cams["source"] = np.where(rng.random(n) < 0.3, "osm", "city-list")
    cams["surveillance_type"] = np.where(rng.random(n) < 0.1, "ALPR", "camera")
    cams["direction_deg"] = np.where(rng.random(n) < 0.5, np.round(rng.uniform(0, 359, n), 1),
                                     np.nan)  # fmt: skip
    cams["hfov_deg"] = np.where(rng.random(n) < 0.2, 90.0, np.nan)
    cams["operator"] = [("City DOT" if u < 0.5 else None) for u in rng.random(n)]
    cams["osm_tags"] = [json.dumps({"man_made": "surveillance", "ref": str(i)}) for i in range(n)]
    return cams


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'p.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = connect(f"sqlite:///{tmp_path / 'q.sqlite'}")
    else:
        eng = connect(request.getfixturevalue("postgis_fresh_url"))
    upgrade(eng)
    yield eng
    eng.dispose()


def _sorted(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.sort_values("camera_id").reset_index(drop=True)


def test_load_and_read_back_the_same_table(engine: Engine, city: Any) -> None:
    cams = synthetic_cameras(city)
    with Session(engine) as s, s.begin():
        result = load_cameras(s, cams, now=NOW)
    assert (result.loaded, result.deleted, result.excluded) == (len(cams), 0, 0)
    with Session(engine) as s:
        back = cameras_frame(query_cameras(s))
    want, got = _sorted(cams), _sorted(back)
    assert list(got.columns[: len(CAMERA_COLUMNS)]) == list(CAMERA_COLUMNS)
    for col in (*CAMERA_COLUMNS, "osm_tags"):
        a, b = want[col], got[col]
        if col in ("position_sd_m", "direction_deg", "hfov_deg", "height_m"):
            np.testing.assert_array_equal(a.to_numpy(dtype=float), b.to_numpy(dtype=float))
        else:
            assert a.where(a.notna(), None).tolist() == b.where(b.notna(), None).tolist(), col
    np.testing.assert_array_equal(want.geometry.x, got.geometry.x)
    np.testing.assert_array_equal(want.geometry.y, got.geometry.y)


def test_queries_match_brute_force(engine: Engine, city: Any) -> None:
    cams = synthetic_cameras(city)
    with Session(engine) as s, s.begin():
        load_cameras(s, cams, now=NOW)
    x, y = cams.geometry.x.to_numpy(), cams.geometry.y.to_numpy()
    so, n = np.quantile(y, [0.3, 0.9])
    # The west edge through a camera (edges are inclusive); the east edge a hair west of one
    # (PostGIS's index boxes are rounded outwards to single precision: it must stay out).
    w = float(x[np.argsort(x)[len(x) // 4]])
    e = float(np.nextafter(x[np.argsort(x)[(len(x) * 3) // 5]], -np.inf))
    box = [w, float(so), e, float(n)]
    in_box = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    assert (x == w).any() and (x == np.nextafter(e, np.inf)).any()
    cases: list[tuple[dict[str, Any], np.ndarray]] = [
        ({"bbox": box}, in_box),
        ({"source": "osm"}, (cams["source"] == "osm").to_numpy()),
        ({"surveillance_type": ["ALPR"]}, (cams["surveillance_type"] == "ALPR").to_numpy()),
        (
            {"bbox": box, "source": ["osm", "city-list"], "camera_type": "dome"},
            in_box & (cams["camera_type"] == "dome").to_numpy(),
        ),
    ]
    with Session(engine) as s:
        for filters, mask in cases:
            assert mask.sum() > 0, filters
            want = sorted(cams.loc[mask, "camera_id"])
            got = [c.camera_id for c in query_cameras(s, **filters)]
            assert got == want, filters
            assert count_cameras(s, **filters) == len(want)
        # Pages of the ordered result put back together are the whole result.
        pages = [
            [c.camera_id for c in query_cameras(s, source="osm", limit=50, offset=o)]
            for o in range(0, 2000, 50)
        ]
        osm_ids = sorted(cams.loc[cams["source"] == "osm", "camera_id"])
        assert [i for page in pages for i in page] == osm_ids


def test_replace_a_source_and_refuse_duplicates(engine: Engine, city: Any) -> None:
    cams = synthetic_cameras(city)
    osm = cams.loc[cams["source"] == "osm"]
    city_list = cams.loc[cams["source"] == "city-list"]
    with Session(engine) as s, s.begin():
        load_cameras(s, cams, now=NOW)
    # The same ids again are refused, naming them; nothing is written.
    with pytest.raises(Conflict, match="already stored") as err, Session(engine) as s, s.begin():
        load_cameras(s, osm.iloc[:3])
    assert err.value.status == 409
    # Re-importing OSM replaces the OSM cameras only.
    fresh = osm.iloc[:10].copy()
    fresh["camera_id"] = [f"osm/{i}" for i in range(10)]
    later = datetime(2026, 12, 2, tzinfo=UTC)
    with Session(engine) as s, s.begin():
        result = load_cameras(s, fresh, replace="sources", now=later)
    assert (result.loaded, result.deleted) == (10, len(osm))
    with Session(engine) as s:
        assert count_cameras(s) == len(city_list) + 10
        assert count_cameras(s, source="osm") == 10
        assert sorted(c.camera_id for c in query_cameras(s, source="osm")) == sorted(
            fresh["camera_id"]
        )
    with Session(engine) as s, s.begin():
        result = load_cameras(s, fresh.iloc[:2], replace="all", now=later)
    assert (result.loaded, result.deleted) == (2, len(city_list) + 10)


def test_bad_rows_are_counted_or_refused(sqlite_engine: Engine, city: Any) -> None:
    cams = synthetic_cameras(city).iloc[:20].copy()
    geoms = list(cams.geometry)
    geoms[3] = gpd.points_from_xy([np.nan], [np.nan])[0]
    cams = cams.set_geometry(gpd.GeoSeries(geoms, crs=cams.crs, index=cams.index))
    ledger = Ledger()
    with Session(sqlite_engine) as s, s.begin():
        result = load_cameras(s, cams, ledger=ledger, now=NOW)
    assert (result.loaded, result.excluded) == (19, 1)
    assert [(e.reason, e.count) for e in ledger] == [("empty point or non-finite coordinates", 1)]
    bad = synthetic_cameras(city).iloc[:5].copy()
    bad["camera_id"] = [f"b{i}" for i in range(5)]
    bad.loc[bad.index[1], "hfov_deg"] = 400.0
    with pytest.raises(Invalid, match="refuses") as err, Session(sqlite_engine) as s:
        load_cameras(s, bad)
    assert err.value.errors[0]["field"] == "hfov_deg" and "b1" in str(err.value.errors[0])
    with pytest.raises(ContractError, match="camera_id is not unique"), Session(sqlite_engine) as s:
        load_cameras(s, pd.concat([bad.iloc[:2], bad.iloc[:1]]))


def test_dump_checksum_and_date(
    engine: Engine, city: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cams = synthetic_cameras(city)
    with Session(engine) as s:
        empty = dump_cameras(s)
    assert empty.cameras == 0 and empty.date is None
    assert json.loads(empty.content)["features"] == []
    with Session(engine) as s, s.begin():
        load_cameras(s, cams, now=NOW)
    with Session(engine) as s:
        first, second = dump_cameras(s), dump_cameras(s)
    assert first.content == second.content
    assert first.sha256 == hashlib.sha256(first.content).hexdigest()
    assert first.date == NOW and first.filename == "cameras-2026-12-01.geojson"
    body = json.loads(first.content)
    assert body["cameras"] == len(cams) == len(body["features"])
    assert body["date"] == NOW.isoformat()
    ids = [f["properties"]["camera_id"] for f in body["features"]]
    assert ids == sorted(cams["camera_id"])
    back = gpd.GeoDataFrame.from_features(body["features"], crs="EPSG:4326")
    assert len(back) == len(cams)
    # Written to a file in small pages: the same bytes, the same checksum.
    monkeypatch.setattr("camcensus.db.cameras._DUMP_PAGE", 97)
    with Session(engine) as s:
        filed = write_cameras_dump(s, tmp_path / "d" / "cameras.geojson")
    assert filed.path is not None and filed.path.read_bytes() == first.content
    assert (filed.sha256, filed.size, filed.date, filed.content) == (
        first.sha256,
        len(first.content),
        NOW,
        b"",
    )
    assert sorted(p.name for p in filed.path.parent.iterdir()) == ["cameras.geojson"]
