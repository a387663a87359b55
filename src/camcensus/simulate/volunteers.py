"""Simulated volunteers who tag a panorama as the platform's tagging page would send it.

A volunteer looks at the objects a panorama shows (the truth table of
:func:`~camcensus.simulate.scene.objects_in_view`), misses some cameras, clicks the others with
a small bearing and pitch error, labels their attachment and (on poles) their type with the
same error model as :class:`~camcensus.simulate.ErrorModel`, and now and then tags a look-alike
(a street lamp, a signal head, a cell box, a wall lamp) as a camera. The answer has exactly the
JSON fields of ``POST /api/tasks/{task_id}/submit`` (docs/platform.md).

The counts a submission implies (``n_cameras``, ``attached_*`` and, for street tags,
``type_*``) follow the semantics of the city simulation's per-volunteer counts: each visible
camera is missed with probability ``miss``; a seen camera keeps its attachment with
``p_attach_correct`` (else one of the other two, evenly); its type stays right with
``p_type_correct`` (else "unknown"), a camera labelled as on a pole without a type gets
"unknown"; Poisson(``false_positive_rate``) look-alikes are added with attachment street /
building / unknown in proportions 0.2 / 0.7 / 0.1 and type "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from camcensus.simulate import ErrorModel

__all__ = [
    "VOLUNTEER_KINDS",
    "VolunteerAnswer",
    "VolunteerModel",
    "draw_volunteer_models",
    "simulate_tags",
    "simulate_tags_with_sources",
]

_ATTACH = ("street", "building", "unknown")
_TYPES = ("dome", "bullet", "unknown")
_LOOKALIKES = ("lamp", "signal", "cell")
_FP_ATTACH_P = (0.2, 0.7, 0.1)
VOLUNTEER_KINDS = ("typical", "miss_prone", "over_counting")
"""Kinds of volunteer pools :func:`draw_volunteer_models` draws."""


@dataclass(frozen=True)
class VolunteerModel:
    """How one simulated volunteer tags.

    Parameters
    ----------
    miss
        Probability of missing each visible camera.
    bearing_sd_deg, pitch_sd_deg
        Standard deviations (degrees) of the click's heading and pitch errors.
    p_attach_correct, p_type_correct
        Probabilities of the right attachment and, for pole cameras, the right type.
    false_positive_rate
        Mean number of look-alikes tagged as cameras per panorama (Poisson).
    p_no_camera_claim
        Probability of answering "no camera here" without tagging (a hurried answer).
    fov_min_deg, fov_max_deg
        Range of the viewer's horizontal field of view at a click (the volunteer zooms in).
    """

    miss: float = 0.15
    bearing_sd_deg: float = 2.0
    pitch_sd_deg: float = 1.5
    p_attach_correct: float = 0.92
    p_type_correct: float = 0.8
    false_positive_rate: float = 0.04
    p_no_camera_claim: float = 0.0
    fov_min_deg: float = 30.0
    fov_max_deg: float = 75.0


class VolunteerAnswer(TypedDict):
    """A submission's body: ``no_camera`` and the tags (the submit route's JSON fields)."""

    no_camera: bool
    tags: list[dict[str, Any]]


def draw_volunteer_models(
    n: int, *, seed: int, kind: str = "typical", errors: ErrorModel | None = None
) -> list[VolunteerModel]:
    """Draw ``n`` volunteers' models; the same arguments give the same models.

    Parameters
    ----------
    n
        Number of volunteers.
    seed
        Seed of the draws.
    kind
        ``typical`` (miss probability from Beta with mean ``errors.miss_mean``, as
        :func:`~camcensus.simulate.simulate_city` draws it), ``miss_prone`` (mean miss 0.35,
        some hurried "no camera" answers) or ``over_counting`` (few misses, many look-alikes).
    errors
        The error model of a typical pool (default :class:`~camcensus.simulate.ErrorModel`).
    """
    if kind not in VOLUNTEER_KINDS:
        raise ValueError(f"volunteer kind {kind!r} is not one of {', '.join(VOLUNTEER_KINDS)}")
    if n < 0:
        raise ValueError(f"n = {n}: expected a number of volunteers >= 0")
    e = errors or ErrorModel()
    miss_mean, fp_rate, p_none = e.miss_mean, e.false_positive_rate, 0.0
    if kind == "miss_prone":
        miss_mean, fp_rate, p_none = 0.35, e.false_positive_rate / 2, 0.05
    elif kind == "over_counting":
        miss_mean, fp_rate = 0.08, 0.6
    rng = np.random.default_rng([seed, VOLUNTEER_KINDS.index(kind), 11])
    a = miss_mean * e.miss_concentration
    miss = rng.beta(a, e.miss_concentration - a, n)
    bearing = rng.uniform(1.0, 3.0, n)
    pitch = rng.uniform(0.7, 2.0, n)
    return [
        VolunteerModel(
            miss=float(miss[i]),
            bearing_sd_deg=float(bearing[i]),
            pitch_sd_deg=float(pitch[i]),
            p_attach_correct=e.p_attach_correct,
            p_type_correct=e.p_type_correct,
            false_positive_rate=fp_rate,
            p_no_camera_claim=p_none,
        )
        for i in range(n)
    ]


def _check_view(view: pd.DataFrame) -> None:
    need = ["object_id", "kind", "camera_type", "attachment", "heading_deg", "pitch_deg"]
    missing = [c for c in [*need, "visible"] if c not in view.columns]
    if missing:
        raise ValueError(
            f"the view truth lacks column(s) {', '.join(missing)}; expected the table of "
            "camcensus.simulate.scene.objects_in_view"
        )


def simulate_tags_with_sources(
    view_truth: pd.DataFrame, model: VolunteerModel, *, rng: np.random.Generator
) -> tuple[VolunteerAnswer, list[str]]:
    """Simulate one volunteer's submission and say which object each tag was aimed at.

    Returns the answer of :func:`simulate_tags` and, per tag in the same order, the
    ``object_id`` of the camera or look-alike the volunteer clicked.
    """
    _check_view(view_truth)
    if rng.random() < model.p_no_camera_claim:
        return VolunteerAnswer(no_camera=True, tags=[]), []
    visible = view_truth[view_truth["visible"].astype(bool)]
    cams = visible[visible["kind"] == "camera"].sort_values("object_id", kind="stable")
    true_att = np.array([_ATTACH.index(str(a)) for a in cams["attachment"]], dtype=int)
    true_type = np.array(
        [
            _TYPES.index(str(t)) if a == 0 else -1
            for a, t in zip(true_att, cams["camera_type"], strict=True)
        ],
        dtype=int,
    )
    seen = rng.random(len(cams)) >= model.miss
    att, typ = true_att[seen], true_type[seen]
    wrong = rng.random(len(att)) >= model.p_attach_correct
    att = np.where(wrong, (att + rng.integers(1, 3, len(att))) % 3, att)
    typ = np.where(rng.random(len(typ)) >= model.p_type_correct, 2, typ)
    targets = list(cams["object_id"].to_numpy()[seen])
    # Look-alikes tagged as cameras: the volunteer's attachment guess picks which one.
    n_fp = int(rng.poisson(model.false_positive_rate))
    looks = visible[visible["kind"].isin(_LOOKALIKES)].sort_values("object_id", kind="stable")
    fp_att = rng.choice(3, size=n_fp, p=_FP_ATTACH_P)
    for a in fp_att:
        pool = looks[looks["attachment"] == _ATTACH[a]] if a < 2 else looks
        pool = pool if len(pool) else looks
        if len(pool) == 0:
            continue
        targets.append(str(pool["object_id"].iloc[int(rng.integers(len(pool)))]))
        att = np.append(att, a)
        typ = np.append(typ, 2)
    # A camera labelled as on a pole always gets a type (unknown when it had none).
    typ = np.where((att == 0) & (typ < 0), 2, typ)
    by_id = view_truth.set_index("object_id")
    heading = by_id.loc[targets, "heading_deg"].to_numpy(float)
    pitch = by_id.loc[targets, "pitch_deg"].to_numpy(float)
    heading = (heading + rng.normal(0, model.bearing_sd_deg, len(targets))) % 360.0
    pitch = np.clip(pitch + rng.normal(0, model.pitch_sd_deg, len(targets)), -90.0, 90.0)
    fov = rng.uniform(model.fov_min_deg, model.fov_max_deg, len(targets))
    order = rng.permutation(len(targets))
    token = f"{int(rng.integers(2**32)):08x}"
    tags = [
        {
            "client_id": f"{token}-{k + 1}",
            "heading_deg": round(float(heading[i]), 3) % 360.0,
            "pitch_deg": round(float(pitch[i]), 3),
            "fov_deg": round(float(fov[i]), 1),
            "attachment": _ATTACH[int(att[i])],
            "camera_type": _TYPES[int(typ[i])] if att[i] == 0 else "unknown",
        }
        for k, i in enumerate(order)
    ]
    return VolunteerAnswer(no_camera=not tags, tags=tags), [targets[i] for i in order]


def simulate_tags(
    view_truth: pd.DataFrame, model: VolunteerModel, *, rng: np.random.Generator
) -> VolunteerAnswer:
    """Simulate what one volunteer submits for a panorama.

    Parameters
    ----------
    view_truth
        The panorama's truth table (:func:`~camcensus.simulate.scene.objects_in_view`, or a
        rendered panorama's ``truth``).
    model
        The volunteer's error model.
    rng
        The volunteer's random generator (seeded by the caller).

    Returns
    -------
    VolunteerAnswer
        ``{"no_camera": bool, "tags": [{client_id, heading_deg, pitch_deg, fov_deg,
        attachment, camera_type}, ...]}``: ``no_camera`` is true exactly when there is no tag.
        A tag's ``camera_type`` is ``unknown`` unless its attachment is ``street``.
    """
    answer, _sources = simulate_tags_with_sources(view_truth, model, rng=rng)
    return answer
