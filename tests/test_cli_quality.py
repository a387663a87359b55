"""``camcensus quality simulate|plan|estimate`` end to end on a synthetic study (truth known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from camcensus.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quality") / "city"
    result = runner.invoke(app, ["quality", "simulate", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def report(study: Path) -> Path:
    out = study.parent / "report"
    args = ["quality", "estimate", "--counts", str(study / "counts.csv")]
    args += ["--reviews", str(study / "reviews.csv"), "--out", str(out)]
    args += ["--n-boot", "300", "--draws", "300"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_simulated_reviews_are_the_truth_of_the_planned_panoramas(study: Path) -> None:
    plan = pd.read_csv(study / "plan.csv")
    reviews = pd.read_csv(study / "reviews.csv")
    truth = pd.read_csv(study / "truth.csv").set_index("PanoramaId")
    assert len(plan) == 104 and set(reviews["PanoramaId"]) == set(plan["PanoramaId"])
    for c in ("attached_street", "attached_building"):
        assert (reviews.set_index("PanoramaId")[c] == truth.loc[reviews["PanoramaId"], c]).all()
    # Horvitz-Thompson: the weights of the sample add up to the panoramas of the strata
    sizes = plan.groupby("stratum")["stratum_size"].first()
    assert np.isclose(plan["weight"].sum(), sizes.sum())


def test_ratio_is_the_weighted_sum_of_medians_over_the_weighted_reference(
    study: Path, report: Path
) -> None:
    from camcensus.quality.inputs import read_counts

    counts = read_counts(study / "counts.csv").counts.set_index("PanoramaId")
    reviews = pd.read_csv(study / "reviews.csv").set_index("PanoramaId")
    w = reviews["weight"]
    expected = (w * counts.loc[reviews.index, "attached_street_median"]).sum() / (
        w * reviews["attached_street"]
    ).sum()
    results = json.loads((report / "results.json").read_text())
    ratios = pd.DataFrame(results["quality"]["ratios"])
    street = ratios[(ratios["category"] == "attached_street") & (ratios["decoders"] == "median")]
    assert set(street["method"]) == {"bootstrap", "linearization", "bayes", "model_assisted"}
    ht = street[street["method"] != "model_assisted"]
    assert np.allclose(ht["estimate"], expected)
    # the model-assisted (GREG) ratio uses every panorama's prediction: its own estimate
    greg = street[street["method"] == "model_assisted"].iloc[0]
    assert 0.5 < greg["estimate"] < 1.5 and greg["estimate"] != pytest.approx(expected)
    assert (street["low"] <= street["estimate"]).all()
    assert (street["estimate"] <= street["high"]).all()
    table = pd.read_csv(report / "tables" / "quality_ratios.csv")
    assert len(table) == len(ratios)


def test_corrected_total_beside_the_sum_of_medians(study: Path, report: Path) -> None:
    from camcensus.quality.inputs import read_counts

    q = read_counts(study / "counts.csv")
    results = json.loads((report / "results.json").read_text())
    totals = pd.DataFrame(results["quality"]["totals"])
    street = totals[totals["category"] == "attached_street"].reset_index(drop=True)
    assert street.loc[0, "total"].startswith("sum of medians")
    # the latent model's sum of medians is over every answer of a panorama (not 3 picked)
    assert q.submissions is not None
    med = q.submissions.groupby("PanoramaId")["attached_street"].median().sum()
    assert street.loc[0, "estimate"] == pytest.approx(med)
    assert street.loc[1, "low"] <= street.loc[1, "estimate"] <= street.loc[1, "high"]
    # volunteers miss cameras: the corrected total is above the conservative one
    assert street.loc[1, "estimate"] > street.loc[0, "estimate"]
    html = (report / "index.html").read_text()
    assert "How good are the counts" in html and "sum of medians" in html


def test_reviews_without_weights_need_the_plan(study: Path, tmp_path: Path) -> None:
    reviews = pd.read_csv(study / "reviews.csv")
    bare = tmp_path / "bare.csv"
    reviews.drop(columns=["inclusion_probability", "weight", "stratum"]).to_csv(bare, index=False)
    args = ["quality", "estimate", "--counts", str(study / "counts.csv"), "--reviews", str(bare)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--plan" in result.output
    assert "Traceback" not in result.output


def test_plan_refuses_to_overwrite_its_input(study: Path) -> None:
    counts = study / "counts.csv"
    before = counts.read_bytes()
    result = runner.invoke(
        app, ["quality", "plan", "--counts", str(counts), "--out", str(counts), "--force"]
    )
    assert result.exit_code == 2
    assert counts.read_bytes() == before


def test_plan_options_are_checked(study: Path, tmp_path: Path) -> None:
    base = ["quality", "plan", "--counts", str(study / "counts.csv"), "--out", str(tmp_path / "p")]
    for extra, words in (
        (["--allocation", "best"], "--allocation"),
        (["--allocation", "neyman"], "--pilot"),
        (["--n", "0"], "--n"),
    ):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and words in result.output, result.output


def test_hostile_ids_reach_the_page_as_text(study: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    evil = "<script>alert(1)</script>"
    counts = pd.read_csv(study / "counts.csv")
    counts["DecoderId"] = counts["DecoderId"].where(counts.index % 7 != 0, evil)
    counts.to_csv(folder / "counts.csv", index=False)
    (folder / "intersections.csv").write_bytes((study / "intersections.csv").read_bytes())
    args = ["quality", "estimate", "--counts", str(folder / "counts.csv")]
    args += ["--reviews", str(study / "reviews.csv"), "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--n-boot", "100", "--draws", "100"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text()
    assert evil not in html
    # the hostile ids merged answers, so the strata moved: the GREG ratio is left out, said so
    notes = json.loads((tmp_path / "r" / "results.json").read_text())["quality"]["notes"]
    assert any("model-assisted ratio" in n and "left out" in n for n in notes)
