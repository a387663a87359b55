"""write_report: refuses unsafe output folders and never leaves a half-written report."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import camcensus.report as report
import camcensus.report._atomic as atomic
from camcensus.report import OutputError, write_report
from conftest import small_census


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The synthetic city's census (no stop models: a few seconds), inputs in their folder."""
    return small_census(tmp_path_factory.mktemp("inputs"))


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_refuses_an_existing_file(small: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("mine")
    with pytest.raises(OutputError, match="existing file"):
        write_report(small, out)
    assert out.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_refuses_an_input_as_output(small: Any) -> None:
    counts = Path(small.inputs["raw_counts"])
    before = counts.read_bytes()
    with pytest.raises(OutputError, match="is the input file"):
        write_report(small, counts, force=True)
    assert counts.read_bytes() == before


def test_refuses_a_folder_holding_an_input(small: Any) -> None:
    folder = Path(small.inputs["raw_counts"]).parent
    before = _snapshot(folder)
    for out in (folder, folder.parent):
        with pytest.raises(OutputError, match="holds the input file"):
            write_report(small, out, force=True)
    assert _snapshot(folder) == before


def test_refuses_a_folder_of_other_files_even_with_force(small: Any, tmp_path: Path) -> None:
    (tmp_path / "thesis.docx").write_text("years of work")
    with pytest.raises(OutputError, match=r"no camcensus report \(it holds thesis.docx\)"):
        write_report(small, tmp_path, force=True)
    assert _snapshot(tmp_path) == {"thesis.docx": hashlib.sha256(b"years of work").hexdigest()}


def test_replaces_a_report_only_with_force(small: Any, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(small, out)
    first = _snapshot(out)
    with pytest.raises(OutputError, match="--force"):
        write_report(small, out)
    assert _snapshot(out) == first
    # A file of the user's own inside the report folder is never deleted, even with force.
    (out / "my notes.txt").write_text("keep")
    with pytest.raises(OutputError, match=r"my notes\.txt"):
        write_report(small, out, force=True)
    (out / "my notes.txt").unlink()
    paths = write_report(small, out, force=True)
    assert paths["html"] == out / "index.html" and paths["html"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_interrupted_write_leaves_the_old_report(
    small: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    write_report(small, out)
    before = _snapshot(out)

    def _boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the page was written

    monkeypatch.setattr(report, "write_html", _boom)
    with pytest.raises(KeyboardInterrupt):
        write_report(small, out, force=True)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder left
    # Into a new folder: nothing at all is left.
    with pytest.raises(KeyboardInterrupt):
        write_report(small, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_failed_rename_restores_the_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "results.json").write_text('{"generated_by": "camcensus 0"}')
    real = atomic.os.replace
    calls: list[tuple[object, object]] = []

    def _replace(src: Any, dst: Any) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder into place
            raise OSError("disk gone")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", _replace)
    with pytest.raises(OSError, match="disk gone"), atomic.replace_folder(out) as tmp:
        (tmp / "results.json").write_text('{"generated_by": "camcensus 1"}')
    assert (out / "results.json").read_text() == '{"generated_by": "camcensus 0"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_checksums_taken_before_anything_is_written(
    small: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    real_records, real_replace = report.input_records, report.replace_folder

    def _records(result: Any) -> Any:
        order.append("checksums")
        return real_records(result)

    def _replace(out: Path) -> Any:
        order.append("write")
        return real_replace(out)

    monkeypatch.setattr(report, "input_records", _records)
    monkeypatch.setattr(report, "replace_folder", _replace)
    monkeypatch.setattr(report, "write_html", lambda *a, **k: a[3])
    write_report(small, tmp_path / "r")
    assert order == ["checksums", "write"]


def test_unwritable_place_is_an_output_error_naming_out(tmp_path: Path) -> None:
    from camcensus.report._atomic import replace_folder

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot be"), replace_folder(blocker / "sub" / "r"):
        pass
