"""The fleet view: `GET /api/v1/workers`, every worker process with its device, queues, status and current job.

Workers belong to no namespace, so any valid token with read scope may list them (hosts, pids and versions are
operational facts, not for anonymous callers). The job a worker runs is a registry-scoped thing: its id, kind and
progress appear only to a caller who may see that job under the jobs routes' rule; anyone else reads
`{"hidden": true}`, i.e. "busy" and nothing more.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hub import fleet
from hub.api.deps import db, require_any, token
from hub.api.jobs import _visible as job_visible
from hub.api.openapi import errors
from hub.models import ApiToken, Job, Worker, iso_utc, utcnow

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


class CurrentJob(BaseModel):
    id: str | None  # None when hidden
    kind: str | None
    state: str | None
    progress: float | None
    stage: str | None
    hidden: bool  # the caller may not see this job: the worker is busy, and that is all it says


class WorkerView(BaseModel):
    name: str  # host:pid, as jobs name their worker
    host: str
    pid: int
    queues: list[str]
    device: str  # cpu, cuda:0, ...
    dtype: str | None
    device_name: str | None
    memory_bytes: int | None  # the device's total memory; None on CPU
    versions: dict[str, str | None]
    status: str  # online | stale (missed 3 heartbeats) | stopped (clean shutdown)
    heartbeat_seconds: float
    heartbeat_age_s: float
    started_at: str | None
    heartbeat_at: str | None
    stopped_at: str | None
    current_job: CurrentJob | None
    jobs_done: int
    jobs_failed: int


class WorkerList(BaseModel):
    items: list[WorkerView]
    stale_after_beats: int


@router.get("", summary="Every worker process: device, queues, online/stale/stopped, the job it runs",
            response_model=WorkerList, responses=errors(401, 403, 503, why={403: "token without read scope"}))
def list_workers(session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    require_any(tok, "read")
    now = utcnow()
    return {"items": [_view(session, tok, w, now) for w in fleet.list_workers(session)],
            "stale_after_beats": fleet.STALE_BEATS}


def _view(session: Session, tok: ApiToken | None, w: Worker, now) -> dict:
    return {
        "name": w.name, "host": w.host, "pid": w.pid, "queues": w.queues or [], "device": w.device, "dtype": w.dtype,
        "device_name": w.device_name, "memory_bytes": w.memory_bytes, "versions": w.versions or {},
        "status": fleet.status(w, now), "heartbeat_seconds": w.heartbeat_seconds,
        "heartbeat_age_s": round(fleet.heartbeat_age(w, now), 3), "started_at": iso_utc(w.started_at),
        "heartbeat_at": iso_utc(w.heartbeat_at), "stopped_at": iso_utc(w.stopped_at),
        "current_job": _current_job(session, tok, w.current_job_id), "jobs_done": w.jobs_done,
        "jobs_failed": w.jobs_failed,
    }


def _current_job(session: Session, tok: ApiToken | None, job_id: str | None) -> dict | None:
    job = session.get(Job, job_id) if job_id else None
    if job is None:
        return None
    if not job_visible(session, tok, job):
        return {"id": None, "kind": None, "state": None, "progress": None, "stage": None, "hidden": True}
    return {"id": job.id, "kind": job.kind, "state": job.state, "progress": job.progress, "stage": job.stage,
            "hidden": False}
