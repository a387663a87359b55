"""Cameras from tags on the shared-world street simulation: accuracy and speed.

For panoramas every 15, 33, 50 and 100 m along the streets (100 m: intersections only, as in
Decode Surveillance NYC), prints the median and 90th-percentile horizontal position error by
the distance from the camera to the nearest panorama that shows it, the median error of the
cameras within 30 m of two panoramas (the issue's target: < 3 m), how the reported
``position_sd_m`` covers the errors, and the baseline of the same run: every camera at the
point of the panorama whose candidate it is (Amnesty's placement). Then the per-panorama
synthetic city: clustered confirmed counts vs median counts vs truth.

    .venv/bin/python benchmarks/bench_locate.py          # 3 seeds, 4 × 3 grid (a minute)
    .venv/bin/python benchmarks/bench_locate.py --full   # 10 seeds, 8 × 6 grid
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus.locate import (
    cluster_tags,
    compare_with_counts,
    locate_cameras,
    median_counts,
)
from camcensus.simulate import simulate_city
from camcensus.simulate.street import StreetWorld, city_tags, simulate_street

BANDS = [0, 10, 20, 30, 40]


def _errors(world: StreetWorld, cand: pd.DataFrame, cams: gpd.GeoDataFrame) -> pd.DataFrame:
    target = world.tags.set_index("tag_id")["target_id"]
    cand_target = {
        c: pd.Series([target[t] for t in s.split(";")]).mode().iloc[0]
        for c, s in zip(cand["candidate_id"], cand["tag_ids"], strict=True)
    }
    objs = world.objects.set_index("object_id")
    truth = world.cameras.set_index("camera_id")
    pano = world.panoramas.set_index("panorama_id")
    m = cams.to_crs(world.crs)
    rows = []
    for geom, ids, sd, method in zip(
        m.geometry, m["candidate_ids"], m["position_sd_m"], m["method"], strict=True
    ):
        first = ids.split(";")
        t = pd.Series([cand_target[c] for c in first]).mode().iloc[0]
        o = objs.loc[t]
        p = pano.loc[first[0].split("/")[0]]
        rows.append(
            {
                "kind": o["kind"],
                "target": t,
                "error_m": float(np.hypot(geom.x - o["x"], geom.y - o["y"])),
                "baseline_m": float(np.hypot(p["x"] - o["x"], p["y"] - o["y"])),
                "sd": sd,
                "method": method,
                "near": truth["n_within_30m"].get(t, 0),
                "nearest_m": truth["nearest_m"].get(t, np.nan),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="10 seeds on an 8 × 6 grid")
    args = parser.parse_args()
    seeds = range(10) if args.full else range(3)
    nx, ny = (8, 6) if args.full else (4, 3)
    pd.set_option("display.width", 160)
    for spacing in (15.0, 33.0, 50.0, 100.0):
        frames, n_true, t_loc, n_cand = [], 0, 0.0, 0
        for seed in seeds:
            world = simulate_street(seed, nx=nx, ny=ny, spacing_m=spacing)
            t0 = time.perf_counter()
            cand = cluster_tags(world.tags)
            cams = locate_cameras(cand, world.panoramas)
            t_loc += time.perf_counter() - t0
            n_cand += len(cand)
            n_true += int((world.cameras["n_seen"] > 0).sum())
            frames.append(_errors(world, cand, cams).assign(seed=seed))
        err = pd.concat(frames, ignore_index=True)
        cams_only = err[err["kind"] == "camera"]
        print(f"\n== panoramas every {spacing:.0f} m: {len(err)} located, {n_true} true cameras "
              f"seen, {cams_only.groupby(['seed', 'target']).ngroups} of them found, "
              f"{int((err['kind'] != 'camera').sum())} look-alikes; "
              f"{n_cand / t_loc:,.0f} candidates/s (cluster + locate)")  # fmt: skip
        band = pd.cut(cams_only["nearest_m"], BANDS)
        table = cams_only.groupby(band, observed=True).agg(
            n=("error_m", "size"),
            median_m=("error_m", "median"),
            p90_m=("error_m", lambda x: x.quantile(0.9)),
            baseline_median_m=("baseline_m", "median"),
        )
        print(table.round(2).to_string())
        two = cams_only[cams_only["near"] >= 2]
        cover = (cams_only["error_m"] <= 2.0 * np.sqrt(2.0) * cams_only["sd"]).mean()
        print(f"within 30 m of two panoramas: n = {len(two)}, median error "
              f"{two['error_m'].median():.2f} m (baseline {two['baseline_m'].median():.2f} m); "
              f"errors within 2·√2·position_sd_m: {cover:.0%}")  # fmt: skip
        print(cams_only.groupby("method")["error_m"].agg(["size", "median"]).round(2).to_string())

    print("\n== per-panorama synthetic city: clustered confirmed vs median vs truth")
    rows = []
    for seed in seeds:
        city = simulate_city(seed, nx=12 if not args.full else 30, ny=12 if not args.full else 30)
        tags, subs, truth = city_tags(city, seed=seed)
        cmp = compare_with_counts(cluster_tags(tags), median_counts(tags, submissions=subs))
        cmp = cmp.merge(truth, on="panorama_id")
        for name, clus, med, tr in (
            ("all", "clustered", "median_total", "n_cameras"),
            ("street", "clustered_street", "median_street", "attached_street"),
        ):
            rows.append(
                {
                    "seed": seed,
                    "cameras": name,
                    "truth": cmp[tr].sum(),
                    "clustered": cmp[clus].sum(),
                    "median": cmp[med].sum(),
                    "mae_clustered": (cmp[clus] - cmp[tr]).abs().mean(),
                    "mae_median": (cmp[med] - cmp[tr]).abs().mean(),
                    "exact_clustered": (cmp[clus] == cmp[tr]).mean(),
                    "exact_median": (cmp[med] == cmp[tr]).mean(),
                }
            )
    out = (
        pd.DataFrame(rows)
        .groupby("cameras")
        .agg(
            truth=("truth", "sum"),
            clustered=("clustered", "sum"),
            median=("median", "sum"),
            mae_clustered=("mae_clustered", "mean"),
            mae_median=("mae_median", "mean"),
            exact_clustered=("exact_clustered", "mean"),
            exact_median=("exact_median", "mean"),
        )
    )
    print(out.round(3).to_string())


if __name__ == "__main__":
    main()
