"""Settings: one table feeding defaults, environment and docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from camcensus import settings
from camcensus.cli import app
from camcensus.pipeline import Options


def test_defaults_match_library_options() -> None:
    o = Options()
    assert settings.get("camera_radius_m") == o.radius_m == 120.0
    assert settings.get("band_m") == o.band_m
    assert settings.get("quad_segs") == o.quad_segs == 30
    assert settings.get("decoders") == o.decoders == 3
    assert settings.get("min_population") == o.min_population == 250
    assert settings.get("snap_m") == o.snap_m


@pytest.mark.parametrize(
    ("env", "value", "field", "expected"),
    [
        ("CAMCENSUS_CAMERA_RADIUS_M", "60", "radius_m", 60.0),
        ("CAMCENSUS_MIN_POPULATION", "500", "min_population", 500),
        ("CAMCENSUS_SEED", "7", "seed", 7),
        ("CAMCENSUS_PICK", "first", "pick", "first"),
        ("CAMCENSUS_SNAP_M", "10", "snap_m", 10.0),
    ],
)
def test_environment_reaches_the_library_defaults(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    assert getattr(Options(), field) == expected


def test_environment_reaches_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI reads its defaults when a command runs, not once at import.
    from camcensus import cli

    monkeypatch.setenv("CAMCENSUS_CAMERA_RADIUS_M", "75")
    monkeypatch.setenv("CAMCENSUS_SEED", "11")
    assert cli._options(None, None, None, None).radius_m == 75.0
    assert cli._options(None, None, None, None).seed == 11
    assert cli._options(30.0, None, None, None).radius_m == 30.0
    out = CliRunner().invoke(app, ["settings"], terminal_width=300).output
    assert "| `camera_radius_m` | `120.0` | `75.0` |" in out


@pytest.mark.parametrize("value", ["abc", "nan", "1e999", ""])
def test_bad_environment_value_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CAMCENSUS_CAMERA_RADIUS_M", value)
    with pytest.raises(settings.SettingError, match="CAMCENSUS_CAMERA_RADIUS_M"):
        Options()
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "CAMCENSUS_CAMERA_RADIUS_M" in result.output


def test_docs_list_every_setting() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text()
    assert doc.strip() == settings.markdown_table().strip(), (
        "docs/settings.md is stale: write settings.markdown_table() to it"
    )
