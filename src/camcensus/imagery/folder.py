"""Folder source: equirectangular JPEG/PNG files plus an index (CSV or GeoJSON).

The index lists one panorama per row (CSV) or per Point feature (GeoJSON, lon/lat from the
geometry, the other fields from ``properties``):

``panorama_id``
    The group's own id of the panorama (kept as ``source_ref``; the platform gives each
    panorama a new random ``panorama_id``).
``lat``, ``lon``
    WGS84 degrees (CSV only).
``heading_deg``
    True-north bearing of the image's centre column, in [0, 360).
``captured``
    Capture date, ``YYYY-MM-DD`` or ``YYYY-MM`` (an ISO date-time is cut to its date); may be
    empty.
``licence``
    The image's licence (e.g. ``CC-BY-SA-4.0``); may be empty when ``licence=`` is passed.
``file`` (optional)
    The image, relative to the folder; default ``<panorama_id>.jpg`` (or ``.jpeg``, ``.png``).

Every problem of the index and the images is collected and raised together
(:class:`~camcensus._errors.InputError`, each naming the file, row, column and the fix), or,
with ``errors="exclude"``, the rows with problems are left out and counted in a
:class:`~camcensus._errors.Ledger`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus.imagery.base import (
    captured_from,
    equirect_problem,
    new_panorama_id,
    panoramas_frame,
)
from camcensus.imagery.store import ImageStore

__all__ = ["INDEX_NAMES", "panoramas_from_folder"]

#: Index files looked for in the folder when ``index`` is not given, in this order.
INDEX_NAMES: tuple[str, ...] = (
    "panoramas.csv",
    "panoramas.geojson",
    "index.csv",
    "index.geojson",
)
_REQUIRED_CSV = ("panorama_id", "lat", "lon", "heading_deg", "captured", "licence")
_REQUIRED_GEOJSON = ("panorama_id", "heading_deg", "captured", "licence")
_FORMATS = {"JPEG": ".jpg", "PNG": ".png"}
_SUFFIXES = (".jpg", ".jpeg", ".png")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\\:]")
_MAX_ID = 200
_STAGE = "import folder"
_NA = {"", "NA", "NaN", "nan", "None", "null"}


@dataclass
class _Row:
    """One index row as read, and what the checks made of it."""

    number: int
    values: dict[str, Any]
    problems: list[Problem]
    reasons: list[str]
    path: Path | None = None
    fmt: str = ""
    width: int = 0
    height: int = 0


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _read_index(index: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Return the index as a frame of raw values (one row per panorama) and whole-file problems."""
    if index.suffix.lower() in (".geojson", ".json"):
        return _read_geojson(index)
    from camcensus.io._validate import missing_columns, read_text_table

    df = read_text_table(index)
    df.columns = [str(c).strip() for c in df.columns]
    return df, missing_columns(
        df, index, _REQUIRED_CSV, why="the folder importer needs it for every panorama"
    )


def _read_geojson(index: Path) -> tuple[pd.DataFrame, list[Problem]]:
    def whole(found: str, fix: str) -> InputError:
        return InputError(
            [
                Problem(
                    str(index),
                    None,
                    None,
                    found,
                    "a GeoJSON FeatureCollection of Point features (WGS84 lon/lat)",
                    fix,
                )
            ]
        )

    try:
        doc = json.loads(index.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise whole(
            f"a file that is not JSON ({type(err).__name__}: {err})",
            "export the index again as GeoJSON (UTF-8)",
        ) from err
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise whole(
            f"a JSON {type(doc).__name__} whose type is {_short(doc)}",
            "wrap the points in {'type': 'FeatureCollection', 'features': [...]}",
        )
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise whole("no features", "add one Point feature per panorama")
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, feature in enumerate(features, start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        geom = feature.get("geometry") if isinstance(feature, dict) else None
        row: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if (
            not isinstance(geom, dict)
            or geom.get("type") != "Point"
            or not isinstance(coords, list)
            or len(coords) < 2
        ):
            problems.append(
                Problem(
                    str(index),
                    i,
                    "geometry",
                    f"geometry {_short(geom)}",
                    "a Point with coordinates [lon, lat]",
                    "give each panorama a Point geometry at the camera",
                )
            )
            row["lon"], row["lat"] = None, None
        else:
            row["lon"], row["lat"] = coords[0], coords[1]
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in _REQUIRED_GEOJSON:
        if col not in df.columns:
            problems.append(
                Problem(
                    str(index),
                    None,
                    col,
                    "no such property in any feature",
                    f"property {col!r} in every feature",
                    f"add {col!r} to each feature's properties",
                )
            )
    return df, problems


def _short(value: Any) -> str:
    return repr(value)[:60]


def _find_index(folder: Path, index: str | os.PathLike[str] | None) -> Path:
    if index is not None:
        path = Path(index)
        path = path if path.is_absolute() else folder / path
        if not path.is_file():
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        "no such file",
                        "the panoramas' index (CSV or GeoJSON)",
                        "check the path given as index=",
                    )
                ]
            )
        return path
    found = [folder / n for n in INDEX_NAMES if (folder / n).is_file()]
    if len(found) != 1:
        what = "no index file" if not found else f"{len(found)} index files"
        raise InputError(
            [
                Problem(
                    str(folder),
                    None,
                    None,
                    what,
                    f"exactly one of {', '.join(INDEX_NAMES)} in the folder",
                    "add a CSV listing panorama_id, lat, lon, heading_deg, captured, licence "
                    "(and optionally file) for each image, or pass index= to choose one",
                )
            ]
        )
    return found[0]


def _check_number(
    row: _Row, index: Path, column: str, low: float, high: float, *, high_open: bool, fix: str
) -> float | None:
    raw = row.values.get(column)
    text = _text(raw)
    try:
        value = float(text) if not isinstance(raw, int | float) else float(raw)
    except ValueError:
        value = math.nan
    inside = (
        math.isfinite(value) and low <= value and (value < high if high_open else value <= high)
    )
    if inside:
        return value
    bracket = ")" if high_open else "]"
    found = "an empty cell" if text in _NA else repr(raw)
    row.problems.append(
        Problem(
            str(index), row.number, column, found, f"a number in [{low:g}, {high:g}{bracket}", fix
        )
    )
    row.reasons.append(f"{column} missing or out of range")
    return None


def _safe_file(folder: Path, real_folder: Path, name: str) -> tuple[Path | None, str]:
    """Return the image file inside the folder, or ``None`` and why it is refused."""
    if not name:
        return None, "an empty file name"
    if _BAD_NAME.search(name) or "%" in name:
        return None, "a control character, backslash, ':' or '%' in the file name"
    if name.startswith(("/", "~")) or Path(name).is_absolute():
        return None, "an absolute path"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None, "a '..', '.' or empty path segment (it would leave the folder)"
    if Path(name).suffix.lower() not in _SUFFIXES:
        return None, "a file that is not .jpg, .jpeg or .png"
    candidate = folder.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        return None, "no such file in the folder"
    except (OSError, RuntimeError) as err:
        return None, f"a path that cannot be resolved ({type(err).__name__})"
    if not real.is_relative_to(real_folder):
        return None, "a symbolic link that leads outside the folder"
    if not real.is_file():
        return None, "not a file"
    return real, ""


def _check_image(row: _Row, index: Path, folder: Path, real_folder: Path) -> None:
    pid = _text(row.values.get("panorama_id"))
    name = _text(row.values.get("file"))
    column = "file"
    if not name:
        candidates = [f"{pid}{s}" for s in _SUFFIXES] if pid else []
        name = next((c for c in candidates if (folder / c).is_file()), "")
        if not name:
            if pid:
                row.problems.append(
                    Problem(
                        str(index),
                        row.number,
                        column,
                        f"no file column value and no {pid}.jpg, {pid}.jpeg or {pid}.png",
                        "the image of the panorama in the folder",
                        "add the image, or name it in a 'file' column",
                    )
                )
                row.reasons.append("image file missing")
            return
    path, why = _safe_file(folder, real_folder, name)
    if path is None:
        missing = why == "no such file in the folder"
        row.problems.append(
            Problem(
                str(index),
                row.number,
                column,
                f"{name[:80]!r}: {why}",
                "the name of a .jpg or .png file inside the folder (sub-folders allowed)",
                "copy the image into the folder and give its name relative to the folder"
                if missing
                else "give a plain relative file name inside the folder, without '..'",
            )
        )
        row.reasons.append("image file missing" if missing else "unsafe file name")
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height, fmt = int(im.width), int(im.height), str(im.format or "")
    except (UnidentifiedImageError, OSError, ValueError) as err:
        row.problems.append(
            Problem(
                str(index),
                row.number,
                column,
                f"{name!r}, which is not a readable image ({type(err).__name__})",
                "an equirectangular JPEG or PNG",
                "export the panorama again as JPEG or PNG",
            )
        )
        row.reasons.append("unreadable image")
        return
    if fmt not in _FORMATS:
        row.problems.append(
            Problem(
                str(index),
                row.number,
                column,
                f"{name!r}, a {fmt or 'unknown'} image",
                "a JPEG or PNG image",
                "convert it to JPEG (e.g. quality 90)",
            )
        )
        row.reasons.append("not JPEG or PNG")
        return
    bad = equirect_problem(width, height, file=str(index), row=row.number, column=column)
    if bad is not None:
        row.problems.append(
            Problem(bad.file, bad.row, bad.column, f"{name!r}: {bad.found}", bad.expected, bad.fix)
        )
        row.reasons.append("not a 2:1 equirectangular image")
        return
    row.path, row.fmt, row.width, row.height = path, fmt, width, height


def panoramas_from_folder(
    folder: str | os.PathLike[str],
    *,
    store: ImageStore,
    index: str | os.PathLike[str] | None = None,
    licence: str | None = None,
    errors: Literal["raise", "exclude"] = "raise",
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Import a folder of equirectangular images listed in an index, pinning each in ``store``.

    Parameters
    ----------
    folder
        The folder of images and the index.
    store
        Where the images are copied (content-addressed by sha256; blurred first when the
        store blurs).
    index
        The index file (CSV or GeoJSON), relative to ``folder`` or absolute; default the one
        of :data:`INDEX_NAMES` found in the folder.
    licence
        Licence of rows whose ``licence`` cell is empty.
    errors
        ``"raise"``: raise every problem together; ``"exclude"``: leave out the rows with
        problems and count them in ``ledger`` (stage ``import folder``, one reason each).
    ledger
        Collects the exclusions.

    Returns
    -------
    pandas.DataFrame
        One row per panorama, columns :data:`~camcensus.imagery.base.PANORAMA_COLUMNS`
        (``source`` ``folder``, ``source_ref`` the index's ``panorama_id``, ``image_uri`` the
        stored copy, ``republishable`` true), in index order.

    Raises
    ------
    InputError
        For a missing or unreadable index or missing columns (always), and with
        ``errors="raise"`` for any bad row: a missing, empty or repeated id, lat/lon out of
        range, heading outside [0, 360), an unreadable date, no licence, a file name that
        would leave the folder (``..``, absolute, a symbolic link out), a missing, unreadable
        or non-2:1 image.
    """
    if errors not in ("raise", "exclude"):
        raise OptionError(f"errors={errors!r}: use 'raise' or 'exclude'")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            [
                Problem(
                    str(folder),
                    None,
                    None,
                    "no such folder" if not folder.exists() else "a file, not a folder",
                    "the folder of panoramas and their index",
                    "check the path",
                )
            ]
        )
    real_folder = folder.resolve(strict=True)
    index_path = _find_index(folder, index)
    df, whole = _read_index(index_path)
    if whole:
        raise InputError(whole)
    default_licence = _text(licence)
    ids = [_text(v) for v in df["panorama_id"]]
    seen = Counter(i for i in ids if i)
    first_row: dict[str, int] = {}
    rows: list[_Row] = []
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in df.to_dict("records")
    ]
    for number, values in enumerate(records, start=1):
        row = _Row(number, values, [], [])
        rows.append(row)
        pid = ids[number - 1]
        if not pid or len(pid) > _MAX_ID or _BAD_NAME.search(pid):
            row.problems.append(
                Problem(
                    str(index_path),
                    number,
                    "panorama_id",
                    repr(values.get("panorama_id"))[:80],
                    f"a text id of 1 to {_MAX_ID} printable characters",
                    "give every panorama an id",
                )
            )
            row.reasons.append("missing or bad panorama_id")
        elif seen[pid] > 1:
            if pid in first_row:
                row.problems.append(
                    Problem(
                        str(index_path),
                        number,
                        "panorama_id",
                        f"{pid!r} again (first on row {first_row[pid]})",
                        "each panorama id once",
                        "remove the repeated row or give the panorama its own id",
                    )
                )
                row.reasons.append("repeated panorama_id")
            else:
                first_row[pid] = number
        wgs84 = "store WGS84 longitude/latitude in degrees (lat first is a common swap)"
        lat = _check_number(row, index_path, "lat", -90, 90, high_open=False, fix=wgs84)
        lon = _check_number(row, index_path, "lon", -180, 180, high_open=False, fix=wgs84)
        heading = _check_number(
            row,
            index_path,
            "heading_deg",
            0,
            360,
            high_open=True,
            fix="give the true-north bearing of the image's centre column, 0 <= heading < 360 "
            "(take it modulo 360)",
        )
        try:
            captured = captured_from(_text(values.get("captured")) or None)
        except ValueError as err:
            row.problems.append(
                Problem(
                    str(index_path),
                    number,
                    "captured",
                    repr(values.get("captured"))[:60],
                    "a date YYYY-MM-DD or YYYY-MM, or an empty cell",
                    f"write the capture date as e.g. 2024-05-17 ({err})",
                )
            )
            row.reasons.append("unreadable capture date")
            captured = None
        row_licence = _text(values.get("licence")) or default_licence
        if not row_licence or len(row_licence) > 200:
            row.problems.append(
                Problem(
                    str(index_path),
                    number,
                    "licence",
                    "an empty cell" if not row_licence else "a text over 200 characters",
                    "the licence of the image, e.g. CC-BY-SA-4.0",
                    "fill in the licence under which volunteers may see the image, or pass "
                    "licence= for every row",
                )
            )
            row.reasons.append("no licence")
        _check_image(row, index_path, folder, real_folder)
        row.values = {
            "source_ref": pid,
            "lat": lat,
            "lon": lon,
            "heading_deg": heading,
            "captured": captured,
            "licence": row_licence,
        }
    problems = [p for r in rows for p in r.problems]
    if problems and errors == "raise":
        raise InputError(problems)
    ledger = ledger if ledger is not None else Ledger()
    for reason, count in Counter(r.reasons[0] for r in rows if r.problems).items():
        ledger.exclude(_STAGE, f"{reason} ({index_path.name})", count)
    out = []
    for r in rows:
        if r.problems or r.path is None:
            continue
        data = r.path.read_bytes()
        uri = store.put(str(r.values["source_ref"]), data, suffix=_FORMATS[r.fmt])
        out.append(
            {
                "panorama_id": new_panorama_id(),
                "lon": r.values["lon"],
                "lat": r.values["lat"],
                "heading_deg": r.values["heading_deg"],
                "captured": r.values["captured"],
                "source": "folder",
                "source_ref": r.values["source_ref"],
                "image_uri": uri,
                "width_px": r.width,
                "height_px": r.height,
                "licence": r.values["licence"],
                "republishable": True,
                "intersection_id": None,
            }
        )
    return panoramas_frame(out)
