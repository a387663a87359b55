"""One table of settings feeding the library defaults, the CLI, the environment and the docs.

Each setting can be overridden by the environment variable ``CAMCENSUS_<NAME>`` (upper case).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "SETTINGS",
    "Setting",
    "SettingError",
    "get",
    "get_float",
    "get_int",
    "get_str",
    "markdown_table",
]


@dataclass(frozen=True)
class Setting:
    """A named default with its help text."""

    name: str
    default: float | int | str
    help: str

    @property
    def env(self) -> str:
        """Return the environment variable that overrides this setting."""
        return "CAMCENSUS_" + self.name.upper()


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "camera_radius_m",
            120.0,
            "Radius (m) of the disc drawn around each public intersection; Amnesty used 120 m.",
        ),
        Setting(
            "band_m",
            200.0,
            "Buffer (m) around each tract for the *_within_200m columns (Amnesty: 200 m).",
        ),
        Setting(
            "quad_segs",
            30,
            "Segments per quarter circle approximating discs and buffers (R's sf default: 30).",
        ),
        Setting("decoders", 3, "Decoders kept per panorama; fewer are dropped and counted."),
        Setting(
            "pick",
            "random",
            "Which decoders to keep when more than enough: 'random' (seeded) or 'first' "
            "(file order, as Amnesty's notebook).",
        ),
        Setting("seed", 0, "Seed for every random choice (decoder picking, simulation)."),
        Setting(
            "snap_m",
            100.0,
            "A camera point outside every tract is given to the nearest tract within this "
            "distance (m) and counted; farther ones are excluded and counted.",
        ),
        Setting(
            "min_population",
            250,
            "Tracts with population at or below this are excluded from rates and models.",
        ),
        Setting(
            "max_cameras_per_panorama",
            1000,
            "A count above this at one panorama (per volunteer or median) is rejected as "
            "implausible, with its row.",
        ),
        Setting(
            "threshold",
            0.2,
            "Effective cameras per 1,000 residents above which a tract is 'highly surveilled' "
            "(Amnesty's code: 0.2; its text: 0.18).",
        ),
        Setting(
            "counts_position_sd_m",
            25.0,
            "Stated uncertainty (m) of a camera placed at its panorama point from per-panorama "
            "counts: cameras tagged at an intersection stand on its corners, within tens of m.",
        ),
        Setting("permutations", 999, "Permutations of Moran's I tests."),
        Setting(
            "stops_crs",
            "EPSG:2908",
            "CRS of stop-record coordinates (NYPD: EPSG:2908, NY Long Island state plane feet).",
        ),
    ]
}


class SettingError(ValueError):
    """Raised when a ``CAMCENSUS_*`` environment variable holds a value of the wrong kind."""


def get(name: str) -> float | int | str:
    """Return the value of setting ``name``, from the environment if set there.

    Raises :class:`SettingError` naming the variable, its value and the kind expected when
    the environment holds something that is not a number where a number is expected.
    """
    setting = SETTINGS[name]
    raw = os.environ.get(setting.env)
    if raw is None:
        return setting.default
    default = setting.default
    try:
        if isinstance(default, int):
            return int(raw.strip())
        if isinstance(default, float):
            value = float(raw.strip())
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
    except ValueError:
        kind = "a whole number" if isinstance(default, int) else "a finite number"
        raise SettingError(
            f"environment variable {setting.env}={raw!r} is not {kind} (default "
            f"{default!r}: {setting.help}). Fix: set it to {kind} or unset it "
            f"(unset {setting.env})."
        ) from None
    return raw


def get_float(name: str) -> float:
    """Return setting ``name`` as a float."""
    return float(get(name))


def get_int(name: str) -> int:
    """Return setting ``name`` as an int."""
    return int(get(name))


def get_str(name: str) -> str:
    """Return setting ``name`` as text."""
    return str(get(name))


def markdown_table(*, current: bool = False) -> str:
    """Return the settings as a Markdown table (for the docs); with ``current``, add the value
    in effect now (from the environment, else the default)."""
    if not current:
        rows = ["| name | default | environment | meaning |", "|---|---|---|---|"]
        rows += [
            f"| `{s.name}` | `{s.default}` | `{s.env}` | {s.help} |" for s in SETTINGS.values()
        ]
        return "\n".join(rows)
    rows = ["| name | default | in effect | environment | meaning |", "|---|---|---|---|---|"]
    rows += [
        f"| `{s.name}` | `{s.default}` | `{get(s.name)}` | `{s.env}` | {s.help} |"
        for s in SETTINGS.values()
    ]
    return "\n".join(rows)
