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
    "problem",
    "require",
]


@dataclass(frozen=True)
class Setting:
    """A named default with its help text and the values it may take.

    ``low``/``high`` bound a number (inclusive; ``low_open``: strictly above ``low``);
    ``choices`` lists the values a text setting may take.
    """

    name: str
    default: float | int | str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()

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
            low=0.0,
            high=10_000.0,
            low_open=True,
        ),
        Setting(
            "band_m",
            200.0,
            "Buffer (m) around each tract for the *_within_200m columns (Amnesty: 200 m).",
            low=0.0,
            high=10_000.0,
        ),
        Setting(
            "quad_segs",
            30,
            "Segments per quarter circle approximating discs and buffers (R's sf default: 30).",
            low=1,
            high=1_000,
        ),
        Setting(
            "decoders",
            3,
            "Decoders kept per panorama; fewer are dropped and counted.",
            low=1,
            high=100,
        ),
        Setting(
            "pick",
            "random",
            "Which decoders to keep when more than enough: 'random' (seeded) or 'first' "
            "(file order, as Amnesty's notebook).",
            choices=("random", "first"),
        ),
        Setting(
            "seed",
            0,
            "Seed for every random choice (decoder picking, simulation).",
            low=0,
            high=2**32 - 1,
        ),
        Setting(
            "snap_m",
            100.0,
            "A camera point outside every tract is given to the nearest tract within this "
            "distance (m) and counted; farther ones are excluded and counted.",
            low=0.0,
            high=100_000.0,
        ),
        Setting(
            "min_population",
            250,
            "Tracts with population at or below this are excluded from rates and models.",
            low=0,
            high=10**9,
        ),
        Setting(
            "max_cameras_per_panorama",
            1000,
            "A count above this at one panorama (per volunteer or median) is rejected as "
            "implausible, with its row.",
            low=1,
            high=10**6,
        ),
        Setting(
            "threshold",
            0.2,
            "Effective cameras per 1,000 residents above which a tract is 'highly surveilled' "
            "(Amnesty's code: 0.2; its text: 0.18).",
            low=0.0,
            high=1_000.0,
        ),
        Setting(
            "counts_position_sd_m",
            25.0,
            "Stated uncertainty (m) of a camera placed at its panorama point from per-panorama "
            "counts: cameras tagged at an intersection stand on its corners, within tens of m.",
            low=0.0,
            high=10_000.0,
        ),
        Setting("permutations", 999, "Permutations of Moran's I tests.", low=1, high=99_999),
        Setting(
            "locate_cluster_deg",
            6.0,
            "Angular distance (degrees) within which volunteers' rays in one panorama are "
            "clustered into one candidate camera.",
            low=0.0,
            high=90.0,
            low_open=True,
        ),
        Setting(
            "locate_min_support",
            2,
            "A candidate camera needs rays from at least this many different volunteers.",
            low=1,
            high=100,
        ),
        Setting(
            "locate_machine",
            "verify",
            "How the detector's machine tags count when cameras are located: 'verify' (only "
            "volunteers, or a machine tag volunteers confirmed in the verify task, settle a "
            "camera), 'decoder' (the detector is one more decoder beside at least one "
            "volunteer) or 'ignore'. A machine tag alone never settles a camera.",
            choices=("verify", "decoder", "ignore"),
        ),
        Setting(
            "walking_speed_m_s",
            1.4,
            "Walking speed (m/s) turning covered route length into seconds exposed.",
            low=0.0,
            high=10.0,
            low_open=True,
        ),
        Setting(
            "max_detour",
            0.25,
            "Least-watched routes may be at most this fraction longer than the shortest.",
            low=0.0,
            high=10.0,
        ),
        Setting(
            "face_width_px",
            24.0,
            "Pixels across a face that commercial face recognition needs (Amnesty cites 24).",
            low=0.0,
            high=10_000.0,
            low_open=True,
        ),
        Setting(
            "face_width_m",
            0.16,
            "Width (m) of a face for the face-recognition band (24 px / 0.16 m = 150 px/m).",
            low=0.0,
            high=1.0,
            low_open=True,
        ),
        Setting(
            "max_depression_deg",
            30.0,
            "Faces are not captured from steeper than this angle below the horizontal "
            "(degrees; 15-35 in the literature): the ground closer than height / tan(angle) "
            "is outside the face bands.",
            low=0.0,
            high=90.0,
            low_open=True,
        ),
        Setting(
            "stops_crs",
            "EPSG:2908",
            "CRS of stop-record coordinates (NYPD: EPSG:2908, NY Long Island state plane feet).",
        ),
    ]
}


class SettingError(ValueError):
    """Raised when a ``CAMCENSUS_*`` environment variable holds a value of the wrong kind."""


def problem(name: str, value: object) -> str | None:
    """Return what is wrong with ``value`` for setting ``name`` (``None`` when it is fine)."""
    setting = SETTINGS[name]
    if setting.choices:
        if value not in setting.choices:
            return f"not one of {', '.join(repr(c) for c in setting.choices)}"
        return None
    if isinstance(setting.default, int | float) and not isinstance(setting.default, bool):
        if not isinstance(value, int | float) or value != value:
            return "not a number"
        if value in (float("inf"), float("-inf")):
            return "not a finite number"
        lo, hi = setting.low, setting.high
        if lo is not None and (value <= lo if setting.low_open else value < lo):
            return f"{'at or below' if setting.low_open else 'below'} {lo:g}"
        if hi is not None and value > hi:
            return f"above {hi:g}"
    return None


def allowed(name: str) -> str:
    """Return the values setting ``name`` may take, in words."""
    setting = SETTINGS[name]
    if setting.choices:
        return "one of " + ", ".join(repr(c) for c in setting.choices)
    kind = "a whole number" if isinstance(setting.default, int) else "a number"
    lo, hi = setting.low, setting.high
    if lo is not None and hi is not None:
        return f"{kind} {'above' if setting.low_open else 'from'} {lo:g} to {hi:g}"
    return kind


def get(name: str) -> float | int | str:
    """Return the value of setting ``name``, from the environment if set there.

    Raises :class:`SettingError` naming the variable, its value and what it may be when the
    environment holds a value of the wrong kind or out of the setting's range.
    """
    setting = SETTINGS[name]
    raw = os.environ.get(setting.env)
    if raw is None:
        return setting.default
    default = setting.default
    value: float | int | str
    wrong: str | None
    try:
        if isinstance(default, int):
            value = int(raw.strip())
        elif isinstance(default, float):
            value = float(raw.strip())
        else:
            value = raw.strip()
        wrong = problem(name, value)
    except ValueError:
        value, wrong = raw, "not a number"
    if wrong:
        raise SettingError(
            f"environment variable {setting.env}={raw!r} is {wrong}; it must be "
            f"{allowed(name)} (default {default!r}: {setting.help}). Fix: set it to such a value "
            f"or unset it (unset {setting.env})."
        )
    return value


def require(name: str, value: object, option: str) -> None:
    """Raise :class:`~camcensus.OptionError` naming ``option`` when ``value`` is not allowed
    for setting ``name``."""
    wrong = problem(name, value)
    if wrong:
        from camcensus._errors import OptionError

        raise OptionError(f"{option} {value!r} is {wrong}; it must be {allowed(name)}.")


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
        rows = ["| name | default | allowed | environment | meaning |", "|---|---|---|---|---|"]
        rows += [
            f"| `{s.name}` | `{s.default}` | {allowed(s.name)} | `{s.env}` | {s.help} |"
            for s in SETTINGS.values()
        ]
        return "\n".join(rows)
    rows = ["| name | default | in effect | environment | meaning |", "|---|---|---|---|---|"]
    rows += [
        f"| `{s.name}` | `{s.default}` | `{get(s.name)}` | `{s.env}` | {s.help} |"
        for s in SETTINGS.values()
    ]
    return "\n".join(rows)
