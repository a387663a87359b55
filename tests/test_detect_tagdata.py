"""Training data from a platform project: agreed tags on stored panoramas -> patches -> model.

A small synthetic city stored as a platform project (panoramas as ``synthetic:`` uris, rendered
by the image store as the platform serves them), tagged by simulated volunteers written
straight into the tables, then `detect train --tags-from` end to end (needs JAX).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from camcensus._errors import Ledger
from camcensus.simulate import simulate_city
from camcensus.simulate.scene import objects_in_view, panorama_scene
from camcensus.simulate.volunteers import VolunteerModel, simulate_tags

pytestmark = pytest.mark.slow
SEED = 5
PERFECT = VolunteerModel(
    miss=0.0,
    bearing_sd_deg=0.2,
    pitch_sd_deg=0.2,
    p_attach_correct=1.0,
    p_type_correct=1.0,
    false_positive_rate=0.0,
    p_no_camera_claim=0.0,
)


def _angle(h1: float, p1: float, h2: float, p2: float) -> float:
    def vec(h: float, p: float) -> np.ndarray:
        h, p = math.radians(h), math.radians(p)
        return np.array([math.cos(p) * math.sin(h), math.cos(p) * math.cos(h), math.sin(p)])

    return math.degrees(math.acos(float(np.clip(vec(h1, p1) @ vec(h2, p2), -1, 1))))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project of 4 panoramas: 2 with visible cameras and 1 without (3 perfect volunteers
    each), 1 with cameras answered by one volunteer only (no evidence: left out)."""
    from camcensus.db import connect, projects, upgrade
    from camcensus.db.models import Submission, Tag
    from camcensus.imagery.synthetic import panoramas_from_synthetic

    root = tmp_path_factory.mktemp("platform")
    url = f"sqlite:///{root / 'platform.sqlite'}"
    upgrade(url)
    engine = connect(url)
    city = simulate_city(SEED, nx=4, ny=4)
    frame = panoramas_from_synthetic(city, seed=SEED)
    views = {}
    with_cam: list[str] = []
    without: list[str] = []
    for pid in frame["panorama_id"]:
        view = objects_in_view(panorama_scene(city, str(pid), seed=SEED))
        n = int(((view["kind"] == "camera") & view["visible"]).sum())
        views[str(pid)] = view
        (with_cam if n else without).append(str(pid))
    chosen = {p: 3 for p in with_cam[:2]} | {without[0]: 3, with_cam[2]: 1}
    frame = frame[frame["panorama_id"].isin(list(chosen))].reset_index(drop=True)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    rng = np.random.default_rng(0)
    truth: dict[str, pd.DataFrame] = {}
    with Session(engine) as s, s.begin():
        projects.create_project(s, name="tiny", title="Tiny", panoramas=frame, licence="CC0")
        s.flush()
        k = 0
        for pid, n_vol in chosen.items():
            view = views[pid]
            truth[pid] = view[(view["kind"] == "camera") & view["visible"]]
            for v in range(n_vol):
                answer = simulate_tags(view, PERFECT, rng=rng)
                sid = f"{pid}-s{v}"
                s.add(
                    Submission(
                        submission_id=sid,
                        panorama_id=pid,
                        decoder_id=f"vol-{v}",
                        kind="volunteer",
                        submitted_at=t0 + timedelta(seconds=k),
                        no_camera=bool(answer["no_camera"]),
                    )
                )
                s.flush()
                for j, tag in enumerate(answer["tags"]):
                    k += 1
                    s.add(
                        Tag(
                            tag_id=f"{sid}-t{j}",
                            submission_id=sid,
                            heading_deg=float(tag["heading_deg"]),
                            pitch_deg=float(tag["pitch_deg"]),
                            fov_deg=float(tag["fov_deg"]),
                            attachment=str(tag["attachment"]),
                            camera_type=str(tag["camera_type"]),
                            machine=False,
                            created_at=t0 + timedelta(seconds=k),
                        )
                    )
    engine.dispose()
    return {
        "url": url,
        "media": root / "media",
        "chosen": chosen,
        "truth": truth,
        "frame": frame,
        "city": city,
    }


def test_project_data_counts_answers_and_finds_images(platform: dict[str, Any]) -> None:
    from camcensus.db import connect
    from camcensus.detect.tagdata import image_loader, project_training_data

    engine = connect(platform["url"])
    data = project_training_data(engine, project="tiny")
    engine.dispose()
    got = dict(zip(data.panoramas["panorama_id"], data.panoramas["answered"], strict=True))
    assert got == platform["chosen"]
    assert set(data.tags["panorama_id"]) <= set(platform["chosen"])
    assert not data.tags["machine"].any()
    # The stored heading is the renderer's: a crop of the served image through it equals the
    # same crop of a fresh render (the image store's JPEG aside).
    from camcensus.detect.crops import perspective_crop
    from camcensus.simulate.render import render_panorama

    pid = next(p for p, n in platform["chosen"].items() if n == 3 and len(platform["truth"][p]))
    row = data.panoramas.set_index("panorama_id").loc[pid]
    served = image_loader(platform["media"])(str(row["image_uri"]))
    rendered = render_panorama(panorama_scene(platform["city"], pid, seed=SEED))
    assert served.shape == rendered.image.shape
    assert rendered.heading_deg == pytest.approx(float(row["heading_deg"]))
    cam = platform["truth"][pid].iloc[0]
    h, p = float(cam["heading_deg"]), float(cam["pitch_deg"])
    a = perspective_crop(
        served, heading_deg=h, pitch_deg=p, fov_deg=10.0, size=64,
        panorama_heading_deg=float(row["heading_deg"]),
    )  # fmt: skip
    b = perspective_crop(
        rendered.image, heading_deg=h, pitch_deg=p, fov_deg=10.0, size=64,
        panorama_heading_deg=rendered.heading_deg,
    )  # fmt: skip
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 6.0


def test_tag_patches_label_the_agreed_cameras(platform: dict[str, Any]) -> None:
    from camcensus.db import connect
    from camcensus.detect.tagdata import image_loader, project_training_data, tag_patches

    engine = connect(platform["url"])
    data = project_training_data(engine, project="tiny")
    engine.dispose()
    ledger = Ledger()
    patches, cams = tag_patches(data, image_loader(platform["media"]), seed=1, ledger=ledger)
    answered = [p for p, n in platform["chosen"].items() if n >= 2]
    assert set(patches.panoramas) == set(answered)
    assert ledger.total("detect train") == 1  # the panorama one volunteer answered
    # Perfect volunteers: every visible camera of the answered panoramas is agreed, in place.
    n_true = 0
    for pid in answered:
        t = platform["truth"][pid]
        c = cams[cams["panorama_id"] == pid]
        assert int(c["agreed"].sum()) == len(t)
        for h, p in t[["heading_deg", "pitch_deg"]].itertuples(index=False):
            rays = c[["heading_deg", "pitch_deg"]].to_numpy()
            assert min(_angle(h, p, a, b) for a, b in rays) < 1.0
        n_true += len(t)
    # 3 patches per agreed camera and 8 random ones per panorama; each camera patch has a box.
    assert len(patches.images) == 3 * n_true + 8 * len(answered)
    kinds = patches.kinds
    ann = patches.annotations
    boxes = ann[ann["iscrowd"] == 0]
    for i in np.flatnonzero(kinds == "camera"):
        assert (boxes["patch"] == i).any()
    assert (boxes["w"] > 0).all() and (boxes["w"] < 128).all()


@pytest.fixture(scope="module")
def tag_model(platform: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("jax", reason="the train extra (jax) is not installed")
    pytest.importorskip("onnxruntime", reason="the cv extra (onnxruntime) is not installed")
    from typer.testing import CliRunner

    import camcensus.cli_detect  # noqa: F401
    from camcensus.cli import app

    out = tmp_path_factory.mktemp("tagmodel") / "model"
    args = ["detect", "train", "--tags-from", platform["url"], "--project", "tiny"]
    args += ["--media", str(platform["media"]), "--epochs", "1", "--channels", "8"]
    result = CliRunner().invoke(app, [*args, "--no-mining", "--crop-fov", "45", "--out", str(out)])
    return out, args, result


def test_cli_trains_from_a_platform_project(
    platform: dict[str, Any], tag_model: Any, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from camcensus.cli import app

    out, args, result = tag_model
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    n_cam = sum(len(platform["truth"][p]) for p, n in platform["chosen"].items() if n >= 2)
    assert config["data"]["project"] == "tiny"
    assert config["data"]["agreed_cameras"] == n_cam
    assert config["data"]["panoramas"] == 3 and config["data"]["panoramas_left_out"] == 1
    assert config["metrics"] is None and config["crop_fov_deg"] == 45.0
    card = (out / "model_card.md").read_text()
    assert "agreed tags of the platform project `tiny`" in card
    assert "answered by fewer than 2 volunteers" in result.output
    (tmp_path / "file").write_text("x")
    bad = CliRunner().invoke(
        app, [*args[:6], "--media", str(tmp_path / "file"), "--out", str(tmp_path / "m2")]
    )
    text = " ".join(bad.output.replace("│", " ").split())
    assert bad.exit_code == 2 and "not a folder" in text


def test_evaluate_on_panoramas_with_tags_or_cameras_truth(
    platform: dict[str, Any], tag_model: Any, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from camcensus.cli import app
    from camcensus.db import connect
    from camcensus.db.export import export_tags
    from camcensus.imagery.store import ImageStore

    model = tag_model[0]
    answered = [p for p, n in platform["chosen"].items() if n >= 2]
    frame = platform["frame"].set_index("panorama_id")
    store = ImageStore(platform["media"])
    pd.DataFrame(
        {
            "panorama_id": answered,
            "path": [str(store.materialize(str(frame.loc[p, "image_uri"]))) for p in answered],
            "heading_deg": [float(frame.loc[p, "heading_deg"]) for p in answered],
        }
    ).to_csv(tmp_path / "panoramas.csv", index=False)
    truth = pd.concat([platform["truth"][p].assign(panorama_id=p) for p in answered])
    truth[["panorama_id", "heading_deg", "pitch_deg"]].to_csv(tmp_path / "cams.csv", index=False)
    engine = connect(platform["url"])
    export_tags(engine, project="tiny", out=tmp_path / "tags.csv", format="csv")
    engine.dispose()
    base = ["detect", "evaluate", "--model", str(model), "--panoramas", str(tmp_path)]
    for name, fmt in (("cams.csv", "cameras"), ("tags.csv", "tags")):
        out = tmp_path / f"{fmt}.json"
        result = CliRunner().invoke(
            app, [*base, "--truth", str(tmp_path / name), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        m = json.loads(out.read_text(), parse_constant=_no_nan)
        assert m["truth"]["format"] == fmt and m["panoramas"] == len(answered)
        # Perfect volunteers: the agreed tags are the visible cameras; the only unagreed
        # candidates are the lone volunteer's (on a panorama not evaluated).
        assert m["overall"]["cameras"] == len(truth)
        lone_cams = sum(len(platform["truth"][p]) for p, n in platform["chosen"].items() if n < 2)
        assert m["truth"]["ignore_candidates"] == (lone_cams if fmt == "tags" else 0)
        assert m["held_out"] is False and "not held out" in result.output
        assert sum(b["cameras"] for b in m["by_size"].values()) == len(truth)
    lone = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "x.json")])
    assert lone.exit_code == 2 and "--truth" in lone.output


def test_read_truth_formats_and_errors(tmp_path: Path) -> None:
    from camcensus._errors import InputError
    from camcensus.detect.evaluate import PX_PER_DEG, read_truth
    from camcensus.detect.labels import prior_box_deg

    pd.DataFrame(
        {"panorama_id": ["a", "b"], "heading_deg": [370.0, 10.0], "pitch_deg": [20.0, 5.0]}
    ).to_csv(tmp_path / "c.csv", index=False)
    truth, ignore, fmt = read_truth(tmp_path / "c.csv")
    assert fmt == "cameras" and ignore.empty and list(truth["heading_deg"]) == [10.0, 10.0]
    span, tall = prior_box_deg(np.array([20.0]), "unknown", "unknown")
    want = math.sqrt(span[0] * math.cos(math.radians(20.0)) * tall[0])
    assert truth["size_deg"].iloc[0] == pytest.approx(want)
    assert truth["size_px"].iloc[0] == pytest.approx(want * PX_PER_DEG)
    # Tags: two volunteers agree on one camera, a third's lone tag is an ignore candidate.
    rows = [
        ("t1", "a", "v1", 100.0, 10.0),
        ("t2", "a", "v2", 100.5, 10.2),
        ("t3", "a", "v3", 200.0, 15.0),
    ]
    tags = pd.DataFrame(rows, columns=["tag_id", "panorama_id", "decoder_id", "heading_deg",
                                       "pitch_deg"])  # fmt: skip
    tags["attachment"], tags["camera_type"] = "street", "dome"
    tags.to_csv(tmp_path / "t.csv", index=False)
    truth, ignore, fmt = read_truth(tmp_path / "t.csv")
    assert fmt == "tags" and len(truth) == 1 and len(ignore) == 1
    assert truth["heading_deg"].iloc[0] == pytest.approx(100.25, abs=0.01)
    assert ignore["heading_deg"].iloc[0] == pytest.approx(200.0)
    tags.drop(columns="camera_type").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="camera_type"):
        read_truth(tmp_path / "bad.csv")


def _no_nan(token: str) -> float:
    """JSON has no NaN or Infinity: a file holding them is not JSON."""
    raise AssertionError(f"{token} in a JSON file")
