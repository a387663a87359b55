"""Detector inference and audit without the trainer: peaks, NMS in ray space, metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from camcensus.detect.evaluate import (
    BAND_PX,
    MAX_RECALL_SPREAD,
    PX_PER_DEG,
    average_precision,
    calibration_bins,
    detection_metrics,
    match_detections,
    recall_by_group,
)
from camcensus.detect.infer import angular_distance_deg, decode_peaks, nms_rays


def test_angular_distance_is_exact_across_the_seam() -> None:
    d = angular_distance_deg(np.array([359.9, 10.0]), np.array([0.0, 30.0]), 0.1, 0.0)
    assert d[0] == pytest.approx(0.2, abs=1e-9)
    # Great-circle distance between (10°, 30°) and (0.1°, 0°) by the spherical law of cosines.
    c = math.sin(math.radians(30)) * 0 + math.cos(math.radians(30)) * math.cos(math.radians(9.9))
    assert d[1] == pytest.approx(math.degrees(math.acos(c)), abs=1e-9)


def test_nms_merges_duplicates_across_tiles_and_the_seam() -> None:
    # One camera seen at the 0/360 seam by two crops (359.8° and 0.2°), another duplicated by
    # two overlapping crops at 90°, a third alone 1.5° away from the second (kept: its own
    # size is 1°, the radius is max(0.75°, size)).
    heading = np.array([359.8, 0.2, 90.0, 90.3, 91.5, 180.0])
    pitch = np.array([10.0, 10.05, 5.0, 5.0, 5.0, 0.0])
    score = np.array([0.7, 0.9, 0.8, 0.6, 0.5, 0.95])
    size = np.array([0.5, 0.5, 1.0, 1.0, 1.0, 0.4])
    keep = nms_rays(heading, pitch, score, size_deg=size, min_radius_deg=0.75)
    assert sorted(keep.tolist()) == [1, 2, 4, 5]
    # Order: by decreasing score.
    assert keep.tolist() == [5, 1, 2, 4]


def test_nms_radius_follows_the_kept_detection_size() -> None:
    heading = np.array([10.0, 12.0])
    pitch = np.array([0.0, 0.0])
    score = np.array([0.9, 0.8])
    assert nms_rays(heading, pitch, score, size_deg=np.array([2.5, 0.1])).tolist() == [0]
    assert nms_rays(heading, pitch, score, size_deg=np.array([1.0, 0.1])).tolist() == [0, 1]


def test_decode_peaks_reads_centre_offset_size_and_type() -> None:
    heat = np.zeros((1, 1, 8, 8), np.float32)
    heat[0, 0, 2, 5] = 0.9
    heat[0, 0, 2, 6] = 0.5  # a neighbour of the peak: not a peak
    heat[0, 0, 6, 1] = 0.3
    size = np.zeros((1, 2, 8, 8), np.float32)
    size[0, :, 2, 5] = (math.log(10.0), math.log(6.0))
    offset = np.zeros((1, 2, 8, 8), np.float32)
    offset[0, :, 2, 5] = (0.25, 0.75)
    typ = np.zeros((1, 3, 8, 8), np.float32)
    typ[0, 1, 2, 5] = 3.0
    peaks = decode_peaks(
        {"heatmap": heat, "size": size, "offset": offset, "type": typ}, score_min=0.2
    )
    assert len(peaks) == 2
    top = peaks.iloc[0]
    assert top["x"] == pytest.approx((5 + 0.25) * 4)
    assert top["y"] == pytest.approx((2 + 0.75) * 4)
    assert top["w"] == pytest.approx(10.0, rel=1e-6) and top["h"] == pytest.approx(6.0, rel=1e-6)
    assert top["category"] == "directed"
    assert top["type_score"] == pytest.approx(math.exp(3) / (math.exp(3) + 2), rel=1e-6)
    assert peaks.iloc[1]["score"] == pytest.approx(0.3)


def _truth() -> pd.DataFrame:
    # Four cameras on two panoramas: sizes 0.5° (4.8 px) and 1.2° (11.6 px at the crop scale).
    rows = [
        ("a", "c1", 359.9, 5.0, "dome", 1.2),
        ("a", "c2", 100.0, 20.0, "directed", 0.5),
        ("b", "c3", 50.0, 10.0, "dome", 1.2),
        ("b", "c4", 200.0, 10.0, "dome", 1.2),
    ]
    t = pd.DataFrame(
        rows,
        columns=["panorama_id", "camera_id", "heading_deg", "pitch_deg", "category", "size_deg"],
    )
    t["size_px"] = t["size_deg"] * PX_PER_DEG
    return t


def _dets() -> pd.DataFrame:
    rows = [
        ("a", 0.3, 5.2, 0.9, 1.0),  # c1 across the seam, 0.5° away (tolerance 1.2°)
        ("a", 100.2, 20.0, 0.8, 0.5),  # c2, 0.19° away (tolerance 0.5°)
        ("a", 100.1, 20.1, 0.7, 0.5),  # a second hit on c2: false positive
        ("b", 52.0, 10.0, 0.6, 1.2),  # 2° from c3: outside 1.2°, false positive (large band)
        ("b", 200.0, 10.3, 0.4, 1.2),  # c4, under the 0.5 threshold
        ("b", 300.0, 0.0, 0.2, 0.3),  # nothing there (small band)
    ]
    return pd.DataFrame(
        rows, columns=["panorama_id", "heading_deg", "pitch_deg", "score", "size_deg"]
    )


def test_matching_in_ray_space_with_size_scaled_tolerance() -> None:
    det_truth, truth_det = match_detections(_dets(), _truth())
    assert det_truth.tolist() == [0, 1, -1, -1, 3, -1]
    assert truth_det.tolist() == [0, 1, -1, 4]


def test_metrics_on_hand_built_detections() -> None:
    m = detection_metrics(_dets(), _truth(), score_threshold=0.5)
    o = m["overall"]
    # At score >= 0.5: 4 detections, 2 true (c1, c2); 4 cameras.
    assert (o["detections"], o["true_positives"], o["cameras"]) == (4, 2, 4)
    assert o["precision"] == pytest.approx(0.5) and o["recall"] == pytest.approx(0.5)
    # AP by hand: ranked TP pattern 1,1,0,0,1,0 over 4 cameras; envelope precisions at the
    # recall steps 1/4 (1.0), 2/4 (1.0), 3/4 (3/5): AP = 0.25 + 0.25 + 0.25 * 0.6.
    assert o["ap"] == pytest.approx(0.25 + 0.25 + 0.15)
    op = o["at_precision_0.8"]
    assert op["recall"] == pytest.approx(0.5) and op["threshold"] == pytest.approx(0.8)
    # Bands: the large band holds c1, c3, c4 (and the det matched to them, plus the 2° miss);
    # the small band holds c2, its duplicate and the empty-sky detection.
    large, small = m["by_size"][f">= {BAND_PX:g} px"], m["by_size"][f"< {BAND_PX:g} px"]
    assert (large["cameras"], small["cameras"]) == (3, 1)
    assert (large["detections"], large["true_positives"]) == (2, 1)
    assert (small["detections"], small["true_positives"]) == (2, 1)
    assert small["recall"] == pytest.approx(1.0) and large["recall"] == pytest.approx(1 / 3)


def test_metrics_of_counted_cameras_ignore_hits_on_uncounted_ones() -> None:
    truth = _truth()
    truth["counted"] = [True, False, True, True]  # c2 is drawn but beyond the census's range
    m = detection_metrics(_dets(), truth, score_threshold=0.5)
    assert m["overall"] == detection_metrics(_dets(), _truth(), score_threshold=0.5)["overall"]
    c = m["counted"]
    # The hit on c2 (0.8) drops out; its duplicate (0.7) stays a false positive.
    assert (c["uncounted_cameras"], c["detections_of_uncounted"]) == (1, 1)
    a = c["all"]
    assert (a["cameras"], a["detections"], a["true_positives"]) == (3, 3, 1)
    # Ranked: 0.9 TP, 0.7 FP, 0.6 FP, 0.4 TP (c4), 0.2 FP over 3 cameras: 1/3 * 1 + 1/3 * 2/4.
    assert a["ap"] == pytest.approx(1 / 3 + 1 / 6)
    small, large = c[f"< {BAND_PX:g} px"], c[f">= {BAND_PX:g} px"]
    assert small["cameras"] == 0 and math.isnan(small["recall"])
    assert (large["cameras"], large["detections"], large["true_positives"]) == (3, 2, 1)


def test_average_precision_closed_forms() -> None:
    assert average_precision(np.array([0.9, 0.8]), np.array([True, True]), 2) == 1.0
    assert average_precision(np.array([0.9, 0.8]), np.array([False, True]), 2) == 0.25
    assert average_precision(np.array([]), np.array([], bool), 3) == 0.0
    assert math.isnan(average_precision(np.array([0.5]), np.array([False]), 0))


def test_calibration_bins_count_and_share() -> None:
    score = np.array([0.05, 0.15, 0.18, 0.95, 0.91, 0.99])
    tp = np.array([False, True, False, True, True, False])
    cal = calibration_bins(score, tp, bins=10)
    assert cal["n"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 3]
    assert cal.loc[1, "share_true"] == pytest.approx(0.5)
    assert cal.loc[9, "mean_score"] == pytest.approx((0.95 + 0.91 + 0.99) / 3)
    assert cal.loc[9, "gap"] == pytest.approx(2 / 3 - (0.95 + 0.91 + 0.99) / 3)


def test_recall_by_group_refuses_a_single_correction_when_spread_is_large() -> None:
    found = np.r_[np.ones(36, bool), np.zeros(4, bool), np.ones(28, bool), np.zeros(12, bool)]
    group = np.r_[["north"] * 40, ["south"] * 40]
    r = recall_by_group(found, group)
    assert r["groups"]["north"]["recall"] == pytest.approx(0.9)
    assert r["groups"]["south"]["recall"] == pytest.approx(0.7)
    assert r["spread"] == pytest.approx(0.2)
    assert r["spread"] > MAX_RECALL_SPREAD and r["single_correction"].startswith("refused")
    # Wilson interval of 36/40 by its closed form.
    z, n, p = 1.96, 40, 0.9
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    assert r["groups"]["north"]["low"] + r["groups"]["north"]["high"] == pytest.approx(2 * mid)
    close = recall_by_group(np.r_[found[:40], found[:40]], group)
    assert close["spread"] == 0.0 and close["single_correction"] == "allowed"
    few = recall_by_group(found[:50], group[:50])
    assert few["single_correction"].startswith("refused: fewer than two groups")


def test_metrics_report_groups_from_a_mapping() -> None:
    m = detection_metrics(_dets(), _truth(), groups={"a": "g1", "b": "g2"})
    g = m["by_group"]["groups"]
    assert g["g1"]["found"] == 2 and g["g2"]["found"] == 0  # c4 is found below threshold only
    assert m["by_group"]["single_correction"].startswith("refused: fewer than two groups")


@pytest.mark.slow
def test_truth_cameras_mark_the_cameras_the_census_counts() -> None:
    from camcensus.detect.evaluate import truth_cameras
    from camcensus.detect.train import synthetic_panoramas
    from camcensus.simulate import simulate_city

    n_cameras = simulate_city(1).truth.set_index("PanoramaId")["n_cameras"]
    uncounted = 0
    for pid, rendered in synthetic_panoramas(4, seed=1):
        t = truth_cameras(pid, rendered)
        # The counted ones are the city's truth for the panorama; the others are drawn too.
        assert int(t["counted"].sum()) == int(n_cameras.loc[pid]), pid
        uncounted += int((~t["counted"]).sum())
    assert uncounted > 0
