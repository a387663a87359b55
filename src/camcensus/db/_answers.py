"""The answer a client sends for a task: tag versions (:class:`TagIn`) and their checks (private).

:func:`validated_tags` collects every invalid value of a submission and raises one
:class:`~camcensus.db.errors.Invalid` naming each field (``tags[3].pitch_deg``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camcensus.db._assign import add_error
from camcensus.db.errors import Invalid
from camcensus.db.models import ATTACHMENTS, CAMERA_TYPES, PROBLEMS

__all__ = ["MAX_TAGS", "TagIn", "standing_tags", "validated_tags"]

#: Most tag versions one submission may carry.
MAX_TAGS = 200


@dataclass(frozen=True)
class TagIn:
    """One tag version as the client sent it.

    ``client_id`` is the client's id of this version; ``replaces`` the ``client_id`` of an
    earlier version in the same submission that this one edits (moved, re-typed or deleted).
    """

    client_id: str
    heading_deg: float
    pitch_deg: float
    fov_deg: float
    attachment: str
    camera_type: str
    replaces: str | None = None
    deleted: bool = False
    clicked_at: datetime | None = None


def _number(
    errors: list[dict[str, object]],
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
    expected: str,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        add_error(errors, name, f"found {value!r}; expected {expected}")


def _as_tag(tag: TagIn | Mapping[str, Any], index: int, errors: list[dict[str, object]]) -> TagIn:
    if isinstance(tag, TagIn):
        return tag
    try:
        return TagIn(**dict(tag))
    except TypeError as exc:
        add_error(errors, f"tags[{index}]", f"not a tag ({exc}); expected the fields of TagIn")
        return TagIn("", math.nan, math.nan, math.nan, "", "")


def _check_tags(tags: Sequence[TagIn], errors: list[dict[str, object]]) -> None:
    seen: dict[str, int] = {}
    replaced: set[str] = set()
    for i, t in enumerate(tags):
        at = f"tags[{i}]"
        if not isinstance(t.client_id, str) or not 1 <= len(t.client_id) <= 100:
            add_error(errors, f"{at}.client_id", "expected a text id of 1 to 100 characters")
        elif t.client_id in seen:
            add_error(
                errors,
                f"{at}.client_id",
                f"found {t.client_id!r} again (first at tags[{seen[t.client_id]}]); every "
                "version needs its own client_id",
            )
        _number(
            errors,
            f"{at}.heading_deg",
            t.heading_deg,
            0,
            360,
            open_high=True,
            expected="a bearing in [0, 360) degrees from true north",
        )
        _number(
            errors,
            f"{at}.pitch_deg",
            t.pitch_deg,
            -90,
            90,
            expected="an angle in [-90, 90] degrees above the horizon",
        )
        _number(
            errors,
            f"{at}.fov_deg",
            t.fov_deg,
            0,
            180,
            open_low=True,
            expected="the viewer's horizontal field of view in (0, 180] degrees",
        )
        if t.attachment not in ATTACHMENTS:
            add_error(
                errors, f"{at}.attachment", f"found {t.attachment!r}; expected one of {ATTACHMENTS}"
            )
        if t.camera_type not in CAMERA_TYPES:
            add_error(
                errors,
                f"{at}.camera_type",
                f"found {t.camera_type!r}; expected one of {CAMERA_TYPES}",
            )
        if not isinstance(t.deleted, bool):
            add_error(errors, f"{at}.deleted", f"found {t.deleted!r}; expected true or false")
        if t.clicked_at is not None and (
            not isinstance(t.clicked_at, datetime) or t.clicked_at.tzinfo is None
        ):
            add_error(errors, f"{at}.clicked_at", "expected a time with its UTC offset")
        if t.replaces is not None:
            if t.replaces not in seen:
                add_error(
                    errors,
                    f"{at}.replaces",
                    f"found {t.replaces!r}; expected the client_id of an earlier tag version "
                    "in this submission",
                )
            elif t.replaces in replaced:
                add_error(
                    errors,
                    f"{at}.replaces",
                    f"version {t.replaces!r} is already replaced by another; edit the newest "
                    "version",
                )
            else:
                replaced.add(t.replaces)
        if isinstance(t.client_id, str):
            seen.setdefault(t.client_id, i)


def validated_tags(
    tags: Iterable[TagIn | Mapping[str, Any]],
    *,
    no_camera: bool,
    problem: str | None,
    problem_note: str | None,
    client_build: str | None,
    started_at: datetime | None,
) -> list[TagIn]:
    errors: list[dict[str, object]] = []
    items = list(tags)
    if len(items) > MAX_TAGS:
        raise Invalid(
            f"A submission may carry at most {MAX_TAGS} tag versions; found {len(items)}.",
            errors=[{"field": "tags", "message": f"found {len(items)}; expected <= {MAX_TAGS}"}],
        )
    parsed = [_as_tag(t, i, errors) for i, t in enumerate(items)]
    if not errors:
        _check_tags(parsed, errors)
    if not isinstance(no_camera, bool):
        add_error(errors, "no_camera", f"found {no_camera!r}; expected true or false")
    if problem is not None and problem not in PROBLEMS:
        add_error(errors, "problem", f"found {problem!r}; expected null or one of {PROBLEMS}")
    if problem_note is not None:
        if not isinstance(problem_note, str) or len(problem_note) > 500:
            add_error(errors, "problem_note", "expected a text of at most 500 characters")
        elif problem is None:
            add_error(errors, "problem_note", "a note goes with a problem; say which problem")
    if client_build is not None and (not isinstance(client_build, str) or len(client_build) > 200):
        add_error(errors, "client_build", "expected a text of at most 200 characters")
    if started_at is not None and (
        not isinstance(started_at, datetime) or started_at.tzinfo is None
    ):
        add_error(errors, "started_at", "expected a time with its UTC offset")
    if not errors:
        standing = standing_tags(parsed)
        if problem is None and not standing and not no_camera:
            add_error(
                errors,
                "no_camera",
                'no tag stands in this submission; say no_camera: true ("no camera here") '
                "or tag the cameras",
            )
        if no_camera and standing:
            add_error(
                errors,
                "no_camera",
                f"no_camera is true but {len(standing)} tag(s) stand; delete them or set "
                "no_camera to false",
            )
    if errors:
        raise Invalid(f"The submission has {len(errors)} invalid value(s).", errors=errors)
    return parsed


def standing_tags(tags: Sequence[TagIn]) -> list[TagIn]:
    """The current (not replaced), not deleted versions."""
    replaced = {t.replaces for t in tags if t.replaces is not None}
    return [t for t in tags if t.client_id not in replaced and not t.deleted]
