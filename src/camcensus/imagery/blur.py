"""Blur faces and licence plates in equirectangular panoramas before volunteers see them.

Detection only, to blur: no face is ever recognised, matched, cropped or stored. The detector
is OpenCV 4.x's shipped Haar cascades (``haarcascade_frontalface_default.xml``,
``haarcascade_profileface.xml`` run on the image and its mirror, and
``haarcascade_russian_plate_number.xml``). An equirectangular image stretches everything away
from the horizon by ``1 / cos(pitch)``, which Haar cascades do not tolerate, so the cascades run
on six overlapping perspective views (90° wide, every 60° of heading, looking 15° down: the
band from 60° below to 30° above the horizon, where street-level faces and plates are)
re-projected from the panorama; each detection is mapped back to a box of the panorama
(wrapping across the left/right seam) and that box, with a margin, is pixelated then smoothed.
Pixels outside the boxes are left untouched.

What it misses is documented in docs/imagery.md (small or distant faces, strong profiles,
faces turned away or occluded, plates other than the Russian format the cascade was trained
on, anything far above or below the horizon band).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["BlurReport", "Box", "blur_boxes", "blur_faces_and_plates", "detect_faces_and_plates"]

#: Headings (relative to the image centre) and pitches of the perspective views searched.
_VIEW_YAWS = tuple(range(-180, 180, 60))
_VIEW_PITCHES = (-15.0,)
_VIEW_FOV = 90.0
#: Haar cascade settings: pyramid step, neighbours required, largest box searched (pixels).
_SCALE, _NEIGHBOURS, _MAX_PX = 1.15, 6, 320

#: ``detector(gray_view) -> [(x, y, w, h, kind), ...]`` on one perspective view.
Detector = Callable[[NDArray[np.uint8]], list[tuple[int, int, int, int, str]]]


@dataclass(frozen=True)
class Box:
    """A blurred box of the panorama: ``x`` may run past the right edge (it wraps)."""

    x: int
    y: int
    w: int
    h: int
    kind: str


@dataclass(frozen=True)
class BlurReport:
    """What :func:`blur_faces_and_plates` found and blurred."""

    faces: int
    plates: int
    boxes: tuple[Box, ...]
    views: int
    min_size_px: int


@lru_cache(maxsize=1)
def _cascades() -> dict[str, Any]:
    import cv2

    out = {}
    for kind, name in (
        ("face", "haarcascade_frontalface_default.xml"),
        ("profile", "haarcascade_profileface.xml"),
        ("plate", "haarcascade_russian_plate_number.xml"),
    ):
        cascade = cv2.CascadeClassifier(str(cv2.data.haarcascades) + name)  # type: ignore[attr-defined]
        if cascade.empty():
            raise RuntimeError(f"OpenCV's {name} did not load; reinstall opencv-python-headless")
        out[kind] = cascade
    return out


def _haar(min_size_px: int) -> Detector:
    def detect(gray: NDArray[np.uint8]) -> list[tuple[int, int, int, int, str]]:
        import cv2

        c = _cascades()
        eq = cv2.equalizeHist(gray)
        found: list[tuple[int, int, int, int, str]] = []
        size, top = (min_size_px, min_size_px), (_MAX_PX, _MAX_PX)
        for x, y, w, h in c["face"].detectMultiScale(
            eq, _SCALE, _NEIGHBOURS, minSize=size, maxSize=top
        ):
            found.append((int(x), int(y), int(w), int(h), "face"))
        gw = eq.shape[1]
        for flipped in (False, True):
            img = eq[:, ::-1] if flipped else eq
            for x, y, w, h in c["profile"].detectMultiScale(
                np.ascontiguousarray(img), _SCALE, _NEIGHBOURS, minSize=size, maxSize=top
            ):
                x0 = gw - int(x) - int(w) if flipped else int(x)
                found.append((x0, int(y), int(w), int(h), "face"))
        plate_min = (max(min_size_px, 24), max(min_size_px // 3, 8))
        for x, y, w, h in c["plate"].detectMultiScale(
            eq, _SCALE, _NEIGHBOURS, minSize=plate_min, maxSize=(2 * _MAX_PX, _MAX_PX)
        ):
            found.append((int(x), int(y), int(w), int(h), "plate"))
        return found

    return detect


def _view_maps(
    width: int, height: int, yaw_deg: float, pitch_deg: float, size: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Equirectangular (u, v) sampled by each pixel of a ``size × size`` perspective view."""
    focal = (size / 2.0) / np.tan(np.radians(_VIEW_FOV) / 2.0)
    c = (np.arange(size) + 0.5 - size / 2.0) / focal
    x, y = np.meshgrid(c, -c)
    h, p = np.radians(yaw_deg), np.radians(pitch_deg)
    fwd = np.array([np.cos(p) * np.sin(h), np.cos(p) * np.cos(h), np.sin(p)])
    right = np.array([np.cos(h), -np.sin(h), 0.0])
    up = np.cross(right, fwd)
    d = fwd[None, None, :] + x[..., None] * right + y[..., None] * up
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    yaw = np.degrees(np.arctan2(d[..., 0], d[..., 1]))
    pitch = np.degrees(np.arcsin(np.clip(d[..., 2], -1, 1)))
    u = (yaw + 180.0) / 360.0 * width - 0.5
    v = (90.0 - pitch) / 180.0 * height - 0.5
    return np.mod(u, width).astype(np.float32), v.astype(np.float32)


def detect_faces_and_plates(
    image: NDArray[np.uint8],
    *,
    min_size_px: int = 20,
    detector: Detector | None = None,
) -> tuple[list[Box], int]:
    """Return the face and plate boxes found in an equirectangular image, and the views searched.

    Parameters
    ----------
    image
        ``H × W × 3`` uint8 RGB, ``W = 2H``.
    min_size_px
        Smallest face the cascades look for, in pixels of a perspective view (at the
        horizon, about the same size in the panorama).
    detector
        Runs on each grey perspective view; default the OpenCV Haar cascades.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    detect = detector or _haar(min_size_px)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    # One column wrapped on the right so bilinear sampling crosses the seam.
    padded = np.concatenate([gray, gray[:, :1]], axis=1)
    size = max(64, round(width / 4))  # a 90° view at the panorama's own resolution
    boxes: list[Box] = []
    views = 0
    for pitch in _VIEW_PITCHES:
        for yaw in _VIEW_YAWS:
            map_u, map_v = _view_maps(width, height, yaw, pitch, size)
            view = np.asarray(
                cv2.remap(padded, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                dtype=np.uint8,
            )
            views += 1
            centre_u = (yaw + 180.0) / 360.0 * width
            for x, y, w, h, kind in detect(view):
                xs = np.clip(
                    np.array([x, x + w / 2, x + w, x, x + w, x, x + w / 2, x + w]), 0, size - 1
                ).astype(int)
                ys = np.clip(
                    np.array([y, y, y, y + h / 2, y + h / 2, y + h, y + h, y + h]), 0, size - 1
                ).astype(int)
                us = map_u[ys, xs].astype(float)
                vs = map_v[ys, xs].astype(float)
                # Unwrap around the view's centre so a box across the seam stays one box.
                us = centre_u + (us - centre_u + width / 2.0) % width - width / 2.0
                u0, u1 = int(np.floor(us.min())), int(np.ceil(us.max())) + 1
                v0 = max(0, int(np.floor(vs.min())))
                v1 = min(height, int(np.ceil(vs.max())) + 1)
                boxes.append(Box(u0 % width, v0, max(1, u1 - u0), max(1, v1 - v0), kind))
    return _merge(boxes, width), views


def _merge(boxes: Sequence[Box], width: int) -> list[Box]:
    """Drop boxes found twice in overlapping views (same kind, mostly the same pixels)."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.w * b.h):
        dup = False
        for k in kept:
            if k.kind != b.kind:
                continue
            dx = min(abs(b.x - k.x), width - abs(b.x - k.x))
            if dx < 0.5 * max(b.w, k.w) and abs(b.y - k.y) < 0.5 * max(b.h, k.h):
                dup = True
                break
        if not dup:
            kept.append(b)
    return kept


def _grow(box: Box, margin: float, width: int, height: int) -> Box:
    mx, my = round(box.w * margin), round(box.h * margin)
    y0 = max(0, box.y - my)
    y1 = min(height, box.y + box.h + my)
    w = min(width, box.w + 2 * mx)
    return Box((box.x - mx) % width, y0, w, y1 - y0, box.kind)


def _obscure(region: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pixelate (about 6 blocks across) then smooth a region."""
    import cv2

    h, w = region.shape[:2]
    if h < 2 or w < 2:
        return region
    small = cv2.resize(
        region,
        (max(1, w // max(2, w // 6)), max(1, h // max(2, h // 6))),
        interpolation=cv2.INTER_AREA,
    )
    blocky = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    k = max(3, (min(w, h) // 4) | 1)
    return np.asarray(cv2.GaussianBlur(blocky, (k, k), 0), dtype=np.uint8)


def blur_boxes(
    image: NDArray[np.uint8], boxes: Sequence[Box], *, margin: float = 0.15
) -> tuple[NDArray[np.uint8], tuple[Box, ...]]:
    """Return a copy of ``image`` with every box (grown by ``margin`` of its size) obscured.

    Boxes that run past the right edge wrap to the left edge. Returns the image and the boxes
    as blurred (after the margin); pixels outside them are unchanged.
    """
    out = image.copy()
    height, width = image.shape[:2]
    done = []
    for box in boxes:
        g = _grow(box, margin, width, height)
        done.append(g)
        cols = np.arange(g.x, g.x + g.w) % width
        region = out[g.y : g.y + g.h][:, cols]
        out[g.y : g.y + g.h, cols] = _obscure(np.ascontiguousarray(region))
    return out, tuple(done)


def blur_faces_and_plates(
    image: NDArray[np.uint8],
    *,
    min_size_px: int = 20,
    margin: float = 0.15,
    detector: Detector | None = None,
) -> tuple[NDArray[np.uint8], BlurReport]:
    """Blur every face and licence plate the detector finds in an equirectangular image.

    Parameters
    ----------
    image
        ``H × W × 3`` uint8 RGB equirectangular panorama (not modified).
    min_size_px
        Smallest face searched for (pixels); smaller faces are not found (docs/imagery.md).
    margin
        Each box grows by this fraction of its size on every side before it is blurred.
    detector
        Replaces the Haar cascades (tests); runs on each grey perspective view.

    Returns
    -------
    tuple
        The blurred copy and a :class:`BlurReport` (counts, the boxes blurred, views searched).
    """
    boxes, views = detect_faces_and_plates(image, min_size_px=min_size_px, detector=detector)
    out, grown = blur_boxes(image, boxes, margin=margin)
    return out, BlurReport(
        faces=sum(b.kind == "face" for b in boxes),
        plates=sum(b.kind == "plate" for b in boxes),
        boxes=grown,
        views=views,
        min_size_px=min_size_px,
    )
