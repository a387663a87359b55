"""Project routes: list and progress, and the next task, validation or review of a project."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import Select, bindparam, func, literal, select
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


@cache
def _task_panorama(*, with_done: bool) -> Select[Any]:
    """The columns of a task's panorama (one Core query, no ORM load); ``with_done`` adds
    the volunteer's submitted tasks, counted up to ``cap`` (the tip needs no more)."""
    from camcensus.db.models import Panorama, Submission

    p, s = Panorama.__table__.c, Submission.__table__.c
    columns: list[Any] = [p.panorama_id, p.heading_deg, p.width_px, p.height_px]
    columns += [p.captured, p.licence]
    if with_done:
        done = (
            select(literal(1))
            .where(s.decoder_id == bindparam("d"), s.kind != "tutorial")
            .limit(bindparam("cap"))
            .subquery()
        )
        columns.append(select(func.count()).select_from(done).scalar_subquery().label("done"))
    return select(*columns).where(p.panorama_id == bindparam("p"))


def task_out(
    db: Session,
    request: Request,
    assignment: Assignment,
    tasks_done: int | None = None,
    *,
    public_id: str | None = None,
) -> TaskOut:
    """Format an assignment as a task, with a tip during the volunteer's first tasks.

    ``tasks_done`` is how many tasks the volunteer has submitted; None: counted in the same
    query as the panorama for the volunteer ``public_id`` (up to the settings' ``tip_tasks``).
    """
    settings = request.app.state.settings
    cap = int(settings.tip_tasks) if settings.tips else 0
    if tasks_done is None and (public_id is None or cap <= 0):
        tasks_done = cap
    params: dict[str, Any] = {"p": assignment.panorama_id}
    if tasks_done is None:
        params.update(d=public_id, cap=cap)
    row = db.connection().execute(_task_panorama(with_done=tasks_done is None), params).one()
    done = int(row.done) if tasks_done is None else tasks_done
    tip = None
    if done < settings.tip_tasks and settings.tips:
        tip = settings.tips[done % len(settings.tips)]
    return TaskOut(
        task_id=assignment.assignment_id,
        kind=assignment.kind,
        expires_at=assignment.expires_at,
        tip=tip,
        panorama=panorama_out(row),
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
    from camcensus.db import tasks

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
        return task_out(db, request, assignment, public_id=public_id)

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
