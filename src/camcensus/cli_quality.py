"""Command line: how good the counts are (``camcensus quality plan|estimate|simulate``).

Registered on :data:`camcensus.cli.app` when :mod:`camcensus.cli` is imported; the commands
parse options and call :mod:`camcensus.quality`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from camcensus._errors import OptionError
from camcensus.cli import Force, _friendly_errors
from camcensus.cli import app as app

__all__ = ["app", "estimate", "plan", "quality_app", "simulate"]

quality_app = typer.Typer(
    help="How good the counts are: expert-review plans, ratios, corrected totals, agreement.",
    no_args_is_help=True,
)
app.add_typer(quality_app, name="quality")

Counts = Annotated[
    Path,
    typer.Option(
        "--counts",
        help="Per-panorama counts (Amnesty's counts_per_intersections.csv) or the raw "
        "counts.csv of every answer (camcensus export decode), with intersections.csv beside it.",
    ),
]
Intersections = Annotated[
    Path | None,
    typer.Option(help="intersections.csv of a raw counts file (default: the one beside it)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random draw.")]
Decoders = Annotated[
    str,
    typer.Option(
        help="Answers per panorama of a raw counts file: a number (Amnesty: 3) or 'all' "
        "(a platform project with adaptive redundancy)."
    ),
]


def _decoders(value: str) -> int | Literal["all"]:
    if value.strip().lower() == "all":
        return "all"
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise OptionError(f"--decoders {value!r}: a whole number of answers (e.g. 3) or 'all'")
    return k


_ALLOCATIONS = ("equal", "neyman", "proportional")


@quality_app.command(
    epilog="Example: camcensus quality plan --counts "
    "../shared/data/amnesty_decode/amnesty_international_cameras_brooklyn.csv --out plan.csv"
)
def plan(
    counts: Counts,
    out: Annotated[Path, typer.Option("--out", help="The plan CSV to write.")],
    n: Annotated[int, typer.Option("--n", help="Panoramas to review (Amnesty: 104).")] = 104,
    allocation: Annotated[
        str,
        typer.Option(help="equal (Amnesty's 8 x 13), proportional, or neyman (needs --pilot)."),
    ] = "equal",
    pilot: Annotated[
        Path | None,
        typer.Option(help="Reviews of a pilot sample (for --allocation neyman)."),
    ] = None,
    category: Annotated[
        str, typer.Option(help="Count the strata are built on (Amnesty: attached_street).")
    ] = "attached_street",
    intersections: Intersections = None,
    decoders: Decoders = "3",
    seed: SeedOpt = 0,
    force: Force = False,
) -> None:
    """Draw the panoramas experts should review, by stratum of the volunteers' median and
    agreement, with each one's inclusion probability and weight."""
    from camcensus.quality.design import plan_review, read_reviews, write_plan
    from camcensus.quality.inputs import read_counts

    with _friendly_errors():
        if allocation not in _ALLOCATIONS:
            raise OptionError(
                f"--allocation {allocation!r}: choose one of {', '.join(_ALLOCATIONS)}"
            )
        if n < 1:
            raise OptionError(f"--n {n}: review at least one panorama, e.g. --n 104")
        if allocation == "neyman" and pilot is None:
            raise OptionError(
                "--allocation neyman needs --pilot REVIEWS.csv (the per-stratum spread comes "
                "from a pilot review)"
            )
        # The answers a panorama keeps are picked with seed 0 in plan and estimate alike, so
        # the estimate's strata are those the plan was drawn on (--seed is for the draws).
        q = read_counts(counts, intersections=intersections, decoders=_decoders(decoders))
        pilot_frame = read_reviews(pilot) if pilot is not None else None
        the_plan = plan_review(
            q.counts,
            n=n,
            allocation=allocation,  # type: ignore[arg-type]
            pilot=pilot_frame,
            category=category,
            seed=seed,
        )
        inputs = [counts] + ([intersections] if intersections else [])
        inputs += [pilot] if pilot else []
        write_plan(the_plan, out, inputs=inputs, force=force)
    table = Table(title=f"Review plan ({allocation})")
    for col in ("stratum", "panoramas", "to review", "inclusion probability"):
        table.add_column(col)
    for h, g in the_plan.groupby("stratum", sort=False):
        table.add_row(
            str(h),
            f"{int(g['stratum_size'].iloc[0]):,}",
            str(len(g)),
            f"{float(g['inclusion_probability'].iloc[0]):.4f}",
        )
    Console().print(table)
    left = the_plan.attrs.get("left_out") or the_plan.attrs.get("not_sampled") or {}
    if left:
        Console().print(Text(f"Not sampled (outside the design): {left}"))
    Console().print(Text(f"Plan: {out} ({len(the_plan)} panoramas)"))


@quality_app.command(
    epilog="Example: camcensus quality estimate --counts out/quality-city/counts.csv "
    "--reviews out/quality-city/reviews.csv --out out/quality"
)
def estimate(
    counts: Counts,
    reviews: Annotated[
        Path,
        typer.Option(
            help="The experts' counts: PanoramaId and reference counts per category "
            "(reviews.csv of camcensus export decode, or the plan's CSV filled in)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the report into.")],
    review_plan: Annotated[
        Path | None,
        typer.Option(
            "--plan", help="The plan the reviews were drawn from (if they lack its weights)."
        ),
    ] = None,
    intersections: Intersections = None,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            help="Categories to compare (repeat; default attached_street, attached_building).",
        ),
    ] = None,
    decoders: Decoders = "3",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    draws: Annotated[int, typer.Option(help="Posterior draws of the latent-count model.")] = 1000,
    seed: SeedOpt = 0,
    force: Force = False,
) -> None:
    """Ratio of the volunteers' total to the experts' (three intervals), the corrected total
    beside the sum of medians, volunteers' skill, agreement, and adaptive-redundancy savings."""
    from camcensus.quality.design import read_plan, read_reviews
    from camcensus.quality.estimate import estimate_quality, write_quality_report
    from camcensus.quality.inputs import read_counts

    with _friendly_errors():
        if n_boot < 100:
            raise OptionError(f"--n-boot {n_boot}: use at least 100, e.g. --n-boot 2000")
        if draws < 100:
            raise OptionError(f"--draws {draws}: use at least 100, e.g. --draws 1000")
        # The answers a panorama keeps are picked with seed 0 in plan and estimate alike, so
        # the estimate's strata are those the plan was drawn on (--seed is for the draws).
        q = read_counts(counts, intersections=intersections, decoders=_decoders(decoders))
        revs = read_reviews(reviews)
        plan_frame = read_plan(review_plan) if review_plan is not None else None
        paths = {"counts": counts, "reviews": reviews}
        if review_plan is not None:
            paths["plan"] = review_plan
        if intersections is not None:
            paths["intersections"] = intersections
        result = estimate_quality(
            q,
            revs,
            plan=plan_frame,
            categories=category or ("attached_street", "attached_building"),
            n_boot=n_boot,
            draws=draws,
            seed=seed,
            paths=paths,
        )
        write_quality_report(result, out, force=force)
    table = Table(title="How good are the counts", show_header=False)
    r = result.ratios
    for row in r[r["decoders"] == "median"].to_dict("records"):
        table.add_row(
            f"ratio {row['category']}, {row['method']}",
            f"{row['estimate']:.2f} ({row['low']:.2f}–{row['high']:.2f})",
        )
    for row in result.totals.to_dict("records"):
        span = "" if row["low"] != row["low"] else f" ({row['low']:,.0f}–{row['high']:,.0f})"
        table.add_row(f"{row['category']}: {row['total']}", f"{row['estimate']:,.0f}{span}")
    Console().print(table)
    Console().print(Text(f"Report: {out / 'index.html'}"))


@quality_app.command(
    epilog="Example: camcensus quality simulate --seed 0 --errors miss_prone --out out/quality-city"
)
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the study into.")],
    errors: Annotated[
        str, typer.Option(help="Volunteer errors: default, miss_prone, over_counting.")
    ] = "default",
    n: Annotated[int, typer.Option("--n", help="Panoramas the experts review.")] = 104,
    allocation: Annotated[str, typer.Option(help="equal, proportional.")] = "equal",
    seed: SeedOpt = 0,
    force: Force = False,
) -> None:
    """Write a synthetic study with known truth: volunteers' raw counts, a review plan, the
    experts' reviews (the truth there) and every panorama's true counts."""
    from camcensus.quality.demo import write_synthetic_study

    with _friendly_errors():
        if allocation not in ("equal", "proportional"):
            raise OptionError(
                f"--allocation {allocation!r}: a synthetic study takes equal or proportional"
            )
        written = write_synthetic_study(
            out, seed=seed, errors=errors, n_review=n, allocation=allocation, force=force
        )
    Console().print(Text(f"Synthetic study: {out} ({', '.join(p.name for p in written.values())})"))
