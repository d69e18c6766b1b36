"""The job service: create (validated, idempotent), read, event log, cancel, retry, and the runner's state changes.

The job row is the source of truth, not the broker: a worker claims a job with one conditional UPDATE (queued, or
running with a stale heartbeat), so duplicate or redelivered messages are harmless, and a job whose message was lost
(a Redis restart, a killed worker) can simply be dispatched again. Torch-free; used by the API and the workers.
"""
from __future__ import annotations

import functools
import hashlib
import json
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub import dispatch, fleet, registry
from hub.job_kinds import KINDS, KindSpec, queue_for, references, validate_job
from hub.job_params import JobParamsError
from hub.models import ArtifactVersion, Job, JobEvent, iso_utc, utcnow
from hub.registry import Forbidden, Invalid, NotFound

TERMINAL = ("succeeded", "failed", "cancelled")
PUBLISHING = "publishing"  # the stage of a running job whose worker is storing its result: too late to cancel


def job_to_dict(job: Job) -> dict:
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "progress": job.progress, "stage": job.stage,
        "inputs": job.inputs, "params": job.params, "output": job.output, "results": job.results,
        "result_objects": _result_objects(job),
        "result": job.result, "error": job.error, "attempts": job.attempts, "worker": job.worker, "queue": job.queue,
        "created_by": job.created_by, "created_at": iso_utc(job.created_at), "started_at": iso_utc(job.started_at),
        "finished_at": iso_utc(job.finished_at), "device": job.device,
    }


def _result_objects(job: Job) -> list[str]:
    """What each result ref names: a kit's adapter and its seed dataset share one name, so a ref alone is ambiguous."""
    results = job.results or []
    spec = KINDS.get(job.kind)
    return spec.result_objects(job.params, len(results)) if spec else ["adapter"] * len(results)


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
    go in through `_insert_job`, Core statements with no ORM unit of work (that was a sixth of a submit)."""
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


def list_jobs(session: Session, state: str | None = None, kind: str | None = None, limit: int = 200,
              id_prefix: str | None = None, before: tuple[datetime, str] | None = None) -> list[Job]:
    """Newest first, ties by id: a total order, so `before` (the (created_at, id) of the last job a page held) starts
    the next page exactly where that one ended, however many jobs arrive meanwhile."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if before is not None:
        at, job_id = before
        query = query.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id < job_id)))
    if id_prefix:  # the CLI's git-style short ids; escaped, so a '%' or '_' matches only itself
        query = query.where(Job.id.startswith(id_prefix, autoescape=True))
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))


def _append(session: Session, job_id: str, type_: str, data: dict) -> JobEvent:
    """The job's next event, inside the caller's transaction. On PostgreSQL a writer that does not lock the job row
    (a worker's log line) can take the same seq between our read and our insert: the insert then runs again in a
    savepoint, which leaves the caller's state change standing (a cancel must not fail on its log line). SQLite
    serialises writers, so there the first try is the only one."""
    for attempt in range(5):
        seq = (session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)) or 0) + 1
        event = JobEvent(job_id=job_id, seq=seq, type=type_, data=data)
        if session.get_bind().dialect.name != "postgresql":
            session.add(event)
            session.flush()
            return event
        try:
            with session.begin_nested():
                session.add(event)
            return event
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


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


def _change(session: Session, job_id: str, condition, **values) -> bool:
    """One compare-and-set on the job row: `UPDATE jobs SET ... WHERE id = :id AND <condition>`; True when it
    matched. Every state change goes through one, so two writers (a cancel and a worker's claim, two retries, a dead
    worker's late finish and its successor's) can never both act on the same state: the database picks the first
    and the other finds its condition false (on PostgreSQL a concurrent UPDATE waits for the first to commit and
    re-checks its WHERE on the row it left)."""
    return session.execute(update(Job).where(Job.id == job_id, condition).values(**values)).rowcount == 1


def _not_publishing():
    return or_(Job.stage.is_(None), Job.stage != PUBLISHING)


def request_cancel(session_factory: sessionmaker, job_id: str, settings=None) -> Job:
    """Queued: cancelled at once and its Celery message revoked, so workers discard it on delivery (should the
    broadcast miss a worker, the claim refuses a job that is no longer queued). Running: a cancel request is recorded,
    which the worker sees at its next progress report or cancellation check; it then stops, publishes nothing and
    ends the job "cancelled" (hub.jobs.begin_publishing refuses a job with a request). A job already publishing its
    result can no longer be cancelled: 409, like a finished one. Each branch is a compare-and-set, so a cancel that
    races a worker's claim lands on whichever state the claim left (it was lost before)."""
    revoke = None
    with session_factory() as s:
        if _change(s, job_id, Job.state == "queued", state="cancelled", finished_at=utcnow()):
            _append(s, job_id, "state", {"state": "cancelled"})
            revoke = s.scalar(select(Job.celery_task_id).where(Job.id == job_id))
        elif _change(s, job_id, (Job.state == "running") & Job.cancel_requested.is_(False) & _not_publishing(),
                     cancel_requested=True):
            _append(s, job_id, "log", {"message": "cancellation requested"})
        else:  # finished, publishing, already asked to stop, or no such job: the row says which
            job = get_job(s, job_id)
            if job.state in TERMINAL:
                raise registry.Conflict(f"job {job_id} already {job.state}")
            if job.stage == PUBLISHING and not job.cancel_requested:
                raise registry.Conflict(f"job {job_id} is publishing its result; it can no longer be cancelled")
            # a job that moved while we looked (retried to queued again) or one already asked to stop: as it is
        s.commit()
    if revoke:
        try:
            dispatch.revoke(revoke, settings=settings)
        except Exception as exc:  # broker down: the claim check is the backstop
            append_event(session_factory, job_id, "log", {"message": f"could not revoke the queued message: {exc}"})
    with session_factory() as s:
        return get_job(s, job_id)


def retry(session_factory: sessionmaker, job_id: str, settings=None) -> Job:
    """A failed or cancelled job queued again under a new Celery message id (the old one may be revoked). A
    compare-and-set, so two concurrent retries make one run, not two."""
    task_id = uuid.uuid4().hex
    with session_factory() as s:
        if not _change(s, job_id, Job.state.in_(("failed", "cancelled")), state="queued", progress=0.0, stage=None,
                       error=None, cancel_requested=False, finished_at=None, started_at=None,
                       celery_task_id=task_id):
            job = get_job(s, job_id)
            raise registry.Conflict(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
        _append(s, job_id, "state", {"state": "queued", "retry": True})
        queue = s.scalar(select(Job.queue).where(Job.id == job_id))
        s.commit()
    _dispatch_or_defer(session_factory, job_id, queue, task_id, settings)
    with session_factory() as s:
        return get_job(s, job_id)


# ------------------------------------------------------------------ used by the runner

def claim(session_factory: sessionmaker, job_id: str, worker: str, stale_after: float) -> bool:
    """Atomically take the job: queued, or running with a heartbeat older than `stale_after` (its worker died).
    The worker's fleet row takes the job as its current one, and the job records the worker's device. A dead
    worker's job that was asked to stop is not run again: it ends "cancelled" here."""
    now = utcnow()
    stale = (Job.state == "running") & (Job.heartbeat_at < now - timedelta(seconds=stale_after))
    with session_factory() as s:
        if not _change(s, job_id, (Job.state == "queued") | (stale & Job.cancel_requested.is_(False)),
                       state="running", attempts=Job.attempts + 1, worker=worker, started_at=now, heartbeat_at=now,
                       stage=None, error=None):
            if _change(s, job_id, stale & Job.cancel_requested.is_(True), state="cancelled", finished_at=now):
                _append(s, job_id, "state", {"state": "cancelled"})
                s.commit()
            else:
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
                    steps: tuple[int, int] | None = None, worker: str | None = None) -> bool:
    """The runner's progress report: the row's progress and stage (and a heartbeat), plus a progress event that
    carries the stage's step and step count when the method reports them (the dashboard's "step N of M").

    Returns whether the worker should go on: False once a cancel was requested, or when the job is no longer this
    worker's (taken over after a missed heartbeat, or finished); the report then changes nothing."""
    progress = round(min(max(fraction, 0.0), 1.0), 4)
    mine = (Job.state == "running") & Job.cancel_requested.is_(False) & _not_publishing()
    if worker is not None:
        mine = mine & (Job.worker == worker)
    with session_factory() as s:
        if not _change(s, job_id, mine, progress=progress, stage=stage, heartbeat_at=utcnow()):
            s.rollback()
            return False
        _append(s, job_id, "progress", {"progress": progress, "stage": stage,
                                        **({"step": steps[0], "total": steps[1]} if steps else {})})
        s.commit()
        return True


def cancel_requested(session_factory: sessionmaker, job_id: str, worker: str | None = None) -> bool:
    """Should the worker stop? A cancel was requested, or (with `worker`) the job is no longer running as its."""
    with session_factory() as s:
        row = s.execute(select(Job.cancel_requested, Job.state, Job.worker).where(Job.id == job_id)).first()
    if row is None or row.cancel_requested:
        return True
    return worker is not None and (row.state != "running" or row.worker != worker)


def begin_publishing(session_factory: sessionmaker, job_id: str, worker: str) -> bool:
    """The runner's last check before it publishes anything: the job is still running as this worker's and nobody
    asked to cancel it. From here a cancel is refused (409), so a cancel that was accepted always means nothing is
    published. False: stop, publish nothing."""
    with session_factory() as s:
        if not _change(s, job_id, (Job.state == "running") & (Job.worker == worker) & Job.cancel_requested.is_(False),
                       stage=PUBLISHING, heartbeat_at=utcnow()):
            s.rollback()
            return False
        s.commit()
        return True


def finish(session_factory: sessionmaker, job_id: str, state: str, results: list[str] | None = None,
           result: dict | None = None, error: dict | None = None, trace: str | None = None,
           worker: str | None = None) -> bool:
    """The end of a run: its final state, the versions it published or the data it returned, or its error. Only a
    running job ends, and with `worker` only while it is that worker's: a worker that lost its job (a missed heartbeat
    and another worker took over) changes nothing. Returns whether it ended the job."""
    values: dict = {"state": state, "finished_at": utcnow(), "error": error}
    if results is not None:
        values["results"] = results
    if result is not None:
        values["result"] = result
    if state == "succeeded":
        values["progress"] = 1.0
    condition = Job.state == "running"
    if worker is not None:
        condition = condition & (Job.worker == worker)
    with session_factory() as s:
        if not _change(s, job_id, condition, **values):
            s.rollback()
            if worker is not None:
                fleet.job_finished(s, worker, job_id, "cancelled")  # free the worker, count nothing
                s.commit()
            return False
        if trace:
            _append(s, job_id, "error", {**(error or {}), "traceback": trace})
        _append(s, job_id, "state", {"state": state, **({"results": results} if results else {})})
        fleet.job_finished(s, worker or s.scalar(select(Job.worker).where(Job.id == job_id)), job_id, state)
        s.commit()
        return True
