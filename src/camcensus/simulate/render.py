"""Render a synthetic panorama scene as an equirectangular image, with pixel ground truth.

The projection is the platform's (docs/platform.md, "Rays"): pixel column ``u`` (0 = left edge)
and row ``v`` (0 = top) of a W × H image look at ``yaw_deg = (u + 0.5) / W * 360 - 180`` from the
image centre column, whose true-north bearing is the scene's ``heading_deg``, and
``pitch_deg = 90 - (v + 0.5) / H * 180``.

Everything is flat-shaded numpy: sky gradient, roads with lane markings and crosswalks,
sidewalks, building façades with windows, poles, lamp and signal arms, and the objects (cameras,
lamps, signal heads, cell boxes) at their true angular size, each drawn only inside its bounding
pixel window. The same scene gives the same bytes.
"""

from __future__ import annotations

import ast
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from camcensus._errors import InputError, Problem
from camcensus.simulate._layout import DOME_HEIGHT_RATIO
from camcensus.simulate.scene import PanoramaScene, SceneObject, Wall, objects_in_view

__all__ = [
    "CAMERA_COLOURS",
    "RenderedPanorama",
    "crop_box_sizes",
    "pixel_to_ray",
    "ray_to_pixel",
    "render_panorama",
    "stanford_box_sizes",
    "to_jpeg",
]

Colour = tuple[int, int, int]

_HOUSING: Colour = (241, 240, 236)
_GLASS: Colour = (33, 34, 43)
_BULLET: Colour = (236, 233, 223)
_SHIELD: Colour = (214, 213, 207)
_LENS: Colour = (17, 18, 24)
_BOXCAM: Colour = (188, 189, 196)
_BRACKET: Colour = (172, 172, 170)
CAMERA_COLOURS: frozenset[Colour] = frozenset({_HOUSING, _GLASS, _BULLET, _SHIELD, _LENS, _BOXCAM})
"""Every colour a camera's body is drawn with (no other surface uses them)."""

_SKY_HORIZON = np.array([206, 220, 232], dtype=np.float32)
_SKY_ZENITH = np.array([84, 132, 196], dtype=np.float32)
_HAZE: Colour = (178, 180, 182)
# Ground classes: asphalt, sidewalk, white marking, yellow marking, haze.
_GROUND = np.array(
    [(74, 74, 77), (158, 155, 148), (226, 226, 220), (222, 182, 52), _HAZE], dtype=np.uint8
)
_WINDOW: Colour = (52, 62, 78)
_SHOP: Colour = (40, 48, 58)
_POLE_COLOURS: dict[str, Colour] = {
    "lamp": (86, 96, 92),
    "signal": (62, 62, 60),
    "utility": (112, 86, 60),
    "post": (44, 72, 52),
}
_LAMP_BODY: Colour = (128, 130, 128)
_LAMP_GLASS: Colour = (246, 236, 196)
_SIGNAL_BODY: Colour = (204, 164, 24)
_SIGNAL_LIGHTS: tuple[Colour, ...] = ((150, 30, 26), (150, 118, 24), (40, 200, 90))
_CELL_BODY: Colour = (120, 124, 126)
_CELL_EDGE: Colour = (92, 95, 97)
_WALL_LAMP: Colour = (38, 38, 36)
_WALL_LAMP_GLASS: Colour = (232, 204, 124)


@dataclass(frozen=True)
class RenderedPanorama:
    """An equirectangular image (``H × W × 3`` uint8) and its truth table.

    ``truth`` is :func:`~camcensus.simulate.scene.objects_in_view` plus, per object, ``u`` and
    ``v`` (the pixel coordinates of its centre ray, fractional, per the Rays formula),
    ``drawn`` (False when hidden behind a façade), and the pixel box of the pixels drawn for the
    object's body: ``box_u0``, ``box_v0`` (top-left pixel, ``0 <= box_u0 < W``), ``box_w``,
    ``box_h``, and ``box_wraps`` (the box crosses the 0/360 seam: its columns are
    ``box_u0 .. W-1`` then ``0 .. box_u0 + box_w - W - 1``).
    """

    image: np.ndarray
    truth: pd.DataFrame
    heading_deg: float
    width: int
    height: int


def ray_to_pixel(
    heading_deg: np.ndarray | float,
    pitch_deg: np.ndarray | float,
    *,
    image_heading_deg: float,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the fractional pixel ``(u, v)`` looking along a ray (the Rays formula inverted)."""
    yaw = (np.asarray(heading_deg, dtype=float) - image_heading_deg + 180.0) % 360.0 - 180.0
    u = (yaw + 180.0) / 360.0 * width - 0.5
    v = (90.0 - np.asarray(pitch_deg, dtype=float)) / 180.0 * height - 0.5
    return u, v


def pixel_to_ray(
    u: np.ndarray | float,
    v: np.ndarray | float,
    *,
    image_heading_deg: float,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(heading_deg, pitch_deg)`` of pixel ``(u, v)`` (docs/platform.md, "Rays")."""
    yaw = (np.asarray(u, dtype=float) + 0.5) / width * 360.0 - 180.0
    pitch = 90.0 - (np.asarray(v, dtype=float) + 0.5) / height * 180.0
    return (image_heading_deg + yaw) % 360.0, pitch


_N_SKY = 64
_C_GROUND = _N_SKY  # asphalt, sidewalk, white marking, yellow marking, haze
_C_WINDOW = _C_GROUND + len(_GROUND)
_C_SHOP = _C_WINDOW + 1
_C_WALLS = _C_SHOP + 1


def _lookup(cls: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``palette[cls]`` as an ``H × W × 3`` image (OpenCV's table lookup: 5× numpy's)."""
    import cv2

    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = palette
    out: np.ndarray = cv2.merge([cv2.LUT(cls, np.ascontiguousarray(lut[:, i])) for i in range(3)])
    return out


def _palette(scene: PanoramaScene) -> np.ndarray:
    """Colours of the background classes: sky steps, ground, windows, then one per wall."""
    a = (np.arange(_N_SKY, dtype=np.float32) / (_N_SKY - 1))[:, None]
    sky = (_SKY_HORIZON * (1 - a) + _SKY_ZENITH * a).round()
    walls = [[round(c * (0.82 if w.x0 == w.x1 else 1.0)) for c in w.colour] for w in scene.walls]
    return np.concatenate(
        [sky, _GROUND, np.array([_WINDOW, _SHOP], dtype=float), np.array(walls).reshape(-1, 3)]
    ).astype(np.uint8)


@lru_cache(maxsize=8)
def _rows(height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (radians) per row and the sky class per row."""
    pitch = np.radians(90.0 - (np.arange(height) + 0.5) / height * 180.0)
    a = np.clip(pitch / (math.pi / 2), 0, 1) ** 0.6
    return pitch, np.round(a * (_N_SKY - 1)).astype(np.uint8)


@lru_cache(maxsize=8)
def _yaw(width: int) -> np.ndarray:
    """Yaw (radians, from the image centre) per column."""
    return np.radians((np.arange(width) + 0.5) / width * 360.0 - 180.0)


def _runs(cols: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, stop)`` of sorted column indices."""
    if len(cols) == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) != 1)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks + 1, [len(cols)]])
    return [(int(cols[a]), int(cols[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def _stripes(q: np.ndarray) -> np.ndarray:
    """Alternate unit-wide bands of ``q`` (True on even bands; exact for ``|q| < 2**14``)."""
    # Shifted to positive values, truncation is the floor: no double band at 0.
    out: np.ndarray = ((q + np.float32(2**14)).astype(np.int32) & 1) == 0
    return out


def _ground_band(scene: PanoramaScene, d: np.ndarray, sh: np.ndarray, ch: np.ndarray) -> np.ndarray:
    """Ground classes for rows at ground distances ``d`` and columns of bearings (sh, ch)."""
    x = np.float32(scene.x - scene.centre_x) + d[:, None] * sh[None, :]
    y = np.float32(scene.y - scene.centre_y) + d[:, None] * ch[None, :]
    ax, ay = np.abs(x), np.abs(y)
    hew, hns = np.float32(scene.road_half_ew), np.float32(scene.road_half_ns)
    on_ew = ay < hew
    on_ns = ax < hns
    cls = np.where(on_ew | on_ns, _C_GROUND, _C_GROUND + 1).astype(np.uint8)
    # Lane markings beyond the crosswalks: a double yellow centre line and dashed white lanes.
    ew_arm = on_ew & (ax > hns + 3.6)
    ns_arm = on_ns & (ay > hew + 3.6)
    cls[(ew_arm & (ay > 0.08) & (ay < 0.24)) | (ns_arm & (ax > 0.08) & (ax < 0.24))] = _C_GROUND + 3
    lane_ew = ew_arm & (np.abs(ay - hew / 2) < 0.08) & _stripes(x * np.float32(1 / 4.5))
    lane_ns = ns_arm & (np.abs(ax - hns / 2) < 0.08) & _stripes(y * np.float32(1 / 4.5))
    # Crosswalks: zebra stripes across each road just outside the crossing.
    zebra_ew = on_ew & (ax > hns + 0.8) & (ax < hns + 3.4) & _stripes(y * np.float32(2.0))
    zebra_ns = on_ns & (ay > hew + 0.8) & (ay < hew + 3.4) & _stripes(x * np.float32(2.0))
    cls[lane_ew | lane_ns | zebra_ew | zebra_ns] = _C_GROUND + 2
    cls[np.broadcast_to(d[:, None] > 220, cls.shape)] = _C_GROUND + 4
    return cls


def _ground(cls: np.ndarray, scene: PanoramaScene, heading: np.ndarray, pitch: np.ndarray) -> None:
    """Fill the rows below the horizon; steep rows at a coarser column step (they are
    stretched by 1 / cos(pitch) in an equirectangular image)."""
    h, w = cls.shape
    top = int(np.searchsorted(-pitch, 0.0))
    sh = np.sin(heading).astype(np.float32)
    ch = np.cos(heading).astype(np.float32)
    cosp = np.cos(pitch)
    start = top
    for step, lo in ((1, 0.5), (2, 0.25), (4, 0.0)):
        stop = top + int(np.searchsorted(-cosp[top:], -lo)) if lo > 0 else h
        stop = max(start, stop)
        if stop > start and w % step == 0:
            d = (scene.eye_height_m / np.tan(-pitch[start:stop])).astype(np.float32)
            band = _ground_band(scene, d, sh[::step], ch[::step])
            cls[start:stop] = np.repeat(band, step, axis=1) if step > 1 else band
        elif stop > start:
            d = (scene.eye_height_m / np.tan(-pitch[start:stop])).astype(np.float32)
            cls[start:stop] = _ground_band(scene, d, sh, ch)
        start = stop


def _wall_hits(
    wall: Wall, ex: float, ey: float, sh: np.ndarray, ch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each column's ray to the wall and the position along it (metres)."""
    wx, wy = wall.x1 - wall.x0, wall.y1 - wall.y0
    denom = sh * wy - ch * wx
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((wall.x0 - ex) * wy - (wall.y0 - ey) * wx) / denom
        s = ((wall.x0 - ex) * ch - (wall.y0 - ey) * sh) / denom
    length = math.hypot(wx, wy)
    ok = (np.abs(denom) > 1e-12) & (t > 0.05) & (s >= 0) & (s <= 1)
    return np.where(ok, t, np.nan), s * length


def _walls(cls: np.ndarray, scene: PanoramaScene, heading: np.ndarray, pitch: np.ndarray) -> None:
    h = cls.shape[0]
    ex, ey, eh = scene.x, scene.y, scene.eye_height_m
    sh, ch = np.sin(heading), np.cos(heading)
    tan_p = np.tan(pitch).astype(np.float32)
    visible: list[tuple[float, int, Wall]] = []
    for i, w in enumerate(scene.walls):
        # Back faces are hidden: walls run counter-clockwise, outward normal on the right.
        nx, ny = w.y1 - w.y0, -(w.x1 - w.x0)
        if (ex - w.x0) * nx + (ey - w.y0) * ny <= 0:
            continue
        # Painter's order: nearest point of the wall's segment, farthest first.
        vx, vy = w.x1 - w.x0, w.y1 - w.y0
        f = min(1.0, max(0.0, ((ex - w.x0) * vx + (ey - w.y0) * vy) / (vx * vx + vy * vy)))
        visible.append((math.hypot(w.x0 + f * vx - ex, w.y0 + f * vy - ey), i, w))
    visible.sort(key=lambda item: -item[0])
    rows = np.arange(h)
    for _dist, i, w in visible:
        t, s = _wall_hits(w, ex, ey, sh, ch)
        cols = np.flatnonzero(np.isfinite(t))
        for c0, c1 in _runs(cols):
            tt = t[c0:c1]
            v_top = (0.5 - np.arctan2(w.height_m - eh, tt) / math.pi) * h - 0.5
            v_bot = (0.5 - np.arctan2(-eh, tt) / math.pi) * h - 0.5
            r0 = max(0, int(np.floor(v_top.min())))
            r1 = min(h, int(np.ceil(v_bot.max())) + 1)
            rr = rows[r0:r1, None]
            inside = (rr >= v_top[None, :]) & (rr <= v_bot[None, :])
            q = (eh + tt[None, :].astype(np.float32) * tan_p[r0:r1, None]) * np.float32(1 / 3.3)
            fz = q - np.floor(q)
            along = s[c0:c1]
            fs = np.mod(along, 3.0)
            bay = (fs > 0.8) & (fs < 2.2)
            fs6 = np.mod(along, 6.0)
            shop_bay = (fs6 > 0.6) & (fs6 < 5.4)
            block = cls[r0:r1, c0:c1]
            block[inside] = _C_WALLS + i
            window = inside & (q > 1) & (fz > 0.303) & (fz < 0.727) & bay[None, :]
            block[window] = _C_WINDOW
            shop = inside & (q > 0.09) & (q < 0.85) & shop_bay[None, :]
            block[shop] = _C_SHOP


class _Canvas:
    """Draws objects in their pixel windows and keeps each object's drawn-pixel box."""

    def __init__(self, img: np.ndarray, scene: PanoramaScene) -> None:
        self.img = img
        self.scene = scene
        self.h, self.w = img.shape[:2]
        self.box: tuple[int, int, int, int] | None = None  # u0, v0, u1, v1 (unwrapped)

    def project(self, x: float, y: float, z: float) -> tuple[float, float, float, float]:
        """Heading, pitch (degrees), horizontal and 3-D distance of a world point."""
        s = self.scene
        dx, dy, dz = x - s.x, y - s.y, z - s.eye_height_m
        horiz = math.hypot(dx, dy)
        return (
            math.degrees(math.atan2(dx, dy)) % 360,
            math.degrees(math.atan2(dz, horiz)),
            horiz,
            math.sqrt(horiz * horiz + dz * dz),
        )

    def uv(self, heading: float, pitch: float) -> tuple[float, float]:
        u, v = ray_to_pixel(
            heading, pitch, image_heading_deg=self.scene.heading_deg, width=self.w, height=self.h
        )
        return float(u), float(v)

    def window(
        self, heading: float, pitch: float, dist: float, half_w_m: float, half_h_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Pixel rows, columns (wrapped) and local metric offsets X (right), Y (up)."""
        u, v = self.uv(heading, pitch)
        cosp = max(math.cos(math.radians(pitch)), 0.05)
        px_deg = self.w / 360.0
        hw = math.degrees(math.atan2(half_w_m, dist)) / cosp * px_deg + 1
        hh = math.degrees(math.atan2(half_h_m, dist)) * px_deg + 1
        u0, u1 = math.floor(u - hw), math.ceil(u + hw) + 1
        v0, v1 = max(0, math.floor(v - hh)), min(self.h, math.ceil(v + hh) + 1)
        if v1 <= v0:
            return None
        uu = np.arange(u0, u1)
        vv = np.arange(v0, v1)
        yaw_off = np.radians((uu - u) * 360.0 / self.w)
        pit_off = np.radians((v - vv) * 180.0 / self.h)
        X = (dist * np.tan(yaw_off) * cosp)[None, :]
        Y = (dist * np.tan(pit_off))[:, None]
        return vv, uu, X + 0 * Y, Y + 0 * X

    def paint(
        self,
        vv: np.ndarray,
        uu: np.ndarray,
        mask: np.ndarray,
        colour: Colour,
        *,
        track: bool = True,
    ) -> None:
        if not mask.any():
            return
        cols = np.mod(uu, self.w)
        sub = self.img[vv[0] : vv[-1] + 1][:, cols]
        sub[mask] = colour
        self.img[vv[0] : vv[-1] + 1, cols] = sub
        if track:
            rr, cc = np.nonzero(mask)
            box = (int(uu[cc.min()]), int(vv[rr.min()]), int(uu[cc.max()]), int(vv[rr.max()]))
            if self.box is None:
                self.box = box
            else:
                a = self.box
                self.box = (
                    min(a[0], box[0]),
                    min(a[1], box[1]),
                    max(a[2], box[2]),
                    max(a[3], box[3]),
                )

    def dot(self, heading: float, pitch: float, colour: Colour) -> None:
        """Paint the single pixel that looks along a ray (so tiny objects are never lost)."""
        u, v = self.uv(heading, pitch)
        col, row = math.floor(u + 0.5), math.floor(v + 0.5)
        if 0 <= row < self.h:
            self.paint(np.array([row]), np.array([col]), np.ones((1, 1), bool), colour)

    def segment(
        self,
        a: tuple[float, float, float],
        b: tuple[float, float, float],
        thick_m: float,
        colour: Colour,
    ) -> None:
        """A thin bar (arm, bracket) between two world points."""
        ha, pa, _h, da = self.project(*a)
        hb, pb, _h, db = self.project(*b)
        span = math.hypot(((hb - ha + 180) % 360 - 180) * math.cos(math.radians(pa)), pb - pa)
        px = span * self.w / 360.0
        thick_px = max(1.0, math.degrees(thick_m / max(min(da, db), 0.5)) * self.w / 360.0)
        n = 2 + int(px / thick_px * 1.5)
        for i in range(n + 1):
            f = i / n
            p = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2]))
            hd, pt, _hz, dist = self.project(*p)
            win = self.window(hd, pt, dist, thick_m / 2, thick_m / 2)
            if win is not None:
                vv, uu, X, Y = win
                self.paint(
                    vv,
                    uu,
                    (np.abs(X) <= thick_m / 2) & (np.abs(Y) <= thick_m / 2),
                    colour,
                    track=False,
                )

    def pole(self, o: SceneObject) -> None:
        hd, _p, horiz, _d = self.project(o.x, o.y, 0.0)
        if horiz < 0.3:
            return
        eh = self.scene.eye_height_m
        top = math.degrees(math.atan2(o.z - eh, horiz))
        bot = math.degrees(math.atan2(-eh, horiz))
        half = math.degrees(math.asin(min(1.0, o.width_m / 2 / horiz)))
        u_l, v_t = self.uv(hd - half, top)
        u_r, v_b = self.uv(hd + half, bot)
        if u_r < u_l:  # straddles the seam
            u_r += self.w
        c0 = math.floor(u_l + 0.5)
        c1 = max(c0 + 1, math.floor(u_r + 0.5) + 1)
        r0, r1 = max(0, math.floor(v_t + 0.5)), min(self.h, math.floor(v_b + 0.5) + 1)
        uu, vv = np.arange(c0, c1), np.arange(r0, r1)
        base = _POLE_COLOURS.get(o.mount, _POLE_COLOURS["lamp"])
        light = tuple(min(255, round(c * 1.25)) for c in base)
        mask = np.ones((len(vv), len(uu)), dtype=bool)
        self.paint(vv, uu, mask, base)
        if len(uu) > 2:
            left = np.zeros_like(mask)
            left[:, : len(uu) // 3] = True
            self.paint(vv, uu, left, (light[0], light[1], light[2]))

    def body(self, o: SceneObject) -> None:
        hd, pt, _hz, dist = self.project(o.x, o.y, o.z)
        s = self.scene
        # Angle between the object's facing and the line of sight (0: it faces us).
        rel = math.radians((o.facing_deg - (hd + 180.0)) % 360.0)
        half_w, half_h = o.width_m / 2, o.height_m / 2
        if o.kind == "camera" and o.camera_type == "bullet":
            ax, ay = _bullet_axis(o, rel)
            half_w = abs(ax) + o.height_m * 0.6
            half_h = abs(ay) + o.height_m * 0.8
        win = self.window(hd, pt, dist, half_w, half_h)
        if win is None:
            return
        vv, uu, X, Y = win
        box = (np.abs(X) <= half_w) & (np.abs(Y) <= half_h)
        # The centre pixel first, so a tiny object is never lost; the shape paints over it.
        self.dot(hd, pt, _first_colour(o))
        if o.kind == "camera":
            self._camera(o, vv, uu, X, Y, half_w, half_h, rel)
        elif o.kind == "lamp" and o.mount == "facade":
            self.paint(vv, uu, box, _WALL_LAMP)
            self.paint(
                vv,
                uu,
                box & (np.abs(X) < half_w * 0.6) & (half_h * 0.5 > Y) & (-half_h * 0.6 < Y),
                _WALL_LAMP_GLASS,
            )
        elif o.kind == "lamp":
            ell = (X / half_w) ** 2 + (Y / half_h) ** 2 <= 1
            self.paint(vv, uu, ell, _LAMP_BODY)
            self.paint(vv, uu, ell & (-half_h * 0.2 > Y) & (np.abs(X) < half_w * 0.7), _LAMP_GLASS)
        elif o.kind == "signal":
            self.paint(vv, uu, box, _SIGNAL_BODY)
            if abs(math.cos(rel)) > 0.35:
                n = 3 if o.height_m > 0.7 else 2
                r = min(half_w * 0.7, half_h / n * 0.8)
                for i in range(n):
                    cy = half_h - (2 * i + 1) * half_h / n
                    lit = (
                        _SIGNAL_LIGHTS[i]
                        if i != (len(s.panorama_id) % n)
                        else (tuple(min(255, c + 90) for c in _SIGNAL_LIGHTS[i]))
                    )
                    self.paint(vv, uu, X**2 + (Y - cy) ** 2 <= r * r, (lit[0], lit[1], lit[2]))
        elif o.kind == "cell":
            self.paint(vv, uu, box, _CELL_EDGE)
            self.paint(
                vv, uu, (np.abs(X) <= half_w * 0.85) & (np.abs(Y) <= half_h * 0.92), _CELL_BODY
            )

    def _camera(
        self,
        o: SceneObject,
        vv: np.ndarray,
        uu: np.ndarray,
        X: np.ndarray,
        Y: np.ndarray,
        half_w: float,
        half_h: float,
        rel: float,
    ) -> None:
        if o.camera_type == "dome":
            # A housing (1.2-2.1 × the glass wide, 1.15 × tall) over a dark hemisphere of glass.
            cap = (np.abs(X) <= half_w) & (half_h * 0.1 < Y) & (half_h >= Y)
            r = half_h / DOME_HEIGHT_RATIO
            dome = ((X / r) ** 2 + (Y / half_h) ** 2 <= 1) & (half_h * 0.1 >= Y)
            self.paint(vv, uu, cap, _HOUSING)
            self.paint(vv, uu, dome, _GLASS)
        elif o.camera_type == "bullet":
            # A capsule along the camera's axis, tilted down, under a sun shield.
            ax, ay = _bullet_axis(o, rel)
            r = o.height_m / 2
            self.paint(vv, uu, _capsule(X, Y - 0.45 * r, ax, ay) <= (1.1 * r) ** 2, _SHIELD)
            self.paint(vv, uu, _capsule(X, Y, ax, ay) <= r * r, _BULLET)
            if math.cos(rel) > -0.3:
                self.paint(vv, uu, (X - ax) ** 2 + (Y - ay) ** 2 <= (0.6 * r) ** 2, _LENS)
        else:
            box = (np.abs(X) <= half_w) & (np.abs(Y) <= half_h)
            self.paint(vv, uu, box, _BOXCAM)
            r = half_h * 0.45
            lx = half_w * 0.55 * (1 if math.sin(rel) < 0 else -1)
            self.paint(vv, uu, (X - lx) ** 2 + Y**2 <= r * r, _LENS)


_BULLET_TILT = math.radians(40.0)


def _bullet_axis(o: SceneObject, rel: float) -> tuple[float, float]:
    """Screen offset (metres right, up) of a bullet's front end from its centre.

    ``rel`` is the angle between the camera's facing and the direction back to the viewer.
    """
    half = o.width_m / 2
    return -half * math.cos(_BULLET_TILT) * math.sin(rel), -half * math.sin(_BULLET_TILT)


def _capsule(X: np.ndarray, Y: np.ndarray, ax: float, ay: float) -> np.ndarray:
    """Squared distance from each (X, Y) to the segment (-ax, -ay)–(ax, ay)."""
    n2 = max(4 * (ax * ax + ay * ay), 1e-12)
    t = np.clip(((X + ax) * 2 * ax + (Y + ay) * 2 * ay) / n2, 0.0, 1.0)
    out: np.ndarray = (X + ax - 2 * ax * t) ** 2 + (Y + ay - 2 * ay * t) ** 2
    return out


def _first_colour(o: SceneObject) -> Colour:
    if o.kind == "camera":
        return {"dome": _GLASS, "bullet": _BULLET}.get(o.camera_type or "", _BOXCAM)
    return {
        "lamp": _WALL_LAMP if o.mount == "facade" else _LAMP_BODY,
        "signal": _SIGNAL_BODY,
        "cell": _CELL_BODY,
    }.get(o.kind, _BRACKET)


def render_panorama(
    scene: PanoramaScene, *, width: int = 4096, height: int = 2048
) -> RenderedPanorama:
    """Render ``scene`` as a ``height × width`` equirectangular image with its truth table.

    Parameters
    ----------
    scene
        A panorama's scene (:func:`~camcensus.simulate.scene.panorama_scene`); the image centre
        column looks at ``scene.heading_deg``.
    width, height
        Image size in pixels (2:1 for an undistorted equirectangular image).

    Returns
    -------
    RenderedPanorama
        The image and one truth row per object with its pixel position and box.
    """
    if width < 8 or height < 4:
        raise ValueError(f"image size {width}×{height} is too small; expected at least 8×4")
    pitch, sky = _rows(height)
    heading = _yaw(width) + math.radians(scene.heading_deg)
    cls = np.empty((height, width), dtype=np.uint8)
    horizon = int(np.searchsorted(-pitch, 0.0))
    cls[:horizon] = sky[:horizon, None]
    _ground(cls, scene, heading, pitch)
    _walls(cls, scene, heading, pitch)
    img = _lookup(cls, _palette(scene))
    view = objects_in_view(scene)
    canvas = _Canvas(img, scene)
    by_id = {o.object_id: o for o in scene.objects}
    boxes: dict[str, tuple[int, int, int, int]] = {}
    order = view.loc[~view["occluded"]].sort_values("distance_m", ascending=False, kind="stable")
    drawn = [by_id[oid] for oid in order["object_id"]]
    # Poles, then arms and brackets, then bodies, cameras last: every counted camera is seen.
    for o in drawn:
        if o.kind == "pole":
            canvas.box = None
            canvas.pole(o)
            if canvas.box is not None:
                boxes[o.object_id] = canvas.box
    for o in drawn:
        if o.kind != "pole" and math.isfinite(o.mount_x):
            thick = 0.09 if o.mount == "arm" else 0.05
            lift = 0.4 if o.kind == "signal" else 0.0
            canvas.segment(
                (o.mount_x, o.mount_y, o.mount_z + lift), (o.x, o.y, o.z), thick, _BRACKET
            )
    for o in sorted(drawn, key=lambda o: o.kind == "camera"):
        if o.kind != "pole":
            canvas.box = None
            canvas.body(o)
            if canvas.box is not None:
                boxes[o.object_id] = canvas.box
    u, v = ray_to_pixel(
        view["heading_deg"].to_numpy(),
        view["pitch_deg"].to_numpy(),
        image_heading_deg=scene.heading_deg,
        width=width,
        height=height,
    )
    truth = view.copy()
    truth["u"] = u
    truth["v"] = v
    truth["drawn"] = truth["object_id"].isin(list(boxes))
    b = np.array([boxes.get(i, (-1, -1, -2, -2)) for i in truth["object_id"]], dtype=int)
    truth["box_u0"] = np.where(truth["drawn"], np.mod(b[:, 0], width), -1)
    truth["box_v0"] = b[:, 1]
    truth["box_w"] = b[:, 2] - b[:, 0] + 1
    truth["box_h"] = b[:, 3] - b[:, 1] + 1
    truth["box_wraps"] = truth["drawn"] & (truth["box_u0"] + truth["box_w"] > width)
    return RenderedPanorama(
        image=img, truth=truth, heading_deg=scene.heading_deg, width=width, height=height
    )


def to_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode an ``H × W × 3`` uint8 image as JPEG bytes (deterministic)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(
        buf, format="JPEG", quality=quality
    )
    return buf.getvalue()


def crop_box_sizes(
    truth: pd.DataFrame, *, width: int, height: int, crop_px: int = 640, crop_fov_deg: float = 90
) -> pd.DataFrame:
    """Convert rendered pixel boxes to a ``crop_px`` square perspective crop's pixels.

    The crop is the Street View Static API's (Stanford's: 640 × 640, 90° field of view,
    pitch 0) turned to the object's heading: box width ``f (tan a1 - tan a0)`` over the
    box's yaw extent, height ``f (tan p1 - tan p0)`` over its pitch extent, with
    ``f = crop_px / 2 / tan(crop_fov_deg / 2)``.
    """
    f = crop_px / 2 / math.tan(math.radians(crop_fov_deg) / 2)
    half_yaw = np.radians(truth["box_w"].to_numpy(float) * 360.0 / width / 2)
    v0 = truth["box_v0"].to_numpy(float)
    p_top = np.radians(90.0 - v0 / height * 180.0)
    p_bot = np.radians(90.0 - (v0 + truth["box_h"].to_numpy(float)) / height * 180.0)
    return pd.DataFrame(
        {
            "object_id": truth["object_id"].to_numpy(),
            "camera_type": truth["camera_type"].to_numpy(),
            "width_px": 2 * f * np.tan(half_yaw),
            "height_px": f * (np.tan(p_top) - np.tan(p_bot)),
        }
    )


def stanford_box_sizes(path: str | Path) -> pd.DataFrame:
    """Read the camera boxes of Stanford's annotations (``meta.csv``) in 640 × 640 crop pixels.

    Returns one row per annotated camera: ``image_id``, ``split``, ``panoid``, ``heading``,
    ``category_id`` (0 directed, 1 dome), ``camera_type`` (``bullet`` | ``dome``), ``x0``,
    ``y0``, ``x1``, ``y1``, ``width_px``, ``height_px``.

    Raises
    ------
    InputError
        When a row's ``annotations`` cell is not a list of boxes.
    """
    path = Path(path)
    meta = pd.read_csv(path, dtype={"annotations": str, "panoid": str})
    need = {"annotations", "split", "image_id", "panoid", "heading"}
    missing = sorted(need - set(meta.columns))
    if missing:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    c,
                    "no such column",
                    "Stanford's meta.csv columns",
                    "pass data/meta.csv of stanford-policylab/surveilling-surveillance",
                )
                for c in missing
            ]
        )
    rows: list[tuple[object, ...]] = []
    problems: list[Problem] = []
    for i, r in enumerate(meta.itertuples(index=False), start=1):
        try:
            anns = ast.literal_eval(str(r.annotations))
            for a in anns:
                x0, y0, x1, y1 = (float(c) for c in a["bbox"])
                cat = int(a["category_id"])
                rows.append(
                    (
                        r.image_id,
                        r.split,
                        r.panoid,
                        r.heading,
                        cat,
                        "dome" if cat == 1 else "bullet",
                        x0,
                        y0,
                        x1,
                        y1,
                    )
                )
        except (ValueError, SyntaxError, KeyError, TypeError):
            problems.append(
                Problem(
                    str(path),
                    i,
                    "annotations",
                    repr(str(r.annotations)[:60]),
                    "a list of {'category_id', 'bbox': [x0, y0, x1, y1]}",
                    "restore the row from the original meta.csv",
                )
            )
    if problems:
        raise InputError(problems)
    cols = ["image_id", "split", "panoid", "heading", "category_id", "camera_type"]
    out = pd.DataFrame(rows, columns=[*cols, "x0", "y0", "x1", "y1"])
    out["width_px"] = out["x1"] - out["x0"]
    out["height_px"] = out["y1"] - out["y0"]
    return out
