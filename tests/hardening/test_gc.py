"""Issue 10, item 11: garbage collection of blobs no version names (`adaptarium gc` and POST /api/v1/admin/gc),
with a grace period, and safe against an upload of the same content running at that moment. Also: a failed upload
gives its blobs back at once (item 7's "never leave a blob behind")."""
from __future__ import annotations

import json
import contextlib
import os
import threading
import time

from typer.testing import CliRunner

from hub import gc
from hub.storage import LocalBlobStore
from tests.api.conftest import start_hub
from tests.hardening.conftest import lora_files, register_base, upload


def _age(store: LocalBlobStore, sha: str, seconds: float) -> None:
    path = store._path(sha)
    then = time.time() - seconds
    os.utime(path, (then, then))


@contextlib.contextmanager
def collector_paused_deleting(live, sha: str):
    """A gc.collect_garbage run on `live`'s store, held just before it deletes `sha` while the with block runs (the
    racing party starts there), then let go and joined."""
    store = live.app.state.store
    in_delete, go_on = threading.Event(), threading.Event()
    real_delete = store.delete

    def paused_delete(victim):
        if victim == sha:
            in_delete.set()
            assert go_on.wait(30)
        real_delete(victim)

    store.delete = paused_delete
    collector = threading.Thread(target=gc.collect_garbage, args=(live.app.state.session_factory, store, 3600))
    try:
        collector.start()
        assert in_delete.wait(30)
        yield
    finally:
        go_on.set()
        collector.join(30)
        store.delete = real_delete


def _stored(live) -> set[str]:
    return {sha for sha, _ in live.app.state.store.list_blobs()}


def test_gc_removes_only_old_unreferenced_blobs_and_a_dry_run_removes_nothing(fresh):
    store = fresh.app.state.store
    with fresh.client() as c:
        r = upload(c, "team", "kept", lora_files())
        assert r.status_code == 201
        kept = {f["sha256"] for f in r.json()["files"]}
    old_orphan = store.put_bytes(b"left behind by a crash")
    new_orphan = store.put_bytes(b"being published right now")
    _age(store, old_orphan, 7200)
    for sha in kept:
        _age(store, sha, 7200)
    factory = fresh.app.state.session_factory

    dry = gc.collect_garbage(factory, store, grace_s=3600, dry_run=True)
    assert dry.removed == [old_orphan] and store.exists(old_orphan)

    report = gc.collect_garbage(factory, store, grace_s=3600)
    assert report.removed == [old_orphan]
    assert report.referenced == len(kept) and report.recent == 1
    assert _stored(fresh) == kept | {new_orphan}
    with fresh.client() as c:  # the published version still downloads
        assert c.get("/api/v1/adapters/team/kept/versions/1/files/adapter_model.safetensors").status_code == 200


def test_the_admin_endpoint_needs_an_admin_token_and_reports(fresh):
    store = fresh.app.state.store
    orphan = store.put_bytes(b"orphan")
    _age(store, orphan, 100)
    with fresh.client(token=None) as anon:
        assert anon.post("/api/v1/admin/gc").status_code == 401
    with fresh.client(token=fresh.token("team", "write")) as writer:
        assert writer.post("/api/v1/admin/gc").status_code == 403
    with fresh.client() as admin:
        assert admin.post("/api/v1/admin/gc", params={"grace_s": -1}).status_code == 422
        r = admin.post("/api/v1/admin/gc", params={"grace_s": 10})
        assert r.status_code == 200, r.text
        assert r.json()["removed_sha256"] == [orphan] and r.json()["bytes_removed"] == len(b"orphan")
    assert not store.exists(orphan)


def test_a_collection_racing_an_upload_of_the_same_content_never_loses_the_published_blob(fresh):
    """The collector holds the blob's lock and is paused just before deleting; an upload of the same bytes starts.
    Its claim waits for the collector, then finds no file and stores its own copy: the version downloads."""
    store = fresh.app.state.store
    files = lora_files(rank=4)
    weights = files["adapter_model.safetensors"][1]
    sha = store.put_bytes(weights)  # the same bytes, orphaned by an earlier crash
    _age(store, sha, 7200)
    result = {}
    with collector_paused_deleting(fresh, sha):
        uploader = threading.Thread(target=lambda: result.update(r=upload(fresh.client(), "team", "same", files)))
        uploader.start()
        time.sleep(1.0)  # the upload is now waiting on the collector's lock (or has not needed it yet)
    uploader.join(60)
    assert result["r"].status_code == 201, result["r"].text
    with fresh.client() as c:
        r = c.get("/api/v1/adapters/team/same/versions/1/files/adapter_model.safetensors")
        assert r.status_code == 200 and r.content == weights


def test_a_blob_claimed_by_an_upload_survives_a_collection_before_the_version_commits(fresh):
    """The other order: the upload claimed (and found the old orphan) first, the collector comes before the version
    is published and must keep the blob."""
    store = fresh.app.state.store
    factory = fresh.app.state.session_factory
    sha = store.put_bytes(b"weights someone is publishing")
    _age(store, sha, 7200)
    gc.claim_blobs(factory, {sha: 29})
    _age(store, sha, 7200)  # even when the file itself looks old
    assert gc.collect_garbage(factory, store, grace_s=3600).removed == []
    assert store.exists(sha)


def test_a_failed_upload_leaves_no_blob_but_never_takes_one_a_version_uses(fresh):
    register_base(fresh, "other-base")
    with fresh.client() as c:
        assert upload(c, "team", "a", lora_files()).status_code == 201
        assert upload(c, "team", "b", lora_files({"base_model_name_or_path": "other-base"})).status_code == 201
        before = _stored(fresh)
        # team/b belongs to other-base: a version for syn-base is refused (409) by create_version, after its files
        # were stored. Its weights and config are blobs that team/a@1 and team/b@1 use: they stay. Its README is
        # new: it goes.
        files = {**lora_files(), "README.md": ("README.md", b"# a README nobody else has")}
        r = upload(c, "team", "b", files)
        assert r.status_code == 409, r.text
    assert _stored(fresh) == before
    for ref in ("team/a/versions/1", "team/b/versions/1"):
        with fresh.client() as c:
            assert c.get(f"/api/v1/adapters/{ref}/files/adapter_model.safetensors").status_code == 200


def test_the_gc_command_collects_the_data_dirs_store(tmp_path):
    from typer import Typer

    from hub.cli_gc import gc as gc_command

    live, stop = start_hub(tmp_path)
    stop()
    store = live.app.state.store
    orphan = store.put_bytes(b"cli orphan")
    _age(store, orphan, 3 * 3600)
    live.app.state.engine.dispose()
    cli = Typer()
    cli.command(name="gc")(gc_command)
    cli.command(name="noop")(lambda: None)  # two commands, so `gc` is addressed by name as in the real CLI
    runner = CliRunner()
    args = ["gc", "--data-dir", str(tmp_path / "data"), "--grace-hours", "1", "--json"]
    dry = runner.invoke(cli, args + ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["removed_sha256"] == [orphan] and store.exists(orphan)
    done = runner.invoke(cli, args)
    assert done.exit_code == 0 and json.loads(done.output)["removed"] == 1
    assert not store.exists(orphan)
