"""Exports of the platform database: Amnesty's raw Decode files, and the tags as GIS layers.

:func:`export_decode` writes the four files of Amnesty's raw export (``counts.csv``,
``intersections.csv``, ``panorama_url.csv``, ``cameras.csv``) so that ``camcensus aggregate``
and ``camcensus reproduce`` read a census collected on the platform exactly as they read
Amnesty's; what it leaves out is counted, with the reason, in ``excluded.csv`` and
``README.txt`` beside them. :func:`export_tags` writes every current tag (one click = one ray)
as GeoJSON, GeoPackage or a flat CSV (one value per cell, never JSON in a cell).

Exports carry the volunteers' random ``public_id`` (the ``decoder_id`` of their submissions),
never a pseudonym. Every CSV is spreadsheet-safe (:func:`camcensus.io.formats.write_csv`: text
that a spreadsheet would run as a formula is written behind one ``'``, which the readers of
:mod:`camcensus.io.decode` remove again). Files are written into a temporary folder (or file)
beside the target and renamed into place, so a reader never sees half an export.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from camcensus.io.decode import CATEGORIES

if TYPE_CHECKING:
    import geopandas as gpd
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

__all__ = [
    "DECODE_FILES",
    "REVIEW_COLUMNS",
    "TAG_COLUMNS",
    "TAG_FORMATS",
    "TagFormat",
    "export_decode",
    "export_reviews",
    "export_tags",
    "tags_frame",
    "verify_columns",
]

TagFormat = Literal["geojson", "gpkg", "csv"]
#: Formats :func:`export_tags` writes.
TAG_FORMATS: tuple[TagFormat, ...] = ("geojson", "gpkg", "csv")

#: Files :func:`export_decode` writes, by the key of the dict it returns.
DECODE_FILES = {
    "counts": "counts.csv",
    "intersections": "intersections.csv",
    "panorama_url": "panorama_url.csv",
    "cameras": "cameras.csv",
    "reviews": "reviews.csv",
    "excluded": "excluded.csv",
    "readme": "README.txt",
}

#: Properties of each tag in :func:`export_tags` (and columns of :func:`tags_frame`).
TAG_COLUMNS = (
    "tag_id",
    "submission_id",
    "panorama_id",
    "decoder_id",
    "submission_kind",
    "heading_deg",
    "pitch_deg",
    "fov_deg",
    "attachment",
    "camera_type",
    "machine",
    "score",
    "verify_agree",
    "verify_disagree",
    "verify_unsure",
    "verify_status",
    "clicked_at",
    "submitted_at",
    "no_camera",
    "problem",
    "gold",
    "captured",
    "source",
    "licence",
    "republishable",
)

# Amnesty's labels (its README: cameras.csv "Attached", "Type", "Title").
_ATTACHED = {
    "street": "street_light/traffic_signal/road_sign",
    "building": "building",
    "unknown": "unknown",
}
_TITLES = {
    ("street", "dome"): "Dome or PTZ camera on traffic signal, streetlight or pole",
    ("street", "bullet"): "Bullet camera on traffic signal, streetlight or pole",
    ("street", "unknown"): "Camera of unknown type on traffic signal, streetlight or pole",
    ("building", "dome"): "Camera on building",
    ("building", "bullet"): "Camera on building",
    ("building", "unknown"): "Camera on building",
    ("unknown", "dome"): "Camera attached to something unknown",
    ("unknown", "bullet"): "Camera attached to something unknown",
    ("unknown", "unknown"): "Camera attached to something unknown",
}
_COUNT_COLUMNS = CATEGORIES  # counts.csv columns, in Amnesty's order
#: The first columns of reviews.csv (then each expert's id and counts, ``meta``, the reference).
REVIEW_COLUMNS = (
    "PanoramaId",
    "ReviewId",
    "stratum",
    "inclusion_probability",
    "weight",
    "n_experts",
)
_GPKG_LAYER = "tags"


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Tables:
    """What an export reads from the database, one frame per table (project rows only)."""

    projects: pd.DataFrame
    panoramas: pd.DataFrame
    intersections: pd.DataFrame
    submissions: pd.DataFrame
    tags: pd.DataFrame
    #: Volunteers' verdicts on the current machine tags: ``tag_id``, ``agree``, ``disagree``,
    #: ``unsure`` (counts; a machine tag without verdicts has no row).
    verdicts: pd.DataFrame = field(default_factory=lambda: _no_verdicts())


_VERDICT_COLUMNS = ["tag_id", "agree", "disagree", "unsure"]


def _no_verdicts() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "tag_id" else "int64")
                         for c in _VERDICT_COLUMNS})  # fmt: skip


def _pivot_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Turn (tag_id, answer, n) rows into one row per tag with the three answers' counts."""
    if rows.empty:
        return _no_verdicts()
    wide = rows.pivot_table(index="tag_id", columns="answer", values="n", aggfunc="sum")
    wide = wide.reindex(columns=["agree", "disagree", "unsure"]).fillna(0).astype("int64")
    return wide.reset_index()[_VERDICT_COLUMNS].sort_values("tag_id").reset_index(drop=True)


def verify_columns(tags: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """Return the verify-task columns of each tag: verdict counts and status (machine tags).

    Parameters
    ----------
    tags
        ``tag_id`` and ``machine`` (bool) per tag.
    verdicts
        ``tag_id``, ``agree``, ``disagree``, ``unsure``: the volunteers' verdicts per machine
        tag (tags without a row have none).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``tags``: ``verify_agree``, ``verify_disagree``, ``verify_unsure``
        (nullable integers) and ``verify_status`` (:func:`camcensus.db.verify.verify_status`:
        ``confirmed`` | ``rejected`` | ``open``); all empty (missing) for human tags.
    """
    from camcensus.db.verify import verify_status

    machine = tags["machine"].astype(bool).to_numpy()
    v = verdicts.set_index("tag_id") if len(verdicts) else _no_verdicts().set_index("tag_id")
    out = pd.DataFrame(index=tags.index)
    for answer in ("agree", "disagree", "unsure"):
        n = tags["tag_id"].astype(str).map(v[answer]).fillna(0).astype("int64")
        out[f"verify_{answer}"] = n.where(machine).astype("Int64")
    status = [
        verify_status(int(a), int(d)) if m else None
        for a, d, m in zip(
            out["verify_agree"].fillna(0), out["verify_disagree"].fillna(0), machine, strict=True
        )
    ]
    out["verify_status"] = pd.Series(status, index=tags.index, dtype=object)
    return out


def _rows(session: Session, stmt: Any, columns: list[str]) -> pd.DataFrame:
    """Run ``stmt`` and return its rows as a frame with ``columns`` (also when empty)."""
    rows = session.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """Yield a read-only session that sees one consistent state of the database.

    SQLite: a deferred transaction (a WAL snapshot; writers are never blocked). PostgreSQL:
    ``REPEATABLE READ``, so all the tables are read at the same instant.
    """
    from camcensus.db.engine import session_factory

    bind = engine
    if engine.dialect.name == "postgresql":
        bind = engine.execution_options(isolation_level="REPEATABLE READ")
    with session_factory(bind, readonly=True)() as session, session.begin():
        yield session


def _project_ids(session: Session, project: str | None) -> pd.DataFrame:
    from sqlalchemy import select

    from camcensus.db.errors import NotFound
    from camcensus.db.models import Project

    stmt = select(Project.project_id, Project.name, Project.k, Project.licence)
    if project is not None:
        stmt = stmt.where(Project.name == project)
    frame = _rows(
        session, stmt.order_by(Project.project_id), ["project_id", "name", "k", "licence"]
    )
    if project is not None and frame.empty:
        names = session.execute(select(Project.name).order_by(Project.name)).scalars().all()
        known = ", ".join(repr(n) for n in names[:10]) or "none yet"
        raise NotFound(
            f"No project named {project!r} in this database (projects: {known}).",
            [{"field": "project", "message": "choose one of the database's projects"}],
        )
    return frame


def _load(engine: Engine, project: str | None) -> _Tables:
    """Read the project's panoramas, intersections, submissions and current tags."""
    from sqlalchemy import func, select

    from camcensus.db.models import Intersection, Panorama, Submission, Tag, Validation

    p_cols = ["panorama_id", "project_id", "lon", "lat", "heading_deg", "captured", "source",
              "source_ref", "licence", "republishable", "intersection_id", "gold", "n_done",
              "n_problem", "k_target"]  # fmt: skip
    i_cols = ["intersection_id", "project_id", "lon", "lat", "panorama_id", "area",
              "traffic_signal"]  # fmt: skip
    s_cols = ["submission_id", "panorama_id", "decoder_id", "kind", "started_at",
              "submitted_at", "no_camera", "problem", "gold"]  # fmt: skip
    t_cols = ["tag_id", "submission_id", "heading_deg", "pitch_deg", "fov_deg", "attachment",
              "camera_type", "machine", "score", "clicked_at", "created_at"]  # fmt: skip
    with _snapshot(engine) as session:
        projects = _project_ids(session, project)
        ids = [int(i) for i in projects["project_id"]]
        panoramas = _rows(
            session,
            select(*(getattr(Panorama, c) for c in p_cols)).where(Panorama.project_id.in_(ids)),
            p_cols,
        )
        intersections = _rows(
            session,
            select(*(getattr(Intersection, c) for c in i_cols)).where(
                Intersection.project_id.in_(ids)
            ),
            i_cols,
        )
        in_project = select(Panorama.panorama_id).where(Panorama.project_id.in_(ids))
        submissions = _rows(
            session,
            select(*(getattr(Submission, c) for c in s_cols)).where(
                Submission.panorama_id.in_(in_project)
            ),
            s_cols,
        )
        # Exports read only the version of each tag that stood at submit time.
        tags = _rows(
            session,
            select(*(getattr(Tag, c) for c in t_cols))
            .join(Submission, Submission.submission_id == Tag.submission_id)
            .where(Submission.panorama_id.in_(in_project), Tag.current, ~Tag.deleted),
            t_cols,
        )
        # Verdicts on the standing machine tags (the verify task), counted per answer.
        verdicts = _rows(
            session,
            select(Validation.tag_id, Validation.answer, func.count())
            .join(Tag, Tag.tag_id == Validation.tag_id)
            .join(Submission, Submission.submission_id == Tag.submission_id)
            .where(Submission.panorama_id.in_(in_project), Tag.machine, Tag.current, ~Tag.deleted)
            .group_by(Validation.tag_id, Validation.answer),
            ["tag_id", "answer", "n"],
        )
    return _Tables(projects, panoramas, intersections, submissions, tags, _pivot_verdicts(verdicts))


# --------------------------------------------------------------------------- output safety


def _database_file(engine: Engine) -> Path | None:
    """Return the SQLite file of ``engine`` (None for other databases or in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).resolve()


def _check_database(engine: Engine) -> None:
    """Refuse a SQLite file that does not exist (connecting would create an empty one)."""
    from camcensus._errors import InputError, Problem

    path = _database_file(engine)
    if path is not None and not path.is_file():
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "no such database file",
                    "the platform's SQLite database (camcensus serve writes it)",
                    "pass --database sqlite:///path/to/camcensus.db (or set DATABASE_URL)",
                )
            ]
        )


def _database_inputs(engine: Engine) -> list[Path]:
    path = _database_file(engine)
    if path is None:
        return []
    return [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_folder(
    out: Path, engine: Engine, *, force: bool, files: Iterable[str] | None = None
) -> None:
    """Refuse an export folder that would overwrite the database or someone else's files.

    ``files`` are the names the export writes (default: the Decode export's); any other entry
    in an existing folder is someone's own file.
    """
    ours = set(DECODE_FILES.values() if files is None else files)
    from camcensus.report import OutputError

    target = out.resolve()
    for inp in _database_inputs(engine):
        if _is_within(inp, target):
            raise OutputError(
                out,
                f"the export folder holds the database {inp.name}, which the export would delete",
                "choose another --out folder; an export never overwrites its database",
            )
    if target.exists() and not target.is_dir():
        raise OutputError(
            out, "this is an existing file, not a folder", "choose a folder for --out"
        )
    if not target.is_dir():
        return
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    foreign = [e for e in entries if e not in ours]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise OutputError(
            out,
            f"the folder holds files an export does not write ({shown})",
            "choose a new or empty --out folder; an export replaces only an earlier export",
        )
    if not force:
        raise OutputError(
            out,
            "the folder already holds an export",
            "pass --force (force=True) to replace it, or choose another --out folder",
        )


def _check_file(out: Path, engine: Engine, *, force: bool) -> None:
    from camcensus.report import OutputError

    target = out.resolve()
    if any(target == inp for inp in _database_inputs(engine)):
        raise OutputError(
            out,
            "the output file is the database",
            "choose another --out file; an export never overwrites its database",
        )
    if target.is_dir():
        raise OutputError(out, "this is a folder, not a file", "give a file name for --out")
    if target.exists() and not force:
        raise OutputError(
            out,
            "the file already exists",
            "pass --force (force=True) to replace it, or choose another --out file",
        )


@contextmanager
def _replace_file(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; on success it replaces ``out`` in one rename."""
    from camcensus.report import OutputError

    target = out.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            out,
            f"its folder cannot be made ({exc.strerror or type(exc).__name__})",
            "choose an --out file in a place you can write to",
        ) from exc
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}"
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------- Decode export


def _iso(value: Any) -> str | None:
    """Return a time as ISO 8601 text (UTC), None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    return str(value.isoformat())


def _zoom(fov_deg: pd.Series) -> np.ndarray:
    """Return Street View's ``Pov.zoom`` for a horizontal field of view (zoom 0 = 180°)."""
    fov = fov_deg.to_numpy(dtype="float64")
    out: np.ndarray = np.round(np.log2(180.0 / fov), 6)
    return out


def _place_panoramas(
    panoramas: pd.DataFrame, intersections: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, list[tuple[str, str, str]]]:
    """Return intersections.csv's rows, each panorama's IntersectionId, and the exclusions.

    Intersections of the database keep their ids; a panorama no intersection points to
    becomes its own intersection (its ``intersection_id`` if set and free, else its
    ``panorama_id``) placed at the panorama. Gold panoramas (known answers, never counted)
    and intersections without a usable panorama are left out.
    """
    excluded: list[tuple[str, str, str]] = []
    gold = set(panoramas.loc[panoramas["gold"].astype(bool), "panorama_id"])
    pano = panoramas.loc[~panoramas["panorama_id"].isin(gold)].set_index("panorama_id")
    pano = pano.sort_index()
    rows = []
    records: list[dict[Any, Any]] = intersections.sort_values("intersection_id").to_dict("records")
    for r in records:
        pid = r["panorama_id"]
        if pid is None or (isinstance(pid, float) and math.isnan(pid)):
            excluded.append(("intersection", str(r["intersection_id"]), "no panorama chosen"))
            continue
        if pid in gold:
            excluded.append(("intersection", str(r["intersection_id"]), "its panorama is gold"))
            continue
        if pid not in pano.index:
            excluded.append(
                ("intersection", str(r["intersection_id"]), "its panorama is in another project")
            )
            continue
        rows.append(
            {
                "IntersectionId": str(r["intersection_id"]),
                "PanoramaId": str(pid),
                "Lat": float(r["lat"]),
                "Long": float(r["lon"]),
                "Borough": r["area"],
                "TrafficSignal": _signal(r["traffic_signal"]),
            }
        )
    used = {row["IntersectionId"] for row in rows}
    placed = {row["PanoramaId"] for row in rows}
    for pid, own, lon, lat in zip(
        pano.index, pano["intersection_id"], pano["lon"], pano["lat"], strict=True
    ):
        if pid in placed:
            continue
        candidates = [c for c in (own, pid, f"{pid}#panorama") if isinstance(c, str) and c]
        iid = next(c for c in candidates if c not in used)
        used.add(iid)
        rows.append(
            {
                "IntersectionId": iid,
                "PanoramaId": str(pid),
                "Lat": float(lat),
                "Long": float(lon),
                "Borough": None,
                "TrafficSignal": "",
            }
        )
    for pid in sorted(gold):
        excluded.append(("panorama", str(pid), "gold panorama (known answers, never counted)"))
    inter = pd.DataFrame(
        rows,
        columns=["IntersectionId", "PanoramaId", "Lat", "Long", "Borough", "TrafficSignal"],
    )
    captured = pano["captured"].astype(object)
    month = captured.map(lambda c: c[:7] if isinstance(c, str) and c else None)
    inter.insert(4, "ImageDate", inter["PanoramaId"].map(month))
    if inter["Borough"].isna().all():
        # No district known anywhere: leave the column out rather than write empty boroughs.
        inter = inter.drop(columns="Borough")
    # The first intersection (by id) of each panorama names its submissions.
    first = inter.sort_values("IntersectionId").drop_duplicates("PanoramaId")
    return inter, first.set_index("PanoramaId")["IntersectionId"], excluded


def _signal(value: Any) -> str:
    """Return Amnesty's ``TrafficSignal`` text: ``TrafficLight``, or empty (none or unknown)."""
    return "TrafficLight" if value is True or value == 1 else ""


def _retired(panoramas: pd.DataFrame, projects: pd.DataFrame) -> dict[str, str]:
    """Return ``{panorama_id: reason}`` of the panoramas retired as problem panoramas."""
    from camcensus.db.progress import panorama_status

    k_of = dict(zip(projects["project_id"].tolist(), projects["k"].tolist(), strict=True))
    out: dict[str, str] = {}
    for pid, project_id, n_done, n_problem, k_target in zip(
        panoramas["panorama_id"].tolist(),
        panoramas["project_id"].tolist(),
        panoramas["n_done"].tolist(),
        panoramas["n_problem"].tolist(),
        panoramas["k_target"].tolist(),
        strict=True,
    ):
        k = int(k_of[project_id])
        # A panorama the adaptive rule completed (k_target answers) is done, not retired.
        target = None if k_target is None or pd.isna(k_target) else int(k_target)
        if panorama_status(int(n_done), 0, int(n_problem), k, target) == "problem":
            out[str(pid)] = (
                f"its panorama was retired as a problem panorama ({int(n_problem)} of its "
                f"{k} volunteers reported a problem)"
            )
    return out


def _counted(
    submissions: pd.DataFrame,
    gold_panoramas: set[str],
    placed: set[str],
    retired: dict[str, str],
) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Return the submissions that count toward the census, and why each other one does not."""
    excluded: list[tuple[str, str, str]] = []
    keep = np.ones(len(submissions), dtype=bool)
    for i, s in enumerate(submissions.itertuples(index=False)):
        reason = None
        if s.kind != "volunteer":
            reason = f"{s.kind} submission (only volunteers' submissions are counted)"
        elif bool(s.gold) or s.panorama_id in gold_panoramas:
            reason = "gold submission (known answers, never counted)"
        elif isinstance(s.problem, str) and s.problem:
            reason = f"reported a problem: {s.problem}"
        elif str(s.panorama_id) in retired:
            reason = retired[str(s.panorama_id)]
        elif s.panorama_id not in placed:
            reason = "its panorama has no place in intersections.csv"
        if reason is not None:
            keep[i] = False
            excluded.append(("submission", str(s.submission_id), reason))
    return submissions.loc[keep], excluded


def _counts(subs: pd.DataFrame, tags: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """Return counts.csv: per submission, the counts of its current tags per category."""
    t = tags.loc[tags["submission_id"].isin(subs["submission_id"])]
    street = t["attachment"] == "street"
    per = pd.DataFrame(
        {
            "submission_id": t["submission_id"],
            "n_cameras": 1,
            "attached_street": street.astype(int),
            "attached_building": (t["attachment"] == "building").astype(int),
            "attached_unknown": (t["attachment"] == "unknown").astype(int),
            # Amnesty typed only cameras on street furniture.
            "type_dome": (street & (t["camera_type"] == "dome")).astype(int),
            "type_bullet": (street & (t["camera_type"] == "bullet")).astype(int),
            "type_unknown": (street & (t["camera_type"] == "unknown")).astype(int),
        }
    )
    sums = per.groupby("submission_id")[list(_COUNT_COLUMNS)].sum()
    ordered = subs.sort_values(["panorama_id", "submitted_at", "submission_id"], kind="stable")
    out = pd.DataFrame(
        {
            "SubmissionId": ordered["submission_id"].astype(str).to_numpy(),
            "DecoderId": ordered["decoder_id"].astype(str).to_numpy(),
            "IntersectionId": ordered["panorama_id"].map(names).astype(str).to_numpy(),
            "StartTime": [_iso(v) for v in ordered["started_at"]],
            "EndTime": [_iso(v) for v in ordered["submitted_at"]],
        }
    )
    counts = sums.reindex(ordered["submission_id"]).fillna(0).astype("int64")
    for c in _COUNT_COLUMNS:
        out[c] = counts[c].to_numpy()
    return out


def _cameras(subs: pd.DataFrame, tags: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """Return cameras.csv: one row per current tag of a counted submission."""
    t = tags.merge(
        subs[["submission_id", "panorama_id", "decoder_id", "submitted_at"]], on="submission_id"
    )
    t = t.sort_values(["panorama_id", "submitted_at", "submission_id", "created_at", "tag_id"])
    street = t["attachment"] == "street"
    return pd.DataFrame(
        {
            "DecoderId": t["decoder_id"].astype(str).to_numpy(),
            "IntersectionId": t["panorama_id"].map(names).astype(str).to_numpy(),
            "SubmissionId": t["submission_id"].astype(str).to_numpy(),
            "Id": t["tag_id"].astype(str).to_numpy(),
            "Attached": t["attachment"].map(_ATTACHED).to_numpy(),
            "Type": np.where(street, t["camera_type"].astype(str), ""),
            "Title": [
                _TITLES[(a, c)] for a, c in zip(t["attachment"], t["camera_type"], strict=True)
            ],
            "Pov.heading": t["heading_deg"].astype("float64").to_numpy(),
            "Pov.pitch": t["pitch_deg"].astype("float64").to_numpy(),
            "Pov.zoom": _zoom(t["fov_deg"]),
            "fov_deg": t["fov_deg"].astype("float64").to_numpy(),
            "Createdtime": [
                _iso(c if c is not None else d)
                for c, d in zip(t["clicked_at"], t["created_at"], strict=True)
            ],
            "PanoramaId": t["panorama_id"].astype(str).to_numpy(),
        }
    )


def _panorama_url(panoramas: pd.DataFrame, placed: set[str]) -> pd.DataFrame:
    p = panoramas.loc[panoramas["panorama_id"].isin(placed)].sort_values("panorama_id")
    return pd.DataFrame(
        {
            "PanoramaId": p["panorama_id"].astype(str).to_numpy(),
            "GoogleLat": p["lat"].astype("float64").to_numpy(),
            "GoogleLong": p["lon"].astype("float64").to_numpy(),
            "HeadingDeg": p["heading_deg"].astype("float64").to_numpy(),
            "ImageDate": p["captured"].to_numpy(),
            "Source": p["source"].astype(str).to_numpy(),
            "SourceRef": p["source_ref"].to_numpy(),
            "Licence": p["licence"].astype(str).to_numpy(),
            "Republishable": p["republishable"].astype(bool).to_numpy(),
        }
    )


def _readme(projects: pd.DataFrame, files: dict[str, pd.DataFrame], excluded: pd.DataFrame) -> str:
    names = ", ".join(str(n) for n in projects["name"]) or "(none)"
    lines = [
        "Amnesty Decode-style raw export written by camcensus from the platform database.",
        f"Projects: {names}.",
        "",
        f"counts.csv         {len(files['counts']):>8,} submissions (one row each; counts of "
        "the tags that stood at submit time)",
        f"cameras.csv        {len(files['cameras']):>8,} tags of those submissions",
        f"intersections.csv  {len(files['intersections']):>8,} intersections",
        f"panorama_url.csv   {len(files['panorama_url']):>8,} panoramas",
        f"reviews.csv        {len(files['reviews']):>8,} finished expert reviews (reference "
        "counts; read by camcensus quality estimate --reviews)",
        "",
        "Read them with: camcensus aggregate --raw-counts counts.csv --raw-intersections "
        "intersections.csv --panoramas panorama_url.csv --out counts_per_intersections.csv",
        "",
        "Notes:",
        "- DecoderId is each volunteer's random public id, never a pseudonym.",
        "- GoogleLat/GoogleLong keep the column names Amnesty's readers expect; the imagery is "
        "whatever Source says. Republishable=False marks positions that may not enter "
        "OpenStreetMap (Google Street View imagery).",
        "- A submission names the first intersection (by id) of its panorama; intersections "
        "sharing a panorama are listed in intersections.csv and share its counts.",
        "- type_* count only cameras attached to street furniture (Amnesty's design).",
        "- reviews.csv: one row per finished expert review (the latest of a panorama): each "
        "expert's counts (expert_1_n_cameras ...), meta = a meta-expert gave the reference "
        "where the experts disagreed, then the reference counts under counts.csv's column "
        "names; weight = 1 / inclusion_probability. Unfinished reviews are in excluded.csv.",
        "- Pov.zoom is derived from the viewer's field of view: log2(180 / fov_deg).",
        "- A problem report (no image, wrong place, indoor, other) completes a volunteer's task "
        "but is never counted: its slot goes to another volunteer, so a done panorama has "
        "exactly the counted submissions it needs (k, or the target the project's adaptive "
        "rule set: fewer when the first answers agree, more when they disagree). A panorama "
        "where more than half of its k volunteers reported a problem before its answers were "
        "in is retired as a problem panorama, and "
        "its submissions are left out.",
        "",
        f"Left out ({len(excluded):,} in all; every one listed in excluded.csv):",
    ]
    if excluded.empty:
        lines.append("- nothing")
    else:
        sizes = excluded.groupby(["what", "reason"]).size()
        for (what, reason), n in zip(sizes.index.tolist(), sizes.tolist(), strict=True):
            lines.append(f"- {n:,} {what}(s): {reason}")
    return "\n".join(lines) + "\n"


def export_decode(
    engine: Engine,
    *,
    project: str | None = None,
    out: str | Path,
    force: bool = False,
) -> dict[str, Path]:
    """Write Amnesty's raw Decode export of the platform database into the folder ``out``.

    ``counts.csv`` holds one row per counted submission (``SubmissionId``, ``DecoderId``,
    ``IntersectionId``, ``StartTime``, ``EndTime`` and the counts ``n_cameras``,
    ``attached_street|building|unknown``, ``type_dome|bullet|unknown``) from the tags that
    stood at submit time (``current and not deleted``); ``type_*`` count only cameras on
    street furniture. Counted are volunteers' submissions on non-gold panoramas without a
    reported problem; expert, model, tutorial and gold submissions and problem reports are
    left out and listed, with the reason, in ``excluded.csv`` (summed up in ``README.txt``).
    ``intersections.csv`` (``IntersectionId``, ``PanoramaId``, ``Lat``, ``Long``,
    ``ImageDate``, ``Borough``, ``TrafficSignal``) lists the project's intersections; a
    panorama no intersection points to is its own intersection. ``panorama_url.csv``
    (``PanoramaId``, ``GoogleLat``, ``GoogleLong``, plus ``HeadingDeg``, ``ImageDate``,
    ``Source``, ``SourceRef``, ``Licence``, ``Republishable``) gives the imagery's own
    positions. ``cameras.csv`` has one row per tag (``DecoderId``, ``IntersectionId``,
    ``SubmissionId``, ``Id``, ``Attached``, ``Type``, ``Title``, ``Pov.heading``,
    ``Pov.pitch``, ``Pov.zoom``, ``fov_deg``, ``Createdtime``, ``PanoramaId``).

    Parameters
    ----------
    engine
        The platform database (:func:`camcensus.db.connect`).
    project
        The project's name; ``None`` exports every project of the database.
    out
        The export folder: new, empty, or (with ``force``) an earlier export.
    force
        Replace an earlier export in ``out``.

    Returns
    -------
    dict
        Paths of the written files by key: ``counts``, ``intersections``, ``panorama_url``,
        ``cameras``, ``reviews`` (:func:`export_reviews`), ``excluded``, ``readme``.

    Raises
    ------
    camcensus.db.errors.NotFound
        No project of that name.
    camcensus.report.OutputError
        ``out`` is a file, holds the database or other files, or holds an export and
        ``force`` is false.
    """
    from camcensus.io.formats import write_csv
    from camcensus.report import replace_folder

    out = Path(out)
    _check_database(engine)
    _check_folder(out, engine, force=force)
    tables = _load(engine, project)
    inter, names, excluded = _place_panoramas(tables.panoramas, tables.intersections)
    placed = set(inter["PanoramaId"])
    gold = set(tables.panoramas.loc[tables.panoramas["gold"].astype(bool), "panorama_id"])
    subs, dropped = _counted(
        tables.submissions, gold, placed, _retired(tables.panoramas, tables.projects)
    )
    excluded += dropped
    reviews, left_out = _reviews_frame(engine, project)
    excluded += left_out
    frames = {
        "counts": _counts(subs, tables.tags, names),
        "intersections": inter,
        "panorama_url": _panorama_url(tables.panoramas, placed),
        "cameras": _cameras(subs, tables.tags, names),
        "reviews": reviews,
    }
    excluded_frame = pd.DataFrame(sorted(excluded), columns=["what", "id", "reason"])
    written: dict[str, Path] = {}
    with replace_folder(out) as tmp:
        for key, frame in frames.items():
            write_csv(frame, tmp / DECODE_FILES[key])
        write_csv(excluded_frame, tmp / DECODE_FILES["excluded"])
        (tmp / DECODE_FILES["readme"]).write_text(
            _readme(tables.projects, frames, excluded_frame), encoding="utf-8"
        )
    for key, name in DECODE_FILES.items():
        written[key] = out / name
    return written


# --------------------------------------------------------------------------- tags export


def tags_frame(engine: Engine, *, project: str | None = None) -> gpd.GeoDataFrame:
    """Return every current tag of the project as points at their panoramas.

    One row per tag that stood at submit time (``current and not deleted``), of every kind
    of submission (``submission_kind``: volunteer, expert, model, tutorial; ``gold`` and
    ``problem`` say which were not counted). Columns: :data:`TAG_COLUMNS` (times as ISO 8601
    text in UTC), ``lon``, ``lat``, and a WGS84 point geometry (the panorama's position: a
    tag is a ray from there, never a ground point). Sorted by panorama, submission, tag.

    The detector's tags (``machine`` true, ``score`` the detector's score) carry the
    volunteers' verdicts of the verify task: ``verify_agree``, ``verify_disagree``,
    ``verify_unsure`` and ``verify_status`` (:func:`verify_columns`); these are empty for
    human tags.
    """
    import geopandas as gpd

    _check_database(engine)
    tables = _load(engine, project)
    subs = tables.submissions.rename(columns={"kind": "submission_kind", "gold": "submission_gold"})
    pano = tables.panoramas.rename(columns={"gold": "panorama_gold"})
    t = tables.tags.merge(subs, on="submission_id").merge(
        pano[["panorama_id", "lon", "lat", "captured", "source", "licence", "republishable",
              "panorama_gold"]],
        on="panorama_id",
    )  # fmt: skip
    t = t.sort_values(["panorama_id", "submitted_at", "submission_id", "created_at", "tag_id"])
    t = t.reset_index(drop=True)
    verify = verify_columns(t, tables.verdicts)
    frame = pd.DataFrame(
        {
            "tag_id": t["tag_id"].astype(str).to_numpy(),
            "submission_id": t["submission_id"].astype(str).to_numpy(),
            "panorama_id": t["panorama_id"].astype(str).to_numpy(),
            "decoder_id": t["decoder_id"].astype(str).to_numpy(),
            "submission_kind": t["submission_kind"].astype(str).to_numpy(),
            "heading_deg": t["heading_deg"].astype("float64").to_numpy(),
            "pitch_deg": t["pitch_deg"].astype("float64").to_numpy(),
            "fov_deg": t["fov_deg"].astype("float64").to_numpy(),
            "attachment": t["attachment"].astype(str).to_numpy(),
            "camera_type": t["camera_type"].astype(str).to_numpy(),
            "machine": t["machine"].astype(bool).to_numpy(),
            "score": pd.to_numeric(t["score"], errors="coerce").astype("float64").to_numpy(),
            "verify_agree": verify["verify_agree"].array,
            "verify_disagree": verify["verify_disagree"].array,
            "verify_unsure": verify["verify_unsure"].array,
            "verify_status": verify["verify_status"].to_numpy(),
            "clicked_at": [_iso(v) for v in t["clicked_at"]],
            "submitted_at": [_iso(v) for v in t["submitted_at"]],
            "no_camera": t["no_camera"].astype(bool).to_numpy(),
            "problem": t["problem"].to_numpy(),
            "gold": (
                t["submission_gold"].astype(bool) | t["panorama_gold"].astype(bool)
            ).to_numpy(),
            "captured": t["captured"].to_numpy(),
            "source": t["source"].astype(str).to_numpy(),
            "licence": t["licence"].astype(str).to_numpy(),
            "republishable": t["republishable"].astype(bool).to_numpy(),
            "lon": t["lon"].astype("float64").to_numpy(),
            "lat": t["lat"].astype("float64").to_numpy(),
        }
    )
    geometry = gpd.points_from_xy(frame["lon"], frame["lat"])
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _json_value(value: Any) -> Any:
    """Return a property value as plain JSON (NaN and missing as null)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return str(value)


def _geojson(gdf: gpd.GeoDataFrame) -> dict[str, Any]:
    """Return the tags as a GeoJSON FeatureCollection (full precision, WGS84)."""
    props = [*TAG_COLUMNS]
    features = [
        {
            "type": "Feature",
            "id": str(row["tag_id"]),
            "geometry": {"type": "Point", "coordinates": [float(row["lon"]), float(row["lat"])]},
            "properties": {c: _json_value(row[c]) for c in props},
        }
        for row in gdf[[*props, "lon", "lat"]].to_dict("records")
    ]
    return {"type": "FeatureCollection", "features": features}


def export_tags(
    engine: Engine,
    *,
    project: str | None = None,
    out: str | Path,
    format: TagFormat = "geojson",
    force: bool = False,
) -> Path:
    """Write every current tag of the platform database as GeoJSON, GeoPackage or flat CSV.

    Each tag is a point at its panorama with the ray as properties (:data:`TAG_COLUMNS`;
    see :func:`tags_frame`). ``geojson``: a FeatureCollection in WGS84, numbers at full
    precision. ``gpkg``: layer ``tags`` (EPSG:4326), written with pyogrio. ``csv``: one value
    per cell (``lon``/``lat`` columns, no JSON in any cell), spreadsheet-safe.

    Parameters
    ----------
    engine
        The platform database (:func:`camcensus.db.connect`).
    project
        The project's name; ``None`` exports every project.
    out
        The file to write.
    format
        ``geojson``, ``gpkg`` or ``csv``.
    force
        Replace an existing ``out``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        ``format`` is not one of :data:`TAG_FORMATS`.
    camcensus.db.errors.NotFound
        No project of that name.
    camcensus.report.OutputError
        ``out`` is a folder or the database, or exists and ``force`` is false.
    """
    from camcensus.io.formats import write_csv

    if format not in TAG_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(TAG_FORMATS)}, not {format!r}")
    out = Path(out)
    _check_file(out, engine, force=force)
    gdf = tags_frame(engine, project=project)
    with _replace_file(out) as tmp:
        if format == "geojson":
            text = json.dumps(_geojson(gdf), ensure_ascii=False, allow_nan=False)
            tmp.write_text(text + "\n", encoding="utf-8")
        elif format == "gpkg":
            gdf.drop(columns=["lon", "lat"]).to_file(
                tmp, driver="GPKG", layer=_GPKG_LAYER, engine="pyogrio"
            )
        else:
            write_csv(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)), tmp)
    return out


# --------------------------------------------------------------------------- expert reviews


def _reviews_frame(engine: Engine, project: str | None) -> tuple[pd.DataFrame, list[Any]]:
    """reviews.csv and the (what, id, reason) of each review left out."""
    from sqlalchemy import select

    from camcensus.db.models import Review, ReviewAnswer, Volunteer

    r_cols = ["review_id", "panorama_id", "stratum", "inclusion_prob", "status",
              "experts_needed", "created_at"]  # fmt: skip
    a_cols = ["review_id", "role", "public_id", "created_at", "answer_id", *_COUNT_COLUMNS]
    with _snapshot(engine) as session:
        ids = [int(i) for i in _project_ids(session, project)["project_id"]]
        reviews = _rows(
            session,
            select(*(getattr(Review, c) for c in r_cols)).where(Review.project_id.in_(ids)),
            r_cols,
        )
        answers = _rows(
            session,
            select(
                ReviewAnswer.review_id,
                ReviewAnswer.role,
                Volunteer.public_id,
                ReviewAnswer.created_at,
                ReviewAnswer.answer_id,
                *(getattr(ReviewAnswer, c) for c in _COUNT_COLUMNS),
            )
            .join(Review, Review.review_id == ReviewAnswer.review_id)
            .join(Volunteer, Volunteer.volunteer_id == ReviewAnswer.volunteer_id)
            .where(Review.project_id.in_(ids))
            .order_by(ReviewAnswer.created_at, ReviewAnswer.answer_id),
            a_cols,
        )
    width = max([3, *(int(n) for n in reviews["experts_needed"])])
    expert_cols = [f"expert_{i}_{c}" for i in range(1, width + 1) for c in ("id", *_COUNT_COLUMNS)]
    columns = [*REVIEW_COLUMNS, *expert_cols, "meta", *_COUNT_COLUMNS]
    excluded: list[Any] = []
    rows: list[dict[str, Any]] = []
    by_review = {k: g for k, g in answers.groupby("review_id", sort=False)}
    done = reviews.loc[reviews["status"] == "done"].sort_values(
        ["panorama_id", "created_at", "review_id"]
    )
    latest = set(done.drop_duplicates("panorama_id", keep="last")["review_id"])
    ordered = reviews.sort_values(["panorama_id", "created_at", "review_id"])
    records: list[dict[str, Any]] = ordered.to_dict("records")  # type: ignore[assignment]
    for r in records:
        group = by_review.get(r["review_id"])
        experts = group.loc[group["role"] == "expert"] if group is not None else answers.iloc[:0]
        meta = group.loc[group["role"] == "meta"] if group is not None else answers.iloc[:0]
        rid, status = str(r["review_id"]), str(r["status"])
        reason = None
        if status == "open":
            reason = f"open: {len(experts)} of {int(r['experts_needed'])} expert answers in"
        elif status == "awaiting_meta":
            reason = "the experts disagree; awaiting a meta-expert"
        elif rid not in latest:
            reason = "a later review of the same panorama stands"
        elif experts.empty and meta.empty:
            reason = "done before per-expert answers were stored"
        if reason is not None:
            excluded.append(("review", rid, reason))
            continue
        prob = None if r["inclusion_prob"] is None else float(r["inclusion_prob"])
        row: dict[str, Any] = {
            "PanoramaId": r["panorama_id"],
            "ReviewId": r["review_id"],
            "stratum": r["stratum"],
            "inclusion_probability": prob,
            "weight": None if prob is None else 1.0 / prob,
            "n_experts": len(experts),
            "meta": not meta.empty,
        }
        answered: list[dict[str, Any]] = experts.to_dict("records")  # type: ignore[assignment]
        for i, a in enumerate(answered, start=1):
            row[f"expert_{i}_id"] = a["public_id"]
            for c in _COUNT_COLUMNS:
                row[f"expert_{i}_{c}"] = int(a[c])
        for c in _COUNT_COLUMNS:
            values = {int(v) for v in experts[c]}
            row[c] = values.pop() if len(values) == 1 and meta.empty else int(meta[c].iloc[0])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    for c in [*_COUNT_COLUMNS, *(f"expert_{i}_{c}" for i in range(1, width + 1)
                                 for c in _COUNT_COLUMNS)]:  # fmt: skip
        frame[c] = frame[c].astype("Int64")
    frame["meta"] = frame["meta"].astype(bool)
    frame["n_experts"] = frame["n_experts"].astype("int64")
    for c in ("inclusion_probability", "weight"):
        frame[c] = pd.to_numeric(frame[c]).astype("float64")
    return frame.reset_index(drop=True), excluded


def export_reviews(engine: Engine, *, project: str | None = None) -> pd.DataFrame:
    """Return the finished expert reviews of a project: the reference counts per panorama.

    One row per finished (``done``) review, the latest of each panorama, sorted by
    ``PanoramaId``: ``PanoramaId``, ``ReviewId``, ``stratum``, ``inclusion_probability``,
    ``weight`` (= 1 / ``inclusion_probability``), ``n_experts``, each expert's random id and
    counts (``expert_1_id``, ``expert_1_n_cameras``, ... in the order they answered),
    ``meta`` (a meta-expert gave the reference where the experts disagreed) and the
    reference counts under the count columns of ``counts.csv`` (``n_cameras``,
    ``attached_street`` ...): the experts' value where they all agree, else the
    meta-expert's. ``camcensus quality estimate --reviews`` reads it
    (:func:`camcensus.quality.design.read_reviews`).

    ``attrs["excluded"]`` lists the reviews left out (still open, awaiting a meta-expert,
    superseded by a later review of the panorama) with the reason; ``camcensus export
    decode`` writes them to ``excluded.csv`` and the rows to ``reviews.csv``.

    Raises
    ------
    camcensus.db.errors.NotFound
        No project of that name.
    """
    _check_database(engine)
    frame, excluded = _reviews_frame(engine, project)
    frame.attrs["excluded"] = pd.DataFrame(excluded, columns=["what", "id", "reason"])
    return frame
