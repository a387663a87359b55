"""Citywide coverage step: camcensus against the straightforward geopandas approach.

Baseline (what most analysts would write): buffer every public intersection, union the discs,
and intersect every tract (and every 200 m-buffered tract) with the whole union. camcensus
splits the union into its parts and intersects each tract only with the parts it meets.
Both run here, in the same process, on the same data; the ratio is what counts.
Also times the whole ``camcensus reproduce nyc`` run on the citywide reduced file.

Usage: python benchmarks/bench_coverage.py   (needs ../shared/data, or CAMCENSUS_SHARED_DATA)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

from camcensus.coverage import add_coverage
from camcensus.io import census, decode

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CAMCENSUS_SHARED_DATA", ROOT.parent / "shared" / "data"))
if not DATA.is_absolute():
    DATA = (ROOT / DATA).resolve()
FT = 3937 / 1200  # US survey feet per metre


def baseline(tracts: gpd.GeoDataFrame, pan: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    pts = pan.loc[pan["attached_street_median"] > 0].to_crs(tracts.crs)
    union = pts.buffer(120 * FT, quad_segs=30).union_all()
    disc = np.pi * (120 * FT) ** 2
    eff = np.array([g.intersection(union).area for g in tracts.geometry]) / disc
    banded = tracts.buffer(200 * FT, quad_segs=30)
    eff200 = np.array([g.intersection(union).area for g in banded]) / disc
    return eff, eff200


def main() -> None:
    tracts = census.tracts_from_file(DATA / "census/nyc_tracts_2019_shoreline/tracts.shp")
    citywide = DATA / "amnesty_decode/counts_per_intersections_citywide_reduced.csv"
    pan = decode.intersections_from_csv(citywide)

    t0 = time.perf_counter()
    ours = add_coverage(tracts, pan)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    eff, eff200 = baseline(tracts, pan)
    t_base = time.perf_counter() - t0

    d0 = float(np.max(np.abs(ours["eff_cameras"].to_numpy() - eff)))
    d1 = float(np.max(np.abs(ours["eff_cameras_within_200m"].to_numpy() - eff200)))
    print(f"tracts: {len(tracts)}, public intersections: {(pan.attached_street_median > 0).sum()}")
    print(f"baseline (buffer, union_all, intersect each tract with the union): {t_base:.2f} s")
    print(f"camcensus add_coverage (all four columns):                        {t_ours:.2f} s")
    print(
        f"speed-up: {t_base / t_ours:.1f}x   max |difference|: {max(d0, d1):.2e} (target <= 1e-9)"
    )

    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable, "-m", "camcensus.cli", "reproduce", "nyc",
            "--intersections", str(citywide),
            "--tracts", str(DATA / "census/nyc_tracts_2019_shoreline/tracts.shp"),
            "--census", str(DATA / "census/acs2019_tract/census.csv"),
            "--boroughs", str(DATA / "boundaries/nyc_borough_boundary_water_query.json"),
            "--out", out,
        ]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        t_run = time.perf_counter() - t0
    print(
        f"whole `camcensus reproduce nyc` (citywide, report included): {t_run:.2f} s "
        f"(target < 10 s); = {t_run / t_base:.2f} x the baseline coverage step alone"
    )
    if max(d0, d1) > 1e-9:
        sys.exit("results differ from the baseline by more than 1e-9")


if __name__ == "__main__":
    main()
