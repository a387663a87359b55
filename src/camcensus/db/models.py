"""The platform's tables: one SQLAlchemy 2 schema for SQLite and PostgreSQL + PostGIS.

Names and columns follow ``docs/platform.md`` ("Storage") exactly; columns may be added, never
renamed. Enumerations and ranges are CHECK constraints, so the database itself refuses a bad
value whatever code writes it; the partial unique index on ``assignments (panorama_id, slot)``
for live tasks means a panorama can never hold more than k live slots.

Columns added beyond the contract (in its spirit):

- ``panoramas.n_live``: live tag slots (assignments ``open`` or ``submitted`` of kind ``tag``);
  ``n_done <= n_live <= k``. It lets :func:`camcensus.db.tasks.next_task` find work with one
  indexed query.
- ``panoramas.n_problem``: problem reports on the panorama's tag tasks. A report holds no
  slot (its assignment is ``reported``, not ``submitted``) and never counts toward ``n_done``;
  a panorama with ``2 * n_problem > k`` (and ``n_done < k``) is retired as a problem panorama.
- ``assignments.status`` ``reported``: a tag task answered with a problem report.
- ``panoramas.shuffle_key``: a stable pseudo-random rank (from the panorama id) that orders
  panoramas of equal progress.
- ``reviews.submission_id``: the expert's answer once the review is done (single-expert
  reviews made before migration 0003; three-expert answers are ``review_answers`` rows).
- ``panoramas.k_target`` (0003): counted answers this panorama needs, set by the project's
  ``adaptive_rule``; NULL means the project's ``k``.
- ``reviews.stratum``, ``experts_needed``, ``decided_at`` and status ``awaiting_meta`` (0003):
  the quality sample's three independent expert answers and the meta-expert's decision, in
  ``review_answers`` (:mod:`camcensus.db.review`).

Times are timezone-aware UTC on both databases (:class:`UTCDateTime`). PostGIS adds a generated
``geom geometry(Point, 4326)`` column to ``panoramas`` in the migration only (SQLite has none).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ADAPTIVE_RULES",
    "ASSIGNMENT_KINDS",
    "ASSIGNMENT_STATUSES",
    "ATTACHMENTS",
    "CAMERA_TYPES",
    "PROBLEMS",
    "PROJECT_STATUSES",
    "REVIEW_ANSWER_COUNTS",
    "REVIEW_ROLES",
    "REVIEW_STATUSES",
    "ROLES",
    "SOURCES",
    "SUBMISSION_KINDS",
    "VALIDATION_ANSWERS",
    "Assignment",
    "Base",
    "Camera",
    "Comment",
    "Intersection",
    "Invitation",
    "Panorama",
    "Project",
    "Review",
    "ReviewAnswer",
    "Submission",
    "Tag",
    "UTCDateTime",
    "Validation",
    "Volunteer",
    "WebSession",
]

SOURCES = ("folder", "panoramax", "mapillary", "gsv", "synthetic")
SUBMISSION_KINDS = ("volunteer", "expert", "model", "tutorial")
PROBLEMS = ("no_image", "wrong_place", "indoor", "other")
ATTACHMENTS = ("street", "building", "unknown")
CAMERA_TYPES = ("dome", "bullet", "unknown")
PROJECT_STATUSES = ("open", "closed")
ROLES = ("volunteer", "expert", "admin")
ASSIGNMENT_KINDS = ("tag", "gold", "review")
ASSIGNMENT_STATUSES = ("open", "submitted", "reported", "expired", "abandoned")
VALIDATION_ANSWERS = ("agree", "disagree", "unsure")
REVIEW_STATUSES = ("open", "awaiting_meta", "done")
REVIEW_ROLES = ("expert", "meta")
#: Rules of camcensus.quality.adaptive that set ``panoramas.k_target``.
ADAPTIVE_RULES = (
    "fixed",
    "stop_unanimous_zero",
    "stop_unanimous",
    "extend_disagreement",
    "both",
    "stop_posterior",
)
#: Per-category counts of a review answer: the columns of counts.csv (db/export.py).
REVIEW_ANSWER_COUNTS = (
    "n_cameras",
    "attached_street",
    "attached_building",
    "attached_unknown",
    "type_dome",
    "type_bullet",
    "type_unknown",
)

#: Constraint names are fixed, so the hand-written migration and the models agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    """Return the SQL of ``column IN (values)`` for a CHECK constraint."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    Values are converted to UTC when stored; on SQLite (no time zones) they are stored naive in
    UTC and come back with ``tzinfo=UTC``. A naive value is refused: it has no known zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC on SQLite)."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, found {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("datetimes stored in the platform must be timezone-aware (UTC)")
        utc: datetime = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored time as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    """Declarative base of every platform table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Project(Base):
    """A tagging campaign: its panoramas, k, timeouts and licence."""

    __tablename__ = "projects"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    k: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    task_timeout_s: Mapped[int] = mapped_column(Integer, default=900, server_default=text("900"))
    gold_every: Mapped[int] = mapped_column(Integer, default=20, server_default=text("20"))
    licence: Mapped[str] = mapped_column(String(200))
    area_geojson: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    adaptive_rule: Mapped[str] = mapped_column(
        String(32), default="fixed", server_default=text("'fixed'")
    )

    __table_args__ = (
        CheckConstraint("k >= 1 AND k <= 50", name="k"),
        CheckConstraint(_in("adaptive_rule", ADAPTIVE_RULES), name="adaptive_rule"),
        CheckConstraint("task_timeout_s >= 1", name="task_timeout_s"),
        CheckConstraint("gold_every >= 1", name="gold_every"),
        CheckConstraint("length(name) >= 1 AND length(name) <= 64", name="name"),
        CheckConstraint(_in("status", PROJECT_STATUSES), name="status"),
    )


class Panorama(Base):
    """One pinned 360° image at a point (contract table ``panoramas``)."""

    __tablename__ = "panoramas"

    panorama_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.project_id", ondelete="CASCADE"))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    heading_deg: Mapped[float] = mapped_column(Float)
    captured: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str | None] = mapped_column(String(500))
    image_uri: Mapped[str] = mapped_column(String(1000))
    width_px: Mapped[int] = mapped_column(Integer)
    height_px: Mapped[int] = mapped_column(Integer)
    licence: Mapped[str] = mapped_column(String(200))
    republishable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    intersection_id: Mapped[str | None] = mapped_column(String(200))
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    gold_answer: Mapped[str | None] = mapped_column(Text)
    n_done: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    n_live: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    n_problem: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    shuffle_key: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    k_target: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("lon >= -180 AND lon <= 180", name="lon"),
        CheckConstraint("lat >= -90 AND lat <= 90", name="lat"),
        CheckConstraint("heading_deg >= 0 AND heading_deg < 360", name="heading_deg"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint("k_target IS NULL OR k_target >= 1", name="k_target"),
        CheckConstraint("width_px > 0 AND height_px > 0", name="size"),
        CheckConstraint("n_done >= 0 AND n_done <= n_live", name="n_done"),
        CheckConstraint("n_live >= 0", name="n_live"),
        CheckConstraint("n_problem >= 0", name="n_problem"),
        CheckConstraint(
            "captured IS NULL OR length(captured) = 7 OR length(captured) = 10", name="captured"
        ),
        # What next_task filters and orders on: project, gold, progress, then the stable rank.
        Index(None, "project_id", "gold", "n_live", "shuffle_key"),
        Index(None, "project_id", "lon", "lat"),
    )


class Intersection(Base):
    """A requested intersection (Amnesty's ``intersections.csv``) and the panorama chosen for it."""

    __tablename__ = "intersections"

    intersection_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.project_id", ondelete="CASCADE"))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    panorama_id: Mapped[str | None] = mapped_column(
        ForeignKey("panoramas.panorama_id", ondelete="SET NULL")
    )
    area: Mapped[str | None] = mapped_column(String(200))
    traffic_signal: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        CheckConstraint("lon >= -180 AND lon <= 180 AND lat >= -90 AND lat <= 90", name="lonlat"),
        Index(None, "project_id"),
        Index(None, "panorama_id"),
    )


class Volunteer(Base):
    """A pseudonymous account (no e-mail, no IP address, ever)."""

    __tablename__ = "volunteers"

    volunteer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    pseudonym: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(16), default="volunteer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tutorial_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("length(pseudonym) >= 3 AND length(pseudonym) <= 40", name="pseudonym"),
        CheckConstraint(_in("role", ROLES), name="role"),
        # Pseudonyms are unique regardless of case, even under concurrent sign-ups.
        Index("ix_volunteers_pseudonym_lower", func.lower(text("pseudonym")), unique=True),
    )


class WebSession(Base):
    """A log-in session; only the sha256 of the cookie value is stored."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="CASCADE")
    )
    csrf_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "volunteer_id"), Index(None, "expires_at"))


class Invitation(Base):
    """An invitation link (only its token's sha256 is stored)."""

    __tablename__ = "invitations"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE")
    )
    created_by: Mapped[int] = mapped_column(ForeignKey("volunteers.volunteer_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("volunteers.volunteer_id"))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)


class Submission(Base):
    """One volunteer's (or model's, or expert's) look at one panorama (contract table)."""

    __tablename__ = "submissions"

    submission_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    panorama_id: Mapped[str] = mapped_column(
        ForeignKey("panoramas.panorama_id", ondelete="CASCADE")
    )
    decoder_id: Mapped[str] = mapped_column(String(200))
    assignment_id: Mapped[str | None] = mapped_column(
        ForeignKey("assignments.assignment_id", ondelete="SET NULL"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    no_camera: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    problem: Mapped[str | None] = mapped_column(String(16))
    problem_note: Mapped[str | None] = mapped_column(String(500))
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    client_build: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(_in("kind", SUBMISSION_KINDS), name="kind"),
        CheckConstraint("problem IS NULL OR " + _in("problem", PROBLEMS), name="problem"),
        CheckConstraint("problem_note IS NULL OR length(problem_note) <= 500", name="problem_note"),
        Index(None, "panorama_id"),
        Index(None, "decoder_id"),
    )


class Tag(Base):
    """One click = one ray from the panorama's camera; every version the client sent is a row."""

    __tablename__ = "tags"

    tag_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    submission_id: Mapped[str] = mapped_column(
        ForeignKey("submissions.submission_id", ondelete="CASCADE")
    )
    heading_deg: Mapped[float] = mapped_column(Float)
    pitch_deg: Mapped[float] = mapped_column(Float)
    fov_deg: Mapped[float] = mapped_column(Float)
    attachment: Mapped[str] = mapped_column(String(16))
    camera_type: Mapped[str] = mapped_column(String(16))
    machine: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    score: Mapped[float | None] = mapped_column(Float)
    client_tag_id: Mapped[str | None] = mapped_column(String(100))
    replaces_tag_id: Mapped[str | None] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("heading_deg >= 0 AND heading_deg < 360", name="heading_deg"),
        CheckConstraint("pitch_deg >= -90 AND pitch_deg <= 90", name="pitch_deg"),
        CheckConstraint("fov_deg > 0 AND fov_deg <= 180", name="fov_deg"),
        CheckConstraint(_in("attachment", ATTACHMENTS), name="attachment"),
        CheckConstraint(_in("camera_type", CAMERA_TYPES), name="camera_type"),
        Index(None, "submission_id"),
    )


class Assignment(Base):
    """A task given to a volunteer: a slot of a panorama (``tag``), a ``gold`` or a ``review``."""

    __tablename__ = "assignments"

    assignment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.project_id", ondelete="CASCADE"))
    panorama_id: Mapped[str] = mapped_column(
        ForeignKey("panoramas.panorama_id", ondelete="CASCADE")
    )
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    slot: Mapped[int | None] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Not a foreign key: submissions.assignment_id already points back (no cycle).
    submission_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("kind", ASSIGNMENT_KINDS), name="kind"),
        CheckConstraint(_in("status", ASSIGNMENT_STATUSES), name="status"),
        CheckConstraint(
            "(kind = 'tag' AND slot IS NOT NULL AND slot >= 1) OR (kind <> 'tag' AND slot IS NULL)",
            name="slot",
        ),
        # Nobody sees the same panorama twice.
        UniqueConstraint("panorama_id", "volunteer_id"),
        # At most one live assignment per slot: never more than k live slots per panorama.
        Index(
            "uq_assignments_live_slot",
            "panorama_id",
            "slot",
            unique=True,
            sqlite_where=text("status IN ('open', 'submitted')"),
            postgresql_where=text("status IN ('open', 'submitted')"),
        ),
        Index(None, "project_id", "status", "expires_at"),
        Index(None, "volunteer_id", "project_id", "issued_at"),
    )


class Validation(Base):
    """A volunteer's verdict on another volunteer's tag."""

    __tablename__ = "validations"

    validation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.tag_id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="CASCADE")
    )
    answer: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in("answer", VALIDATION_ANSWERS), name="answer"),
        UniqueConstraint("tag_id", "volunteer_id"),
        Index(None, "volunteer_id"),
    )


class Review(Base):
    """A panorama queued for an expert's independent look (the quality sample)."""

    __tablename__ = "reviews"

    review_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.project_id", ondelete="CASCADE"))
    panorama_id: Mapped[str] = mapped_column(
        ForeignKey("panoramas.panorama_id", ondelete="CASCADE")
    )
    inclusion_prob: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submission_id: Mapped[str | None] = mapped_column(String(64))
    stratum: Mapped[str | None] = mapped_column(String(200))
    experts_needed: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in("status", REVIEW_STATUSES), name="status"),
        CheckConstraint("experts_needed >= 1", name="experts_needed"),
        CheckConstraint(
            "inclusion_prob IS NULL OR (inclusion_prob > 0 AND inclusion_prob <= 1)",
            name="inclusion_prob",
        ),
        Index(None, "project_id", "status"),
        Index(None, "panorama_id"),
        # At most one unfinished review per panorama, even when two admins queue it at once.
        Index(
            "uq_reviews_open_panorama",
            "panorama_id",
            unique=True,
            sqlite_where=text("status IN ('open', 'awaiting_meta')"),
            postgresql_where=text("status IN ('open', 'awaiting_meta')"),
        ),
    )


class ReviewAnswer(Base):
    """One expert's answer to a review (role ``expert``) or the meta-expert's decision (``meta``).

    The counts are per category, as a submission's tags become counts in ``counts.csv``
    (``type_*`` count only cameras on street furniture). An expert's row holds the counts of
    their submission's standing tags; the meta-expert's row holds the reference.
    """

    __tablename__ = "review_answers"

    answer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.review_id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    submission_id: Mapped[str | None] = mapped_column(
        ForeignKey("submissions.submission_id", ondelete="SET NULL"), unique=True
    )
    n_cameras: Mapped[int] = mapped_column(Integer)
    attached_street: Mapped[int] = mapped_column(Integer)
    attached_building: Mapped[int] = mapped_column(Integer)
    attached_unknown: Mapped[int] = mapped_column(Integer)
    type_dome: Mapped[int] = mapped_column(Integer)
    type_bullet: Mapped[int] = mapped_column(Integer)
    type_unknown: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(_in("role", REVIEW_ROLES), name="role"),
        CheckConstraint(" AND ".join(f"{c} >= 0" for c in REVIEW_ANSWER_COUNTS), name="counts"),
        CheckConstraint("note IS NULL OR length(note) <= 500", name="note"),
        # Never twice by the same person (the meta-expert is none of the experts).
        UniqueConstraint("review_id", "volunteer_id"),
        Index(None, "volunteer_id"),
        Index(
            "uq_review_answers_meta",
            "review_id",
            unique=True,
            sqlite_where=text("role = 'meta'"),
            postgresql_where=text("role = 'meta'"),
        ),
    )


class Comment(Base):
    """A message in a panorama's discussion, stored as typed and shown only as text."""

    __tablename__ = "comments"

    comment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    panorama_id: Mapped[str] = mapped_column(
        ForeignKey("panoramas.panorama_id", ondelete="CASCADE")
    )
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.volunteer_id", ondelete="CASCADE")
    )
    body: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("length(body) >= 1 AND length(body) <= 2000", name="body"),
        Index(None, "panorama_id", "created_at"),
    )


#: Mount classes of the ``cameras`` contract table (camcensus.cameras.MOUNTS).
CAMERA_MOUNTS = ("street", "building", "unknown")


class Camera(Base):
    """One camera of the inventory (contract table ``cameras``, DESIGN.md), whatever its source.

    The point is ``lon``/``lat`` in WGS84 (PostGIS adds a generated ``geom`` point with a GiST
    index in the migration). Columns beyond the contract that a source brings (``osm_tags``,
    ``direction_raw``, ``source_refs`` ...) are kept as JSON text in ``extra``; ``loaded_at`` is
    when the row was loaded (:func:`camcensus.db.cameras.load_cameras`).
    """

    __tablename__ = "cameras"

    camera_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    position_sd_m: Mapped[float | None] = mapped_column(Float)
    mount: Mapped[str | None] = mapped_column(String(16))
    camera_type: Mapped[str | None] = mapped_column(String(32))
    surveillance_type: Mapped[str | None] = mapped_column(String(64))
    direction_deg: Mapped[float | None] = mapped_column(Float)
    hfov_deg: Mapped[float | None] = mapped_column(Float)
    height_m: Mapped[float | None] = mapped_column(Float)
    operator: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str | None] = mapped_column(String(500))
    tier: Mapped[str | None] = mapped_column(String(200))
    support: Mapped[str | None] = mapped_column(String(500))
    first_seen: Mapped[str | None] = mapped_column(String(32))
    last_seen: Mapped[str | None] = mapped_column(String(32))
    licence: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("lon >= -180 AND lon <= 180", name="lon"),
        CheckConstraint("lat >= -90 AND lat <= 90", name="lat"),
        CheckConstraint(_in("mount", CAMERA_MOUNTS), name="mount"),
        CheckConstraint("direction_deg >= 0 AND direction_deg < 360", name="direction_deg"),
        CheckConstraint("hfov_deg > 0 AND hfov_deg <= 360", name="hfov_deg"),
        CheckConstraint("length(source) >= 1", name="source"),
        # What the public API filters on: a box, a source, a surveillance type.
        Index(None, "lon", "lat"),
        Index(None, "source"),
        Index(None, "surveillance_type"),
    )
