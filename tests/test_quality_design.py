"""Review design (camcensus.quality.design): strata, allocation, inclusion probabilities, CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus._errors import InputError, OptionError
from camcensus.quality.design import (
    AMNESTY_STRATA,
    allocate,
    amnesty_strata,
    plan_review,
    read_plan,
    read_reviews,
    write_plan,
    write_reviews,
)
from camcensus.report._atomic import OutputError


def _counts(sizes: dict[str, int]) -> pd.DataFrame:
    rows = []
    for label, k in sizes.items():
        med, agr = label.split(":") if ":" in label else (label, "Unanimous")
        m = {"median3+": 3}.get(med)
        median = m if m is not None else int(med.removeprefix("median"))
        for i in range(k):
            rows.append((f"{label}-{i:04d}", median, agr))
    return pd.DataFrame(
        rows, columns=["PanoramaId", "attached_street_median", "attached_street_agreement"]
    )


SIZES = {
    "median0:Unanimous": 300,
    "median0:2 vs 1": 80,
    "median1:Unanimous": 20,
    "median1:2 vs 1": 30,
    "median1:All disagree": 9,  # smaller than 13: a census, the excess goes to the others
    "median2:Unanimous": 15,
    "median2:2 vs 1": 14,
    "median2:All disagree": 13,
    "median3+": 7,
}


def test_eight_strata_and_the_impossible_ninth() -> None:
    assert len(AMNESTY_STRATA) == 8
    assert "median0:All disagree" not in AMNESTY_STRATA
    counts = pd.DataFrame(
        {
            "PanoramaId": list("abcdef"),
            "attached_street_median": [0, 1, 2, 3, 0.5, np.nan],
            "attached_street_agreement": [
                "Unanimous",
                "All disagree",
                "2 vs 1",
                "2 vs 1",
                "2 vs 1",
                "Unanimous",
            ],
        }
    )
    got = amnesty_strata(counts).tolist()
    assert got == [
        "median0:Unanimous",
        "median1:All disagree",
        "median2:2 vs 1",
        "median3+",
        "no stratum",
        "no stratum",
    ]


def test_strata_from_submissions() -> None:
    sub = pd.DataFrame(
        {
            "PanoramaId": ["p"] * 3 + ["q"] * 3 + ["r"] * 3,
            "attached_street": [0, 0, 1, 0, 1, 2, 4, 4, 4],
        }
    )
    got = amnesty_strata(sub)
    assert got.to_dict() == {"p": "median0:2 vs 1", "q": "median1:All disagree", "r": "median3+"}


def test_allocations_by_hand() -> None:
    # equal: b is a census (5); the other 25 split 12.5 / 12.5, the tie to the first: 13 / 12
    assert allocate({"a": 100, "b": 5, "c": 100}, 30) == {"a": 13, "b": 5, "c": 12}
    # proportional, min 2: 2 + 2, then 6 shared 80:20 -> 2 + 4.8 = 6.8 and 2 + 1.2 = 3.2
    assert allocate({"a": 80, "b": 20}, 10, allocation="proportional") == {"a": 7, "b": 3}
    # neyman: shares N_h S_h = 300 : 100; 2 + 2, then 16 shared 3:1 -> 14 and 6
    got = allocate({"a": 100, "b": 100}, 20, allocation="neyman", sd={"a": 3.0, "b": 1.0})
    assert got == {"a": 14, "b": 6}
    with pytest.raises(OptionError, match="n <= 105"):
        allocate({"a": 100, "b": 5}, 106)
    with pytest.raises(OptionError, match="pilot"):
        allocate({"a": 100, "b": 5}, 10, allocation="neyman")


@pytest.mark.parametrize("allocation", ["equal", "proportional", "neyman"])
def test_inclusion_probabilities_sum_to_n(allocation: str) -> None:
    counts = _counts(SIZES)
    pilot = {h: 1.0 + i for i, h in enumerate(AMNESTY_STRATA)}
    plan = plan_review(counts, n=104, allocation=allocation, pilot=pilot, seed=3)  # type: ignore[arg-type]
    assert len(plan) == 104
    strata = plan.attrs["strata"]
    pi = plan.groupby("stratum")["inclusion_probability"].first()
    assert sum(strata[h]["N"] * pi[h] for h in pi.index) == pytest.approx(104)
    # each weight is N_h / n_h of its stratum, as the allocation recorded it
    expected = plan["stratum"].map({h: v["N"] / v["n"] for h, v in strata.items()})
    np.testing.assert_allclose(plan["weight"], expected)
    sizes = plan.groupby("stratum").size()
    assert sizes.to_dict() == {h: v["n"] for h, v in strata.items()}
    assert plan.attrs["left_out"] == {"median3+": 7}
    assert not plan["stratum"].eq("median3+").any()
    if allocation == "equal":
        assert strata["median1:All disagree"]["n"] == 9  # census of a stratum below 13
        assert sorted(v["n"] for v in strata.values()) == [9, 13, 13, 13, 14, 14, 14, 14]


def test_plan_reproducible_and_order_free() -> None:
    counts = _counts(SIZES)
    a = plan_review(counts, seed=11)
    b = plan_review(counts.sample(frac=1.0, random_state=1), seed=11)
    c = plan_review(counts, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["PanoramaId"]) != set(c["PanoramaId"])


def test_empirical_inclusion_frequency_matches_pi() -> None:
    counts = _counts({"median0:Unanimous": 20, "median1:2 vs 1": 6})
    hits: dict[str, int] = {}
    reps = 300
    for seed in range(reps):
        plan = plan_review(counts, n=8, allocation="proportional", seed=seed)
        for pid in plan["PanoramaId"]:
            hits[pid] = hits.get(pid, 0) + 1
    plan = plan_review(counts, n=8, allocation="proportional", seed=0)
    pi = plan.groupby("stratum")["inclusion_probability"].first().to_dict()
    # proportional, min 2: 2 + 2, then 4 shared 20:6 -> 5.08 and 2.92 -> 5 and 3
    assert pi == pytest.approx({"median0:Unanimous": 5 / 20, "median1:2 vs 1": 3 / 6})
    for pid, k in hits.items():
        expected = pi["median0:Unanimous" if pid.startswith("median0") else "median1:2 vs 1"]
        assert k / reps == pytest.approx(expected, abs=0.1)


def test_strata_from_column_and_series_count_missing_labels() -> None:
    counts = pd.DataFrame(
        {
            "PanoramaId": [f"p{i}" for i in range(30)],
            "district": ["A"] * 20 + ["B"] * 8 + [None] * 2,
        }
    )
    plan = plan_review(counts, strata="district", n=6, allocation="proportional", seed=0)
    assert plan.attrs["left_out"] == {"no stratum": 2}
    # 2 + 2, then 2 shared 20:8 -> 3.43 and 2.57; floors 3 + 2, the last to B (0.57 > 0.43)
    assert plan.attrs["strata"] == {"A": {"N": 20, "n": 3}, "B": {"N": 8, "n": 3}}
    plan2 = plan_review(counts, strata=counts["district"], n=6, allocation="proportional", seed=0)
    pd.testing.assert_frame_equal(plan, plan2)
    with pytest.raises(OptionError, match="neither 'amnesty' nor a column"):
        plan_review(counts, strata="borough")


def test_neyman_from_a_reviews_pilot() -> None:
    counts = _counts({"median0:Unanimous": 200, "median1:2 vs 1": 200})
    pilot = pd.DataFrame(
        {
            "PanoramaId": [f"median0:Unanimous-{i:04d}" for i in range(4)]
            + [f"median1:2 vs 1-{i:04d}" for i in range(4)],
            "attached_street": [0, 0, 0, 1, 0, 1, 2, 3],
        }
    )
    plan = plan_review(counts, n=20, allocation="neyman", pilot=pilot, pilot_value="reference")
    # sd of (0,0,0,1) = 0.5, of (0,1,2,3) = 1.291; 2 + 2, then 16 shared 0.5 : 1.291
    sd0, sd1 = np.std([0, 0, 0, 1], ddof=1), np.std([0, 1, 2, 3], ddof=1)
    n0 = 2 + 16 * sd0 / (sd0 + sd1)
    assert plan.attrs["strata"]["median0:Unanimous"]["n"] == round(n0)  # 6.47 -> 6


@pytest.mark.realdata
def test_brooklyn_strata(nyc_paths: dict[str, Path]) -> None:
    counts = pd.read_csv(nyc_paths["brooklyn"], dtype={"PanoramaId": str})
    plan = plan_review(counts, n=104, seed=0)
    sizes = {h: v["N"] for h, v in plan.attrs["strata"].items()}
    assert sizes == {
        "median0:Unanimous": 7601,
        "median0:2 vs 1": 2142,
        "median1:Unanimous": 31,
        "median1:2 vs 1": 241,
        "median1:All disagree": 162,
        "median2:Unanimous": 31,
        "median2:2 vs 1": 103,
        "median2:All disagree": 42,
    }
    assert plan.attrs["left_out"] == {"median3+": 24}
    assert sum(sizes.values()) + 24 == len(counts) == 10377
    assert (plan.groupby("stratum").size() == 13).all()


def test_plan_round_trip_and_refusals(tmp_path: Path) -> None:
    counts = _counts(SIZES)
    src = tmp_path / "counts.csv"
    counts.to_csv(src, index=False)
    plan = plan_review(counts, seed=1)
    out = write_plan(plan, tmp_path / "plan.csv", inputs=[src])
    back = read_plan(out)
    pd.testing.assert_frame_equal(back[plan.columns], plan, check_dtype=False)
    assert back.attrs["strata"] == plan.attrs["strata"]
    with pytest.raises(OutputError, match="input"):
        write_plan(plan, src, inputs=[src], force=True)
    with pytest.raises(OutputError, match="exists"):
        write_plan(plan, out)
    with pytest.raises(OutputError, match="input"):
        write_plan(back, out, force=True)  # back was read from out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_read_plan_names_row_and_column(tmp_path: Path) -> None:
    p = tmp_path / "plan.csv"
    p.write_text(
        "PanoramaId,stratum,inclusion_probability,weight\n"
        "a,s,0.5,2\n"
        "a,s,0.5,2\n"
        "b,s,1.5,0.66\n"
        "c,s,0.25,3\n"
    )
    with pytest.raises(InputError) as err:
        read_plan(p)
    text = str(err.value)
    assert "row 2, column 'PanoramaId'" in text
    assert "row 3, column 'inclusion_probability'" in text
    assert "row 4, column 'weight'" in text
    (tmp_path / "bad.csv").write_text("PanoramaId,weight\na,2\n")
    with pytest.raises(InputError, match="column 'stratum': found no such column"):
        read_plan(tmp_path / "bad.csv")


def test_reviews_round_trip_and_errors(tmp_path: Path) -> None:
    rev = pd.DataFrame(
        {"PanoramaId": ["a", "b"], "attached_street": [0, 2], "attached_building": [1, 0]}
    )
    path = write_reviews(rev, tmp_path / "reviews.csv")
    back = read_reviews(path, categories=["attached_street"])
    pd.testing.assert_frame_equal(back, rev)
    (tmp_path / "bad.csv").write_text("PanoramaId,attached_street\na,1.5\nb,-1\nc,x\n")
    with pytest.raises(InputError) as err:
        read_reviews(tmp_path / "bad.csv")
    text = str(err.value)
    for row in (1, 2, 3):
        assert f"row {row}, column 'attached_street'" in text
    with pytest.raises(InputError, match=r"column .n_cameras.: found no such column"):
        read_reviews(path, categories=["attached_building", "n_cameras"])


def test_neyman_jeffreys_floor_on_a_pilot_that_saw_no_miss() -> None:
    counts = _counts({"median0:Unanimous": 1000, "median1:2 vs 1": 100})
    # The pilot saw 13 zero-camera panoramas with no camera (no rare miss) and 4 varied ones.
    pilot = pd.DataFrame(
        {
            "PanoramaId": [f"median0:Unanimous-{i:04d}" for i in range(13)]
            + [f"median1:2 vs 1-{i:04d}" for i in range(4)],
            "attached_street": [0] * 13 + [0, 1, 2, 3],
        }
    )
    kw = {"n": 40, "allocation": "neyman", "pilot": pilot, "pilot_value": "reference"}
    bare = plan_review(counts, pilot_floor="none", **kw)  # type: ignore[arg-type]
    assert bare.attrs["strata"]["median0:Unanimous"]["n"] == 2  # sd 0: only the minimum
    safe = plan_review(counts, **kw)  # type: ignore[arg-type]
    # Jeffreys: 0 of 13 wrong -> p = 0.5 / 14, floor sqrt(p (1 - p)); the other stratum keeps
    # its sd (its floor, with 3 of 4 wrong, is below it).
    p = 0.5 / 14
    sd0, sd1 = np.sqrt(p * (1 - p)), np.std([0, 1, 2, 3], ddof=1)
    n0 = 2 + 36 * 1000 * sd0 / (1000 * sd0 + 100 * sd1)
    assert safe.attrs["strata"]["median0:Unanimous"]["n"] == round(n0)  # 26.2 -> 26
    with pytest.raises(OptionError, match="pilot_floor"):
        plan_review(counts, pilot_floor="beta", **kw)  # type: ignore[arg-type]
