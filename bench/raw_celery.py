"""The baseline of bench/jobs.py: plain Celery with nothing of Adaptarium in the path.

Same broker and the same worker settings as the job service (hub.dispatch.celery_config: acks late, prefetch 1,
solo pool), plus a Redis result backend so the client can wait for the answer. Its one task returns the moment it
started, which gives both the one-way time (send -> task running) and the full round trip (send -> result back).

    RAW_CELERY_BROKER=redis://127.0.0.1:6379/11 celery -A bench.raw_celery worker -Q raw --pool solo
"""
from __future__ import annotations

import os
import time

from celery import Celery

from hub.dispatch import celery_config

BROKER = os.environ.get("RAW_CELERY_BROKER", "redis://127.0.0.1:6379/11")
app = Celery("raw-baseline")
app.conf.update(celery_config(BROKER), result_backend=BROKER, task_default_queue="raw")


@app.task(name="raw.started_at")
def started_at() -> float:
    return time.time()
