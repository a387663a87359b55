"""How a panorama's scene is laid out: roads, buildings, poles, look-alikes and cameras.

The private half of :mod:`camcensus.simulate.scene` (which documents the layout).
"""

from __future__ import annotations

import math

import numpy as np

from camcensus.simulate.scene import (
    EYE_HEIGHT_M,
    VIEW_RANGE_M,
    PanoramaScene,
    SceneObject,
    Wall,
    _occluded,
    _walls_array,
)

_BLOCK_DEPTH_M = 150.0
_FACADE_OFFSET_M = 0.25
_WALL_COLOURS = (
    (150, 72, 52),
    (172, 96, 70),
    (196, 170, 130),
    (120, 112, 104),
    (160, 150, 138),
    (110, 80, 60),
    (186, 178, 160),
    (132, 100, 88),
)


def _buildings(
    rng: np.random.Generator, cx: float, cy: float, half_ew: float, half_ns: float
) -> tuple[list[Wall], list[tuple[float, float, float, float]]]:
    """Two buildings per quadrant (an alley between them); their four walls each."""
    walls: list[Wall] = []
    alleys: list[tuple[float, float, float, float]] = []
    b = 0
    for qx in (1.0, -1.0):
        for qy in (1.0, -1.0):
            ax = half_ns + rng.uniform(2.5, 4.5)
            ay = half_ew + rng.uniform(2.5, 4.5)
            w1 = rng.uniform(12, 30)
            gap = rng.uniform(3, 6)
            depth = _BLOCK_DEPTH_M
            if rng.random() < 0.5:  # the alley runs north-south
                boxes = [(ax, ax + w1, ay, depth), (ax + w1 + gap, depth, ay, depth)]
                alleys.append((qx * (ax + w1), qx * (ax + w1 + gap), qy * ay, qy * depth))
            else:
                boxes = [(ax, depth, ay, ay + w1), (ax, depth, ay + w1 + gap, depth)]
                alleys.append((qx * ax, qx * depth, qy * (ay + w1), qy * (ay + w1 + gap)))
            for x0, x1, y0, y1 in boxes:
                h = float(rng.uniform(9, 35))
                colour = _WALL_COLOURS[int(rng.integers(len(_WALL_COLOURS)))]
                X0, X1 = sorted((cx + qx * x0, cx + qx * x1))
                Y0, Y1 = sorted((cy + qy * y0, cy + qy * y1))
                # The walls facing the crossing's roads are the ones nearest the centre.
                near_x = X0 if qx > 0 else X1
                near_y = Y0 if qy > 0 else Y1
                for sx0, sy0, sx1, sy1 in (
                    (X0, Y0, X1, Y0),
                    (X1, Y0, X1, Y1),
                    (X1, Y1, X0, Y1),
                    (X0, Y1, X0, Y0),
                ):
                    facing = (sx0 == sx1 == near_x and abs(near_x - cx) < half_ns + 5) or (
                        sy0 == sy1 == near_y and abs(near_y - cy) < half_ew + 5
                    )
                    walls.append(Wall(sx0, sy0, sx1, sy1, h, colour, b, bool(facing)))
                b += 1
    return walls, alleys


def _outward(wall: Wall, cx: float, cy: float) -> tuple[float, float]:
    """Unit normal of a street-facing wall, pointing to the crossing's side."""
    if wall.x0 == wall.x1:
        return (1.0 if cx > wall.x0 else -1.0), 0.0
    return 0.0, (1.0 if cy > wall.y0 else -1.0)


def _perp(wall: Wall, x: float, y: float) -> float:
    """Distance from (x, y) to the line of an axis-aligned wall."""
    return abs(x - wall.x0) if wall.x0 == wall.x1 else abs(y - wall.y0)


def _bearing(dx: float, dy: float) -> float:
    return math.degrees(math.atan2(dx, dy)) % 360


class _Builder:
    def __init__(self, rng: np.random.Generator, eye: tuple[float, float, float]) -> None:
        self.rng = rng
        self.eye = eye
        self.objects: list[SceneObject] = []
        self.counts: dict[str, int] = {}

    def new_id(self, kind: str) -> str:
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return f"{kind}-{n:02d}"

    def add(self, obj: SceneObject) -> SceneObject:
        self.objects.append(obj)
        return obj

    def pole(
        self, x: float, y: float, height: float, diameter: float, mount: str, arm_deg: float
    ) -> SceneObject:
        return self.add(
            SceneObject(
                self.new_id("pole"),
                "pole",
                None,
                None,
                x,
                y,
                height,
                diameter,
                height,
                arm_deg,
                mount,
            )
        )

    def lamp_on(self, pole: SceneObject) -> None:
        arm = float(self.rng.uniform(1.4, 2.4))
        a = math.radians(pole.facing_deg)
        z = pole.z - 0.15
        self.add(
            SceneObject(
                self.new_id("lamp"),
                "lamp",
                None,
                "street",
                pole.x + arm * math.sin(a),
                pole.y + arm * math.cos(a),
                z,
                float(self.rng.uniform(0.6, 0.8)),
                0.18,
                pole.facing_deg,
                "arm",
                pole.x,
                pole.y,
                z,
            )
        )

    def signals_on(self, pole: SceneObject, reach: float) -> None:
        a = math.radians(pole.facing_deg)
        z = 5.6
        for frac in (0.55, 0.95):
            d = reach * frac
            self.add(
                SceneObject(
                    self.new_id("signal"),
                    "signal",
                    None,
                    "street",
                    pole.x + d * math.sin(a),
                    pole.y + d * math.cos(a),
                    z - 0.4,
                    0.34,
                    1.0,
                    (pole.facing_deg + 90) % 360,
                    "arm",
                    pole.x,
                    pole.y,
                    z,
                )
            )
        # A pedestrian signal on the pole itself.
        self.add(
            SceneObject(
                self.new_id("signal"),
                "signal",
                None,
                "street",
                pole.x + 0.25 * math.sin(a + 1.6),
                pole.y + 0.25 * math.cos(a + 1.6),
                3.0,
                0.32,
                0.5,
                (pole.facing_deg + 90) % 360,
                "pole",
                pole.x,
                pole.y,
                3.0,
            )
        )

    def on_pole(
        self, pole: SceneObject, z: float, facing: float, offset: float
    ) -> tuple[float, float]:
        a = math.radians(facing)
        return pole.x + offset * math.sin(a), pole.y + offset * math.cos(a)

    def free_height(self, pole: SceneObject, lo: float, hi: float, size: float) -> float | None:
        taken = [
            o.z
            for o in self.objects
            if o.mount == "pole" and o.mount_x == pole.x and o.mount_y == pole.y
        ]
        for _ in range(30):
            z = float(self.rng.uniform(lo, hi))
            if all(abs(z - t) > size for t in taken):
                return z
        return None


#: A dome's housing height over its glass diameter (the renderer draws the glass from it).
DOME_HEIGHT_RATIO = 1.15
#: Range of a dome's housing width over its glass diameter (pendant to flat ceiling housings).
DOME_WIDTH_RATIO = (1.2, 2.1)


def _camera_size(rng: np.random.Generator, camera_type: str) -> tuple[float, float]:
    """Width and height (m) of a camera's visible body.

    Calibrated so that the drawn cameras, cut into Street View's 640 × 640, 90° crops, have the
    box sizes and aspects of Stanford's annotations (``docs/detect.md``, "Box sizes"): a dome's
    glass is 0.22–0.44 m across under a housing 1.2–2.1 times as wide (real domes are seen from
    below as wide, flat housings) and 1.15 times as tall; a bullet is 0.28–0.46 m long and
    0.13–0.19 m thick with its sun shield; a box camera about 0.35 × 0.2 m.
    """
    if camera_type == "dome":
        d = float(rng.uniform(0.22, 0.44))
        return d * float(rng.uniform(*DOME_WIDTH_RATIO)), d * DOME_HEIGHT_RATIO
    if camera_type == "bullet":
        return float(rng.uniform(0.28, 0.46)), float(rng.uniform(0.13, 0.19))
    return float(rng.uniform(0.3, 0.42)), float(rng.uniform(0.16, 0.24))


def build(
    rng: np.random.Generator,
    *,
    panorama_id: str,
    crs: str,
    centre: tuple[float, float],
    position: tuple[float, float],
    heading_deg: float,
    street_types: list[str],
    n_building: int,
    n_unknown: int,
    signal: bool,
) -> PanoramaScene:
    """Lay out one panorama's scene around the crossing nearest ``position``.

    ``street_types`` lists the types of the pole cameras to place (one entry per camera);
    ``n_building`` and ``n_unknown`` count the façade and other cameras. Every one of them is
    placed where the panorama sees it; uncounted hidden and far cameras are added besides.

    Raises
    ------
    RuntimeError
        When a counted camera finds no visible place (never seen in the city's panoramas).
    """
    # The crossing lies within 3 m of the panorama on each axis: panoramas are taken on roads.
    px, py = position
    cx = px - float(np.clip(px - centre[0], -3, 3))
    cy = py - float(np.clip(py - centre[1], -3, 3))
    half_ew = float(rng.uniform(5, 8))
    half_ns = float(rng.uniform(5, 8))
    walls, alleys = _buildings(rng, cx, cy, half_ew, half_ns)
    wall_arr = _walls_array(tuple(walls))
    eye = (px, py, EYE_HEIGHT_M)
    bld = _Builder(rng, eye)

    # Corner poles at the kerbs; their arms reach over the road.
    corner_poles: list[SceneObject] = []
    signal_corners = set(rng.choice(4, size=2, replace=False).tolist()) if signal else set()
    for i, (qx, qy) in enumerate(((1, 1), (-1, 1), (-1, -1), (1, -1))):
        x = cx + qx * (half_ns + 0.5)
        y = cy + qy * (half_ew + 0.5)
        along_x = rng.random() < 0.5
        x += qx * float(rng.uniform(0.5, 4)) if along_x else 0.0
        y += 0.0 if along_x else qy * float(rng.uniform(0.5, 4))
        if i in signal_corners:
            arm = _bearing(0, -qy) if along_x else _bearing(-qx, 0)
            p = bld.pole(x, y, float(rng.uniform(7, 8)), 0.26, "signal", arm)
            bld.signals_on(p, 2 * (half_ew if along_x else half_ns) * 0.7)
            bld.lamp_on(p)
        elif rng.random() < 0.8:
            arm = _bearing(0, -qy) if along_x else _bearing(-qx, 0)
            p = bld.pole(x, y, float(rng.uniform(8, 10)), 0.22, "lamp", arm)
            bld.lamp_on(p)
        else:
            p = bld.pole(x, y, float(rng.uniform(9, 11)), 0.3, "utility", _bearing(-qx, -qy))
        corner_poles.append(p)
    # Mid-block lamp poles along each arm of the crossing (near ones and far ones).
    mid_poles: list[SceneObject] = []
    far_poles: list[SceneObject] = []
    for ux, uy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        side = 1 if rng.random() < 0.5 else -1
        for lo, hi, bucket in ((20, 30, mid_poles), (52, 70, far_poles)):
            d = float(rng.uniform(lo, hi))
            if ux:
                x, y = cx + ux * d, cy + side * (half_ew + 0.5)
                arm = _bearing(0, -side)
            else:
                x, y = cx + side * (half_ns + 0.5), cy + uy * d
                arm = _bearing(-side, 0)
            p = bld.pole(x, y, float(rng.uniform(8, 10)), 0.22, "lamp", arm)
            bld.lamp_on(p)
            bucket.append(p)
    # Cell equipment on some poles.
    for p in corner_poles + mid_poles:
        if rng.random() < 0.3:
            z = bld.free_height(p, 3.2, min(5.5, p.z - 1.2), 0.8)
            if z is not None:
                face = float(rng.uniform(0, 360))
                x, y = bld.on_pole(p, z, face, 0.3)
                bld.add(
                    SceneObject(
                        bld.new_id("cell"),
                        "cell",
                        None,
                        "street",
                        x,
                        y,
                        z,
                        0.36,
                        0.62,
                        face,
                        "pole",
                        p.x,
                        p.y,
                        z,
                    )
                )
    facing_walls = [w for w in walls if w.street_facing]
    # Nearer façades are likelier to carry what a panorama shows (weight 1 / distance²).
    near = np.array([1.0 / max(_perp(w, px, py), 1.0) ** 2 for w in facing_walls])
    near /= near.sum()

    def pick_wall() -> Wall:
        return facing_walls[int(rng.choice(len(facing_walls), p=near))]

    def facade_point(wall: Wall, lo: float, hi: float, reach: float) -> tuple[float, float, float]:
        """A point just off ``wall``, within ``reach`` of the panorama where the wall allows."""
        nx, ny = _outward(wall, cx, cy)
        length = math.hypot(wall.x1 - wall.x0, wall.y1 - wall.y0)
        ux, uy = (wall.x1 - wall.x0) / length, (wall.y1 - wall.y0) / length
        foot = (px - wall.x0) * ux + (py - wall.y0) * uy
        perp = abs((px - wall.x0) * nx + (py - wall.y0) * ny)
        half = math.sqrt(max(reach * reach - perp * perp, 1.0))
        a = float(np.clip(foot - half, 0.3, length - 0.3))
        b = float(np.clip(foot + half, 0.3, length - 0.3))
        along = float(rng.uniform(a, b)) if b > a else a
        x = wall.x0 + along * ux + nx * _FACADE_OFFSET_M
        y = wall.y0 + along * uy + ny * _FACADE_OFFSET_M
        return x, y, float(rng.uniform(lo, hi))

    # Wall lamps: look-alikes on façades.
    for _ in range(int(rng.poisson(1.5))):
        wall = facing_walls[int(rng.integers(len(facing_walls)))]
        x, y, z = facade_point(wall, 3.0, 4.5, 30)
        nx, ny = _outward(wall, cx, cy)
        bld.add(
            SceneObject(
                bld.new_id("lamp"),
                "lamp",
                None,
                "building",
                x,
                y,
                z,
                0.3,
                0.34,
                _bearing(nx, ny),
                "facade",
                x - nx * _FACADE_OFFSET_M,
                y - ny * _FACADE_OFFSET_M,
                z,
            )
        )

    def sees(x: float, y: float, z: float) -> bool:
        pt = np.array([[x, y, z]])
        return bool(
            math.dist((x, y, z), eye) <= VIEW_RANGE_M - 1 and not _occluded(wall_arr, eye, pt)[0]
        )

    def camera(
        camera_type: str,
        attachment: str,
        xyz: tuple[float, float, float],
        facing: float,
        mount: str,
        at: tuple[float, float, float],
        counted: bool,
    ) -> None:
        w, h = _camera_size(rng, camera_type)
        bld.add(
            SceneObject(
                bld.new_id("camera"),
                "camera",
                camera_type,
                attachment,
                *xyz,
                w,
                h,
                facing % 360,
                mount,
                *at,
                counted=counted,
            )
        )

    # Street cameras of the truth: mostly on corner poles, some on near mid-block poles.
    candidates = corner_poles + [p for p in mid_poles if math.hypot(p.x - px, p.y - py) < 30]
    weights = np.array([4.0 if p in corner_poles else 1.0 for p in candidates])
    for ctype in street_types:
        for _ in range(200):
            p = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
            z = bld.free_height(p, 3.0, min(8.0, p.z - 0.7), 0.55)
            if z is None:
                continue
            facing = _bearing(cx - p.x, cy - p.y) + float(rng.normal(0, 50))
            x, y = bld.on_pole(p, z, facing, 0.22)
            if sees(x, y, z):
                camera(ctype, "street", (x, y, z), facing, "pole", (p.x, p.y, z), True)
                break
        else:
            raise RuntimeError(f"panorama {panorama_id}: no visible place for a pole camera")
    # Building cameras of the truth, on street-facing façades.
    for _ in range(n_building):
        for _ in range(200):
            wall = pick_wall()
            x, y, z = facade_point(wall, 2.5, 6.0, float(rng.uniform(7, 14)))
            if sees(x, y, z):
                nx, ny = _outward(wall, cx, cy)
                ctype = "dome" if rng.random() < 0.55 else "bullet"
                facing = _bearing(nx, ny) + float(rng.uniform(-45, 45))
                at = (x - nx * _FACADE_OFFSET_M, y - ny * _FACADE_OFFSET_M, z)
                camera(ctype, "building", (x, y, z), facing, "facade", at, True)
                break
        else:
            raise RuntimeError(f"panorama {panorama_id}: no visible place for a building camera")
    # Cameras of unknown attachment: on posts (hoardings, kiosks) on the sidewalk.
    for _ in range(n_unknown):
        for _ in range(200):
            wall = pick_wall()
            x, y, _z = facade_point(wall, 0, 0, float(rng.uniform(6, 12)))
            nx, ny = _outward(wall, cx, cy)
            x, y = x + nx * 1.5, y + ny * 1.5
            z = float(rng.uniform(2.6, 3.6))
            if sees(x, y, z):
                post = bld.pole(x, y, z + 0.5, 0.14, "post", _bearing(nx, ny))
                ctype = "dome" if rng.random() < 0.5 else "bullet"
                camera(
                    ctype,
                    "unknown",
                    (x + nx * 0.15, y + ny * 0.15, z),
                    _bearing(nx, ny),
                    "post",
                    (post.x, post.y, z),
                    True,
                )
                break
        else:
            raise RuntimeError(f"panorama {panorama_id}: no visible place for a post camera")
    # Cameras this panorama cannot see: in alleys behind façades, on far poles.
    for _ in range(int(rng.poisson(0.6))):
        x0, x1, y0, y1 = alleys[int(rng.integers(len(alleys)))]
        ns = abs(x1 - x0) < abs(y1 - y0)
        if ns:
            x = x0 + np.sign(x1 - x0) * _FACADE_OFFSET_M
            y = y0 + (y1 - y0) * float(rng.uniform(0.06, 0.2))
        else:
            y = y0 + np.sign(y1 - y0) * _FACADE_OFFSET_M
            x = x0 + (x1 - x0) * float(rng.uniform(0.06, 0.2))
        x, y, z = float(x + cx), float(y + cy), float(rng.uniform(3, 5))
        if not sees(x, y, z) and math.dist((x, y, z), eye) < VIEW_RANGE_M:
            facing = _bearing(float(np.sign(x1 - x0)), 0) if ns else _bearing(0, np.sign(y1 - y0))
            camera("bullet", "building", (x, y, z), facing, "facade", (x, y, z), False)
    for p in far_poles:
        if rng.random() < 0.25:
            z = bld.free_height(p, 3.0, 7.0, 0.55)
            if z is not None:
                facing = _bearing(cx - p.x, cy - p.y)
                x, y = bld.on_pole(p, z, facing, 0.22)
                if math.dist((x, y, z), eye) > VIEW_RANGE_M + 1:
                    camera("dome", "street", (x, y, z), facing, "pole", (p.x, p.y, z), False)
    return PanoramaScene(
        panorama_id=panorama_id,
        crs=crs,
        x=px,
        y=py,
        heading_deg=heading_deg,
        centre_x=cx,
        centre_y=cy,
        road_half_ew=half_ew,
        road_half_ns=half_ns,
        walls=tuple(walls),
        objects=tuple(bld.objects),
        traffic_signal=signal,
    )
