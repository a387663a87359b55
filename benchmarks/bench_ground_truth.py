"""Coverage of 95% intervals on synthetic cities whose placement effect is known.

Each city (seeded) places public cameras with log-rate ``beta_nonwhite`` per unit of tract
non-white share; volunteers count them with misses, mislabels and false positives; the median
of 3 is aggregated; the placement rate model (Poisson, cameras per surveyed intersection) is
fitted. Over many seeds, a well-calibrated 95% interval covers the true value ~95% of the time.
Both intervals are measured in the same run: profile likelihood (R's ``confint`` on a glm, the
models' default) against Wald (R's ``confint.default``), the baseline.

Usage: python benchmarks/bench_ground_truth.py [n_seeds]   (default 200)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from camcensus.aggregate import aggregate_submissions
from camcensus.coverage import add_coverage
from camcensus.simulate import simulate_city
from camcensus.stats import models

_Z = 1.959963984540054


def main(n_seeds: int = 200) -> None:
    t0 = time.perf_counter()
    hits, hits_truth, est, est_truth = 0, 0, [], []
    hits_wald, hits_truth_wald = 0, 0
    for seed in range(n_seeds):
        city = simulate_city(seed)
        beta = city.params["beta_nonwhite"]
        pan = aggregate_submissions(
            city.submissions, city.intersections, city.panoramas, boroughs=city.boroughs, seed=seed
        )
        tr = add_coverage(city.tracts, pan, workers=1)
        c = city.census.set_index("GEOID").loc[tr["GEOID"]]
        denom = c["popn.black"] + c["popn.hispanic"] + c["popn.white"]
        tr["nonwhite_fraction"] = ((c["popn.black"] + c["popn.hispanic"]) / denom).to_numpy()
        e = models.placement_poisson(tr).coef("nonwhite_fraction")
        est.append(e.estimate)
        hits += e.ci_low <= beta <= e.ci_high
        hits_wald += abs(e.estimate - beta) <= _Z * e.std_error
        # The same model on the true counts: separates model calibration from counting error.
        truth = city.truth.groupby("GEOID")["attached_street"].sum()
        tr["cameras"] = tr["GEOID"].map(truth).fillna(0).to_numpy()
        t = models.placement_poisson(tr).coef("nonwhite_fraction")
        est_truth.append(t.estimate)
        hits_truth += t.ci_low <= beta <= t.ci_high
        hits_truth_wald += abs(t.estimate - beta) <= _Z * t.std_error
    n = n_seeds
    print(f"{n} synthetic cities, true beta_nonwhite = {beta}")
    print(f"volunteer medians: coverage of 95% CI profile {hits / n:.3f}, Wald (baseline) "
          f"{hits_wald / n:.3f}; mean estimate {np.mean(est):.3f} "
          f"(sd {np.std(est):.3f})")  # fmt: skip
    print(f"true counts:       coverage of 95% CI profile {hits_truth / n:.3f}, Wald (baseline) "
          f"{hits_truth_wald / n:.3f}; mean estimate {np.mean(est_truth):.3f} "
          f"(sd {np.std(est_truth):.3f})")  # fmt: skip
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
