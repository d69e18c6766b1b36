"""JSON shapes the API returns for bases, artifacts (adapters, datasets, generators), versions and lineage.

Plain functions build them (fast, next to each other, so it is obvious when the CLI, the dashboard and the
HF-compatible routes disagree); the Pydantic models at the end declare the same shapes as the routes' response
models, so OpenAPI documents them and FastAPI checks every answer against them.
"""
from __future__ import annotations

from datetime import timezone

from pydantic import BaseModel as Schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import registry
from hub.models import Artifact, ArtifactVersion, BaseModel, Tag, iso_utc


def hf_time(dt) -> str | None:
    """The Hub's own timestamp format, which huggingface_hub parses strictly: 2024-01-02T03:04:05.678Z."""
    if dt is None:
        return None
    utc = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def base_view(base: BaseModel) -> dict:
    return {
        "name": base.name,
        "architecture": base.architecture,
        "aliases": sorted(a.alias for a in base.aliases),
        "source": base.source,
        "module_shapes": base.module_shapes,
        "created_at": iso_utc(base.created_at),
    }


def _tags(session: Session, adapter_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Tag.name, ArtifactVersion.number).join(ArtifactVersion, Tag.version_id == ArtifactVersion.id)
        .where(Tag.adapter_id == adapter_id)
    )
    return {name: number for name, number in rows}


def adapter_view(session: Session, adapter: Artifact) -> dict:
    latest = session.scalar(
        select(ArtifactVersion.number).where(ArtifactVersion.adapter_id == adapter.id, ArtifactVersion.yanked.is_(False))
        .order_by(ArtifactVersion.number.desc()).limit(1)
    )
    return {
        "namespace": adapter.namespace.name,
        "name": adapter.name,
        "kind": adapter.kind,
        "base": adapter.base.name if adapter.base is not None else None,
        "description": adapter.description,
        "task_tags": adapter.task_tags or [],
        "latest": latest,
        "version_count": adapter.version_count,
        "tags": _tags(session, adapter.id),
        "created_at": iso_utc(adapter.created_at),
    }


def version_view(session: Session, version: ArtifactVersion) -> dict:
    adapter = version.artifact
    return {
        "namespace": adapter.namespace.name,
        "name": adapter.name,
        "kind": adapter.kind,
        "number": version.number,
        "ref": registry.version_ref(version),
        "base": adapter.base.name if adapter.base is not None else None,
        "peft_config": version.peft_config,
        "files": version.files,
        "metrics": version.metrics or {},
        "created_by": version.created_by,
        "job_id": version.job_id,
        "yanked": version.yanked,
        "created_at": iso_utc(version.created_at),
        "tags": sorted(t for t, n in _tags(session, adapter.id).items() if n == version.number),
    }


# Response models: what the routes above answer, so /openapi.json documents the shapes the dashboard and the CLI read.

class FileView(Schema):
    name: str
    sha256: str
    size: int


class BaseView(Schema):
    name: str
    architecture: str
    aliases: list[str]
    source: str
    module_shapes: dict[str, list[int]]
    created_at: str | None


class ArtifactView(Schema):
    namespace: str
    name: str
    kind: str  # adapter | dataset | generator
    base: str | None
    description: str | None
    task_tags: list[str]
    latest: int | None  # newest version that is not yanked
    version_count: int
    tags: dict[str, int]  # tag -> version number
    created_at: str | None


class VersionView(Schema):
    namespace: str
    name: str
    kind: str
    number: int
    ref: str  # namespace/name@number
    base: str | None
    peft_config: dict | None
    files: list[FileView]
    metrics: dict
    created_by: str | None
    job_id: str | None  # the job that made it, if a job did
    yanked: bool
    created_at: str | None
    tags: list[str]


class LineageEdge(Schema):
    version: str | None  # None when hidden
    object: str | None  # adapter | dataset | generator; None when hidden
    relation: str
    hidden: bool  # the caller may not read the other end: its name is left out


class LineageView(Schema):
    version: str
    parents: list[LineageEdge]
    children: list[LineageEdge]


class ArtifactList(Schema):
    items: list[ArtifactView]


class VersionList(Schema):
    items: list[VersionView]


class BaseList(Schema):
    items: list[BaseView]
