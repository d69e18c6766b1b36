"""Re-dispatch jobs whose broker message was lost: a Redis restart (it keeps nothing on disk here), a dispatch that
failed while the broker was away, a delivery whose task died before its claim (acknowledged, so gone), a killed
worker on the embedded broker, which cannot requeue unacknowledged messages.

Runs as a thread in each worker. It acts only once its worker has been idle for a whole sweep period, and only on
jobs routed to the queues it consumes. That is what makes a re-send both safe and needed: a message that existed
would have reached an idle worker of its queue within milliseconds, so a job still queued after
`requeue_queued_after` seconds while such a worker idles has no message this worker can get (a job once
sat queued for minutes beside an idle worker while the sweep ran every 30 s, only for jobs queued over 60 s). Extra
copies are harmless: the runner's claim (hub.jobs.claim) lets exactly one delivery run a job, and this worker sends
the same job again at most once per `requeue_queued_after`.
"""
from __future__ import annotations

import logging
import threading
import time

from hub import dispatch, jobs
from workers import runner

log = logging.getLogger("adaptarium.recovery")
_stop = threading.Event()


class Activity:
    """Whether this process runs a job, and since when it has not (the task marks both ends)."""

    def __init__(self):
        self._running = 0
        self._idle_since = time.monotonic()
        self._lock = threading.Lock()

    def job_started(self) -> None:
        with self._lock:
            self._running += 1

    def job_ended(self) -> None:
        with self._lock:
            self._running -= 1
            if not self._running:
                self._idle_since = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last job ended (or since start); 0 while a job runs."""
        with self._lock:
            return 0.0 if self._running else time.monotonic() - self._idle_since


activity = Activity()
_sent: dict[str, float] = {}  # job id -> when this worker last sent it again


def sweep(queues: list[str]) -> list[str]:
    """Send again the stale jobs of these queues that this worker has not just sent; returns their ids."""
    services = runner.Services.get()
    settings = services.settings
    with services.session_factory() as s:
        found = [j for j in jobs.stale_jobs(s, settings.stale_seconds, settings.requeue_queued_after)
                 if j.queue in queues]
    now = time.monotonic()
    for job_id in [job_id for job_id in _sent if job_id not in {j.id for j in found}]:
        del _sent[job_id]  # ended or running again: forget it
    sent = []
    for job in found:
        if now - _sent.get(job.id, float("-inf")) < settings.requeue_queued_after:
            continue
        log.warning("re-dispatching %s job %s (message presumed lost)", job.state, job.id)
        dispatch.send_job(job.id, job.queue, job.celery_task_id, settings=settings)
        _sent[job.id] = now
        sent.append(job.id)
    return sent


def _loop(queues: list[str]) -> None:
    period = runner.Services.get().settings.recovery_seconds
    while not _stop.wait(period):
        if activity.idle_for() < period:  # running, or just finished: its next message may be on its way
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
