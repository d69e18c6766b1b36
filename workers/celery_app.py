"""The Celery app the workers run: one task, `adaptarium.run_job`, plus the recovery loop and the fleet heartbeat
(workers/fleet.py) started with each worker.

Acks are late and a lost worker's message is requeued (Redis: after the visibility timeout), so a job survives a
killed worker; the runner's claim makes a second delivery harmless. Routing is by queue name (gpu, cpu), chosen per
kind when the job is dispatched (hub.job_kinds.queue_for).
"""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from hub.dispatch import TASK_NAME, celery_config
from hub.settings import Settings

app = Celery("adaptarium")
_settings = Settings.from_env()
app.conf.update(celery_config(_settings.broker_url, _settings.visibility_timeout))
app.conf.worker_hijack_root_logger = False


@app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: str) -> str:
    from workers.recovery import activity
    from workers.runner import run_job as run

    activity.job_started()
    try:
        return run(job_id)
    finally:
        activity.job_ended()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _stop_recovery(**_):
    from workers.recovery import stop

    stop()


@worker_process_init.connect
def _join_fleet(**_):
    """Sent in the process that runs the jobs (the solo pool's only process, or each prefork child): that process is
    the one the fleet view shows, under the name the runner claims jobs with, and the one whose idleness the recovery
    sweep (workers/recovery.py) waits for."""
    from workers import fleet, recovery

    queues = [q.name for q in app.amqp.queues.consume_from.values()] or ["gpu", "cpu"]
    fleet.start(queues)
    # the recovery sweep runs where jobs run, so "idle" means this process runs no job (a prefork main process
    # would always look idle and re-send jobs that only wait for a free child)
    recovery.start(queues)


@worker_shutdown.connect
@worker_process_shutdown.connect
def _leave_fleet(**_):
    from workers import fleet

    fleet.stop()
