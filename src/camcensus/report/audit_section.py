"""The report section of ``camcensus audit``: whom a city's listed cameras watch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from camcensus.report.inventory import camera_evidence, evidence_text
from camcensus.report.sections import Block, Bullets, Cards, ReportContext, Section, Table, Text

__all__ = ["audit_section"]

_LABELS = {
    "group": "tracts (race composition)",
    "count": "cameras",
    "estimate": "per 1,000 residents",
    "ci_low": "95% low",
    "ci_high": "95% high",
    "share_of_count": "share of cameras",
    "share_of_residents": "share of residents",
}


def _rate_rows(t: pd.DataFrame) -> pd.DataFrame:
    cols = ["group", "tracts", "residents", "count", "estimate", "ci_low", "ci_high",
            "share_of_count", "share_of_residents"]  # fmt: skip
    return t[[c for c in cols if c in t.columns]]


def audit_section(ctx: ReportContext) -> Section | None:
    """Cameras per 1,000 residents by tract race composition, the placement model, and the
    audit's rules (race definition, income source, tract vintage, boundary tie-break)."""
    result = ctx.result
    a = result.audit
    if a is None:
        return None
    files = {k: Path(v).name for k, v in result.inputs.items()}
    tracts_file, acs_file = files.get("tracts", "tracts"), files.get("census", "ACS table")
    coef = a.placement.coefficients[-1]
    odds = np.exp(0.1 * np.array([coef.estimate, coef.ci_low, coef.ci_high]))
    rate = a.placement_rate.coef("nonwhite_fraction")
    rr = np.exp(0.1 * np.array([rate.estimate, rate.ci_low, rate.ci_high]))
    thr = (
        "any camera coverage (the median tract has none)"
        if a.threshold == 0
        else f"more than {a.threshold:g} effective cameras per 1,000 residents (the median tract)"
    )
    by_group = {r["group"]: r for r in a.rates.to_dict("records")}
    findings = []
    for g, r in by_group.items():
        findings.append(
            f"{g} tracts ({r['tracts']} tracts, {r['residents']:,.0f} residents): "
            f"{r['estimate']:.2f} listed cameras per 1,000 residents (95% interval "
            f"{r['ci_low']:.2f}–{r['ci_high']:.2f})."
        )
    if np.isfinite(a.ratio.estimate):
        findings.append(
            f"Majority-Black tracts have {a.ratio.estimate:.2f} times the cameras per resident "
            f"of majority-White tracts (95% interval {a.ratio.ci_low:.2f}–{a.ratio.ci_high:.2f},"
            f" bootstrap p = {a.ratio.p_value:.3f})."
        )
    findings.append(
        f"Placement model (logistic, {a.placement.n} tracts): a tract 10 points more non-white "
        f"has {odds[0]:.2f} times the odds of {thr} (coefficient {coef.estimate:.2f}, 95% "
        f"profile-likelihood interval {coef.ci_low:.2f} to {coef.ci_high:.2f})."
    )
    findings.append(
        f"Camera rate model (quasi-Poisson, cameras per resident): a tract 10 points more "
        f"non-white has {rr[0]:.2f} times the cameras per resident (coefficient "
        f"{rate.estimate:.2f}, 95% interval {rate.ci_low:.2f} to {rate.ci_high:.2f})."
    )
    b = a.boundary
    blocks: list[Block] = [
        Text(a.caveat, style="note"),
        Cards(
            tuple(
                (f"{r['estimate']:.2f}", f"cameras per 1,000 residents, {g} tracts")
                for g, r in by_group.items()
            )
        ),
        Bullets(tuple(findings)),
    ]
    # Where the detector took part: human-confirmed and machine-only listed apart (the audit
    # counts them as read and leaves the machine-only rows out of its figures).
    machine_excluded = a.camera_evidence is not None
    evidence = a.camera_evidence if machine_excluded else camera_evidence(result.cameras)
    if evidence is not None:
        blocks.append(evidence_text(evidence, machine_excluded=machine_excluded))
    blocks += [
        Table(
            "audit_rates",
            "Listed cameras per 1,000 residents by tract race composition",
            _rate_rows(a.rates),
            labels=_LABELS,
            caption="A tract's group is the race of more than half its residents; a group's "
            "rate is its cameras over its residents. Intervals resample whole tracts "
            f"({a.rates['method'].iloc[0] if len(a.rates) else ''}), since cameras cluster.",
            total=False,
        ),
        Table(
            "audit_effective_rates",
            "Effective cameras (covered area) per 1,000 residents by tract race composition",
            _rate_rows(a.rates_effective),
            labels={**_LABELS, "count": "effective cameras"},
            total=False,
        ),
        Text(f"Race: {a.race_label}.", lead="Definitions."),
        Text(
            "Median household income: "
            + (
                "interpolated from the 16 household-income brackets of ACS table B19001 "
                "(linear within the median's bracket), because the table has no B19013."
                if a.income.startswith("B19001")
                else f"{a.income}."
            )
        ),
        Text(a.vintage.message(tracts_file, acs_file), style="note" if a.vintage.mismatch else "p"),
        Text(
            f"{b['cameras']:,} cameras located: {b['inside_one_tract']:,} inside one tract, "
            f"{b['on_boundary']:,} exactly on tract borders ({b['touching_two']} touching two "
            f"tracts, {b['touching_three_or_more']} three or more). Rule: {b['rule']}.",
            lead="Cameras on tract borders.",
        ),
    ]
    if a.records is not None:
        r = a.records
        blocks.append(
            Text(
                f"{Path(r['file']).name}: {r['rows']:,} rows; {r['located']:,} located in a "
                f"tract; left out: {r.get('repeated_ids', 0):,} repeated ids, "
                f"{r['no_coordinates']:,} without coordinates, {r['failed_geocode']:,} at a "
                f"failed-geocode point, {r['outside_tracts']:,} in no tract.",
                lead="Records.",
            )
        )
    results: dict[str, object] = {"audit": a.to_dict(tracts_file, acs_file)}
    if evidence is not None:
        results["audit_camera_evidence"] = evidence
    return Section("audit", f"Whom the listed cameras watch: {a.city}", 5, tuple(blocks), results)
