"""Run the camera detector over panoramas with onnxruntime only: detections as machine tags.

:func:`detect_panorama` cuts the panorama into overlapping 640 × 640 perspective crops
(:func:`camcensus.detect.crops.tile_views`, 60° fov, pitch -15°..60°), runs the ONNX model on
batches of crops, takes the heatmap's peaks (a cell equal to its 3 × 3 maximum, score >=
``score_min``), turns each into a ray (:func:`camcensus.detect.crops.pixel_to_ray`) and keeps one
detection per camera with a greedy non-maximum suppression in ray space
(:func:`nms_rays`: angular distance between unit vectors, so duplicates across overlapping crops
and across the 0°/360° seam are one camera).

Each detection is a row of the ``tags`` contract table (docs/detect.md, /work/shared/DESIGN.md):
``heading_deg``, ``pitch_deg``, ``fov_deg`` (the crop's), ``score``, ``camera_type``,
``attachment`` (``unknown``: the model does not predict it), ``machine`` (True), ``source``
(``machine``), ``decoder_id`` (the model id), plus its angular size. A machine tag alone never
settles a camera: aggregation counts only tags confirmed by volunteers (docs/detect.md).

No JAX import here: ``camcensus detect run`` needs numpy, Pillow, pandas and onnxruntime
(``camcensus[cv]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import InputError, OptionError, Problem
from camcensus.detect.crops import CropView, perspective_crop, pixel_to_ray, tile_views

__all__ = [
    "DETECTION_COLUMNS",
    "Detector",
    "angular_distance_deg",
    "decode_peaks",
    "detect_panorama",
    "detect_panoramas",
    "load_detector",
    "nms_rays",
    "read_panorama_list",
    "unit_vectors",
]

#: Columns of a detections table (the ``tags`` table's fields first).
DETECTION_COLUMNS = (
    "panorama_id",
    "heading_deg",
    "pitch_deg",
    "fov_deg",
    "score",
    "camera_type",
    "type_score",
    "attachment",
    "machine",
    "source",
    "decoder_id",
    "size_deg",
    "width_px",
    "height_px",
    "crop_heading_deg",
    "crop_pitch_deg",
    "x_px",
    "y_px",
)
_TYPE_OF_CATEGORY = {"dome": "dome", "directed": "bullet", "unknown": "unknown"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
Progress = Callable[[str], None]


class Detector:
    """An ONNX camera detector and its settings (``config.json`` of a model folder).

    Parameters
    ----------
    model
        The model folder (``model.onnx`` + ``config.json``) or an ``.onnx`` file.
    threads
        onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, model: str | os.PathLike[str], *, threads: int | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        path = Path(model)
        onnx_path = path / "model.onnx" if path.is_dir() else path
        if not onnx_path.is_file():
            raise OptionError(
                f"{onnx_path}: no model file. Fix: pass the folder written by "
                "`camcensus detect train --out MODEL_DIR`"
            )
        cfg_path = onnx_path.parent / "config.json"
        self.config: dict[str, Any] = (
            json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
        )
        self.model_id = str(self.config.get("model_id", onnx_path.parent.name or "detector"))
        self.types: tuple[str, ...] = tuple(
            self.config.get("types", ("dome", "directed", "unknown"))
        )
        self.stride = int(self.config.get("stride", 4))
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), opts, providers=["CPUExecutionProvider"]
        )
        self.outputs = [o.name for o in self.session.get_outputs()]

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on ``N × H × W × 3`` images (uint8 or float in [0, 255])."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise OptionError(f"images have shape {images.shape}; expected N × H × W × 3")
        if images.shape[1] % self.stride or images.shape[2] % self.stride:
            raise OptionError(
                f"crops of {images.shape[2]} × {images.shape[1]} px: width and height must be "
                f"multiples of {self.stride}"
            )
        x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
        return dict(zip(self.outputs, self.session.run(None, {"images": x}), strict=True))


def load_detector(model: str | os.PathLike[str], *, threads: int | None = None) -> Detector:
    """Return the :class:`Detector` of a model folder (or ``.onnx`` file)."""
    return Detector(model, threads=threads)


def decode_peaks(
    outputs: dict[str, np.ndarray],
    *,
    stride: int = 4,
    score_min: float = 0.1,
    top_k: int = 100,
    types: Sequence[str] = ("dome", "directed", "unknown"),
) -> pd.DataFrame:
    """Return the heatmap peaks of a batch as boxes in crop pixels.

    A peak is a cell whose score equals its 3 × 3 maximum (``heatmap_max``; computed here when
    absent) and is at least ``score_min``; at most ``top_k`` per image, highest first.

    Returns
    -------
    pandas.DataFrame
        ``image`` (index in the batch), ``x``, ``y`` (box centre, continuous crop pixels),
        ``w``, ``h``, ``score``, ``category`` (argmax of the type head), ``type_score``.
    """
    heat = outputs["heatmap"][:, 0]
    hmax = outputs.get("heatmap_max")
    if hmax is None:
        padded = np.pad(heat, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
        hmax = np.max(
            [
                padded[:, i : i + heat.shape[1], j : j + heat.shape[2]]
                for i in range(3)
                for j in range(3)
            ],
            axis=0,
        )[:, None]
    peak = (heat >= hmax[:, 0]) & (heat >= score_min)
    rows: list[pd.DataFrame] = []
    for b in range(heat.shape[0]):
        iy, ix = np.nonzero(peak[b])
        if len(iy) == 0:
            continue
        s = heat[b, iy, ix]
        order = np.argsort(-s, kind="stable")[:top_k]
        iy, ix, s = iy[order], ix[order], s[order]
        off = outputs["offset"][b][:, iy, ix]
        size = np.exp(np.clip(outputs["size"][b][:, iy, ix], -3.0, 7.0))
        logits = outputs["type"][b][:, iy, ix]
        prob = np.exp(logits - logits.max(axis=0))
        prob /= prob.sum(axis=0)
        k = prob.argmax(axis=0)
        rows.append(
            pd.DataFrame(
                {
                    "image": b,
                    "x": (ix + off[0]) * stride,
                    "y": (iy + off[1]) * stride,
                    "w": size[0],
                    "h": size[1],
                    "score": s.astype(float),
                    "category": [types[int(i)] for i in k],
                    "type_score": prob[k, np.arange(len(k))].astype(float),
                }
            )
        )
    cols = ["image", "x", "y", "w", "h", "score", "category", "type_score"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def unit_vectors(heading_deg: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """Return the rays as ``n × 3`` unit vectors (x east, y north, z up)."""
    h = np.radians(np.asarray(heading_deg, dtype=float))
    p = np.radians(np.asarray(pitch_deg, dtype=float))
    return np.stack([np.cos(p) * np.sin(h), np.cos(p) * np.cos(h), np.sin(p)], axis=-1)


def angular_distance_deg(
    h1: np.ndarray | float, p1: np.ndarray | float, h2: np.ndarray | float, p2: np.ndarray | float
) -> np.ndarray:
    """Return the angle (degrees) between rays, broadcast; exact across the 0°/360° seam."""
    a = unit_vectors(np.asarray(h1), np.asarray(p1))
    b = unit_vectors(np.asarray(h2), np.asarray(p2))
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    out: np.ndarray = np.degrees(np.arctan2(cross, dot))
    return out


def nms_rays(
    heading_deg: np.ndarray,
    pitch_deg: np.ndarray,
    score: np.ndarray,
    *,
    size_deg: np.ndarray | None = None,
    min_radius_deg: float = 0.75,
    size_factor: float = 1.0,
) -> np.ndarray:
    """Return the indices kept by greedy non-maximum suppression in ray space.

    Detections are visited by decreasing score; each kept one suppresses every other within
    ``max(min_radius_deg, size_factor * size_deg)`` degrees of it (its own angular size), the
    angle measured between unit vectors (no seam at 0°/360°).
    """
    n = len(score)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    vec = unit_vectors(np.asarray(heading_deg), np.asarray(pitch_deg))
    radius = np.full(n, float(min_radius_deg))
    if size_deg is not None:
        radius = np.maximum(radius, size_factor * np.asarray(size_deg, dtype=float))
    cos_r = np.cos(np.radians(radius))
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    alive = np.ones(n, dtype=bool)
    keep: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(int(i))
        near = vec @ vec[i] >= cos_r[i]
        alive &= ~near
    return np.array(keep, dtype=np.int64)


def _angular_size(peaks: pd.DataFrame, view: CropView) -> np.ndarray:
    kw = {
        "heading_deg": view.heading_deg,
        "pitch_deg": view.pitch_deg,
        "fov_deg": view.fov_deg,
        "size": (view.width, view.height),
    }
    x, y = peaks["x"].to_numpy(float), peaks["y"].to_numpy(float)
    w, h = peaks["w"].to_numpy(float), peaks["h"].to_numpy(float)
    hl, pl = pixel_to_ray(x - w / 2, y, **kw)  # type: ignore[arg-type]
    hr, pr = pixel_to_ray(x + w / 2, y, **kw)  # type: ignore[arg-type]
    ht, pt = pixel_to_ray(x, y - h / 2, **kw)  # type: ignore[arg-type]
    hb, pb = pixel_to_ray(x, y + h / 2, **kw)  # type: ignore[arg-type]
    wide = angular_distance_deg(hl, pl, hr, pr)
    tall = angular_distance_deg(ht, pt, hb, pb)
    out: np.ndarray = np.sqrt(wide * tall)
    return out


def detect_panorama(
    detector: Detector,
    equirect: np.ndarray,
    *,
    panorama_id: str,
    panorama_heading_deg: float = 0.0,
    views: Sequence[CropView] | None = None,
    batch_size: int = 8,
    score_min: float = 0.1,
    nms_min_deg: float = 0.75,
) -> pd.DataFrame:
    """Detect cameras in one equirectangular panorama; return :data:`DETECTION_COLUMNS` rows.

    Parameters
    ----------
    detector
        :func:`load_detector`.
    equirect
        ``H × W × 3`` uint8 image, 2:1.
    panorama_id, panorama_heading_deg
        The panorama's id and the true-north bearing of its centre column.
    views
        Crops to run (default: the model's tiling, ``tile_views`` with its ``crop_fov_deg``).
    batch_size
        Crops per onnxruntime call.
    score_min
        Lowest heatmap score kept (before suppression).
    nms_min_deg
        Smallest suppression radius (degrees) of :func:`nms_rays`.
    """
    if equirect.ndim != 3 or equirect.shape[2] != 3:
        raise OptionError(f"panorama {panorama_id}: shape {equirect.shape}; expected H × W × 3")
    if views is None:
        cfg = detector.config
        views = tile_views(
            fov_deg=float(cfg.get("crop_fov_deg", 60.0)), size=int(cfg.get("crop_px", 640))
        )
    frames: list[pd.DataFrame] = []
    for start in range(0, len(views), max(1, batch_size)):
        chunk = list(views[start : start + batch_size])
        crops = np.stack(
            [
                perspective_crop(
                    equirect,
                    heading_deg=v.heading_deg,
                    pitch_deg=v.pitch_deg,
                    fov_deg=v.fov_deg,
                    size=(v.width, v.height),
                    panorama_heading_deg=panorama_heading_deg,
                )
                for v in chunk
            ]
        )
        peaks = decode_peaks(
            detector.predict(crops),
            stride=detector.stride,
            score_min=score_min,
            types=detector.types,
        )
        image_of = peaks["image"].to_numpy(int)
        for b in np.unique(image_of):
            g = peaks[image_of == b]
            v = chunk[int(b)]
            h, p = pixel_to_ray(
                g["x"].to_numpy(float),
                g["y"].to_numpy(float),
                heading_deg=v.heading_deg,
                pitch_deg=v.pitch_deg,
                fov_deg=v.fov_deg,
                size=(v.width, v.height),
            )
            frames.append(
                pd.DataFrame(
                    {
                        "panorama_id": str(panorama_id),
                        "heading_deg": h,
                        "pitch_deg": p,
                        "fov_deg": v.fov_deg,
                        "score": g["score"].to_numpy(float),
                        "camera_type": [_TYPE_OF_CATEGORY.get(c, "unknown") for c in g["category"]],
                        "type_score": g["type_score"].to_numpy(float),
                        "attachment": "unknown",
                        "machine": True,
                        "source": "machine",
                        "decoder_id": detector.model_id,
                        "size_deg": _angular_size(g, v),
                        "width_px": g["w"].to_numpy(float),
                        "height_px": g["h"].to_numpy(float),
                        "crop_heading_deg": v.heading_deg,
                        "crop_pitch_deg": v.pitch_deg,
                        "x_px": g["x"].to_numpy(float),
                        "y_px": g["y"].to_numpy(float),
                    },
                    columns=list(DETECTION_COLUMNS),
                )
            )
    if not frames:
        return pd.DataFrame(columns=list(DETECTION_COLUMNS))
    dets = pd.concat(frames, ignore_index=True)
    keep = nms_rays(
        dets["heading_deg"].to_numpy(float),
        dets["pitch_deg"].to_numpy(float),
        dets["score"].to_numpy(float),
        size_deg=dets["size_deg"].to_numpy(float),
        min_radius_deg=nms_min_deg,
    )
    return dets.iloc[keep].reset_index(drop=True)


def read_panorama_list(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Return the panoramas to run: ``panorama_id``, ``path``, ``heading_deg``.

    ``path`` is a folder of equirectangular images (``.jpg``, ``.png``, ...; the file stem is
    the panorama id, heading 0 unless the folder holds a ``panoramas.csv``) or a CSV with
    ``panorama_id``, ``path`` (relative to the CSV) and optionally ``heading_deg`` (the
    true-north bearing of the image centre column, ``panoramas.heading_deg``).

    Raises
    ------
    InputError
        When the CSV lacks a column or names a missing image.
    """
    src = Path(path)
    if src.is_dir():
        listing = src / "panoramas.csv"
        if listing.is_file():
            return read_panorama_list(listing)
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise OptionError(f"{src}: no panorama images ({', '.join(_IMAGE_SUFFIXES)})")
        return pd.DataFrame(
            {
                "panorama_id": [p.stem for p in files],
                "path": [str(p) for p in files],
                "heading_deg": 0.0,
            }
        )
    if not src.is_file():
        raise OptionError(f"{src}: no such folder or CSV")
    table = pd.read_csv(src, dtype={"panorama_id": str, "path": str})
    missing = [c for c in ("panorama_id", "path") if c not in table.columns]
    if missing:
        raise InputError(
            [
                Problem(
                    str(src),
                    None,
                    c,
                    "no such column",
                    "panorama_id, path[, heading_deg]",
                    "add the column",
                )
                for c in missing
            ]
        )
    if "heading_deg" not in table.columns:
        table["heading_deg"] = 0.0
    table["path"] = [
        str((src.parent / p) if not Path(p).is_absolute() else Path(p)) for p in table["path"]
    ]
    problems = [
        Problem(str(src), i + 2, "path", p, "an existing image file", "fix the path")
        for i, p in enumerate(table["path"])
        if not Path(p).is_file()
    ]
    if problems:
        raise InputError(problems)
    return table[["panorama_id", "path", "heading_deg"]]


def detect_panoramas(
    detector: Detector,
    panoramas: pd.DataFrame | Iterable[tuple[str, np.ndarray, float]],
    *,
    batch_size: int = 8,
    score_min: float = 0.1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Detect cameras in many panoramas: a :func:`read_panorama_list` table or
    ``(panorama_id, image, heading_deg)`` items; return one detections table."""
    from PIL import Image

    if isinstance(panoramas, pd.DataFrame):
        rows = panoramas.to_dict("records")
        total: int | None = len(rows)

        def items() -> Iterable[tuple[str, np.ndarray, float]]:
            for r in rows:
                with Image.open(str(r["path"])) as im:
                    arr = np.asarray(im.convert("RGB"))
                yield str(r["panorama_id"]), arr, float(r["heading_deg"])

        source = items()
    else:
        total, source = None, iter(panoramas)
    frames = []
    for i, (pid, image, heading) in enumerate(source):
        if progress is not None:
            of = f"/{total}" if total is not None else ""
            progress(f"detecting: panorama {i + 1}{of}")
        frames.append(
            detect_panorama(
                detector,
                image,
                panorama_id=pid,
                panorama_heading_deg=heading,
                batch_size=batch_size,
                score_min=score_min,
            )
        )
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(DETECTION_COLUMNS))
    return pd.concat(frames, ignore_index=True)
