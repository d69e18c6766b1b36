"""The job service: create (validated, idempotent), read, event log, cancel, retry, and the runner's state changes.

The job row is the source of truth, not the broker: a worker claims a job with one conditional UPDATE (queued, or
running with a stale heartbeat), so duplicate or redelivered messages are harmless, and a job whose message was lost
(a Redis restart, a killed worker) can simply be dispatched again. Torch-free; used by the API and the workers.
"""
from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub import dispatch, fleet, registry
from hub.job_kinds import KINDS, KindSpec, queue_for, references, validate_job
from hub.job_params import JobParamsError
from hub.models import ArtifactVersion, Job, JobEvent, iso_utc, utcnow
from hub.registry import Forbidden, Invalid, NotFound

TERMINAL = ("succeeded", "failed", "cancelled")


def job_to_dict(job: Job) -> dict:
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "progress": job.progress, "stage": job.stage,
        "inputs": job.inputs, "params": job.params, "output": job.output, "results": job.results,
        "result": job.result, "error": job.error, "attempts": job.attempts, "worker": job.worker, "queue": job.queue,
        "created_by": job.created_by, "created_at": iso_utc(job.created_at), "started_at": iso_utc(job.started_at),
        "finished_at": iso_utc(job.finished_at), "device": job.device,
    }


@dataclass
class Resolved:
    """What a kind's submit check sees: the input versions and every referenced version, already authorised."""

    session: Session
    params: dict
    inputs: list[ArtifactVersion]
    refs: dict[str, list[ArtifactVersion]] = field(default_factory=dict)  # params field -> versions it names
    readable: Callable[[str], bool] = lambda namespace: True


def authorise(spec: KindSpec, inputs: list[str], params: dict, readable: Callable[[str], bool]) -> None:
    """Read access on every object the job names, before anything is looked up (so a 404 never tells a caller
    that a private object exists)."""
    for reference in references(spec, inputs, params):
        if reference.namespace and not readable(reference.namespace):
            raise Forbidden(f"{reference.where}: no read access to namespace {reference.namespace!r}")


def resolve(session: Session, spec: KindSpec, inputs: list[str], params: dict,
            readable: Callable[[str], bool]) -> Resolved:
    """Every reference must name an existing version that is not yanked (bases: a registered base); inputs must
    share one base; then the kind's own check runs and may complete the params."""
    resolved = Resolved(session=session, params=dict(params), inputs=[], readable=readable)
    for reference in references(spec, inputs, params):
        if reference.object == "base":
            if registry.find_base(session, reference.value) is None:
                raise Invalid(f"{reference.where}: unknown base {reference.value!r}")
            continue
        ns, name, version_ref = registry.parse_ref(reference.value)
        try:
            version = registry.resolve_version(session, reference.object, ns, name, version_ref)
        except NotFound as exc:
            raise Invalid(f"{reference.where} {reference.value!r}: {exc.detail}") from None
        if version.yanked:
            raise Invalid(f"{reference.where} {reference.value!r} is yanked; pick another version")
        if reference.where.startswith("inputs"):
            resolved.inputs.append(version)
        else:
            resolved.refs.setdefault(reference.where.split(".", 1)[1].split("[", 1)[0], []).append(version)
    bases = {v.artifact.base.name if v.artifact.base else None for v in resolved.inputs}
    if len(bases) > 1:
        raise Invalid(f"inputs belong to different bases ({', '.join(sorted(map(str, bases)))}); "
                      "a job's inputs must share one base")
    if spec.check is not None:
        resolved.params = spec.check(resolved)
    return resolved


def _request_hash(kind: str, inputs: list[str], params: dict, output: dict | None) -> str:
    body = json.dumps([kind, inputs, params, output], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def create_job(session_factory: sessionmaker, *, kind: str, inputs: list[str], params: dict, output: dict | None,
               created_by: str | None = None, idempotency_key: str | None = None, queue_routes: str | None = None,
               settings=None, readable: Callable[[str], bool] = lambda namespace: True, caller: str = "anonymous",
               session: Session | None = None) -> Job:
    """Validate, authorise every reference, insert and dispatch.

    An Idempotency-Key belongs to its caller: the same caller with the same key and the same request gets the first
    job back; with a different request, a 409. Another caller's key is another key.

    `session`: the API request's own session (its token and namespace lookups already ran on it), so a submit holds
    one pooled connection instead of two; it is committed here and left open for its owner to close. The two rows
    go in through `_insert_job`, Core statements with no ORM unit of work (that was a sixth of a submit, issue 11)."""
    scoped_key = f"{caller}:{idempotency_key}" if idempotency_key else None
    request_hash = _request_hash(kind, inputs, params, output) if scoped_key else None  # only a key is compared
    with (nullcontext(session) if session is not None else session_factory()) as s:
        if scoped_key:
            existing = s.scalars(select(Job).where(Job.idempotency_key == scoped_key)).first()
            if existing is not None:
                return _same_request(existing, request_hash)
        spec = KINDS.get(kind)
        try:
            params = validate_job(kind, inputs, params, output)
        except JobParamsError as exc:
            raise Invalid(str(exc)) from None
        authorise(spec, inputs, params, readable)
        params = resolve(s, spec, inputs, params, readable).params
        now = utcnow()
        row = dict(id=uuid.uuid4().hex, kind=kind, state="queued", progress=0.0, inputs=list(inputs), params=params,
                   output=output or None, results=[], attempts=0, idempotency_key=scoped_key,
                   request_hash=request_hash, created_by=created_by, queue=queue_for(kind, queue_routes),
                   celery_task_id=uuid.uuid4().hex, cancel_requested=False, created_at=now)
        try:
            _insert_job(s, row)
            s.commit()
        except IntegrityError:  # the same idempotency key raced us
            s.rollback()
            existing = s.scalars(select(Job).where(Job.idempotency_key == scoped_key)).first()
            if existing is None:
                raise
            return _same_request(existing, request_hash)
    # sent before the transient Job for the answer is built: what happens before the send is on the way to the worker
    _dispatch_or_defer(session_factory, row["id"], row["queue"], row["celery_task_id"], settings)
    return Job(**row)


def _insert_job(session: Session, row: dict) -> None:
    """The job row and a new job's first event ("queued"). On PostgreSQL one statement (a data-modifying CTE), so a
    submit waits for one round trip fewer; SQLite runs in-process and takes the two plain INSERTs. The values go in as
    parameters of statements built once, so SQLAlchemy reuses their compiled form instead of building and
    cache-keying a statement per job."""
    first = {"seq": 1, "type": "state", "at": row["created_at"], "data": {"state": "queued"}}
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(Job.__table__), row)
        session.execute(insert(JobEvent.__table__), {"job_id": row["id"], **first})
        return
    # nothing read yet (a cached token, a job naming no objects): the one statement is a transaction of its own,
    # which spares psycopg's BEGIN and the COMMIT, two of the submit's three round trips
    registry.one_statement_transactions(session)
    session.execute(_job_with_first_event(tuple(row)), {**row, **{f"event_{k}": v for k, v in first.items()}})


@functools.cache
def _job_with_first_event(columns: tuple[str, ...]):
    """INSERT the job (these columns, bound by name) and, in the same statement, its first event (event_*)."""
    jobs, events = Job.__table__, JobEvent.__table__
    new_job = insert(jobs).values({c: bindparam(c, type_=jobs.c[c].type) for c in columns}).returning(jobs.c.id)
    new_job = new_job.cte("new_job")
    names = ["seq", "type", "at", "data"]
    values = select(new_job.c.id, *(bindparam(f"event_{n}", type_=events.c[n].type) for n in names))
    return insert(events).from_select(["job_id", *names], values)


def _same_request(existing: Job, request_hash: str) -> Job:
    if existing.request_hash != request_hash:
        raise registry.Conflict("this Idempotency-Key was already used for a different request; use a new key")
    return existing


def _dispatch_or_defer(session_factory: sessionmaker, job_id: str, queue: str, task_id: str, settings) -> None:
    """Send the job to the broker; if the broker is down the job stays queued (the row is the truth) and the workers'
    recovery sweep sends it again once the broker is back, so the caller still gets its 202."""
    try:
        dispatch.send_job(job_id, queue, task_id, settings=settings)
    except Exception as exc:  # kombu raises OperationalError and friends; any failure means "not sent"
        append_event(session_factory, job_id, "log", {"message": f"broker unavailable, dispatch deferred: {exc}"})


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def wait_for(session_factory: sessionmaker, job_id: str, seconds: float) -> Job:
    """The job once it has finished, or as it is after `seconds` (polled; a short wait for interactive jobs)."""
    deadline = time.monotonic() + seconds
    while True:
        with session_factory() as s:
            job = get_job(s, job_id)
            if job.state in TERMINAL or time.monotonic() >= deadline:
                return job
        time.sleep(0.1)


def list_jobs(session: Session, state: str | None = None, kind: str | None = None, limit: int = 200) -> list[Job]:
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))


def _append(session: Session, job_id: str, type_: str, data: dict) -> JobEvent:
    seq = (session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)) or 0) + 1
    event = JobEvent(job_id=job_id, seq=seq, type=type_, data=data)
    session.add(event)
    session.flush()
    return event


def append_event(session_factory: sessionmaker, job_id: str, type_: str, data: dict) -> None:
    """Add an event in its own transaction (gapless seq per job; retried if two writers collide)."""
    for attempt in range(5):
        with session_factory() as s:
            try:
                _append(s, job_id, type_, data)
                s.commit()
                return
            except IntegrityError:
                s.rollback()
                if attempt == 4:
                    raise


def events_after(session: Session, job_id: str, after: int = 0, limit: int = 1000) -> list[JobEvent]:
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after)
                                .order_by(JobEvent.seq).limit(limit)))


def request_cancel(session_factory: sessionmaker, job_id: str, settings=None) -> Job:
    """Queued: cancelled at once and its Celery message revoked, so workers discard it on delivery (should the
    broadcast miss a worker, the runner's claim still refuses a cancelled job). Running: flagged, and the runner stops
    at its next step."""
    revoke = None
    with session_factory() as s:
        job = get_job(s, job_id)
        if job.state in TERMINAL:
            raise registry.Conflict(f"job {job_id} already {job.state}")
        if job.state == "queued":
            job.state, job.finished_at = "cancelled", utcnow()
            _append(s, job_id, "state", {"state": "cancelled"})
            revoke = job.celery_task_id
        else:
            job.cancel_requested = True
            _append(s, job_id, "log", {"message": "cancellation requested"})
        s.commit()
    if revoke:
        try:
            dispatch.revoke(revoke, settings=settings)
        except Exception as exc:  # broker down: the claim check is the backstop
            append_event(session_factory, job_id, "log", {"message": f"could not revoke the queued message: {exc}"})
    with session_factory() as s:
        return get_job(s, job_id)


def retry(session_factory: sessionmaker, job_id: str, settings=None) -> Job:
    with session_factory() as s:
        job = get_job(s, job_id)
        if job.state not in ("failed", "cancelled"):
            raise registry.Conflict(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
        job.state, job.progress, job.stage, job.error = "queued", 0.0, None, None
        job.cancel_requested, job.finished_at, job.started_at = False, None, None
        job.celery_task_id = uuid.uuid4().hex  # the old message id may be revoked
        _append(s, job_id, "state", {"state": "queued", "retry": True})
        s.commit()
        _dispatch_or_defer(session_factory, job.id, job.queue, job.celery_task_id, settings)
    with session_factory() as s:
        return get_job(s, job_id)


# ------------------------------------------------------------------ used by the runner

def claim(session_factory: sessionmaker, job_id: str, worker: str, stale_after: float) -> bool:
    """Atomically take the job: queued, or running with a heartbeat older than `stale_after` (its worker died).
    The worker's fleet row takes the job as its current one, and the job records the worker's device."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after)
    with session_factory() as s:
        result = s.execute(
            update(Job).where(Job.id == job_id)
            .where((Job.state == "queued") | ((Job.state == "running") & (Job.heartbeat_at < stale)))
            .values(state="running", attempts=Job.attempts + 1, worker=worker, started_at=now, heartbeat_at=now,
                    error=None)
        )
        if result.rowcount != 1:
            s.rollback()
            return False
        # after the job row, as finish() does: both lock the job before the worker row, so they cannot deadlock
        s.execute(update(Job).where(Job.id == job_id).values(device=fleet.job_claimed(s, worker, job_id)))
        _append(s, job_id, "state", {"state": "running", "worker": worker})
        s.commit()
        return True


def heartbeat(session_factory: sessionmaker, job_id: str, worker: str) -> None:
    with session_factory() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.state == "running", Job.worker == worker)
                  .values(heartbeat_at=utcnow()))
        s.commit()


def stale_jobs(session: Session, stale_after: float, queued_after: float) -> list[Job]:
    """Jobs whose message may be lost: running with no heartbeat lately, or queued for too long."""
    now = utcnow()
    return list(session.scalars(select(Job).where(
        ((Job.state == "running") & (Job.heartbeat_at < now - timedelta(seconds=stale_after)))
        | ((Job.state == "queued") & (Job.created_at < now - timedelta(seconds=queued_after))))))



def record_progress(session_factory: sessionmaker, job_id: str, fraction: float, stage: str | None,
                    steps: tuple[int, int] | None = None) -> None:
    """The runner's progress report: the row's progress and stage (and a heartbeat), plus a progress event that
    carries the stage's step and step count when the method reports them (the dashboard's "step N of M")."""
    with session_factory() as s:
        job = s.get(Job, job_id)
        job.progress, job.stage, job.heartbeat_at = round(min(max(fraction, 0.0), 1.0), 4), stage, utcnow()
        _append(s, job_id, "progress", {"progress": job.progress, "stage": stage,
                                        **({"step": steps[0], "total": steps[1]} if steps else {})})
        s.commit()


def cancel_requested(session_factory: sessionmaker, job_id: str) -> bool:
    with session_factory() as s:
        return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish(session_factory: sessionmaker, job_id: str, state: str, results: list[str] | None = None,
           result: dict | None = None, error: dict | None = None, trace: str | None = None) -> None:
    """The end of a run: its final state, the versions it published or the data it returned, or its error."""
    with session_factory() as s:
        job = s.get(Job, job_id)
        job.state, job.finished_at = state, utcnow()
        if results is not None:
            job.results = results
        if result is not None:
            job.result = result
        if state == "succeeded":
            job.progress = 1.0
        job.error = error
        if trace:
            _append(s, job_id, "error", {**(error or {}), "traceback": trace})
        _append(s, job_id, "state", {"state": state, **({"results": results} if results else {})})
        fleet.job_finished(s, job.worker, job_id, state)
        s.commit()
