"""Job routes: submit (202), list, show, events (JSON or Server-Sent Events), cancel, retry.

The service logic (validation per kind, idempotency, dispatch to Celery, state changes) lives in `hub.jobs`; these
routes add authorization and the two renderings of the event log. A job is visible to whoever can read every
namespace it names, and submitting one needs write scope on the namespace it publishes into.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import json
from datetime import datetime

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from hub import auth, jobs as job_service
from hub.api.deps import can_read, db, require, require_any, token, token_without_session
from hub.api.job_waits import job_waits
from hub.api.openapi import errors, job_submit_schema
from hub.job_kinds import KINDS, describe, namespaces_named, validate_job
from hub.job_params import JobParamsError
from hub.models import JOB_STATES, ApiToken, Job, Namespace, iso_utc
from hub.registry import Invalid, NotFound

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=errors(503))
TERMINAL = {"succeeded", "failed", "cancelled"}
MAX_IDEMPOTENCY_KEY = 200  # stored with its caller's id in a 300-character column: a longer key was a 500 on PostgreSQL


class JobIn(BaseModel):
    """A submit's body: strict (no "8" for 8, no true for 1) and closed (an unknown key is a 422, not ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra=lambda schema, _cls: job_submit_schema(schema, KINDS))
    kind: str
    inputs: list[str] = []
    params: dict = {}
    output: dict | str | None = None  # {"namespace", "name"} or the shorthand "namespace/name"

    def output_dict(self) -> dict | None:
        if isinstance(self.output, str):
            namespace, _, name = self.output.partition("/")
            return {"namespace": namespace, "name": name}
        return self.output


class JobView(BaseModel):
    id: str
    kind: str
    state: str
    progress: float
    stage: str | None
    inputs: list[str]
    params: dict
    output: dict | None
    results: list[str]  # refs of the versions the job published (or, for evaluate, the version it scored)
    result_objects: list[str] = []  # what each of them names: adapter, dataset or generator
    result: dict | None  # data the job returned (evaluate's scores, infer's completions)
    error: dict | None
    attempts: int
    worker: str | None  # host:pid of the worker that claimed it last (GET /api/v1/workers lists them)
    device: str | None  # what that worker ran it on, e.g. "cuda:0 (NVIDIA H100 80GB HBM3, bfloat16)"
    queue: str
    created_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobList(BaseModel):
    items: list[JobView]
    next_cursor: str | None = None  # pass as ?cursor= for the next (older) page; null on the last page


class EventView(BaseModel):
    seq: int
    at: str | None
    type: str  # state | progress | log | metric | error
    data: dict


class EventList(BaseModel):
    items: list[EventView]


def _readable(session: Session, tok: ApiToken | None):
    """namespace name -> may the caller read it? (An unknown namespace holds nothing to hide.) Each name is looked
    up once per request, however many jobs of a listing name it."""
    @functools.cache
    def readable(name: str) -> bool:
        ns = session.query(Namespace).filter_by(name=name).one_or_none()
        return ns is None or can_read(tok, ns)
    return readable


def _is_creator(tok: ApiToken | None, job: Job) -> bool:
    return tok is not None and job.created_by is not None and job.created_by == f"token:{tok.prefix}"


def _visible(session: Session, tok: ApiToken | None, job: Job, readable=None) -> bool:
    """A job is shown only to callers who may read everything it touches: inputs, referenced objects, output. A job
    that names no namespace at all (noop; infer or evaluate on a base alone, whose prompts and completions are the
    creator's own) is shown only to its creator and to hub admins."""
    named = namespaces_named(job.kind, job.inputs, job.params, job.output)
    if not named:
        return _is_creator(tok, job) or auth.allows(tok, None, "admin")
    readable = readable or _readable(session, tok)
    return all(readable(name) for name in named)


def _get_visible(session: Session, tok: ApiToken | None, job_id: str) -> Job:
    job = job_service.get_job(session, job_id)
    if not _visible(session, tok, job):
        raise NotFound(f"no job {job_id!r}")  # the same answer as for a job that does not exist
    return job


def _may_manage(session: Session, tok: ApiToken | None, job: Job) -> bool:
    """May the caller cancel or retry the job (and see which token made it)? Hub admins may; for a job that writes
    into the registry (a new version, or evaluate's metrics onto its input), a writer of that namespace; for one that
    writes nothing (noop, infer), its creator or a writer of its input's namespace."""
    if auth.allows(tok, None, "admin"):
        return True
    spec = KINDS.get(job.kind)
    writes_nothing = spec is not None and not spec.publishes and spec.output != "metrics"
    if writes_nothing and _is_creator(tok, job):
        return True
    target = (job.output or {}).get("namespace") or ((job.inputs or [""])[0].split("/", 1)[0])
    if not target:
        return False
    ns = session.query(Namespace).filter_by(name=target).one_or_none()
    return auth.allows(tok, ns or target, "write")


def _view(session: Session, tok: ApiToken | None, job: Job) -> dict:
    """The job as the caller may see it: `created_by` (a token's prefix) only for those who may manage the job."""
    view = job_service.job_to_dict(job)
    if view.get("created_by") and not _may_manage(session, tok, job):
        view["created_by"] = None
    return view


@router.post("", status_code=202, summary="Submit a job", response_model=JobView,
             responses=errors(400, 401, 403, 409, 422, 429, why={
                 403: "no write access to the output, or no read access to something the job names",
                 409: "Idempotency-Key reused for another request",
                 422: "bad kind, inputs, params or output; unknown or yanked references",
                 429: "with ?wait: this token already has its most submits waiting at once (per API process); "
                      "nothing was stored, retry after Retry-After seconds"}))
async def submit(body: JobIn, request: Request, tok: ApiToken | None = Depends(token_without_session),
                 idempotency_key: str | None = Header(default=None, alias="Idempotency-Key",
                                                      max_length=MAX_IDEMPOTENCY_KEY),
                 wait: float = Query(0, ge=0, le=60, description="seconds to wait for the job to finish before "
                                                                  "answering (for short interactive jobs such as infer)")
                 ) -> dict:
    """One trip to a pool thread for the whole submit (its session, checks, insert and dispatch), and none for a
    cached token: a submit is latency-bound (the target: POST -> worker claim within 2x a raw Celery round trip) and
    each trip is a thread wake-up, 0.1-0.7 ms on a busy host. A sync route took four: its session dependency's
    enter and exit, the route itself, and FastAPI's validation of the answer."""
    if not wait:
        return job_service.job_to_dict(await run_in_threadpool(_submit, body, request, tok, idempotency_key))
    waits = job_waits(request.app)
    with waits.slot(f"token-{tok.id}" if tok else "anonymous"):  # a 429 here stores nothing
        job = await run_in_threadpool(_submit, body, request, tok, idempotency_key)
        if job.state not in TERMINAL:
            await waits.until_ended(job.id, wait)  # on the event loop: no pool thread sleeps while it waits
            job = await run_in_threadpool(_reload, request.app.state.session_factory, job.id)
    return job_service.job_to_dict(job)


def _reload(session_factory, job_id: str) -> Job:
    with session_factory() as s:
        return job_service.get_job(s, job_id)


def _submit(body: JobIn, request: Request, tok: ApiToken | None, idempotency_key: str | None) -> Job:
    output = body.output_dict()
    target = (output or {}).get("namespace")
    if not isinstance(target, str):  # evaluate writes metrics onto its input's version
        target = body.inputs[0].split("/", 1)[0] if body.inputs and isinstance(body.inputs[0], str) else None
    with request.app.state.session_factory() as session:
        namespace = session.query(Namespace).filter_by(name=target).one_or_none() if target else None
        spec = KINDS.get(body.kind)
        if spec is not None and spec.output in ("data", "none") and body.inputs:
            require_any(tok, "read")  # infer on a version writes nothing: reading it (checked with the rest) is enough
        elif target is None and spec is not None and not spec.publishes:
            require_any(tok, "write")  # writes nothing to the registry (a base evaluated, infer on a base): any writer
        else:
            require(tok, namespace or target, "write")
        settings = request.app.state.settings
        return job_service.create_job(
            request.app.state.session_factory, kind=body.kind, inputs=body.inputs,
            params=body.params, output=output, created_by=f"token:{tok.prefix}" if tok else None,
            idempotency_key=idempotency_key, settings=settings, queue_routes=settings.queue_routes,
            readable=_readable(session, tok), caller=f"token-{tok.id}" if tok else "anonymous", session=session)


def _cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(json.dumps([job.created_at.isoformat(), job.id]).encode()).decode().rstrip("=")


def _after_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(job_id)
    except (ValueError, TypeError) as exc:  # binascii.Error and json's errors are ValueErrors
        raise Invalid("cursor: not a cursor this hub gave (use a list answer's next_cursor)") from exc


@router.get("", summary="List jobs, newest first, a page at a time", response_model=JobList, responses=errors(401, 422))
def list_jobs(state: str | None = None, kind: str | None = None, limit: int = Query(200, ge=1, le=1000),
              id_prefix: str | None = Query(None, pattern="^[0-9a-f]{1,32}$",
                                            description="only jobs whose id starts with this (short ids)"),
              cursor: str | None = Query(None, max_length=400, description="the next_cursor of the previous page"),
              session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    """`limit` jobs the caller may see (the hidden ones are skipped in the database's order, not counted), and a
    cursor to the next page when there is one."""
    if state is not None and state not in JOB_STATES:  # else a typo answers an empty list, as if nothing matched
        raise Invalid(f"unknown job state {state!r}; one of {', '.join(JOB_STATES)}")
    if kind is not None and kind not in KINDS:
        raise Invalid(f"unknown job kind {kind!r}; one of {', '.join(KINDS)}")
    before = _after_cursor(cursor) if cursor else None
    readable, shown, batch = _readable(session, tok), [], max(limit + 1, 100)
    while len(shown) <= limit:  # one past the page: whether a next page exists
        rows = job_service.list_jobs(session, state=state, kind=kind, limit=batch, id_prefix=id_prefix, before=before)
        shown += [j for j in rows if _visible(session, tok, j, readable)]
        if len(rows) < batch:
            break
        before = (rows[-1].created_at, rows[-1].id)
    page = shown[:limit]
    return {"items": [_view(session, tok, j) for j in page],
            "next_cursor": _cursor(page[-1]) if len(shown) > limit else None}


@router.get("/{job_id}", response_model=JobView, responses=errors(401, 404, 422, why={404: "no such job you may see"}))
def show(job_id: str, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    return _view(session, tok, _get_visible(session, tok, job_id))


@router.get("/{job_id}/events", summary="Event log: JSON after a sequence number, or a Server-Sent Events stream",
            response_model=EventList, responses={  # the SSE stream (Accept: text/event-stream) carries the same items
                200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **errors(401, 404, 422)})
async def events(job_id: str, request: Request, after: int = Query(0, ge=0, le=2**31 - 1),
                 session: Session = Depends(db),
                 tok: ApiToken | None = Depends(token), last_event_id: str | None = Header(default=None)):
    _get_visible(session, tok, job_id)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return {"items": [_event(e) for e in job_service.events_after(session, job_id, after)]}
    if last_event_id and last_event_id.isdigit() and len(last_event_id) <= 9:
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


@router.post("/{job_id}/cancel", response_model=JobView, responses=errors(401, 403, 404, 409, 422, why={
    409: "the job has ended, or is publishing its result (too late to cancel)"}))
def cancel(job_id: str, request: Request, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    job = _get_visible(session, tok, job_id)
    _require_manage(session, tok, job)
    session.rollback()
    return job_service.job_to_dict(job_service.request_cancel(request.app.state.session_factory, job_id,
                                                              settings=request.app.state.settings))


@router.post("/{job_id}/retry", status_code=202, response_model=JobView,
             responses=errors(401, 403, 404, 409, 422))
def retry(job_id: str, request: Request, session: Session = Depends(db), tok: ApiToken | None = Depends(token)) -> dict:
    job = _get_visible(session, tok, job_id)
    _require_manage(session, tok, job)
    _recheck(session, tok, job)
    session.rollback()
    return job_service.job_to_dict(job_service.retry(request.app.state.session_factory, job_id,
                                                       settings=request.app.state.settings))


def _require_manage(session: Session, tok: ApiToken | None, job: Job) -> None:
    """401 without a token, 403 unless the caller may manage the job (see _may_manage)."""
    if _may_manage(session, tok, job):
        return
    if tok is None:
        raise HTTPException(401, "this needs a token with write scope", headers={"WWW-Authenticate": "Bearer"})
    raise HTTPException(403, "only the job's creator, a writer of the namespace it writes into, or a hub admin may "
                             "cancel or retry it")


def _recheck(session: Session, tok: ApiToken | None, job: Job) -> None:
    """A retry runs the submit's checks again, as the caller retrying: params still valid (limits may have
    tightened since), every reference readable, existing and not yanked. A retried job that names a version yanked
    since must be the same 422 as a fresh submit of it, not a 202 and a failure in the worker."""
    spec = KINDS.get(job.kind)
    try:
        params = validate_job(job.kind, job.inputs or [], job.params or {}, job.output)
    except JobParamsError as exc:
        raise Invalid(f"this job can no longer run as submitted: {exc}") from None
    readable = _readable(session, tok)
    job_service.authorise(spec, job.inputs or [], params, readable)
    job_service.resolve(session, spec, job.inputs or [], params, readable)


kinds_router = APIRouter(prefix="/api/v1/job-kinds", tags=["jobs"])


@kinds_router.get("", summary="Every job kind: params JSON schema, inputs, output, queue, reference fields")
def job_kinds() -> dict:
    return {"items": [describe(spec) for spec in KINDS.values()]}
