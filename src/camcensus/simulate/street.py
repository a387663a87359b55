"""A shared-world street simulation: one camera seen from several panoramas.

The per-panorama synthetic city (:mod:`camcensus.simulate.scene`) builds a separate little world
around each panorama, so a camera is never seen twice. To check triangulation across panoramas
this module builds one world for all of them: a grid of streets (centre lines ``block_m`` apart,
carriageway ``road_half_m`` either side, building fronts at ``front_m``), panoramas on the centre
lines at every intersection and every ~``spacing_m`` between them, and objects along the streets:

- lamp poles every ~30 m on both sidewalks and signal poles at the corners; a pole carries a camera
  with ``p_pole_camera`` (mounted 3–8 m up, typed dome / bullet / unknown 0.7 / 0.15 / 0.15, as
  the city simulation types public cameras), and a lamp head or signal head (look-alikes);
- cameras on the building fronts, Poisson ``wall_cameras_per_100m`` per 100 m of front, 2.5–6 m
  up, and wall lamps (look-alikes) at 2.6–3.6 m;
- a few cameras on other structures (attachment ``unknown``), 3–5 m up.

A panorama sees an object within ``view_range_m`` (horizontal) whose sight line does not cross
a building block. ``k`` volunteers per panorama tag what they see with the error model of
:mod:`camcensus.simulate.volunteers` (misses, 1–3° bearing and 0.7–2° pitch noise, wrong
attachment or type, look-alikes tagged as cameras). The tags come in the columns of
:func:`camcensus.locate.tags_table`, with the truth beside them.

Coordinates are metres in ``crs`` (UTM 18N; x east, y north, z up from the ground); headings are
true-north bearings and pitches are up from the horizon, seen from the panorama's camera at
:data:`~camcensus.simulate.scene.EYE_HEIGHT_M`.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from camcensus.simulate import _CRS, _ORIGIN, ErrorModel, SyntheticCity
from camcensus.simulate.scene import EYE_HEIGHT_M, objects_in_view, scene_for_city
from camcensus.simulate.volunteers import (
    VolunteerModel,
    draw_volunteer_models,
    simulate_tags_with_sources,
)

__all__ = ["StreetWorld", "city_tags", "simulate_street"]

#: Columns of the simulated tags: :func:`camcensus.locate.tags_table`'s, then the truth.
TAG_COLUMNS = (
    "tag_id",
    "submission_id",
    "panorama_id",
    "decoder_id",
    "heading_deg",
    "pitch_deg",
    "fov_deg",
    "attachment",
    "camera_type",
    "machine",
    "score",
    "lon",
    "lat",
    "n_decoders",
    "target_id",
)
_TYPES = ("dome", "bullet", "unknown")
_TYPE_P = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class StreetWorld:
    """One simulated street world: what volunteers sent, and the truth.

    Attributes
    ----------
    crs
        The metric CRS of ``x``/``y`` columns.
    panoramas
        One row per panorama: ``panorama_id``, ``heading_deg`` (image centre), ``eye_height_m``,
        ``x``, ``y``, ``intersection`` (bool), point geometry in EPSG:4326.
    cameras
        The true cameras: ``camera_id``, ``mount`` (street / building / unknown),
        ``camera_type``, ``height_m``, ``x``, ``y``, ``n_seen`` (panoramas that see it),
        ``n_within_30m`` (panoramas within 30 m that see it), ``nearest_m`` (horizontal
        distance to the nearest panorama that sees it; NaN if none), point geometry EPSG:4326.
    objects
        Every object (cameras and look-alikes): ``object_id``, ``kind`` (camera / lamp /
        signal), ``attachment``, ``camera_type``, ``x``, ``y``, ``z``.
    views
        One row per (panorama, object) pair within ``view_range_m``: ``panorama_id``,
        ``object_id``, ``distance_m`` (horizontal), ``heading_deg``, ``pitch_deg``, ``visible``.
    submissions
        One row per volunteer's look: ``submission_id``, ``panorama_id``, ``decoder_id``,
        ``no_camera``.
    tags
        :data:`TAG_COLUMNS`: one row per click; ``target_id`` is the object the volunteer aimed
        at (truth, not an observation).
    buildings
        Building blocks (polygons in ``crs``).
    """

    crs: str
    panoramas: gpd.GeoDataFrame
    cameras: gpd.GeoDataFrame
    objects: pd.DataFrame
    views: pd.DataFrame
    submissions: pd.DataFrame
    tags: pd.DataFrame
    buildings: gpd.GeoDataFrame


def _bearing(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.degrees(np.arctan2(dx, dy)) % 360.0
    return out


class _Objects:
    """Collects the world's objects as columns."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str | None, str | None, float, float, float]] = []

    def add(
        self, kind: str, attachment: str | None, ctype: str | None, x: float, y: float, z: float
    ) -> None:
        prefix = "cam" if kind == "camera" else kind
        oid = f"{prefix}-{len(self.rows) + 1:05d}"
        self.rows.append((oid, kind, attachment, ctype, float(x), float(y), float(z)))

    def frame(self) -> pd.DataFrame:
        cols = ["object_id", "kind", "attachment", "camera_type", "x", "y", "z"]
        return pd.DataFrame(self.rows, columns=cols)


def simulate_street(
    seed: int = 0,
    *,
    nx: int = 4,
    ny: int = 3,
    block_m: float = 100.0,
    spacing_m: float = 15.0,
    road_half_m: float = 6.0,
    front_m: float = 11.0,
    p_pole_camera: float = 0.3,
    wall_cameras_per_100m: float = 0.8,
    view_range_m: float = 40.0,
    k: int = 3,
    n_volunteers: int = 30,
    errors: ErrorModel | None = None,
) -> StreetWorld:
    """Simulate a street world seen by ``k`` volunteers per panorama; the same seed gives the same
    world.

    Parameters
    ----------
    seed
        Seed of every draw.
    nx, ny, block_m
        Grid of ``nx`` × ``ny`` intersections ``block_m`` metres apart.
    spacing_m
        Mean distance between panoramas along a street (±20 % jitter).
    road_half_m, front_m
        Distance from a street's centre line to the kerb and to the building fronts.
    p_pole_camera
        Probability that a pole carries a camera.
    wall_cameras_per_100m
        Mean cameras per 100 m of building front.
    view_range_m
        Horizontal range within which a panorama shows an object.
    k
        Volunteers per panorama (distinct).
    n_volunteers
        Size of the volunteer pool (``>= k``).
    errors
        Error model of the volunteers
        (:func:`~camcensus.simulate.volunteers.draw_volunteer_models`).
    """
    if nx < 2 or ny < 2:
        raise ValueError(f"nx = {nx}, ny = {ny}: expected a grid of at least 2 × 2 intersections")
    if n_volunteers < k or k < 1:
        raise ValueError(f"k = {k}, n_volunteers = {n_volunteers}: expected 1 <= k <= n_volunteers")
    if not 0 < road_half_m < front_m < block_m / 2:
        raise ValueError(
            f"road_half_m = {road_half_m}, front_m = {front_m}, block_m = {block_m}: expected "
            "0 < road_half_m < front_m < block_m / 2"
        )
    rng = np.random.default_rng([seed, 31])
    x0, y0 = _ORIGIN
    xs = x0 + np.arange(nx) * block_m
    ys = y0 + np.arange(ny) * block_m

    # Building blocks between the streets (and one ring of blocks outside the grid).
    blocks = []
    for i in range(-1, nx):
        for j in range(-1, ny):
            bx0, by0 = x0 + i * block_m + front_m, y0 + j * block_m + front_m
            bx1, by1 = x0 + (i + 1) * block_m - front_m, y0 + (j + 1) * block_m - front_m
            blocks.append(shapely.box(bx0, by0, bx1, by1))
    buildings = gpd.GeoDataFrame(geometry=blocks, crs=_CRS)

    # Street segments: (start, end, horizontal?) between neighbouring intersections.
    segments = [((xs[i], y), (xs[i + 1], y), True) for y in ys for i in range(nx - 1)]
    segments += [((x, ys[j]), (x, ys[j + 1]), False) for x in xs for j in range(ny - 1)]

    # Panoramas: every intersection, then every ~spacing_m along each segment.
    px: list[float] = []
    py: list[float] = []
    inter: list[bool] = []
    for x in xs:
        for y in ys:
            px.append(float(x + rng.normal(0, 1.0)))
            py.append(float(y + rng.normal(0, 1.0)))
            inter.append(True)
    for (ax, ay), (bx, by), horiz in segments:
        n_between = max(round(block_m / spacing_m) - 1, 0)
        t = (np.arange(1, n_between + 1) + rng.uniform(-0.2, 0.2, n_between)) / (n_between + 1)
        across = rng.normal(0, 1.0, n_between)
        for tt, off in zip(t, across, strict=True):
            px.append(float(ax + (bx - ax) * tt + (0.0 if horiz else off)))
            py.append(float(ay + (by - ay) * tt + (off if horiz else 0.0)))
            inter.append(False)
    n_pano = len(px)
    pano_ids = [f"sp-{i + 1:04d}" for i in range(n_pano)]

    objs = _Objects()

    def pole(x: float, y: float, arm_dx: float, arm_dy: float, head: str) -> None:
        # The lamp or signal head hangs over the street at the end of the pole's arm.
        top = rng.uniform(8.0, 10.0) if head == "lamp" else rng.uniform(7.0, 8.0)
        arm = rng.uniform(1.4, 2.4)
        z_head = top - 0.4 if head == "lamp" else rng.uniform(5.0, 6.0)
        objs.add(head, "street", None, x + arm * arm_dx, y + arm * arm_dy, z_head)
        if rng.random() < p_pole_camera:
            ctype = str(rng.choice(_TYPES, p=_TYPE_P))
            z = rng.uniform(3.0, min(8.0, top - 0.7))
            # The camera hangs on the pole's street side.
            objs.add("camera", "street", ctype, x + 0.25 * arm_dx, y + 0.25 * arm_dy, z)

    kerb = road_half_m + 0.7
    for (ax, ay), (bx, by), _horiz in segments:
        length = float(np.hypot(bx - ax, by - ay))
        ux, uy = (bx - ax) / length, (by - ay) / length
        nxv, nyv = -uy, ux
        for side in (-1.0, 1.0):
            # Lamp poles every ~30 m, clear of the crossings.
            first = front_m + rng.uniform(3.0, 12.0)
            for s in np.arange(first, length - front_m, rng.uniform(26.0, 34.0)):
                x = ax + ux * s + side * nxv * kerb
                y = ay + uy * s + side * nyv * kerb
                pole(x, y, -side * nxv, -side * nyv, "lamp")
            # Building fronts between the crossings: cameras and wall lamps.
            usable = length - 2 * front_m
            for kind, rate, lo, hi in (
                ("camera", wall_cameras_per_100m, 2.5, 6.0),
                ("lamp", 0.6, 2.6, 3.6),
            ):
                for _ in range(int(rng.poisson(rate * usable / 100.0))):
                    s = front_m + rng.uniform(0.0, usable)
                    off = front_m - 0.3
                    x = ax + ux * s + side * nxv * off
                    y = ay + uy * s + side * nyv * off
                    ctype = "unknown" if kind == "camera" else None
                    objs.add(kind, "building", ctype, x, y, rng.uniform(lo, hi))
            # Now and then a camera on another structure (a post, a kiosk, scaffolding).
            if rng.random() < 0.15:
                s = front_m + rng.uniform(0.0, usable)
                x = ax + ux * s + side * nxv * (kerb + 1.5)
                y = ay + uy * s + side * nyv * (kerb + 1.5)
                objs.add("camera", "unknown", "unknown", x, y, rng.uniform(3.0, 5.0))
    # Signal poles at the corners of every intersection.
    for x in xs:
        for y in ys:
            for qx, qy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                if rng.random() < 0.5:
                    continue
                cx, cy = x + qx * (kerb + 0.5), y + qy * (kerb + 0.5)
                pole(cx, cy, -qx / np.sqrt(2), -qy / np.sqrt(2), "signal")

    objects = objs.frame()
    # Sight: within range, and the sight line crosses no building block.
    ppx, ppy = np.asarray(px), np.asarray(py)
    ox, oy, oz = (objects[c].to_numpy(float) for c in ("x", "y", "z"))
    dist = np.hypot(ox[None, :] - ppx[:, None], oy[None, :] - ppy[:, None])
    pi, oi = np.nonzero(dist <= view_range_m)
    lines = shapely.linestrings(
        np.stack([np.column_stack([ppx[pi], ppy[pi]]), np.column_stack([ox[oi], oy[oi]])], axis=1)
    )
    tree = shapely.STRtree(buildings.geometry.to_numpy())
    hit_line, _hit_block = tree.query(lines, predicate="intersects")
    blocked = np.zeros(len(pi), dtype=bool)
    blocked[hit_line] = True
    d = dist[pi, oi]
    views = pd.DataFrame(
        {
            "panorama_id": np.asarray(pano_ids)[pi],
            "object_id": objects["object_id"].to_numpy()[oi],
            "distance_m": d,
            "heading_deg": _bearing(ox[oi] - ppx[pi], oy[oi] - ppy[pi]),
            "pitch_deg": np.degrees(np.arctan2(oz[oi] - EYE_HEIGHT_M, d)),
            "visible": ~blocked,
        }
    )

    to_ll = gpd.GeoSeries(gpd.points_from_xy(ppx, ppy), crs=_CRS).to_crs("EPSG:4326")
    heading = np.round(rng.uniform(0, 360, n_pano), 2) % 360
    panoramas = gpd.GeoDataFrame(
        {
            "panorama_id": pano_ids,
            "heading_deg": heading,
            "eye_height_m": EYE_HEIGHT_M,
            "x": ppx,
            "y": ppy,
            "intersection": inter,
        },
        geometry=to_ll.to_numpy(),
        crs="EPSG:4326",
    )

    models = draw_volunteer_models(n_volunteers, seed=seed, errors=errors)
    vol_ids = [f"vol-{i + 1:03d}" for i in range(n_volunteers)]
    submissions, tags = _tag_panoramas(
        rng,
        panoramas=panoramas,
        views=views,
        objects=objects,
        models=models,
        vol_ids=vol_ids,
        k=k,
    )

    cams = objects[objects["kind"] == "camera"].reset_index(drop=True)
    seen = views[views["visible"]]
    seen_cam = seen[seen["object_id"].isin(cams["object_id"])]
    n_seen = seen_cam.groupby("object_id").size()
    near = seen_cam[seen_cam["distance_m"] <= 30.0].groupby("object_id").size()
    nearest = seen_cam.groupby("object_id")["distance_m"].min()
    cam_ll = gpd.GeoSeries(gpd.points_from_xy(cams["x"], cams["y"]), crs=_CRS).to_crs("EPSG:4326")
    cameras = gpd.GeoDataFrame(
        {
            "camera_id": cams["object_id"].to_numpy(),
            "mount": cams["attachment"].to_numpy(),
            "camera_type": cams["camera_type"].to_numpy(),
            "height_m": cams["z"].to_numpy(),
            "x": cams["x"].to_numpy(),
            "y": cams["y"].to_numpy(),
            "n_seen": cams["object_id"].map(n_seen).fillna(0).astype(int).to_numpy(),
            "n_within_30m": cams["object_id"].map(near).fillna(0).astype(int).to_numpy(),
            "nearest_m": cams["object_id"].map(nearest).to_numpy(dtype=float),
        },
        geometry=cam_ll.to_numpy(),
        crs="EPSG:4326",
    )
    return StreetWorld(
        crs=_CRS,
        panoramas=panoramas,
        cameras=cameras,
        objects=objects,
        views=views,
        submissions=submissions,
        tags=tags,
        buildings=buildings,
    )


def _tag_panoramas(
    rng: np.random.Generator,
    *,
    panoramas: pd.DataFrame,
    views: pd.DataFrame,
    objects: pd.DataFrame,
    models: list[VolunteerModel],
    vol_ids: list[str],
    k: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Let ``k`` distinct volunteers tag every panorama; return (submissions, tags)."""
    meta = objects.set_index("object_id")[["kind", "attachment", "camera_type"]]
    by_pano = {pid: g for pid, g in views.groupby("panorama_id", sort=False)}
    empty = views.iloc[:0]
    lon = panoramas.geometry.x.to_numpy()
    lat = panoramas.geometry.y.to_numpy()
    sub_rows: list[tuple[str, str, str, bool]] = []
    tag_rows: list[tuple[object, ...]] = []
    for p, pid in enumerate(panoramas["panorama_id"]):
        v = by_pano.get(pid, empty)
        view = v.join(meta, on="object_id")
        chosen = rng.choice(len(models), size=k, replace=False)
        for vol in chosen:
            answer, targets = simulate_tags_with_sources(view, models[int(vol)], rng=rng)
            sid = f"{pid}-s{len(sub_rows) + 1:05d}"
            sub_rows.append((sid, str(pid), vol_ids[int(vol)], bool(answer["no_camera"])))
            for t, target in zip(answer["tags"], targets, strict=True):
                tag_rows.append(
                    (
                        f"{sid}-t{t['client_id'].rsplit('-', 1)[1]}",
                        sid,
                        str(pid),
                        vol_ids[int(vol)],
                        t["heading_deg"],
                        t["pitch_deg"],
                        t["fov_deg"],
                        t["attachment"],
                        t["camera_type"],
                        False,
                        np.nan,
                        float(lon[p]),
                        float(lat[p]),
                        k,
                        target,
                    )
                )
    submissions = pd.DataFrame(
        sub_rows, columns=["submission_id", "panorama_id", "decoder_id", "no_camera"]
    )
    tags = pd.DataFrame(tag_rows, columns=list(TAG_COLUMNS))
    return submissions, tags


def city_tags(
    city: SyntheticCity,
    *,
    seed: int,
    k: int = 3,
    n_volunteers: int = 30,
    errors: ErrorModel | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Let ``k`` simulated volunteers tag every panorama of the per-panorama synthetic city.

    Each panorama's scene (:func:`~camcensus.simulate.scene.scene_for_city`) is tagged with the
    error model of :mod:`camcensus.simulate.volunteers`.

    Returns
    -------
    tuple
        ``(tags, submissions, truth)``: the tags in :data:`TAG_COLUMNS` (panorama positions are
        the city's ``GoogleLong``/``GoogleLat``), one row per submission (``submission_id``,
        ``panorama_id``, ``decoder_id``, ``no_camera``) and, per panorama, the true counts of
        the cameras the panorama shows (``panorama_id``, ``n_cameras``, ``attached_street``).
    """
    scene = scene_for_city(city, seed=seed)
    rng = np.random.default_rng([seed, 37])
    models = draw_volunteer_models(n_volunteers, seed=seed, errors=errors)
    vol_ids = [f"vol-{i + 1:03d}" for i in range(n_volunteers)]
    views = []
    metas = []
    for pid, ps in scene.panoramas.items():
        v = objects_in_view(ps)
        v.insert(0, "panorama_id", pid)
        # Object ids repeat between scenes: make them unique to the panorama.
        v["object_id"] = pid + "/" + v["object_id"].astype(str)
        views.append(v[["panorama_id", "object_id", "heading_deg", "pitch_deg", "visible"]])
        metas.append(v[["object_id", "kind", "attachment", "camera_type"]])
    view = pd.concat(views, ignore_index=True)
    objects = pd.concat(metas, ignore_index=True)
    p = city.panoramas
    panoramas = gpd.GeoDataFrame(
        {"panorama_id": p["PanoramaId"].astype(str).to_numpy()},
        geometry=gpd.points_from_xy(p["GoogleLong"], p["GoogleLat"]),
        crs="EPSG:4326",
    )
    submissions, tags = _tag_panoramas(
        rng,
        panoramas=panoramas,
        views=view,
        objects=objects,
        models=models,
        vol_ids=vol_ids,
        k=k,
    )
    shown = view.join(objects.set_index("object_id"), on="object_id")
    shown = shown[shown["visible"].astype(bool) & (shown["kind"] == "camera")]
    truth = pd.DataFrame({"panorama_id": panoramas["panorama_id"]})
    truth["n_cameras"] = truth["panorama_id"].map(shown.groupby("panorama_id").size())
    street = shown[shown["attachment"] == "street"].groupby("panorama_id").size()
    truth["attached_street"] = truth["panorama_id"].map(street)
    truth = truth.fillna(0).astype({"n_cameras": int, "attached_street": int})
    return tags, submissions, truth
