"""Verify tasks: volunteers confirm or reject the detector's machine tags.

Storage (no new table): the detector's detections on a panorama are one ``submissions`` row of
kind ``model`` (``decoder_id`` the model id, no assignment, never counted toward ``k``) with one
``tags`` row per detection (``machine`` true, ``score`` the detector's score). A volunteer's
verdict on a machine tag is a ``validations`` row: ``agree`` (a camera), ``disagree`` (not a
camera) or ``unsure``. A machine tag is settled by Project Sidewalk's margin rule
(:func:`camcensus.quality.adaptive.margin_needed`): :func:`verify_status`.

A machine tag alone never settles a camera: only ``confirmed`` machine tags (human verdicts)
count as human-confirmed cameras (:mod:`camcensus.locate`).

- :func:`import_detections` stores a detections table (``camcensus detect run``) as machine
  tags: one model submission per panorama, a ``no_camera`` one where the detector saw nothing.
  A panorama that already holds this model's submission is skipped and counted, never
  overwritten.
- :func:`next_verification` picks an ``open`` machine tag (fewer than :data:`VERIFY_CAP`
  verdicts) that the volunteer has not judged, on a non-gold panorama the volunteer was never
  given as a task, fewest verdicts first; :func:`verify` records the verdict. A verdict is a
  validation, so :func:`camcensus.db.tasks.next_task` never gives the verifier that panorama to
  tag afterwards: taggers stay independent of the machine's suggestions.
- :func:`verification_table`: one row per machine tag with its verdicts and status.

Locks follow the order of :mod:`camcensus.db.tasks` (volunteer, then panorama or tag). On
PostgreSQL :func:`verify` locks the tag's row, so parallel verdicts on one tag are counted one
after the other and a tag never gets more than :data:`VERIFY_CAP` verdicts (on SQLite the write
transaction already holds the database's lock).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, case, exists, func, insert, literal, select
from sqlalchemy.orm import Session

from camcensus._errors import Ledger
from camcensus._version import package_version
from camcensus.db._assign import (
    add_error,
    is_postgres,
    lock_volunteer,
    new_id,
    project_named,
    utc_now,
)
from camcensus.db.errors import Conflict, Forbidden, Invalid, NotFound
from camcensus.db.models import (
    ATTACHMENTS,
    CAMERA_TYPES,
    Assignment,
    Panorama,
    Project,
    Submission,
    Tag,
    Validation,
    Volunteer,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IMPORT_STAGE",
    "VERIFICATION_COLUMNS",
    "VERIFY_CAP",
    "VERIFY_MARGIN",
    "VERIFY_STATUSES",
    "VERIFY_WINDOW",
    "ImportResult",
    "import_detections",
    "next_verification",
    "panoramas_to_detect",
    "read_detections",
    "verification_table",
    "verify",
    "verify_status",
]

#: Lead of ``agree`` over ``disagree`` (or the reverse) that settles a machine tag.
VERIFY_MARGIN = 2
#: Most verdicts a machine tag gets; unsettled at the cap, it stays ``open`` (never confirmed).
VERIFY_CAP = 5
#: What :func:`verify_status` answers.
VERIFY_STATUSES = ("confirmed", "rejected", "open")
#: The ledger stage of :func:`import_detections`.
IMPORT_STAGE = "detect import"
#: Columns of :func:`verification_table`.
VERIFICATION_COLUMNS = (
    "project",
    "tag_id",
    "panorama_id",
    "model_id",
    "heading_deg",
    "pitch_deg",
    "fov_deg",
    "score",
    "camera_type",
    "attachment",
    "n_agree",
    "n_disagree",
    "n_unsure",
    "status",
)
#: Columns a detections table must have (``camcensus detect run`` writes them all).
_REQUIRED = ("panorama_id", "heading_deg", "pitch_deg", "fov_deg", "score")
#: Columns read when present (others are ignored).
_OPTIONAL = ("camera_type", "attachment", "machine")
#: Most problems one refusal lists.
_MAX_ERRORS = 200


def verify_status(
    agree: int, disagree: int, *, margin: int = VERIFY_MARGIN, cap: int = VERIFY_CAP
) -> str:
    """Return ``confirmed``, ``rejected`` or ``open`` for a machine tag's verdicts.

    ``confirmed`` when ``agree - disagree >= margin``, ``rejected`` when
    ``disagree - agree >= margin``; otherwise ``open`` (``unsure`` verdicts count toward
    neither side). A tag that reached ``cap`` verdicts without a margin stays ``open``: it is
    never a human-confirmed camera.

    Examples
    --------
    >>> verify_status(2, 0)
    'confirmed'
    >>> verify_status(3, 2)
    'open'
    >>> verify_status(0, 2)
    'rejected'
    """
    from camcensus.quality.adaptive import margin_needed

    if margin_needed(agree, disagree, margin=margin, cap=max(cap, margin)) > 0:
        return "open"
    if agree - disagree >= margin:
        return "confirmed"
    if disagree - agree >= margin:
        return "rejected"
    return "open"


# --------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What :func:`import_detections` stored and what it skipped.

    Attributes
    ----------
    model_id
        The model (the submissions' ``decoder_id``).
    panoramas
        Panoramas that got a model submission now.
    tags
        Machine tags stored.
    no_camera
        Of ``panoramas``, those stored as "the detector saw nothing" (``no_camera``).
    ledger
        Every panorama and detection skipped, counted by reason (stage :data:`IMPORT_STAGE`).
    """

    model_id: str
    panoramas: int = 0
    tags: int = 0
    no_camera: int = 0
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped records by reason."""
        return {e.reason: e.count for e in self.ledger if e.stage == IMPORT_STAGE}


def read_detections(path: str | Path) -> pd.DataFrame:
    """Read a detections CSV (``camcensus detect run --out``) with its text exactly as written.

    Panorama ids, the model id, types and attachments are read as text (``NA`` stays the
    string ``"NA"``); an empty cell is missing.

    Raises
    ------
    InputError
        No such file, or not a CSV.
    """

    from camcensus._errors import InputError, Problem
    from camcensus.io.formats import read_csv_or_refuse

    src = Path(path)
    if not src.is_file():
        found = "a folder, not a file" if src.is_dir() else "no such file"
        raise InputError(
            [Problem(str(src), None, None, found, "a detections CSV", "check the path")]
        )
    text = {c: str for c in ("panorama_id", "decoder_id", "camera_type", "attachment", "source")}
    frame = read_csv_or_refuse(
        src,
        expected="a detections CSV (camcensus detect run --out)",
        fix="pass the CSV that detect run wrote",
        dtype=text,
        keep_default_na=False,
        na_values=[""],
    )
    # pandas renames a repeated header "x" to "x.1": which one holds the values is unknowable.
    names = {str(c) for c in frame.columns}
    split = [str(c).rsplit(".", 1) for c in frame.columns]
    repeated = sorted(p[0] for p in split if len(p) == 2 and p[1].isdigit() and p[0] in names)
    if repeated:
        raise InputError(
            [
                Problem(
                    str(src),
                    None,
                    ", ".join(repeated),
                    "the column(s) twice in the header",
                    "each column once",
                    "remove the repeated column(s) (detect run writes each column once)",
                )
            ]
        )
    return frame


def _clip(text: str, limit: int = 80) -> str:
    """Return ``text``, cut to ``limit`` characters with an ellipsis (error messages)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _printable(text: str) -> bool:
    """Return whether ``text`` holds no control or format character (no ESC, BEL, bidi)."""
    import unicodedata

    return not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _text(value: Any) -> str:
    """A cell as stripped text; a missing cell (None, NaN, NA) is empty."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    return str(value).strip()


def _shown(value: Any) -> str:
    """A cell as the error message shows it: a number plainly, text quoted, empty as empty."""
    if isinstance(value, bool) or _text(value) == "":
        return repr(value) if isinstance(value, bool) else "an empty cell"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        try:
            return f"{float(value):g}"
        except (TypeError, ValueError):
            pass
    return _clip(repr(str(value)))


def _resolve_model_id(
    detections: pd.DataFrame, model_id: str | None, errors: list[dict[str, object]]
) -> str:
    """The model id: ``model_id``, else the one ``decoder_id`` of the detections."""
    found: list[str] = []
    if "decoder_id" in detections.columns:
        found = sorted({_text(v) for v in detections["decoder_id"]} - {""})
    if model_id is not None:
        chosen = str(model_id).strip()
        if not chosen or len(chosen) > 200 or not _printable(chosen):
            add_error(
                errors,
                "model_id",
                f"found {_clip(repr(model_id))}; expected 1 to 200 printable characters",
            )
        elif found and found != [chosen]:
            add_error(
                errors,
                "decoder_id",
                f"the detections name the model(s) {found}, not {chosen!r}; drop the model id "
                "to use the file's, or import each model's detections separately",
            )
        return chosen
    if len(found) == 1 and len(found[0]) <= 200 and _printable(found[0]):
        return found[0]
    if len(found) == 1:
        add_error(
            errors,
            "decoder_id",
            f"found {_clip(repr(found[0]))}; expected a model id of 1 to 200 printable "
            "characters (give --model-id to name the model)",
        )
        return ""
    if not found:
        add_error(
            errors,
            "model_id",
            "no model id: the detections have no decoder_id; give the model id "
            "(--model-id, e.g. the model card's id)",
        )
    else:
        add_error(
            errors,
            "decoder_id",
            f"found {len(found)} model ids {found[:5]}; import one model's detections at a time "
            "(or give --model-id for a file of one model)",
        )
    return ""


def _check_rows(
    detections: pd.DataFrame, known: set[str], errors: list[dict[str, object]]
) -> list[dict[str, Any]]:
    """Check every detection; return them as plain dicts (rows counted from 1)."""
    import pandas as pd

    for column in _REQUIRED:
        if column not in detections.columns:
            add_error(
                errors,
                column,
                f"no {column!r} column; a detections table has {', '.join(_REQUIRED)} "
                "(camcensus detect run writes them)",
            )
    if errors:
        return []
    numbers = {
        c: pd.to_numeric(detections[c], errors="coerce").astype("float64")
        for c in ("heading_deg", "pitch_deg", "fov_deg", "score")
    }
    # column -> (low, high, low excluded, high excluded, what is expected)
    ranges: dict[str, tuple[float, float, bool, bool, str]] = {
        "heading_deg": (0, 360, False, True, "a heading in [0, 360) degrees (take it modulo 360)"),
        "pitch_deg": (-90, 90, False, False, "a pitch in [-90, 90] degrees"),
        "fov_deg": (0, 180, True, False, "the crop's field of view in (0, 180] degrees"),
        "score": (0, 1, False, False, "a detector score in [0, 1]"),
    }
    rows: list[dict[str, Any]] = []
    raw = detections.reset_index(drop=True)
    # Plain lists: indexing a DataFrame cell by cell costs microseconds a row.
    cells = {c: raw[c].tolist() for c in raw.columns if c in (*_REQUIRED, *_OPTIONAL)}
    values = {c: numbers[c].tolist() for c in numbers}
    n_rows = len(raw)
    for i in range(n_rows):
        row = i + 1
        pid = _text(cells["panorama_id"][i])
        out: dict[str, Any] = {"panorama_id": pid}
        if not pid:
            add_error(errors, f"panorama_id[row {row}]", "empty; give the panorama's id")
        elif pid not in known:
            add_error(
                errors,
                f"panorama_id[row {row}]",
                f"{_clip(repr(pid))} is not a panorama of this project; run the detector on the "
                "project's "
                "panoramas (or import into the project that holds it)",
            )
        for c, (low, high, open_low, open_high, expected) in ranges.items():
            value = float(values[c][i])
            above = value > low if open_low else value >= low
            below = value < high if open_high else value <= high
            if not (math.isfinite(value) and above and below):
                add_error(
                    errors,
                    f"{c}[row {row}]",
                    f"found {_shown(cells[c][i])}; expected {expected}",
                )
            out[c] = value
        for c, allowed in (("camera_type", CAMERA_TYPES), ("attachment", ATTACHMENTS)):
            value_text = _text(cells[c][i]) if c in cells else ""
            value_text = value_text or "unknown"
            if value_text not in allowed:
                add_error(
                    errors,
                    f"{c}[row {row}]",
                    f"found {_clip(repr(value_text))}; expected one of {', '.join(allowed)} "
                    "(empty: unknown)",
                )
            out[c] = value_text
        if "machine" in cells:
            flag = _text(cells["machine"][i]).lower()
            if flag not in ("", "true", "1", "1.0"):
                add_error(
                    errors,
                    f"machine[row {row}]",
                    f"found {_clip(repr(cells['machine'][i]))}; a detections table holds "
                    "machine tags only (machine true): import volunteers' tags through tasks",
                )
        rows.append(out)
        if len(errors) >= _MAX_ERRORS:
            break
    return rows


def import_detections(
    session: Session,
    *,
    project: str,
    detections: pd.DataFrame,
    model_id: str | None = None,
    panoramas: Iterable[str] | Literal["all"] | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Store a detector's detections as machine tags of ``project``.

    Each panorama gets one submission of kind ``model`` (``decoder_id`` the model id, no
    assignment, not gold; never counted toward ``k``, medians or exports' counts) holding one
    ``tags`` row per detection: ``machine`` true, ``score``, the ray (heading, pitch, the crop's
    fov), ``camera_type`` and ``attachment`` as predicted (``unknown`` when not), ``current``.
    A panorama of ``panoramas`` without a detection gets a ``no_camera`` model submission, so
    "the detector saw nothing here" is recorded.

    Parameters
    ----------
    session
        An open session; the caller commits.
    project
        The project's name.
    detections
        One row per detection (:data:`camcensus.detect.infer.DETECTION_COLUMNS`; at least
        ``panorama_id``, ``heading_deg``, ``pitch_deg``, ``fov_deg``, ``score``; optionally
        ``camera_type``, ``attachment``, ``decoder_id``, ``machine``; other columns ignored).
    model_id
        The model's id (default: the one ``decoder_id`` of the detections).
    panoramas
        The panoramas the detector ran over, or ``"all"``: every panorama of the project
        (default: those with a detection). Those without a detection are stored as
        ``no_camera``.
    now
        The time (default: now, UTC).

    Returns
    -------
    ImportResult
        Counts stored; in its ledger every skipped panorama and detection by reason: a panorama
        that already holds a submission of this model is skipped (never overwritten), with its
        detections.

    Raises
    ------
    NotFound
        No such project.
    Invalid
        A bad value (each named as ``column[row N]``, rows counted from 1 after the header), a
        missing column, no model id or several, a panorama not in the project, or a detection
        on a panorama missing from ``panoramas``; nothing is stored.
    """
    now = utc_now(now)
    proj = project_named(session, project)
    known = set(
        session.scalars(
            select(Panorama.panorama_id).where(Panorama.project_id == proj.project_id)
        ).all()
    )
    errors: list[dict[str, object]] = []
    chosen = _resolve_model_id(detections, model_id, errors)
    rows = _check_rows(detections, known, errors)
    ran: list[str] = []
    if isinstance(panoramas, str):
        if panoramas != "all":
            raise Invalid(
                "The panoramas the detector ran over are a list of ids or 'all'.",
                errors=[{"field": "panoramas", "message": f"found the text {panoramas!r}"}],
            )
        panoramas = sorted(known)
    if panoramas is not None:
        seen: set[str] = set()
        for i, pid in enumerate(panoramas, start=1):
            name = _text(pid)
            if name in seen:
                continue
            seen.add(name)
            if name not in known:
                add_error(
                    errors,
                    f"panoramas[{i}]",
                    f"{_clip(repr(name))} is not a panorama of this project; list the "
                    "panoramas the detector ran over",
                )
            ran.append(name)
        extra = sorted({r["panorama_id"] for r in rows} - seen - {""})
        if extra:
            add_error(
                errors,
                "panoramas",
                f"{len(extra)} panorama(s) with detections are not in the list of panoramas the "
                f"detector ran over (e.g. {_clip(repr(extra[0]))}); pass the same list as to "
                "detect run",
            )
    if chosen:
        clash = session.scalar(select(Volunteer.volunteer_id).where(Volunteer.public_id == chosen))
        if clash is not None:
            add_error(
                errors,
                "model_id",
                f"{chosen!r} is a volunteer's id; choose another model id",
            )
    if errors:
        raise Invalid(
            f"The detections have {len(errors)} problem(s); nothing was imported "
            "(rows counted from 1 after the header).",
            errors=errors[:_MAX_ERRORS],
        )
    by_panorama: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_panorama.setdefault(r["panorama_id"], []).append(r)
    targets = sorted(set(by_panorama) | set(ran))
    result = ImportResult(model_id=chosen)
    if not targets:
        return result
    # Two imports of one model at once: on PostgreSQL the panoramas' rows are locked (in one
    # order) before looking for this model's submissions, so the second sees the first's.
    postgres = is_postgres(session)
    done: set[str] = set()
    for start in range(0, len(targets), 500):
        chunk = targets[start : start + 500]
        if postgres:
            session.execute(
                select(Panorama.panorama_id)
                .where(Panorama.panorama_id.in_(chunk))
                .order_by(Panorama.panorama_id)
                .with_for_update(key_share=True)
            ).all()
        done.update(
            session.scalars(
                select(Submission.panorama_id).where(
                    Submission.panorama_id.in_(chunk),
                    Submission.kind == "model",
                    Submission.decoder_id == chosen,
                )
            ).all()
        )
    skipped = [p for p in targets if p in done]
    result.ledger.exclude(
        IMPORT_STAGE,
        f"panoramas that already hold model {chosen!r}'s detections (kept, never overwritten)",
        len(skipped),
    )
    result.ledger.exclude(
        IMPORT_STAGE,
        f"detections on those panoramas (model {chosen!r} imported there before)",
        sum(len(by_panorama.get(p, [])) for p in skipped),
    )
    build = f"camcensus {package_version()} detect import"
    submissions: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    for pid in targets:
        if pid in done:
            continue
        found = by_panorama.get(pid, [])
        sid = new_id()
        submissions.append(
            {
                "submission_id": sid,
                "panorama_id": pid,
                "decoder_id": chosen,
                "assignment_id": None,
                "kind": "model",
                "started_at": None,
                "submitted_at": now,
                "no_camera": not found,
                "problem": None,
                "problem_note": None,
                "gold": False,
                "client_build": build,
            }
        )
        for j, r in enumerate(found, start=1):
            tags.append(
                {
                    "tag_id": new_id(),
                    "submission_id": sid,
                    "heading_deg": r["heading_deg"],
                    "pitch_deg": r["pitch_deg"],
                    "fov_deg": r["fov_deg"],
                    "attachment": r["attachment"],
                    "camera_type": r["camera_type"],
                    "machine": True,
                    "score": r["score"],
                    "client_tag_id": f"detection-{j}",
                    "replaces_tag_id": None,
                    "deleted": False,
                    "current": True,
                    "clicked_at": None,
                    "created_at": now,
                }
            )
        result.panoramas += 1
        result.no_camera += int(not found)
    for start in range(0, len(submissions), 1000):
        session.execute(insert(Submission), submissions[start : start + 1000])
    for start in range(0, len(tags), 1000):
        session.execute(insert(Tag), tags[start : start + 1000])
    result.tags = len(tags)
    return result


def panoramas_to_detect(session: Session, *, project: str, model_id: str) -> pd.DataFrame:
    """Return the project's panoramas that model ``model_id`` has not been imported on yet.

    Gold panoramas are left out (their machine tags would never be verified).

    Returns
    -------
    pandas.DataFrame
        ``panorama_id``, ``image_uri``, ``heading_deg`` (the image centre's bearing), sorted by
        panorama id.

    Raises
    ------
    NotFound
        No such project.
    """
    import pandas as pd

    proj = project_named(session, project)
    done = exists().where(
        Submission.panorama_id == Panorama.panorama_id,
        Submission.kind == "model",
        Submission.decoder_id == model_id,
    )
    rows = session.execute(
        select(Panorama.panorama_id, Panorama.image_uri, Panorama.heading_deg)
        .where(Panorama.project_id == proj.project_id, Panorama.gold.is_(False), ~done)
        .order_by(Panorama.panorama_id)
    ).all()
    frame = pd.DataFrame(
        [tuple(r) for r in rows], columns=["panorama_id", "image_uri", "heading_deg"]
    )
    frame["heading_deg"] = frame["heading_deg"].astype("float64")
    return frame


# --------------------------------------------------------------------------- verify tasks


#: Candidates :func:`next_verification` reads from its random starting point; the one with the
#: fewest verdicts among them is given.
VERIFY_WINDOW = 50


def _verdict_counts() -> Any:
    """Per tag: all verdicts, agree, disagree and unsure (a subquery over ``validations``)."""
    return (
        select(
            Validation.tag_id.label("tag_id"),
            func.count().label("n"),
            func.sum(case((Validation.answer == "agree", 1), else_=0)).label("agree"),
            func.sum(case((Validation.answer == "disagree", 1), else_=0)).label("disagree"),
            func.sum(case((Validation.answer == "unsure", 1), else_=0)).label("unsure"),
        )
        .join(Tag, Tag.tag_id == Validation.tag_id)
        .where(Tag.machine.is_(True))
        .group_by(Validation.tag_id)
        .subquery()
    )


def _standing_machine() -> tuple[Any, ...]:
    """The conditions of a standing machine tag of a model submission (joined to it)."""
    return (
        Tag.machine.is_(True),
        Tag.current.is_(True),
        Tag.deleted.is_(False),
        Submission.kind == "model",
    )


def _machine_tags() -> Any:
    """Standing machine tags of model submissions (the tags :func:`verify` judges)."""
    return (
        select(Tag)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .where(*_standing_machine())
    )


def _check_volunteer(session: Session, volunteer_id: int) -> None:
    found = session.scalar(
        select(Volunteer.volunteer_id).where(Volunteer.volunteer_id == volunteer_id)
    )
    if found is None:
        raise NotFound(
            "No volunteer has this id.",
            errors=[{"field": "volunteer_id", "message": "log in again"}],
        )


def next_verification(
    session: Session, *, project: str, volunteer_id: int, now: datetime | None = None
) -> Tag | None:
    """Return an open machine tag for this volunteer to verify, or None when none is left.

    A candidate is a standing machine tag of a model submission on a non-gold panorama of the
    project that was never given to this volunteer as a task (any assignment), that this
    volunteer has not judged, whose verdicts leave it ``open`` (:func:`verify_status` over its
    ``agree`` / ``disagree`` verdicts) and number fewer than :data:`VERIFY_CAP` (``unsure``
    verdicts count toward the cap). From a random starting point in the tag-id order, drawn
    afresh each call, the first :data:`VERIFY_WINDOW` candidates are read and the one with the
    fewest verdicts is given, so verdicts spread over the tags (a window read in batches along
    the primary key, not the whole project, keeps a request's cost flat however many tags and
    verdicts are in, on either database). Nothing is
    reserved: two volunteers may get the same tag, and :func:`verify` refuses a verdict past
    the cap or on a tag settled meanwhile.

    Raises
    ------
    NotFound
        No such project or volunteer.
    """
    utc_now(now)
    proj = project_named(session, project)
    _check_volunteer(session, volunteer_id)
    # Two steps, each a few indexed lookups whatever the planner's statistics: machine tag ids
    # in primary-key order from a random start (wrapping round, in batches that grow), then
    # the checks on each batch by id, with the margin rule applied here (verify_status).
    start = _random_start()
    ids = select(Tag.tag_id).where(
        Tag.machine.is_(True), Tag.current.is_(True), Tag.deleted.is_(False)
    )
    found: list[tuple[str, int]] = []  # (tag id, verdicts) in order from the start
    for condition in (Tag.tag_id >= start, Tag.tag_id < start):
        last: str | None = None
        batch = 4 * VERIFY_WINDOW
        while len(found) < VERIFY_WINDOW:
            page = ids.where(condition)
            if last is not None:
                page = page.where(Tag.tag_id > last)
            tag_ids = list(session.scalars(page.order_by(Tag.tag_id).limit(batch)).all())
            if not tag_ids:
                break
            last = tag_ids[-1]
            found.extend(_open_for(session, tag_ids, proj.project_id, volunteer_id))
            if len(tag_ids) < batch:
                break
            batch = min(2 * batch, 4096)
    window = found[:VERIFY_WINDOW]
    if not window:
        return None
    # The fewest verdicts in the window win; the first in order on a tie.
    best = min(range(len(window)), key=lambda i: (window[i][1], i))
    return session.get(Tag, window[best][0])


def _random_start() -> str:
    """A random point in the tag-id order (tag ids are random url-safe strings)."""
    return secrets.token_urlsafe(12)


def _open_for(
    session: Session, tag_ids: list[str], project_id: int, volunteer_id: int
) -> list[tuple[str, int]]:
    """Of ``tag_ids`` (sorted), those this volunteer may verify now, with their verdicts."""
    of_submission = dict(
        session.execute(select(Tag.tag_id, Tag.submission_id).where(Tag.tag_id.in_(tag_ids))).all()
    )
    panorama_of = dict(
        session.execute(
            select(Submission.submission_id, Submission.panorama_id).where(
                Submission.submission_id.in_(set(of_submission.values())),
                Submission.kind == "model",
            )
        ).all()
    )
    panoramas = set(panorama_of.values())
    open_panoramas = set(
        session.scalars(
            select(Panorama.panorama_id).where(
                Panorama.panorama_id.in_(panoramas),
                Panorama.project_id == project_id,
                Panorama.gold.is_(False),
            )
        ).all()
    )
    given = set(
        session.scalars(
            select(Assignment.panorama_id).where(
                Assignment.volunteer_id == volunteer_id,
                Assignment.panorama_id.in_(open_panoramas),
            )
        ).all()
    )
    verdicts: dict[str, list[str]] = {}
    judged: set[str] = set()
    for tag_id, who, answer in session.execute(
        select(Validation.tag_id, Validation.volunteer_id, Validation.answer).where(
            Validation.tag_id.in_(tag_ids)
        )
    ).all():
        verdicts.setdefault(str(tag_id), []).append(str(answer))
        if who == volunteer_id:
            judged.add(str(tag_id))
    out: list[tuple[str, int]] = []
    for tag_id in tag_ids:
        panorama = panorama_of.get(of_submission.get(tag_id, ""))
        if panorama not in open_panoramas or panorama in given or tag_id in judged:
            continue
        answers = verdicts.get(tag_id, [])
        if len(answers) >= VERIFY_CAP:
            continue
        if verify_status(answers.count("agree"), answers.count("disagree")) != "open":
            continue
        out.append((tag_id, len(answers)))
    return out


def _counts_of(session: Session, tag_id: str) -> tuple[int, int, int]:
    """(agree, disagree, unsure) verdicts of one tag."""
    rows = dict(
        session.execute(
            select(Validation.answer, func.count())
            .where(Validation.tag_id == tag_id)
            .group_by(Validation.answer)
        ).all()
    )
    return int(rows.get("agree", 0)), int(rows.get("disagree", 0)), int(rows.get("unsure", 0))


def verify(
    session: Session,
    *,
    tag_id: str,
    volunteer_id: int,
    answer: str,
    now: datetime | None = None,
) -> Validation:
    """Record a volunteer's verdict on a machine tag: ``agree`` (a camera), ``disagree`` (not a
    camera) or ``unsure``.

    Sending the same answer again returns the stored verdict (a double click), even once the
    tag is settled.

    Raises
    ------
    Invalid
        An answer that is not one of the three.
    NotFound
        No such machine tag (a volunteer's tag is checked with :func:`camcensus.db.review.
        validate`), or no such volunteer.
    Forbidden
        The tag's panorama was given to the volunteer as a task (a verifier never judges a
        panorama they tagged, and is never later given it to tag).
    Conflict
        The volunteer already gave another answer on this tag; the tag is settled
        (``confirmed`` or ``rejected``) or has its :data:`VERIFY_CAP` verdicts; or the tag is on
        a gold panorama.
    """
    from camcensus.db.review import add_verdict, check_verdict_answer, stored_verdict

    now = utc_now(now)
    check_verdict_answer(answer, "The verdict")
    row = session.execute(
        select(Tag.tag_id, Submission.panorama_id, Panorama.gold)
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .where(Tag.tag_id == tag_id, *_standing_machine())
    ).one_or_none()
    if row is None:
        raise NotFound(
            "No machine tag has this id.",
            errors=[
                {
                    "field": "tag_id",
                    "message": "take a new verify task (volunteers' tags are checked with "
                    "POST /api/validations)",
                }
            ],
        )
    postgres = is_postgres(session)
    # One verdict of a volunteer at a time (a double click returns the stored row), then one
    # verdict on the tag at a time (the cap and the margin are counted after the lock).
    lock_volunteer(session, volunteer_id, postgres=postgres)
    if postgres:
        session.execute(select(Tag.tag_id).where(Tag.tag_id == tag_id).with_for_update()).all()
    existing = stored_verdict(
        session,
        tag_id=tag_id,
        volunteer_id=volunteer_id,
        answer=answer,
        conflict="You already gave a verdict on this machine tag with another answer.",
    )
    if existing is not None:
        return existing
    given = session.scalar(
        select(Assignment.assignment_id).where(
            Assignment.panorama_id == row.panorama_id, Assignment.volunteer_id == volunteer_id
        )
    )
    if given is not None:
        raise Forbidden(
            "Volunteers verify machine tags on panoramas they were not given as a task.",
            errors=[{"field": "tag_id", "message": "you were given this tag's panorama"}],
        )
    if row.gold:
        raise Conflict(
            "Machine tags on gold panoramas are not verified (their answer is known).",
            errors=[{"field": "tag_id", "message": "take a new verify task"}],
        )
    agree, disagree, unsure = _counts_of(session, tag_id)
    status = verify_status(agree, disagree)
    if status != "open" or agree + disagree + unsure >= VERIFY_CAP:
        why = (
            f"it is {status}"
            if status != "open"
            else f"it has its {VERIFY_CAP} verdicts (it stays open: never a confirmed camera)"
        )
        raise Conflict(
            f"This machine tag takes no more verdicts: {why}.",
            errors=[{"field": "tag_id", "message": "take a new verify task"}],
        )
    return add_verdict(session, tag_id=tag_id, volunteer_id=volunteer_id, answer=answer, now=now)


def verification_table(
    session_or_engine: Session | Engine, *, project: str | None = None
) -> pd.DataFrame:
    """Return one row per machine tag with its verdicts and status.

    Parameters
    ----------
    session_or_engine
        An open session, or an engine (a session is opened and closed here).
    project
        The project's name (default: every project).

    Returns
    -------
    pandas.DataFrame
        :data:`VERIFICATION_COLUMNS`: ``project``, ``tag_id``, ``panorama_id``, ``model_id``
        (the submission's ``decoder_id``), ``heading_deg``, ``pitch_deg``, ``fov_deg``,
        ``score``, ``camera_type``, ``attachment``, ``n_agree``, ``n_disagree``, ``n_unsure``
        (int64) and ``status`` (:func:`verify_status` of ``n_agree``, ``n_disagree``); sorted
        by project, panorama and tag. Only standing machine tags of model submissions.

    Raises
    ------
    NotFound
        No such project.
    """
    if isinstance(session_or_engine, Engine):
        with Session(session_or_engine) as session:
            return verification_table(session, project=project)
    import pandas as pd

    session = session_or_engine
    counts = _verdict_counts()
    query = (
        select(
            Project.name,
            Tag.tag_id,
            Submission.panorama_id,
            Submission.decoder_id,
            Tag.heading_deg,
            Tag.pitch_deg,
            Tag.fov_deg,
            Tag.score,
            Tag.camera_type,
            Tag.attachment,
            func.coalesce(counts.c.agree, literal(0)),
            func.coalesce(counts.c.disagree, literal(0)),
            func.coalesce(counts.c.unsure, literal(0)),
        )
        .join(Submission, Submission.submission_id == Tag.submission_id)
        .join(Panorama, Panorama.panorama_id == Submission.panorama_id)
        .join(Project, Project.project_id == Panorama.project_id)
        .outerjoin(counts, counts.c.tag_id == Tag.tag_id)
        .where(*_standing_machine())
        .order_by(Project.name, Submission.panorama_id, Tag.tag_id)
    )
    if project is not None:
        proj = project_named(session, project)
        query = query.where(Project.project_id == proj.project_id)
    names = list(VERIFICATION_COLUMNS[:-1])
    frame = pd.DataFrame([tuple(r) for r in session.execute(query).all()], columns=names)
    for c in ("heading_deg", "pitch_deg", "fov_deg", "score"):
        frame[c] = frame[c].astype("float64")
    for c in ("n_agree", "n_disagree", "n_unsure"):
        frame[c] = frame[c].astype("int64")
    for c in ("project", "tag_id", "panorama_id", "model_id", "camera_type", "attachment"):
        frame[c] = frame[c].astype(object)
    frame["status"] = [
        verify_status(int(a), int(d))
        for a, d in zip(frame["n_agree"], frame["n_disagree"], strict=True)
    ]
    return frame[list(VERIFICATION_COLUMNS)]
