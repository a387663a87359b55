"""Goal 1 of issue 10: a narrower interval on the public-camera ratio with the same 104 reviews.

On the synthetic city (``camcensus.simulate.simulate_city(seed, errors=...)``) the experts are
the truth on the reviewed panoramas. Each city's panoramas get Amnesty's count (the median of 3
volunteers; a panorama with fewer than 3 answers is left out, a volunteer counts once per
panorama) and Amnesty's 8 strata on ``attached_street``.

Target (the quantity every interval is judged on): ``R = sum of the decoders' medians / sum of
the true counts`` over the panoramas of the 8 sampled strata (median 0, 1, 2; the median-3+
panoramas are outside the design, as in Amnesty's review).

Designs, all with n = 104 reviews:

- ``amnesty``: equal allocation 8 x 13 + Amnesty's weighted bootstrap (the baseline);
- ``equal+lin``: the same sample, stratified linearisation (the estimator alone);
- ``prop+lin`` / ``prop+bayes``: proportional allocation (at least 2 per stratum), no pilot;
- ``neyman+lin`` / ``neyman+bayes``: Neyman allocation, the pilot being the previous city's
  Amnesty-design review (the last study's 104 reviews; its reviews are not counted in the 104).

A replicate is one city (seed) and one review sample; ``--samples`` draws several samples per
city (independent review designs on the same population) to spend less time simulating.
Run: ``.venv/bin/python benchmarks/bench_quality_ratio.py [--full]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from camcensus.aggregate import agreement_class
from camcensus.quality._sim import ERROR_MODELS
from camcensus.quality.design import amnesty_strata, plan_review
from camcensus.quality.ratio import ratio_estimates, review_sample
from camcensus.simulate import simulate_city

CAT = "attached_street"
BROOKLYN = Path(__file__).resolve().parents[2] / "shared/data/amnesty_decode"
BROOKLYN_CSV = BROOKLYN / "amnesty_international_cameras_brooklyn.csv"


def city_counts(seed: int, errors: object) -> tuple[pd.DataFrame, pd.Series]:
    """Return Amnesty-style counts (median of 3, agreement) and the truth per panorama."""
    city = simulate_city(seed, errors=errors)  # type: ignore[arg-type]
    sub = city.submissions.merge(city.intersections[["IntersectionId", "PanoramaId"]])
    sub = sub.drop_duplicates(["PanoramaId", "DecoderId"])
    sub = sub[sub.groupby("PanoramaId")["DecoderId"].transform("size") >= 3]
    sub = sub.groupby("PanoramaId", sort=True).head(3)
    vals = sub.sort_values("PanoramaId", kind="stable")[CAT].to_numpy().reshape(-1, 3)
    ids = sub.sort_values("PanoramaId", kind="stable")["PanoramaId"].to_numpy()[::3]
    counts = pd.DataFrame(
        {
            "PanoramaId": ids,
            f"{CAT}_median": np.median(vals, axis=1),
            f"{CAT}_agreement": agreement_class(vals),
        }
    )
    truth = city.truth.set_index("PanoramaId")[CAT]
    return counts, truth


def one_design(
    counts: pd.DataFrame,
    truth: pd.Series,
    allocation: str,
    seed: int,
    pilot: pd.DataFrame | None,
    methods: tuple[str, ...],
    n_boot: int,
) -> tuple[dict[str, tuple[float, float]], pd.DataFrame]:
    plan = plan_review(counts, n=104, allocation=allocation, pilot=pilot, seed=seed)  # type: ignore[arg-type]
    reviews = pd.DataFrame({"PanoramaId": plan["PanoramaId"]})
    reviews[CAT] = plan["PanoramaId"].map(truth).to_numpy()
    sample = review_sample(plan, reviews, category=CAT)
    res = ratio_estimates(sample, methods=methods, n_boot=n_boot, seed=seed)
    pilot_out = reviews.assign(stratum=plan["stratum"], **{f"{CAT}_median": plan[f"{CAT}_median"]})
    return {r.method: (r.low, r.high) for r in res}, pilot_out


def run_model(name: str, cities: int, samples: int, n_boot: int) -> pd.DataFrame:
    errors = ERROR_MODELS[name]
    rows = []
    pilot: pd.DataFrame | None = None
    for c in range(-1, cities):
        seed = 1000 + c
        counts, truth = city_counts(seed, errors)
        strata = amnesty_strata(counts, CAT)
        inside = strata.str.startswith("median") & (strata != "median3+")
        med = counts.loc[inside, f"{CAT}_median"].to_numpy()
        tru = counts.loc[inside, "PanoramaId"].map(truth).to_numpy()
        target = med.sum() / tru.sum()
        for s in range(samples):
            sseed = seed * 100 + s
            got: dict[str, tuple[float, float]] = {}
            eq, pilot_next = one_design(
                counts, truth, "equal", sseed, None, ("bootstrap", "linearization"), n_boot
            )
            got["amnesty"] = eq["bootstrap"]
            got["equal+lin"] = eq["linearization"]
            pr, _ = one_design(
                counts, truth, "proportional", sseed, None, ("linearization", "bayes"), n_boot
            )
            got["prop+lin"], got["prop+bayes"] = pr["linearization"], pr["bayes"]
            if pilot is not None:
                ny, _ = one_design(
                    counts, truth, "neyman", sseed, pilot, ("linearization", "bayes"), n_boot
                )
                got["neyman+lin"], got["neyman+bayes"] = ny["linearization"], ny["bayes"]
            if c >= 0:
                for design, (lo, hi) in got.items():
                    rows.append(
                        {
                            "model": name,
                            "city": seed,
                            "sample": s,
                            "design": design,
                            "target": target,
                            "low": lo,
                            "high": hi,
                        }
                    )
            if s == 0:
                first_pilot = pilot_next
        pilot = first_pilot
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(
        width=df["high"] - df["low"],
        covered=(df["low"] <= df["target"]) & (df["target"] <= df["high"]),
    )
    base = df[df["design"] == "amnesty"].set_index(["model", "city", "sample"])["width"]
    df["width_vs_amnesty"] = (
        df["width"].to_numpy()
        / base.reindex(pd.MultiIndex.from_frame(df[["model", "city", "sample"]])).to_numpy()
    )
    out = df.groupby(["model", "design"], sort=False).agg(
        replicates=("width", "size"),
        coverage=("covered", "mean"),
        median_width=("width", "median"),
        mean_width=("width", lambda w: float(np.mean(np.minimum(w, 1e9)))),
        median_width_ratio=("width_vs_amnesty", "median"),
        mean_target=("target", "mean"),
    )
    return out.reset_index()


def brooklyn() -> None:
    if not BROOKLYN_CSV.exists():
        print(f"Brooklyn file not found at {BROOKLYN_CSV}: skipped")
        return
    counts = pd.read_csv(BROOKLYN_CSV, dtype={"PanoramaId": str})
    print(f"\nBrooklyn ({BROOKLYN_CSV.name}): {len(counts)} panoramas")
    eq = plan_review(counts, n=104, allocation="equal", seed=0)
    pr = plan_review(counts, n=104, allocation="proportional", seed=0)
    table = pd.DataFrame(
        {
            "N_h": {h: v["N"] for h, v in eq.attrs["strata"].items()},
            "n_h equal": {h: v["n"] for h, v in eq.attrs["strata"].items()},
            "weight equal": {h: v["N"] / v["n"] for h, v in eq.attrs["strata"].items()},
            "n_h proportional": {h: v["n"] for h, v in pr.attrs["strata"].items()},
        }
    )
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    inside = sum(v["N"] for v in eq.attrs["strata"].values())
    print(f"in the 8 strata: {inside}; left out: {eq.attrs['left_out']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes (>= 200 replicates)")
    ap.add_argument("--cities", type=int, default=None, help="cities per error model")
    ap.add_argument("--samples", type=int, default=None, help="review samples per city")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--models", default="default,miss_prone,over_counting")
    args = ap.parse_args(argv)
    cities = args.cities or (40 if args.full else 6)
    samples = args.samples or (5 if args.full else 2)
    t0 = time.perf_counter()
    parts = [run_model(m, cities, samples, args.n_boot) for m in args.models.split(",")]
    res = summarise(pd.concat(parts, ignore_index=True))
    pd.set_option("display.width", 160)
    print(
        f"{cities} cities x {samples} samples per error model; n = 104; level 0.95; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print(res.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    brooklyn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
