"""Adaptive redundancy and agreement: tasks saved vs error lost, on the synthetic city and Brooklyn.

For each volunteer error model (default, miss-prone, over-counting) and each rule of
``camcensus.quality.adaptive.RULES``, over many seeds of the synthetic city: volunteer tasks
used against Amnesty's 3 per panorama, and the error of the total of medians (Amnesty's sum of
per-category medians) against the truth. The baseline of the same run is the ``fixed`` rule on
the same answers (paired). The issue's goal 3 is read as: tasks saved >= 25 % AND the mean over
seeds of |total error| as a percentage of the true total rises by at most 1 percentage point
over ``fixed``, and so does the per-panorama error (``100 * sum |panorama error| / true total``:
a rule that wins only because biases cancel in the total shows here). ``stop_posterior`` is
tuned on seeds 0-19 (``--tune``: its tolerance, with and without simulated machine tags) and
every rule is evaluated on seeds 20 onwards (held out). Then what each rule would have saved
on Amnesty's Brooklyn agreement distribution (answer order assumed random), and
Krippendorff's alpha per error model (and why there is none on the real data).

    .venv/bin/python benchmarks/bench_adaptive.py          # seeds 20-69 (~3 minutes)
    .venv/bin/python benchmarks/bench_adaptive.py --full   # seeds 20-219 (200 held-out seeds)
    .venv/bin/python benchmarks/bench_adaptive.py --tune   # seeds 0-19, stop_posterior's grid
    .venv/bin/python benchmarks/bench_adaptive.py --tags-from tags.csv  # the real detector's tags

``--tags-from`` reads ``benchmarks/detector_tags.py``'s output (the trained detector run on
every panorama of whole synthetic cities) and measures ``stop_posterior`` with those machine
tags instead of simulated ones: (1) how the real tags per panorama differ from the simulated
Binomial(T, recall) + Poisson(false tags); (2) on each city the file covers, ``--draws`` draws
of volunteers, paired with the simulated tags on the same answers; (3) on the held-out seeds,
each panorama's tags drawn from the real tags of panoramas with the same true count (a
bootstrap of the detector's behaviour per count). With ``--tune``, (3) alone on seeds 0-19
(to compare ``--tag-threshold`` values on cities the evaluation does not use; the tags are
still drawn from the file's cities, e.g. 20).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from camcensus.quality._sim import ERROR_MODELS
from camcensus.quality.adaptive import (
    DETECTOR_FALSE_TAGS,
    DETECTOR_RECALL,
    POSTERIOR_TOLERANCE,
    draw_answers,
    savings_on_agreements,
    simulate_adaptive,
)
from camcensus.quality.agreement import alpha_table, krippendorff_alpha
from camcensus.simulate import simulate_city

BROOKLYN = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "amnesty_decode"
    / "amnesty_international_cameras_brooklyn.csv"
)
GOAL_SAVED_PCT = 25.0
GOAL_ERROR_PP = 1.0
TUNE_SEEDS = range(20)
TUNE_GRID = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08)
_ATTACH = ["attached_street", "attached_building", "attached_unknown"]
#: A true count with fewer panoramas than this in the tag file borrows the largest count that
#: has as many (its false tags, and Binomial(T, that count's recall) true ones).
MIN_DONORS = 20
_REAL = "stop_posterior+detector (real tags)"
_RESAMPLED = "stop_posterior+detector (real tags, resampled)"


def _fixed_k2(seed: int, errors: object, truth: np.ndarray) -> dict[str, float]:
    """The reference "always 2 answers" (median of 2 = their mean), on the same answers."""
    pool = draw_answers(truth, errors, n_answers=5, seed=seed + 1_000_003)  # type: ignore[arg-type]
    med = np.median(pool.answers[:, :2, :], axis=1)
    t = float(truth.sum())
    err = np.abs(med.sum(axis=1) - truth.sum(axis=1))
    return {
        "rule": "fixed_k2",
        "decide_on": "n_cameras",
        "tolerance": np.nan,
        "seed": seed,
        "panoramas": len(truth),
        "tasks": 2 * len(truth),
        "tasks_fixed": 3 * len(truth),
        "tasks_saved_pct": 100.0 / 3.0,
        "total_true": t,
        "total_estimate": float(med.sum()),
        "total_error": float(med.sum()) - t,
        "total_abs_error_pct": 100.0 * abs(float(med.sum()) - t) / t,
        "public_true": float(truth[:, 0].sum()),
        "public_estimate": float(med[:, 0].sum()),
        "public_abs_error_pct": 100.0
        * abs(float(med[:, 0].sum()) - truth[:, 0].sum())
        / truth[:, 0].sum(),
        "panorama_mae": float(err.mean()),
        "panorama_mae_pct": 100.0 * float(err.sum()) / t,
    }


def _summarise(runs: pd.DataFrame) -> pd.DataFrame:
    fixed = runs[(runs.rule == "fixed") & (runs.decide_on == "n_cameras")]
    fixed = fixed.set_index(["model", "seed"])
    rows = []
    groups = runs.groupby(["model", "decide_on", "rule", "tolerance"], sort=False, dropna=False)
    for (model, mode, rule, tol), part in groups:
        part = part.set_index(["model", "seed"])
        base = fixed.loc[part.index]
        delta = part["total_abs_error_pct"] - base["total_abs_error_pct"]
        d_mae = part["panorama_mae_pct"] - base["panorama_mae_pct"]
        saved = float(part["tasks_saved_pct"].mean())
        mean_delta = float(delta.mean())
        rows.append(
            {
                "model": model,
                "decide_on": mode,
                "rule": rule,
                "tol": tol,
                "seeds": len(part),
                "tasks_per_pano": float((part["tasks"] / part["panoramas"]).mean()),
                "saved_pct": saved,
                "abs_err_pct": float(part["total_abs_error_pct"].mean()),
                "bias_pct": float((100 * part["total_error"] / part["total_true"]).mean()),
                "d_abs_err_pp": mean_delta,
                "d_se": float(delta.std(ddof=1) / np.sqrt(len(delta))) if len(delta) > 1 else 0.0,
                "d_max_pp": float(delta.max()),
                "public_err_pct": float(part["public_abs_error_pct"].mean()),
                "mae": float(part["panorama_mae"].mean()),
                "mae_pct": float(part["panorama_mae_pct"].mean()),
                "d_mae_pct_pp": float(d_mae.mean()),
                "meets_goal": saved >= GOAL_SAVED_PCT
                and mean_delta <= GOAL_ERROR_PP
                and float(d_mae.mean()) <= GOAL_ERROR_PP,
            }
        )
    return pd.DataFrame(rows)


def _presence_alpha_range(counts: pd.DataFrame, category: str) -> tuple[float, float, int]:
    """Range of nominal alpha on "camera present" (count > 0) that the agreement classes allow.

    With 3 answers, the class and median fix the yes/no pattern of every panorama except
    "2 vs 1" with median > 0 (is the odd answer 0?) and "All disagree" (is the lowest 0?).
    With ``j`` of those ``J`` panoramas mixed, nominal alpha is
    ``1 - (n - 1) * M / (n_0 * n_1)`` (M mixed panoramas, n_0 / n_1 answers no / yes);
    scanning j = 0..J gives the range. Returns (low, high, J).
    """
    med = counts[f"{category}_median"].to_numpy(dtype="float64")
    agr = counts[f"{category}_agreement"].to_numpy(dtype=object)
    n_units = len(med)
    u0 = int(((agr == "Unanimous") & (med == 0)).sum())
    t0 = int(((agr == "2 vs 1") & (med == 0)).sum())
    unknown = int(((agr == "2 vs 1") & (med > 0)).sum() + (agr == "All disagree").sum())
    n = 3 * n_units
    j = np.arange(unknown + 1)
    mixed = t0 + j
    n0 = 3 * u0 + 2 * t0 + j
    alpha = 1 - (n - 1) * mixed / (n0 * (n - n0))
    # Cross-check the closed form at both ends with the general implementation.
    for jj in (0, unknown):
        rows = [[0, 0, 0]] * u0 + [[0, 0, 1]] * t0 + [[0, 1, 1]] * jj
        rows += [[1, 1, 1]] * (n_units - u0 - t0 - jj)
        check = krippendorff_alpha(np.array(rows, dtype=float), "nominal")
        assert abs(check - alpha[jj]) < 1e-9, (check, alpha[jj])
    return float(alpha.min()), float(alpha.max()), unknown


def _tune(summary: pd.DataFrame) -> pd.DataFrame:
    """Per rule variant and decide_on: the tolerance with the most tasks saved under the worst
    error model among those meeting the goal under all three (tuning seeds only)."""
    post = summary[summary.rule.str.startswith("stop_posterior")]
    rows = []
    for (rule, mode), part in post.groupby(["rule", "decide_on"], sort=False):
        per_tol = part.groupby("tol").agg(
            worst_saved=("saved_pct", "min"),
            worst_d_err=("d_abs_err_pp", "max"),
            worst_d_mae=("d_mae_pct_pp", "max"),
            all_meet=("meets_goal", "all"),
        )
        ok = per_tol[per_tol.all_meet]
        best = ok["worst_saved"].idxmax() if len(ok) else np.nan
        rows.append({"rule": rule, "decide_on": mode, "chosen_tol": best})
        print(f"\n{rule} ({mode}), tuning seeds:")
        print(per_tol.round(3).to_string())
    return pd.DataFrame(rows)


def _read_tags(path: Path, threshold: float) -> pd.DataFrame:
    """The detector's tags per panorama at ``threshold`` (detector_tags.py's columns)."""
    raw = pd.read_csv(path, dtype={"PanoramaId": str})
    s = f"{round(threshold * 100):02d}"
    if f"tags_{s}" not in raw.columns:
        have = sorted(int(c[5:]) / 100 for c in raw.columns if c.startswith("tags_"))
        raise SystemExit(
            f"{path}: no column tags_{s} (score {threshold}); pass --tag-threshold one of {have}"
        )
    out = raw[["seed", "PanoramaId", "n_true"]].copy()
    out["tags"] = raw[f"tags_{s}"].astype(int)
    out["tp"] = raw[f"tp_{s}"].astype(int)
    out["uncounted"] = raw[f"uncounted_{s}"].astype(int)
    return out


def _tag_distribution(tags: pd.DataFrame) -> pd.DataFrame:
    """Real tags per true count against the simulation's Binomial(T, r) + Poisson(f)."""
    t = tags["n_true"].clip(upper=4)
    rows = []
    for value, part in tags.groupby(t):
        n = part["n_true"].to_numpy(float)
        rows.append(
            {
                "true_count": f"{int(value)}+" if value == 4 else str(int(value)),
                "panoramas": len(part),
                "tags_mean": float(part["tags"].mean()),
                "tags_var": float(part["tags"].var(ddof=1)) if len(part) > 1 else np.nan,
                "sim_mean": float((DETECTOR_RECALL * n + DETECTOR_FALSE_TAGS).mean()),
                "sim_var": float(
                    (DETECTOR_RECALL * (1 - DETECTOR_RECALL) * n + DETECTOR_FALSE_TAGS).mean()
                ),
                "recall": float(part["tp"].sum() / n.sum()) if n.sum() else np.nan,
                "false_per_pano": float((part["tags"] - part["tp"]).mean()),
                "far_per_pano": float(part["uncounted"].mean()),
            }
        )
    return pd.DataFrame(rows)


def _tag_sampler(tags: pd.DataFrame) -> Any:
    """Draw tags for true counts from the real tags of panoramas with the same count."""
    by_t = {int(t): part for t, part in tags.groupby("n_true") if len(part) >= MIN_DONORS}
    if not any(t >= 1 for t in by_t):
        raise SystemExit(f"fewer than {MIN_DONORS} panoramas with cameras in the tag file")
    top = max(by_t)
    top_part = by_t[top]
    top_recall = float(top_part["tp"].sum() / top_part["n_true"].sum())
    top_false = (top_part["tags"] - top_part["tp"]).to_numpy(int)

    def draw(true_counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty(len(true_counts), dtype="int64")
        for t in np.unique(true_counts):
            rows = np.flatnonzero(true_counts == t)
            if int(t) in by_t:
                out[rows] = rng.choice(by_t[int(t)]["tags"].to_numpy(int), len(rows))
            else:
                out[rows] = rng.choice(top_false, len(rows)) + rng.binomial(
                    int(t), top_recall, len(rows)
                )
        return out

    return draw


def _posterior_options(args: argparse.Namespace, truth: np.ndarray) -> dict[str, Any]:
    return {
        "truth": truth,
        "rules": ("fixed", "stop_posterior"),
        "tolerances": (args.tolerance,),
        "pilot": args.pilot,
        "gold": args.gold,
    }


def _real_tags(args: argparse.Namespace) -> None:
    """``--tags-from``: stop_posterior with the real detector's machine tags."""
    tags = _read_tags(args.tags_from, args.tag_threshold)
    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 30)
    print(
        f"Real machine tags at score >= {args.tag_threshold}: {len(tags)} panoramas of cities "
        f"{sorted(tags['seed'].unique().tolist())} ({args.tags_from}). Simulated: "
        f"Binomial(T, {DETECTOR_RECALL:.3f}) + Poisson({DETECTOR_FALSE_TAGS})."
    )
    distribution = _tag_distribution(tags)
    print(distribution.round(3).to_string(index=False))
    t0 = time.perf_counter()
    paired, resampled = [], []
    for seed, part in [] if args.tune else tags.groupby("seed"):
        truth_table = simulate_city(int(seed)).truth
        order = truth_table["PanoramaId"].astype(str)
        if set(order) - set(part["PanoramaId"]):
            print(f"city {seed}: {len(part)} of {len(order)} panoramas in the file; not paired")
            continue
        city_tags = part.set_index("PanoramaId").loc[order, "tags"].to_numpy(int)
        truth = truth_table[_ATTACH].to_numpy()
        for name, errors in ERROR_MODELS.items():
            for d in range(args.draws):
                kw = _posterior_options(args, truth)
                sim = simulate_adaptive(
                    int(seed), errors, detector=True, answer_seed=1000 * int(seed) + d, **kw
                )
                real = simulate_adaptive(
                    int(seed),
                    errors,
                    machine_tags=city_tags,
                    answer_seed=1000 * int(seed) + d,
                    **kw,
                )
                real = real[real.rule == "stop_posterior+detector"].assign(rule=_REAL)
                out = pd.concat([sim, real], ignore_index=True)
                out["seed"] = d
                out.insert(0, "model", f"{name} (city {seed})")
                paired.append(out)
    draw = _tag_sampler(tags)
    n_seeds = args.seeds or (200 if args.full else 50)
    seeds = TUNE_SEEDS if args.tune else range(20, 20 + n_seeds)
    for seed in seeds:
        truth = simulate_city(seed).truth[_ATTACH].to_numpy()
        real_tags = draw(truth.sum(axis=1), np.random.default_rng([seed, 77]))
        for name, errors in ERROR_MODELS.items():
            kw = _posterior_options(args, truth)
            sim = simulate_adaptive(seed, errors, detector=True, **kw)
            real = simulate_adaptive(seed, errors, machine_tags=real_tags, **kw)
            real = real[real.rule == "stop_posterior+detector"].assign(rule=_RESAMPLED)
            out = pd.concat([sim, real], ignore_index=True)
            out.insert(0, "model", name)
            resampled.append(out)
    print(f"({time.perf_counter() - t0:.0f} s)")
    results: dict[str, Any] = {"distribution": distribution.to_dict(orient="records")}
    cols = ["model", "rule", "seeds", "saved_pct", "d_abs_err_pp", "d_se", "d_mae_pct_pp"]
    cols += ["meets_goal"]
    if paired:
        summary = _summarise(pd.concat(paired, ignore_index=True))
        print(
            f"\nWhole cities with the real detector's tags: {args.draws} draws of volunteers each"
        )
        print(summary[cols].round(3).to_string(index=False))
        results["paired"] = summary.to_dict(orient="records")
    summary = _summarise(pd.concat(resampled, ignore_index=True))
    print(
        f"\nSeeds {seeds.start}-{seeds.stop - 1}: each panorama's tags drawn from the real tags of "
        f"panoramas with its true count (counts with < {MIN_DONORS} panoramas borrow the "
        "largest count's false tags and recall)"
    )
    print(summary[cols].round(3).to_string(index=False))
    results["resampled"] = summary.to_dict(orient="records")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="seeds 20-219 instead of 20-69")
    parser.add_argument("--seeds", type=int, default=None, help="number of held-out seeds")
    parser.add_argument("--tune", action="store_true", help="tune stop_posterior, seeds 0-19")
    parser.add_argument(
        "--tolerance", type=float, default=POSTERIOR_TOLERANCE, help="stop_posterior's tolerance"
    )
    parser.add_argument("--pilot", type=int, default=100, help="stop_posterior's pilot")
    parser.add_argument("--gold", type=int, default=75, help="stop_posterior's gold panoramas")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument(
        "--tags-from", type=Path, default=None, help="detector_tags.py's CSV: real machine tags"
    )
    parser.add_argument(
        "--tag-threshold", type=float, default=0.5, help="score of a machine tag (--tags-from)"
    )
    parser.add_argument(
        "--draws", type=int, default=20, help="volunteer draws per whole city (--tags-from)"
    )
    args = parser.parse_args()
    if args.tags_from is not None:
        _real_tags(args)
        return
    n_seeds = args.seeds or (200 if args.full else 50)
    seeds = TUNE_SEEDS if args.tune else range(20, 20 + n_seeds)
    tolerances = TUNE_GRID if args.tune else (args.tolerance,)
    pd.set_option("display.width", 220)
    pd.set_option("display.max_columns", 30)

    t0 = time.perf_counter()
    runs = []
    for seed in seeds:
        # The truth does not depend on the error model: one city per seed.
        truth = simulate_city(seed).truth[_ATTACH].to_numpy()
        for name, errors in ERROR_MODELS.items():
            out = simulate_adaptive(
                seed,
                errors,
                truth=truth,
                decide_on=("n_cameras", "categories"),
                tolerances=tolerances,
                detector=True,
                pilot=args.pilot,
                gold=args.gold,
            )
            out = pd.concat([out, pd.DataFrame([_fixed_k2(seed, errors, truth)])])
            out.insert(0, "model", name)
            runs.append(out)
    all_runs = pd.concat(runs, ignore_index=True)
    summary = _summarise(all_runs)
    if args.tune:
        print(
            f"Tuning stop_posterior on seeds 0-19 ({time.perf_counter() - t0:.0f} s), pilot "
            f"{args.pilot}, gold {args.gold}."
        )
        print(_tune(summary).to_string(index=False))
        return
    alphas = []
    for seed in range(10):
        for name, errors in ERROR_MODELS.items():
            city = simulate_city(seed, errors=errors)
            sub = city.submissions.merge(
                city.intersections[["IntersectionId", "PanoramaId", "Borough"]],
                on="IntersectionId",
            )
            table = alpha_table(sub, n_boot=1000 if seed == 0 else 0, seed=seed)
            table.insert(0, "model", name)
            table.insert(1, "seed", seed)
            alphas.append(table)
    elapsed = time.perf_counter() - t0

    print(
        f"Synthetic city (40 x 40 grid), held-out seeds {seeds.start}-{seeds.stop - 1} per error "
        f"model, {elapsed:.0f} s; stop_posterior tolerance {args.tolerance}, pilot "
        f"{args.pilot} panoramas at k = 3 and {args.gold} gold panoramas x 2 answers (all "
        "counted as tasks); '+detector': machine tags simulated from the detector's measured "
        "rates."
    )
    print(
        "Goal 3: saved >= 25 % of tasks and d_abs_err_pp (mean over seeds of |total error| % "
        "minus the fixed rule's, same answers) <= 1.0 percentage point, and the same for the "
        "per-panorama error (d_mae_pct_pp)."
    )
    for mode in ("n_cameras", "categories"):
        print(f"\nRule decides on: {mode}")
        part = summary[summary.decide_on == mode].drop(columns="decide_on")
        print(part.round(3).to_string(index=False))

    print("\nAmnesty's Brooklyn agreement distribution (3 answers per panorama, random order):")
    brooklyn = None
    if BROOKLYN.exists():
        counts = pd.read_csv(BROOKLYN)
        tables = []
        for category in ("n_cameras", "attached_street"):
            t = savings_on_agreements(counts, category=category)
            t.insert(0, "category", category)
            tables.append(t)
        brooklyn = pd.concat(tables, ignore_index=True)
        print(brooklyn.round(2).to_string(index=False))
        print(
            "\nBrooklyn, nominal alpha on 'camera present' (count > 0): the range the agreement "
            "classes allow (the individual answers are not in the file):"
        )
        for category in ("n_cameras", "attached_street", "attached_building"):
            low, high, unknown = _presence_alpha_range(counts, category)
            print(
                f"  {category:18s} alpha in [{low:.3f}, {high:.3f}] "
                f"({unknown:,} panoramas with an unknown yes/no pattern)"
            )
    else:
        print(f"  (not run: {BROOKLYN} is missing)")

    alpha = pd.concat(alphas, ignore_index=True)
    seed0 = alpha[alpha.seed == 0].drop(columns=["seed", "interpretation"])
    print("\nKrippendorff's alpha on the synthetic city, seed 0 (95 % bootstrap over panoramas):")
    print(seed0.round(3).to_string(index=False))
    spread = (
        alpha[alpha.group == "all"]
        .groupby(["model", "category", "level"])["alpha"]
        .agg(["mean", "min", "max"])
        .reset_index()
    )
    print("\nalpha over seeds 0-9 (whole city):")
    print(spread.round(3).to_string(index=False))
    print(
        "\nReal data: the Brooklyn file holds each panorama's median and agreement class, not "
        "the individual answers, so alpha cannot be computed from it (it needs the answers "
        "of each volunteer: Amnesty's raw counts.csv or the platform's export)."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": n_seeds,
                    "summary": summary.to_dict(orient="records"),
                    "brooklyn": None if brooklyn is None else brooklyn.to_dict(orient="records"),
                    "alpha_seed0": seed0.to_dict(orient="records"),
                },
                indent=1,
                default=float,
            )
        )


if __name__ == "__main__":
    main()
