"""Simulated volunteers: tags as the submit route takes them, errors as the model says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from camcensus.simulate import ErrorModel, simulate_city
from camcensus.simulate.scene import objects_in_view, panorama_scene
from camcensus.simulate.volunteers import (
    VolunteerModel,
    draw_volunteer_models,
    simulate_tags,
    simulate_tags_with_sources,
)

TAG_FIELDS = {"client_id", "heading_deg", "pitch_deg", "fov_deg", "attachment", "camera_type"}


@pytest.fixture(scope="module")
def views() -> list[pd.DataFrame]:
    city = simulate_city(0)
    pids = city.truth.sort_values("n_cameras", kind="stable")["PanoramaId"].iloc[-150:]
    return [objects_in_view(panorama_scene(city, pid, seed=0)) for pid in pids]


def _angle_error(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def test_tags_have_exactly_the_submit_fields(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(1)
    model = VolunteerModel(false_positive_rate=0.5)
    n_tags = 0
    for view in views[-40:]:
        answer = simulate_tags(view, model, rng=rng)
        assert set(answer) == {"no_camera", "tags"}
        assert answer["no_camera"] == (len(answer["tags"]) == 0)
        ids = [t["client_id"] for t in answer["tags"]]
        assert len(set(ids)) == len(ids)
        for tag in answer["tags"]:
            assert set(tag) == TAG_FIELDS
            assert 0 <= tag["heading_deg"] < 360 and -90 <= tag["pitch_deg"] <= 90
            assert 30 <= tag["fov_deg"] <= 75
            assert tag["attachment"] in {"street", "building", "unknown"}
            assert tag["camera_type"] in {"dome", "bullet", "unknown"}
            if tag["attachment"] != "street":
                assert tag["camera_type"] == "unknown"
        n_tags += len(answer["tags"])
    assert n_tags > 100


def test_clicks_land_near_the_truth(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(2)
    model = VolunteerModel(miss=0.0, bearing_sd_deg=2.0, pitch_sd_deg=2.0, false_positive_rate=0)
    head_err, pitch_err = [], []
    for view in views:
        answer, sources = simulate_tags_with_sources(view, model, rng=rng)
        by_id = view.set_index("object_id")
        for tag, oid in zip(answer["tags"], sources, strict=True):
            head_err.append(_angle_error(tag["heading_deg"], by_id.loc[oid, "heading_deg"]))
            pitch_err.append(abs(tag["pitch_deg"] - by_id.loc[oid, "pitch_deg"]))
    h, p = np.array(head_err), np.array(pitch_err)
    assert len(h) > 300
    # Within 3 sd (6°) for at least 99% of the seen cameras, on each axis.
    assert (h <= 6).mean() >= 0.99 and (p <= 6).mean() >= 0.99
    # And the error's sd is the model's.
    assert np.sqrt(np.mean(h**2)) == pytest.approx(2.0, rel=0.1)


def test_miss_rate_matches_the_model(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(3)
    miss = 0.25
    model = VolunteerModel(miss=miss, false_positive_rate=0.0)
    seen = total = 0
    for _ in range(3):
        for view in views:
            answer = simulate_tags(view, model, rng=rng)
            seen += len(answer["tags"])
            total += int(((view["kind"] == "camera") & view["visible"]).sum())
    missed = total - seen
    # Two-sided binomial test at the 0.1% level.
    assert stats.binomtest(missed, total, miss).pvalue > 0.001
    assert abs(missed / total - miss) < 4 * np.sqrt(miss * (1 - miss) / total)


def test_false_positives_land_on_lookalikes(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(4)
    model = VolunteerModel(miss=1.0, false_positive_rate=1.5)
    kinds = []
    for view in views:
        answer, sources = simulate_tags_with_sources(view, model, rng=rng)
        by_id = view.set_index("object_id")
        kinds += [by_id.loc[oid, "kind"] for oid in sources]
        assert by_id.loc[sources, "visible"].all() if sources else True
        assert all(t["camera_type"] == "unknown" for t in answer["tags"])
    assert len(kinds) > 150
    assert set(kinds) <= {"lamp", "signal", "cell"}


def test_perfect_volunteer_tags_every_visible_camera_right(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(5)
    perfect = VolunteerModel(
        miss=0.0, bearing_sd_deg=0.0, pitch_sd_deg=0.0, p_attach_correct=1.0,
        p_type_correct=1.0, false_positive_rate=0.0,
    )  # fmt: skip
    for view in views[:60]:
        answer, sources = simulate_tags_with_sources(view, perfect, rng=rng)
        cams = view[(view["kind"] == "camera") & view["visible"]].set_index("object_id")
        assert sorted(sources) == sorted(cams.index)
        for tag, oid in zip(answer["tags"], sources, strict=True):
            assert tag["attachment"] == cams.loc[oid, "attachment"]
            want = cams.loc[oid, "camera_type"] if tag["attachment"] == "street" else "unknown"
            assert tag["camera_type"] == want
            assert tag["heading_deg"] == pytest.approx(cams.loc[oid, "heading_deg"], abs=1e-3)


def test_counts_follow_the_error_model(views: list[pd.DataFrame]) -> None:
    """Implied counts agree in expectation with the city simulation's ErrorModel."""
    e = ErrorModel()
    model = VolunteerModel(miss=0.15, p_attach_correct=e.p_attach_correct,
                           p_type_correct=e.p_type_correct, false_positive_rate=0.2)  # fmt: skip
    rng = np.random.default_rng(6)
    street = truth_street = 0
    for _ in range(4):
        for view in views:
            answer = simulate_tags(view, model, rng=rng)
            street += sum(t["attachment"] == "street" for t in answer["tags"])
            cams = view[(view["kind"] == "camera") & view["visible"]]
            truth_street += int((cams["attachment"] == "street").sum())
    n_pano = 4 * len(views)
    total_cams = sum(int(((v["kind"] == "camera") & v["visible"]).sum()) for v in views) * 4
    # E[street tags] = (1 - miss) (p_a S + (1 - p_a)/2 (N - S)) + 0.2 * fp_rate * panoramas.
    expect = 0.85 * (0.92 * truth_street + 0.04 * (total_cams - truth_street)) + 0.2 * 0.2 * n_pano
    assert street == pytest.approx(expect, rel=0.08)


def test_hurried_volunteers_claim_no_camera(views: list[pd.DataFrame]) -> None:
    rng = np.random.default_rng(7)
    model = VolunteerModel(p_no_camera_claim=1.0)
    answer = simulate_tags(views[-1], model, rng=rng)
    assert answer == {"no_camera": True, "tags": []}


def test_draw_volunteer_models() -> None:
    a = draw_volunteer_models(200, seed=1)
    assert a == draw_volunteer_models(200, seed=1)
    assert a != draw_volunteer_models(200, seed=2)
    miss = np.array([m.miss for m in a])
    assert miss.mean() == pytest.approx(ErrorModel().miss_mean, abs=0.03)
    assert all(1 <= m.bearing_sd_deg <= 3 for m in a)
    prone = draw_volunteer_models(200, seed=1, kind="miss_prone")
    over = draw_volunteer_models(200, seed=1, kind="over_counting")
    assert np.mean([m.miss for m in prone]) > 0.3 > np.mean([m.miss for m in over])
    assert min(m.false_positive_rate for m in over) > max(m.false_positive_rate for m in a)
    with pytest.raises(ValueError, match="not one of"):
        draw_volunteer_models(3, seed=0, kind="lazy")
