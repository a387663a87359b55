"""Readers of Amnesty's files: every problem named by file, row, column and fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus import InputError, Ledger
from camcensus.io import decode


def test_brooklyn_file_all_columns(nyc_paths: dict[str, Path]) -> None:
    gdf = decode.intersections_from_csv(nyc_paths["brooklyn"])
    assert len(gdf) == 10_377
    assert gdf.crs.to_epsg() == 4326
    # Sums documented in SOURCES.md, computed independently of this package.
    assert gdf["n_cameras_median"].sum() == 10_448
    assert gdf["attached_street_median"].sum() == 869
    assert gdf["attached_building_median"].sum() == 8_316
    assert gdf["attached_unknown_median"].sum() == 31
    assert gdf["type_dome_median"].sum() == 595
    assert gdf["type_bullet_median"].sum() == 111
    assert (gdf["n_cameras_median"] > 0).sum() == 4_662
    assert set(gdf["n_cameras_agreement"]) <= {"Unanimous", "2 vs 1", "All disagree"}
    raw = pd.read_csv(nyc_paths["brooklyn"])
    np.testing.assert_array_equal(gdf.geometry.x, raw["Long"])
    np.testing.assert_array_equal(gdf.geometry.y, raw["Lat"])


def test_citywide_reduced_subset_of_columns(nyc_paths: dict[str, Path]) -> None:
    gdf = decode.intersections_from_csv(nyc_paths["citywide"])
    assert len(gdf) == 14_097
    assert gdf["attached_street_median"].sum() == 3_317
    assert gdf["attached_building_median"].sum() == 22_129
    assert "type_dome_median" not in gdf.columns
    assert gdf["PanoramaId"].str.startswith("row-").all()


def _write(tmp_path: Path, text: str, name: str = "counts.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_missing_coordinate_column_names_file_and_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "PanoramaId,Long,attached_street_median\na,-73.9,1\n")
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    msg = str(exc.value)
    assert "counts.csv" in msg and "'Lat'" in msg and "Fix:" in msg


def test_unparseable_coordinate_raises_with_row_and_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "PanoramaId,Long,Lat,attached_street_median\na,-73.9,40.7,1\nb,-73.9,40.7x,0\n"
        "c,-73.8,140.1,2\n",
    )
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    problems = exc.value.problems
    assert [(q.row, q.column) for q in problems] == [(2, "Lat"), (3, "Lat")]
    assert "'40.7x'" in str(exc.value)
    assert "swapped" in problems[0].fix


def test_unparseable_rows_excluded_and_counted(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "PanoramaId,Long,Lat,attached_street_median\na,-73.9,40.7,1\nb,-73.9,oops,0\nc,-73.8,40.6,-1\n",
    )
    ledger = Ledger()
    gdf = decode.intersections_from_csv(p, errors="exclude", ledger=ledger)
    assert list(gdf["PanoramaId"]) == ["a"]
    assert ledger.total() == 2
    assert (
        "Lat" in ledger.exclusions[0].reason
        and "attached_street_median" in ledger.exclusions[0].reason
    )


def test_duplicated_panorama_is_an_error_or_counted(tmp_path: Path) -> None:
    p = _write(tmp_path, "PanoramaId,Long,Lat\na,-73.9,40.7\na,-73.9,40.7\nb,-73.8,40.6\n")
    with pytest.raises(InputError, match="PanoramaId 'a' a second time"):
        decode.intersections_from_csv(p)
    ledger = Ledger()
    gdf = decode.intersections_from_csv(p, errors="exclude", ledger=ledger)
    assert len(gdf) == 2 and ledger.total() == 1


def test_bad_agreement_value(tmp_path: Path) -> None:
    p = _write(tmp_path, "Long,Lat,n_cameras_agreement\n-73.9,40.7,Unanimous\n-73.9,40.7,maybe\n")
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert exc.value.problems[0].row == 2
    assert exc.value.problems[0].column == "n_cameras_agreement"


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        decode.intersections_from_csv("/nonexistent/counts.csv")


def test_submissions_reader(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "SubmissionId,DecoderId,IntersectionId,n_cameras,attached_street\ns1,d1,i1,2,1\ns2,d2,i1,x,0\n",
    )
    with pytest.raises(InputError) as exc:
        decode.submissions_from_csv(p)
    assert (exc.value.problems[0].row, exc.value.problems[0].column) == (2, "n_cameras")
    p2 = _write(tmp_path, "DecoderId,n_cameras\nd1,1\n", "c2.csv")
    with pytest.raises(InputError, match="IntersectionId"):
        decode.submissions_from_csv(p2)


def test_panoramas_conflicting_positions(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "PanoramaId,GoogleLat,GoogleLong\np1,40.7,-73.9\np1,40.7,-73.9\np2,40.6,-73.8\np2,40.61,-73.8\n",
        "panorama_url.csv",
    )
    with pytest.raises(InputError, match="two different positions"):
        decode.panoramas_from_csv(p)


def test_camera_tags_reader_checks_point_of_view(tmp_path: Path) -> None:
    header = "SubmissionId,IntersectionId,DecoderId,Attached,Type,Pov.heading,Pov.pitch,Pov.zoom\n"
    good = "s1,i1,d1,building,,120.5,10,1\n"
    p = _write(
        tmp_path, header + good + "s1,i1,d1,street_light/traffic_signal/road_sign,dome,400,5,2\n"
    )
    with pytest.raises(InputError) as exc:
        decode.camera_tags_from_csv(p)
    assert exc.value.problems[0].column == "Pov.heading"
    ok = _write(tmp_path, header + good, "ok.csv")
    tags = decode.camera_tags_from_csv(ok)
    assert tags["Pov.heading"].iloc[0] == pytest.approx(120.5)


def test_count_that_overflows_is_rejected_with_its_row(tmp_path: Path) -> None:
    # 1e20 used to become -9.2e18 (int64 overflow); now it is a problem of its row.
    p = _write(
        tmp_path,
        "SubmissionId,DecoderId,IntersectionId,n_cameras,attached_street\n"
        "s1,d1,i1,2,1\ns2,d2,i1,1e20,0\ns3,d3,i1,1001,0\ns4,d4,i1,1000,0\n",
    )
    with pytest.raises(InputError) as exc:
        decode.submissions_from_csv(p)
    got = [(q.row, q.column, q.found) for q in exc.value.problems]
    assert got == [(2, "n_cameras", "'1e20'"), (3, "n_cameras", "'1001'")]
    msg = str(exc.value)
    assert "at most 1000" in msg and "max_cameras_per_panorama" in msg
    assert "CAMCENSUS_MAX_CAMERAS_PER_PANORAMA" in msg
    assert "--errors exclude (errors='exclude' in Python)" in msg and "[" not in msg
    ledger = Ledger()
    sub = decode.submissions_from_csv(p, errors="exclude", ledger=ledger)
    assert sub["n_cameras"].tolist() == [2, 1000] and sub["n_cameras"].dtype == "int64"
    assert ledger.total("read submissions") == 2
    # The bound is a parameter (default: the setting).
    assert len(decode.submissions_from_csv(p, max_count=1e21)) == 4


def test_fractional_or_negative_volunteer_count_is_rejected(tmp_path: Path) -> None:
    # One volunteer's count is a whole number; 1.5 used to pass as "a median of two".
    p = _write(tmp_path, "IntersectionId,n_cameras\ni1,1.5\ni1,-1\ni1,2\n")
    with pytest.raises(InputError) as exc:
        decode.submissions_from_csv(p)
    assert [(q.row, q.expected) for q in exc.value.problems] == [
        (1, "a whole number >= 0"),
        (2, "a whole number >= 0"),
    ]


def test_median_bounds_and_fractions(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "Long,Lat,n_cameras_median,attached_street_median\n"
        "-73.9,40.7,1e20,0\n-73.9,40.71,0.3,0\n-73.9,40.72,2,-1\n-73.9,40.73,1.5,1\n",
    )
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert [(q.row, q.column) for q in exc.value.problems] == [
        (2, "n_cameras_median"),
        (1, "n_cameras_median"),
        (3, "attached_street_median"),
    ]
    ledger = Ledger()
    gdf = decode.intersections_from_csv(p, errors="exclude", ledger=ledger)
    # A .5 median (an even number of decoders) is kept, and said.
    assert gdf["n_cameras_median"].tolist() == [1.5]
    assert ledger.total() == 3
    assert any("end in .5" in n for n in ledger.notes)


def test_duplicated_rows_without_panorama_id(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "Long,Lat,n_cameras_median\n-73.9,40.7,1\n-73.8,40.6,0\n-73.9,40.7,1\n-73.8,40.6,2\n",
    )
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    (problem,) = exc.value.problems
    assert problem.row == 3 and "a copy of row 1" in problem.found
    ledger = Ledger()
    gdf = decode.intersections_from_csv(p, errors="exclude", ledger=ledger)
    assert len(gdf) == 3
    assert {e.reason: e.count for e in ledger} == {
        "row repeating an earlier row: same coordinates and counts (first kept)": 1
    }
    # Rows 2 and 4 share a position but not their counts: kept, and said.
    assert [e.count for e in ledger.flagged] == [2]
    assert gdf["PanoramaId"].tolist() == ["row-1", "row-2", "row-4"]


def test_duplicated_column_name_is_an_error(tmp_path: Path) -> None:
    # pandas would read the second as 'attached_street_median.1' and use the first silently.
    p = _write(
        tmp_path,
        "Long,Lat,attached_street_median,attached_street_median\n-73.9,40.7,1,5\n",
    )
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    (problem,) = exc.value.problems
    assert problem.column == "attached_street_median"
    assert "2 times (columns 3, 4)" in problem.found


def test_a_camcensus_csv_reads_back_as_written(tmp_path: Path) -> None:
    # The aggregate step writes spreadsheet-safe CSV; reading it back restores the text.
    from camcensus.io.formats import write_csv

    p = tmp_path / "agg.csv"
    write_csv(
        pd.DataFrame(
            {
                "PanoramaId": ["-2xQ9_abc", "=cmd"],
                "Long": [-73.95, -73.96],
                "Lat": [40.65, 40.66],
                "attached_street_median": [1, 0],
                "BoroName": ["=1+1", "Brooklyn"],
            }
        ),
        p,
    )
    gdf = decode.intersections_from_csv(p)
    assert list(gdf["PanoramaId"]) == ["-2xQ9_abc", "=cmd"]
    assert list(gdf["BoroName"]) == ["=1+1", "Brooklyn"]


def test_count_above_its_whole_is_a_problem_of_its_row(tmp_path: Path) -> None:
    head = "IntersectionId,n_cameras,attached_street,attached_building,attached_unknown,"
    head += "type_dome,type_bullet,type_unknown\n"
    p = _write(
        tmp_path,
        head + "i1,3,1,2,0,1,0,0\n"  # consistent
        "i2,3,50,0,0,0,0,0\n"  # a part above the whole
        "i3,3,2,2,0,1,0,1\n"  # parts adding up to more than the whole
        "i4,3,1,2,0,1,1,0\n"  # types adding up to more than attached_street
        "i5,3,1,1,0,0,0,0\n",  # parts adding up to less: flagged, kept
    )
    with pytest.raises(InputError) as exc:
        decode.submissions_from_csv(p)
    got = [(q.row, q.column) for q in exc.value.problems]
    assert got == [(2, "attached_street"), (3, "n_cameras"), (4, "attached_street")]
    assert all("--errors exclude" in q.fix for q in exc.value.problems)
    ledger = Ledger()
    kept = decode.submissions_from_csv(p, errors="exclude", ledger=ledger)
    assert kept["IntersectionId"].tolist() == ["i1", "i5"]
    assert ledger.total("read submissions") == 3
    flagged = {e.reason: e.count for e in ledger.flagged}
    assert flagged == {
        "submission(s) in counts.csv whose attached_street + attached_building + "
        "attached_unknown add up to less than n_cameras": 1,
        "submission(s) in counts.csv whose type_dome + type_bullet + type_unknown add up to "
        "less than attached_street": 1,
    }
    # With only some of the parts, a shortfall says nothing.
    ledger = Ledger()
    decode.submissions_from_csv(
        _write(tmp_path, "IntersectionId,n_cameras,attached_street\ni1,3,1\n"), ledger=ledger
    )
    assert not ledger.flagged
