"""Labels on crops: agreed tags and truth -> exact boxes, negatives, COCO JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from camcensus._errors import Ledger
from camcensus.detect.labels import (
    BODY_SIZE_M,
    CAMERA_COLUMNS,
    CROP_COLUMNS,
    agreed_cameras,
    cameras_from_truth,
    label_crops,
    prior_box_deg,
    tile_panoramas,
    to_coco,
)
from camcensus.simulate import render
from camcensus.simulate.scene import tutorial_scene

T1 = math.tan(math.radians(1.0))


def _crops(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(p, h, pt, 90.0, 640, 640) for p, h, pt in rows], columns=list(CROP_COLUMNS)
    )


def _camera(pid: str, cid: str, heading: float, *, agreed: bool = True) -> dict[str, object]:
    # A 2° x 2° rectangle around (heading, 0).
    return {
        "panorama_id": pid,
        "camera_id": cid,
        "heading_deg": heading,
        "pitch_deg": 0.0,
        "category": "dome",
        "agreed": agreed,
        "support": 2 if agreed else 1,
        "box_source": "prior",
        "left_deg": (heading - 1.0) % 360,
        "span_deg": 2.0,
        "top_deg": 1.0,
        "bottom_deg": -1.0,
    }


def test_hand_built_boxes_are_exact() -> None:
    cams = pd.DataFrame(
        [_camera("p", "a", 10.0), _camera("p", "b", 359.5), _camera("p", "c", 100.0, agreed=False)],
        columns=list(CAMERA_COLUMNS),
    )
    crops = _crops([("p", 10.0, 0.0), ("p", 0.0, 0.0), ("p", 100.0, 0.0), ("p", 200.0, 0.0)])
    out = label_crops(cams, crops)
    assert list(out.images["kind"]) == ["positive", "positive", "ignore_only", "negative"]
    ann: dict[tuple[int, str], dict[Any, Any]] = {
        (int(r["image_id"]), str(r["camera_id"])): r for r in out.annotations.to_dict("records")
    }
    # Crop 1 looks at camera a: f = 320; the box's sides are at tan(±1°), its top and bottom
    # (latitude lines) reach farthest at the corners: y = 320 ∓ 320 tan(1°) / cos(1°).
    a = ann[(1, "a")]
    x0, y0 = 320 - 320 * T1, 320 - 320 * T1 / math.cos(math.radians(1))
    assert a["x"] == pytest.approx(x0, abs=1e-9)
    assert a["y"] == pytest.approx(y0, abs=1e-9)
    assert a["w"] == pytest.approx(640 * T1, abs=1e-9)
    assert a["h"] == pytest.approx(640 - 2 * y0, abs=1e-9)
    assert a["iscrowd"] == 0 and a["category"] == "dome"
    # Crop 2 (north) shows a (10° right) and b across the 0/360 seam (0.5° left).
    b = ann[(2, "b")]
    xb0 = 320 + 320 * math.tan(math.radians(-1.5))
    assert b["x"] == pytest.approx(xb0, abs=1e-9)
    assert b["w"] == pytest.approx(320 * math.tan(math.radians(0.5)) - (xb0 - 320), abs=1e-9)
    assert ann[(2, "a")]["x"] == pytest.approx(320 + 320 * math.tan(math.radians(9)), abs=1e-9)
    # An unagreed candidate is an ignore region of category unknown.
    c = ann[(3, "c")]
    assert c["iscrowd"] == 1 and c["category"] == "unknown"
    # Crop 1 (fov 90) shows b too, 10.5° to the left; five boxes in all.
    assert ann[(1, "b")]["iscrowd"] == 0
    assert len(out.annotations) == 5


def test_cut_camera_is_an_ignore_region() -> None:
    cams = pd.DataFrame([_camera("p", "a", 45.2)], columns=list(CAMERA_COLUMNS))
    # Crop at heading 0, fov 90: its right edge is heading 45°; the box spans 44.2°-46.2°.
    out = label_crops(cams, _crops([("p", 0.0, 0.0)]))
    a = out.annotations.iloc[0]
    assert a["iscrowd"] == 1 and a["x"] + a["w"] == pytest.approx(640)
    assert out.images["kind"].iloc[0] == "ignore_only"


def _tags() -> pd.DataFrame:
    rows = [
        # Two of three volunteers agree on a camera at (30, 20); one tags a lamp at (200, 5).
        ("t1", "p", "v1", 30.0, 20.0, "street", "dome"),
        ("t2", "p", "v2", 31.0, 20.5, "street", "dome"),
        ("t3", "p", "v3", 200.0, 5.0, "building", "unknown"),
        ("t4", "p", "model", 120.0, 10.0, "street", "bullet"),
    ]
    df = pd.DataFrame(
        rows,
        columns=["tag_id", "panorama_id", "decoder_id", "heading_deg", "pitch_deg", "attachment",
                 "camera_type"],
    )  # fmt: skip
    df["machine"] = [False, False, False, True]
    return df


def test_agreed_tags_and_size_prior() -> None:
    ledger = Ledger()
    cams = agreed_cameras(_tags(), min_support=2, ledger=ledger)
    assert ledger.total("detect labels") == 1  # the machine tag
    assert list(cams["agreed"]) == [True, False]
    a = cams.iloc[0]
    assert a["category"] == "dome" and a["support"] == 2
    # Prior: street mount 5 m, eye 2.5 m: d = 2.5 / sin(p); a dome's body w x h metres.
    w, h = BODY_SIZE_M["dome"]
    p = a["pitch_deg"]
    d = 2.5 / math.sin(math.radians(p))
    assert a["span_deg"] == pytest.approx(
        math.degrees(2 * math.atan(w / 2 / (d * math.cos(math.radians(p))))), rel=1e-12
    )
    assert a["top_deg"] - a["bottom_deg"] == pytest.approx(
        math.degrees(2 * math.atan(h / 2 / d)), rel=1e-12
    )
    # Near the horizon the distance falls back to 15 m; clamped to [3, 40] m.
    _span, tall = prior_box_deg(np.array([1.0, 89.0]), ["street", "street"], ["dome", "dome"])
    assert tall[0] == pytest.approx(math.degrees(2 * math.atan(h / 2 / 15)))
    assert tall[1] == pytest.approx(math.degrees(2 * math.atan(h / 2 / 3)))


def test_negatives_need_enough_answers() -> None:
    cams = agreed_cameras(_tags(), min_support=2)
    crops = tile_panoramas(["p", "q", "r"], fov_deg=90)
    ledger = Ledger()
    out = label_crops(cams, crops, answered={"p": 3, "q": 3, "r": 1}, ledger=ledger)
    assert ledger.total("detect labels") == 5  # the 5 crops of r
    kinds = out.images.groupby("panorama_id")["kind"].agg(list)
    assert set(kinds["q"]) == {"negative"} and len(kinds["q"]) == 5
    assert "positive" in kinds["p"]
    # A crop showing only the lone tag is not a negative.
    lone = out.annotations[out.annotations["iscrowd"] == 1]["image_id"]
    assert (out.images.set_index("image_id").loc[lone, "kind"] != "negative").all()


def test_truth_boxes_match_the_rendered_boxes() -> None:
    r = render.render_panorama(tutorial_scene())
    cams = cameras_from_truth(
        r.truth, panorama_id="tutorial", panorama_heading_deg=r.heading_deg, width=r.width,
        height=r.height,
    )  # fmt: skip
    assert len(cams) == 3 and cams["agreed"].all()
    # An equirectangular-like crop: a crop centred on each camera, fov so that one crop pixel
    # is one panorama pixel at the centre; the box is the rendered box's pixel size.
    f = r.width / 360.0 / math.radians(1.0)  # px per radian
    fov = math.degrees(2 * math.atan(320 / f))
    crops = pd.DataFrame(
        [("tutorial", h, p, fov, 640, 640) for h, p in cams[["heading_deg", "pitch_deg"]].values],
        columns=list(CROP_COLUMNS),
    )  # fmt: skip
    out = label_crops(cams, crops)
    ann = out.annotations[out.annotations["iscrowd"] == 0].merge(
        r.truth[["object_id", "box_w", "box_h"]], left_on="camera_id", right_on="object_id"
    )
    image_of = {c: i + 1 for i, c in enumerate(cams["camera_id"])}
    own = ann[ann["image_id"] == ann["camera_id"].map(image_of)]
    assert len(own) == 3
    cosp = np.cos(np.radians(crops["pitch_deg"].to_numpy()))
    np.testing.assert_allclose(own["w"], own["box_w"] * cosp, rtol=0.1, atol=1.0)
    np.testing.assert_allclose(own["h"], own["box_h"], rtol=0.1, atol=1.0)


def test_to_coco_schema(tmp_path: Path) -> None:
    cams = pd.DataFrame([_camera("p", "a", 10.0)], columns=list(CAMERA_COLUMNS))
    out = label_crops(cams, _crops([("p", 10.0, 0.0), ("p", 200.0, 0.0)]))
    path = to_coco(out, tmp_path / "sub" / "coco.json", info={"seed": 0})
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert set(doc) == {"info", "licenses", "images", "annotations", "categories"}
    assert [c["name"] for c in doc["categories"]] == ["dome", "directed", "unknown"]
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3]
    img = doc["images"][0]
    assert {"id", "file_name", "width", "height"} <= set(img) and img["width"] == 640
    assert img["file_name"].startswith("p_h010.000_p+00.000_f090.0") and img["kind"] == "positive"
    assert doc["images"][1]["kind"] == "negative"
    (ann,) = doc["annotations"]
    assert set(ann) >= {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}
    x, _y, w, h = ann["bbox"]
    assert ann["image_id"] == 1 and ann["category_id"] == 1 and ann["iscrowd"] == 0
    assert x == pytest.approx(320 - 320 * T1, abs=1e-4) and w == pytest.approx(640 * T1, abs=1e-4)
    assert ann["area"] == pytest.approx(w * h, abs=1e-3)
    assert not list(tmp_path.glob("sub/.tmp-*"))  # nothing left behind
