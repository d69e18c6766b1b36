"""The fleet view (GET /api/v1/workers) against real Celery worker processes: registration, the job a worker runs,
what a caller who may not see that job reads, a SIGKILLed worker turning stale while its job moves on, a clean
shutdown, and a heartbeat that outlives a database outage.

A hub on SQLite + local blobs with workers on Redis db 7 (this file's own; flushed before each test). Heartbeats
every 0.5 s (stale after 1.5 s) and the fast recovery timings of test_reliability.py keep it to seconds.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx
import pytest
import redis

from typer.testing import CliRunner

from hub.cli import app as cli_app
from tests.api.conftest import TINY_BASE, start_hub
from tests.conftest import start_worker, stop_process, wait_until

REDIS_URL = "redis://127.0.0.1:6379/7"  # 4 and 5 are taken by the hardening tests
FAST = {"ADAPTARIUM_WORKER_HEARTBEAT_SECONDS": "0.5", "ADAPTARIUM_VISIBILITY_TIMEOUT": "6",
        "ADAPTARIUM_STALE_SECONDS": "3", "ADAPTARIUM_RECOVERY_SECONDS": "1", "ADAPTARIUM_REQUEUE_QUEUED_AFTER": "2"}


@pytest.fixture
def fleet_hub(tmp_path, tiny_base):
    """(live hub, start(name) -> (process, fleet name)); every worker started is stopped afterwards."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=REDIS_URL)
    with live.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
    env = {**os.environ, **FAST, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": REDIS_URL}
    procs: list[subprocess.Popen] = []

    def start(name: str) -> tuple[subprocess.Popen, str]:
        procs.append(start_worker(env, name))
        return procs[-1], f"{socket.gethostname()}:{procs[-1].pid}"  # the solo pool runs jobs in that process

    yield live, start
    for proc in procs:
        stop_process(proc)
    stop()


def worker_row(client: httpx.Client, name: str) -> dict | None:
    r = client.get("/api/v1/workers")
    assert r.status_code == 200, r.text
    return next((w for w in r.json()["items"] if w["name"] == name), None)


def test_a_worker_shows_its_queues_device_and_running_job_and_reads_stopped_after_a_clean_shutdown(fleet_hub):
    live, start = fleet_hub
    proc, name = start("fleet-one")
    with live.client() as c:
        row = wait_until(lambda: (w := worker_row(c, name)) and w["status"] == "online" and w, 90, "registration")
        assert (row["host"], row["pid"], row["queues"]) == (socket.gethostname(), proc.pid, ["cpu", "gpu"])
        assert (row["device"], row["dtype"], row["memory_bytes"]) == ("cpu", "float32", None)
        assert row["versions"]["torch"] and row["versions"]["adaptarium"]
        assert (row["current_job"], row["jobs_done"], row["jobs_failed"]) == (None, 0, 0)
        beat = row["heartbeat_at"]
        wait_until(lambda: worker_row(c, name)["heartbeat_at"] != beat, 10, "a heartbeat")

        job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 4}}).json()
        running = wait_until(lambda: (w := worker_row(c, name))["current_job"] and w, 60, "the job to start")
        assert running["current_job"]["id"] == job["id"]
        assert (running["current_job"]["kind"], running["current_job"]["hidden"]) == ("noop", False)
        shown = c.get(f"/api/v1/jobs/{job['id']}").json()
        assert (shown["worker"], shown["device"]) == (name, "cpu (float32)")

        wait_until(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "succeeded", 60, "the job to end")
        row = worker_row(c, name)
        assert (row["current_job"], row["jobs_done"], row["jobs_failed"]) == (None, 1, 0)

        proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        proc.wait(timeout=30)
        row = worker_row(c, name)
        assert row["status"] == "stopped" and row["stopped_at"], row
    with live.client(token=None) as anonymous:
        assert anonymous.get("/api/v1/workers").status_code == 401


def test_a_caller_who_may_not_see_the_running_job_reads_busy_without_its_id(fleet_hub):
    live, start = fleet_hub
    _, name = start("fleet-private")
    outsider = live.token("elsewhere", "read")
    with live.client() as admin, live.client(token=outsider) as other:
        assert admin.post("/api/v1/namespaces", json={"name": "fleet-secret", "private": True}).status_code == 201
        job = admin.post("/api/v1/jobs", json={
            "kind": "train", "output": {"namespace": "fleet-secret", "name": "hidden"},
            "params": {"base": TINY_BASE, "task": "builtin:caesar_shift?n=64&seed=0", "steps": 5000, "rank": 4,
                       "batch_size": 4}}).json()
        mine = wait_until(lambda: (w := worker_row(admin, name)) and w["current_job"] and w, 90, "the job to start")
        assert (mine["current_job"]["id"], mine["current_job"]["hidden"]) == (job["id"], False)

        r = other.get("/api/v1/workers")
        assert r.status_code == 200
        theirs = next(w for w in r.json()["items"] if w["name"] == name)
        assert theirs["current_job"] == {"id": None, "kind": None, "state": None, "progress": None, "stage": None,
                                         "hidden": True}
        assert job["id"] not in r.text
        assert other.get(f"/api/v1/jobs/{job['id']}").status_code == 404  # the jobs routes' rule, the same one
        for caller, shows in ((outsider, "busy (hidden)"), (live.admin_token, f"{job['id'][:8]} train")):
            cli = CliRunner().invoke(cli_app, ["workers"], env={"ADAPTARIUM_URL": live.url, "ADAPTARIUM_TOKEN": caller,
                                                                "COLUMNS": "250"})
            assert cli.exit_code == 0 and name in cli.output and shows in cli.output, cli.output
            if caller == outsider:
                assert job["id"][:8] not in cli.output

        assert admin.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
        wait_until(lambda: worker_row(admin, name)["current_job"] is None, 60, "the cancelled job to let go")
        row = worker_row(admin, name)
        assert (row["jobs_done"], row["jobs_failed"]) == (0, 0)  # a cancelled job counts as neither


def test_a_sigkilled_worker_turns_stale_and_its_job_finishes_on_another_worker(fleet_hub):
    live, start = fleet_hub
    doomed, doomed_name = start("fleet-doomed")
    with live.client() as c:
        wait_until(lambda: worker_row(c, doomed_name), 90, "registration")
        job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 6}}).json()
        wait_until(lambda: (worker_row(c, doomed_name)["current_job"] or {}).get("id") == job["id"], 60,
                   "the doomed worker to run the job")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        stale = wait_until(lambda: (w := worker_row(c, doomed_name))["status"] == "stale" and w, 10, "stale")
        assert stale["heartbeat_age_s"] > 3 * 0.5
        assert stale["current_job"]["id"] == job["id"]  # still what it was running when it went silent

        _, rescuer_name = start("fleet-rescuer")
        done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job['id']}").json())["state"] == "succeeded" and j,
                          120, "the recovery to run the job on the other worker")
        assert (done["worker"], done["attempts"], done["device"]) == (rescuer_name, 2, "cpu (float32)")
        dead, rescuer = worker_row(c, doomed_name), worker_row(c, rescuer_name)
        assert (dead["status"], dead["current_job"], dead["jobs_done"]) == ("stale", None, 0)
        assert (rescuer["status"], rescuer["current_job"], rescuer["jobs_done"]) == ("online", None, 1)
        names = [w["name"] for w in c.get("/api/v1/workers").json()["items"]]
        assert names.index(rescuer_name) < names.index(doomed_name)  # online ones first


@pytest.fixture
def pg_services(private_pg_db, tmp_path):
    """The worker's per-process services on a PostgreSQL database of this test's own, heartbeat every 0.2 s."""
    from hub.migrate import upgrade
    from hub.settings import Settings
    from workers.runner import Services

    upgrade(private_pg_db)
    services = Services(Settings.from_env({"ADAPTARIUM_DATABASE_URL": private_pg_db,
                                           "ADAPTARIUM_DATA_DIR": str(tmp_path),
                                           "ADAPTARIUM_WORKER_HEARTBEAT_SECONDS": "0.2"}))
    yield services
    services.engine.dispose()


def _heartbeat_at(services, name: str):
    from sqlalchemy import select

    from hub.models import Worker

    with services.session_factory() as s:
        return s.scalar(select(Worker.heartbeat_at).where(Worker.name == name))


@pytest.mark.postgres
def test_the_heartbeat_outlives_a_database_outage_and_a_deleted_row(pg_services):
    """The table vanishes for a while (every beat fails), then comes back: the thread is still beating. A row deleted
    under it is registered again. A clean stop marks it stopped."""
    from sqlalchemy import text

    from workers import fleet
    from workers.runner import worker_name

    name = worker_name()
    fleet.start(["cpu"], pg_services)
    try:
        first = wait_until(lambda: _heartbeat_at(pg_services, name), 10, "registration")
        with pg_services.engine.begin() as conn:
            conn.execute(text("ALTER TABLE workers RENAME TO workers_away"))
        time.sleep(1.5)  # about seven beats, each failing with "relation workers does not exist"
        with pg_services.engine.begin() as conn:
            conn.execute(text("ALTER TABLE workers_away RENAME TO workers"))
        back = wait_until(lambda: (at := _heartbeat_at(pg_services, name)) > first and at, 10, "beats after the outage")
        assert fleet._thread is not None and fleet._thread.is_alive()

        with pg_services.engine.begin() as conn:
            conn.execute(text("DELETE FROM workers"))
        wait_until(lambda: (at := _heartbeat_at(pg_services, name)) and at > back, 10, "the row registered again")
    finally:
        fleet.stop()
    with pg_services.engine.connect() as conn:
        assert conn.execute(text("SELECT stopped_at IS NOT NULL FROM workers WHERE name = :n"), {"n": name}).scalar()
