"""Box sizes: Stanford's annotations and the synthetic cameras on the same 640 x 640 crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camcensus.detect.sizes import size_table, stanford_sizes, synthetic_sizes


@pytest.mark.realdata
def test_stanford_sizes_by_class(shared: Path) -> None:
    st = stanford_sizes(shared / "cctv_annotations_stanford" / "meta.csv")
    # SOURCES.md: 2,021 boxes; classes 0 directed / 1 dome.
    assert len(st) == 2021
    assert st["category"].value_counts().to_dict() == {"dome": 1067, "directed": 954}
    np.testing.assert_allclose(st["sqrt_area_px"] ** 2, st["width_px"] * st["height_px"])
    t = size_table(st)
    table = {(r["measure"], r["category"]): float(r["q50"]) for r in t.to_dict("records")}
    assert table[("sqrt_area_px", "all")] == pytest.approx(9.0)
    assert table[("sqrt_area_px", "dome")] == pytest.approx(10.0)
    assert table[("sqrt_area_px", "directed")] == pytest.approx(8.0)
    # Domes are seen wider than tall; directed cameras about square.
    assert table[("aspect", "dome")] > 1.2


@pytest.mark.slow
def test_synthetic_sizes_are_measured_on_the_crop() -> None:
    sy = synthetic_sizes(seed=0, n_panoramas=3)
    assert len(sy) >= 3 and (sy["source"] == "synthetic").all()
    assert set(sy["category"]) <= {"dome", "directed", "unknown"}
    # A narrower field of view magnifies the same cameras by tan(45°) / tan(30°).
    narrow = synthetic_sizes(seed=0, n_panoramas=3, fov_deg=60.0)
    ratio = narrow["sqrt_area_px"].to_numpy() / sy["sqrt_area_px"].to_numpy()
    np.testing.assert_allclose(ratio, 1 / np.tan(np.radians(30)), rtol=0.05)
