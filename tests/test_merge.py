"""Merging camera inventories: against a brute-force pairwise reference, and on real NYC lists."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from camcensus._errors import ContractError, OptionError
from camcensus.cameras import CAMERA_COLUMNS, validate_cameras
from camcensus.io.citylists import read_city_list
from camcensus.merge import INCOMPATIBLE_CAMERA_TYPES, MergeResult, merge_sources

GEOD = Geod(ellps="WGS84")


def _frame(
    name: str,
    lon: np.ndarray,
    lat: np.ndarray,
    rng: np.random.Generator,
    *,
    typed: bool = True,
) -> gpd.GeoDataFrame:
    n = len(lon)
    types = np.array(["unknown", "dome", "bullet", "fixed", "panning"], dtype=object)
    mounts = np.array(["unknown", "street", "building"], dtype=object)
    direction = np.where(rng.random(n) < 0.5, np.nan, rng.uniform(0, 360, n))
    df = pd.DataFrame(
        {
            "camera_id": [f"{name}-{k}" for k in range(n)],
            "position_sd_m": np.nan,
            "mount": mounts[rng.integers(0, 3, n)] if typed else "unknown",
            "camera_type": types[rng.integers(0, 5, n)] if typed else "unknown",
            "surveillance_type": np.where(rng.random(n) < 0.1, "ALPR", "camera"),
            "direction_deg": direction if typed else np.nan,
            "hfov_deg": np.where(rng.random(n) < 0.1, 360.0, np.nan),
            "height_m": np.nan,
            "operator": None,
            "source": name,
            "source_ref": [f"{name}:{k}" for k in range(n)],
            "tier": "t",
            "support": None,
            "first_seen": None,
            "last_seen": None,
            "licence": f"lic-{name}",
        }
    )
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _synthetic(
    seed: int, sizes: tuple[int, ...], *, typed: bool = True
) -> dict[str, gpd.GeoDataFrame]:
    """Cameras scattered over ~400 m x 400 m around Lower Manhattan, so that many pairs
    fall within 25 m of each other, plus copies of some cameras jittered by a few metres."""
    rng = np.random.default_rng(seed)
    base_lon = -74.0 + rng.uniform(0, 0.005, 60)
    base_lat = 40.71 + rng.uniform(0, 0.0036, 60)
    frames = {}
    for k, n in enumerate(sizes):
        pick = rng.integers(0, 60, n)
        jitter = rng.normal(0, 8e-5, (n, 2))
        frames[f"s{k}"] = _frame(
            f"s{k}", base_lon[pick] + jitter[:, 0], base_lat[pick] + jitter[:, 1], rng, typed=typed
        )
    return frames


def _reference(
    frames: dict[str, gpd.GeoDataFrame], distance_m: float, tol: float
) -> tuple[set[frozenset[str]], set[tuple[str, str]], dict[tuple[str, str], tuple[int, ...]]]:
    """Brute force: every cross-source pair's geodesic distance, plain-Python compatibility,
    closest-first grouping with at most one camera per source."""
    rows = []
    for name, gdf in frames.items():
        for rec, geom in zip(gdf.to_dict("records"), gdf.geometry, strict=True):
            rows.append((name, rec["camera_id"], geom.x, geom.y, rec))
    n = len(rows)
    cand = []
    for i in range(n):
        for j in range(i + 1, n):
            if rows[i][0] == rows[j][0]:
                continue
            _, _, d = GEOD.inv(rows[i][2], rows[i][3], rows[j][2], rows[j][3])
            if d <= distance_m:
                cand.append((d, i, j))
    cand.sort()

    def known(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        s = str(v).lower()
        return "" if s == "unknown" else s

    def dir_of(r: dict[str, object]) -> float:
        w = r["hfov_deg"]
        if isinstance(w, float) and w >= 359:
            return float("nan")
        return float(r["direction_deg"])  # type: ignore[arg-type]

    def compatible(a: dict[str, object], b: dict[str, object]) -> bool:
        for col in ("surveillance_type", "mount"):
            if known(a[col]) and known(b[col]) and known(a[col]) != known(b[col]):
                return False
        ta, tb = known(a["camera_type"]), known(b["camera_type"])
        if ta and tb and frozenset({ta, tb}) in INCOMPATIBLE_CAMERA_TYPES:
            return False
        da, db = dir_of(a), dir_of(b)
        if not (np.isnan(da) or np.isnan(db)):
            gap = min(abs(da - db), 360 - abs(da - db))
            if gap > tol:
                return False
        return True

    group = {i: {i} for i in range(n)}
    conflicts = set()
    for _, i, j in cand:
        a, b = rows[i][4], rows[j][4]
        if not compatible(a, b):
            conflicts.add((rows[i][1], rows[j][1]))
            continue
        gi, gj = group[i], group[j]
        if gi is gj:
            continue
        if {rows[k][0] for k in gi} & {rows[k][0] for k in gj}:
            continue
        merged = gi | gj
        for k in merged:
            group[k] = merged
    groups = {frozenset(rows[k][1] for k in g) for g in group.values()}
    names = list(frames)
    summary = {}
    for x, nx in enumerate(names):
        for ny in names[x + 1 :]:
            both = sum(
                1
                for g in groups
                if any(c.startswith(nx + "-") for c in g) and any(c.startswith(ny + "-") for c in g)
            )
            summary[(nx, ny)] = (len(frames[nx]), len(frames[ny]), both)
    return groups, conflicts, summary


def _groups(result: MergeResult) -> set[frozenset[str]]:
    return {frozenset(ids.split(";")) for ids in result.cameras["camera_ids"]}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", [(40, 35), (30, 25, 20)])
@pytest.mark.parametrize("typed", [True, False])
def test_matches_brute_force(seed: int, sizes: tuple[int, ...], typed: bool) -> None:
    frames = _synthetic(seed, sizes, typed=typed)
    result = merge_sources(frames, distance_m=25.0, direction_tolerance_deg=45.0)
    groups, conflicts, summary = _reference(frames, 25.0, 45.0)
    assert _groups(result) == groups
    assert (
        set(zip(result.conflicts["camera_id_a"], result.conflicts["camera_id_b"], strict=True))
        == conflicts
    )
    for row in result.summary.itertuples():
        n_a, n_b, matched = summary[(row.source_a, row.source_b)]
        assert (row.n_a, row.n_b, row.matched) == (n_a, n_b, matched)
        assert row.only_a == n_a - matched
        assert row.only_b == n_b - matched
    # The test data must exercise every branch: merges, conflicts, groups across 3 sources.
    assert len(result.matches) > 5
    if typed:
        assert len(result.conflicts) > 0
    if len(sizes) == 3 and not typed:
        assert (result.cameras["n_sources"] == 3).any()


def test_invariants() -> None:
    frames = _synthetic(5, (50, 40, 30))
    result = merge_sources(frames)
    validate_cameras(result.cameras)
    # Every input camera is in exactly one merged camera; at most one per source.
    members = [c for ids in result.cameras["camera_ids"] for c in ids.split(";")]
    assert sorted(members) == sorted(c for g in frames.values() for c in g["camera_id"])
    for ids, sources in zip(result.cameras["camera_ids"], result.cameras["sources"], strict=True):
        assert len(sources.split(";")) == len(ids.split(";"))
    assert len(result.cameras) == sum(map(len, frames.values())) - len(result.matches)
    assert (result.matches["distance_m"] <= 25.0).all()
    assert (result.conflicts["distance_m"] <= 25.0).all()
    assert (result.singletons["n_sources"] == 1).all()
    assert len(result.singletons) == int((result.cameras["n_sources"] == 1).sum())
    # References and licences of every member are kept.
    multi = result.cameras[result.cameras["n_sources"] > 1].iloc[0]
    assert len(multi["source_refs"].split(";")) == multi["n_sources"]
    assert multi["licence"].count("lic-") == multi["n_sources"]
    # The first source has priority: its member gives camera_id and position.
    first = result.cameras[result.cameras["sources"].str.startswith("s0;")]
    assert first["camera_id"].str.startswith("s0-").all()


def test_untyped_copies_all_match() -> None:
    # A source and a copy of it moved 3 m north: every camera matches its own copy.
    rng = np.random.default_rng(3)
    lon = -90.07 + rng.uniform(0, 0.01, 80)
    lat = 29.95 + rng.uniform(0, 0.01, 80)
    a = _frame("a", lon, lat, rng, typed=False)
    b = _frame("b", lon, lat + 3 / 111_000, rng, typed=False)
    a["surveillance_type"] = "camera"
    b["surveillance_type"] = "camera"
    result = merge_sources({"a": a, "b": b}, distance_m=5.0)
    assert result.summary.loc[0, "matched"] == 80
    pairs = set(zip(result.matches["camera_id_a"], result.matches["camera_id_b"], strict=True))
    assert pairs == {(f"a-{k}", f"b-{k}") for k in range(80)}
    assert result.matches["distance_m"].to_numpy() == pytest.approx(3.0, abs=0.05)


def test_direction_conflict_reason() -> None:
    rng = np.random.default_rng(0)
    a = _frame("a", np.array([-74.0]), np.array([40.7]), rng, typed=False)
    b = _frame("b", np.array([-74.0]), np.array([40.70001]), rng, typed=False)
    a["direction_deg"], b["direction_deg"] = 350.0, 90.0
    a["hfov_deg"] = b["hfov_deg"] = np.nan
    a["surveillance_type"] = b["surveillance_type"] = "camera"
    result = merge_sources({"a": a, "b": b})
    assert result.summary.loc[0, "conflicts"] == 1
    assert result.conflicts.loc[0, "reason"] == "direction 350° vs 90° (100° apart > 45°)"
    assert len(result.cameras) == 2
    b["direction_deg"] = 20.0  # 30° apart through north: compatible
    assert merge_sources({"a": a, "b": b}).summary.loc[0, "matched"] == 1


def test_errors() -> None:
    rng = np.random.default_rng(0)
    a = _frame("a", np.array([-74.0]), np.array([40.7]), rng)
    with pytest.raises(OptionError):
        merge_sources({})
    with pytest.raises(OptionError, match="distance_m"):
        merge_sources({"a": a}, distance_m=0)
    with pytest.raises(ContractError, match="source 'a'"):
        merge_sources({"a": a.drop(columns=["licence"])})


@pytest.mark.realdata
def test_nyc_dot_two_copies_match_by_id(shared: Path) -> None:
    scan = read_city_list(shared / "nyc_dot_cameras/scanmap_ny_cams.json", "nyc-dot-cameras")
    marks = read_city_list(
        shared / "nyc_dot_cameras/pig_observer_cameras_2020-06.json", "nyc-dot-cameras-markers"
    )
    result = merge_sources({"scanmap": scan, "markers": marks})
    assert result.summary.loc[0, ["matched", "only_a", "only_b", "conflicts"]].tolist() == [
        723,
        0,
        0,
        0,
    ]
    ida = result.matches["camera_id_a"].str.split(":").str[1]
    idb = result.matches["camera_id_b"].str.split(":").str[1]
    assert (ida == idb).all()
    assert (result.matches["distance_m"] < 1e-6).all()


@pytest.mark.realdata
def test_nyc_dot_osm_linknyc_table(shared: Path) -> None:
    frames = {
        "nyc-dot": read_city_list(
            shared / "nyc_dot_cameras/scanmap_ny_cams.json", "nyc-dot-cameras"
        ),
        "osm": read_city_list(shared / "line_of_sight_nyc/cctv.json", "line-of-sight-osm-cctv"),
        "linknyc": read_city_list(
            shared / "linknyc/LinkNYC_Kiosk_Locations_20250426.csv", "linknyc"
        ),
    }
    result = merge_sources(frames)
    table = result.summary.set_index(["source_a", "source_b"])
    assert table.loc[("nyc-dot", "osm"), ["n_a", "n_b", "matched", "conflicts"]].tolist() == [
        723,
        638,
        18,
        0,
    ]
    assert table.loc[("nyc-dot", "linknyc"), ["matched", "conflicts"]].tolist() == [18, 0]
    assert table.loc[("osm", "linknyc"), ["matched", "conflicts"]].tolist() == [10, 6]
    assert len(result.cameras) == 723 + 638 + 2218 - len(result.matches)
    assert set(result.conflicts["reason"]) == {"mount building vs street"}
    validate_cameras(result.cameras)
    assert list(result.cameras.columns[: len(CAMERA_COLUMNS)]) == list(CAMERA_COLUMNS)


def test_empty_and_single_source() -> None:
    rng = np.random.default_rng(0)
    empty = _frame("e", np.array([]), np.array([]), rng)
    result = merge_sources({"e": empty, "f": empty.copy()})
    assert len(result.cameras) == 0
    assert result.summary.loc[0, ["n_a", "n_b", "matched"]].tolist() == [0, 0, 0]
    one = _frame("a", np.array([-74.0, -74.0]), np.array([40.7, 40.7]), rng)
    # Two cameras of one source at one point stay two cameras.
    assert len(merge_sources({"a": one}).cameras) == 2


def test_licence_keeps_every_term() -> None:
    rng = np.random.default_rng(0)
    a = _frame("a", np.array([-74.0]), np.array([40.7]), rng, typed=False)
    b = _frame("b", np.array([-74.0]), np.array([40.70001]), rng, typed=False)
    a["surveillance_type"] = b["surveillance_type"] = "camera"
    a["licence"], b["licence"] = "ODbL 1.0; attribution", "CC BY-NC-ND 4.0"
    a["first_seen"], b["first_seen"] = "2021-05", "2020-06-03"
    a["last_seen"], b["last_seen"] = "2021-05", "2020-06-03"
    merged = merge_sources({"a": a, "b": b}).cameras.iloc[0]
    assert merged["licence"] == "ODbL 1.0; attribution; CC BY-NC-ND 4.0"
    assert merged["first_seen"] == "2020-06-03"
    assert merged["last_seen"] == "2021-05"
    assert merged["source_refs"] == "a:0;b:0"
