"""Benchmark the camera detector (issue 11): training time, held-out accuracy, CPU inference.

Targets: recall >= 0.8 at precision >= 0.8 for cameras >= 8 px on held-out synthetic panoramas;
>= 20 crops/s of 640 x 640 with onnxruntime on 2 cores (baseline in the same run: the JAX
forward pass of the same weights, jit-compiled, same threads); training time on CPU.

    .venv/bin/python benchmarks/bench_detect.py            # 60 panoramas, 10 epochs, 20 held out
    .venv/bin/python benchmarks/bench_detect.py --full     # 200 panoramas, 30 epochs, 50 held out
    .venv/bin/python benchmarks/bench_detect.py --model DIR  # evaluate an existing model only
    .venv/bin/python benchmarks/bench_detect.py --channels 16,24  # both widths, same run
    .venv/bin/python benchmarks/bench_detect.py --effort-from results.json  # effort only

With several ``--channels`` each width is trained and evaluated on the same data and seeds,
and the crops/s of all models are measured in interleaved rounds (so the machine's load hits
them alike).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _throughput(
    model_dir: Path, params: dict[str, Any] | None, *, threads: int, n: int
) -> dict[str, float]:
    import numpy as np

    from camcensus.detect.infer import load_detector

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (n, 640, 640, 3), dtype=np.uint8)
    det = load_detector(model_dir, threads=threads)
    det.predict(crops[:8])
    t = time.perf_counter()
    for s in range(0, n, 8):
        det.predict(crops[s : s + 8])
    ort_rate = n / (time.perf_counter() - t)
    out = {"onnxruntime_crops_per_s": ort_rate}
    if params is not None:
        import jax

        from camcensus.detect.model import forward

        f = jax.jit(lambda x: forward(params, x)["heatmap"])
        x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        f(x[:8]).block_until_ready()
        t = time.perf_counter()
        for s in range(0, n, 8):
            f(x[s : s + 8]).block_until_ready()
        out["jax_crops_per_s"] = n / (time.perf_counter() - t)
        out["ratio_onnxruntime_over_jax"] = ort_rate / out["jax_crops_per_s"]
    return out


def detector_rates(metrics: dict[str, Any], threshold: float = 0.5) -> dict[str, float]:
    """The detector's measured rates for the effort simulation (at its 0.5 score threshold).

    Measured on the cameras the census counts (``metrics["counted"]``; all drawn cameras for
    older metrics without it): ``recall_small`` / ``recall_big``: recall of cameras < 8 px /
    >= 8 px; ``share_small``: the counted cameras' share under 8 px; ``false_per_panorama``:
    detections matching no camera, per panorama (false machine tags a volunteer must reject);
    ``uncounted_per_panorama``: detections of drawn cameras the census does not count (beyond
    the view range: real cameras a volunteer may confirm).
    """
    m = metrics.get("counted") or {"all": metrics["overall"], **metrics["by_size"]}
    small, big, o = m["< 8 px"], m[">= 8 px"], m["all"]
    return {
        "threshold": threshold,
        "recall_small": float(small["recall"]) if small["cameras"] else 0.0,
        "recall_big": float(big["recall"]),
        "share_small": small["cameras"] / max(1, small["cameras"] + big["cameras"]),
        "false_per_panorama": (o["detections"] - o["true_positives"]) / metrics["panoramas"],
        "uncounted_per_panorama": m.get("detections_of_uncounted", 0) / metrics["panoramas"],
        "cameras": int(o["cameras"]),
    }


def effort_simulation(
    rates: dict[str, float],
    *,
    errors: Any = None,
    seeds: int = 20,
    p_confirm: float = 0.95,
    p_accept_false: float = 0.10,
    k_max: int = 5,
    volunteers: int = 80,
) -> dict[str, Any]:
    """Volunteer answers needed per panorama with and without the detector's pre-tags.

    On ``simulate_city(seed)`` (truth: cameras per panorama), ``seeds`` times:

    - **unaided** (Amnesty's task): each answer is by a volunteer drawn from a pool of
      :func:`camcensus.simulate.volunteers.draw_volunteer_models` (``errors``): each camera
      found with probability ``1 - miss`` plus Poisson(``false_positive_rate``) look-alikes;
    - **pre-tagged** ("verify" task): the detector tags each camera with its measured recall
      for the camera's size band (a camera is < 8 px with the measured share) plus
      Poisson(``false_per_panorama``) false machine tags; a volunteer confirms a true machine
      tag with ``p_confirm``, accepts a false one with ``p_accept_false``, confirms each of
      Poisson(``uncounted_per_panorama``) machine tags of cameras the census does not count
      (too far) with ``p_confirm`` (real cameras: an overcount), finds each camera the
      detector missed as an unaided volunteer would (``1 - miss``) and adds their own
      look-alikes as unaided;
    - the count of a panorama is the median of its answers (Amnesty's rule); errors are the
      mean absolute error per panorama and the error of the city's total, against the truth.

    Returns the errors for 1..``k_max`` unaided answers and 1..3 pre-tagged answers (and the
    machine alone), the smallest number of pre-tagged answers whose error is at most that of 3
    unaided ones, and the assumptions.
    """
    import numpy as np

    from camcensus.simulate import ErrorModel, simulate_city
    from camcensus.simulate.volunteers import draw_volunteer_models

    errors = errors or ErrorModel()
    acc: dict[str, list[tuple[float, float]]] = {}

    def add(key: str, count: np.ndarray, truth: np.ndarray) -> None:
        mae = float(np.abs(count - truth).mean())
        total = float(abs(count.sum() - truth.sum()) / truth.sum())
        acc.setdefault(key, []).append((mae, total))

    for seed in range(seeds):
        truth = simulate_city(seed).truth["n_cameras"].to_numpy(int)
        rng = np.random.default_rng([seed, 97])
        pool = draw_volunteer_models(volunteers, seed=seed, errors=errors)
        miss = np.array([v.miss for v in pool])
        fp = np.array([v.false_positive_rate for v in pool])
        n = len(truth)
        # Detector: per camera, small with the measured share, detected with its band's recall.
        small = rng.binomial(truth, rates["share_small"])
        hit = rng.binomial(small, rates["recall_small"]) + rng.binomial(
            truth - small, rates["recall_big"]
        )
        false = rng.poisson(rates["false_per_panorama"], n)
        far = rng.poisson(rates.get("uncounted_per_panorama", 0.0), n)
        add("machine alone", (hit + false + far).astype(float), truth)
        unaided, verified = [], []
        for _ in range(max(k_max, 3)):
            who = rng.integers(0, volunteers, n)
            unaided.append(rng.binomial(truth, 1 - miss[who]) + rng.poisson(fp[who]))
            who = rng.integers(0, volunteers, n)
            verified.append(
                rng.binomial(hit, p_confirm)
                + rng.binomial(false, p_accept_false)
                + rng.binomial(far, p_confirm)
                + rng.binomial(truth - hit, 1 - miss[who])
                + rng.poisson(fp[who])
            )
        for k in range(1, k_max + 1):
            add(f"unaided x{k}", np.median(np.stack(unaided[:k]), axis=0), truth)
        for m in range(1, 4):
            add(f"pre-tagged x{m}", np.median(np.stack(verified[:m]), axis=0), truth)
    table = {
        key: {
            "mae_per_panorama": float(np.mean([a for a, _ in v])),
            "total_error": float(np.mean([b for _, b in v])),
        }
        for key, v in acc.items()
    }

    def enough(measure: str) -> int | None:
        target = table["unaided x3"][measure]
        ok = [m for m in range(1, 4) if table[f"pre-tagged x{m}"][measure] <= target]
        return ok[0] if ok else None

    return {
        "rates": rates,
        "errors": {k: getattr(errors, k) for k in ("miss_mean", "false_positive_rate")},
        "seeds": seeds,
        "assumptions": {
            "p_confirm_true_machine_tag": p_confirm,
            "p_accept_false_machine_tag": p_accept_false,
            "missed_cameras_found_as_unaided": True,
            "volunteer_miss_independent_of_size": True,
            "aggregate": "median of the answers",
        },
        "table": table,
        "pre_tagged_answers_for_unaided_x3_mae": enough("mae_per_panorama"),
        "pre_tagged_answers_for_unaided_x3_total_error": enough("total_error"),
    }


def _print_effort(res: dict[str, Any]) -> None:
    print(
        f"effort (errors {res['errors']}, {res['seeds']} cities; detector {res['rates']}; "
        f"assumptions {res['assumptions']})"
    )
    for key, v in res["table"].items():
        print(
            f"  {key:16s} MAE/panorama {v['mae_per_panorama']:.3f}  total error "
            f"{100 * v['total_error']:.1f}%"
        )
    print(
        "  pre-tagged answers per panorama for the error of 3 unaided: per-panorama MAE "
        f"{res['pre_tagged_answers_for_unaided_x3_mae']}, total "
        f"{res['pre_tagged_answers_for_unaided_x3_total_error']}"
    )


def _effort_all(rates: dict[str, float], seeds: int) -> dict[str, Any]:
    from camcensus.quality._sim import ERROR_MODELS

    out = {}
    variants = {"": (0.95, 0.10), " optimistic": (0.99, 0.02)}
    for name, errors in ERROR_MODELS.items():
        for label, (conf, acc) in variants.items():
            out[name + label] = effort_simulation(
                rates, errors=errors, seeds=seeds, p_confirm=conf, p_accept_false=acc
            )
            print(f"[{name}{label}]", end=" ")
            _print_effort(out[name + label])
    return out


def _train_one(
    args: argparse.Namespace, width: int, n_train: int, epochs: int, results: dict[str, Any]
) -> tuple[Path, Any]:
    """Train one width (or take ``--model``); return its folder and parameters (or None)."""
    if args.model is not None:
        return args.model, None
    from camcensus.detect.train import train_synthetic, write_model_dir

    model_dir = (
        args.out / f"c{width}" if args.out else Path(tempfile.mkdtemp(prefix="bench_detect_"))
    )
    t = time.perf_counter()
    result, patches = train_synthetic(
        n_train,
        epochs=epochs,
        channels=width,
        seed=args.seed,
        mine=not args.no_mining,
        crop_fov_deg=args.crop_fov,
        progress=lambda s: print(f"[{width}] {s}", flush=True),
    )
    t_all = time.perf_counter() - t
    write_model_dir(model_dir, result, data={"synthetic_panoramas": n_train, "seed": args.seed})
    results[f"c{width}"] = {
        "model_dir": str(model_dir),
        "training": {
            "panoramas": n_train,
            "patches": len(patches.images),
            "epochs": epochs,
            "channels": width,
            "wall_seconds": round(t_all, 1),
            "train_seconds": round(result.seconds, 1),
            "config": result.config,
            "final_loss": round(result.history[-1]["loss"], 4),
        },
    }
    print(json.dumps(results[f"c{width}"]["training"], default=str), flush=True)
    return model_dir, result.params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes")
    ap.add_argument("--synthetic", type=int, help="training panoramas (default 60; full 200)")
    ap.add_argument("--epochs", type=int, help="epochs (default 10; full 30)")
    ap.add_argument("--holdout", type=int, help="held-out panoramas (default 20; full 50)")
    ap.add_argument(
        "--channels", default="16", help="backbone channels; a comma list compares widths"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crops", type=int, default=48, help="crops for the throughput test")
    ap.add_argument("--no-mining", action="store_true", help="skip hard-negative mining")
    ap.add_argument(
        "--crop-fov", type=float, default=60.0, help="crop field of view (degrees) to train for"
    )
    ap.add_argument("--model", type=Path, help="skip training: evaluate this model folder")
    ap.add_argument("--out", type=Path, help="keep the trained model folder here")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds per model")
    ap.add_argument(
        "--effort-from",
        type=Path,
        help="only the volunteer-effort simulation, with the detector rates of this JSON",
    )
    ap.add_argument("--effort-width", type=int, help="channels whose rates to use (effort)")
    ap.add_argument("--effort-seeds", type=int, default=20, help="cities of the simulation")
    args = ap.parse_args()
    if args.effort_from is not None:
        saved = json.loads(args.effort_from.read_text(encoding="utf-8"))
        width = args.effort_width or max(int(k[1:]) for k in saved if k[:1] == "c")
        det_rates = detector_rates(saved[f"c{width}"]["metrics"])
        det_rates["channels"] = width
        res = _effort_all(det_rates, args.effort_seeds)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
        return
    n_train = args.synthetic or (200 if args.full else 60)
    epochs = args.epochs or (30 if args.full else 10)
    holdout = args.holdout or (50 if args.full else 20)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from camcensus.detect.evaluate import evaluate_synthetic
    from camcensus.detect.infer import load_detector

    widths = [int(c) for c in str(args.channels).split(",") if c.strip()]
    if args.model is not None:
        # The model's own width labels its results.
        cfg = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
        widths = [int(cfg["train"]["channels"])]
    results: dict[str, Any] = {"threads": args.threads, "load_before": os.getloadavg()}
    models: dict[int, tuple[Path, Any]] = {}
    for width in widths:
        models[width] = _train_one(args, width, n_train, epochs, results)
    for width, (model_dir, _params) in models.items():
        detector = load_detector(model_dir, threads=args.threads)
        t = time.perf_counter()
        metrics, _d, _t = evaluate_synthetic(detector, holdout, seed=args.seed + 1)
        r = results.setdefault(f"c{width}", {})
        r["evaluate_seconds"] = round(time.perf_counter() - t, 1)
        r["metrics"] = {
            k: metrics[k] for k in ("panoramas", "overall", "by_size", "counted") if k in metrics
        }
        r["ece"] = metrics["calibration"]["ece"]
        r["by_group"] = {k: metrics["by_group"][k] for k in ("spread", "single_correction")}
        big = metrics["by_size"][">= 8 px"]
        op = big["at_precision_0.8"]
        o = metrics["overall"]
        print(
            f"[{width} channels] cameras >= 8 px: {big['cameras']}, AP {big['ap']:.3f}, recall "
            f"at precision >= 0.8: {op['recall']:.3f} (target 0.8) at score >= "
            f"{op['threshold']}; all cameras: {o['cameras']}, AP {o['ap']:.3f}; ECE "
            f"{r['ece']:.3f}",
            flush=True,
        )
        if "counted" in metrics:
            c = metrics["counted"]
            print(
                f"[{width} channels] counted cameras: "
                + "; ".join(
                    f"{band} {c[band]['cameras']} (recall {c[band]['recall']:.3f}, precision "
                    f"{c[band]['precision']:.3f}, AP {c[band]['ap']:.3f})"
                    for band in ("all", "< 8 px", ">= 8 px")
                )
                + f"; {c['uncounted_cameras']} drawn cameras not counted, "
                f"{c['detections_of_uncounted']} detections of them",
                flush=True,
            )
    # Throughput: interleaved rounds, so the machine's load falls on every width alike.
    rates: dict[int, list[dict[str, float]]] = {w: [] for w in models}
    for _round in range(args.rounds):
        for width, (model_dir, params) in models.items():
            rates[width].append(_throughput(model_dir, params, threads=args.threads, n=args.crops))
    results["load_after"] = os.getloadavg()
    for width, runs in rates.items():
        tp = {k: float(sorted(r[k] for r in runs)[len(runs) // 2]) for k in runs[0]}
        tp["rounds"] = len(runs)
        results[f"c{width}"]["throughput"] = tp
        print(
            f"[{width} channels] onnxruntime {tp['onnxruntime_crops_per_s']:.1f} crops/s on "
            f"{args.threads} threads (median of {len(runs)} rounds; target 20)"
            + (
                f"; JAX forward {tp['jax_crops_per_s']:.1f} crops/s, ratio "
                f"{tp['ratio_onnxruntime_over_jax']:.2f}"
                if "jax_crops_per_s" in tp
                else ""
            ),
            flush=True,
        )
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    width = args.effort_width or widths[-1]
    det_rates = detector_rates(results[f"c{width}"]["metrics"])
    det_rates["channels"] = width
    results["effort"] = _effort_all(det_rates, args.effort_seeds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
