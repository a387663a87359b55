"""Coverage per tract: parity with Amnesty's own output, and a brute-force reference."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from camcensus import Ledger
from camcensus.cameras import cameras_from_counts
from camcensus.coverage import add_coverage, covered_area, footprint_union, footprints
from camcensus.io import census, decode

FT_PER_M = 3937 / 1200  # US survey feet per metre (EPSG:2908's unit)


@pytest.fixture(scope="module")
def tracts(nyc_paths: dict[str, Path]) -> gpd.GeoDataFrame:
    return census.tracts_from_file(nyc_paths["tracts"])


@pytest.fixture(scope="module")
def reference(nyc_paths: dict[str, Path]) -> pd.DataFrame:
    return pd.read_csv(nyc_paths["camera_count"], dtype={"GEOID": str}).set_index("GEOID")


def test_brooklyn_parity_with_amnesty_camera_count(
    tracts: gpd.GeoDataFrame, reference: pd.DataFrame, nyc_paths: dict[str, Path]
) -> None:
    pan = decode.intersections_from_csv(nyc_paths["brooklyn"])
    got = add_coverage(tracts, pan).set_index("GEOID")
    # Tracts whose surroundings within 320 m (200 m band + 120 m radius) lie inside Brooklyn
    # see only Brooklyn cameras, all of which the Brooklyn file holds.
    boroughs = census.boroughs_from_file(nyc_paths["boroughs"]).to_crs(tracts.crs)
    brooklyn = boroughs.loc[boroughs["BoroName"] == "Brooklyn"].geometry.iloc[0]
    inner = shapely.within(shapely.buffer(tracts.geometry.values, 320 * FT_PER_M), brooklyn)
    ids = tracts.loc[inner, "GEOID"]
    assert len(ids) >= 600
    for col in ("eff_cameras", "eff_cameras_within_200m"):
        diff = (got.loc[ids, col] - reference.loc[ids, col]).abs()
        assert diff.max() < 1e-6, (col, diff.idxmax(), diff.max())
    # Some of those tracts really are covered: the comparison is not of zeros.
    assert (reference.loc[ids, "eff_cameras"] > 0.5).sum() > 300


def test_citywide_parity_and_camera_sums(
    tracts: gpd.GeoDataFrame, reference: pd.DataFrame, nyc_paths: dict[str, Path]
) -> None:
    pan = decode.intersections_from_csv(nyc_paths["citywide"])
    ledger = Ledger()
    got = add_coverage(tracts, pan, ledger=ledger).set_index("GEOID")
    assert len(got) == 2_165
    ids = got.index
    for col in ("eff_cameras", "eff_cameras_within_200m"):
        diff = (got[col] - reference.loc[ids, col]).abs()
        # The reduced file's coordinates are rounded to 1e-5 degrees (~1 m).
        assert diff.max() < 0.02, (col, diff.idxmax(), diff.max())
    # Each public camera counted once (Amnesty's table double-counts 180 of them).
    assert got["cameras"].sum() == 3_317
    assert reference["cameras"].sum() == 3_497
    # By the borough of the *tract* one Brooklyn camera falls in a Queens tract (the borough
    # polygons Amnesty used and the census tracts disagree by a few metres on that border).
    by_borough = got.groupby("borough")["cameras"].sum()
    published = {
        "Bronx": 456,
        "Brooklyn": 871,
        "Manhattan": 724,
        "Queens": 1_088,
        "Staten Island": 178,
    }
    assert all(abs(by_borough[b] - n) <= 1 for b, n in published.items()), by_borough
    assert any("nearest tract" in n for n in ledger.notes)


def test_radius_and_units_respected(tracts: gpd.GeoDataFrame, nyc_paths: dict[str, Path]) -> None:
    pan = decode.intersections_from_csv(nyc_paths["citywide"]).head(400)
    in_feet = add_coverage(tracts, pan, radius_m=60)
    in_metres = add_coverage(tracts.to_crs(32618), pan, radius_m=60)
    np.testing.assert_allclose(in_feet["eff_cameras"], in_metres["eff_cameras"], atol=2e-3)
    np.testing.assert_allclose(in_feet["area_m2"], in_metres["area_m2"], rtol=2e-3)


def test_degrees_are_refused_or_reprojected(tracts: gpd.GeoDataFrame) -> None:
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([-73.95], [40.65]), crs=4326)
    pan = pts.assign(PanoramaId=["a"], attached_street_median=[1])
    with pytest.raises(ValueError, match="geographic"):
        footprints(cameras_from_counts(pan), crs=4326)
    sub = tracts.to_crs(4326).head(50)
    out = add_coverage(sub, pan)  # measured in the tracts' UTM zone, never in degrees
    assert out.crs.to_epsg() == 4326
    assert out["area_m2"].min() > 1_000


def _raster_reference(
    zones: list[shapely.Polygon], centers: np.ndarray, r: float, step: float
) -> np.ndarray:
    """Area of each zone within r of a centre, by counting cell centres of a fine grid."""
    tree = cKDTree(centers)
    out = []
    for z in zones:
        x0, y0, x1, y1 = z.bounds
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        gx, gy = np.meshgrid(xs, ys)
        inside = shapely.contains_xy(z, gx.ravel(), gy.ravel())
        d, _ = tree.query(np.column_stack([gx.ravel()[inside], gy.ravel()[inside]]))
        out.append(np.sum(d <= r) * step * step)
    return np.array(out)


def test_vector_coverage_matches_brute_force_raster(city) -> None:  # type: ignore[no-untyped-def]
    truth = city.truth
    pts = truth.loc[truth["attached_street"] > 0]
    centers = np.column_stack([pts.geometry.x, pts.geometry.y])
    zones = [
        *city.tracts.geometry.values[:8],
        shapely.Polygon([(500_100, 4_400_100), (500_900, 4_400_300), (500_400, 4_401_000)]),
    ]
    r = 120.0
    # Many segments so the polygonal discs are true circles to ~1e-4.
    counts = gpd.GeoDataFrame(
        {"PanoramaId": [f"p{i}" for i in range(len(pts))],
         "attached_street_median": pts["attached_street"].to_numpy()},
        geometry=pts.geometry.values,
        crs=pts.crs,
    )  # fmt: skip
    cov = footprint_union(footprints(cameras_from_counts(counts), radius_m=r, quad_segs=128))
    vector = covered_area(np.array(zones, dtype=object), cov)
    raster = _raster_reference(zones, centers, r, step=1.0)
    disc = np.pi * r * r
    np.testing.assert_allclose(vector / disc, raster / disc, atol=0.01)
    assert (raster > 0).sum() >= 5


@settings(max_examples=30, deadline=None)
@given(
    xy=st.lists(st.tuples(st.floats(-300, 1300), st.floats(-300, 1300)), min_size=0, max_size=25),
    r=st.floats(10, 300),
)
def test_coverage_bounded_by_tract_area_and_disc_count(xy, r) -> None:  # type: ignore[no-untyped-def]
    tracts = gpd.GeoDataFrame(
        {"GEOID": ["a", "b"], "borough": ["X", "X"]},
        geometry=[shapely.box(0, 0, 500, 1000), shapely.box(500, 0, 1000, 1000)],
        crs=32618,
    )
    pts = gpd.GeoDataFrame(
        {"attached_street_median": np.ones(len(xy), dtype=int)},
        geometry=gpd.points_from_xy([p[0] for p in xy], [p[1] for p in xy]),
        crs=32618,
    )
    out = add_coverage(tracts, pts, radius_m=r, band_m=0.0, snap_m=1e6)
    disc = np.pi * r * r
    assert (out["eff_cameras"] >= 0).all()
    assert (out["eff_cameras"] * disc <= out["area_m2"] * (1 + 1e-9)).all()
    # The union never covers more than the discs it is made of.
    assert out["eff_cameras"].sum() <= len(xy) + 1e-9
    # Every camera is counted exactly once (the nearest tract takes those outside).
    assert out["cameras"].sum() == len(xy)


def test_disc_footprints_one_per_camera_with_crs() -> None:
    from camcensus.cameras import cameras_from_counts
    from camcensus.coverage import footprints, unit_area

    pan = gpd.GeoDataFrame(
        {"PanoramaId": ["a", "b"], "attached_street_median": [2, 1], "type_dome_median": [1, 0]},
        geometry=gpd.points_from_xy([-73.95, -73.9], [40.65, 40.7]),
        crs=4326,
    )
    cams = cameras_from_counts(pan)
    assert list(cams["camera_id"]) == ["a/street/1", "a/street/2", "b/street/1"]
    assert list(cams["camera_type"]) == ["dome", "unknown", "unknown"]
    fps = footprints(cams, "disc", radius_m=50)
    assert fps.crs.is_projected and len(fps) == 3
    # Two cameras at one point share one disc; a 30-segment disc is within 0.05% of pi r^2.
    assert fps.geometry.iloc[0].equals(fps.geometry.iloc[1])
    area = fps.geometry.area.to_numpy()
    assert np.allclose(area, np.pi * 50**2, rtol=5e-4)
    assert unit_area(fps) == pytest.approx(np.pi * 50**2)


@pytest.mark.parametrize("radius", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_radius_is_refused(radius: float) -> None:
    from camcensus.cameras import cameras_from_counts
    from camcensus.coverage import footprints

    pan = gpd.GeoDataFrame(
        {"PanoramaId": ["a"], "attached_street_median": [1]},
        geometry=gpd.points_from_xy([-73.95], [40.65]),
        crs=4326,
    )
    with pytest.raises(ValueError, match="radius"):
        footprints(cameras_from_counts(pan), radius_m=radius)


def test_unknown_coverage_model_names_the_available_ones() -> None:
    from camcensus.cameras import cameras_from_counts
    from camcensus.coverage import footprints

    pan = gpd.GeoDataFrame(
        {"PanoramaId": ["a"], "attached_street_median": [1]},
        geometry=gpd.points_from_xy([-73.95], [40.65]),
        crs=4326,
    )
    with pytest.raises(ValueError, match="available: disc, fov, occluded, pixel_density"):
        footprints(cameras_from_counts(pan), "viewshed")


def test_points_on_borders_are_counted_once_each() -> None:
    from camcensus._geo import locate_points

    # Four unit squares meeting at (1, 1): a corner point touches four, an edge point two.
    polys = np.array([shapely.box(x, y, x + 1, y + 1) for x in (0, 1) for y in (0, 1)])
    pts = np.array([shapely.Point(1, 1), shapely.Point(0.5, 0.5), shapely.Point(1, 0.5)])
    located = locate_points(pts, polys)
    assert located.on_border == 2
    assert list(located.owner) == [0, 0, 0]  # each given to the lowest index
