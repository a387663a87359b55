"""The synthetic city: seeded, internally consistent, and its truth recoverable."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import statsmodels.api as sm

from camcensus.aggregate import aggregate_submissions
from camcensus.simulate import ErrorModel, simulate_city


def test_same_seed_same_city_other_seed_other_city() -> None:
    a, b, c = simulate_city(3), simulate_city(3), simulate_city(4)
    pd.testing.assert_frame_equal(a.submissions, b.submissions)
    pd.testing.assert_frame_equal(a.census, b.census)
    assert not a.submissions.equals(c.submissions)


def test_city_independent_of_process_hash_seed() -> None:
    code = (
        "import hashlib; from camcensus.simulate import simulate_city; "
        "c = simulate_city(5, nx=10, ny=10); "
        "print(hashlib.sha256(c.submissions.to_csv().encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    }
    assert len(digests) == 1


def test_observations_are_consistent(city) -> None:  # type: ignore[no-untyped-def]
    s = city.submissions
    np.testing.assert_array_equal(
        s["n_cameras"], s["attached_street"] + s["attached_building"] + s["attached_unknown"]
    )
    np.testing.assert_array_equal(
        s["attached_street"], s["type_dome"] + s["type_bullet"] + s["type_unknown"]
    )
    assert s["SubmissionId"].is_unique
    # Pseudonymous volunteers: random ids only, no e-mail-like strings.
    assert not s["DecoderId"].str.contains("@").any()
    # Every intersection lies in a tract.
    pts = city.truth.geometry
    assert city.tracts.geometry.union_all().contains(pts).all()


def test_perfect_volunteers_recover_the_truth_exactly() -> None:
    perfect = ErrorModel(
        miss_mean=1e-9, p_attach_correct=1.0, p_type_correct=1.0, false_positive_rate=0.0
    )
    city = simulate_city(7, errors=perfect, nx=20, ny=20)
    got = aggregate_submissions(
        city.submissions, city.intersections, city.panoramas, boroughs=city.boroughs
    ).set_index("PanoramaId")
    truth = city.truth.set_index("PanoramaId").loc[got.index]
    for c in ("attached_street", "attached_building", "type_dome", "type_bullet"):
        np.testing.assert_array_equal(got[f"{c}_median"], truth[c])
    assert (got["attached_street_agreement"] == "Unanimous").all()


def test_median_of_miss_prone_volunteers_undercounts() -> None:
    city = simulate_city(11, errors=ErrorModel(miss_mean=0.3, false_positive_rate=0.02))
    got = aggregate_submissions(city.submissions, city.intersections, city.panoramas)
    truth = city.truth.set_index("PanoramaId").loc[got["PanoramaId"]]
    ratio = got["attached_street_median"].sum() / truth["attached_street"].sum()
    # Each camera is missed by the median when 2 of 3 miss it: about 3p^2 - 2p^3 = 0.22.
    assert 0.65 < ratio < 0.9
    total_ratio = (
        got[["attached_street_median", "attached_building_median"]].sum().sum()
        / truth[["attached_street", "attached_building"]].sum().sum()
    )
    assert total_ratio < 0.95


def test_placement_effect_recoverable_from_truth() -> None:
    # Poisson regression of true public cameras on the tract non-white fraction recovers the
    # log-rate the city was built with (the disparity models of a later stage rely on this).
    hits = 0
    for seed in range(10):
        city = simulate_city(seed)
        census = city.census.set_index("GEOID")
        nwf = (census["popn.black"] + census["popn.hispanic"]) / (
            census["popn.black"] + census["popn.hispanic"] + census["popn.white"]
        )
        t = city.truth
        X = pd.DataFrame(
            {
                "const": 1.0,
                "nwf": nwf.loc[t["GEOID"]].to_numpy(),
                "signal": t["traffic_signal"].astype(float).to_numpy(),
            }
        )
        fit = sm.GLM(t["attached_street"].to_numpy(), X, family=sm.families.Poisson()).fit()
        lo, hi = fit.conf_int().loc["nwf"]
        hits += lo <= city.params["beta_nonwhite"] <= hi
    assert hits >= 8


def test_written_files_pass_the_strict_readers(city, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from camcensus import Ledger
    from camcensus.io import census, decode

    paths = city.write(tmp_path)
    ledger = Ledger()
    subs = decode.submissions_from_csv(paths["raw_counts"], ledger=ledger)
    inter = decode.raw_intersections_from_csv(paths["raw_intersections"])
    pans = decode.panoramas_from_csv(paths["panoramas"])
    tracts = census.tracts_from_file(paths["tracts"], ledger=ledger)
    census.boroughs_from_file(paths["boroughs"], ledger=ledger)
    table = census.census_from_csv(paths["census"], ledger=ledger)
    # Nothing excluded or repaired on reading; every tract has its census row.
    assert ledger.total() == 0 and not ledger.notes
    assert len(census.tracts_without_census(tracts["GEOID"], table.index)) == 0
    got = aggregate_submissions(subs, inter, pans, boroughs=city.boroughs, ledger=ledger)
    # Every panorama lies in a borough polygon; none is flagged.
    assert got["BoroName"].notna().all() and not ledger.flagged
