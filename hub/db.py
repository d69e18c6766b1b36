"""SQLAlchemy engine and session plumbing shared by the API, the CLI and the workers.

Every table hangs off `Base` and lives in `hub.models` (registry and job tables alike).
Alembic (migrations/) owns the schema; `create_all` is never used outside throwaway test databases.
"""
from __future__ import annotations

import select
import time

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

# a pooled server connection idle for longer than this is pinged (one round trip) before it is handed out
PING_AFTER_IDLE_S = 10.0


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and foreign keys so it behaves like the server databases."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit no longer waits for an fsync (the WAL is synced at checkpoints); the database
            # stays consistent after any crash, and only a power loss can undo the last commits. SQLite's own
            # recommendation for WAL, and the embedded setup's job rows are re-sent by the recovery sweep anyway.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=20, max_overflow=20)
    _check_on_checkout(engine)
    return engine


def _check_on_checkout(engine: Engine) -> None:
    """Hand out only live server connections, without pool_pre_ping's round trip on every checkout.

    A server that restarts, or a backend that is terminated, closes its end of the socket (after a last FATAL
    message), so the idle connection's socket turns readable; an idle, healthy connection has nothing to read. That
    check is one poll() with a zero timeout. A connection idle for longer than PING_AFTER_IDLE_S also gets a real
    ping, for peers that vanished without closing (a NAT or firewall dropping idle flows). Raising DisconnectionError
    from the checkout event makes the pool discard that connection and open a new one (SQLAlchemy's documented
    pessimistic-disconnect hook), so the caller never sees the dead one."""

    @event.listens_for(engine, "checkin")
    def _stamp_idle(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_conn, record, _proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:  # fresh from connect()
            return
        if _socket_readable(dbapi_conn):
            raise exc.DisconnectionError("the server closed this idle connection")
        if time.monotonic() - idle_since > PING_AFTER_IDLE_S:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as err:
                raise exc.DisconnectionError(f"ping failed: {err}") from err


def _socket_readable(dbapi_conn) -> bool:
    """Is there anything to read on an idle connection (EOF, a FATAL notice)? Unknown drivers: assume not."""
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # psycopg raises on a closed connection; that one is certainly dead
        return bool(getattr(dbapi_conn, "closed", False))
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)
