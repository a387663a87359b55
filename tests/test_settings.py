"""Settings: one table feeding defaults, environment and docs."""

from __future__ import annotations

import pytest

from camcensus import settings
from camcensus.pipeline import Options


def test_defaults_match_library_options() -> None:
    o = Options()
    assert settings.get("camera_radius_m") == o.radius_m == 120.0
    assert settings.get("band_m") == o.band_m
    assert settings.get("quad_segs") == o.quad_segs == 30
    assert settings.get("decoders") == o.decoders == 3
    assert settings.get("min_population") == o.min_population == 250


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMCENSUS_CAMERA_RADIUS_M", "60")
    assert settings.get("camera_radius_m") == 60.0
    assert "CAMCENSUS_SEED" in settings.markdown_table()


def test_docs_list_every_setting() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text()
    assert doc.strip() == settings.markdown_table().strip(), (
        "docs/settings.md is stale: run `camcensus settings > docs/settings.md`"
    )
