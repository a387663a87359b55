"""Verify tasks: volunteers confirm or reject the detector's machine tags (docs/platform.md,
"Verify tasks").

``POST /api/projects/{name}/verifications`` gives the next machine tag to judge (its panorama
and its ray, never the detector's score: the verdict must not lean on the machine's confidence;
204 when nothing is left) and ``POST /api/verifications/{tag_id}``
records the verdict. Both are thin: one call of :mod:`camcensus.db.verify` each, with the
conventions of the validation routes (log-in, CSRF by the middleware, the ``write`` rate limit,
the one error shape).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict

from camcensus.web.api_auth import ERRORS
from camcensus.web.api_projects import ProjectName, panorama_out
from camcensus.web.schemas import PanoramaOut
from camcensus.web.security import CurrentVolunteer, DbSession, ReadSession, rate_limit

__all__ = ["MachineTagOut", "VerificationIn", "VerificationOut", "VerifyTaskOut", "router"]

router = APIRouter(prefix="/api", tags=["verify"], responses=ERRORS)

TagId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="A tag's id"),
]
_NOTHING: dict[int | str, dict[str, Any]] = {
    204: {"description": "No machine tag is waiting for this volunteer"}
}


class MachineTagOut(BaseModel):
    """A machine tag: the detector's ray and predicted type (not its score)."""

    tag_id: str
    heading_deg: float
    pitch_deg: float
    fov_deg: float | None
    attachment: str
    camera_type: str


class VerifyTaskOut(BaseModel):
    """One machine tag to judge on its panorama."""

    tag_id: str
    panorama: PanoramaOut
    tag: MachineTagOut


class VerificationIn(BaseModel):
    """A verdict on a machine tag: ``agree`` (a camera), ``disagree`` (not a camera) or
    ``unsure``."""

    model_config = ConfigDict(extra="forbid")

    answer: Literal["agree", "disagree", "unsure"]


class VerificationOut(BaseModel):
    """The stored verdict (the same answer sent again returns it unchanged)."""

    ok: Literal[True] = True
    tag_id: str
    answer: str


@router.post(
    "/projects/{name}/verifications",
    response_model=VerifyTaskOut,
    responses=_NOTHING,
    summary="Take a machine tag to verify (204: nothing left)",
)
def next_verification(
    *,
    request: Request,
    name: ProjectName,
    identity: CurrentVolunteer,
    db: ReadSession,
) -> Any:
    """Return an open machine tag of the project on a panorama this volunteer was never given,
    or 204. Judging it means this volunteer is never given that panorama to tag.

    Nothing is written (no tag is reserved), so a read-only session serves it: on SQLite it
    never waits for, nor blocks, a writer."""
    from camcensus.db import verify
    from camcensus.db.models import Panorama, Submission

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    tag = verify.next_verification(db, project=name, volunteer_id=identity.volunteer_id)
    if tag is None:
        return Response(status_code=204)
    submission = db.get(Submission, tag.submission_id)
    assert submission is not None
    panorama = db.get(Panorama, submission.panorama_id)
    out = VerifyTaskOut(
        tag_id=tag.tag_id,
        panorama=panorama_out(panorama),
        tag=MachineTagOut(
            tag_id=tag.tag_id,
            heading_deg=tag.heading_deg,
            pitch_deg=tag.pitch_deg,
            fov_deg=tag.fov_deg,
            attachment=tag.attachment,
            camera_type=tag.camera_type,
        ),
    )
    return out


@router.post(
    "/verifications/{tag_id}",
    response_model=VerificationOut,
    summary="Verify a machine tag: a camera, not a camera, or not sure",
)
def verify(
    *,
    tag_id: TagId,
    body: VerificationIn,
    request: Request,
    identity: CurrentVolunteer,
    db: DbSession,
) -> VerificationOut:
    """Record the volunteer's verdict on a machine tag (409 once the tag is settled or has its
    verdicts; 403 on a panorama the volunteer was given as a task)."""
    from camcensus.db import verify as db_verify

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    stored = db_verify.verify(
        db, tag_id=tag_id, volunteer_id=identity.volunteer_id, answer=body.answer
    )
    out = VerificationOut(tag_id=stored.tag_id, answer=stored.answer)
    db.commit()
    return out
