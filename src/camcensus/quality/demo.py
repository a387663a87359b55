"""``camcensus quality simulate``: a synthetic study whose truth is known, to try the quality
commands on (and to check them: the true totals are written beside the answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from camcensus.report import OutputError

__all__ = ["STUDY_FILES", "write_synthetic_study"]

STUDY_FILES = (
    "counts.csv",
    "intersections.csv",
    "plan.csv",
    "reviews.csv",
    "truth.csv",
    "README.txt",
)
"""The files ``camcensus quality simulate`` writes (and the only ones it replaces)."""


def _check_folder(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(out, "this is an existing file, not a folder", "choose a folder")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    foreign = [e for e in entries if e not in STUDY_FILES]
    if foreign:
        raise OutputError(
            out,
            f"the folder holds files a synthetic study does not write ({', '.join(foreign[:5])})",
            "choose a new or empty --out folder",
        )
    if not force:
        raise OutputError(
            out,
            "the folder already holds a synthetic study",
            "pass --force to replace it, or choose another --out folder",
        )


def write_synthetic_study(
    out: str | Path,
    *,
    seed: int = 0,
    errors: str = "default",
    n_review: int = 104,
    allocation: str = "equal",
    force: bool = False,
) -> dict[str, Path]:
    """Simulate a city, its volunteers and an expert review of ``n_review`` panoramas.

    Writes Amnesty's raw ``counts.csv`` and ``intersections.csv`` (what volunteers answered),
    ``plan.csv`` (the review plan drawn on the volunteers' medians, as ``camcensus quality
    plan`` draws it), ``reviews.csv`` (the experts' counts: here the truth) and ``truth.csv``
    (every panorama's true counts, to check the estimates against).

    Parameters
    ----------
    out
        Folder to write (new, empty, or with ``force`` an earlier synthetic study).
    seed
        Seed of the city, the volunteers and the plan.
    errors
        Volunteer error model: ``default``, ``miss_prone`` or ``over_counting``
        (:data:`camcensus.quality._sim.ERROR_MODELS`).
    n_review, allocation
        Size and allocation of the review plan (:func:`~camcensus.quality.design.plan_review`).
    """
    from camcensus._errors import OptionError
    from camcensus.io.formats import write_csv
    from camcensus.quality._sim import ERROR_MODELS
    from camcensus.quality.design import plan_review, write_plan
    from camcensus.quality.inputs import read_counts
    from camcensus.report import replace_folder
    from camcensus.simulate import simulate_city

    if errors not in ERROR_MODELS:
        raise OptionError(f"--errors {errors!r}: choose one of {', '.join(ERROR_MODELS)}")
    out = Path(out)
    _check_folder(out, force=force)
    city = simulate_city(seed, errors=ERROR_MODELS[errors])
    written: dict[str, Path] = {}
    with replace_folder(out) as tmp:
        paths = city.write(tmp / "_city")
        for key, name in (("raw_counts", "counts.csv"), ("raw_intersections", "intersections.csv")):
            written[name] = paths[key].rename(tmp / name)
        for p in sorted((tmp / "_city").iterdir()):
            p.unlink()
        (tmp / "_city").rmdir()
        q = read_counts(tmp / "counts.csv")  # answers picked as `quality estimate` picks them
        plan = plan_review(
            q.counts,
            n=n_review,
            allocation=allocation,  # type: ignore[arg-type]
            seed=seed,
        )
        write_plan(plan, tmp / "plan.csv")
        truth = pd.DataFrame(city.truth.drop(columns="geometry"))
        cols = ["PanoramaId", "n_cameras", "attached_street", "attached_building",
                "attached_unknown", "type_dome", "type_bullet", "type_unknown"]  # fmt: skip
        reviews = truth.loc[truth["PanoramaId"].isin(plan["PanoramaId"]), cols]
        reviews = reviews.merge(
            plan[["PanoramaId", "stratum", "inclusion_probability", "weight"]], on="PanoramaId"
        )
        write_csv(reviews, tmp / "reviews.csv")
        write_csv(truth[cols], tmp / "truth.csv")
        totals = {c: int(truth.loc[truth["PanoramaId"].isin(q.counts["PanoramaId"]), c].sum())
                  for c in cols[1:]}  # fmt: skip
        (tmp / "README.txt").write_text(
            "A synthetic camcensus study (seeded; camcensus quality simulate).\n"
            f"seed {seed}, volunteer errors {errors}, {len(plan)} panoramas reviewed "
            f"({allocation} allocation).\n"
            "True totals over the panoramas with 3 answers: "
            + json.dumps(totals)
            + "\nThe experts' reviews (reviews.csv) are the truth of the reviewed panoramas.\n",
            encoding="utf-8",
        )
    return {name: out / name for name in STUDY_FILES}
