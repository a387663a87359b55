"""Reading what the quality commands take: per-panorama counts and volunteers' answers.

``--counts`` is either Amnesty's aggregated ``counts_per_intersections.csv`` (one row per
panorama with ``<category>_median`` and ``<category>_agreement``) or a raw ``counts.csv`` (one
row per volunteer submission, as Amnesty's raw export and ``camcensus export decode`` write it);
a raw file is aggregated the way the pipeline does (3 decoders per panorama, the median), with
``intersections.csv`` beside it (or given) to map intersections to panoramas. The volunteers'
answers of a raw file come back as well, keyed by ``PanoramaId``: the latent-count model, the
skill estimates and Krippendorff's alpha need them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from camcensus._errors import InputError, Ledger, Problem
from camcensus.io._validate import read_text_table

__all__ = ["QualityInputs", "read_counts"]


@dataclass
class QualityInputs:
    """Per-panorama counts and, from a raw file, every volunteer answer.

    Attributes
    ----------
    counts
        One row per panorama: ``PanoramaId``, ``<category>_median``, ``<category>_agreement``
        (and ``BoroName`` when known).
    submissions
        One row per volunteer answer (``PanoramaId``, ``DecoderId``, the count columns), or
        ``None`` for an aggregated file (it holds no individual answers).
    source
        The file read.
    ledger
        What aggregation left out, with reasons.
    """

    counts: pd.DataFrame
    submissions: pd.DataFrame | None
    source: Path
    ledger: Ledger = field(default_factory=Ledger)


def _is_raw(path: Path) -> bool:
    """Whether the header is a raw counts.csv's (the readers then check the whole file)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError):
        read_text_table(path)  # raises the file's problem, with its fix
        raise
    if any(str(c).endswith("_median") for c in header):
        return False
    return "IntersectionId" in header


def read_counts(
    path: str | Path,
    *,
    intersections: str | Path | None = None,
    decoders: int | Literal["all"] = 3,
    seed: int = 0,
) -> QualityInputs:
    """Read per-panorama counts from an aggregated or a raw counts file.

    Parameters
    ----------
    path
        ``counts_per_intersections.csv`` (aggregated) or ``counts.csv`` (raw submissions).
    intersections
        ``intersections.csv`` of a raw file (default: the one beside it).
    decoders
        Answers kept per panorama when aggregating a raw file (Amnesty: 3), or ``"all"``:
        every answer a panorama got (a platform project with adaptive redundancy gives some
        panoramas 2, 4 or 5 answers).
    seed
        Seed of the choice of answers when a panorama has more than ``decoders``.

    Raises
    ------
    InputError
        The file is missing, has neither medians nor submissions, or a raw file has no
        ``intersections.csv``.
    """
    from camcensus.aggregate import aggregate_submissions, decoded_answers
    from camcensus.io.decode import (
        intersections_from_csv,
        raw_intersections_from_csv,
        submissions_from_csv,
    )

    path = Path(path)
    if not path.is_file():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "a counts CSV", "check the path")]
        )
    ledger = Ledger()
    if not _is_raw(path):
        counts = pd.DataFrame(intersections_from_csv(path, ledger=ledger))
        counts = counts.drop(columns=["geometry"], errors="ignore")
        if not any(c.endswith("_median") for c in counts.columns):
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        "n_cameras_median",
                        "no <category>_median column and no IntersectionId",
                        "Amnesty's counts_per_intersections.csv or a raw counts.csv",
                        "give the per-panorama medians or the volunteers' raw counts",
                    )
                ]
            )
        return QualityInputs(counts, None, path, ledger)
    inter_path = Path(intersections) if intersections else path.with_name("intersections.csv")
    if not inter_path.is_file():
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "IntersectionId",
                    f"a raw counts file and no {inter_path}",
                    "intersections.csv (IntersectionId -> PanoramaId) beside it",
                    "pass --intersections PATH (camcensus export decode writes it)",
                )
            ]
        )
    subs = submissions_from_csv(path, ledger=ledger)
    inter = raw_intersections_from_csv(inter_path)
    agg = aggregate_submissions(
        subs,
        inter,
        decoders=decoders,
        seed=seed,
        ledger=ledger,
    )
    counts = pd.DataFrame(agg.drop(columns=["geometry"], errors="ignore"))
    # The same answers the aggregation used (its ledger already counts what they leave out).
    joined = decoded_answers(subs, inter)
    if "DecoderId" not in joined.columns:
        joined["DecoderId"] = joined.get("SubmissionId", pd.Series(range(len(joined)))).astype(str)
        ledger.note(
            "The counts file has no DecoderId: each submission is taken as its own volunteer, "
            "so per-volunteer skill cannot be estimated."
        )
    keep = ["PanoramaId", "DecoderId"] + [
        c for c in joined.columns if c in _count_columns() and c in subs.columns
    ]
    answers = joined[keep].reset_index(drop=True)
    answers.attrs["source"] = str(path)
    return QualityInputs(counts, answers, path, ledger)


def _count_columns() -> tuple[str, ...]:
    from camcensus.io.decode import CATEGORIES

    return CATEGORIES
