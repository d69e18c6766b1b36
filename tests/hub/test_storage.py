"""Blob stores, local directory and S3 (moto server on loopback), behave identically: streamed staging with hashing,
dedup on commit, range reads, size limits that leave nothing behind."""
from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest

from hub.storage import LocalBlobStore, UploadTooLarge, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(f"file://{tmp_path / 'blobs'}")
    return open_store(request.getfixturevalue("s3_storage_url"), staging_dir=tmp_path / "staging")


def _staged_files(store) -> list:
    return list(store.staging_dir.glob("*")) if store.staging_dir.exists() else []


def test_staging_hashes_while_streaming_and_commit_deduplicates(store):
    chunks = [os.urandom(70_001) for _ in range(37)]  # odd sizes across several 1 MiB hand-offs and a remainder
    staging = store.staging()
    for chunk in chunks:
        staging.write(chunk)
    staged = staging.finish()
    data = b"".join(chunks)
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == len(data)
    assert store.commit(staged) is True
    assert store.exists(staged.sha256) and store.size(staged.sha256) == len(data)
    assert store.commit(store.stage_bytes(data)) is False  # identical content is stored once
    assert store.read_bytes(staged.sha256) == data
    assert b"".join(store.read(staged.sha256, start=1000, length=5000)) == data[1000:6000]
    assert _staged_files(store) == []


def test_a_file_under_one_batch_is_hashed_written_and_inspected_without_helper_threads(store, monkeypatch):
    import threading

    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1])
    seen = []
    staging = store.staging(inspect=seen.append)
    for _ in range(4):
        staging.write(b"0123456789" * 1000)  # 40 KB in all: a config, a small adapter
    staged = staging.finish()
    assert started == []  # nothing to overlap: the work is done inline at finish
    data = b"0123456789" * 4000
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.path.read_bytes() == data
    assert b"".join(seen) == data  # the inspector saw every byte
    failing = store.staging(inspect=lambda chunk: (_ for _ in ()).throw(ValueError("bad tensor")))
    failing.write(b"x" * 100)
    with pytest.raises(ValueError, match="bad tensor"):  # an inspector's refusal still fails the staging
        failing.finish()
    assert staged.path.exists() and len(_staged_files(store)) == 1  # ... and removes its own file only
    store.discard(staged)


def test_too_large_upload_is_refused_and_leaves_no_temp_file(store):
    staging = store.staging(max_bytes=1000)
    staging.write(b"x" * 600)
    with pytest.raises(UploadTooLarge):
        staging.write(b"x" * 600)
    assert _staged_files(store) == []


def test_discard_and_delete_leave_nothing(store):
    staged = store.stage_bytes(b"temporary")
    store.discard(staged)
    assert not store.exists(staged.sha256) and _staged_files(store) == []
    sha = store.put_bytes(b"kept for a moment")
    store.delete(sha)
    assert not store.exists(sha)


def test_keys_must_be_sha256_digests(store):
    for bad in ("../../etc/passwd", "ABC", "0" * 63):
        with pytest.raises(ValueError):
            store.exists(bad)


def test_staging_a_200_mb_upload_keeps_memory_flat(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    chunk = os.urandom(1 << 20)
    tracemalloc.start()
    staging = store.staging()
    for _ in range(200):
        staging.write(chunk)
    staged = staging.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert staged.size == 200 << 20
    assert peak < 16 << 20, peak
    store.discard(staged)


def test_unknown_storage_urls_are_refused():
    with pytest.raises(ValueError, match="unsupported storage URL"):
        open_store("ftp://somewhere")
    with pytest.raises(ValueError, match="endpoint"):
        open_store("s3://bucket")
