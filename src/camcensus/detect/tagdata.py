"""Training data from a platform project: volunteers' agreed tags on the stored panoramas.

:func:`project_training_data` reads a platform database (read only): the counted tags
(:func:`camcensus.locate.tags_table`: volunteers' submissions that count toward the census),
how many volunteers answered each panorama (answers "no camera" included) and where each
panorama's image is (``panoramas.image_uri``, opened through
:class:`camcensus.imagery.store.ImageStore`, so ``synthetic:`` panoramas render as the platform
serves them).

:func:`tag_patches` turns them into training patches for :func:`camcensus.detect.train.
train_detector`, with the label rules of :mod:`camcensus.detect.labels`:

- cameras are :func:`~camcensus.detect.labels.agreed_cameras` candidates: agreed by at least
  ``min_support`` distinct volunteers (2 of 3) -> box labels (size prior), others -> ignore
  regions; machine tags never count;
- only panoramas answered by at least ``min_support`` volunteers give patches (one
  volunteer's silence is no evidence); the others are counted in the ledger;
- ``per_camera`` jittered patches around each agreed camera, ``n_random`` random views of the
  pitch band per panorama (negatives unless they show a camera or candidate).

Cameras every volunteer missed stay in the negatives: label noise the model card states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import Ledger, OptionError
from camcensus.detect.crops import tile_views
from camcensus.detect.labels import CAMERA_COLUMNS, agreed_cameras
from camcensus.detect.train import CROP_FOV_DEG, CROP_SIZE, DEFAULT_CHANNELS

__all__ = [
    "ProjectData",
    "image_loader",
    "mine_tag_negatives",
    "project_training_data",
    "tag_patches",
    "train_from_tags",
]

Progress = Callable[[str], None]
_PITCH_BAND = (-15.0, 60.0)


@dataclass(frozen=True)
class ProjectData:
    """A project's training inputs.

    ``tags``: :func:`camcensus.locate.tags_table` rows (counted tags). ``panoramas``:
    ``panorama_id``, ``heading_deg``, ``image_uri``, ``answered`` (distinct volunteers with a
    counted answer). ``project``: the project's name (None: every project).
    """

    tags: pd.DataFrame
    panoramas: pd.DataFrame
    project: str | None


def project_training_data(
    engine: Any, *, project: str | None = None, ledger: Ledger | None = None
) -> ProjectData:
    """Read a platform project's counted tags, answers per panorama and image uris (read only).

    Parameters
    ----------
    engine
        A platform database (:func:`camcensus.db.connect`).
    project
        The project's name (default: every project of the database).
    ledger
        Counts the submissions left out (not counted toward the census) by reason.
    """
    from sqlalchemy import select

    from camcensus.db.engine import session_factory
    from camcensus.db.export import _check_database, _counted, _load, _retired
    from camcensus.db.models import Panorama
    from camcensus.locate import tags_table

    _check_database(engine)
    tags = tags_table(engine, project=project, ledger=ledger)
    tables = _load(engine, project)
    pano = tables.panoramas
    gold = {str(p) for p, g in zip(pano["panorama_id"], pano["gold"], strict=True) if bool(g)}
    placed = {str(p) for p in pano["panorama_id"]}
    subs, _excluded = _counted(tables.submissions, gold, placed, _retired(pano, tables.projects))
    answered = subs.groupby("panorama_id")["decoder_id"].nunique()
    ids = [str(p) for p in pano["panorama_id"] if str(p) not in gold]
    with session_factory(engine, readonly=True)() as session, session.begin():
        rows = session.execute(
            select(Panorama.panorama_id, Panorama.image_uri).where(Panorama.panorama_id.in_(ids))
        ).all()
    uri = {str(p): str(u) for p, u in rows}
    heading = dict(zip(pano["panorama_id"].astype(str), pano["heading_deg"], strict=True))
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "heading_deg": [float(heading[p]) for p in ids],
            "image_uri": [uri.get(p, "") for p in ids],
            "answered": [int(answered.get(p, 0)) for p in ids],
        }
    )
    return ProjectData(tags=tags, panoramas=frame, project=project)


def image_loader(media_root: str | Path) -> Callable[[str], np.ndarray]:
    """Return ``load(image_uri) -> RGB array`` reading through the platform's image store."""
    from PIL import Image

    from camcensus.imagery.store import ImageStore

    store = ImageStore(media_root)

    def load(uri: str) -> np.ndarray:
        with Image.open(store.materialize(uri)) as im:
            return np.asarray(im.convert("RGB"))

    return load


def tag_patches(
    data: ProjectData,
    load_image: Callable[[str], np.ndarray],
    *,
    patch: int = 128,
    per_camera: int = 3,
    n_random: int = 8,
    min_support: int = 2,
    seed: int = 0,
    crop_fov_deg: float = CROP_FOV_DEG,
    ledger: Ledger | None = None,
    progress: Progress | None = None,
) -> tuple[Any, pd.DataFrame]:
    """Cut labelled training patches from a project's panoramas (module text for the rules).

    Patches take the pixel scale of the 640-px inference crops of ``crop_fov_deg``.

    Returns
    -------
    tuple
        :class:`camcensus.detect.train.Patches` and the candidate cameras
        (:data:`~camcensus.detect.labels.CAMERA_COLUMNS`) of the panoramas used.
    """
    from camcensus.detect.train import Patches, _cut

    if per_camera < 0 or n_random < 0 or patch < 16:
        raise OptionError(
            f"per_camera = {per_camera}, n_random = {n_random}, patch = {patch}: expected "
            "counts >= 0 and a patch of at least 16 px"
        )
    pano = data.panoramas
    use = pano[pano["answered"].to_numpy(int) >= min_support]
    if ledger is not None:
        ledger.exclude(
            "detect train",
            f"panoramas answered by fewer than {min_support} volunteers (no evidence)",
            int(len(pano) - len(use)),
        )
    if use.empty:
        raise OptionError(
            f"no panorama of the project is answered by {min_support} or more volunteers: "
            "nothing to learn from yet; let volunteers tag more, or lower min_support"
        )
    tags = data.tags[data.tags["panorama_id"].astype(str).isin(set(use["panorama_id"]))]
    cams = (
        agreed_cameras(tags, min_support=min_support, ledger=ledger)
        if len(tags)
        else pd.DataFrame(columns=list(CAMERA_COLUMNS))
    )
    by_pano: Mapping[str, pd.DataFrame] = {
        str(k): g for k, g in cams.groupby("panorama_id", sort=False)
    }
    empty = pd.DataFrame(columns=list(CAMERA_COLUMNS))
    rng = np.random.default_rng([seed, 41])
    images: list[np.ndarray] = []
    anns: list[pd.DataFrame] = []
    kinds: list[str] = []
    used: list[str] = []
    rows = list(use[["panorama_id", "heading_deg", "image_uri"]].itertuples(index=False))
    for i, (pid, heading, uri) in enumerate(rows):
        if progress is not None:
            progress(f"training patches: panorama {i + 1}/{len(rows)}")
        pid = str(pid)
        image = load_image(str(uri))
        pc = by_pano.get(pid, empty)
        centres: list[tuple[float, float, str]] = []
        agreed = pc[pc["agreed"].astype(bool)] if len(pc) else pc
        for h, p in agreed[["heading_deg", "pitch_deg"]].itertuples(index=False):
            centres += [(float(h), float(p), "camera")] * per_camera
        centres += [
            (float(rng.uniform(0, 360)), float(rng.uniform(*_PITCH_BAND)), "random")
            for _ in range(n_random)
        ]
        source = SimpleNamespace(image=image, heading_deg=float(heading))
        _cut(pid, source, pc, centres, patch, rng, images, anns, kinds, crop_fov_deg)
        used.append(pid)
    cols = ["patch", "x", "y", "w", "h", "category", "iscrowd"]
    patches = Patches(
        images=np.stack(images) if images else np.zeros((0, patch, patch, 3), np.uint8),
        annotations=pd.concat(anns, ignore_index=True) if anns else pd.DataFrame(columns=cols),
        kinds=np.array(kinds),
        panoramas=tuple(used),
    )
    return patches, cams


def _candidate_truth(cams: pd.DataFrame) -> pd.DataFrame:
    """Candidates as a truth table for matching (``size_deg`` from their prior rectangle)."""
    wide = cams["span_deg"].to_numpy(float) * np.cos(np.radians(cams["pitch_deg"].to_numpy(float)))
    tall = cams["top_deg"].to_numpy(float) - cams["bottom_deg"].to_numpy(float)
    return pd.DataFrame(
        {
            "panorama_id": cams["panorama_id"].astype(str).to_numpy(),
            "heading_deg": cams["heading_deg"].to_numpy(float),
            "pitch_deg": cams["pitch_deg"].to_numpy(float),
            "size_deg": np.sqrt(np.maximum(wide * tall, 0.0)),
        }
    )


def mine_tag_negatives(
    params: Mapping[str, tuple[np.ndarray, np.ndarray]],
    data: ProjectData,
    load_image: Callable[[str], np.ndarray],
    cams: pd.DataFrame,
    *,
    used: tuple[str, ...],
    patch: int = 128,
    score_min: float = 0.2,
    per_panorama: int = 12,
    seed: int = 0,
    crop_fov_deg: float = CROP_FOV_DEG,
    progress: Progress | None = None,
) -> Any:
    """Hard negatives on a project's panoramas: the model's detections far from every tag.

    The model runs on the tiling of ``crop_fov_deg`` crops; the patches take their pixel scale.

    A detection within ``max(1.5°, 2 ×`` the candidate's prior size) of any candidate (agreed
    or not: a tag there is no evidence of absence) is not a false positive; the others, the
    ``per_panorama`` strongest on each panorama of ``used``, give two jittered patches each.
    """
    import tempfile

    from camcensus.detect.evaluate import match_detections
    from camcensus.detect.infer import detect_panorama, load_detector
    from camcensus.detect.onnx_export import write_onnx
    from camcensus.detect.train import Patches, _cut

    rng = np.random.default_rng([seed, 43])
    views = tile_views(fov_deg=crop_fov_deg, size=CROP_SIZE)
    truth = (
        _candidate_truth(cams)
        if len(cams)
        else pd.DataFrame(columns=["panorama_id", "heading_deg", "pitch_deg", "size_deg"])
    )
    by_pano = {str(k): g for k, g in cams.groupby("panorama_id", sort=False)}
    empty = pd.DataFrame(columns=list(CAMERA_COLUMNS))
    pids = data.panoramas["panorama_id"].astype(str)
    head_of = dict(zip(pids, data.panoramas["heading_deg"].to_numpy(float), strict=True))
    uri_of = dict(zip(pids, data.panoramas["image_uri"].astype(str), strict=True))
    images: list[np.ndarray] = []
    anns: list[pd.DataFrame] = []
    kinds: list[str] = []
    with tempfile.TemporaryDirectory(prefix="camcensus-mine-") as tmp:
        write_onnx(params, Path(tmp) / "model.onnx")
        detector = load_detector(Path(tmp) / "model.onnx")
        for i, pid in enumerate(used):
            if progress is not None:
                progress(f"hard negatives: panorama {i + 1}/{len(used)}")
            heading = float(head_of[pid])
            image = load_image(uri_of[pid])
            dets = detect_panorama(
                detector,
                image,
                panorama_id=pid,
                panorama_heading_deg=heading,
                views=views,
                score_min=score_min,
            )
            if dets.empty:
                continue
            det_truth, _ = match_detections(dets, truth, tol_factor=2.0, min_tol_deg=1.5)
            false = dets[det_truth < 0].sort_values("score", ascending=False).iloc[:per_panorama]
            centres = [
                (float(h), float(p), "hard_negative")
                for h, p in zip(false["heading_deg"], false["pitch_deg"], strict=True)
                for _ in range(2)
            ]
            if centres:
                source = SimpleNamespace(image=image, heading_deg=heading)
                pc = by_pano.get(pid, empty)
                _cut(pid, source, pc, centres, patch, rng, images, anns, kinds, crop_fov_deg)
    cols = ["patch", "x", "y", "w", "h", "category", "iscrowd"]
    return Patches(
        images=np.stack(images) if images else np.zeros((0, patch, patch, 3), np.uint8),
        annotations=pd.concat(anns, ignore_index=True) if anns else pd.DataFrame(columns=cols),
        kinds=np.array(kinds),
        panoramas=(),
    )


def train_from_tags(
    data: ProjectData,
    load_image: Callable[[str], np.ndarray],
    *,
    epochs: int = 30,
    channels: int = DEFAULT_CHANNELS,
    seed: int = 0,
    mine: bool = True,
    min_support: int = 2,
    crop_fov_deg: float = CROP_FOV_DEG,
    ledger: Ledger | None = None,
    progress: Progress | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Train the detector on a project's agreed tags (the synthetic trainer's schedule).

    ``epochs`` on :func:`tag_patches`, then (``mine``) one round of
    :func:`mine_tag_negatives` and ``max(1, epochs // 2)`` more epochs on everything.
    ``crop_fov_deg``: the inference crops' field of view (recorded in
    ``config["crop_fov_deg"]``, which ``detect run`` tiles with).

    Returns
    -------
    tuple
        :class:`~camcensus.detect.train.TrainResult`, the patches used and a description of
        the data for the model card (``project``, panoramas used, agreed cameras, ...).
    """
    import time

    from camcensus.detect.train import TrainResult, _concat, train_detector

    patches, cams = tag_patches(
        data,
        load_image,
        min_support=min_support,
        seed=seed,
        crop_fov_deg=crop_fov_deg,
        ledger=ledger,
        progress=progress,
    )
    agreed = int(cams["agreed"].astype(bool).sum()) if len(cams) else 0
    info: dict[str, Any] = {
        "tags_from": "platform project",
        "project": data.project,
        "panoramas": len(patches.panoramas),
        "panoramas_left_out": int(len(data.panoramas) - len(patches.panoramas)),
        "agreed_cameras": agreed,
        "unagreed_candidates": int(len(cams) - agreed),
        "min_support": min_support,
        "seed": seed,
        "panorama_ids": list(patches.panoramas),
    }
    result = train_detector(patches, epochs=epochs, channels=channels, seed=seed, progress=progress)
    result.config["crop_fov_deg"] = crop_fov_deg
    if not mine:
        return result, patches, info
    start = time.perf_counter()
    hard = mine_tag_negatives(
        result.params, data, load_image, cams, used=patches.panoramas, seed=seed,
        crop_fov_deg=crop_fov_deg, progress=progress,
    )  # fmt: skip
    mined = time.perf_counter() - start
    if len(hard.images) == 0:
        return result, patches, info
    both = _concat(patches, hard)
    more = max(1, epochs // 2)
    second = train_detector(
        both, epochs=more, learning_rate=1e-3, seed=seed + 1, init=result.params,
        progress=progress,
    )  # fmt: skip
    config = dict(result.config)
    config.update(
        {
            "hard_negative_patches": len(hard.images),
            "second_round_epochs": more,
            "patches": len(both.images),
            "mining_seconds": round(mined, 1),
        }
    )
    total = result.seconds + mined + second.seconds
    out = TrainResult(second.params, result.history + second.history, total, config)
    return out, both, info
