"""Audit the detector: precision, recall, AP, by size band, score reliability, recall by group.

Matching (:func:`match_detections`) is in ray space, per panorama: detections by decreasing
score each take the nearest unmatched true camera within ``max(min_tol_deg, tol_factor *
size_deg)`` degrees, ``size_deg`` the camera's apparent size (geometric mean of its angular
width and height); a detection matching nothing is a false positive, a camera nothing matched
is missed.

Size bands are measured at the inference crops' scale (640 px at 60°: 9.67 px per degree at the
crop centre): ``< 8 px`` and ``>= 8 px`` (:data:`BAND_PX`). A detection falls in the band of the
camera it matched, or of its own predicted size when it matched none.

Recall by neighbourhood group: a density corrected by one global recall is unbiased only if
recall does not vary between neighbourhoods. :func:`recall_by_group` reports each group's recall
(Wilson 95% interval) and the spread (largest minus smallest among groups with at least
``min_cameras`` cameras); a single correction is **refused** when the spread exceeds
:data:`MAX_RECALL_SPREAD` (0.10) or fewer than two groups have enough cameras to compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import ContractError, InputError, Ledger, OptionError, Problem
from camcensus.detect.crops import focal_px

__all__ = [
    "BAND_PX",
    "MAX_RECALL_SPREAD",
    "MIN_GROUP_CAMERAS",
    "TRUTH_COLUMNS",
    "average_precision",
    "calibration_bins",
    "detection_metrics",
    "evaluate_panoramas",
    "evaluate_synthetic",
    "match_detections",
    "read_truth",
    "recall_by_group",
    "truth_cameras",
]

#: Size band boundary (pixels, √(w·h) at the 640 px / 60° crop scale).
BAND_PX = 8.0
#: Largest spread of recall between neighbourhood groups for one global correction.
MAX_RECALL_SPREAD = 0.10
#: Cameras a group needs for its recall to be compared.
MIN_GROUP_CAMERAS = 30
#: Pixels per degree at the centre of the inference crops (640 px, 60° fov).
PX_PER_DEG = focal_px(60.0, 640) * math.pi / 180.0
#: Columns of a truth table (:func:`truth_cameras`).
TRUTH_COLUMNS = (
    "panorama_id",
    "camera_id",
    "heading_deg",
    "pitch_deg",
    "category",
    "size_deg",
    "size_px",
)
Progress = Callable[[str], None]


def truth_cameras(panorama_id: str, rendered: Any) -> pd.DataFrame:
    """Return the drawn cameras of a rendered panorama with their apparent size.

    ``size_deg`` = √(angular width × angular height) of the rendered pixel box; ``size_px`` the
    same at the inference crops' scale (:data:`PX_PER_DEG`). Besides :data:`TRUTH_COLUMNS`,
    ``counted``: whether the census counts the camera (the scene's ``visible``; drawn cameras
    beyond the view range are not counted, :func:`detection_metrics` reports both).
    """
    from camcensus.detect.labels import cameras_from_truth

    truth = rendered.truth
    cams = cameras_from_truth(
        truth[truth["drawn"].astype(bool)],
        panorama_id=panorama_id,
        panorama_heading_deg=rendered.heading_deg,
        width=rendered.width,
        height=rendered.height,
    )
    out = _prior_truth(cams)
    visible = truth.set_index(truth["object_id"].astype(str))["visible"].astype(bool)
    out["counted"] = visible.reindex(out["camera_id"], fill_value=False).to_numpy(bool)
    return out


def _need(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ContractError(f"{what} lack column(s) {', '.join(missing)}")


def match_detections(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    tol_factor: float = 1.0,
    min_tol_deg: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections to true cameras in ray space (see the module text).

    Returns
    -------
    tuple
        ``det_truth`` (per detection: the row position in ``truth`` it matched, -1 for none)
        and ``truth_det`` (per camera: the detection's row position, -1 when missed).
    """
    from camcensus.detect.infer import unit_vectors

    _need(detections, ("panorama_id", "heading_deg", "pitch_deg", "score"), "the detections")
    _need(truth, ("panorama_id", "heading_deg", "pitch_deg", "size_deg"), "the truth")
    if tol_factor < 0 or min_tol_deg <= 0:
        raise OptionError(
            f"tol_factor = {tol_factor}, min_tol_deg = {min_tol_deg}: expected >= 0 and > 0"
        )
    det_truth = np.full(len(detections), -1, dtype=np.int64)
    truth_det = np.full(len(truth), -1, dtype=np.int64)
    t_pid = truth["panorama_id"].astype(str).to_numpy()
    d_pid = detections["panorama_id"].astype(str).to_numpy()
    t_vec = unit_vectors(truth["heading_deg"].to_numpy(float), truth["pitch_deg"].to_numpy(float))
    d_vec = unit_vectors(
        detections["heading_deg"].to_numpy(float), detections["pitch_deg"].to_numpy(float)
    )
    tol = np.maximum(min_tol_deg, tol_factor * truth["size_deg"].to_numpy(float))
    score = detections["score"].to_numpy(float)
    t_rows: dict[str, np.ndarray] = {
        str(k): np.asarray(v)
        for k, v in pd.Series(np.arange(len(truth))).groupby(t_pid).groups.items()
    }
    for i in np.argsort(-score, kind="stable"):
        rows = t_rows.get(str(d_pid[i]))
        if rows is None or len(rows) == 0:
            continue
        rows = np.asarray(rows, dtype=np.int64)
        free = rows[truth_det[rows] < 0]
        if len(free) == 0:
            continue
        ang = np.degrees(np.arccos(np.clip(t_vec[free] @ d_vec[i], -1.0, 1.0)))
        ok = ang <= tol[free]
        if not ok.any():
            continue
        j = free[ok][np.argmin(ang[ok])]
        det_truth[i] = j
        truth_det[j] = i
    return det_truth, truth_det


def average_precision(score: np.ndarray, is_tp: np.ndarray, n_truth: int) -> float:
    """Return the all-point interpolated average precision (PASCAL VOC 2010+).

    ``score`` and ``is_tp`` per detection, ``n_truth`` the cameras to find; NaN when
    ``n_truth`` is 0.
    """
    if n_truth <= 0:
        return float("nan")
    if len(score) == 0:
        return 0.0
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    tp = np.asarray(is_tp, dtype=float)[order]
    ctp = np.cumsum(tp)
    recall = ctp / n_truth
    precision = ctp / np.arange(1, len(tp) + 1)
    # Precision envelope (monotone from the right), summed over recall steps.
    env = np.maximum.accumulate(precision[::-1])[::-1]
    prev = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - prev) * env))


def _curve(score: np.ndarray, is_tp: np.ndarray, n_truth: int) -> pd.DataFrame:
    order = np.argsort(-score, kind="stable")
    tp = is_tp[order].astype(float)
    ctp = np.cumsum(tp)
    return pd.DataFrame(
        {
            "score": score[order],
            "precision": ctp / np.arange(1, len(tp) + 1),
            "recall": ctp / max(n_truth, 1),
        }
    )


def _operating_point(
    score: np.ndarray, is_tp: np.ndarray, n_truth: int, min_precision: float
) -> dict[str, float]:
    """The highest recall with precision >= ``min_precision`` and its score threshold."""
    if n_truth == 0 or len(score) == 0:
        return {"threshold": float("nan"), "precision": float("nan"), "recall": 0.0}
    c = _curve(score, is_tp, n_truth)
    ok = c[c["precision"] >= min_precision]
    if ok.empty:
        return {"threshold": float("nan"), "precision": float("nan"), "recall": 0.0}
    best = ok.iloc[int(np.argmax(ok["recall"].to_numpy()))]
    return {
        "threshold": float(best["score"]),
        "precision": float(best["precision"]),
        "recall": float(best["recall"]),
    }


def calibration_bins(score: np.ndarray, is_tp: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Return the reliability table: per score bin, detections, mean score, share true.

    Also ``gap`` = share true - mean score; the expected calibration error is the
    count-weighted mean of ``|gap|``.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    k = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = k == b
        n = int(sel.sum())
        mean = float(score[sel].mean()) if n else float("nan")
        true = float(is_tp[sel].mean()) if n else float("nan")
        rows.append((float(edges[b]), float(edges[b + 1]), n, mean, true, true - mean))
    return pd.DataFrame(rows, columns=["low", "high", "n", "mean_score", "share_true", "gap"])


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def recall_by_group(
    found: np.ndarray,
    group: np.ndarray,
    *,
    min_cameras: int = MIN_GROUP_CAMERAS,
    max_spread: float = MAX_RECALL_SPREAD,
) -> dict[str, Any]:
    """Return recall per neighbourhood group, the spread and whether one correction is allowed.

    Parameters
    ----------
    found
        Per true camera: detected (bool).
    group
        Per true camera: its panorama's group (e.g. a tract's non-white share tercile, a
        district); missing groups are counted as ``"(no group)"``.
    min_cameras
        Cameras a group needs to enter the spread.
    max_spread
        Largest spread (max - min recall) for which a single global correction is accepted.

    Returns
    -------
    dict
        ``groups`` (name -> n, found, recall, low, high, compared), ``spread``,
        ``max_spread``, ``min_cameras``, ``single_correction`` (``"allowed"`` |
        ``"refused: ..."``).
    """
    g = pd.Series(group, dtype=object).fillna("(no group)").astype(str).to_numpy()
    f = np.asarray(found, dtype=bool)
    out: dict[str, dict[str, Any]] = {}
    compared: list[float] = []
    for name in sorted(set(g)):
        sel = g == name
        n, k = int(sel.sum()), int(f[sel].sum())
        low, high = _wilson(k, n)
        ok = n >= min_cameras
        out[name] = {
            "n": n,
            "found": k,
            "recall": k / n if n else float("nan"),
            "low": low,
            "high": high,
            "compared": ok,
        }
        if ok:
            compared.append(k / n)
    spread = float(max(compared) - min(compared)) if len(compared) >= 2 else float("nan")
    if len(compared) < 2:
        verdict = (
            f"refused: fewer than two groups with >= {min_cameras} cameras; recall cannot be "
            "shown to be equal across neighbourhoods"
        )
    elif spread > max_spread:
        verdict = (
            f"refused: recall spread {spread:.3f} > {max_spread:.2f}; correct each group by its "
            "own recall (or label more cameras there)"
        )
    else:
        verdict = "allowed"
    return {
        "groups": out,
        "spread": spread,
        "max_spread": max_spread,
        "min_cameras": min_cameras,
        "single_correction": verdict,
    }


def detection_metrics(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    groups: Mapping[str, str] | None = None,
    score_threshold: float = 0.5,
    min_precision: float = 0.8,
    tol_factor: float = 1.0,
    min_tol_deg: float = 0.5,
    calibration: int = 10,
) -> dict[str, Any]:
    """Return precision, recall, AP overall and by size band, reliability and recall by group.

    Parameters
    ----------
    detections
        :data:`camcensus.detect.infer.DETECTION_COLUMNS` rows (at least ``panorama_id``,
        ``heading_deg``, ``pitch_deg``, ``score``; ``size_deg`` for the band of unmatched ones).
    truth
        :data:`TRUTH_COLUMNS` rows of the same panoramas.
    groups
        ``PanoramaId -> group`` (neighbourhood); None: no group table.
    score_threshold
        Threshold of the reported precision and recall (the operating point at
        ``min_precision`` is reported too).
    tol_factor, min_tol_deg
        Matching tolerance (:func:`match_detections`).
    calibration
        Score bins of the reliability table.
    """
    det_truth, truth_det = match_detections(
        detections, truth, tol_factor=tol_factor, min_tol_deg=min_tol_deg
    )
    score = detections["score"].to_numpy(float)
    tp = det_truth >= 0
    t_px = truth["size_px"].to_numpy(float) if len(truth) else np.zeros(0)
    if "size_deg" in detections.columns:
        d_px = detections["size_deg"].to_numpy(float) * PX_PER_DEG
    else:
        d_px = np.full(len(detections), np.nan)
    d_px = np.where(tp, t_px[np.maximum(det_truth, 0)] if len(truth) else d_px, d_px)

    def block(d_sel: np.ndarray, t_sel: np.ndarray) -> dict[str, Any]:
        n_truth = int(t_sel.sum())
        s, ok = score[d_sel], tp[d_sel]
        at = s >= score_threshold
        found_at = int(np.sum(ok & at))
        return {
            "cameras": n_truth,
            "detections": int(at.sum()),
            "true_positives": found_at,
            "precision": found_at / int(at.sum()) if at.any() else float("nan"),
            "recall": found_at / n_truth if n_truth else float("nan"),
            "ap": average_precision(s, ok, n_truth),
            f"at_precision_{min_precision:g}": _operating_point(s, ok, n_truth, min_precision),
        }

    all_d = np.ones(len(detections), bool)
    all_t = np.ones(len(truth), bool)
    small_d = np.nan_to_num(d_px, nan=0.0) < BAND_PX
    bands = {
        f"< {BAND_PX:g} px": block(all_d & small_d, t_px < BAND_PX),
        f">= {BAND_PX:g} px": block(all_d & ~small_d, t_px >= BAND_PX),
    }
    cal = calibration_bins(score, tp, bins=calibration)
    n_cal = cal["n"].to_numpy(float)
    ece = float(np.nansum(n_cal * np.abs(cal["gap"].to_numpy(float))) / max(n_cal.sum(), 1))
    out: dict[str, Any] = {
        "score_threshold": score_threshold,
        "match": {"tol_factor": tol_factor, "min_tol_deg": min_tol_deg},
        "panoramas": int(truth["panorama_id"].nunique()) if len(truth) else 0,
        "overall": block(all_d, all_t),
        "by_size": bands,
        "calibration": {"bins": cal.to_dict("records"), "ece": ece},
    }
    if "counted" in truth.columns and len(truth):
        # The census's cameras only: a detection of an uncounted (too far) camera is neither a
        # hit nor a false positive here.
        counted = truth["counted"].to_numpy(bool)
        keep = ~(tp & ~counted[np.maximum(det_truth, 0)])
        out["counted"] = {
            "all": block(keep, counted),
            f"< {BAND_PX:g} px": block(keep & small_d, counted & (t_px < BAND_PX)),
            f">= {BAND_PX:g} px": block(keep & ~small_d, counted & (t_px >= BAND_PX)),
            "uncounted_cameras": int((~counted).sum()),
            "detections_of_uncounted": int(np.sum(~keep & (score >= score_threshold))),
        }
    if groups is not None:
        g = np.array([groups.get(str(p)) for p in truth["panorama_id"]], dtype=object)
        found = (truth_det >= 0) & np.isin(truth_det, np.flatnonzero(score >= score_threshold))
        out["by_group"] = recall_by_group(found, g)
    return out


def evaluate_synthetic(
    detector: Any,
    n_panoramas: int,
    *,
    seed: int,
    groups: Mapping[str, str] | str | None = "tract",
    score_threshold: float = 0.5,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Run the detector on ``n_panoramas`` synthetic panoramas of ``simulate_city(seed)``.

    ``groups``: a ``PanoramaId -> group`` mapping, ``"tract"`` (the city's GEOID: the renderer
    has no neighbourhood effect, so any spread is sampling noise) or None. Returns the metrics
    (:func:`detection_metrics`), the detections and the truth.
    """
    from camcensus.detect.infer import detect_panorama
    from camcensus.detect.train import synthetic_panoramas

    dets: list[pd.DataFrame] = []
    truths: list[pd.DataFrame] = []
    for i, (pid, rendered) in enumerate(synthetic_panoramas(n_panoramas, seed=seed)):
        if progress is not None:
            progress(f"evaluating: panorama {i + 1}/{n_panoramas}")
        truths.append(truth_cameras(pid, rendered))
        dets.append(
            detect_panorama(
                detector,
                rendered.image,
                panorama_id=pid,
                panorama_heading_deg=rendered.heading_deg,
                batch_size=batch_size,
                score_min=0.05,
            )
        )
    truth = pd.concat(truths, ignore_index=True)
    nonempty = [d for d in dets if len(d)]
    det = pd.concat(nonempty, ignore_index=True) if nonempty else dets[0]
    mapping: Mapping[str, str] | None
    if groups == "tract":
        from camcensus.simulate import simulate_city

        city = simulate_city(seed)
        mapping = dict(
            zip(city.truth["PanoramaId"].astype(str), city.truth["GEOID"].astype(str), strict=True)
        )
    elif isinstance(groups, str):
        raise OptionError(f"groups = {groups!r}: expected a mapping, 'tract' or None")
    else:
        mapping = groups
    metrics = detection_metrics(det, truth, groups=mapping, score_threshold=score_threshold)
    metrics["panoramas"] = n_panoramas
    metrics["data"] = {"synthetic_panoramas": n_panoramas, "seed": seed}
    return metrics, det, truth


def _prior_truth(cams: pd.DataFrame) -> pd.DataFrame:
    """Cameras with angular rectangles (:data:`camcensus.detect.labels.CAMERA_COLUMNS`) as a
    truth table (size from the rectangle)."""
    wide = cams["span_deg"].to_numpy(float) * np.cos(np.radians(cams["pitch_deg"].to_numpy(float)))
    tall = cams["top_deg"].to_numpy(float) - cams["bottom_deg"].to_numpy(float)
    size = np.sqrt(np.maximum(wide * tall, 0.0))
    return pd.DataFrame(
        {
            "panorama_id": cams["panorama_id"].astype(str).to_numpy(),
            "camera_id": cams["camera_id"].astype(str).to_numpy(),
            "heading_deg": cams["heading_deg"].to_numpy(float),
            "pitch_deg": cams["pitch_deg"].to_numpy(float),
            "category": cams["category"].astype(str).to_numpy(),
            "size_deg": size,
            "size_px": size * PX_PER_DEG,
        },
        columns=list(TRUTH_COLUMNS),
    )


def read_truth(
    path: str | Any, *, min_support: int = 2, ledger: Ledger | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Read the ground truth of real panoramas for :func:`evaluate_panoramas`.

    Two CSV formats, told apart by the ``decoder_id`` column:

    - **tags** (``camcensus export tags --format csv``, or any table with ``tag_id``,
      ``panorama_id``, ``decoder_id``, ``heading_deg``, ``pitch_deg``, ``attachment``,
      ``camera_type``): candidates of :func:`camcensus.detect.labels.agreed_cameras`; those
      agreed by ``min_support`` volunteers are the truth, the others are *ignore* candidates (a
      detection there is neither a hit nor a false positive). Machine tags and submissions of
      kind ``model`` / ``tutorial`` or ``gold`` are left out (counted).
    - **cameras** (reference cameras, e.g. checked by experts): ``panorama_id``,
      ``heading_deg``, ``pitch_deg`` and optionally ``size_deg`` (apparent size, degrees;
      default: the size prior of :func:`camcensus.detect.labels.prior_box_deg` for an
      ``attachment`` / ``camera_type`` column or unknown ones), ``category``, ``camera_id``.

    Returns
    -------
    tuple
        ``(truth, ignore, format)``: two :data:`TRUTH_COLUMNS` tables and ``"tags"`` or
        ``"cameras"``.
    """
    from pathlib import Path

    from camcensus.detect.labels import agreed_cameras, prior_box_deg

    src = Path(path)
    if not src.is_file():
        raise OptionError(f"{src}: no such truth file (a tags or cameras CSV)")
    table = pd.read_csv(src, dtype={"panorama_id": str, "decoder_id": str, "tag_id": str})
    need = ["panorama_id", "heading_deg", "pitch_deg"]
    if "decoder_id" in table.columns:
        need += ["tag_id", "attachment", "camera_type"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(
            [
                Problem(str(src), None, c, "no such column", ", ".join(need), "add the column")
                for c in missing
            ]
        )
    bad = ~(table["heading_deg"].apply(_finite_number) & table["pitch_deg"].apply(_finite_number))
    if bad.any():
        raise InputError(
            [
                Problem(
                    str(src),
                    int(i) + 2,
                    "heading_deg/pitch_deg",
                    "not a number",
                    "degrees",
                    "fix or delete the row",
                )
                for i in np.flatnonzero(bad.to_numpy())[:20]
            ]
        )
    empty = pd.DataFrame(columns=list(TRUTH_COLUMNS))
    if "decoder_id" not in table.columns:
        cams = table.copy()
        if "size_deg" not in cams.columns:
            n = len(cams)
            att = cams["attachment"].astype(str).to_numpy() if "attachment" in cams else "unknown"
            typ = cams["camera_type"].astype(str).to_numpy() if "camera_type" in cams else "unknown"
            att = np.broadcast_to(np.asarray(att, dtype=object), (n,))
            typ = np.broadcast_to(np.asarray(typ, dtype=object), (n,))
            span, tall = prior_box_deg(cams["pitch_deg"].to_numpy(float), att, typ)
            cosp = np.cos(np.radians(cams["pitch_deg"].to_numpy(float)))
            cams["size_deg"] = np.sqrt(np.maximum(span * cosp * tall, 0.0))
        size = cams["size_deg"].to_numpy(float)
        truth = pd.DataFrame(
            {
                "panorama_id": cams["panorama_id"].astype(str).to_numpy(),
                "camera_id": (
                    cams["camera_id"].astype(str).to_numpy()
                    if "camera_id" in cams
                    else [f"row{i + 2}" for i in range(len(cams))]
                ),
                "heading_deg": cams["heading_deg"].to_numpy(float) % 360.0,
                "pitch_deg": cams["pitch_deg"].to_numpy(float),
                "category": (
                    cams["category"].astype(str).to_numpy() if "category" in cams else "unknown"
                ),
                "size_deg": size,
                "size_px": size * PX_PER_DEG,
            },
            columns=list(TRUTH_COLUMNS),
        )
        return truth, empty, "cameras"
    keep = np.ones(len(table), dtype=bool)
    if "submission_kind" in table.columns:
        kind = table["submission_kind"].astype(str)
        other = ~kind.isin(["volunteer", "expert"])
        keep &= ~other.to_numpy()
        if ledger is not None:
            ledger.exclude(
                "detect evaluate", "tags of model/tutorial submissions", int(other.sum())
            )
    if "gold" in table.columns:
        gold = table["gold"].astype(str).str.lower().isin(["true", "1"]).to_numpy() & keep
        keep &= ~gold
        if ledger is not None:
            ledger.exclude("detect evaluate", "tags of gold submissions", int(gold.sum()))
    if "machine" in table.columns:
        table["machine"] = table["machine"].astype(str).str.lower().isin(["true", "1"])
    cams = agreed_cameras(table.loc[keep], min_support=min_support, ledger=ledger)
    agreed = cams["agreed"].astype(bool).to_numpy()
    return _prior_truth(cams[agreed]), _prior_truth(cams[~agreed]), "tags"


def _finite_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def evaluate_panoramas(
    detector: Any,
    panoramas: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    ignore: pd.DataFrame | None = None,
    groups: Mapping[str, str] | None = None,
    score_threshold: float = 0.5,
    batch_size: int = 8,
    ledger: Ledger | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Run the detector on real panoramas and audit it against ``truth`` (:func:`read_truth`).

    ``panoramas``: :func:`camcensus.detect.infer.read_panorama_list` rows; every one is
    evaluated (a panorama with no truth row has no camera). Truth rows of other panoramas are
    left out (counted). Detections matching an ``ignore`` candidate (tags not agreed) are
    dropped before the metrics (``ignored_detections``).
    """
    from camcensus.detect.infer import detect_panoramas

    ids = set(panoramas["panorama_id"].astype(str))
    inside = truth["panorama_id"].astype(str).isin(ids).to_numpy()
    if ledger is not None:
        ledger.exclude(
            "detect evaluate", "truth cameras of panoramas not in --panoramas", int((~inside).sum())
        )
    truth = truth.loc[inside].reset_index(drop=True)
    det = detect_panoramas(
        detector, panoramas, batch_size=batch_size, score_min=0.05, progress=progress
    )
    dropped = 0
    if ignore is not None and len(ignore) and len(det):
        # Ignore candidates only where no agreed camera claims the detection first.
        d_truth, _ = match_detections(det, truth)
        d_ign, _ = match_detections(det, ignore.reset_index(drop=True))
        drop = (d_truth < 0) & (d_ign >= 0)
        dropped = int(drop.sum())
        det = det.loc[~drop].reset_index(drop=True)
    metrics = detection_metrics(det, truth, groups=groups, score_threshold=score_threshold)
    metrics["panoramas"] = len(ids)
    metrics["ignored_detections"] = dropped
    metrics["data"] = {"panoramas": len(ids)}
    return metrics, det, truth
