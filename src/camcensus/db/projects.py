"""Projects: create one from a panoramas table, mark gold panoramas, report progress.

:func:`create_project` checks every row of the ``panoramas`` (and ``intersections``) table and
reports all problems at once (file/row/column/found/expected/fix, as
:class:`camcensus._errors.Problem`) in one :class:`~camcensus.db.errors.Invalid`.
:func:`project_progress` and :func:`progress_geojson` feed the admin's live progress map; gold
panoramas are left out of both (they never count toward completion).

The progress functions and a panorama's status live in :mod:`camcensus.db.progress`; they
are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from camcensus._errors import Problem
from camcensus.db.errors import Conflict, Invalid, NotFound
from camcensus.db.models import (
    ATTACHMENTS,
    CAMERA_TYPES,
    SOURCES,
    Intersection,
    Panorama,
    Project,
)
from camcensus.db.progress import (
    PANORAMA_STATUSES,
    panorama_status,
    progress_geojson,
    project_progress,
    status_clause,
)

__all__ = [
    "PANORAMA_COLUMNS",
    "PANORAMA_OPTIONAL",
    "PANORAMA_STATUSES",
    "create_project",
    "mark_gold",
    "panorama_status",
    "progress_geojson",
    "project_progress",
    "shuffle_key",
    "status_clause",
]

#: Columns the ``panoramas`` table passed to :func:`create_project` must have.
PANORAMA_COLUMNS = (
    "panorama_id",
    "lon",
    "lat",
    "heading_deg",
    "source",
    "image_uri",
    "width_px",
    "height_px",
    "licence",
)
#: Columns it may have (missing ones take their defaults).
PANORAMA_OPTIONAL = (
    "captured",
    "source_ref",
    "republishable",
    "intersection_id",
    "gold",
    "gold_answer",
)
_NAME = re.compile(r"[a-z0-9-]{1,64}")
_CAPTURED = re.compile(r"\d{4}-\d{2}(-\d{2})?")
_MAX_PROBLEMS = 200


def shuffle_key(panorama_id: str) -> int:
    """Return the stable pseudo-random rank of a panorama (31 bits of its id's blake2b)."""
    digest = hashlib.blake2b(panorama_id.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def _problem(
    problems: list[Problem],
    table: str,
    row: int | None,
    column: str | None,
    found: str,
    expected: str,
    fix: str,
) -> None:
    problems.append(Problem(table, row, column, found, expected, fix))


def _text(series: pd.Series) -> pd.Series:
    """Cells as str, missing ones as None."""
    return series.astype(object).where(series.notna(), None)


def _check_rows(
    problems: list[Problem],
    table: str,
    frame: pd.DataFrame,
    column: str,
    bad: np.ndarray,
    expected: str,
    fix: str,
) -> None:
    for i in np.flatnonzero(bad)[:20]:
        _problem(problems, table, int(i) + 1, column, repr(frame[column].iloc[i]), expected, fix)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    out: np.ndarray = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    return out


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _flag(value: object) -> bool | None:
    """Read a yes/no cell: a bool, 0/1 or true/false/yes/no text; None when empty.

    Raises ValueError for anything else (``bool("false")`` would be True).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "":
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"not a yes/no value: {value!r}")


def _flags(frame: pd.DataFrame, column: str) -> tuple[list[bool | None], np.ndarray]:
    """The cells of a yes/no column and a mask of the unreadable ones."""
    values: list[bool | None] = []
    bad: list[bool] = []
    for cell in _text(frame[column]).tolist():
        try:
            values.append(_flag(cell))
            bad.append(False)
        except ValueError:
            values.append(None)
            bad.append(True)
    return values, np.asarray(bad, dtype=bool)


def _check_flags(
    problems: list[Problem], table: str, frame: pd.DataFrame, columns: Sequence[str]
) -> None:
    for column in columns:
        if column in frame.columns:
            _check_rows(
                problems,
                table,
                frame,
                column,
                _flags(frame, column)[1],
                "true or false (or 1/0, yes/no), or empty",
                f"write {column} as true or false",
            )


def _columns_and_ids(
    frame: pd.DataFrame,
    problems: list[Problem],
    *,
    table: str,
    columns: Sequence[str],
    id_column: str,
    what: str,
    docs: str = "",
) -> tuple[pd.DataFrame, bool]:
    """Check that ``frame`` has ``columns`` and one text id per row in ``id_column``.

    Returns the frame (renumbered from 0) and whether its columns are all there; problems are
    added to ``problems``.
    """
    missing = [c for c in columns if c not in frame.columns]
    for c in missing:
        _problem(
            problems,
            table,
            None,
            c,
            "no such column",
            f"the columns {tuple(columns)}",
            f"add a column {c!r}{docs}",
        )
    if missing:
        return frame, False
    frame = frame.reset_index(drop=True)
    ids = _text(frame[id_column])
    bad = ids.map(lambda v: not isinstance(v, str) or not 1 <= len(v) <= 200).to_numpy(bool)
    _check_rows(
        problems,
        table,
        frame,
        id_column,
        bad,
        "a text id of 1 to 200 characters",
        f"give every {what} an id",
    )
    dup = ids.duplicated(keep="first").to_numpy(bool) & ~bad
    _check_rows(
        problems, table, frame, id_column, dup, "each id once", f"remove the repeated {what}"
    )
    return frame, True


def _check_panoramas(frame: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    t = "panoramas"
    frame, complete = _columns_and_ids(
        frame,
        problems,
        table=t,
        columns=PANORAMA_COLUMNS,
        id_column="panorama_id",
        what="panorama",
        docs=" (docs/platform.md, panoramas)",
    )
    if not complete:
        return frame
    lon, lat, heading = (_numbers(frame, c) for c in ("lon", "lat", "heading_deg"))
    with np.errstate(invalid="ignore"):
        _check_rows(
            problems,
            t,
            frame,
            "lon",
            ~((lon >= -180) & (lon <= 180)),
            "a longitude in [-180, 180] (WGS84)",
            "store WGS84 lon/lat (EPSG:4326)",
        )
        _check_rows(
            problems,
            t,
            frame,
            "lat",
            ~((lat >= -90) & (lat <= 90)),
            "a latitude in [-90, 90] (WGS84)",
            "store WGS84 lon/lat (EPSG:4326)",
        )
        _check_rows(
            problems,
            t,
            frame,
            "heading_deg",
            ~((heading >= 0) & (heading < 360)),
            "a bearing in [0, 360) degrees from true north",
            "take the heading modulo 360",
        )
        for c in ("width_px", "height_px"):
            v = _numbers(frame, c)
            _check_rows(
                problems,
                t,
                frame,
                c,
                ~((v > 0) & (v == np.floor(v))),
                "a positive whole number of pixels",
                "give the image's size",
            )
    sources = _text(frame["source"])
    _check_rows(
        problems,
        t,
        frame,
        "source",
        ~sources.isin(SOURCES).to_numpy(bool),
        f"one of {SOURCES}",
        "name where the image comes from",
    )
    for c, limit in (("image_uri", 1000), ("licence", 200)):
        cells = _text(frame[c])
        wrong = cells.map(lambda x, n=limit: not isinstance(x, str) or not 1 <= len(x) <= n)
        _check_rows(
            problems,
            t,
            frame,
            c,
            wrong.to_numpy(bool),
            f"a text of 1 to {limit} characters",
            f"fill in {c}",
        )
    if "captured" in frame.columns:
        cells = _text(frame["captured"])
        wrong = cells.map(
            lambda x: x is not None and not (isinstance(x, str) and _CAPTURED.fullmatch(x))
        )
        _check_rows(
            problems,
            t,
            frame,
            "captured",
            wrong.to_numpy(bool),
            "YYYY-MM or YYYY-MM-DD, or empty",
            "write the capture date as 2021-07",
        )
    _check_flags(problems, t, frame, ("republishable", "gold"))
    if "republishable" in frame.columns:
        gsv = (sources == "gsv").to_numpy(bool)
        republishable = np.asarray([v is True for v in _flags(frame, "republishable")[0]])
        bad = gsv & republishable
        _check_rows(
            problems,
            t,
            frame,
            "republishable",
            bad,
            "false for Google Street View (positions derived from it may not enter OpenStreetMap)",
            "set republishable to false for source gsv",
        )
    return frame


def _check_intersections(
    frame: pd.DataFrame, panorama_ids: set[str], problems: list[Problem]
) -> pd.DataFrame:
    t = "intersections"
    frame, complete = _columns_and_ids(
        frame,
        problems,
        table=t,
        columns=("intersection_id", "lon", "lat"),
        id_column="intersection_id",
        what="intersection",
    )
    if not complete:
        return frame
    lon, lat = _numbers(frame, "lon"), _numbers(frame, "lat")
    with np.errstate(invalid="ignore"):
        _check_rows(
            problems,
            t,
            frame,
            "lon",
            ~((lon >= -180) & (lon <= 180)),
            "a longitude in [-180, 180] (WGS84)",
            "store WGS84 lon/lat",
        )
        _check_rows(
            problems,
            t,
            frame,
            "lat",
            ~((lat >= -90) & (lat <= 90)),
            "a latitude in [-90, 90] (WGS84)",
            "store WGS84 lon/lat",
        )
    _check_flags(problems, t, frame, ("traffic_signal",))
    if "panorama_id" in frame.columns:
        pid = _text(frame["panorama_id"])
        bad = pid.map(lambda v: v is not None and v not in panorama_ids).to_numpy(bool)
        _check_rows(
            problems,
            t,
            frame,
            "panorama_id",
            bad,
            "empty or the id of a panorama of this project",
            "add the panorama to the panoramas table, or leave the cell empty",
        )
    return frame


def _problems_error(problems: list[Problem]) -> Invalid:
    return Invalid(
        f"The project cannot be created: {len(problems)} problem(s) in its tables.",
        errors=[
            {"field": f"{p.file}.{p.column}" if p.column else p.file, "message": str(p)}
            for p in problems[:_MAX_PROBLEMS]
        ],
    )


def _optional_flags(frame: pd.DataFrame, column: str) -> list[bool | None]:
    if column not in frame.columns:
        return [None] * len(frame)
    return _flags(frame, column)[0]


def _optional(frame: pd.DataFrame, column: str, default: Any) -> list[Any]:
    if column not in frame.columns:
        return [default] * len(frame)
    return [default if v is None else v for v in _text(frame[column]).tolist()]


def create_project(
    session: Session,
    *,
    name: str,
    title: str,
    panoramas: pd.DataFrame,
    intersections: pd.DataFrame | None = None,
    k: int = 3,
    licence: str,
    task_timeout_s: int = 900,
    gold_every: int = 20,
    area_geojson: str | None = None,
    now: datetime | None = None,
) -> Project:
    """Create a project and store its panoramas (and intersections).

    Parameters
    ----------
    session
        An open session; the caller commits.
    name
        Unique slug ``[a-z0-9-]{1,64}`` (used in URLs).
    title
        Human-readable title.
    panoramas
        One row per panorama with :data:`PANORAMA_COLUMNS` (and any of
        :data:`PANORAMA_OPTIONAL`), WGS84 lon/lat.
    intersections
        Amnesty's ``intersections.csv`` shape: ``intersection_id``, ``lon``, ``lat`` and
        optionally ``panorama_id``, ``area``, ``traffic_signal``.
    k
        Independent submissions per panorama (1–50).
    licence
        The licence of the project's data.
    task_timeout_s
        Seconds before an unsubmitted task returns to the pool.
    gold_every
        At most one gold task per this many tasks of a volunteer.
    area_geojson
        The project's area (a GeoJSON geometry, as text).
    now
        The time (default: now, UTC).

    Raises
    ------
    Invalid
        Any problem in the options or the tables; every one is listed.
    Conflict
        The name is taken, or a panorama id already belongs to a project.
    """
    now = datetime.now(UTC) if now is None else now
    problems: list[Problem] = []
    opts = "create_project"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        _problem(
            problems,
            opts,
            None,
            "name",
            repr(name),
            "1 to 64 of a-z, 0-9 and '-'",
            "choose a slug such as 'nyc-2025'",
        )
    if not isinstance(title, str) or not 1 <= len(title) <= 200:
        _problem(
            problems,
            opts,
            None,
            "title",
            repr(title),
            "a text of 1 to 200 characters",
            "give the project a title",
        )
    if not isinstance(licence, str) or len(licence) > 200:
        _problem(
            problems,
            opts,
            None,
            "licence",
            repr(licence),
            "a text of at most 200 characters",
            "name the data's licence, e.g. CC-BY-SA-4.0",
        )
    for option, value, low, high in (
        ("k", k, 1, 50),
        ("task_timeout_s", task_timeout_s, 1, 7 * 24 * 3600),
        ("gold_every", gold_every, 1, 10_000),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _problem(
                problems,
                opts,
                None,
                option,
                repr(value),
                f"a whole number in [{low}, {high}]",
                f"pass {option}= within range",
            )
    if not isinstance(panoramas, pd.DataFrame):
        raise Invalid(
            "panoramas must be a pandas DataFrame.",
            errors=[{"field": "panoramas", "message": "pass a DataFrame"}],
        )
    frame = _check_panoramas(panoramas, problems)
    inter = None
    if intersections is not None:
        ids = set(_text(frame["panorama_id"]).dropna()) if "panorama_id" in frame else set()
        inter = _check_intersections(intersections, ids, problems)
    if problems:
        raise _problems_error(problems)
    if session.scalar(select(Project.project_id).where(Project.name == name)) is not None:
        raise Conflict(
            f"A project is already named {name!r}.",
            errors=[{"field": "name", "message": "choose another name"}],
        )
    ids_list = [str(v) for v in frame["panorama_id"]]
    taken: list[str] = []
    for start in range(0, len(ids_list), 500):
        chunk = ids_list[start : start + 500]
        taken += session.scalars(
            select(Panorama.panorama_id).where(Panorama.panorama_id.in_(chunk))
        ).all()
    if taken:
        raise Conflict(
            f"{len(taken)} panorama id(s) already belong to a project.",
            errors=[
                {"field": "panoramas.panorama_id", "message": f"taken: {p!r}"} for p in taken[:50]
            ],
        )
    project = Project(
        name=name,
        title=title,
        k=k,
        task_timeout_s=task_timeout_s,
        gold_every=gold_every,
        licence=licence,
        area_geojson=area_geojson,
        created_at=now,
        status="open",
    )
    session.add(project)
    session.flush()
    sources = [str(s) for s in frame["source"]]
    rows = [
        {
            "panorama_id": pid,
            "project_id": project.project_id,
            "lon": float(lon),
            "lat": float(lat),
            "heading_deg": float(h),
            "captured": captured,
            "source": source,
            "source_ref": None if ref is None else str(ref),
            "image_uri": str(uri),
            "width_px": int(w),
            "height_px": int(hh),
            "licence": str(lic),
            "republishable": rep if rep is not None else source != "gsv",
            "intersection_id": None if iid is None else str(iid),
            "gold": bool(gold),  # empty cells: not gold
            "gold_answer": None if answer is None else str(answer),
            "n_done": 0,
            "n_live": 0,
            "shuffle_key": shuffle_key(pid),
            "created_at": now,
        }
        for pid, lon, lat, h, captured, source, ref, uri, w, hh, lic, rep, iid, gold, answer in zip(
            ids_list,
            _numbers(frame, "lon"),
            _numbers(frame, "lat"),
            _numbers(frame, "heading_deg"),
            _optional(frame, "captured", None),
            sources,
            _optional(frame, "source_ref", None),
            frame["image_uri"],
            _numbers(frame, "width_px"),
            _numbers(frame, "height_px"),
            frame["licence"],
            _optional_flags(frame, "republishable"),
            _optional(frame, "intersection_id", None),
            _optional_flags(frame, "gold"),
            _optional(frame, "gold_answer", None),
            strict=True,
        )
    ]
    if rows:
        session.execute(insert(Panorama), rows)
    if inter is not None and len(inter):
        session.execute(
            insert(Intersection),
            [
                {
                    "intersection_id": str(iid),
                    "project_id": project.project_id,
                    "lon": float(lon),
                    "lat": float(lat),
                    "panorama_id": None if pid is None else str(pid),
                    "area": None if area is None else str(area),
                    "traffic_signal": sig,
                }
                for iid, lon, lat, pid, area, sig in zip(
                    inter["intersection_id"],
                    _numbers(inter, "lon"),
                    _numbers(inter, "lat"),
                    _optional(inter, "panorama_id", None),
                    _optional(inter, "area", None),
                    _optional_flags(inter, "traffic_signal"),
                    strict=True,
                )
            ],
        )
    return project


def _check_answer(answer: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    errors: list[dict[str, object]] = []
    clean: list[dict[str, Any]] = []
    if not isinstance(answer, Sequence) or isinstance(answer, str | bytes):
        raise Invalid(
            "A gold answer is a list of true tags.",
            errors=[{"field": "answer", "message": "expected a list"}],
        )
    for i, item in enumerate(answer):
        at = f"answer[{i}]"
        if not isinstance(item, Mapping):
            errors.append(
                {
                    "field": at,
                    "message": "expected {heading_deg, pitch_deg, attachment, camera_type}",
                }
            )
            continue
        h, p = item.get("heading_deg"), item.get("pitch_deg")
        ok_h = (
            isinstance(h, int | float)
            and not isinstance(h, bool)
            and math.isfinite(h)
            and 0 <= h < 360
        )
        ok_p = (
            isinstance(p, int | float)
            and not isinstance(p, bool)
            and math.isfinite(p)
            and -90 <= p <= 90
        )
        if not ok_h:
            errors.append(
                {
                    "field": f"{at}.heading_deg",
                    "message": f"found {h!r}; expected a bearing in [0, 360)",
                }
            )
        if not ok_p:
            errors.append(
                {
                    "field": f"{at}.pitch_deg",
                    "message": f"found {p!r}; expected an angle in [-90, 90]",
                }
            )
        a, c = item.get("attachment", "unknown"), item.get("camera_type", "unknown")
        if a not in ATTACHMENTS:
            errors.append(
                {
                    "field": f"{at}.attachment",
                    "message": f"found {a!r}; expected one of {ATTACHMENTS}",
                }
            )
        if c not in CAMERA_TYPES:
            errors.append(
                {
                    "field": f"{at}.camera_type",
                    "message": f"found {c!r}; expected one of {CAMERA_TYPES}",
                }
            )
        if ok_h and ok_p:
            clean.append(
                {
                    "heading_deg": float(h),  # type: ignore[arg-type]
                    "pitch_deg": float(p),  # type: ignore[arg-type]
                    "attachment": a,
                    "camera_type": c,
                }
            )
    if errors:
        raise Invalid(f"The gold answer has {len(errors)} invalid value(s).", errors=errors)
    return clean


def mark_gold(session: Session, panorama_id: str, answer: Sequence[Mapping[str, Any]]) -> None:
    """Make a panorama gold with its true tags (an empty list: truly no camera).

    Gold panoramas give volunteers feedback and never count toward completion.

    Raises
    ------
    NotFound
        No such panorama.
    Invalid
        A true tag out of range.
    Conflict
        The panorama was already given out as a regular task (a task is live, or answers or
        problem reports are stored).
    """
    clean = _check_answer(answer)
    # Lock the row (PostgreSQL; SQLite's transaction holds the write lock already) so no task
    # is given out between the check and the update; the update checks again all the same.
    query = select(Panorama.n_live, Panorama.n_done, Panorama.n_problem).where(
        Panorama.panorama_id == panorama_id
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query).one_or_none()
    if row is None:
        raise NotFound(
            f"No panorama has the id {panorama_id!r}.",
            errors=[{"field": "panorama_id", "message": "use an id of the project"}],
        )
    given = Conflict(
        "This panorama was already given to volunteers as a regular task; choose another.",
        errors=[
            {
                "field": "panorama_id",
                "message": f"{row.n_live} task(s) live, {row.n_done} answer(s) and "
                f"{row.n_problem} problem report(s) stored",
            }
        ],
    )
    if row.n_live > 0 or row.n_done > 0 or row.n_problem > 0:
        raise given
    changed = session.execute(
        update(Panorama)
        .where(
            Panorama.panorama_id == panorama_id,
            Panorama.n_live == 0,
            Panorama.n_done == 0,
            Panorama.n_problem == 0,
        )
        .values(gold=True, gold_answer=json.dumps(clean))
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0) != 1:
        raise given
