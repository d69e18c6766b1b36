"""Issue 10, item 11 for job outputs: a worker publishing a job's result claims its blobs (hub.gc.claim_blobs) before
storing them, as an upload does, so a garbage collection running at that moment never deletes a blob the new version
is about to name."""
from __future__ import annotations

import hashlib
import threading
import time

from hub import gc
from hub.job_kinds import KINDS
from hub.models import Job
from lora import Adapter
from tests.hardening.conftest import SYN_BASE, lora_files
from tests.hardening.test_gc import _age, collector_paused_deleting
from workers import runner
from workers.kinds.base import Output


def _queued_train_job(live) -> Job:
    """A train job the API accepted (no worker runs it: the test publishes its result by hand)."""
    with live.client() as c:
        r = c.post("/api/v1/jobs", json={"kind": "train", "params": {"base": SYN_BASE, "task": "builtin:word_sorting"},
                                         "output": {"namespace": "team", "name": "trained"}})
        assert r.status_code == 202, r.text
    with live.app.state.session_factory() as s:
        job = s.get(Job, r.json()["id"])
        s.expunge(job)
    return job


def _services(live) -> runner.Services:
    services = runner.Services.__new__(runner.Services)  # the hub's own engine and store, not the environment's
    services.settings, services.engine = live.settings, live.app.state.engine
    services.session_factory, services.store = live.app.state.session_factory, live.app.state.store
    return services


def test_a_collection_racing_a_job_publication_of_the_same_content_never_loses_the_published_blob(fresh):
    """The weights a job produced are already stored, orphaned long ago (an earlier run's crash). The collector
    holds that blob's lock and pauses just before deleting it; the worker publishes meanwhile. The worker's claim
    waits for the collector and then stores its own copy: the published version downloads."""
    files = lora_files(rank=3)
    adapter = Adapter.from_bytes(files["adapter_config.json"][1], files["adapter_model.safetensors"][1])
    weights = adapter.to_bytes()[1]  # what publication will store
    sha = hashlib.sha256(weights).hexdigest()
    store = fresh.app.state.store
    assert store.put_bytes(weights) == sha
    _age(store, sha, 7200)
    job = _queued_train_job(fresh)

    published: dict = {}
    with collector_paused_deleting(fresh, sha):
        publisher = threading.Thread(target=lambda: published.update(
            ref=runner._publish(_services(fresh), job, KINDS["train"], Output(adapter=adapter), [])))
        publisher.start()
        time.sleep(1.0)  # the publication runs into the collector's lock (or, unclaimed, stores nothing new)
    publisher.join(60)
    assert published["ref"] == "team/trained@1"
    with fresh.client() as c:
        r = c.get("/api/v1/adapters/team/trained/versions/1/files/adapter_model.safetensors")
        assert r.status_code == 200 and r.content == weights


def test_a_job_output_claimed_before_its_version_commits_survives_a_collection(fresh, monkeypatch):
    """The other order: the worker has claimed and stored its files (found the old orphan) and a collection comes
    before the version is published: the claim keeps the blob, however old the file looks."""
    files = lora_files(rank=5)
    adapter = Adapter.from_bytes(files["adapter_config.json"][1], files["adapter_model.safetensors"][1])
    weights = adapter.to_bytes()[1]
    store = fresh.app.state.store
    sha = store.put_bytes(weights)
    _age(store, sha, 7200)
    job = _queued_train_job(fresh)
    factory = fresh.app.state.session_factory
    collected: list = []
    real_create = runner.registry.create_version

    def collect_then_create(*args, **kwargs):  # a collection between storing the files and publishing them
        _age(store, sha, 7200)
        collected.append(gc.collect_garbage(factory, store, grace_s=3600))
        return real_create(*args, **kwargs)

    monkeypatch.setattr(runner.registry, "create_version", collect_then_create)
    ref = runner._publish(_services(fresh), job, KINDS["train"], Output(adapter=adapter), [])
    monkeypatch.undo()
    assert ref == "team/trained@1"
    assert collected and sha not in collected[0].removed and store.exists(sha)
    with fresh.client() as c:
        r = c.get("/api/v1/adapters/team/trained/versions/1/files/adapter_model.safetensors")
        assert r.status_code == 200 and r.content == weights
