"""A hub + one worker for the method benchmarks, so they measure the service (jobs through the API, a real Celery
worker on Redis) rather than the library — with a cache that lets a rerun resume.

The hub's data (SQLite, blobs) lives in bench/.cache/<name>-<config hash>/, and every job a benchmark runs is
named by a step key: `Service.job(key, body)` returns the finished job recorded for that key if a previous run got
that far, and otherwise submits it and waits. Changing the benchmark's config changes the hash, so a rerun with
other settings starts clean, while an interrupted run picks up where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

CACHE = Path(__file__).parent / ".cache"
REPORTS = Path(__file__).parent / "reports"
TERMINAL = ("succeeded", "failed", "cancelled")


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


class Service:
    def __init__(self, name: str, config: dict, redis_url: str):
        from bench.registry import free_port
        from hub import auth
        from hub.db import make_engine, make_session_factory
        from hub.migrate import upgrade
        from hub.settings import Settings

        self.dir = CACHE / f"{name}-{config_hash(config)}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        self.steps_file = self.dir / "steps.json"
        self.steps = json.loads(self.steps_file.read_text()) if self.steps_file.exists() else {}
        redis.Redis.from_url(redis_url).flushdb()
        env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(self.dir / "hub"), "ADAPTARIUM_BROKER_URL": redis_url}
        settings = Settings.from_env(env)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)
        token_file = self.dir / "token"
        if not token_file.exists():
            engine = make_engine(settings.database_url)
            with make_session_factory(engine)() as s:
                token_file.write_text(auth.create_token(s, None, {"admin"}))
                s.commit()
            engine.dispose()
        port = free_port()
        self.api = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory", "--port",
                                     str(port), "--log-level", "warning"], env=env)
        self.worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q",
                                        "gpu,cpu", "--pool", "solo", "--loglevel", "warning", "--without-gossip",
                                        "--without-mingle"], env=env)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                 headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
        for _ in range(300):
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

    def close(self) -> None:
        self.worker.terminate()
        self.api.terminate()
        self.worker.wait(timeout=120)
        self.api.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_base(self, name: str, spec: str) -> None:
        if self.http.get(f"/api/v1/bases/{name}").status_code == 200:
            return
        from lora.bases import architecture, load_base, module_shapes

        model, _ = load_base(spec)
        self.http.post("/api/v1/bases", json={
            "name": name, "architecture": architecture(model), "source": spec,
            "module_shapes": {m: list(s) for m, s in module_shapes(model).items()}}).raise_for_status()

    def job(self, key: str, body: dict, timeout: float = 4 * 3600, retry_failed: bool = False) -> dict:
        """The finished job for this step: from the cache when an earlier run finished it (failed ones too: seeded
        jobs fail again the same way, so only retry_failed runs them again), else submitted now.
        Prints one line per job with its wall time."""
        cached = self.steps.get(key)
        if cached and (cached["state"] == "succeeded" or (cached["state"] == "failed" and not retry_failed)):
            return cached
        start = time.time()
        r = self.http.post("/api/v1/jobs", json=body)
        if r.status_code != 202:
            raise RuntimeError(f"{key}: {r.status_code} {r.text}")
        job_id = r.json()["id"]
        deadline = time.monotonic() + timeout
        while True:
            job = self.http.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] in TERMINAL or time.monotonic() > deadline:
                break
            time.sleep(1)
        job["wall_s"] = round(time.time() - start, 1)
        job["events"] = self.http.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
        self.steps[key] = job
        self.steps_file.write_text(json.dumps(self.steps))
        print(f"  {key}: {job['state']} in {job['wall_s']} s {' '.join(job['results'])}"
              f"{(' ' + job['error']['message']) if job['error'] else ''}", flush=True)
        return job

    def version(self, plural: str, ref: str) -> dict:
        path, number = ref.split("@")
        return self.http.get(f"/api/v1/{plural}/{path}/versions/{number}").json()


def metric_series(job: dict, name: str) -> list[float]:
    return [e["data"]["value"] for e in job["events"] if e["type"] == "metric" and e["data"]["name"] == name]


def exact_match(job: dict) -> float | None:
    """The exact-match score of a finished evaluate job (its result data)."""
    if job["state"] != "succeeded":
        return None
    return next(v for k, v in job["result"].items() if k.endswith("/exact_match"))


def write_report(name: str, report: dict, markdown: str, stamp: str | None = None) -> Path:
    """bench/reports/<name>-<stamp>.{json,md}; pass the same stamp again to rewrite a report as a run goes on."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    (REPORTS / f"{name}-{stamp}.json").write_text(json.dumps(report, indent=2))
    path = REPORTS / f"{name}-{stamp}.md"
    path.write_text(markdown)
    return path
