"""How good is the count: review design, ratio estimation, a latent-count model of volunteers,
volunteer skill, adaptive redundancy and agreement statistics (docs/quality.md)."""

from __future__ import annotations

from camcensus.quality.adaptive import RULES, adaptive_target, margin_needed, savings_on_agreements
from camcensus.quality.agreement import alpha_table, interpret_alpha, krippendorff_alpha
from camcensus.quality.design import AMNESTY_STRATA, amnesty_strata, plan_review
from camcensus.quality.estimate import QualityResult, estimate_quality, write_quality_report
from camcensus.quality.inputs import QualityInputs, read_counts
from camcensus.quality.latent import LatentFit, corrected_total, fit_latent
from camcensus.quality.ratio import RatioEstimate, latent_predictions, ratio_estimates, ratio_table
from camcensus.quality.skill import skill_from_gold, skill_from_latent, weighted_consensus

__all__ = [
    "AMNESTY_STRATA",
    "RULES",
    "LatentFit",
    "QualityInputs",
    "QualityResult",
    "RatioEstimate",
    "adaptive_target",
    "alpha_table",
    "amnesty_strata",
    "corrected_total",
    "estimate_quality",
    "fit_latent",
    "interpret_alpha",
    "krippendorff_alpha",
    "latent_predictions",
    "margin_needed",
    "plan_review",
    "ratio_estimates",
    "ratio_table",
    "read_counts",
    "savings_on_agreements",
    "skill_from_gold",
    "skill_from_latent",
    "weighted_consensus",
    "write_quality_report",
]
