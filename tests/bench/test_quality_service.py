"""The benchmark driver resumes rather than repeats: a job an earlier, stopped run submitted (the cache records a
job only when it ends) is found again by its body, and one that ended cancelled runs again as the same job."""
import time

from bench.service import Service, config_hash


def _until(svc, job_id, states, timeout=60):
    deadline = time.monotonic() + timeout
    while (job := svc.http.get(f"/api/v1/jobs/{job_id}").json())["state"] not in states:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_a_rerun_finds_the_job_a_stopped_run_left_and_retries_a_cancelled_one(tmp_path):
    with Service(tmp_path, log=lambda text: None) as svc:
        body = {"kind": "noop", "params": {"seconds": 1.5}}
        # what a stopped run leaves behind: the job on the hub, nothing in the cache
        left = svc.http.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": config_hash(body)}).json()
        job = svc.job(body)
        assert job["id"] == left["id"] and job["state"] == "succeeded"
        assert len(svc.http.get("/api/v1/jobs", params={"kind": "noop"}).json()["items"]) == 1

        cancelled = {"kind": "noop", "params": {"seconds": 2.5}}
        left = svc.http.post("/api/v1/jobs", json=cancelled,
                             headers={"Idempotency-Key": config_hash(cancelled)}).json()
        assert svc.http.post(f"/api/v1/jobs/{left['id']}/cancel").status_code == 200
        _until(svc, left["id"], {"cancelled"})
        job = svc.job(cancelled)
        assert job["id"] == left["id"] and job["state"] == "succeeded"  # it had ended cancelled
        assert len(svc.http.get("/api/v1/jobs", params={"kind": "noop"}).json()["items"]) == 2
