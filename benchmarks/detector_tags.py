"""Run a trained detector on whole synthetic cities: its machine tags per panorama.

Issue 10's goal 3 (adaptive redundancy) was measured with machine tags *simulated* from the
detector's rates (Binomial(T, recall) + Poisson(false tags) per panorama). This script runs
the real detector (``camcensus detect train`` → ``MODEL``) on every panorama of
``simulate_city(seed)``, rendered as the trainer renders them, and writes one row per
panorama: the city's true count ``n_true`` (the census truth), the detections at or above each
score threshold, and how many of them matched a counted camera (``tp``), a drawn camera the
census does not count (``uncounted``: the next crossings' poles) or nothing (``false``).
``bench_adaptive.py --tags-from`` then runs ``stop_posterior`` on those tags.

    .venv/bin/python benchmarks/detector_tags.py --model MODEL --seeds 20 --out tags.csv

Rows are appended as each panorama is done, and a rerun skips the panoramas already in
``--out`` (a whole city takes about an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

THRESHOLDS = (0.3, 0.4, 0.5, 0.6)


def _columns() -> list[str]:
    cols = ["seed", "PanoramaId", "n_true", "counted_drawn", "uncounted_drawn"]
    for t in THRESHOLDS:
        s = f"{round(t * 100):02d}"
        cols += [f"tags_{s}", f"tp_{s}", f"uncounted_{s}", f"false_{s}"]
    return cols


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="model folder (detect train)")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="cities to run")
    ap.add_argument("--panoramas", type=int, default=None, help="first N panoramas per city")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="CSV to append to")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np

    from camcensus.detect.evaluate import match_detections, truth_cameras
    from camcensus.detect.infer import detect_panorama, load_detector
    from camcensus.simulate import simulate_city
    from camcensus.simulate.render import render_panorama
    from camcensus.simulate.scene import panorama_scene

    detector = load_detector(args.model, threads=args.threads)
    done: set[tuple[int, str]] = set()
    if args.out.exists():
        with args.out.open(encoding="utf-8", newline="") as f:
            done = {(int(r["seed"]), r["PanoramaId"]) for r in csv.DictReader(f)}
    new_file = not args.out.exists() or args.out.stat().st_size == 0
    with args.out.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns())
        if new_file:
            writer.writeheader()
        for seed in args.seeds:
            city = simulate_city(seed)
            truth = city.truth
            ids = truth["PanoramaId"].astype(str).tolist()[: args.panoramas]
            n_true = dict(zip(ids, truth["n_cameras"].astype(int), strict=False))
            t0, ran = time.perf_counter(), 0
            for i, pid in enumerate(ids):
                if (seed, pid) in done:
                    continue
                ran += 1
                rendered = render_panorama(panorama_scene(city, pid, seed=seed))
                cams = truth_cameras(pid, rendered)
                det = detect_panorama(
                    detector,
                    rendered.image,
                    panorama_id=pid,
                    panorama_heading_deg=rendered.heading_deg,
                    score_min=min(THRESHOLDS) - 0.05,
                )
                counted = cams["counted"].to_numpy(bool)
                if len(det) and len(cams):
                    det_truth, _ = match_detections(det, cams)
                else:
                    det_truth = np.full(len(det), -1)
                score = det["score"].to_numpy(float) if len(det) else np.zeros(0)
                counted_of = np.append(counted, False)  # index -1: no camera
                hit_counted = counted_of[det_truth]
                hit_other = (det_truth >= 0) & ~hit_counted
                row: dict[str, object] = {
                    "seed": seed,
                    "PanoramaId": pid,
                    "n_true": n_true[pid],
                    "counted_drawn": int(counted.sum()),
                    "uncounted_drawn": int((~counted).sum()),
                }
                for t in THRESHOLDS:
                    s = f"{round(t * 100):02d}"
                    keep = score >= t
                    row[f"tags_{s}"] = int(keep.sum())
                    row[f"tp_{s}"] = int((keep & hit_counted).sum())
                    row[f"uncounted_{s}"] = int((keep & hit_other).sum())
                    row[f"false_{s}"] = int((keep & (det_truth < 0)).sum())
                writer.writerow(row)
                f.flush()
                if (i + 1) % 50 == 0:
                    rate = ran / (time.perf_counter() - t0)
                    print(f"seed {seed}: {i + 1}/{len(ids)} panoramas, {rate:.2f}/s", flush=True)


if __name__ == "__main__":
    main()
