"""Request and response models of the JSON API (they make the OpenAPI schema complete).

Every bound here is a first line of defence: lengths are capped so no field can carry a
megabyte, floats refuse NaN and infinity, and datetimes must carry a time zone. The library
functions check the meaning (a pseudonym's characters, a project's name) and answer in the one
error shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AdminProjectIn",
    "CommentIn",
    "CommentOut",
    "CsrfOut",
    "ErrorItem",
    "ErrorOut",
    "Feature",
    "FeatureCollection",
    "GoldIn",
    "GoldTag",
    "InvitationIn",
    "InvitationOut",
    "LoginIn",
    "MeOut",
    "OkOut",
    "PanoramaOut",
    "PointGeometry",
    "ProblemIn",
    "ProjectOut",
    "ReviewQueueIn",
    "ReviewQueueOut",
    "SignupIn",
    "SubmissionOut",
    "SubmitIn",
    "SubmitOut",
    "TagIn",
    "TagOut",
    "TaskOut",
    "TaskRequest",
    "TutorialCheckIn",
    "TutorialCheckOut",
    "TutorialOut",
    "TutorialTagFeedback",
    "ValidationIn",
    "ValidationTaskOut",
    "error_payload",
]

Attachment = Literal["street", "building", "unknown"]
CameraType = Literal["dome", "bullet", "unknown"]
Role = Literal["volunteer", "expert", "admin"]
Problem = Literal["no_image", "wrong_place", "indoor", "other"]
Heading = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False)]
Pitch = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Fov = Annotated[float, Field(gt=0.0, le=180.0, allow_inf_nan=False)]
ShortId = Annotated[str, Field(min_length=1, max_length=128)]
Coordinate = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]


class _In(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


def check_bbox(bbox: list[float] | None) -> list[float] | None:
    """Check a ``[west, south, east, north]`` box in WGS84 degrees; raise ValueError if not."""
    if bbox is None:
        return None
    if len(bbox) != 4:
        raise ValueError(f"bbox has {len(bbox)} numbers; expected 4: west, south, east, north")
    w, s, e, n = bbox
    if not (-180 <= w <= 180 and -180 <= e <= 180):
        raise ValueError("bbox west and east must be longitudes in [-180, 180]")
    if not (-90 <= s <= 90 and -90 <= n <= 90):
        raise ValueError("bbox south and north must be latitudes in [-90, 90]")
    if w > e or s > n:
        raise ValueError("bbox must be west <= east and south <= north (WGS84 degrees)")
    return bbox


class ErrorItem(BaseModel):
    """One problem: the field it is in and what is wrong with it."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """The one error shape of every non-2xx JSON answer (STYLE.md 11)."""

    ok: Literal[False] = False
    error: str
    errors: list[ErrorItem]
    status: int


def error_payload(
    status: int, error: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """Return the one error shape as a plain dict."""
    return {"ok": False, "error": error, "errors": list(errors or []), "status": status}


class OkOut(BaseModel):
    """A plain acknowledgement."""

    ok: Literal[True] = True


class CsrfOut(BaseModel):
    """The CSRF token; the same value is in the ``camcensus_csrf`` cookie."""

    csrf_token: str


class SignupIn(_In):
    """Sign-up: a pseudonym (never an e-mail address) and a password of 10 or more characters."""

    pseudonym: str = Field(max_length=200)
    password: str = Field(max_length=1024)
    invitation: str | None = Field(default=None, max_length=200)


class LoginIn(_In):
    """Log-in."""

    pseudonym: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class MeOut(BaseModel):
    """The logged-in volunteer."""

    pseudonym: str
    public_id: str
    role: Role
    tasks_done: int
    tutorial_done: bool


class TagIn(_In):
    """One version of one tag: a ray from the panorama's camera as the volunteer clicked it."""

    client_id: ShortId
    heading_deg: Heading
    pitch_deg: Pitch
    fov_deg: Fov
    attachment: Attachment
    camera_type: CameraType
    replaces: ShortId | None = None
    deleted: bool = False
    clicked_at: AwareDatetime | None = None


class SubmitIn(_In):
    """A submitted task; with no current tag it must say ``no_camera: true``."""

    no_camera: bool
    tags: list[TagIn] = Field(default_factory=list, max_length=500)
    client_build: str | None = Field(default=None, max_length=100)
    started_at: AwareDatetime | None = None


class SubmitOut(BaseModel):
    """An acknowledged (committed) submission; ``feedback`` only for gold tasks."""

    ok: Literal[True] = True
    submission_id: str
    feedback: dict[str, Any] | None = None


class ProblemIn(_In):
    """Report a problem with a task's panorama."""

    problem: Problem
    note: str | None = Field(default=None, max_length=500)


class TaskRequest(_In):
    """Ask for the next task, optionally inside ``bbox = [west, south, east, north]``."""

    bbox: list[Coordinate] | None = Field(default=None, min_length=4, max_length=4)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: list[float] | None) -> list[float] | None:
        return check_bbox(v)


class PanoramaOut(BaseModel):
    """The panorama of a task, as the viewer needs it."""

    panorama_id: str
    image_url: str
    heading_deg: float
    width_px: int | None
    height_px: int | None
    captured: str | None
    licence: str | None


class TaskOut(BaseModel):
    """A task: one panorama to tag (or review) before ``expires_at``."""

    task_id: str
    kind: str
    expires_at: datetime | None
    tip: str | None
    panorama: PanoramaOut


class TagOut(BaseModel):
    """A stored tag (one ray)."""

    tag_id: str
    heading_deg: float
    pitch_deg: float
    fov_deg: float | None
    attachment: str
    camera_type: str


class ValidationTaskOut(BaseModel):
    """Another volunteer's tag to agree or disagree with."""

    validation_task: str
    panorama: PanoramaOut
    tag: TagOut


class ValidationIn(_In):
    """An answer to a validation task."""

    tag_id: ShortId
    answer: Literal["agree", "disagree", "unsure"]


class ProjectOut(BaseModel):
    """A project and its progress numbers."""

    name: str
    title: str | None = None
    k: int | None = None
    status: str | None = None
    panoramas: int
    done: int
    problem: int = 0
    in_progress: int
    todo: int
    submissions: int
    problems: int
    volunteers: int


class CommentIn(_In):
    """A comment in a panorama's discussion (stored as typed, shown only as text)."""

    body: str = Field(min_length=1, max_length=2000)


class CommentOut(BaseModel):
    """A stored comment."""

    comment_id: str
    panorama_id: str
    pseudonym: str
    body: str
    created_at: datetime


class InvitationIn(_In):
    """An admin's invitation for a new account of ``role``."""

    role: Role = "expert"
    project: str | None = Field(default=None, max_length=64)


class InvitationOut(BaseModel):
    """The invitation token (shown once: only its hash is stored) and the sign-up link."""

    token: str
    signup_url: str
    role: Role


class GoldTag(_In):
    """One true camera of a gold panorama."""

    heading_deg: Heading
    pitch_deg: Pitch
    attachment: Attachment
    camera_type: CameraType


class GoldIn(_In):
    """The known answer of a gold panorama (an empty list: no camera)."""

    answer: list[GoldTag] = Field(max_length=200)


class ReviewQueueIn(_In):
    """Panoramas to put in the expert review queue, each for ``experts`` independent answers.

    Three experts per panorama, as Amnesty's review (methodology 1.4.2); where they disagree
    a meta-expert gives the reference.
    """

    panorama_ids: list[ShortId] = Field(min_length=1, max_length=10_000)
    experts: int = Field(default=3, ge=1, le=20)


class ReviewQueueOut(BaseModel):
    """How many reviews were queued."""

    ok: Literal[True] = True
    queued: int


class AdminProjectIn(_In):
    """A new project from an imagery source on the server.

    ``source = "folder"`` reads ``folder`` (a path on the server, equirectangular images plus a
    CSV or GeoJSON index); ``source = "panoramax"`` imports the pictures in ``bbox`` from the
    Panoramax instance at ``panoramax_url``. ``intersections_csv`` (a path on the server) or
    ``area_geojson`` (a polygon) says where the intersections are.
    """

    name: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    source: Literal["folder", "panoramax"]
    folder: str | None = Field(default=None, max_length=1000)
    panoramax_url: str | None = Field(
        default=None, max_length=1000, pattern=r"^https?://[A-Za-z0-9.\[\]:_-]+(/[!-~]*)?$"
    )
    bbox: list[Coordinate] | None = Field(default=None, min_length=4, max_length=4)
    intersections_csv: str | None = Field(default=None, max_length=1000)
    area_geojson: dict[str, Any] | None = None
    k: int | None = Field(default=None, ge=1, le=20)
    licence: str | None = Field(default=None, max_length=200)
    task_timeout_s: int = Field(default=900, ge=60, le=86_400)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v: list[float] | None) -> list[float] | None:
        return check_bbox(v)


class TutorialCheckIn(_In):
    """The tags placed on the tutorial panorama."""

    tags: list[TagIn] = Field(default_factory=list, max_length=100)


class TutorialTagFeedback(BaseModel):
    """Feedback on one tutorial tag."""

    client_id: str
    correct: bool
    message: str
    nearest_deg: float | None


class TutorialCheckOut(BaseModel):
    """Feedback on the tutorial tags: each tag, and the cameras not found yet."""

    tags: list[TutorialTagFeedback]
    found: int
    missed: int
    cameras: int
    passed: bool


class TutorialOut(BaseModel):
    """The tutorial panorama."""

    panorama: PanoramaOut
    cameras: int
    tips: list[str]


class SubmissionOut(BaseModel):
    """One public submission (``decoder_id`` is the volunteer's random public id)."""

    submission_id: str
    panorama_id: str
    project: str
    decoder_id: str
    kind: str
    submitted_at: datetime | None
    no_camera: bool
    problem: str | None
    gold: bool
    n_tags: int


class PointGeometry(BaseModel):
    """A GeoJSON Point in WGS84 (lon, lat)."""

    type: Literal["Point"] = "Point"
    coordinates: list[float]


class Feature(BaseModel):
    """A GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
