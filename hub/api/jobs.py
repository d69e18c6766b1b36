"""Job routes: submit (202), list, show, events (JSON or Server-Sent Events), cancel, retry.

The service logic (validation per kind, idempotency, dispatch to Celery, state changes) lives in `hub.jobs`; these
routes add authorization and the two renderings of the event log. A job is visible to whoever can read every
namespace it names, and submitting one needs write scope on the namespace it publishes into.
"""
from __future__ import annotations

import asyncio
import json
import os

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel as Schema
from sqlalchemy.orm import Session

from hub import jobs as job_service
from hub.api.deps import can_read, db, require, token
from hub.models import ApiToken, Job, Namespace, iso_utc

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
TERMINAL = {"succeeded", "failed", "cancelled"}


class JobIn(Schema):
    kind: str
    inputs: list[str] = []
    params: dict = {}
    output: dict | str | None = None  # {"namespace", "name"} or the shorthand "namespace/name"

    def output_dict(self) -> dict | None:
        if isinstance(self.output, str):
            namespace, _, name = self.output.partition("/")
            return {"namespace": namespace, "name": name}
        return self.output


def _namespaces_of(inputs: list[str], output: dict | None) -> set[str]:
    names = {ref.split("/", 1)[0] for ref in inputs if "/" in ref}
    if output and isinstance(output.get("namespace"), str):
        names.add(output["namespace"])
    return names


def _visible(session: Session, tok: ApiToken | None, job: Job) -> bool:
    for name in _namespaces_of(job.inputs or [], job.output):
        ns = session.query(Namespace).filter_by(name=name).one_or_none()
        if ns is not None and not can_read(tok, ns):
            return False
    return True


def _get_visible(session: Session, tok: ApiToken | None, job_id: str) -> Job:
    job = job_service.get_job(session, job_id)
    if not _visible(session, tok, job):
        require(tok, None, "read")  # 401 / 403 rather than revealing the job
    return job


@router.post("", status_code=202, summary="Submit a job")
def submit(body: JobIn, request: Request, session: Session = Depends(db), tok: ApiToken | None = Depends(token),
           idempotency_key: str | None = Header(default=None, alias="Idempotency-Key")) -> dict:
    output = body.output_dict()
    target = (output or {}).get("namespace")
    if not isinstance(target, str):  # evaluate writes metrics onto its input's version
        target = body.inputs[0].split("/", 1)[0] if body.inputs else None
    namespace = session.query(Namespace).filter_by(name=target).one_or_none() if target else None
    require(tok, namespace or target, "write")
    for name in _namespaces_of(body.inputs, None):
        ns = session.query(Namespace).filter_by(name=name).one_or_none()
        if ns is not None:
            require(tok, ns, "read")
    session.rollback()
    job = job_service.create_job(
        request.app.state.session_factory, kind=body.kind, inputs=body.inputs,
        params=body.params, output=output, created_by=f"token:{tok.prefix}" if tok else None,
        idempotency_key=idempotency_key, settings=request.app.state.settings,
        queue_routes=os.environ.get("ADAPTARIUM_QUEUE_ROUTES"))
    return job_service.job_to_dict(job)


@router.get("", summary="List jobs, newest first")
def list_jobs(state: str | None = None, kind: str | None = None, limit: int = 200, session: Session = Depends(db),
              tok: ApiToken | None = Depends(token)) -> dict:
    found = job_service.list_jobs(session, state=state, kind=kind, limit=min(max(limit, 1), 1000))
    return {"items": [job_service.job_to_dict(j) for j in found if _visible(session, tok, j)]}


@router.get("/{job_id}")
def show(job_id: str, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    return job_service.job_to_dict(_get_visible(session, tok, job_id))


@router.get("/{job_id}/events", summary="Event log: JSON after a sequence number, or a Server-Sent Events stream")
async def events(job_id: str, request: Request, after: int = 0, session: Session = Depends(db),
                 tok: ApiToken | None = Depends(token), last_event_id: str | None = Header(default=None)):
    _get_visible(session, tok, job_id)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return {"items": [_event(e) for e in job_service.events_after(session, job_id, after)]}
    if last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    session.close()
    return StreamingResponse(_stream(request, job_id, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(request: Request, job_id: str, after: int):
    """Poll the event table and push new rows; end once the job is finished and everything has been sent."""
    factory = request.app.state.session_factory

    def fetch(after_seq: int):
        with factory() as s:
            job = job_service.get_job(s, job_id)
            return job.state, [_event(e) for e in job_service.events_after(s, job_id, after_seq)]

    idle = 0
    while not await request.is_disconnected():
        state, new = await run_in_threadpool(fetch, after)
        for item in new:
            after = item["seq"]
            yield f"id: {item['seq']}\nevent: {item['type']}\ndata: {json.dumps(item)}\n\n"
        if state in TERMINAL and not new:
            yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"
            return
        idle = 0 if new else idle + 1
        if idle and idle % 60 == 0:
            yield ": keep-alive\n\n"
        await asyncio.sleep(0.25)


def _event(e) -> dict:
    return {"seq": e.seq, "at": iso_utc(e.at), "type": e.type, "data": e.data}


@router.post("/{job_id}/cancel")
def cancel(job_id: str, request: Request, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    job = _get_visible(session, tok, job_id)
    _require_write(session, tok, job)
    session.rollback()
    return job_service.job_to_dict(job_service.request_cancel(request.app.state.session_factory, job_id,
                                                              settings=request.app.state.settings))


@router.post("/{job_id}/retry", status_code=202)
def retry(job_id: str, request: Request, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    job = _get_visible(session, tok, job_id)
    _require_write(session, tok, job)
    session.rollback()
    return job_service.job_to_dict(job_service.retry(request.app.state.session_factory, job_id,
                                                       settings=request.app.state.settings))


def _require_write(session: Session, tok: ApiToken | None, job: Job) -> None:
    target = (job.output or {}).get("namespace") or ((job.inputs or ["/"])[0].split("/", 1)[0])
    ns = session.query(Namespace).filter_by(name=target).one_or_none()
    require(tok, ns or target, "write")
