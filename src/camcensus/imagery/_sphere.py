"""Perspective views to and from an equirectangular panorama (docs/platform.md, "Rays").

Pixel ``(u, v)`` of a ``W × H`` equirectangular image looks along
``yaw = (u + 0.5) / W · 360 − 180`` (clockwise from the centre column) and
``pitch = 90 − (v + 0.5) / H · 180``. A perspective view is a pinhole camera with a heading
(true north, clockwise), a pitch (up from the horizon, rotating about the camera's right axis,
as Google's Street View Static API does) and a horizontal field of view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["View", "perspective_to_equirect"]


@dataclass(frozen=True)
class View:
    """One perspective image and where it looked."""

    image: NDArray[np.uint8]
    heading_deg: float
    pitch_deg: float
    fov_deg: float


def _directions(width: int, height: int, centre_heading_deg: float) -> NDArray[np.float64]:
    """Unit vectors (east, north, up) of every pixel of an equirectangular image."""
    yaw = (np.arange(width) + 0.5) / width * 360.0 - 180.0 + centre_heading_deg
    pitch = 90.0 - (np.arange(height) + 0.5) / height * 180.0
    h = np.radians(yaw)[None, :]
    p = np.radians(pitch)[:, None]
    return np.stack(
        [np.cos(p) * np.sin(h), np.cos(p) * np.cos(h), np.sin(p) * np.ones_like(h)], axis=-1
    )


def _axes(heading_deg: float, pitch_deg: float) -> tuple[NDArray[np.float64], ...]:
    h, p = np.radians(heading_deg), np.radians(pitch_deg)
    forward = np.array([np.cos(p) * np.sin(h), np.cos(p) * np.cos(h), np.sin(p)])
    right = np.array([np.cos(h), -np.sin(h), 0.0])
    up = np.cross(right, forward)
    return forward, right, up


def perspective_to_equirect(
    views: Sequence[View],
    *,
    width: int,
    height: int,
    centre_heading_deg: float = 0.0,
    background: int = 0,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Project perspective views onto an equirectangular image (bilinear sampling).

    Where views overlap, each pixel comes from the view whose centre is nearest to it.

    Parameters
    ----------
    views
        The perspective images (``h × w × 3`` uint8) and where they looked.
    width, height
        Size of the equirectangular result.
    centre_heading_deg
        True-north bearing of the result's centre column.
    background
        Grey level of pixels no view covers.

    Returns
    -------
    tuple
        The ``height × width × 3`` image and the mask of pixels some view covered.
    """
    import cv2

    d = _directions(width, height, centre_heading_deg)
    out = np.full((height, width, 3), background, dtype=np.uint8)
    best = np.full((height, width), -np.inf)
    for view in views:
        vh, vw = view.image.shape[:2]
        forward, right, up = _axes(view.heading_deg, view.pitch_deg)
        z = d @ forward
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (d @ right) / z
            y = (d @ up) / z
        focal = (vw / 2.0) / np.tan(np.radians(view.fov_deg) / 2.0)
        col = vw / 2.0 + x * focal - 0.5
        row = vh / 2.0 - y * focal - 0.5
        inside = (z > 0) & (col >= -0.5) & (col <= vw - 0.5) & (row >= -0.5) & (row <= vh - 0.5)
        take = inside & (z > best)
        if not take.any():
            continue
        map_x = np.where(take, col, -1).astype(np.float32)
        map_y = np.where(take, row, -1).astype(np.float32)
        sampled = cv2.remap(
            np.ascontiguousarray(view.image),
            map_x,
            map_y,
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[take] = sampled[take]
        best[take] = z[take]
    return out, np.isfinite(best)
