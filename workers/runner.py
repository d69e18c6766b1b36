"""Run one job: claim it, give its kind a context backed by the registry, publish what it returns, record the end.

Publication is keyed by the job id (`registry.create_version(job_id=...)`), so a job that is delivered twice, or
re-run after its worker was killed mid-way, still ends with exactly one result version.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
import traceback

from hub import gc, jobs, registry
from hub.db import make_engine, make_session_factory
from hub.models import Job
from hub.peft_validation import AdapterValidationError, check_lora_tensors, explicit_config, parse_adapter_config
from hub.safetensors_header import HeaderError, read_header
from hub.registry import FileEntry
from hub.settings import Settings
from lora import Adapter
from hub.job_kinds import KINDS, KindSpec, references
from workers.kinds import runner_for
from workers.kinds.base import split_pairs
from workers.kinds.base import JobCancelled, Output

log = logging.getLogger("adaptarium.runner")


class Services:
    """Per-process DB engine and blob store, built once from the environment."""

    _instance = None

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.session_factory = make_session_factory(self.engine)
        self.store = settings.open_store()

    @classmethod
    def get(cls) -> "Services":
        if cls._instance is None:
            cls._instance = cls(Settings.from_env())
        return cls._instance


class RegistryContext:
    """The JobContext a worker gives a kind: what the job names, from the registry; progress and events into the job
    row through hub.jobs (which owns every job state change)."""

    def __init__(self, services: Services, job: Job, worker: str):
        self.services, self.job_id, self.inputs, self.worker = services, job.id, list(job.inputs), worker
        self.output_name = (job.output or {}).get("name")
        self._last_progress = (-1.0, None, 0.0)
        self._last_cancel_check = 0.0

    def _version(self, object: str, ref: str):
        ns, name, version_ref = registry.parse_ref(ref)
        with self.services.session_factory() as s:
            version = registry.resolve_version(s, object, ns, name, version_ref)
            version.artifact.base  # loaded while the session is open: callers read them after it closes
            return version

    def load_files(self, ref: str, object: str = "adapter") -> dict[str, bytes]:
        version = self._version(object, ref)
        if version.yanked:
            raise ValueError(f"{object} {ref} is yanked")
        return {f["name"]: self.services.store.read_bytes(f["sha256"]) for f in version.files}

    def load_adapter(self, ref: str) -> tuple[Adapter, dict]:
        version = self._version("adapter", ref)
        if version.yanked:
            raise ValueError(f"input {ref} is yanked")
        files = {f["name"]: f["sha256"] for f in version.files}
        store = self.services.store
        adapter = Adapter.from_bytes(store.read_bytes(files["adapter_config.json"]),
                                     store.read_bytes(files["adapter_model.safetensors"]))
        try:  # the uploader's regexes never reach PEFT's unbounded `re` (see explicit_config)
            adapter.config = explicit_config(adapter.config, adapter.modules())
        except AdapterValidationError as exc:
            raise ValueError(f"input {ref}: {exc}") from None
        base = version.artifact.base
        return adapter, {"ref": registry.version_ref(version), "base": base.name if base else None,
                         "base_source": base.source if base else None, "metrics": version.metrics or {},
                         "files": [f["name"] for f in version.files]}

    def load_base(self, base_name: str):
        from lora.bases import load_base

        with self.services.session_factory() as s:
            base = registry.find_base(s, base_name)
            if base is None:
                raise ValueError(f"unknown base {base_name!r}")
            spec = base.source or base.name
        self.log(f"loading base {base_name} ({spec})")
        return load_base(spec)

    def load_dataset(self, ref: str, split: str | None = None) -> list[tuple[str, str]]:
        version = self._version("dataset", ref)
        sha = next(f["sha256"] for f in version.files if f["name"] == "data.jsonl")
        rows = [json.loads(line) for line in self.services.store.read_bytes(sha).splitlines() if line.strip()]
        return split_pairs(rows, split, ref)

    def derived(self, ref: str, relation: str, object: str = "adapter") -> list[str]:
        """Versions that name `ref` as their parent by `relation`, newest first, yanked ones left out."""
        version = self._version("adapter", ref)
        with self.services.session_factory() as s:
            return registry.children_of(s, version.id, relation, object)

    def progress(self, fraction: float, stage: str | None = None, steps: tuple[int, int] | None = None) -> None:
        last_fraction, last_stage, last_time = self._last_progress
        now = time.monotonic()
        if stage == last_stage and fraction < 1.0 and fraction - last_fraction < 0.01 and now - last_time < 1.0:
            return  # throttle: the dashboard needs percent steps, not one row per micro-step
        self._last_progress = (fraction, stage, now)
        if not jobs.record_progress(self.services.session_factory, self.job_id, fraction, stage, steps, self.worker):
            raise JobCancelled("cancelled by request")  # or no longer this worker's job: stop either way

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
        if jobs.cancel_requested(self.services.session_factory, self.job_id, self.worker):
            raise JobCancelled("cancelled by request")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str, services: Services | None = None) -> str:
    """Execute a job if this worker can claim it; returns the job's final state (or 'skipped')."""
    services = services or Services.get()
    worker = worker_name()
    if not jobs.claim(services.session_factory, job_id, worker, services.settings.stale_seconds):
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
        if not jobs.begin_publishing(services.session_factory, job_id, worker):
            raise JobCancelled("cancelled before publication")  # nothing of this run is stored
        spec = KINDS[job.kind]
        published: list[tuple[str, str | None]] = []  # (object, ref) per output, for links between them
        for out in outputs:
            published.append((out.object or spec.output, _publish(services, job, spec, out, published)))
        results = [ref for _, ref in published if ref]
        data = next((out.data for out in outputs if out.data is not None), None)
        return _end(services, job_id, worker, "succeeded", results=results,
                    result=_jsonable(data) if data is not None else None)
    except JobCancelled:
        return _end(services, job_id, worker, "cancelled")
    except Exception as exc:
        # a method that failed while being cancelled (an interrupted load) ends as the caller asked: cancelled
        if jobs.cancel_requested(services.session_factory, job_id):
            return _end(services, job_id, worker, "cancelled")
        return _end(services, job_id, worker, "failed", error={"type": type(exc).__name__, "message": str(exc)},
                    trace=traceback.format_exc())
    finally:
        stop.set()


def _end(services: Services, job_id: str, worker: str, state: str, **how) -> str:
    """Record the run's end; 'skipped' when the job was no longer this worker's to end (taken over by another)."""
    if jobs.finish(services.session_factory, job_id, state, worker=worker, **how):
        return state
    log.warning("job %s was no longer this worker's; its %s end is dropped", job_id, state)
    return "skipped"


def _heartbeat(services: Services, job_id: str, worker: str, stop: threading.Event) -> None:
    while not stop.wait(max(services.settings.stale_seconds / 4, 0.5)):
        try:
            jobs.heartbeat(services.session_factory, job_id, worker)
        except Exception:  # a missed beat only risks a duplicate run, which publication tolerates
            log.exception("heartbeat failed")


def _publish(services: Services, job: Job, spec: KindSpec, out: Output,
             published: list[tuple[str, str | None]]) -> str | None:
    """Store one output as the kind's spec says; returns the ref of the version it made or updated (None for data)."""
    object = out.object or spec.output
    if object == "metrics":  # e.g. evaluate: merged into the input version's metrics (none: data only)
        if not job.inputs:
            return None
        ns, name, ref = registry.parse_ref(job.inputs[0])
        with services.session_factory() as s:
            version = registry.resolve_version(s, spec.input_object, ns, name, ref)
            version.metrics = {**(version.metrics or {}), **_jsonable(out.metrics)}
            s.commit()
            return registry.version_ref(version)
    if object not in ("adapter", "dataset", "generator"):
        return None
    target = job.output or {}
    namespace, name = target["namespace"], out.name or target["name"]
    peft_config = None
    if object == "adapter":
        config_json, weights = out.adapter.to_bytes()
        blobs = {"adapter_config.json": config_json, "adapter_model.safetensors": weights, **out.extra_files}
        base_name, peft_config = out.adapter.config.get("base_model_name_or_path"), out.adapter.config
    elif object == "dataset":
        blobs = {"data.jsonl": "".join(json.dumps(row) + "\n" for row in out.rows or []).encode()}
        base_name = out.base
    else:
        blobs, base_name = dict(out.files), out.base
    with services.session_factory() as s:
        base_id = None
        if base_name or object == "adapter":
            base = registry.find_base(s, base_name) if base_name else None
            if base is None:
                raise ValueError(f"result {object} names base {base_name!r}, which is not registered")
            base_id = base.id
            if object == "adapter":  # what a job makes is checked like an upload: config, header, shapes
                check_result_adapter(blobs["adapter_config.json"], blobs["adapter_model.safetensors"],
                                     base.module_shapes)
    # Claim the blobs before storing them, as an upload does (hub.gc): a collection running now keeps a blob this
    # version is about to name, even one whose identical content is already stored as an old orphan.
    files = [FileEntry(fname, hashlib.sha256(data).hexdigest(), len(data)) for fname, data in blobs.items()]
    gc.claim_blobs(services.session_factory, {f.sha256: f.size for f in files})
    for data in blobs.values():
        services.store.put_bytes(data)
    with services.session_factory() as s:
        parents = []
        for reference in references(spec, job.inputs, job.params):
            relation = (out.relation or reference.relation) if reference.where.startswith("inputs") \
                else reference.relation
            if relation and reference.object != "base":
                parents.append((_version_id(s, reference.object, reference.value), relation))
        for parent_object, ref, relation in out.parents:
            if parent_object == "output":
                parent_object, ref = published[int(ref)]
            parents.append((_version_id(s, parent_object, ref), relation))
    spec.check_published(object, [relation for _, relation in parents])
    version = registry.create_version(services.session_factory, kind=object, namespace=namespace, name=name,
                                      base_id=base_id, peft_config=peft_config, files=files,
                                      metrics=_jsonable(out.metrics), created_by=f"job:{job.id}", job_id=job.id,
                                      parents=list(dict.fromkeys(parents)))
    return registry.version_ref(version)


def check_result_adapter(config_json: bytes, weights: bytes, module_shapes: dict) -> None:
    """The upload path's validation (hub.peft_validation) on a job's result, so a method that produced something
    PEFT could not load onto the base (a generated adapter of the wrong shape) fails instead of publishing it."""
    try:
        tensors, _ = read_header(io.BytesIO(weights), len(weights))
        check_lora_tensors(parse_adapter_config(config_json), tensors, module_shapes)
    except (AdapterValidationError, HeaderError) as exc:
        raise ValueError(f"the result does not fit its base: {exc}") from None


def _version_id(session, object: str, ref: str) -> int:
    ns, name, version_ref = registry.parse_ref(ref)
    return registry.resolve_version(session, object, ns, name, version_ref).id


def _jsonable(value):
    """Plain JSON for the database: numpy/torch scalars become floats; NaN and infinities become null."""
    return json.loads(json.dumps(value, default=float), parse_constant=lambda _: None)
