"""Verify tasks: volunteers confirm or reject the detector's machine tags (docs/detect.md)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["verify"])
