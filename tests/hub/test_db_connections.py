"""Pooled connections without pool_pre_ping (issue 11): dead ones are still never handed out.

A PostgreSQL restart or a terminated backend closes the server's end of every pooled connection; the pool's checkout
check (hub.db) must notice that without a round trip and open new connections, so no request sees the dead ones.
"""
from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import text

from hub import db
from tests.conftest import PG_ADMIN_URL


def _backend_pids(engine, n: int) -> set[int]:
    """Check out n connections at once (so the pool holds n), note their server pids, return them all."""
    conns = [engine.connect() for _ in range(n)]
    try:
        return {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in conns}
    finally:
        for c in conns:
            c.close()


def _terminate(pids: set[int]) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for pid in pids:  # the 5 s timeout makes it wait until the backend is gone, as after a restart
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


@pytest.fixture
def pg_engine(private_pg_db):
    engine = db.make_engine(private_pg_db)
    yield engine
    engine.dispose()


def test_connections_the_server_terminated_are_replaced_before_use(pg_engine):
    before = _backend_pids(pg_engine, 3)
    _terminate(before)
    factory = db.make_session_factory(pg_engine)
    after = set()
    for _ in range(3):  # every pooled connection is dead; each checkout must still get a live one
        with factory() as s:
            after.add(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert after and not (after & before)


def test_terminated_connections_are_replaced_under_concurrent_checkouts(pg_engine):
    before = _backend_pids(pg_engine, 4)
    _terminate(before)
    errors, seen = [], []

    def use():
        try:
            with pg_engine.connect() as c:
                seen.append(c.execute(text("SELECT pg_backend_pid()")).scalar_one())
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(seen) == 4 and not (set(seen) & before)


def test_a_busy_connection_is_not_pinged_but_a_long_idle_one_is(pg_engine, monkeypatch):
    pings = []
    real_ping = pg_engine.dialect.do_ping
    monkeypatch.setattr(pg_engine.dialect, "do_ping", lambda conn: (pings.append(1), real_ping(conn))[1])
    for _ in range(5):
        with pg_engine.connect() as c:
            c.execute(text("SELECT 1"))
    assert pings == []  # reused within PING_AFTER_IDLE_S: no extra round trip
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    with pg_engine.connect() as c:
        assert c.execute(text("SELECT 1")).scalar_one() == 1
    assert pings == [1]


def test_sqlite_runs_wal_with_commits_that_do_not_wait_for_fsync(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert c.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
        assert c.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    engine.dispose()
