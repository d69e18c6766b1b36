"""A job submit (issue 11, dispatch latency) holds one pooled DB connection, and survives a server that dropped them.

The token lookup, the reference checks and the two inserts share the request's session, so a submit checks out one
connection, not one for auth and another for the job; and with pool_pre_ping gone, the pool must still replace
connections PostgreSQL has closed (a restart, a terminated backend) before a request sees them.
"""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event

from tests.api.conftest import start_hub
from tests.conftest import PG_ADMIN_URL


def test_a_submit_checks_out_one_connection_and_stores_the_job_with_its_first_event(hub):
    with hub.client() as c:  # the token's first use records it (a commit, then a second checkout): done here
        assert c.get("/api/v1/jobs").status_code == 200
    checkouts = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(hub.app.state.engine, "checkout", listener)
    try:
        with hub.client() as c:
            r = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}})
    finally:
        event.remove(hub.app.state.engine, "checkout", listener)
    assert r.status_code == 202, r.text
    assert len(checkouts) == 1
    job = r.json()
    assert job["state"] == "queued" and job["params"] == {"seconds": 0.0} and job["created_at"]
    with hub.client() as c:
        stored = c.get(f"/api/v1/jobs/{job['id']}").json()
        events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    assert {k: stored[k] for k in ("kind", "queue", "created_by", "created_at")} == \
        {k: job[k] for k in ("kind", "queue", "created_by", "created_at")}
    assert events[0]["seq"] == 1 and events[0]["data"] == {"state": "queued"}


def test_a_bad_token_is_401_before_the_body_is_looked_at_and_queues_nothing(hub):
    before = hub.scalar("SELECT count(*) FROM jobs")
    with hub.client(token="ada_not-a-real-token") as c:
        assert c.post("/api/v1/jobs", json={"kind": 5, "params": "x"}).status_code == 401
        assert c.post("/api/v1/jobs", json={"kind": "noop", "params": {}}).status_code == 401
    with hub.client(token=None) as c:
        assert c.post("/api/v1/jobs", json={"kind": "noop", "params": {}}).status_code == 401
    assert hub.scalar("SELECT count(*) FROM jobs") == before


@pytest.fixture
def pg_hub(tmp_path, private_pg_db):
    live, stop = start_hub(tmp_path, private_pg_db)
    yield live
    stop()
    live.app.state.engine.dispose()


@pytest.mark.postgres
def test_submits_still_succeed_after_postgres_closed_every_pooled_connection(pg_hub):
    hub = pg_hub
    with hub.client() as c:
        for _ in range(3):  # warm the pool
            assert c.post("/api/v1/jobs", json={"kind": "noop", "params": {}}).status_code == 202
        dbname = hub.settings.database_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                                   "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()[0]
        assert killed >= 1
        codes = [c.post("/api/v1/jobs", json={"kind": "noop", "params": {}}).status_code for _ in range(3)]
    assert codes == [202, 202, 202]


@pytest.mark.postgres
def test_concurrent_submits_with_one_idempotency_key_make_one_job_on_postgres(pg_hub):
    """PostgreSQL inserts the job and its first event in one statement; a key that races must still be one job."""
    from concurrent.futures import ThreadPoolExecutor

    body = {"kind": "noop", "params": {"seconds": 0}}

    def submit(_):
        with pg_hub.client() as c:
            return c.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "race-1"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, range(8)))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert pg_hub.scalar("SELECT count(*) FROM jobs") == 1
    assert pg_hub.scalar("SELECT count(*) FROM job_events") == 1
