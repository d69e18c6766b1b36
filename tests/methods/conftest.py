"""A hub (SQLite + local blobs, the embedded default's storage) with a real Celery worker process on Redis, for the
method kinds end to end. One per test module; each module has its own Redis db so nothing else is touched."""
from __future__ import annotations

import os
import time

import pytest
import redis

from tests.api.conftest import start_hub, tiny_base  # noqa: F401 - fixture
from tests.conftest import start_worker, stop_process

TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def method_hub(request, tmp_path_factory, tiny_base):
    redis_url = getattr(request.module, "REDIS_URL")
    redis.Redis.from_url(redis_url).flushdb()
    live, stop = start_hub(tmp_path_factory.mktemp("method-hub"), ADAPTARIUM_BROKER_URL=redis_url)
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(live.settings.data_dir),
           "ADAPTARIUM_DATABASE_URL": live.settings.database_url, "ADAPTARIUM_STORAGE_URL": live.settings.storage_url,
           "ADAPTARIUM_BROKER_URL": redis_url}
    worker = start_worker(env, request.module.__name__.rsplit(".", 1)[-1])
    with live.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
    yield live
    stop_process(worker)
    stop()


def run_job(client, body: dict, timeout: float = 300) -> dict:
    """Submit and wait; returns the finished job (asserting the submit was accepted)."""
    r = client.post("/api/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def events(client, job_id: str) -> list[dict]:
    return client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]


def file_sha(client, plural: str, ref: str, name: str) -> str:
    ns_name, number = ref.split("@")
    version = client.get(f"/api/v1/{plural}/{ns_name}/versions/{number}").json()
    return next(f["sha256"] for f in version["files"] if f["name"] == name)
