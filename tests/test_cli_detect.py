"""`camcensus detect train|run|evaluate` end to end on a tiny synthetic city (needs JAX)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("jax", reason="the train extra (jax) is not installed")
pytest.importorskip("onnxruntime", reason="the cv extra (onnxruntime) is not installed")

import camcensus.cli_detect  # noqa: F401  (registers `detect` on the app)
from camcensus.cli import app
from camcensus.detect.infer import DETECTION_COLUMNS

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("detect") / "model"
    args = ["detect", "train", "--synthetic", "3", "--epochs", "1", "--channels", "8"]
    args += ["--holdout", "1", "--seed", "2", "--no-mining", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_onnx_config_and_card(model_dir: Path) -> None:
    assert (model_dir / "model.onnx").stat().st_size > 1000
    config = json.loads((model_dir / "config.json").read_text())
    assert config["data"] == {"synthetic_panoramas": 3, "seed": 2}
    assert config["train"]["epochs"] == 1 and config["crop_fov_deg"] == 60.0
    assert config["metrics"]["data"]["seed"] == 3
    card = (model_dir / "model_card.md").read_text()
    for words in ("depends on your own labelled data", "Licence", "machine tag alone never"):
        assert words in card
    again = runner.invoke(app, ["detect", "train", "--synthetic", "3", "--out", str(model_dir)])
    assert again.exit_code == 2 and "--force" in again.output


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
    dets = pd.read_csv(out)
    assert list(dets.columns) == list(DETECTION_COLUMNS)
    assert len(dets) > 0 and set(dets["panorama_id"].astype(str)) == {"p1"}
    assert dets["machine"].all() and set(dets["source"]) == {"machine"}
    assert dets["score"].between(0, 1).all() and (dets["fov_deg"] == 60.0).all()


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
