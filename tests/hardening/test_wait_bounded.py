"""Issue 27 item 2: `POST /api/v1/jobs?wait=S` holds no pool thread while it waits, and waits per token are bounded.

48 waits by one token used to take 48 of the API process's 40 pool threads: `GET /api/v1/adapters` then took 54.7 s.
Now a wait is a future on the event loop (hub.api.job_waits), and a token past its bound gets a 429 with Retry-After
before anything is stored. No worker runs here, so the jobs stay queued and every wait lasts its full time unless
the test ends the job itself.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import start_hub
from tests.conftest import wait_until
from tests.hardening.conftest import register_base

NOOP = {"kind": "noop", "params": {"seconds": 1}}


@pytest.fixture(scope="module")
def waiting_hub(tmp_path_factory):
    live, stop = start_hub(tmp_path_factory.mktemp("hub"), ADAPTARIUM_MAX_WAITS_PER_TOKEN=8)
    register_base(live)
    yield live
    stop()
    live.app.state.engine.dispose()


def _submit_and_wait(live, token: str, seconds: float):
    with live.client(token=token) as c:
        started = time.monotonic()
        r = c.post(f"/api/v1/jobs?wait={seconds}", json=NOOP)
        return r, time.monotonic() - started


def _jobs(live) -> int:
    return live.scalar("select count(*) from jobs")


def test_many_concurrent_waits_leave_the_api_answering_quickly(waiting_hub):
    live = waiting_hub
    tokens = [live.token(None, "write") for _ in range(6)]  # 6 x 8 = 48 waits, each token at its bound
    before = _jobs(live)
    with ThreadPoolExecutor(48) as pool:
        waits = [pool.submit(_submit_and_wait, live, tokens[i % 6], 8) for i in range(48)]
        wait_until(lambda: _jobs(live) - before == 48, 30, "all 48 jobs to be stored (their waits begun)")
        with live.client() as c:
            slowest = 0.0
            for _ in range(10):
                started = time.monotonic()
                assert c.get("/api/v1/adapters").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
        assert not any(w.done() for w in waits)  # the waits were all still running while the list answered
        answers = [w.result() for w in waits]
    print(f"slowest GET /api/v1/adapters during 48 waits: {slowest * 1000:.0f} ms")
    assert slowest < 1.0
    assert all(r.status_code == 202 and r.json()["state"] == "queued" for r, _ in answers)
    assert all(7.5 < took < 15 for _, took in answers)  # each waited its 8 s, then answered with the job as it is


def test_a_token_past_its_bound_gets_429_with_retry_after_and_nothing_is_stored(waiting_hub):
    live = waiting_hub
    token, other = live.token(None, "write"), live.token(None, "write")
    before = _jobs(live)
    with ThreadPoolExecutor(8) as pool:
        waits = [pool.submit(_submit_and_wait, live, token, 5) for _ in range(8)]
        wait_until(lambda: _jobs(live) - before == 8, 30, "the 8 waits to begin")
        with live.client(token=token) as c:
            refused = c.post("/api/v1/jobs?wait=5", json=NOOP)
            assert refused.status_code == 429, refused.text
            assert refused.headers["Retry-After"] == "1" and "at most 8" in refused.json()["detail"]
            assert _jobs(live) - before == 8  # the refused submit stored nothing
            assert c.post("/api/v1/jobs", json=NOOP).status_code == 202  # a submit that does not wait is not bounded
        with live.client(token=other) as c:  # the bound is per token
            assert c.post("/api/v1/jobs?wait=0.5", json=NOOP).status_code == 202
        assert all(r.status_code == 202 for r, _ in (w.result() for w in waits))
    with live.client(token=token) as c:  # the slots come back when the waits end
        assert c.post("/api/v1/jobs?wait=0.5", json=NOOP).status_code == 202


def test_a_wait_answers_as_soon_as_its_job_ends(waiting_hub):
    live = waiting_hub
    token = live.token(None, "write")
    with ThreadPoolExecutor(1) as pool:
        before = _jobs(live)
        waiting = pool.submit(_submit_and_wait, live, token, 30)
        wait_until(lambda: _jobs(live) - before == 1, 30, "the job to be stored")
        job_id = live.scalar("select id from jobs order by created_at desc limit 1")
        with live.client(token=token) as c:
            assert c.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        answer, took = waiting.result(timeout=10)
    assert answer.status_code == 202 and answer.json()["state"] == "cancelled"
    assert took < 5  # not the full 30 s


def test_the_429_is_declared_in_the_openapi_document(waiting_hub):
    with waiting_hub.client(token=None) as c:
        answers = c.get("/openapi.json").json()["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert "429" in answers and "Retry-After" in answers["429"]["description"]
