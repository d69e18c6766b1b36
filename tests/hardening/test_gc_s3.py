"""Issue 10, item 11 on the production store: `adaptarium gc` against S3 (a moto server on loopback) lists the
bucket's blobs, removes the unreferenced ones older than the grace period and keeps the rest.

S3 cannot backdate an object, so "old" here is seconds: an orphan written, a pause longer than the grace period
(plus S3's one-second timestamp resolution), then the rest.
"""
from __future__ import annotations

import json
import time

from typer import Typer
from typer.testing import CliRunner

from hub import gc
from hub.cli_gc import gc as gc_command
from tests.api.conftest import start_hub
from tests.hardening.conftest import lora_files, register_base, upload

GRACE_S = 2.0


def _stored(store) -> set[str]:
    return {sha for sha, _ in store.list_blobs()}


def _cli() -> Typer:
    cli = Typer()
    cli.command(name="gc")(gc_command)
    cli.command(name="noop")(lambda: None)  # two commands, so `gc` is addressed by name as in the real CLI
    return cli


def test_gc_on_s3_removes_old_orphans_and_keeps_published_and_recent_blobs(tmp_path, s3_storage_url):
    live, stop = start_hub(tmp_path, storage_url=s3_storage_url)
    try:
        register_base(live)
        store = live.app.state.store
        assert type(store).__name__ == "S3BlobStore"
        with live.client() as c:
            r = upload(c, "team", "kept", lora_files())
            assert r.status_code == 201, r.text
        kept = {f["sha256"] for f in r.json()["files"]}
        old_orphan = store.put_bytes(b"left in the bucket by a crash")
        time.sleep(GRACE_S + 1.5)
        new_orphan = store.put_bytes(b"stored a moment ago, about to be published")
        factory = live.app.state.session_factory

        dry = gc.collect_garbage(factory, store, grace_s=GRACE_S, dry_run=True)
        assert dry.removed == [old_orphan] and store.exists(old_orphan)
        assert dry.blobs_seen == len(kept) + 2 and dry.referenced == len(kept) and dry.recent == 1

        report = gc.collect_garbage(factory, store, grace_s=GRACE_S)
        assert report.removed == [old_orphan]
        assert report.bytes_removed == len(b"left in the bucket by a crash")
        assert _stored(store) == kept | {new_orphan}
        with live.client() as c:  # the published version still downloads from the bucket
            r = c.get("/api/v1/adapters/team/kept/versions/1/files/adapter_model.safetensors")
            assert r.status_code == 200 and r.content == lora_files()["adapter_model.safetensors"][1]
    finally:
        stop()
        live.app.state.engine.dispose()


def test_the_gc_command_collects_an_s3_store_named_by_the_environment(tmp_path, s3_storage_url, monkeypatch):
    """The operator's path: ADAPTARIUM_STORAGE_URL and the S3 keys in the environment, `adaptarium gc` run with the
    API stopped. An orphan older than the grace period goes; a claimed blob (an upload in flight) stays."""
    live, stop = start_hub(tmp_path, storage_url=s3_storage_url)
    stop()
    live.app.state.engine.dispose()
    store = live.app.state.store
    orphan = store.put_bytes(b"cli orphan in s3")
    in_flight = store.put_bytes(b"an upload in flight has claimed this")
    time.sleep(4.5)  # both files now older than the grace period; only the claim keeps the second
    gc.claim_blobs(live.app.state.session_factory, {in_flight: 36})
    live.app.state.engine.dispose()
    monkeypatch.setenv("ADAPTARIUM_STORAGE_URL", s3_storage_url)
    args = ["gc", "--data-dir", str(tmp_path / "data"), "--grace-hours", str(3 / 3600), "--json"]
    dry = CliRunner().invoke(_cli(), args + ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["removed_sha256"] == [orphan] and store.exists(orphan)
    done = CliRunner().invoke(_cli(), args)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["removed_sha256"] == [orphan]
    assert _stored(store) == {in_flight}
