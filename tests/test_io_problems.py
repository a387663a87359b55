"""Every problem any reader raises carries a real fix; no numpy warning leaks from a reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from camcensus import InputError
from camcensus.io import census, decode
from camcensus.io._validate import EXCLUDE_HINT

INTER = "PanoramaId,Long,Lat,n_cameras_median,n_cameras_agreement,ImageDate\n"
SUBS = "SubmissionId,DecoderId,IntersectionId,n_cameras,attached_street,attached_building\n"
RAW = "IntersectionId,PanoramaId,Lat,Long,ImageDate\n"
PANOS = "PanoramaId,GoogleLat,GoogleLong\n"
TAGS = "SubmissionId,IntersectionId,Attached,Pov.heading\n"
ACS = "GEOID,popn,popn.white,popn.black,popn.hispanic\n"

CSV_CASES: list[tuple[str, Callable[[Path], object], str]] = [
    ("empty_pano", decode.intersections_from_csv, INTER + ",-73.9,40.7,1,Unanimous,2019-08\n"),
    ("nan_count", decode.intersections_from_csv, INTER + "p,-73.9,40.7,nan,Unanimous,2019-08\n"),
    ("nan_lat", decode.intersections_from_csv, INTER + "p,-73.9,NaN,1,Unanimous,2019-08\n"),
    ("huge", decode.intersections_from_csv, INTER + "p,-73.9,40.7,1e308,Unanimous,2019-08\n"),
    ("agreement", decode.intersections_from_csv, INTER + "p,-73.9,40.7,1,maybe,2019-08\n"),
    ("month", decode.intersections_from_csv, INTER + "p,-73.9,40.7,1,Unanimous,08/2019\n"),
    ("dup_pano", decode.intersections_from_csv, INTER + "p,-73.9,40.7,1,Unanimous,\n" * 2),
    ("no_coords", decode.intersections_from_csv, "PanoramaId,x\np,1\n"),
    ("empty_iid", decode.submissions_from_csv, SUBS + "s,d,,1,1,0\n"),
    ("nan_sub", decode.submissions_from_csv, SUBS + "s,d,i,NaN,1,0\n"),
    ("huge_sub", decode.submissions_from_csv, SUBS + "s,d,i,1e308,1,0\n"),
    ("part_gt_whole", decode.submissions_from_csv, SUBS + "s,d,i,3,50,0\n"),
    ("no_iid", decode.submissions_from_csv, "n_cameras\n1\n"),
    ("raw_empty_pano", decode.raw_intersections_from_csv, RAW + "i,,40.7,-73.9,2019-08\n"),
    ("raw_empty_iid", decode.raw_intersections_from_csv, RAW + ",p,40.7,-73.9,2019-08\n"),
    ("raw_dup", decode.raw_intersections_from_csv, RAW + "i,p,40.7,-73.9,2019-08\n" * 2),
    ("raw_lat", decode.raw_intersections_from_csv, RAW + "i,p,999,-73.9,2019-08\n"),
    ("pano_empty", decode.panoramas_from_csv, PANOS + ",40.7,-73.9\n"),
    ("pano_lat", decode.panoramas_from_csv, PANOS + "p,999,-73.9\n"),
    ("pano_clash", decode.panoramas_from_csv, PANOS + "p,40.7,-73.9\np,40.8,-73.9\n"),
    ("tags", decode.camera_tags_from_csv, TAGS + ",i,pole,400\n"),
    ("acs_nan", census.census_from_csv, ACS + "36047000100,nan,1,1,1\n"),
    ("acs_empty_geoid", census.census_from_csv, ACS + ",10,1,1,1\n"),
    ("acs_group", census.census_from_csv, ACS + "36047000100,10,1,99,1\n"),
    ("acs_dup", census.census_from_csv, ACS + "36047000100,10,1,1,1\n" * 2),
    ("acs_sci", census.census_from_csv, ACS + "3.6047E+10,10,1,1,1\n"),
    ("acs_columns", census.census_from_csv, "GEOID,popn\n36047000100,10\n"),
    ("header_only", decode.intersections_from_csv, INTER),
    ("semicolons", decode.intersections_from_csv, "Long;Lat\n-73.9;40.7\n"),
    ("dup_column", decode.intersections_from_csv, "Long,Lat,Lat\n-73.9,40.7,40.7\n"),
    ("ragged", decode.intersections_from_csv, "Long,Lat\n-73.9,40.7\n1,2,3,4\n"),
]


def _assert_real_fixes(exc: InputError) -> None:
    assert exc.problems
    for p in exc.problems:
        fix = p.fix.strip()
        assert fix and fix not in {EXCLUDE_HINT, f"; {EXCLUDE_HINT}"}, p
        assert not fix.startswith((";", "or pass", ",")), p
        # A real instruction, not a stub.
        assert len(fix.split(";")[0].split()) >= 3, p
    assert "Fix: ;" not in str(exc) and not str(exc).rstrip().endswith("Fix:")


@pytest.mark.parametrize(("name", "reader", "text"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_every_csv_problem_has_a_fix(
    tmp_path: Path, name: str, reader: Callable[[Path], object], text: str
) -> None:
    p = tmp_path / f"{name}.csv"
    p.write_text(text)
    with pytest.raises(InputError) as exc:
        reader(p)
    _assert_real_fixes(exc.value)


def _tracts(n: int = 3, crs: str | int = "EPSG:32618") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"GEOID": [f"3604700{i:04d}" for i in range(n)], "BoroName": ["A"] * n},
        geometry=[
            shapely.box(583_000 + i * 1000, 4_500_000, 583_900 + i * 1000, 4_500_900)
            for i in range(n)
        ],
        crs=crs,
    )


def _vector_cases(tmp: Path) -> list[Path]:
    paths = []
    p = tmp / "table.csv"
    p.write_text("GEOID,popn\n36047000100,10\n")
    paths.append(p)
    p = tmp / "zero.gpkg"
    _tracts().iloc[:0].to_file(p)
    paths.append(p)
    p = tmp / "nocrs.shp"
    _tracts().to_file(p)
    p.with_suffix(".prj").unlink()
    paths.append(p)
    p = tmp / "wrongcrs.gpkg"
    _tracts().set_crs(4326, allow_override=True).to_file(p)
    paths.append(p)
    t = _tracts().astype({"GEOID": object})
    t.loc[1, "GEOID"] = None
    p = tmp / "nullgeoid.gpkg"
    t.to_file(p)
    paths.append(p)
    t = _tracts()
    t.loc[1, "GEOID"] = t.loc[0, "GEOID"]
    p = tmp / "dupgeoid.gpkg"
    t.to_file(p)
    paths.append(p)
    t = _tracts()
    t["geometry"] = t.centroid
    p = tmp / "points.gpkg"
    t.to_file(p)
    paths.append(p)
    p = tmp / "nogeoid.gpkg"
    _tracts().drop(columns="GEOID").to_file(p)
    paths.append(p)
    p = tmp / "two.gpkg"
    _tracts().to_file(p, layer="a")
    _tracts().to_file(p, layer="b")
    paths.append(p)
    p = tmp / "garbage.gpkg"
    p.write_bytes(b"\x00\x01" * 50)
    paths.append(p)
    return paths


def test_every_vector_problem_has_a_fix(tmp_path: Path) -> None:
    for p in _vector_cases(tmp_path):
        with pytest.raises(InputError) as exc:
            census.tracts_from_file(p)
        _assert_real_fixes(exc.value)
        assert p.name in str(exc.value)


def test_no_numpy_warning_for_huge_or_odd_numbers(tmp_path: Path) -> None:
    # pytest turns warnings into errors; each value must be a clean problem of its row.
    for value in ("1e308", "-1e308", "1.7976931348623157e308", "1e309", "nan", "-inf"):
        p = tmp_path / "c.csv"
        p.write_text(INTER + f"p,-73.9,40.7,{value},Unanimous,2019-08\n")
        with pytest.raises(InputError) as exc:
            decode.intersections_from_csv(p)
        assert [(q.row, q.column) for q in exc.value.problems] == [(1, "n_cameras_median")]
        p.write_text(SUBS + f"s,d,i,{value},0,0\n")
        with pytest.raises(InputError) as exc:
            decode.submissions_from_csv(p)
        assert [(q.row, q.column) for q in exc.value.problems] == [(1, "n_cameras")]
    assert np.geterr()["over"] == "warn"


@pytest.mark.parametrize("value", ["nan", "NaN"])
def test_nan_is_reported_as_not_a_number(tmp_path: Path, value: str) -> None:
    p = tmp_path / "c.csv"
    p.write_text(INTER + f"p,-73.9,{value},1,Unanimous,2019-08\n")
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert exc.value.problems[0].found == f"'{value}' (not a number)"
    p.write_text(INTER + "p,-73.9,,1,Unanimous,2019-08\n")
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert exc.value.problems[0].found == "an empty cell"
