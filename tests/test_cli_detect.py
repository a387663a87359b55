"""`camcensus detect train|run|evaluate` end to end on a tiny synthetic city (needs JAX and
onnxruntime: those tests are skipped without them), and `detect import` of a detections CSV
into a platform database (no extra needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import camcensus.cli_detect  # noqa: F401  (registers `detect` on the app)
from camcensus.cli import app
from camcensus.io.formats import write_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("jax", reason="the train extra (jax) is not installed")
    pytest.importorskip("onnxruntime", reason="the cv extra (onnxruntime) is not installed")
    out = tmp_path_factory.mktemp("detect") / "model"
    args = ["detect", "train", "--synthetic", "3", "--epochs", "1", "--channels", "8"]
    args += ["--holdout", "1", "--seed", "2", "--no-mining", "--crop-fov", "45", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_train_writes_onnx_config_and_card(model_dir: Path) -> None:
    assert (model_dir / "model.onnx").stat().st_size > 1000
    config = json.loads((model_dir / "config.json").read_text())
    assert config["data"] == {"synthetic_panoramas": 3, "seed": 2}
    assert config["train"]["epochs"] == 1 and config["crop_fov_deg"] == 45.0
    assert config["metrics"]["data"]["seed"] == 3
    card = (model_dir / "model_card.md").read_text()
    for words in ("depends on your own labelled data", "Licence", "machine tag alone never"):
        assert words in card
    again = runner.invoke(app, ["detect", "train", "--synthetic", "3", "--out", str(model_dir)])
    assert again.exit_code == 2 and "--force" in again.output


@pytest.mark.parametrize("fov", ["10", "150", "nan"])
def test_train_refuses_a_crop_fov_out_of_range(fov: str, tmp_path: Path) -> None:
    args = ["detect", "train", "--synthetic", "1", "--crop-fov", fov, "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    out = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, out
    assert f"--crop-fov {float(fov)}: expected degrees in [20, 120]" in out
    assert "Fix: pass e.g. --crop-fov 45" in out
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.slow
def test_run_writes_machine_tags_for_a_folder(model_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "panoramas"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 512, 3), dtype=np.uint8)).save(folder / "p1.jpg")
    out = tmp_path / "detections.csv"
    args = ["detect", "run", "--model", str(model_dir), "--panoramas", str(folder)]
    result = runner.invoke(app, [*args, "--out", str(out), "--score-min", "0.0"])
    assert result.exit_code == 0, result.output
    from camcensus.detect.infer import DETECTION_COLUMNS

    dets = pd.read_csv(out)
    assert list(dets.columns) == list(DETECTION_COLUMNS)
    assert len(dets) > 0 and set(dets["panorama_id"].astype(str)) == {"p1"}
    assert dets["machine"].all() and set(dets["source"]) == {"machine"}
    assert dets["score"].between(0, 1).all() and (dets["fov_deg"] == 45.0).all()


@pytest.mark.slow
def test_evaluate_writes_metrics(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    groups = tmp_path / "groups.csv"
    args = ["detect", "evaluate", "--model", str(model_dir), "--synthetic", "1", "--seed", "2"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "not held out" in result.output
    m = json.loads(out.read_text(), parse_constant=_no_nan)
    assert m["held_out"] is False and m["panoramas"] == 1
    assert set(m["by_size"]) == {"< 8 px", ">= 8 px"}
    assert "single_correction" in m["by_group"]
    pd.DataFrame({"PanoramaId": ["x"], "grp": ["a"]}).to_csv(groups, index=False)
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "m2.json"), "--groups", str(groups)])
    assert bad.exit_code == 2 and "PanoramaId, group" in bad.output


def _no_nan(token: str) -> float:
    """JSON has no NaN or Infinity: a file holding them is not JSON."""
    raise AssertionError(f"{token} in a JSON file")


# --------------------------------------------------------------------------- detect import
@pytest.fixture
def platform(tmp_path: Path) -> str:
    """A SQLite platform database with project ``city`` of four panoramas; return its URL."""
    from camcensus.db import connect, projects, upgrade

    url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    upgrade(url)
    engine = connect(url)
    ids = [f"p{i}" for i in range(4)]
    frame = pd.DataFrame(
        {
            "panorama_id": ids,
            "lon": [-73.99 + 0.001 * i for i in range(4)],
            "lat": 40.7,
            "heading_deg": 0.0,
            "captured": "2024-05",
            "source": "synthetic",
            "image_uri": [f"synthetic:0:{i}" for i in ids],
            "width_px": 2048,
            "height_px": 1024,
            "licence": "CC0-1.0",
        }
    )
    with Session(engine) as session, session.begin():
        projects.create_project(session, name="city", title="City", panoramas=frame, k=3,
                                licence="CC0-1.0")  # fmt: skip
    engine.dispose()
    return url


def _detections(path: Path, rows: list[tuple[str, float, float, float]]) -> Path:
    """A detections CSV as detect run writes it (the columns that matter, and some others)."""
    frame = pd.DataFrame(rows, columns=["panorama_id", "heading_deg", "pitch_deg", "score"])
    frame["fov_deg"] = 60.0
    frame["camera_type"] = "dome"
    frame["type_score"] = 0.9
    frame["attachment"] = "unknown"
    frame["machine"] = True
    frame["source"] = "machine"
    frame["decoder_id"] = "cam-v1"
    frame["size_deg"] = 0.4
    write_csv(frame, path)
    return path


def _stored(url: str) -> tuple[list[tuple[str, str, bool]], int]:
    from camcensus.db import connect
    from camcensus.db.models import Submission, Tag

    engine = connect(url)
    try:
        with Session(engine) as session:
            subs = session.execute(
                select(Submission.panorama_id, Submission.decoder_id, Submission.no_camera)
                .where(Submission.kind == "model")
                .order_by(Submission.panorama_id, Submission.decoder_id)
            ).all()
            n_tags = len(session.scalars(select(Tag.tag_id).where(Tag.machine.is_(True))).all())
    finally:
        engine.dispose()
    return [tuple(r) for r in subs], n_tags  # type: ignore[misc]


def test_import_stores_machine_tags_and_counts_what_it_skips(platform: str, tmp_path: Path) -> None:
    dets = _detections(
        tmp_path / "dets.csv", [("p0", 10.0, 5.0, 0.9), ("p0", 100.0, 8.0, 0.4), ("p1", 5, 2, 0.5)]
    )
    folder = tmp_path / "panoramas"
    folder.mkdir()
    for pid in ("p0", "p1", "p2"):
        (folder / f"{pid}.jpg").write_bytes(b"not read")
    args = ["detect", "import", "--database", platform, "--project", "city"]
    result = runner.invoke(app, [*args, "--detections", str(dets), "--panoramas", str(folder)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "3 machine tags on 2 panoramas, 1 panoramas with no detection" in out
    assert "Skipped" not in out
    subs, n_tags = _stored(platform)
    assert subs == [("p0", "cam-v1", False), ("p1", "cam-v1", False), ("p2", "cam-v1", True)]
    assert n_tags == 3
    # Again, over every panorama: p3 is new (nothing detected); the rest is skipped, counted.
    again = runner.invoke(app, [*args, "--detections", str(dets), "--all-panoramas"])
    assert again.exit_code == 0, again.output
    out = " ".join(again.output.split())
    assert "0 machine tags on 0 panoramas, 1 panoramas with no detection" in out
    assert "Skipped: 3 panoramas that already hold model 'cam-v1'" in out
    assert "Skipped: 3 detections on those panoramas" in out
    assert _stored(platform) == ([*subs, ("p3", "cam-v1", True)], 3)
    # Another model id for a file without one; no list of panoramas: a note says so.
    plain = pd.read_csv(dets).drop(columns=["decoder_id"])
    plain.to_csv(tmp_path / "plain.csv", index=False)
    other = runner.invoke(
        app, [*args, "--detections", str(tmp_path / "plain.csv"), "--model-id", "cam-v2"]
    )
    assert other.exit_code == 0, other.output
    out = " ".join(other.output.split())
    assert "Imported model 'cam-v2'" in out and "Note: only panoramas" in out
    assert len(_stored(platform)[0]) == 6


def test_import_refuses_bad_input_with_the_row_and_the_fix(platform: str, tmp_path: Path) -> None:
    args = ["detect", "import", "--database", platform, "--project", "city"]
    bad = _detections(tmp_path / "bad.csv", [("p0", 400.0, 5.0, 0.9), ("zz", 1.0, 5.0, 2.0)])
    result = runner.invoke(app, [*args, "--detections", str(bad)])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "Refused" in out and "nothing was imported" in out
    assert "heading_deg[row 1]: found 400; expected a heading in [0, 360)" in out
    assert "panorama_id[row 2]: 'zz' is not a panorama of this project" in out
    assert "score[row 2]: found 2; expected a detector score in [0, 1]" in out
    assert _stored(platform) == ([], 0)
    missing = runner.invoke(app, [*args, "--detections", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    nodb = ["detect", "import", "--database", f"sqlite:///{tmp_path / 'no.sqlite'}"]
    gone = runner.invoke(app, [*nodb, "--project", "city", "--detections", str(bad)])
    assert gone.exit_code == 2 and "no such database file" in gone.output
    both = runner.invoke(
        app,
        [*args, "--detections", str(bad), "--all-panoramas", "--panoramas", str(tmp_path)],
    )
    assert both.exit_code == 2 and "not both" in both.output
    elsewhere = runner.invoke(
        app, ["detect", "import", "--database", platform, "--project", "nowhere",
              "--detections", str(bad)],
    )  # fmt: skip
    assert elsewhere.exit_code == 2 and "No project is named 'nowhere'" in elsewhere.output
    for extra in ([], ["--panoramas", str(tmp_path), "--project", "city"]):
        neither = runner.invoke(app, ["detect", "run", "--model", str(tmp_path), *extra])
        assert neither.exit_code == 2 and "not both or neither" in neither.output
    help_text = runner.invoke(app, ["detect", "import", "--help"]).output
    assert "Example: camcensus detect import" in " ".join(help_text.split())


@pytest.mark.slow
def test_run_over_a_project_imports_machine_tags(
    model_dir: Path, platform: str, tmp_path: Path
) -> None:
    from PIL import Image

    from camcensus.db import connect
    from camcensus.db.models import Panorama

    media = tmp_path / "media"
    (media / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for pid in ("p0", "p1", "p2"):  # p3's image is missing: counted, not recorded
        pixels = rng.integers(0, 255, (256, 512, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(media / "images" / f"{pid}.jpg")
    engine = connect(platform)
    with Session(engine) as session, session.begin():
        for panorama in session.scalars(select(Panorama)):
            panorama.image_uri = f"images/{panorama.panorama_id}.jpg"
    engine.dispose()
    args = ["detect", "run", "--model", str(model_dir), "--database", platform]
    args += ["--project", "city", "--media", str(media), "--score-min", "0.0"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "dets.csv")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "on 3 panoramas" in out
    assert "Left out (detect run): 1 panoramas whose image could not be read" in out
    subs, n_tags = _stored(platform)
    model_id = json.loads((model_dir / "config.json").read_text())["model_id"]
    assert [(p, m) for p, m, _ in subs] == [(p, model_id) for p in ("p0", "p1", "p2")]
    dets = pd.read_csv(tmp_path / "dets.csv")
    assert n_tags == len(dets) > 0
    # Again: every readable panorama was run with this model; only p3 is tried.
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 machine tags on 0 panoramas" in " ".join(again.output.split())
    assert _stored(platform) == (subs, n_tags)


def test_import_refuses_hostile_files_with_the_file_and_the_fix(
    platform: str, tmp_path: Path
) -> None:
    args = ["detect", "import", "--database", platform, "--project", "city", "--detections"]
    head = "panorama_id,heading_deg,pitch_deg,fov_deg,score,decoder_id\n"

    def run(body: str, *extra: str) -> str:
        path = tmp_path / "d.csv"
        path.write_text(body, encoding="utf-8")
        result = runner.invoke(app, [*args, str(path), *extra])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return " ".join(result.output.replace("│", " ").split())

    # A repeated column: which copy holds the heading is unknowable.
    out = run("panorama_id,heading_deg,heading_deg,pitch_deg,fov_deg,score,decoder_id\n"
              "p0,1,2,3,60,0.5,m\n")  # fmt: skip
    assert "column 'heading_deg': found the column(s) twice in the header" in out
    # NaN and infinities are not numbers in range.
    out = run(head + "p0,nan,2,inf,NaN,m\np1,1,-inf,60,Infinity,m\n")
    for cell in ("heading_deg[row 1]: found 'nan'", "fov_deg[row 1]: found inf",
                 "score[row 1]: found 'NaN'", "pitch_deg[row 2]: found -inf",
                 "score[row 2]: found 'Infinity'"):  # fmt: skip
        assert cell in out
    # Terminal escapes in a model id, from the file or the option.
    out = run(head + 'p0,1,2,60,0.5,"m\x1b[31mred\x07"\n')
    expected = "decoder_id: found 'm\\x1b[31mred\\x07'; expected a model id of 1 to 200"
    assert expected in out
    good = head + "p0,1,2,60,0.5,\n"
    out = run(good, "--model-id", "m\u202eevil")
    assert "model_id: found 'm\\u202eevil'; expected 1 to 200 printable characters" in out
    # A huge id is cut in the message.
    out = run(head + "p" * 100_000 + ",1,2,60,0.5,m\n")
    assert "panorama_id[row 1]: '" + "p" * 78 + "… is not a panorama" in out
    # A folder, and an unreadable --panoramas list: the file and the fix, no traceback.
    result = runner.invoke(app, [*args, str(tmp_path)])
    assert result.exit_code == 2 and "found a folder, not a file" in result.output
    listing = tmp_path / "list.csv"
    listing.write_bytes(b"\x00\xff\xfe\x89PNG\r\n")
    out = run(good, "--model-id", "m", "--panoramas", str(listing))
    assert "list.csv: found not a readable CSV" in out and "Fix: pass the folder or CSV" in out
    assert _stored(platform) == ([], 0)
