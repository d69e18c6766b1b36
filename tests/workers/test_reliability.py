"""At-least-once jobs: a SIGKILLed worker, a Redis restart, an input yanked while queued.

Each test runs real Celery worker processes against Redis db 10 and a hub on SQLite + local blobs. Short recovery
timings (visibility timeout, heartbeat staleness, sweep period) are set through the environment so the tests take
seconds instead of the production defaults' minutes.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
import redis

from tests.api.conftest import TINY_BASE, make_adapter_dir, start_hub, upload
from tests.conftest import PrivateRedis, start_worker, stop_process, wait_until

REDIS_URL = "redis://127.0.0.1:6379/10"
FAST_RECOVERY = {"ADAPTARIUM_VISIBILITY_TIMEOUT": "6", "ADAPTARIUM_STALE_SECONDS": "3",
                 "ADAPTARIUM_RECOVERY_SECONDS": "1", "ADAPTARIUM_REQUEUE_QUEUED_AFTER": "2"}


def _hub_env(tmp_path, tiny_base, broker_url: str):
    redis.Redis.from_url(broker_url).flushdb()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=broker_url)
    with live.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
    env = {**os.environ, **FAST_RECOVERY, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": broker_url}
    workers: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        workers.append(start_worker(env, name))
        return workers[-1]

    yield live, start
    for proc in workers:
        stop_process(proc)
    stop()


@pytest.fixture
def hub_env(tmp_path, tiny_base):
    yield from _hub_env(tmp_path, tiny_base, REDIS_URL)


@pytest.fixture
def private_broker():
    """A Redis of the test's own: restarting the shared one would drop every other user's queued messages."""
    broker = PrivateRedis()
    broker.start()
    yield broker
    broker.remove()


@pytest.fixture
def hub_env_private_broker(tmp_path, tiny_base, private_broker):
    yield from _hub_env(tmp_path, tiny_base, private_broker.url)


def test_sigkilled_worker_job_completes_exactly_once_on_a_new_worker(hub_env):
    live, start_worker = hub_env
    first = start_worker("doomed")
    with live.client() as c:
        job = c.post("/api/v1/jobs", json={
            "kind": "train", "output": {"namespace": "rel", "name": "survivor"},
            "params": {"base": TINY_BASE, "task": "builtin:caesar_shift?n=64&seed=0", "steps": 150, "rank": 4,
                       "batch_size": 8, "lr": 1e-3}}).json()
        wait_until(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] > 0.05, 120, "training to start")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "running"  # nobody finished it
        start_worker("rescuer")
        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job['id']}").json())["state"] in
                          ("succeeded", "failed") and j, 240, "the job to finish on the new worker")
        assert done["state"] == "succeeded", done
        assert done["attempts"] == 2
        assert done["results"] == ["rel/survivor@1"]
        assert [v["number"] for v in c.get("/api/v1/adapters/rel/survivor/versions").json()["items"]] == [1]
    assert live.scalar("select count(*) from adapter_versions where job_id is not null") == 1


def test_job_queued_during_a_redis_restart_still_runs(hub_env_private_broker, private_broker):
    live, start_worker = hub_env_private_broker
    with live.client() as c:
        job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0.2}}).json()
        assert redis.Redis.from_url(private_broker.url).llen("cpu") == 1  # the message is in Redis...
        private_broker.stop()
        private_broker.start()
        assert redis.Redis.from_url(private_broker.url).llen("cpu") == 0  # ...and Redis lost it (nothing on disk)
        start_worker("after-restart")
        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job['id']}").json())["state"] in
                          ("succeeded", "failed") and j, 60, "the requeued job")
        assert done["state"] == "succeeded" and done["attempts"] == 1


def test_input_yanked_while_queued_fails_with_a_clear_error(hub_env, tmp_path):
    live, start_worker = hub_env
    with live.client() as c:
        upload(c, "rel", "short-lived", make_adapter_dir(tmp_path / "a"))
        job = c.post("/api/v1/jobs", json={"kind": "evaluate", "inputs": ["rel/short-lived@1"],
                                           "params": {"task": "builtin:caesar_shift?n=4&test=4"}}).json()
        c.delete("/api/v1/adapters/rel/short-lived/versions/1")
        start_worker("yank")
        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job['id']}").json())["state"] in
                          ("succeeded", "failed") and j, 120, "the job to fail")
        assert done["state"] == "failed"
        assert "yanked" in done["error"]["message"]
        events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
        assert any(e["type"] == "error" and "Traceback" in e["data"]["traceback"] for e in events)


def test_cancelling_a_queued_job_revokes_its_message(hub_env):
    """The worker is busy, so the second job waits in Redis; cancelling it broadcasts a Celery revoke that the worker
    records, and the job never runs."""
    from celery import Celery

    live, start_worker = hub_env
    start_worker("revoker")
    with live.client() as c:
        busy = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 3}}).json()
        wait_until(lambda: c.get(f"/api/v1/jobs/{busy['id']}").json()["state"] == "running", 60, "the first job")
        queued = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0.1}}).json()
        assert redis.Redis.from_url(REDIS_URL).llen("cpu") == 1
        cancelled = c.post(f"/api/v1/jobs/{queued['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        wait_until(lambda: c.get(f"/api/v1/jobs/{busy['id']}").json()["state"] == "succeeded", 60, "the first job")
        wait_until(lambda: redis.Redis.from_url(REDIS_URL).llen("cpu") == 0, 30, "the revoked message to be taken")
        task_id = live.scalar(f"select celery_task_id from jobs where id = '{queued['id']}'")
        control = Celery(broker=REDIS_URL).control
        revoked = wait_until(lambda: control.inspect(timeout=2).revoked(), 30, "the worker to answer")
        assert any(task_id in ids for ids in revoked.values()), revoked
        job = c.get(f"/api/v1/jobs/{queued['id']}").json()
        assert (job["state"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)
        # a retry gets a fresh message id, so the revoke does not swallow it
        assert c.post(f"/api/v1/jobs/{queued['id']}/retry").status_code == 202
        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{queued['id']}").json())["state"] == "succeeded" and j,
                          60, "the retried job")
        assert done["attempts"] == 1


def test_job_submitted_while_the_broker_is_down_is_accepted_and_runs_later(tmp_path, tiny_base):
    """A broker nobody listens on: the POST still answers 202 and the job runs once a worker on a live broker
    sweeps it up (the job row, not the broker, is the record)."""
    from tests.conftest import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=dead)
    env = {**os.environ, **FAST_RECOVERY, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": REDIS_URL}
    redis.Redis.from_url(REDIS_URL).flushdb()
    worker = None
    try:
        with live.client() as c:
            r = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0.1}})
            assert r.status_code == 202, r.text
            job = r.json()
            events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
            assert any("dispatch deferred" in e["data"].get("message", "") for e in events)
            worker = start_worker(env, "sweeper")
            done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job['id']}").json())["state"] == "succeeded" and j,
                              60, "the deferred job to run")
            assert done["attempts"] == 1
    finally:
        if worker is not None:
            stop_process(worker)
        stop()
