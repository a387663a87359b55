"""Disparity statistics: the investigation's models, then checks that they hold up."""

from camcensus.stats import models, profile, published_models
from camcensus.stats._result import Estimate, ModelResult, coefficient_table

__all__ = ["Estimate", "ModelResult", "coefficient_table", "models", "profile", "published_models"]
