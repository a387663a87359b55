"""Rendered synthetic panoramas: the platform's ray convention, pixel truth, realistic sizes."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from camcensus.simulate import SyntheticCity, simulate_city
from camcensus.simulate.render import (
    CAMERA_COLOURS,
    RenderedPanorama,
    crop_box_sizes,
    pixel_to_ray,
    ray_to_pixel,
    render_panorama,
    stanford_box_sizes,
    to_jpeg,
)
from camcensus.simulate.scene import panorama_scene, tutorial_scene


@pytest.fixture(scope="module")
def city() -> SyntheticCity:
    return simulate_city(0)


@pytest.fixture(scope="module")
def busy(city: SyntheticCity) -> RenderedPanorama:
    pid = city.truth.sort_values("n_cameras", kind="stable")["PanoramaId"].iloc[-1]
    return render_panorama(panorama_scene(city, pid, seed=0))


def test_pixel_to_ray_is_the_platform_formula() -> None:
    # docs/platform.md "Rays": yaw = (u + 0.5) / W * 360 - 180, pitch = 90 - (v + 0.5) / H * 180.
    h, p = pixel_to_ray(0, 0, image_heading_deg=100.0, width=4096, height=2048)
    assert float(h) == pytest.approx((100.0 + 0.5 / 4096 * 360 - 180) % 360)
    assert float(p) == pytest.approx(90 - 0.5 / 2048 * 180)
    h, p = pixel_to_ray(2047.5, 1023.5, image_heading_deg=100.0, width=4096, height=2048)
    assert float(h) == pytest.approx(100.0) and float(p) == pytest.approx(0.0)


@given(
    u=st.floats(0, 4095),
    v=st.floats(0, 2047),
    heading=st.floats(0, 359.99),
)
def test_pixel_ray_round_trip(u: float, v: float, heading: float) -> None:
    h, p = pixel_to_ray(u, v, image_heading_deg=heading, width=4096, height=2048)
    u2, v2 = ray_to_pixel(h, p, image_heading_deg=heading, width=4096, height=2048)
    # The seam: u and u ± W are the same column.
    assert min(abs(float(u2) - u), abs(abs(float(u2) - u) - 4096)) < 1e-6
    assert float(v2) == pytest.approx(v, abs=1e-6)


def test_image_shape_and_centre_column_looks_at_the_heading(busy: RenderedPanorama) -> None:
    assert busy.image.shape == (2048, 4096, 3) and busy.image.dtype == np.uint8
    t = busy.truth
    cams = t[(t["kind"] == "camera") & t["visible"]]
    u, _v = ray_to_pixel(
        cams["heading_deg"].to_numpy(), 0.0, image_heading_deg=busy.heading_deg, width=4096,
        height=2048,
    )  # fmt: skip
    np.testing.assert_allclose(cams["u"], u)
    # A ray at the image heading lands on the centre column (between pixels 2047 and 2048).
    uc, _ = ray_to_pixel(busy.heading_deg, 0.0, image_heading_deg=busy.heading_deg, width=4096,
                         height=2048)  # fmt: skip
    assert float(uc) == pytest.approx(2047.5)


def test_camera_pixels_at_the_truth_ray_have_camera_colours(city: SyntheticCity) -> None:
    n = 0
    for pid in city.truth[city.truth["n_cameras"] > 0]["PanoramaId"].iloc[:16]:
        r = render_panorama(panorama_scene(city, pid, seed=0), width=2048, height=1024)
        cams = r.truth[(r.truth["kind"] == "camera") & r.truth["visible"]]
        for c in cams.itertuples():
            col = math.floor(c.u + 0.5) % r.width
            row = math.floor(c.v + 0.5)
            assert tuple(int(x) for x in r.image[row, col]) in CAMERA_COLOURS, (pid, c.object_id)
            # Its box holds that pixel.
            assert c.box_v0 <= row < c.box_v0 + c.box_h
            assert (col - c.box_u0) % r.width < c.box_w
            n += 1
    assert n >= 20
    # No background or look-alike surface uses a camera colour.
    sky_and_ground = r.image[[5, 600, 1000, 1020]].reshape(-1, 3)
    assert not {tuple(int(x) for x in p) for p in sky_and_ground} & CAMERA_COLOURS


def test_hidden_cameras_are_not_drawn(city: SyntheticCity) -> None:
    for pid in city.truth["PanoramaId"].iloc[:80]:
        scene = panorama_scene(city, pid, seed=0)
        view_cams = [o for o in scene.objects if o.kind == "camera" and not o.counted]
        if view_cams:
            r = render_panorama(scene, width=1024, height=512)
            t = r.truth.set_index("object_id")
            if t.loc[[o.object_id for o in view_cams], "occluded"].any():
                occluded = t[(t["kind"] == "camera") & t["occluded"]]
                assert not occluded["drawn"].any()
                assert (occluded["box_w"] <= 0).all()
                return
    pytest.fail("no panorama with a hidden camera among the first 80")


def test_boxes_wrap_at_the_seam() -> None:
    scene = tutorial_scene()
    cam = next(o for o in scene.objects if o.object_id == "camera-00")
    # Turn the image so that the camera sits on the left/right edge.
    dx, dy = cam.x - scene.x, cam.y - scene.y
    bearing = math.degrees(math.atan2(dx, dy)) % 360
    import dataclasses

    r = render_panorama(dataclasses.replace(scene, heading_deg=(bearing + 180) % 360),
                        width=2048, height=1024)  # fmt: skip
    row = r.truth.set_index("object_id").loc["camera-00"]
    assert bool(row["box_wraps"])
    assert 0 <= row["box_u0"] < 2048 and row["box_u0"] + row["box_w"] > 2048
    assert row["box_w"] < 60


def test_same_scene_same_bytes(city: SyntheticCity) -> None:
    pid = city.truth["PanoramaId"].iloc[3]
    a = to_jpeg(render_panorama(panorama_scene(city, pid, seed=0), width=1024, height=512).image)
    b = to_jpeg(render_panorama(panorama_scene(city, pid, seed=0), width=1024, height=512).image)
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    img = Image.open(io.BytesIO(a))
    assert img.format == "JPEG" and img.size == (1024, 512)


def test_tutorial_renders_its_three_cameras() -> None:
    r = render_panorama(tutorial_scene())
    cams = r.truth[r.truth["kind"] == "camera"]
    assert cams["drawn"].all() and len(cams) == 3
    assert (cams["box_w"] >= 8).all()  # easy to click at full size


def test_stanford_box_sizes_reads_the_annotations(shared: Path) -> None:
    st_boxes = stanford_box_sizes(shared / "cctv_annotations_stanford" / "meta.csv")
    # SOURCES.md: 2,021 camera annotations, classes 0 directed / 1 dome.
    assert len(st_boxes) == 2021
    assert set(st_boxes["camera_type"]) == {"dome", "bullet"}
    assert (st_boxes["width_px"] == st_boxes["x1"] - st_boxes["x0"]).all()
    assert st_boxes["width_px"].median() == 9.0


def test_stanford_box_sizes_names_a_bad_row(tmp_path: Path) -> None:
    from camcensus._errors import InputError

    bad = tmp_path / "meta.csv"
    bad.write_text(
        "annotations,split,image_id,panoid,heading,gsv_image_path\n"
        "[],train,0,a,1,x\n"
        "\"[{'bbox': [1, 2]}]\",train,1,b,2,y\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"row 2, column 'annotations'"):
        stanford_box_sizes(bad)


@pytest.mark.slow
@pytest.mark.realdata
def test_rendered_camera_boxes_match_stanford_sizes(city: SyntheticCity, shared: Path) -> None:
    """Rendered camera boxes, turned into 640 × 640 / 90° crops, are the size of real ones."""
    real = stanford_box_sizes(shared / "cctv_annotations_stanford" / "meta.csv")
    boxes = []
    for pid in city.truth[city.truth["n_cameras"] > 0]["PanoramaId"].iloc[:40]:
        r = render_panorama(panorama_scene(city, pid, seed=0))
        cams = r.truth[(r.truth["kind"] == "camera") & r.truth["visible"]]
        boxes.append(crop_box_sizes(cams, width=r.width, height=r.height))
    ours = pd.concat(boxes, ignore_index=True)
    assert len(ours) >= 50
    for col in ("width_px", "height_px"):
        ratio = ours[col].median() / real[col].median()
        assert 1 / 1.5 < ratio < 1.5, (col, ours[col].median(), real[col].median())
        # The spread is of the same order too (interquartile ranges within a factor 2).
        iqr = ours[col].quantile(0.75) - ours[col].quantile(0.25)
        real_iqr = real[col].quantile(0.75) - real[col].quantile(0.25)
        assert 0.5 < iqr / real_iqr < 2
