"""The direction grammar of OpenStreetMap's ``camera:direction`` and ``direction`` tags.

Every form the OSM wiki (Key:direction, Key:camera:direction) allows is read:

- degrees clockwise from true north: ``135``, ``22.5``, ``360`` (= ``0``); a trailing ``°`` is
  allowed; a negative value is a bearing counted anticlockwise (``-90`` = ``270``);
- the 16 compass points ``N`` ``NNE`` ... ``NNW`` (any case) and the words ``north``,
  ``east``, ``south``, ``west``;
- a clockwise range ``A-B`` of degrees or compass points: ``90-180`` faces 135° and sees 90°;
  ranges wrap through north (``270-90`` faces north, 180° wide); ``E-W`` faces south;
  a range of 359° or more (``0-360``, ``0-359``) is all-round;
- a ``;``-separated list of any of these (two cameras on one pole).

Anything else (``180, 270`` with a comma, ``up``, ``400``, a zero-width range ``90-90``) is
not guessed: :func:`parse_direction` returns an empty list and the caller keeps the raw text.
:func:`format_direction` writes a (centre, width) back as the tag's text, so a range and its
re-export agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "ALL_ROUND_DEG",
    "COMPASS_POINTS",
    "Direction",
    "compass_degrees",
    "format_direction",
    "format_directions",
    "parse_direction",
]

#: The 16 compass points, 22.5° apart clockwise from north.
COMPASS_POINTS = (
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
)
_WORDS = {"NORTH": "N", "EAST": "E", "SOUTH": "S", "WEST": "W"}
#: A range this wide or wider is all-round (``0-359`` is the whole-degree spelling of 0-360).
ALL_ROUND_DEG = 359.0
_NUMBER = r"\d+(?:\.\d+)?"
_ENDPOINT = rf"(?:{_NUMBER}|[A-Za-z]+)"
_RANGE = re.compile(rf"^({_ENDPOINT})\s*°?\s*-\s*({_ENDPOINT})\s*°?$")
_SINGLE = re.compile(rf"^(-?{_NUMBER})\s*°?$")


class Direction(NamedTuple):
    """One direction of a tag: the centre bearing and the width seen (degrees).

    ``centre_deg`` is ``None`` for an all-round range (``width_deg`` 360); ``width_deg`` is
    ``None`` when the tag gives a single bearing (the width is then unknown).
    """

    centre_deg: float | None
    width_deg: float | None


def compass_degrees(value: str) -> float:
    """Return the bearing of a compass point (``N``, ``NNE`` ... ``NNW``, ``north``), NaN if
    it is none."""
    key = value.strip().upper()
    key = _WORDS.get(key, key)
    return COMPASS_POINTS.index(key) * 22.5 if key in COMPASS_POINTS else math.nan


def _endpoint(text: str) -> float:
    """Return the bearing of a range end (non-negative degrees up to 360, or a compass point)."""
    if text[0].isdigit():
        value = float(text)
        return value if value <= 360.0 else math.nan
    return compass_degrees(text)


def _one(part: str) -> Direction | None:
    single = _SINGLE.match(part)
    if single:
        value = float(single.group(1))
        if abs(value) > 360.0:
            return None
        return Direction(value % 360.0 + 0.0, None)
    bearing = compass_degrees(part)
    if math.isfinite(bearing):
        return Direction(bearing, None)
    bounds = _RANGE.match(part)
    if not bounds:
        return None
    a, b = (_endpoint(x) for x in bounds.groups())
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    span = b - a
    if span >= ALL_ROUND_DEG:
        return Direction(None, 360.0)
    width = span % 360.0
    if width == 0.0:
        return None  # "90-90": a range of no width is no direction we can read
    if width >= ALL_ROUND_DEG:
        return Direction(None, 360.0)
    return Direction((a + width / 2.0) % 360.0 + 0.0, width)


def parse_direction(value: object) -> list[Direction]:
    """Return every direction of a ``camera:direction`` / ``direction`` value.

    Parameters
    ----------
    value
        The tag's text (anything else, or a missing value, reads as no direction).

    Returns
    -------
    list of Direction
        One entry per ``;``-separated part, in the tag's order. Empty when the value is
        missing, blank, or any part cannot be read (the whole value is then unreadable: the
        caller keeps it raw and counts it; nothing is guessed).
    """
    if not isinstance(value, str):
        return []
    parts = [p.strip() for p in value.split(";")]
    parts = [p for p in parts if p]
    out = []
    for part in parts:
        one = _one(part)
        if one is None:
            return []
        out.append(one)
    return out


def _number(x: float) -> str:
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_direction(centre_deg: float | None, width_deg: float | None = None) -> str:
    """Return the tag text of one direction: ``135``, a clockwise range ``90-180``, or
    ``0-360`` for all-round (centre missing or width of 359° or more)."""
    centre = None if centre_deg is None or not math.isfinite(centre_deg) else centre_deg
    width = None if width_deg is None or not math.isfinite(width_deg) else width_deg
    if centre is None or (width is not None and width >= ALL_ROUND_DEG):
        if centre is None and width is None:
            raise ValueError("a direction needs a centre or a width (all-round: width 360)")
        return "0-360"
    if width is None or width <= 0:
        return _number(centre % 360.0)
    start = (centre - width / 2.0) % 360.0
    end = (centre + width / 2.0) % 360.0
    return f"{_number(start)}-{_number(end)}"


def format_directions(directions: Iterable[tuple[float | None, float | None]]) -> str:
    """Return several directions as one ``;``-separated tag value."""
    return ";".join(format_direction(c, w) for c, w in directions)
