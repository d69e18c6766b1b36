"""Shared fixtures: a private PostgreSQL database and a real S3 server (moto) on loopback.

Both are real servers reached over TCP, so the code under test talks to them exactly as it would in production.
Each test session gets its own PostgreSQL database so parallel runs on one machine never see each other's rows.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

PG_ADMIN_URL = os.environ.get("ADAPTARIUM_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
S3_ACCESS_KEY = "adaptarium-test"
S3_SECRET_KEY = "adaptarium-test-secret"


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


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh, empty PostgreSQL database that is dropped when the session ends."""
    import psycopg

    name = f"adaptarium_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
