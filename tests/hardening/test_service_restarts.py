"""Issue 27 item 10: restart the parts a deployment runs on, under load, and the hub rides it out.

A private Redis (the broker) and, separately, a private PostgreSQL cluster (initdb under /tmp, on their own ports;
the shared servers on 6379 and 5432 are never touched) are stopped for a few seconds and started again while
uploads, tag moves, job submits and reads run against a live API with a real worker. Through it all:

- every answer is the operation's success or a 503 with Retry-After: no 500, no dropped connection, none slower than
  the request timeout;
- the API recovers by itself (the same process; its pool drops dead connections and opens new ones);
- nothing is lost or doubled: versions are numbered without gaps and every 201 names one of them, every 202 job runs
  to "succeeded" exactly once (one terminal event, events numbered without gaps), the tag names a version.

While only the broker is down a submit is still a 202: the job row is the record, the dispatch is deferred and the
workers' recovery sweep sends it once the broker is back (workers/recovery.py), so there is nothing to refuse.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from tests.api.conftest import start_hub
from tests.conftest import PrivateRedis, free_port, start_worker, stop_process, wait_until
from tests.hardening.conftest import lora_files, register_base, upload

REQUEST_TIMEOUT_S = 15  # a request that takes longer counts as a hang
OK = {"upload": 201, "tag": 200, "submit": 202, "read": 200}


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (initdb under /tmp, trust auth, a free port). PostgreSQL refuses to
    run as root: as root the server runs as the `postgres` user."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins and not shutil.which("pg_ctl"):
            pytest.fail("no pg_ctl (PostgreSQL server binaries) on this machine")
        self.bin = bins[-1].parent if bins else Path(shutil.which("pg_ctl")).parent
        self.port, self.dir = free_port(), Path(tempfile.mkdtemp(prefix="adaptarium-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)




@dataclass
class Load:
    """Uploads, tag moves, submits and reads in four threads, each answer recorded with its time."""

    live: object
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list = field(default_factory=list)  # (op, status or error name, seconds, started at, body)
    versions: list = field(default_factory=list)  # numbers answered by 201s
    jobs: list = field(default_factory=list)  # ids answered by 202s
    jobs_before: int = 0  # jobs stored before the load began

    def _loop(self, op: str, step) -> None:
        with self.live.client() as c:
            c.timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = step(c)
                    status, body = r.status_code, r
                except Exception as exc:  # refused, reset, timed out (the API must never): recorded as a failure
                    status, body = type(exc).__name__, None
                self.answers.append((op, status, time.monotonic() - started, started, body))
                time.sleep(0.05)

    def _upload(self, c):
        r = upload(c, "restart", "a", lora_files())
        if r.status_code == 201:
            self.versions.append(r.json()["number"])
        return r

    def _tag(self, c):
        return c.put("/api/v1/adapters/restart/a/tags/prod", json={"version": max(self.versions, default=1)})

    def _submit(self, c):
        r = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0.1}})
        if r.status_code == 202:
            self.jobs.append(r.json()["id"])
        return r

    def run(self) -> list[threading.Thread]:
        steps = {"upload": self._upload, "tag": self._tag, "submit": self._submit,
                 "read": lambda c: c.get("/api/v1/adapters")}
        threads = [threading.Thread(target=self._loop, args=(op, step), daemon=True) for op, step in steps.items()]
        for t in threads:
            t.start()
        return threads


def _ride_out(live, stop_part, start_part, down_s: float = 4.0) -> tuple[Load, float, float]:
    """Run the load, stop the part for `down_s` seconds, start it again, keep the load on a little; returns the load
    and the outage's start and end (monotonic)."""
    with live.client() as c:  # the first version exists before the tag mover starts
        assert upload(c, "restart", "a", lora_files()).status_code == 201
    load = Load(live, versions=[1], jobs_before=live.scalar("select count(*) from jobs"))
    threads = load.run()
    time.sleep(2)
    down_at = time.monotonic()
    stop_part()
    time.sleep(down_s)
    start_part()
    up_at = time.monotonic()
    time.sleep(6)
    load.stop.set()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S + 5)
    return load, down_at, up_at


def _check_answers(load: Load) -> Counter:
    """Every answer the operation's success or a 503 + Retry-After, none a hang; returns the (op, status) counts."""
    counts = Counter((op, status) for op, status, *_ in load.answers)
    print(dict(counts))
    bad = [(op, status, round(took, 2)) for op, status, took, _, _ in load.answers if status not in (OK[op], 503)]
    assert bad == [], bad
    slowest = max(took for _, _, took, _, _ in load.answers)
    print(f"slowest answer {slowest:.2f} s")
    assert slowest < REQUEST_TIMEOUT_S
    for op, status, _, _, body in load.answers:
        if status == 503:
            assert body.headers.get("Retry-After"), (op, body.text)
    for op in OK:  # the load ran: each operation succeeded again after the outage
        assert counts[(op, OK[op])] > 0, op
    return counts


def _check_nothing_lost_or_doubled(live, load: Load, counts: Counter) -> None:
    with live.client() as c:
        listed = [v["number"] for v in c.get("/api/v1/adapters/restart/a/versions").json()["items"]]
        assert sorted(listed) == list(range(1, len(listed) + 1))  # gapless, each number once
        assert set(load.versions) <= set(listed)
        in_doubt = counts[("upload", 503)]  # a commit that landed as its connection died answers 503
        assert len(load.versions) <= len(listed) <= len(load.versions) + in_doubt
        tag = c.get("/api/v1/adapters/restart/a").json()["tags"]
        assert tag.get("prod") in listed, tag
        assert len(set(load.jobs)) == len(load.jobs)
        for job_id in load.jobs:
            job = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job_id}").json())["state"] in
                             ("succeeded", "failed", "cancelled") and j, 90, f"job {job_id} to end")
            assert job["state"] == "succeeded", job
            events = c.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            ends = [e for e in events if e["type"] == "state" and e["data"]["state"] == "succeeded"]
            assert len(ends) == 1, events
    stored = live.scalar("select count(*) from jobs where kind = 'noop'") - load.jobs_before
    assert len(load.jobs) <= stored <= len(load.jobs) + counts[("submit", 503)]


def _worker_env(live, broker_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTARIUM_")}
    return {**env, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
            "ADAPTARIUM_DATABASE_URL": live.settings.database_url,
            "ADAPTARIUM_STORAGE_URL": live.settings.storage_url, "ADAPTARIUM_BROKER_URL": broker_url,
            # a job whose worker lost the database mid-run is taken over after this long, not the default minute
            "ADAPTARIUM_STALE_SECONDS": "5"}


def _wait_for_worker(live) -> None:
    with live.client() as c:
        probe = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
        wait_until(lambda: c.get(f"/api/v1/jobs/{probe['id']}").json()["state"] == "succeeded", 90,
                   "the worker's first job")


def test_a_redis_restart_under_load_loses_and_doubles_nothing(tmp_path):
    broker = PrivateRedis()
    broker.start()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=broker.url)
    register_base(live)
    worker = start_worker(_worker_env(live, broker.url), "redis-restart")
    try:
        _wait_for_worker(live)
        load, down_at, up_at = _ride_out(live, broker.stop, broker.start)
        counts = _check_answers(load)
        during = [(op, status) for op, status, _, started, _ in load.answers if down_at < started < up_at - 1]
        assert ("submit", 202) in during  # the broker away, a submit is still accepted (its dispatch deferred)
        _check_nothing_lost_or_doubled(live, load, counts)
        assert redis.Redis.from_url(broker.url).ping()
    finally:
        stop_process(worker)
        stop()
        live.app.state.engine.dispose()
        broker.remove()


@pytest.mark.postgres
def test_a_postgres_restart_under_load_answers_503_then_recovers_and_loses_nothing(tmp_path):
    database = PrivatePostgres()
    database.start()
    broker_url = "redis://127.0.0.1:6379/0"
    redis.Redis.from_url(broker_url).flushdb()
    live, stop = start_hub(tmp_path, database.url, ADAPTARIUM_BROKER_URL=broker_url)
    register_base(live)
    worker = start_worker(_worker_env(live, broker_url), "pg-restart")
    try:
        _wait_for_worker(live)
        load, down_at, up_at = _ride_out(live, database.stop, database.start)
        counts = _check_answers(load)
        during = Counter(status for _, status, _, started, _ in load.answers if down_at + 0.5 < started < up_at - 0.5)
        print("answers while PostgreSQL was down:", dict(during))
        assert during[503] > 0 and set(during) <= {503}  # down: every answer a 503 (nothing can be read or written)
        _check_nothing_lost_or_doubled(live, load, counts)
    finally:
        stop_process(worker)
        stop()
        live.app.state.engine.dispose()
        database.remove()
