"""Volunteer error models the quality benchmarks and tests share (synthetic city only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from camcensus.aggregate import agreement_class
from camcensus.quality.design import plan_review
from camcensus.simulate import ErrorModel, simulate_city

__all__ = [
    "DEFAULT",
    "ERROR_MODELS",
    "MISS_PRONE",
    "OVER_COUNTING",
    "SyntheticStudy",
    "synthetic_study",
]

DEFAULT = ErrorModel()
"""The synthetic city's default volunteers (miss 0.15, 0.04 look-alikes per panorama)."""

MISS_PRONE = ErrorModel(miss_mean=0.35, false_positive_rate=0.02)
"""Volunteers who miss a third of the cameras and rarely tag a look-alike."""

OVER_COUNTING = ErrorModel(miss_mean=0.10, false_positive_rate=0.30)
"""Volunteers who see most cameras but tag look-alikes (lamps, signal heads) as cameras."""

ERROR_MODELS = {"default": DEFAULT, "miss_prone": MISS_PRONE, "over_counting": OVER_COUNTING}
"""The error models by name, as the benchmarks report them."""


@dataclass
class SyntheticStudy:
    """A synthetic city's volunteer answers keyed by panorama, the truth and an expert sample.

    Attributes
    ----------
    submissions
        One row per volunteer answer (``PanoramaId``, ``DecoderId``, the count columns); a
        volunteer's second answer on a panorama shared by two intersections is dropped.
    truth
        Per ``PanoramaId``, the true count columns.
    plan
        The reviewed panoramas: ``PanoramaId``, ``stratum``, ``inclusion_probability``,
        ``weight``.
    reviews
        The expert reference (experts see the truth): ``PanoramaId`` and the count columns.
    """

    submissions: pd.DataFrame
    truth: pd.DataFrame
    plan: pd.DataFrame
    reviews: pd.DataFrame


def synthetic_study(
    seed: int,
    errors: ErrorModel | None = None,
    *,
    n_review: int = 104,
    allocation: Literal["equal", "neyman", "proportional"] = "equal",
    category: str = "attached_street",
) -> SyntheticStudy:
    """Simulate a city and draw the expert sample the way Amnesty did (8 strata x 13).

    The plan is :func:`camcensus.quality.design.plan_review` on the volunteers' per-panorama
    median and agreement class of ``category`` (over all of a panorama's answers).
    """
    city = simulate_city(seed, errors=errors or DEFAULT)
    sub = city.submissions.merge(
        city.intersections[["IntersectionId", "PanoramaId"]], on="IntersectionId", how="left"
    )
    sub = sub.drop_duplicates(["PanoramaId", "DecoderId"], keep="first")
    cols = [c for c in sub.columns if c not in ("SubmissionId", "IntersectionId")]
    sub = sub[cols].reset_index(drop=True)
    truth = pd.DataFrame(city.truth.drop(columns="geometry"))
    groups = sub.groupby("PanoramaId", sort=True)[category]
    counts = pd.DataFrame(
        {
            "PanoramaId": groups.median().index,
            f"{category}_median": groups.median().to_numpy(),
            f"{category}_agreement": [agreement_class(np.asarray(v))[()] for v in groups.agg(list)],
        }
    )
    plan = plan_review(counts, n=n_review, allocation=allocation, category=category, seed=seed)
    reviews = truth[truth["PanoramaId"].isin(plan["PanoramaId"])].reset_index(drop=True)
    return SyntheticStudy(sub, truth, plan, reviews)
