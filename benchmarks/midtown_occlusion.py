"""How much do buildings change the covered street length in Midtown? disc vs fov vs occluded.

Data (read in place, ../shared/data or CAMCENSUS_SHARED_DATA): the January 2025 OpenStreetMap
extract of Manhattan ~14th-~50th St (osm_nyc/manhattan_14th_to_50th_2025-01.osm.pbf): its
buildings and its walkable ways (footways, sidewalks, crossings and streets; camcensus.io.osm),
and two camera sets:

(a) the extract's 120 ``man_made=surveillance`` nodes (21 with a direction);
(b) Amnesty's citywide counts (public cameras: attached to street furniture) at the panoramas
    inside the extract's box, one camera per counted camera at the panorama point, no
    direction (so fov = disc); their type is unknown in the reduced file (spec: the wide
    bullet), and (b') the same cameras taken as 30x PTZ domes.

For each set: covered length of the walkable ways under disc (120 m), fov (120 m wedges), and
occluded (the same, clipped by line of sight against the buildings), plus the
pixel_density identification and face-recognition bands (default spec table, tele zoom) with
occlusion. Prints a Markdown table (docs/coverage.md holds the figures).

Usage: python benchmarks/midtown_occlusion.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from camcensus.coverage import footprint_union, footprints, public_cameras_from_counts
from camcensus.coverage.visibility import obstacles_from_buildings
from camcensus.io import decode, osm

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CAMCENSUS_SHARED_DATA", ROOT.parent / "shared" / "data"))
if not DATA.is_absolute():
    DATA = (ROOT / DATA).resolve()
PBF = DATA / "osm_nyc" / "manhattan_14th_to_50th_2025-01.osm.pbf"
COUNTS = DATA / "amnesty_decode" / "counts_per_intersections_citywide_reduced.csv"
BOX = (-74.0140, 40.7360, -73.9630, 40.7590)  # the extract's box (SOURCES.md)
CRS = "EPSG:32618"


def covered_km(lines: np.ndarray, fps: gpd.GeoDataFrame) -> float:
    """Length (km) of the lines inside the union of the footprints."""
    union = footprint_union(fps)
    return float(shapely.length(shapely.intersection(lines, union)).sum()) / 1000


def main() -> None:
    t0 = time.perf_counter()
    buildings = osm.read_osm_buildings(PBF)
    streets = osm.read_osm_streets(PBF, walk=True).to_crs(CRS)
    lines = np.asarray(streets.geometry.values)
    total_km = float(shapely.length(lines).sum()) / 1000
    obstacles = obstacles_from_buildings(buildings, CRS)

    osm_cams = osm.read_osm_cameras(PBF)
    pan = decode.intersections_from_csv(COUNTS)
    inside = pan.cx[BOX[0] : BOX[2], BOX[1] : BOX[3]]
    amnesty = public_cameras_from_counts(inside)
    # The reduced citywide file has no dome/bullet medians: every camera is of unknown type,
    # which the spec table treats as the wide bullet (conservative). (b') assumes instead
    # that every public camera is a 30x PTZ dome (NYPD Argus-like), Amnesty's reading.
    as_ptz = amnesty.assign(spec_id="ptz_30x")
    sets = {
        f"(a) OSM surveillance nodes ({len(osm_cams)})": osm_cams,
        f"(b) Amnesty public cameras ({len(amnesty)} at "
        f"{amnesty['source_ref'].nunique()} panoramas), type unknown": amnesty,
        "(b') the same, all taken as 30× PTZ domes": as_ptz,
    }
    print(
        f"walkable ways: {len(lines):,} ({total_km:.1f} km); buildings: {len(buildings):,} "
        f"({obstacles.n_merged} overlapping merged into their unions)\n"
    )
    rows = []
    for name, cams in sets.items():
        disc = footprints(cams, "disc", crs=CRS)
        fov = footprints(cams, "fov", crs=CRS)
        occl = footprints(cams, "occluded", crs=CRS, buildings=obstacles)
        pix = footprints(
            cams,
            "pixel_density",
            crs=CRS,
            buildings=obstacles,
            bands=["identification", "face_recognition"],
        )
        figures = {
            "disc 120 m": covered_km(lines, disc),
            "fov 120 m": covered_km(lines, fov),
            "occluded 120 m": covered_km(lines, occl),
            "identification, occluded": covered_km(lines, pix.loc[pix["band"] == "identification"]),
            "face recognition, occluded": covered_km(
                lines, pix.loc[pix["band"] == "face_recognition"]
            ),
        }
        rows.append((name, figures))
    head = list(rows[0][1])
    print("| cameras | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for name, figures in rows:
        base = figures["disc 120 m"]
        cells = [
            f"{v:.1f} km ({100 * v / total_km:.0f}%; {v / base:.2f}× disc)"
            for v in figures.values()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n(total walkable length {total_km:.1f} km; {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
