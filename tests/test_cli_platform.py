"""The platform's commands: serve, export decode|tags, db upgrade|downgrade|current|create-admin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from camcensus.cli import app
from camcensus.db import connect
from camcensus.io.formats import read_csv
from test_export import CATEGORIES, HOSTILE_PANORAMA, build_platform

runner = CliRunner()


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_db_upgrade_current_create_admin_and_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    result = runner.invoke(app, ["db", "current", "--database", url])
    assert result.exit_code == 2
    assert "no such database file" in _flat(result.output)
    assert not (tmp_path / "p.sqlite").exists()

    result = runner.invoke(app, ["db", "upgrade", "--database", url])
    assert result.exit_code == 0, result.output
    # --database defaults to $DATABASE_URL.
    result = runner.invoke(app, ["db", "current"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    revision = result.output.strip()
    assert revision not in ("", "none")

    result = runner.invoke(
        app, ["db", "create-admin", "--pseudonym", "chief-admin"], env={"DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    password = re.search(r"Password \(shown only now; store it safely\): (\S+)", result.output)
    assert password is not None
    assert result.output.count(password.group(1)) == 1
    from camcensus.db.accounts import authenticate

    engine = connect(url)
    with Session(engine) as session:
        admin = authenticate(session, "chief-admin", password.group(1))
        assert admin is not None and admin.role == "admin"
        assert authenticate(session, "chief-admin", password.group(1) + "x") is None
    engine.dispose()
    # The same pseudonym twice is refused with the library's message, exit status 2.
    result = runner.invoke(
        app, ["db", "create-admin", "--pseudonym", "CHIEF-admin", "--database", url]
    )
    assert result.exit_code == 2
    assert "Refused" in result.output and "Traceback" not in result.output

    result = runner.invoke(app, ["db", "downgrade", "--database", url])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["db", "current", "--database", url]).output.strip() == "none"


def test_export_decode_then_aggregate_end_to_end(tmp_path: Path) -> None:
    built = build_platform(tmp_path / "db")
    url = f"sqlite:///{built.db_path}"
    out = tmp_path / "export"
    args = ["export", "decode", "--database", url, "--project", "city", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Left out (9 in all" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "cameras.csv",
        "counts.csv",
        "excluded.csv",
        "intersections.csv",
        "panorama_url.csv",
        "reviews.csv",
    ]
    # Again without --force: refused, exit 2, the files left as they were.
    before = (out / "counts.csv").read_bytes()
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--force" in _flat(result.output)
    assert (out / "counts.csv").read_bytes() == before
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0

    agg = tmp_path / "counts_per_intersections.csv"
    result = runner.invoke(
        app,
        [
            "aggregate",
            "--raw-counts", str(out / "counts.csv"),
            "--raw-intersections", str(out / "intersections.csv"),
            "--panoramas", str(out / "panorama_url.csv"),
            "--pick", "first",
            "--out", str(agg),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = read_csv(agg, dtype={"PanoramaId": str}).set_index("PanoramaId")
    counts = read_csv(out / "counts.csv", dtype=str)
    inter = read_csv(out / "intersections.csv", dtype=str)
    pano_of = dict(zip(inter["IntersectionId"], inter["PanoramaId"], strict=True))
    counts["PanoramaId"] = counts["IntersectionId"].map(pano_of)
    assert HOSTILE_PANORAMA in got.index
    for pid, rows in counts.groupby("PanoramaId"):
        if len(rows) < 3:
            assert pid not in got.index
            continue
        for c in CATEGORIES:
            want = sorted(int(v) for v in rows[c])[1]
            assert got.loc[pid, f"{c}_median"] == want, (pid, c)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_export_tags_each_format(tmp_path: Path, fmt: str) -> None:
    built = build_platform(tmp_path / "db")
    out = tmp_path / f"tags.{fmt}"
    result = runner.invoke(
        app,
        ["export", "tags", "--format", fmt, "--out", str(out)],
        env={"DATABASE_URL": f"sqlite:///{built.db_path}"},
    )
    assert result.exit_code == 0, result.output
    n_current = sum(1 for t in built.tags if t[7] and not t[8])  # both projects
    if fmt == "geojson":
        assert len(json.loads(out.read_text())["features"]) == n_current
    elif fmt == "gpkg":
        import geopandas as gpd

        assert len(gpd.read_file(out, layer="tags")) == n_current
    else:
        assert len(pd.read_csv(out)) == n_current


def test_platform_commands_fail_clearly(tmp_path: Path) -> None:
    built = build_platform(tmp_path / "db")
    url = f"sqlite:///{built.db_path}"
    cases: list[tuple[list[str], str]] = [
        (["export", "decode", "--database", url, "--project", "nope", "--out",
          str(tmp_path / "a")], "No project named 'nope'"),
        (["export", "tags", "--database", url, "--format", "kml", "--out",
          str(tmp_path / "t.kml")], "--format must be one of geojson, gpkg, csv"),
        (["export", "tags", "--database", url, "--out", str(built.db_path)],
         "the output file is the database"),
        (["export", "decode", "--database", f"sqlite:///{tmp_path / 'none.sqlite'}", "--out",
          str(tmp_path / "b")], "no such database file"),
    ]  # fmt: skip
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    cases.append(
        (
            ["export", "decode", "--database", f"sqlite:///{empty}", "--out", str(tmp_path / "c")],
            "camcensus db upgrade --database URL",
        )
    )
    for args, message in cases:
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 2, (args, result.output)
        assert message in _flat(result.output), (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "none.sqlite").exists()
    assert not any((tmp_path / n).exists() for n in ("a", "b", "c"))


def test_serve_passes_its_options_to_the_web_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import camcensus.web

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(camcensus.web, "serve", lambda **kw: calls.append(kw))
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    result = runner.invoke(
        app,
        ["serve", "--host", "0.0.0.0", "--port", "8123", "--media", str(tmp_path / "m"),
         "--demo", "--forwarded-allow-ips", "10.0.0.2", "--blur"],
        env={"DATABASE_URL": url, "CAMCENSUS_GSV_KEY": "k-123"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert calls == [
        {"host": "0.0.0.0", "port": 8123, "database": url, "demo": True, "media": tmp_path / "m",
         "forwarded_allow_ips": "10.0.0.2", "blur": True, "gsv_key": "k-123",
         "exposure": None}
    ]  # fmt: skip
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and calls[1:] == []


def _equirect(path: Path, fmt: str = "JPEG") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 32), (10, 200, 30)).save(path, format=fmt)


def test_project_create_from_a_folder_then_volunteers_get_its_panoramas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    assert runner.invoke(app, ["db", "upgrade", "--database", url]).exit_code == 0
    shoot = tmp_path / "shoot"
    _equirect(shoot / "a.jpg")
    _equirect(shoot / "b.png", fmt="PNG")
    _equirect(shoot / "bad.jpg")
    (shoot / "panoramas.csv").write_text(
        "panorama_id,lat,lon,heading_deg,captured,licence,file\n"
        "A,48.98,2.18,0,2024-05-17,CC-BY-SA-4.0,a.jpg\n"
        "B,48.981,2.181,359.5,2024-05,CC0,b.png\n"
    )
    crossings = tmp_path / "crossings.csv"
    crossings.write_text("intersection_id,lon,lat,area\nI1,2.18001,48.98,Z\nI2,2.181,48.981,Z\n")
    args = ["project", "create", "--database", url, "--name", "my-city", "--title", "My city"]
    result = runner.invoke(
        app,
        [*args, "--folder", str(shoot), "--intersections", str(crossings), "--media",
         str(tmp_path / "media"), "--k", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "my-city: 2 panoramas, k = 2" in _flat(result.output)
    from camcensus.db.models import Intersection, Panorama, Project

    engine = connect(url)
    with Session(engine) as session:
        project = session.query(Project).filter_by(name="my-city").one()
        assert (project.k, project.title) == (2, "My city")
        panos = {p.source_ref: p for p in session.query(Panorama).all()}
        assert set(panos) == {"A", "B"}
        assert panos["B"].heading_deg == 359.5 and panos["A"].captured == "2024-05-17"
        # The images are pinned in the media root under their uri.
        for p in panos.values():
            assert (tmp_path / "media" / p.image_uri).is_file()
        crossing = {c.intersection_id: c for c in session.query(Intersection).all()}
        assert crossing["I1"].panorama_id == panos["A"].panorama_id
        assert crossing["I2"].panorama_id == panos["B"].panorama_id
    engine.dispose()
    # The same name twice, and neither or both sources, are refused with exit status 2.
    again = runner.invoke(app, [*args, "--folder", str(shoot), "--media", str(tmp_path / "m")])
    assert again.exit_code == 2 and "my-city" in _flat(again.output)
    neither = runner.invoke(app, args)
    assert neither.exit_code == 2 and "--folder or --panoramax" in _flat(neither.output)
    # A bad index names the file, row and column.
    (shoot / "panoramas.csv").write_text(
        "panorama_id,lat,lon,heading_deg,captured,licence,file\nX,95,2.18,0,2024-05,CC0,a.jpg\n"
    )
    bad = runner.invoke(
        app,
        [*args[:-4], "--name", "other", "--title", "t", "--folder", str(shoot), "--media",
         str(tmp_path / "m2")],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "panoramas.csv" in _flat(bad.output) and "lat" in _flat(bad.output)
    # A bad name or a taken one is refused before any image is imported.
    for name, expected in (("Bad_Name", "--name 'Bad_Name'"), ("my-city", "is taken")):
        media = tmp_path / f"m-{name}"
        refused = runner.invoke(
            app,
            [*args[:4], "--name", name, "--title", "t", "--folder", str(shoot), "--media",
             str(media)],
        )  # fmt: skip
        assert refused.exit_code == 2 and expected in _flat(refused.output), refused.output
        assert not media.exists() or not any(media.rglob("*.*"))
    # Rows without a licence take --image-licence.
    (shoot / "panoramas.csv").write_text(
        "panorama_id,lat,lon,heading_deg,captured,licence,file\nX,48.9,2.18,0,2024-05,,a.jpg\n"
    )
    result = runner.invoke(
        app,
        [*args[:4], "--name", "third", "--title", "t", "--folder", str(shoot), "--media",
         str(tmp_path / "m3"), "--image-licence", "CC0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    engine = connect(url)
    with Session(engine) as session:
        assert session.query(Panorama).filter_by(source_ref="X").one().licence == "CC0"
    engine.dispose()


def test_database_and_revision_mistakes_are_messages_not_tracebacks(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database", "mysql://x@localhost/db"])
    assert result.exit_code == 2 and "not a database the platform runs on" in _flat(result.output)
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    assert runner.invoke(app, ["db", "upgrade", "--database", url]).exit_code == 0
    result = runner.invoke(app, ["db", "downgrade", "--database", url, "--revision", "zzz"])
    assert result.exit_code == 2 and "zzz" in _flat(result.output)
    assert "Traceback" not in result.output


def test_serve_demo_twice_on_one_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from camcensus.web import serve

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.append(kw))
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    serve(database=url, demo=True, media=tmp_path / "media", port=8124)
    first = capsys.readouterr().out
    assert "Admin log-in: demo-admin / " in first
    serve(database=url, demo=True, media=tmp_path / "media", port=8124)
    second = capsys.readouterr().out
    assert "already in this database" in second and "Admin log-in" not in second
    assert [kw["port"] for kw in served] == [8124, 8124]
    assert all(kw["access_log"] is False for kw in served)
