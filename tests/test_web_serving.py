"""The serving process's garbage-collector settings (web.app.tune_gc_for_serving): set in the
process that serves (a uvicorn factory child), never in a process that merely builds the app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from camcensus.web.app import SERVER_GC_THRESHOLDS


def _run(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env or None
    )
    return done.stdout.strip()


def test_tune_gc_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    out = _run(
        "import gc; from camcensus.web.app import tune_gc_for_serving; "
        "before = gc.get_freeze_count(); tune_gc_for_serving(); "
        "print(before, gc.get_freeze_count() > 10_000, *gc.get_threshold())"
    )
    before, frozen, *thresholds = out.split()
    assert before == "0" and frozen == "True"
    assert tuple(int(t) for t in thresholds) == SERVER_GC_THRESHOLDS


def test_the_uvicorn_factory_tunes_its_process_and_create_app_does_not(tmp_path: Path) -> None:
    import os

    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    env = dict(
        os.environ,
        CAMCENSUS_PLATFORM_DATABASE=url,
        CAMCENSUS_PLATFORM_MEDIA=str(tmp_path / "media"),
    )
    code = (
        "import gc; from camcensus.db import upgrade; import os; "
        "upgrade(os.environ['CAMCENSUS_PLATFORM_DATABASE']); "
        "from camcensus.web import create_app; from camcensus.db import connect; "
        "create_app(connect(os.environ['CAMCENSUS_PLATFORM_DATABASE']), "
        "media_root=os.environ['CAMCENSUS_PLATFORM_MEDIA']); a = gc.get_threshold(); "
        "from camcensus.platform_demo import app_from_env; app_from_env(); "
        "print(*a, *gc.get_threshold())"
    )
    values = [int(v) for v in _run(code, **env).split()]
    assert tuple(values[:3]) == (700, 10, 10)  # building an app changes nothing
    assert tuple(values[3:]) == SERVER_GC_THRESHOLDS
