"""Perspective crops: the viewer's projection, its exact inverse, sampling, seam, tilings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camcensus._errors import OptionError
from camcensus.detect.crops import (
    CropView,
    equirect_to_ray,
    perspective_crop,
    pixel_to_ray,
    ray_to_equirect,
    ray_to_pixel,
    row_coverage,
    tile_views,
)
from camcensus.simulate import render
from camcensus.simulate.scene import tutorial_scene


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(0, 640),
    y=st.floats(0, 480),
    heading=st.floats(0, 359.999),
    pitch=st.floats(-85, 85),
    fov=st.floats(5, 120),
)
def test_pixel_ray_pixel_round_trip(
    x: float, y: float, heading: float, pitch: float, fov: float
) -> None:
    kw: dict[str, Any] = {
        "heading_deg": heading,
        "pitch_deg": pitch,
        "fov_deg": fov,
        "size": (640, 480),
    }
    rh, rp = pixel_to_ray(x, y, **kw)
    assert 0 <= float(rh) < 360 and -90 <= float(rp) <= 90
    x2, y2, front = ray_to_pixel(rh, rp, **kw)
    assert bool(front)
    assert abs(float(x2) - x) < 1e-9 and abs(float(y2) - y) < 1e-9


@settings(max_examples=200, deadline=None)
@given(
    heading=st.floats(0, 359.999),
    pitch=st.floats(-80, 80),
    dh=st.floats(-25, 25),
    dp=st.floats(-25, 25),
)
def test_ray_pixel_ray_round_trip(heading: float, pitch: float, dh: float, dp: float) -> None:
    kw: dict[str, Any] = {"heading_deg": heading, "pitch_deg": pitch, "fov_deg": 70.0}
    ray_h, ray_p = (heading + dh) % 360, max(-89.0, min(89.0, pitch + dp))
    x, y, front = ray_to_pixel(ray_h, ray_p, **kw)
    assert bool(front)
    h2, p2 = pixel_to_ray(x, y, **kw)
    assert abs((float(h2) - ray_h + 180) % 360 - 180) < 1e-9
    assert abs(float(p2) - ray_p) < 1e-9


def test_known_projection_values() -> None:
    # Crop looking north at the horizon, fov 90: f = 320 px.
    kw: dict[str, Any] = {"heading_deg": 0.0, "pitch_deg": 0.0, "fov_deg": 90.0}
    x, y, _ = ray_to_pixel(0.0, 0.0, **kw)
    assert (float(x), float(y)) == (320.0, 320.0)
    x, y, _ = ray_to_pixel(45.0, 0.0, **kw)
    assert float(x) == pytest.approx(640.0, abs=1e-9) and float(y) == pytest.approx(320.0)
    # Straight up a meridian at heading 0: y = 320 - 320 tan(p).
    x, y, _ = ray_to_pixel(0.0, 30.0, **kw)
    assert float(y) == pytest.approx(320 - 320 * math.tan(math.radians(30)), abs=1e-9)
    # A ray 30° right at pitch 30°: x = f tan30 / ... (d·R)/(d·F) = tan(30°).
    x, y, _ = ray_to_pixel(30.0, 30.0, **kw)
    assert float(x) == pytest.approx(320 + 320 * math.tan(math.radians(30)), abs=1e-9)
    t30, c30 = math.tan(math.radians(30)), math.cos(math.radians(30))
    assert float(y) == pytest.approx(320 - 320 * t30 / c30, abs=1e-9)
    # Behind the crop.
    x, _, front = ray_to_pixel(180.0, 0.0, **kw)
    assert not bool(front) and math.isnan(float(x))


@settings(max_examples=200, deadline=None)
@given(
    u=st.floats(-0.5, 4095.4),
    v=st.floats(0, 2047),
    heading=st.floats(0, 359.99),
)
def test_equirect_convention_is_the_platforms(u: float, v: float, heading: float) -> None:
    # docs/platform.md "Rays", written out here (crops delegate to the renderer's functions).
    kw: dict[str, Any] = {"width": 4096, "height": 2048}
    h1, p1 = equirect_to_ray(u, v, panorama_heading_deg=heading, **kw)
    h_ref = (heading + (u + 0.5) / 4096 * 360 - 180) % 360
    assert abs((float(h1) - h_ref + 180) % 360 - 180) < 1e-9
    assert float(p1) == pytest.approx(90 - (v + 0.5) / 2048 * 180, abs=1e-9)
    u1, v1 = ray_to_equirect(h1, p1, panorama_heading_deg=heading, **kw)
    assert float(v1) == pytest.approx(v, abs=1e-6)
    assert min(abs(float(u1) - u), abs(abs(float(u1) - u) - 4096)) < 1e-6
    assert -0.5 <= float(u1) < 4095.5


def _column_image(w: int = 360, h: int = 180) -> np.ndarray:
    """A float image whose value is the column index (to read back sampled positions)."""
    return np.broadcast_to(np.arange(w, dtype=np.float64)[None, :], (h, w)).copy()


def test_crop_centre_samples_the_centre_ray() -> None:
    img = _column_image()
    # Even crop: the centre ray passes between the 4 central pixels; 1-px crop: exactly it.
    out = perspective_crop(
        img, heading_deg=100.25, pitch_deg=0.0, fov_deg=1.0, size=1, panorama_heading_deg=0.0
    )
    u, _ = ray_to_equirect(100.25, 0.0, panorama_heading_deg=0.0, width=360, height=180)
    assert float(out[0, 0]) == pytest.approx(float(u), abs=1e-9)


def test_seam_crossing_crop_wraps_bilinearly() -> None:
    img = _column_image()
    # The panorama's centre column faces north, so the seam (u = -0.5 | 359.5) looks south.
    out = perspective_crop(
        img, heading_deg=180.0, pitch_deg=0.0, fov_deg=20.0, size=(64, 1), panorama_heading_deg=0.0
    )
    xs = np.arange(64) + 0.5
    rh, rp = pixel_to_ray(xs, 0.5, heading_deg=180.0, pitch_deg=0.0, fov_deg=20.0, size=(64, 1))
    u, _ = ray_to_equirect(rh, rp, panorama_heading_deg=0.0, width=360, height=180)
    # Brute-force reference: between column 359 and column 0 the value blends 359 and 0.
    u0 = np.floor(u)
    a = u - u0
    ref = (1 - a) * np.mod(u0, 360) + a * np.mod(u0 + 1, 360)
    np.testing.assert_allclose(out[0], ref, atol=1e-9)
    # The crop does cross the seam: some samples blend the last and the first column.
    assert ((u > 359) | (u < 0)).any() and (u < 10).any() and (u > 350).any()


def test_panorama_heading_shifts_the_crop() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (90, 180, 3), dtype=np.uint8)
    a = perspective_crop(img, heading_deg=30.0, pitch_deg=10.0, fov_deg=60, size=32)
    b = perspective_crop(
        img, heading_deg=30.0 + 72.0, pitch_deg=10.0, fov_deg=60, size=32, panorama_heading_deg=72
    )
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3)
    np.testing.assert_array_equal(a, b)


def test_crop_refuses_bad_options() -> None:
    img = np.zeros((4, 8))
    with pytest.raises(OptionError, match="fov_deg"):
        perspective_crop(img, heading_deg=0, pitch_deg=0, fov_deg=180)
    with pytest.raises(OptionError, match="interpolation"):
        perspective_crop(img, heading_deg=0, pitch_deg=0, fov_deg=60, interpolation="cubic")


@pytest.fixture(scope="module")
def tutorial() -> render.RenderedPanorama:
    return render.render_panorama(tutorial_scene())


def _truth_box_in_crop(
    row: Any, r: render.RenderedPanorama, **kw: Any
) -> tuple[float, float, float, float]:
    """Project the rendered box's outline (pixel edges) into the crop; its bounding box."""
    u0, v0 = float(row.box_u0) - 0.5, float(row.box_v0) - 0.5
    u1, v1 = u0 + float(row.box_w), v0 + float(row.box_h)
    t = np.linspace(0, 1, 33)
    uu = np.concatenate([u0 + (u1 - u0) * t, u0 + (u1 - u0) * t, np.full(33, u0), np.full(33, u1)])
    vv = np.concatenate([np.full(33, v0), np.full(33, v1), v0 + (v1 - v0) * t, v0 + (v1 - v0) * t])
    h, p = equirect_to_ray(
        uu, vv, panorama_heading_deg=r.heading_deg, width=r.width, height=r.height
    )
    x, y, _ = ray_to_pixel(h, p, **kw)
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def test_rendered_cameras_land_where_their_blobs_are(tutorial: render.RenderedPanorama) -> None:
    r = tutorial
    cams = r.truth[(r.truth["kind"] == "camera") & r.truth["drawn"]]
    assert len(cams) == 3
    colours = np.array(sorted(render.CAMERA_COLOURS), dtype=np.uint8)
    row: Any
    for row in cams.itertuples():
        # Off-centre crops (the camera is not at the centre), zoomed so a source pixel is ~4 px.
        kw: dict[str, Any] = {
            "heading_deg": (row.heading_deg + 2.0) % 360,
            "pitch_deg": row.pitch_deg - 1.5,
            "fov_deg": 20.0,
            "size": 640,
        }
        crop = perspective_crop(
            r.image, panorama_heading_deg=r.heading_deg, interpolation="nearest", **kw
        )
        is_cam = (crop[:, :, None, :] == colours[None, None, :, :]).all(-1).any(-1)
        ys, xs = np.nonzero(is_cam)
        blob = (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0)
        x, y, front = ray_to_pixel(row.heading_deg, row.pitch_deg, **kw)
        assert bool(front)
        # The camera's ray lands inside its blob, which is far from the crop's centre.
        assert blob[0] <= float(x) <= blob[2] and blob[1] <= float(y) <= blob[3]
        assert abs(float(x) - 320) > 50
        # The blob is the rendered box (a source pixel is about 640/20/(4096/360) = 2.8 px).
        box = _truth_box_in_crop(row, r, **kw)
        scale = 640 / 20 / (4096 / 360)
        for got, want in zip(blob, box, strict=True):
            assert abs(got - want) <= scale + 1, (row.camera_type, blob, box)


def _min_margin(views: list[CropView], h: np.ndarray, p: np.ndarray) -> np.ndarray:
    best = np.full(len(h), -np.inf)
    for c in views:
        x, y, front = ray_to_pixel(
            h, p, heading_deg=c.heading_deg, pitch_deg=c.pitch_deg, fov_deg=c.fov_deg,
            size=(c.width, c.height),
        )  # fmt: skip
        m = np.minimum(np.minimum(x, c.width - x), np.minimum(y, c.height - y))
        best = np.maximum(best, np.where(front, m, -np.inf))
    return best


@pytest.mark.parametrize(("fov", "count"), [(45.0, 18), (60.0, 14), (90.0, 5)])
def test_tiling_covers_the_camera_band(fov: float, count: int) -> None:
    views = tile_views(fov_deg=fov, pitch_min_deg=-15, pitch_max_deg=60, margin_px=16)
    assert len(views) == count
    rng = np.random.default_rng(0)
    n = 60_000
    h = rng.uniform(0, 360, n)
    # Uniform on the sphere band, plus its two edges and the rows' mid-headings.
    p = np.degrees(
        np.arcsin(rng.uniform(math.sin(math.radians(-15)), math.sin(math.radians(60)), n))
    )
    p = np.concatenate([p, np.full(3600, -15.0), np.full(3600, 60.0)])
    h = np.concatenate([h, np.arange(3600) / 10, np.arange(3600) / 10])
    assert _min_margin(views, h, p).min() >= 16 - 1e-6
    # Without any one crop, some ray of the band is no longer 16 px inside a crop.
    worst = min(_min_margin(views[:k] + views[k + 1 :], h, p).min() for k in range(len(views)))
    assert worst < 16


def test_row_coverage_is_tight() -> None:
    lo, hi = row_coverage(10.0, 8, fov_deg=60.0, margin_px=0)
    assert lo < 10 < hi
    h = np.linspace(0, 360, 7201)
    views = [CropView(k * 45.0, 10.0, 60.0) for k in range(8)]
    inside = _min_margin(views, h, np.full_like(h, lo + 1e-6)).min()
    outside = _min_margin(views, h, np.full_like(h, lo - 0.05)).min()
    assert inside >= -1e-6 > outside
    inside = _min_margin(views, h, np.full_like(h, hi - 1e-6)).min()
    outside = _min_margin(views, h, np.full_like(h, hi + 0.05)).min()
    assert inside >= -1e-6 > outside
    # Too few crops to close the row.
    assert all(math.isnan(v) for v in row_coverage(0.0, 3, fov_deg=60.0))
