"""Safe report folders: checks before anything is written, and an all-or-nothing replace."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["OutputError", "check_output", "replace_folder"]

# What a report folder holds (``camcensus stats`` writes models.json instead of results.json):
# anything else in an existing folder is someone's own file.
MARKERS = ("results.json", "models.json")
REPORT_ENTRIES = frozenset(
    {
        *MARKERS,
        "index.html",
        "camcensus.sqlite",
        "camcensus.sqlite-wal",
        "camcensus.sqlite-shm",
        "tables",
        "figures",
        "export",
    }
)


class OutputError(ValueError):
    """Raised when the report cannot be written to the folder asked for.

    ``path`` is the output folder, ``fix`` says what to do (e.g. "pass --force to replace it").
    """

    def __init__(self, path: Path, found: str, fix: str) -> None:
        self.path = path
        self.found = found
        self.fix = fix
        super().__init__(f"{path}: {found}. Fix: {fix}")


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _is_camcensus_report(folder: Path) -> bool:
    """Whether ``folder`` holds a results.json / models.json written by camcensus."""
    for name in MARKERS:
        try:
            doc = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and str(doc.get("generated_by", "")).startswith("camcensus"):
            return True
    return False


def check_output(out: Path, inputs: Iterable[str | Path], *, force: bool) -> None:
    """Refuse an output folder the report must not be written to; write nothing.

    Refused: ``out`` is an existing file (an input or not); ``out`` holds an input file (the
    replace would delete it); ``out`` is a non-empty folder and ``force`` is false; ``out`` is a
    non-empty folder that is not a camcensus report, or holds files a report does not write
    (refused even with ``force``: they are someone's own files).
    """
    target = out.resolve()
    for inp in inputs:
        p = Path(inp).resolve()
        if p == target:
            raise OutputError(
                out,
                f"the output folder is the input file {inp}",
                "choose another --out folder; the report never overwrites its inputs",
            )
        if _is_within(p, target):
            raise OutputError(
                out,
                f"the output folder holds the input file {inp}, which writing the report "
                "would delete",
                "choose an --out folder that holds none of the inputs, or move the inputs out",
            )
    if target.exists() and not target.is_dir():
        raise OutputError(
            out,
            "this is an existing file, not a folder",
            "choose a folder (new or empty) for --out",
        )
    if not target.is_dir():
        return
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    if not _is_camcensus_report(target):
        shown = ", ".join(entries[:5]) + (" …" if len(entries) > 5 else "")
        raise OutputError(
            out,
            f"the folder is not empty and holds no camcensus report (it holds {shown})",
            "choose a new or empty --out folder; camcensus replaces only its own reports",
        )
    foreign = [e for e in entries if e not in REPORT_ENTRIES]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise OutputError(
            out,
            f"the report folder also holds files a report does not write ({shown})",
            "move those files out of the folder, or choose another --out folder",
        )
    if not force:
        raise OutputError(
            out,
            "the folder already holds a camcensus report",
            "pass --force (force=True) to replace it, or choose another --out folder",
        )


def _new_folder(target: Path, kind: str) -> Path:
    # mkdir (not mkdtemp, which makes the folder private) so the report gets the usual umask.
    for _ in range(100):
        p = target.parent / f".{target.name}.{secrets.token_hex(4)}.{kind}"
        try:
            p.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(
                target,
                f"a folder cannot be written here ({exc.strerror or type(exc).__name__})",
                "choose an --out folder in a place you can write to",
            ) from exc
        return p
    raise FileExistsError(f"cannot create a temporary folder beside {target}")


@contextlib.contextmanager
def replace_folder(out: Path) -> Iterator[Path]:
    """Yield a new temporary folder beside ``out``; on success it becomes ``out``.

    The old ``out`` (if any) is moved aside, the new folder renamed into place, then the old one
    deleted; if anything fails, the temporary folder is deleted and ``out`` is left as it was.
    A reader therefore sees the old report, the new report or (for the instant between the two
    renames, or after a crash in it) no folder, never a mix.
    """
    target = out.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            target,
            f"its parent folder cannot be made ({exc.strerror or type(exc).__name__})",
            "choose an --out folder in a place you can write to",
        ) from exc
    tmp = _new_folder(target, "tmp")
    try:
        yield tmp
        old: Path | None = None
        if target.exists():
            old = _new_folder(target, "old")
            os.replace(target, old / target.name)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old / target.name, target)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
