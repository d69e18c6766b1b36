"""Run one job: claim it, give its kind a context backed by the registry, publish what it returns, record the end.

Publication is keyed by the job id (`registry.create_version(job_id=...)`), so a job that is delivered twice, or
re-run after its worker was killed mid-way, still ends with exactly one result version.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback

from sqlalchemy import select

from hub import jobs, registry
from hub.db import make_engine, make_session_factory
from hub.models import Job, utcnow
from hub.registry import FileEntry
from hub.settings import Settings
from hub.storage import open_store
from lora import Adapter
from workers.kinds import runner_for
from workers.kinds.base import JobCancelled, Output

log = logging.getLogger("adaptarium.runner")
STALE_AFTER = float(os.environ.get("ADAPTARIUM_STALE_SECONDS", "60"))


class Services:
    """Per-process DB engine and blob store, built once from the environment."""

    _instance = None

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.session_factory = make_session_factory(self.engine)
        self.store = open_store(settings.storage_url, staging_dir=settings.data_dir / "staging")

    @classmethod
    def get(cls) -> "Services":
        if cls._instance is None:
            cls._instance = cls(Settings.from_env())
        return cls._instance


class RegistryContext:
    """The JobContext a worker gives a kind: inputs from the registry, progress and events into the job row."""

    def __init__(self, services: Services, job: Job, worker: str):
        self.services, self.job_id, self.inputs, self.worker = services, job.id, list(job.inputs), worker
        self._last_progress = (-1.0, None, 0.0)
        self._last_cancel_check = 0.0

    def _version(self, kind: str, ref: str):
        ns, name, version_ref = registry.parse_ref(ref)
        with self.services.session_factory() as s:
            return registry.resolve_version(s, kind, ns, name, version_ref)

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]:
        version = self._version("adapter", ref)
        if version.yanked:
            raise ValueError(f"input {ref} is yanked")
        files = {f["name"]: f["sha256"] for f in version.files}
        store = self.services.store
        adapter = Adapter.from_bytes(store.read_bytes(files["adapter_config.json"]),
                                     store.read_bytes(files["adapter_model.safetensors"]))
        base = version.adapter.base
        return adapter, {"ref": registry.version_ref(version), "base": base.name if base else None,
                         "base_source": base.source if base else None}

    def load_base(self, base_name: str):
        from lora.bases import load_base

        with self.services.session_factory() as s:
            base = registry.find_base(s, base_name)
            if base is None:
                raise ValueError(f"unknown base {base_name!r}")
            spec = base.source or base.name
        self.log(f"loading base {base_name} ({spec})")
        return load_base(spec)

    def load_dataset(self, ref: str) -> list[tuple[str, str]]:
        version = self._version("dataset", ref)
        sha = next(f["sha256"] for f in version.files if f["name"] == "data.jsonl")
        rows = [json.loads(line) for line in self.services.store.read_bytes(sha).splitlines() if line.strip()]
        return [(r["prompt"], r["completion"]) for r in rows]

    def progress(self, fraction: float, stage: str | None = None) -> None:
        last_fraction, last_stage, last_time = self._last_progress
        now = time.monotonic()
        if stage == last_stage and fraction < 1.0 and fraction - last_fraction < 0.01 and now - last_time < 1.0:
            return  # throttle: the dashboard needs percent steps, not one row per micro-step
        self._last_progress = (fraction, stage, now)
        with self.services.session_factory() as s:
            job = s.get(Job, self.job_id)
            job.progress, job.stage, job.heartbeat_at = round(min(max(fraction, 0.0), 1.0), 4), stage, utcnow()
            jobs._append(s, self.job_id, "progress", {"progress": job.progress, "stage": stage})
            s.commit()

    def log(self, message: str) -> None:
        jobs.append_event(self.services.session_factory, self.job_id, "log", {"message": message})

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        jobs.append_event(self.services.session_factory, self.job_id, "metric",
                          {"name": name, "value": float(value), "step": step})

    def check_cancelled(self) -> None:
        now = time.monotonic()
        if now - self._last_cancel_check < 0.2:
            return
        self._last_cancel_check = now
        with self.services.session_factory() as s:
            if s.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)):
                raise JobCancelled("cancelled by request")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str, services: Services | None = None) -> str:
    """Execute a job if this worker can claim it; returns the job's final state (or 'skipped')."""
    services = services or Services.get()
    worker = worker_name()
    if not jobs.claim(services.session_factory, job_id, worker, STALE_AFTER):
        log.info("job %s not claimable (already taken, finished or cancelled); skipping", job_id)
        return "skipped"
    with services.session_factory() as s:
        job = s.get(Job, job_id)
        s.expunge(job)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(services, job_id, worker, stop), daemon=True)
    beat.start()
    try:
        outputs = runner_for(job.kind)(RegistryContext(services, job, worker), job.params)
        results = [_publish(services, job, out) for out in outputs]
        _finish(services, job_id, "succeeded", results=results)
        return "succeeded"
    except JobCancelled:
        _finish(services, job_id, "cancelled")
        return "cancelled"
    except Exception as exc:
        _finish(services, job_id, "failed", error={"type": type(exc).__name__, "message": str(exc)},
                trace=traceback.format_exc())
        return "failed"
    finally:
        stop.set()


def _heartbeat(services: Services, job_id: str, worker: str, stop: threading.Event) -> None:
    while not stop.wait(max(STALE_AFTER / 4, 0.5)):
        try:
            jobs.heartbeat(services.session_factory, job_id, worker)
        except Exception:  # a missed beat only risks a duplicate run, which publication tolerates
            log.exception("heartbeat failed")


def _publish(services: Services, job: Job, out: Output) -> str:
    if out.update_metrics_of:
        ns, name, ref = registry.parse_ref(out.update_metrics_of)
        with services.session_factory() as s:
            version = registry.resolve_version(s, "adapter", ns, name, ref)
            version.metrics = {**(version.metrics or {}), **out.metrics}
            s.commit()
            return registry.version_ref(version)
    target = job.output or {}
    namespace, name = target["namespace"], out.name or target["name"]
    config_json, weights = out.adapter.to_bytes()
    blobs = {"adapter_config.json": config_json, "adapter_model.safetensors": weights, **out.extra_files}
    files = [FileEntry(fname, services.store.put_bytes(data), len(data)) for fname, data in blobs.items()]
    with services.session_factory() as s:
        base_name = out.adapter.config.get("base_model_name_or_path") or job.params.get("base")
        base = registry.find_base(s, base_name) if base_name else None
        if base is None:
            raise ValueError(f"result adapter names base {base_name!r}, which is not registered")
        parents = []
        for ref, relation in out.parents:
            kind = "dataset" if relation == "trained_from" else "adapter"
            pns, pname, pref = registry.parse_ref(ref)
            parents.append((registry.resolve_version(s, kind, pns, pname, pref).id, relation))
        base_id = base.id
    version = registry.create_version(services.session_factory, kind="adapter", namespace=namespace, name=name,
                                      base_id=base_id, peft_config=out.adapter.config, files=files,
                                      metrics=_jsonable(out.metrics), created_by=f"job:{job.id}", job_id=job.id,
                                      parents=parents)
    return registry.version_ref(version)


def _jsonable(value):
    return json.loads(json.dumps(value, default=float))


def _finish(services: Services, job_id: str, state: str, results: list[str] | None = None, error: dict | None = None,
            trace: str | None = None) -> None:
    with services.session_factory() as s:
        job = s.get(Job, job_id)
        job.state, job.finished_at = state, utcnow()
        if results is not None:
            job.results = results
        if state == "succeeded":
            job.progress = 1.0
        job.error = error
        if trace:
            jobs._append(s, job_id, "error", {**(error or {}), "traceback": trace})
        jobs._append(s, job_id, "state", {"state": state, **({"results": results} if results else {})})
        s.commit()
