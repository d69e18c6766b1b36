"""The API process trusts a verified token for `token_cache_seconds` (issue 11): most requests read no token row,
and a revocation still takes effect within that time, however it is made.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import event

from hub import auth
from tests.api.conftest import start_hub
from tests.conftest import ROOT


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cached_hub(request, tmp_path):
    """A hub trusting verified tokens for 1 s."""
    db_url = request.getfixturevalue("private_pg_db") if request.param == "postgres" else None
    live, stop = start_hub(tmp_path, db_url, ADAPTARIUM_TOKEN_CACHE_SECONDS=1)
    yield live
    stop()
    live.app.state.engine.dispose()


def token_reads(live, client, path: str) -> int:
    """How many statements a request to `path` ran on the api_tokens table."""
    seen = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(live.app.state.engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(live.app.state.engine, "before_cursor_execute", record)
    return sum("api_tokens" in s for s in seen)


def test_a_verified_token_is_not_read_again_on_the_next_request(cached_hub):
    token = cached_hub.token(None, "read")
    with cached_hub.client(token) as c:
        assert token_reads(cached_hub, c, "/api/v1/adapters") >= 1  # the lookup (and the first last-used write)
        assert token_reads(cached_hub, c, "/api/v1/adapters") == 0


def test_a_token_revoked_by_the_cli_in_another_process_is_refused_within_the_cache_time(cached_hub):
    token = cached_hub.token("team", "read")
    with cached_hub.client(token) as c:
        assert c.get("/api/v1/adapters").status_code == 200  # verified, now cached
        env = {**os.environ, "ADAPTARIUM_DATA_DIR": str(cached_hub.settings.data_dir),
               "ADAPTARIUM_DATABASE_URL": cached_hub.settings.database_url}
        done = subprocess.run([sys.executable, "-m", "hub.cli", "token", "revoke", token], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        revoked_at = time.monotonic()
        while c.get("/api/v1/adapters").status_code == 200:
            assert time.monotonic() - revoked_at < 1 + 0.5, "still accepted after the 1 s cache time"
            time.sleep(0.05)
        assert c.get("/api/v1/adapters").status_code == 401


def test_a_token_revoked_in_the_api_process_is_refused_at_once(cached_hub):
    token = cached_hub.token(None, "write")
    with cached_hub.client(token) as c:
        assert c.get("/api/v1/adapters").status_code == 200
        with cached_hub.app.state.session_factory() as s:
            assert auth.revoke(s, token)
            s.commit()
        assert c.get("/api/v1/adapters").status_code == 401


def test_with_the_cache_off_every_request_reads_the_token(tmp_path):
    live, stop = start_hub(tmp_path, ADAPTARIUM_TOKEN_CACHE_SECONDS=0)
    try:
        with live.client() as c:
            assert all(token_reads(live, c, "/api/v1/adapters") >= 1 for _ in range(3))
    finally:
        stop()
        live.app.state.engine.dispose()
