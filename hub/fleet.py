"""The fleet view's rows: every worker process registers, keeps its row fresh, and says which job it runs.

Torch-free, like hub.jobs: the worker's heartbeat thread (workers/fleet.py) gathers the facts (device, versions) and
calls `beat`; hub.jobs calls `job_claimed` / `job_finished` inside its own claim and finish transactions, so a
worker's current job and its counters never disagree with the job rows; the API reads `list_workers` and `status`.

Status is computed, never stored: a worker killed with SIGKILL writes nothing, so "stale" can only be the age of its
last heartbeat. The threshold is STALE_BEATS of the worker's own interval (the row carries it), so a hub and a
worker configured with different ADAPTARIUM_WORKER_HEARTBEAT_SECONDS still agree on what "late" means.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Worker, utcnow

STALE_BEATS = 3  # a worker is stale once it missed this many heartbeats in a row
FORGET_AFTER = timedelta(days=7)  # rows of workers stopped or silent this long are deleted when another registers
FIELDS = ("host", "pid", "queues", "device", "dtype", "device_name", "memory_bytes", "versions", "heartbeat_seconds")


def register(session_factory: sessionmaker, name: str, facts: dict) -> None:
    """(Re)start a worker's row: fresh counters, no current job. A pid reused on a host takes over the old row."""
    now = utcnow()
    values = {k: facts[k] for k in FIELDS if k in facts}
    fresh = dict(values, started_at=now, heartbeat_at=now, stopped_at=None, current_job_id=None, jobs_done=0,
                 jobs_failed=0)
    with session_factory() as s:
        s.execute(delete(Worker).where(Worker.heartbeat_at < now - FORGET_AFTER))
        if s.execute(update(Worker).where(Worker.name == name).values(**fresh)).rowcount == 0:
            s.add(Worker(name=name, **fresh))
        try:
            s.commit()
        except IntegrityError:  # registered concurrently (cannot happen for one pid, but stay correct)
            s.rollback()


def beat(session_factory: sessionmaker, name: str, facts: dict) -> None:
    """A heartbeat; the facts are refreshed too (a device chosen after start shows up). A missing row (the database
    was restored, or pruned) is registered again rather than beating into nothing."""
    values = {k: facts[k] for k in FIELDS if k in facts}
    with session_factory() as s:
        done = s.execute(update(Worker).where(Worker.name == name)
                         .values(heartbeat_at=utcnow(), stopped_at=None, **values)).rowcount
        s.commit()
    if not done:
        register(session_factory, name, facts)


def stopped(session_factory: sessionmaker, name: str) -> None:
    """A clean shutdown: the row stays (with its counters) but reads "stopped" instead of turning stale."""
    with session_factory() as s:
        s.execute(update(Worker).where(Worker.name == name).values(stopped_at=utcnow(), current_job_id=None))
        s.commit()


def job_claimed(session: Session, worker: str, job_id: str) -> str | None:
    """In the claim's transaction: `worker` now runs the job (any other row naming it, a dead worker whose job was
    taken over, lets go of it). Returns the device label to record on the job, None for an unregistered worker."""
    session.execute(update(Worker).where(Worker.current_job_id == job_id, Worker.name != worker)
                    .values(current_job_id=None))
    row = session.scalars(select(Worker).where(Worker.name == worker)).first()
    if row is None:
        return None
    row.current_job_id = job_id
    return device_label(row)


def job_finished(session: Session, worker: str | None, job_id: str, state: str) -> None:
    """In the finish's transaction: the worker is free again and counts the job (succeeded: done; failed: failed;
    cancelled: neither)."""
    if not worker:
        return
    counts = {"succeeded": {"jobs_done": Worker.jobs_done + 1},
              "failed": {"jobs_failed": Worker.jobs_failed + 1}}.get(state, {})
    if counts:
        session.execute(update(Worker).where(Worker.name == worker).values(**counts))
    session.execute(update(Worker).where(Worker.name == worker, Worker.current_job_id == job_id)
                    .values(current_job_id=None))


def device_label(row: Worker) -> str:
    """"cpu (float32)", "cuda:0 (NVIDIA H100 80GB HBM3, bfloat16)": what a job page says it ran on."""
    details = [d for d in (row.device_name if row.device_name != row.device else None, row.dtype) if d]
    return f"{row.device} ({', '.join(details)})" if details else row.device


def status(row: Worker, now: datetime | None = None) -> str:
    """online | stale | stopped (see the module docstring)."""
    if row.stopped_at is not None:
        return "stopped"
    return "stale" if heartbeat_age(row, now) > STALE_BEATS * row.heartbeat_seconds else "online"


def heartbeat_age(row: Worker, now: datetime | None = None) -> float:
    at = row.heartbeat_at if row.heartbeat_at.tzinfo else row.heartbeat_at.replace(tzinfo=timezone.utc)
    return max(0.0, ((now or utcnow()) - at).total_seconds())


def list_workers(session: Session) -> list[Worker]:
    """Online first, then stale, then stopped; by name within each."""
    now = utcnow()
    order = {"online": 0, "stale": 1, "stopped": 2}
    return sorted(session.scalars(select(Worker)), key=lambda w: (order[status(w, now)], w.name))
