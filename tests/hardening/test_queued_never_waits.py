"""Issue 27 item 9: a queued job never waits while a worker of its queue is idle.

A job whose broker message is gone (Redis restarted, the dispatch failed while the broker was away, a delivery whose
task died before its claim) is still "queued" in its row, and only a worker's recovery sweep sends it again. That sweep
used to run every 30 s, and only for jobs queued over 60 s: an idle worker sat next to such a job for a minute and
more (the benchmark saw 9). Now an idle worker sweeps every ADAPTARIUM_RECOVERY_SECONDS (2) once it has been idle
that long, and sends again any job of its queues queued for ADAPTARIUM_REQUEUE_QUEUED_AFTER (5 s): a message that
existed would have reached an idle worker in milliseconds.

Real Celery workers with the default recovery timings, Redis db 0 (flushed first), the hub on SQLite.
"""
from __future__ import annotations

import os
from datetime import datetime

import redis

from tests.api.conftest import start_hub
from tests.conftest import free_port, start_worker, stop_process, wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


def _env(live) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTARIUM_")}  # the defaults, not a test's
    return {**env, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
            "ADAPTARIUM_DATABASE_URL": live.settings.database_url,
            "ADAPTARIUM_STORAGE_URL": live.settings.storage_url, "ADAPTARIUM_BROKER_URL": REDIS_URL}


def _job(c, job_id: str) -> dict:
    return c.get(f"/api/v1/jobs/{job_id}").json()


def _ended(c, job_id: str, timeout: float) -> dict:
    return wait_until(lambda: (j := _job(c, job_id))["state"] in ("succeeded", "failed", "cancelled") and j,
                      timeout, f"job {job_id} to end")


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_a_job_whose_message_was_lost_runs_as_soon_as_its_worker_is_idle(tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=REDIS_URL)
    worker = start_worker(_env(live), "lost-message")
    try:
        with live.client() as c:
            warm = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
            _ended(c, warm["id"], 90)
            first = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 3}}).json()
            wait_until(lambda: _job(c, first["id"])["state"] == "running", 30, "the first job to start")
            second = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
            broker = redis.Redis.from_url(REDIS_URL)
            assert broker.llen("cpu") == 1  # the second job's message waits behind the busy worker...
            broker.delete("cpu")  # ...and is lost, as a Redis restart loses it
            done_first = _ended(c, first["id"], 30)
            done_second = _ended(c, second["id"], 30)
        waited = (_at(done_second["started_at"]) - _at(done_first["finished_at"])).total_seconds()
        print(f"the job with no message started {waited:.1f} s after its worker fell idle")
        assert done_second["state"] == "succeeded" and waited < 8
    finally:
        stop_process(worker)
        stop()
        live.app.state.engine.dispose()


def test_a_job_never_sent_runs_at_once_on_an_idle_worker_and_a_busy_worker_hoards_nothing(tmp_path):
    """The API's broker is unreachable (dispatch deferred: the job is stored, no message exists); two idle workers on
    the live broker. Then one worker is kept busy: a new job goes to the idle one at once (no message waits in the
    busy worker's prefetch)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    workers = [start_worker(_env(live), "idle-a"), start_worker(_env(live), "idle-b")]
    try:
        with live.client() as c:
            wait_until(lambda: sum(w["status"] == "online" for w in c.get("/api/v1/workers").json()["items"]) == 2,
                       90, "both workers to be up")
            never_sent = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
            done = _ended(c, never_sent["id"], 60)
            queued_for = (_at(done["started_at"]) - _at(done["created_at"])).total_seconds()
            print(f"a job with no message ran after {queued_for:.1f} s")
            assert done["state"] == "succeeded" and queued_for < 10
        live.app.state.settings = _with_broker(live.settings, REDIS_URL)  # the API's broker comes back
        with live.client() as c:
            for _ in range(3):
                busy = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 3}}).json()
                wait_until(lambda: _job(c, busy["id"])["state"] == "running", 30, "the long job to start")
                quick = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
                ran = _ended(c, quick["id"], 30)
                assert ran["worker"] != _job(c, busy["id"])["worker"]
                assert (_at(ran["started_at"]) - _at(ran["created_at"])).total_seconds() < 1.5
                _ended(c, busy["id"], 30)
    finally:
        for w in workers:
            stop_process(w)
        stop()
        live.app.state.engine.dispose()


def _with_broker(settings, url: str):
    from dataclasses import replace

    return replace(settings, broker_url=url)
