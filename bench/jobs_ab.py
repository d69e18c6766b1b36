"""Dispatch latency, before vs after a change, measured in one interleaved run (issue 11).

    python -m bench.jobs_ab --before <git rev> [--n 200] [--database sqlite|postgresql]

On a shared machine the load moves between runs by more than the effect being measured, so this starts two complete
job services at once, the code of `--before` (extracted from git into a temp dir) and the working tree, each with its
own database (fresh), Redis db (4 and 5) and solo worker, plus the raw Celery baseline of bench/raw_celery.py; each
round sends one raw task and one no-op job to each service, in a rotating order, so all three see the same moment.
Prints and writes bench/reports/jobs-ab-<stamp>.json: POST -> job.started_at per side, the raw round trip, ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from io import BytesIO
from pathlib import Path

import httpx
import redis

from bench.jobs import IDLE, PG_SERVER, REDIS_URL, _pg_admin, ms, wait_job
from bench.registry import free_port

ROOT = Path(__file__).parents[1]
REPORTS = Path(__file__).parent / "reports"


def extract(rev: str) -> Path:
    """The tree of `rev` in a temp dir (git archive), so its hub/ and workers/ run unchanged by the working tree."""
    folder = Path(tempfile.mkdtemp(prefix="adaptarium-ab-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


class Service:
    """One API + one worker running the code under `tree`, on its own database and Redis db."""

    def __init__(self, name: str, tree: Path, redis_db: int, database: str):
        self.name, self.tree, self.fresh_pg = name, tree, None
        broker = f"redis://127.0.0.1:6379/{redis_db}"
        redis.Redis.from_url(broker).flushdb()
        data = Path(tempfile.mkdtemp(prefix=f"adaptarium-ab-{name}-"))
        self.env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(data), "ADAPTARIUM_BROKER_URL": broker}
        self.env.pop("PYTHONPATH", None)
        if database == "postgresql":
            self.fresh_pg = f"bench_jobs_ab_{name}_{os.getpid()}"
            _pg_admin(f'CREATE DATABASE "{self.fresh_pg}"')
            self.env["ADAPTARIUM_DATABASE_URL"] = f"{PG_SERVER}/{self.fresh_pg}"
        token = self._python("from hub.settings import Settings; from hub.migrate import upgrade; "
                             "from hub.db import make_engine, make_session_factory; from hub import auth\n"
                             "s = Settings.from_env(); upgrade(s.database_url)\n"
                             "with make_session_factory(make_engine(s.database_url))() as db:\n"
                             "    print(auth.create_token(db, None, {'admin'})); db.commit()")
        port = free_port()
        self.procs = [self._spawn("uvicorn", "hub.api.app:create_app", "--factory", "--port", str(port),
                                  "--log-level", "warning"),
                      self._spawn("celery", "-A", "workers.celery_app", "worker", "-Q", "gpu,cpu", "--pool", "solo",
                                  "--loglevel", "warning", "--without-gossip", "--without-mingle")]
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})
        self.dispatch: list[float] = []
        self.claim_written: list[float] = []  # until the claim's "running" event: what the claim does counts too

    def _python(self, code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], cwd=self.tree, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]

    def _spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=self.tree, env=self.env)

    def ready(self) -> None:
        for _ in range(600):
            try:
                if self.client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        self.one()  # the worker is up and has run one job
        self.dispatch.clear()
        self.claim_written.clear()

    def one(self) -> None:
        time.sleep(IDLE)
        sent = time.time()
        job = self.client.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
        done = wait_job(self.client, job["id"], 120)
        self.dispatch.append(datetime.fromisoformat(done["started_at"]).timestamp() - sent)
        running = next(e for e in self.client.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
                       if e["type"] == "state" and e["data"]["state"] == "running")
        self.claim_written.append(datetime.fromisoformat(running["at"]).timestamp() - sent)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=60)
        if self.fresh_pg:
            _pg_admin(f'DROP DATABASE "{self.fresh_pg}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git rev of the code to compare against")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args()

    redis.Redis.from_url(REDIS_URL).flushdb()
    services = [Service("before", extract(args.before), 2, args.database), Service("after", ROOT, 3, args.database)]
    raw_worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.raw_celery", "worker", "-Q", "raw",
                                   "--pool", "solo", "--loglevel", "warning", "--without-gossip", "--without-mingle"],
                                  cwd=ROOT, env={**os.environ, "RAW_CELERY_BROKER": REDIS_URL})
    from bench.raw_celery import started_at

    raw: list[float] = []

    def raw_one() -> None:
        time.sleep(IDLE)
        sent = time.time()
        started_at.apply_async().get(timeout=30)
        raw.append(time.time() - sent)

    try:
        started_at.apply_async().get(timeout=120)
        for service in services:
            service.ready()
        steps = [raw_one, services[0].one, services[1].one]
        for i in range(args.n):
            for k in range(3):  # rotate, so no side always runs right after another
                steps[(i + k) % 3]()
    finally:
        raw_worker.terminate()
        raw_worker.wait(timeout=30)
        for service in services:
            service.close()
    report = {"n": args.n, "machine": f"{os.cpu_count()} cpus", "database": args.database, "before": args.before,
              "raw_celery_round_trip_median_ms": ms(raw), "raw_celery_round_trip_p95_ms": ms(raw, .95)}
    for service in services:
        report[service.name] = {"dispatch_median_ms": ms(service.dispatch), "dispatch_p95_ms": ms(service.dispatch, .95),
                                "dispatch_over_raw_round_trip":
                                    round(statistics.median(service.dispatch) / statistics.median(raw), 2),
                                "claim_written_median_ms": ms(service.claim_written),
                                "claim_written_p95_ms": ms(service.claim_written, .95)}
    print(json.dumps(report, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"jobs-ab-{args.database}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
