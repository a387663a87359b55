"""``camcensus quality estimate``: how good the counts are, from expert reviews and the answers.

Puts the pieces of :mod:`camcensus.quality` together for one study:

- the ratio of the decoders' total to the experts' (:func:`~camcensus.quality.ratio.ratio_table`:
  Amnesty's weighted bootstrap, the stratified linearisation and the Bayesian ratio; sums of
  means as Amnesty's check when every answer is known);
- with every volunteer answer (a raw counts file): the corrected total of each category with
  its interval (:func:`~camcensus.quality.latent.fit_latent`) beside the conservative sum of
  medians, the volunteers' skill, and Krippendorff's alpha by borough;
- with agreement classes: what adaptive redundancy would have saved
  (:func:`~camcensus.quality.adaptive.savings_on_agreements`);

and writes them as a report folder (``results.json``, ``tables/*.csv``, ``index.html``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from camcensus._errors import ContractError, InputError, Ledger, Problem
from camcensus.quality.inputs import QualityInputs
from camcensus.report.sections import Bullets, Cards, Section, Table, Text

__all__ = [
    "AMNESTY_PUBLISHED",
    "CATEGORY_NAMES",
    "QualityResult",
    "estimate_quality",
    "quality_sections",
    "review_plan",
    "write_quality_report",
]

CATEGORY_NAMES = {
    "attached_street": "public cameras (street furniture)",
    "attached_building": "private cameras (on buildings)",
    "attached_unknown": "cameras of unknown attachment",
    "n_cameras": "all cameras",
}
"""Plain names of the count categories, as the report says them."""

AMNESTY_PUBLISHED = {
    ("attached_street", "median"): (0.23, 1.0),
    ("attached_building", "median"): (0.24, 0.46),
    ("attached_street", "mean"): (0.85, 3.06),
}
"""Amnesty's published 95% bootstrap intervals of the ratio (methodology, section 1.4.2)."""


@dataclass
class QualityResult:
    """Everything ``camcensus quality estimate`` reports.

    Attributes
    ----------
    title
        The report's title.
    strata
        One row per stratum: ``stratum``, ``panoramas`` (N_h), ``reviewed`` (n_h).
    ratios
        :func:`~camcensus.quality.ratio.ratio_table`'s rows (one per category, decoders'
        summary and method).
    totals
        One row per category and total: the sum of medians and the corrected total with its
        interval (empty without every answer).
    volunteers
        Per-volunteer skill from the latent model of public cameras (empty without answers).
    agreement
        Krippendorff's alpha per category and group (empty without answers).
    savings
        What each adaptive-redundancy rule would have saved (empty without agreement classes).
    ledger
        Everything left out, with reasons, and the caveats.
    inputs
        The input files by role.
    options
        The options the numbers were computed with.
    """

    title: str
    strata: pd.DataFrame
    ratios: pd.DataFrame
    totals: pd.DataFrame
    volunteers: pd.DataFrame
    agreement: pd.DataFrame
    savings: pd.DataFrame
    ledger: Ledger
    inputs: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)


def review_plan(
    counts: pd.DataFrame, reviews: pd.DataFrame, plan: pd.DataFrame | None, *, category: str
) -> pd.DataFrame:
    """Return the plan the reviews were drawn from, with the decoders' medians.

    The plan is ``plan`` when given; otherwise the reviews must carry it (``stratum`` and
    ``inclusion_probability`` or ``weight``, as ``camcensus export decode`` writes
    ``reviews.csv``). Without ``stratum_size``, a stratum's size is the sum of its weights;
    without ``stratum``, the panorama's Amnesty stratum on ``counts``.
    """
    from camcensus.quality.design import amnesty_strata

    source = plan if plan is not None else reviews
    has_weight = "weight" in source.columns or "inclusion_probability" in source.columns
    if not has_weight:
        raise InputError(
            [
                Problem(
                    str(reviews.attrs.get("source", "reviews")),
                    None,
                    "inclusion_probability",
                    "the reviews carry no inclusion probability or weight and no plan was given",
                    "the plan the reviewed panoramas were drawn from",
                    "pass --plan plan.csv (camcensus quality plan wrote it)",
                )
            ]
        )
    p = source.copy()
    p["PanoramaId"] = p["PanoramaId"].astype(str)
    if "weight" not in p.columns:
        p["weight"] = 1.0 / pd.to_numeric(p["inclusion_probability"], errors="coerce")
    strata = amnesty_strata(counts, category).set_axis(counts["PanoramaId"].astype(str))
    if "stratum" not in p.columns or p["stratum"].isna().all():
        p["stratum"] = p["PanoramaId"].map(strata)
    if "stratum_size" not in p.columns:
        # N_h = n_h * (N_h / n_h): the stratum's weights add up to its size
        p["stratum_size"] = p.groupby("stratum")["weight"].transform("sum").round()
    medians = [c for c in counts.columns if c.endswith("_median")]
    p = p.drop(columns=[c for c in medians if c in p.columns])
    p = p.merge(
        counts[["PanoramaId", *medians]].assign(PanoramaId=counts["PanoramaId"].astype(str)),
        on="PanoramaId",
        how="left",
    )
    return p


def _strata_table(counts: pd.DataFrame, plan: pd.DataFrame, category: str) -> pd.DataFrame:
    from camcensus.quality.design import amnesty_strata

    sizes = amnesty_strata(counts, category).value_counts()
    reviewed = plan.groupby("stratum")["PanoramaId"].size()
    names = sorted(set(sizes.index) | set(reviewed.index), key=str)
    return pd.DataFrame(
        {
            "stratum": names,
            "panoramas": [int(sizes.get(h, 0)) for h in names],
            "reviewed": [int(reviewed.get(h, 0)) for h in names],
        }
    )


def estimate_quality(
    inputs: QualityInputs,
    reviews: pd.DataFrame,
    *,
    plan: pd.DataFrame | None = None,
    categories: Sequence[str] = ("attached_street", "attached_building"),
    title: str = "How good are the counts",
    n_boot: int = 2000,
    draws: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    paths: Mapping[str, str | Path] | None = None,
) -> QualityResult:
    """Compute every quality figure of one study.

    Parameters
    ----------
    inputs
        :func:`camcensus.quality.inputs.read_counts`'s result.
    reviews
        :func:`camcensus.quality.design.read_reviews`'s result: ``PanoramaId`` and the
        reference counts (and, from the platform, the plan's columns).
    plan
        The review plan (:func:`camcensus.quality.design.read_plan`) when the reviews do not
        carry their inclusion probabilities.
    categories
        Count categories to compare (Amnesty: public and private cameras).
    n_boot, draws, level, seed
        Bootstrap resamples, posterior draws of the latent model, interval level, seed.
    paths
        Input files by role, for the report.
    """
    from camcensus.quality.adaptive import savings_on_agreements
    from camcensus.quality.agreement import alpha_table
    from camcensus.quality.design import amnesty_strata
    from camcensus.quality.latent import corrected_total, fit_latent
    from camcensus.quality.ratio import latent_predictions, ratio_table
    from camcensus.quality.skill import skill_from_latent

    ledger = Ledger()
    for e in inputs.ledger.exclusions:
        ledger.exclude(e.stage, e.reason, e.count)
    for note in inputs.ledger.notes:
        ledger.note(note)
    cats = [c for c in categories if c in reviews.columns]
    if not cats:
        raise ContractError(
            f"the reviews have none of the categories {list(categories)}; columns: "
            f"{list(reviews.columns)[:12]}"
        )
    counts = inputs.counts
    missing = [c for c in cats if f"{c}_median" not in counts.columns]
    if missing:
        raise ContractError(f"the counts have no median of {missing}")
    the_plan = review_plan(counts, reviews, plan, category=cats[0])
    strata = _strata_table(counts, the_plan, cats[0])
    reviewed = set(reviews["PanoramaId"].astype(str))
    not_counted = len(reviewed - set(counts["PanoramaId"].astype(str)))
    ledger.exclude("reviews", "reviewed panorama not in the counts", not_counted)
    totals = pd.DataFrame()
    volunteers = pd.DataFrame()
    agreement = pd.DataFrame()
    predictions: dict[str, pd.Series] = {}
    prediction_sd: dict[str, pd.Series] = {}
    subs = inputs.submissions
    if subs is not None and len(subs):
        frames = []
        for cat in cats:
            fit = fit_latent(
                subs,
                category=cat,
                reference=reviews[["PanoramaId", cat]],
                draws=draws,
                level=level,
                seed=seed,
            )
            for e in fit.ledger.exclusions:
                ledger.exclude(f"latent model ({cat})", e.reason, e.count)
            for note in fit.ledger.notes:
                ledger.note(f"{cat}: {note}")
            t = corrected_total(fit)
            t.insert(0, "category", cat)
            frames.append(t)
            if cat == cats[0]:
                volunteers = skill_from_latent(fit)
            # each panorama's prediction from its answers alone (never its own review)
            pred = latent_predictions(
                subs, category=cat, reference=reviews[["PanoramaId", cat]], fit=fit
            ).set_index("PanoramaId")
            predictions[cat] = pred["prediction"]
            prediction_sd[cat] = pred["prediction_sd"]
        totals = pd.concat(frames, ignore_index=True)
        borough = None
        if "BoroName" in counts.columns and counts["BoroName"].notna().any():
            borough = counts.set_index(counts["PanoramaId"].astype(str))["BoroName"]
        agreement = alpha_table(
            subs,
            by=borough,
            category=("n_cameras", *[c for c in cats if c != "n_cameras"]),
            n_boot=min(n_boot, 1000),
            seed=seed,
            ledger=ledger,
        )
    else:
        ledger.note(
            "The counts hold medians only (no individual answers): no corrected total, no "
            "volunteer skill and no Krippendorff's alpha; give the raw counts.csv for them."
        )
    strata_by_id = amnesty_strata(counts, cats[0]).set_axis(counts["PanoramaId"].astype(str))
    planned = the_plan.groupby("stratum")["stratum_size"].first()
    found = strata_by_id.value_counts()
    differ = {
        str(h): (int(found.get(h, 0)), int(n))
        for h, n in planned.items()
        if int(found.get(h, 0)) != int(n)
    }
    if predictions and differ:
        ledger.note(
            "The counts' strata are not those the plan was drawn on (stratum: (in the counts, "
            f"in the plan) = {differ}): the model-assisted ratio, which sums predictions over "
            "the strata, is left out. Give the counts the plan was made from (same file, same "
            "--decoders) to get it."
        )
        predictions, prediction_sd = {}, {}
    ratios = ratio_table(
        the_plan,
        reviews,
        submissions=inputs.submissions,
        categories=cats,
        level=level,
        n_boot=n_boot,
        seed=seed,
        predictions=predictions or None,
        prediction_sd=prediction_sd or None,
        strata=strata_by_id if predictions else None,
    )
    savings = pd.DataFrame()
    if {"n_cameras_median", "n_cameras_agreement"} <= set(counts.columns):
        savings = savings_on_agreements(counts, ledger=ledger)
    return QualityResult(
        title=title,
        strata=strata,
        ratios=ratios,
        totals=totals,
        volunteers=volunteers,
        agreement=agreement,
        savings=savings,
        ledger=ledger,
        inputs={k: str(v) for k, v in (paths or {}).items()},
        options={
            "categories": cats,
            "n_boot": n_boot,
            "draws": draws,
            "level": level,
            "seed": seed,
        },
    )


def _num(v: Any, digits: int = 2) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    return f"{x:.{digits}f}" if math.isfinite(x) else "–"


def _ratio_bullets(result: QualityResult) -> list[str]:
    out = []
    r = result.ratios
    for cat in result.options["categories"]:
        rows = r[(r["category"] == cat) & (r["decoders"] == "median")]
        if rows.empty:
            continue
        by = {m: row for m, row in zip(rows["method"], rows.to_dict("records"), strict=True)}
        first = next(iter(by.values()))
        parts = [
            f"{m} {_num(row['low'])}–{_num(row['high'])}"
            for m, row in by.items()
            if m in ("bootstrap", "linearization", "bayes", "model_assisted")
        ]
        text = (
            f"{CATEGORY_NAMES.get(cat, cat).capitalize()}: the volunteers' medians add up to "
            f"{_num(first['estimate'])} times the experts' count on the reviewed panoramas "
            f"(weighted to the whole study; 95% intervals: {'; '.join(parts)})."
        )
        pub = AMNESTY_PUBLISHED.get((cat, "median"))
        if pub:
            text += f" Amnesty published [{pub[0]:g}, {pub[1]:g}] for New York."
        out.append(text)
    return out


def _total_bullets(result: QualityResult) -> list[str]:
    out = []
    t = result.totals
    for cat in result.options["categories"]:
        rows = t[t["category"] == cat] if len(t) else t
        if rows.empty:
            continue
        med = rows.iloc[0]
        cor = rows.iloc[1]
        out.append(
            f"{CATEGORY_NAMES.get(cat, cat).capitalize()}: sum of medians {med['estimate']:,.0f} "
            f"(the conservative headline); corrected total {cor['estimate']:,.0f} "
            f"(95% interval {cor['low']:,.0f}–{cor['high']:,.0f})."
        )
    return out


def quality_sections(result: QualityResult) -> list[Section]:
    """Return the report section "How good are the counts" (and its detail sections)."""
    blocks: list[Any] = []
    cards = []
    r = result.ratios
    if len(r):
        first = r[(r["decoders"] == "median")].iloc[0]
        name = CATEGORY_NAMES.get(first["category"], "")
        cards.append((_num(first["estimate"]), f"ratio, {name}"))
    reviewed = int(result.strata["reviewed"].sum())
    cards.append((f"{reviewed:,}", "panoramas reviewed by experts"))
    if len(result.totals):
        t = result.totals.iloc[1]
        cards.append((f"{t['low']:,.0f}–{t['high']:,.0f}", f"corrected total, {t['category']}"))
    blocks.append(Cards(tuple(cards)))
    blocks.append(
        Text(
            "Experts reviewed a sample of panoramas drawn by stratum (the volunteers' median and "
            "agreement), as Amnesty did. The ratio below is the volunteers' total divided by the "
            "experts' on those panoramas, each weighted by the inverse of its chance of being "
            "drawn, so that it speaks for the whole study. Below 1 means the volunteers "
            "undercount. The intervals: Amnesty's weighted bootstrap, a design-based "
            "(linearised) interval, a Bayesian ratio and, with every answer, a model-assisted "
            "ratio that also uses what the volunteers' answers predict for the panoramas not "
            "reviewed (docs/quality.md says how each is computed and how well each covers).",
            lead="How to read this.",
        )
    )
    blocks.append(Bullets(tuple(_ratio_bullets(result))))
    labels = {"low": "95% low", "high": "95% high", "std_error": "std. error"}
    blocks.append(
        Table(
            "quality_ratios",
            "Ratio of the volunteers' total to the experts' total",
            result.ratios,
            labels=labels,
            caption="decoders: the volunteers' median per panorama (Amnesty's count) or their "
            "mean (Amnesty's check: means overcount).",
        )
    )
    blocks.append(
        Table(
            "quality_strata",
            "Strata of the review sample",
            result.strata,
            caption="Panoramas with a median of 3 or more public cameras are outside Amnesty's "
            "design: they are counted here, not sampled.",
        )
    )
    if len(result.totals):
        blocks.append(Bullets(tuple(_total_bullets(result))))
        blocks.append(
            Text(
                "The corrected total comes from a model of each volunteer's errors (how often "
                "they find a camera that is there, how often they tag one that is not), "
                "anchored by the experts' reviews; its interval carries the uncertainty of "
                "every volunteer's error rates. Checked where the truth is known (200 "
                "synthetic cities for each of three kinds of volunteer error, public "
                "cameras), the 95% interval held the true total in 94–96.5% of the cities. "
                "The sum of medians stays the headline: it is conservative.",
                style="note",
            )
        )
        blocks.append(Table("quality_totals", "Totals", result.totals, labels=labels))
    if len(result.agreement):
        blocks.append(
            Table(
                "quality_agreement",
                "Agreement between volunteers (Krippendorff's alpha)",
                result.agreement,
                caption="Alpha is 1 when volunteers looking at the same panorama always agree "
                "and 0 when they agree no more than chance; 0.8 or more is usually called "
                "reliable, 0.67–0.8 tentative. Agreement is not accuracy.",
            )
        )
    if len(result.savings):
        blocks.append(
            Table(
                "quality_adaptive",
                "What adaptive redundancy would have saved",
                result.savings,
                caption="Assuming the answers of a panorama came in random order; "
                "stop_unanimous_zero ends a panorama at two zero answers.",
            )
        )
    if len(result.volunteers):
        v = result.volunteers
        det = pd.to_numeric(v.get("detection", pd.Series(dtype=float)), errors="coerce")
        blocks.append(
            Text(
                f"{len(v):,} volunteers; median detection rate of public cameras "
                f"{_num(det.median())} (middle half {_num(det.quantile(0.25))}–"
                f"{_num(det.quantile(0.75))}). Per-volunteer estimates are in "
                "tables/quality_volunteers.csv, for the project's organisers (pseudonyms only).",
                lead="Volunteers.",
            )
        )
        blocks.append(Table("quality_volunteers", "Volunteers' skill", v, html=False))
    exclusions = [f"{e.stage}: {e.count:,} {e.reason}" for e in result.ledger.exclusions]
    if exclusions:
        blocks.append(Text("Left out, with reasons:", style="small"))
        blocks.append(Bullets(tuple(exclusions)))
    for note in result.ledger.notes:
        blocks.append(Text(note, style="note"))
    results = {
        "quality": {
            "ratios": result.ratios.to_dict("records"),
            "strata": result.strata.to_dict("records"),
            "totals": result.totals.to_dict("records"),
            "agreement": result.agreement.to_dict("records"),
            "adaptive": result.savings.to_dict("records"),
            "volunteers": len(result.volunteers),
            "exclusions": [e.__dict__ for e in result.ledger.exclusions],
            "notes": list(result.ledger.notes),
            "options": result.options,
            "inputs": result.inputs,
        }
    }
    return [Section("quality", "How good are the counts", 10, tuple(blocks), results)]


def write_quality_report(
    result: QualityResult, out: str | Path, *, force: bool = False
) -> dict[str, Path]:
    """Write ``results.json``, ``tables/*.csv`` and ``index.html`` into ``out`` atomically.

    Refuses an ``out`` that is or holds an input, or holds anything but an earlier camcensus
    report (and that only with ``force``).
    """
    from camcensus._version import package_version
    from camcensus.io.formats import json_safe, write_csv
    from camcensus.report import check_output, replace_folder
    from camcensus.report.html import write_sections_page

    out = Path(out)
    check_output(out, list(result.inputs.values()), force=force)
    sections = quality_sections(result)
    results: dict[str, Any] = {
        "generated_by": f"camcensus {package_version()}",
        "title": result.title,
    }
    for s in sections:
        results.update(s.results)
    written: dict[str, Path] = {}
    with replace_folder(out) as tmp:
        for s in sections:
            for name, frame in s.tables.items():
                written[name] = write_csv(frame, tmp / "tables" / f"{name}.csv")
        (tmp / "results.json").write_text(
            json.dumps(json_safe(results), indent=2, allow_nan=False), encoding="utf-8"
        )
        written["results"] = tmp / "results.json"
        written["html"] = write_sections_page(
            result.title,
            sections,
            results,
            tmp / "index.html",
            intro="How good a volunteer camera count is: expert review, volunteers' errors, "
            "agreement.",
            source="the experts' counts are taken as the reference.",
        )
    return {k: out / p.relative_to(tmp) for k, p in written.items()}
