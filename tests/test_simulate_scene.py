"""Scenes around the synthetic city's panoramas: consistent with the city's truth."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from camcensus.simulate import SyntheticCity, simulate_city
from camcensus.simulate.scene import (
    EYE_HEIGHT_M,
    VIEW_RANGE_M,
    PanoramaScene,
    SceneObject,
    Wall,
    objects_in_view,
    panorama_headings,
    panorama_scene,
    scene_for_city,
    tutorial_scene,
)


@pytest.fixture(scope="module")
def small_city() -> SyntheticCity:
    return simulate_city(3, nx=10, ny=10)


def _bare_scene(objects: tuple[SceneObject, ...], walls: tuple[Wall, ...] = ()) -> PanoramaScene:
    return PanoramaScene(
        panorama_id="p",
        crs="EPSG:32618",
        x=0.0,
        y=0.0,
        heading_deg=0.0,
        centre_x=0.0,
        centre_y=0.0,
        road_half_ew=6.0,
        road_half_ns=6.0,
        walls=walls,
        objects=objects,
    )


def _camera(oid: str, x: float, y: float, z: float) -> SceneObject:
    return SceneObject(oid, "camera", "dome", "building", x, y, z, 0.3, 0.3, 0.0, "facade")


def test_visible_cameras_equal_city_truth_for_50_panoramas() -> None:
    city = simulate_city(0)
    truth = city.truth.set_index("PanoramaId")
    # Panoramas with the most cameras first, then ordinary ones.
    pids = list(truth.sort_values("n_cameras").index[-25:]) + list(truth.index[:25])
    n_checked = 0
    for pid in pids:
        view = objects_in_view(panorama_scene(city, pid, seed=0))
        cams = view[(view["kind"] == "camera") & view["visible"]]
        t = truth.loc[pid]
        assert len(cams) == t["n_cameras"], pid
        for att in ("street", "building", "unknown"):
            assert (cams["attachment"] == att).sum() == t[f"attached_{att}"], (pid, att)
        street = cams[cams["attachment"] == "street"]
        for typ in ("dome", "bullet", "unknown"):
            assert (street["camera_type"] == typ).sum() == t[f"type_{typ}"], (pid, typ)
        assert (cams["distance_m"] <= VIEW_RANGE_M).all()
        n_checked += 1
    assert n_checked == 50
    assert truth.loc[pids, "n_cameras"].sum() > 50  # the check was not vacuous


def test_mounts_are_realistic(small_city: SyntheticCity) -> None:
    scenes = scene_for_city(small_city, seed=1).panoramas
    assert set(scenes) == set(small_city.truth["PanoramaId"].astype(str))
    view = pd.concat([objects_in_view(s) for s in scenes.values()], ignore_index=True)
    cams = view[(view["kind"] == "camera") & view["visible"]]
    pole = cams[cams["attachment"] == "street"]
    building = cams[cams["attachment"] == "building"]
    assert len(pole) > 5 and len(building) > 20
    assert pole["z"].between(3.0, 8.0).all()
    assert building["z"].between(2.5, 6.0).all()
    assert set(cams["camera_type"]) <= {"dome", "bullet", "unknown"}
    assert set(view["kind"]) == {"camera", "lamp", "signal", "cell", "pole"}
    # Dome glass 0.22-0.44 m under a housing 1.2-2.1x as wide and 1.15x as tall; bullets
    # 0.28-0.46 m long, 0.13-0.19 m thick (sizes fitted to Stanford's boxes: test_detect_sizes).
    domes = cams[cams["camera_type"] == "dome"]
    glass = domes["height_m"] / 1.15
    assert len(domes) > 5 and glass.between(0.22, 0.44).all()
    assert (domes["width_m"] / glass).between(1.2, 2.1).all()
    bullets = cams[cams["camera_type"] == "bullet"]
    assert len(bullets) > 5 and bullets["width_m"].between(0.28, 0.46).all()
    assert bullets["height_m"].between(0.13, 0.19).all()
    # Hidden or far cameras exist but are never counted as visible.
    assert (~view.loc[view["kind"] == "camera", "visible"]).any()


def test_view_geometry_matches_brute_force() -> None:
    cam = _camera("c", 3.0, 4.0, EYE_HEIGHT_M + 5.0)
    view = objects_in_view(_bare_scene((cam,))).iloc[0]
    assert view["heading_deg"] == pytest.approx(math.degrees(math.atan2(3, 4)))
    assert view["pitch_deg"] == pytest.approx(45.0)
    assert view["distance_m"] == pytest.approx(math.sqrt(50))
    assert view["angular_width_deg"] == pytest.approx(2 * math.degrees(math.atan(0.15 / 50**0.5)))
    assert bool(view["visible"])


def test_camera_behind_a_facade_is_not_visible() -> None:
    # A wall 10 m north of the eye, 20 m wide, 12 m high; one camera behind it, one in front.
    wall = Wall(-10.0, 10.0, 10.0, 10.0, 12.0, (150, 70, 50), 0, True)
    behind = _camera("behind", 0.0, 15.0, 5.0)
    front = _camera("front", 0.0, 9.0, 5.0)
    beside = _camera("beside", 20.0, 15.0, 5.0)  # beyond the wall's end
    above = _camera("above", 0.0, 15.0, 30.0)  # seen over the wall
    far = _camera("far", 0.0, -45.0, 5.0)
    view = objects_in_view(_bare_scene((behind, front, beside, above, far), (wall,)))
    got = dict(zip(view["object_id"], view["visible"], strict=True))
    assert got == {"behind": False, "front": True, "beside": True, "above": True, "far": False}
    assert not dict(zip(view["object_id"], view["occluded"], strict=True))["far"]


def test_city_scenes_hide_alley_cameras_behind_facades() -> None:
    city = simulate_city(0)
    hidden = 0
    for pid in city.truth["PanoramaId"].iloc[:120]:
        view = objects_in_view(panorama_scene(city, pid, seed=0))
        cams = view[view["kind"] == "camera"]
        hidden += int((cams["occluded"] & (cams["distance_m"] < VIEW_RANGE_M)).sum())
        assert not (cams["visible"] & cams["occluded"]).any()
    assert hidden > 5


def test_same_seed_same_scene_other_seed_other_scene(small_city: SyntheticCity) -> None:
    pid = str(small_city.truth["PanoramaId"].iloc[4])
    a = panorama_scene(small_city, pid, seed=5)
    b = panorama_scene(small_city, pid, seed=5)
    c = panorama_scene(small_city, pid, seed=6)
    assert a == b
    assert a != c
    assert a.heading_deg == pytest.approx(panorama_headings(small_city, seed=5).loc[pid])
    assert panorama_scene(small_city, pid, seed=5, heading_deg=12.5).heading_deg == 12.5


def test_unknown_panorama_is_refused(small_city: SyntheticCity) -> None:
    with pytest.raises(KeyError, match="not in this synthetic city"):
        panorama_scene(small_city, "no-such-panorama", seed=0)


def test_tutorial_scene_has_easy_cameras_and_lookalikes() -> None:
    view = objects_in_view(tutorial_scene())
    cams = view[view["kind"] == "camera"]
    assert len(cams) == 3 and cams["visible"].all()
    assert set(cams["camera_type"]) == {"dome", "bullet"}
    assert set(cams["attachment"]) == {"street", "building"}
    assert cams["distance_m"].between(6, 20).all()
    looks = view[view["kind"].isin(["lamp", "signal", "cell"]) & view["visible"]]
    assert len(looks) >= 2
    assert tutorial_scene() == tutorial_scene()
