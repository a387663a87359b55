"""Detector model: ONNX graph equals the JAX forward pass, targets, focal loss, smoke training.

Needs the ``train`` extra (JAX, onnx): skipped only when JAX is not installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax", reason="the train extra (jax) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the cv extra (onnxruntime) is not installed")

from camcensus.detect.model import STRIDE, focal_loss, forward, init_params, layers  # noqa: E402
from camcensus.detect.onnx_export import OUTPUTS, onnx_model  # noqa: E402
from camcensus.detect.train import (  # noqa: E402
    make_targets,
    mine_hard_negatives,
    synthetic_patches,
    train_detector,
)


def _random_params(seed: int, channels: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = init_params(seed, channels=channels)
    # Random biases too, so the graph's bias wiring is tested.
    return {k: (w, rng.normal(0, 0.2, b.shape).astype(np.float32)) for k, (w, b) in params.items()}


@pytest.mark.parametrize(("channels", "shape"), [(16, (2, 3, 64, 96)), (24, (1, 3, 128, 128))])
def test_onnx_graph_equals_the_jax_forward_pass(channels: int, shape: tuple[int, ...]) -> None:
    params = _random_params(3, channels)
    x = np.random.default_rng(4).uniform(0, 255, shape).astype(np.float32)
    session = ort.InferenceSession(
        onnx_model(params).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    got = dict(zip(OUTPUTS, session.run(list(OUTPUTS), {"images": x}), strict=True))
    ref = forward(params, x)
    for name in ("heatmap", "size", "offset", "type"):
        assert got[name].shape == (shape[0], ref[name].shape[1], shape[2] // 4, shape[3] // 4)
        np.testing.assert_allclose(got[name], np.asarray(ref[name]), atol=1e-4, rtol=0)
    # heatmap_max is the 3x3 maximum of the heatmap (a brute-force reference).
    h = np.pad(got["heatmap"][:, 0], ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    hh, ww = got["heatmap"].shape[2:]
    brute = np.max([h[:, i : i + hh, j : j + ww] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_array_equal(got["heatmap_max"][:, 0], brute)


def test_receptive_field_and_stride_of_the_architecture() -> None:
    rf, jump = 1, 1
    for lay in layers(24)[:6]:
        rf += (lay.kernel - 1) * lay.dilation * jump
        jump *= lay.stride
    assert jump == STRIDE and rf == 71


def test_targets_put_the_peak_offset_and_size_at_the_centre_cell() -> None:
    ann = pd.DataFrame(
        [(0, 41.0, 18.0, 6.0, 4.0, "directed", 0), (1, 10.0, 10.0, 8.0, 8.0, "dome", 1)],
        columns=["patch", "x", "y", "w", "h", "category", "iscrowd"],
    )
    t = make_targets(ann, 2, 64)
    # Centre (44, 20) px -> cell (11, 5), offset (0, 0); box 6 x 4.
    assert t["heatmap"][0, 0, 5, 11] == 1.0 and t["centre"][0].sum() == 1
    assert t["heatmap"][0, 0, 5, 12] == pytest.approx(math.exp(-1 / (2 * 0.6**2)))
    np.testing.assert_allclose(t["size"][0, :, 5, 11], [math.log(6), math.log(4)], rtol=1e-6)
    np.testing.assert_allclose(t["offset"][0, :, 5, 11], [0.0, 0.0], atol=1e-7)
    assert t["type"][0, 5, 11] == 1
    # The ignore region: box cells 2..4 plus one cell around, weight 0; no positive.
    assert t["centre"][1].sum() == 0 and t["heatmap"][1].max() == 0
    assert t["weight"][1, 0, 1:6, 1:6].max() == 0 and t["weight"][1, 0, 6, 6] == 1


def test_focal_loss_matches_its_closed_form() -> None:
    logit = np.array([[[[0.0, 2.0], [-1.0, 0.5]]]], np.float32)
    target = np.array([[[[1.0, 0.5], [0.0, 0.2]]]], np.float32)
    weight = np.ones_like(target)
    p = 1 / (1 + np.exp(-logit.astype(float)))
    pos = -((1 - p[0, 0, 0, 0]) ** 2) * math.log(p[0, 0, 0, 0])
    neg = sum(
        -((1 - target[0, 0, i, j]) ** 4) * p[0, 0, i, j] ** 2 * math.log(1 - p[0, 0, i, j])
        for i, j in ((0, 1), (1, 0), (1, 1))
    )
    got = float(focal_loss(logit, target, weight))
    assert got == pytest.approx(pos + neg, rel=1e-5)
    weight[0, 0, 0, 1] = 0.0
    neg_w = neg + (1 - 0.5) ** 4 * p[0, 0, 0, 1] ** 2 * math.log(1 - p[0, 0, 0, 1])
    assert float(focal_loss(logit, target, weight)) == pytest.approx(pos + neg_w, rel=1e-5)


def _heat_loss(
    params: dict[str, tuple[np.ndarray, np.ndarray]], images: np.ndarray, t: dict[str, np.ndarray]
) -> float:
    out = forward(params, images.transpose(0, 3, 1, 2).astype(np.float32))
    return float(focal_loss(out["heat_logit"], t["heatmap"], t["weight"]))


@pytest.mark.slow
def test_smoke_training_beats_the_mean_heatmap() -> None:
    # Seconds: 4 panoramas of patches, 6 epochs; scored on patches of 3 other panoramas.
    train = synthetic_patches(4, seed=5, patch=64, per_camera=4, n_random=1)
    test = synthetic_patches(3, seed=6, patch=64, per_camera=2, n_random=1)
    t_train = make_targets(train.annotations, len(train.images), 64)
    t_test = make_targets(test.annotations, len(test.images), 64)
    result = train_detector(train, epochs=6, batch_size=16, learning_rate=3e-3, channels=16, seed=0)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # Trivial baseline: the training heatmap's mean everywhere (the best constant in squared
    # error), scored with the same focal loss on the held-out patches.
    mean = float(t_train["heatmap"].mean())
    const = np.full_like(t_test["heatmap"], math.log(mean / (1 - mean)))
    baseline = float(focal_loss(const, t_test["heatmap"], t_test["weight"]))
    trained = _heat_loss(result.params, test.images, t_test)
    assert trained < 0.8 * baseline, (trained, baseline)
    # One round of hard-negative mining on two training panoramas: patches around false
    # positives only (none is centred on a drawn camera's box by construction of the match).
    hard = mine_hard_negatives(result.params, 2, seed=5, patch=64, score_min=0.05)
    assert len(hard.images) > 0, "mining found no false positive to learn from"
    assert len(hard.images) == len(hard.kinds) and set(hard.kinds) == {"hard_negative"}
    assert hard.images.shape[1:] == (64, 64, 3)


def test_model_folder_is_swapped_whole_and_never_deletes_other_files(tmp_path: Path) -> None:
    from camcensus._errors import OptionError
    from camcensus.detect.infer import load_detector
    from camcensus.detect.train import MODEL_FILES, TrainResult, write_model_dir

    params = init_params(0, channels=8)
    result = TrainResult(params, [{"loss": 1.0}], 1.0, {"channels": 8, "seed": 0})
    out = tmp_path / "model"
    write_model_dir(out, result, data={"synthetic_panoramas": 1, "seed": 0})
    assert sorted(p.name for p in out.iterdir()) == sorted(MODEL_FILES)
    first = (out / "model.onnx").read_bytes()
    # Rewritten with other weights: the folder holds the new model, and nothing is left beside.
    other = TrainResult(
        init_params(1, channels=8), [{"loss": 0.5}], 1.0, {"channels": 8, "crop_fov_deg": 45.0}
    )
    write_model_dir(out, other, data={"synthetic_panoramas": 1, "seed": 1})
    assert (out / "model.onnx").read_bytes() != first
    # The training crops' field of view is the one detect run tiles with.
    assert load_detector(out).config["crop_fov_deg"] == 45.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    x = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    got = load_detector(out, threads=1).predict(x)["heatmap"]
    want = forward(other.params, np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    np.testing.assert_allclose(got, np.asarray(want["heatmap"]), atol=1e-4)
    # A folder holding someone's own file is refused and left as it was.
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OptionError, match=r"notes\.txt"):
        write_model_dir(out, result, data={"synthetic_panoramas": 1, "seed": 0})
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (out / "model.onnx").read_bytes() != first


@pytest.mark.slow
def test_patches_take_the_pixel_scale_of_the_crop_fov() -> None:
    from camcensus.detect.crops import focal_px

    wide = synthetic_patches(2, seed=0, crop_fov_deg=60.0)
    narrow = synthetic_patches(2, seed=0, crop_fov_deg=45.0)
    assert len(wide.images) == len(narrow.images) > 0
    # The same zoom and jitter draws: every camera box grows with the focal length (773 / 554).
    ratio = focal_px(45.0, 640) / focal_px(60.0, 640)
    # Patch by patch (the same centres in the same order), where each holds one whole box.
    one = [
        ann[ann["iscrowd"] == 0].groupby("patch").filter(lambda g: len(g) == 1).set_index("patch")
        for ann in (wide.annotations, narrow.annotations)
    ]
    both = one[0].merge(one[1], left_index=True, right_index=True, suffixes=("_60", "_45"))
    assert len(both) > 5
    for col in ("w", "h"):
        got = both[f"{col}_45"].to_numpy(float) / both[f"{col}_60"].to_numpy(float)
        assert float(np.median(got)) == pytest.approx(ratio, rel=0.03), col
