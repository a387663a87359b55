"""The folder importer: equirectangular images plus a CSV or GeoJSON index."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from camcensus._errors import InputError, Ledger
from camcensus.imagery import (
    PANORAMA_COLUMNS,
    ImageStore,
    import_project_source,
    panoramas_from_folder,
)

HEADER = "panorama_id,lat,lon,heading_deg,captured,licence,file\n"


def _image(path: Path, size: tuple[int, int] = (64, 32), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "shoot"
    _image(root / "a.jpg")
    _image(root / "sub" / "b.png", fmt="PNG")
    _image(root / "c.jpg")
    (root / "panoramas.csv").write_text(
        HEADER
        + "A,48.98,2.18,0,2024-05-17,CC-BY-SA-4.0,a.jpg\n"
        + "B,48.981,2.181,359.5,2024-05,CC0,sub/b.png\n"
        + "C,48.982,2.182,90,,,\n"  # no file: C.jpg (not c.jpg) is found
    )
    _image(root / "C.jpg")
    return root


def _problems(err: pytest.ExceptionInfo[InputError]) -> list[tuple[int | None, str | None]]:
    return [(p.row, p.column) for p in err.value.problems]


def test_happy_path_csv(folder: Path, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "media")
    df = panoramas_from_folder(folder, store=store, licence="CC-BY-4.0")
    assert list(df.columns) == list(PANORAMA_COLUMNS)
    assert list(df["source_ref"]) == ["A", "B", "C"]
    assert list(df["heading_deg"]) == [0.0, 359.5, 90.0]
    assert list(df["captured"]) == ["2024-05-17", "2024-05", None]
    assert list(df["licence"]) == ["CC-BY-SA-4.0", "CC0", "CC-BY-4.0"]
    assert (df["source"] == "folder").all() and df["republishable"].all()
    assert df["panorama_id"].is_unique
    for ref, uri in zip(df["source_ref"], df["image_uri"], strict=True):
        name = {"A": "a.jpg", "B": "sub/b.png", "C": "C.jpg"}[ref]
        original = (folder / name).read_bytes()
        assert store.path(uri).read_bytes() == original
        assert hashlib.sha256(original).hexdigest() in uri
    assert df.loc[1, "image_uri"].endswith(".png")


def test_geojson_index(tmp_path: Path) -> None:
    root = tmp_path / "g"
    _image(root / "p1.jpg")
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-73.99, 40.73]},
                "properties": {
                    "panorama_id": "p1",
                    "heading_deg": 12.5,
                    "captured": "2023-09-01T12:00:00Z",
                    "licence": "CC-BY-SA-4.0",
                },
            }
        ],
    }
    (root / "panoramas.geojson").write_text(json.dumps(doc))
    df = panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    assert (df.loc[0, "lon"], df.loc[0, "lat"], df.loc[0, "heading_deg"]) == (-73.99, 40.73, 12.5)
    assert df.loc[0, "captured"] == "2023-09-01"


def test_every_bad_row_is_reported_together(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _image(root / "ok.jpg")
    _image(root / "wide.jpg", size=(90, 30))
    (root / "notimage.jpg").write_bytes(b"hello, not a jpeg")
    _image(root / "gif.png", fmt="GIF")
    outside = tmp_path / "secret.jpg"
    _image(outside)
    os.symlink(outside, root / "link.jpg")
    (root / "panoramas.csv").write_text(
        HEADER
        + "ok,48.98,2.18,0,2024-05-17,CC0,ok.jpg\n"  # 1: fine
        + "ok,48.98,2.18,0,2024-05-17,CC0,ok.jpg\n"  # 2: repeated id
        + "r3,95,2.18,0,2024-05-17,CC0,ok.jpg\n"  # 3: lat
        + "r4,48.98,-200,0,2024-05-17,CC0,ok.jpg\n"  # 4: lon
        + "r5,48.98,2.18,360,2024-05-17,CC0,ok.jpg\n"  # 5: heading
        + "r6,48.98,2.18,0,17/05/2024,CC0,ok.jpg\n"  # 6: date
        + "r7,48.98,2.18,0,2024-05-17,,ok.jpg\n"  # 7: licence
        + "r8,48.98,2.18,0,2024-05-17,CC0,../secret.jpg\n"  # 8: traversal
        + f"r9,48.98,2.18,0,2024-05-17,CC0,{outside}\n"  # 9: absolute
        + "r10,48.98,2.18,0,2024-05-17,CC0,link.jpg\n"  # 10: symlink out
        + "r11,48.98,2.18,0,2024-05-17,CC0,missing.jpg\n"  # 11: missing file
        + "r12,48.98,2.18,0,2024-05-17,CC0,wide.jpg\n"  # 12: not 2:1
        + "r13,48.98,2.18,0,2024-05-17,CC0,notimage.jpg\n"  # 13: unreadable
        + "r14,48.98,2.18,0,2024-05-17,CC0,gif.png\n"  # 14: GIF named .png
        + "r15,48.98,2.18,0,2024-05-17,CC0,a%2F..%2Fb.jpg\n"  # 15: URL-encoded
        + ",48.98,2.18,0,2024-05-17,CC0,ok.jpg\n"  # 16: empty id
        + "r17,48.98,2.18,abc,2024-05-17,CC0,ok.jpg\n"  # 17: heading not a number
    )
    with pytest.raises(InputError) as err:
        panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    assert _problems(err) == [
        (2, "panorama_id"),
        (3, "lat"),
        (4, "lon"),
        (5, "heading_deg"),
        (6, "captured"),
        (7, "licence"),
        (8, "file"),
        (9, "file"),
        (10, "file"),
        (11, "file"),
        (12, "file"),
        (13, "file"),
        (14, "file"),
        (15, "file"),
        (16, "panorama_id"),
        (17, "heading_deg"),
    ]
    text = str(err.value)
    assert "panoramas.csv, row 2, column 'panorama_id'" in text
    assert "first on row 1" in text
    assert "'..'" in text and "symbolic link" in text and "absolute path" in text
    assert "90×30 px" in text and "Fix:" in text
    # Nothing was stored for a failed import's bad rows; exclude mode keeps the good row.
    ledger = Ledger()
    df = panoramas_from_folder(
        root, store=ImageStore(tmp_path / "m"), errors="exclude", ledger=ledger
    )
    assert list(df["source_ref"]) == ["ok"]
    assert ledger.total() == 16
    reasons = {e.reason.split(" (")[0]: e.count for e in ledger.exclusions}
    assert reasons["unsafe file name"] == 4
    assert reasons["image file missing"] == 1
    assert reasons["not a 2:1 equirectangular image"] == 1
    assert reasons["heading_deg missing or out of range"] == 2


def test_missing_columns_and_index(tmp_path: Path) -> None:
    root = tmp_path / "f"
    root.mkdir()
    with pytest.raises(InputError, match="no index file"):
        panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    (root / "panoramas.csv").write_text("panorama_id,Lat,lon\nA,1,2\n")
    with pytest.raises(InputError) as err:
        panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    cols = {p.column for p in err.value.problems}
    assert cols == {"lat", "heading_deg", "captured", "licence"}
    assert "rename column 'Lat' to 'lat'" in str(err.value)
    with pytest.raises(InputError, match="no such folder"):
        panoramas_from_folder(tmp_path / "nope", store=ImageStore(tmp_path / "m"))


def test_bad_geojson(tmp_path: Path) -> None:
    root = tmp_path / "g"
    root.mkdir()
    (root / "index.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputError, match="not JSON"):
        panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    (root / "index.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": None, "properties": {}}],
            }
        )
    )
    with pytest.raises(InputError) as err:
        panoramas_from_folder(root, store=ImageStore(tmp_path / "m"))
    assert (1, "geometry") in _problems(err)


def test_import_project_source_folder(folder: Path, tmp_path: Path) -> None:
    from camcensus._errors import Ledger

    csv = tmp_path / "inter.csv"
    csv.write_text("intersection_id,lon,lat,area,traffic_signal\nI1,2.18001,48.98,Z,true\n")
    ledger = Ledger()
    pano, inter = import_project_source(
        source="folder",
        media_root=tmp_path / "media",
        folder=folder,
        intersections_csv=csv,
        licence="CC0",
        ledger=ledger,
    )
    # Only the panorama of the listed intersection becomes a task; B and C are counted.
    assert inter is not None and list(pano["source_ref"]) == ["A"]
    assert ledger.total("match intersections") == 2
    a = pano.set_index("source_ref").loc["A"]
    assert inter.loc[0, "panorama_id"] == a["panorama_id"]
    assert a["intersection_id"] == "I1"
    assert isinstance(inter, pd.DataFrame) and inter.loc[0, "traffic_signal"] is True
    # Without a list every panorama is a task.
    pano, inter = import_project_source(
        source="folder", media_root=tmp_path / "media", folder=folder, licence="CC0"
    )
    assert inter is None and sorted(pano["source_ref"]) == ["A", "B", "C"]


def test_intersections_csv_problems(folder: Path, tmp_path: Path) -> None:
    csv = tmp_path / "inter.csv"
    csv.write_text("intersection_id,lon,lat\nI1,2.18,48.98\nI1,2.18,48.98\nI3,300,48.98\n")
    with pytest.raises(InputError) as err:
        import_project_source(
            source="folder", media_root=tmp_path / "m", folder=folder, intersections_csv=csv
        )
    assert _problems(err) == [(2, "intersection_id"), (3, "lon")]
