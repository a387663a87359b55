"""From volunteers' tags (rays) to cameras: clustering, matching and triangulation.

A tag is a ray from a panorama's camera (``heading_deg`` true north, ``pitch_deg`` up from the
horizon; docs/platform.md, "Rays"), never a ground point. Three steps (docs/locate.md):

1. :func:`cluster_tags`: within one panorama, the k volunteers' rays are clustered by angular
   distance (average linkage) into candidate cameras; two tags of the same volunteer are never
   merged (Project Sidewalk's rule). A candidate is *confirmed* when at least ``min_support``
   different volunteers tagged it. :func:`compare_with_counts` sets the confirmed count of each
   panorama beside Amnesty's median count.
2. :func:`locate_cameras`: confirmed candidates seen from neighbouring panoramas are matched
   (their 3-D rays must pass close to one another at a plausible height) and each camera's
   position is the weighted least-squares point nearest its rays in a local metric frame, with
   a weak prior on the mounting height; the covariance gives ``position_sd_m``. A camera seen
   from one panorama only is placed along its ray at the range its pitch implies with the
   mounting-height prior of its mount class (:data:`HEIGHT_PRIORS`).
3. The result is the ``cameras`` contract table with ``source = "volunteer-tags"``.

The detector's tags (:func:`machine_tags_table`: ``machine`` true, with the volunteers'
verdicts of the verify task) may be clustered with the volunteers' (``cluster_tags(...,
machine=...)``); every candidate gets an ``evidence`` class, and a machine tag alone never
settles a camera (Project Sidewalk's rule for its AI validator): only candidates volunteers
tagged or confirmed become cameras; the others are listed in ``machine_only.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS
from scipy.stats import chi2

from camcensus import settings
from camcensus._errors import ContractError, Ledger, OptionError
from camcensus._geo import measurement_crs
from camcensus.cameras import CAMERA_COLUMNS, MOUNT_HEIGHT_PRIORS, MOUNTS, validate_cameras

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

__all__ = [
    "CANDIDATE_COLUMNS",
    "EVIDENCE_CLASSES",
    "HEIGHT_PRIORS",
    "HUMAN_CONFIRMED",
    "LOCATED_FILES",
    "MACHINE_MODES",
    "MACHINE_ONLY_COLUMNS",
    "MACHINE_TAGS_COLUMNS",
    "PANORAMA_HEIGHT_M",
    "TAGS_TABLE_COLUMNS",
    "TAG_BEARING_SD_DEG",
    "MachineMode",
    "cluster_tags",
    "compare_with_counts",
    "count_summary",
    "locate_cameras",
    "machine_only_table",
    "machine_tags_table",
    "median_counts",
    "tags_table",
    "write_located",
]

#: Columns of :func:`tags_table` (``n_decoders``: volunteers with a counted answer on the
#: panorama, with or without tags).
TAGS_TABLE_COLUMNS = (
    "tag_id",
    "submission_id",
    "panorama_id",
    "decoder_id",
    "heading_deg",
    "pitch_deg",
    "fov_deg",
    "attachment",
    "camera_type",
    "machine",
    "score",
    "lon",
    "lat",
    "n_decoders",
)
#: Columns of :func:`cluster_tags`.
CANDIDATE_COLUMNS = (
    "candidate_id",
    "panorama_id",
    "heading_deg",
    "pitch_deg",
    "n_tags",
    "support",
    "n_decoders",
    "attachment",
    "camera_type",
    "tag_ids",
    "confirmed",
    "evidence",
    "machine_tags",
    "score",
    "verify_agree",
    "verify_disagree",
    "verify_unsure",
    "verify_status",
)
#: Columns of :func:`machine_tags_table`: :data:`TAGS_TABLE_COLUMNS` and the verify task's.
MACHINE_TAGS_COLUMNS = (
    *TAGS_TABLE_COLUMNS,
    "verify_agree",
    "verify_disagree",
    "verify_unsure",
    "verify_status",
)
MachineMode = Literal["verify", "decoder", "ignore"]
#: How :func:`cluster_tags` treats machine tags (the detector's): ``verify`` (only volunteers,
#: or a machine tag volunteers confirmed in the verify task, settle a camera), ``decoder`` (the
#: detector counts as one more decoder toward ``min_support``, next to at least one
#: volunteer), ``ignore`` (machine tags left out).
MACHINE_MODES: tuple[MachineMode, ...] = ("verify", "decoder", "ignore")
#: A candidate's ``evidence``: ``volunteers`` (at least ``min_support`` distinct volunteers),
#: ``volunteers+machine`` (that, and a machine tag in the cluster; in ``decoder`` mode also
#: volunteers whom the detector brought to ``min_support``), ``verified machine`` (a machine
#: tag volunteers confirmed, fewer volunteers than ``min_support``), ``machine only`` (machine
#: tags without enough volunteers, not confirmed: open or rejected), ``unconfirmed``
#: (volunteers below ``min_support``, no machine tag).
EVIDENCE_CLASSES = (
    "volunteers",
    "volunteers+machine",
    "verified machine",
    "machine only",
    "unconfirmed",
)
#: The evidence classes that make a camera (human-confirmed).
HUMAN_CONFIRMED = EVIDENCE_CLASSES[:3]

#: Mounting height above the ground (m) by mount class: (median, robust standard deviation);
#: the sources are in :data:`camcensus.cameras.MOUNT_HEIGHT_PRIORS` and docs/locate.md.
HEIGHT_PRIORS: dict[str, tuple[float, float]] = MOUNT_HEIGHT_PRIORS
#: Height (m) of a panorama's camera above the ground when the panoramas table has no
#: ``eye_height_m`` column: a car's roof rig (Street View cars: about 2.5 m; Project Sidewalk
#: assumes 2.34 m).
PANORAMA_HEIGHT_M = 2.5
#: Standard deviation (degrees) of one volunteer's click direction, bearing and pitch: the
#: middle of the 1–3° range measured for clicks on panoramas (the issue's noise model).
TAG_BEARING_SD_DEG = 2.0
_MIN_ANGLE_SD_DEG = 0.5
_MAX_RANGE_M = 60.0
_GATE = 3.0  # matching gate on the normalised miss distance (≈ 3 standard deviations)
_HEIGHT_RANGE = (0.5, 20.0)
_MIN_CROSSING_DEG = 10.0  # rays closer to parallel than this do not fix a position
_SOURCE = "volunteer-tags"


# --------------------------------------------------------------------------- reading


def tags_table(
    engine: Engine, *, project: str | None = None, ledger: Ledger | None = None
) -> pd.DataFrame:
    """Return the counted tags of a platform database, one row per tag.

    Reads with the export's readers (:mod:`camcensus.db.export`): only the version of each tag
    that stood at submit time, only volunteers' submissions that count toward the census (not
    gold, no problem report, panorama not retired as a problem panorama).

    Submissions left out are counted in ``ledger`` (stage ``locate``) by reason.

    Returns
    -------
    pandas.DataFrame
        :data:`TAGS_TABLE_COLUMNS`, sorted by panorama, submission and tag; ``lon``/``lat`` is
        the panorama's point (WGS84) and ``n_decoders`` the number of distinct volunteers with a
        counted answer on that panorama (answers without tags included).
    """
    from camcensus.db.export import _check_database, _counted, _load, _retired

    _check_database(engine)
    tables = _load(engine, project)
    pano = tables.panoramas
    gold = {str(p) for p, g in zip(pano["panorama_id"], pano["gold"], strict=True) if bool(g)}
    placed = {str(p) for p in pano["panorama_id"]}
    subs, excluded = _counted(tables.submissions, gold, placed, _retired(pano, tables.projects))
    if ledger is not None:
        reasons = pd.Series([reason for _kind, _id, reason in excluded], dtype=object)
        for reason, n in reasons.value_counts(sort=False).items():
            ledger.exclude("locate", f"submission not counted: {reason}", int(n))
    n_dec = subs.groupby("panorama_id")["decoder_id"].nunique()
    t = _joined_tags(tables.tags, subs, pano)
    return pd.DataFrame(_tag_columns(t, n_dec), columns=list(TAGS_TABLE_COLUMNS))


def _joined_tags(tags: pd.DataFrame, subs: pd.DataFrame, pano: pd.DataFrame) -> pd.DataFrame:
    """Join tags to their submissions and panoramas, in panorama, submission and tag order."""
    t = tags.merge(
        subs[["submission_id", "panorama_id", "decoder_id", "submitted_at"]], on="submission_id"
    ).merge(pano[["panorama_id", "lon", "lat"]], on="panorama_id")
    t = t.sort_values(["panorama_id", "submitted_at", "submission_id", "created_at", "tag_id"])
    return t.reset_index(drop=True)


def _tag_columns(t: pd.DataFrame, n_dec: pd.Series) -> dict[str, np.ndarray]:
    """Return the typed :data:`TAGS_TABLE_COLUMNS` of joined tags (:func:`_joined_tags`)."""
    return {
        "tag_id": t["tag_id"].astype(str).to_numpy(),
        "submission_id": t["submission_id"].astype(str).to_numpy(),
        "panorama_id": t["panorama_id"].astype(str).to_numpy(),
        "decoder_id": t["decoder_id"].astype(str).to_numpy(),
        "heading_deg": t["heading_deg"].astype("float64").to_numpy(),
        "pitch_deg": t["pitch_deg"].astype("float64").to_numpy(),
        "fov_deg": t["fov_deg"].astype("float64").to_numpy(),
        "attachment": t["attachment"].astype(str).to_numpy(),
        "camera_type": t["camera_type"].astype(str).to_numpy(),
        "machine": t["machine"].astype(bool).to_numpy(),
        "score": pd.to_numeric(t["score"], errors="coerce").astype("float64").to_numpy(),
        "lon": t["lon"].astype("float64").to_numpy(),
        "lat": t["lat"].astype("float64").to_numpy(),
        "n_decoders": t["panorama_id"].map(n_dec).fillna(0).astype("int64").to_numpy(),
    }


def machine_tags_table(
    engine: Engine, *, project: str | None = None, ledger: Ledger | None = None
) -> pd.DataFrame:
    """Return the detector's tags of a platform database with the volunteers' verdicts.

    Machine tags are the tags of ``model`` submissions (the detector's detections on a
    panorama, ``machine`` true, ``score`` its score); a volunteer's verdict on one is a
    ``validations`` row (``agree`` = a camera, ``disagree``, ``unsure``), and its status is
    :func:`camcensus.db.verify.verify_status` of the counts. Machine tags never count toward
    the volunteers' counts (:func:`tags_table`, the Decode export); they enter the clustering
    only through :func:`cluster_tags` (``machine=``).

    Left out, and counted in ``ledger`` (stage ``locate``) by reason: model submissions on
    gold panoramas, with a problem, or on panoramas retired as problem panoramas.

    Returns
    -------
    pandas.DataFrame
        :data:`MACHINE_TAGS_COLUMNS`, sorted by panorama, submission and tag; ``decoder_id``
        is the model id, ``n_decoders`` the volunteers with a counted answer on the panorama
        (as in :func:`tags_table`), ``verify_agree``/``verify_disagree``/``verify_unsure``
        the verdict counts and ``verify_status`` ``confirmed`` | ``rejected`` | ``open``.
    """
    from camcensus.db.export import (
        _check_database,
        _counted,
        _load,
        _retired,
        verify_columns,
    )

    _check_database(engine)
    tables = _load(engine, project)
    pano = tables.panoramas
    gold = {str(p) for p, g in zip(pano["panorama_id"], pano["gold"], strict=True) if bool(g)}
    retired = _retired(pano, tables.projects)
    subs_all = tables.submissions
    humans, _ = _counted(subs_all, gold, {str(p) for p in pano["panorama_id"]}, retired)
    n_dec = humans.groupby("panorama_id")["decoder_id"].nunique()
    keep = []
    reasons: list[str] = []
    for s in subs_all.itertuples(index=False):
        if s.kind != "model":
            continue
        reason = None
        if bool(s.gold) or str(s.panorama_id) in gold:
            reason = "gold panorama"
        elif isinstance(s.problem, str) and s.problem:
            reason = f"reported a problem: {s.problem}"
        elif str(s.panorama_id) in retired:
            reason = "its panorama was retired as a problem panorama"
        if reason is None:
            keep.append(s.submission_id)
        else:
            reasons.append(reason)
    if ledger is not None:
        for why, n in pd.Series(reasons, dtype=object).value_counts(sort=False).items():
            ledger.exclude("locate", f"model submission not used: {why}", int(n))
    subs = subs_all.loc[subs_all["submission_id"].isin(keep)]
    t = _joined_tags(tables.tags, subs, pano)
    t = t.loc[t["machine"].astype(bool)].reset_index(drop=True)
    verify = verify_columns(t, tables.verdicts)
    return pd.DataFrame(
        {
            **_tag_columns(t, n_dec),
            "verify_agree": verify["verify_agree"].astype("int64").to_numpy(),
            "verify_disagree": verify["verify_disagree"].astype("int64").to_numpy(),
            "verify_unsure": verify["verify_unsure"].astype("int64").to_numpy(),
            "verify_status": verify["verify_status"].astype(object).to_numpy(),
        },
        columns=list(MACHINE_TAGS_COLUMNS),
    )


# --------------------------------------------------------------------------- clustering


def _unit(heading_deg: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """Return unit vectors (n × 3: east, north, up) of true-north bearings and pitches."""
    h, p = np.radians(heading_deg), np.radians(pitch_deg)
    return np.column_stack([np.sin(h) * np.cos(p), np.cos(h) * np.cos(p), np.sin(p)])


def _angles(u: np.ndarray) -> np.ndarray:
    """Return the pairwise angles (degrees) between unit vectors."""
    out: np.ndarray = np.degrees(np.arccos(np.clip(u @ u.T, -1.0, 1.0)))
    return out


def _check_columns(df: pd.DataFrame, need: tuple[str, ...], what: str, fix: str) -> None:
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ContractError(f"{what} lack column(s) {', '.join(missing)}. Fix: {fix}")


def _cluster_one(u: np.ndarray, decoders: np.ndarray, max_sep_deg: float) -> np.ndarray:
    """Average-linkage clustering of one panorama's rays; never two tags of one decoder.

    Returns the cluster label of each ray (0, 1, ...).
    """
    n = len(u)
    dist = _angles(u)
    np.fill_diagonal(dist, np.inf)
    conflict = decoders[:, None] == decoders[None, :]
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    label = np.arange(n)
    while True:
        d = np.where(conflict | ~alive[:, None] | ~alive[None, :], np.inf, dist)
        flat = int(np.argmin(d))
        a, b = divmod(flat, n)
        if not d[a, b] <= max_sep_deg:
            break
        # Lance-Williams update for average linkage; b joins a.
        merged = (size[a] * dist[a] + size[b] * dist[b]) / (size[a] + size[b])
        dist[a, :] = merged
        dist[:, a] = merged
        dist[a, a] = np.inf
        conflict[a, :] |= conflict[b, :]
        conflict[:, a] |= conflict[:, b]
        size[a] += size[b]
        alive[b] = False
        label[label == b] = a
    _, out = np.unique(label, return_inverse=True)
    result: np.ndarray = out.astype("int64")
    return result


def _consensus(values: list[str]) -> str:
    """Return the majority value, or ``unknown`` on a tie (conservative)."""
    if not values:
        return "unknown"
    counts = pd.Series(values).value_counts()
    if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
        return "unknown"
    return str(counts.index[0])


def _mean_direction(u: np.ndarray) -> tuple[float, float]:
    m = u.mean(axis=0)
    heading = float(np.degrees(np.arctan2(m[0], m[1])) % 360.0)
    pitch = float(np.degrees(np.arctan2(m[2], np.hypot(m[0], m[1]))))
    return heading, pitch


def _machine_frame(tags: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each tag's machine flag, score and verify status (``""`` for human tags).

    A machine tag's status is its ``verify_status`` column, else
    :func:`camcensus.db.verify.verify_status` of ``verify_agree``/``verify_disagree``, else
    ``open`` (no verdicts yet).
    """
    from camcensus.db.verify import VERIFY_STATUSES, verify_status

    n = len(tags)
    machine = (
        tags["machine"].fillna(False).astype(bool).to_numpy()
        if "machine" in tags.columns
        else np.zeros(n, dtype=bool)
    )
    score = (
        pd.to_numeric(tags["score"], errors="coerce").to_numpy(dtype="float64")
        if "score" in tags.columns
        else np.full(n, np.nan)
    )
    if "verify_status" in tags.columns:
        status = tags["verify_status"].astype(object).to_numpy()
    elif "verify_agree" in tags.columns and "verify_disagree" in tags.columns:
        agree = pd.to_numeric(tags["verify_agree"]).fillna(0).astype("int64").to_numpy()
        disagree = pd.to_numeric(tags["verify_disagree"]).fillna(0).astype("int64").to_numpy()
        status = np.array([verify_status(int(a), int(d)) for a, d in zip(agree, disagree,
                                                                          strict=True)],
                          dtype=object)  # fmt: skip
    else:
        status = np.full(n, "open", dtype=object)
    status = np.where(machine, status, "")
    bad = sorted({str(x) for x in status[machine]} - set(VERIFY_STATUSES))
    if bad:
        raise ContractError(
            f"the tags' verify_status holds {bad}: expected one of {list(VERIFY_STATUSES)}. "
            "Fix: pass the table of camcensus.locate.machine_tags_table"
        )
    return machine, score, status


def _verdict_counts(tags: pd.DataFrame, machine: np.ndarray) -> np.ndarray:
    """Return the (n × 3) agree/disagree/unsure counts of the machine tags (0 elsewhere)."""
    cols = []
    for c in ("verify_agree", "verify_disagree", "verify_unsure"):
        v = (
            pd.to_numeric(tags[c], errors="coerce").fillna(0).to_numpy(dtype="int64")
            if c in tags.columns
            else np.zeros(len(tags), dtype="int64")
        )
        cols.append(np.where(machine, v, 0))
    return np.column_stack(cols).reshape(-1, 3)


def _candidate_status(statuses: list[str]) -> str:
    """Return a candidate's verify status from its machine tags' (confirmed > open > rejected)."""
    for s in ("confirmed", "open", "rejected"):
        if s in statuses:
            return s
    return ""


def _machine_mode(machine: str | None) -> MachineMode:
    """``machine``, or the setting ``locate_machine`` when None; refuse another value."""
    given = settings.get_str("locate_machine") if machine is None else machine
    for mode in MACHINE_MODES:
        if mode == given:
            return mode
    raise OptionError(
        f"machine = {given!r}: expected one of {', '.join(MACHINE_MODES)} "
        "(verify: only volunteers or confirmed machine tags settle a camera)"
    )


def cluster_tags(
    tags: pd.DataFrame,
    *,
    max_sep_deg: float | None = None,
    min_support: int | None = None,
    machine: MachineMode | None = None,
) -> pd.DataFrame:
    """Cluster each panorama's tags into candidate cameras, volunteers' and the detector's.

    Rays of one panorama are merged by average linkage on their angular distance (the angle
    between the 3-D directions of heading and pitch) while the clusters' mean distance stays
    within ``max_sep_deg``; two tags of the same decoder are never merged (Project Sidewalk's
    rule: one volunteer's two clicks are two cameras; one model's two detections too).

    Machine tags (column ``machine`` true: the detector's, :func:`machine_tags_table`) are
    clustered with the volunteers' and never settle a candidate alone (Project Sidewalk's
    rule for its AI validator): with ``machine="verify"`` a candidate is confirmed by
    ``min_support`` distinct volunteers or by a machine tag that volunteers confirmed in the
    verify task (``verify_status == "confirmed"``); with ``machine="decoder"`` the detector
    also counts as one more decoder toward ``min_support`` (one, however many models tagged
    the camera; a rejected machine tag is no vote), but a candidate needs at least one
    volunteer; ``machine="ignore"`` drops machine tags.

    Parameters
    ----------
    tags
        :func:`tags_table` rows (``panorama_id``, ``decoder_id``, ``tag_id``, ``heading_deg``,
        ``pitch_deg``, ``attachment``, ``camera_type``; ``n_decoders`` optional), possibly
        with :func:`machine_tags_table` rows (``machine``, ``score``, ``verify_*``).
    max_sep_deg
        Largest average angular distance (degrees) between two merged clusters (default:
        setting ``locate_cluster_deg``).
    min_support
        Distinct volunteers needed to confirm a candidate (default: setting
        ``locate_min_support``).
    machine
        ``verify``, ``decoder`` or ``ignore`` (:data:`MACHINE_MODES`; default: setting
        ``locate_machine``, ``verify``).

    Returns
    -------
    pandas.DataFrame
        :data:`CANDIDATE_COLUMNS`, one row per candidate, sorted by panorama then heading.
        ``heading_deg``/``pitch_deg`` are the circular mean of the rays (mean unit vector),
        ``n_tags`` the rays (machine ones included), ``support`` the distinct volunteers,
        ``n_decoders`` the volunteers who answered the panorama (column ``n_decoders`` of the
        tags when present, else those with a tag there), ``attachment``/``camera_type`` the
        volunteers' majority label (the detector's when no volunteer tagged it; ``unknown`` on
        a tie; the type only for street cameras), ``tag_ids`` the ``;``-joined tag ids.
        ``machine_tags``, ``score`` (the highest), ``verify_agree``/``verify_disagree``/
        ``verify_unsure`` (summed) and ``verify_status`` describe its machine tags
        (``confirmed`` if one is, else ``open`` if one is, else ``rejected``; empty without
        machine tags). ``evidence`` is one of :data:`EVIDENCE_CLASSES`; ``confirmed`` is true
        for the human-confirmed classes (:data:`HUMAN_CONFIRMED`).
    """
    max_sep = settings.get_float("locate_cluster_deg") if max_sep_deg is None else max_sep_deg
    support_min = settings.get_int("locate_min_support") if min_support is None else min_support
    machine = _machine_mode(machine)
    if not 0 < max_sep <= 90:
        raise OptionError(f"max_sep_deg = {max_sep}: expected degrees in (0, 90], e.g. 6")
    if support_min < 1:
        raise OptionError(f"min_support = {support_min}: expected an integer >= 1, e.g. 2")
    need = ("tag_id", "panorama_id", "decoder_id", "heading_deg", "pitch_deg", "attachment",
            "camera_type")  # fmt: skip
    _check_columns(tags, need, "the tags", "pass the table of camcensus.locate.tags_table")
    is_machine, scores, statuses = _machine_frame(tags)
    verdicts = _verdict_counts(tags, is_machine)
    tags = tags.assign(
        _machine=is_machine,
        _score=scores,
        _status=statuses,
        _agree=verdicts[:, 0],
        _disagree=verdicts[:, 1],
        _unsure=verdicts[:, 2],
    )
    if machine == "ignore":
        tags = tags.loc[~tags["_machine"]]
    rows: list[dict[str, object]] = []
    for pid, g in tags.groupby("panorama_id", sort=True):
        g = g.sort_values("tag_id", kind="stable")
        u = _unit(g["heading_deg"].to_numpy(float), g["pitch_deg"].to_numpy(float))
        mach = g["_machine"].to_numpy(dtype=bool)
        # A model's id never merges with a volunteer's, whatever the ids.
        decoders = np.where(mach, "machine:", "human:") + g["decoder_id"].astype(str).to_numpy()
        labels = _cluster_one(u, decoders, max_sep)
        n_dec = (
            int(pd.to_numeric(g["n_decoders"]).max())
            if "n_decoders" in g.columns
            else len(set(decoders[~mach]))
        )
        att = g["attachment"].astype(str).to_numpy()
        typ = g["camera_type"].astype(str).to_numpy()
        ids = g["tag_id"].astype(str).to_numpy()
        score = g["_score"].to_numpy(dtype="float64")
        status = g["_status"].to_numpy(dtype=object)
        votes = g[["_agree", "_disagree", "_unsure"]].to_numpy(dtype="int64")
        found = []
        for c in range(int(labels.max()) + 1):
            m = labels == c
            hm, mm = m & ~mach, m & mach
            heading, pitch = _mean_direction(u[m])
            # The volunteers' labels; the detector's only where no volunteer tagged it.
            lab = hm if hm.any() else mm
            attachment = _consensus(list(att[lab]))
            street = lab & (att == "street")
            ctype = _consensus(list(typ[street])) if attachment == "street" else "unknown"
            support = len(set(decoders[hm]))
            vstatus = _candidate_status([str(x) for x in status[mm]])
            # The detector is one decoder, however many models tagged the camera; a tag the
            # verify task rejected is no vote.
            machine_votes = int(any(st != "rejected" for st in status[mm]))
            if support >= support_min:
                evidence = "volunteers+machine" if mm.any() else "volunteers"
            elif vstatus == "confirmed":
                evidence = "verified machine"
            elif machine == "decoder" and support >= 1 and support + machine_votes >= support_min:
                evidence = "volunteers+machine"
            elif mm.any():
                evidence = "machine only"
            else:
                evidence = "unconfirmed"
            found.append(
                {
                    "panorama_id": str(pid),
                    "heading_deg": heading,
                    "pitch_deg": pitch,
                    "n_tags": int(m.sum()),
                    "support": support,
                    "n_decoders": max(n_dec, support),
                    "attachment": attachment,
                    "camera_type": ctype,
                    "tag_ids": ";".join(ids[m]),
                    "confirmed": evidence in HUMAN_CONFIRMED,
                    "evidence": evidence,
                    "machine_tags": int(mm.sum()),
                    "score": float(score[mm].max()) if mm.any() else np.nan,
                    "verify_agree": int(votes[mm, 0].sum()),
                    "verify_disagree": int(votes[mm, 1].sum()),
                    "verify_unsure": int(votes[mm, 2].sum()),
                    "verify_status": vstatus,
                }
            )
        found.sort(key=lambda r: float(r["heading_deg"]))  # type: ignore[arg-type]
        for k, r in enumerate(found):
            rows.append({"candidate_id": f"{pid}/c{k + 1}", **r})
    out = pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS))
    return out.astype({"n_tags": "int64", "support": "int64", "n_decoders": "int64",
                       "confirmed": bool, "machine_tags": "int64", "score": "float64",
                       "verify_agree": "int64", "verify_disagree": "int64",
                       "verify_unsure": "int64", "verify_status": object,
                       "evidence": object})  # fmt: skip


# --------------------------------------------------------------------------- counts


def median_counts(tags: pd.DataFrame, *, submissions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return Amnesty's median counts per panorama computed from the same tags.

    Each decoder's counts per attachment at a panorama are the number of its tags; a decoder
    who answered without tags counts zeros (from ``submissions`` when given, else padded up to
    the tags' ``n_decoders``). The median is taken per category and the total is the sum of
    the per-category medians (Amnesty's conservative rule; camcensus.aggregate).

    Returns
    -------
    pandas.DataFrame
        ``panorama_id``, ``attached_street_median``, ``attached_building_median``,
        ``attached_unknown_median``, ``n_cameras_median`` (sum of the three), ``n_decoders``.
    """
    _check_columns(tags, ("panorama_id", "decoder_id", "attachment"), "the tags",
                   "pass the table of camcensus.locate.tags_table")  # fmt: skip
    if "machine" in tags.columns:
        # Medians are the volunteers' only: the detector never counts toward them.
        tags = tags.loc[~tags["machine"].fillna(False).astype(bool)]
    per = pd.crosstab(
        [tags["panorama_id"].astype(str), tags["decoder_id"].astype(str)],
        tags["attachment"].astype(str),
    ).reindex(columns=list(MOUNTS), fill_value=0)
    if submissions is not None:
        keys = submissions[["panorama_id", "decoder_id"]].astype(str).drop_duplicates()
        index = pd.MultiIndex.from_frame(keys)
        per = per.reindex(per.index.union(index), fill_value=0)
    rows = []
    for pid, g in per.groupby(level=0, sort=True):
        values = g.to_numpy(dtype="float64")
        n = len(values)
        if submissions is None and "n_decoders" in tags.columns:
            want = int(tags.loc[tags["panorama_id"].astype(str) == pid, "n_decoders"].max())
            if want > n:
                values = np.vstack([values, np.zeros((want - n, values.shape[1]))])
        med = np.median(values, axis=0)
        rows.append((str(pid), *med, float(med.sum()), len(values)))
    cols = ["panorama_id"] + [f"attached_{m}_median" for m in MOUNTS]
    return pd.DataFrame(rows, columns=[*cols, "n_cameras_median", "n_decoders"])


def compare_with_counts(candidates: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Set each panorama's confirmed clustered count beside its median count.

    Parameters
    ----------
    candidates
        :func:`cluster_tags` output.
    counts
        Per-panorama median counts: :func:`median_counts`, or Amnesty's ``counts`` table
        (camcensus.aggregate: ``PanoramaId``, ``attached_*_median``). The median total is the
        sum of the per-category medians when they are present, else ``n_cameras_median``.

    Returns
    -------
    pandas.DataFrame
        One row per panorama of either table: ``panorama_id``, ``clustered`` (human-confirmed
        candidates: :data:`HUMAN_CONFIRMED`), ``clustered_street`` (of them on street
        furniture), ``verified_machine`` (of them confirmed through the verify task only),
        ``unconfirmed`` (volunteers' candidates below ``min_support``), ``machine_only`` (the
        detector's candidates no human confirmed: never cameras), ``median_total``,
        ``median_street``, ``difference`` (clustered − median_total) and
        ``difference_street``; a panorama missing from one side has 0 candidates or NaN medians.
        Summarise with :func:`count_summary`.
    """
    _check_columns(candidates, ("panorama_id", "confirmed", "attachment"), "the candidates",
                   "pass the table of camcensus.locate.cluster_tags")  # fmt: skip
    counts = counts.rename(columns={"PanoramaId": "panorama_id"})
    _check_columns(counts, ("panorama_id",), "the counts",
                   "pass camcensus.locate.median_counts or the counts table")  # fmt: skip
    cat = [f"attached_{m}_median" for m in MOUNTS]
    if all(c in counts.columns for c in cat):
        total = counts[cat].astype("float64").sum(axis=1)
    elif "n_cameras_median" in counts.columns:
        total = counts["n_cameras_median"].astype("float64")
    else:
        raise ContractError(
            "the counts lack attached_street_median, attached_building_median, "
            "attached_unknown_median and n_cameras_median. Fix: pass the aggregate's counts "
            "table or camcensus.locate.median_counts"
        )
    street = (
        counts["attached_street_median"].astype("float64")
        if "attached_street_median" in counts.columns
        else pd.Series(np.nan, index=counts.index)
    )
    med = pd.DataFrame(
        {
            "panorama_id": counts["panorama_id"].astype(str).to_numpy(),
            "median_total": total.to_numpy(),
            "median_street": street.to_numpy(),
        }
    )
    c = candidates.assign(panorama_id=candidates["panorama_id"].astype(str))
    conf = c["confirmed"].astype(bool)
    evidence = (
        c["evidence"].astype(str)
        if "evidence" in c.columns
        else pd.Series("", index=c.index, dtype=object)
    )
    machine_only = evidence == "machine only"
    grouped = pd.DataFrame(
        {
            "clustered": conf.groupby(c["panorama_id"]).sum(),
            "clustered_street": (conf & (c["attachment"] == "street"))
            .groupby(c["panorama_id"])
            .sum(),
            "verified_machine": (evidence == "verified machine").groupby(c["panorama_id"]).sum(),
            "unconfirmed": (~conf & ~machine_only).groupby(c["panorama_id"]).sum(),
            "machine_only": machine_only.groupby(c["panorama_id"]).sum(),
        }
    )
    grouped = grouped.rename_axis(None)  # an empty group's index would shadow the column
    out = med.merge(grouped, left_on="panorama_id", right_index=True, how="outer")
    for col in ("clustered", "clustered_street", "verified_machine", "unconfirmed",
                "machine_only"):  # fmt: skip
        out[col] = out[col].fillna(0).astype("int64")
    out["difference"] = out["clustered"] - out["median_total"]
    out["difference_street"] = out["clustered_street"] - out["median_street"]
    cols = ["panorama_id", "clustered", "clustered_street", "verified_machine", "unconfirmed",
            "machine_only", "median_total", "median_street", "difference",
            "difference_street"]  # fmt: skip
    return out[cols].sort_values("panorama_id").reset_index(drop=True)


def _summed(comparison: pd.DataFrame, column: str, street: bool) -> float:
    """Return the sum of a comparison column (NaN for the street row: not split by mount)."""
    if street:
        return np.nan
    if column not in comparison.columns:
        return 0.0
    return float(comparison[column].sum())


def count_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """Summarise :func:`compare_with_counts`: totals, agreement and mean differences.

    Returns
    -------
    pandas.DataFrame
        Index ``all`` and ``street``; columns ``n_panoramas`` (with both figures),
        ``clustered``, ``median`` (sums), ``ratio`` (clustered / median), ``share_equal``
        (panoramas where both agree), ``mean_difference`` and ``mean_abs_difference``
        (all over the panoramas with a median); ``verified_machine`` (of the clustered, those
        confirmed through the verify task only) and ``machine_only`` (the detector's
        candidates no human confirmed, never counted as cameras), both over every panorama.
    """
    rows = {}
    for name, clus, med in (
        ("all", "clustered", "median_total"),
        ("street", "clustered_street", "median_street"),
    ):
        both = comparison[comparison[med].notna()]
        diff = both[clus] - both[med]
        total_med = float(both[med].sum())
        rows[name] = {
            "n_panoramas": len(both),
            "clustered": float(both[clus].sum()),
            "median": total_med,
            "ratio": float(both[clus].sum()) / total_med if total_med > 0 else np.nan,
            "share_equal": float((diff == 0).mean()) if len(both) else np.nan,
            "mean_difference": float(diff.mean()) if len(both) else np.nan,
            "mean_abs_difference": float(diff.abs().mean()) if len(both) else np.nan,
            "verified_machine": _summed(comparison, "verified_machine", name == "street"),
            "machine_only": _summed(comparison, "machine_only", name == "street"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- locating


def _solve(
    origins: np.ndarray,
    dirs: np.ndarray,
    sigma_rad: np.ndarray,
    prior: tuple[float, float],
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the weighted least-squares point nearest the rays, with its covariance.

    Minimises Σ |P_i (x − o_i)|² / (s_i σ_i)² + ((z − μ) / σ_h)², where P_i projects across ray
    i and s_i is the distance along it (re-estimated three times from the current point).
    """
    mu_h, sd_h = prior
    eye = np.eye(3)
    proj = eye[None, :, :] - dirs[:, :, None] * dirs[:, None, :]
    point = start
    cov = np.full((3, 3), np.nan)
    for _ in range(3):
        s = np.clip(np.einsum("ij,ij->i", point[None, :] - origins, dirs), 1.0, None)
        w = 1.0 / (s * sigma_rad) ** 2
        a = np.einsum("i,ijk->jk", w, proj)
        b = np.einsum("i,ijk,ik->j", w, proj, origins)
        a[2, 2] += 1.0 / sd_h**2
        b[2] += mu_h / sd_h**2
        try:
            cov = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            break
        point = cov @ b
    return point, cov


def _residual_chi(point: np.ndarray, origins: np.ndarray, dirs: np.ndarray,
                  sigma_rad: np.ndarray) -> np.ndarray:  # fmt: skip
    """Return each ray's miss distance from ``point`` over its standard deviation there."""
    rel = point[None, :] - origins
    s = np.einsum("ij,ij->i", rel, dirs)
    miss = np.linalg.norm(rel - s[:, None] * dirs, axis=1)
    out: np.ndarray = np.where(s > 0.5, miss / (np.maximum(s, 1.0) * sigma_rad), np.inf)
    return out


def _pairs(
    origins: np.ndarray, dirs: np.ndarray, sigma_rad: np.ndarray, pano: np.ndarray,
    max_range_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Return candidate pairs (i, j, chi) whose rays pass within the gate of each other."""
    n = len(origins)
    i, j = np.triu_indices(n, k=1)
    keep = pano[i] != pano[j]
    keep &= np.hypot(*(origins[i, :2] - origins[j, :2]).T) <= 2 * max_range_m
    i, j = i[keep], j[keep]
    di, dj = dirs[i], dirs[j]
    w0 = origins[i] - origins[j]
    b = np.einsum("ij,ij->i", di, dj)
    dd = np.einsum("ij,ij->i", di, w0)
    e = np.einsum("ij,ij->i", dj, w0)
    denom = 1.0 - b**2
    ok = denom > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b * e - dd) / denom
        t = (e - b * dd) / denom
    pi = origins[i] + s[:, None] * di
    pj = origins[j] + t[:, None] * dj
    miss = np.linalg.norm(pi - pj, axis=1)
    chi = miss / np.hypot(np.maximum(s, 1.0) * sigma_rad[i], np.maximum(t, 1.0) * sigma_rad[j])
    z = (pi[:, 2] + pj[:, 2]) / 2
    ok &= (s >= 1.0) & (t >= 1.0) & (s <= max_range_m) & (t <= max_range_m)
    ok &= (z >= _HEIGHT_RANGE[0]) & (z <= _HEIGHT_RANGE[1]) & (chi <= _GATE)
    i, j, chi = i[ok], j[ok], chi[ok]
    mid = ((pi + pj) / 2)[ok]
    # Votes: how many panoramas have a ray through the pair's point. A camera seen from
    # several panoramas gathers votes; two rays crossing by chance (a ghost) seldom do.
    votes = np.zeros(len(i), dtype="int64")
    for lo in range(0, len(i), 2_000):
        pts = mid[lo : lo + 2_000]
        rel = pts[:, None, :] - origins[None, :, :]
        s_all = np.einsum("pnk,nk->pn", rel, dirs)
        miss = np.linalg.norm(rel - s_all[..., None] * dirs[None, :, :], axis=2)
        near = (s_all >= 1.0) & (s_all <= max_range_m)
        hit = near & (miss <= _GATE * np.maximum(s_all, 1.0) * sigma_rad[None, :])
        for k in range(len(pts)):
            votes[lo + k] = len(np.unique(pano[hit[k]]))
    order = np.lexsort((chi, -votes))
    return i[order], j[order], chi[order]


def _weighted_consensus(values: list[str], weights: list[int]) -> str:
    s = pd.Series(weights, index=values, dtype="float64").groupby(level=0).sum()
    s = s.sort_values(ascending=False, kind="stable")
    if len(s) > 1 and s.iloc[0] == s.iloc[1]:
        return "unknown"
    return str(s.index[0])


def locate_cameras(
    candidates: pd.DataFrame,
    panoramas: gpd.GeoDataFrame,
    *,
    height_priors: Mapping[str, tuple[float, float]] | None = None,
    crs: CRS | str | None = None,
    tag_sd_deg: float = TAG_BEARING_SD_DEG,
    max_range_m: float = _MAX_RANGE_M,
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Place each confirmed candidate camera: triangulated across panoramas, else from its pitch.

    Parameters
    ----------
    candidates
        :func:`cluster_tags` output; only human-confirmed candidates (``evidence`` in
        :data:`HUMAN_CONFIRMED`) are placed; the others, machine-only ones apart, are counted
        in ``ledger``. A machine tag alone never settles a camera.
    panoramas
        ``panorama_id`` and point geometry (any CRS); optional ``eye_height_m`` (default
        :data:`PANORAMA_HEIGHT_M`), ``captured`` (first/last seen) and ``licence``.
    height_priors
        Mounting height prior (median, sd in m) per mount class ``street`` / ``building`` /
        ``unknown`` (default :data:`HEIGHT_PRIORS`).
    crs
        The metric CRS of the local frame (default: :func:`camcensus._geo.measurement_crs`).
    tag_sd_deg
        Standard deviation of one click's direction (degrees); a candidate's ray has
        ``tag_sd_deg / sqrt(n_tags)`` (at least 0.5°).
    max_range_m
        Farthest horizontal range at which a panorama is taken to show a camera: matches
        beyond it are refused and single-view ranges are capped at it.
    ledger
        Receives every candidate left out, with the reason.

    Returns
    -------
    geopandas.GeoDataFrame
        The ``cameras`` contract (:data:`camcensus.cameras.CAMERA_COLUMNS`) in EPSG:4326 with
        ``source = "volunteer-tags"``, ``source_ref`` the ``;``-joined panorama ids,
        ``support`` the distinct volunteers summed over panoramas, ``height_m`` the estimated
        mounting height, ``position_sd_m`` the per-axis horizontal standard deviation
        (√((σx² + σy²)/2)), ``tier`` the provenance (volunteers, volunteers and the
        detector, or a detector tag confirmed in the verify task); plus ``n_panoramas``,
        ``candidate_ids``, ``method`` (``triangulated`` | ``single-view pitch`` |
        ``single-view capped``), ``evidence`` (``volunteers`` | ``volunteers+machine`` |
        ``verified machine``), ``machine_tags`` and ``verify_agree``/``verify_disagree``
        (the verdicts on its machine tags).
    """
    ledger = ledger if ledger is not None else Ledger()
    priors = dict(HEIGHT_PRIORS if height_priors is None else height_priors)
    missing_prior = [m for m in MOUNTS if m not in priors]
    if missing_prior:
        raise OptionError(
            f"height_priors lacks mount class(es) {', '.join(missing_prior)}: give "
            "(median_m, sd_m) for each of street, building, unknown (see HEIGHT_PRIORS)"
        )
    if not tag_sd_deg > 0 or not max_range_m > 0:
        raise OptionError(
            f"tag_sd_deg = {tag_sd_deg}, max_range_m = {max_range_m}: expected positive numbers"
        )
    _check_columns(candidates, CANDIDATE_COLUMNS, "the candidates",
                   "pass the table of camcensus.locate.cluster_tags")  # fmt: skip
    if not isinstance(panoramas, gpd.GeoDataFrame) or "panorama_id" not in panoramas.columns:
        raise ContractError(
            "panoramas must be a GeoDataFrame with a panorama_id column and point geometry"
        )
    if crs is not None:
        metric = CRS.from_user_input(crs)
    elif len(panoramas) == 0:
        # Nothing to place (an empty project): any metric frame does.
        metric = CRS.from_epsg(3857)
    else:
        metric = measurement_crs(panoramas)
    if not metric.is_projected:
        raise OptionError(f"crs = {metric.to_string()}: expected a metric (projected) CRS")
    pano = panoramas.to_crs(metric)
    pano = pano.assign(panorama_id=pano["panorama_id"].astype(str)).drop_duplicates("panorama_id")
    pos = pd.DataFrame(
        {
            "x": pano.geometry.x.to_numpy(),
            "y": pano.geometry.y.to_numpy(),
            "eye": pano["eye_height_m"].astype("float64").to_numpy()
            if "eye_height_m" in pano.columns
            else PANORAMA_HEIGHT_M,
        },
        index=pano["panorama_id"].to_numpy(),
    )

    cand = candidates.assign(panorama_id=candidates["panorama_id"].astype(str))
    evidence = cand["evidence"].astype(str)
    bad = sorted(set(evidence) - set(EVIDENCE_CLASSES))
    if bad:
        raise ContractError(
            f"the candidates' evidence holds {bad}: expected one of {list(EVIDENCE_CLASSES)}. "
            "Fix: pass the table of camcensus.locate.cluster_tags"
        )
    # A machine tag alone never settles a camera: only the human-confirmed classes are placed.
    human = evidence.isin(HUMAN_CONFIRMED) & cand["confirmed"].astype(bool)
    machine_only = ~human & (evidence == "machine only")
    ledger.exclude("locate", "candidate not confirmed (support below min_support)",
                   int((~human & ~machine_only).sum()))  # fmt: skip
    ledger.exclude("locate", "machine-only candidate: no human confirmed the detector's tag "
                   "(listed in machine_only.csv)", int(machine_only.sum()))  # fmt: skip
    cand = cand.loc[human]
    unplaced = ~cand["panorama_id"].isin(pos.index)
    ledger.exclude("locate", "candidate's panorama is not in the panoramas table",
                   int(unplaced.sum()))  # fmt: skip
    cand = cand.loc[~unplaced].reset_index(drop=True)

    n = len(cand)
    p = pos.loc[cand["panorama_id"]]
    origins = np.column_stack([p["x"], p["y"], p["eye"]]).astype("float64").reshape(-1, 3)
    dirs = _unit(cand["heading_deg"].to_numpy(float), cand["pitch_deg"].to_numpy(float))
    sigma = np.radians(
        np.maximum(tag_sd_deg / np.sqrt(cand["n_tags"].to_numpy(float)), _MIN_ANGLE_SD_DEG)
    )
    pano_of = cand["panorama_id"].to_numpy()
    att = cand["attachment"].astype(str).to_numpy()
    support = cand["support"].to_numpy(dtype="int64")
    # Consensus weights: a candidate the verify task confirmed (no volunteer tag) weighs one.
    weight = np.maximum(support, 1)
    ev = cand["evidence"].astype(str).to_numpy()
    n_machine = cand["machine_tags"].to_numpy(dtype="int64")
    v_agree = cand["verify_agree"].to_numpy(dtype="int64")
    v_disagree = cand["verify_disagree"].to_numpy(dtype="int64")

    def prior_of(members: list[int]) -> tuple[float, float]:
        mount = _weighted_consensus([att[m] for m in members], [int(weight[m]) for m in members])
        return priors.get(mount, priors["unknown"])

    # Greedy matching: the most consistent pairs first; a group never holds two candidates of
    # one panorama, and every ray of a group must pass within the gate of its point.
    group = np.arange(n)
    members: dict[int, list[int]] = {g: [g] for g in range(n)}
    points: dict[int, np.ndarray] = {}
    for a, b, _chi in zip(*_pairs(origins, dirs, sigma, pano_of, max_range_m), strict=True):
        ga, gb = int(group[a]), int(group[b])
        if ga == gb:
            continue
        union = members[ga] + members[gb]
        if len({pano_of[m] for m in union}) < len(union):
            continue
        # Volunteers agree on the attachment far more often than not: a pole camera and a
        # building camera are two cameras.
        if {"street", "building"} <= {str(att[m]) for m in union}:
            continue
        idx = np.array(union)
        start = points.get(ga, _pair_start(origins[a], dirs[a], origins[b], dirs[b]))
        point, _cov = _solve(origins[idx], dirs[idx], sigma[idx], prior_of(union), start)
        if not np.all(np.isfinite(point)):
            continue
        chi = _residual_chi(point, origins[idx], dirs[idx], sigma[idx])
        mu_h, sd_h = prior_of(union)
        height_chi = (point[2] - mu_h) / sd_h
        # Each ray within its gate, and all of them with the height prior within the 99 %
        # quantile of chi-square (2 per ray + 1 for the height − 3 unknowns).
        total = float((chi**2).sum() + height_chi**2)
        if chi.max() > _GATE or total > chi2.ppf(0.99, 2 * len(union) - 2):
            continue
        far = np.hypot(*(point[None, :2] - origins[idx, :2]).T).max()
        if far > max_range_m or _crossing_deg(dirs[idx]) < _MIN_CROSSING_DEG:
            continue
        members[ga] = union
        del members[gb]
        points.pop(gb, None)
        group[idx] = ga
        points[ga] = point

    rows = []
    xy = []
    for g in sorted(members, key=lambda g: min(members[g])):
        idx = np.array(sorted(members[g]))
        mu_h, sd_h = prior_of(list(idx))
        if len(idx) >= 2:
            point, cov = _solve(origins[idx], dirs[idx], sigma[idx], (mu_h, sd_h), points[g])
            method = "triangulated"
        else:
            point, cov, method = _single_view(
                origins[idx[0]], dirs[idx[0]], sigma[idx[0]], (mu_h, sd_h), max_range_m
            )
        sd = float(np.sqrt(max((cov[0, 0] + cov[1, 1]) / 2, 0.0)))
        sd = min(sd, max_range_m) if np.isfinite(sd) else max_range_m
        xy.append(point[:2])
        panos = [str(pano_of[m]) for m in idx]
        mount = _weighted_consensus([att[m] for m in idx], [int(weight[m]) for m in idx])
        street = [m for m in idx if att[m] == "street"]
        types = [str(cand["camera_type"].iat[m]) for m in street]
        ctype = (
            _weighted_consensus(types, [int(weight[m]) for m in street])
            if mount == "street" and types
            else "unknown"
        )
        rows.append(
            {
                "position_sd_m": sd,
                "mount": mount,
                "camera_type": ctype,
                "height_m": float(max(point[2], 0.0)),
                "source_ref": ";".join(panos),
                "support": int(support[idx].sum()),
                "n_panoramas": len(idx),
                "candidate_ids": ";".join(cand["candidate_id"].astype(str).to_numpy()[idx]),
                "method": method,
                "evidence": _camera_evidence([str(ev[m]) for m in idx]),
                "machine_tags": int(n_machine[idx].sum()),
                "verify_agree": int(v_agree[idx].sum()),
                "verify_disagree": int(v_disagree[idx].sum()),
                "_first": panos[0],
                "_panos": panos,
            }
        )
    return _cameras_frame(rows, np.array(xy, dtype="float64").reshape(-1, 2), metric, pano)


def _camera_evidence(classes: list[str]) -> str:
    """Return a camera's evidence from its candidates' (all human-confirmed classes).

    ``volunteers`` when every candidate is; ``verified machine`` when none has enough
    volunteers (only the verify task confirmed it); else ``volunteers+machine``.
    """
    if all(c == "volunteers" for c in classes):
        return "volunteers"
    if all(c == "verified machine" for c in classes):
        return "verified machine"
    return "volunteers+machine"


def _tier(evidence: str, support: int, agree: int, disagree: int) -> str:
    """Return a located camera's provenance tier (the ``cameras`` contract's ``tier``)."""
    if evidence == "volunteers":
        return f"seen in imagery by {support} volunteers (clustered tags)"
    if evidence == "verified machine":
        return (
            f"detector tag confirmed by volunteers in the verify task ({agree} agree, "
            f"{disagree} disagree)"
        )
    return f"seen in imagery by {support} volunteers and the detector (clustered tags)"


def _crossing_deg(dirs: np.ndarray) -> float:
    """Return the widest angle (0–90°) at which two of the rays cross, seen from above."""
    bearing = np.arctan2(dirs[:, 0], dirs[:, 1])
    diff = np.abs((bearing[:, None] - bearing[None, :] + np.pi) % (2 * np.pi) - np.pi)
    return float(np.degrees(np.minimum(diff, np.pi - diff)).max())


def _pair_start(oa: np.ndarray, da: np.ndarray, ob: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Return the midpoint of the closest approach of two rays."""
    w0 = oa - ob
    b = float(da @ db)
    denom = max(1.0 - b * b, 1e-9)
    s = (b * float(db @ w0) - float(da @ w0)) / denom
    t = (float(db @ w0) - b * float(da @ w0)) / denom
    out: np.ndarray = (oa + s * da + ob + t * db) / 2
    return out


def _single_view(
    origin: np.ndarray,
    direction: np.ndarray,
    sigma_rad: float,
    prior: tuple[float, float],
    max_range_m: float,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Place a camera seen from one panorama at the range its pitch and height prior imply."""
    mu_h, sd_h = prior
    horiz = float(np.hypot(direction[0], direction[1]))
    rise = mu_h - origin[2]
    # Horizontal range where the ray reaches the prior height; capped when it never does.
    r = rise * horiz / direction[2] if direction[2] > 1e-06 and rise > 0 else np.inf
    if 1.0 <= r <= max_range_m:
        start = origin + direction * (r / max(horiz, 1e-9))
        point, cov = _solve(origin[None, :], direction[None, :], np.array([sigma_rad]),
                            prior, start)  # fmt: skip
        rr = float(np.hypot(*(point[:2] - origin[:2])))
        if np.all(np.isfinite(point)) and 1.0 <= rr <= max_range_m:
            # The range is 1/tan(pitch) of the height: far from linear, so its spread is
            # integrated over the height prior and the pitch error (Gauss-Hermite, 9 × 9).
            sd_r = _range_sd(rise, sd_h, float(np.arctan2(direction[2], horiz)), sigma_rad,
                             max_range_m)  # fmt: skip
            lateral = rr * sigma_rad
            u = direction[:2] / max(horiz, 1e-9)
            v = np.array([-u[1], u[0]])
            cov2 = sd_r**2 * np.outer(u, u) + lateral**2 * np.outer(v, v)
            cov = cov.copy()
            cov[:2, :2] = cov2
            return point, cov, "single-view pitch"
    r = float(np.clip(r, 1.0, max_range_m))
    # Capped: anywhere along the ray up to the cap; the spread of a uniform range on [0, cap].
    point = origin + direction * (r / max(horiz, 1e-9))
    sd = max_range_m / np.sqrt(12.0) * np.sqrt(2.0)
    cov = np.diag([sd**2, sd**2, sd_h**2])
    return point, cov, "single-view capped"


def _range_sd(rise: float, sd_h: float, pitch_rad: float, sigma_rad: float,
              max_range_m: float) -> float:  # fmt: skip
    """Return the sd of the horizontal range ``rise / tan(pitch)`` under both errors."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(9)
    weights = weights / weights.sum()
    dh = rise + sd_h * nodes[:, None]
    p = pitch_rad + sigma_rad * nodes[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((dh > 0) & (p > 0), dh / np.tan(p), max_range_m)
    r = np.clip(r, 1.0, max_range_m)
    w = weights[:, None] * weights[None, :]
    mean = float((w * r).sum())
    return float(np.sqrt(max((w * (r - mean) ** 2).sum(), 0.0)))


def _cameras_frame(
    rows: list[dict[str, object]], xy: np.ndarray, metric: CRS, pano: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Return the ``cameras`` contract table of the placed cameras (EPSG:4326)."""
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(
            columns=["position_sd_m", "mount", "camera_type", "height_m", "source_ref",
                     "support", "n_panoramas", "candidate_ids", "method", "evidence",
                     "machine_tags", "verify_agree", "verify_disagree", "_first", "_panos"]
        )  # fmt: skip
    # Ids: the first panorama's id and a running number, stable for the same input.
    rank = df.groupby("_first").cumcount() + 1 if len(df) else pd.Series([], dtype="int64")
    df.insert(0, "camera_id", [f"vt/{f}/{k}" for f, k in zip(df["_first"], rank, strict=True)])
    captured = (
        pano.set_index("panorama_id")["captured"].astype("string")
        if "captured" in pano.columns
        else None
    )
    licences = (
        pano.set_index("panorama_id")["licence"].astype(str) if "licence" in pano.columns else None
    )

    def seen(panos: list[str], how: str) -> str | None:
        if captured is None:
            return None
        dates = sorted(str(d) for d in captured.reindex(panos).dropna())
        if not dates:
            return None
        return dates[0] if how == "first" else dates[-1]

    panos_col = df["_panos"].tolist()
    out = pd.DataFrame(
        {
            "camera_id": df["camera_id"].astype(str),
            "position_sd_m": df["position_sd_m"].astype("float64"),
            "mount": df["mount"].astype(str),
            "camera_type": df["camera_type"].astype(str),
            "surveillance_type": "camera",
            "direction_deg": np.nan,
            "hfov_deg": np.nan,
            "height_m": df["height_m"].astype("float64"),
            "operator": None,
            "source": _SOURCE,
            "source_ref": df["source_ref"].astype(str),
            "tier": [
                _tier(str(e), int(s), int(a), int(d))
                for e, s, a, d in zip(
                    df["evidence"],
                    df["support"],
                    df["verify_agree"],
                    df["verify_disagree"],
                    strict=True,
                )
            ],
            "support": df["support"].astype("int64"),
            "first_seen": [seen(ps, "first") for ps in panos_col],
            "last_seen": [seen(ps, "last") for ps in panos_col],
            "licence": [
                ";".join(sorted(set(licences.reindex(ps).dropna()))) if licences is not None else ""
                for ps in panos_col
            ],
            "n_panoramas": df["n_panoramas"].astype("int64"),
            "candidate_ids": df["candidate_ids"].astype(str),
            "method": df["method"].astype(str),
            "evidence": df["evidence"].astype(str),
            "machine_tags": df["machine_tags"].astype("int64"),
            "verify_agree": df["verify_agree"].astype("int64"),
            "verify_disagree": df["verify_disagree"].astype("int64"),
        }
    )
    geometry = gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=metric)
    gdf = gpd.GeoDataFrame(out, geometry=geometry.to_crs("EPSG:4326").to_numpy(), crs="EPSG:4326")
    validate_cameras(gdf)
    assert list(gdf.columns[: len(CAMERA_COLUMNS)]) == list(CAMERA_COLUMNS)
    return gdf


# --------------------------------------------------------------------------- whole run

#: Files :func:`write_located` writes.
LOCATED_FILES = {
    "cameras": "cameras.gpkg",
    "candidates": "candidates.csv",
    "machine_only": "machine_only.csv",
    "comparison": "counts_comparison.csv",
    "summary": "counts_summary.csv",
    "excluded": "excluded.csv",
}
#: Columns of :func:`machine_only_table` (``machine_only.csv``).
MACHINE_ONLY_COLUMNS = (
    "candidate_id",
    "panorama_id",
    "lon",
    "lat",
    "heading_deg",
    "pitch_deg",
    "score",
    "verify_status",
    "verify_agree",
    "verify_disagree",
    "verify_unsure",
    "support",
    "machine_tags",
    "attachment",
    "camera_type",
    "tag_ids",
)


def machine_only_table(candidates: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """Return the machine-only candidates: the detector's tags no human confirmed.

    They are never cameras (a machine tag alone never settles one) but are kept, with the
    detector's score and the volunteers' verdicts, for the verify task and for audit.

    Parameters
    ----------
    candidates
        :func:`cluster_tags` output.
    tags
        The tags it clustered (``panorama_id``, ``lon``, ``lat``: the panorama's point).

    Returns
    -------
    pandas.DataFrame
        :data:`MACHINE_ONLY_COLUMNS`, one row per candidate with ``evidence == "machine
        only"``, highest ``score`` first; ``support`` is the volunteers who tagged it too
        (fewer than ``min_support``), ``verify_status`` ``open`` or ``rejected``.
    """
    _check_columns(candidates, CANDIDATE_COLUMNS, "the candidates",
                   "pass the table of camcensus.locate.cluster_tags")  # fmt: skip
    mo = candidates.loc[candidates["evidence"].astype(str) == "machine only"]
    points = (
        tags.assign(panorama_id=tags["panorama_id"].astype(str))
        .drop_duplicates("panorama_id")
        .set_index("panorama_id")
    )
    out = mo.assign(
        lon=mo["panorama_id"].astype(str).map(points["lon"]).astype("float64"),
        lat=mo["panorama_id"].astype(str).map(points["lat"]).astype("float64"),
    )
    out = out.sort_values(["score", "candidate_id"], ascending=[False, True], kind="stable")
    return pd.DataFrame(out[list(MACHINE_ONLY_COLUMNS)]).reset_index(drop=True)


def write_located(
    engine: Engine,
    out: str | Path,
    *,
    project: str | None = None,
    max_sep_deg: float | None = None,
    min_support: int | None = None,
    machine: MachineMode | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Locate the cameras a platform database's volunteers tagged and write them to ``out``.

    Reads the counted tags (:func:`tags_table`) and the detector's (:func:`machine_tags_table`,
    unless ``machine="ignore"``), clusters them per panorama (:func:`cluster_tags`), places
    the human-confirmed candidates (:func:`locate_cameras`) and sets the clustered counts
    beside the volunteers' median counts (:func:`compare_with_counts`).

    Writes, all at once (a failure leaves ``out`` as it was): ``cameras.gpkg`` (the ``cameras``
    contract, layer ``cameras``: human-confirmed cameras only, with their ``evidence``),
    ``candidates.csv``, ``machine_only.csv`` (:func:`machine_only_table`: the detector's
    candidates no human confirmed, never cameras), ``counts_comparison.csv``,
    ``counts_summary.csv`` (human-confirmed and machine-only as separate numbers) and
    ``excluded.csv`` (every submission, tag or candidate left out, with the reason).

    Raises
    ------
    camcensus.report.OutputError
        ``out`` is a file, holds the database or other files, or holds an earlier run and
        ``force`` is false.
    """
    from pathlib import Path

    import geopandas as gpd

    from camcensus.db.export import _check_database, _check_folder
    from camcensus.io.formats import write_csv
    from camcensus.report import replace_folder

    machine = _machine_mode(machine)
    out = Path(out)
    _check_database(engine)
    _check_folder(out, engine, force=force, files=LOCATED_FILES.values())
    ledger = Ledger()
    human = tags_table(engine, project=project, ledger=ledger)
    detected = machine_tags_table(engine, project=project, ledger=ledger)
    if machine == "ignore":
        ledger.exclude("locate", "machine tag ignored (machine='ignore')", len(detected))
        detected = detected.iloc[:0]
    frames = [f for f in (human, detected) if len(f)]
    tags = pd.concat(frames, ignore_index=True) if frames else human
    candidates = cluster_tags(
        tags, max_sep_deg=max_sep_deg, min_support=min_support, machine=machine
    )
    points = tags.drop_duplicates("panorama_id")
    panoramas = gpd.GeoDataFrame(
        {"panorama_id": points["panorama_id"].to_numpy()},
        geometry=gpd.points_from_xy(points["lon"], points["lat"]),
        crs="EPSG:4326",
    )
    cameras = locate_cameras(candidates, panoramas, ledger=ledger)
    comparison = compare_with_counts(candidates, median_counts(human))
    summary = count_summary(comparison)
    with replace_folder(out) as tmp:
        cameras.to_file(tmp / LOCATED_FILES["cameras"], layer="cameras", driver="GPKG")
        write_csv(candidates, tmp / LOCATED_FILES["candidates"])
        write_csv(machine_only_table(candidates, tags), tmp / LOCATED_FILES["machine_only"])
        write_csv(comparison, tmp / LOCATED_FILES["comparison"])
        write_csv(summary.rename_axis("cameras").reset_index(), tmp / LOCATED_FILES["summary"])
        excluded = pd.DataFrame(ledger.records(), columns=["stage", "reason", "count"])
        write_csv(excluded, tmp / LOCATED_FILES["excluded"])
    return {key: out / name for key, name in LOCATED_FILES.items()}
