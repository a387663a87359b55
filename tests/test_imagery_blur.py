"""Face and plate blurring with OpenCV's Haar cascades, on a real equirectangular photo.

A real face (Grace Hopper's portrait, public domain, shipped as matplotlib sample data) is
pasted into a real 360° photo (the pannellum example, CC BY-SA 3.0, ../shared/data); what the
cascades find and miss across sizes, pitches and poses is measured in docs/imagery.md.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from camcensus.imagery import ImageStore
from camcensus.imagery.blur import Box, blur_boxes, blur_faces_and_plates

W = 1024
# Grace Hopper's face box in grace_hopper.jpg (the frontal cascade finds it at 149, 100, 231).
FACE = (149, 100, 231)


def _head(face_px: int) -> np.ndarray:
    """Head and shoulders scaled so the face box is ``face_px`` wide."""
    x, y, w = FACE
    margin = int(w * 0.4)
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        crop = im.convert("RGB").crop((x - margin, y - margin, x + w + margin, y + w + margin))
    side = round(face_px * crop.width / w)
    return np.asarray(crop.resize((side, side), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def landscape(shared: Path) -> np.ndarray:
    with Image.open(shared / "panoramas" / "pannellum_examplepano.jpg") as im:
        small = im.convert("RGB").resize((W, W // 2), Image.Resampling.LANCZOS)
    return np.asarray(small).copy()


def _paste(pano: np.ndarray, patch: np.ndarray, u: int, v: int) -> tuple[int, int, int, int]:
    s = patch.shape[0]
    cols = np.arange(u, u + s) % pano.shape[1]
    pano[v : v + s][:, cols] = patch
    return u % pano.shape[1], v, s, s


def _covers(box: Box, target: tuple[int, int, int, int], width: int) -> bool:
    """The blurred box holds the centre of the pasted face."""
    x, y, w, h = target
    cx, cy = (x + w // 2) % width, y + h // 2
    inside_x = (cx - box.x) % width < box.w
    return inside_x and box.y <= cy < box.y + box.h


@pytest.mark.realdata
def test_no_detection_on_a_landscape(landscape: np.ndarray) -> None:
    out, report = blur_faces_and_plates(landscape)
    assert (report.faces, report.plates, report.views) == (0, 0, 6)
    assert np.array_equal(out, landscape)


@pytest.mark.realdata
def test_a_face_is_blurred_also_across_the_seam(landscape: np.ndarray) -> None:
    pano = landscape.copy()
    head = _head(64)
    front = _paste(pano, head, 300, 256 - head.shape[0] // 2)
    seam = _paste(pano, head, W - head.shape[0] // 2, 230 - head.shape[0] // 2)
    out, report = blur_faces_and_plates(pano)
    assert report.faces == 2 and report.plates == 0
    for target in (front, seam):
        assert any(_covers(b, target, W) for b in report.boxes)
    # The face is no longer recognisable: its pixels changed a lot (pixelated and smoothed).
    x, y, w, h = front
    fx, fy, fw = x + int(w * 0.29), y + int(h * 0.29), int(w * 0.42)
    before = pano[fy : fy + fw, fx : fx + fw].astype(float)
    after = out[fy : fy + fw, fx : fx + fw].astype(float)
    assert np.abs(after - before).mean() > 10
    assert after.std() < before.std()
    # Pixels outside every blurred box are untouched.
    mask = np.zeros(pano.shape[:2], dtype=bool)
    for b in report.boxes:
        mask[b.y : b.y + b.h, np.arange(b.x, b.x + b.w) % W] = True
    assert np.array_equal(out[~mask], pano[~mask])


@pytest.mark.realdata
def test_small_and_tilted_faces_are_missed(landscape: np.ndarray) -> None:
    """The documented misses: faces under ~30 px, faces tilted 25° in the image plane."""
    pano = landscape.copy()
    _paste(pano, _head(24), 300, 240)
    tilted = np.asarray(Image.fromarray(_head(64)).rotate(25, fillcolor=(128, 128, 128)))
    _paste(pano, tilted, 600, 220)
    _, report = blur_faces_and_plates(pano)
    assert report.faces == 0


def test_blur_boxes_wraps_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
    out, grown = blur_boxes(image, [Box(120, 10, 16, 16, "face")], margin=0.0)
    assert grown == (Box(120, 10, 16, 16, "face"),)
    changed = np.any(out != image, axis=2)
    cols = np.flatnonzero(changed.any(axis=0))
    assert set(cols) <= set(range(120, 128)) | set(range(8))
    assert changed[10:26, 120:128].mean() > 0.9 and changed[10:26, 0:8].mean() > 0.9
    assert not changed[:10].any() and not changed[26:].any()


def test_detector_is_pluggable_and_store_blurs_on_put(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def fake(gray: np.ndarray) -> list[tuple[int, int, int, int, str]]:
        calls.append(gray.shape)
        # One box in the middle of the view looking at yaw 0 (the panorama's centre).
        return [(24, 24, 16, 16, "plate")] if len(calls) == 4 else []

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(128, 256, 3), dtype=np.uint8)
    out, report = blur_faces_and_plates(image, detector=fake)
    assert calls == [(64, 64)] * 6 and report.plates == 1 and report.faces == 0
    (box,) = report.boxes
    assert abs((box.x + box.w / 2) - 128) < 8  # mapped back near the centre column
    assert not np.array_equal(out, image)
    # ImageStore(blur=True) writes only the blurred copy.
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    store = ImageStore(tmp_path, blur=True)
    uri = store.put("p", buf.getvalue(), suffix=".png")
    assert store.stats["blurred"] == 1
    with Image.open(store.path(uri)) as im:
        assert im.size == (256, 128)
