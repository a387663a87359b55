"""Partitioned coverage on dask equals the single-machine path (synthetic city, Brooklyn); the
exact-circle covered areas against closed forms and brute-force GEOS unions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely

from camcensus import Ledger, OptionError
from camcensus.cameras import cameras_from_counts
from camcensus.coverage import public_cameras_from_counts
from camcensus.coverage._union_arcs import disc_union_areas, polygon_disc_deficit
from camcensus.io import census, decode
from camcensus.scale import coverage_measures, coverage_measures_single

COLUMNS = ("eff_cameras", "eff_cameras_within_200m", "cameras", "cameras_within_200m", "area_m2")


def _city_cameras(city: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    truth = city.truth.rename(
        columns={
            c: f"{c}_median"
            for c in ("attached_street", "attached_building", "attached_unknown", "type_dome",
                      "type_bullet")
        }
    )  # fmt: skip
    cams = cameras_from_counts(truth.to_crs("EPSG:4326"))
    rng = np.random.default_rng(7)
    # Half the cameras get a direction, so the fov model draws wedges.
    cams["direction_deg"] = np.where(
        rng.random(len(cams)) < 0.5, rng.uniform(0, 360, len(cams)), np.nan
    )
    return city.tracts.to_crs("EPSG:4326"), cams


def _assert_same(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, la: Ledger, lb: Ledger) -> None:
    assert list(a.index) == list(b.index)
    assert list(a.columns) == list(b.columns)
    for col in ("cameras", "cameras_within_200m"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
    for col in ("eff_cameras", "eff_cameras_within_200m", "area_m2"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-9, atol=1e-9, err_msg=col)
    assert la.notes == lb.notes
    assert [(e.stage, e.reason, e.count) for e in la] == [(e.stage, e.reason, e.count) for e in lb]


@pytest.mark.parametrize(
    ("model", "discs"), [("disc", "circles"), ("disc", "polygons"), ("fov", "circles")]
)
def test_synthetic_city_equals_single_path(city: Any, model: str, discs: str) -> None:
    tracts, cams = _city_cameras(city)
    la, lb = Ledger(), Ledger()
    ref = coverage_measures_single(tracts, cams, model=model, ledger=la, discs=discs)
    got = coverage_measures(
        tracts, cams, model=model, scheduler="threads", npartitions=7, ledger=lb, discs=discs
    )
    _assert_same(ref, got, la, lb)
    # Not a comparison of zeros: most tracts are covered and every camera is counted.
    assert (ref["eff_cameras"] > 0).sum() > 40
    assert ref["cameras"].sum() == len(cams)


def test_border_and_outside_points_counted_once(city: Any) -> None:
    """Points on borders shared by tracts of different partitions, and points outside every
    tract (snapped or excluded), give the same counts as the single path: a border point goes
    to the tract that comes first in the input."""
    tracts, cams = _city_cameras(city)
    tm = tracts.to_crs(city.crs)
    # Cameras exactly on every tract corner and edge midpoint (given in the measuring CRS, so
    # they stay exactly on the borders), plus some outside the city.
    corners = shapely.get_coordinates(tm.boundary.values)
    mids = (corners[:-1] + corners[1:]) / 2
    minx, miny, maxx, maxy = tm.total_bounds
    outside = np.array([[minx - 50, miny + 310], [maxx + 150, maxy - 10], [maxx + 5000, maxy]])
    xy = np.vstack([corners, mids, outside])
    ids = [*cams["camera_id"], *(f"x{i}" for i in range(len(xy)))]
    both = gpd.GeoDataFrame(
        {"camera_id": ids, "mount": "street"},
        geometry=np.concatenate(
            [np.asarray(cams.to_crs(city.crs).geometry.values), shapely.points(xy)]
        ),
        crs=city.crs,
    )
    la, lb = Ledger(), Ledger()
    ref = coverage_measures_single(tracts, both, snap_m=200, ledger=la)
    got = coverage_measures(tracts, both, snap_m=200, scheduler="synchronous", npartitions=9,
                            ledger=lb)  # fmt: skip
    _assert_same(ref, got, la, lb)
    # The border points really are on borders; one far point is excluded, the two near ones
    # snapped (the farther 150 m away).
    assert any("on a tract border" in n for n in la.notes)
    assert any("nearest tract (at most 150.0 m away)" in n for n in la.notes)
    assert [e.count for e in la] == [1]
    assert ref["cameras"].sum() == len(both) - 1


def test_local_cluster_and_scheduler_address(city: Any) -> None:
    from distributed import LocalCluster

    tracts, cams = _city_cameras(city)
    ref = coverage_measures_single(tracts, cams)
    # Default: a local cluster of worker processes, started and closed by the call.
    got = coverage_measures(tracts, cams, workers=2, npartitions=5)
    _assert_same(ref, got, Ledger(), Ledger())
    # A real cluster given by its scheduler's address.
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        got = coverage_measures(tracts, cams, scheduler=cluster.scheduler_address, npartitions=4)
    np.testing.assert_allclose(got["eff_cameras"], ref["eff_cameras"], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got["cameras"], ref["cameras"])


def test_refuses_models_without_a_range_and_bad_scheduler(
    city: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracts, cams = _city_cameras(city)
    monkeypatch.setattr("camcensus.scale._CONNECT_TIMEOUT", "1s")
    with pytest.raises(OptionError, match="pixel_density"):
        coverage_measures(tracts, cams, model="pixel_density", scheduler="threads")
    with pytest.raises(OptionError, match="no dask scheduler answers"):
        coverage_measures(tracts, cams, scheduler="tcp://127.0.0.1:9")
    with pytest.raises(OptionError, match="discs must be one of circles, polygons"):
        coverage_measures(tracts, cams, discs="squares", scheduler="threads")


def test_circles_against_polygon_discs_within_stated_bound(city: Any) -> None:
    """Exact circles cover at least as much as sf's polygons, and at most the polygons' deficit
    (4.57e-4 of a disc at quad_segs 30) per disc reaching the tract."""
    tracts, cams = _city_cameras(city)
    circ = coverage_measures_single(tracts, cams, discs="circles")
    poly = coverage_measures_single(tracts, cams, discs="polygons")
    f = polygon_disc_deficit(30)
    assert f == pytest.approx(4.5686e-4, rel=1e-4)
    zones = np.asarray(tracts.to_crs(city.crs).geometry.values)
    xy = np.unique(shapely.get_coordinates(cams.to_crs(city.crs).geometry.values), axis=0)
    pts = shapely.points(xy)
    banded = shapely.buffer(zones, 200, quad_segs=30)
    for col, geoms in (("eff_cameras", zones), ("eff_cameras_within_200m", banded)):
        reach = np.bincount(
            shapely.STRtree(geoms).query(pts, predicate="dwithin", distance=120)[1],
            minlength=len(geoms),
        )
        diff = circ[col].to_numpy() - poly[col].to_numpy()
        assert (diff >= -1e-9).all(), col
        assert (diff <= f * reach + 1e-9).all(), col
        covered = poly[col].to_numpy() > 0.5
        rel = diff[covered] / poly[col].to_numpy()[covered]
        # Not a comparison of equal figures: the circles do add area (relative excess on this
        # city: median 4.6e-5, largest about f for eff_cameras; no relative bound holds in
        # general, the bound is the absolute one above).
        assert rel.max() > 0.1 * f, col
    np.testing.assert_array_equal(circ["cameras"], poly["cameras"])


def _brute_force_exact(zones: np.ndarray, xy: np.ndarray, r: float) -> np.ndarray:
    """Covered areas of exact circles from GEOS unions of polygonal discs: two fine polygon
    sizes extrapolated (the polygons' deficit is exactly proportional to ``f(quad_segs)``)."""
    areas = {}
    for q in (250, 1000):
        union = shapely.union_all(shapely.buffer(shapely.points(xy), r, quad_segs=q))
        areas[q] = shapely.area(shapely.intersection(zones, union))
    f1, f2 = polygon_disc_deficit(250), polygon_disc_deficit(1000)
    out: np.ndarray = areas[1000] + (areas[1000] - areas[250]) * f2 / (f1 - f2)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_disc_union_areas_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    xy = rng.uniform(0, 1000, (n, 2))
    xy = np.vstack([xy, xy[:3]])  # cameras sharing a point
    r = float(rng.uniform(30, 150))
    land = shapely.box(0, 0, 1000, 1000)
    seeds = shapely.multipoints(rng.uniform(0, 1000, (25, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=land)), land
    )
    holed = shapely.Polygon(
        [(100, 100), (900, 100), (900, 900), (100, 900)],
        [[(300, 300), (300, 600), (600, 600), (600, 300)]],
    )
    multi = shapely.union(shapely.box(-50, -50, 200, 200), shapely.box(700, 700, 1050, 1050))
    clockwise = shapely.reverse(shapely.box(200, 50, 700, 400))
    tiny = shapely.box(*(xy[0] - 1), *(xy[0] + 1))  # inside one disc
    zones = np.concatenate(
        [cells, shapely.buffer(cells, 200, quad_segs=30), [holed, multi, clockwise, tiny]]
    )
    got = disc_union_areas(zones, xy[:, 0], xy[:, 1], r)
    ref = _brute_force_exact(zones, xy, r)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7 * np.pi * r * r)
    assert got[-1] == pytest.approx(4.0, rel=1e-12)
    # The sf polygons (quad_segs 30) cover less, by at most the deficit per disc reaching.
    poly = shapely.area(
        shapely.intersection(
            zones, shapely.union_all(shapely.buffer(shapely.points(xy), r, quad_segs=30))
        )
    )
    reach = np.bincount(
        shapely.STRtree(zones).query(shapely.points(np.unique(xy, axis=0)), "dwithin", r)[1],
        minlength=len(zones),
    )
    f = polygon_disc_deficit(30) * np.pi * r * r
    assert ((got - poly) >= -1e-8).all()
    assert ((got - poly) <= f * reach + 1e-8).all()


def test_disc_union_areas_closed_forms() -> None:
    r = 50.0
    big = shapely.box(-1000, -1000, 1000, 1000)
    quarter = shapely.box(0, 0, 500, 500)  # a disc at its corner: a quarter inside
    half = shapely.box(-500, 0, 500, 500)  # a disc on its edge: half inside
    zones = np.array([big, quarter, half])
    got = disc_union_areas(zones, np.array([0.0]), np.array([0.0]), r)
    np.testing.assert_allclose(got, [np.pi * r * r, np.pi * r * r / 4, np.pi * r * r / 2],
                               rtol=1e-12)  # fmt: skip
    # Two discs d apart: twice a disc less their lens, 2 r² acos(d/2r) - (d/2) sqrt(4r² - d²).
    for d in (1e-3, 10.0, 60.0, 99.9, 100.0, 150.0):
        lens = 2 * r * r * np.arccos(min(d / (2 * r), 1.0)) - d / 2 * np.sqrt(
            max(4 * r * r - d * d, 0.0)
        )
        got = disc_union_areas(np.array([big]), np.array([0.0, d]), np.array([0.0, 0.0]), r)
        assert got[0] == pytest.approx(2 * np.pi * r * r - lens, rel=1e-12), d
    # A disc among far-away coordinates (UTM-like): no loss of precision.
    x0, y0 = 4.5e6, 5.2e6
    got = disc_union_areas(
        np.array([shapely.box(x0 - 1e3, y0 - 1e3, x0 + 1e3, y0 + 1e3)]),
        np.array([x0 + 0.3]), np.array([y0 - 0.7]), r,
    )  # fmt: skip
    assert got[0] == pytest.approx(np.pi * r * r, rel=1e-12)
    # No discs, no zones.
    assert disc_union_areas(zones, np.zeros(0), np.zeros(0), r).tolist() == [0.0, 0.0, 0.0]
    assert len(disc_union_areas(np.array([], dtype=object), np.zeros(1), np.zeros(1), r)) == 0


@pytest.mark.realdata
def test_brooklyn_equals_single_path(nyc_paths: dict[str, Path]) -> None:
    tracts = census.tracts_from_file(nyc_paths["tracts"])
    pan = decode.intersections_from_csv(nyc_paths["brooklyn"])
    cams = public_cameras_from_counts(pan)
    la, lb = Ledger(), Ledger()
    ref = coverage_measures_single(tracts, cams, ledger=la)
    got = coverage_measures(tracts, cams, scheduler="threads", npartitions=16, ledger=lb)
    _assert_same(ref, got, la, lb)
    assert ref["cameras"].sum() > 800
    assert (ref["eff_cameras"] > 0.5).sum() > 300
