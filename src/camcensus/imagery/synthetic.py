"""Synthetic panoramas: ``synthetic:<seed>:<panorama_id>`` uris rendered by camcensus.simulate.

A synthetic panorama is not stored when a project is created: its uri names the seeded city and
the panorama, and :class:`~camcensus.imagery.store.ImageStore` renders it on first request
(:func:`render_jpeg`) and keeps the JPEG, so every volunteer sees the same pixels. The city of a
seed is the one :func:`register_city` was given in this process, else
``simulate_city(seed)`` (the demo's city), else the demo's small gold city
``simulate_city(seed, nx=4, ny=4)``.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from camcensus.simulate import SyntheticCity

__all__ = [
    "panoramas_from_synthetic",
    "parse_synthetic_uri",
    "register_city",
    "render_jpeg",
    "synthetic_uri",
]

_URI = re.compile(r"^synthetic:(-?\d{1,18}):([A-Za-z0-9_.-]{1,128})$")
_WIDTH, _HEIGHT = 4096, 2048
_LICENCE = "synthetic (no restriction)"
_cities: dict[tuple[int, int, int], SyntheticCity] = {}
_registered: dict[int, list[SyntheticCity]] = {}
_cities_lock = threading.Lock()


def synthetic_uri(seed: int, panorama_id: str) -> str:
    """Return the uri of a synthetic panorama: ``synthetic:<seed>:<panorama_id>``.

    Raises
    ------
    ValueError
        When the seed is not an integer or the id has characters other than letters, digits,
        ``_``, ``.`` and ``-`` (1–128 of them).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    uri = f"synthetic:{seed}:{panorama_id}"
    if _URI.match(uri) is None:
        raise ValueError(
            f"panorama id {panorama_id!r} cannot go into a synthetic uri: expected 1-128 "
            "letters, digits, '_', '.' or '-'"
        )
    return uri


def parse_synthetic_uri(uri: str) -> tuple[int, str]:
    """Return ``(seed, panorama_id)`` of a ``synthetic:`` uri, or raise ``ValueError``."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    if m is None:
        raise ValueError(
            f"{str(uri)[:80]!r} is not 'synthetic:<integer seed>:<panorama id of letters, "
            "digits, _ . ->'"
        )
    return int(m.group(1)), m.group(2)


def register_city(seed: int, city: SyntheticCity) -> None:
    """Make ``city`` the first place :func:`render_jpeg` looks for panoramas of ``seed``."""
    with _cities_lock:
        _registered.setdefault(int(seed), []).insert(0, city)


def _city(seed: int, nx: int, ny: int) -> SyntheticCity:
    from camcensus.simulate import simulate_city

    key = (seed, nx, ny)
    with _cities_lock:
        city = _cities.get(key)
        if city is None:
            city = simulate_city(seed, nx=nx, ny=ny)
            _cities[key] = city
    return city


def _has_panorama(city: SyntheticCity, panorama_id: str) -> bool:
    return bool((city.panoramas["PanoramaId"].astype(str) == panorama_id).any())


def city_of(seed: int, panorama_id: str) -> SyntheticCity:
    """Return the synthetic city of ``seed`` that holds ``panorama_id``.

    Raises
    ------
    KeyError
        When neither a registered city nor the demo's cities of ``seed`` hold it.
    """
    with _cities_lock:
        candidates = list(_registered.get(seed, []))
    for city in candidates:
        if _has_panorama(city, panorama_id):
            return city
    for nx, ny in ((40, 40), (4, 4)):
        city = _city(seed, nx, ny)
        if _has_panorama(city, panorama_id):
            return city
    raise KeyError(
        f"panorama {panorama_id!r} is in no synthetic city of seed {seed} (looked in the "
        "registered cities, simulate_city(seed) and simulate_city(seed, nx=4, ny=4)); call "
        "camcensus.imagery.synthetic.register_city(seed, city) with the city it came from"
    )


def render_jpeg(
    seed: int, panorama_id: str, *, width: int = _WIDTH, height: int = _HEIGHT, quality: int = 90
) -> bytes:
    """Render the synthetic panorama ``panorama_id`` of the city of ``seed`` as a JPEG."""
    from camcensus.simulate.render import render_panorama, to_jpeg
    from camcensus.simulate.scene import panorama_scene

    scene = panorama_scene(city_of(seed, panorama_id), panorama_id, seed=seed)
    rendered = render_panorama(scene, width=width, height=height)
    return bytes(to_jpeg(rendered.image, quality=quality))


def panoramas_from_synthetic(
    city: SyntheticCity, *, seed: int, width: int = _WIDTH, height: int = _HEIGHT
) -> pd.DataFrame:
    """Return the ``panoramas`` rows of a synthetic city; images render on first request.

    ``panorama_id`` is the city's ``PanoramaId`` (the truth is keyed by it), the heading is
    :func:`camcensus.simulate.scene.panorama_headings` (what the renderer uses) and the city
    is registered for :func:`render_jpeg`.
    """
    from camcensus.imagery.base import panoramas_frame
    from camcensus.simulate.scene import panorama_headings

    register_city(seed, city)
    headings = panorama_headings(city, seed=seed)
    p = city.panoramas
    rows = [
        {
            "panorama_id": str(pid),
            "lon": float(lon),
            "lat": float(lat),
            "heading_deg": float(headings.loc[str(pid)]),
            "captured": None,
            "source": "synthetic",
            "source_ref": str(pid),
            "image_uri": synthetic_uri(seed, str(pid)),
            "width_px": width,
            "height_px": height,
            "licence": _LICENCE,
            "republishable": True,
            "intersection_id": None,
        }
        for pid, lon, lat in zip(p["PanoramaId"], p["GoogleLong"], p["GoogleLat"], strict=True)
    ]
    return panoramas_frame(rows)
