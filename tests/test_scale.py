"""Partitioned coverage on dask equals the single-machine path (synthetic city, Brooklyn)."""

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


@pytest.mark.parametrize("model", ["disc", "fov"])
def test_synthetic_city_equals_single_path(city: Any, model: str) -> None:
    tracts, cams = _city_cameras(city)
    la, lb = Ledger(), Ledger()
    ref = coverage_measures_single(tracts, cams, model=model, ledger=la)
    got = coverage_measures(
        tracts, cams, model=model, scheduler="threads", npartitions=7, ledger=lb
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
