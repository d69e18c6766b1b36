"""JSON shapes the API returns for bases, artifacts (adapters, datasets, generators), versions and lineage.

Plain functions build them (fast, next to each other, so it is obvious when the CLI, the dashboard and the
HF-compatible routes disagree); the Pydantic models at the end declare the same shapes as the routes' response
models, so OpenAPI documents them and FastAPI checks every answer against them.
"""
from __future__ import annotations

import json
from datetime import timezone

from pydantic import BaseModel
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from hub.models import Artifact, ArtifactVersion, RegisteredBase, Tag, iso_utc


def hf_time(dt) -> str | None:
    """The Hub's own timestamp format, which huggingface_hub parses strictly: 2024-01-02T03:04:05.678Z."""
    if dt is None:
        return None
    utc = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def base_view(base: RegisteredBase) -> dict:
    return {
        "name": base.name,
        "architecture": base.architecture,
        "aliases": sorted(a.alias for a in base.aliases),
        "source": base.source,
        "module_shapes": base.module_shapes,
        "created_at": iso_utc(base.created_at),
    }


def _tags_of_adapters(session: Session, adapter_ids: list[int]) -> dict[int, dict[str, int]]:
    """Every tag of these adapters in one query: adapter id -> {tag: version number}."""
    found: dict[int, dict[str, int]] = {i: {} for i in adapter_ids}
    if adapter_ids:
        rows = session.execute(
            select(Tag.adapter_id, Tag.name, ArtifactVersion.number)
            .join(ArtifactVersion, Tag.version_id == ArtifactVersion.id).where(Tag.adapter_id.in_(adapter_ids)))
        for adapter_id, name, number in rows:
            found[adapter_id][name] = number
    return found


def _versions_of_adapters(session: Session, adapter_ids: list[int]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Per adapter, the newest version that is not yanked and the yanked ones (a version picker offers only the
    others), in one statement: a tag move reads the adapter's view inside its fixed statement count."""
    yanked: dict[int, list[int]] = {i: [] for i in adapter_ids}
    if not adapter_ids:
        return {}, yanked
    v = ArtifactVersion
    newest = (select(v.adapter_id, func.max(v.number).label("number"), literal(False).label("yanked"))
              .where(v.adapter_id.in_(adapter_ids), v.yanked.is_(False)).group_by(v.adapter_id))
    gone = select(v.adapter_id, v.number, literal(True)).where(v.adapter_id.in_(adapter_ids), v.yanked.is_(True))
    latest = {}
    for adapter_id, number, is_yanked in session.execute(union_all(newest, gone)):
        if is_yanked:
            yanked[adapter_id].append(number)
        else:
            latest[adapter_id] = number
    return latest, {i: sorted(n) for i, n in yanked.items()}


def _artifact_dict(adapter: Artifact, latest: int | None, tags: dict[str, int], yanked: list[int]) -> dict:
    return {
        "namespace": adapter.namespace.name,
        "name": adapter.name,
        "kind": adapter.kind,
        "base": adapter.base.name if adapter.base is not None else None,
        "description": adapter.description,
        "task_tags": adapter.task_tags or [],
        "latest": latest,
        "version_count": adapter.version_count,
        "yanked": yanked,
        "tags": tags,
        "created_at": iso_utc(adapter.created_at),
    }


def adapter_view(session: Session, adapter: Artifact) -> dict:
    return adapter_views(session, [adapter])[0]


def adapter_views(session: Session, adapters: list[Artifact]) -> list[dict]:
    """Views of many artifacts in two queries (versions, tags), whatever their number: a listing of 500 adapters
    must not cost 1000 round trips."""
    ids = [a.id for a in adapters]
    (latest, yanked), tags = _versions_of_adapters(session, ids), _tags_of_adapters(session, ids)
    return [_artifact_dict(a, latest.get(a.id), tags[a.id], yanked[a.id]) for a in adapters]


def version_view(session: Session | None, version: ArtifactVersion, tags: list[str] | None = None) -> dict:
    """One version in full, its PEFT config included; its tags are read unless the caller knows them (a version
    just published has exactly the tags it was published with)."""
    adapter = version.artifact
    return {
        "namespace": adapter.namespace.name,
        "name": adapter.name,
        "kind": adapter.kind,
        "number": version.number,
        "ref": f"{adapter.namespace.name}/{adapter.name}@{version.number}",
        "base": adapter.base.name if adapter.base is not None else None,
        "peft_config": version.peft_config,
        "files": version.files,
        "metrics": version.metrics or {},
        "created_by": version.created_by,
        "job_id": version.job_id,
        "yanked": version.yanked,
        "created_at": iso_utc(version.created_at),
        "tags": sorted(session.scalars(select(Tag.name).where(Tag.version_id == version.id)) if tags is None else tags),
    }


def _number(value):
    """A number from the database as the config wrote it (16, not 16.0); anything else None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def version_list_json(session: Session, adapter: Artifact, rows) -> bytes:
    """The JSON body of a version list (VersionList) from `registry.version_summaries` rows, plus one query for all
    the adapter's tags, whatever the number of versions.

    Each entry has a summary of its PEFT config instead of the config (a 200-version listing stays a few tens of KB;
    the full config is one version's view away). This is the hot listing path, so it writes JSON itself: the stored
    `files` and `metrics` JSON goes out as the text it is, never decoded, validated and encoded again (that, with
    building the response model, was half the CPU of a 200-version listing); tests validate the body against
    VersionList."""
    by_version: dict[int, list[str]] = {}
    for name, version_id in session.execute(select(Tag.name, Tag.version_id).where(Tag.adapter_id == adapter.id)):
        by_version.setdefault(version_id, []).append(name)
    ns, name = adapter.namespace.name, adapter.name
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    # what every entry shares, encoded once: '{"namespace":...,"name":...,"kind":...,"base":...,'
    head = dumps({"namespace": ns, "name": name, "kind": adapter.kind,
                  "base": adapter.base.name if adapter.base is not None else None})[:-1] + ","
    items = []
    for row in rows:
        summary = {"peft_type": row.peft_type if isinstance(row.peft_type, str) else None, "r": _number(row.r),
                   "lora_alpha": _number(row.lora_alpha), "target_module_count": row.target_module_count}
        own = dumps({
            "number": row.number, "ref": f"{ns}/{name}@{row.number}", "created_by": row.created_by,
            "job_id": row.job_id, "yanked": bool(row.yanked), "created_at": iso_utc(row.created_at),
            "tags": sorted(by_version.get(row.id, ())),
            # datasets and generators have no PEFT config: nothing to summarise
            "config_summary": summary if any(v is not None for v in summary.values()) else None,
        })
        metrics = row.metrics if row.metrics not in (None, "null") else "{}"
        items.append(f'{head}{own[1:-1]},"files":{row.files},"metrics":{metrics}}}')
    return f'{{"items":[{",".join(items)}]}}'.encode()


# Response models: what the routes above answer, so /openapi.json documents the shapes the dashboard and the CLI read.

class FileView(BaseModel):
    name: str
    sha256: str
    size: int


class BaseView(BaseModel):
    name: str
    architecture: str
    aliases: list[str]
    source: str
    module_shapes: dict[str, list[int]]
    created_at: str | None


class ArtifactView(BaseModel):
    namespace: str
    name: str
    kind: str  # adapter | dataset | generator
    base: str | None
    description: str | None
    task_tags: list[str]
    latest: int | None  # newest version that is not yanked
    version_count: int
    yanked: list[int]  # numbers of the yanked versions, ascending
    tags: dict[str, int]  # tag -> version number
    created_at: str | None


class VersionView(BaseModel):
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


class LineageEdge(BaseModel):
    version: str | None  # None when hidden
    object: str | None  # adapter | dataset | generator; None when hidden
    relation: str | None  # None when hidden
    hidden: bool  # the caller may not read the other end: its name, kind and relation are left out


class LineageView(BaseModel):
    version: str
    parents: list[LineageEdge]
    children: list[LineageEdge]


class ArtifactList(BaseModel):
    items: list[ArtifactView]


class ConfigSummary(BaseModel):
    peft_type: str | None
    r: int | float | None
    lora_alpha: int | float | None
    target_module_count: int | None  # None when target_modules is a regular expression


class VersionListItem(BaseModel):
    """A version in a list: a VersionView without `peft_config`, with `config_summary` instead."""

    namespace: str
    name: str
    kind: str
    number: int
    ref: str
    base: str | None
    config_summary: ConfigSummary | None  # None for datasets and generators
    files: list[FileView]
    metrics: dict
    created_by: str | None
    job_id: str | None
    yanked: bool
    created_at: str | None
    tags: list[str]


class VersionList(BaseModel):
    items: list[VersionListItem]


class BaseList(BaseModel):
    items: list[BaseView]
