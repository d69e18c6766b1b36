"""A hub + one worker for the method benchmarks, so they measure the service (jobs through the API, a real Celery
worker) rather than the library — with a job cache that lets a rerun resume and lets benchmarks share work.

`Service(cache_dir, port=...)` runs `adaptarium up` (API + one worker, SQLite, local blobs, the embedded broker
unless `broker_url` names a Redis) on the hub data in `<cache_dir>/hub`, where the caller says: nothing is written
into the checkout unless the caller asks for it. Every job is cached by its body: `Service.job(body)` returns the
finished job recorded for the same body (kind, inputs, params, output) if an earlier run got that far, otherwise
submits it and waits. Bodies name versions made by earlier cached jobs, so one cache directory serves every
benchmark: a source adapter the transfer benchmark trained is the one the merge benchmark reuses.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEFAULT_CACHE = Path(__file__).parent / ".cache"
REPORTS = Path(__file__).parent / "reports"
TERMINAL = ("succeeded", "failed", "cancelled")
# a bench hub is self-contained: these would point it at someone else's database, blobs or broker
_FOREIGN = ("ADAPTARIUM_DATABASE_URL", "ADAPTARIUM_STORAGE_URL", "ADAPTARIUM_BROKER_URL", "ADAPTARIUM_URL",
            "ADAPTARIUM_TOKEN")


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, cache_dir: Path | str = DEFAULT_CACHE, port: int | None = None, broker_url: str | None = None,
                 log=lambda text: print(text, flush=True)):
        self.dir = Path(cache_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.steps_file = self.dir / "jobs.json"
        self.steps = json.loads(self.steps_file.read_text()) if self.steps_file.exists() else {}
        hub_dir = self.dir / "hub"
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
        env["ADAPTARIUM_DATA_DIR"] = str(hub_dir)
        if broker_url:
            env["ADAPTARIUM_BROKER_URL"] = broker_url
            import redis

            redis.Redis.from_url(broker_url).flushdb()  # messages of an earlier, killed run would run again
        self.port = port or free_port()
        self._log_file = open(self.dir / "hub.log", "ab")
        # its own session, so close() can stop the API and its worker child together
        self.proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "up", "--data-dir", str(hub_dir), "--port",
                                      str(self.port)], env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        token_file = hub_dir / "admin-token"
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}; see {self.dir / 'hub.log'}")
            try:
                if token_file.exists() and self.http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the hub did not answer within 120 s; see {self.dir / 'hub.log'}")
            time.sleep(0.2)
        self.http.headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def url(self) -> str:
        return str(self.http.base_url)

    def add_base(self, name: str, spec: str) -> None:
        """Register a base under `name` with its weights from `spec` (a tiny:..., a shortcut or dir:/gguf: path)."""
        if self.http.get(f"/api/v1/bases/{name}").status_code == 200:
            return
        from lora.bases import architecture, load_base, module_shapes

        model, _ = load_base(spec)
        self.http.post("/api/v1/bases", json={
            "name": name, "architecture": architecture(model), "source": spec,
            "module_shapes": {m: list(s) for m, s in module_shapes(model).items()}}).raise_for_status()

    def job(self, body: dict, label: str = "", timeout: float = 4 * 3600, retry_failed: bool = False) -> dict:
        """The finished job for this body: from the cache when an earlier run finished it (failed ones too: seeded
        jobs fail again the same way, so only retry_failed runs them again), else submitted now and waited for.
        Prints one line per job run with its wall time."""
        key = config_hash(body)
        cached = self.steps.get(key)
        if cached and (cached["state"] == "succeeded" or (cached["state"] == "failed" and not retry_failed)):
            return cached
        start = time.time()
        # The body's hash is the Idempotency-Key: a run stopped before this job ended (the cache records a job
        # when it ends) finds it again, still running or taken over by the worker's recovery, instead of
        # submitting a twin that trains the same thing a second time. One that ended cancelled (or failed, with
        # retry_failed) is retried, the same job again.
        headers = {"Idempotency-Key": key}
        # ?wait: the API answers as soon as the job ends (most jobs here take seconds; polling would add ~0.25 s each)
        r = self.http.post("/api/v1/jobs", json=body, params={"wait": 60}, headers=headers, timeout=120)
        if r.status_code == 429:  # someone else's waits fill this token's slots: submit and poll instead
            r = self.http.post("/api/v1/jobs", json=body, headers=headers)
        if r.status_code != 202:
            raise RuntimeError(f"{label or body['kind']}: {r.status_code} {r.text}")
        job = r.json()
        if job["state"] == "cancelled" or (job["state"] == "failed" and retry_failed):
            r = self.http.post(f"/api/v1/jobs/{job['id']}/retry")
            if r.status_code != 202:
                raise RuntimeError(f"{label or body['kind']}: retry {r.status_code} {r.text}")
            job = r.json()
        deadline = time.monotonic() + timeout
        while job["state"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.25)
            job = self.http.get(f"/api/v1/jobs/{job['id']}").json()
        job_id = job["id"]
        job["wall_s"] = round(time.time() - start, 2)
        job["events"] = self.http.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
        job["label"] = label
        self.steps[key] = job
        tmp = self.steps_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.steps))
        tmp.replace(self.steps_file)  # a run killed mid-write keeps the previous cache
        error = f" {job['error']['message']}" if job.get("error") else ""
        self.log(f"  {label or body['kind']}: {job['state']} in {job['wall_s']} s {' '.join(job['results'])}{error}")
        return job

    def version(self, plural: str, ref: str) -> dict:
        path, number = ref.split("@")
        r = self.http.get(f"/api/v1/{plural}/{path}/versions/{number}")
        r.raise_for_status()
        return r.json()

    def dataset(self, name: str, rows: list[dict]) -> str:
        """The ref of a dataset version holding exactly these rows: the latest one when it already does (the hub's
        data is cached with the jobs), else a new upload."""
        body = "".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n"
                       for r in rows).encode()
        latest = self.http.get(f"/api/v1/datasets/{name}/versions/latest")
        if latest.status_code == 200 and self.http.get(
                f"/api/v1/datasets/{name}/versions/latest/files/data.jsonl").content == body:
            return latest.json()["ref"]
        r = self.http.post(f"/api/v1/datasets/{name}/versions", files={"data.jsonl": ("data.jsonl", body)})
        r.raise_for_status()
        return r.json()["ref"]


def metric_series(job: dict, name: str) -> list[float]:
    return [e["data"]["value"] for e in job["events"] if e["type"] == "metric" and e["data"]["name"] == name]


def exact_match(job: dict) -> float | None:
    """The exact-match score of a finished evaluate job (its result data)."""
    if job["state"] != "succeeded":
        return None
    return next(v for k, v in job["result"].items() if k.endswith("/exact_match"))
