"""The fov, occluded and pixel_density coverage models: closed forms, a brute-force ray cast,
the published pixel-density example, and the real Midtown buildings."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pyproj import Geod

from camcensus import InputError, Ledger, OptionError
from camcensus.coverage import describe_footprints, footprints, specs
from camcensus.coverage.visibility import (
    WALL_OFFSET_M,
    move_out_of_buildings,
    obstacles_from_buildings,
    visibility_polygons,
)

UTM = "EPSG:32618"
X0, Y0 = 585_000.0, 4_511_000.0  # Midtown Manhattan in UTM 18N


def _cams(xy: list[tuple[float, float]], **cols: object) -> gpd.GeoDataFrame:
    n = len(xy)
    data: dict[str, object] = {"camera_id": [f"c{i}" for i in range(n)]}
    data.update(cols)
    return gpd.GeoDataFrame(
        data,
        geometry=gpd.points_from_xy([X0 + x for x, _ in xy], [Y0 + y for _, y in xy]),
        crs=UTM,
    )


def _buildings(boxes: Sequence[tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    geoms = [shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes]
    return gpd.GeoDataFrame(geometry=geoms, crs=UTM)


def _raycast(
    xy: tuple[float, float], radius: float, union: shapely.Geometry, n_rays: int
) -> tuple[shapely.Polygon, np.ndarray]:
    """Brute force: n rays, each cut at its first building; the polygon and the hit points."""
    theta = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    ends = np.column_stack([xy[0] + radius * np.cos(theta), xy[1] + radius * np.sin(theta)])
    starts = np.broadcast_to(np.asarray(xy), ends.shape)
    rays = shapely.linestrings(np.stack([starts, ends], axis=1))
    cut = shapely.intersection(rays, union)
    origin = shapely.Point(xy)
    dist = np.where(shapely.is_empty(cut), radius, shapely.distance(origin, cut))
    hits = np.column_stack([xy[0] + dist * np.cos(theta), xy[1] + dist * np.sin(theta)])
    return shapely.Polygon(hits), hits


# --- occluded: closed forms ----------------------------------------------------------------


def test_square_in_front_matches_the_closed_form_shadow() -> None:
    # A wall of width a at distance d hides the sector behind it: R² θ - d a / 2.
    r, d, a = 100.0, 30.0, 10.0
    fp = footprints(
        _cams([(0, 0)]),
        "occluded",
        radius_m=r,
        quad_segs=4096,
        buildings=_buildings([(d, -a / 2, d + a, a / 2)]),
    )
    theta = math.atan(a / 2 / d)
    exact = math.pi * r**2 - (r**2 * theta - d * a / 2)
    assert fp.area.iloc[0] == pytest.approx(exact, rel=1e-5)


def test_street_canyon_matches_the_closed_form_strip() -> None:
    # Between two long walls w apart, the camera sees the disc cut to the strip |y| < w/2.
    r, w = 100.0, 20.0
    walls = [(-500, w / 2, 500, w / 2 + 30), (-500, -w / 2 - 30, 500, -w / 2)]
    fp = footprints(
        _cams([(0, 0)]), "occluded", radius_m=r, quad_segs=4096, buildings=_buildings(walls)
    )
    h = w / 2
    exact = 2 * (h * math.sqrt(r**2 - h**2) + r**2 * math.asin(h / r))
    assert fp.area.iloc[0] == pytest.approx(exact, rel=1e-5)


def test_corner_of_two_streets_matches_the_closed_form_cross() -> None:
    # At the crossing of two streets of width w between four blocks, the camera sees the
    # union of two strips (a cross) inside the disc: 2 · strip - w².
    r, w = 100.0, 20.0
    h = w / 2
    blocks = [(h, h, 400, 400), (-400, h, -h, 400), (-400, -400, -h, -h), (h, -400, 400, -h)]
    fp = footprints(
        _cams([(0, 0)]), "occluded", radius_m=r, quad_segs=4096, buildings=_buildings(blocks)
    )
    strip = 2 * (h * math.sqrt(r**2 - h**2) + r**2 * math.asin(h / r))
    assert fp.area.iloc[0] == pytest.approx(2 * strip - w**2, rel=1e-5)


def test_unobstructed_camera_gets_exactly_the_disc_and_the_wedge() -> None:
    cams = _cams([(0, 0), (300, 0)], direction_deg=[np.nan, 45.0], hfov_deg=[np.nan, 60.0])
    far = _buildings([(1000, 1000, 1010, 1010)])
    disc = footprints(cams, "disc")
    fov = footprints(cams, "fov")
    occl = footprints(cams, "occluded", buildings=far)
    assert occl.geometry.iloc[0].equals(disc.geometry.iloc[0])
    assert occl.area.iloc[1] == pytest.approx(fov.area.iloc[1], rel=1e-12)


# --- occluded: brute-force ray cast ----------------------------------------------------------


def _city(seed: int) -> list[tuple[float, float, float, float]]:
    """Random blocks of rectangular buildings, some touching, some overlapping."""
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(60):
        x, y = rng.uniform(-150, 150, 2)
        w, h = rng.uniform(4, 30, 2)
        boxes.append((x, y, x + w, y + h))
    return boxes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_occluded_agrees_with_a_brute_force_ray_cast(seed: int) -> None:
    boxes = _city(seed)
    gdf_b = _buildings(boxes)
    union = shapely.union_all(gdf_b.geometry.values)
    rng = np.random.default_rng(100 + seed)
    pts: list[tuple[float, float]] = []
    while len(pts) < 6:
        x, y = rng.uniform(-120, 120, 2)
        if not union.intersects(shapely.Point(X0 + x, Y0 + y).buffer(1.0)):
            pts.append((float(x), float(y)))
    r = 80.0
    fp = footprints(_cams(pts), "occluded", radius_m=r, quad_segs=2048, buildings=gdf_b)
    for (x, y), geom in zip(pts, fp.geometry, strict=True):
        brute, hits = _raycast((X0 + x, Y0 + y), r, union, 7200)
        # Areas agree within 0.1 % (the ray cast's own error is cutting corners between rays).
        assert geom.area == pytest.approx(brute.area, rel=1e-3)
        # Nearly every ray's first hit lies on our boundary (the exceptions graze a corner).
        gap = shapely.distance(shapely.points(hits), geom.boundary)
        assert np.mean(gap < 1e-6 * r) > 0.995, np.sort(gap)[-5:]
        # Nothing visible lies inside a building.
        assert geom.intersection(union).area < 1e-6 * geom.area


@hsettings(max_examples=25)
@given(
    st.lists(
        st.tuples(st.floats(-60, 60), st.floats(-60, 60), st.floats(1, 40), st.floats(1, 40)),
        min_size=1,
        max_size=12,
    ),
    st.floats(5, 150),
)
def test_visibility_is_inside_the_disc_and_outside_the_buildings(
    boxes: list[tuple[float, float, float, float]], r: float
) -> None:
    gdf_b = _buildings([(x, y, x + w, y + h) for x, y, w, h in boxes])
    union = shapely.union_all(gdf_b.geometry.values)
    # Cameras inside buildings are moved (tested below): keep this one clear of them.
    assume(not union.intersects(shapely.Point(X0 + 0.5, Y0 + 0.5).buffer(1.0)))
    fp = footprints(_cams([(0.5, 0.5)]), "occluded", radius_m=r, buildings=gdf_b)
    geom = fp.geometry.iloc[0]
    disc = footprints(_cams([(0.5, 0.5)]), "disc", radius_m=r).geometry.iloc[0]
    assert geom.is_valid
    assert geom.area <= disc.area * (1 + 1e-9)
    assert geom.difference(disc).area < 1e-6 * disc.area
    assert geom.intersection(union).area < 1e-6 * disc.area


def test_camera_inside_a_building_is_moved_out_and_counted() -> None:
    ledger = Ledger()
    gdf_b = _buildings([(-10, -10, 10, 10)])
    fp = footprints(_cams([(0, 9.5)]), "occluded", radius_m=50, buildings=gdf_b, ledger=ledger)
    params = json.loads(fp["parameters"].iloc[0])
    assert params["moved_m"] == pytest.approx(0.5 + WALL_OFFSET_M, abs=1e-3)
    assert any("moved just outside" in n for n in ledger.notes)
    # Just outside the wall it sees the half-disc in front of it, a 0.1 m strip and two
    # slivers past the corners (16 m², computed by hand): within 1 % of the half-disc.
    half = math.pi * 50**2 / 2
    assert fp.area.iloc[0] == pytest.approx(half, rel=1e-2)
    assert fp.area.iloc[0] > half


def test_overlapping_buildings_are_merged_before_the_sweep() -> None:
    gdf_b = _buildings([(20, -10, 40, 10), (30, -5, 50, 20)])
    ob = obstacles_from_buildings(gdf_b, UTM)
    assert ob.n_merged == 2 and len(ob.polygons) == 1
    union = shapely.union_all(gdf_b.geometry.values)
    vis = visibility_polygons(np.array([[X0, Y0]]), 100.0, ob)[0]
    brute, _ = _raycast((X0, Y0), 100.0, union, 20_000)
    disc = shapely.Point(X0, Y0).buffer(100.0, quad_segs=2048)
    assert vis.intersection(disc).area == pytest.approx(brute.area, rel=1e-3)


def test_move_out_of_buildings_leaves_outside_cameras_alone() -> None:
    ob = obstacles_from_buildings(_buildings([(0, 0, 10, 10)]), UTM)
    xy = np.array([[X0 - 5, Y0], [X0 + 5, Y0 + 5]])
    new, moved = move_out_of_buildings(xy, ob)
    assert moved[0] == 0 and np.array_equal(new[0], xy[0])
    assert moved[1] == pytest.approx(5 + WALL_OFFSET_M, abs=1e-3)


def test_occluded_needs_buildings() -> None:
    with pytest.raises(OptionError, match="buildings"):
        footprints(_cams([(0, 0)]), "occluded")


# --- fov ---------------------------------------------------------------------------------------


def test_fov_wedge_points_along_the_true_bearing() -> None:
    lon, lat = -73.985, 40.748
    cams = gpd.GeoDataFrame(
        {"camera_id": ["a", "b"], "direction_deg": [90.0, 200.0], "hfov_deg": [0.5, 0.5]},
        geometry=gpd.points_from_xy([lon, lon], [lat, lat]),
        crs=4326,
    )
    fp = footprints(cams, "fov", radius_m=100, crs=UTM)
    geod = Geod(ellps="WGS84")
    for geom, bearing in zip(fp.geometry, (90.0, 200.0), strict=True):
        on = geod.fwd(lon, lat, bearing, 80.0)[:2]
        off = geod.fwd(lon, lat, bearing + 1.0, 80.0)[:2]
        pts = gpd.GeoSeries(gpd.points_from_xy([on[0], off[0]], [on[1], off[1]]), crs=4326)
        inside = geom.contains(pts.to_crs(UTM).values)
        assert list(inside) == [True, False]
    # A wedge's area is its share of the disc.
    assert fp.area.iloc[0] == pytest.approx(math.pi * 100**2 * 0.5 / 360, rel=1e-3)


def test_fov_defaults_by_camera_type() -> None:
    cams = _cams(
        [(0, 0)] * 5,
        direction_deg=[10.0, 10.0, 10.0, np.nan, 10.0],
        hfov_deg=[np.nan, np.nan, np.nan, 40.0, 400.0],
        camera_type=["dome", "bullet", "unknown", "bullet", "fixed"],
    )
    ledger = Ledger()
    fp = footprints(cams, "fov", radius_m=100, ledger=ledger)
    disc = math.pi * 100**2
    ratio = (fp.area / disc).to_numpy()
    assert ratio[0] == pytest.approx(1, rel=1e-3)  # a dome sees all round
    assert ratio[1] == pytest.approx(101 / 360, rel=1e-3)
    assert ratio[2] == pytest.approx(101 / 360, rel=1e-3)
    assert ratio[3] == pytest.approx(1, rel=1e-3)  # no direction: all round
    assert ratio[4] == pytest.approx(101 / 360, rel=1e-3)  # 400° is no field of view
    assert any("hfov_deg outside" in n for n in ledger.notes)
    views = [json.loads(p)["view"] for p in fp["parameters"]]
    assert views[1] == "camera direction, type hfov" and views[3] == "all-round (no direction)"
    assert "fov model" in describe_footprints(fp)


# --- pixel_density -------------------------------------------------------------------------


def test_vendor_example_1080p_68_degrees_reaches_250_px_per_m_at_5_7_m() -> None:
    assert specs.slant_distance(250, 1920, 68) == pytest.approx(5.7, rel=0.01)
    assert float(specs.pixels_per_metre(5.7, 1920, 68)) == pytest.approx(250, rel=0.01)
    # Through the model: a camera at ground level with that spec, identification band.
    cams = _cams([(0, 0)], spec_id=["vendor_example_68"], height_m=[0.0])
    fp = footprints(cams, "pixel_density", bands=["identification"], quad_segs=1024)
    ident = fp.loc[fp["band"] == "identification"]
    radius = math.sqrt(ident.area.iloc[0] / math.pi)
    assert radius == pytest.approx(5.7, rel=0.01)
    assert json.loads(ident["parameters"].iloc[0])["ground_m"] == pytest.approx(5.693, abs=1e-3)


def test_ptz_30x_identifies_out_to_about_208_m_at_full_zoom() -> None:
    table = specs.default_specs().set_index("spec_id")
    d = specs.slant_distance(
        250, float(table.at["ptz_30x", "h_pixels"]), float(table.at["ptz_30x", "hfov_tele_deg"])
    )
    assert d == pytest.approx(208, rel=0.01)
    cams = _cams([(0, 0)], camera_type=["dome"], height_m=[6.0])
    fp = footprints(cams, "pixel_density", bands=["identification"])
    p = json.loads(fp["parameters"].iloc[1])
    assert p["spec_id"] == "ptz_30x"
    assert p["ground_m"] == pytest.approx(math.sqrt(d**2 - 36), abs=1e-3)


def test_bands_are_nested_and_face_bands_leave_out_the_ground_below() -> None:
    h = 3.0
    cams = _cams([(0, 0)], spec_id=["vendor_example_68"], height_m=[h], direction_deg=[0.0])
    fp = footprints(cams, "pixel_density")
    by_band = dict(zip(fp["band"], fp.geometry, strict=True))
    assert next(iter(fp["band"])) == "any" and by_band["any"].equals(by_band["iec2025_20"])
    ladder = sorted(specs.band_thresholds().items(), key=lambda kv: kv[1])
    faces = specs.face_bands(dict(ladder))
    assert faces == {"face_recognition", "identification", "iec2025_250", "iec2025_500",
                     "iec2025_1500"}  # fmt: skip
    inner = h / math.tan(math.radians(30.0))
    for (lo, _), (hi, _) in itertools.pairwise(ladder):
        assert by_band[hi].difference(by_band[lo]).area < 1e-6

    def north(d: float) -> shapely.Point:
        return shapely.Point(X0, Y0 + d)

    ppm_face = specs.band_thresholds(["face_recognition"])["face_recognition"]
    reach = specs.ground_radius(specs.slant_distance(ppm_face, 1920, 68), h)
    assert inner < float(reach)
    face = by_band["face_recognition"]
    assert not face.contains(north(inner * 0.9))
    assert face.contains(north((inner + float(reach)) / 2))
    assert not face.contains(north(float(reach) * 1.05))
    # Observation (not a face band) has no hole below the camera.
    assert by_band["observation"].contains(north(1.0))


def test_face_band_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMCENSUS_FACE_WIDTH_PX", "48")
    assert specs.band_thresholds(["face_recognition"])["face_recognition"] == pytest.approx(300)


def test_pixel_density_is_clipped_by_buildings() -> None:
    cams = _cams([(0, 0)], camera_type=["dome"], height_m=[6.0])
    walls = [(-500, 10, 500, 40), (-500, -40, 500, -10)]
    fp = footprints(cams, "pixel_density", bands=["recognition"], buildings=_buildings(walls))
    geom = fp.geometry.iloc[1]
    assert geom.bounds[1] >= Y0 - 10 - 1e-6 and geom.bounds[3] <= Y0 + 10 + 1e-6
    assert "building footprints" in describe_footprints(fp)


def test_default_spec_table_is_complete_and_sourced() -> None:
    table = specs.default_specs()
    assert table["source"].str.len().gt(20).all()
    types = {t for v in table["default_for"] for t in v.split(";") if t}
    assert {"dome", "bullet", "fixed", "panning", "unknown"} <= types


def test_bad_spec_table_names_every_problem(tmp_path: Path) -> None:
    df = specs.default_specs()
    df.at[0, "h_pixels"] = -3
    df.at[1, "hfov_tele_deg"] = 90.0
    df.at[2, "spec_id"] = str(df.at[0, "spec_id"])
    path = tmp_path / "specs.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        specs.read_specs(path)
    text = str(err.value)
    assert "row 1, column 'h_pixels'" in text
    assert "row 2, column 'hfov_tele_deg'" in text
    assert "row 3, column 'spec_id'" in text


def test_unknown_band_and_spec_are_refused() -> None:
    with pytest.raises(OptionError, match="available"):
        footprints(_cams([(0, 0)]), "pixel_density", bands=["inspection"])
    with pytest.raises(OptionError, match="not in the spec table"):
        footprints(_cams([(0, 0)], spec_id=["nope"]), "pixel_density")


# --- real buildings ------------------------------------------------------------------------


@pytest.mark.realdata
def test_midtown_osm_cameras_against_a_brute_force_ray_cast(shared: Path) -> None:
    from camcensus.io import osm

    path = shared / "osm_nyc" / "manhattan_14th_to_50th_2025-01.osm.pbf"
    gdf_b = osm.read_osm_buildings(path)
    cams = osm.read_osm_cameras(path)
    assert len(cams) == 120 and len(gdf_b) > 7_900
    disc = footprints(cams, "disc", crs=UTM)
    fov = footprints(cams, "fov", crs=UTM)
    occl = footprints(cams, "occluded", buildings=gdf_b, crs=UTM)
    assert (occl.area <= fov.area * (1 + 1e-9)).all() and (fov.area <= disc.area + 1e-6).all()
    assert occl.area.sum() < 0.8 * fov.area.sum()  # Midtown's buildings hide a lot
    # Brute force on a sample of the cameras, against the real (merged) footprints.
    ob = obstacles_from_buildings(gdf_b, UTM)
    rng = np.random.default_rng(8)
    checked = 0
    for k in rng.choice(len(cams), 12, replace=False):
        geom = occl.geometry.iloc[k]
        if fov.area.iloc[k] < disc.area.iloc[k] * 0.99:
            continue  # wedges: the ray cast below is all round
        c0 = shapely.get_coordinates(disc.geometry.iloc[k].centroid)
        # A camera on or inside a building: start the rays where the model put it.
        c = move_out_of_buildings(c0, ob)[0][0]
        union = shapely.union_all(ob.polygons[ob.tree.query(shapely.Point(c).buffer(125.0))])
        brute, _ = _raycast((c[0], c[1]), 120.0, union, 7200)
        # 0.2 %, or 0.2 m² for a camera boxed in a recess (the ray cast cuts corners).
        assert abs(geom.area - brute.area) < max(2e-3 * brute.area, 0.2), (k, brute.area)
        checked += 1
    assert checked >= 8


def test_describe_footprints_names_model_and_specs() -> None:
    cams = _cams([(0, 0), (5, 5)], camera_type=["dome", "bullet"])
    text = describe_footprints(footprints(cams, "pixel_density", bands=["identification"]))
    assert "pixel_density" in text and "ptz_30x" in text and "bullet_1080p" in text
    assert describe_footprints(footprints(cams, "disc")).startswith("disc model: 120 m")
    assert describe_footprints(footprints(cams.iloc[:0], "fov")) == "No footprints (no cameras)."


def test_per_area_measures_work_on_occluded_footprints() -> None:
    from camcensus.coverage import add_coverage_measures, unit_area

    cams = _cams([(0, 0)])
    tract = gpd.GeoDataFrame(
        {"GEOID": ["t"]}, geometry=[shapely.box(X0 - 500, Y0 - 500, X0 + 500, Y0 + 500)], crs=UTM
    )
    walls = [(-500, 10, 500, 40), (-500, -40, 500, -10)]
    occl = footprints(cams, "occluded", radius_m=100, buildings=_buildings(walls))
    assert unit_area(occl) == pytest.approx(math.pi * 100**2)
    out = add_coverage_measures(tract, occl, cams)
    # A 20 m street canyon: the share of the disc inside the strip |y| < 10.
    strip = 2 * (10 * math.sqrt(100**2 - 10**2) + 100**2 * math.asin(10 / 100))
    assert out["eff_cameras"].iloc[0] == pytest.approx(strip / (math.pi * 100**2), rel=1e-3)
    with pytest.raises(OptionError, match="effective cameras"):
        unit_area(footprints(cams, "pixel_density", bands=["identification"]))
