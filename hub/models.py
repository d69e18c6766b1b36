"""The registry's tables: namespaces, tokens, base models, artifacts and their versions, tags, lineage, blobs, jobs,
workers.

An Artifact is a versioned registry object of one `kind`: an adapter, a dataset or a generator. All three share the
`adapters` / `adapter_versions` tables (named when adapters were the only kind; renaming tables is not worth a
migration): they are versioned, tagged, listed and downloaded identically, and a lineage edge (e.g. trained_from)
may join one kind to another. The rows are Artifact / ArtifactVersion so they are not confused with `lora.Adapter`,
the tensor value the workers handle.
Alembic owns the schema (migrations/versions); these classes must stay in step with it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_utc(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands datetimes back naive, but we only ever store UTC."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


class Namespace(Base):
    __tablename__ = "namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """Only the sha256 of a token is stored; `prefix` lets people tell their tokens apart."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    namespace_id: Mapped[int | None] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=True)
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    namespace: Mapped[Namespace | None] = relationship(lazy="joined")

    @property
    def scope_set(self) -> set[str]:
        return set(filter(None, self.scopes.split(",")))


class RegisteredBase(Base):
    """A registered base model: name, architecture, where its weights come from and its adaptable modules' shapes
    (not pydantic's BaseModel, whose name it had)."""

    __tablename__ = "base_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    architecture: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, default="")
    module_shapes: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # loaded on access: every adapter and version read joins its base, but only base views need the aliases
    aliases: Mapped[list["BaseAlias"]] = relationship(back_populates="base", cascade="all, delete-orphan")


class BaseAlias(Base):
    """Other names a base answers to, e.g. the HF id written into adapter_config.json's base_model_name_or_path."""

    __tablename__ = "base_aliases"
    alias: Mapped[str] = mapped_column(String(300), primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("base_models.id", ondelete="CASCADE"))
    base: Mapped[RegisteredBase] = relationship(back_populates="aliases")


class Artifact(Base):
    __tablename__ = "adapters"
    __table_args__ = (UniqueConstraint("namespace_id", "kind", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"))
    kind: Mapped[str] = mapped_column(String(16), default="adapter")
    name: Mapped[str] = mapped_column(String(96))
    base_id: Mapped[int | None] = mapped_column(ForeignKey("base_models.id"), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    task_tags: Mapped[list] = mapped_column(JSON, default=list)
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    namespace: Mapped[Namespace] = relationship(lazy="joined")
    base: Mapped[RegisteredBase | None] = relationship(lazy="joined")


class ArtifactVersion(Base):
    """Immutable once written, except `yanked` and `metrics` (evaluations add to what we know about a version)."""

    __tablename__ = "adapter_versions"
    __table_args__ = (UniqueConstraint("adapter_id", "number"), UniqueConstraint("adapter_id", "job_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    adapter_id: Mapped[int] = mapped_column(ForeignKey("adapters.id"))
    number: Mapped[int] = mapped_column(Integer)
    peft_config: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    files: Mapped[list] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    artifact: Mapped[Artifact] = relationship(lazy="joined")


class Tag(Base):
    __tablename__ = "tags"
    adapter_id: Mapped[int] = mapped_column(ForeignKey("adapters.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(96), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("adapter_versions.id"))


class Lineage(Base):
    __tablename__ = "lineage"
    child_id: Mapped[int] = mapped_column(ForeignKey("adapter_versions.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("adapter_versions.id"), primary_key=True)
    relation: Mapped[str] = mapped_column(String(32), primary_key=True)


class Blob(Base):
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    inputs: Mapped[list] = mapped_column(JSON, default=list)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    output: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    results: Mapped[list] = mapped_column(JSON, default=list)  # refs of the versions it published
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # data it returned (infer's completions)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    # "<caller>:<Idempotency-Key>", so one caller's key never finds another caller's job; request_hash tells a
    # retried request from a different one sent with the same key
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # id of the Celery message now carrying this job: a new one per dispatch after a retry, so revoking a cancelled
    # job's message never discards the retried one
    celery_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the device its (last) worker ran it on, e.g. "cuda:0 (NVIDIA H100 80GB HBM3, bfloat16)", copied from the
    # worker's row at claim: the job page still names it after the worker is long gone
    device: Mapped[str | None] = mapped_column(String(300), nullable=True)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)  # its index serves lookups by job and sequence
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class Worker(Base):
    """One worker process in the fleet view, kept fresh by its own heartbeat (workers/fleet.py).

    Named like `Job.worker` (host:pid), so a job names its worker's row. Status is not stored: online or stale is
    the heartbeat's age against the worker's own `heartbeat_seconds` (hub.fleet.status), so a worker that dies
    without a word still turns stale; `stopped_at` is set only by a clean shutdown."""

    __tablename__ = "workers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list] = mapped_column(JSON, default=list)
    device: Mapped[str] = mapped_column(String(32), default="cpu")
    dtype: Mapped[str | None] = mapped_column(String(16), nullable=True)
    device_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    versions: Mapped[dict] = mapped_column(JSON, default=dict)  # torch, transformers, peft, adaptarium
    heartbeat_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    current_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # plain id: the fleet view never holds a job back
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    jobs_failed: Mapped[int] = mapped_column(Integer, default=0)
