"""Perspective crops of equirectangular panoramas, with the viewer's exact geometry.

The tagging page (Photo Sphere Viewer 5: a three.js perspective camera inside the sphere, no
roll) shows a rectilinear (gnomonic) view: a crop looking along ``(heading_deg, pitch_deg)``
with horizontal field of view ``fov_deg`` maps a ray to the image plane at focal length
``f = width / 2 / tan(fov_deg / 2)`` pixels. A tag's ``fov_deg`` is that horizontal field of
view at the click (docs/platform.md, "Rays"; src/camcensus/web/static/js/viewer.js).

Frames. World: x east, y north, z up; a ray ``(h, p)`` (true-north bearing, pitch up from the
horizon) is ``d = (cos p sin h, cos p cos h, sin p)``. A crop looking along ``(h0, p0)`` has
forward ``F = d(h0, p0)``, right ``R = (cos h0, -sin h0, 0)`` and up ``U = R × F``; a ray's
crop coordinates are ``x = W/2 + f (d·R)/(d·F)`` and ``y = H/2 - f (d·U)/(d·F)``.

Pixel coordinates of a crop are continuous image coordinates, as in COCO: ``(0, 0)`` is the
top-left corner of the top-left pixel, pixel column ``j`` spans ``[j, j + 1)`` and its centre is
``j + 0.5``; the crop's centre ``(W/2, H/2)`` looks along the crop's ray. The equirectangular
source follows the platform's convention (column ``u`` looks at ``yaw = (u + 0.5) / W * 360 -
180`` from the image centre column, whose bearing is ``panorama_heading_deg``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from camcensus._errors import OptionError

__all__ = [
    "CropView",
    "equirect_to_ray",
    "focal_px",
    "perspective_crop",
    "pixel_to_ray",
    "ray_to_equirect",
    "ray_to_pixel",
    "row_coverage",
    "tile_views",
]

Size = int | tuple[int, int]


@dataclass(frozen=True)
class CropView:
    """Where a crop looks: centre ray (true-north heading, pitch), horizontal fov, pixel size."""

    heading_deg: float
    pitch_deg: float
    fov_deg: float
    width: int = 640
    height: int = 640


def _wh(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        w = h = size
    else:
        w, h = (int(s) for s in size)
    if w < 1 or h < 1:
        raise OptionError(f"size={size!r}: expected a positive pixel size, e.g. 640 or (640, 480)")
    return w, h


def _check_fov(fov_deg: float) -> None:
    if not (isinstance(fov_deg, int | float) and 0 < fov_deg < 180):
        raise OptionError(f"fov_deg={fov_deg!r}: expected degrees in (0, 180), e.g. 60")


def focal_px(fov_deg: float, width: int) -> float:
    """Return the focal length (pixels) of a ``width``-pixel crop of horizontal fov ``fov_deg``."""
    _check_fov(fov_deg)
    return width / 2.0 / math.tan(math.radians(fov_deg) / 2.0)


def _frame(heading_deg: float, pitch_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h0, p0 = math.radians(heading_deg), math.radians(pitch_deg)
    fwd = np.array([math.cos(p0) * math.sin(h0), math.cos(p0) * math.cos(h0), math.sin(p0)])
    right = np.array([math.cos(h0), -math.sin(h0), 0.0])
    up = np.array([-math.sin(p0) * math.sin(h0), -math.sin(p0) * math.cos(h0), math.cos(p0)])
    return fwd, right, up


def ray_to_pixel(
    ray_heading_deg: np.ndarray | float,
    ray_pitch_deg: np.ndarray | float,
    *,
    heading_deg: float,
    pitch_deg: float,
    fov_deg: float,
    size: Size = 640,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the crop coordinates ``(x, y)`` of rays and whether each is in front of the crop.

    Parameters
    ----------
    ray_heading_deg, ray_pitch_deg
        The rays (true-north bearing, pitch up from the horizon), degrees, broadcastable.
    heading_deg, pitch_deg, fov_deg, size
        The crop (as :func:`perspective_crop`).

    Returns
    -------
    tuple
        ``x``, ``y`` (continuous crop coordinates; NaN for rays behind the crop) and
        ``in_front`` (bool). A ray in front may still fall outside ``[0, W] × [0, H]``.
    """
    w, h = _wh(size)
    f = focal_px(fov_deg, w)
    fwd, right, up = _frame(heading_deg, pitch_deg)
    rh = np.radians(np.asarray(ray_heading_deg, dtype=float))
    rp = np.radians(np.asarray(ray_pitch_deg, dtype=float))
    rh, rp = np.broadcast_arrays(rh, rp)
    d = np.stack([np.cos(rp) * np.sin(rh), np.cos(rp) * np.cos(rh), np.sin(rp)], axis=-1)
    z = d @ fwd
    front = z > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(front, w / 2.0 + f * (d @ right) / z, np.nan)
        y = np.where(front, h / 2.0 - f * (d @ up) / z, np.nan)
    return x, y, front


def pixel_to_ray(
    x: np.ndarray | float,
    y: np.ndarray | float,
    *,
    heading_deg: float,
    pitch_deg: float,
    fov_deg: float,
    size: Size = 640,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rays ``(heading_deg in [0, 360), pitch_deg)`` through crop coordinates.

    The exact inverse of :func:`ray_to_pixel` for rays in front of the crop.
    """
    w, h = _wh(size)
    f = focal_px(fov_deg, w)
    fwd, right, up = _frame(heading_deg, pitch_deg)
    a = (np.asarray(x, dtype=float) - w / 2.0) / f
    b = (h / 2.0 - np.asarray(y, dtype=float)) / f
    a, b = np.broadcast_arrays(a, b)
    d = fwd + a[..., None] * right + b[..., None] * up
    heading = np.degrees(np.arctan2(d[..., 0], d[..., 1])) % 360.0
    pitch = np.degrees(np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1])))
    return heading, pitch


def ray_to_equirect(
    ray_heading_deg: np.ndarray | float,
    ray_pitch_deg: np.ndarray | float,
    *,
    panorama_heading_deg: float,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the fractional equirectangular pixel ``(u, v)`` (integer = pixel centre) of rays.

    The platform's Rays formula inverted: :func:`camcensus.simulate.render.ray_to_pixel` (one
    implementation for the renderer and the crops); ``u`` is in ``[-0.5, W - 0.5)``.
    """
    from camcensus.simulate.render import ray_to_pixel as _ray_to_pixel

    return _ray_to_pixel(
        ray_heading_deg,
        ray_pitch_deg,
        image_heading_deg=panorama_heading_deg,
        width=width,
        height=height,
    )


def equirect_to_ray(
    u: np.ndarray | float,
    v: np.ndarray | float,
    *,
    panorama_heading_deg: float,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(heading_deg, pitch_deg)`` of fractional equirectangular pixels (Rays formula).

    :func:`camcensus.simulate.render.pixel_to_ray` (the renderer's).
    """
    from camcensus.simulate.render import pixel_to_ray as _pixel_to_ray

    return _pixel_to_ray(u, v, image_heading_deg=panorama_heading_deg, width=width, height=height)


def perspective_crop(
    equirect: np.ndarray,
    *,
    heading_deg: float,
    pitch_deg: float,
    fov_deg: float,
    size: Size = 640,
    panorama_heading_deg: float = 0.0,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """Cut the rectilinear view the tagging page shows out of an equirectangular panorama.

    Parameters
    ----------
    equirect
        ``H × W`` or ``H × W × C`` image (any numeric dtype), 2:1 equirectangular.
    heading_deg, pitch_deg
        The crop's centre ray: true-north bearing and pitch up from the horizon (degrees).
    fov_deg
        Horizontal field of view (degrees); the vertical one follows from the aspect.
    size
        Crop size in pixels: ``640`` or ``(width, height)``.
    panorama_heading_deg
        True-north bearing of the panorama's centre column (``panoramas.heading_deg``).
    interpolation
        ``"bilinear"`` (default; columns wrap across the 0/360 seam, rows are clamped at the
        poles) or ``"nearest"`` (the source pixel nearest each crop pixel's centre ray).

    Returns
    -------
    numpy.ndarray
        ``height × width`` (× C) image of the input's dtype (integers rounded and clipped).
    """
    if equirect.ndim not in (2, 3):
        raise OptionError(f"equirect has shape {equirect.shape}; expected H × W or H × W × C")
    if interpolation not in ("bilinear", "nearest"):
        raise OptionError(f"interpolation={interpolation!r}: expected 'bilinear' or 'nearest'")
    w, h = _wh(size)
    src_h, src_w = equirect.shape[:2]
    xs = np.arange(w) + 0.5
    ys = np.arange(h) + 0.5
    ray_h, ray_p = pixel_to_ray(
        xs[None, :], ys[:, None], heading_deg=heading_deg, pitch_deg=pitch_deg, fov_deg=fov_deg,
        size=(w, h),
    )  # fmt: skip
    u, v = ray_to_equirect(
        ray_h, ray_p, panorama_heading_deg=panorama_heading_deg, width=src_w, height=src_h
    )
    v = np.clip(v, 0.0, src_h - 1.0)
    if interpolation == "nearest":
        col = np.mod(np.floor(u + 0.5).astype(np.int64), src_w)
        row = np.minimum(np.floor(v + 0.5).astype(np.int64), src_h - 1)
        out: np.ndarray = equirect[row, col]
        return out
    u0 = np.floor(u)
    v0 = np.floor(v)
    au = (u - u0)[..., None] if equirect.ndim == 3 else u - u0
    av = (v - v0)[..., None] if equirect.ndim == 3 else v - v0
    c0 = np.mod(u0.astype(np.int64), src_w)
    c1 = np.mod(c0 + 1, src_w)
    r0 = v0.astype(np.int64)
    r1 = np.minimum(r0 + 1, src_h - 1)
    img = equirect.astype(np.float32, copy=False)
    top = img[r0, c0] * (1 - au) + img[r0, c1] * au
    bottom = img[r1, c0] * (1 - au) + img[r1, c1] * au
    mixed: np.ndarray = top * (1 - av) + bottom * av
    if np.issubdtype(equirect.dtype, np.integer):
        info = np.iinfo(equirect.dtype)
        mixed = np.clip(np.rint(mixed), info.min, info.max)
    result: np.ndarray = mixed.astype(equirect.dtype)
    return result


# --------------------------------------------------------------------------- tiling


def _covered(p0: float, n: int, tx: float, ty: float) -> tuple[float, float]:
    """Pitch interval (degrees) that a row of ``n`` crops at pitch ``p0`` covers at every heading.

    A ray at heading offset ``δ`` from a crop's centre and pitch ``p`` is inside the crop (with
    the margins folded into ``tx = (W/2 - m)/f``, ``ty = (H/2 - m)/f``) iff
    ``atan(cos δ tan(p0 - a)) <= p <= atan(cos δ tan(p0 + a))`` with ``a = atan(ty)`` (the top and
    bottom edges are great circles) and ``sin δ <= tx (cos p0 cos δ + tan p sin p0)`` (the side
    edges). Each bound is monotone in ``δ``, so the worst case over ``δ in [0, 180/n]`` (any ray
    is within half a spacing of a crop's centre) is at one end.
    """
    a = math.atan(ty)
    pr = math.radians(p0)
    lows: list[float] = []
    highs: list[float] = []
    for delta in (0.0, math.pi / n):
        cd, sd = math.cos(delta), math.sin(delta)
        lo = -math.pi / 2 if pr - a <= -math.pi / 2 else math.atan(cd * math.tan(pr - a))
        hi = math.pi / 2 if pr + a >= math.pi / 2 else math.atan(cd * math.tan(pr + a))
        side = sd - tx * math.cos(pr) * cd
        if abs(pr) < 1e-12:
            if side > 0:
                return (math.nan, math.nan)
        elif pr > 0:
            lo = max(lo, math.atan(side / (tx * math.sin(pr))))
        else:
            hi = min(hi, math.atan(side / (tx * math.sin(pr))))
        lows.append(lo)
        highs.append(hi)
    low, high = max(lows), min(highs)
    if low > high:
        return (math.nan, math.nan)
    return (math.degrees(low), math.degrees(high))


def row_coverage(
    pitch_deg: float, n: int, *, fov_deg: float, size: Size = 640, margin_px: float = 0.0
) -> tuple[float, float]:
    """Return the pitch band ``(low, high)`` (degrees) that a row of crops covers everywhere.

    The row is ``n`` crops at pitch ``pitch_deg`` spaced ``360 / n`` degrees apart in heading;
    a ray in the band lands inside some crop at least ``margin_px`` from its edges. ``(nan,
    nan)`` when the crops are too far apart to cover any whole band.
    """
    w, h = _wh(size)
    f = focal_px(fov_deg, w)
    tx, ty = (w / 2 - margin_px) / f, (h / 2 - margin_px) / f
    if tx <= 0 or ty <= 0:
        raise OptionError(f"margin_px={margin_px!r} leaves no crop; expected < half the size")
    return _covered(float(pitch_deg), int(n), tx, ty)


def tile_views(
    *,
    fov_deg: float = 60.0,
    size: Size = 640,
    pitch_min_deg: float = -15.0,
    pitch_max_deg: float = 60.0,
    margin_px: float = 16.0,
    heading_offset_deg: float = 0.0,
) -> list[CropView]:
    """Return overlapping crops that cover every ray of a pitch band, ``margin_px`` inside one.

    Rows of crops from the band's bottom up: each row's pitch is the highest whose covered band
    (:func:`row_coverage`) still reaches the previous row's top, and its crop count is the
    fewest crops per degree of band covered (or the fewest that reach the band's top). A camera
    whose box is at most ``2 * margin_px`` across is therefore whole in at least one crop.

    Parameters
    ----------
    fov_deg, size
        The crops' horizontal field of view and pixel size.
    pitch_min_deg, pitch_max_deg
        The band to cover (default -15° to 60°: the cameras of the synthetic city lie between
        0° and 50°; docs/detect.md).
    margin_px
        Required distance of every ray of the band from the edges of one crop.
    heading_offset_deg
        Heading of the first crop of every row.
    """
    if not -90 <= pitch_min_deg < pitch_max_deg <= 90:
        raise OptionError(
            f"pitch band [{pitch_min_deg}, {pitch_max_deg}]: expected -90 <= min < max <= 90"
        )
    w, h = _wh(size)
    f = focal_px(fov_deg, w)
    tx, ty = (w / 2 - margin_px) / f, (h / 2 - margin_px) / f
    if tx <= 0 or ty <= 0:
        raise OptionError(f"margin_px={margin_px!r} leaves no crop; expected < half the size")
    half_v = math.degrees(math.atan(ty))
    n_min = max(2, math.ceil(180.0 / math.degrees(math.atan(tx))))
    views: list[CropView] = []
    lo = pitch_min_deg
    for _row in range(200):
        best: tuple[float, int, float, float] | None = None  # (score, n, p0, hi)
        for n in range(n_min, 721):
            # Highest centre pitch whose covered band still starts at or below lo.
            a, b = lo - 2 * half_v, min(90.0, lo + half_v)
            if not _covered(a, n, tx, ty)[0] <= lo:
                continue
            for _ in range(60):
                mid = (a + b) / 2
                low = _covered(mid, n, tx, ty)[0]
                if low <= lo:  # NaN compares False: too few crops for this pitch
                    a = mid
                else:
                    b = mid
            hi = _covered(a, n, tx, ty)[1]
            if not hi > lo + 1e-6:
                continue
            if hi >= pitch_max_deg:
                best = (-1.0, n, a, hi)
                break
            score = n / (hi - lo)
            if best is None or score < best[0]:
                best = (score, n, a, hi)
        if best is None:
            raise OptionError(
                f"no row of crops of fov {fov_deg}° covers pitch {lo:.1f}° with a "
                f"{margin_px} px margin; use a wider fov or a smaller margin"
            )
        _score, n, p0, hi = best
        views.extend(
            CropView((heading_offset_deg + k * 360.0 / n) % 360.0, p0, fov_deg, w, h)
            for k in range(n)
        )
        if hi >= pitch_max_deg:
            return views
        lo = hi
    raise OptionError("the tiling did not close in 200 rows; use a wider fov")
