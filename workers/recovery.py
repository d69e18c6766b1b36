"""Re-dispatch jobs whose broker message was lost: a Redis restart (it keeps nothing on disk here), a killed worker
on the embedded broker, which cannot requeue unacknowledged messages.

Runs as a thread in each worker. It only acts while its worker is idle, so a long but healthy queue is not flooded
with copies, and only on jobs routed to the queues it consumes. Extra copies are harmless: the runner's claim
(hub.jobs.claim) lets exactly one delivery run a job.
"""
from __future__ import annotations

import logging
import threading

from hub import dispatch, jobs
from workers import runner

log = logging.getLogger("adaptarium.recovery")
_stop = threading.Event()
busy = threading.Event()  # set by the task while a job runs in this process


def sweep(queues: list[str]) -> list[str]:
    """Re-send stale jobs for these queues; returns their ids."""
    services = runner.Services.get()
    with services.session_factory() as s:
        found = [j for j in jobs.stale_jobs(s, services.settings.stale_seconds, services.settings.requeue_queued_after)
                 if j.queue in queues]
    for job in found:
        log.warning("re-dispatching job %s (message presumed lost)", job.id)
        dispatch.send_job(job.id, job.queue, job.celery_task_id, settings=services.settings)
    return [job.id for job in found]


def _loop(queues: list[str]) -> None:
    while not _stop.wait(runner.Services.get().settings.recovery_seconds):
        if busy.is_set():
            continue
        try:
            sweep(queues)
        except Exception:
            log.exception("recovery sweep failed")


def start(queues: list[str]) -> None:
    _stop.clear()
    threading.Thread(target=_loop, args=(queues,), daemon=True, name="adaptarium-recovery").start()


def stop() -> None:
    _stop.set()
