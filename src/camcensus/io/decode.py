"""Readers for Amnesty's Decode Surveillance NYC exports.

Raw export (one row per volunteer submission or tag): ``counts.csv``, ``intersections.csv``,
``panorama_url.csv``, ``cameras.csv``. Aggregated export: ``counts_per_intersections.csv``
(one row per Street View panorama). Column meanings follow Amnesty's README; any subset of the
aggregated columns is accepted: a missing column only disables the outputs that need it.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus._errors import InputError, Ledger, Problem
from camcensus.io._validate import (
    EXCLUDE_HINT,
    Col,
    Errors,
    as_counts,
    camera_count_bound,
    camera_count_why,
    missing_columns,
    parse_columns,
)
from camcensus.io._validate import read_text_table as _read

__all__ = [
    "ATTACHMENTS",
    "CATEGORIES",
    "POLE_TYPES",
    "camera_tags_from_csv",
    "intersections_from_csv",
    "panoramas_from_csv",
    "raw_intersections_from_csv",
    "submissions_from_csv",
]

#: Per-decoder count columns of ``counts.csv``, in Amnesty's order.
CATEGORIES = (
    "n_cameras",
    "attached_street",
    "attached_building",
    "attached_unknown",
    "type_dome",
    "type_bullet",
    "type_unknown",
)
#: What a camera is attached to; ``attached_street`` (street light, traffic signal, pole)
#: stands in for public ownership.
ATTACHMENTS = ("attached_street", "attached_building", "attached_unknown")
#: Types of pole-mounted cameras; pole-mounted domes stand in for NYPD "Argus" cameras.
POLE_TYPES = ("type_dome", "type_bullet", "type_unknown")

_COORD_ALIASES = (("Long", "Lat"), ("GoogleLong", "GoogleLat"), ("lon", "lat"))


def intersections_from_csv(
    path: str | Path,
    *,
    errors: Errors = "raise",
    ledger: Ledger | None = None,
    max_count: float | None = None,
) -> gpd.GeoDataFrame:
    """Read an aggregated ``counts_per_intersections.csv`` (any column subset).

    Parameters
    ----------
    path
        CSV with at least ``Long`` and ``Lat`` (WGS84 degrees of the panorama; ``GoogleLong``/
        ``GoogleLat`` are accepted too) and any of ``PanoramaId``, ``<category>_median``,
        ``<category>_agreement``, ``BoroName``, ``ImageDate``. Other columns are ignored.
    errors
        ``"raise"`` (default) raises :class:`~camcensus.InputError` listing every bad cell;
        ``"exclude"`` drops the rows holding them and counts them in ``ledger``.
    ledger
        Receives exclusions and notes.
    max_count
        Largest plausible median at one panorama (default: setting
        ``max_cameras_per_panorama``); larger values are problems of their row.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per panorama, RangeIndex, point geometry in EPSG:4326; ``PanoramaId`` (str;
        made up as ``row-<n>`` when the file has none), the median columns present (int64;
        float64 when some median ends in .5), the agreement columns present, ``BoroName`` and
        ``ImageDate`` when present.

    Notes
    -----
    A median must be a whole number >= 0 (Amnesty's medians of 3 decoders always are) or end
    in .5 (a median of an even number of decoders, as ``camcensus aggregate`` writes with an
    even ``decoders``; counted in a note). Any other fraction, a negative value, a value above
    ``max_count`` is a problem of its row. The same panorama twice (``PanoramaId``; or, in a
    file without it, the same coordinates with the same counts) is a problem too.
    """
    path = Path(path)
    df = _read(path)
    bound = camera_count_bound() if max_count is None else max_count
    lon_col, lat_col = _find_coords(df, path)
    medians = [f"{c}_median" for c in CATEGORIES if f"{c}_median" in df.columns]
    agreements = [f"{c}_agreement" for c in CATEGORIES if f"{c}_agreement" in df.columns]
    cols = [Col(lon_col, "lon"), Col(lat_col, "lat")]
    cols += [Col(m, "median", upper=bound, upper_why=camera_count_why()) for m in medians]
    cols += [Col(a, "agreement") for a in agreements]
    if "ImageDate" in df.columns:
        cols.append(Col("ImageDate", "month", nullable=True))
    if "PanoramaId" in df.columns:
        cols.append(Col("PanoramaId", "str"))
    if "BoroName" in df.columns:
        cols.append(Col("BoroName", "str", nullable=True))
    stage = "read intersections"
    parsed = parse_columns(
        df, path, cols, errors=errors, ledger=ledger, stage=stage, can_exclude=True
    )
    if "PanoramaId" in parsed.columns:
        dup = parsed["PanoramaId"].duplicated(keep="first").to_numpy()
        found = [f"PanoramaId {v!r} a second time" for v in parsed["PanoramaId"]]
        column: str | None = "PanoramaId"
        reason = "duplicated PanoramaId (first row kept)"
    else:
        # Without ids, a row repeating another (coordinates and every count) is a copy.
        same = [lon_col, lat_col, *medians, *agreements]
        same += [c for c in ("ImageDate", "BoroName") if c in parsed.columns]
        dup = parsed.duplicated(same, keep="first").to_numpy()
        first_row = parsed.groupby(same, dropna=False, sort=False).ngroup()
        row_of_group = pd.Series(parsed.index + 1).groupby(first_row.to_numpy()).min()
        found = [
            f"a copy of row {row_of_group[g]} (same coordinates and counts)" for g in first_row
        ]
        column = None
        reason = "row repeating an earlier row: same coordinates and counts (first kept)"
        shared = parsed.duplicated([lon_col, lat_col], keep=False).to_numpy() & ~dup
        n_shared = int(parsed.loc[shared].duplicated([lon_col, lat_col], keep=False).sum())
        if ledger is not None and n_shared:
            ledger.flag(
                stage,
                f"rows of {path.name} share their coordinates with another row but differ in "
                "counts",
                n_shared,
                kept_as="as separate panoramas",
            )
    if dup.any():
        if errors == "raise":
            raise InputError(
                Problem(
                    str(path),
                    int(parsed.index[i]) + 1,
                    column,
                    found[i],
                    "one row per panorama",
                    f"remove the repeated row; {EXCLUDE_HINT} (the first is kept)",
                )
                for i in np.flatnonzero(dup)[:20]
            )
        if ledger is not None:
            ledger.exclude(stage, reason, int(dup.sum()))
        parsed = parsed.loc[~dup]
    if "PanoramaId" not in parsed.columns:
        parsed["PanoramaId"] = [f"row-{i + 1}" for i in parsed.index]
    keep = ["PanoramaId", *medians, *agreements]
    keep += [c for c in ("BoroName", "ImageDate") if c in parsed.columns]
    out = parsed[keep].reset_index(drop=True)
    n_half = 0
    for m in medians:
        out[m] = as_counts(out[m])
        n_half += int((out[m] % 1 != 0).sum())
    if ledger is not None and n_half:
        ledger.note(
            f"{n_half:,} medians in {path.name} end in .5 (a median of an even number of "
            "decoders); Amnesty's medians of 3 decoders are whole numbers."
        )
    geometry = gpd.points_from_xy(parsed[lon_col].to_numpy(), parsed[lat_col].to_numpy())
    gdf = gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")
    gdf.attrs["source"] = str(path)
    return gdf


def _find_coords(df: pd.DataFrame, path: Path) -> tuple[str, str]:
    for lon, lat in _COORD_ALIASES:
        if lon in df.columns and lat in df.columns:
            return lon, lat
    raise InputError(
        missing_columns(df, path, ["Long", "Lat"], why="WGS84 panorama coordinates, degrees")
    )


def submissions_from_csv(
    path: str | Path,
    *,
    errors: Errors = "raise",
    ledger: Ledger | None = None,
    max_count: float | None = None,
) -> pd.DataFrame:
    """Read Amnesty's raw ``counts.csv``: one row per decoder submission at an intersection.

    Every count must be a whole number from 0 to ``max_count`` (default: setting
    ``max_cameras_per_panorama``); with ``errors="exclude"`` rows breaking that are dropped and
    counted in ``ledger``, otherwise every problem is raised together. A part above its whole
    (``attached_*`` above ``n_cameras``, ``type_*`` above ``attached_street``) is a problem of
    its row too; parts adding up to less than the whole are flagged (see :func:`_check_parts`).

    Returns a DataFrame with RangeIndex in file order, ``IntersectionId`` (str), the count
    columns present (int64), and ``SubmissionId``/``DecoderId`` when present; ``row`` holds the
    1-based data row of the file for error messages.
    """
    path = Path(path)
    df = _read(path)
    bound = camera_count_bound() if max_count is None else max_count
    problems = missing_columns(df, path, ["IntersectionId"], why="joins a submission to a place")
    counts = [c for c in CATEGORIES if c in df.columns]
    if not counts:
        problems += missing_columns(df, path, ["n_cameras"], why="a count per decoder")
    if problems:
        raise InputError(problems)
    cols = [Col("IntersectionId", "str")]
    cols += [Col(c, "whole", upper=bound, upper_why=camera_count_why()) for c in counts]
    cols += [Col(c, "str", nullable=True) for c in ("SubmissionId", "DecoderId") if c in df]
    df = df.assign(row=np.arange(1, len(df) + 1))
    parsed = parse_columns(
        df, path, cols, errors=errors, ledger=ledger, stage="read submissions", can_exclude=True
    )
    parsed = _check_parts(parsed, path, errors=errors, ledger=ledger)
    keep = [c for c in ("SubmissionId", "DecoderId") if c in parsed.columns]
    out = parsed[["IntersectionId", *keep, *counts, "row"]].reset_index(drop=True)
    for c in counts:
        out[c] = as_counts(out[c])
    out.attrs["source"] = str(path)
    return out


def _check_parts(
    parsed: pd.DataFrame, path: Path, *, errors: Errors, ledger: Ledger | None
) -> pd.DataFrame:
    """Check each submission's parts against its whole (Amnesty's micro-task design).

    Every camera a volunteer tags gets one attachment, and only cameras on street furniture get
    a type: ``n_cameras`` is the sum of the ``attached_*`` counts, and ``attached_street`` the
    sum of the ``type_*`` counts. A part (or the sum of the parts) above its whole cannot come
    from the platform (a typo or a shifted column): a problem of its row, raised, or with
    ``errors="exclude"`` dropped and counted. Parts adding up to less than the whole are
    flagged in ``ledger`` and kept (each category's median is taken on its own).
    """
    groups = [
        ("n_cameras", [c for c in ATTACHMENTS if c in parsed.columns], len(ATTACHMENTS)),
        ("attached_street", [c for c in POLE_TYPES if c in parsed.columns], len(POLE_TYPES)),
    ]
    stage = "read submissions"
    bad = np.zeros(len(parsed), dtype=bool)
    problems: list[Problem] = []
    for whole, parts, n_parts in groups:
        if whole not in parsed.columns or not parts:
            continue
        total = parsed[whole].to_numpy(dtype="float64")
        values = parsed[parts].to_numpy(dtype="float64")
        above = values > total[:, None]
        for i, j in zip(*np.nonzero(above), strict=True):
            if len(problems) < 20:
                problems.append(
                    Problem(
                        str(path),
                        int(parsed["row"].iloc[i]),
                        parts[j],
                        f"{values[i, j]:g}, more than {whole} {total[i]:g} in the same row",
                        f"at most {whole} (the {whole} of a submission includes its {parts[j]})",
                        "check the row for a typo or a shifted column",
                    )
                )
        sums = values.sum(axis=1)
        over = (sums > total) & ~above.any(axis=1)
        for i in np.flatnonzero(over):
            if len(problems) < 20:
                problems.append(
                    Problem(
                        str(path),
                        int(parsed["row"].iloc[i]),
                        whole,
                        f"{whole} {total[i]:g} but {' + '.join(parts)} = {sums[i]:g}",
                        f"{' + '.join(parts)} adding up to {whole}",
                        "check the row for a typo or a shifted column",
                    )
                )
        bad |= above.any(axis=1) | over
        # Only all the parts can fall short of the whole.
        short = ~bad & (sums < total)
        if ledger is not None and len(parts) == n_parts:
            ledger.flag(
                stage,
                f"submission(s) in {path.name} whose {' + '.join(parts)} add up to less than "
                f"{whole}",
                int(short.sum()),
                kept_as="each count used as given",
            )
    if not bad.any():
        return parsed
    if errors == "raise":
        n_bad = int(bad.sum())
        if n_bad > len(problems):
            problems.append(
                Problem(
                    str(path),
                    None,
                    None,
                    f"{n_bad} rows in all with a part above its whole",
                    "parts within their whole",
                    "check those rows for typos or shifted columns",
                )
            )
        raise InputError(
            Problem(p.file, p.row, p.column, p.found, p.expected, f"{p.fix}; {EXCLUDE_HINT}")
            for p in problems
        )
    if ledger is not None:
        ledger.exclude(
            stage,
            f"a count above its whole (attached_* above n_cameras, or type_* above "
            f"attached_street) ({path})",
            int(bad.sum()),
        )
    return parsed.loc[~bad]


def raw_intersections_from_csv(path: str | Path) -> pd.DataFrame:
    """Read Amnesty's raw ``intersections.csv`` (``IntersectionId`` -> ``PanoramaId``).

    ``Lat``/``Long`` there are the *requested* coordinates, not the panorama's; they are kept
    only as ``RequestLat``/``RequestLong``. Returns one row per intersection.
    """
    path = Path(path)
    df = _read(path)
    problems = missing_columns(
        df, path, ["IntersectionId", "PanoramaId"], why="merges intersections sharing a panorama"
    )
    if problems:
        raise InputError(problems)
    cols = [Col("IntersectionId", "str"), Col("PanoramaId", "str")]
    if "ImageDate" in df.columns:
        cols.append(Col("ImageDate", "month", nullable=True))
    for c in ("Lat", "Long"):
        if c in df.columns:
            cols.append(Col(c, "lat" if c == "Lat" else "lon", nullable=True))
    parsed = parse_columns(df, path, cols)
    dup = parsed["IntersectionId"].duplicated()
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:5] + 1
        raise InputError(
            Problem(
                str(path),
                int(r),
                "IntersectionId",
                "an IntersectionId listed twice",
                "one row per intersection",
                "remove the duplicated row",
            )
            for r in rows
        )
    out = parsed.rename(columns={"Lat": "RequestLat", "Long": "RequestLong"})
    keep = ["IntersectionId", "PanoramaId", "ImageDate", "Borough", "TrafficSignal"]
    keep += ["RequestLat", "RequestLong"]
    out = out[[c for c in keep if c in out.columns]].reset_index(drop=True)
    out.attrs["source"] = str(path)
    return out


def panoramas_from_csv(path: str | Path) -> pd.DataFrame:
    """Read Amnesty's ``panorama_url.csv``: the actual Street View coordinates of each panorama.

    Returns one row per ``PanoramaId`` with ``GoogleLat``/``GoogleLong`` (WGS84). The same
    panorama listed twice with the same coordinates is merged; with different coordinates it is
    an error.
    """
    path = Path(path)
    df = _read(path)
    problems = missing_columns(
        df, path, ["PanoramaId", "GoogleLat", "GoogleLong"], why="where the panorama was taken"
    )
    if problems:
        raise InputError(problems)
    cols = [Col("PanoramaId", "str"), Col("GoogleLat", "lat"), Col("GoogleLong", "lon")]
    parsed = parse_columns(df, path, cols)[["PanoramaId", "GoogleLat", "GoogleLong"]]
    first = parsed.drop_duplicates("PanoramaId", keep="first")
    merged = parsed.merge(first, on="PanoramaId", suffixes=("", "_first"))
    clash = (merged["GoogleLat"] != merged["GoogleLat_first"]) | (
        merged["GoogleLong"] != merged["GoogleLong_first"]
    )
    if clash.any():
        rows = np.flatnonzero(clash.to_numpy())[:5] + 1
        raise InputError(
            Problem(
                str(path),
                int(r),
                "GoogleLat",
                f"panorama {merged['PanoramaId'].iloc[r - 1]!r} with two different positions",
                "one position per PanoramaId",
                "keep the position Street View returns for that PanoramaId",
            )
            for r in rows
        )
    out = first.reset_index(drop=True)
    out.attrs["source"] = str(path)
    out.attrs["duplicated_rows"] = len(parsed) - len(first)
    return out


_ATTACHED_VALUES = {"street_light/traffic_signal/road_sign", "building", "unknown"}


def camera_tags_from_csv(path: str | Path) -> pd.DataFrame:
    """Read Amnesty's ``cameras.csv``: one row per camera tag, with the decoder's point of view.

    Returns ``DecoderId``, ``IntersectionId``, ``SubmissionId``, ``Attached``, ``Type`` and
    ``Pov.heading`` (degrees from true north, [0, 360]), ``Pov.pitch`` ([-90, 90]),
    ``Pov.zoom`` when present.
    """
    path = Path(path)
    df = _read(path)
    problems = missing_columns(
        df, path, ["SubmissionId", "IntersectionId", "Attached"], why="one tag per camera"
    )
    if problems:
        raise InputError(problems)
    cols = [Col("SubmissionId", "str"), Col("IntersectionId", "str"), Col("Attached", "str")]
    cols += [Col(c, "float", nullable=True) for c in ("Pov.heading", "Pov.pitch", "Pov.zoom")]
    cols = [c for c in cols if c.name in df.columns]
    parsed = parse_columns(df, path, cols)
    bad: list[Problem] = []
    attached_bad = ~parsed["Attached"].isin(_ATTACHED_VALUES)
    for i in np.flatnonzero(attached_bad.to_numpy())[:5]:
        bad.append(
            Problem(
                str(path),
                int(i) + 1,
                "Attached",
                repr(parsed["Attached"].iloc[i]),
                " or ".join(sorted(_ATTACHED_VALUES)),
                "use Amnesty's attachment labels",
            )
        )
    for column, lo, hi in (("Pov.heading", 0.0, 360.0), ("Pov.pitch", -90.0, 90.0)):
        if column in parsed.columns:
            v = parsed[column].to_numpy(dtype="float64")
            for i in np.flatnonzero(np.isfinite(v) & ((v < lo) | (v > hi)))[:5]:
                bad.append(
                    Problem(
                        str(path),
                        int(i) + 1,
                        column,
                        repr(v[i]),
                        f"degrees within [{lo:g}, {hi:g}]",
                        "check the point-of-view export",
                    )
                )
    if bad:
        raise InputError(bad)
    parsed.attrs["source"] = str(path)
    return parsed.reset_index(drop=True)
