"""Issue 10: a worker SIGKILLed in the middle of a job, twice — once while training, once while publishing (after
some of the result's blobs are stored, before its version commits) — and a third worker finishes the job. Whatever
moment a kill hits, nothing partial is visible: no version until one is complete, exactly one version at the end,
every file it names stored with its content; and no staging file or unreferenced blob survives the sweep and a
garbage collection.

Real Celery worker processes on Redis db 5, the hub on SQLite + local blobs; recovery timings shortened through
ADAPTARIUM_* variables (tests/workers/test_reliability.py's FAST_RECOVERY).
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time

import redis

from hub import gc
from tests.api.conftest import TINY_BASE, start_hub, tiny_base  # noqa: F401 - fixture
from tests.conftest import start_worker, stop_process
from tests.workers.test_reliability import FAST_RECOVERY, wait_until

REDIS_URL = "redis://127.0.0.1:6379/5"


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def _assert_nothing_partial(live, client) -> int:
    """Every visible version of crash/out is complete: each file stored, with the content its sha256 names.
    Returns how many versions are visible."""
    r = client.get("/api/v1/adapters/crash/out/versions")
    if r.status_code == 404:
        assert live.scalar("select count(*) from adapter_versions") == 0
        return 0
    versions = r.json()["items"]
    for version in versions:
        for f in version["files"]:
            body = client.get(f"/api/v1/adapters/crash/out/versions/{version['number']}/files/{f['name']}")
            assert body.status_code == 200, (f, body.status_code)
            assert hashlib.sha256(body.content).hexdigest() == f["sha256"]
    return len(versions)


def test_a_job_killed_while_training_and_again_while_publishing_ends_with_one_complete_version(tmp_path, tiny_base):
    redis.Redis.from_url(REDIS_URL).flushdb()
    live, stop = start_hub(tmp_path, ADAPTARIUM_BROKER_URL=REDIS_URL)
    env = {**os.environ, **FAST_RECOVERY, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": REDIS_URL}
    store = live.app.state.store
    workers: list[subprocess.Popen] = []
    try:
        with live.client() as c:
            assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
            assert list(store.list_blobs()) == []  # so the first blob to appear is the result's
            workers.append(start_worker(env, "crash-a"))
            # checkpoints make the result 2 + 2 * 12 files: a publication long enough to be killed in the middle
            r = c.post("/api/v1/jobs", json={
                "kind": "train", "output": {"namespace": "crash", "name": "out"},
                "params": {"base": TINY_BASE, "task": "builtin:caesar_shift?n=64&seed=0", "steps": 60, "rank": 4,
                           "batch_size": 8, "lr": 1e-3, "checkpoint_every": 5}})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            progress = f"select progress from jobs where id = '{job_id}'"

            # kill 1: mid-training
            wait_until(lambda: live.scalar(progress) > 0.1, 180, "training to start")
            _kill(workers[0])
            assert live.scalar(progress) < 1.0 and _assert_nothing_partial(live, c) == 0
            assert list(store.list_blobs()) == []

            # kill 2: the recovering worker, as soon as the first blob of the result is stored
            workers.append(start_worker(env, "crash-b"))
            started = time.monotonic()
            while not any(True for _ in store.list_blobs()):
                assert time.monotonic() - started < 240, "the second worker never published"
                time.sleep(0.002)
            _kill(workers[1])
            stored_at_kill = len(list(store.list_blobs()))
            visible_at_kill = _assert_nothing_partial(live, c)
            print(f"second kill: {stored_at_kill} blobs stored, {visible_at_kill} versions visible")
            assert visible_at_kill == 0 and stored_at_kill > 0  # it did land mid-publication
            assert c.get(f"/api/v1/jobs/{job_id}").json()["state"] == "running"

            # a third worker recovers the job (stale heartbeat) and finishes it
            workers.append(start_worker(env, "crash-c"))
            done = wait_until(lambda: (j := c.get(f"/api/v1/jobs/{job_id}").json())["state"] in
                              ("succeeded", "failed") and j, 240, "the job to finish on the third worker")
            assert done["state"] == "succeeded", done
            assert done["attempts"] == 3 and done["results"] == ["crash/out@1"]
            assert _assert_nothing_partial(live, c) == 1
            files = c.get("/api/v1/adapters/crash/out/versions/1").json()["files"]
            assert len(files) == 26  # identical checkpoint configs share one blob
            named = {f["sha256"] for f in files}

        # what the killed publication left (claimed, never named) goes with a collection; nothing named does
        report = gc.collect_garbage(live.app.state.session_factory, store, grace_s=0)
        assert not set(report.removed) & named
        assert {sha for sha, _ in store.list_blobs()} == named
        assert not list(store.staging_dir.glob(".partial-*"))  # the dead workers' staging files were swept
    finally:
        for proc in workers:
            stop_process(proc)
        stop()
        live.app.state.engine.dispose()
