"""Issue 10, item 8: staging files of a killed upload are swept (at start, and periodically), never a live one; and
the local store's commit is durable (file fsynced before the rename, directory after it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hub import storage
from hub.storage import LocalBlobStore, open_store
from tests.api.conftest import start_hub
from tests.conftest import ROOT, free_port, wait_for_port
from tests.hardening.conftest import lora_files, raw_request

WRITER = """
import sys, time
from pathlib import Path
from hub.storage import LocalBlobStore
staging = LocalBlobStore(Path(sys.argv[1])).staging()
staging.write(b"x" * 3_000_000)
staging._hand_off()
print(staging.path, flush=True)
time.sleep(60)
"""


def _partials(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".staging").glob(".partial-*"))


def test_a_killed_writers_partial_file_is_swept_when_a_store_opens_and_a_live_one_is_kept(tmp_path):
    root = tmp_path / "blobs"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    killed = Path(proc.stdout.readline().strip())
    live_staging = LocalBlobStore(root).staging()  # this process: alive, fresh
    live_staging.write(b"y")
    assert killed.exists() and len(_partials(root)) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    LocalBlobStore(root)  # a restart
    assert _partials(root) == [live_staging.path.name]
    assert live_staging.finish().size == 1


def test_files_of_other_hosts_or_old_names_go_only_once_stale(tmp_path):
    staging = tmp_path / "blobs" / ".staging"
    staging.mkdir(parents=True)
    fresh = staging / f".partial-otherhost-1-{'a' * 32}"
    stale = staging / f".partial-otherhost-2-{'b' * 32}"
    legacy = staging / f".partial-{'c' * 32}"
    unrelated = staging / "keep-me"
    for path in (fresh, stale, legacy, unrelated):
        path.write_bytes(b"z")
    old = time.time() - storage.STALE_STAGING_S - 60
    os.utime(stale, (old, old))
    os.utime(legacy, (old, old))
    LocalBlobStore(tmp_path / "blobs")
    assert sorted(p.name for p in staging.iterdir()) == sorted([fresh.name, unrelated.name])


def test_the_sweep_also_runs_periodically_as_uploads_come(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    dead = store.staging_dir / f".partial-{storage._HOST}-{2**22 + 12345}-{'d' * 32}"  # beyond pid_max: no process
    store.staging_dir.mkdir(parents=True, exist_ok=True)
    dead.write_bytes(b"z")
    store.staging().abort()  # within SWEEP_EVERY_S of the start sweep: no sweep
    time.sleep(0.2)
    assert dead.exists()
    store._last_sweep -= storage.SWEEP_EVERY_S
    store.staging().abort()
    deadline = time.monotonic() + 5
    while dead.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not dead.exists()


def test_sigkill_of_the_api_mid_upload_leaves_no_partial_file_after_restart(tmp_path):
    data_dir = tmp_path / "data"
    live, stop = start_hub(tmp_path)  # migrate the database and make a token; this in-process server then stops
    token = live.admin_token
    stop()
    live.app.state.engine.dispose()
    port = free_port()
    env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(data_dir)}
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "hub.api.app:create_app", "--factory", "--port",
                            str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        wait_for_port(port)
        head = (f"POST /api/v1/adapters/crash/a/versions HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {200 * 1024**2}\r\n\r\n")
        part = (b'--xyz\r\nContent-Disposition: form-data; name="adapter_model.safetensors"; '
                b'filename="adapter_model.safetensors"\r\n\r\n')
        import socket

        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head.encode() + part + b"\0" * (8 * 1024**2))
            deadline = time.monotonic() + 10
            while not _partials(data_dir / "blobs") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _partials(data_dir / "blobs"), "the upload never reached staging"
            api.send_signal(signal.SIGKILL)
            api.wait()
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
    assert _partials(data_dir / "blobs")  # what the crash left
    live, stop = start_hub(tmp_path)  # restart on the same data dir
    try:
        assert _partials(data_dir / "blobs") == []
        with live.client() as c:
            assert c.get("/api/v1/adapters/crash/a").status_code == 404  # nothing partial visible
    finally:
        stop()
        live.app.state.engine.dispose()


@pytest.mark.parametrize("durable", [True, False])
def test_a_local_commit_fsyncs_the_file_and_its_directory_when_durable(tmp_path, monkeypatch, durable):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store = open_store(f"file://{tmp_path / 'blobs'}" + ("" if durable else "?fsync=false"))
    sha = store.put_bytes(b"durable bytes")
    target = tmp_path / "blobs" / sha[:2] / sha
    assert target.read_bytes() == b"durable bytes"
    if durable:
        assert any(".partial-" in path for path in synced)  # the data, before the rename
        assert str(target.parent) in synced  # the rename
        assert str(tmp_path / "blobs") in synced  # the new <sha[:2]> directory
    else:
        assert synced == []
    synced.clear()
    assert store.put_bytes(b"durable bytes") == sha
    assert synced == []  # identical content is already durable: dropping the duplicate needs no fsync
