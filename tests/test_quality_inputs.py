"""Reading the quality commands' counts: aggregated (medians) or raw (every answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camcensus._errors import InputError
from camcensus.quality.inputs import read_counts


def test_raw_counts_give_medians_and_every_answer(city: Any, tmp_path: Path) -> None:
    paths = city.write(tmp_path)
    q = read_counts(paths["raw_counts"])
    subs = city.submissions.merge(city.intersections[["IntersectionId", "PanoramaId"]])
    # every answer, one per volunteer and panorama (two intersections can share a panorama)
    expected = subs.drop_duplicates(["PanoramaId", "DecoderId"])
    assert q.submissions is not None
    assert len(q.submissions) == len(expected)
    # a second look at a shared panorama is counted once, by the aggregation, not twice
    twice = [e for e in q.ledger.exclusions if "same panorama twice" in e.reason]
    assert [e.count for e in twice] == [len(subs) - len(expected)]
    # the medians are those of 3 answers: a panorama's median lies within its answers' range
    by = expected.groupby("PanoramaId")["attached_street"].agg(["min", "max"])
    m = q.counts.set_index("PanoramaId")["attached_street_median"]
    assert len(m) > 0.9 * len(by)
    assert np.all((m >= by.loc[m.index, "min"]) & (m <= by.loc[m.index, "max"]))
    assert set(q.counts["attached_street_agreement"]) <= {"Unanimous", "2 vs 1", "All disagree"}


def test_raw_counts_without_intersections_name_the_fix(city: Any, tmp_path: Path) -> None:
    paths = city.write(tmp_path)
    paths["raw_intersections"].unlink()
    with pytest.raises(InputError, match="--intersections"):
        read_counts(paths["raw_counts"])


@pytest.mark.realdata
def test_aggregated_brooklyn_counts(nyc_paths: dict[str, Path]) -> None:
    q = read_counts(nyc_paths["brooklyn"])
    assert q.submissions is None
    assert len(q.counts) == 10_377
    assert int(q.counts["attached_street_median"].sum()) == 869  # SOURCES.md
    assert int((q.counts["attached_street_agreement"] == "Unanimous").sum()) > 0


def test_every_answer_of_a_panorama_with_decoders_all(city: Any, tmp_path: Path) -> None:
    paths = city.write(tmp_path)
    q = read_counts(paths["raw_counts"], decoders="all")
    assert q.submissions is not None
    expected = q.submissions.groupby("PanoramaId")["attached_street"].median()
    got = q.counts.set_index("PanoramaId")["attached_street_median"]
    assert len(got) == len(expected)  # no panorama left out for having 2, 4 or 5 answers
    assert np.allclose(got.loc[expected.index], expected)
