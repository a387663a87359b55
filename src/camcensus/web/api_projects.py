"""Project routes: list and progress, and the next task, validation or review of a project."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from camcensus.web.api_auth import ERRORS
from camcensus.web.schemas import (
    FeatureCollection,
    PanoramaOut,
    ProjectOut,
    TagOut,
    TaskOut,
    TaskRequest,
    ValidationTaskOut,
)
from camcensus.web.security import (
    CurrentVolunteer,
    DbSession,
    ExpertVolunteer,
    OptionalVolunteer,
    ReadSession,
    json_response,
    rate_limit,
    run_write,
)

if TYPE_CHECKING:
    from camcensus.db.models import Assignment

__all__ = ["panorama_out", "router", "task_out"]

router = APIRouter(prefix="/api/projects", tags=["projects"], responses=ERRORS)

ProjectName = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", description="The project's slug")]
_NOTHING: dict[int | str, dict[str, Any]] = {
    204: {"description": "Nothing is left for this volunteer"}
}


def panorama_out(panorama: Any) -> PanoramaOut:
    """Format a stored panorama for the viewer (the image comes from the API, never a path)."""
    return PanoramaOut(
        panorama_id=panorama.panorama_id,
        image_url=f"/api/panoramas/{quote(panorama.panorama_id, safe='')}/image",
        heading_deg=float(panorama.heading_deg or 0.0),
        width_px=panorama.width_px,
        height_px=panorama.height_px,
        captured=panorama.captured,
        licence=panorama.licence,
    )


def task_out(db: Session, request: Request, assignment: Assignment, tasks_done: int) -> TaskOut:
    """Format an assignment as a task, with a tip during the volunteer's first tasks."""
    from camcensus.db.models import Panorama

    panorama = db.get(Panorama, assignment.panorama_id)
    assert panorama is not None
    settings = request.app.state.settings
    tip = None
    if tasks_done < settings.tip_tasks and settings.tips:
        tip = settings.tips[tasks_done % len(settings.tips)]
    return TaskOut(
        task_id=assignment.assignment_id,
        kind=assignment.kind,
        expires_at=assignment.expires_at,
        tip=tip,
        panorama=panorama_out(panorama),
    )


def _project_out(db: Session, name: str) -> ProjectOut:
    from camcensus.db.models import Project
    from camcensus.db.projects import project_progress

    progress = project_progress(db, name)
    project = db.scalars(select(Project).where(Project.name == name)).one()
    return ProjectOut(
        name=project.name,
        title=project.title,
        k=project.k,
        status=project.status,
        **{
            key: int(value)
            for key, value in progress.items()
            if key in ProjectOut.model_fields and key not in ("name", "title", "k", "status")
        },
    )


@router.get("", response_model=list[ProjectOut], summary="Projects with their progress")
def list_projects(*, db: ReadSession) -> list[ProjectOut]:
    """Return every project with its progress numbers."""
    from camcensus.db.models import Project

    names = db.scalars(select(Project.name).order_by(Project.created_at, Project.name)).all()
    return [_project_out(db, name) for name in names]


@router.get("/{name}", response_model=ProjectOut, summary="One project's progress")
def get_project(*, name: ProjectName, db: ReadSession) -> ProjectOut:
    """Return a project's progress numbers."""
    return _project_out(db, name)


@router.get(
    "/{name}/progress.geojson",
    response_model=FeatureCollection,
    summary="Progress map (one Point per panorama)",
)
def progress_geojson(*, name: ProjectName, db: ReadSession, identity: OptionalVolunteer) -> Any:
    """Return the project's progress as GeoJSON (status, n_done, agreement, problems).

    Problem reports on panoramas still being tagged are shown to experts and admins only.
    """
    from camcensus.db.projects import progress_geojson as _progress

    staff = identity is not None and identity.role in ("expert", "admin")
    return _progress(db, name, live_problems=staff)


@router.post(
    "/{name}/tasks",
    response_model=TaskOut,
    responses=_NOTHING,
    summary="Take the next task (204: nothing left)",
)
async def next_task(
    *,
    request: Request,
    body: TaskRequest | None = None,
    name: ProjectName,
    identity: CurrentVolunteer,
) -> Any:
    """Assign the next panorama to tag (optionally inside ``bbox``), or 204."""
    from camcensus.db import accounts, tasks

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    bbox = tuple(body.bbox) if body is not None and body.bbox is not None else None
    volunteer_id, public_id = identity.volunteer_id, identity.public_id

    def job(db: Session) -> TaskOut | None:
        assignment = tasks.next_task(
            db,
            project=name,
            volunteer_id=volunteer_id,
            bbox=bbox,  # type: ignore[arg-type]
        )
        if assignment is None:
            return None
        return task_out(db, request, assignment, accounts.tasks_done(db, public_id))

    out = await run_write(request, job)
    return Response(status_code=204) if out is None else json_response(out)


@router.post(
    "/{name}/validations",
    response_model=ValidationTaskOut,
    responses=_NOTHING,
    summary="Take another volunteer's tag to validate (204: nothing left)",
)
def next_validation(
    *,
    request: Request,
    name: ProjectName,
    identity: CurrentVolunteer,
    db: DbSession,
) -> Any:
    """Return a tag by another volunteer to agree or disagree with, or 204."""
    from camcensus.db import tasks
    from camcensus.db.models import Panorama, Submission, Tag

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    tag = tasks.next_validation(db, project=name, volunteer_id=identity.volunteer_id)
    if tag is None:
        db.commit()
        return Response(status_code=204)
    if not isinstance(tag, Tag):  # a library may answer with a tag id
        tag = db.get(Tag, str(tag))
        assert tag is not None
    submission = db.get(Submission, tag.submission_id)
    assert submission is not None
    panorama = db.get(Panorama, submission.panorama_id)
    out = ValidationTaskOut(
        validation_task=tag.tag_id,
        panorama=panorama_out(panorama),
        tag=TagOut(
            tag_id=tag.tag_id,
            heading_deg=tag.heading_deg,
            pitch_deg=tag.pitch_deg,
            fov_deg=tag.fov_deg,
            attachment=tag.attachment,
            camera_type=tag.camera_type,
        ),
    )
    db.commit()
    return out


@router.post(
    "/{name}/reviews",
    response_model=TaskOut,
    responses=_NOTHING,
    summary="Take the next expert review (expert; answered with /api/tasks/{id}/submit)",
)
def next_review(
    *,
    request: Request,
    name: ProjectName,
    identity: ExpertVolunteer,
    db: DbSession,
) -> Any:
    """Assign the next panorama of the expert review queue, or 204."""
    from camcensus.db import tasks

    rate_limit(request, "write", key=f"v{identity.volunteer_id}")
    assignment = tasks.next_review(db, project=name, volunteer_id=identity.volunteer_id)
    if assignment is None:
        db.commit()
        return Response(status_code=204)
    out = task_out(db, request, assignment, tasks_done=request.app.state.settings.tip_tasks)
    db.commit()
    return out
