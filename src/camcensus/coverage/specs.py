"""Camera specifications and pixel-density bands (the ``pixel_density`` model).

A camera with ``N_h`` pixels across a horizontal field of view ``HFOV`` puts

    PPM(d) = N_h / (2 · d · tan(HFOV / 2))

pixels on each metre of a target at distance ``d`` (DESIGN.md, step 3). A band of a pixel-density
ladder is the ground the camera sees with at least that many pixels per metre: out to the slant
distance ``d_max = N_h / (2 · PPM · tan(HFOV / 2))``, i.e. out to the horizontal distance
``sqrt(d_max² - h²)`` from a camera mounted ``h`` metres up, measured to the ground.

Ladders (pixels per metre at the target):

- IEC 62676-4 (2014/2015) "DORI": detection 25, observation 62.5, recognition 125,
  identification 250 px/m (:data:`DORI`).
- The 2025 edition's ladder: 20, 40, 80, 125, 250, 500, 1500 px/m. Its level names are not
  reproduced here; the bands are named ``iec2025_<px/m>`` (:data:`LADDER_2025`).
- Face recognition: settings ``face_width_px`` pixels across a face ``face_width_m`` wide
  (default 24 px on 0.16 m = 150 px/m, the figure Amnesty cites).

Faces are not captured from steeper than setting ``max_depression_deg`` below the horizontal:
in the *face bands* (those needing at least the face-recognition density) the ground closer
than ``h / tan(max_depression_deg)`` to the camera is left out.

The default spec table (``camera_specs.csv`` beside this module, one row per camera class with
the source of every number) gives ``N_h`` and the wide and tele HFOV; each camera type has a
default class (``default_for``). Mounting heights default by mount (:data:`DEFAULT_HEIGHT_M`:
the medians of the OSM-measured priors).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import InputError, OptionError, Problem
from camcensus.cameras import MOUNT_HEIGHT_PRIORS

__all__ = [
    "BANDS",
    "DEFAULT_HEIGHT_M",
    "DORI",
    "FACE_BAND",
    "LADDER_2025",
    "SPEC_COLUMNS",
    "band_thresholds",
    "default_specs",
    "face_bands",
    "ground_radius",
    "pixels_per_metre",
    "read_specs",
    "slant_distance",
]

#: IEC 62676-4 DORI levels, pixels per metre at the target.
DORI = {"detection": 25.0, "observation": 62.5, "recognition": 125.0, "identification": 250.0}
#: The 2025 edition's pixel-density ladder, pixels per metre (bands named by their density).
LADDER_2025 = {f"iec2025_{v:g}": float(v) for v in (20, 40, 80, 125, 250, 500, 1500)}
#: The face-recognition band (settings face_width_px / face_width_m).
FACE_BAND = "face_recognition"
#: Every pixel-density band, besides "any" (the farthest band requested).
BANDS = (*DORI, *LADDER_2025, FACE_BAND)
#: Mounting height (m) by mount when a camera's ``height_m`` is unknown: the medians of
#: :data:`camcensus.cameras.MOUNT_HEIGHT_PRIORS` (OSM ``height`` tags; the same priors
#: :mod:`camcensus.locate` uses).
DEFAULT_HEIGHT_M = {mount: prior[0] for mount, prior in MOUNT_HEIGHT_PRIORS.items()}
#: Columns of a spec table.
SPEC_COLUMNS = (
    "spec_id",
    "default_for",
    "description",
    "h_pixels",
    "hfov_wide_deg",
    "hfov_tele_deg",
    "source",
)


def pixels_per_metre(
    distance_m: np.ndarray | float, h_pixels: float, hfov_deg: float
) -> np.ndarray:
    """Return PPM(d) = N_h / (2 d tan(HFOV/2)) at slant distance ``distance_m``."""
    d = np.asarray(distance_m, dtype="float64")
    return np.asarray(h_pixels / (2.0 * d * math.tan(math.radians(hfov_deg) / 2.0)))


def slant_distance(ppm: float, h_pixels: float, hfov_deg: float) -> float:
    """Return the farthest slant distance (m) at which the camera reaches ``ppm`` px/m."""
    return float(h_pixels / (2.0 * ppm * math.tan(math.radians(hfov_deg) / 2.0)))


def ground_radius(slant_m: np.ndarray | float, height_m: np.ndarray | float) -> np.ndarray:
    """Return the horizontal reach sqrt(d² - h²) on the ground (0 when d <= h)."""
    d = np.asarray(slant_m, dtype="float64")
    h = np.asarray(height_m, dtype="float64")
    return np.asarray(np.sqrt(np.clip(d**2 - h**2, 0.0, None)))


def band_thresholds(bands: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """Return {band: px/m} for ``bands`` (default: all of :data:`BANDS`), checking the names."""
    face = settings.get_float("face_width_px") / settings.get_float("face_width_m")
    table = {**DORI, **LADDER_2025, FACE_BAND: face}
    names = list(BANDS) if bands is None else [b for b in bands if b != "any"]
    unknown = [b for b in names if b not in table]
    if unknown:
        raise OptionError(
            f"unknown pixel-density band(s) {', '.join(map(repr, unknown))}; available: "
            + ", ".join(BANDS)
            + " (and 'any', the farthest of those requested)"
        )
    if not names:
        raise OptionError(
            "no pixel-density band requested. Fix: pass e.g. bands=['identification']"
        )
    return {b: table[b] for b in names}


def face_bands(thresholds: dict[str, float]) -> set[str]:
    """Return the bands dense enough for face recognition (the vertical limit applies)."""
    face = settings.get_float("face_width_px") / settings.get_float("face_width_m")
    return {b for b, v in thresholds.items() if v >= face - 1e-9}


def default_specs() -> pd.DataFrame:
    """Return the default spec table shipped with camcensus (``camera_specs.csv``)."""
    res = resources.files("camcensus.coverage").joinpath("camera_specs.csv")
    with resources.as_file(res) as path:
        return read_specs(path)


def read_specs(path: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and check a spec table (CSV path or DataFrame with :data:`SPEC_COLUMNS`).

    Every problem (a missing column, a duplicate ``spec_id``, a pixel count or field of view
    that is not a positive number, a tele HFOV wider than the wide one, a camera type given a
    default twice) is reported together with its row.
    """
    name = "<spec table>" if isinstance(path, pd.DataFrame) else str(path)
    df = path.copy() if isinstance(path, pd.DataFrame) else pd.read_csv(path, dtype=str)
    problems: list[Problem] = []
    missing = [c for c in SPEC_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            [
                Problem(name, None, c, "no such column", "a spec-table column",
                        "add it (see camcensus.coverage.specs.SPEC_COLUMNS)")
                for c in missing
            ]
        )  # fmt: skip
    df = df.reset_index(drop=True)
    df["default_for"] = df["default_for"].fillna("").astype(str)
    df["spec_id"] = df["spec_id"].astype(str)
    for col in ("h_pixels", "hfov_wide_deg", "hfov_tele_deg"):
        values = pd.to_numeric(df[col], errors="coerce")
        for i in np.flatnonzero(~(values > 0) | (values > 360) & (col != "h_pixels")):
            problems.append(
                Problem(name, int(i) + 1, col, repr(df[col].iloc[i]), "a positive number",
                        "give the datasheet's figure")
            )  # fmt: skip
        df[col] = values
    for i in np.flatnonzero(df["hfov_tele_deg"] > df["hfov_wide_deg"]):
        problems.append(
            Problem(name, int(i) + 1, "hfov_tele_deg", f"{df['hfov_tele_deg'].iloc[i]:g}",
                    f"at most hfov_wide_deg ({df['hfov_wide_deg'].iloc[i]:g})",
                    "swap the two fields of view")
        )  # fmt: skip
    for i in np.flatnonzero(df["spec_id"].duplicated()):
        problems.append(
            Problem(name, int(i) + 1, "spec_id", repr(df["spec_id"].iloc[i]), "a unique id",
                    "rename one of the rows")
        )  # fmt: skip
    seen: dict[str, int] = {}
    for row, value in enumerate(df["default_for"]):
        for t in filter(None, (v.strip() for v in value.split(";"))):
            if t in seen:
                problems.append(
                    Problem(name, row + 1, "default_for", repr(t),
                            f"each camera type the default of one row (already row {seen[t]})",
                            "remove it from one of the rows")
                )  # fmt: skip
            seen[t] = row + 1
    if problems:
        raise InputError(problems)
    return df


def spec_rows(
    camera_type: np.ndarray, spec_id: np.ndarray | None, specs: pd.DataFrame
) -> np.ndarray:
    """Return the row of ``specs`` for each camera: its ``spec_id`` if given, else the row that
    is the default for its ``camera_type`` (else the default for ``unknown``)."""
    index = {s: i for i, s in enumerate(specs["spec_id"])}
    default: dict[str, int] = {}
    for i, value in enumerate(specs["default_for"]):
        for t in filter(None, (v.strip() for v in str(value).split(";"))):
            default[t] = i
    if "unknown" not in default:
        raise OptionError(
            "the spec table gives no default for camera type 'unknown'. Fix: add 'unknown' to "
            "one row's default_for column."
        )
    rows = np.array([default.get(str(t), default["unknown"]) for t in camera_type], dtype=int)
    if spec_id is not None:
        given = [(k, s) for k, s in enumerate(spec_id) if isinstance(s, str) and s]
        bad = sorted({s for _, s in given if s not in index})
        if bad:
            raise OptionError(
                f"spec_id(s) {', '.join(map(repr, bad))} are not in the spec table "
                f"({', '.join(index)}). Fix: add rows for them or correct the cameras' spec_id."
            )
        for k, s in given:
            rows[k] = index[s]
    return rows
