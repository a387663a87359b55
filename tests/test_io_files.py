"""Bad files never raise a traceback: each is an InputError naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from camcensus import InputError, Ledger
from camcensus.io import census, decode
from camcensus.io._validate import read_text_table

GOOD = "Long,Lat,n_cameras_median\n-73.9,40.7,1\n"


def _only(exc: pytest.ExceptionInfo[InputError]) -> str:
    (problem,) = exc.value.problems
    msg = str(exc.value)
    assert "Fix:" in msg and "[bold" not in msg
    return f"{problem.found} | {problem.expected} | {problem.fix}"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", "an empty file (0 bytes)"),
        (b"\n\n  \n", "an empty file (only blank lines)"),
        (b"Long,Lat,n_cameras_median\n", "a header row but no data rows"),
        (b"PK\x03\x04\x14\x00\x06\x00rest-of-a-workbook", "a zip archive (an Excel .xlsx"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file (it contains NUL bytes)"),
        ("Long,Lat\n".encode("utf-16"), "UTF-16 text"),
        ("Long,Lat,BoroName\n-73.9,40.7,Queens\n-73.9,40.7,Bronx é\n".encode("latin-1"), "UTF-8"),
        (b"Long;Lat;n_cameras_median\n-73.9;40.7;1\n", "separated by semicolons"),
        (b"Long\tLat\tn_cameras_median\n-73.9\t40.7\t1\n", "separated by tabs"),
        (b"Long,Lat\n-73.9,40.7\n-73.9,40.7,3,4\n", "cannot be parsed as CSV"),
    ],
)
def test_bad_text_file_is_an_input_error(tmp_path: Path, content: bytes, found: str) -> None:
    p = tmp_path / "counts.csv"
    p.write_bytes(content)
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert found in _only(exc)
    assert "counts.csv" in str(exc.value)


def test_not_utf8_names_the_row(tmp_path: Path) -> None:
    p = tmp_path / "counts.csv"
    p.write_bytes("Long,Lat,BoroName\n-73.9,40.7,Queens\n-73.9,40.7,Bronx é\n".encode("latin-1"))
    with pytest.raises(InputError) as exc:
        decode.intersections_from_csv(p)
    assert exc.value.problems[0].row == 2
    assert "iconv" in exc.value.problems[0].fix


def test_folder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        decode.submissions_from_csv(tmp_path)
    assert "a folder, not a file" in _only(exc)
    with pytest.raises(InputError) as exc:
        census.census_from_csv(tmp_path / "nope.csv")
    assert "no such file" in _only(exc)


def test_utf8_bom_and_header_only_allowed(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert len(decode.intersections_from_csv(p)) == 1
    h = tmp_path / "header.csv"
    h.write_text("Long,Lat\n")
    assert len(read_text_table(h, allow_empty=True)) == 0


# --- vector files ---------------------------------------------------------------------------


# Brooklyn, in UTM 18N metres.
_X0, _Y0 = 585_000.0, 4_500_000.0


def _at(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: xy + np.array([_X0, _Y0]))


def _tracts(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"GEOID": [f"3604700{i:04d}" for i in range(n)]},
        geometry=[_at(shapely.box(i * 1000, 0, i * 1000 + 900, 900)) for i in range(n)],
        crs="EPSG:32618",
    )


@pytest.mark.parametrize("content", [b"", b"not a vector file at all\n", b"\x00\x01\x02" * 100])
def test_bad_vector_file_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "tracts.gpkg"
    p.write_bytes(content)
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    assert "tracts.gpkg" in str(exc.value) and "Fix:" in str(exc.value)


def test_multi_layer_geopackage_needs_a_layer(tmp_path: Path) -> None:
    p = tmp_path / "two.gpkg"
    _tracts().to_file(p, layer="tracts_2010")
    _tracts(2).to_file(p, layer="tracts_2020")
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    msg = _only(exc)
    assert "'tracts_2010', 'tracts_2020'" in msg and "--tracts-layer tracts_2010" in msg
    assert len(census.tracts_from_file(p, layer="tracts_2020")) == 2
    with pytest.raises(InputError, match="no layer 'tracts'"):
        census.tracts_from_file(p, layer="tracts")


def test_invalid_polygons_repaired_and_counted(tmp_path: Path) -> None:
    t = _tracts()
    bowtie = shapely.Polygon([(0, 0), (900, 900), (900, 0), (0, 900)])  # self-intersecting
    spike = shapely.Polygon(
        [(1000, 0), (1900, 0), (1900, 900), (1000, 900), (1000, 0), (950, -50), (1000, 0)]
    )
    t.loc[0, "geometry"] = _at(bowtie)
    t.loc[1, "geometry"] = _at(spike)
    p = tmp_path / "tracts.gpkg"
    t.to_file(p)
    ledger = Ledger()
    got = census.tracts_from_file(p, ledger=ledger)
    assert got.geometry.is_valid.all() and len(got) == 3
    assert set(got.geom_type) <= {"Polygon", "MultiPolygon"}
    # The bowtie's stored area is 0; repaired it is two triangles of 900*450/2*... = 405,000.
    assert got.attrs["repaired_geometries"] == 2
    assert got.attrs["repaired_area_change_m2"] == pytest.approx(405_000, rel=1e-6)
    (note,) = [n for n in ledger.notes if "invalid polygon" in n]
    assert "2 invalid polygon(s) repaired" in note and "405,000 m²" in note


def test_empty_geometries_excluded_and_counted(tmp_path: Path) -> None:
    t = _tracts()
    t.loc[1, "geometry"] = None
    t.loc[2, "geometry"] = shapely.Polygon()
    p = tmp_path / "tracts.gpkg"
    t.to_file(p)
    ledger = Ledger()
    got = census.tracts_from_file(p, ledger=ledger)
    assert got["GEOID"].tolist() == ["36047000000"]
    assert ledger.total("read tracts") == 2


def test_csv_given_as_polygons_is_an_input_error(tmp_path: Path) -> None:
    p = tmp_path / "census.csv"
    p.write_text("GEOID,popn\n36047000100,10\n")
    with pytest.raises(InputError) as exc:
        census.boroughs_from_file(p)
    msg = _only(exc)
    assert "no geometry column" in msg and "not a vector file" in msg
    assert "give the polygon file" in msg


@pytest.mark.parametrize("reader", [census.tracts_from_file, census.boroughs_from_file])
def test_vector_file_without_features_names_the_file(tmp_path: Path, reader: object) -> None:
    p = tmp_path / "zero.gpkg"
    t = _tracts().assign(BoroName="Brooklyn")
    t.iloc[:0].to_file(p)
    with pytest.raises(InputError) as exc:
        reader(p)  # type: ignore[operator]
    assert "0 features" in _only(exc) and "zero.gpkg" in str(exc.value)
    # Features all without geometry leave nothing to measure either.
    t["geometry"] = None
    p2 = tmp_path / "nogeom.gpkg"
    t.to_file(p2)
    with pytest.raises(InputError, match="no feature with a polygon"):
        reader(p2)  # type: ignore[operator]


@pytest.mark.parametrize("value", [None, "", "  "])
def test_tract_without_geoid_is_rejected_with_its_row(tmp_path: Path, value: object) -> None:
    t = _tracts().astype({"GEOID": object})
    t.loc[1, "GEOID"] = value
    p = tmp_path / "tracts.gpkg"
    t.to_file(p)
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    (problem,) = exc.value.problems
    assert (problem.row, problem.column, problem.found) == (2, "GEOID", "an empty cell")
    assert "fill in the tract's GEOID" in problem.fix


def test_borough_without_name_is_rejected_not_dropped(tmp_path: Path) -> None:
    b = _tracts().assign(BoroName=["A", None, "B"])
    p = tmp_path / "boroughs.gpkg"
    b.to_file(p)
    with pytest.raises(InputError) as exc:
        census.boroughs_from_file(p)
    (problem,) = exc.value.problems
    assert (problem.row, problem.column) == (2, "BoroName")


def test_missing_crs_fix_names_the_cli_option(tmp_path: Path) -> None:
    p = tmp_path / "nocrs.shp"
    _tracts().to_file(p)
    p.with_suffix(".prj").unlink()
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    msg = _only(exc)
    assert "--tracts-crs EPSG:" in msg and "crs='EPSG:" in msg
    # UTM-like metres: the example is a UTM zone.
    assert "EPSG:326NN" in msg
    # Degrees without a CRS: the example is WGS84.
    _tracts().to_crs(4326).to_file(p)
    p.with_suffix(".prj").unlink()
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    assert "--tracts-crs EPSG:4326" in _only(exc)


def test_wrong_crs_fix_does_not_suggest_the_declared_crs(tmp_path: Path) -> None:
    p = tmp_path / "wrong.gpkg"
    _tracts().set_crs(4326, allow_override=True).to_file(p)
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    fix = exc.value.problems[0].fix
    assert "EPSG:4326" not in fix
    assert "--tracts-crs EPSG:326NN" in fix and "UTM" in fix
    # Degrees declared as a projected CRS: the fix names WGS84, not the declared one.
    _tracts().to_crs(4326).set_crs(2263, allow_override=True).to_file(p)
    with pytest.raises(InputError) as exc:
        census.tracts_from_file(p)
    fix = exc.value.problems[0].fix
    assert "--tracts-crs EPSG:4326" in fix and "2263" not in fix


def test_geopackage_without_extension_reads_without_warning(tmp_path: Path) -> None:
    p = tmp_path / "tracts.gpkg"
    _tracts().to_file(p)
    bare = tmp_path / "tracts"
    p.rename(bare)
    # pytest turns warnings into errors: GDAL's extension warning must not leak.
    assert len(census.tracts_from_file(bare)) == 3


def test_json_safe_makes_arrays_and_nan_plain() -> None:
    import json

    from camcensus.io.formats import json_safe

    got = json_safe({"a": np.array([[1.5, np.nan]]), "b": np.float32(np.inf), "c": np.int64(3)})
    assert got == {"a": [[1.5, None]], "b": None, "c": 3}
    json.dumps(got, allow_nan=False)  # valid JSON
