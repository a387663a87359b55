"""Benchmark the camera detector (issue 11): training time, held-out accuracy, CPU inference.

Targets: recall >= 0.8 at precision >= 0.8 for cameras >= 8 px on held-out synthetic panoramas;
>= 20 crops/s of 640 x 640 with onnxruntime on 2 cores (baseline in the same run: the JAX
forward pass of the same weights, jit-compiled, same threads); training time on CPU.

    .venv/bin/python benchmarks/bench_detect.py            # 60 panoramas, 10 epochs, 20 held out
    .venv/bin/python benchmarks/bench_detect.py --full     # 200 panoramas, 30 epochs, 50 held out
    .venv/bin/python benchmarks/bench_detect.py --model DIR  # evaluate an existing model only
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes")
    ap.add_argument("--synthetic", type=int, help="training panoramas (default 60; full 200)")
    ap.add_argument("--epochs", type=int, help="epochs (default 10; full 30)")
    ap.add_argument("--holdout", type=int, help="held-out panoramas (default 20; full 50)")
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crops", type=int, default=48, help="crops for the throughput test")
    ap.add_argument("--no-mining", action="store_true", help="skip hard-negative mining")
    ap.add_argument("--model", type=Path, help="skip training: evaluate this model folder")
    ap.add_argument("--out", type=Path, help="keep the trained model folder here")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    args = ap.parse_args()
    n_train = args.synthetic or (200 if args.full else 60)
    epochs = args.epochs or (30 if args.full else 10)
    holdout = args.holdout or (50 if args.full else 20)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from camcensus.detect.evaluate import evaluate_synthetic
    from camcensus.detect.infer import load_detector

    results: dict[str, Any] = {"threads": args.threads}
    params = None
    if args.model is None:
        from camcensus.detect.train import train_synthetic, write_model_dir

        model_dir = args.out or Path(tempfile.mkdtemp(prefix="bench_detect_"))
        t = time.perf_counter()
        result, patches = train_synthetic(
            n_train,
            epochs=epochs,
            channels=args.channels,
            seed=args.seed,
            mine=not args.no_mining,
            progress=lambda s: print(s, flush=True),
        )
        t_all = time.perf_counter() - t
        params = result.params
        write_model_dir(model_dir, result, data={"synthetic_panoramas": n_train, "seed": args.seed})
        results["training"] = {
            "panoramas": n_train,
            "patches": len(patches.images),
            "epochs": epochs,
            "channels": args.channels,
            "wall_seconds": round(t_all, 1),
            "train_seconds": round(result.seconds, 1),
            "config": result.config,
            "final_loss": round(result.history[-1]["loss"], 4),
        }
        print(json.dumps(results["training"]), flush=True)
    else:
        model_dir = args.model
    detector = load_detector(model_dir, threads=args.threads)
    t = time.perf_counter()
    metrics, _d, _t = evaluate_synthetic(detector, holdout, seed=args.seed + 1)
    results["evaluate_seconds"] = round(time.perf_counter() - t, 1)
    results["metrics"] = {k: metrics[k] for k in ("panoramas", "overall", "by_size")}
    results["ece"] = metrics["calibration"]["ece"]
    results["by_group"] = {k: metrics["by_group"][k] for k in ("spread", "single_correction")}
    results["throughput"] = _throughput(model_dir, params, threads=args.threads, n=args.crops)
    big = metrics["by_size"][">= 8 px"]
    op = big["at_precision_0.8"]
    print(
        f"cameras >= 8 px: {big['cameras']}, AP {big['ap']:.3f}, recall at precision >= 0.8: "
        f"{op['recall']:.3f} (target 0.8) at score >= {op['threshold']}"
    )
    o = metrics["overall"]
    print(f"all cameras: {o['cameras']}, AP {o['ap']:.3f}; ECE {results['ece']:.3f}")
    tp: dict[str, float] = results["throughput"]
    print(
        f"onnxruntime {tp['onnxruntime_crops_per_s']:.1f} crops/s on {args.threads} threads "
        "(target 20)"
        + (
            f"; JAX forward {tp['jax_crops_per_s']:.1f} crops/s, ratio "
            f"{tp['ratio_onnxruntime_over_jax']:.2f}"
            if "jax_crops_per_s" in tp
            else ""
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
