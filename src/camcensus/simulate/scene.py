"""Worlds of objects around the synthetic city's panoramas, consistent with its truth.

Each panorama of a :class:`~camcensus.simulate.SyntheticCity` gets a street crossing (two roads,
sidewalks, eight buildings with façades along the block edges), street furniture (lamp poles,
signal poles with mast arms, utility poles, cell equipment boxes, wall lamps) and the cameras of
the city's truth for that panorama: pole cameras on poles at the corners (mounted 3–8 m up),
building cameras on street-facing façades (2.5–6 m), cameras of unknown attachment on other
structures (posts). A few more cameras that the panorama cannot see are added: in alleys behind
façades and on far poles beyond :data:`VIEW_RANGE_M`; they are not counted, as a volunteer at
this panorama could not see them.

Coordinates are metres in the city's CRS (x east, y north, z up from the ground); headings are
true-north bearings, pitches are up from the horizon, both seen from the panorama's camera at
:data:`EYE_HEIGHT_M` (docs/platform.md, "Rays").
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyproj import Transformer

    from camcensus.simulate import SyntheticCity

__all__ = [
    "EYE_HEIGHT_M",
    "VIEW_RANGE_M",
    "PanoramaScene",
    "Scene",
    "SceneObject",
    "Wall",
    "objects_in_view",
    "panorama_headings",
    "panorama_scene",
    "scene_for_city",
    "tutorial_scene",
]

EYE_HEIGHT_M = 2.5
"""Height of the panorama's camera above the ground (a car's roof rig)."""
VIEW_RANGE_M = 40.0
"""Cameras farther than this from the panorama are not counted as visible."""
VIEW_COLUMNS = [
    "object_id",
    "kind",
    "camera_type",
    "attachment",
    "x",
    "y",
    "z",
    "heading_deg",
    "pitch_deg",
    "distance_m",
    "visible",
    "occluded",
    "angular_width_deg",
    "angular_height_deg",
    "width_m",
    "height_m",
    "facing_deg",
    "mount",
]
"""Columns of :func:`objects_in_view`."""


@dataclass(frozen=True)
class Wall:
    """One façade: a vertical rectangle over the ground segment (x0, y0)–(x1, y1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    height_m: float
    colour: tuple[int, int, int]
    building: int
    street_facing: bool


@dataclass(frozen=True)
class SceneObject:
    """A camera, a look-alike or a pole.

    ``x, y, z`` is the object's centre (for a pole: its base and ``z`` its top height);
    ``mount_x, mount_y, mount_z`` is where it is fixed (a pole's axis, a wall; NaN for poles);
    ``facing_deg`` is the bearing a camera looks at (a lamp's arm direction).
    """

    object_id: str
    kind: str
    camera_type: str | None
    attachment: str | None
    x: float
    y: float
    z: float
    width_m: float
    height_m: float
    facing_deg: float
    mount: str
    mount_x: float = math.nan
    mount_y: float = math.nan
    mount_z: float = math.nan
    counted: bool = False


@dataclass(frozen=True)
class PanoramaScene:
    """The world around one panorama: its camera position and heading, roads, walls, objects.

    ``centre_x, centre_y`` is where the two roads cross; the east-west road covers
    ``|y - centre_y| < road_half_ew`` and the north-south road ``|x - centre_x| < road_half_ns``.
    """

    panorama_id: str
    crs: str
    x: float
    y: float
    heading_deg: float
    centre_x: float
    centre_y: float
    road_half_ew: float
    road_half_ns: float
    walls: tuple[Wall, ...]
    objects: tuple[SceneObject, ...]
    traffic_signal: bool = False
    eye_height_m: float = EYE_HEIGHT_M


@dataclass(frozen=True)
class Scene:
    """Every panorama's scene of a synthetic city, by panorama id."""

    crs: str
    seed: int
    panoramas: Mapping[str, PanoramaScene]


def panorama_headings(city: SyntheticCity, *, seed: int) -> pd.Series:
    """Return each panorama's image-centre heading (degrees), indexed by panorama id.

    The same draw as the platform demo stores in ``panoramas.heading_deg``, so an image
    rendered from :func:`panorama_scene` lines up with the stored heading.
    """
    p = city.panoramas
    rng = np.random.default_rng([seed, 7])
    heading = np.round(rng.uniform(0, 360, len(p)), 2) % 360
    return pd.Series(heading, index=p["PanoramaId"].astype(str).to_numpy(), name="heading_deg")


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


@lru_cache(maxsize=8)
def _to_crs(crs: str) -> Transformer:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def panorama_scene(
    city: SyntheticCity, panorama_id: str, *, seed: int, heading_deg: float | None = None
) -> PanoramaScene:
    """Build the scene around one panorama of ``city``; the same arguments give the same scene.

    Parameters
    ----------
    city
        The synthetic city (:func:`camcensus.simulate.simulate_city`).
    panorama_id
        A ``PanoramaId`` of ``city.panoramas``.
    seed
        Seed of the scene's draws (with the panorama id: scenes do not depend on each other).
    heading_deg
        Bearing of the image centre column; default :func:`panorama_headings`.

    Raises
    ------
    KeyError
        When ``panorama_id`` is not a panorama of ``city``.
    """
    truth = city.truth
    rows = np.flatnonzero(truth["PanoramaId"].astype(str).to_numpy() == str(panorama_id))
    if len(rows) == 0:
        raise KeyError(
            f"panorama {panorama_id!r} is not in this synthetic city "
            f"(expected one of its {len(truth)} PanoramaId values)"
        )
    t = truth.iloc[int(rows[0])]
    p = city.panoramas
    prow = np.flatnonzero(p["PanoramaId"].astype(str).to_numpy() == str(panorama_id))[0]
    lon, lat = (float(p[c].to_numpy()[prow]) for c in ("GoogleLong", "GoogleLat"))
    px, py = _to_crs(city.crs).transform(lon, lat)
    if heading_deg is None:
        heading_deg = float(panorama_headings(city, seed=seed).loc[str(panorama_id)])
    street_types = (
        ["dome"] * int(t["type_dome"])
        + ["bullet"] * int(t["type_bullet"])
        + ["unknown"] * int(t["type_unknown"])
    )
    from camcensus.simulate._layout import build

    rng = np.random.default_rng([seed, _stable_int(str(panorama_id))])
    return build(
        rng,
        panorama_id=str(panorama_id),
        crs=city.crs,
        centre=(float(t.geometry.x), float(t.geometry.y)),
        position=(float(px), float(py)),
        heading_deg=float(heading_deg) % 360,
        street_types=street_types,
        n_building=int(t["attached_building"]),
        n_unknown=int(t["attached_unknown"]),
        signal=bool(t["traffic_signal"]),
    )


def scene_for_city(city: SyntheticCity, *, seed: int) -> Scene:
    """Build the scene of every panorama of ``city`` (see :func:`panorama_scene`)."""
    headings = panorama_headings(city, seed=seed)
    scenes = {
        pid: panorama_scene(city, pid, seed=seed, heading_deg=float(headings.loc[pid]))
        for pid in city.truth["PanoramaId"].astype(str)
    }
    return Scene(crs=city.crs, seed=seed, panoramas=scenes)


# --- geometry -------------------------------------------------------------------------------


def _walls_array(walls: tuple[Wall, ...]) -> np.ndarray:
    return np.array([(w.x0, w.y0, w.x1, w.y1, w.height_m) for w in walls], dtype=float).reshape(
        -1, 5
    )


def _occluded(
    walls: np.ndarray, eye: tuple[float, float, float], pts: np.ndarray, *, eps: float = 1e-6
) -> np.ndarray:
    """Whether the sight line from ``eye`` to each point (n × 3) crosses a wall."""
    if len(pts) == 0 or len(walls) == 0:
        return np.zeros(len(pts), dtype=bool)
    ex, ey, ez = eye
    dx = pts[:, 0:1] - ex
    dy = pts[:, 1:2] - ey
    ax, ay, bx, by, h = (walls[None, :, i] for i in range(5))
    wx, wy = bx - ax, by - ay
    denom = dx * wy - dy * wx
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((ax - ex) * wy - (ay - ey) * wx) / denom
        s = ((ax - ex) * dy - (ay - ey) * dx) / denom
    z = ez + t * (pts[:, 2:3] - ez)
    hit = (np.abs(denom) > 1e-12) & (t > eps) & (t < 1 - eps) & (s >= 0) & (s <= 1) & (z < h)
    return np.asarray(hit.any(axis=1))


def _look(
    eye: tuple[float, float, float], x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dx, dy, dz = x - eye[0], y - eye[1], z - eye[2]
    horiz = np.hypot(dx, dy)
    heading = np.degrees(np.arctan2(dx, dy)) % 360
    pitch = np.degrees(np.arctan2(dz, horiz))
    return heading, pitch, np.sqrt(horiz**2 + dz**2)


def objects_in_view(scene: PanoramaScene) -> pd.DataFrame:
    """Return every object of ``scene`` as the panorama sees it (the truth table).

    One row per object with :data:`VIEW_COLUMNS`: ``heading_deg`` (true north), ``pitch_deg``
    and ``distance_m`` from the panorama's camera to the object's centre (a pole's mid-height),
    ``angular_width_deg`` / ``angular_height_deg`` its apparent size, ``occluded`` when a façade
    hides it, and ``visible`` = not occluded and within :data:`VIEW_RANGE_M`.
    """
    objs = scene.objects
    x = np.array([o.x for o in objs], dtype=float)
    y = np.array([o.y for o in objs], dtype=float)
    z = np.array([o.z / 2 if o.kind == "pole" else o.z for o in objs], dtype=float)
    eye = (scene.x, scene.y, scene.eye_height_m)
    heading, pitch, dist = _look(eye, x, y, z)
    walls = _walls_array(scene.walls)
    pts = np.column_stack([x, y, z])
    occluded = _occluded(walls, eye, pts)
    is_pole = np.array([o.kind == "pole" for o in objs], dtype=bool)
    if is_pole.any():
        # A pole is seen when its top or its middle is in sight.
        tops = pts[is_pole].copy()
        tops[:, 2] = [o.z for o in objs if o.kind == "pole"]
        occluded[is_pole] &= _occluded(walls, eye, tops)
    width = np.array([o.width_m for o in objs], dtype=float)
    height = np.array([o.height_m for o in objs], dtype=float)
    safe = np.maximum(dist, 1e-6)
    return pd.DataFrame(
        {
            "object_id": [o.object_id for o in objs],
            "kind": [o.kind for o in objs],
            "camera_type": pd.array([o.camera_type for o in objs], dtype=object),
            "attachment": pd.array([o.attachment for o in objs], dtype=object),
            "x": x,
            "y": y,
            "z": np.array([o.z for o in objs], dtype=float),
            "heading_deg": heading,
            "pitch_deg": pitch,
            "distance_m": dist,
            "visible": ~occluded & (dist <= VIEW_RANGE_M),
            "occluded": occluded,
            "angular_width_deg": np.degrees(2 * np.arctan(width / 2 / safe)),
            "angular_height_deg": np.degrees(2 * np.arctan(height / 2 / safe)),
            "width_m": width,
            "height_m": height,
            "facing_deg": np.array([o.facing_deg for o in objs], dtype=float),
            "mount": [o.mount for o in objs],
        },
        columns=VIEW_COLUMNS,
    )


def tutorial_scene() -> PanoramaScene:
    """Return the fixed tutorial panorama: three cameras and two look-alikes, easy to click.

    A dome on a lamp pole (north-east corner), a bullet on a signal pole (south-west corner)
    and a dome on a building façade (north-west); a street lamp head and a traffic signal head
    are the look-alikes. The image centre faces north (``heading_deg`` 0).
    """
    from camcensus.simulate import _CRS, _ORIGIN
    from camcensus.simulate._layout import _FACADE_OFFSET_M, _Builder, _buildings

    cx, cy = _ORIGIN
    rng = np.random.default_rng(20240607)
    walls, _alleys = _buildings(rng, cx, cy, 6.0, 6.0)
    eye = (cx + 1.0, cy - 1.0, EYE_HEIGHT_M)
    bld = _Builder(rng, eye)
    ne = bld.pole(cx + 6.5, cy + 8.5, 9.0, 0.22, "lamp", 270.0)
    bld.lamp_on(ne)
    sw = bld.pole(cx - 8.5, cy - 6.5, 7.5, 0.26, "signal", 90.0)
    bld.add(
        SceneObject(
            bld.new_id("signal"),
            "signal",
            None,
            "street",
            sw.x + 4.0,
            sw.y,
            5.2,
            0.34,
            1.0,
            0.0,
            "arm",
            sw.x,
            sw.y,
            5.6,
        )
    )

    def cam(
        ctype: str,
        att: str,
        xyz: tuple[float, float, float],
        face: float,
        mount: str,
        at: tuple[float, float, float],
        size: tuple[float, float],
    ) -> None:
        bld.add(
            SceneObject(
                bld.new_id("camera"),
                "camera",
                ctype,
                att,
                *xyz,
                *size,
                face,
                mount,
                *at,
                counted=True,
            )
        )

    cam("dome", "street", (ne.x - 0.22, ne.y, 5.0), 270.0, "pole", (ne.x, ne.y, 5.0), (0.3, 0.3))
    cam("bullet", "street", (sw.x + 0.22, sw.y, 4.6), 150.0, "pole", (sw.x, sw.y, 4.6), (0.4, 0.15))
    # The north-west building's street-facing wall along the east-west road.
    x = cx - 12.0
    wall = next(
        w
        for w in walls
        if w.street_facing
        and w.y0 == w.y1
        and w.y0 > cy
        and min(w.x0, w.x1) <= x <= max(w.x0, w.x1)
    )
    y = wall.y0 - _FACADE_OFFSET_M
    cam("dome", "building", (x, y, 4.2), 180.0, "facade", (x, wall.y0, 4.2), (0.3, 0.3))
    return PanoramaScene(
        panorama_id="tutorial",
        crs=_CRS,
        x=eye[0],
        y=eye[1],
        heading_deg=0.0,
        centre_x=cx,
        centre_y=cy,
        road_half_ew=6.0,
        road_half_ns=6.0,
        walls=tuple(walls),
        objects=tuple(bld.objects),
        traffic_signal=True,
    )
