"""How good is the count: review design, ratio estimation, a latent-count model of volunteers,
volunteer skill, adaptive redundancy and agreement statistics (docs/quality.md)."""

from __future__ import annotations
