"""Task routes: submit, report a problem, skip, validate; and the tutorial."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.orm import Session

from camcensus.web.api_auth import ERRORS
from camcensus.web.schemas import (
    OkOut,
    PanoramaOut,
    ProblemIn,
    SubmitIn,
    SubmitOut,
    TagIn,
    TutorialCheckIn,
    TutorialCheckOut,
    TutorialOut,
    TutorialTagFeedback,
    ValidationIn,
)
from camcensus.web.security import (
    CurrentVolunteer,
    DbSession,
    forget_identity,
    json_response,
    rate_limit,
    run_write,
)

__all__ = ["TUTORIAL_TOLERANCE_DEG", "router", "tag_in"]

router = APIRouter(prefix="/api", tags=["tasks"], responses=ERRORS)

TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_ATTACHED = {"street": "a pole", "building": "a building", "unknown": "something else"}
#: A tutorial tag within this angle of a true camera counts as found.
TUTORIAL_TOLERANCE_DEG = 5.0


def tag_in(tag: TagIn) -> Any:
    """Convert a request tag to the library's ``TagIn``."""
    from camcensus.db.tasks import TagIn as LibraryTagIn

    return LibraryTagIn(
        client_id=tag.client_id,
        heading_deg=tag.heading_deg,
        pitch_deg=tag.pitch_deg,
        fov_deg=tag.fov_deg,
        attachment=tag.attachment,
        camera_type=tag.camera_type,
        replaces=tag.replaces,
        deleted=tag.deleted,
        clicked_at=tag.clicked_at,
    )


def _submit_out(result: Any) -> SubmitOut:
    feedback = getattr(result, "feedback", None)
    if feedback is not None and not isinstance(feedback, dict):
        feedback = dict(vars(feedback))
    return SubmitOut(submission_id=result.submission_id, feedback=feedback)


@router.post("/tasks/{task_id}/submit", response_model=SubmitOut, summary="Submit a task's tags")
async def submit(
    *,
    body: SubmitIn,
    request: Request,
    task_id: TaskId,
    identity: CurrentVolunteer,
) -> Response:
    """Store every tag version exactly as sent; acknowledged only once committed.

    A retry of the same task returns the same submission.
    """
    from camcensus.db import tasks

    rate_limit(request, "submit", key=f"v{identity.volunteer_id}")
    volunteer_id = identity.volunteer_id
    tags = [tag_in(t) for t in body.tags]

    def job(db: Session) -> SubmitOut:
        result = tasks.submit(
            db,
            assignment_id=task_id,
            volunteer_id=volunteer_id,
            tags=tags,
            no_camera=body.no_camera,
            client_build=body.client_build,
            started_at=body.started_at,
        )
        return _submit_out(result)

    return json_response(await run_write(request, job))


@router.post(
    "/tasks/{task_id}/problem",
    response_model=SubmitOut,
    summary="Report a problem with the task's panorama",
)
def report_problem(
    *,
    body: ProblemIn,
    request: Request,
    task_id: TaskId,
    identity: CurrentVolunteer,
    db: DbSession,
) -> SubmitOut:
    """Submit the task as a problem report (no image, wrong place, indoor, other)."""
    from camcensus.db import tasks

    rate_limit(request, "submit", key=f"v{identity.volunteer_id}")
    result = tasks.submit(
        db,
        assignment_id=task_id,
        volunteer_id=identity.volunteer_id,
        tags=[],
        no_camera=False,
        problem=body.problem,
        problem_note=body.note,
    )
    out = _submit_out(result)
    db.commit()
    return out


@router.post("/tasks/{task_id}/skip", response_model=OkOut, summary="Skip (give back) a task")
def skip(
    *,
    request: Request,
    task_id: TaskId,
    identity: CurrentVolunteer,
    db: DbSession,
) -> OkOut:
    """Give the task back so another volunteer can take it."""
    from camcensus.db import tasks

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    tasks.abandon(db, assignment_id=task_id, volunteer_id=identity.volunteer_id)
    db.commit()
    return OkOut()


@router.post("/validations", response_model=OkOut, summary="Answer a validation task")
def validate(
    *,
    body: ValidationIn,
    request: Request,
    identity: CurrentVolunteer,
    db: DbSession,
) -> OkOut:
    """Agree, disagree or be unsure about another volunteer's tag."""
    from camcensus.db import tasks

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    tasks.validate(db, tag_id=body.tag_id, volunteer_id=identity.volunteer_id, answer=body.answer)
    db.commit()
    return OkOut()


def _tutorial_truth() -> tuple[Any, list[dict[str, Any]]]:
    """The tutorial scene and its visible cameras (heading, pitch, attachment, type)."""
    from camcensus.web.api_images import tutorial_truth

    return tutorial_truth()


def _angle(h1: float, p1: float, h2: float, p2: float) -> float:
    """Great-circle angle in degrees between two rays given as (heading, pitch)."""
    import math

    a1, b1, a2, b2 = map(math.radians, (h1, p1, h2, p2))
    c = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


@router.get("/tutorial", response_model=TutorialOut, summary="The tutorial panorama")
def tutorial() -> TutorialOut:
    """Return the tutorial's synthetic panorama and how many cameras it shows."""
    from camcensus.web.api_images import TUTORIAL_ID, tutorial_meta

    meta = tutorial_meta()
    _, cameras = _tutorial_truth()
    return TutorialOut(
        panorama=PanoramaOut(
            panorama_id=TUTORIAL_ID,
            image_url="/api/tutorial/image",
            heading_deg=float(meta["heading_deg"]),
            width_px=int(meta["width_px"]),
            height_px=int(meta["height_px"]),
            captured=None,
            licence="synthetic (no restriction)",
        ),
        cameras=len(cameras),
        tips=list(TUTORIAL_TIPS),
    )


TUTORIAL_TIPS = (
    "Look up and zoom in: cameras hang high on poles and walls.",
    "Click the centre of the camera, then choose what it hangs on.",
    "A street light or a signal head is not a camera; when unsure, don't tag.",
)


@router.post(
    "/tutorial/check", response_model=TutorialCheckOut, summary="Feedback on tutorial tags"
)
def tutorial_check(*, body: TutorialCheckIn, identity: CurrentVolunteer) -> TutorialCheckOut:
    """Compare each tag with the tutorial panorama's true cameras (within 5°)."""
    _, cameras = _tutorial_truth()
    current = [t for t in body.tags if not t.deleted]
    found: set[int] = set()
    feedback = []
    for tag in current:
        best, best_i = None, -1
        for i, cam in enumerate(cameras):
            d = _angle(tag.heading_deg, tag.pitch_deg, cam["heading_deg"], cam["pitch_deg"])
            if best is None or d < best:
                best, best_i = d, i
        if best is None or best > TUTORIAL_TOLERANCE_DEG:
            message = "No camera here: look for a housing with a lens, not a lamp or a sign."
            feedback.append(
                TutorialTagFeedback(
                    client_id=tag.client_id, correct=False, message=message, nearest_deg=best
                )
            )
            continue
        cam = cameras[best_i]
        problems = []
        if tag.attachment != cam["attachment"]:
            problems.append(f"it hangs on {_ATTACHED.get(cam['attachment'], 'something')}")
        if cam["attachment"] == "street" and tag.camera_type != cam["camera_type"]:
            problems.append(f"it is a {cam['camera_type']} camera")
        if best_i in found:
            problems.append("this camera is tagged already")
        found.add(best_i)
        message = (
            "Right: a camera." if not problems else "A camera, but " + "; ".join(problems) + "."
        )
        feedback.append(
            TutorialTagFeedback(
                client_id=tag.client_id, correct=not problems, message=message, nearest_deg=best
            )
        )
    n_found = len(found)
    return TutorialCheckOut(
        tags=feedback,
        found=n_found,
        missed=len(cameras) - n_found,
        cameras=len(cameras),
        passed=n_found == len(cameras) and all(f.correct for f in feedback),
    )


@router.post("/tutorial/done", response_model=OkOut, summary="Mark the tutorial done")
def tutorial_done(*, request: Request, identity: CurrentVolunteer, db: DbSession) -> OkOut:
    """Record that the volunteer finished the tutorial."""
    from camcensus.db import accounts

    accounts.mark_tutorial_done(db, identity.volunteer_id)
    db.commit()
    forget_identity(request, volunteer_id=identity.volunteer_id)
    return OkOut()
