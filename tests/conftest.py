"""Shared fixtures: a private PostgreSQL database and a real S3 server (moto) on loopback.

Both are real servers reached over TCP, so the code under test talks to them exactly as it would in production.
Each test session gets its own PostgreSQL database so parallel runs on one machine never see each other's rows.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

PG_ADMIN_URL = os.environ.get("ADAPTARIUM_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
S3_ACCESS_KEY = "adaptarium-test"
S3_SECRET_KEY = "adaptarium-test-secret"
ROOT = Path(__file__).parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout}s")


def wait_for_health(url: str, proc, timeout: float = 90.0) -> None:
    """Until the hub at `url` answers /healthz; fails at once if its process `proc` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"the hub exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"the hub at {url} did not answer within {timeout} s"
        time.sleep(0.3)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class PrivateRedis:
    """A redis-server of this test's own on a free port, no persistence (like the shared one)."""

    def __init__(self):
        self.port, self.dir = free_port(), Path(tempfile.mkdtemp(prefix="adaptarium-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                        "--logfile", str(self.dir / "redis.log")], check=True)
        wait_for_port(self.port)

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        wait_until(lambda: not listening(self.port), 10, "the private Redis to stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def new_pg_database(prefix: str = "adaptarium_test"):
    """Create an empty PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh PostgreSQL database shared by the whole test session."""
    with new_pg_database() as url:
        yield url


@pytest.fixture
def private_pg_db():
    """A PostgreSQL database of this test's own, dropped afterwards."""
    with new_pg_database("adaptarium_one") as url:
        yield url


def wait_until(predicate, timeout: float, what: str):
    """predicate()'s first truthy value, polled every 0.2 s; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_worker(env: dict, name: str = "test") -> subprocess.Popen:
    """A real Celery worker process on both queues (solo pool), configured by `env` (ADAPTARIUM_* URLs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", "gpu,cpu", "--pool", "solo",
         "--loglevel", "warning", "--without-gossip", "--without-mingle", "-n", f"{name}-{os.getpid()}@%h"],
        env={**env, "OMP_NUM_THREADS": "1"}, cwd=ROOT)


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def s3_endpoint():
    """host:port of a moto S3 server running as its own process on loopback."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_storage_url(s3_endpoint, monkeypatch):
    """An ADAPTARIUM_STORAGE_URL for a bucket of its own on the moto server; keys are set in the environment."""
    monkeypatch.setenv("ADAPTARIUM_S3_ACCESS_KEY", S3_ACCESS_KEY)
    monkeypatch.setenv("ADAPTARIUM_S3_SECRET_KEY", S3_SECRET_KEY)
    bucket = f"adaptarium-{uuid.uuid4().hex[:12]}"
    return f"s3://{bucket}?endpoint={s3_endpoint}&secure=false"
