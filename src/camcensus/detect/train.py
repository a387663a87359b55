"""Train the camera detector on synthetic panoramas (JAX on CPU, ``camcensus[train]``).

Data (:func:`synthetic_patches`): panoramas of :func:`camcensus.simulate.simulate_city`
rendered by :func:`camcensus.simulate.render.render_panorama`, cut into small perspective
patches (:func:`camcensus.detect.crops.perspective_crop`) at the pixel scale of the inference
crops (640 px, 60° fov: focal length 554 px) times a random zoom in ``[0.8, 1.25]``:

- a few patches around each drawn camera (jittered so it is not always central),
- patches around look-alikes (street lamps, wall lamps, signal heads, cell boxes): hard negatives,
- random patches of the pitch band -15°..60° (mostly negatives).

Boxes come from the rendered truth through :func:`camcensus.detect.labels.cameras_from_truth` and
:func:`camcensus.detect.labels.label_crops` (a camera cut by the patch edge is an ignore region:
no loss around it). Photometric jitter (brightness, contrast, noise, blur) on every patch.

Training (:func:`train_detector`): Adam on :func:`camcensus.detect.model.loss_fn`, seeded
(initial weights, patch order). The network is fully convolutional: trained on patches, it runs
on 640 × 640 crops.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import OptionError
from camcensus.detect.crops import focal_px, perspective_crop
from camcensus.detect.labels import CROP_COLUMNS, cameras_from_truth, label_crops
from camcensus.detect.model import STRIDE, TYPES, init_params, loss_fn
from camcensus.io.formats import json_safe

__all__ = [
    "CROP_FOV_DEG",
    "CROP_SIZE",
    "DEFAULT_CHANNELS",
    "LOOKALIKES",
    "MODEL_FILES",
    "Patches",
    "TrainResult",
    "make_targets",
    "mine_hard_negatives",
    "model_card",
    "synthetic_panoramas",
    "synthetic_patches",
    "train_detector",
    "train_synthetic",
    "write_model_dir",
]

#: Backbone channels of the default model: 16 (docs/detect.md "Width": same held-out accuracy
#: as 24 on cameras >= 8 px, about twice the crops/s).
DEFAULT_CHANNELS = 16
#: Inference crops: 640 × 640 px at 60° horizontal fov (the tiling of docs/detect.md).
CROP_SIZE = 640
CROP_FOV_DEG = 60.0
#: The files of a model folder (:func:`write_model_dir`).
MODEL_FILES = ("model.onnx", "config.json", "model_card.md")
#: Object kinds of the renderer that look like cameras (hard negatives).
LOOKALIKES = ("lamp", "signal", "cell")
_PITCH_BAND = (-15.0, 60.0)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Patches:
    """Training patches: ``images`` (N × P × P × 3 uint8) and their annotations.

    ``annotations``: one row per box (``patch``, ``x``, ``y``, ``w``, ``h``, ``category``,
    ``iscrowd``), COCO pixels of the patch; ``kinds``: why each patch was cut (``camera``,
    ``lookalike``, ``random``); ``panoramas``: the panorama ids used.
    """

    images: np.ndarray
    annotations: pd.DataFrame
    kinds: np.ndarray
    panoramas: tuple[str, ...]


@dataclass
class TrainResult:
    """Trained parameters (numpy), the loss per epoch, seconds spent and the settings used."""

    params: dict[str, tuple[np.ndarray, np.ndarray]]
    history: list[dict[str, float]]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


def synthetic_panoramas(
    n: int, *, seed: int, camera_share: float = 0.75
) -> Iterator[tuple[str, Any]]:
    """Yield ``(panorama_id, RenderedPanorama)`` for ``n`` panoramas of ``simulate_city(seed)``.

    ``camera_share`` of them hold at least one camera (the rest none), drawn at random with
    ``seed``; one panorama is rendered at a time (a 4096 × 2048 image is 25 MB).
    """
    from camcensus.simulate import simulate_city
    from camcensus.simulate.render import render_panorama
    from camcensus.simulate.scene import panorama_scene

    if n < 1:
        raise OptionError(f"n = {n}: expected at least one panorama, e.g. 200")
    city = simulate_city(seed)
    truth = city.truth
    rng = np.random.default_rng([seed, 23])
    ids = truth["PanoramaId"].astype(str).to_numpy()
    with_cam = rng.permutation(ids[truth["n_cameras"].to_numpy() > 0])
    without = rng.permutation(ids[truth["n_cameras"].to_numpy() == 0])
    n_cam = min(len(with_cam), round(n * camera_share))
    n_none = min(len(without), n - n_cam)
    chosen = list(with_cam[:n_cam]) + list(without[:n_none])
    if len(chosen) < n:
        raise OptionError(
            f"n = {n}: the synthetic city of seed {seed} has {len(ids)} panoramas "
            f"({len(with_cam)} with cameras); ask for fewer"
        )
    for pid in rng.permutation(np.array(chosen, dtype=object)):
        yield str(pid), render_panorama(panorama_scene(city, str(pid), seed=seed))


def _drawn_cameras(pid: str, rendered: Any) -> pd.DataFrame:
    truth = rendered.truth
    return cameras_from_truth(
        truth[truth["drawn"].astype(bool)],
        panorama_id=pid,
        panorama_heading_deg=rendered.heading_deg,
        width=rendered.width,
        height=rendered.height,
    )


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.3:
        # A 3-tap blur along both axes (motion / focus blur of real imagery).
        x = (np.roll(x, 1, 0) + 2 * x + np.roll(x, -1, 0)) / 4
        x = (np.roll(x, 1, 1) + 2 * x + np.roll(x, -1, 1)) / 4
    gain = rng.uniform(0.75, 1.25)
    bias = rng.uniform(-20, 20)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.8, 1.2) + mean * gain + bias
    x += rng.normal(0.0, rng.uniform(0.0, 4.0), x.shape)
    out: np.ndarray = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return out


def synthetic_patches(
    n_panoramas: int,
    *,
    seed: int,
    patch: int = 128,
    per_camera: int = 3,
    per_lookalike: int = 1,
    max_lookalikes: int = 6,
    n_random: int = 8,
    crop_fov_deg: float = CROP_FOV_DEG,
    progress: Progress | None = None,
) -> Patches:
    """Cut training patches from ``n_panoramas`` synthetic panoramas (see the module text).

    Parameters
    ----------
    n_panoramas
        Panoramas of ``simulate_city(seed)`` (75% with cameras).
    seed
        Seed of the city, the choice of panoramas, jitter, zoom and photometric noise.
    patch
        Patch size in pixels (a multiple of 4).
    per_camera, per_lookalike, max_lookalikes, n_random
        Patches per drawn camera, per look-alike (at most ``max_lookalikes`` look-alikes per
        panorama) and random patches per panorama.
    crop_fov_deg
        Field of view of the 640-px inference crops whose pixel scale the patches take (a
        narrower one gives each camera more pixels; the model folder records it).
    progress
        Called with a short status line per panorama.
    """
    if patch % STRIDE or patch < 32:
        raise OptionError(f"patch = {patch}: expected a multiple of {STRIDE}, at least 32")
    rng = np.random.default_rng([seed, 29])
    images: list[np.ndarray] = []
    anns: list[pd.DataFrame] = []
    kinds: list[str] = []
    used: list[str] = []
    for i, (pid, rendered) in enumerate(synthetic_panoramas(n_panoramas, seed=seed)):
        if progress is not None:
            progress(f"training patches: panorama {i + 1}/{n_panoramas}")
        used.append(pid)
        cams = _drawn_cameras(pid, rendered)
        truth = rendered.truth
        look = truth[truth["drawn"].astype(bool) & truth["kind"].isin(LOOKALIKES)]
        if len(look) > max_lookalikes:
            look = look.iloc[rng.choice(len(look), max_lookalikes, replace=False)]
        centres: list[tuple[float, float, str]] = []
        for h, p in cams[["heading_deg", "pitch_deg"]].itertuples(index=False):
            centres += [(float(h), float(p), "camera")] * per_camera
        for h, p in look[["heading_deg", "pitch_deg"]].itertuples(index=False):
            centres += [(float(h), float(p), "lookalike")] * per_lookalike
        centres += [
            (float(rng.uniform(0, 360)), float(rng.uniform(*_PITCH_BAND)), "random")
            for _ in range(n_random)
        ]
        _cut(pid, rendered, cams, centres, patch, rng, images, anns, kinds, crop_fov_deg)
    cols = ["patch", "x", "y", "w", "h", "category", "iscrowd"]
    return Patches(
        images=np.stack(images) if images else np.zeros((0, patch, patch, 3), np.uint8),
        annotations=pd.concat(anns, ignore_index=True) if anns else pd.DataFrame(columns=cols),
        kinds=np.array(kinds),
        panoramas=tuple(used),
    )


def _cut(
    pid: str,
    rendered: Any,
    cams: pd.DataFrame,
    centres: list[tuple[float, float, str]],
    patch: int,
    rng: np.random.Generator,
    images: list[np.ndarray],
    anns: list[pd.DataFrame],
    kinds: list[str],
    crop_fov_deg: float = CROP_FOV_DEG,
) -> None:
    """Cut jittered, zoomed patches around ``centres`` and label them (appends in place).

    Patches take the pixel scale of ``CROP_SIZE``-px crops of ``crop_fov_deg``.
    """
    f_crop = focal_px(crop_fov_deg, CROP_SIZE)
    rows = []
    for h, p, kind in centres:
        f = f_crop * math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
        fov = math.degrees(2 * math.atan(patch / 2 / f))
        if kind != "random":
            # Jitter up to 40% of the patch (in degrees at this focal length).
            j = 0.4 * patch / 2 / f * 180 / math.pi
            h += rng.uniform(-j, j) / max(math.cos(math.radians(p)), 0.2)
            p = float(np.clip(p + rng.uniform(-j, j), -89, 89))
        rows.append((pid, h % 360.0, p, fov, patch, patch, kind))
    crops = pd.DataFrame(rows, columns=[*CROP_COLUMNS, "kind"])
    labels = label_crops(cams, crops[list(CROP_COLUMNS)])
    base = len(images)
    for hd, pt, fv, kind in zip(
        crops["heading_deg"].to_numpy(float),
        crops["pitch_deg"].to_numpy(float),
        crops["fov_deg"].to_numpy(float),
        crops["kind"].astype(str),
        strict=True,
    ):
        img = perspective_crop(
            rendered.image,
            heading_deg=float(hd),
            pitch_deg=float(pt),
            fov_deg=float(fv),
            size=patch,
            panorama_heading_deg=rendered.heading_deg,
        )
        images.append(_photometric(img, rng))
        kinds.append(kind)
    a = labels.annotations
    if len(a):
        anns.append(
            pd.DataFrame(
                {
                    "patch": a["image_id"].to_numpy(int) - 1 + base,
                    "x": a["x"].to_numpy(float),
                    "y": a["y"].to_numpy(float),
                    "w": a["w"].to_numpy(float),
                    "h": a["h"].to_numpy(float),
                    "category": a["category"].astype(str).to_numpy(),
                    "iscrowd": a["iscrowd"].to_numpy(int),
                }
            )
        )


def make_targets(annotations: pd.DataFrame, n: int, size: int) -> dict[str, np.ndarray]:
    """Return the stride-4 training targets of ``n`` patches of ``size`` pixels.

    ``heatmap``: a Gaussian per camera (sigma in cells: ``max(0.6, sqrt(w h) / 4 / 3)``), 1 at
    its centre cell; ``weight``: 0 on ignore regions (``iscrowd``; their box plus a cell);
    ``centre``: 1 at each camera's centre cell; ``size``: log width, log height (px);
    ``offset``: the centre's position within its cell; ``type``: index in
    :data:`~camcensus.detect.model.TYPES` (-1 elsewhere).
    """
    h = w = size // STRIDE
    heat = np.zeros((n, 1, h, w), np.float32)
    weight = np.ones((n, 1, h, w), np.float32)
    centre = np.zeros((n, 1, h, w), np.float32)
    box = np.zeros((n, 2, h, w), np.float32)
    offset = np.zeros((n, 2, h, w), np.float32)
    typ = np.full((n, h, w), -1, np.int32)
    gy, gx = np.mgrid[0:h, 0:w]
    pk = annotations["patch"].to_numpy(int) if len(annotations) else np.zeros(0, int)
    xs, ys = (annotations[c].to_numpy(float) for c in ("x", "y"))
    ws, hs = (annotations[c].to_numpy(float) for c in ("w", "h"))
    crowd = annotations["iscrowd"].to_numpy(int)
    cats = annotations["category"].astype(str).to_numpy()
    for i in range(len(annotations)):
        k, x, y, bw, bh = int(pk[i]), float(xs[i]), float(ys[i]), float(ws[i]), float(hs[i])
        if crowd[i]:
            c0, r0 = max(0, int(x // STRIDE) - 1), max(0, int(y // STRIDE) - 1)
            c1, r1 = min(w, int((x + bw) // STRIDE) + 2), min(h, int((y + bh) // STRIDE) + 2)
            weight[k, 0, r0:r1, c0:c1] = 0.0
            continue
        cx, cy = (x + bw / 2) / STRIDE, (y + bh / 2) / STRIDE
        ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
        sigma = max(0.6, math.sqrt(max(bw * bh, 1e-6)) / STRIDE / 3)
        g = np.exp(-((gx - ix) ** 2 + (gy - iy) ** 2) / (2 * sigma**2)).astype(np.float32)
        heat[k, 0] = np.maximum(heat[k, 0], g)
        heat[k, 0, iy, ix] = 1.0
        centre[k, 0, iy, ix] = 1.0
        box[k, :, iy, ix] = (math.log(max(bw, 0.5)), math.log(max(bh, 0.5)))
        offset[k, :, iy, ix] = (cx - ix, cy - iy)
        typ[k, iy, ix] = TYPES.index(cats[i]) if cats[i] in TYPES else -1
    return {
        "heatmap": heat,
        "weight": weight,
        "centre": centre,
        "size": box,
        "offset": offset,
        "type": typ,
    }


def train_detector(
    patches: Patches,
    *,
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    channels: int = DEFAULT_CHANNELS,
    seed: int = 0,
    init: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the detector on ``patches`` with Adam (cosine-decayed learning rate); seeded.

    Parameters
    ----------
    patches
        :func:`synthetic_patches` output.
    epochs, batch_size, learning_rate
        Passes over the patches, patches per step, peak Adam step size.
    channels
        Feature channels of the backbone (:func:`camcensus.detect.model.layers`).
    seed
        Seed of the initial weights and of the patch order.
    init
        Start from these parameters instead of a random initialisation.
    progress
        Called with a status line per epoch.

    Returns
    -------
    TrainResult
        Parameters as numpy float32 arrays, the mean loss per epoch, training seconds.
    """
    import jax
    import jax.numpy as jnp

    n = len(patches.images)
    if n == 0:
        raise OptionError("no training patches: render at least one panorama")
    if epochs < 1 or batch_size < 1:
        raise OptionError(f"epochs = {epochs}, batch_size = {batch_size}: expected >= 1")
    size = patches.images.shape[1]
    targets = make_targets(patches.annotations, n, size)
    images = np.ascontiguousarray(patches.images.transpose(0, 3, 1, 2)).astype(np.float32)
    params: Any = jax.tree_util.tree_map(
        jnp.asarray, dict(init) if init is not None else init_params(seed, channels=channels)
    )
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def step(params: Any, m: Any, v: Any, t: Any, batch: Any) -> Any:
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        lr = learning_rate * 0.5 * (1 + jnp.cos(jnp.pi * t / total))
        m = jax.tree_util.tree_map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        c1, c2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)
        params = jax.tree_util.tree_map(
            lambda p, a, b: p - lr * (a / c1) / (jnp.sqrt(b / c2) + eps), params, m, v
        )
        return params, m, v, loss, parts

    rng = np.random.default_rng([seed, 31])
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        sums: dict[str, float] = {}
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * batch_size : (s + 1) * batch_size])
            batch = {"images": images[idx], **{k: a[idx] for k, a in targets.items()}}
            params, m, v, loss, parts = step(params, m, v, jnp.float32(t), batch)
            t += 1
            sums["loss"] = sums.get("loss", 0.0) + float(loss)
            for k, val in parts.items():
                sums[k] = sums.get(k, 0.0) + float(val)
        row = {k: val / steps_per_epoch for k, val in sums.items()}
        row["epoch"] = float(epoch + 1)
        history.append(row)
        if progress is not None:
            progress(f"training: epoch {epoch + 1}/{epochs}, loss {row['loss']:.3f}")
    seconds = time.perf_counter() - start
    out = {
        k: (np.asarray(w, np.float32), np.asarray(b, np.float32)) for k, (w, b) in params.items()
    }
    config = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "channels": int(out["b1"][0].shape[0]),
        "seed": seed,
        "patches": n,
        "patch_px": size,
    }
    return TrainResult(params=out, history=history, seconds=seconds, config=config)


def _concat(a: Patches, b: Patches) -> Patches:
    ann_b = b.annotations.copy()
    ann_b["patch"] = ann_b["patch"].to_numpy(int) + len(a.images)
    return Patches(
        images=np.concatenate([a.images, b.images]),
        annotations=pd.concat([a.annotations, ann_b], ignore_index=True),
        kinds=np.concatenate([a.kinds, b.kinds]),
        panoramas=a.panoramas,
    )


def mine_hard_negatives(
    params: Mapping[str, tuple[np.ndarray, np.ndarray]],
    n_panoramas: int,
    *,
    seed: int,
    patch: int = 128,
    score_min: float = 0.2,
    per_panorama: int = 12,
    crop_fov_deg: float = CROP_FOV_DEG,
    progress: Progress | None = None,
) -> Patches:
    """Cut patches around the model's false positives on the training panoramas.

    Runs the current weights (as ONNX, onnxruntime) over each panorama's 640 px tiling at
    ``crop_fov_deg``,
    matches the detections to the drawn cameras (:func:`camcensus.detect.evaluate.
    match_detections`) and cuts two jittered patches around each of the ``per_panorama``
    highest-scoring unmatched detections (score >= ``score_min``); any camera inside such a
    patch is labelled as usual.
    """
    import tempfile

    from camcensus.detect.crops import tile_views
    from camcensus.detect.evaluate import match_detections, truth_cameras
    from camcensus.detect.infer import detect_panorama, load_detector
    from camcensus.detect.onnx_export import write_onnx

    rng = np.random.default_rng([seed, 37])
    images: list[np.ndarray] = []
    anns: list[pd.DataFrame] = []
    kinds: list[str] = []
    with tempfile.TemporaryDirectory(prefix="camcensus-mine-") as tmp:
        write_onnx(params, Path(tmp) / "model.onnx")
        detector = load_detector(Path(tmp) / "model.onnx")
        for i, (pid, rendered) in enumerate(synthetic_panoramas(n_panoramas, seed=seed)):
            if progress is not None:
                progress(f"hard negatives: panorama {i + 1}/{n_panoramas}")
            dets = detect_panorama(
                detector,
                rendered.image,
                panorama_id=pid,
                panorama_heading_deg=rendered.heading_deg,
                views=tile_views(fov_deg=crop_fov_deg, size=CROP_SIZE),
                score_min=score_min,
            )
            if dets.empty:
                continue
            det_truth, _ = match_detections(dets, truth_cameras(pid, rendered))
            false = dets[det_truth < 0].sort_values("score", ascending=False)
            false = false.iloc[:per_panorama]
            centres = [
                (float(h), float(p), "hard_negative")
                for h, p in zip(false["heading_deg"], false["pitch_deg"], strict=True)
                for _ in range(2)
            ]
            if centres:
                cams = _drawn_cameras(pid, rendered)
                _cut(pid, rendered, cams, centres, patch, rng, images, anns, kinds, crop_fov_deg)
    cols = ["patch", "x", "y", "w", "h", "category", "iscrowd"]
    return Patches(
        images=np.stack(images) if images else np.zeros((0, patch, patch, 3), np.uint8),
        annotations=pd.concat(anns, ignore_index=True) if anns else pd.DataFrame(columns=cols),
        kinds=np.array(kinds),
        panoramas=(),
    )


def train_synthetic(
    n_panoramas: int,
    *,
    epochs: int = 30,
    seed: int = 0,
    channels: int = DEFAULT_CHANNELS,
    mine: bool = True,
    crop_fov_deg: float = CROP_FOV_DEG,
    progress: Progress | None = None,
) -> tuple[TrainResult, Patches]:
    """Train on synthetic panoramas: patches, ``epochs`` of training, then (``mine``) one round
    of hard-negative mining and ``max(1, epochs // 2)`` more epochs on all patches.

    ``crop_fov_deg``: the inference crops' field of view (patches at their pixel scale, mining
    on their tiling; recorded in ``config["crop_fov_deg"]`` for :func:`write_model_dir`).
    Returns the result (``seconds`` counts both rounds and the mining) and the patches used.
    """
    patches = synthetic_patches(
        n_panoramas, seed=seed, crop_fov_deg=crop_fov_deg, progress=progress
    )
    result = train_detector(patches, epochs=epochs, channels=channels, seed=seed, progress=progress)
    result.config["crop_fov_deg"] = crop_fov_deg
    if not mine:
        return result, patches
    start = time.perf_counter()
    hard = mine_hard_negatives(
        result.params, n_panoramas, seed=seed, crop_fov_deg=crop_fov_deg, progress=progress
    )
    mined = time.perf_counter() - start
    if len(hard.images) == 0:
        return result, patches
    both = _concat(patches, hard)
    more = max(1, epochs // 2)
    second = train_detector(
        both,
        epochs=more,
        learning_rate=1e-3,
        seed=seed + 1,
        init=result.params,
        progress=progress,
    )
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
    return TrainResult(second.params, result.history + second.history, total, config), both


def write_model_dir(
    out: str | os.PathLike[str],
    result: TrainResult,
    *,
    data: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model.onnx``, ``config.json`` and ``model_card.md`` as the folder ``out``.

    The folder is replaced in one step (:func:`camcensus.report.replace_folder`); an existing
    ``out`` may hold only those files (:data:`MODEL_FILES`), anything else is refused
    (:class:`~camcensus._errors.OptionError`) rather than deleted.

    ``data`` describes the training data (e.g. ``{"synthetic_panoramas": 200, "seed": 0}``);
    ``metrics`` are held-out metrics (:func:`camcensus.detect.evaluate.detection_metrics`) for
    the card.
    """
    from camcensus.detect.model import HEADS, STRIDE, TYPES
    from camcensus.detect.onnx_export import OPSET, write_onnx
    from camcensus.report import replace_folder

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"{folder}: an existing file, not a folder; choose a model folder")
    foreign = (
        sorted(p.name for p in folder.iterdir() if p.name not in MODEL_FILES)
        if (folder.is_dir())
        else []
    )
    if foreign:
        raise OptionError(
            f"{folder}: holds {', '.join(foreign[:5])}, which a model folder does not (writing "
            "the model replaces the whole folder); choose a new or empty folder, or move them out"
        )
    model_id = (
        f"camcensus-centernet-c{result.config.get('channels', '?')}-s{result.config.get('seed', 0)}"
    )
    config = {
        "model_id": model_id,
        "architecture": "CenterNet-style heatmap, stride 4 (camcensus.detect.model)",
        "stride": STRIDE,
        "types": list(TYPES),
        "heads": dict(HEADS),
        "crop_px": CROP_SIZE,
        "crop_fov_deg": float(result.config.get("crop_fov_deg", CROP_FOV_DEG)),
        "opset": OPSET,
        "train": dict(result.config),
        "train_seconds": round(result.seconds, 1),
        "final_loss": result.history[-1] if result.history else None,
        "data": dict(data),
        "metrics": dict(metrics) if metrics else None,
    }
    text = json.dumps(json_safe(config), indent=1, allow_nan=False, default=str)
    # One folder swap: a reader sees the old model or the new one, never a mix of the two.
    with replace_folder(folder) as tmp:
        write_onnx(result.params, tmp / "model.onnx", metadata={"model_id": model_id})
        (tmp / "config.json").write_text(text, encoding="utf-8")
        (tmp / "model_card.md").write_text(model_card(config), encoding="utf-8")
    return folder


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def _data_lines(data: Mapping[str, Any], train: Mapping[str, Any]) -> list[str]:
    """The model card's data line: a platform project's agreed tags or synthetic panoramas."""
    if data.get("tags_from"):
        return [
            f"- Trained on the agreed tags of the platform project `{data.get('project')}`: "
            f"{data.get('panoramas')} panoramas answered by >= {data.get('min_support')} "
            f"volunteers ({data.get('panoramas_left_out')} others left out), "
            f"{data.get('agreed_cameras')} cameras tagged by >= {data.get('min_support')} "
            f"volunteers as box labels (size prior), {data.get('unagreed_candidates')} "
            f"unagreed candidates as ignore regions, cut into {train.get('patches')} patches of "
            f"{train.get('patch_px')} px. Cameras every volunteer missed remain in the "
            "negatives (label noise).",
        ]
    return [
        f"- Trained on synthetic panoramas only: {data.get('synthetic_panoramas')} panoramas of "
        f"`camcensus.simulate.simulate_city(seed={data.get('seed')})` rendered by "
        "`camcensus.simulate.render` (flat-shaded streets with cameras and look-alikes: street "
        "and wall lamps, signal heads, cell boxes), cut into "
        f"{train.get('patches')} patches of {train.get('patch_px')} px (cameras, look-alikes "
        "as hard negatives, random views) with brightness, contrast, noise and blur jitter.",
    ]


def model_card(config: Mapping[str, Any]) -> str:
    """Return the model card (Markdown) of a model folder's ``config.json`` contents."""
    train = config.get("train", {})
    data = config.get("data", {})
    lines = [
        f"# Model card: {config.get('model_id')}",
        "",
        "A small CenterNet-style camera detector (one heatmap at stride 4, box size, sub-cell "
        "offset and camera type heads) for 640 x 640 perspective crops at a 60 degree field of "
        "view, tiled over equirectangular panoramas (`camcensus detect run`).",
        "",
        "## Data",
        *_data_lines(data, train),
        f"- Training: {train.get('epochs')} epochs, batch {train.get('batch_size')}, Adam "
        f"{train.get('learning_rate')}, {train.get('channels')} channels, seed "
        f"{train.get('seed')}; {config.get('train_seconds')} s on CPU (JAX).",
        "",
        "## Metrics (held-out synthetic panoramas)",
    ]
    metrics = config.get("metrics")
    if metrics:
        m = metrics
        lines.append(
            f"Panoramas: {m.get('panoramas')} of seed {m.get('data', {}).get('seed')}; a "
            f"detection matches a camera within max({m['match']['min_tol_deg']} deg, "
            f"{m['match']['tol_factor']} x its apparent size); score threshold "
            f"{m['score_threshold']}."
        )
        lines += [
            "",
            "| cameras | n | precision | recall | AP | recall at precision >= 0.8 |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows = [("all", m["overall"]), *m["by_size"].items()]
        for name, b in rows:
            op = b.get("at_precision_0.8", {})
            lines.append(
                f"| {name} | {b['cameras']} | {_fmt(b['precision'])} | {_fmt(b['recall'])} | "
                f"{_fmt(b['ap'])} | {_fmt(op.get('recall'))} "
                f"(score >= {_fmt(op.get('threshold'))}) |"
            )
        lines.append("")
        lines.append(f"Expected calibration error of the scores: {_fmt(m['calibration']['ece'])}.")
    else:
        lines.append("Not evaluated: run `camcensus detect evaluate`.")
    lines += [
        "",
        "## Limits",
        "- **Accuracy on real imagery depends on your own labelled data.** These weights have "
        "seen only synthetic, flat-shaded panoramas; on Street View or Panoramax imagery their "
        "precision and recall are unknown until measured on panoramas your volunteers tagged "
        "(`camcensus detect evaluate --panoramas`), and they should be retrained on your "
        "project's agreed tags (`camcensus.detect.labels.agreed_cameras` -> `label_crops` -> "
        "COCO export, or `camcensus detect train --tags-from DATABASE --project P`).",
        "- Cameras under 8 px (at the 60 degree crop scale) are found less often (see the size "
        "bands).",
        "- It also finds cameras a per-panorama count must leave out: far ones, on the next "
        "crossings' poles (0.6 tags per panorama in the synthetic benchmark, docs/detect.md). "
        "Have volunteers reject them in the verify task, or locate tags across panoramas, "
        "before counting.",
        f"- Width: {train.get('channels')} backbone channels. In the benchmark before the "
        "size refit (docs/detect.md, Width; 60 training panoramas, 60 held out, 132 cameras) "
        "16 and 24 "
        "channels had the same accuracy on cameras >= 8 px (AP 0.970 and 0.967, recall at "
        "precision >= 0.8 0.95 and 0.96 of 57 cameras), 24 a little more under 8 px (overall "
        "AP 0.73 vs 0.71), and 16 channels ran 1.95x the crops/s of 24 with onnxruntime on 2 "
        "threads (57 vs 29 crops/s of 640 x 640), so 16 is the default.",
        "- A machine tag alone never settles a camera: detections are tags with "
        "`machine = true`, `source = machine`; volunteers confirm or reject them and reports "
        "keep human-confirmed and machine-only cameras apart.",
        "- Recall may differ between neighbourhoods; do not correct a density by one global "
        "recall unless `detect evaluate` reports the spread across groups as allowed "
        "(<= 0.10).",
        "",
        "## Licence",
        "Weights: produced by camcensus from synthetic data; same licence as camcensus. Built "
        "from permissively licensed parts only: JAX (Apache-2.0) for training, onnx "
        "(Apache-2.0) for export, onnxruntime (MIT) for inference; no PyTorch, no AGPL code.",
        "",
    ]
    return "\n".join(lines)
