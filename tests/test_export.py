"""Platform exports: Amnesty's raw Decode files that the census reads, and the tags as layers.

A platform database is built where every volunteer's tags are known; the export is read back
with the readers of :mod:`camcensus.io.decode` and aggregated, and each panorama's medians are
compared with a median computed here by brute force from the tags.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from camcensus._errors import InputError, Ledger
from camcensus.aggregate import aggregate_submissions
from camcensus.db import connect, upgrade
from camcensus.db.errors import NotFound
from camcensus.db.export import TAG_COLUMNS, export_decode, export_tags, tags_frame
from camcensus.db.models import Intersection, Panorama, Project, Submission, Tag, Volunteer
from camcensus.io.decode import (
    CATEGORIES,
    camera_tags_from_csv,
    panoramas_from_csv,
    raw_intersections_from_csv,
    submissions_from_csv,
)
from camcensus.io.formats import read_csv
from camcensus.report import OutputError

with warnings.catch_warnings():
    # The installed starlette asks for httpx2 (as in tests/test_web_api.py).
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# Text a spreadsheet would run, quotes, line breaks and markup, in every kind of free text.
HOSTILE_PANORAMA = "=cmd|' /C calc'!A0"
HOSTILE_AREA = '<script>alert("x")</script>, "quoted"\nnext line'
HOSTILE_LICENCE = "@SUM(1+1) \"CC BY\", 'x'"
HOSTILE_PSEUDONYMS = ("=cmd|'/C calc'!A0", '"><img src=x onerror=alert(1)>', "line\nbreak-x")


@dataclass
class Built:
    """A platform database and what the test put into it."""

    engine: Engine
    db_path: Path
    # submission id -> (panorama id, decoder id, kind, gold, problem)
    submissions: dict[str, tuple[str, str, str, bool, str | None]] = field(default_factory=dict)
    # tag rows as stored: (tag_id, submission_id, heading, pitch, fov, attachment, type,
    # current, deleted)
    tags: list[tuple[str, str, float, float, float, str, str, bool, bool]] = field(
        default_factory=list
    )
    public_ids: dict[str, str] = field(default_factory=dict)  # pseudonym -> public id
    panoramas: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (lon, lat)


_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))


def build_platform(folder: Path, *, seed: int = 7, url: str | None = None) -> Built:
    """Build a platform database with known tags (written through the ORM models).

    Project ``city``: panoramas P0..P4 plus a hostile id and a gold panorama. P0 is shared by
    two intersections; one intersection has no panorama; P4 has only two submissions. Three
    volunteers tag each other panorama; a fourth reports a problem; an expert and a model
    submit too; some tags are edited or deleted before submitting (those versions must never
    count). A second project ``other`` must never leak into ``city``'s export.
    """
    rng = np.random.default_rng(seed)

    def _id() -> str:
        return "".join(rng.choice(_ALPHABET, 16))

    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "platform.sqlite"
    url = url or f"sqlite:///{db_path}"
    upgrade(url)
    engine = connect(url)
    built = Built(engine, db_path)
    pano_ids = ["P0", "P1", "P2", "P3", "P4", HOSTILE_PANORAMA]
    with Session(engine) as s, s.begin():
        city = Project(name="city", title="City", licence="CC0", created_at=T0)
        other = Project(name="other", title="Other", licence="CC0", created_at=T0)
        s.add_all([city, other])
        s.flush()
        for i, pid in enumerate([*pano_ids, "GOLD", "ELSEWHERE"]):
            lon, lat = -73.95 + 0.001 * i, 40.70 + 0.0007 * i
            s.add(
                Panorama(
                    panorama_id=pid,
                    project_id=other.project_id if pid == "ELSEWHERE" else city.project_id,
                    lon=lon,
                    lat=lat,
                    heading_deg=float(rng.uniform(0, 360)),
                    captured="2021-05-03" if i % 2 else "2020-11",
                    source="folder",
                    source_ref=f"ref-{i}",
                    image_uri=f"img/{i}.jpg",
                    width_px=4096,
                    height_px=2048,
                    licence=HOSTILE_LICENCE,
                    republishable=i != 3,
                    gold=pid == "GOLD",
                    gold_answer="[]" if pid == "GOLD" else None,
                    created_at=T0,
                )
            )
            if pid not in ("GOLD", "ELSEWHERE"):
                built.panoramas[pid] = (lon, lat)
        s.flush()
        for iid, pid, area in (
            ("I-a", "P0", HOSTILE_AREA),
            ("I-b", "P0", "Brooklyn"),
            ("I-c", "P1", "Queens"),
            ("I-none", None, "Queens"),
            ("I-gold", "GOLD", "Queens"),
        ):
            s.add(
                Intersection(
                    intersection_id=iid,
                    project_id=city.project_id,
                    lon=-73.9,
                    lat=40.7,
                    panorama_id=pid,
                    area=area,
                    traffic_signal=iid == "I-a",
                )
            )
        volunteers = []
        for j, name in enumerate([*HOSTILE_PSEUDONYMS, "reporter-4"]):
            v = Volunteer(
                public_id=_id(),
                pseudonym=name,
                password_hash="x" * 40,
                role="volunteer",
                created_at=T0,
            )
            s.add(v)
            volunteers.append(v)
            built.public_ids[name] = v.public_id
            del j
        s.flush()

        def submission(pid: str, decoder: str, kind: str, *, minute: int, gold: bool = False,
                       problem: str | None = None, n_tags: int | None = None) -> None:  # fmt: skip
            sid = _id()
            s.add(
                Submission(
                    submission_id=sid,
                    panorama_id=pid,
                    decoder_id=decoder,
                    kind=kind,
                    started_at=T0 + timedelta(minutes=minute - 1),
                    submitted_at=T0 + timedelta(minutes=minute),
                    no_camera=n_tags == 0,
                    problem=problem,
                    problem_note='=HYPERLINK("http://x")' if problem else None,
                    gold=gold,
                )
            )
            s.flush()
            n = int(rng.integers(0, 5)) if n_tags is None else n_tags
            for _ in range(n):
                heading = float(rng.uniform(0, 360))
                pitch = float(rng.uniform(-10, 40))
                fov = float(rng.choice([22.5, 45.0, 90.0, 120.0]))
                att = str(rng.choice(["street", "building", "unknown"]))
                typ = str(rng.choice(["dome", "bullet", "unknown"]))
                # An earlier version moved or re-typed before submitting: a row, never counted.
                if rng.random() < 0.3:
                    old = _id()
                    s.add(_tag(old, sid, heading + 1 if heading < 358 else 1.0, pitch, fov,
                               "unknown", "unknown", current=False))  # fmt: skip
                    built.tags.append((old, sid, 0, 0, 0, "unknown", "unknown", False, False))
                tid = _id()
                s.add(_tag(tid, sid, heading, pitch, fov, att, typ, machine=kind == "model"))
                built.tags.append((tid, sid, heading, pitch, fov, att, typ, True, False))
            if rng.random() < 0.5:
                gone = _id()
                s.add(_tag(gone, sid, 10.0, 5.0, 60.0, "street", "dome", deleted=True))
                built.tags.append((gone, sid, 10.0, 5.0, 60.0, "street", "dome", True, True))
            built.submissions[sid] = (pid, decoder, kind, gold, problem)

        minute = 0
        for pid in pano_ids:
            takers = volunteers[:2] if pid == "P4" else volunteers[:3]
            for v in takers:
                minute += 1
                submission(pid, v.public_id, "volunteer", minute=minute)
        submission("P1", volunteers[3].public_id, "volunteer", minute=90, problem="indoor")
        submission("P2", "expert-" + _id(), "expert", minute=91)
        submission("P3", "model-yolo-1", "model", minute=92, n_tags=2)
        for v in volunteers[:3]:
            submission("GOLD", v.public_id, "volunteer", minute=93, gold=True)
        submission("ELSEWHERE", volunteers[0].public_id, "volunteer", minute=94, n_tags=3)
    return built


def _tag(tid: str, sid: str, heading: float, pitch: float, fov: float, att: str, typ: str, *,
         current: bool = True, deleted: bool = False, machine: bool = False) -> Tag:  # fmt: skip
    return Tag(
        tag_id=tid,
        submission_id=sid,
        heading_deg=heading,
        pitch_deg=pitch,
        fov_deg=fov,
        attachment=att,
        camera_type=typ,
        machine=machine,
        score=0.875 if machine else None,
        client_tag_id=tid[:8],
        deleted=deleted,
        current=current,
        created_at=T0,
    )


def _counted(built: Built) -> dict[str, tuple[str, str, str, bool, str | None]]:
    return {
        sid: v
        for sid, v in built.submissions.items()
        if v[2] == "volunteer" and not v[3] and v[4] is None and v[0] in built.panoramas
    }


def _truth_counts(built: Built, sid: str) -> dict[str, int]:
    """Brute force: one submission's counts from the tags that stood at submit time."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for _, s, _, _, _, att, typ, current, deleted in built.tags:
        if s != sid or not current or deleted:
            continue
        counts["n_cameras"] += 1
        counts[f"attached_{att}"] += 1
        if att == "street":
            counts[f"type_{typ}"] += 1
    return counts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_platform(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="module")
def exported(built: Built, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return export_decode(built.engine, project="city", out=tmp_path_factory.mktemp("x") / "ex")


def test_aggregating_the_export_gives_the_brute_force_medians(
    built: Built, exported: dict[str, Path]
) -> None:
    subs = submissions_from_csv(exported["counts"])
    inter = raw_intersections_from_csv(exported["intersections"])
    panos = panoramas_from_csv(exported["panorama_url"])
    ledger = Ledger()
    gdf = aggregate_submissions(subs, inter, panos, decoders=3, pick="first", ledger=ledger)
    counted = _counted(built)
    by_pano: dict[str, list[dict[str, int]]] = {}
    for sid, (pid, *_rest) in counted.items():
        by_pano.setdefault(pid, []).append(_truth_counts(built, sid))
    full = {pid: rows for pid, rows in by_pano.items() if len(rows) == 3}
    assert set(gdf["PanoramaId"]) == set(full) == {"P0", "P1", "P2", "P3", HOSTILE_PANORAMA}
    for row in gdf.itertuples(index=False):
        for c in CATEGORIES:
            expected = statistics.median(r[c] for r in full[row.PanoramaId])
            assert getattr(row, f"{c}_median") == expected, (row.PanoramaId, c)
        lon, lat = built.panoramas[row.PanoramaId]
        assert (row.geometry.x, row.geometry.y) == (lon, lat)
    # Only P4 (two submissions so far) is left out; no row is a duplicate of another.
    assert {e.reason: e.count for e in ledger if e.count} == {
        "panorama seen by fewer than 3 decoders": 1,
        "submission on a panorama with fewer than 3 decoders": 2,
    }
    # Each counted submission is one row; its counts are the brute-force counts.
    assert len(subs) == len(counted)
    for r in subs.itertuples(index=False):
        truth = _truth_counts(built, r.SubmissionId)
        assert {c: getattr(r, c) for c in CATEGORIES} == truth


def test_intersections_share_panoramas_and_every_exclusion_is_counted(
    built: Built, exported: dict[str, Path]
) -> None:
    inter = raw_intersections_from_csv(exported["intersections"])
    assert dict(zip(inter["IntersectionId"], inter["PanoramaId"], strict=True)) == {
        "I-a": "P0",
        "I-b": "P0",
        "I-c": "P1",
        # Panoramas no intersection points to are their own intersection.
        "P2": "P2",
        "P3": "P3",
        "P4": "P4",
        HOSTILE_PANORAMA: HOSTILE_PANORAMA,
    }
    assert inter.set_index("IntersectionId").loc["I-a", "Borough"] == HOSTILE_AREA
    assert set(inter["ImageDate"]) == {"2020-11", "2021-05"}
    subs = submissions_from_csv(exported["counts"])
    p0 = {sid for sid, v in built.submissions.items() if v[0] == "P0"}
    assert set(subs.loc[subs["SubmissionId"].isin(p0), "IntersectionId"]) == {"I-a"}
    excluded = read_csv(exported["excluded"], dtype=str)
    reasons = excluded.groupby(["what", "reason"]).size().to_dict()
    assert reasons == {
        ("intersection", "no panorama chosen"): 1,
        ("intersection", "its panorama is gold"): 1,
        ("panorama", "gold panorama (known answers, never counted)"): 1,
        ("submission", "reported a problem: indoor"): 1,
        ("submission", "expert submission (only volunteers' submissions are counted)"): 1,
        ("submission", "model submission (only volunteers' submissions are counted)"): 1,
        ("submission", "gold submission (known answers, never counted)"): 3,
    }
    readme = exported["readme"].read_text(encoding="utf-8")
    assert "- 3 submission(s): gold submission (known answers, never counted)" in readme
    assert "Left out (9 in all" in readme
    # The other project's panorama and submission are nowhere.
    for path in exported.values():
        assert "ELSEWHERE" not in path.read_text(encoding="utf-8")


def test_cameras_are_the_current_tags_with_amnestys_labels(
    built: Built, exported: dict[str, Path]
) -> None:
    cams = camera_tags_from_csv(exported["cameras"])
    counted = _counted(built)
    truth = {t[0]: t for t in built.tags if t[1] in counted and t[7] and not t[8]}
    assert sorted(cams["Id"]) == sorted(truth)
    labels = {"street": "street_light/traffic_signal/road_sign", "building": "building"}
    for r in cams.to_dict("records"):
        _, sid, heading, pitch, fov, att, typ, _, _ = truth[r["Id"]]
        assert r["SubmissionId"] == sid
        assert r["DecoderId"] == counted[sid][1]
        assert r["Pov.heading"] == heading and r["Pov.pitch"] == pitch
        assert float(r["fov_deg"]) == fov  # extra columns come back as text
        assert r["Pov.zoom"] == pytest.approx(math.log2(180 / fov), abs=1e-6)
        assert r["Attached"] == labels.get(att, "unknown")
        assert r["Type"] == (typ if att == "street" else "")
    panos = panoramas_from_csv(exported["panorama_url"])
    assert len(panos) == 6
    raw = read_csv(exported["panorama_url"], dtype={"PanoramaId": str})
    assert set(raw["Licence"]) == {HOSTILE_LICENCE}
    assert raw.set_index("PanoramaId")["Republishable"].to_dict()["P3"] == np.False_


def test_exports_carry_public_ids_never_pseudonyms_and_neutralise_formulas(
    built: Built, exported: dict[str, Path], tmp_path: Path
) -> None:
    tag_files = [
        export_tags(built.engine, project="city", out=tmp_path / f"t.{f}", format=f)
        for f in ("csv", "geojson")
    ]
    for path in [*exported.values(), *tag_files]:
        text = path.read_text(encoding="utf-8")
        for name in HOSTILE_PSEUDONYMS:
            assert name not in text
        assert "HYPERLINK" not in text  # problem notes are not exported
    decoders = set(submissions_from_csv(exported["counts"])["DecoderId"])
    assert decoders == {built.public_ids[n] for n in HOSTILE_PSEUDONYMS}
    # No cell of any CSV starts with what a spreadsheet would run.
    for path in [p for p in [*exported.values(), *tag_files] if p.suffix == ".csv"]:
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.lstrip().startswith(("=", "+", "@")), (path.name, cell)
                    assert not (cell.startswith("-") and "|" in cell), (path.name, cell)
    assert "'=cmd|" in exported["counts"].read_text(encoding="utf-8")


def test_tags_round_trip_equal_in_geojson_geopackage_and_csv(built: Built, tmp_path: Path) -> None:
    frame = tags_frame(built.engine, project="city")
    in_city = {sid for sid, v in built.submissions.items() if v[0] != "ELSEWHERE"}
    current = {t[0] for t in built.tags if t[1] in in_city and t[7] and not t[8]}
    assert set(frame["tag_id"]) == current
    assert set(frame["submission_kind"]) == {"volunteer", "expert", "model"}
    assert frame.loc[frame["submission_kind"] == "model", "machine"].all()
    assert frame.loc[frame["submission_kind"] == "model", "score"].eq(0.875).all()
    want = pd.DataFrame(frame.drop(columns="geometry")).set_index("tag_id").sort_index()

    gj = json.loads(
        export_tags(
            built.engine, project="city", out=tmp_path / "t.geojson", format="geojson"
        ).read_text(encoding="utf-8")
    )
    rows = []
    for f in gj["features"]:
        assert f["geometry"]["type"] == "Point"
        rows.append({**f["properties"], "lon": f["geometry"]["coordinates"][0],
                     "lat": f["geometry"]["coordinates"][1]})  # fmt: skip
    got_gj = pd.DataFrame(rows).set_index("tag_id").sort_index()

    gpkg = export_tags(built.engine, project="city", out=tmp_path / "t.gpkg", format="gpkg")
    g = gpd.read_file(gpkg, layer="tags")
    assert g.crs.to_epsg() == 4326
    got_gpkg = pd.DataFrame(g.assign(lon=g.geometry.x, lat=g.geometry.y).drop(columns="geometry"))
    got_gpkg = got_gpkg.set_index("tag_id").sort_index()

    flat = export_tags(built.engine, project="city", out=tmp_path / "t.csv", format="csv")
    got_csv = read_csv(flat, dtype=str, keep_default_na=False).set_index("tag_id").sort_index()
    for cell in got_csv.to_numpy().ravel():
        assert not str(cell).startswith(("{", "[")), cell

    for c in [*TAG_COLUMNS[1:], "lon", "lat"]:
        expected = [_plain(v) for v in want[c]]
        assert [_plain(v) for v in got_gj[c]] == expected, ("geojson", c)
        assert [_plain(v) for v in got_gpkg[c]] == expected, ("gpkg", c)
        assert [_plain(_from_text(v, want[c])) for v in got_csv[c]] == expected, ("csv", c)


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.floating | float):
        return float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _from_text(text: str, like: pd.Series) -> Any:
    if text == "":
        return None
    if like.dtype == bool:
        return text == "True"
    if like.dtype.kind == "f":
        return float(text)
    if like.dtype.kind == "i":
        return int(text)
    return text


def test_refuses_to_overwrite_or_to_export_what_is_not_there(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "ex"
    export_decode(built.engine, project="city", out=out)
    first = (out / "counts.csv").read_bytes()
    with pytest.raises(OutputError, match="already holds an export"):
        export_decode(built.engine, project="city", out=out)
    export_decode(built.engine, project="city", out=out, force=True)
    assert (out / "counts.csv").read_bytes() == first
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputError, match="does not write"):
        export_decode(built.engine, project="city", out=out, force=True)
    assert (out / "mine.txt").read_text() == "keep me"
    with pytest.raises(OutputError, match="database"):
        export_decode(built.engine, project="city", out=built.db_path.parent, force=True)
    with pytest.raises(OutputError, match="database"):
        export_tags(built.engine, out=built.db_path, format="csv", force=True)
    tags = tmp_path / "tags.geojson"
    tags.write_text("mine")
    with pytest.raises(OutputError, match="already exists"):
        export_tags(built.engine, out=tags, format="geojson")
    assert tags.read_text() == "mine"
    with pytest.raises(NotFound, match="nope"):
        export_decode(built.engine, project="nope", out=tmp_path / "n")
    assert not (tmp_path / "n").exists()
    with pytest.raises(ValueError, match="--format"):
        export_tags(built.engine, out=tmp_path / "t.kml", format="kml")  # type: ignore[arg-type]
    missing = connect(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    with pytest.raises(InputError, match="no such database file"):
        export_decode(missing, out=tmp_path / "m")
    assert not (tmp_path / "missing.sqlite").exists()
    # No temporary folder or file is left beside the outputs.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ex", "tags.geojson"]


def test_an_empty_project_exports_headers_only(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'p.sqlite'}")
    engine = connect(f"sqlite:///{tmp_path / 'p.sqlite'}")
    with Session(engine) as s, s.begin():
        s.add(Project(name="empty", title="Empty", licence="CC0", created_at=T0))
    paths = export_decode(engine, project="empty", out=tmp_path / "ex")
    header = paths["counts"].read_text(encoding="utf-8").splitlines()
    assert header[0].split(",")[5:] == list(CATEGORIES) and len(header) == 1
    for fmt in ("geojson", "gpkg", "csv"):
        path = export_tags(engine, project="empty", out=tmp_path / f"t.{fmt}", format=fmt)
        assert path.stat().st_size > 0
    assert json.loads((tmp_path / "t.geojson").read_text())["features"] == []
    engine.dispose()


@pytest.mark.postgis
def test_postgresql_exports_the_same_bytes_as_sqlite(
    built: Built, exported: dict[str, Path], postgis_fresh_url: str, tmp_path: Path
) -> None:
    on_pg = build_platform(tmp_path / "pg", url=postgis_fresh_url)
    try:
        paths = export_decode(on_pg.engine, project="city", out=tmp_path / "ex")
        for key, path in paths.items():
            assert path.read_bytes() == exported[key].read_bytes(), key
        pg_tags = export_tags(on_pg.engine, out=tmp_path / "pg.geojson", format="geojson")
        lite_tags = export_tags(built.engine, out=tmp_path / "lite.geojson", format="geojson")
        assert pg_tags.read_bytes() == lite_tags.read_bytes()
    finally:
        on_pg.engine.dispose()


def test_a_census_collected_through_the_task_library(tmp_path: Path) -> None:
    """create_project, next_task and submit (edits, deletions, a problem report), then export
    and aggregate: each panorama's medians equal the brute-force medians of the tags that
    stood at submit time."""
    from camcensus.db.projects import create_project
    from camcensus.db.tasks import TagIn, next_task, submit

    rng = np.random.default_rng(11)
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    upgrade(url)
    engine = connect(url)
    pano_ids = [f"pano-{i}" for i in range(7)]
    panoramas = pd.DataFrame(
        {
            "panorama_id": pano_ids,
            "lon": [-73.95 + 0.001 * i for i in range(7)],
            "lat": [40.7 + 0.001 * i for i in range(7)],
            "heading_deg": 90.0,
            "captured": "2022-03",
            "source": "folder",
            "image_uri": [f"img/{p}.jpg" for p in pano_ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC BY-SA 4.0",
        }
    )
    intersections = pd.DataFrame(
        {
            "intersection_id": ["X1", "X2", "X3"],
            "lon": [-73.95, -73.9501, -73.949],
            "lat": [40.7, 40.7001, 40.701],
            "panorama_id": ["pano-0", "pano-0", "pano-1"],
            "area": ["Bronx", "Bronx", "Queens"],
        }
    )
    with Session(engine) as s, s.begin():
        create_project(s, name="lib", title="Library", panoramas=panoramas,
                       intersections=intersections, licence="CC0", now=T0)  # fmt: skip
        people = [
            Volunteer(
                public_id=f"pub-{j}",
                pseudonym=f"=vol{j}",
                password_hash="x" * 40,
                role="volunteer",
                created_at=T0,
            )
            for j in range(5)
        ]
        s.add_all(people)
        s.flush()
        ids = [v.volunteer_id for v in people]
    standing: dict[str, list[TagIn]] = {}  # submission id -> tags that stood
    panorama_of: dict[str, str] = {}
    problems: set[str] = set()
    minute = 0
    for vid in ids:
        while True:
            minute += 1
            now = T0 + timedelta(minutes=minute)
            with Session(engine) as s, s.begin():
                task = next_task(s, project="lib", volunteer_id=vid, now=now)
                if task is None:
                    break
                versions: list[TagIn] = []
                for n in range(int(rng.integers(0, 5))):
                    first = TagIn(
                        client_id=f"c{n}",
                        heading_deg=float(rng.uniform(0, 359)),
                        pitch_deg=float(rng.uniform(-5, 30)),
                        fov_deg=float(rng.choice([30.0, 60.0, 90.0])),
                        attachment=str(rng.choice(["street", "building", "unknown"])),
                        camera_type=str(rng.choice(["dome", "bullet", "unknown"])),
                    )
                    versions.append(first)
                    edit = rng.random()
                    if edit < 0.25:  # re-typed: the edit stands, the first version not
                        versions.append(
                            TagIn(
                                **{
                                    **first.__dict__,
                                    "client_id": f"c{n}b",
                                    "attachment": "street",
                                    "camera_type": "dome",
                                    "replaces": f"c{n}",
                                }
                            )
                        )
                    elif edit < 0.4:  # deleted before submitting
                        versions.append(
                            TagIn(
                                **{
                                    **first.__dict__,
                                    "client_id": f"c{n}d",
                                    "replaces": f"c{n}",
                                    "deleted": True,
                                }
                            )
                        )
                replaced = {t.replaces for t in versions if t.replaces}
                stood = [t for t in versions if t.client_id not in replaced and not t.deleted]
                report = vid == ids[0] and not problems
                result = submit(
                    s,
                    assignment_id=task.assignment_id,
                    volunteer_id=vid,
                    tags=versions,
                    no_camera=not stood,
                    problem="wrong_place" if report else None,
                    problem_note="<b>=1+1</b>" if report else None,
                    now=now,
                )
                panorama_of[result.submission_id] = task.panorama_id
                if report:
                    problems.add(result.submission_id)
                else:
                    standing[result.submission_id] = stood
    paths = export_decode(engine, project="lib", out=tmp_path / "ex")
    subs = submissions_from_csv(paths["counts"])
    assert set(subs["SubmissionId"]) == set(standing)
    assert set(subs["DecoderId"]) <= {f"pub-{j}" for j in range(5)}
    excluded = read_csv(paths["excluded"], dtype=str)
    assert list(excluded["id"]) == sorted(problems)
    gdf = aggregate_submissions(
        subs,
        raw_intersections_from_csv(paths["intersections"]),
        panoramas_from_csv(paths["panorama_url"]),
        decoders=3,
        pick="first",
    )
    by_pano: dict[str, list[dict[str, int]]] = {}
    for sid in sorted(standing, key=lambda x: list(subs["SubmissionId"]).index(x)):
        counts = dict.fromkeys(CATEGORIES, 0)
        for t in standing[sid]:
            counts["n_cameras"] += 1
            counts[f"attached_{t.attachment}"] += 1
            if t.attachment == "street":
                counts[f"type_{t.camera_type}"] += 1
        by_pano.setdefault(panorama_of[sid], []).append(counts)
    assert all(len(rows) <= 3 for rows in by_pano.values())
    full = {p: rows for p, rows in by_pano.items() if len(rows) == 3}
    assert set(gdf["PanoramaId"]) == set(full) and len(full) >= 6
    for row in gdf.to_dict("records"):
        for c in CATEGORIES:
            assert row[f"{c}_median"] == statistics.median(r[c] for r in full[row["PanoramaId"]])
    assert set(gdf.loc[gdf["PanoramaId"] == "pano-0", "BoroName"]) == {"Bronx"}
    engine.dispose()


def test_a_problem_panorama_is_retired_and_its_answers_left_out(tmp_path: Path) -> None:
    """k = 3: one volunteer tags, two report a problem -> the panorama is retired as a problem
    panorama; its answer is not counted and excluded.csv says why."""
    from camcensus.db.projects import create_project, project_progress
    from camcensus.db.tasks import TagIn, next_task, submit

    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    upgrade(url)
    engine = connect(url)
    ids = ["bad", "good"]
    panoramas = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": [-73.95, -73.94],
            "lat": [40.7, 40.7],
            "heading_deg": 0.0,
            "captured": "2022-03",
            "source": "folder",
            "image_uri": [f"img/{p}.jpg" for p in ids],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC0",
        }
    )
    with Session(engine) as s, s.begin():
        create_project(s, name="p", title="P", panoramas=panoramas, licence="CC0", now=T0)
        people = [
            Volunteer(public_id=f"pub-{j}", pseudonym=f"vol{j}", password_hash="x" * 40,
                      role="volunteer", created_at=T0)
            for j in range(4)
        ]  # fmt: skip
        s.add_all(people)
        s.flush()
        vids = [v.volunteer_id for v in people]
    answered: dict[str, str] = {}
    tag = TagIn(client_id="c", heading_deg=10.0, pitch_deg=5.0, fov_deg=60.0,
                attachment="street", camera_type="dome")  # fmt: skip
    minute = 0
    for j, vid in enumerate(vids):
        while True:
            minute += 1
            now = T0 + timedelta(minutes=minute)
            with Session(engine) as s, s.begin():
                task = next_task(s, project="p", volunteer_id=vid, now=now)
                if task is None:
                    break
                report = task.panorama_id == "bad" and j > 0
                result = submit(s, assignment_id=task.assignment_id, volunteer_id=vid,
                                tags=[] if report else [tag], no_camera=report,
                                problem="no_image" if report else None, now=now)  # fmt: skip
                answered[result.submission_id] = task.panorama_id + (":problem" if report else "")
    with Session(engine) as s:
        progress = project_progress(s, "p")
    assert progress["problem"] == 1 and progress["done"] == 1
    assert sorted(answered.values()).count("bad:problem") == 2
    paths = export_decode(engine, project="p", out=tmp_path / "ex")
    subs = submissions_from_csv(paths["counts"])
    assert sorted(answered[s] for s in subs["SubmissionId"]) == ["good"] * 3
    excluded = read_csv(paths["excluded"], dtype=str).set_index("id")["reason"]
    bad_answer = next(s for s, p in answered.items() if p == "bad")
    assert "retired as a problem panorama (2 of its 3" in excluded[bad_answer]
    assert "retired as a problem panorama" in paths["readme"].read_text()
    engine.dispose()


def test_a_panorama_the_adaptive_rule_completed_is_not_retired(tmp_path: Path) -> None:
    """k = 3, rule stop_unanimous: two volunteers agree (target 2, done), then two tasks taken
    before the rule stopped come back as problem reports. With the project's k the panorama
    would read as retired (2 of 3 reported a problem) and its answers left out; it is done
    with its two answers, and both are exported."""
    from sqlalchemy import update

    from camcensus.db.projects import create_project, project_progress
    from camcensus.db.tasks import TagIn, next_task, submit

    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    upgrade(url)
    engine = connect(url)
    panoramas = pd.DataFrame(
        {
            "panorama_id": ["only"],
            "lon": [-73.95],
            "lat": [40.7],
            "heading_deg": 0.0,
            "captured": "2022-03",
            "source": "folder",
            "image_uri": ["img/only.jpg"],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "CC0",
        }
    )
    with Session(engine) as s, s.begin():
        create_project(s, name="p", title="P", panoramas=panoramas, licence="CC0", now=T0)
        s.execute(update(Project).where(Project.name == "p").values(adaptive_rule="stop_unanimous"))
        people = [
            Volunteer(public_id=f"pub-{j}", pseudonym=f"vol{j}", password_hash="x" * 40,
                      role="volunteer", created_at=T0)
            for j in range(4)
        ]  # fmt: skip
        s.add_all(people)
        s.flush()
        vids = [v.volunteer_id for v in people]
    tag = TagIn(client_id="c", heading_deg=10.0, pitch_deg=5.0, fov_deg=60.0,
                attachment="street", camera_type="dome")  # fmt: skip
    tasks = {}
    for j, vid in enumerate(vids[:3]):
        with Session(engine) as s, s.begin():
            task = next_task(s, project="p", volunteer_id=vid, now=T0 + timedelta(minutes=j))
            assert task is not None
            tasks[vid] = task.assignment_id

    def answer(vid: int, minute: int, *, problem: bool) -> str:
        with Session(engine) as s, s.begin():
            result = submit(s, assignment_id=tasks[vid], volunteer_id=vid,
                            tags=[] if problem else [tag], no_camera=problem,
                            problem="no_image" if problem else None,
                            now=T0 + timedelta(minutes=minute))  # fmt: skip
            return str(result.submission_id)

    answer(vids[2], 5, problem=True)  # frees a slot: the fourth volunteer takes it
    with Session(engine) as s, s.begin():
        task = next_task(s, project="p", volunteer_id=vids[3], now=T0 + timedelta(minutes=6))
        assert task is not None
        tasks[vids[3]] = task.assignment_id
    agreed = {answer(vids[0], 7, problem=False), answer(vids[1], 8, problem=False)}
    answer(vids[3], 9, problem=True)
    with Session(engine) as s:
        row = s.get(Panorama, "only")
        assert row is not None and (row.k_target, row.n_done, row.n_problem) == (2, 2, 2)
        progress = project_progress(s, "p")
    assert (progress["done"], progress["problem"]) == (1, 0)
    paths = export_decode(engine, project="p", out=tmp_path / "ex")
    subs = submissions_from_csv(paths["counts"])
    assert set(subs["SubmissionId"]) == agreed
    excluded = read_csv(paths["excluded"], dtype=str)
    assert not excluded["reason"].str.contains("retired").any()
    engine.dispose()


# --------------------------------------------------------------------------- machine tags


def add_model_detections(
    engine: Engine,
    panorama_id: str,
    detections: list[tuple[str, float, float, float]],
    verdicts: dict[str, list[str]],
    *,
    model_id: str = "model-hm-1",
    voters: list[int] | None = None,
) -> None:
    """Store a detector's detections on one panorama as the shared interface says.

    One submission of kind ``model`` and one machine tag per ``(tag_id, heading, pitch,
    score)``; ``verdicts`` gives each tag's volunteers' answers (``agree`` / ``disagree`` /
    ``unsure``), one validation row per answer, from distinct volunteers.
    """
    from camcensus.db.models import Validation

    with Session(engine) as s, s.begin():
        if voters is None:
            voters = [int(v) for v in s.scalars(select_volunteers()).all()]
        sid = f"{model_id}/{panorama_id}"
        s.add(
            Submission(
                submission_id=sid,
                panorama_id=panorama_id,
                decoder_id=model_id,
                kind="model",
                submitted_at=T0 + timedelta(hours=5),
                no_camera=not detections,
            )
        )
        s.flush()
        for tid, heading, pitch, score in detections:
            s.add(
                Tag(
                    tag_id=tid,
                    submission_id=sid,
                    heading_deg=heading,
                    pitch_deg=pitch,
                    fov_deg=60.0,
                    attachment="unknown",
                    camera_type="unknown",
                    machine=True,
                    score=score,
                    created_at=T0 + timedelta(hours=5),
                )
            )
        s.flush()
        for tid, answers in verdicts.items():
            assert len(answers) <= len(voters), "one verdict per volunteer"
            for k, (answer, volunteer) in enumerate(zip(answers, voters, strict=False)):
                s.add(
                    Validation(
                        validation_id=f"{tid}/v{k}",
                        tag_id=tid,
                        volunteer_id=volunteer,
                        answer=answer,
                        created_at=T0 + timedelta(hours=6, minutes=k),
                    )
                )


def select_volunteers() -> Any:
    from sqlalchemy import select

    return select(Volunteer.volunteer_id).order_by(Volunteer.volunteer_id)


def test_a_model_submission_changes_none_of_the_four_decode_files(tmp_path: Path) -> None:
    built = build_platform(tmp_path / "db", seed=11)
    before = export_decode(built.engine, project="city", out=tmp_path / "before")
    add_model_detections(
        built.engine,
        "P1",
        [("m-1", 10.0, 5.0, 0.9), ("m-2", 200.0, 12.0, 0.4)],
        {"m-1": ["agree", "agree"], "m-2": ["disagree", "disagree", "unsure"]},
    )
    after = export_decode(built.engine, project="city", out=tmp_path / "after")
    for key in ("counts", "intersections", "panorama_url", "cameras"):
        assert before[key].read_bytes() == after[key].read_bytes(), key
    excluded = read_csv(after["excluded"])
    model = excluded[excluded["id"] == "model-hm-1/P1"]
    assert model["reason"].tolist() == [
        "model submission (only volunteers' submissions are counted)"
    ]
    # The medians and agreement of the census read from it are the volunteers' only.
    subs = submissions_from_csv(after["counts"])
    assert "model-hm-1" not in set(subs["DecoderId"].astype(str))
    built.engine.dispose()


def test_machine_tags_carry_their_verdicts_in_every_tag_format(tmp_path: Path) -> None:
    from camcensus.db.verify import verify_status

    built = build_platform(tmp_path / "db", seed=12)
    verdicts = {
        "m-yes": ["agree", "agree", "unsure"],
        "m-no": ["disagree", "agree", "disagree", "disagree"],
        "m-open": ["agree", "disagree", "unsure"],
    }
    add_model_detections(
        built.engine,
        "P2",
        [("m-yes", 10.0, 5.0, 0.91), ("m-no", 100.0, 8.0, 0.35), ("m-open", 250.0, 3.0, 0.5),
         ("m-none", 300.0, 1.0, 0.25)],
        verdicts,
    )  # fmt: skip
    frame = tags_frame(built.engine, project="city").set_index("tag_id")
    # Brute force: the counts of each answer and the margin rule's verdict.
    for tid in ("m-yes", "m-no", "m-open", "m-none"):
        answers = verdicts.get(tid, [])
        row = frame.loc[tid]
        agree, disagree = answers.count("agree"), answers.count("disagree")
        assert bool(row["machine"])
        assert int(row["verify_agree"]) == agree
        assert int(row["verify_disagree"]) == disagree
        assert int(row["verify_unsure"]) == answers.count("unsure")
        assert row["verify_status"] == verify_status(agree, disagree)
    assert frame.loc["m-yes", "verify_status"] == "confirmed"
    assert frame.loc["m-no", "verify_status"] == "rejected"
    assert frame.loc["m-open", "verify_status"] == "open"
    assert frame.loc["m-none", "verify_status"] == "open"
    assert frame.loc["m-yes", "score"] == pytest.approx(0.91)
    human = frame[~frame["machine"].astype(bool)]
    for c in ("verify_agree", "verify_disagree", "verify_unsure", "verify_status"):
        assert human[c].isna().all(), c

    flat = export_tags(built.engine, project="city", out=tmp_path / "t.csv", format="csv")
    got = read_csv(flat, dtype=str, keep_default_na=False).set_index("tag_id")
    assert got.loc["m-no", ["verify_agree", "verify_disagree", "verify_unsure",
                            "verify_status"]].tolist() == ["1", "3", "0", "rejected"]  # fmt: skip
    assert (got.loc[human.index, "verify_status"] == "").all()
    gj = json.loads(
        export_tags(
            built.engine, project="city", out=tmp_path / "t.geojson", format="geojson"
        ).read_text(encoding="utf-8")
    )
    props = {f["id"]: f["properties"] for f in gj["features"]}
    assert props["m-yes"]["verify_agree"] == 2 and props["m-yes"]["verify_status"] == "confirmed"
    assert props[str(human.index[0])]["verify_status"] is None
    g = gpd.read_file(
        export_tags(built.engine, project="city", out=tmp_path / "t.gpkg", format="gpkg"),
        layer="tags",
    ).set_index("tag_id")
    assert g.loc["m-open", "verify_status"] == "open" and int(g.loc["m-open", "verify_unsure"]) == 1
    built.engine.dispose()


def test_the_data_api_serves_the_export_s_verify_fields(tmp_path: Path) -> None:
    from sqlalchemy import update

    from camcensus.web.app import create_app

    built = build_platform(tmp_path / "db", seed=13)
    add_model_detections(
        built.engine,
        "P0",
        [("m-yes", 10.0, 5.0, 0.91), ("m-no", 100.0, 8.0, 0.35), ("m-new", 200.0, 8.0, 0.5)],
        {"m-yes": ["agree", "agree"], "m-no": ["disagree", "unsure", "disagree"]},
    )
    with Session(built.engine) as s, s.begin():
        # Answers are public once a panorama is done.
        s.execute(update(Panorama).values(n_done=3, n_live=3))
    frame = tags_frame(built.engine, project="city").set_index("tag_id")
    app = create_app(built.engine, media_root=tmp_path / "media")
    with TestClient(app) as client:
        got = client.get("/api/tags", params={"project": "city", "limit": 5000})
    assert got.status_code == 200, got.text
    props = {f["properties"]["tag_id"]: f["properties"] for f in got.json()["features"]}
    assert {"m-yes", "m-no", "m-new"} <= set(props)
    assert len(props) > 10
    fields = ["machine", "score", "verify_agree", "verify_disagree", "verify_unsure",
              "verify_status"]  # fmt: skip
    for tid, p in props.items():
        want = [_plain(v) for v in frame.loc[tid, fields]]
        assert [_plain(p[c]) for c in fields] == want, tid
    assert props["m-no"]["verify_status"] == "rejected" and props["m-no"]["verify_unsure"] == 1
    assert props["m-new"]["verify_status"] == "open" and props["m-new"]["verify_agree"] == 0
    built.engine.dispose()
