"""Box labels on perspective crops from agreed volunteer tags (or synthetic truth), COCO export.

Label rules (docs/detect.md):

- A camera is *agreed* when its candidate cluster (:func:`camcensus.locate.cluster_tags`:
  average linkage within ``locate_cluster_deg``, never two tags of one volunteer) holds tags of
  at least ``min_support`` distinct volunteers (default 2, i.e. 2 of 3). Machine tags never
  count toward agreement (a machine tag alone never settles a camera).
- Each camera is an angular rectangle (heading span, pitch span) around its ray: the rendered
  pixel box for synthetic truth; for tags, a size prior: the camera's body (:data:`BODY_SIZE_M`)
  at the distance its ray meets the mount-height prior (:data:`HEIGHT_PRIORS`) from the
  panorama's eye height, clamped to ``[3, 40]`` m (``15`` m when the ray is within 3° of the
  horizon).
- A crop's box is the bounding box of the rectangle's outline projected into the crop, clipped
  to the crop. An agreed camera with its centre ray in the crop and at least ``min_visible`` of
  its box inside is a box label; any other camera or unagreed candidate touching the crop is an
  ignore region (COCO ``iscrowd = 1``: neither a positive nor a negative).
- A crop with no camera, no candidate and no tag of any volunteer is a *negative*, but only on
  panoramas answered by at least ``min_support`` volunteers (one volunteer's silence is no
  evidence).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.cameras import MOUNT_HEIGHT_PRIORS
from camcensus.detect.crops import (
    CropView,
    equirect_to_ray,
    perspective_crop,
    ray_to_pixel,
    tile_views,
)
from camcensus.io.formats import write_atomic

__all__ = [
    "BODY_SIZE_M",
    "CAMERA_COLUMNS",
    "CATEGORIES",
    "CROP_COLUMNS",
    "EYE_HEIGHT_M",
    "HEIGHT_PRIORS",
    "CropLabels",
    "agreed_cameras",
    "cameras_from_truth",
    "crop_file_name",
    "label_crops",
    "prior_box_deg",
    "tile_panoramas",
    "to_coco",
    "write_crop_images",
]

#: COCO categories (Stanford's classes "Directed" and "Dome", plus cameras of unknown type).
CATEGORIES: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "dome", "supercategory": "camera"},
    {"id": 2, "name": "directed", "supercategory": "camera"},
    {"id": 3, "name": "unknown", "supercategory": "camera"},
)
_CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}
_CATEGORY_OF_TYPE = {"dome": "dome", "bullet": "directed", "unknown": "unknown"}

#: Width and height (m) of a camera's visible body by type, for the size prior: the synthetic
#: renderer's drawn boxes (sizes fitted to Stanford's annotations), medians over the visible
#: cameras of 80 panoramas of ``simulate_city(0)``: a dome's housing 0.54 × 0.39 m; a bullet
#: under its sun shield, tilted down, 0.40 × 0.44 m on screen; others 0.35 × 0.19 m.
BODY_SIZE_M: dict[str, tuple[float, float]] = {
    "dome": (0.54, 0.39),
    "bullet": (0.40, 0.44),
    "unknown": (0.35, 0.19),
}
#: Mount height (m) by attachment (median, sd): :data:`camcensus.cameras.MOUNT_HEIGHT_PRIORS`.
HEIGHT_PRIORS: dict[str, tuple[float, float]] = MOUNT_HEIGHT_PRIORS
#: Height of the panorama's camera (m), as :data:`camcensus.locate.PANORAMA_HEIGHT_M`.
EYE_HEIGHT_M = 2.5
_NEAR_HORIZON_DEG = 3.0
_DEFAULT_DISTANCE_M = 15.0  # median distance of the synthetic city's visible cameras: 14.6 m
_DISTANCE_RANGE_M = (3.0, 40.0)

#: Columns of the camera tables (:func:`agreed_cameras`, :func:`cameras_from_truth`): the
#: angular rectangle is ``left_deg`` (heading of its left edge) + ``span_deg`` (clockwise) by
#: ``top_deg`` / ``bottom_deg`` (pitches).
CAMERA_COLUMNS = (
    "panorama_id",
    "camera_id",
    "heading_deg",
    "pitch_deg",
    "category",
    "agreed",
    "support",
    "box_source",
    "left_deg",
    "span_deg",
    "top_deg",
    "bottom_deg",
)
#: Columns of a crops table (:func:`tile_panoramas`).
CROP_COLUMNS = ("panorama_id", "heading_deg", "pitch_deg", "fov_deg", "width", "height")


@dataclass(frozen=True)
class CropLabels:
    """Crops and their box labels.

    ``images``: :data:`CROP_COLUMNS` + ``image_id`` (1, 2, ...), ``file_name``, ``kind``
    (``positive`` | ``negative`` | ``ignore_only``: only ignore regions). ``annotations``:
    ``annotation_id``, ``image_id``, ``camera_id``, ``category``, ``category_id``, ``x``, ``y``,
    ``w``, ``h`` (COCO pixels), ``area``, ``iscrowd`` (1 = ignore region), ``box_source``.
    """

    images: pd.DataFrame
    annotations: pd.DataFrame


def _need(df: pd.DataFrame, cols: Sequence[str], what: str, fix: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ContractError(f"{what} lack column(s) {', '.join(missing)}. Fix: {fix}")


def prior_box_deg(
    pitch_deg: np.ndarray | float,
    attachment: np.ndarray | Sequence[str] | str,
    camera_type: np.ndarray | Sequence[str] | str,
    *,
    eye_height_m: float = EYE_HEIGHT_M,
) -> tuple[np.ndarray, np.ndarray]:
    """Return a tagged camera's prior angular size ``(heading_span_deg, pitch_span_deg)``.

    The body (:data:`BODY_SIZE_M` by type) at 3-D distance ``(H - eye) / sin(pitch)`` along the
    ray, ``H`` the mount-height prior of its attachment; 15 m within 3° of the horizon (or
    below it); clamped to 3–40 m. The heading span is ``2 atan(w / 2 / (d cos p))``.
    """
    p = np.atleast_1d(np.asarray(pitch_deg, dtype=float))
    att = np.broadcast_to(np.asarray(attachment, dtype=object), p.shape)
    typ = np.broadcast_to(np.asarray(camera_type, dtype=object), p.shape)
    height = np.array([HEIGHT_PRIORS.get(str(a), HEIGHT_PRIORS["unknown"])[0] for a in att])
    size = np.array([BODY_SIZE_M.get(str(t), BODY_SIZE_M["unknown"]) for t in typ]).reshape(-1, 2)
    rise = height - eye_height_m
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(
            (p > _NEAR_HORIZON_DEG) & (rise > 0),
            rise / np.sin(np.radians(p)),
            _DEFAULT_DISTANCE_M,
        )
    d = np.clip(d, *_DISTANCE_RANGE_M)
    cos_p = np.maximum(np.cos(np.radians(p)), 1e-3)
    span = np.degrees(2 * np.arctan(size[:, 0] / 2 / (d * cos_p)))
    tall = np.degrees(2 * np.arctan(size[:, 1] / 2 / d))
    return span, tall


def agreed_cameras(
    tags: pd.DataFrame,
    *,
    max_sep_deg: float | None = None,
    min_support: int = 2,
    eye_height_m: float = EYE_HEIGHT_M,
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Return the candidate cameras of volunteers' tags, agreed or not, with prior boxes.

    Parameters
    ----------
    tags
        :func:`camcensus.locate.tags_table` rows (at least ``tag_id``, ``panorama_id``,
        ``decoder_id``, ``heading_deg``, ``pitch_deg``, ``attachment``, ``camera_type``;
        ``machine`` optional: machine tags are left out and counted in ``ledger``).
    max_sep_deg
        Clustering distance (default: setting ``locate_cluster_deg``).
    min_support
        Distinct volunteers for a camera to be agreed (default 2: 2 of 3).
    eye_height_m
        Height of the panoramas' camera for the size prior.
    ledger
        Counts the machine tags left out.

    Returns
    -------
    pandas.DataFrame
        :data:`CAMERA_COLUMNS`, ``box_source = "prior"``, ``camera_id`` the candidate id.
    """
    from camcensus.locate import cluster_tags

    if min_support < 1:
        raise OptionError(f"min_support = {min_support}: expected an integer >= 1, e.g. 2")
    _need(
        tags,
        ("tag_id", "panorama_id", "decoder_id", "heading_deg", "pitch_deg", "attachment",
         "camera_type"),
        "the tags",
        "pass the table of camcensus.locate.tags_table",
    )  # fmt: skip
    if "machine" in tags.columns:
        machine = tags["machine"].astype(bool).to_numpy()
        if ledger is not None:
            ledger.exclude(
                "detect labels", "machine tags (never evidence of a camera)", int(machine.sum())
            )
        tags = tags.loc[~machine]
    cand = cluster_tags(tags, max_sep_deg=max_sep_deg, min_support=min_support)
    span, tall = prior_box_deg(
        cand["pitch_deg"].to_numpy(float),
        cand["attachment"].astype(str).to_numpy(),
        cand["camera_type"].astype(str).to_numpy(),
        eye_height_m=eye_height_m,
    )
    heading = cand["heading_deg"].to_numpy(float)
    pitch = cand["pitch_deg"].to_numpy(float)
    return pd.DataFrame(
        {
            "panorama_id": cand["panorama_id"].astype(str).to_numpy(),
            "camera_id": cand["candidate_id"].astype(str).to_numpy(),
            "heading_deg": heading,
            "pitch_deg": pitch,
            "category": [_CATEGORY_OF_TYPE.get(str(t), "unknown") for t in cand["camera_type"]],
            "agreed": cand["support"].to_numpy(int) >= min_support,
            "support": cand["support"].to_numpy(int),
            "box_source": "prior",
            "left_deg": (heading - span / 2) % 360.0,
            "span_deg": span,
            "top_deg": np.minimum(pitch + tall / 2, 90.0),
            "bottom_deg": np.maximum(pitch - tall / 2, -90.0),
        },
        columns=list(CAMERA_COLUMNS),
    )


def cameras_from_truth(
    truth: pd.DataFrame,
    *,
    panorama_id: str,
    panorama_heading_deg: float,
    width: int,
    height: int,
) -> pd.DataFrame:
    """Return the drawn cameras of a rendered panorama's truth with their exact pixel boxes.

    ``truth`` is :attr:`camcensus.simulate.render.RenderedPanorama.truth`; the rectangle is the
    rendered box's outer pixel edges (pixel ``u`` spans ``[u - 0.5, u + 0.5]`` in the Rays
    convention). Every drawn camera is agreed (support 0: truth, not volunteers).
    """
    _need(
        truth,
        ("object_id", "kind", "camera_type", "heading_deg", "pitch_deg", "drawn", "box_u0",
         "box_v0", "box_w", "box_h"),
        "the truth",
        "pass RenderedPanorama.truth of camcensus.simulate.render.render_panorama",
    )  # fmt: skip
    cams = truth[(truth["kind"] == "camera") & truth["drawn"].astype(bool)]
    u0 = cams["box_u0"].to_numpy(float) - 0.5
    v0 = cams["box_v0"].to_numpy(float) - 0.5
    kw = {"panorama_heading_deg": panorama_heading_deg, "width": width, "height": height}
    left, top = equirect_to_ray(u0, v0, **kw)  # type: ignore[arg-type]
    _, bottom = equirect_to_ray(u0, v0 + cams["box_h"].to_numpy(float), **kw)  # type: ignore[arg-type]
    return pd.DataFrame(
        {
            "panorama_id": str(panorama_id),
            "camera_id": cams["object_id"].astype(str).to_numpy(),
            "heading_deg": cams["heading_deg"].to_numpy(float),
            "pitch_deg": cams["pitch_deg"].to_numpy(float),
            "category": [_CATEGORY_OF_TYPE.get(str(t), "unknown") for t in cams["camera_type"]],
            "agreed": True,
            "support": 0,
            "box_source": "truth",
            "left_deg": np.asarray(left, dtype=float),
            "span_deg": cams["box_w"].to_numpy(float) * 360.0 / width,
            "top_deg": np.asarray(top, dtype=float),
            "bottom_deg": np.asarray(bottom, dtype=float),
        },
        columns=list(CAMERA_COLUMNS),
    )


def tile_panoramas(panorama_ids: Sequence[str], **tiling: Any) -> pd.DataFrame:
    """Return the crops of :func:`~camcensus.detect.crops.tile_views` for each panorama.

    ``tiling`` is passed to ``tile_views`` (``fov_deg``, ``size``, ``pitch_min_deg``, ...).
    """
    views = tile_views(**tiling)
    rows = [
        (str(pid), v.heading_deg, v.pitch_deg, v.fov_deg, v.width, v.height)
        for pid in panorama_ids
        for v in views
    ]
    return pd.DataFrame(rows, columns=list(CROP_COLUMNS))


def _outline(cams: pd.DataFrame, n: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Rays along each camera rectangle's outline: arrays ``(cameras, 4 n)``."""
    t = np.linspace(0.0, 1.0, n)[None, :]
    left = cams["left_deg"].to_numpy(float)[:, None]
    span = cams["span_deg"].to_numpy(float)[:, None]
    top = cams["top_deg"].to_numpy(float)[:, None]
    bottom = cams["bottom_deg"].to_numpy(float)[:, None]
    along = left + span * t
    ones = np.ones_like(t)
    heading = np.concatenate([along, along, left * ones, (left + span) * ones], axis=1)
    pitch = np.concatenate(
        [top * ones, bottom * ones, top + (bottom - top) * t, top + (bottom - top) * t], axis=1
    )
    return heading % 360.0, pitch


def crop_file_name(panorama_id: str, view: CropView) -> str:
    """Return the crop's image file name (unique per panorama and view)."""
    return (
        f"{panorama_id}_h{view.heading_deg % 360:07.3f}_p{view.pitch_deg:+07.3f}"
        f"_f{view.fov_deg:05.1f}_{view.width}x{view.height}.jpg"
    )


def label_crops(
    cameras: pd.DataFrame,
    crops: pd.DataFrame,
    *,
    answered: Mapping[str, int] | None = None,
    min_support: int = 2,
    min_visible: float = 0.5,
    ledger: Ledger | None = None,
) -> CropLabels:
    """Label each crop with the boxes of the cameras it shows.

    Parameters
    ----------
    cameras
        :data:`CAMERA_COLUMNS` rows (:func:`agreed_cameras`, :func:`cameras_from_truth`).
    crops
        :data:`CROP_COLUMNS` rows (:func:`tile_panoramas`, or any crops).
    answered
        Volunteers with a counted answer per panorama id (``n_decoders`` of the tags table,
        panoramas answered "no camera" included). Crops of panoramas answered by fewer than
        ``min_support`` volunteers hold no evidence: left out and counted. ``None``: every
        panorama is fully known (synthetic truth).
    min_support
        See ``answered``.
    min_visible
        Share of an agreed camera's box that must lie in the crop for a box label; a camera cut
        more by the crop's edge is an ignore region.
    ledger
        Counts the crops left out, by reason.

    Returns
    -------
    CropLabels
        Images and annotations, image ids in the order of ``crops``.
    """
    fix = "pass agreed_cameras(...) or cameras_from_truth(...)"
    _need(cameras, CAMERA_COLUMNS, "the cameras", fix)
    _need(crops, CROP_COLUMNS, "the crops", "pass tile_panoramas(...)")
    if not 0 < min_visible <= 1:
        raise OptionError(f"min_visible = {min_visible}: expected a share in (0, 1], e.g. 0.5")
    by_pano = {str(k): g for k, g in cameras.groupby("panorama_id", sort=False)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    unanswered = 0
    for row in _records(crops):
        pid = str(row["panorama_id"])
        if answered is not None and int(answered.get(pid, 0)) < min_support:
            unanswered += 1
            continue
        view = CropView(
            float(row["heading_deg"]), float(row["pitch_deg"]), float(row["fov_deg"]),
            int(row["width"]), int(row["height"]),
        )  # fmt: skip
        image_id = len(images) + 1
        kw = {
            "heading_deg": view.heading_deg, "pitch_deg": view.pitch_deg,
            "fov_deg": view.fov_deg, "size": (view.width, view.height),
        }  # fmt: skip
        found: list[dict[str, Any]] = []
        cams = by_pano.get(pid)
        if cams is not None and len(cams):
            oh, op = _outline(cams)
            x, y, front = ray_to_pixel(oh, op, **kw)  # type: ignore[arg-type]
            cx, cy, cfront = ray_to_pixel(
                cams["heading_deg"].to_numpy(float),
                cams["pitch_deg"].to_numpy(float),
                **kw,  # type: ignore[arg-type]
            )
            for i, cam in enumerate(_records(cams)):
                if not front[i].all():
                    continue
                x0, x1 = float(x[i].min()), float(x[i].max())
                y0, y1 = float(y[i].min()), float(y[i].max())
                if x1 <= 0 or y1 <= 0 or x0 >= view.width or y0 >= view.height:
                    continue
                cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
                cx1, cy1 = min(x1, float(view.width)), min(y1, float(view.height))
                full = max((x1 - x0) * (y1 - y0), 1e-12)
                shown = (cx1 - cx0) * (cy1 - cy0)
                centre_in = bool(cfront[i]) and 0 <= cx[i] < view.width and 0 <= cy[i] < view.height
                crowd = not (bool(cam["agreed"]) and centre_in and shown / full >= min_visible)
                category = "unknown" if not bool(cam["agreed"]) else str(cam["category"])
                found.append(
                    {
                        "image_id": image_id,
                        "camera_id": str(cam["camera_id"]),
                        "category": category,
                        "category_id": _CATEGORY_ID[category],
                        "x": cx0,
                        "y": cy0,
                        "w": cx1 - cx0,
                        "h": cy1 - cy0,
                        "area": (cx1 - cx0) * (cy1 - cy0),
                        "iscrowd": int(crowd),
                        "box_source": str(cam["box_source"]),
                    }
                )
        if not found:
            kind = "negative"
        elif any(a["iscrowd"] == 0 for a in found):
            kind = "positive"
        else:
            kind = "ignore_only"
        images.append(
            {
                "image_id": image_id,
                **{c: row[c] for c in CROP_COLUMNS},
                "file_name": crop_file_name(pid, view),
                "kind": kind,
            }
        )
        anns.extend(found)
    if ledger is not None:
        ledger.exclude(
            "detect labels",
            f"crops of panoramas answered by fewer than {min_support} volunteers",
            unanswered,
        )
    ann_cols = ["annotation_id", "image_id", "camera_id", "category", "category_id", "x", "y",
                "w", "h", "area", "iscrowd", "box_source"]  # fmt: skip
    ann = pd.DataFrame(anns, columns=ann_cols[1:])
    ann.insert(0, "annotation_id", np.arange(1, len(ann) + 1, dtype=np.int64))
    img_cols = ["image_id", *CROP_COLUMNS, "file_name", "kind"]
    return CropLabels(images=pd.DataFrame(images, columns=img_cols), annotations=ann)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _finite(value: Any) -> float:
    if not math.isfinite(value):
        raise ContractError(f"a label holds {value!r}; expected finite pixel values")
    return round(float(value), 4)


def to_coco(
    labels: CropLabels, path: str | os.PathLike[str], *, info: Mapping[str, Any] | None = None
) -> Path:
    """Write the labels as COCO detection JSON, atomically (a temporary file, then a rename).

    ``images`` carry COCO's ``id``, ``file_name``, ``width``, ``height`` and the crop's
    ``panorama_id``, ``heading_deg``, ``pitch_deg``, ``fov_deg``, ``kind``; ``annotations``
    carry ``id``, ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]`` (pixels, top-left
    origin), ``area``, ``iscrowd`` (1: ignore region) and ``camera_id``, ``box_source``;
    ``categories`` are :data:`CATEGORIES`.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    doc = {
        "info": {"description": "camcensus camera crops", **(dict(info) if info else {})},
        "licenses": [],
        "images": [
            {
                "id": int(r["image_id"]),
                "file_name": str(r["file_name"]),
                "width": int(r["width"]),
                "height": int(r["height"]),
                "panorama_id": str(r["panorama_id"]),
                "heading_deg": _finite(float(r["heading_deg"])),
                "pitch_deg": _finite(float(r["pitch_deg"])),
                "fov_deg": _finite(float(r["fov_deg"])),
                "kind": str(r["kind"]),
            }
            for r in _records(labels.images)
        ],
        "annotations": [
            {
                "id": int(a["annotation_id"]),
                "image_id": int(a["image_id"]),
                "category_id": int(a["category_id"]),
                "bbox": [_finite(a["x"]), _finite(a["y"]), _finite(a["w"]), _finite(a["h"])],
                "area": _finite(a["area"]),
                "iscrowd": int(a["iscrowd"]),
                "camera_id": str(a["camera_id"]),
                "box_source": str(a["box_source"]),
            }
            for a in _records(labels.annotations)
        ],
        "categories": [dict(c) for c in CATEGORIES],
    }
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def write_crop_images(
    equirect: np.ndarray,
    images: pd.DataFrame,
    folder: str | os.PathLike[str],
    *,
    panorama_heading_deg: float,
    quality: int = 92,
) -> int:
    """Cut and save (JPEG) the crops of ``images`` rows of one panorama; return how many."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for r in _records(images):
        crop = perspective_crop(
            equirect,
            heading_deg=float(r["heading_deg"]),
            pitch_deg=float(r["pitch_deg"]),
            fov_deg=float(r["fov_deg"]),
            size=(int(r["width"]), int(r["height"])),
            panorama_heading_deg=panorama_heading_deg,
        )
        Image.fromarray(np.ascontiguousarray(crop)).save(
            folder / str(r["file_name"]), format="JPEG", quality=quality
        )
        n += 1
    return n
